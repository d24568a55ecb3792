//! WASI `poll_oneoff` that a timeout or cancellation can interrupt.
//!
//! wasmtime-wasi implements a sleep (one relative clock subscription, what
//! `std::thread::sleep` and `nanosleep` use) as a plain blocking sleep of the
//! host thread, and epoch interruption only stops wasm code, so a guest
//! sleeping for an hour would outlive its timeout by an hour and hold its
//! worker. This module shadows `wasi_snapshot_preview1.poll_oneoff`:
//!
//! * a sleep is done here in slices of at most [`super::EPOCH_TICK`],
//!   checking the task's deadline and the run's cancel flag between slices
//!   (the task then ends as `timeout` / `cancelled`, exactly as if the epoch
//!   callback had fired); the result written back is the one wasmtime-wasi
//!   writes (one clock event, `nbytes` 1);
//! * every other form (several subscriptions, absolute clocks, fds) goes to
//!   wasmtime-wasi's own implementation; those return at once for the files
//!   and closed stdin a task can have, but an absolute-time clock wait is not
//!   interrupted: the task fails with `timeout` when it returns
//!   (docs/security.md, "Not protected against").
//!
//! wasmtime-wasi's functions find the guest's memory through the *calling
//! instance* (its `memory` export), and a host function called from the host
//! has no calling instance. So the original is reached through a tiny helper
//! instance ([`HELPER_WAT`]), made once per task on its first non-sleep
//! poll, that imports the guest's memory, exports it as `memory` and
//! forwards `poll` to the original `poll_oneoff`.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::{Caller, Func, Linker, Module};

use super::TaskState;
use super::failure::Abort;
use crate::task::abi::WASI_MODULE;

/// Size of a WASI `subscription` and of an `event`.
const SUBSCRIPTION_SIZE: u64 = 48;
const EVENT_SIZE: u64 = 32;

/// The forwarding instance: the guest's memory in, re-exported as `memory`,
/// and `poll` calling wasmtime-wasi's `poll_oneoff` with it.
const HELPER_WAT: &str = r#"(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "poll") (param i32 i32 i32 i32) (result i32)
    (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"#;

/// Stop the guest if its deadline passed or the run was cancelled.
pub(super) fn check(caller: &Caller<'_, TaskState>) -> wasmtime::Result<()> {
    let d = caller.data();
    if d.cancelled.load(Ordering::Relaxed) {
        return Err(wasmtime::Error::new(Abort::Cancelled));
    }
    if d.deadline.is_some_and(|t| Instant::now() >= t) {
        return Err(wasmtime::Error::new(Abort::Timeout));
    }
    Ok(())
}

/// If this call is a plain sleep (one relative clock subscription, aligned
/// and in bounds), its userdata and duration in nanoseconds.
fn as_sleep(caller: &mut Caller<'_, TaskState>, subs: i32, events: i32, n: i32, nevents: i32) -> Option<(u64, u64)> {
    let (subs, events, nevents) = (subs as u32 as u64, events as u32 as u64, nevents as u32 as u64);
    if n != 1 || subs % 8 != 0 || events % 8 != 0 || nevents % 4 != 0 {
        return None;
    }
    let mem = caller.get_export("memory")?.into_memory()?;
    let data = mem.data(&caller);
    let len = data.len() as u64;
    if subs + SUBSCRIPTION_SIZE > len || events + EVENT_SIZE > len || nevents + 4 > len {
        return None;
    }
    let s = &data[subs as usize..(subs + SUBSCRIPTION_SIZE) as usize];
    let u64_at = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap_or_default());
    let tag = s[8];
    let flags = u16::from_le_bytes([s[40], s[41]]);
    // tag 0 = clock; flag bit 0 = absolute time.
    if tag != 0 || flags & 1 != 0 {
        return None;
    }
    Some((u64_at(0), u64_at(24)))
}

/// Instantiate [`HELPER_WAT`] over the caller's memory; its `poll` export.
fn forwarder(
    caller: &mut Caller<'_, TaskState>,
    original: &Linker<TaskState>,
    helper: &OnceLock<Module>,
) -> wasmtime::Result<Func> {
    let no_memory = || wasmtime::Error::new(Abort::Trap("poll_oneoff: the module exports no memory `memory`".into()));
    let mem = caller.get_export("memory").and_then(|e| e.into_memory()).ok_or_else(no_memory)?;
    let module = match helper.get() {
        Some(m) => m.clone(),
        None => {
            let m = Module::new(caller.engine(), HELPER_WAT)?;
            helper.get_or_init(|| m).clone()
        }
    };
    let mut linker = original.clone();
    linker.define(&*caller, "env", "memory", mem)?;
    let instance = linker.instantiate(&mut *caller, &module)?;
    instance.get_func(&mut *caller, "poll").ok_or_else(|| {
        wasmtime::Error::new(Abort::Infra(
            crate::task::message::InfraKind::HostPanic,
            "the poll_oneoff helper has no `poll`".into(),
        ))
    })
}

pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let original = linker.clone();
    let helper = OnceLock::new();
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI_MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, TaskState>,
              subs: i32,
              events: i32,
              n: i32,
              nevents: i32|
              -> wasmtime::Result<i32> {
            if let Some((userdata, nanos)) = as_sleep(&mut caller, subs, events, n, nevents) {
                let until = Instant::now() + std::time::Duration::from_nanos(nanos);
                loop {
                    check(&caller)?;
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    std::thread::sleep((until - now).min(super::EPOCH_TICK));
                }
                // as_sleep checked that both ranges are in bounds.
                let mut event = [0u8; EVENT_SIZE as usize];
                event[0..8].copy_from_slice(&userdata.to_le_bytes());
                event[16..24].copy_from_slice(&1u64.to_le_bytes());
                if let Some(mem) = caller.get_export("memory").and_then(|e| e.into_memory()) {
                    mem.write(&mut caller, events as u32 as usize, &event)?;
                    mem.write(&mut caller, nevents as u32 as usize, &1u32.to_le_bytes())?;
                }
                return Ok(0);
            }
            let f = match caller.data().poll_original {
                Some(f) => f,
                None => {
                    let f = forwarder(&mut caller, &original, &helper)?;
                    caller.data_mut().poll_original = Some(f);
                    f
                }
            };
            let r = f.typed::<(i32, i32, i32, i32), i32>(&caller)?.call(&mut caller, (subs, events, n, nevents))?;
            check(&caller)?;
            Ok(r)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
