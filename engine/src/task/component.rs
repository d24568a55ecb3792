//! Static inspection of a WebAssembly component, without compiling it: its
//! kind (a task of the `engine:task@1.0.0` world or a `wasi:cli/command`),
//! its top-level imports and exports, and the embedded task metadata.
//!
//! The rules are the ones docs/abi.md states in "Components": a component may
//! import only the WASI 0.2 interfaces the engine links (`wasi:cli`,
//! `wasi:io`, `wasi:clocks`, `wasi:filesystem`, `wasi:random`, and
//! `wasi:sockets`, whose every use is denied) and
//! `engine:task/host@1.x`; a task exports `run`, a command exports
//! `wasi:cli/run@0.2.x`. Every core module inside is held to the same static
//! compilation limits as a plain module.

use wasmparser::{ComponentExternalKind, ComponentTypeRef, Parser, Payload, Validator, WasmFeatures};

use super::abi::{META_SECTION, ModuleInfo, PluginKind, check_static_limits, enabled_features, parse_meta};

/// The task world's host interface, as a component imports it (any 1.x).
pub const HOST_INTERFACE: &str = "engine:task/host@1.0.0";
/// The WASI 0.2 packages the engine links for components.
/// `wasi:sockets` is linked with every address and name lookup denied
/// (componentize-py's components import it whether or not they use it).
pub const WASI_PACKAGES: &[&str] =
    &["wasi:cli", "wasi:io", "wasi:clocks", "wasi:filesystem", "wasi:random", "wasi:sockets"];

/// Whether `bytes` is a component (not a core module).
pub fn is_component(bytes: &[u8]) -> bool {
    Parser::is_component(bytes)
}

/// Whether a component may import `name`.
fn import_allowed(name: &str) -> bool {
    if let Some(v) = name.strip_prefix("engine:task/host@") {
        return v.starts_with("1.");
    }
    let Some((path, version)) = name.split_once('@') else { return false };
    let Some((package, _)) = path.split_once('/') else { return false };
    WASI_PACKAGES.contains(&package) && version.starts_with("0.2.")
}

fn ref_kind(ty: &ComponentTypeRef) -> &'static str {
    match ty {
        ComponentTypeRef::Module(_) => "module",
        ComponentTypeRef::Func(_) => "func",
        ComponentTypeRef::Value(_) => "value",
        ComponentTypeRef::Type(_) => "type",
        ComponentTypeRef::Instance(_) => "instance",
        ComponentTypeRef::Component(_) => "component",
    }
}

fn export_kind(k: ComponentExternalKind) -> &'static str {
    match k {
        ComponentExternalKind::Module => "module",
        ComponentExternalKind::Func => "func",
        ComponentExternalKind::Value => "value",
        ComponentExternalKind::Type => "type",
        ComponentExternalKind::Instance => "instance",
        ComponentExternalKind::Component => "component",
    }
}

