//! The scheduler core: a pure state machine over the plan. No wasmtime, no I/O.
