//! `topk`: the k most frequent entries of a `word<TAB>count` table, by count
//! descending then word ascending (see docs/plugins.md#topk). With
//! `delimiter` and `column` it ranks the lines of any delimited table (such as
//! `csv_aggregate` output) by the integer in that column (1-based; default:
//! the last), ties by the line. Streams the input and keeps only k entries in
//! a heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, Write};

use engine_sdk::{Context, Result, ResultExt, bail};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    k: u64,
    delimiter: String,
    column: Option<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Params { k: 10, delimiter: "\t".to_owned(), column: None }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let delim = match p.delimiter.as_bytes() {
        [b] => *b,
        _ => bail!("param `delimiter` must be a single ASCII character, got `{}`", p.delimiter),
    };
    if p.column == Some(0) {
        bail!("param `column` counts from 1");
    }
    let mut input = ctx.input("counts")?;
    // Ordered best-first: (Reverse(count), word). The max-heap keeps the
    // worst of the k best on top, ready to be evicted.
    // The line is kept whole; the default table is `word<TAB>count`, so
    // ties by line are ties by word.
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
        let field = match p.column {
            None => text.iter().rposition(|&b| b == delim).map(|at| &text[at + 1..]),
            Some(c) => text.split(|&b| b == delim).nth(c - 1).filter(|_| text.contains(&delim)),
        };
        let Some(field) = field else {
            if p.delimiter == "\t" && p.column.is_none() {
                bail!("input `counts` line {lineno}: expected `word<TAB>count`");
            }
            bail!(
                "input `counts` line {lineno}: no column {} with delimiter `{}`",
                p.column.map_or("last".to_string(), |c| c.to_string()),
                p.delimiter
            );
        };
        let count = std::str::from_utf8(field).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let Some(count) = count else {
            bail!(
                "input `counts` line {lineno}: count `{}` is not a non-negative integer",
                String::from_utf8_lossy(field)
            );
        };
        if p.k == 0 {
            continue;
        }
        let entry = (Reverse(count), text.to_vec());
        if (heap.len() as u64) < p.k {
            heap.push(entry);
        } else if heap.peek().is_some_and(|worst| entry < *worst) {
            heap.pop();
            heap.push(entry);
        }
    }
    let mut out = ctx.output("out")?;
    for (_, line) in heap.into_sorted_vec() {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.finish()
}

engine_sdk::task!(
    name = "topk",
    version = "0.1.0",
    description = "the `k` (default 10) largest entries of a `word<TAB>count` table (or of any `delimiter`-separated table, by the integer in `column`), by count then line",
    inputs = ["counts"],
    outputs = ["out"],
    params = ["k", "delimiter", "column"],
    run = run,
);