/// Inspect component bytes. Imports are listed as `(name, "", kind)` and
/// exports as `(name, kind)`, top level only. The error text says what is
/// wrong with the component.
pub fn inspect_component(bytes: &[u8]) -> Result<ModuleInfo, String> {
    let features = enabled_features() | WasmFeatures::COMPONENT_MODEL;
    Validator::new_with_features(features).validate_all(bytes).map_err(|e| format!("malformed component: {e}"))?;

    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut meta_text: Option<Vec<u8>> = None;
    // 1 inside the component itself, more inside nested modules/components.
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("malformed component: {e}"))?;
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ModuleSection { unchecked_range, .. } => {
                check_static_limits(&bytes[unchecked_range])?;
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for imp in reader {
                    let imp = imp.map_err(|e| format!("malformed component: {e}"))?;
                    let name = imp.name.name;
                    if !import_allowed(name) {
                        return Err(format!(
                            "imports `{name}`, which the engine does not provide (components may import \
                             {HOST_INTERFACE} and the WASI 0.2 interfaces of {})",
                            WASI_PACKAGES.join(", ")
                        ));
                    }
                    imports.push((name.to_string(), String::new(), ref_kind(&imp.ty).to_string()));
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for exp in reader {
                    let exp = exp.map_err(|e| format!("malformed component: {e}"))?;
                    exports.push((exp.name.name.to_string(), export_kind(exp.kind).to_string()));
                }
            }
            Payload::CustomSection(reader) if reader.name() == META_SECTION => {
                if meta_text.is_some() {
                    return Err(format!("custom section `{META_SECTION}` appears twice"));
                }
                meta_text = Some(reader.data().to_vec());
            }
            _ => {}
        }
    }

    let exports_run = exports.iter().any(|(n, k)| n == "run" && k == "func");
    let exports_cli_run = exports.iter().any(|(n, k)| n.starts_with("wasi:cli/run@0.2.") && k == "instance");
    let imports_host = imports.iter().any(|(n, _, _)| n.starts_with("engine:task/host@"));
    let kind = if exports_run {
        PluginKind::ComponentTask
    } else if imports_host {
        return Err(format!("component imports `{HOST_INTERFACE}` but does not export `run`"));
    } else if exports_cli_run {
        PluginKind::ComponentCommand
    } else {
        return Err("component is neither a task (exports `run` of the engine:task@1.0.0 world) nor a \
                    command (exports `wasi:cli/run@0.2.x`)"
            .into());
    };
    let meta = parse_meta(meta_text)?;
    Ok(ModuleInfo { kind, imports, exports, meta, min_memory: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<PluginKind, String> {
        let bytes = wat::parse_str(wat).map_err(|e| e.to_string())?;
        assert!(is_component(&bytes));
        inspect_component(&bytes).map(|i| i.kind)
    }

    #[test]
    fn kinds_and_rejected_imports() {
        assert_eq!(
            check(
                r#"(component
                    (core module $m (func (export "run") (result i32) i32.const 0) (memory (export "memory") 1))
                    (core instance $i (instantiate $m))
                    (type $r (result (error string)))
                    (func (export "run") (result $r) (canon lift (core func $i "run") (memory (core memory $i "memory")))))"#
            ),
            Ok(PluginKind::ComponentTask)
        );
        assert_eq!(
            check(
                r#"(component
                    (core module $m (func (export "run") (result i32) i32.const 0))
                    (core instance $i (instantiate $m))
                    (func $run (result (result)) (canon lift (core func $i "run")))
                    (instance $ri (export "run" (func $run)))
                    (export "wasi:cli/run@0.2.3" (instance $ri)))"#
            ),
            Ok(PluginKind::ComponentCommand)
        );
        assert_eq!(
            check(r#"(component (import "wasi:http/types@0.2.0" (instance)))"#),
            Err("imports `wasi:http/types@0.2.0`, which the engine does not provide (components may import \
                 engine:task/host@1.0.0 and the WASI 0.2 interfaces of wasi:cli, wasi:io, wasi:clocks, \
                 wasi:filesystem, wasi:random, wasi:sockets)"
                .into())
        );
        assert_eq!(
            check(r#"(component (import "engine:task/host@1.0.0" (instance)))"#),
            Err("component imports `engine:task/host@1.0.0` but does not export `run`".into())
        );
        assert_eq!(
            check(r#"(component)"#),
            Err("component is neither a task (exports `run` of the engine:task@1.0.0 world) nor a command \
                 (exports `wasi:cli/run@0.2.x`)"
                .into())
        );
        assert!(import_allowed("wasi:cli/environment@0.2.6"));
        assert!(!import_allowed("wasi:http/types@0.2.0"));
        assert!(import_allowed("wasi:sockets/tcp@0.2.9"));
        assert!(!import_allowed("wasi:cli/environment@0.3.0"));
        assert!(!import_allowed("engine:task/host@2.0.0"));
    }
}
