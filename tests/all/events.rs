//! `engine run --events FILE`: the exact event sequence of a small pipeline
//! (a retry, a failure with a skipped dependent, a cached rerun), on the
//! threads and processes executors, and the error for a file that cannot be
//! created.

use serde_json::{Value, json};

use crate::util::{EngineRun, guest, task};

/// once (fails its first attempt) -> after -> bad (exits 3) -> last (skipped)
fn chain() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[pipeline]
name = "ev"

[plugins]
flaky = "{}"
echo = "{}"
probe = "{}"

[tasks.once]
plugin = "flaky"
params = {{ fail_attempts = 1 }}
retries = 1

[tasks.after]
plugin = "echo"
inputs = {{ in = "once" }}

[tasks.bad]
plugin = "probe"
inputs = {{ x = "after.in" }}
args = ["write", "/out/x", "hi", "exit", "3"]

[tasks.last]
plugin = "echo"
inputs = {{ in = "bad.x" }}
"#,
        guest("flaky").display(),
        guest("echo").display(),
        guest("cmd_probe").display()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

/// The lines of an events file, each checked for `v` and a `t_us` that
/// never decreases.
fn lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.ends_with('\n'), "{text}");
    let mut t = 0;
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
            assert_eq!(v["v"], 1, "{l}");
            let now = v["t_us"].as_u64().unwrap_or_else(|| panic!("no t_us: {l}"));
            assert!(now >= t, "t_us went back: {l}");
            t = now;
            v
        })
        .collect()
}

/// One line in short: the kind, the task, the attempt and what matters.
fn short(v: &Value) -> String {
    let (e, task, attempt) = (v["event"].as_str().unwrap(), &v["task"], &v["attempt"]);
    match e {
        "started" => format!("started {} {attempt} w{}", task.as_str().unwrap(), v["worker"]),
        "finished" => format!("finished {} {attempt}", task.as_str().unwrap()),
        "retried" | "failed" => format!("{e} {} {attempt} {}: {}", task.as_str().unwrap(), v["kind"], v["message"]),
        "queued" | "cached" => format!("{e} {}", task.as_str().unwrap()),
        _ => e.to_string(),
    }
}

fn find<'a>(lines: &'a [Value], event: &str, task: &str) -> &'a Value {
    lines.iter().find(|v| v["event"] == event && v["task"] == task).unwrap_or_else(|| panic!("no {event} {task}"))
}

