//! `split`: cut a text into N chunks on line boundaries (see
//! docs/plugins.md#split).
//!
//! Chunk k (0-based) ends at the first line start at or after byte
//! floor((k+1) * len / N), so chunks are balanced by bytes, never cut a line,
//! and concatenate back to the input exactly. The input is streamed; the
//! input length (known up front) fixes every target offset.

use std::io::{BufRead, Write};

use engine_sdk::{Context, Output, Result, ResultExt, bail};

/// Most chunks a split may produce (each one is an output).
const MAX_CHUNKS: u64 = 10_000;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    chunks: Option<u64>,
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let Some(n) = p.chunks else { bail!("param `chunks` is required (number of chunks, 1 to {MAX_CHUNKS})") };
    if !(1..=MAX_CHUNKS).contains(&n) {
        bail!("param `chunks` must be between 1 and {MAX_CHUNKS}, got {n}");
    }
    let mut input = ctx.input("text")?;
    let len = input.len();
    // target[k]: the earliest offset where chunk k may start (k >= 1).
    let target = |k: u64| ((k as u128 * len as u128) / n as u128) as u64;
    let mut outs: Vec<Output> = Vec::with_capacity(n as usize);
    for k in 0..n {
        outs.push(ctx.output(&k.to_string())?);
    }

    let mut cur = 0u64; // chunk being written
    let mut pos = 0u64; // input bytes consumed
    let mut at_line_start = true;
    loop {
        let buf = input.fill_buf().context("reading input `text`")?;
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        while used < buf.len() {
            while cur + 1 < n && at_line_start && pos >= target(cur + 1) {
                cur += 1;
            }
            let rest = &buf[used..];
            let take = if cur + 1 == n {
                rest.len()
            } else if pos < target(cur + 1) {
                rest.len().min((target(cur + 1) - pos) as usize)
            } else {
                // Past the target: finish the current line.
                rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1)
            };
            outs[cur as usize].write_all(&rest[..take])?;
            at_line_start = rest[take - 1] == b'\n';
            pos += take as u64;
            used += take;
        }
        input.consume(used);
    }
    for out in outs {
        out.finish()?;
    }
    Ok(())
}

engine_sdk::task!(
    name = "split",
    version = "0.1.0",
    description = "split a text into `chunks` pieces on line boundaries; outputs `0` .. `chunks-1`",
    inputs = ["text"],
    outputs = ["*"],
    params = ["chunks"],
    run = run,
);
