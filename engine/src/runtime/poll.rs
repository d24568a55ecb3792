//! WASI `poll_oneoff`, done by the engine so that every wait can be
//! interrupted by the task's timeout and by cancellation.
//!
//! wasmtime-wasi waits on the host thread (a sleep is a plain blocking sleep)
//! and epoch interruption only stops wasm code, so a guest waiting for an hour
//! would outlive its timeout by an hour and hold its worker. This module
//! shadows `wasi_snapshot_preview1.poll_oneoff` and implements every
//! subscription kind itself (the exact results are in docs/abi.md, "poll_oneoff"):
//!
//! * clocks: realtime (0) and monotonic (1), relative or absolute
//!   (`subscription_clock_abstime`), any number of them; an absolute time is
//!   read against the clock the guest sees (`clock_time_get`, so deterministic
//!   tasks wait against their fixed clocks); other clock ids give an event with
//!   `inval`;
//! * `fd_read` / `fd_write`: every descriptor a task can hold (stdio, files) is
//!   ready at once; `fd_read` of a regular file reports the bytes left after
//!   the current offset; a descriptor that is not open, or a directory, gives
//!   an event with `badf`.
//!
//! When no subscription is ready, the call waits for the earliest clock in
//! slices of at most [`super::EPOCH_TICK`], checking the task's deadline and
//! the run's cancel flag between slices (the task then ends as `timeout` /
//! `cancelled`, exactly as if the epoch callback had fired).
//!
//! The descriptor and clock facts come from the WASI implementation that is
//! linked (wasmtime-wasi, or whatever shadows it), through a tiny helper
//! instance ([`HELPER_WAT`]) made once per task on its first poll that needs
//! one. wasmtime-wasi finds memory through the *calling instance*'s `memory`
//! export, so the helper imports the guest's memory and re-exports it; its
//! answers are written to 64 bytes of the guest's memory inside or next to the
//! events buffer, which are saved first and restored before the events are
//! written. [`add_to_linker`] must run after every other WASI function is
//! defined, as it captures the linker as it is then.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::{Caller, Linker, Memory, Module, TypedFunc};

use super::TaskState;
use super::failure::Abort;
use crate::task::abi::WASI_MODULE;

/// Size of a WASI `subscription` and of an `event`.
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
/// Bytes of guest memory the helper's answers may use (a `filestat`).
const SCRATCH: usize = 64;

/// WASI errnos this module returns.
const ERRNO_BADF: u16 = 8;
const ERRNO_FAULT: u16 = 21;
const ERRNO_INVAL: u16 = 28;
/// WASI `filetype` values.
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR: u8 = 4;
/// WASI `eventtype` values: a subscription's tag is its event's type.
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;

/// The helper instance: the guest's memory in, re-exported as `memory`, and
/// the WASI calls poll needs.
const HELPER_WAT: &str = r#"(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $filestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_tell" (func $tell (param i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "clock") (param i32 i32) (result i32) (call $clock (local.get 0) (i64.const 1) (local.get 1)))
  (func (export "fdstat") (param i32 i32) (result i32) (call $fdstat (local.get 0) (local.get 1)))
  (func (export "filestat") (param i32 i32) (result i32) (call $filestat (local.get 0) (local.get 1)))
  (func (export "tell") (param i32 i32) (result i32) (call $tell (local.get 0) (local.get 1))))"#;

/// The helper's functions, each `(arg, scratch pointer) -> errno`.
#[derive(Clone)]
pub(crate) struct Helper {
    clock: TypedFunc<(i32, i32), i32>,
    fdstat: TypedFunc<(i32, i32), i32>,
    filestat: TypedFunc<(i32, i32), i32>,
    tell: TypedFunc<(i32, i32), i32>,
}

/// One subscription as the guest wrote it.
enum Sub {
    Clock { id: u32, timeout: u64, absolute: bool },
    Fd { tag: u8, fd: u32 },
}

/// What a subscription is waiting for, once resolved.
enum State {
    /// A clock, due at this instant (`None`: beyond any representable time).
    Due(Option<Instant>),
    /// Ready now with this error and `nbytes`.
    Ready { error: u16, nbytes: u64 },
}

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

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default())
}

fn parse(s: &[u8]) -> (u64, Sub) {
    let userdata = u64_at(s, 0);
    let tag = s[8];
    let sub = match tag {
        EVENTTYPE_CLOCK => Sub::Clock {
            id: u32::from_le_bytes([s[16], s[17], s[18], s[19]]),
            timeout: u64_at(s, 24),
            absolute: u16::from_le_bytes([s[40], s[41]]) & 1 != 0,
        },
        _ => Sub::Fd { tag, fd: u32::from_le_bytes([s[16], s[17], s[18], s[19]]) },
    };
    (userdata, sub)
}

