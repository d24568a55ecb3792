//! Scheduler core tests: small plans drawn in comments, every step followed by
//! `sanity_check`.

use std::time::Duration;

use super::*;
use crate::plan::{PluginSpec, Resources, TaskSpec};

/// Build a plan from `(id, deps, request)` rows; capacity as given.
fn plan(rows: &[(&str, &[&str], Resources)], capacity: Resources) -> Plan {
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let tasks = rows
        .iter()
        .map(|(id, deps, req)| {
            let mut deps: Vec<TaskId> =
                deps.iter().map(|d| ids.iter().position(|x| x == d).unwrap() as TaskId).collect();
            deps.sort();
            TaskSpec {
                id: id.to_string(),
                plugin: 0,
                inputs: vec![],
                params: "{}".into(),
                resources: req.clone(),
                retries: 0,
                timeout: None,
                priority: 0,
                args: vec![],
                env: vec![],
                stdin: None,
                stdout: None,
                deterministic: false,
                cache: true,
                fuel: None,
                max_output_bytes: None,
                max_open_files: None,
                fs: None,
                deps,
            }
        })
        .collect();
    Plan {
        name: "t".into(),
        description: String::new(),
        pipeline_file: "p.toml".into(),
        base_dir: ".".into(),
        plugins: vec![PluginSpec { name: "p".into(), path: "p.wasm".into(), sha256: None, digest: None }],
        tasks,
        outputs: vec![],
        capacity,
        vars: vec![],
    }
}

fn cpu(n: u64) -> Resources {
    Resources { cpu_milli: n * 1000, ..Resources::default() }
}

fn mem_gib(n: u64) -> Resources {
    Resources { cpu_milli: 1000, memory: n << 30, ..Resources::default() }
}

fn ids(p: &Plan, v: &[TaskId]) -> Vec<String> {
    v.iter().map(|&t| p.tasks[t as usize].id.clone()).collect()
}

fn start(core: &mut Core, p: &Plan, max: usize) -> Vec<String> {
    let mut out = vec![];
    core.schedule(max, &mut out);
    core.sanity_check(p);
    ids(p, &out)
}

fn id(p: &Plan, s: &str) -> TaskId {
    p.tasks.iter().position(|t| t.id == s).unwrap() as TaskId
}

#[test]
fn diamond_runs_in_dependency_order() {
    //   a
    //  / \
    // b   c
    //  \ /
    //   d
    let p =
        plan(&[("a", &[], cpu(1)), ("b", &["a"], cpu(1)), ("c", &["a"], cpu(1)), ("d", &["b", "c"], cpu(1))], cpu(4));
    let mut core = Core::new(&p, CoreOptions::default());
    core.sanity_check(&p);
    assert_eq!(start(&mut core, &p, 10), ["a"]);
    core.on_success(id(&p, "a"));
    assert_eq!(start(&mut core, &p, 10), ["b", "c"]);
    core.on_success(id(&p, "c"));
    assert_eq!(start(&mut core, &p, 10), Vec::<String>::new());
    core.on_success(id(&p, "b"));
    assert_eq!(start(&mut core, &p, 10), ["d"]);
    core.on_success(id(&p, "d"));
    core.sanity_check(&p);
    assert!(core.is_done());
    assert_eq!(core.counts().succeeded, 4);
}

#[test]
fn memory_requests_bound_concurrency() {
    // 8 independent tasks of 1 GiB each under 2 GiB: never more than 2 at once.
    let rows: Vec<(String, Resources)> = (0..8).map(|i| (format!("t{i}"), mem_gib(1))).collect();
    let rows: Vec<(&str, &[&str], Resources)> = rows.iter().map(|(n, r)| (n.as_str(), &[][..], r.clone())).collect();
    let cap = Resources { cpu_milli: 64_000, memory: 2 << 30, ..Resources::default() };
    let p = plan(&rows, cap);
    let mut core = Core::new(&p, CoreOptions::default());
    let mut done = 0;
    let mut running: Vec<TaskId> = vec![];
    while !core.is_done() {
        let mut out = vec![];
        core.schedule(100, &mut out);
        core.sanity_check(&p);
        running.extend(out);
        assert!(running.len() <= 2, "{} running", running.len());
        let t = running.remove(0);
        core.on_success(t);
        done += 1;
    }
    assert_eq!(done, 8);
}

