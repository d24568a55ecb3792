//! How an attempt ends: the host's own abort reasons and the mapping from a
//! wasmtime error to exactly one [`TaskFailure`] kind.
//!
//! Host code (ABI functions, the resource limiter, the epoch callback, the
//! stdio sinks) never builds a `TaskFailure` directly: it returns an
//! [`Abort`] inside a `wasmtime::Error`, which unwinds the guest as a trap,
//! and [`classify`] turns it back into the right kind here, in one place.

use std::time::Duration;

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use crate::task::message::{InfraKind, LimitKind, TaskFailure};
use crate::units::format_size;

/// Why the host stopped a guest.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Abort {
    /// A host call rejected its arguments (bad pointer, invalid output name, ...).
    #[error("{0}")]
    Trap(String),
    #[error("{limit} limit exceeded: {detail}")]
    Limit { limit: LimitKind, detail: String },
    /// A linear memory or table would exceed the task's memory limit.
    #[error("memory limit exceeded")]
    Memory,
    #[error("timed out")]
    Timeout,
    #[error("cancelled")]
    Cancelled,
    /// Storage or host I/O failed; not the guest's fault.
    #[error("{1}")]
    Infra(InfraKind, String),
}

impl Abort {
    pub(crate) fn output_size(cap: u64) -> Abort {
        Abort::Limit {
            limit: LimitKind::OutputBytes,
            detail: format!("the task's outputs total more than {}", format_size(cap)),
        }
    }
    pub(crate) fn output_count(max: u32) -> Abort {
        Abort::Limit { limit: LimitKind::OutputCount, detail: format!("the task opened more than {max} outputs") }
    }
}

/// What the attempt's limits were, to name them in failures.
pub(crate) struct LimitsSeen {
    pub(crate) memory: u64,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fuel: Option<u64>,
}

/// How a guest call ended when it did not return normally.
pub(crate) enum Ended {
    /// `proc_exit(code)`.
    Exit(i32),
    Failed(TaskFailure),
}

/// Turn a wasmtime error from instantiation or a guest call into an outcome.
pub(crate) fn classify(err: &wasmtime::Error, limits: &LimitsSeen) -> Ended {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Ended::Exit(exit.0);
    }
    if let Some(abort) = find_abort(err) {
        return Ended::Failed(abort_to_failure(abort, limits));
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return Ended::Failed(match trap {
            Trap::OutOfFuel => TaskFailure::Limit {
                limit: LimitKind::Fuel,
                detail: format!("the task used all {} units of fuel", limits.fuel.unwrap_or(0)),
            },
            Trap::Interrupt => match limits.timeout {
                Some(limit) => TaskFailure::Timeout { limit },
                None => TaskFailure::Cancelled,
            },
            other => {
                let text = other.to_string();
                let message = text.strip_prefix("wasm trap: ").unwrap_or(&text).to_string();
                TaskFailure::Trap { message }
            }
        });
    }
    // Anything else is a host-side error surfaced by wasmtime or WASI (for
    // example a pool slot that could not be allocated).
    let msg = error_chain(err);
    if msg.contains("maximum concurrent") || msg.contains("pooling allocator") {
        return Ended::Failed(TaskFailure::infra(InfraKind::PluginLoad, format!("cannot instantiate: {msg}")));
    }
    // The outermost context is the wasm backtrace (written to the log by the
    // caller); the root cause says what went wrong.
    Ended::Failed(TaskFailure::Trap { message: err.root_cause().to_string() })
}

/// Whether the store's fuel count is exact after an attempt ended with
/// `err`. wasmtime keeps a running function's fuel in a register and stores
/// it at calls and returns; an attempt stopped inside wasm code (a trap of a
/// wasm instruction, the epoch deadline of a timeout or cancellation, a
/// `memory.grow` or `table.grow` over the memory limit) leaves an older
/// count. Out of fuel sets the count itself; `proc_exit` and the engine's
/// host calls are calls.
pub(crate) fn fuel_counted(err: &wasmtime::Error) -> bool {
    if err.downcast_ref::<I32Exit>().is_some() {
        return true;
    }
    if let Some(abort) = find_abort(err) {
        return !matches!(abort, Abort::Memory | Abort::Timeout | Abort::Cancelled);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => true,
        Some(_) => false,
        None => true,
    }
}

fn find_abort(err: &wasmtime::Error) -> Option<&Abort> {
    if let Some(a) = err.downcast_ref::<Abort>() {
        return Some(a);
    }
    err.chain().find_map(|e| e.downcast_ref::<Abort>())
}

pub(crate) fn abort_to_failure(abort: &Abort, limits: &LimitsSeen) -> TaskFailure {
    match abort {
        Abort::Trap(m) => TaskFailure::Trap { message: m.clone() },
        Abort::Limit { limit, detail } => TaskFailure::Limit { limit: *limit, detail: detail.clone() },
        Abort::Memory => TaskFailure::MemoryLimit { limit: limits.memory },
        Abort::Timeout => TaskFailure::Timeout { limit: limits.timeout.unwrap_or_default() },
        Abort::Cancelled => TaskFailure::Cancelled,
        Abort::Infra(kind, m) => TaskFailure::infra(*kind, m.clone()),
    }
}

/// `a: b: c` for an error and its causes, without Debug output.
pub(crate) fn error_chain(err: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in err.chain() {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
