//! Components as tasks (docs/abi.md, "Components"): compiling and caching
//! them, the component linker (WASI 0.2 from wasmtime-wasi and the
//! `engine:task/host` interface of `sdk/wit/engine-task.wit`), and the two
//! entry points.
//!
//! A component runs in the same `Store<TaskState>` as a module, so memory,
//! fuel, the epoch deadline (timeout, cancellation, the `/out` watch), the
//! log and deterministic clocks and random apply unchanged; its WASI context
//! is the one `wasi_builder` (and, for commands, `command::prepare`) builds.
//! A task component's host calls work on the same [`SdkState`] as the core
//! ABI (`SdkState`), so output names, limits and publishing follow the same rules.
//! Commands run on host directories ([`super::command`]), which wasmtime-wasi
//! serves to WASI 0.2 as it does to preview 1.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime_wasi::{I32Exit, WasiCtxView, WasiView};

use super::failure::{Abort, error_chain};
use super::sdk::{MAX_ERROR_MESSAGE, level_name, name_problem, show_name};
use super::{Inner, RuntimeError, TaskState};
use crate::store::Digest;

wasmtime::component::bindgen!({
    path: "../sdk/wit/engine-task.wit",
    world: "task",
    imports: { default: trappable },
});

// `self::`: in doctests `engine` is also the crate.
use self::engine::task::host::{Host, Input, Level};

/// The most bytes one `read` call returns (docs/abi.md, "Components").
pub(crate) const MAX_READ: u32 = 16 << 20;

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// WASI 0.2 (wasmtime-wasi, synchronous) and `engine:task/host`.
pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<TaskState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Task::add_to_linker::<TaskState, HasSelf<TaskState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Compile (or load from the cache) and link a component.
pub(super) fn prepare(
    inner: &Inner,
    path: &Path,
    bytes: &[u8],
    digest: &Digest,
    compile: bool,
) -> Result<Option<(InstancePre<TaskState>, bool)>, RuntimeError> {
    let (component, hit) = match inner.cache.load_component(&inner.engine, digest) {
        Some(c) => (c, true),
        // Not cached and not to be compiled here (see `Runtime::load_cached`).
        None if !compile => return Ok(None),
        None => {
            // wasmtime asserts things of the adapters it generates; a
            // component that breaks one must fail its load, not the engine.
            let compiled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Component::new(&inner.engine, bytes)))
                    .map_err(|_| RuntimeError::Compile {
                        path: path.to_owned(),
                        message: "wasmtime panicked while compiling the component".into(),
                    })?;
            let c = compiled.map_err(|e| RuntimeError::Compile { path: path.to_owned(), message: error_chain(&e) })?;
            inner
                .cache
                .store_component(digest, &c)
                .map_err(|source| RuntimeError::Cache { path: inner.cache.path_for(digest), source })?;
            (c, false)
        }
    };
    let pre = inner
        .component_linker
        .instantiate_pre(&component)
        .map_err(|e| RuntimeError::Link { path: path.to_owned(), message: error_chain(&e) })?;
    Ok(Some((pre, hit)))
}

/// Run a task component: instantiate it and call `run`. `Ok(0)` is success;
/// `err(message)` is recorded as the task's error (as the core ABI's `error`
/// call) and returns `Ok(1)`.
pub(super) fn run_task(st: &mut Store<TaskState>, pre: &InstancePre<TaskState>) -> wasmtime::Result<i32> {
    for_component(st);
    let task = TaskPre::new(pre.clone())?.instantiate(&mut *st)?;
    match task.call_run(&mut *st)? {
        Ok(()) => Ok(0),
        Err(message) => {
            let sdk = &mut st.data_mut().sdk;
            if sdk.error.is_none() {
                sdk.error = Some(cut_message(&message));
            }
            Ok(1)
        }
    }
}

/// Run a command component: instantiate it and call `wasi:cli/run.run`. An
/// `err` result is exit code 1 (as `wasmtime run` reports it); `exit(N)`
/// ends it with code N.
pub(super) fn run_command(st: &mut Store<TaskState>, pre: &InstancePre<TaskState>) -> wasmtime::Result<()> {
    for_component(st);
    let cmd = wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre.clone())?.instantiate(&mut *st)?;
    match cmd.wasi_cli_run().call_run(&mut *st)? {
        Ok(()) => Ok(()),
        Err(()) => Err(wasmtime::Error::new(I32Exit(1))),
    }
}

