//! `gunzip`: decompress gzip data, including multi-member files as `gzip -d`
//! does (see docs/plugins.md#gunzip). Streams.

use std::io;

use engine_sdk::{Context, Result, ResultExt};
use flate2::read::MultiGzDecoder;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

fn run(ctx: &mut Context) -> Result<()> {
    let _: Params = ctx.params()?;
    let input = ctx.input("data")?;
    let mut out = ctx.output("out")?;
    let mut gz = MultiGzDecoder::new(input);
    io::copy(&mut gz, &mut out).context("input `data` is not valid gzip")?;
    out.finish()
}

engine_sdk::task!(
    name = "gunzip",
    version = "0.1.0",
    description = "decompress gzip `data` (multi-member files are concatenated)",
    inputs = ["data"],
    outputs = ["out"],
    params = [],
    run = run,
);
