//! The wasm runtime: guest ABI v1 conformance, sandbox limits and command
//! tasks, driven through `Runtime` with hand-written WAT fixtures
//! (`tests/guests/wat/`) and an in-memory store.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::runtime::{Runtime, RuntimeConfig};
use engine::store::mem::MemStore;
use engine::store::{BlobRef, BlobStore, BlobWriter, Digest, StoreResult};
use engine::task::abi::PluginKind;
use engine::task::message::{CommandOpts, LimitKind, Limits, MsgInput, PluginRef, TaskFailure, TaskMessage};

use crate::util::{input, list_input, run_wat, runtime, wat_guest};

fn sdk(name: &str, inputs: Vec<crate::util::TestInput>) -> crate::util::GuestRun {
    run_wat(name, inputs, "{}", Limits::default(), CommandOpts::default())
}

fn with_limits(name: &str, limits: Limits) -> crate::util::GuestRun {
    run_wat(name, vec![], "{}", limits, CommandOpts::default())
}

fn trap(message: &str) -> TaskFailure {
    TaskFailure::Trap { message: message.into() }
}

// ---------------------------------------------------------------- SDK tasks

#[test]
fn noop_task_succeeds_without_outputs() {
    let run = sdk("noop", vec![]);
    assert!(run.outputs().is_empty());
    assert_eq!(run.log, "");
    assert_eq!(run.metrics.peak_memory, 65536);
    assert!(run.metrics.end_us >= run.metrics.start_us);
}

#[test]
fn echo_streams_input_to_output_in_chunks() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let run = sdk("echo", vec![input("text", &data)]);
    assert_eq!(run.outputs()["out"], data);
    assert_eq!(run.log, "[info] echo done\n");
}

#[test]
fn zero_length_input_gives_empty_output() {
    let run = sdk("echo", vec![input("text", b"")]);
    assert_eq!(run.outputs()["out"], b"");
    // An output opened but never written is the empty blob.
    let run = sdk("echo", vec![]);
    assert_eq!(run.outputs().len(), 1);
    assert_eq!(run.outputs()["out"], b"");
}

#[test]
fn out_of_bounds_pointer_traps() {
    let run = sdk("oob_pointer", vec![input("text", b"abc")]);
    assert_eq!(run.failure(), &trap("host call `engine.input_read`: pointer/length out of bounds"));
}

#[test]
fn pointer_plus_length_overflow_traps() {
    let run = sdk("ptr_overflow", vec![]);
    assert_eq!(run.failure(), &trap("host call `engine.log`: pointer/length out of bounds"));
}