#[test]
fn small_tasks_backfill_around_a_big_one() {
    // `hold` (priority 1) takes 2 of 4 cpus; `big` needs 4 and waits; `small` fills the gap.
    let mut p = plan(&[("big", &[], cpu(4)), ("hold", &[], cpu(2)), ("small", &[], cpu(1))], cpu(4));
    p.tasks[1].priority = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    assert_eq!(start(&mut core, &p, 10), ["hold", "small"]);
    core.on_success(id(&p, "hold"));
    assert_eq!(start(&mut core, &p, 10), Vec::<String>::new());
    core.on_success(id(&p, "small"));
    assert_eq!(start(&mut core, &p, 10), ["big"]);
}

#[test]
fn priority_then_longest_path_then_id() {
    // x -> y -> z (long chain), plus lone tasks p (priority 5) and q.
    let mut p = plan(
        &[("q", &[], cpu(1)), ("x", &[], cpu(1)), ("y", &["x"], cpu(1)), ("z", &["y"], cpu(1)), ("p", &[], cpu(1))],
        cpu(1),
    );
    p.tasks[4].priority = 5;
    let mut core = Core::new(&p, CoreOptions::default());
    assert_eq!(start(&mut core, &p, 1), ["p"]);
    core.on_success(id(&p, "p"));
    assert_eq!(start(&mut core, &p, 1), ["x"]);
    core.on_success(id(&p, "x"));
    assert_eq!(start(&mut core, &p, 1), ["y"]);
}

#[test]
fn failure_skips_dependents_but_not_independent_branches() {
    // a -> b -> c ;  d (independent)
    let p = plan(&[("a", &[], cpu(1)), ("b", &["a"], cpu(1)), ("c", &["b"], cpu(1)), ("d", &[], cpu(1))], cpu(4));
    let mut core = Core::new(&p, CoreOptions::default());
    assert_eq!(start(&mut core, &p, 10), ["a", "d"]);
    let dec = core.on_failure(id(&p, "a"), FailureClass::Retryable, Duration::ZERO);
    assert_eq!(dec, FailureDecision::Failed { skipped: 2 });
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "c")), TaskState::Skipped);
    assert!(!core.is_done());
    core.on_success(id(&p, "d"));
    assert!(core.is_done());
    let c = core.counts();
    assert_eq!((c.succeeded, c.failed, c.skipped), (1, 1, 2));
}

#[test]
fn retries_back_off_exponentially() {
    let mut p = plan(&[("a", &[], cpu(1))], cpu(1));
    p.tasks[0].retries = 2;
    let opts = CoreOptions { backoff_base: Duration::from_millis(100), ..CoreOptions::default() };
    let mut core = Core::new(&p, opts);
    let a = id(&p, "a");
    assert_eq!(start(&mut core, &p, 1), ["a"]);
    assert_eq!(core.attempt(a), 1);
    let t0 = Duration::from_secs(1);
    assert_eq!(
        core.on_failure(a, FailureClass::Retryable, t0),
        FailureDecision::Retry { at: t0 + Duration::from_millis(100) }
    );
    core.sanity_check(&p);
    core.tick(t0 + Duration::from_millis(99));
    assert_eq!(start(&mut core, &p, 1), Vec::<String>::new());
    assert_eq!(core.next_wakeup(), Some(t0 + Duration::from_millis(100)));
    core.tick(t0 + Duration::from_millis(100));
    assert_eq!(start(&mut core, &p, 1), ["a"]);
    assert_eq!(core.attempt(a), 2);
    let t1 = Duration::from_secs(2);
    assert_eq!(
        core.on_failure(a, FailureClass::Retryable, t1),
        FailureDecision::Retry { at: t1 + Duration::from_millis(200) }
    );
    core.tick(t1 + Duration::from_secs(1));
    assert_eq!(start(&mut core, &p, 1), ["a"]);
    assert_eq!(core.on_failure(a, FailureClass::Retryable, t1), FailureDecision::Failed { skipped: 0 });
    assert!(core.is_done());
}

#[test]
fn non_retryable_failures_are_final() {
    let mut p = plan(&[("a", &[], cpu(1))], cpu(1));
    p.tasks[0].retries = 3;
    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    assert_eq!(core.on_failure(0, FailureClass::Final, Duration::ZERO), FailureDecision::Failed { skipped: 0 });
}

