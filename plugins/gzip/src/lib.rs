//! `gzip`: compress an input to the gzip format (see docs/plugins.md#gzip).
//! Streams. The header has no file name and a zero timestamp, so the same
//! input and level always give the same bytes.

use std::io;

use engine_sdk::{Context, Result, ResultExt, bail};
use flate2::{Compression, GzBuilder};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    level: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params { level: 6 }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    if p.level > 9 {
        bail!("param `level` must be between 0 and 9, got {}", p.level);
    }
    let mut input = ctx.input("data")?;
    let out = ctx.output("out")?;
    let mut gz = GzBuilder::new().mtime(0).write(out, Compression::new(p.level));
    io::copy(&mut input, &mut gz).context("compressing input `data`")?;
    gz.finish().context("compressing input `data`")?.finish()
}

engine_sdk::task!(
    name = "gzip",
    version = "0.1.0",
    description = "gzip-compress `data` at `level` 0-9 (default 6)",
    inputs = ["data"],
    outputs = ["out"],
    params = ["level"],
    run = run,
);
