//! `hog`: a test guest that allocates and touches `mib` MiB (param, default
//! 64) of linear memory, then writes `out` = `allocated <mib> MiB\n`. Past the
//! task's memory limit the allocation fails and the guest aborts (a trap).

use std::io::Write;

use engine_sdk::{Context, Result};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    mib: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { mib: 64 }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let bytes = p.mib.saturating_mul(1 << 20);
    let mut v: Vec<u8> = Vec::with_capacity(bytes);
    v.resize(bytes, 1);
    std::hint::black_box(&mut v);
    let mut out = ctx.output("out")?;
    writeln!(out, "allocated {} MiB", p.mib)?;
    out.finish()
}

engine_sdk::task!(
    name = "hog",
    version = "0.1.0",
    description = "allocates `mib` MiB (test guest)",
    inputs = [],
    outputs = ["out"],
    params = ["mib"],
    run = run,
);
