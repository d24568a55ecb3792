//! Static inspection of a module's bytes, without compiling it: kind (SDK or
//! command task), imports, exports and the embedded task metadata.
//!
//! Used by `engine inspect` and by `engine check`, which must not load wasm
//! into wasmtime.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Imports from module `engine` and exports the entry function.
    Sdk,
    /// A WASI preview 1 program with `_start` and no `engine` imports.
    Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub kind: PluginKind,
    /// (module, name, kind) for every import, e.g. ("engine", "input_read", "func").
    pub imports: Vec<(String, String, String)>,
    /// (name, kind) for every export.
    pub exports: Vec<(String, String)>,
    /// The task metadata custom section, when present.
    pub meta: Option<PluginMeta>,
}

/// The task description the SDK embeds in a custom section (see docs/abi.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PluginMeta {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub abi: u32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Accepted param names. `None` means "not declared": anything goes.
    #[serde(default)]
    pub params: Option<Vec<String>>,
}

/// Inspect module bytes. The error text says what is wrong with the module
/// (malformed, unsupported import, neither kind, ...).
pub fn inspect_bytes(_bytes: &[u8]) -> Result<ModuleInfo, String> {
    Err("not implemented yet".into())
}
