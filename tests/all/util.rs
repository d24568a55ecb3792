//! Shared test helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use engine::runtime::{Runtime, RuntimeConfig};
use engine::store::mem::MemStore;
use engine::store::{BlobStore, Digest};
use engine::task::message::{CommandOpts, Limits, MsgInput, PluginRef, TaskFailure, TaskMessage, TaskResult};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("engine/ has a parent").to_path_buf()
}

/// Cargo's target directory of this build (`$CARGO_TARGET_DIR` or `target/`),
/// found from the engine binary under test: `TARGET/release/engine`.
pub fn target_dir() -> PathBuf {
    // Canonical, as the engine sees its own path (`CARGO_TARGET_DIR` may hold `..`).
    let exe = Path::new(env!("CARGO_BIN_EXE_engine"));
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    exe.parent().and_then(Path::parent).expect("the engine binary is TARGET/<profile>/engine").to_path_buf()
}

/// Where `xtask/build-guests.sh` puts the stock plugins (`plugins/*`): what
/// `std:<name>` resolves to for the engine binary under test.
pub fn plugins_dir() -> PathBuf {
    target_dir().join("plugins")
}

/// The stock plugin names, from the crates in `plugins/`, sorted.
pub fn stock_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Where `xtask/build-guests.sh` puts the test-only guests (`tests/guests/rust/*`)
/// and the C SDK example.
pub fn test_guests_dir() -> PathBuf {
    target_dir().join("test-guests")
}

/// The path of guest module `name`: a stock plugin such as `wordcount` (in
/// [`plugins_dir`], when `plugins/<name>` exists) or a test guest such as
/// `flaky`, `hog` or the C example `c_wordcount` (in [`test_guests_dir`]).
/// Runs `xtask/build-guests.sh` once per test process if the file is missing.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = if repo_root().join("plugins").join(name).join("Cargo.toml").exists() {
        plugins_dir()
    } else {
        test_guests_dir()
    };
    let path = dir.join(format!("{name}.wasm"));
    if !path.exists() {
        let built = BUILT.get_or_init(|| {
            let script = repo_root().join("xtask/build-guests.sh");
            let out = Command::new("bash")
                .arg(&script)
                .env("CARGO_TARGET_DIR", target_dir())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} failed ({}):\n{}{}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        });
        if let Err(e) = built {
            panic!("{e}");
        }
        assert!(path.exists(), "xtask/build-guests.sh did not produce {}", path.display());
    }
    path
}

/// One input of a task run through [`run_guest`].
pub struct TestInput {
    name: String,
    list: bool,
    items: Vec<Vec<u8>>,
}

/// A scalar input `name` with these bytes.
pub fn input(name: &str, bytes: impl AsRef<[u8]>) -> TestInput {
    TestInput { name: name.into(), list: false, items: vec![bytes.as_ref().to_vec()] }
}

/// A list input `name` with these items, in order.
pub fn list_input<B: AsRef<[u8]>>(name: &str, items: &[B]) -> TestInput {
    TestInput { name: name.into(), list: true, items: items.iter().map(|b| b.as_ref().to_vec()).collect() }
}

/// What a guest run produced.
pub struct GuestRun {
    /// Outputs by name, or why the attempt failed.
    pub outcome: Result<BTreeMap<String, Vec<u8>>, TaskFailure>,
    /// The task log, lossily decoded.
    pub log: String,
    pub metrics: engine::task::message::TaskMetrics,
}

impl GuestRun {
    /// The outputs of a successful run; panics with the failure otherwise.
    pub fn outputs(&self) -> &BTreeMap<String, Vec<u8>> {
        match &self.outcome {
            Ok(outs) => outs,
            Err(f) => panic!("task failed: {f}\nlog:\n{}", self.log),
        }
    }

    /// Output `name` of a successful run as UTF-8 text.
    pub fn text(&self, name: &str) -> String {
        let outs = self.outputs();
        let bytes = outs.get(name).unwrap_or_else(|| panic!("no output `{name}`; outputs: {:?}", outs.keys()));
        String::from_utf8(bytes.clone()).expect("output is UTF-8")
    }

    /// The failure of a failed run; panics if it succeeded.
    pub fn failure(&self) -> &TaskFailure {
        match &self.outcome {
            Ok(outs) => panic!("task succeeded with outputs {:?}", outs.keys()),
            Err(f) => f,
        }
    }

