//! WASI preview 1 filesystem conformance of command tasks: the guests
//! `fs_conformance` (Rust std) and `c_fs_conformance` (C, wasi-libc) print a
//! transcript of every filesystem call real programs make (see their
//! sources in `tests/guests/`). Each runs
//!
//! * through `engine run` as a command task (`/in/data` an input, `/out`,
//!   scratch `/tmp`), on the sync, threads and processes executors, and
//! * directly under plain `wasmtime_wasi` p1 preopens of a real temp dir
//!   (`/in` read-only, `/out` and `/tmp` read-write),
//!
//! and the transcripts must be identical. This is the guard for any change to
//! the command-task filesystem path. The official WASI test suite runs
//! outside CI (`tests/wasi-testsuite/`).

use std::fs;
use std::path::Path;

use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::util::{guest, run_engine};

/// The input the guests read at `/in/data`.
const DATA: &str = "0123456789";

/// The transcript of `wasm` under plain wasmtime-wasi preopens of a temp dir.
fn run_plain(wasm: &Path, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (input, out, tmp) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("tmp"));
    for d in [&input, &out, &tmp] {
        fs::create_dir(d).unwrap();
    }
    fs::write(input.join("data"), DATA).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(input.join("data"), fs::Permissions::from_mode(0o444)).unwrap();
    }
    let stdout_path = dir.path().join("stdout");
    let stdout = fs::File::create(&stdout_path).unwrap();
    let mut b = WasiCtxBuilder::new();
    b.allow_blocking_current_thread(true).args(&[name]).stdout(OutputFile::new(stdout));
    b.preopened_dir(&input, "/in", FsPerms::ReadOnly).unwrap();
    b.preopened_dir(&out, "/out", FsPerms::ReadWrite).unwrap();
    b.preopened_dir(&tmp, "/tmp", FsPerms::ReadWrite).unwrap();
    b.env("TMPDIR", "/tmp");
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_file(&engine, wasm).unwrap();
    let mut linker = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).unwrap();
    let mut store = wasmtime::Store::new(&engine, b.build_p1());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
    match start.call(&mut store, ()) {
        Ok(()) => {}
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(wasmtime_wasi::I32Exit(0)) => {}
            _ => panic!("{name} under plain wasmtime-wasi: {e:?}"),
        },
    }
    drop(store);
    fs::read_to_string(&stdout_path).unwrap()
}

/// The transcript of `wasm` as a command task of `engine run`.
fn run_engine_task(wasm: &Path, executor: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("data.txt"), DATA).unwrap();
    let pipeline = format!(
        r#"[pipeline]
name = "conformance"

[plugins]
fs_conformance = {wasm:?}

[tasks.t]
plugin = "fs_conformance"
inputs = {{ data = "file:data.txt" }}
scratch = true
stdout = "transcript"

[outputs]
"transcript.txt" = "t.transcript"
"#
    );
    fs::write(dir.path().join("pipeline.toml"), pipeline).unwrap();
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--executor", executor, "--quiet"]);
    assert_eq!(o.code, 0, "engine run on {executor}:\n{}{}", o.stdout, o.stderr);
    fs::read_to_string(dir.path().join("transcript.txt")).unwrap()
}

fn check(name: &str) {
    let wasm = guest(name);
    let plain = run_plain(&wasm, name);
    assert!(plain.ends_with("done\n"), "{name} did not finish under plain wasmtime-wasi:\n{plain}");
    assert!(plain.lines().count() > 80, "{name} printed a short transcript:\n{plain}");
    for executor in ["sync", "threads", "processes"] {
        let ours = run_engine_task(&wasm, executor);
        if ours != plain {
            let diff: Vec<String> = plain
                .lines()
                .zip(ours.lines().chain(std::iter::repeat("<missing>")))
                .filter(|(a, b)| a != b)
                .take(10)
                .map(|(a, b)| format!("  plain:  {a}\n  engine: {b}"))
                .collect();
            panic!("{name} on {executor}: transcripts differ:\n{}\n--- engine ---\n{ours}", diff.join("\n"));
        }
    }
}

#[test]
fn rust_std_filesystem_calls_match_plain_wasmtime_wasi_on_every_executor() {
    check("fs_conformance");
}

#[test]
fn c_wasi_libc_filesystem_calls_match_plain_wasmtime_wasi_on_every_executor() {
    check("c_fs_conformance");
}

/// `poll_oneoff` forms other than a plain sleep are answered with the guest memory
/// (found by the official suite's
/// `poll_oneoff_stdio`, which trapped with "missing required memory export").
#[test]
fn poll_oneoff_on_fds_reaches_wasmtime_wasi_with_the_guest_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = format!(
        "[pipeline]\nname = \"poll\"\n\n[plugins]\npoll = {:?}\n\n[tasks.t]\nplugin = \"poll\"\nsuccess_exit_codes = [2]\n\n[outputs]\n\"code\" = \"t.exit_code\"\n",
        crate::util::wat_guest("cmd_poll_fd").display().to_string()
    );
    fs::write(dir.path().join("pipeline.toml"), pipeline).unwrap();
    for executor in ["sync", "threads", "processes"] {
        let o = run_engine(dir.path(), &["run", "pipeline.toml", "--executor", executor, "--quiet"]);
        assert_eq!(o.code, 0, "{executor}: {}{}", o.stdout, o.stderr);
        assert_eq!(fs::read_to_string(dir.path().join("code")).unwrap(), "2\n", "{executor}");
    }
}