/// Instantiate [`HELPER_WAT`] over the guest's memory.
fn make_helper(
    caller: &mut Caller<'_, TaskState>,
    mem: Memory,
    original: &Linker<TaskState>,
    module: &OnceLock<Module>,
) -> wasmtime::Result<Helper> {
    let instance = forwarding_instance(caller, mem, original, module, HELPER_WAT)?;
    let mut get = |name: &str| instance.get_typed_func::<(i32, i32), i32>(&mut *caller, name);
    Ok(Helper { clock: get("clock")?, fdstat: get("fdstat")?, filestat: get("filestat")?, tell: get("tell")? })
}

/// An instance of `wat` (compiled once into `module`) that imports the
/// guest's memory as `env.memory` and re-exports it, with `original`'s
/// functions as its other imports: calls into wasmtime-wasi through it find
/// the guest's memory (also used by [`super::fd_limit`]).
pub(super) fn forwarding_instance(
    caller: &mut Caller<'_, TaskState>,
    mem: Memory,
    original: &Linker<TaskState>,
    module: &OnceLock<Module>,
    wat: &str,
) -> wasmtime::Result<wasmtime::Instance> {
    let module = match module.get() {
        Some(m) => m.clone(),
        None => {
            let m = Module::new(caller.engine(), wat)?;
            module.get_or_init(|| m).clone()
        }
    };
    let mut linker = original.clone();
    linker.define(&*caller, "env", "memory", mem)?;
    linker.instantiate(&mut *caller, &module)
}

/// Answers about clocks and descriptors, written to `scratch` in guest memory.
struct Facts {
    helper: Helper,
    mem: Memory,
    scratch: usize,
}

impl Facts {
    /// Call `f(arg, scratch)`; the errno, and the scratch bytes on success.
    fn ask(
        &self,
        caller: &mut Caller<'_, TaskState>,
        f: &TypedFunc<(i32, i32), i32>,
        arg: u32,
    ) -> wasmtime::Result<Result<[u8; SCRATCH], u16>> {
        let errno = f.call(&mut *caller, (arg as i32, self.scratch as i32))?;
        if errno != 0 {
            return Ok(Err(errno as u16));
        }
        let mut out = [0u8; SCRATCH];
        self.mem.read(&*caller, self.scratch, &mut out)?;
        Ok(Ok(out))
    }

    fn resolve(&self, caller: &mut Caller<'_, TaskState>, sub: &Sub) -> wasmtime::Result<State> {
        match *sub {
            Sub::Clock { absolute: false, .. } => Ok(relative(sub)),
            Sub::Clock { id, .. } if id > 1 => Ok(State::Ready { error: ERRNO_INVAL, nbytes: 0 }),
            Sub::Clock { id, timeout, absolute } => {
                let wait = if absolute {
                    let helper = self.helper.clone();
                    match self.ask(caller, &helper.clock, id)? {
                        Ok(now) => timeout.saturating_sub(u64_at(&now, 0)),
                        Err(errno) => return Ok(State::Ready { error: errno, nbytes: 0 }),
                    }
                } else {
                    timeout
                };
                Ok(State::Due(Instant::now().checked_add(Duration::from_nanos(wait))))
            }
            Sub::Fd { tag, fd } => {
                let helper = self.helper.clone();
                let stat = match self.ask(caller, &helper.fdstat, fd)? {
                    Ok(stat) => stat,
                    Err(errno) => return Ok(State::Ready { error: errno, nbytes: 0 }),
                };
                match stat[0] {
                    FILETYPE_DIRECTORY => Ok(State::Ready { error: ERRNO_BADF, nbytes: 0 }),
                    FILETYPE_REGULAR if tag == EVENTTYPE_FD_READ => {
                        let size = self.ask(caller, &helper.filestat, fd)?.map(|s| u64_at(&s, 32)).unwrap_or(0);
                        let pos = self.ask(caller, &helper.tell, fd)?.map(|s| u64_at(&s, 0)).unwrap_or(0);
                        Ok(State::Ready { error: 0, nbytes: size.saturating_sub(pos) })
                    }
                    _ => Ok(State::Ready { error: 0, nbytes: 0 }),
                }
            }
        }
    }
}

/// A relative clock (or a clock id that is neither realtime nor monotonic);
/// a descriptor here means no helper was made, so it is reported as `badf`.
fn relative(sub: &Sub) -> State {
    match *sub {
        Sub::Clock { id, .. } if id > 1 => State::Ready { error: ERRNO_INVAL, nbytes: 0 },
        Sub::Clock { timeout, .. } => State::Due(Instant::now().checked_add(Duration::from_nanos(timeout))),
        Sub::Fd { .. } => State::Ready { error: ERRNO_BADF, nbytes: 0 },
    }
}

