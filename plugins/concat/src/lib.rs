//! `concat`: join the items of a list input, in index order, with an optional
//! separator between them, and with `skip_header` the first line of every item
//! after the first dropped (CSV files with one header each; see
//! docs/plugins.md#concat). Streams.

use std::io::{self, BufRead, BufReader, Write};

use engine_sdk::{Context, Result, ResultExt};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Params {
    separator: String,
    skip_header: bool,
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let mut out = ctx.output("out")?;
    for (i, mut part) in ctx.input_list("parts").into_iter().enumerate() {
        if i > 0 {
            out.write_all(p.separator.as_bytes())?;
        }
        let label = part.label().to_string();
        if p.skip_header && i > 0 {
            let mut r = BufReader::new(part);
            let mut header = Vec::new();
            r.read_until(b'\n', &mut header).with_context(|| format!("reading input `{label}`"))?;
            io::copy(&mut r, &mut out).with_context(|| format!("copying input `{label}`"))?;
        } else {
            io::copy(&mut part, &mut out).with_context(|| format!("copying input `{label}`"))?;
        }
    }
    out.finish()
}

engine_sdk::task!(
    name = "concat",
    version = "0.1.0",
    description = "concatenate the list input `parts` in index order, with `separator` between items; `skip_header` drops the first line of every item after the first",
    inputs = ["parts"],
    outputs = ["out"],
    params = ["separator", "skip_header"],
    run = run,
);