#[test]
fn fail_fast_cancels_everything_not_started() {
    let p = plan(&[("a", &[], cpu(1)), ("b", &[], cpu(1)), ("c", &[], cpu(1)), ("d", &["c"], cpu(1))], cpu(2));
    let mut core = Core::new(&p, CoreOptions { fail_fast: true, ..CoreOptions::default() });
    assert_eq!(start(&mut core, &p, 10), ["c", "a"]);
    core.on_failure(id(&p, "a"), FailureClass::Retryable, Duration::ZERO);
    core.sanity_check(&p);
    assert!(core.is_stopped());
    assert_eq!(start(&mut core, &p, 10), Vec::<String>::new());
    core.on_success(id(&p, "c"));
    core.sanity_check(&p);
    assert!(core.is_done());
    let c = core.counts();
    assert_eq!((c.succeeded, c.failed, c.cancelled), (1, 1, 2));
}

#[test]
fn custom_resources_are_accounted() {
    let lic = |n: u64| {
        let mut r = cpu(1);
        r.custom.insert("licence".into(), n * 1000);
        r
    };
    let p = plan(&[("a", &[], lic(1)), ("b", &[], lic(1)), ("c", &[], lic(1))], {
        let mut c = cpu(8);
        c.custom.insert("licence".into(), 2000);
        c
    });
    let mut core = Core::new(&p, CoreOptions::default());
    assert_eq!(start(&mut core, &p, 10), ["a", "b"]);
    core.on_success(0);
    assert_eq!(start(&mut core, &p, 10), ["c"]);
}

#[test]
fn layered_graph_is_linear_and_complete() {
    // 200 layers of 50, each task depending on 2 tasks of the previous layer.
    let (layers, width) = (200usize, 50usize);
    let mut names = vec![];
    for l in 0..layers {
        for w in 0..width {
            names.push(format!("t{l}_{w}"));
        }
    }
    let mut deps_store: Vec<Vec<String>> = vec![];
    for l in 0..layers {
        for w in 0..width {
            deps_store.push(if l == 0 {
                vec![]
            } else {
                vec![format!("t{}_{}", l - 1, w), format!("t{}_{}", l - 1, (w + 1) % width)]
            });
        }
    }
    let deps_refs: Vec<Vec<&str>> = deps_store.iter().map(|d| d.iter().map(|s| s.as_str()).collect()).collect();
    let rows: Vec<(&str, &[&str], Resources)> =
        names.iter().zip(&deps_refs).map(|(n, d)| (n.as_str(), d.as_slice(), cpu(1))).collect();
    let p = plan(&rows, cpu(3));
    let mut core = Core::new(&p, CoreOptions::default());
    let mut running = std::collections::VecDeque::new();
    let mut order = vec![];
    while !core.is_done() {
        let mut out = vec![];
        core.schedule(8, &mut out);
        running.extend(out);
        let t = running.pop_front().unwrap();
        order.push(t);
        core.on_success(t);
    }
    core.sanity_check(&p);
    assert_eq!(order.len(), layers * width);
    let mut pos = vec![0; order.len()];
    for (i, &t) in order.iter().enumerate() {
        pos[t as usize] = i;
    }
    for (i, t) in p.tasks.iter().enumerate() {
        for &d in &t.deps {
            assert!(pos[d as usize] < pos[i]);
        }
    }
}

#[test]
fn worker_loss_is_retried_without_using_retries_until_three_in_a_row() {
    let p = plan(&[("a", &[], cpu(1))], cpu(1));
    let mut core = Core::new(&p, CoreOptions::default());
    let now = Duration::from_secs(1);
    for _ in 0..2 {
        assert_eq!(start(&mut core, &p, 1), ["a"]);
        assert_eq!(core.on_failure(0, FailureClass::WorkerLost, now), FailureDecision::Retry { at: now });
        core.tick(now);
        core.sanity_check(&p);
    }
    assert_eq!(start(&mut core, &p, 1), ["a"]);
    assert_eq!(core.on_failure(0, FailureClass::WorkerLost, now), FailureDecision::Failed { skipped: 0 });
    assert_eq!(core.attempt(0), 3);
}

#[test]
fn a_lost_worker_does_not_consume_task_retries() {
    let mut p = plan(&[("a", &[], cpu(1))], cpu(1));
    p.tasks[0].retries = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    let now = Duration::from_secs(1);
    start(&mut core, &p, 1);
    assert!(matches!(core.on_failure(0, FailureClass::WorkerLost, now), FailureDecision::Retry { .. }));
    core.tick(now);
    start(&mut core, &p, 1);
    // First real failure: one retry left.
    assert!(matches!(core.on_failure(0, FailureClass::Retryable, now), FailureDecision::Retry { .. }));
    core.tick(now + Duration::from_secs(60));
    start(&mut core, &p, 1);
    assert_eq!(core.on_failure(0, FailureClass::Retryable, now), FailureDecision::Failed { skipped: 0 });
}