#[test]
fn a_run_writes_its_exact_event_stream_and_a_rerun_its_cache_hits() {
    for executor in ["threads", "processes"] {
        let dir = chain();
        let events = dir.path().join("events.ndjson");
        let run =
            || EngineRun::new(dir.path()).executor(executor).args(["--workers", "1", "--events"]).args([&events]).run();
        let first = run();
        assert_eq!(first.code, 1, "{executor}: {}", first.stderr);
        let l = lines(&events);
        let got: Vec<String> = l.iter().map(short).collect();
        let want = [
            "run",
            "queued once",
            "started once 1 w0",
            "retried once 1 \"error\": \"task error: failing attempt 1 as asked\"",
            "queued once",
            "started once 2 w0",
            "finished once 2",
            "queued after",
            "started after 1 w0",
            "finished after 1",
            "queued bad",
            "started bad 1 w0",
            "failed bad 1 \"error\": \"task error: exited with code 3\"",
            "end",
        ];
        assert_eq!(got, want, "{executor}");
        assert_eq!(
            l[0],
            json!({
                "v": 1, "t_us": l[0]["t_us"], "event": "run", "pipeline": "ev", "executor": executor,
                "workers": 1, "tasks": 4, "capacity": l[0]["capacity"],
            }),
            "{executor}"
        );
        assert!(l[0]["capacity"]["cpu"].as_f64().unwrap() >= 1.0);
        assert_eq!(l[2]["resources"], json!({ "cpu": 1.0, "memory": 268435456, "gpu": 0, "custom": {} }));
        // Attempts as the report has them.
        let r = first.report();
        let after = find(&l, "finished", "after");
        let rep = task(&r, "after");
        assert_eq!(after["start_us"], rep["start_us"], "{executor}");
        assert_eq!(after["end_us"].as_u64().unwrap() - after["start_us"].as_u64().unwrap(), rep["duration_us"]);
        assert_eq!(after["peak_memory"], rep["peak_memory"]);
        assert_eq!(after["fuel_consumed"], rep["fuel_consumed"]);
        assert_eq!(after["outputs"], 1);
        assert_eq!(after["output_bytes"], rep["outputs"]["in"]["len"]);
        let retried = find(&l, "retried", "once");
        assert_eq!(retried["worker"], 0);
        assert!(retried["retry_at_us"].as_u64().unwrap() > retried["end_us"].as_u64().unwrap(), "{retried}");
        let failed = find(&l, "failed", "bad");
        assert_eq!(failed["log_tail"], "write /out/x: ok", "{executor}");
        assert_eq!(failed["skipped"], 1);
        assert_eq!(failed["worker"], 0);
        assert!(failed["start_us"].as_u64().is_some() && failed["end_us"].as_u64().is_some());
        let end = l.last().unwrap();
        assert_eq!(end["interrupted"], false);
        assert_eq!(
            end["counts"],
            json!({ "total": 4, "succeeded": 2, "cached": 0, "failed": 1, "skipped": 1, "cancelled": 0 })
        );
        assert_eq!(end["wall_us"], end["t_us"]);

        // Again: `once` and `after` come from the cache, `bad` fails again.
        let second = run();
        assert_eq!(second.code, 1, "{executor}: {}", second.stderr);
        let l = lines(&events);
        let got: Vec<String> = l.iter().map(short).collect();
        let want = [
            "run",
            "queued once",
            "cached once",
            "queued after",
            "cached after",
            "queued bad",
            "started bad 1 w0",
            "failed bad 1 \"error\": \"task error: exited with code 3\"",
            "end",
        ];
        assert_eq!(got, want, "{executor}");
        assert_eq!(find(&l, "cached", "once")["outputs"], 1);
        assert_eq!(find(&l, "cached", "once")["output_bytes"], 3);
        assert_eq!(l.last().unwrap()["counts"]["cached"], 2);
        assert_eq!(l.last().unwrap()["counts"]["succeeded"], 2);
    }
}

#[test]
fn a_mapped_task_reports_its_expansion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("names.txt"), "a\nb\nc\n").unwrap();
    let text = format!(
        r#"[pipeline]
name = "fan"

[plugins]
echo = "{}"

[tasks.list]
plugin = "echo"
inputs = {{ out = "file:names.txt" }}

[tasks.each]
plugin = "echo"
map = "list.lines"
max_items = 10
params = {{ text = "{{item}}" }}
"#,
        guest("echo").display()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    let events = dir.path().join("events.ndjson");
    for executor in ["threads", "processes"] {
        EngineRun::new(dir.path())
            .executor(executor)
            .args(["--no-cache", "--workers", "1", "--events"])
            .args([&events])
            .run()
            .ok();
        let l = lines(&events);
        let expanded = find(&l, "expanded", "each");
        assert_eq!(expanded["children"], 3, "{executor}");
        let at = l.iter().position(|v| v["event"] == "expanded").unwrap();
        let after: Vec<String> = l[at + 1..at + 4].iter().map(short).collect();
        assert_eq!(after, ["queued each[0]", "queued each[1]", "queued each[2]"], "{executor}");
        assert_eq!(l.iter().filter(|v| v["event"] == "finished").count(), 4, "{executor}");
        assert_eq!(l.last().unwrap()["counts"]["total"], 5, "{executor}");
    }
}

#[test]
fn an_events_file_that_cannot_be_created_stops_the_run() {
    let dir = chain();
    let bad = dir.path().join("no/such/dir/events.ndjson");
    let ran = EngineRun::new(dir.path()).args(["--events"]).args([&bad]).run();
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        format!("error: cannot write events {}: No such file or directory (os error 2)\n", bad.display())
    );
    assert!(!dir.path().join("report.json").exists());
}
