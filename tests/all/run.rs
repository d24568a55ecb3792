//! `engine run` end to end: the examples on every executor, resources,
//! retries, timeouts, failure propagation, fail-fast, cancellation, reports,
//! traces, and worker crashes under the processes executor.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{EngineRun, Ran, engine, repo_root, report, task};

const EXECUTORS: [&str; 3] = ["sync", "threads", "processes"];

/// Copy an example into a temp dir. Its plugins are stock plugins (`std:NAME`),
/// which the engine under test finds in `TARGET/plugins`.
pub(crate) fn example(name: &str) -> tempfile::TempDir {
    let src = repo_root().join("examples").join(name);
    let dir = tempfile::tempdir().unwrap();
    crate::util::copy_files(&src, dir.path());
    // Make sure every stock plugin is built.
    for p in crate::util::stock_names() {
        crate::util::guest(&p);
    }
    dir
}

/// `engine run DIR/pipeline.toml --no-cache ARGS --report DIR/report.json`
/// (these tests count attempts, so nothing comes from the cache).
fn run_in(dir: &Path, args: &[&str]) -> Ran {
    EngineRun::new(dir).args(["--no-cache"]).args(args).run()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Examples with an `expected/` directory that another test runs, and which.
pub(crate) const EXAMPLES_CHECKED_ELSEWHERE: &[(&str, &str)] =
    &[("languages", "tests/all/languages.rs, with the guest-language toolchains")];

/// The examples that have an `expected/` directory (`EXAMPLES/NAME/expected/`), sorted.
pub(crate) fn examples_with_expected(examples: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected").is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file under `dir`, relative to it (`commands/counts.tsv`), sorted;
/// none if `dir` does not exist.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// How the files under `out` differ from those under `expected`, one line
/// per file missing, extra or with other bytes.
pub(crate) fn output_differences(out: &Path, expected: &Path) -> Vec<String> {
    let (got, want) = (files_under(out), files_under(expected));
    let mut diff = Vec::new();
    for f in &want {
        if !got.contains(f) {
            diff.push(format!("out/{f} was not written"));
        } else if std::fs::read(out.join(f)).unwrap() != std::fs::read(expected.join(f)).unwrap() {
            diff.push(format!("out/{f} differs from expected/{f}:\n{}", text(&std::fs::read(out.join(f)).unwrap())));
        }
    }
    for f in got.iter().filter(|f| !want.contains(f)) {
        diff.push(format!("out/{f} is not in expected/"));
    }
    diff
}

/// Every example with an `expected/` directory runs on every executor and
/// writes exactly the files of `expected/`, byte for byte.
#[test]
fn examples_give_the_expected_bytes_on_every_executor() {
    let examples = examples_with_expected(&repo_root().join("examples"));
    for (name, by) in EXAMPLES_CHECKED_ELSEWHERE {
        assert!(examples.iter().any(|e| e == name), "examples/{name}/expected/ (checked by {by}) is gone");
    }
    let here: Vec<&String> =
        examples.iter().filter(|e| !EXAMPLES_CHECKED_ELSEWHERE.iter().any(|(n, _)| n == e)).collect();
    assert!(!here.is_empty(), "no example has an expected/ directory");
    for name in here {
        let expected_dir = repo_root().join("examples").join(name).join("expected");
        for ex in EXECUTORS {
            let dir = example(name);
            let o = run_in(dir.path(), &["--executor", ex, "--workers", "2"]).ok();
            let stdout = o.stdout.clone();
            assert!(stdout.starts_with("succeeded: "), "{stdout}");
            let diff = output_differences(&dir.path().join("out"), &expected_dir);
            assert!(diff.is_empty(), "examples/{name} on {ex}:\n{}", diff.join("\n"));
        }
    }
}

#[test]
fn the_example_check_sees_missing_extra_and_different_outputs() {
    // The check itself must be able to fail.
    let t = tempfile::tempdir().unwrap();
    let write = |p: &str, b: &str| {
        let p = t.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    };
    write("examples/b/expected/x.txt", "x\n");
    write("examples/b/expected/sub/z.txt", "z\n");
    write("examples/a/pipeline.toml", "");
    write("examples/c/expected/same.txt", "s\n");
    assert_eq!(examples_with_expected(&t.path().join("examples")), ["b", "c"]);
    write("out/x.txt", "y\n");
    write("out/extra.txt", "e\n");
    let expected = t.path().join("examples/b/expected");
    assert_eq!(
        output_differences(&t.path().join("out"), &expected),
        [
            "out/sub/z.txt was not written",
            "out/x.txt differs from expected/x.txt:\ny\n",
            "out/extra.txt is not in expected/",
        ]
    );
    assert_eq!(output_differences(&t.path().join("nothing"), &expected).len(), 2);
    write("same/same.txt", "s\n");
    assert!(output_differences(&t.path().join("same"), &t.path().join("examples/c/expected")).is_empty());
}

/// A pipeline in a temp dir, with the test guests as plugins.
pub(crate) fn pipeline(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut plugins = String::from("[plugins]\n");
    for g in ["sleep_ms", "flaky", "spin", "noop", "echo"] {
        plugins.push_str(&format!("{g} = \"{}\"\n", crate::util::guest(g).display()));
    }
    let text = format!("[pipeline]\nname = \"t\"\n\n{plugins}\n{body}");
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

/// The largest number of trace events that overlap in time.
fn max_overlap(trace: &Value) -> usize {
    let mut edges = vec![];
    for e in trace["traceEvents"].as_array().unwrap() {
        if e["ph"] == "X" {
            let ts = e["ts"].as_u64().unwrap();
            edges.push((ts, 1i32));
            edges.push((ts + e["dur"].as_u64().unwrap(), -1));
        }
    }
    edges.sort();
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in edges {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

#[test]
fn memory_requests_bound_concurrency() {
    // 8 tasks of 1 GiB each under a 2 GiB capacity (and 8 cpus, 8 workers).
    let dir = pipeline(
        r#"[resources]
cpu = 8
memory = "2GiB"

[tasks.s]
plugin = "sleep_ms"
foreach = { i = { range = [0, 8] } }
params = { ms = 60 }
resources = { cpu = 1, memory = "1GiB" }
"#,
    );
    let trace = dir.path().join("trace.json");
    run_in(dir.path(), &["--workers", "8", "--trace", trace.to_str().unwrap()]).ok();
    let t: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X").count();
    assert_eq!(events, 8);
    let overlap = max_overlap(&t);
    assert!((1..=2).contains(&overlap), "{overlap} tasks of 1GiB ran at once under 2GiB");
    // One named lane per worker that ran something (any of the 8 may have).
    let ev = t["traceEvents"].as_array().unwrap();
    for x in ev.iter().filter(|e| e["ph"] == "X") {
        let tid = &x["tid"];
        let lane = format!("worker {tid}");
        assert!(
            ev.iter().any(|e| e["ph"] == "M" && e["tid"] == *tid && e["args"]["name"] == lane),
            "no lane for {tid}"
        );
    }
}

#[test]
fn a_failed_task_skips_its_dependents_and_independent_work_finishes() {
    //   bad ──► after ──► last
    //   good
    let dir = pipeline(
        r#"[tasks.bad]
plugin = "flaky"
params = { fail = true }

[tasks.after]
plugin = "echo"
inputs = { in = "bad" }

[tasks.last]
plugin = "echo"
inputs = { in = "after" }

[tasks.good]
plugin = "sleep_ms"
params = { ms = 50 }
"#,
    );
    let o = run_in(dir.path(), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr.clone());
    let stderr = o.stderr.clone();
    assert!(
        stderr.contains("error: task `bad` failed: task error: failing as asked (2 dependent tasks skipped)"),
        "{stderr}"
    );
    assert!(
        o.stdout.clone().starts_with("failed: 4 tasks: 1 succeeded (0 cached), 1 failed, 2 skipped, 0 cancelled in ")
    );
    let r = report(dir.path());
    assert_eq!(r["status"], "failed");
    assert_eq!(task(&r, "bad")["state"], "failed");
    assert_eq!(task(&r, "bad")["error"]["kind"], "error");
    assert_eq!(task(&r, "bad")["error"]["message"], "task error: failing as asked");
    // Outputs of a failed attempt are never published.
    assert_eq!(task(&r, "bad")["outputs"], serde_json::json!({}));
    assert_eq!(task(&r, "after")["state"], "skipped");
    assert_eq!(task(&r, "last")["state"], "skipped");
    assert_eq!(task(&r, "good")["state"], "succeeded");
    assert_eq!(task(&r, "good")["outputs"]["out"]["len"], 9);
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let body = r#"[resources]
cpu = 1

[tasks.bad]
plugin = "flaky"
params = { fail = true }
priority = 10

[tasks.later]
plugin = "sleep_ms"
foreach = { i = { range = [0, 5] } }
params = { ms = 10 }
"#;
    // Default: independent tasks still run.
    let dir = pipeline(body);
    let o = run_in(dir.path(), &[]);
    assert_eq!(o.code, 1);
    assert_eq!(report(dir.path())["counts"]["succeeded"], 5);
    // --fail-fast: nothing new starts after `bad` fails.
    let dir = pipeline(body);
    let o = run_in(dir.path(), &["--fail-fast"]);
    assert_eq!(o.code, 1);
    let r = report(dir.path());
    assert_eq!(r["counts"]["succeeded"], 0);
    assert_eq!(r["counts"]["cancelled"], 5);
    assert_eq!(task(&r, "later[0]")["state"], "cancelled");
}

#[test]
fn a_spinning_task_stops_at_its_timeout_while_others_finish() {
    let dir = pipeline(
        r#"[tasks.spin]
plugin = "spin"
timeout = "300ms"

[tasks.ok]
plugin = "sleep_ms"
params = { ms = 100 }
"#,
    );
    let started = Instant::now();
    let o = run_in(dir.path(), &[]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(o.code, 1);
    assert!(o.stderr.clone().contains("error: task `spin` failed: timed out after 300.0ms"), "{}", o.stderr.clone());
    let r = report(dir.path());
    assert_eq!(task(&r, "spin")["error"]["kind"], "timeout");
    assert_eq!(task(&r, "ok")["state"], "succeeded");
}

#[test]
fn retries_are_attempted_with_backoff_and_reported() {
    let dir = pipeline(
        r#"[tasks.bad]
plugin = "flaky"
params = { fail = true }
retries = 2
"#,
    );
    let o = run_in(dir.path(), &[]);
    assert_eq!(o.code, 1);
    let stderr = o.stderr.clone();
    assert!(stderr.contains("task `bad` failed (attempt 1 of 3): task error: failing as asked; retrying"), "{stderr}");
    assert!(stderr.contains("task `bad` failed (attempt 2 of 3): task error: failing as asked; retrying"), "{stderr}");
    assert!(stderr.contains("error: task `bad` failed: task error: failing as asked"), "{stderr}");
    assert_eq!(task(&report(dir.path()), "bad")["attempts"], 3);
}

#[test]
fn a_task_that_fails_on_its_first_attempt_succeeds_on_retry() {
    let dir = pipeline(
        r#"[tasks.once]
plugin = "flaky"
params = { fail_attempts = 1 }
retries = 1

[tasks.after]
plugin = "echo"
inputs = { in = "once" }
"#,
    );
    let o = run_in(dir.path(), &[]).ok();
    let stderr = o.stderr.clone();
    assert!(
        stderr.contains("task `once` failed (attempt 1 of 2): task error: failing attempt 1 as asked; retrying"),
        "{stderr}"
    );
    let r = report(dir.path());
    assert_eq!(task(&r, "once")["attempts"], 2);
    assert_eq!(task(&r, "once")["state"], "succeeded");
    assert_eq!(task(&r, "once")["outputs"]["out"]["len"], 3);
    assert_eq!(task(&r, "after")["state"], "succeeded");
}

#[test]
fn ctrl_c_cancels_running_tasks_and_exits_130() {
    let dir = pipeline(
        r#"[tasks.spin]
plugin = "spin"
foreach = { i = { range = [0, 4] } }
"#,
    );
    let mut cmd = engine();
    cmd.args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--report", dir.path().join("report.json").to_str().unwrap()]);
    let (o, _) = crate::util::interrupted(cmd, |_| std::thread::sleep(Duration::from_millis(1500)));
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("interrupted: cancelling running tasks"));
    let r = report(dir.path());
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["counts"]["cancelled"], 4);
}

#[test]
fn killed_workers_are_replaced_and_the_run_completes() {
    let dir = pipeline(
        r#"[tasks.s]
plugin = "sleep_ms"
foreach = { i = { range = [0, 80] } }
params = { ms = 150 }
"#,
    );
    // 6 s of work on 2 workers: long enough for 3 kills 150 ms apart on a busy machine
    // (the kills only start once the workers exist).
    let mut child = engine()
        .args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--executor", "processes", "--workers", "2"])
        .args(["--report", dir.path().join("report.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while kills < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        let workers = children_of(child.id());
        if let Some(&pid) = workers.get(kills % workers.len().max(1)) {
            // SAFETY: killing a worker process we own.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            kills += 1;
        }
    }
    if kills != 3 {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("{kills} kills in 30 s; the engine ({}) said:\n{}{}", o.status, text(&o.stdout), text(&o.stderr));
    }
    let status = child.wait().unwrap();
    let r = report(dir.path());
    assert!(status.success(), "{r}");
    assert_eq!(r["counts"]["succeeded"], 80);
    for i in 0..80 {
        assert_eq!(task(&r, &format!("s[{i}]"))["outputs"]["out"]["len"], "slept 150\n".len());
    }
}

#[test]
fn a_task_that_crashes_its_worker_fails_alone_with_worker_lost() {
    let dir = pipeline(
        r#"[tasks.crash]
plugin = "noop"

[tasks.fine]
plugin = "sleep_ms"
foreach = { i = { range = [0, 4] } }
params = { ms = 20 }
"#,
    );
    let o = engine()
        .env("ENGINE_TEST_WORKER_ABORT_ON", "crash")
        .args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--executor", "processes", "--workers", "2"])
        .args(["--report", dir.path().join("report.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let r = report(dir.path());
    let crash = task(&r, "crash");
    assert_eq!(crash["state"], "failed");
    assert_eq!(crash["attempts"], 3);
    assert_eq!(crash["error"]["kind"], "worker_lost");
    let msg = crash["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("worker lost: worker ") && msg.ends_with("was killed by signal 6 (SIGABRT)"), "{msg}");
    assert_eq!(r["counts"]["succeeded"], 4);
    // A lost worker is not one of the task's retries: no "attempt N of M".
    let stderr = text(&o.stderr);
    let again = stderr
        .lines()
        .filter(|l| {
            l.starts_with("task `crash` failed: worker lost: worker ")
                && l.ends_with(
                    "was killed by signal 6 (SIGABRT); starting it again (a lost worker does not use its retries)",
                )
        })
        .count();
    assert_eq!(again, 2, "{stderr}");
    // Each lost attempt ran from when it was handed out until the loss was seen.
    let mut last_end = 0;
    let earlier = crash["earlier_attempts"].as_array().unwrap();
    for a in earlier.iter().chain([crash]) {
        let (start, took) = (a["start_us"].as_u64().unwrap(), a["duration_us"].as_u64().unwrap());
        assert!(start > 0 && start >= last_end, "{crash}");
        last_end = start + took;
    }
}

#[test]
fn a_crashing_task_queued_among_short_ones_charges_only_itself() {
    // Short tasks are queued several deep per worker; `crash` (priority 1,
    // after fine[0]) lands in a queue with tasks behind it. Each crash charges
    // `crash` one attempt; the tasks queued behind it start again elsewhere
    // without being charged one.
    let dir = pipeline(
        r#"[tasks.fine]
plugin = "sleep_ms"
foreach = { i = { range = [0, 300] } }
params = { ms = 0 }

[tasks.crash]
plugin = "sleep_ms"
priority = 1
inputs = { x = "fine[0]" }
params = { ms = 0 }
"#,
    );
    let o = engine()
        .env("ENGINE_TEST_WORKER_ABORT_ON", "crash")
        .args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--executor", "processes", "--workers", "2"])
        .args(["--report", dir.path().join("report.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r = report(dir.path());
    let crash = task(&r, "crash");
    assert_eq!(crash["state"], "failed");
    assert_eq!(crash["attempts"], 3);
    assert_eq!(crash["error"]["kind"], "worker_lost");
    assert_eq!(r["counts"]["succeeded"], 300);
    for i in 0..300 {
        let t = task(&r, &format!("fine[{i}]"));
        assert_eq!((&t["state"], &t["attempts"]), (&Value::from("succeeded"), &Value::from(1)), "fine[{i}]");
    }
}

#[test]
fn killing_workers_under_short_tasks_charges_only_the_running_tasks() {
    let n = 20_000;
    let dir = pipeline(&format!(
        r#"[tasks.s]
plugin = "sleep_ms"
foreach = {{ i = {{ range = [0, {n}] }} }}
params = {{ ms = 0 }}
"#
    ));
    let mut child = engine()
        .args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--executor", "processes", "--workers", "2", "--quiet"])
        .args(["--report", dir.path().join("report.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for the workers to start running tasks, then kill one every 20ms.
    while kills < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(if kills == 0 { 300 } else { 20 }));
        let workers = children_of(child.id());
        if let Some(&pid) = workers.get(kills % workers.len().max(1)) {
            // SAFETY: killing a worker process we own.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            kills += 1;
        }
    }
    assert_eq!(kills, 3);
    let status = child.wait().unwrap();
    let r = report(dir.path());
    assert!(status.success(), "{}", r["counts"]);
    assert_eq!(r["counts"]["succeeded"], n);
    let charged: u64 = r["tasks"].as_array().unwrap().iter().map(|t| t["attempts"].as_u64().unwrap() - 1).sum();
    assert!(charged <= kills as u64, "{charged} extra attempts for {kills} killed workers");
}

#[test]
fn requests_beyond_the_machine_are_rejected_before_running() {
    let dir = pipeline(
        r#"[resources]
gpu = 0

[tasks.train]
plugin = "noop"
resources = { gpu = 1 }
"#,
    );
    let o = run_in(dir.path(), &[]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.clone().contains("gpu"), "{}", o.stderr.clone());
    assert!(!dir.path().join(".engine-store").exists(), "nothing may run or be stored");
}

/// PIDs of the `engine worker` children of `pid` (not the `engine
/// compile-plugin` processes that compile plugins before the run).
fn children_of(pid: u32) -> Vec<u32> {
    let path = PathBuf::from(format!("/proc/{pid}/task/{pid}/children"));
    let is_worker = |c: &u32| {
        let cmdline = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
        cmdline.split(|b| *b == 0).nth(1) == Some(b"worker".as_slice())
    };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(is_worker)
        .collect()
}

#[test]
fn workers_that_cannot_restart_stop_the_run_instead_of_hanging() {
    // One worker; once it runs the first task, its cache directory becomes a
    // file, so every replacement fails at start. The run must end, not hang.
    let dir = pipeline(
        r#"[tasks.s]
plugin = "sleep_ms"
foreach = { i = { range = [0, 3] } }
params = { ms = 2000 }
"#,
    );
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("cache");
    let child = engine()
        .env("ENGINE_CACHE_DIR", &cache_dir)
        .args(["run", "--no-cache"])
        .arg(dir.path().join("pipeline.toml"))
        .args(["--executor", "processes", "--workers", "1"])
        .args(["--report", dir.path().join("report.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(&pid) = children_of(child.id()).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no worker started");
    };
    // Let the worker start its first task, then break the cache and kill it.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_dir_all(&cache_dir).unwrap();
    std::fs::write(&cache_dir, "not a directory").unwrap();
    // SAFETY: killing a worker process we own.
    unsafe { libc::kill(worker as i32, libc::SIGKILL) };
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: the run was stopped, no worker is left to run tasks: worker 0 failed to start 3 times in a row (last: "),
        "{stderr}"
    );
    let r = report(dir.path());
    assert_eq!(r["status"], "failed");
    assert_eq!(r["counts"]["succeeded"], 0);
    assert_eq!(task(&r, "s[0]")["error"]["kind"], "worker_lost");
    assert_eq!(r["counts"]["cancelled"], 2);
}

/// `examples/sales` takes its data directory and its top-k from `--set`; a
/// directory without `*.csv.gz` files is a check-time error.
#[test]
fn the_sales_example_takes_vars_from_the_command_line() {
    let dir = example("sales");
    std::fs::create_dir_all(dir.path().join("more")).unwrap();
    for m in ["a", "b"] {
        std::fs::copy(dir.path().join("data/2024-mar.csv.gz"), dir.path().join(format!("more/{m}.csv.gz"))).unwrap();
    }
    run_in(dir.path(), &["--set", "data=more", "--set", "top=3", "--set", "column=units"]).ok();
    assert_eq!(std::fs::read_to_string(dir.path().join("out/top.csv")).unwrap(), "kiwi,40\npear,22\nfig,12\n");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let o = run_in(dir.path(), &["--set", "data=empty"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .clone()
            .starts_with("error: glob `empty/*.csv.gz` of foreach variable `month` of task `unzip` matches no files\n"),
        "{}",
        o.stderr.clone()
    );
}

#[test]
fn an_outputs_entry_a_command_never_wrote_is_named_in_the_summary() {
    // A command plugin has no metadata, so check cannot know its outputs.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "[pipeline]\nname = \"p\"\n[plugins]\nprobe = \"{}\"\n[tasks.a]\nplugin = \"probe\"\nargs = [\"tmp\"]\n\
             [outputs]\n\"res.txt\" = \"a.result\"\n\"code.txt\" = \"a.exit_code\"\n",
            crate::util::guest("cmd_probe").display()
        ),
    )
    .unwrap();
    for executor in ["threads", "processes"] {
        let o = run_in(dir.path(), &["--executor", executor]);
        let stdout = o.stdout.clone();
        assert_eq!(o.code, 1, "{executor}: {stdout}{}", o.stderr.clone());
        assert!(stdout.starts_with("failed: 1 tasks: 1 succeeded (0 cached), 0 failed, 0 skipped, 0 cancelled in "));
        let res = dir.path().canonicalize().unwrap().join("res.txt");
        assert!(
            stdout.contains(&format!("\nnot written: {} (task `a` produced no output `result`)\n", res.display())),
            "{executor}: {stdout}"
        );
        assert!(!res.exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("code.txt")).unwrap(), "0\n");
    }
}
