//! Scheduler core tests: small plans drawn in comments, every step followed by
//! `sanity_check`.

use std::time::Duration;

use super::*;
use crate::plan::{MapSpec, PluginSpec, Resources, TaskSpec};

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
                map: None,
            }
        })
        .collect();
    Plan {
        name: "t".into(),
        description: String::new(),
        pipeline_file: "p.toml".into(),
        base_dir: ".".into(),
        plugins: vec![PluginSpec {
            name: "p".into(),
            path: "p.wasm".into(),
            sha256: None,
            digest: None,
            max_compile_time: None,
        }],
        tasks,
        outputs: vec![],
        capacity,
        capacity_detected: vec![],
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

/// The id of task `t`, an expanded child (`count[1]`) included.
fn name(core: &Core, p: &Plan, t: TaskId) -> String {
    match core.parent(t) {
        Some(tpl) => {
            let first = core.children(tpl).unwrap().start;
            format!("{}[{}]", p.tasks[tpl as usize].id, t - first)
        }
        None => p.tasks[t as usize].id.clone(),
    }
}

fn start(core: &mut Core, p: &Plan, max: usize) -> Vec<String> {
    let mut out = vec![];
    core.schedule(max, &mut out);
    core.sanity_check(p);
    out.iter().map(|&t| name(core, p, t)).collect()
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

/// Make task `t` of `p` map over the outputs of `producer` (which must be
/// among its deps).
fn map_over(p: &mut Plan, t: &str, producer: &str) {
    let (t, producer) = (id(p, t), id(p, producer));
    assert!(p.tasks[t as usize].deps.contains(&producer));
    p.tasks[t as usize].map = Some(Box::new(MapSpec { task: producer, lines: None, max_items: None }));
}

fn expansions(core: &mut Core, p: &Plan) -> Vec<String> {
    let mut v = vec![];
    core.expansions(&mut v);
    core.sanity_check(p);
    ids(p, &v)
}

fn by_name(core: &Core, p: &Plan, s: &str) -> TaskId {
    (0..core.len() as TaskId).find(|&t| name(core, p, t) == s).unwrap()
}

/// split -> count (map split.*) -> merge (count[*]), plus `other`.
fn fan_out_plan(capacity: u64) -> Plan {
    let mut p = plan(
        &[("split", &[], cpu(1)), ("count", &["split"], cpu(1)), ("merge", &["count"], cpu(1)), ("other", &[], cpu(1))],
        cpu(capacity),
    );
    map_over(&mut p, "count", "split");
    p
}

#[test]
fn a_mapped_task_expands_when_its_producer_succeeds_and_its_collector_waits_for_every_child() {
    let p = fan_out_plan(2);
    let mut core = Core::new(&p, CoreOptions::default());
    core.sanity_check(&p);
    assert_eq!(start(&mut core, &p, 10), ["split", "other"]);
    assert_eq!(expansions(&mut core, &p), Vec::<String>::new());
    core.on_success(id(&p, "split"));
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "count")), TaskState::Expanding);
    assert!(!core.is_done());
    // Listed until expanded; nothing else is ready meanwhile.
    assert_eq!(expansions(&mut core, &p), ["count"]);
    assert_eq!(expansions(&mut core, &p), ["count"]);
    assert_eq!(start(&mut core, &p, 10), Vec::<String>::new());
    assert_eq!(core.expand(id(&p, "count"), 3), 4..7);
    core.sanity_check(&p);
    assert_eq!(expansions(&mut core, &p), Vec::<String>::new());
    assert_eq!((core.counts().total, core.counts().ready), (7, 3));
    assert_eq!(core.state(id(&p, "count")), TaskState::Waiting { unfinished_deps: 3 });
    // One cpu is free (`other` holds the other): children start in order.
    assert_eq!(start(&mut core, &p, 10), ["count[0]"]);
    core.on_success(id(&p, "other"));
    assert_eq!(start(&mut core, &p, 10), ["count[1]"]);
    for c in ["count[0]", "count[1]"] {
        core.on_success(by_name(&core, &p, c));
        core.sanity_check(&p);
    }
    assert_eq!(start(&mut core, &p, 10), ["count[2]"]);
    assert_eq!(core.state(id(&p, "merge")), TaskState::Waiting { unfinished_deps: 1 });
    core.on_success(by_name(&core, &p, "count[2]"));
    core.sanity_check(&p);
    // The template succeeded without running; the collector is ready.
    assert_eq!(core.state(id(&p, "count")), TaskState::Succeeded);
    assert_eq!(core.attempt(id(&p, "count")), 0);
    assert_eq!(start(&mut core, &p, 10), ["merge"]);
    core.on_success(id(&p, "merge"));
    core.sanity_check(&p);
    assert!(core.is_done());
    assert_eq!(core.counts().succeeded, 7);
}

