//! Executors: where tasks run, behind one interface.
//!
//! The [`driver`] owns the run loop: it asks the scheduler core which tasks to
//! start, turns each into a self-contained [`TaskMessage`] (plugin
//! digest, input blob digests, params, limits), hands it to an [`Executor`],
//! and feeds the [`TaskResult`]s back to the core. Executors know
//! nothing about the graph: [`sync`] runs messages one at a time on the calling
//! thread, [`threads`] on a pool of worker threads, [`processes`] on a pool of
//! `engine worker` subprocesses ([`worker`], speaking [`proto`]), and [`dask`]
//! on a Dask cluster, in the same `engine worker` processes. [`compile`]
//! compiles a plugin in an `engine compile-plugin` child process, so that a
//! run can bound compilation by time and stop it on Ctrl-C.

pub mod compile;
pub mod dask;
pub mod driver;
pub mod processes;
pub mod proto;
pub mod sync;
pub mod threads;
pub mod worker;

use std::time::Duration;

use crate::task::message::{TaskMessage, TaskResult};

use crate::plan::TaskId;

/// A pool of workers that each run the tasks given to them one at a time, in
/// the order given. The driver starts tasks on a worker's lane in the
/// scheduler core (see "Dispatch policy" in `sched`), so a worker may hold a
/// few queued tasks without the resource ledger counting them twice.
pub trait Executor {
    /// How many workers.
    fn workers(&self) -> usize;
    /// When every worker is gone for good (none can be started), why. The
    /// driver then stops the run: nothing could ever run again.
    fn no_workers(&self) -> Option<String> {
        None
    }
    /// How many more tasks worker `w` takes now.
    fn room(&self, w: usize) -> usize;
    /// Queue a task on worker `w`. What became of it comes back through
    /// [`Executor::recv`].
    fn submit(&mut self, w: usize, msg: TaskMessage);
    /// Wait up to `timeout` for the next completion. `None` on timeout.
    fn recv(&mut self, timeout: Duration) -> Option<Completion>;
    /// Interrupt every running task (they report `TaskFailure::Cancelled`),
    /// and cancel the queued ones.
    fn cancel_all(&mut self);
}

/// What became of a submitted task.
#[derive(Debug)]
pub enum Completion {
    /// It ran: the outcome of the attempt.
    Done(TaskResult),
    /// It never started: its worker died while it was queued behind another
    /// task. It goes back to ready without counting as an attempt.
    Unstarted { task: TaskId },
    /// An execution of a running attempt was lost (its Dask worker died) and
    /// the executor runs it again by itself: a `worker_lost` slice in the
    /// trace, not an attempt; the attempt's own result comes later.
    Lost { task: TaskId, attempt: u32, worker: u32, start_us: u64, end_us: u64, message: String },
}
