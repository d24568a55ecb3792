//! `engine plugins`: list the stock plugins that a pipeline names as
//! `std:NAME`, found where the pipeline loader looks for them
//! ([`crate::pipeline::plugins::stock_dirs`]), with each one's kind,
//! description, inputs, outputs and params read from its embedded metadata
//! (as `engine inspect` does, without compiling anything).
//!
//! Exit status 0, or 2 when a file in a stock directory is not a valid plugin
//! (the others are still listed).

use std::io::Write as _;

use serde_json::json;

use super::escape::one;
use super::{EXIT_INVALID, EXIT_OK, PluginsArgs};
use crate::pipeline::plugins::{STD_PREFIX, stock_dirs, stock_plugins};
use crate::task::abi::{ModuleInfo, inspect_bytes, read_module};

pub fn plugins(a: &PluginsArgs) -> i32 {
    let dirs = stock_dirs();
    let stock = stock_plugins(&dirs);
    let mut status = EXIT_OK;
    let mut listed = Vec::new();
    for (name, path) in &stock {
        let info = read_module(path).map_err(|e| e.to_string()).and_then(|b| {
            if b.starts_with(b"\0asm") { inspect_bytes(&b) } else { Err("not a WebAssembly module".into()) }
        });
        match info {
            Ok(info) => listed.push((name, path, info)),
            Err(e) => {
                eprintln!(
                    "error: invalid stock plugin `{STD_PREFIX}{name}` ({}): {}",
                    one(&path.display().to_string()),
                    one(&e)
                );
                status = EXIT_INVALID;
            }
        }
    }
    // Written with errors ignored, so `engine plugins | head` does not panic.
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = listed
            .iter()
            .map(|(name, path, info)| {
                json!({"name": format!("{STD_PREFIX}{name}"), "path": path, "kind": info.kind, "meta": info.meta})
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if stock.is_empty() {
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let _ = writeln!(out, "no stock plugins found in {}", searched.join(", "));
    } else {
        for (name, path, info) in &listed {
            let _ = write!(out, "{}", render(name, &path.display().to_string(), info));
        }
    }
    status
}

/// One plugin, as `engine plugins` prints it (documented in docs/plugins.md),
/// its metadata escaped ([`super::escape`]).
fn render(name: &str, path: &str, info: &ModuleInfo) -> String {
    let list = |v: &[String]| if v.is_empty() { "(none)".to_string() } else { one(&v.join(", ")).into_owned() };
    let mut s = format!("{STD_PREFIX}{name} ({})", info.kind.describe());
    match &info.meta {
        None => s += "\n  metadata: none\n",
        Some(m) => {
            let params = match &m.params {
                None => "(not declared: any accepted)".to_string(),
                Some(p) => list(p),
            };
            s += &format!(": {}\n", one(&m.description));
            s += &format!("  inputs: {}; outputs: {}; params: {params}\n", list(&m.inputs), list(&m.outputs));
        }
    }
    s += &format!("  file: {}\n", one(path));
    s
}
