//! The `threads` executor (the default): a pool of worker threads sharing one
//! wasmtime engine and the prepared plugins; each task gets a fresh store
//! (sandbox) on the worker that picks it up.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::Executor;
use super::message::{TaskFailure, TaskMessage, TaskMetrics, TaskResult};
use crate::runtime::Runtime;
use crate::store::BlobStore;

/// Native stack for worker threads: wasm stack limit plus host frames.
pub const WORKER_STACK: usize = 8 << 20;

pub struct ThreadsExecutor {
    runtime: Arc<Runtime>,
    workers: usize,
    tx: Option<Sender<TaskMessage>>,
    rx: Receiver<TaskResult>,
    handles: Vec<JoinHandle<()>>,
}

impl ThreadsExecutor {
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<dyn BlobStore>,
        workers: usize,
        run_start: Instant,
    ) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (tx, task_rx) = unbounded::<TaskMessage>();
        let (res_tx, rx) = unbounded::<TaskResult>();
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let task_rx = task_rx.clone();
            let res_tx = res_tx.clone();
            let runtime = runtime.clone();
            let store = store.clone();
            let h = std::thread::Builder::new().name(format!("engine-worker-{w}")).stack_size(WORKER_STACK).spawn(
                move || {
                    while let Ok(msg) = task_rx.recv() {
                        let res = run_one(&runtime, &msg, &*store, w as u32, run_start);
                        if res_tx.send(res).is_err() {
                            break;
                        }
                    }
                },
            )?;
            handles.push(h);
        }
        Ok(ThreadsExecutor { runtime, workers, tx: Some(tx), rx, handles })
    }
}

impl Executor for ThreadsExecutor {
    fn slots(&self) -> usize {
        self.workers
    }

    fn submit(&mut self, msg: TaskMessage) {
        if let Some(tx) = &self.tx {
            // Workers only exit when `tx` is dropped, so this cannot fail.
            let _ = tx.send(msg);
        }
    }

    fn recv(&mut self, timeout: Duration) -> Option<TaskResult> {
        self.rx.recv_timeout(timeout).ok()
    }

    fn cancel_all(&mut self) {
        self.runtime.cancel_all();
    }
}

impl Drop for ThreadsExecutor {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

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
