//! `topk`: the k most frequent entries of a `word<TAB>count` table, by count
//! descending then word ascending (see docs/plugins.md#topk). Streams the
//! input and keeps only k entries in a heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, Write};

use engine_sdk::{Context, Result, ResultExt, bail};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    k: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { k: 10 }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let mut input = ctx.input("counts")?;
    // Ordered best-first: (Reverse(count), word). The max-heap keeps the
    // worst of the k best on top, ready to be evicted.
    let mut heap: BinaryHeap<(Reverse<u64>, Vec<u8>)> = BinaryHeap::new();
    let mut line = Vec::new();
    let mut lineno = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).context("reading input `counts`")? == 0 {
            break;
        }
        lineno += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let Some(tab) = text.iter().rposition(|&b| b == b'\t') else {
            bail!("input `counts` line {lineno}: expected `word<TAB>count`");
        };
        let count = std::str::from_utf8(&text[tab + 1..]).ok().and_then(|s| s.parse::<u64>().ok());
        let Some(count) = count else {
            bail!(
                "input `counts` line {lineno}: count `{}` is not a non-negative integer",
                String::from_utf8_lossy(&text[tab + 1..])
            );
        };
        if p.k == 0 {
            continue;
        }
        let entry = (Reverse(count), text[..tab].to_vec());
        if (heap.len() as u64) < p.k {
            heap.push(entry);
        } else if heap.peek().is_some_and(|worst| entry < *worst) {
            heap.pop();
            heap.push(entry);
        }
    }
    let mut out = ctx.output("out")?;
    for (Reverse(count), word) in heap.into_sorted_vec() {
        out.write_all(&word)?;
        writeln!(out, "\t{count}")?;
    }
    out.finish()
}

engine_sdk::task!(
    name = "topk",
    version = "0.1.0",
    description = "the `k` (default 10) largest entries of a `word<TAB>count` table, by count then word",
    inputs = ["counts"],
    outputs = ["out"],
    params = ["k"],
    run = run,
);
