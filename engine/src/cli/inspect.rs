//! `engine inspect`: print a plugin's kind, metadata, imports and exports,
//! as text or JSON, without compiling it.
//!
//! Exit status 0 for a valid plugin, 2 when the file cannot be read or is not
//! a valid plugin (the error says why, naming the file). In the text form and
//! in errors, everything read from the module is escaped
//! ([`super::escape`]); the JSON form keeps the exact strings.

use serde_json::json;

use super::escape::one;
use super::{EXIT_INVALID, EXIT_OK, InspectArgs};
use crate::store::Digest;
use crate::task::abi::{ModuleInfo, inspect_bytes};

pub fn inspect(a: &InspectArgs) -> i32 {
    let bytes = match crate::task::abi::read_module(&a.plugin) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read plugin `{}`: {}", one(&a.plugin.display().to_string()), one(&e.to_string()));
            return EXIT_INVALID;
        }
    };
    let info = match inspect_bytes(&bytes) {
        Ok(i) => i,
        Err(msg) => {
            eprintln!("error: invalid plugin `{}`: {}", one(&a.plugin.display().to_string()), one(&msg));
            return EXIT_INVALID;
        }
    };
    let digest = Digest::of(&bytes);
    if a.json {
        println!("{}", render_json(&a.plugin.display().to_string(), &digest, bytes.len(), &info));
    } else {
        print!("{}", render_text(&a.plugin.display().to_string(), &digest, bytes.len(), &info));
    }
    EXIT_OK
}

/// The text form (documented in docs/abi.md, "Inspecting a plugin"), every
/// string from the module escaped.
pub fn render_text(path: &str, digest: &Digest, size: usize, info: &ModuleInfo) -> String {
    let mut s = String::new();
    s += &format!("plugin:  {}\n", one(path));
    s += &format!("kind:    {}\n", info.kind.describe());
    s += &format!("sha256:  {digest}\n");
    s += &format!("size:    {size} bytes\n");
    match &info.meta {
        None => s += "metadata: none (no `engine.task` custom section)\n",
        Some(m) => {
            s += "metadata:\n";
            s += &format!("  name:        {}\n", one(&m.name));
            s += &format!("  version:     {}\n", one(&m.version));
            s += &format!("  abi:         {}\n", m.abi);
            s += &format!("  description: {}\n", one(&m.description));
            let list = |v: &[String]| if v.is_empty() { "(none)".to_string() } else { one(&v.join(", ")).into_owned() };
            s += &format!("  inputs:      {}\n", list(&m.inputs));
            s += &format!("  outputs:     {}\n", list(&m.outputs));
            let params = match &m.params {
                None => "(not declared: any accepted)".to_string(),
                Some(p) => list(p),
            };
            s += &format!("  params:      {params}\n");
        }
    }
    s += &format!("imports ({}):\n", info.imports.len());
    for (module, name, kind) in &info.imports {
        if name.is_empty() {
            // A component's import: one name (`wasi:cli/stdout@0.2.3`).
            s += &format!("  {} ({kind})\n", one(module));
        } else {
            s += &format!("  {}.{} ({kind})\n", one(module), one(name));
        }
    }
    s += &format!("exports ({}):\n", info.exports.len());
    for (name, kind) in &info.exports {
        s += &format!("  {} ({kind})\n", one(name));
    }
    s
}

/// The `--json` form: one object.
pub fn render_json(path: &str, digest: &Digest, size: usize, info: &ModuleInfo) -> String {
    let v = json!({
        "path": path,
        "kind": info.kind,
        "sha256": digest.to_hex(),
        "size": size,
        "meta": info.meta,
        "imports": info.imports.iter().map(|(m, n, k)| json!({"module": m, "name": n, "kind": k})).collect::<Vec<_>>(),
        "exports": info.exports.iter().map(|(n, k)| json!({"name": n, "kind": k})).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