fn start_lane(core: &mut Core, p: &Plan, lane: usize, max: usize) -> Vec<String> {
    let mut out = vec![];
    core.schedule_lane(lane, max, &mut out);
    core.sanity_check(p);
    ids(p, &out)
}

#[test]
fn a_lane_holds_the_largest_of_its_queued_requests_not_their_sum() {
    // Five 1-cpu tasks and a 2-cpu one under 2 cpus: one lane takes all the
    // small ones (only one of them runs at a time), the other lane has one cpu
    // left, which is not enough for `wide` until lane 0 gives one back.
    let p = plan(
        &[
            ("a", &[], cpu(1)),
            ("b", &[], cpu(1)),
            ("c", &[], cpu(1)),
            ("d", &[], cpu(1)),
            ("e", &[], cpu(1)),
            ("wide", &[], cpu(2)),
        ],
        cpu(2),
    );
    let mut core = Core::new(&p, CoreOptions::default());
    // `wide` has the same bottom level; ids break the tie, so it comes last.
    assert_eq!(start_lane(&mut core, &p, 0, 4), ["a", "b", "c", "d"]);
    assert_eq!(core.free(), &cpu(1));
    assert_eq!((core.counts().running, core.queued()), (4, 3));
    assert_eq!(start_lane(&mut core, &p, 1, 4), ["e"]);
    assert_eq!(core.free(), &cpu(0));
    for t in ["a", "b", "c", "d"] {
        core.on_success(id(&p, t));
        core.sanity_check(&p);
    }
    assert_eq!(core.free(), &cpu(1));
    // Lane 0 is empty; `wide` needs 2 and lane 1 still holds 1.
    assert_eq!(start_lane(&mut core, &p, 0, 4), Vec::<String>::new());
    core.on_success(id(&p, "e"));
    assert_eq!(start_lane(&mut core, &p, 0, 4), ["wide"]);
    assert_eq!(core.free(), &cpu(0));
    core.on_success(id(&p, "wide"));
    core.sanity_check(&p);
    assert!(core.is_done());
    assert_eq!(core.free(), &cpu(2));
}

#[test]
fn a_bigger_task_queued_on_a_lane_raises_what_it_holds() {
    // 4 GiB: lane 0 takes `big` (3 GiB) and `small` (1 GiB) but holds 3 GiB,
    // so `other` (1 GiB) still fits on lane 1.
    let mut p = plan(
        &[("small", &[], mem_gib(1)), ("big", &[], mem_gib(3)), ("other", &[], mem_gib(1))],
        Resources { cpu_milli: 2000, memory: 4 << 30, ..Resources::default() },
    );
    p.tasks[1].priority = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    assert_eq!(start_lane(&mut core, &p, 0, 2), ["big", "small"]);
    assert_eq!(core.free().memory, 1 << 30);
    assert_eq!(start_lane(&mut core, &p, 1, 2), ["other"]);
    assert_eq!(core.free().memory, 0);
    // When `big` ends, lane 0 holds only `small`'s 1 GiB.
    core.on_success(id(&p, "big"));
    core.sanity_check(&p);
    assert_eq!(core.free().memory, 2 << 30);
}

#[test]
fn a_queued_task_that_never_started_goes_back_to_ready_without_an_attempt() {
    // a -> c, b: lane 0 gets a and b; its worker dies running a.
    let p = plan(&[("a", &[], cpu(1)), ("b", &[], cpu(1)), ("c", &["a"], cpu(1))], cpu(1));
    let mut core = Core::new(&p, CoreOptions::default());
    let now = Duration::from_secs(1);
    assert_eq!(start_lane(&mut core, &p, 0, 4), ["a", "b"]);
    assert_eq!(core.on_failure(id(&p, "a"), FailureClass::WorkerLost, now), FailureDecision::Retry { at: now });
    core.unstart(id(&p, "b"));
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "b")), TaskState::Ready);
    assert_eq!(core.attempt(id(&p, "b")), 0);
    assert_eq!(core.free(), &cpu(1));
    core.tick(now);
    assert_eq!(start_lane(&mut core, &p, 1, 4), ["a", "b"]);
    assert_eq!((core.attempt(id(&p, "a")), core.attempt(id(&p, "b"))), (2, 1));
    // After a stop, a task that never started is cancelled instead.
    core.stop();
    core.unstart(id(&p, "b"));
    core.on_success(id(&p, "a"));
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "b")), TaskState::Cancelled);
    assert_eq!(core.state(id(&p, "c")), TaskState::Cancelled);
    assert!(core.is_done());
}
