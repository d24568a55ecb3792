//! `sleep_ms`: a test guest that busy-waits `ms` milliseconds (param, default
//! 100) on the WASI monotonic clock, then writes `out` = `slept <ms>\n`.
//! Busy, so it occupies a worker the way real work does.

use std::io::Write;
use std::time::{Duration, Instant};

use engine_sdk::{Context, Result};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { ms: 100 }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let until = Instant::now() + Duration::from_millis(p.ms);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    let mut out = ctx.output("out")?;
    writeln!(out, "slept {}", p.ms)?;
    out.finish()
}

engine_sdk::task!(
    name = "sleep_ms",
    version = "0.1.0",
    description = "busy-waits `ms` milliseconds (test guest)",
    inputs = [],
    outputs = ["out"],
    params = ["ms"],
    run = run,
);
