//! The wasmtime host: one shared engine, the compiled-module cache, the SDK ABI
//! and command tasks, and the sandbox limits.

pub mod inspect;
