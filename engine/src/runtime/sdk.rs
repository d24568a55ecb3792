//! The `engine` host functions of guest ABI v1 (docs/abi.md) and the state
//! they work on.
//!
//! Every (pointer, length) pair from the guest is treated as unsigned and
//! checked against the current size of the guest's `memory` before any
//! access, with overflow-checked arithmetic; a bad pair traps with
//! "host call `engine.<fn>`: pointer/length out of bounds". Inputs are read
//! from the blob store straight into guest memory with ranged reads, and
//! outputs wait in a [`Spool`] (at most 16 MiB of engine memory per attempt,
//! then one spill file) until the attempt succeeds, so the host never holds a
//! whole blob. The calls that move bytes (`input_read`,
//! `output_write`, `params_read`, `log`) are charged fuel for them before
//! they move them, after their arguments are checked (docs/abi.md, "Fuel").

use std::collections::HashSet;
use std::ops::Range;

use wasmtime::{Caller, Linker, Memory};

use super::TaskState;
use super::failure::Abort;
use super::limits::charge_bytes;
use super::spool::Spool;
use crate::store::{BlobRef, BlobStore};
use crate::task::abi::ENGINE_MODULE as M;
pub(crate) use crate::task::names::{name_problem, show_name};

/// Longest error message kept from an `error` call.
pub(crate) const MAX_ERROR_MESSAGE: usize = 4096;

/// One input item as the guest sees it.
pub(crate) struct Item {
    pub(crate) name: String,
    /// -1 for a scalar input.
    pub(crate) index: i32,
    pub(crate) blob: BlobRef,
}

/// ABI state of one SDK task attempt.
#[derive(Default)]
pub(crate) struct SdkState {
    pub(crate) memory: Option<Memory>,
    pub(crate) items: Vec<Item>,
    pub(crate) params: Vec<u8>,
    /// The attempt number (1 for the first), for `engine.attempt`.
    pub(crate) attempt: u32,
    /// The outputs opened so far and their bytes ([`Spool`]).
    pub(crate) outputs: Spool,
    pub(crate) names: HashSet<String>,
    pub(crate) output_bytes: u64,
    pub(crate) max_output_bytes: u64,
    pub(crate) max_outputs: u32,
    /// The first message passed to `error`.
    pub(crate) error: Option<String>,
    /// Components: the handles of closed outputs.
    pub(crate) closed: HashSet<u32>,
    /// The blob store, with its lifetime erased: see `Runtime::run_task`,
    /// which guarantees the wasmtime `Store` holding this is dropped before
    /// the borrowed store goes out of scope.
    pub(crate) store: Option<&'static dyn BlobStore>,
}

fn oob(func: &str) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Trap(format!("host call `engine.{func}`: pointer/length out of bounds")))
}

/// The guest range `ptr..ptr+len` (both unsigned), or a trap.
fn range(func: &str, ptr: i32, len: i32, mem_len: usize) -> wasmtime::Result<Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize).ok_or_else(|| oob(func))?;
    if end > mem_len {
        return Err(oob(func));
    }
    Ok(start..end)
}

fn memory(func: &str, caller: &Caller<'_, TaskState>) -> wasmtime::Result<Memory> {
    caller.data().sdk.memory.ok_or_else(|| {
        wasmtime::Error::new(Abort::Trap(format!("host call `engine.{func}`: the plugin exports no memory")))
    })
}

fn storage_error(e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Infra(crate::task::message::InfraKind::Storage, format!("storage error: {e}")))
}

pub(crate) fn level_name(level: i32) -> &'static str {
    match level {
        0 => "trace",
        1 => "debug",
        2 => "info",
        3 => "warn",
        4 => "error",
        _ => "info",
    }
}

/// Define the `engine` module in the linker: the input functions here, the
/// rest in [`add_outputs`] and [`add_misc`].
pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker
        .func_wrap(M, "input_count", |caller: Caller<'_, TaskState>| -> i32 { caller.data().sdk.items.len() as i32 })?;

    linker.func_wrap(
        M,
        "input_name",
        |mut caller: Caller<'_, TaskState>, item: i32, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory("input_name", &caller)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let r = range("input_name", buf, len, data.len())?;
            let Some(it) = usize::try_from(item).ok().and_then(|i| state.sdk.items.get(i)) else {
                return Ok(-1);
            };
            let name = it.name.as_bytes();
            let n = name.len().min(r.len());
            data[r.start..r.start + n].copy_from_slice(&name[..n]);
            Ok(name.len() as i32)
        },
    )?;

    linker.func_wrap(M, "input_index", |caller: Caller<'_, TaskState>, item: i32| -> i32 {
        match usize::try_from(item).ok().and_then(|i| caller.data().sdk.items.get(i)) {
            Some(it) => it.index,
            None => -2,
        }
    })?;

    linker.func_wrap(M, "input_len", |caller: Caller<'_, TaskState>, item: i32| -> i64 {
        match usize::try_from(item).ok().and_then(|i| caller.data().sdk.items.get(i)) {
            Some(it) => it.blob.len as i64,
            None => -1,
        }
    })?;

    linker.func_wrap(
        M,
        "input_read",
        |mut caller: Caller<'_, TaskState>, item: i32, offset: i64, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory("input_read", &caller)?;
            let r = range("input_read", buf, len, mem.data_size(&caller))?;
            let Some(blob) = usize::try_from(item).ok().and_then(|i| caller.data().sdk.items.get(i)).map(|it| it.blob)
            else {
                return Ok(-1);
            };
            let Ok(offset) = u64::try_from(offset) else {
                return Err(wasmtime::Error::new(Abort::Trap(format!(
                    "host call `engine.input_read`: negative offset {offset}"
                ))));
            };
            if offset >= blob.len {
                return Ok(0);
            }
            let want = (r.len() as u64).min(blob.len - offset).min(i32::MAX as u64) as usize;
            charge_bytes(&mut caller, want as u64)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let Some(store) = state.sdk.store else { return Ok(-1) };
            let dst = &mut data[r.start..r.start + want];
            let mut done = 0;
            while done < want {
                let n = store.read_at(&blob.digest, offset + done as u64, &mut dst[done..]).map_err(storage_error)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            Ok(done as i32)
        },
    )?;

    add_outputs(linker)?;
    add_misc(linker)
}