/// Give the store a component's allowance of instances, memories and tables
/// (wasmtime reads them when the limiter is set, so it is set again).
fn for_component(st: &mut Store<TaskState>) {
    st.data_mut().limiter.for_component();
    st.limiter(|s| &mut s.limiter);
}

/// An error message as the core ABI keeps it: its first 4096 bytes.
fn cut_message(message: &str) -> String {
    if message.len() <= MAX_ERROR_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_ERROR_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [message truncated]", &message[..end])
}

fn trap(func: &str, what: String) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Trap(format!("host call `engine:task/host.{func}`: {what}")))
}

fn storage_error(e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Infra(crate::task::message::InfraKind::Storage, format!("storage error: {e}")))
}

impl Host for TaskState {
    fn inputs(&mut self) -> wasmtime::Result<Vec<Input>> {
        Ok(self
            .sdk
            .items
            .iter()
            .map(|it| Input { name: it.name.clone(), index: u32::try_from(it.index).ok(), size: it.blob.len })
            .collect())
    }

    fn find_input(&mut self, name: String) -> wasmtime::Result<Option<u32>> {
        Ok(self.sdk.items.iter().position(|it| it.name == name).and_then(|i| u32::try_from(i).ok()))
    }

    fn read(&mut self, item: u32, offset: u64, len: u32) -> wasmtime::Result<Option<Vec<u8>>> {
        let Some(it) = self.sdk.items.get(item as usize) else { return Ok(None) };
        let Some(store) = self.sdk.store else { return Ok(None) };
        if offset >= it.blob.len {
            return Ok(Some(Vec::new()));
        }
        let want = u64::from(len.min(MAX_READ)).min(it.blob.len - offset) as usize;
        let mut buf = vec![0u8; want];
        let mut done = 0;
        while done < want {
            let n = store.read_at(&it.blob.digest, offset + done as u64, &mut buf[done..]).map_err(storage_error)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(Some(buf))
    }

    fn output_open(&mut self, name: String) -> wasmtime::Result<u32> {
        let sdk = &mut self.sdk;
        if let Some(problem) = name_problem(name.as_bytes()) {
            return Err(trap(
                "output-open",
                format!("invalid output name `{}`: {problem}", show_name(name.as_bytes())),
            ));
        }
        if sdk.names.contains(&name) {
            return Err(trap("output-open", format!("output `{}` is opened twice", show_name(name.as_bytes()))));
        }
        if sdk.outputs.len() >= sdk.max_outputs as usize {
            return Err(wasmtime::Error::new(Abort::output_count(sdk.max_outputs)));
        }
        if sdk.store.is_none() {
            return Err(storage_error("no store"));
        }
        sdk.names.insert(name.clone());
        Ok(sdk.outputs.open(name) as u32)
    }

    fn output_write(&mut self, handle: u32, data: Vec<u8>) -> wasmtime::Result<bool> {
        let sdk = &mut self.sdk;
        if sdk.closed.contains(&handle) {
            return Ok(false);
        }
        let total = sdk.output_bytes.saturating_add(data.len() as u64);
        let h = handle as usize;
        if h >= sdk.outputs.len() {
            return Ok(false);
        }
        if total > sdk.max_output_bytes {
            return Err(wasmtime::Error::new(Abort::output_size(sdk.max_output_bytes)));
        }
        sdk.outputs.write(sdk.store, h, &data).map_err(storage_error)?;
        sdk.output_bytes = total;
        Ok(true)
    }

    fn output_close(&mut self, handle: u32) -> wasmtime::Result<bool> {
        let sdk = &mut self.sdk;
        if (handle as usize) >= sdk.outputs.len() {
            return Ok(false);
        }
        Ok(sdk.closed.insert(handle))
    }

    fn params(&mut self) -> wasmtime::Result<String> {
        Ok(String::from_utf8_lossy(&self.sdk.params).into_owned())
    }

    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let n = match level {
            Level::Trace => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        };
        self.log.lock().line(level_name(n), message.as_bytes());
        Ok(())
    }

    fn attempt(&mut self) -> wasmtime::Result<u32> {
        Ok(self.sdk.attempt)
    }
}
