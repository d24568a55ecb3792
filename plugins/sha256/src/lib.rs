//! `sha256`: the SHA-256 digest of an input as lowercase hex plus a newline
//! (see docs/plugins.md#sha256). Streams.

use std::io::{Read, Write};

use engine_sdk::{Context, Result, ResultExt};
use sha2::{Digest, Sha256};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

fn run(ctx: &mut Context) -> Result<()> {
    let _: Params = ctx.params()?;
    let mut input = ctx.input("data")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; engine_sdk::CHUNK];
    loop {
        let n = input.read(&mut buf).context("reading input `data`")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let mut hex = String::with_capacity(65);
    for b in hasher.finalize() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.push('\n');
    let mut out = ctx.output("out")?;
    out.write_all(hex.as_bytes())?;
    out.finish()
}

engine_sdk::task!(
    name = "sha256",
    version = "0.1.0",
    description = "SHA-256 of `data` as 64 lowercase hex digits and a newline",
    inputs = ["data"],
    outputs = ["out"],
    params = [],
    run = run,
);