#[test]
fn read_past_end_returns_zero_and_bad_item_minus_one() {
    let run = sdk("read_past_end", vec![input("text", b"hello")]);
    let out = &run.outputs()["out"];
    let vals: Vec<i32> = out.chunks(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(vals, vec![0, 5, -1]);
}

#[test]
fn output_name_that_is_not_utf8_is_rejected() {
    let run = sdk("bad_utf8_name", vec![]);
    assert_eq!(
        run.failure(),
        &trap("host call `engine.output_open`: invalid output name `a\u{fffd}\u{fffd}`: not valid UTF-8")
    );
}

#[test]
fn one_mib_output_name_is_rejected_and_shown_truncated() {
    let run = sdk("huge_name", vec![]);
    let shown = "a".repeat(64);
    assert_eq!(
        run.failure(),
        &trap(&format!(
            "host call `engine.output_open`: invalid output name `{shown}...`: names must be 1 to 255 bytes long, this one is 1048576 bytes"
        ))
    );
}

#[test]
fn outputs_written_after_error_are_discarded() {
    let store = MemStore::new();
    let path = wat_guest("write_after_error");
    let msg = message(&path, vec![], Limits::default());
    let res = runtime().run_task(&msg, &store, 3, Instant::now());
    assert_eq!(res.outcome, Err(TaskFailure::Error { message: "bad input: line 3".into() }));
    assert_eq!(store.get(&Digest::of(b"before")), None);
    assert_eq!(store.get(&Digest::of(b"after")), None);
    assert_eq!(res.metrics.worker, 3);
}

#[test]
fn params_items_and_log_levels() {
    let run = run_wat(
        "params_log",
        vec![input("text", b"abc"), list_input("parts", &[&b"x"[..], &b"yz"[..]])],
        r#"{"lowercase":true}"#,
        Limits::default(),
        CommandOpts::default(),
    );
    assert_eq!(run.text("params"), r#"{"lowercase":true}"#);
    assert_eq!(run.text("items"), "text:-1:3\nparts:0:1\nparts:1:2\n");
    let bad = &run.outputs()["bad"];
    assert_eq!(i32::from_le_bytes(bad[0..4].try_into().unwrap()), -2);
    assert_eq!(i64::from_le_bytes(bad[4..12].try_into().unwrap()), -1);
    assert_eq!(i32::from_le_bytes(bad[12..16].try_into().unwrap()), -1);
    let expected_head = "[trace] hi \u{fffd}\n[debug] hi\n[info] hi\n[warn] hi\n[error] hi\n[info] hi\n[info] ";
    assert!(run.log.starts_with(expected_head), "log: {:?}", &run.log[..80.min(run.log.len())]);
    assert_eq!(run.log.len(), expected_head.len() + 4000 + 1);
}

#[test]
fn log_is_truncated_with_a_marker() {
    let limits = Limits { max_log_bytes: 40, ..Limits::default() };
    let run = run_wat("params_log", vec![], "{}", limits, CommandOpts::default());
    assert_eq!(
        run.log,
        "[trace] hi \u{fffd}\n[debug] hi\n[info] hi\n[war\n[log truncated: limit of 40 bytes reached]\n"
    );
}

#[test]
fn output_size_limit() {
    let limits = Limits { max_output_bytes: 100, ..Limits::default() };
    let run = run_wat("echo", vec![input("text", vec![7u8; 1000])], "{}", limits, CommandOpts::default());
    assert_eq!(
        run.failure(),
        &TaskFailure::Limit { limit: LimitKind::OutputBytes, detail: "the task's outputs total more than 100B".into() }
    );
}

#[test]
fn output_count_limit() {
    let limits = Limits { max_outputs: 1, ..Limits::default() };
    let run = run_wat("write_after_error", vec![], "{}", limits, CommandOpts::default());
    assert_eq!(
        run.failure(),
        &TaskFailure::Limit { limit: LimitKind::OutputCount, detail: "the task opened more than 1 outputs".into() }
    );
}

/// A store whose only input is 1 GiB of synthetic bytes (`offset % 251`),
/// generated on demand, and whose outputs are kept in memory.
struct SyntheticStore {
    len: u64,
    digest: Digest,
    out: MemStore,
    max_read: AtomicU64,
}

impl BlobStore for SyntheticStore {
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>> {
        self.out.put()
    }
    fn read_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize> {
        assert_eq!(digest, &self.digest);
        let n = (buf.len() as u64).min(self.len.saturating_sub(offset)) as usize;
        self.max_read.fetch_max(n as u64, Ordering::Relaxed);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((offset + i as u64) % 251) as u8;
        }
        Ok(n)
    }
    fn size(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        Ok((digest == &self.digest).then_some(self.len))
    }
    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }
    fn get_action(&self, key: &Digest) -> StoreResult<Option<Vec<u8>>> {
        self.out.get_action(key)
    }
    fn put_action(&self, key: &Digest, record: &[u8]) -> StoreResult<()> {
        self.out.put_action(key, record)
    }
}