    /// The message of a task error (`TaskFailure::Error`); panics otherwise.
    pub fn error(&self) -> String {
        match self.failure() {
            TaskFailure::Error { message } => message.clone(),
            other => panic!("expected a task error, got {other:?}"),
        }
    }
}

/// A runtime shared by the tests of this process, with its compiled-module
/// cache under the target directory.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let cache_dir = target_dir().join("test-module-cache");
        Runtime::new(RuntimeConfig { cache_dir, max_instances: 16, max_task_memory: 256 << 20 })
            .expect("runtime starts")
    })
}

/// Run guest `name` (see [`guest`]) once through the runtime, as a worker
/// would: inputs are put into a fresh in-memory store, `params` is the params
/// JSON, limits are the defaults.
pub fn run_guest(name: &str, inputs: Vec<TestInput>, params: &str) -> GuestRun {
    run_guest_with(name, inputs, params, Limits::default(), CommandOpts::default())
}

/// [`run_guest`] with explicit limits and command-task options.
pub fn run_guest_with(
    name: &str,
    inputs: Vec<TestInput>,
    params: &str,
    limits: Limits,
    command: CommandOpts,
) -> GuestRun {
    run_module(&guest(name), inputs, params, limits, command)
}

/// Compile `tests/guests/wat/<name>.wat` to `TARGET/wat-guests/<name>.wasm`
/// and return that path.
pub fn wat_guest(name: &str) -> PathBuf {
    wat_module(&repo_root().join("tests/guests/wat").join(format!("{name}.wat")), name)
}

/// Compile the WAT file `src` to `TARGET/wat-guests/<name>.wasm` and return
/// that path (`name` must be unique across fixture directories).
pub fn wat_module(src: &Path, name: &str) -> PathBuf {
    let bytes = wat::parse_file(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let dir = wat_guests_dir();
    std::fs::create_dir_all(&dir).expect("create TARGET/wat-guests");
    let path = dir.join(format!("{name}.wasm"));
    // Write atomically: tests run in parallel and may share a fixture.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    std::fs::write(&tmp, &bytes).expect("write wasm");
    std::fs::rename(&tmp, &path).expect("rename wasm");
    path
}

/// Where [`wat_module`] writes the modules it assembles.
pub fn wat_guests_dir() -> PathBuf {
    target_dir().join("wat-guests")
}

/// Run WAT fixture `name` (see [`wat_guest`]) like [`run_guest_with`].
pub fn run_wat(name: &str, inputs: Vec<TestInput>, params: &str, limits: Limits, command: CommandOpts) -> GuestRun {
    run_module(&wat_guest(name), inputs, params, limits, command)
}

/// Run the module at `path` once through the shared runtime.
pub fn run_module(path: &Path, inputs: Vec<TestInput>, params: &str, limits: Limits, command: CommandOpts) -> GuestRun {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let path = path.to_path_buf();
    let bytes = std::fs::read(&path).expect("read guest");
    let store = MemStore::new();
    let inputs = inputs
        .into_iter()
        .map(|i| MsgInput {
            name: i.name,
            list: i.list,
            items: i.items.iter().map(|b| store.put_bytes(b).expect("put input")).collect(),
        })
        .collect();
    let msg = TaskMessage {
        task: 0,
        name,
        attempt: 1,
        plugin: PluginRef { digest: Digest::of(&bytes), path },
        inputs,
        params: params.to_string(),
        limits,
        command,
        deterministic: false,
    };
    let result: TaskResult = runtime().run_task(&msg, &store, 0, Instant::now());
    let outcome = result.outcome.map(|outs| {
        outs.into_iter().map(|o| (o.name, store.get(&o.blob.digest).expect("output blob is in the store"))).collect()
    });
    GuestRun { outcome, log: String::from_utf8_lossy(&result.log).into_owned(), metrics: result.metrics }
}

/// The `engine` binary under test, with its compiled-module cache under the
/// target directory (so tests never touch the user's cache) and no
/// `$ENGINE_PLUGIN_PATH` (so `std:` names resolve to [`plugins_dir`]).
pub fn engine() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_engine"));
    c.env("ENGINE_CACHE_DIR", target_dir().join("test-module-cache"));
    c.env_remove("ENGINE_PLUGIN_PATH");
    // Tests compare exact output: no colour asked from outside.
    c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    c
}

/// Where `xtask/build-languages.sh` puts the guest-language examples.
pub fn languages_dir() -> PathBuf {
    target_dir().join("languages")
}

