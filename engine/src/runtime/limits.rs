//! The per-task resource limiter: caps linear memory and tables at the task's
//! memory limit and records peak memory.
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

    /// The task's module, plus the memory-less forwarding instance that
    /// `poll` may make.
    /// (A component: the core instances it is made of.)
    fn instances(&self) -> usize {
        if self.component { 32 } else { 2 }
    }
    fn memories(&self) -> usize {
        if self.component { 4 } else { 1 }
    }
    fn tables(&self) -> usize {
        if self.component { 16 } else { 1 }
    }
}

/// Host calls are charged fuel for the bytes they move: one unit per
/// `FUEL_BYTES` bytes, rounded up (docs/abi.md, "Fuel").
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
