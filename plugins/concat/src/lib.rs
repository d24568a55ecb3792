//! `concat`: join the items of a list input, in index order, with an optional
//! separator between them (see docs/plugins.md#concat). Streams.

use std::io::{self, Write};

use engine_sdk::{Context, Result, ResultExt};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Params {
    separator: String,
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let mut out = ctx.output("out")?;
    for (i, mut part) in ctx.input_list("parts").into_iter().enumerate() {
        if i > 0 {
            out.write_all(p.separator.as_bytes())?;
        }
        io::copy(&mut part, &mut out).with_context(|| format!("copying input `{}`", part.label()))?;
    }
    out.finish()
}

engine_sdk::task!(
    name = "concat",
    version = "0.1.0",
    description = "concatenate the list input `parts` in index order, with `separator` between items",
    inputs = ["parts"],
    outputs = ["out"],
    params = ["separator"],
    run = run,
);
