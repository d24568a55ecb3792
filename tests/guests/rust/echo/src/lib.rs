//! `echo`: a test guest that mirrors its inputs. Every input item is copied
//! to an output of the same name (a list item `parts[i]` to `parts/i`).
//! Params (all optional): `text` is written to output `out`; `log` is logged
//! at info level; `stdout` / `stderr` are printed through WASI fds 1 / 2.
//! Declares no params list, so it accepts anything (unknown keys ignored),
//! and outputs `["*"]` (any name).

use std::io::{self, Write};

use engine_sdk::{Context, Result, ResultExt};

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Params {
    text: Option<String>,
    log: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    if let Some(msg) = &p.log {
        engine_sdk::info!("{msg}");
    }
    if let Some(s) = &p.stdout {
        print!("{s}");
        io::stdout().flush()?;
    }
    if let Some(s) = &p.stderr {
        eprint!("{s}");
    }
    for item in ctx.items().to_vec() {
        let name = match item.index {
            Some(i) => format!("{}/{}", item.name, i),
            None => item.name.clone(),
        };
        let mut input =
            ctx.input_list(&item.name).into_iter().find(|i| i.index() == item.index).context("input vanished")?;
        let mut out = ctx.output(&name)?;
        io::copy(&mut input, &mut out).with_context(|| format!("copying input `{}`", item.label()))?;
        out.finish()?;
    }
    if let Some(text) = &p.text {
        let mut out = ctx.output("out")?;
        out.write_all(text.as_bytes())?;
        out.finish()?;
    }
    Ok(())
}

engine_sdk::task!(
    name = "echo",
    version = "0.1.0",
    description = "copies each input to an output of the same name (test guest)",
    inputs = [],
    outputs = ["*"],
    run = run,
);
