//! `merge`: sum several `word<TAB>count` tables into one (see
//! docs/plugins.md#merge). Streams each part line by line; memory grows with
//! the number of distinct words.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use engine_sdk::{Context, Input, Result, ResultExt, bail};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

/// Parse a `word<TAB>count` line (without its newline). The word is
/// everything before the last tab.
fn parse_line<'a>(line: &'a [u8], input: &Input, lineno: u64) -> Result<(&'a [u8], u64)> {
    let Some(tab) = line.iter().rposition(|&b| b == b'\t') else {
        bail!("input `{}` line {lineno}: expected `word<TAB>count`", input.label());
    };
    let count = std::str::from_utf8(&line[tab + 1..]).ok().and_then(|s| s.parse::<u64>().ok());
    let Some(count) = count else {
        bail!(
            "input `{}` line {lineno}: count `{}` is not a non-negative integer",
            input.label(),
            String::from_utf8_lossy(&line[tab + 1..])
        );
    };
    Ok((&line[..tab], count))
}

fn run(ctx: &mut Context) -> Result<()> {
    let _: Params = ctx.params()?;
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut line = Vec::new();
    for mut part in ctx.input_list("parts") {
        let mut lineno = 0;
        loop {
            line.clear();
            if part.read_until(b'\n', &mut line).with_context(|| format!("reading input `{}`", part.label()))? == 0 {
                break;
            }
            lineno += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            let (word, n) = parse_line(text, &part, lineno)?;
            let total = counts.entry(word.to_vec()).or_insert(0);
            let Some(sum) = total.checked_add(n) else {
                bail!("count for `{}` overflows 64 bits", String::from_utf8_lossy(word));
            };
            *total = sum;
        }
    }
    let mut out = ctx.output("out")?;
    for (word, n) in &counts {
        out.write_all(word)?;
        writeln!(out, "\t{n}")?;
    }
    out.finish()
}

engine_sdk::task!(
    name = "merge",
    version = "0.1.0",
    description = "sum the `word<TAB>count` tables of the list input `parts`; output sorted by word",
    inputs = ["parts"],
    outputs = ["out"],
    params = [],
    run = run,
);
