//! `flaky`: a test guest that writes output `out` (`partial\n`) and then
//! fails when asked: `{"fail": true}` returns an error
//! (`failing as asked`), `{"panic": true}` panics (a trap),
//! `{"fail_attempts": N}` fails (`failing attempt K as asked`) while the
//! attempt number K is at most N. Otherwise it succeeds with `out` = `ok\n`.

use std::io::Write;

use engine_sdk::{Context, Result, bail};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Params {
    fail: bool,
    panic: bool,
    fail_attempts: u32,
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let mut out = ctx.output("out")?;
    if p.fail || p.panic {
        out.write_all(b"partial\n")?;
        out.flush()?;
    }
    if p.panic {
        panic!("panicking as asked");
    }
    if p.fail {
        bail!("failing as asked");
    }
    if ctx.attempt() <= p.fail_attempts {
        bail!("failing attempt {} as asked", ctx.attempt());
    }
    out.write_all(b"ok\n")?;
    out.finish()
}

engine_sdk::task!(
    name = "flaky",
    version = "0.1.0",
    description = "fails on request (test guest)",
    inputs = [],
    outputs = ["out"],
    params = ["fail", "panic", "fail_attempts"],
    run = run,
);