#[test]
fn one_gib_input_streams_through_a_64_mib_task() {
    let len = 1u64 << 30;
    let store = SyntheticStore { len, digest: Digest([7; 32]), out: MemStore::new(), max_read: AtomicU64::new(0) };
    let path = wat_guest("checksum");
    let mut msg = message(&path, vec![], Limits { memory: 64 << 20, ..Limits::default() });
    msg.inputs =
        vec![MsgInput { name: "data".into(), list: false, items: vec![BlobRef { digest: store.digest, len }] }];
    let res = runtime().run_task(&msg, &store, 0, Instant::now());
    let outs = res.outcome.expect("checksum task succeeds");
    let sum = store.out.get(&outs[0].blob.digest).expect("output stored");
    // sum of (i % 251) for i in 0..2^30
    let full = len / 251;
    let rest = len % 251;
    let expected = full * (250 * 251 / 2) + rest * (rest - 1) / 2;
    assert_eq!(u64::from_le_bytes(sum.try_into().unwrap()), expected);
    assert_eq!(res.metrics.peak_memory, 2 * 65536);
    assert_eq!(store.max_read.load(Ordering::Relaxed), 65536);
}

#[test]
fn infinite_loop_times_out() {
    let t = Instant::now();
    let run = with_limits("infinite_loop", Limits { timeout: Some(Duration::from_millis(200)), ..Limits::default() });
    assert_eq!(run.failure(), &TaskFailure::Timeout { limit: Duration::from_millis(200) });
    assert!(t.elapsed() < Duration::from_secs(5));
    // Stopped inside wasm code: wasmtime had not stored the fuel count.
    assert_eq!(run.metrics.fuel_consumed, None);
    assert!(run.metrics.measured && run.metrics.peak_memory > 0);
}

#[test]
fn fuel_limit() {
    let run = with_limits("infinite_loop", Limits { fuel: Some(100_000), ..Limits::default() });
    assert_eq!(
        run.failure(),
        &TaskFailure::Limit { limit: LimitKind::Fuel, detail: "the task used all 100000 units of fuel".into() }
    );
    assert_eq!(run.metrics.fuel_consumed, Some(100_000));
}

#[test]
fn memory_grow_beyond_the_limit() {
    let run = with_limits("grow_memory", Limits { memory: 64 << 20, ..Limits::default() });
    assert_eq!(run.failure(), &TaskFailure::MemoryLimit { limit: 64 << 20 });
    assert_eq!(run.failure().to_string(), "memory limit of 64MiB exceeded");
    assert_eq!(run.metrics.fuel_consumed, None);
    // Within the limit the same guest succeeds.
    let run = with_limits("grow_memory", Limits { memory: 128 << 20, ..Limits::default() });
    assert!(run.outputs().is_empty());
    assert_eq!(run.metrics.peak_memory, 2001 * 65536);
}

#[test]
fn unbounded_recursion_traps() {
    let run = sdk("recursion", vec![]);
    assert_eq!(run.failure(), &trap("call stack exhausted"));
    assert_eq!(run.metrics.fuel_consumed, None);
}

#[test]
fn unreachable_traps_with_a_backtrace_in_the_log() {
    let run = sdk("unreachable", vec![]);
    assert_eq!(run.failure(), &trap("wasm `unreachable` instruction executed"));
    assert!(run.log.starts_with("[trap] "), "log: {}", run.log);
}

#[test]
fn cancel_all_cancels_running_and_future_tasks() {
    let cache = tempfile::tempdir().unwrap();
    let rt = std::sync::Arc::new(
        Runtime::new(RuntimeConfig { cache_dir: cache.path().into(), max_instances: 2, max_task_memory: 64 << 20 })
            .unwrap(),
    );
    let path = wat_guest("infinite_loop");
    let msg = message(&path, vec![], Limits::default());
    let rt2 = rt.clone();
    let t = std::thread::spawn(move || {
        let store = MemStore::new();
        rt2.run_task(&msg, &store, 0, Instant::now()).outcome
    });
    std::thread::sleep(Duration::from_millis(100));
    rt.cancel_all();
    assert_eq!(t.join().unwrap(), Err(TaskFailure::Cancelled));
    let msg = message(&wat_guest("noop"), vec![], Limits::default());
    assert_eq!(rt.run_task(&msg, &MemStore::new(), 0, Instant::now()).outcome, Err(TaskFailure::Cancelled));
}

