//! engine: runs data pipelines whose tasks are sandboxed WebAssembly plugins.
//!
//! Layers, from the top; each module imports only from its own layer or below
//! (checked by the `layers` test):
//!
//! * [`cli`]: flags, terminal output, exit codes; the only place errors are rendered.
//! * [`session`]: a run as a library API (store, plugins, executor, outputs).
//! * [`report`]: the JSON report and the trace of a finished run.
//! * [`exec`]: the run loop and the executors (sync, threads, processes).
//! * [`runtime`]: the wasmtime host and sandbox.
//! * [`pipeline`]: parse, validate and expand a `pipeline.toml` into a [`plan`].
//! * [`sched`]: the scheduler core, a pure state machine; [`graph`]: views of a plan.
//! * [`task`]: the task contract (message, result, limits, plugin ABI facts).
//! * [`plan`]: the resolved graph.
//! * [`store`]: content-addressed blobs; [`units`]: sizes and durations.
//!
//! See ARCHITECTURE.md.

pub mod cli;
pub mod exec;
pub mod graph;
pub mod history;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod runtime;
pub mod sched;
pub mod session;
pub mod store;
pub mod task;
pub mod units;
pub mod upkeep;