/// The path of guest-language module `name` (e.g. `zig_wordcount`, `c_words`),
/// built by `xtask/build-languages.sh` (run once per test process if a file is
/// missing). A module whose toolchain is missing cannot be built: under CI
/// (env `CI` set) that fails the test; locally it returns `None` after a loud
/// message on stderr, and the caller skips that language.
pub fn language_guest(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<String> = OnceLock::new();
    let path = languages_dir().join(format!("{name}.wasm"));
    if !path.exists() {
        let log = BUILT.get_or_init(|| {
            let script = repo_root().join("xtask/build-languages.sh");
            match Command::new("bash").arg(&script).env("CARGO_TARGET_DIR", target_dir()).output() {
                Ok(out) => format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
                Err(e) => format!("cannot run {}: {e}", script.display()),
            }
        });
        if !path.exists() {
            let msg = format!(
                "{} is missing: its toolchain is not installed (run `bash xtask/toolchains.sh && bash xtask/build-languages.sh`)\n{log}",
                path.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\nSKIPPING {name}: {msg}!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        }
    }
    Some(path)
}

/// Start `cmd` with stdout and stderr piped, call `ready` (a sleep, or a
/// wait for its workers), press Ctrl-C (SIGINT to the child only, not to
/// processes it started) and wait for it to end: its output, and how long it
/// took to end after the signal.
pub fn interrupted(mut cmd: Command, ready: impl FnOnce(&std::process::Child)) -> (std::process::Output, Duration) {
    use std::process::Stdio;
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the child");
    ready(&child);
    let sent = Instant::now();
    // SAFETY: signalling our own child, which has not been waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().expect("wait for the child");
    (o, sent.elapsed())
}

/// What [`run_measured`] observed about a child process.
pub struct Measured {
    pub output: std::process::Output,
    /// Peak resident set size of the child (and of any children it waited
    /// for), in KiB, from `wait4`'s `ru_maxrss`.
    pub max_rss_kib: u64,
    /// Wall-clock time from spawn to exit.
    pub elapsed: std::time::Duration,
}

/// Run `cmd` to completion with stdout and stderr captured, measuring its
/// peak RSS and wall time. If it runs longer than `kill_after` it is killed
/// (the test then fails on its exit status and elapsed time).
pub fn run_measured(mut cmd: Command, kill_after: std::time::Duration) -> Measured {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    // Reaped below with wait4 (to read its rusage), not `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("spawn the child");
    let pid = child.id() as libc::pid_t;
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout is piped")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr is piped")));
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + kill_after;
            while Instant::now() < until {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if !done.load(Ordering::SeqCst) {
                // SAFETY: plain syscall; the child has not been reaped yet (`done` is unset).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
    }
    let mut status = 0;
    // SAFETY: `rusage` is plain data, filled in by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into valid locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, Ordering::SeqCst);
    assert_eq!(r, pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let elapsed = start.elapsed();
    let output = std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    Measured { output, max_rss_kib: ru.ru_maxrss as u64, elapsed }
}

/// One `engine run`, built up and then started: the way tests run a
/// pipeline. `EngineRun::new(dir)` runs `dir/pipeline.toml` with its report
/// at `dir/report.json` and a short retry backoff (10 ms, so retry tests stay
/// fast); the builder adds flags and environment, `run` returns a [`Ran`].
pub struct EngineRun {
    cmd: Command,
    report: PathBuf,
    args: Vec<std::ffi::OsString>,
}

impl EngineRun {
    /// `engine run DIR/pipeline.toml ... --report DIR/report.json`.
    pub fn new(dir: &Path) -> EngineRun {
        EngineRun::pipeline(&dir.join("pipeline.toml"), &dir.join("report.json"))
    }

    /// `engine run PIPELINE ... --report REPORT`, in the pipeline's directory.
    pub fn pipeline(pipeline: &Path, report: &Path) -> EngineRun {
        let mut cmd = engine();
        cmd.env("ENGINE_RETRY_BACKOFF", "10ms").env_remove("ENGINE_PROFILE_LOAD");
        if let Some(dir) = pipeline.parent() {
            cmd.current_dir(dir);
        }
        EngineRun { cmd, report: report.to_path_buf(), args: vec!["run".into(), pipeline.into()] }
    }

    /// More arguments, after the pipeline.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> EngineRun {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// `--executor EXECUTOR`.
    pub fn executor(self, executor: &str) -> EngineRun {
        self.args(["--executor", executor])
    }

    /// An environment variable of the engine process.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> EngineRun {
        self.cmd.env(key, value);
        self
    }

    /// Anything else on the command (current directory, more environment).
    pub fn with(mut self, f: impl FnOnce(&mut Command)) -> EngineRun {
        f(&mut self.cmd);
        self
    }

    /// Run it to the end.
    pub fn run(mut self) -> Ran {
        let start = Instant::now();
        let out = self
            .cmd
            .args(&self.args)
            .arg("--report")
            .arg(&self.report)
            .output()
            .expect("cannot start the engine binary");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
            report: self.report,
        }
    }
}