// ---------------------------------------------------------------- loading

fn load_error(name: &str) -> String {
    let path = wat_guest(name);
    match runtime().load(&path) {
        Ok(p) => panic!("{name} loaded as {:?}", p.kind),
        Err(e) => e.to_string().replace(&path.display().to_string(), "PATH"),
    }
}

#[test]
fn unknown_import_is_rejected_at_load() {
    assert_eq!(
        load_error("unknown_import"),
        "invalid plugin `PATH`: imports `env.foo`, which the engine does not provide (allowed modules: engine, wasi_snapshot_preview1)"
    );
}

#[test]
fn missing_abi_marker_is_rejected_at_load() {
    assert_eq!(
        load_error("no_abi_marker"),
        "invalid plugin `PATH`: plugin does not export `engine_abi_v1`: built for another ABI version?"
    );
}

#[test]
fn malformed_bytes_are_rejected_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0\x01\xff").unwrap();
    let err = runtime().load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("invalid plugin `{}`: malformed module: unexpected end-of-file (at offset 0xa)", path.display())
    );
    std::fs::write(&path, b"hello").unwrap();
    let err = runtime().load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("invalid plugin `{}`: malformed module: ", path.display())), "{err}");
}

#[test]
fn load_reports_kind_and_uses_the_disk_cache() {
    let cache = tempfile::tempdir().unwrap();
    let cfg = || RuntimeConfig { cache_dir: cache.path().into(), max_instances: 2, max_task_memory: 64 << 20 };
    let path = wat_guest("echo");
    let first = Runtime::new(cfg()).unwrap().load(&path).unwrap();
    assert_eq!(first.kind, PluginKind::Sdk);
    assert!(!first.cache_hit);
    let entries: Vec<_> =
        std::fs::read_dir(cache.path().join("modules")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0].to_string_lossy().into_owned();
    assert!(name.starts_with(&first.digest.to_hex()) && name.ends_with(".cwasm"), "{name}");
    // A new runtime (a new process) loads the compiled module from disk.
    let rt = Runtime::new(cfg()).unwrap();
    let second = rt.load(&path).unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.digest, first.digest);
    drop(rt);
    // A corrupt entry is recompiled and overwritten. (Replace it by renaming:
    // truncating a file another runtime has mapped would crash that runtime,
    // which is why the cache itself only ever renames entries into place.)
    let garbage = cache.path().join("garbage");
    std::fs::write(&garbage, b"garbage").unwrap();
    std::fs::rename(&garbage, cache.path().join("modules").join(&name)).unwrap();
    let third = Runtime::new(cfg()).unwrap().load(&path).unwrap();
    assert!(!third.cache_hit);
    assert!(std::fs::metadata(cache.path().join("modules").join(&name)).unwrap().len() > 1000);
    assert_eq!(wat_kind("cmd_hello"), PluginKind::Command);
}

fn wat_kind(name: &str) -> PluginKind {
    runtime().load(&wat_guest(name)).unwrap().kind
}

// ---------------------------------------------------------------- command tasks

fn cmd(name: &str, inputs: Vec<crate::util::TestInput>, command: CommandOpts) -> crate::util::GuestRun {
    run_wat(name, inputs, "{}", Limits::default(), command)
}

#[test]
fn command_stdout_and_stderr_go_to_the_log() {
    let run = cmd("cmd_hello", vec![], CommandOpts::default());
    // Only the exit status, which every command that succeeds has.
    let outs: Vec<(&str, &[u8])> = run.outputs().iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    assert_eq!(outs, vec![("exit_code", &b"0\n"[..])]);
    assert_eq!(run.log, "hello\ncareful\n");
    assert_eq!(run.metrics.exit_code, Some(0));
}

