//! Shared test helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use engine::exec::message::{CommandOpts, Limits, MsgInput, PluginRef, TaskFailure, TaskMessage, TaskResult};
use engine::runtime::{Runtime, RuntimeConfig};
use engine::store::mem::MemStore;
use engine::store::{BlobStore, Digest};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("engine/ has a parent").to_path_buf()
}

/// Where `xtask/build-guests.sh` puts every guest module.
pub fn guests_dir() -> PathBuf {
    repo_root().join("target/guests/wasm32-wasip1/release")
}

/// The path of guest module `name` (a stock plugin such as `wordcount`, a test
/// guest such as `flaky` or `cmd_cat`, or the C example `c_wordcount`).
/// Runs `xtask/build-guests.sh` once per test process if the file is missing.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let path = guests_dir().join(format!("{name}.wasm"));
    if !path.exists() {
        let built = BUILT.get_or_init(|| {
            let script = repo_root().join("xtask/build-guests.sh");
            let out = Command::new("bash").arg(&script).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
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
/// cache under `target/`.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let cache_dir = repo_root().join("target/test-module-cache");
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
pub fn run_guest_with(name: &str, inputs: Vec<TestInput>, params: &str, limits: Limits, command: CommandOpts) -> GuestRun {
    let path = guest(name);
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
        name: name.to_string(),
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
        outs.into_iter()
            .map(|o| (o.name, store.get(&o.blob.digest).expect("output blob is in the store")))
            .collect()
    });
    GuestRun { outcome, log: String::from_utf8_lossy(&result.log).into_owned() }
}

/// The `engine` binary under test, with its compiled-module cache under `target/`
/// (so tests never touch the user's cache).
pub fn engine() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_engine"));
    c.env("ENGINE_CACHE_DIR", repo_root().join("target/test-module-cache"));
    c
}

/// Where `xtask/build-languages.sh` puts the guest-language examples.
pub fn languages_dir() -> PathBuf {
    repo_root().join("target/languages")
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
            match Command::new("bash").arg(&script).output() {
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
            eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\nSKIPPING {name}: {msg}!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
            return None;
        }
    }
    Some(path)
}