#[test]
fn a_retried_producer_expands_once_when_it_finally_succeeds() {
    let mut p = fan_out_plan(4);
    p.tasks[0].retries = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    let split = id(&p, "split");
    assert_eq!(start(&mut core, &p, 1), ["split"]);
    let t0 = Duration::from_secs(1);
    assert!(matches!(core.on_failure(split, FailureClass::Retryable, t0), FailureDecision::Retry { .. }));
    core.sanity_check(&p);
    // The failed attempt expands nothing; the template still waits.
    assert_eq!(expansions(&mut core, &p), Vec::<String>::new());
    assert_eq!(core.state(id(&p, "count")), TaskState::Waiting { unfinished_deps: 1 });
    core.tick(t0 + Duration::from_secs(1));
    assert_eq!(start(&mut core, &p, 1), ["split"]);
    assert_eq!(core.attempt(split), 2);
    core.on_success(split);
    assert_eq!(expansions(&mut core, &p), ["count"]);
    core.expand(id(&p, "count"), 2);
    core.sanity_check(&p);
    assert_eq!(start(&mut core, &p, 10), ["count[0]", "count[1]", "other"]);
    for c in ["count[0]", "count[1]", "other"] {
        core.on_success(by_name(&core, &p, c));
        core.sanity_check(&p);
    }
    assert_eq!(start(&mut core, &p, 10), ["merge"]);
    core.on_success(id(&p, "merge"));
    assert!(core.is_done());
    assert_eq!((core.counts().total, core.counts().succeeded), (6, 6));
}

#[test]
fn a_child_that_fails_skips_the_collector_and_its_siblings_run_on() {
    let mut p = fan_out_plan(8);
    // Children inherit the template's retries.
    p.tasks[1].retries = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    core.on_success(id(&p, "split"));
    core.expand(id(&p, "count"), 3);
    assert_eq!(start(&mut core, &p, 10), ["count[0]", "count[1]", "count[2]", "other"]);
    let c1 = by_name(&core, &p, "count[1]");
    let now = Duration::from_secs(1);
    assert!(matches!(core.on_failure(c1, FailureClass::Retryable, now), FailureDecision::Retry { .. }));
    core.sanity_check(&p);
    core.tick(now + Duration::from_secs(1));
    assert_eq!(start(&mut core, &p, 10), ["count[1]"]);
    assert_eq!(core.on_failure(c1, FailureClass::Retryable, now), FailureDecision::Failed { skipped: 2 });
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "count")), TaskState::Skipped);
    assert_eq!(core.state(id(&p, "merge")), TaskState::Skipped);
    for c in ["count[0]", "count[2]", "other"] {
        assert_eq!(core.state(by_name(&core, &p, c)), TaskState::Running);
        core.on_success(by_name(&core, &p, c));
        core.sanity_check(&p);
    }
    assert!(core.is_done());
    let c = core.counts();
    assert_eq!((c.total, c.succeeded, c.failed, c.skipped), (7, 4, 1, 2));
}

#[test]
fn zero_items_succeed_at_once_and_a_failed_expansion_skips_the_collector() {
    let p = fan_out_plan(4);
    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    core.on_success(id(&p, "split"));
    assert_eq!(core.expand(id(&p, "count"), 0), 4..4);
    core.sanity_check(&p);
    assert_eq!(core.state(id(&p, "count")), TaskState::Succeeded);
    assert_eq!(start(&mut core, &p, 10), ["merge", "other"]);

    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    core.on_success(id(&p, "split"));
    assert_eq!(core.fail_expansion(id(&p, "count")), 1);
    core.sanity_check(&p);
    assert_eq!(expansions(&mut core, &p), Vec::<String>::new());
    assert_eq!((core.state(id(&p, "count")), core.state(id(&p, "merge"))), (TaskState::Failed, TaskState::Skipped));
    assert_eq!(start(&mut core, &p, 10), ["other"]);
}

