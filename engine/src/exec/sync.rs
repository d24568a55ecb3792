//! The `sync` executor: one task at a time on the calling thread, in the
//! scheduler's deterministic order. Like `dask.get`, for debugging.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Executor;
use super::message::{TaskMessage, TaskResult};
use crate::runtime::Runtime;
use crate::store::BlobStore;

pub struct SyncExecutor {
    runtime: Arc<Runtime>,
    store: Arc<dyn BlobStore>,
    queue: VecDeque<TaskMessage>,
    run_start: Instant,
}

impl SyncExecutor {
    pub fn new(runtime: Arc<Runtime>, store: Arc<dyn BlobStore>, run_start: Instant) -> Self {
        SyncExecutor { runtime, store, queue: VecDeque::new(), run_start }
    }
}

impl Executor for SyncExecutor {
    fn slots(&self) -> usize {
        1
    }

    fn submit(&mut self, msg: TaskMessage) {
        self.queue.push_back(msg);
    }

    fn recv(&mut self, _timeout: Duration) -> Option<TaskResult> {
        let msg = self.queue.pop_front()?;
        Some(self.runtime.run_task(&msg, &*self.store, 0, self.run_start))
    }

    fn cancel_all(&mut self) {
        self.runtime.cancel_all();
    }
}
