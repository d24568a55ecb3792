//! The task contract: everything a task is, independent of where it runs.
//!
//! This is a bottom layer, below the pipeline loader, the runtime and the
//! executors, and it imports none of them. It owns:
//! * [`message`]: the self-contained [`message::TaskMessage`] an executor
//!   ships to wherever a task runs, the [`message::TaskResult`] that comes
//!   back, the failure kinds, and [`message::Limits`] with
//!   [`message::Limits::for_task`], the only place per-task defaults are
//!   applied;
//! * [`abi`]: the plugin ABI facts (plugin kinds, embedded metadata, the
//!   `engine` function table, the WASI import list, the enabled wasm
//!   features) and static inspection of a module's bytes, without wasmtime;
//! * [`component`]: static inspection of a component (the `engine:task`
//!   world or `wasi:cli/command`), the imports it may use;
//! * [`cache`]: the action-cache key of a task message and the record a
//!   finished task leaves;
//! * [`names`]: the one rule for output names, used at check time and at run
//!   time;
//! * [`files`]: what kind of file a host path is, and opening regular files
//!   only (plugins, `file:` inputs), so a FIFO or a device never blocks.
//!
//! Architecture invariant: nothing here depends on wasmtime, on a terminal,
//! or on the pipeline file format.

pub mod abi;
pub mod cache;
pub mod component;
pub mod files;
pub mod message;
pub mod names;
