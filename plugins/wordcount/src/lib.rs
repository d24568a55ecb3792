//! `wordcount`: count the words of a text (see docs/plugins.md#wordcount).
//!
//! Streams the input line by line; memory grows with the number of distinct
//! words, not with the input.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use engine_sdk::{Context, Result, ResultExt};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    lowercase: bool,
    min_len: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { lowercase: true, min_len: 1 }
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let mut input = ctx.input("text")?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).context("reading input `text`")? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let word = if p.lowercase { word.to_lowercase() } else { word.to_owned() };
            if word.chars().count() >= p.min_len {
                *counts.entry(word).or_insert(0) += 1;
            }
        }
    }
    let mut out = ctx.output("out")?;
    for (word, n) in &counts {
        writeln!(out, "{word}\t{n}")?;
    }
    engine_sdk::info!("{} distinct words", counts.len());
    out.finish()
}

engine_sdk::task!(
    name = "wordcount",
    version = "0.1.0",
    description = "count words: one `word<TAB>count` line per distinct word, sorted by word",
    inputs = ["text"],
    outputs = ["out"],
    params = ["lowercase", "min_len"],
    run = run,
);
