//! `cmd_cat`: a test guest that is a plain WASI command (no SDK).
//!
//! * `/out/out`: every file under `/in`, concatenated in order of relative
//!   path (byte order); empty if there is no `/in`.
//! * `/out/args`: when args are given, each of `argv[1..]` plus `\n`.
//! * `/out/env`: when the environment is not empty, `KEY=VALUE\n` lines, sorted.
//! * stderr: `cmd_cat: <files> files, <bytes> bytes`.
//! * exit code: the value of env `EXIT_CODE` if set, else 0.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn files(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            files(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let mut found = Vec::new();
    if Path::new("/in").exists() {
        files(Path::new("/in"), &mut found)?;
    }
    let mut out = fs::File::create("/out/out")?;
    let mut total = 0u64;
    for f in &found {
        total += io::copy(&mut fs::File::open(f)?, &mut out)?;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        let text: String = args.iter().map(|a| format!("{a}\n")).collect();
        fs::write("/out/args", text)?;
    }
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    if !env.is_empty() {
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        fs::write("/out/env", text)?;
    }
    eprintln!("cmd_cat: {} files, {total} bytes", found.len());
    io::stderr().flush()?;
    if let Ok(code) = std::env::var("EXIT_CODE") {
        std::process::exit(code.trim().parse().unwrap_or(1));
    }
    Ok(())
}
