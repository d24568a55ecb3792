//! Dynamic fan-out (`map`) end to end: 10k children of `std:split`'s outputs
//! collected in order on every executor, lines of an output, the action
//! cache reusing the children whose inputs did not change, and an expansion
//! that fails at run time.

use std::path::Path;

use serde_json::Value;

use crate::util::{guest, run_engine};

/// `split` cuts `input.txt` into `chunks` outputs; `copy[N]` copies output N
/// (std:concat of one part); `join` concatenates every `copy[*]`, which is
/// `input.txt` again exactly when the children are collected in order.
///
///   split ─(map *)─> copy[*] ─> join
pub(crate) fn split_pipeline(dir: &Path, lines: usize, chunks: usize) {
    let text: String = (0..lines).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("input.txt"), text).unwrap();
    let p = format!(
        r#"[pipeline]
name = "fanout"

[tasks.split]
plugin = "std:split"
inputs = {{ text = "file:input.txt" }}
params = {{ chunks = {chunks} }}
resources = {{ memory = "2GiB" }}

[tasks.copy]
plugin = "std:concat"
map = "split.*"
inputs = {{ parts = ["{{item}}"] }}
resources = {{ cpu = 0.25 }}

[tasks.join]
plugin = "std:concat"
inputs = {{ parts = "copy[*]" }}

[outputs]
"out/joined.txt" = "join"
"#
    );
    std::fs::write(dir.join("pipeline.toml"), p).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> (crate::util::Output, Value) {
    let mut all = vec!["run", "pipeline.toml", "--report", "report.json", "--trace", "trace.json"];
    all.extend_from_slice(args);
    let o = run_engine(dir, &all);
    let report = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    (o, report)
}

fn tasks(r: &Value) -> &Vec<Value> {
    r["tasks"].as_array().unwrap()
}

#[test]
fn ten_thousand_dynamic_children_are_collected_in_order_on_every_executor() {
    for executor in ["threads", "sync", "processes"] {
        let dir = tempfile::tempdir().unwrap();
        split_pipeline(dir.path(), 10_000, 10_000);
        let (o, r) = run(dir.path(), &["--executor", executor, "--no-cache", "--quiet"]);
        assert_eq!(o.code, 0, "{executor}: {}{}", o.stdout, o.stderr);
        assert!(o.stdout.starts_with("succeeded: 10003 tasks: 10003 succeeded"), "{executor}: {}", o.stdout);
        // The mapped task never runs: it is not among the slowest.
        let slowest = o.stdout.lines().find(|l| l.starts_with("slowest: ")).unwrap();
        assert!(!slowest.contains("copy ") && !slowest.contains("copy,"), "{executor}: {slowest}");
        let joined = std::fs::read(dir.path().join("out/joined.txt")).unwrap();
        assert!(joined == std::fs::read(dir.path().join("input.txt")).unwrap(), "{executor}: joined differs");
        // The report: the pipeline's tasks, then the children in item order.
        let t = tasks(&r);
        assert_eq!(t.len(), 10_003);
        let ids: Vec<&str> = t.iter().take(4).map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["split", "copy", "join", "copy[0]"], "{executor}");
        assert_eq!(t[10_002]["id"], "copy[9999]");
        assert_eq!((&t[1]["state"], &t[1]["attempts"]), (&Value::from("succeeded"), &Value::from(0)));
        assert!(t[3..].iter().all(|c| c["state"] == "succeeded" && c["attempts"] == 1), "{executor}");
        assert_eq!(r["counts"]["total"], 10_003);
        // The trace has one attempt per child, named by its id.
        let trace: Value = serde_json::from_slice(&std::fs::read(dir.path().join("trace.json")).unwrap()).unwrap();
        let events = trace.as_array().or_else(|| trace["traceEvents"].as_array()).unwrap();
        let named = |n: &str| events.iter().filter(|e| e["ph"] == "X" && e["name"] == n).count();
        assert_eq!((named("copy[0]"), named("copy[9999]"), named("copy")), (1, 1, 0), "{executor}");
    }
}

