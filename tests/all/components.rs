//! WebAssembly components as tasks (docs/abi.md, "Components"): the Rust
//! test guests of `tests/guests/components` (built for wasm32-wasip2 by
//! `xtask/build-guests.sh`) run through `engine run` on the threads and
//! processes executors:
//!
//! * `comp_task`, a component of the `engine:task@1.0.0` world (wit-bindgen),
//!   reads its input in pieces, writes two outputs, closes one, logs;
//! * `comp_cmd`, a `wasi:cli/command` (Rust `fn main`), sees `/in`, `/out`,
//!   scratch `/tmp`, its args and captured stdout, and exits with a code.
//!
//! Both fail with the right kind when they run out of memory or time or
//! break a rule, and `engine check` rejects a component with an import the
//! engine does not provide, naming it.

use std::path::Path;

use crate::util::{EngineRun, guest, run_engine, task};

const TEXT: &str = "hello world\nThe cat and the Hat.\n";
const EXECUTORS: [&str; 2] = ["threads", "processes"];

/// A pipeline dir with `in.txt` (= [`TEXT`]), plugins `task` and `cmd`, and
/// `body` (tasks and `[outputs]`).
fn setup(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), TEXT).unwrap();
    let text = format!(
        "[pipeline]\nname = \"components\"\n\n[plugins]\ntask = \"{}\"\ncmd = \"{}\"\n\n{body}",
        guest("comp_task").display(),
        guest("comp_cmd").display()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn a_task_component_reads_its_input_and_writes_its_outputs() {
    for executor in EXECUTORS {
        let dir = setup(
            r#"[tasks.t]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { x = 1 }

[outputs]
"out/t_out" = "t.out"
"out/t_meta" = "t.meta"
"#,
        );
        EngineRun::new(dir.path()).executor(executor).run().ok();
        assert_eq!(read(dir.path(), "out/t_out"), TEXT.to_ascii_uppercase(), "{executor}");
        assert_eq!(read(dir.path(), "out/t_meta"), "items=1 attempt=1 text=33 params={\"x\":1}\n", "{executor}");
        let logs = run_engine(dir.path(), &["logs", "t"]);
        assert!(logs.stdout.contains("[info] uppercased 33 bytes\n"), "{executor}: {logs:?}");
        assert!(logs.stdout.contains("to stderr\n"), "{executor}: {logs:?}");
    }
}

#[test]
fn a_command_component_sees_in_out_tmp_args_stdout_and_exit_codes() {
    for executor in EXECUTORS {
        let dir = setup(
            r#"[tasks.c]
plugin = "cmd"
inputs = { text = "file:in.txt" }
args = ["a", "b c"]
scratch = true
stdout = "said"

[tasks.three]
plugin = "cmd"
inputs = { text = "file:in.txt" }
args = ["exit", "3"]
success_exit_codes = [0, 1]

[tasks.four]
plugin = "cmd"
inputs = { text = "file:in.txt" }
args = ["exit", "4"]

[outputs]
"out/upper" = "c.upper"
"out/args" = "c.args"
"out/scratch" = "c.scratch"
"out/said" = "c.said"
"out/code" = "c.exit_code"
"out/three" = "three.exit_code"
"#,
        );
        let ran = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(ran.code, 1, "{executor}: {ran:?}");
        let d = dir.path();
        assert_eq!(read(d, "out/upper"), TEXT.to_ascii_uppercase(), "{executor}");
        assert_eq!(read(d, "out/args"), "[\"a\", \"b c\"]\n", "{executor}");
        assert_eq!(read(d, "out/scratch"), "kept", "{executor}");
        assert_eq!(read(d, "out/said"), "hello from p2\n", "{executor}");
        assert_eq!(read(d, "out/code"), "0\n", "{executor}");
        // WASI 0.2 exits with ok or err: any code but 0 is 1.
        assert_eq!(read(d, "out/three"), "1\n", "{executor}");
        let r = ran.report();
        assert_eq!(task(&r, "four")["error"]["kind"], "error", "{executor}");
        assert_eq!(task(&r, "four")["error"]["message"], "task error: exited with code 1", "{executor}");
        assert_eq!(task(&r, "three")["exit_code"], 1, "{executor}");
    }
}

#[test]
fn component_failures_have_their_kinds_and_messages() {
    for executor in EXECUTORS {
        let dir = setup(
            r#"[tasks.fail]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { mode = "fail" }

[tasks.grow]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { mode = "grow" }
resources = { memory = "64MiB" }

[tasks.spin]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { mode = "loop" }
timeout = "500ms"

[tasks.badname]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { mode = "badname" }

[tasks.exit]
plugin = "task"
inputs = { text = "file:in.txt" }
params = { mode = "exit" }

[tasks.cmd_spin]
plugin = "cmd"
args = ["loop"]
timeout = "500ms"

[tasks.cmd_grow]
plugin = "cmd"
args = ["grow"]
resources = { memory = "64MiB" }

[tasks.cmd_fuel]
plugin = "cmd"
args = ["loop"]
fuel = 1000000
"#,
        );
        let ran = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(ran.code, 1, "{executor}: {ran:?}");
        let r = ran.report();
        let expect = [
            ("fail", "error", "task error: no good: params were {\"mode\":\"fail\"}"),
            ("grow", "memory_limit", "memory limit of 64MiB exceeded"),
            ("spin", "timeout", "timed out after 500.0ms"),
            (
                "badname",
                "trap",
                "trap: host call `engine:task/host.output-open`: invalid output name `../x`: `..` segments are not allowed",
            ),
            ("exit", "error", "task error: exited with code 1"),
            ("cmd_spin", "timeout", "timed out after 500.0ms"),
            ("cmd_grow", "memory_limit", "memory limit of 64MiB exceeded"),
            ("cmd_fuel", "limit", "fuel limit exceeded: the task used all 1000000 units of fuel"),
        ];
        for (id, kind, message) in expect {
            let t = task(&r, id);
            assert_eq!(
                (id, t["error"]["kind"].as_str(), t["error"]["message"].as_str()),
                (id, Some(kind), Some(message)),
                "{executor}"
            );
        }
    }
}

#[test]
fn check_and_inspect_name_the_kind_and_reject_an_unprovided_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run_engine(d, &["inspect", guest("comp_task").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("kind:    component task (engine:task@1.0.0)\n"), "{out:?}");
    assert!(out.stdout.contains("  engine:task/host@1.0.0 (instance)\n"), "{out:?}");
    assert!(out.stdout.contains("exports (1):\n  run (func)\n"), "{out:?}");
    let out = run_engine(d, &["inspect", "--json", guest("comp_cmd").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["kind"], "component_command");
    assert_eq!(v["exports"][0]["name"], "wasi:cli/run@0.2.0");

    let http = wat::parse_str(
        r#"(component
            (import "wasi:http/types@0.2.0" (instance))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $ri (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $ri)))"#,
    )
    .unwrap();
    std::fs::write(d.join("http.wasm"), http).unwrap();
    std::fs::write(
        d.join("pipeline.toml"),
        "[pipeline]\nname = \"http\"\n\n[plugins]\nhttp = \"http.wasm\"\n\n[tasks.h]\nplugin = \"http\"\n",
    )
    .unwrap();
    let out = run_engine(d, &["check", "pipeline.toml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "error: plugin `http`: `http.wasm` is not a valid task plugin: imports `wasi:http/types@0.2.0`, which \
             the engine does not provide (components may import engine:task/host@1.0.0 and the WASI 0.2 \
             interfaces of wasi:cli, wasi:io, wasi:clocks, wasi:filesystem, wasi:random, wasi:sockets)"
        ),
        "{out:?}"
    );
    let out = run_engine(d, &["inspect", "http.wasm"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.starts_with("error: invalid plugin `http.wasm`: imports `wasi:http/types@0.2.0`"), "{out:?}");
}