#[test]
fn command_stdout_captured_as_an_output() {
    let run = cmd("cmd_hello", vec![], CommandOpts { stdout: Some("greeting".into()), ..CommandOpts::default() });
    assert_eq!(run.text("greeting"), "hello\n");
    assert_eq!(run.log, "careful\n");
}

#[test]
fn command_exit_code_fails_the_task() {
    let run = cmd("cmd_exit", vec![], CommandOpts::default());
    assert_eq!(run.error(), "exited with code 1");
    assert_eq!(run.metrics.exit_code, Some(1));
}

#[test]
fn command_reads_in_and_writes_out() {
    let run = cmd(
        "cmd_copy",
        vec![input("text", b"some text\n"), list_input("parts", &[&b"p0"[..], &b"p1!"[..]])],
        CommandOpts { stdout: Some("echoed".into()), ..CommandOpts::default() },
    );
    let outs = run.outputs();
    assert_eq!(outs.keys().collect::<Vec<_>>(), vec!["copy", "echoed", "exit_code", "stats/part1"]);
    assert_eq!(outs["copy"], b"some text\n");
    assert_eq!(outs["echoed"], b"some text\n");
    assert_eq!(outs["stats/part1"], b"p1!");
}

#[test]
fn command_inputs_are_read_only() {
    let run = cmd("cmd_write_in", vec![input("text", b"x")], CommandOpts::default());
    // errno 76 = ENOTCAPABLE / 63 = EPERM / 2 = EACCES: anything but success.
    let msg = run.error();
    assert!(msg.starts_with("exited with code "), "{msg}");
    assert_ne!(msg, "exited with code 0");
}

#[test]
fn command_args_and_env_come_only_from_the_task() {
    let run = cmd(
        "cmd_args",
        vec![],
        CommandOpts {
            args: vec!["--flag".into(), "two words".into()],
            env: vec![("LANG".into(), "C".into())],
            stdout: Some("out".into()),
            ..CommandOpts::default()
        },
    );
    assert_eq!(run.text("out"), "cmd_args\0--flag\0two words\0LANG=C\0");
}

#[test]
fn command_stdin_from_an_input() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let run = cmd(
        "cmd_cat",
        vec![input("text", &data)],
        CommandOpts { stdin: Some("text".into()), stdout: Some("out".into()), ..CommandOpts::default() },
    );
    assert_eq!(run.outputs()["out"], data);
}

#[test]
fn command_symlink_in_out_is_rejected() {
    let run = cmd("cmd_symlink", vec![], CommandOpts::default());
    assert_eq!(run.error(), "`/out/link` is a symbolic link; only regular files can be outputs");
}

// ---------------------------------------------------------------- engine inspect

#[test]
fn inspect_prints_kind_metadata_imports_exports() {
    let path = wat_guest("meta");
    let out = Command::new(env!("CARGO_BIN_EXE_engine")).arg("inspect").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let digest = Digest::of(&std::fs::read(&path).unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "plugin:  {}\nkind:    sdk task\nsha256:  {digest}\nsize:    {size} bytes\nmetadata:\n  name:        wordcount\n  version:     0.1.0\n  abi:         1\n  description: counts words\n  inputs:      text\n  outputs:     out\n  params:      lowercase, min_len\nimports (3):\n  engine.input_read (func)\n  engine.output_open (func)\n  wasi_snapshot_preview1.fd_write (func)\nexports (3):\n  memory (memory)\n  engine_abi_v1 (func)\n  run (func)\n",
            path.display()
        )
    );
    let out = Command::new(env!("CARGO_BIN_EXE_engine")).args(["inspect", "--json"]).arg(&path).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "sdk");
    assert_eq!(v["meta"]["params"], serde_json::json!(["lowercase", "min_len"]));
    assert_eq!(
        v["imports"][2],
        serde_json::json!({"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"})
    );

    let bad = wat_guest("unknown_import");
    let out = Command::new(env!("CARGO_BIN_EXE_engine")).arg("inspect").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "error: invalid plugin `{}`: imports `env.foo`, which the engine does not provide (allowed modules: engine, wasi_snapshot_preview1)\n",
            bad.display()
        )
    );
}