impl EngineRun {
    /// Start it in the background, with stdout and stderr piped (for a test
    /// that talks to the run while it runs).
    pub fn spawn(mut self) -> std::process::Child {
        use std::process::Stdio;
        self.cmd
            .args(&self.args)
            .arg("--report")
            .arg(&self.report)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the engine binary")
    }
}

/// What an [`EngineRun`] gave.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
    report: PathBuf,
}

impl Ran {
    /// Assert the run exited 0, showing its output when not.
    #[track_caller]
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// The JSON report.
    #[track_caller]
    pub fn report(&self) -> serde_json::Value {
        read_report(&self.report)
    }
}

/// The JSON report at `path`.
#[track_caller]
pub fn read_report(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("the report is JSON")
}

/// The report at `dir/report.json` (where [`EngineRun::new`] puts it).
#[track_caller]
pub fn report(dir: &Path) -> serde_json::Value {
    read_report(&dir.join("report.json"))
}

/// The report's entry for task `id`.
#[track_caller]
pub fn task<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let tasks = report["tasks"].as_array().expect("the report lists tasks");
    tasks.iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("no task `{id}` in the report"))
}

/// What a run of the `engine` binary produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the real `engine` binary with `args` in directory `dir`.
pub fn run_engine(dir: &Path, args: &[&str]) -> Output {
    let out = engine()
        .args(args)
        .current_dir(dir)
        .env_remove("ENGINE_PROFILE_LOAD")
        .output()
        .expect("cannot start the engine binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compare `actual` with the contents of the file `expected` (expect-test
/// style). With `UPDATE_EXPECT=1` the file is (re)written instead. Returns a
/// description of the mismatch.
pub fn check_expect_file(expected: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(expected, actual).map_err(|e| format!("cannot write {}: {e}", expected.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if want == actual {
        Ok(())
    } else {
        Err(format!(
            "{} differs (run with UPDATE_EXPECT=1 to accept)\n--- expected\n{want}\n--- actual\n{actual}",
            expected.display()
        ))
    }
}

/// Directories [`copy_files`] leaves behind: an example's expected bytes, and
/// what an earlier run in the source tree left there (the demo runs the
/// word-count example in place), which would otherwise make a test see
/// outputs or a store it did not produce.
const COPY_SKIPS: [&str; 3] = ["expected", "out", ".engine-store"];

/// Copy the files of `src` into `dst`, and its subdirectories but [`COPY_SKIPS`].
pub fn copy_files(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        } else if t.is_dir() && !COPY_SKIPS.contains(&e.file_name().to_string_lossy().as_ref()) {
            copy_files(&e.path(), &dst.join(e.file_name()));
        }
    }
}

/// Tiny test plugins, assembled from WAT, written to `dir/plugins/`:
/// `sdk.wasm` (an SDK task with metadata: inputs `in`, outputs `out` and
/// `stats`, params `lowercase`, `min_len` and `part`), `cmd.wasm` (a WASI command),
/// `badimport.wasm` (a command importing `env.clock`) and `notwasm.wasm` (text).
pub fn write_test_plugins(dir: &Path) {
    let p = dir.join("plugins");
    std::fs::create_dir_all(&p).unwrap();
    let sdk = r#"(module
        (import "engine" "log" (func (param i32 i32 i32)))
        (memory (export "memory") 1)
        (func (export "engine_abi_v1"))
        (func (export "run") (result i32) i32.const 0)
        (@custom "engine.task" "{\"abi\":1,\"name\":\"sdk\",\"version\":\"0.1.0\",\"inputs\":[\"in\"],\"outputs\":[\"out\",\"stats\"],\"params\":[\"lowercase\",\"min_len\",\"part\"]}"))"#;
    let cmd = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")))"#;
    let bad = r#"(module
        (import "env" "clock" (func (result i64)))
        (memory (export "memory") 1)
        (func (export "_start")))"#;
    std::fs::write(p.join("sdk.wasm"), wat::parse_str(sdk).unwrap()).unwrap();
    std::fs::write(p.join("cmd.wasm"), wat::parse_str(cmd).unwrap()).unwrap();
    std::fs::write(p.join("badimport.wasm"), wat::parse_str(bad).unwrap()).unwrap();
    std::fs::write(p.join("notwasm.wasm"), "this is not wasm\n").unwrap();
}