#[test]
fn a_stop_cancels_a_template_waiting_for_expansion_and_unstarted_children() {
    let p = fan_out_plan(1);
    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    core.on_success(id(&p, "split"));
    core.expand(id(&p, "count"), 2);
    assert_eq!(start(&mut core, &p, 1), ["count[0]"]);
    core.stop();
    core.sanity_check(&p);
    core.on_success(by_name(&core, &p, "count[0]"));
    core.sanity_check(&p);
    assert!(core.is_done());
    let c = core.counts();
    // count[1], the template, merge and other.
    assert_eq!((c.succeeded, c.cancelled), (2, 4));

    let mut core = Core::new(&p, CoreOptions::default());
    start(&mut core, &p, 1);
    core.on_success(id(&p, "split"));
    core.stop();
    core.sanity_check(&p);
    assert_eq!(expansions(&mut core, &p), Vec::<String>::new());
    assert_eq!(core.state(id(&p, "count")), TaskState::Cancelled);
    assert!(core.is_done());
}

/// A tiny deterministic generator for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random graph of up to 14 tasks: each depends on a few earlier ones;
/// some map over an earlier task that is not itself mapped (and depend on it).
fn random_plan(rng: &mut Rng) -> Plan {
    let n = 2 + rng.below(13) as usize;
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let mut deps: Vec<Vec<&str>> = vec![];
    let mut maps: Vec<Option<usize>> = vec![];
    for i in 0..n {
        let mut d: Vec<&str> = vec![];
        for name in names.iter().take(i) {
            if rng.below(4) == 0 {
                d.push(name);
            }
        }
        let producers: Vec<usize> = (0..i).filter(|&j| maps[j].is_none()).collect();
        let m =
            (!producers.is_empty() && rng.below(3) == 0).then(|| producers[rng.below(producers.len() as u64) as usize]);
        if let Some(j) = m
            && !d.contains(&names[j].as_str())
        {
            d.push(&names[j]);
        }
        deps.push(d);
        maps.push(m);
    }
    let cpus: Vec<Resources> = (0..n).map(|_| cpu(1 + rng.below(2))).collect();
    let rows: Vec<(&str, &[&str], Resources)> =
        (0..n).map(|i| (names[i].as_str(), deps[i].as_slice(), cpus[i].clone())).collect();
    let mut p = plan(&rows, cpu(3));
    for (i, m) in maps.iter().enumerate() {
        p.tasks[i].retries = rng.below(3) as u32;
        p.tasks[i].priority = rng.below(2) as i32;
        if let Some(j) = m {
            p.tasks[i].map = Some(Box::new(MapSpec { task: *j as TaskId, lines: None, max_items: None }));
        }
    }
    p
}