/// Wait until the earliest clock is due, interruptibly.
fn wait(caller: &Caller<'_, TaskState>, states: &[State]) -> wasmtime::Result<()> {
    if states.iter().any(|s| matches!(s, State::Ready { .. })) {
        return check(caller);
    }
    let due = states.iter().filter_map(|s| if let State::Due(t) = s { *t } else { None }).min();
    loop {
        check(caller)?;
        let now = Instant::now();
        match due {
            Some(t) if now >= t => return Ok(()),
            Some(t) => std::thread::sleep((t - now).min(super::EPOCH_TICK)),
            None => std::thread::sleep(super::EPOCH_TICK),
        }
    }
}

/// The poll itself, after the pointers were checked: `Ok(errno)`.
fn poll(
    caller: &mut Caller<'_, TaskState>,
    mem: Memory,
    ptrs: (usize, usize, usize),
    n: usize,
    original: &Linker<TaskState>,
    module: &OnceLock<Module>,
) -> wasmtime::Result<u16> {
    let (subs_ptr, events_ptr, nevents_ptr) = ptrs;
    let len = mem.data_size(&*caller);
    let mut raw = vec![0u8; n * SUBSCRIPTION_SIZE];
    mem.read(&*caller, subs_ptr, &mut raw)?;
    let subs: Vec<(u64, Sub)> = raw.chunks_exact(SUBSCRIPTION_SIZE).map(parse).collect();
    let needs_helper = subs.iter().any(|(_, s)| matches!(s, Sub::Fd { .. } | Sub::Clock { absolute: true, .. }));
    let mut states = Vec::with_capacity(n);
    if needs_helper {
        let helper = match caller.data().poll_helper.clone() {
            Some(h) => h,
            None => {
                let h = make_helper(caller, mem, original, module)?;
                caller.data_mut().poll_helper = Some(h.clone());
                h
            }
        };
        // 64 bytes of guest memory for the answers: at the events buffer
        // (which this call overwrites anyway), saved and restored.
        let scratch = events_ptr.min(len - SCRATCH) & !7;
        let mut saved = [0u8; SCRATCH];
        mem.read(&*caller, scratch, &mut saved)?;
        let facts = Facts { helper, mem, scratch };
        for (_, sub) in &subs {
            states.push(facts.resolve(caller, sub)?);
        }
        mem.write(&mut *caller, scratch, &saved)?;
    } else {
        states.extend(subs.iter().map(|(_, sub)| relative(sub)));
    }
    wait(caller, &states)?;
    let now = Instant::now();
    let mut events = Vec::with_capacity(n * EVENT_SIZE);
    for ((userdata, sub), state) in subs.iter().zip(&states) {
        let (error, nbytes) = match *state {
            State::Ready { error, nbytes } => (error, nbytes),
            State::Due(Some(t)) if t <= now => (0, 0),
            State::Due(_) => continue,
        };
        let tag = match sub {
            Sub::Clock { .. } => EVENTTYPE_CLOCK,
            Sub::Fd { tag, .. } => *tag,
        };
        let mut e = [0u8; EVENT_SIZE];
        e[0..8].copy_from_slice(&userdata.to_le_bytes());
        e[8..10].copy_from_slice(&error.to_le_bytes());
        e[10] = tag;
        e[16..24].copy_from_slice(&nbytes.to_le_bytes());
        events.extend_from_slice(&e);
    }
    mem.write(&mut *caller, events_ptr, &events)?;
    let count = (events.len() / EVENT_SIZE) as u32;
    mem.write(&mut *caller, nevents_ptr, &count.to_le_bytes())?;
    Ok(0)
}

pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let original = linker.clone();
    let module = OnceLock::new();
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
            let no_memory =
                || wasmtime::Error::new(Abort::Trap("poll_oneoff: the module exports no memory `memory`".into()));
            let mem = caller.get_export("memory").and_then(|e| e.into_memory()).ok_or_else(no_memory)?;
            let (subs, events, nevents, n) =
                (subs as u32 as usize, events as u32 as usize, nevents as u32 as usize, n as u32 as usize);
            if n == 0 || subs % 8 != 0 || events % 8 != 0 || nevents % 4 != 0 {
                return Ok(i32::from(ERRNO_INVAL));
            }
            let len = mem.data_size(&caller);
            let in_bounds =
                |p: usize, size: usize| n.checked_mul(size).and_then(|b| p.checked_add(b)).is_some_and(|e| e <= len);
            if !in_bounds(subs, SUBSCRIPTION_SIZE)
                || !in_bounds(events, EVENT_SIZE)
                || nevents + 4 > len
                || len < SCRATCH
            {
                return Ok(i32::from(ERRNO_FAULT));
            }
            super::limits::charge_bytes(&mut caller, (n * (SUBSCRIPTION_SIZE + EVENT_SIZE)) as u64)?;
            poll(&mut caller, mem, (subs, events, nevents), n, &original, &module).map(i32::from)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