// ---------------------------------------------------------------- helpers

fn message(path: &std::path::Path, inputs: Vec<MsgInput>, limits: Limits) -> TaskMessage {
    let bytes = std::fs::read(path).unwrap();
    TaskMessage {
        task: 0,
        name: "t".into(),
        attempt: 1,
        plugin: PluginRef { digest: Digest::of(&bytes), path: path.to_path_buf() },
        inputs,
        params: "{}".into(),
        limits,
        command: CommandOpts::default(),
        deterministic: false,
    }
}

fn clock_run(deterministic: bool, task: &str) -> Vec<u8> {
    let store = MemStore::new();
    let mut msg = message(&wat_guest("cmd_clock"), vec![], Limits::default());
    msg.deterministic = deterministic;
    msg.name = task.into();
    msg.command.stdout = Some("out".into());
    let res = runtime().run_task(&msg, &store, 0, Instant::now());
    let outs = res.outcome.expect("cmd_clock succeeds");
    store.get(&outs[0].blob.digest).unwrap()
}

#[test]
fn deterministic_tasks_get_fixed_clocks_and_seeded_random() {
    let a = clock_run(true, "t[1]");
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    assert_eq!(u64_at(&a, 0), 946_684_800_000_000_000);
    assert_eq!(u64_at(&a, 8), 0);
    assert_eq!(a, clock_run(true, "t[1]"));
    // The seed comes from the task name.
    assert_ne!(a[16..], clock_run(true, "t[2]")[16..]);
    let real = clock_run(false, "t[1]");
    assert!(u64_at(&real, 0) > 1_700_000_000_000_000_000);
}

/// A large `/out` file (past the 64 MiB an attempt keeps in memory, so in a
/// spill file) is stored under the sha256 of its bytes whether it was written
/// in order (hashed while it was written) or not (truncated and written
/// again: hashed when published), and a large `/in` file (read through the
/// store's own file) arrives byte for byte, on both executors.
#[test]
fn a_large_out_file_is_stored_under_its_digest_written_in_order_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..80u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "[pipeline]\nname = \"p\"\n[plugins]\nprobe = \"{}\"\n\
             [tasks.once]\nplugin = \"probe\"\ninputs = {{ a = \"file:big.bin\" }}\n\
             args = [\"copy\", \"/in/a\", \"/out/out\"]\n\
             [tasks.twice]\nplugin = \"probe\"\ninputs = {{ a = \"file:big.bin\" }}\n\
             args = [\"copy\", \"/in/a\", \"/out/out\", \"copy\", \"/in/a\", \"/out/out\"]\n\
             [outputs]\n\"once.bin\" = \"once.out\"\n\"twice.bin\" = \"twice.out\"\n",
            crate::util::guest("cmd_probe").display()
        ),
    )
    .unwrap();
    let mut want = b"copy\n".to_vec();
    want.extend_from_slice(&big);
    for executor in ["threads", "processes"] {
        let store = dir.path().join(format!("store-{executor}"));
        crate::util::EngineRun::new(dir.path())
            .executor(executor)
            .args([std::ffi::OsStr::new("--no-cache"), "--store".as_ref(), store.as_os_str()])
            .run()
            .ok();
        for name in ["once.bin", "twice.bin"] {
            let got = std::fs::read(dir.path().join(name)).unwrap();
            assert!(got == want, "{executor}: {name} differs ({} bytes)", got.len());
        }
        // Every object file re-hashes to its name.
        let mut objects = 0;
        for sub in std::fs::read_dir(store.join("objects")).unwrap() {
            for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                let f = f.unwrap().path();
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(engine::store::Digest::of(&std::fs::read(&f).unwrap()).to_hex(), name, "{executor}");
                objects += 1;
            }
        }
        assert_eq!(objects, 2, "{executor}: the input and the one output");
    }
}
