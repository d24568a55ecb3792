//! engine: runs data pipelines whose tasks are sandboxed WebAssembly plugins.
//!
//! Layers, each reaching only downwards: [`pipeline`] (parse, validate, expand a
//! `pipeline.toml`) → [`plan`] (the resolved graph) → [`sched`] (a pure
//! scheduling state machine) → [`exec`] (executors: sync, threads, processes)
//! → [`runtime`] (the wasmtime host and sandbox) → [`store`] (content-addressed
//! blobs). [`cli`] sits on top and is the only place that renders errors.
//! See ARCHITECTURE.md.

pub mod cli;
pub mod exec;
pub mod graph;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod runtime;
pub mod sched;
pub mod store;
pub mod units;
