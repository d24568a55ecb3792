//! Checks on plugin files that `engine check` can make without compiling wasm:
//! the file exists, its sha256 matches the pin, it is a wasm module, its imports
//! are ones the engine provides, and its embedded metadata (outputs, params),
//! read with [`crate::task::abi::inspect_bytes`].

use std::path::Path;

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
}

/// Check plugin `name`, written `rel` in the pipeline and found at `path`.
pub fn check_file(name: &str, rel: &str, path: &Path, sha256: Option<&str>) -> PluginCheck {
    let mut c = PluginCheck::default();
    let mut problem = |at, message: String, label: &str, notes: Vec<String>| {
        c.problems.push(Problem { at, message, label: label.to_string(), notes })
    };
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
            for (module, field, _) in &info.imports {
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
        }
    }
    c
}
