//! The `threads` executor (the default): worker threads sharing one wasmtime
//! engine and the prepared plugins; each task gets a fresh store (sandbox) on
//! the worker that picks it up. The threads drive the scheduler core
//! themselves (`driver::run_plan_threads`); this module holds what they share
//! with the processes workers.

use std::time::Instant;

use super::message::{TaskFailure, TaskMessage, TaskMetrics, TaskResult};
use crate::runtime::Runtime;
use crate::store::BlobStore;

/// Native stack for worker threads: wasm stack limit plus host frames.
pub const WORKER_STACK: usize = 8 << 20;

/// Run one task, turning a panic in the host (a bug) into an infrastructure
/// failure of that task instead of a dead worker.
pub fn run_one(
    runtime: &Runtime,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    worker: u32,
    run_start: Instant,
) -> TaskResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.run_task(msg, store, worker, run_start)))
        .unwrap_or_else(|_| TaskResult {
            task: msg.task,
            attempt: msg.attempt,
            outcome: Err(TaskFailure::Infra {
                message: "internal error: the worker panicked while running this task".into(),
            }),
            log: Vec::new(),
            metrics: TaskMetrics { worker, ..TaskMetrics::default() },
        })
}