/// Drive a core through random steps (scheduling with and without lanes,
/// successes, failures of every class, unstarts, ticks, expansions of 0..5
/// children, failed expansions, the odd stop), checking the invariants after
/// every step; then check the end state.
fn random_run(seed: u64) {
    let mut rng = Rng(seed | 1);
    let p = random_plan(&mut rng);
    let fail_fast = rng.below(8) == 0;
    let mut core = Core::new(&p, CoreOptions { fail_fast, ..CoreOptions::default() });
    core.sanity_check(&p);
    let mut running: Vec<(TaskId, bool)> = vec![];
    let mut now = Duration::ZERO;
    let mut expanded = 0u32;
    for step in 0.. {
        assert!(step < 10_000, "the run does not end");
        if core.is_done() && running.is_empty() {
            break;
        }
        let mut pending = vec![];
        core.expansions(&mut pending);
        match rng.below(10) {
            0 | 1 if !pending.is_empty() => {
                let t = pending[rng.below(pending.len() as u64) as usize];
                if rng.below(6) == 0 {
                    core.fail_expansion(t);
                } else {
                    let n = rng.below(5) as u32;
                    let r = core.expand(t, n);
                    assert_eq!(r.len() as u32, n);
                    expanded += n;
                }
            }
            2 | 3 => {
                let mut out = vec![];
                let lane = rng.below(3);
                if lane == 2 {
                    core.schedule(1 + rng.below(3) as usize, &mut out);
                } else {
                    core.schedule_lane(lane as usize, 1 + rng.below(3) as usize, &mut out);
                }
                running.extend(out.into_iter().map(|t| (t, lane != 2)));
            }
            4..=8 if !running.is_empty() => {
                let (t, on_lane) = running.swap_remove(rng.below(running.len() as u64) as usize);
                match rng.below(10) {
                    0 => {
                        core.on_failure(t, FailureClass::Retryable, now);
                    }
                    1 => {
                        core.on_failure(t, FailureClass::WorkerLost, now);
                    }
                    2 if rng.below(3) == 0 => {
                        core.on_failure(t, FailureClass::Final, now);
                    }
                    3 if on_lane => core.unstart(t),
                    _ => core.on_success(t),
                }
            }
            9 if rng.below(20) == 0 => core.stop(),
            _ => {
                now += Duration::from_millis(rng.below(3000));
                core.tick(now);
            }
        }
        core.sanity_check(&p);
        // Nothing left to do but wait for backoff: let time pass.
        if running.is_empty()
            && pending.is_empty()
            && core.counts().ready == 0
            && let Some(at) = core.next_wakeup()
        {
            now = now.max(at);
            core.tick(now);
            core.sanity_check(&p);
        }
    }
    let c = core.counts();
    assert_eq!(c.total as usize, p.tasks.len() + expanded as usize);
    assert_eq!(c.succeeded + c.failed + c.skipped + c.cancelled, c.total);
    for t in 0..p.tasks.len() as TaskId {
        if p.tasks[t as usize].map.is_none() {
            continue;
        }
        // A template succeeded exactly when it was expanded and every child
        // succeeded (a stop cancels it even when its running children succeed).
        let children_ok =
            core.children(t).is_some_and(|r| r.into_iter().all(|c| core.state(c) == TaskState::Succeeded));
        let succeeded = core.state(t) == TaskState::Succeeded;
        assert!(!succeeded || children_ok, "template {t} succeeded before its children");
        assert!(succeeded || !children_ok || core.is_stopped(), "template {t} is {:?}", core.state(t));
        assert_eq!(core.attempt(t), 0, "template {t} never runs");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    #[test]
    fn random_graphs_with_dynamic_fan_out_keep_the_invariants(seed in proptest::prelude::any::<u64>()) {
        random_run(seed);
    }
}

#[test]
fn the_ready_log_names_each_task_as_it_becomes_ready() {
    //   a   e
    //  / \
    // b   c (retried once)
    let mut p = plan(&[("a", &[], cpu(1)), ("b", &["a"], cpu(1)), ("c", &["a"], cpu(1)), ("e", &[], cpu(1))], cpu(4));
    p.tasks[2].retries = 1;
    let mut core = Core::new(&p, CoreOptions::default());
    let mut log = vec![];
    core.take_ready(&mut log);
    assert!(log.is_empty(), "off until asked");
    core.log_ready();
    core.take_ready(&mut log);
    assert_eq!(ids(&p, &log), ["a", "e"]);
    log.clear();
    assert_eq!(start(&mut core, &p, 10), ["a", "e"]);
    core.on_success(id(&p, "a"));
    core.take_ready(&mut log);
    assert_eq!(ids(&p, &log), ["b", "c"]);
    log.clear();
    assert_eq!(start(&mut core, &p, 10), ["b", "c"]);
    let t0 = Duration::from_secs(1);
    assert!(matches!(core.on_failure(id(&p, "c"), FailureClass::Retryable, t0), FailureDecision::Retry { .. }));
    core.take_ready(&mut log);
    assert!(log.is_empty(), "in backoff, not ready");
    core.tick(t0 + Duration::from_secs(1));
    core.take_ready(&mut log);
    assert_eq!(ids(&p, &log), ["c"]);
    core.sanity_check(&p);
}
