//! The hostile-plugin suite: real wasm modules (WAT in `tests/guests/hostile/`
//! and the Rust command `tests/guests/rust/hostile_cmd`) that attack the
//! sandbox, each run by the `engine run` CLI in a pipeline beside an innocent,
//! independent task:
//!
//! ```text
//!   innocent (echo, writes a known text)      hostile (the attack)
//! ```
//!
//! For every case: only the hostile task fails, with its exact message; the
//! innocent task's output is exact; the run ends within [`TIME_BOUND`] with a
//! peak RSS under [`RSS_BOUND_KIB`]; a sentinel directory next to the pipeline
//! is byte-for-byte unchanged; the task temp dirs are gone (the engine runs
//! with a private `TMPDIR`) and nothing named by a plugin appeared in `/tmp`.
//! Modules that `engine check` rejects are asserted at check time instead,
//! and nothing runs. docs/security.md names these tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use engine::store::Digest;

use crate::util::{Measured, engine, guest, repo_root, run_measured, wat_module};

/// The innocent task's output, copied out by `[outputs]`.
const INNOCENT: &str = "the innocent task ran to completion\n";
/// Every run must finish within this (the hostile tasks are stopped by limits
/// far sooner; the bound leaves room for a loaded 2-core machine).
const TIME_BOUND: Duration = Duration::from_secs(20);
/// Peak RSS of the engine process.
const RSS_BOUND_KIB: u64 = 600 << 10;

/// A hostile WAT module from `tests/guests/hostile/`.
fn wat(name: &str) -> PathBuf {
    wat_module(&repo_root().join("tests/guests/hostile").join(format!("{name}.wat")), &format!("hostile_{name}"))
}

/// A pipeline dir: `pipeline.toml`, a sentinel dir and a private temp dir.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `body` is the hostile task's table body; `{sentinel}` in it becomes
    /// the sentinel directory's absolute path.
    fn new(plugin: &Path, body: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sentinel = root.join("sentinel");
        std::fs::create_dir_all(sentinel.join("sub")).unwrap();
        std::fs::write(sentinel.join("keep.txt"), "keep me\n").unwrap();
        std::fs::write(sentinel.join("sub/nested.txt"), "nested\n").unwrap();
        std::fs::create_dir(root.join("tmp")).unwrap();
        let body = body.replace("{sentinel}", &sentinel.display().to_string());
        let text = format!(
            r#"[pipeline]
name = "hostile"

[plugins]
echo = "{echo}"
hostile = "{hostile}"

[tasks.innocent]
plugin = "echo"
params = {{ text = "{innocent}" }}

[tasks.hostile]
plugin = "hostile"
{body}

[outputs]
"out/innocent.txt" = "innocent"
"#,
            echo = guest("echo").display(),
            hostile = plugin.display(),
            innocent = INNOCENT.escape_default(),
        );
        std::fs::write(root.join("pipeline.toml"), text).unwrap();
        Setup { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Every file under the sentinel dir with its bytes.
    fn sentinel(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut found = BTreeMap::new();
        let mut stack = vec![self.root().join("sentinel")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let meta = std::fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    found.insert(p.clone(), b"<dir>".to_vec());
                    stack.push(p);
                } else if meta.is_file() {
                    found.insert(p.clone(), std::fs::read(&p).unwrap());
                } else {
                    found.insert(p, b"<other>".to_vec());
                }
            }
        }
        found
    }

    fn engine(&self, sub: &str, args: &[&str]) -> Measured {
        let mut c = engine();
        MODULE_CACHE.with(|m| {
            if let Some(dir) = &*m.borrow() {
                c.env("ENGINE_CACHE_DIR", dir);
            }
        });
        c.arg(sub).arg(self.root().join("pipeline.toml")).args(args).env("TMPDIR", self.root().join("tmp"));
        run_measured(c, TIME_BOUND + Duration::from_secs(10))
    }
}

thread_local! {
    /// A module cache of the test's own (on its thread) instead of the shared
    /// one, for a test whose measure must not see another test's compiles.
    static MODULE_CACHE: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// What a hostile run left behind.
struct Outcome {
    m: Measured,
    /// The hostile task's log.
    log: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run a hostile task beside the innocent one and check everything that must
/// hold whatever the attack: returns the outcome for case-specific checks.
#[track_caller]
fn contained(plugin: &Path, body: &str, kind: &str, message: &str) -> Outcome {
    contained_on(plugin, body, kind, message, "threads")
}

#[track_caller]
fn contained_on(plugin: &Path, body: &str, kind: &str, message: &str, executor: &str) -> Outcome {
    let s = Setup::new(plugin, body);
    let before = s.sentinel();
    let report_path = s.root().join("report.json");
    let m = s.engine("run", &["--executor", executor, "--workers", "2", "--report", report_path.to_str().unwrap()]);
    let o = &m.output;
    let ctx = format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{ctx}");
    assert!(m.elapsed < TIME_BOUND, "the run took {:?}\n{ctx}", m.elapsed);
    assert!(m.max_rss_kib < RSS_BOUND_KIB, "peak RSS {} KiB\n{ctx}", m.max_rss_kib);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let hostile = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "hostile").unwrap().clone();
    let log = hostile["log"].as_str().map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default();
    assert_eq!(hostile["state"], "failed", "{ctx}");
    assert_eq!(hostile["error"]["kind"], kind, "{ctx}\nlog:\n{log}");
    assert_eq!(hostile["error"]["message"], message, "{ctx}\nlog:\n{log}");
    assert_eq!(hostile["outputs"], serde_json::json!({}), "a failed task publishes nothing");
    let stderr = text(&o.stderr);
    assert!(stderr.contains(&format!("error: task `hostile` failed: {message}")), "{ctx}");
    // The innocent task is untouched.
    let innocent = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "innocent").unwrap();
    assert_eq!(innocent["state"], "succeeded", "{ctx}");
    // `[outputs]` are copied only after a successful run; the store is
    // content-addressed, so the digest pins the exact bytes.
    assert_eq!(
        innocent["outputs"],
        serde_json::json!({"out": {"digest": Digest::of(INNOCENT.as_bytes()).to_string(), "len": INNOCENT.len()}})
    );
    // Nothing outside the store changed.
    assert_eq!(s.sentinel(), before, "the sentinel dir changed");
    let left: Vec<_> = std::fs::read_dir(s.root().join("tmp")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "task temp dirs left behind: {left:?}");
    assert!(!Path::new("/tmp/hostile-pwned").exists(), "a plugin wrote /tmp/hostile-pwned");
    let top: Vec<_> =
        std::fs::read_dir(s.root()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for name in &top {
        assert!(
            [".engine-store", "out", "pipeline.toml", "report.json", "sentinel", "tmp"].contains(&name.as_str()),
            "unexpected `{name}` next to the pipeline"
        );
    }
    Outcome { m, log }
}

/// The lines of a `hostile_cmd` log that start with `denied: ` / `ESCAPED: `.
fn attempts(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("denied: ") || l.starts_with("ESCAPED: ")).collect()
}

