//! `noop`: a test guest that does nothing and succeeds (the benchmark task:
//! no inputs, no outputs, no params).

fn run(_ctx: &mut engine_sdk::Context) -> engine_sdk::Result<()> {
    Ok(())
}

engine_sdk::task!(
    name = "noop",
    version = "0.1.0",
    description = "does nothing",
    inputs = [],
    outputs = [],
    params = [],
    run = run,
);