/// A program of the tests' Python venv (`xtask/setup-python.sh` makes
/// `TARGET/pyenv`). When the venv is missing: under CI (env `CI` set) that
/// fails the test; locally it returns `None` after a loud message, and the
/// caller skips.
pub fn pyenv_program(name: &str) -> Option<PathBuf> {
    let path = target_dir().join("pyenv/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} is missing: run `bash xtask/setup-python.sh`", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\nSKIPPING: {msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

/// A free TCP port on 127.0.0.1 (free when asked; a server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A real S3-compatible server for a test: `moto_server` on 127.0.0.1 and a
/// free port, data in memory. It runs under a small Python guard that kills
/// it when its stdin closes, so the server goes away when this value is
/// dropped (also when the test panics) and when the test process dies.
pub struct Moto {
    guard: std::process::Child,
    pub endpoint: String,
    log: PathBuf,
}

/// The credentials tests give moto (any key works unless authentication is on).
pub const MOTO_KEY: &str = "testing";

impl Moto {
    /// Start a server; `auth` makes it check credentials from the first
    /// request (it then knows no key at all). `None`: skipped, see [`pyenv_program`].
    pub fn start(auth: bool) -> Option<Moto> {
        use std::process::Stdio;
        let python = pyenv_program("python")?;
        let server = pyenv_program("moto_server")?;
        let port = free_port();
        let log = std::env::temp_dir().join(format!("engine-test-moto-{port}.log"));
        let guard_py = "import subprocess, sys\n\
            p = subprocess.Popen(sys.argv[1:], stdout=sys.stderr, stderr=sys.stderr)\n\
            sys.stdin.read()\n\
            p.kill(); p.wait()\n";
        let mut cmd = Command::new(python);
        cmd.arg("-c").arg(guard_py).arg(&server).args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("moto log file"));
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        } else {
            cmd.env_remove("INITIAL_NO_AUTH_ACTION_COUNT");
        }
        let guard = cmd.spawn().expect("start moto_server");
        let mut moto = Moto { guard, endpoint: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while moto.http("GET", "/").is_err() {
            if let Ok(Some(status)) = moto.guard.try_wait() {
                panic!("moto_server exited ({status}):\n{}", std::fs::read_to_string(&moto.log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "moto_server did not answer on {} within 60s", moto.endpoint);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(moto)
    }

    /// One unsigned HTTP/1.1 request; returns the status code.
    pub fn http(&self, method: &str, path: &str) -> std::io::Result<u16> {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        resp.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other(resp.clone()))
    }

    pub fn create_bucket(&self, bucket: &str) {
        let status = self.http("PUT", &format!("/{bucket}")).expect("create bucket");
        assert_eq!(status, 200, "creating bucket {bucket} on moto");
    }

    /// The environment an `engine` run needs to use this server.
    pub fn env(&self, cmd: &mut Command) {
        for k in
            ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"]
        {
            cmd.env_remove(k);
        }
        cmd.envs(self.vars());
    }

    /// The variables [`Moto::env`] sets (for processes started by others,
    /// such as Dask workers).
    pub fn vars(&self) -> [(&'static str, &str); 6] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", MOTO_KEY),
            ("AWS_SECRET_ACCESS_KEY", MOTO_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]
    }

    /// An `object_store` client of `bucket` on this server (for checking and
    /// tampering with what the engine stored).
    #[cfg(feature = "s3")]
    pub fn client(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(MOTO_KEY)
            .with_secret_access_key(MOTO_KEY)
            .build()
            .expect("an S3 client for moto")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the guard's stdin makes it kill the server; then make sure of the guard.
        drop(self.guard.stdin.take());
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.guard.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

/// Run an `object_store` future to completion (tests are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap())
        .block_on(f)
}
