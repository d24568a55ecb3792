//! `cmd_stdio`: a test guest that is a plain WASI command using stdio: copies
//! stdin to stdout, then writes `cmd_stdio: <n> bytes` to stderr. Exit code:
//! env `EXIT_CODE` if set, else 0.

use std::io::{self, Write};

fn main() -> io::Result<()> {
    let n = io::copy(&mut io::stdin().lock(), &mut io::stdout().lock())?;
    io::stdout().flush()?;
    eprintln!("cmd_stdio: {n} bytes");
    if let Ok(code) = std::env::var("EXIT_CODE") {
        std::process::exit(code.trim().parse().unwrap_or(1));
    }
    Ok(())
}
