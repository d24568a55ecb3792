//! `max_open_files` on the host-directory path: command tasks with mounts
//! or a workdir get WASI preview 1 from wasmtime-wasi, whose descriptor
//! table has no size limit and whose files are real host descriptors. This
//! module shadows the three calls that change how many descriptors are open
//! (`path_open`, `fd_close`, `fd_renumber`) with wrappers that count them
//! and call wasmtime-wasi's own function for the work: a `path_open` that
//! would exceed the limit returns `EMFILE` (errno 33) without opening
//! anything, as the virtual tree ([`super::vfs`]) does. The count starts at
//! the task's stdio and preopens.

use std::sync::OnceLock;

use wasmtime::{Caller, Linker, Module, TypedFunc};

use super::TaskState;
use super::failure::Abort;
use crate::task::abi::WASI_MODULE;

/// WASI preview 1 `errno::mfile`.
const ERRNO_MFILE: i32 = 33;

/// wasmtime-wasi finds memory through the *calling instance*'s `memory`
/// export, so its functions are called through this module, which imports
/// the guest's memory and re-exports it (as `poll` does).
const HELPER_WAT: &str = r#"(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "open") (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)
    (call $open (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
                (local.get 5) (local.get 6) (local.get 7) (local.get 8)))
  (func (export "close") (param i32) (result i32) (call $close (local.get 0)))
  (func (export "renumber") (param i32 i32) (result i32) (call $renumber (local.get 0) (local.get 1))))"#;

type OpenArgs = (i32, i32, i32, i32, i32, i64, i64, i32, i32);

#[derive(Clone)]
struct Helper {
    open: TypedFunc<OpenArgs, i32>,
    close: TypedFunc<i32, i32>,
    renumber: TypedFunc<(i32, i32), i32>,
}

/// The open descriptors of one attempt, and the helper instance (made on
/// the first call).
pub(crate) struct HostFds {
    open: u32,
    max: u32,
    helper: Option<Helper>,
}

impl HostFds {
    /// `open` descriptors now (stdio and preopens), at most `max`.
    pub(crate) fn new(open: u32, max: u32) -> HostFds {
        HostFds { open, max, helper: None }
    }
}

/// The attempt's helper, instantiated over the guest's memory on first use.
fn helper(
    caller: &mut Caller<'_, TaskState>,
    originals: &Linker<TaskState>,
    module: &OnceLock<Module>,
) -> wasmtime::Result<Helper> {
    if let Some(h) = caller.data().host_fds.as_ref().and_then(|h| h.helper.clone()) {
        return Ok(h);
    }
    let mem = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::new(Abort::Trap("missing required memory export".into())))?;
    let instance = super::poll::forwarding_instance(caller, mem, originals, module, HELPER_WAT)?;
    let h = Helper {
        open: instance.get_typed_func(&mut *caller, "open")?,
        close: instance.get_typed_func(&mut *caller, "close")?,
        renumber: instance.get_typed_func(&mut *caller, "renumber")?,
    };
    if let Some(fds) = caller.data_mut().host_fds.as_mut() {
        fds.helper = Some(h.clone());
    }
    Ok(h)
}

/// Add `delta` to the count of open descriptors.
fn count(caller: &mut Caller<'_, TaskState>, delta: i32) {
    if let Some(h) = caller.data_mut().host_fds.as_mut() {
        h.open = h.open.saturating_add_signed(delta);
    }
}

/// Shadow `path_open`, `fd_close` and `fd_renumber` in `linker` (which
/// already has wasmtime-wasi's). A store whose `host_fds` is `None` is not
/// counted.
pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let originals = linker.clone();
    let module = std::sync::Arc::new(OnceLock::new());
    linker.allow_shadowing(true);
    let (l, m) = (originals.clone(), module.clone());
    linker.func_wrap(
        WASI_MODULE,
        "path_open",
        move |mut caller: Caller<'_, TaskState>,
              fd: i32,
              dirflags: i32,
              path: i32,
              path_len: i32,
              oflags: i32,
              base: i64,
              inheriting: i64,
              fdflags: i32,
              opened: i32|
              -> wasmtime::Result<i32> {
            if caller.data().host_fds.as_ref().is_some_and(|h| h.open >= h.max) {
                return Ok(ERRNO_MFILE);
            }
            let h = helper(&mut caller, &l, &m)?;
            let args: OpenArgs = (fd, dirflags, path, path_len, oflags, base, inheriting, fdflags, opened);
            let errno = h.open.call(&mut caller, args)?;
            if errno == 0 {
                count(&mut caller, 1);
            }
            Ok(errno)
        },
    )?;
    let (l, m) = (originals.clone(), module.clone());
    linker.func_wrap(WASI_MODULE, "fd_close", move |mut caller: Caller<'_, TaskState>, fd: i32| {
        let h = helper(&mut caller, &l, &m)?;
        let errno = h.close.call(&mut caller, fd)?;
        if errno == 0 {
            count(&mut caller, -1);
        }
        Ok(errno)
    })?;
    let (l, m) = (originals, module);
    linker.func_wrap(WASI_MODULE, "fd_renumber", move |mut caller: Caller<'_, TaskState>, from: i32, to: i32| {
        let h = helper(&mut caller, &l, &m)?;
        let errno = h.renumber.call(&mut caller, (from, to))?;
        // `to` was closed and `from` took its number.
        if errno == 0 && from != to {
            count(&mut caller, -1);
        }
        Ok(errno)
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
