//! Executors: where tasks run, behind one interface.
//!
//! The [`driver`] owns the run loop: it asks the scheduler core which tasks to
//! start, turns each into a self-contained [`message::TaskMessage`] (plugin
//! digest, input blob digests, params, limits), hands it to an [`Executor`],
//! and feeds the [`message::TaskResult`]s back to the core. Executors know
//! nothing about the graph: [`sync`] runs messages one at a time on the calling
//! thread, [`threads`] on a pool of worker threads, [`processes`] on a pool of
//! `engine worker` subprocesses ([`worker`], speaking [`proto`]). A Dask
//! executor implements the same trait with the same messages.

pub mod driver;
pub mod message;
pub mod processes;
pub mod proto;
pub mod sync;
pub mod threads;
pub mod worker;

use std::time::Duration;

use message::{TaskMessage, TaskResult};

pub trait Executor {
    /// The most tasks this executor runs at once.
    fn slots(&self) -> usize;
    /// Start a task. The result comes back through [`Executor::recv`].
    fn submit(&mut self, msg: TaskMessage);
    /// Wait up to `timeout` for the next result. `None` on timeout.
    fn recv(&mut self, timeout: Duration) -> Option<TaskResult>;
    /// Interrupt every running task (they report `TaskFailure::Cancelled`).
    fn cancel_all(&mut self);
}
