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
//!
//! The scripted guests of `tests/guests/components/{python,javascript}`
//! (built by `examples/languages/{python,javascript}/build.sh` with
//! componentize-py and componentize-qjs; see `util::language_guest`: a
//! missing toolchain FAILS these tests under CI) do the same: a Python
//! `wasi:cli/command` app behaves as `comp_cmd` does, and an interpreter
//! spinning or growing in Python or JavaScript is stopped by the timeout or
//! the memory limit with the same messages as a core module.

use std::path::{Path, PathBuf};

use crate::util::{EngineRun, guest, language_guest, run_engine, task};

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

/// The scripted test guests `names` (`TARGET/languages/<name>.wasm`), or
/// None (skipped, loudly) when a toolchain is missing outside CI.
fn scripted(names: &[&str]) -> Option<Vec<PathBuf>> {
    names.iter().map(|n| language_guest(n)).collect()
}

/// A pipeline dir with `in.txt` (= [`TEXT`]), `plugins` (name, path) and
/// `body`; a generous default timeout covers the first (cold) compile.
fn setup_with(plugins: &[(&str, &Path)], body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), TEXT).unwrap();
    let mut text = String::from("[pipeline]\nname = \"scripted\"\n\n[plugins]\n");
    for (name, path) in plugins {
        text.push_str(&format!("{name} = \"{}\"\n", path.display()));
    }
    text.push('\n');
    text.push_str(body);
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

#[test]
fn a_python_command_component_sees_in_out_tmp_args_stdout_and_exit_codes() {
    let Some(p) = scripted(&["test_py_cmd"]) else { return };
    for executor in EXECUTORS {
        let dir = setup_with(
            &[("py", &p[0])],
            r#"[tasks.c]
plugin = "py"
inputs = { text = "file:in.txt" }
args = ["a", "b c"]
scratch = true
stdout = "said"

[tasks.noscratch]
plugin = "py"
inputs = { text = "file:in.txt" }

[tasks.zero]
plugin = "py"
inputs = { text = "file:in.txt" }
args = ["exit", "0"]

[tasks.three]
plugin = "py"
inputs = { text = "file:in.txt" }
args = ["exit", "3"]
success_exit_codes = [0, 1]

[tasks.four]
plugin = "py"
inputs = { text = "file:in.txt" }
args = ["exit", "4"]

[outputs]
"out/upper" = "c.upper"
"out/args" = "c.args"
"out/scratch" = "c.scratch"
"out/said" = "c.said"
"out/code" = "c.exit_code"
"out/zero" = "zero.exit_code"
"out/three" = "three.exit_code"
"out/three_args" = "three.args"
"#,
        );
        let ran = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(ran.code, 1, "{executor}: {ran:?}");
        let d = dir.path();
        assert_eq!(read(d, "out/upper"), TEXT.to_ascii_uppercase(), "{executor}");
        assert_eq!(read(d, "out/args"), "[\"a\", \"b c\"]\n", "{executor}");
        assert_eq!(read(d, "out/scratch"), "kept", "{executor}");
        assert_eq!(read(d, "out/said"), "hello from python\n", "{executor}");
        assert_eq!(read(d, "out/code"), "0\n", "{executor}");
        assert_eq!(read(d, "out/zero"), "0\n", "{executor}");
        // WASI 0.2 exits with ok or err: any code but 0 is 1.
        assert_eq!(read(d, "out/three"), "1\n", "{executor}");
        assert_eq!(read(d, "out/three_args"), "[\"exit\", \"3\"]\n", "{executor}");
        let r = ran.report();
        // Without `scratch`, no /tmp: the app writes no `scratch` output.
        let outputs = task(&r, "noscratch")["outputs"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(outputs, ["args", "exit_code", "upper"], "{executor}");
        assert_eq!(task(&r, "four")["error"]["kind"], "error", "{executor}");
        assert_eq!(task(&r, "four")["error"]["message"], "task error: exited with code 1", "{executor}");
        assert_eq!(task(&r, "three")["exit_code"], 1, "{executor}");
    }
}

#[test]
fn python_and_javascript_components_that_spin_or_grow_are_stopped() {
    let Some(p) = scripted(&["test_py_task", "test_js_task", "test_py_cmd"]) else { return };
    for executor in EXECUTORS {
        let dir = setup_with(
            &[("py", &p[0]), ("js", &p[1]), ("pycmd", &p[2])],
            r#"[defaults]
timeout = "120s"

[tasks.py_spin]
plugin = "py"
params = { mode = "loop" }
timeout = "500ms"

[tasks.py_grow]
plugin = "py"
params = { mode = "grow" }
resources = { memory = "128MiB" }

[tasks.py_ok]
plugin = "py"
resources = { memory = "128MiB" }

[tasks.js_spin]
plugin = "js"
params = { mode = "loop" }
timeout = "500ms"

[tasks.js_grow]
plugin = "js"
params = { mode = "grow" }
resources = { memory = "128MiB" }

[tasks.js_ok]
plugin = "js"
resources = { memory = "128MiB" }

[tasks.pycmd_spin]
plugin = "pycmd"
args = ["loop"]
timeout = "500ms"

[tasks.pycmd_grow]
plugin = "pycmd"
args = ["grow"]
resources = { memory = "128MiB" }

[outputs]
"out/py_ok" = "py_ok"
"out/js_ok" = "js_ok"
"#,
        );
        let ran = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(ran.code, 1, "{executor}: {ran:?}");
        // Under the same memory limit, the guests that do not grow succeed.
        assert_eq!(read(dir.path(), "out/py_ok"), "ok", "{executor}");
        assert_eq!(read(dir.path(), "out/js_ok"), "ok", "{executor}");
        let r = ran.report();
        for (id, kind, message) in [
            ("py_spin", "timeout", "timed out after 500.0ms"),
            ("py_grow", "memory_limit", "memory limit of 128MiB exceeded"),
            ("js_spin", "timeout", "timed out after 500.0ms"),
            ("js_grow", "memory_limit", "memory limit of 128MiB exceeded"),
            ("pycmd_spin", "timeout", "timed out after 500.0ms"),
            ("pycmd_grow", "memory_limit", "memory limit of 128MiB exceeded"),
        ] {
            let t = task(&r, id);
            assert_eq!(
                (id, t["error"]["kind"].as_str(), t["error"]["message"].as_str()),
                (id, Some(kind), Some(message)),
                "{executor}"
            );
            let line = format!("error: task `{id}` failed: {message}");
            assert!(ran.stderr.lines().any(|l| l == line), "{executor}: no line `{line}` in:\n{}", ran.stderr);
        }
    }
}