fn cmd() -> PathBuf {
    guest("hostile_cmd")
}

// ---- the filesystem -----------------------------------------------------

#[test]
fn reading_etc_passwd_is_denied() {
    let o = contained(&cmd(), r#"args = ["passwd"]"#, "error", "task error: exited with code 13");
    assert_eq!(
        attempts(&o.log),
        [
            "denied: read /etc/passwd: No such file or directory (os error 44)",
            "denied: read /in/../etc/passwd: Operation not permitted (os error 63)",
            "denied: read /in/../../../../etc/passwd: Operation not permitted (os error 63)",
            "denied: read /out/../../etc/passwd: Operation not permitted (os error 63)",
            "denied: read ../../etc/passwd: No such file or directory (os error 44)",
            "denied: list /: No such file or directory (os error 44)",
            "denied: list /out/..: Operation not permitted (os error 63)",
        ],
        "{}",
        o.log
    );
}

#[test]
fn absolute_and_dotdot_paths_cannot_reach_the_host() {
    let o = contained(&cmd(), r#"args = ["paths", "{sentinel}"]"#, "error", "task error: exited with code 13");
    assert_eq!(
        attempts(&o.log),
        [
            "denied: read <sentinel>/keep.txt: No such file or directory (os error 44)",
            "denied: list <sentinel>: No such file or directory (os error 44)",
            "denied: read /in/..<sentinel>/keep.txt: Operation not permitted (os error 63)",
            "denied: read /out/../..<sentinel>/keep.txt: Operation not permitted (os error 63)",
            "denied: stat /proc/self/environ: No such file or directory (os error 44)",
        ],
        "{}",
        o.log
    );
}

#[test]
fn writing_outside_out_is_denied() {
    let o = contained(
        &cmd(),
        r#"args = ["write", "{sentinel}"]
inputs = { data = "file:sentinel/keep.txt" }"#,
        "error",
        "task error: exited with code 13",
    );
    assert_eq!(
        attempts(&o.log),
        [
            "denied: overwrite <sentinel>/keep.txt: No such file or directory (os error 44)",
            "denied: create <sentinel>/pwned: No such file or directory (os error 44)",
            "denied: create /tmp/hostile-pwned: No such file or directory (os error 44)",
            "denied: create /out/../hostile-pwned: Operation not permitted (os error 63)",
            "denied: create /in/hostile-pwned: Operation not permitted (os error 63)",
            "denied: overwrite /in/data: Operation not permitted (os error 63)",
            "denied: remove /in/data: Operation not permitted (os error 63)",
            "denied: mkdir /in/hostile-dir: Operation not permitted (os error 63)",
            "denied: rename /in/data to /out/data: Operation not permitted (os error 63)",
        ],
        "{}",
        o.log
    );
}

#[test]
fn symlinks_and_hard_links_cannot_point_outside_out() {
    // Creating a symlink in /out is allowed, following it out is not, and a
    // symlink left in /out fails the task when outputs are collected.
    let o = contained(
        &cmd(),
        r#"args = ["links", "{sentinel}"]"#,
        "error",
        "task error: `/out/rel` is a symbolic link; only regular files can be outputs",
    );
    assert_eq!(
        attempts(&o.log),
        [
            "denied: symlink /out/abs -> /etc/passwd: Operation not permitted (os error 63)",
            "denied: symlink /out/sentinel -> <sentinel>/keep.txt: Operation not permitted (os error 63)",
            "denied: read through /out/rel: Operation not permitted (os error 63)",
            "denied: write through /out/rel: Operation not permitted (os error 63)",
            "denied: hard link /etc/passwd to /out/h1: No such file or directory (os error 44)",
            "denied: hard link /out/../../etc/passwd to /out/h2: Operation not permitted (os error 63)",
            "denied: hard link <sentinel>/keep.txt to /out/h3: No such file or directory (os error 44)",
            "denied: hard link /in/../../etc/passwd to /out/h4: Operation not permitted (os error 63)",
        ],
        "{}",
        o.log
    );
}

// ---- CPU, memory, stack ---------------------------------------------------

#[test]
fn an_infinite_loop_is_stopped_by_its_timeout() {
    let o = contained(&wat("loop"), r#"timeout = "500ms""#, "timeout", "timed out after 500.0ms");
    assert!(o.m.elapsed < Duration::from_secs(10));
}

#[test]
fn sleeping_for_an_hour_is_stopped_by_the_timeout() {
    contained(&cmd(), "args = [\"sleep\", \"3600\"]\ntimeout = \"500ms\"", "timeout", "timed out after 500.0ms");
}

#[test]
fn waiting_on_an_absolute_clock_or_several_clocks_is_stopped_by_the_timeout() {
    let body = "args = [\"abs:3600000\", \"realabs:3600000\", \"rel:3600000\"]\ntimeout = \"500ms\"";
    for executor in ["threads", "processes"] {
        contained_on(&guest("cmd_poll"), body, "timeout", "timed out after 500.0ms", executor);
    }
}

#[test]
fn a_rust_panic_shows_its_message_and_named_frames_on_the_console() {
    let location = repo_root().join("tests/guests/rust/hostile_cmd/src/main.rs");
    // The line of the `panic!` in the guest's source.
    let source = std::fs::read_to_string(&location).unwrap();
    let line = 1 + source.lines().position(|l| l.contains("panic!(\"{text}\\nsecond line")).unwrap();
    let message = format!("trap: panicked at {}:{line}:46: the plugin gave up", location.display());
    for executor in ["threads", "processes"] {
        let o = contained_on(&cmd(), "args = [\"panic\", \"the plugin gave up\"]", "trap", &message, executor);
        let stderr = text(&o.m.output.stderr);
        assert!(!stderr.contains("second line of the panic"), "{stderr}");
        assert!(stderr.contains(".wasm!hostile_cmd::main::h"), "frames are named: {stderr}");
        assert!(!stderr.contains("<wasm function"), "{stderr}");
        assert!(o.log.contains(".wasm!core[") && o.log.contains("::panicking::panic_fmt"), "{}", o.log);
    }
}

#[test]
fn an_infinite_loop_is_stopped_by_its_fuel() {
    contained(
        &wat("loop"),
        "fuel = 50000000",
        "limit",
        "fuel limit exceeded: the task used all 50000000 units of fuel",
    );
}

/// Host calls are charged fuel by the bytes they move (docs/abi.md, "Fuel"):
/// 30 `random_get` of 64 MiB, 30 `fd_write`s of 64 MiB to stdout and 30
/// `output_write`s of 64 MiB on a 100000 fuel budget fail at the first call,
/// before the host makes or copies the bytes, on threads and processes.
#[test]
fn host_calls_that_move_gigabytes_are_stopped_by_a_small_fuel_budget() {
    for ex in ["threads", "processes"] {
        for guest in ["random_flood", "stdout_flood", "write_flood"] {
            let o = contained_on(
                &wat(guest),
                "fuel = 100000",
                "limit",
                "fuel limit exceeded: the task used all 100000 units of fuel",
                ex,
            );
            assert!(o.m.elapsed < Duration::from_secs(10), "{guest} on {ex}: {:?}", o.m.elapsed);
            assert!(o.log.is_empty(), "{guest} on {ex}: nothing reaches the log: {}", o.log);
        }
    }
}

/// SDK outputs wait in at most 16 MiB of engine memory per attempt and one
/// spill file (docs/security.md): 3000 outputs of 60 KiB and then 65 KiB
/// cost neither 180 MiB of buffers nor 3000 descriptors.
#[test]
fn many_small_sdk_outputs_hold_little_engine_memory_and_one_descriptor() {
    // The first run compiles the plugins, in `engine compile-plugin`
    // children whose peak RSS `wait4` counts as the engine's: the second
    // loads them from the module cache, and is measured. The cache is this
    // test's own, so no other test's run can change what it holds.
    let cache = tempfile::tempdir().unwrap();
    MODULE_CACHE.with(|m| *m.borrow_mut() = Some(cache.path().to_path_buf()));
    for (round, ex) in ["threads", "threads", "processes"].into_iter().enumerate() {
        let o = contained_on(&wat("many_outputs"), "", "error", "task error: run returned 1", ex);
        assert!(
            round != 1 || o.m.max_rss_kib < 150 << 10,
            "peak RSS {} KiB; stderr:\n{}",
            o.m.max_rss_kib,
            text(&o.m.output.stderr)
        );
    }
}

#[test]
fn growing_memory_towards_4_gib_hits_the_memory_limit() {
    contained(&wat("grow"), r#"resources = { memory = "128MiB" }"#, "memory_limit", "memory limit of 128MiB exceeded");
}

#[test]
fn unbounded_recursion_exhausts_the_wasm_stack() {
    let o = contained(&wat("recurse"), "", "trap", "trap: call stack exhausted");
    assert!(o.log.starts_with("[trap] "), "{}", o.log);
}

#[test]
fn unreachable_traps() {
    contained(&wat("unreachable"), "", "trap", "trap: wasm `unreachable` instruction executed");
}

#[test]
fn proc_exit_1_fails_the_task() {
    contained(&wat("exit1"), "", "error", "task error: exited with code 1");
}

// ---- output and log volume -----------------------------------------------

#[test]
fn ten_gib_of_output_is_stopped_at_the_output_size_limit() {
    contained(
        &wat("big_output"),
        r#"max_output_bytes = "64MiB""#,
        "limit",
        "output size limit exceeded: the task's outputs total more than 64MiB",
    );
}

#[test]
fn a_ten_gib_file_in_out_is_stopped_while_the_command_runs() {
    let o = contained(
        &cmd(),
        r#"args = ["bigfile", "10240"]
max_output_bytes = "64MiB""#,
        "limit",
        "output size limit exceeded: the task's outputs total more than 64MiB",
    );
    assert!(o.m.elapsed < Duration::from_secs(10));
}

#[test]
fn a_hundred_thousand_files_in_out_hit_the_output_count_limit() {
    contained(
        &cmd(),
        r#"args = ["files", "100000"]"#,
        "limit",
        "output count limit exceeded: the task created more than 10000 entries in /out",
    );
}

#[test]
fn a_one_gib_log_is_truncated_and_the_task_continues() {
    // Not a failure: the task writes 1 GiB of log lines and succeeds with
    // the first 1 MiB of them and the marker.
    let o = run_ok(&wat("big_log"), "");
    let log = &o.log;
    assert_eq!(log.len(), (1 << 20) + "\n[log truncated: limit of 1048576 bytes reached]\n".len());
    assert!(log.starts_with("[info] xxxx"));
    assert!(log.ends_with("xxxx\n[log truncated: limit of 1048576 bytes reached]\n"), "{}", &log[log.len() - 100..]);
    assert_eq!(std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(), "done\n");
}

/// A run where the hostile task is expected to succeed (limits that truncate
/// rather than fail).
struct OkRun {
    dir: tempfile::TempDir,
    log: String,
}

#[track_caller]
fn run_ok(plugin: &Path, body: &str) -> OkRun {
    let s = Setup::new(plugin, body);
    let mut toml = std::fs::read_to_string(s.root().join("pipeline.toml")).unwrap();
    toml.push_str("\"out/hostile.txt\" = \"hostile\"\n");
    std::fs::write(s.root().join("pipeline.toml"), toml).unwrap();
    let before = s.sentinel();
    let report_path = s.root().join("report.json");
    let m = s.engine("run", &["--report", report_path.to_str().unwrap()]);
    let o = &m.output;
    let ctx = format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{ctx}");
    assert!(m.elapsed < TIME_BOUND, "the run took {:?}", m.elapsed);
    assert!(m.max_rss_kib < RSS_BOUND_KIB, "peak RSS {} KiB", m.max_rss_kib);
    assert_eq!(std::fs::read_to_string(s.root().join("out/innocent.txt")).unwrap(), INNOCENT);
    assert_eq!(s.sentinel(), before);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let hostile = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "hostile").unwrap();
    let log = hostile["log"].as_str().map(|p| std::fs::read_to_string(p).unwrap()).unwrap_or_default();
    OkRun { dir: s.dir, log }
}

// ---- host calls -------------------------------------------------------------

#[test]
fn an_out_of_bounds_host_call_buffer_traps() {
    contained(&wat("oob_read"), "", "trap", "trap: host call `engine.input_read`: pointer/length out of bounds");
}

#[test]
fn an_overflowing_pointer_plus_length_traps() {
    contained(
        &wat("overflow_write"),
        "",
        "trap",
        "trap: host call `engine.output_write`: pointer/length out of bounds",
    );
}

#[test]
fn a_negative_length_traps() {
    contained(&wat("negative_log"), "", "trap", "trap: host call `engine.log`: pointer/length out of bounds");
}

#[test]
fn an_out_of_bounds_wasi_iovec_is_an_error_not_a_host_read() {
    // wasmtime-wasi checks guest pointers too: the bad iovec list makes
    // `fd_write` trap, and nothing outside the guest's memory is read.
    contained(&wat("wasi_oob"), "", "trap", "trap: Pointer out of bounds: Region { start: 4294967288, len: 4 }");
}

#[test]
fn a_one_mib_output_name_is_rejected() {
    let shown = format!("{}...", "a".repeat(64));
    contained(
        &wat("huge_name"),
        "",
        "trap",
        &format!(
            "trap: host call `engine.output_open`: invalid output name `{shown}`: names must be 1 to 255 bytes long, this one is 1048576 bytes"
        ),
    );
}

// ---- rejected before anything runs ---------------------------------------------

/// `engine check` and `engine run` both reject the pipeline (exit 2) with a
/// diagnostic containing `message`; nothing runs (no store, no outputs).
#[track_caller]
fn rejected_at_check(plugin: &Path, message: &str) {
    let s = Setup::new(plugin, "");
    for sub in ["check", "run"] {
        let m = s.engine(sub, &[]);
        let stderr = text(&m.output.stderr);
        assert_eq!(m.output.status.code(), Some(2), "{sub}: {stderr}");
        assert!(stderr.contains(message), "{sub}: expected `{message}` in:\n{stderr}");
        assert!(!s.root().join("out").exists(), "{sub}: something ran");
        assert!(!s.root().join(".engine-store").exists(), "{sub}: a store was created");
    }
}

#[test]
fn an_unknown_import_is_rejected_at_check() {
    rejected_at_check(
        &wat("unknown_import"),
        "imports `env.open_socket`, which the engine does not provide (allowed modules: engine, wasi_snapshot_preview1)",
    );
}

#[test]
fn an_import_that_is_not_wasi_preview_1_is_rejected_at_check() {
    rejected_at_check(
        &wat("unknown_wasi"),
        "imports `wasi_snapshot_preview1.sock_open`, which is not a WASI preview 1 function",
    );
}

fn raw_module(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = crate::util::wat_guests_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("hostile_{name}.wasm"));
    // Atomically: tests run in parallel and a reader must never see half a file.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".hostile_{name}.{}.{seq}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// A command whose function 1 (after one imported function) declares `locals`
/// locals and `globals` globals.
fn big_module(name: &str, locals: usize, globals: usize) -> PathBuf {
    let text = format!(
        "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func (param i32))) {} \
         (memory (export \"memory\") 1) (func (export \"_start\") (local{})))",
        "(global i32 (i32.const 0)) ".repeat(globals),
        " i64".repeat(locals)
    );
    raw_module(name, &wat::parse_str(text).unwrap())
}

#[test]
fn modules_over_the_static_compilation_limits_are_rejected_at_check() {
    rejected_at_check(
        &big_module("locals", 40_000, 0),
        "function 1 declares 40000 locals, more than the limit of 10000 per function (docs/security.md, \"Compilation\")",
    );
    rejected_at_check(
        &big_module("globals", 0, 100_001),
        "the module has 100001 globals, more than the limit of 100000 (docs/security.md, \"Compilation\")",
    );
    // Tables: one, of at most 100000 elements (the instance pool's slots;
    // they used to pass the check and fail every attempt as `infra`).
    let tables = |name: &str, decl: &str| {
        let text = format!("(module {decl} (memory (export \"memory\") 1) (func (export \"_start\")))");
        raw_module(name, &wat::parse_str(text).unwrap())
    };
    rejected_at_check(
        &tables("two_tables", "(table 1 funcref) (table 1 funcref)"),
        "the module has 2 tables, more than the limit of 1 (docs/security.md, \"Compilation\")",
    );
    rejected_at_check(
        &tables("huge_table", "(table 10000000 funcref)"),
        "table 0 has a minimum of 10000000 elements, more than the limit of 100000 (docs/security.md, \"Compilation\")",
    );
    // At the limit is fine: the innocent task and this one both succeed.
    let s = Setup::new(&tables("table_ok", "(table 100000 funcref)"), "");
    let m = s.engine("run", &[]);
    assert_eq!(m.output.status.code(), Some(0), "{}", text(&m.output.stderr));
    let s = Setup::new(&big_module("locals_ok", 10_000, 0), "");
    let m = s.engine("run", &["--executor", "processes"]);
    assert_eq!(m.output.status.code(), Some(0), "{}", text(&m.output.stderr));
    assert_eq!(std::fs::read_to_string(s.root().join("out/innocent.txt")).unwrap(), INNOCENT);
}

#[test]
fn a_module_that_does_not_link_fails_its_tasks_alike_compiled_or_cached() {
    // fd_write with the wrong signature passes the check; linking fails.
    let bad = raw_module(
        "bad_link",
        &wat::parse_str(
            "(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32) (result i32))) \
             (memory (export \"memory\") 1) (func (export \"_start\")))",
        )
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let text = format!(
        "[pipeline]\nname = \"l\"\n[plugins]\nbad = {:?}\n[tasks.a]\nplugin = \"bad\"\n[tasks.ok]\nplugin = \"std:wordcount\"\ninputs = {{ text = \"file:pipeline.toml\" }}\n",
        bad.display().to_string()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    // The first run compiles it, the second finds it in the module cache.
    for run in ["compiled", "cached"] {
        let r =
            crate::util::EngineRun::new(dir.path()).env("ENGINE_CACHE_DIR", cache.path()).args(["--no-cache"]).run();
        assert_eq!(r.code, 1, "{run}: {}", r.stderr);
        let report = r.report();
        let a = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "a").unwrap().clone();
        assert_eq!(a["error"]["kind"], "infra", "{run}: {a}");
        let msg = a["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("plugin `bad`: cannot link plugin `"), "{run}: {msg}");
        assert!(msg.contains("incompatible import type for `wasi_snapshot_preview1::fd_write`"), "{run}: {msg}");
        assert_eq!(report["counts"]["succeeded"], 1, "{run}");
    }
}

#[test]
fn malformed_modules_are_rejected_at_check() {
    // Truncated after the header: a section that claims more bytes than exist.
    rejected_at_check(
        &raw_module("truncated", b"\0asm\x01\0\0\0\x01\x7f"),
        "is not a valid task plugin: malformed module: unexpected end-of-file (at offset 0xa)",
    );
    // Not wasm at all.
    rejected_at_check(&raw_module("not_wasm", b"#!/bin/sh\nrm -rf /\n"), "is not a WebAssembly module");
}

#[test]
fn a_module_larger_than_256_mib_is_rejected_before_it_is_read() {
    // A sparse file: 256 MiB + 1 byte, never read by the engine.
    let p = crate::util::wat_guests_dir().join("hostile_too_large.wasm");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&p).unwrap();
    std::io::Write::write_all(&mut &f, b"\0asm\x01\0\0\0").unwrap();
    f.set_len((256 << 20) + 1).unwrap();
    rejected_at_check(&p, "cannot read `");
    let s = Setup::new(&p, "");
    let m = s.engine("check", &[]);
    assert!(
        text(&m.output.stderr)
            .contains("the file is 268435457 bytes, more than the maximum module size of 256MiB (268435456 bytes)"),
        "{}",
        text(&m.output.stderr)
    );
    // Not read: a 4 TiB (sparse) module is refused as fast. (Not peak RSS: a
    // child's `ru_maxrss` includes the test process's own peak at spawn.)
    let huge = crate::util::wat_guests_dir().join("hostile_huge.wasm");
    let f = std::fs::File::create(&huge).unwrap();
    std::io::Write::write_all(&mut &f, b"\0asm\x01\0\0\0").unwrap();
    f.set_len(4 << 40).unwrap();
    let s = Setup::new(&huge, "");
    let m = s.engine("check", &[]);
    let _ = std::fs::remove_file(&huge);
    assert!(
        text(&m.output.stderr).contains("the file is 4398046511104 bytes, more than the maximum module size"),
        "{}",
        text(&m.output.stderr)
    );
    assert!(m.elapsed < Duration::from_secs(10), "check took {:?}", m.elapsed);
}

/// The exact stderr of `engine check` rejecting plugin `hostile` (at `p`,
/// line 6 of the [`Setup`] pipeline) with `headline`, its span labelled `label`.
fn check_rejects_exactly(s: &Setup, p: &Path, headline: &str, label: &str) {
    let m = s.engine("check", &[]);
    let pipeline = s.root().join("pipeline.toml").display().to_string();
    let quoted = format!("\"{}\"", p.display());
    let carets = "^".repeat(quoted.chars().count());
    assert_eq!(
        text(&m.output.stderr),
        format!(
            "error: plugin `hostile`: {headline}\n  ┌─ {pipeline}:6:11\n  │\n6 │ hostile = {quoted}\n  │           \
             {carets} {label}\n\nerror: `{pipeline}` is invalid: 1 error\n"
        )
    );
    assert_eq!(m.output.status.code(), Some(2));
}

/// A component importing `import` beside the task world's host interface
/// (the import check comes before the kind: its export hardly matters).
fn component_importing(name: &str, import: &str) -> PathBuf {
    let text = format!(
        r#"(component
            (import "engine:task/host@1.0.0" (instance))
            (import "{import}" (instance))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $ri (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $ri)))"#
    );
    raw_module(name, &wat::parse_str(text).unwrap())
}

#[test]
fn a_component_with_an_unknown_world_import_is_rejected_at_check_naming_it() {
    const PROVIDED: &str = "(components may import engine:task/host@1.0.0 and the WASI 0.2 interfaces of wasi:cli, \
                            wasi:io, wasi:clocks, wasi:filesystem, wasi:random, wasi:sockets)";
    for (name, import) in
        [("comp_unknown_world", "engine:task/secrets@1.0.0"), ("comp_http", "wasi:http/outgoing-handler@0.2.0")]
    {
        let p = component_importing(name, import);
        rejected_at_check(&p, &format!("imports `{import}`, which the engine does not provide {PROVIDED}"));
        let headline = format!(
            "`{}` is not a valid task plugin: imports `{import}`, which the engine does not provide {PROVIDED}",
            p.display()
        );
        check_rejects_exactly(&Setup::new(&p, ""), &p, &headline, "this plugin");
    }
}

#[test]
fn a_component_larger_than_256_mib_is_rejected_before_it_is_read() {
    // A sparse file with a component's header: 256 MiB + 1 byte, never read.
    let p = crate::util::wat_guests_dir().join("hostile_too_large_component.wasm");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&p).unwrap();
    std::io::Write::write_all(&mut &f, b"\0asm\x0d\0\x01\0").unwrap();
    f.set_len((256 << 20) + 1).unwrap();
    rejected_at_check(&p, "the file is 268435457 bytes, more than the maximum module size of 256MiB (268435456 bytes)");
    let s = Setup::new(&p, "");
    let headline = format!(
        "cannot read `{}`: the file is 268435457 bytes, more than the maximum module size of 256MiB (268435456 bytes)",
        p.display()
    );
    check_rejects_exactly(&s, &p, &headline, "cannot read this file");
    // Refused from its size alone: fast, however slow reading 256 MiB would be.
    let m = s.engine("check", &[]);
    assert!(m.elapsed < Duration::from_secs(10), "check took {:?}", m.elapsed);
}

// ---- what a task can see --------------------------------------------------------

#[test]
fn a_command_sees_no_ambient_args_env_or_host_files() {
    let o = run_ok(&cmd(), r#"args = ["ambient"]"#);
    assert_eq!(
        std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(),
        "args: [\"hostile_cmd\", \"ambient\"]\nenv: []\n/: No such file or directory (os error 44)\n\
         /in: readable\n/out: readable\n/tmp: No such file or directory (os error 44)\n\
         .: No such file or directory (os error 44)\n"
    );
}

#[test]
fn no_socket_can_be_used() {
    let o = run_ok(&cmd(), r#"args = ["net"]"#);
    // WASI errno 57 = notsock (fds 0-4: stdio, /in, /out), 8 = badf (no such descriptor).
    let want: String = (0..8)
        .map(|fd| {
            let e = if fd <= 4 { 57 } else { 8 };
            format!("fd {fd}: sock_accept errno {e}, sock_send errno {e}\n")
        })
        .collect();
    assert_eq!(std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(), want);
}

#[test]
fn deterministic_tasks_repeat_time_and_random_exactly() {
    let body = "args = [\"clock\"]\ndeterministic = true";
    let a = run_ok(&cmd(), body);
    let b = run_ok(&cmd(), body);
    let first = std::fs::read_to_string(a.dir.path().join("out/hostile.txt")).unwrap();
    let second = std::fs::read_to_string(b.dir.path().join("out/hostile.txt")).unwrap();
    assert_eq!(first, second);
    assert!(first.starts_with("wall_us 946684800000000\nelapsed_ns 1000\nrandom "), "{first}");
    assert!(first.ends_with(" (errno 0)\n"), "{first}");
    // Without it, the clock is the host's.
    let c = run_ok(&cmd(), "args = [\"clock\"]");
    let third = std::fs::read_to_string(c.dir.path().join("out/hostile.txt")).unwrap();
    assert_ne!(first, third);
}

// ---- the other executors ------------------------------------------------------

#[test]
fn the_sync_and_processes_executors_contain_hostile_tasks_too() {
    for ex in ["sync", "processes"] {
        contained_on(
            &cmd(),
            "args = [\"sleep\", \"3600\"]\ntimeout = \"500ms\"",
            "timeout",
            "timed out after 500.0ms",
            ex,
        );
        contained_on(
            &wat("grow"),
            r#"resources = { memory = "128MiB" }"#,
            "memory_limit",
            "memory limit of 128MiB exceeded",
            ex,
        );
        contained_on(
            &cmd(),
            r#"args = ["files", "100000"]"#,
            "limit",
            "output count limit exceeded: the task created more than 10000 entries in /out",
            ex,
        );
    }
}

/// Each `engine worker` of the processes executor hardens itself at start:
/// no_new_privs, rlimits and, where the kernel has Landlock, a filesystem
/// restricted to the store, the module cache, the temp dir and the mount
/// sources (docs/security.md, "Defence in depth").
#[test]
fn processes_workers_harden_themselves_with_landlock() {
    use engine::exec::processes::{ProcessesConfig, ProcessesExecutor};
    // The Landlock ABI version the kernel offers (< 1: none).
    // SAFETY: a query with no ruleset attributes, as landlock_create_ruleset(2) documents.
    let abi = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    let landlock = match abi {
        3.. => "landlock=full",
        1..=2 => "landlock=partial",
        _ => "landlock=unsupported",
    };
    let store = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ex = ProcessesExecutor::new(ProcessesConfig {
        workers: 2,
        exe: PathBuf::from(env!("CARGO_BIN_EXE_engine")),
        store: engine::store::StoreSpec::Local(store.path().to_path_buf()),
        cache_dir: cache.path().to_path_buf(),
        max_task_memory: 64 << 20,
        plugins: vec![],
        run_start: std::time::SystemTime::now(),
        harden: true,
        read_only: vec![repo_root().join("examples")],
    })
    .unwrap();
    let want = format!("no_new_privs,rlimit_core=0,rlimit_nofile=4096,rlimit_fsize=64GiB,{landlock}");
    assert_eq!(ex.hardening(), [want.clone(), want]);
}

// ---- host files a pipeline names ------------------------------------------

/// Make a FIFO at `path`.
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[test]
fn a_fifo_as_plugin_is_refused_at_check_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plugin.wasm");
    mkfifo(&fifo);
    rejected_at_check(&fifo, &format!("plugin `hostile`: `{}` is a FIFO, not a regular file", fifo.display()));
}

#[test]
fn fifos_and_devices_as_inputs_or_mounts_are_refused_without_blocking() {
    let s = Setup::new(
        &cmd(),
        r#"inputs = { a = "file:fifo", b = "file:/dev/zero" }
mounts = { "/pipe" = "file:fifo.tar", "/null" = "file:/dev/null" }"#,
    );
    mkfifo(&s.root().join("fifo"));
    mkfifo(&s.root().join("fifo.tar"));
    for sub in ["check", "run"] {
        let m = s.engine(sub, &[]);
        let stderr = text(&m.output.stderr);
        assert_eq!(m.output.status.code(), Some(2), "{sub}: {stderr}");
        assert!(m.elapsed < TIME_BOUND, "{sub} took {:?}", m.elapsed);
        for message in [
            "error: input file `fifo` is a FIFO, not a regular file\n",
            "error: input file `/dev/zero` is a character device, not a regular file\n",
            "error: mount `/pipe` of task `hostile`: `fifo.tar` is a FIFO, not a directory or an archive\n",
            "error: mount `/null` of task `hostile`: `/dev/null` is a character device, not a directory or an archive\n",
        ] {
            assert!(stderr.contains(message), "{sub}: expected `{message}` in:\n{stderr}");
        }
        assert!(stderr.ends_with("/pipeline.toml` is invalid: 4 errors\n"), "{sub}: {stderr}");
        assert!(!s.root().join(".engine-store").exists(), "{sub}: a store was created");
    }
}

// ---- terminal escapes ------------------------------------------------------

/// The error message of `escapes.wat` in the report: the exact bytes.
const ESCAPES_ERROR: &str = "task error: bad \x1b]0;pwned\x07 title\rsucceeded: 2 tasks";

#[test]
fn plugin_text_reaches_the_terminal_escaped_on_threads_and_processes() {
    for executor in ["threads", "processes"] {
        let s = Setup::new(&wat("escapes"), "");
        let report_path = s.root().join("report.json");
        let m = s.engine("run", &["--executor", executor, "--report", report_path.to_str().unwrap()]);
        let (stdout, stderr) = (text(&m.output.stdout), text(&m.output.stderr));
        assert_eq!(m.output.status.code(), Some(1), "{executor}: {stderr}");
        // A log line ends at `\n` (a `\r` before it goes with it); each is
        // indented, so none can pass for a summary line.
        let want = "error: task `hostile` failed: task error: bad \\x1b]0;pwned\\x07 title\\rsucceeded: 2 tasks\n  \
                    last lines of its log:\n    \
                    [info] \\x1b]52;c;cHduZWQ=\\x07clip\n    succeeded: forged\\x1b[2J\\u{9b}\n";
        assert!(stderr.contains(want), "{executor}: expected\n{want}\nin:\n{stderr}");
        for out in [&m.output.stdout, &m.output.stderr] {
            assert!(!out.iter().any(|&b| b == 0x1b || b == 0x07 || b == b'\r'), "{executor}: raw control byte");
        }
        assert!(stdout.starts_with("failed: 2 tasks: 1 succeeded"), "{executor}: {stdout}");
        // The report keeps the exact bytes.
        let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        let hostile = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "hostile").unwrap();
        assert_eq!(hostile["error"]["message"], ESCAPES_ERROR);
    }
}

#[test]
fn plugin_metadata_and_import_names_are_escaped_by_inspect_plugins_and_check() {
    let m = run_measured(
        {
            let mut c = engine();
            c.arg("inspect").arg(wat("escapes"));
            c
        },
        TIME_BOUND,
    );
    let stdout = text(&m.output.stdout);
    assert_eq!(m.output.status.code(), Some(0), "{}", text(&m.output.stderr));
    for line in [
        "  name:        esc\\x1b[31m\n",
        "  version:     1\\x07\n",
        "  description: title \\x1b]0;pwned\\x07 \\r done\n",
        "  outputs:     out\\x1b\n",
    ] {
        assert!(stdout.contains(line), "expected `{line}` in:\n{stdout}");
    }
    assert!(!m.output.stdout.contains(&0x1b), "raw ESC in:\n{stdout}");
    // `--json` keeps the exact strings.
    let m = run_measured(
        {
            let mut c = engine();
            c.arg("inspect").arg("--json").arg(wat("escapes"));
            c
        },
        TIME_BOUND,
    );
    let v: Value = serde_json::from_slice(&m.output.stdout).unwrap();
    assert_eq!(v["meta"]["description"], "title \x1b]0;pwned\x07 \r done");
    // `engine plugins` lists stock plugins found on ENGINE_PLUGIN_PATH.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wat("escapes"), dir.path().join("esc.wasm")).unwrap();
    let m = run_measured(
        {
            let mut c = engine();
            c.arg("plugins").env("ENGINE_PLUGIN_PATH", dir.path());
            c
        },
        TIME_BOUND,
    );
    let stdout = text(&m.output.stdout);
    assert!(stdout.contains("\nstd:esc (sdk task): title \\x1b]0;pwned\\x07 \\r done\n  inputs: (none); outputs: out\\x1b; params: (not declared: any accepted)\n"), "{stdout}");
    assert!(!m.output.stdout.contains(&0x1b), "raw ESC in:\n{stdout}");
    // An import name in a diagnostic of `engine check` (and `engine inspect`).
    rejected_at_check(
        &wat("escape_import"),
        "imports `env\\x1b]52;c;cHduZWQ=\\x07.f\\rsucceeded`, which the engine does not provide",
    );
    let s = Setup::new(&wat("escape_import"), "");
    let m = s.engine("check", &[]);
    assert!(!m.output.stderr.iter().any(|&b| b == 0x1b || b == 0x07 || b == b'\r'), "raw control byte in check");
    let m = run_measured(
        {
            let mut c = engine();
            c.arg("inspect").arg(wat("escape_import"));
            c
        },
        TIME_BOUND,
    );
    assert_eq!(
        text(&m.output.stderr),
        format!(
            "error: invalid plugin `{}`: imports `env\\x1b]52;c;cHduZWQ=\\x07.f\\rsucceeded`, which the engine does not \
             provide (allowed modules: engine, wasi_snapshot_preview1)\n",
            wat("escape_import").display()
        )
    );
}

// ---- the virtual filesystem of command tasks (docs/security.md) ------------

#[test]
fn dotdot_and_absolute_paths_are_refused_by_every_path_call() {
    let o = run_ok(&cmd(), r#"args = ["escape"]"#);
    let text = std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6 * 13, "{text}");
    for l in &lines {
        assert!(l.ends_with(" errno 63"), "not refused with EPERM: {l}\n{text}");
    }
    for p in ["../x", "/etc/passwd", "/out/ok", "..", "../out/ok", "./../x"] {
        assert!(text.contains(&format!("{p}: path_symlink errno 63\n")), "{text}");
    }
}

#[test]
fn a_file_cannot_be_renamed_out_of_out() {
    for executor in ["threads", "processes"] {
        let o = contained_on(&cmd(), r#"args = ["rename_out"]"#, "error", "task error: exited with code 13", executor);
        assert_eq!(
            attempts(&o.log),
            [
                "denied: rename /out/x to /in/x: Operation not permitted (os error 63)",
                "denied: rename /out/x to /out/../x: Operation not permitted (os error 63)",
                "denied: rename /out/x to /x: No such file or directory (os error 44)",
                "denied: rename /out to /out2: No such file or directory (os error 44)",
                "denied: rename /out/x to /tmp/x: No such file or directory (os error 44)",
            ],
            "{executor}: {}",
            o.log
        );
    }
}

#[test]
fn guest_descriptors_are_capped_by_max_open_files() {
    // 3 stdio + /in + /out are open from the start.
    let o = run_ok(
        &cmd(),
        "args = [\"fds\", \"20000\"]\ninputs = { data = \"file:sentinel/keep.txt\" }\nmax_open_files = 32",
    );
    assert_eq!(
        std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(),
        "opened 27, then: No file descriptors available (os error 33); after closing them: ok\n"
    );
    let o = run_ok(&cmd(), "args = [\"fds\", \"20000\"]\ninputs = { data = \"file:sentinel/keep.txt\" }");
    assert_eq!(
        std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(),
        "opened 251, then: No file descriptors available (os error 33); after closing them: ok\n"
    );
    // With a workdir the task is on host directories (wasmtime-wasi's
    // descriptors, real host files): the same limit, one more preopen (`/w`).
    for (limit, opened) in [("\nmax_open_files = 32", 26), ("", 250)] {
        let o = run_ok(
            &cmd(),
            &format!(
                "args = [\"fds\", \"20000\"]\ninputs = {{ data = \"file:sentinel/keep.txt\" }}\n\
                 workdir = {{ at = \"/w\" }}{limit}"
            ),
        );
        assert_eq!(
            std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(),
            format!("opened {opened}, then: No file descriptors available (os error 33); after closing them: ok\n")
        );
    }
}

#[test]
fn a_hundred_thousand_files_in_out_are_stopped_on_processes_too() {
    contained_on(
        &cmd(),
        r#"args = ["files", "100000"]"#,
        "limit",
        "output count limit exceeded: the task created more than 10000 entries in /out",
        "processes",
    );
}

#[test]
fn a_write_after_a_one_tib_seek_is_stopped_by_the_limit_without_allocating() {
    for executor in ["threads", "processes"] {
        let o = contained_on(
            &cmd(),
            r#"args = ["sparse", "/out"]"#,
            "limit",
            "output size limit exceeded: the task's outputs total more than 4GiB",
            executor,
        );
        assert!(o.log.contains("seeked to 1099511627776"), "{}", o.log);
        contained_on(
            &cmd(),
            "args = [\"sparse\", \"/tmp\"]\nscratch = \"1MiB\"",
            "limit",
            "scratch limit exceeded: the task wrote more than 1MiB to /tmp",
            executor,
        );
    }
}

#[test]
fn an_unlinked_open_file_still_counts_against_out_and_scratch() {
    for executor in ["threads", "processes"] {
        contained_on(
            &cmd(),
            "args = [\"unlinked\", \"/out\", \"1024\"]\nmax_output_bytes = \"1MiB\"",
            "limit",
            "output size limit exceeded: the task's outputs total more than 1MiB",
            executor,
        );
        contained_on(
            &cmd(),
            "args = [\"unlinked\", \"/tmp\", \"1024\"]\nscratch = \"1MiB\"",
            "limit",
            "scratch limit exceeded: the task wrote more than 1MiB to /tmp",
            executor,
        );
    }
}

#[test]
fn deep_trees_are_bounded_and_leave_nothing_behind() {
    for executor in ["threads", "processes"] {
        let o = contained_on(
            &cmd(),
            r#"args = ["deep", "/out", "2500"]"#,
            "limit",
            "output depth limit exceeded: the task made a path of more than 64 components or 2048 bytes in /out",
            executor,
        );
        assert!(o.m.elapsed < Duration::from_secs(10));
        contained_on(
            &cmd(),
            "args = [\"deep\", \"/tmp\", \"6000\"]\nscratch = \"64MiB\"",
            "limit",
            "scratch limit exceeded: the task made a path of more than 64 components or 2048 bytes in /tmp",
            executor,
        );
    }
}

#[test]
fn listing_a_directory_while_it_changes_ends() {
    let o = run_ok(&cmd(), r#"args = ["readdir_mod"]"#);
    assert_eq!(std::fs::read_to_string(o.dir.path().join("out/hostile.txt")).unwrap(), "listing ended: true\n");
}

#[test]
fn many_command_tasks_leave_no_bytes_in_the_temp_dir_on_threads_and_processes() {
    // 300 tasks of the command benchmark guest (one byte to /out), each
    // taking two upstream outputs as inputs, with a private TMPDIR.
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut toml = format!("[pipeline]\nname = \"bytes\"\n\n[plugins]\none = \"{}\"\n\n", guest("one_byte").display());
    for i in 0..300 {
        toml.push_str(&format!("[tasks.t{i}]\nplugin = \"one\"\n"));
        if i >= 2 {
            toml.push_str(&format!("inputs = {{ a = \"t{}\", b = \"t{}\" }}\n", i - 1, i - 2));
        }
    }
    toml.push_str("\n[outputs]\n\"last.txt\" = \"t299.out\"\n");
    std::fs::write(dir.path().join("pipeline.toml"), toml).unwrap();
    for executor in ["threads", "processes"] {
        let mut c = engine();
        c.current_dir(dir.path())
            .args(["run", "pipeline.toml", "--quiet", "--no-cache", "--executor", executor])
            .env("TMPDIR", &tmp);
        let m = run_measured(c, TIME_BOUND);
        assert_eq!(m.output.status.code(), Some(0), "{executor}: {}", text(&m.output.stderr));
        assert_eq!(std::fs::read_to_string(dir.path().join("last.txt")).unwrap(), "x", "{executor}");
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{executor}: left in the temp dir: {left:?}");
    }
}
