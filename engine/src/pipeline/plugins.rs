//! Checks on plugin files that `engine check` can make without compiling wasm:
//! the file exists, its sha256 matches the pin, it is a wasm module, its imports
//! are ones the engine provides, and its embedded metadata (outputs, params),
//! read with [`crate::task::abi::inspect_bytes`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::task::abi::{PluginKind, PluginMeta, inspect_bytes};

/// Import modules a plugin may use.
pub const ALLOWED_IMPORT_MODULES: &[&str] = &["engine", "wasi_snapshot_preview1"];

/// Where in the pipeline file a problem points.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Path,
    Sha,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub at: At,
    pub message: String,
    pub label: String,
    pub notes: Vec<String>,
}

/// What was learnt about one plugin file.
#[derive(Debug, Clone, Default)]
pub struct PluginCheck {
    pub problems: Vec<Problem>,
    pub kind: Option<PluginKind>,
    pub meta: Option<PluginMeta>,
    /// sha256 of the bytes read, when the file could be read.
    pub digest: Option<crate::store::Digest>,
    /// The module's declared minimum linear memory in bytes, if it defines one.
    pub min_memory: Option<u64>,
}

/// Check plugin `name`, written `rel` in the pipeline and found at `path`.
pub fn check_file(name: &str, rel: &str, path: &Path, sha256: Option<&str>) -> PluginCheck {
    let mut c = PluginCheck::default();
    let mut problem = |at, message: String, label: &str, notes: Vec<String>| {
        c.problems.push(Problem { at, message, label: label.to_string(), notes })
    };
    // Refused before opening: opening a FIFO would wait for a writer.
    if let Some(why) = std::fs::metadata(path).ok().as_ref().and_then(crate::task::files::not_regular) {
        problem(
            At::Path,
            format!("plugin `{name}`: `{rel}` {why}, not a regular file"),
            "a plugin must be a regular file",
            vec![],
        );
        return c;
    }
    let bytes = match crate::task::abi::read_module(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problem(
                At::Path,
                format!("plugin `{name}`: file `{rel}` does not exist"),
                "no such file",
                vec!["paths are relative to the directory of the pipeline file".into()],
            );
            return c;
        }
        Err(e) => {
            let msg = match e.kind() {
                std::io::ErrorKind::FileTooLarge => e.to_string(),
                _ => e.to_string().to_lowercase(),
            };
            problem(At::Path, format!("plugin `{name}`: cannot read `{rel}`: {msg}"), "cannot read this file", vec![]);
            return c;
        }
    };
    let digest = crate::store::Digest(Sha256::digest(&bytes).into());
    c.digest = Some(digest);
    if let Some(pinned) = sha256 {
        let actual = digest.to_hex();
        if actual != pinned {
            problem(
                At::Sha,
                format!("plugin `{name}`: sha256 of `{rel}` does not match the pin"),
                "pinned here",
                vec![format!("expected {pinned}"), format!("actual   {actual}")],
            );
        }
    }
    if !bytes.starts_with(b"\0asm") {
        problem(
            At::Path,
            format!("plugin `{name}`: `{rel}` is not a WebAssembly module"),
            "this file does not start with the wasm magic bytes `\\0asm`",
            vec![],
        );
        return c;
    }
    match inspect_bytes(&bytes) {
        Err(e) => problem(
            At::Path,
            format!("plugin `{name}`: `{rel}` is not a valid task plugin: {e}"),
            "this plugin",
            vec![],
        ),
        Ok(info) => {
            // A component's imports were checked by its own rules (`task::component`).
            let core = matches!(info.kind, PluginKind::Sdk | PluginKind::Command);
            for (module, field, _) in info.imports.iter().filter(|_| core) {
                if !ALLOWED_IMPORT_MODULES.contains(&module.as_str()) {
                    problem(
                        At::Path,
                        format!("plugin `{name}` imports `{module}.{field}`, which the engine does not provide"),
                        "this plugin",
                        vec!["plugins may import only from `engine` and `wasi_snapshot_preview1`".into()],
                    );
                }
            }
            c.kind = Some(info.kind);
            c.meta = info.meta;
            c.min_memory = info.min_memory;
        }
    }
    c
}

/// The prefix that names a stock plugin instead of a file: `std:wordcount`.
pub const STD_PREFIX: &str = "std:";

/// Where stock plugins (`std:NAME` → `NAME.wasm`) are looked for, in order:
/// each directory of `$ENGINE_PLUGIN_PATH` (colon-separated), then
/// `<exe dir>/../share/engine/plugins` (an installed engine: `PREFIX/bin/engine`),
/// then `<exe dir>/../plugins` (a build tree: `TARGET/release/engine` next to
/// `TARGET/plugins/`, where `xtask/build-guests.sh` puts them).
pub fn stock_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = match std::env::var_os("ENGINE_PLUGIN_PATH") {
        Some(p) => std::env::split_paths(&p).filter(|d| !d.as_os_str().is_empty()).collect(),
        None => Vec::new(),
    };
    if let Some(up) = std::env::current_exe().ok().and_then(|e| e.parent()?.parent().map(Path::to_path_buf)) {
        dirs.push(up.join("share/engine/plugins"));
        dirs.push(up.join("plugins"));
    }
    dirs
}

/// The stock plugins found in `dirs`: name → file, sorted by name; the first
/// directory holding `NAME.wasm` wins. Names are the file stems that are valid
/// plugin names (letters, digits, `_`, `-`).
pub fn stock_plugins(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut found = std::collections::BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".wasm")) else {
                continue;
            };
            if super::refs::valid_id(name) && path.is_file() {
                found.entry(name.to_string()).or_insert(path);
            }
        }
    }
    found.into_iter().collect()
}

/// Resolve `std:NAME` (the whole string, prefix included) to a file of the
/// stock plugin directories ([`stock_dirs`]), or say why not: the problem
/// lists the stock names, or the directories searched when there are none.
pub fn resolve_stock(spec: &str) -> Result<PathBuf, Problem> {
    let name = spec.strip_prefix(STD_PREFIX).unwrap_or(spec);
    let dirs = stock_dirs();
    let stock = stock_plugins(&dirs);
    if let Some((_, path)) = stock.iter().find(|(n, _)| n == name) {
        return Ok(path.clone());
    }
    let notes = if stock.is_empty() {
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        vec![
            format!("no stock plugins found in {}", searched.join(", ")),
            "install them with `bash xtask/install.sh`, or name their directory in $ENGINE_PLUGIN_PATH".into(),
        ]
    } else {
        let names: Vec<String> = stock.iter().map(|(n, _)| format!("{STD_PREFIX}{n}")).collect();
        vec![format!("stock plugins: {}", names.join(", "))]
    };
    Err(Problem {
        at: At::Path,
        message: format!("unknown stock plugin `{spec}`"),
        label: "no such stock plugin".into(),
        notes,
    })
}