#[test]
fn a_rerun_reuses_the_children_whose_inputs_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    split_pipeline(dir.path(), 200, 50);
    let (o, first) = run(dir.path(), &["--quiet"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(tasks(&first).iter().all(|t| t["cached"] == false));
    // Unchanged: every task is a hit, the children included.
    let (o, second) = run(dir.path(), &["--quiet"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let hits = |r: &Value| tasks(r).iter().filter(|t| t["cached"] == true).count();
    assert_eq!(hits(&second), 3 + 50 - 1, "all but the template, which never runs");
    // One line changes without changing its length: only its chunk changes.
    let text = std::fs::read_to_string(dir.path().join("input.txt")).unwrap();
    std::fs::write(dir.path().join("input.txt"), text.replace("line 100\n", "LINE 100\n")).unwrap();
    let (o, third) = run(dir.path(), &["--quiet"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let missed: Vec<String> = tasks(&third)
        .iter()
        .filter(|t| t["cached"] == false && t["attempts"] == 1)
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(missed.len(), 3, "{missed:?}");
    assert_eq!(&missed[..2], ["split", "join"]);
    assert!(missed[2].starts_with("copy["), "{missed:?}");
    assert_eq!(hits(&third), 49);
    assert!(std::fs::read_to_string(dir.path().join("out/joined.txt")).unwrap().contains("LINE 100\n"));
    // `--rerun 'copy[*]'` names the children of the mapped task before they exist.
    let (o, fourth) = run(dir.path(), &["--quiet", "--rerun", "copy[*]"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let ran: Vec<&str> =
        tasks(&fourth).iter().filter(|t| t["attempts"] == 1).map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ran.len(), 50, "{ran:?}");
    assert!(ran.iter().all(|id| id.starts_with("copy[")), "{ran:?}");
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--rerun", "cpy[*]"]);
    assert_eq!((o.code, o.stderr.trim()), (2, "error: --rerun `cpy[*]` matches no task of the pipeline"));
}

/// `list` copies `names.txt`; `greet[N]` writes `N:LINE` per line of it.
fn lines_pipeline(dir: &Path, names: &str, max_items: u32) {
    std::fs::write(dir.join("names.txt"), names).unwrap();
    std::fs::copy(guest("echo"), dir.join("echo.wasm")).unwrap();
    let p = format!(
        r#"[pipeline]
name = "lines"

[plugins]
echo = "echo.wasm"

[tasks.list]
plugin = "echo"
inputs = {{ out = "file:names.txt" }}

[tasks.greet]
plugin = "echo"
map = "list.lines"
max_items = {max_items}
params = {{ text = "{{key}}:{{item}} {{{{x}}}}\n" }}

[tasks.all]
plugin = "std:concat"
inputs = {{ parts = "greet[*]" }}

[outputs]
"out/all.txt" = "all"
"#
    );
    std::fs::write(dir.join("pipeline.toml"), p).unwrap();
}

#[test]
fn a_map_over_lines_binds_key_and_item_and_max_items_bounds_it() {
    let dir = tempfile::tempdir().unwrap();
    lines_pipeline(dir.path(), "ada\n\"bob\" é\r\n\ncy", 4);
    let (o, r) = run(dir.path(), &["--quiet"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/all.txt")).unwrap(),
        "0:ada {x}\n1:\"bob\" é {x}\n2: {x}\n3:cy {x}\n"
    );
    assert_eq!(tasks(&r).len(), 3 + 4);

    // Five lines, at most four: the expansion fails, the collector is skipped.
    let dir = tempfile::tempdir().unwrap();
    lines_pipeline(dir.path(), "a\nb\nc\nd\ne\n", 4);
    let (o, r) = run(dir.path(), &["--quiet"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(
            "error: task `greet` failed: task error: cannot expand: output `out` of task `list` has 5 lines, \
             more than `max_items` = 4 (1 dependent task skipped)"
        ),
        "{}",
        o.stderr
    );
    let states: Vec<(&str, &str)> =
        tasks(&r).iter().map(|t| (t["id"].as_str().unwrap(), t["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("list", "succeeded"), ("greet", "failed"), ("all", "skipped")]);
    assert!(o.stdout.contains("not written: "), "{}", o.stdout);
}
