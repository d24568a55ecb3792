//! The `threads` executor (the default): worker threads sharing one wasmtime
//! engine and the prepared plugins; each task gets a fresh store (sandbox) on
//! the worker that picks it up. The threads drive the scheduler core
//! themselves (`driver::run_plan_threads`); this module holds what they share
//! with the processes workers.

use std::time::Instant;

use crate::runtime::Runtime;
use crate::store::BlobStore;
use crate::task::message::{TaskMessage, TaskResult};

/// Native stack for worker threads: wasm stack limit plus host frames.
pub const WORKER_STACK: usize = 8 << 20;

/// Run one task. A panic in the host (a bug) is already turned into an
/// infrastructure failure of that task by [`Runtime::run_task`], so the
/// worker thread survives it.
pub fn run_one(
    runtime: &Runtime,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    worker: u32,
    run_start: Instant,
) -> TaskResult {
    runtime.run_task(msg, store, worker, run_start)
}
