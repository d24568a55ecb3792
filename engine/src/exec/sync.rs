//! The `sync` executor: one task at a time on the calling thread, in the
//! scheduler's deterministic order. Like `dask.get`, for debugging.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Completion, Executor};
use crate::runtime::Runtime;
use crate::store::BlobStore;
use crate::task::message::TaskMessage;

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
    fn workers(&self) -> usize {
        1
    }

    fn room(&self, _w: usize) -> usize {
        1 - self.queue.len().min(1)
    }

    fn submit(&mut self, _w: usize, msg: TaskMessage) {
        self.queue.push_back(msg);
    }

    fn recv(&mut self, _timeout: Duration) -> Option<Completion> {
        let msg = self.queue.pop_front()?;
        Some(Completion::Done(self.runtime.run_task(&msg, &*self.store, 0, self.run_start)))
    }

    fn cancel_all(&mut self) {
        self.runtime.cancel_all();
    }
}
