//! The per-task resource limiter: caps linear memory and tables at the task's
//! memory limit and records peak memory; and the fuel charge of host calls
//! that move bytes ([`charge_bytes`], docs/abi.md, "Fuel"), with the one
//! such call that is otherwise wasmtime-wasi's, `random_get`, shadowed here
//! ([`add_random_get`]) so that it is charged before it makes its bytes.
//!
//! It plays the role of wasmtime's `StoreLimits` with `trap_on_grow_failure`,
//! but returns an [`Abort::Memory`] instead of a generic error, so the failure
//! is reported as `MemoryLimit` naming the limit rather than as a trap, and it
//! tracks the peak for the task metrics. Growth beyond the limit traps; it
//! does not make `memory.grow` return -1 (a guest allocator would abort a few
//! instructions later anyway, with a less useful message).

use wasmtime::ResourceLimiter;

use super::failure::Abort;

/// Bytes a table element is charged against the memory limit.
const TABLE_ELEMENT_BYTES: usize = 8;

pub(crate) struct TaskLimiter {
    /// Linear memory cap, bytes.
    pub(crate) memory: usize,
    /// Largest memory size reached, bytes.
    pub(crate) peak: usize,
    /// Pool cap on table elements.
    pub(crate) table_elements: usize,
    /// A component: several core instances, memories and tables, whose
    /// memories together are held to the limit (see [`TaskLimiter::for_component`]).
    component: bool,
    /// Bytes of all memories together (components).
    used: usize,
}

impl TaskLimiter {
    pub(crate) fn new(memory: u64, table_elements: usize) -> TaskLimiter {
        TaskLimiter {
            memory: usize::try_from(memory).unwrap_or(usize::MAX),
            peak: 0,
            table_elements,
            component: false,
            used: 0,
        }
    }

    /// Hold a component's memories together to the limit and allow it the
    /// instances, memories and tables a component is made of.
    pub(crate) fn for_component(&mut self) {
        self.component = true;
    }
}

impl ResourceLimiter for TaskLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        // A component's memories count together; a module has one.
        let total = if self.component { (self.used - current.min(self.used)).saturating_add(desired) } else { desired };
        if total > self.memory {
            return Err(wasmtime::Error::new(Abort::Memory));
        }
        if maximum.is_some_and(|m| desired > m) {
            // The module's own declared maximum: an ordinary failed grow (-1).
            return Ok(false);
        }
        if self.component {
            self.used = total;
        }
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired.saturating_mul(TABLE_ELEMENT_BYTES) > self.memory || desired > self.table_elements {
            return Err(wasmtime::Error::new(Abort::Memory));
        }
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    /// The task's module, plus the memory-less forwarding instances that
    /// `poll` and `fd_limit` may make.
    /// (A component: the core instances it is made of.)
    fn instances(&self) -> usize {
        if self.component { 32 } else { 3 }
    }
    fn memories(&self) -> usize {
        if self.component { 4 } else { 1 }
    }
    fn tables(&self) -> usize {
        if self.component { 16 } else { 1 }
    }
}

/// Host calls are charged fuel for the bytes they move: one unit per
/// `FUEL_BYTES` bytes, rounded up, per call (docs/abi.md, "Fuel").
pub(crate) const FUEL_BYTES: u64 = 8;

/// Charge a host call that moves `bytes` bytes, before it moves them: a task
/// without that much fuel left fails with the fuel limit, as a wasm
/// instruction past its budget would.
pub(crate) fn charge_bytes(mut store: impl wasmtime::AsContextMut, bytes: u64) -> wasmtime::Result<()> {
    let mut store = store.as_context_mut();
    let cost = bytes.div_ceil(FUEL_BYTES);
    let left = store.get_fuel()?;
    if cost > left {
        store.set_fuel(0)?;
        return Err(wasmtime::Error::new(wasmtime::Trap::OutOfFuel));
    }
    store.set_fuel(left - cost)
}

/// `wasi_snapshot_preview1.random_get`, as wasmtime-wasi answers it (same
/// random source, so deterministic mode keeps its seeded stream; same 64 MiB
/// cap per call), but charged by [`charge_bytes`] before any byte is made: a
/// task cannot make the host generate gigabytes on a small fuel budget.
pub(crate) fn add_random_get(linker: &mut wasmtime::Linker<super::TaskState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::WasiView as _;
    use wasmtime_wasi::p2::bindings::random::random::Host as _;
    linker.allow_shadowing(true);
    linker.func_wrap(
        crate::task::abi::WASI_MODULE,
        "random_get",
        |mut caller: wasmtime::Caller<'_, super::TaskState>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .ok_or_else(|| wasmtime::Error::new(Abort::Trap("missing required memory export".into())))?;
            let (start, len) = (buf as u32 as u64, len as u32 as u64);
            if start.checked_add(len).is_none_or(|end| end > mem.data_size(&caller) as u64) {
                return Err(wasmtime::Error::new(Abort::Trap(format!(
                    "Pointer out of bounds: Region {{ start: {start}, len: {len} }}"
                ))));
            }
            charge_bytes(&mut caller, len)?;
            let bytes = caller.data_mut().wasi.ctx().ctx.random().get_random_bytes(len).map_err(|e| {
                wasmtime::Error::new(Abort::Trap(format!(
                    "failed to call `get-random-bytes`: {}",
                    super::failure::error_chain(&e)
                )))
            })?;
            mem.write(&mut caller, start as usize, &bytes)?;
            Ok(0)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `wasi_snapshot_preview1.proc_exit`, accepting every exit status a process
/// can have (0 to 255; wasmtime-wasi refuses 126 and more, which WASI
/// reserves but programs use: `exit(255)`, shells' 126 and 127). A status
/// above 255 traps.
pub(crate) fn add_proc_exit(linker: &mut wasmtime::Linker<super::TaskState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(crate::task::abi::WASI_MODULE, "proc_exit", |status: i32| -> wasmtime::Result<()> {
        let status = status as u32;
        if status > 255 {
            return Err(wasmtime::Error::new(Abort::Trap(format!(
                "exit with invalid exit status {status} outside of [0..256)"
            ))));
        }
        Err(wasmtime::Error::new(wasmtime_wasi::I32Exit(status as i32)))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