/// The output functions: open, write, close.
fn add_outputs(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        M,
        "output_open",
        |mut caller: Caller<'_, TaskState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory("output_open", &caller)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let r = range("output_open", ptr, len, data.len())?;
            let raw = &data[r];
            if let Some(problem) = name_problem(raw) {
                return Err(wasmtime::Error::new(Abort::Trap(format!(
                    "host call `engine.output_open`: invalid output name `{}`: {problem}",
                    show_name(raw)
                ))));
            }
            // Checked just above: the name is valid UTF-8.
            let name = String::from_utf8_lossy(raw).into_owned();
            let sdk = &mut state.sdk;
            if sdk.names.contains(&name) {
                return Err(wasmtime::Error::new(Abort::Trap(format!(
                    "host call `engine.output_open`: output `{}` is opened twice",
                    show_name(raw)
                ))));
            }
            if sdk.outputs.len() >= sdk.max_outputs as usize {
                return Err(wasmtime::Error::new(Abort::output_count(sdk.max_outputs)));
            }
            if sdk.store.is_none() {
                return Ok(-1);
            }
            sdk.names.insert(name.clone());
            Ok(sdk.outputs.open(name) as i32)
        },
    )?;

    linker.func_wrap(
        M,
        "output_write",
        |mut caller: Caller<'_, TaskState>, handle: i32, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory("output_write", &caller)?;
            let r = range("output_write", ptr, len, mem.data_size(&caller))?;
            let sdk = &caller.data().sdk;
            let total = sdk.output_bytes.saturating_add(r.len() as u64);
            let Some(h) = usize::try_from(handle).ok().filter(|h| *h < sdk.outputs.len()) else {
                return Ok(-1);
            };
            if total > sdk.max_output_bytes {
                return Err(wasmtime::Error::new(Abort::output_size(sdk.max_output_bytes)));
            }
            charge_bytes(&mut caller, r.len() as u64)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let sdk = &mut state.sdk;
            sdk.outputs.write(sdk.store, h, &data[r]).map_err(storage_error)?;
            sdk.output_bytes = total;
            Ok(0)
        },
    )?;

    Ok(())
}

/// Attempt number, params, log and error.
fn add_misc(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(M, "attempt", |caller: Caller<'_, TaskState>| -> i32 {
        caller.data().sdk.attempt.min(i32::MAX as u32) as i32
    })?;

    linker
        .func_wrap(M, "params_len", |caller: Caller<'_, TaskState>| -> i32 { caller.data().sdk.params.len() as i32 })?;

    linker.func_wrap(
        M,
        "params_read",
        |mut caller: Caller<'_, TaskState>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory("params_read", &caller)?;
            let r = range("params_read", buf, len, mem.data_size(&caller))?;
            let n = caller.data().sdk.params.len().min(r.len());
            charge_bytes(&mut caller, n as u64)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let p = &state.sdk.params;
            let n = p.len().min(r.len());
            data[r.start..r.start + n].copy_from_slice(&p[..n]);
            Ok(n as i32)
        },
    )?;

    linker.func_wrap(
        M,
        "log",
        |mut caller: Caller<'_, TaskState>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let mem = memory("log", &caller)?;
            let r = range("log", ptr, len, mem.data_size(&caller))?;
            charge_bytes(&mut caller, r.len() as u64)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            state.log.lock().line(level_name(level), &data[r]);
            Ok(())
        },
    )?;

    linker.func_wrap(M, "error", |mut caller: Caller<'_, TaskState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let mem = memory("error", &caller)?;
        let (data, state) = mem.data_and_store_mut(&mut caller);
        let r = range("error", ptr, len, data.len())?;
        if state.sdk.error.is_none() {
            let raw = &data[r];
            let mut msg = String::from_utf8_lossy(&raw[..raw.len().min(MAX_ERROR_MESSAGE)]).into_owned();
            if raw.len() > MAX_ERROR_MESSAGE {
                msg.push_str(" [message truncated]");
            }
            state.sdk.error = Some(msg);
        }
        Ok(())
    })?;

    Ok(())
}
