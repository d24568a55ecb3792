//! Static inspection of a module's bytes, without compiling it: kind (SDK or
//! command task), imports, exports and the embedded task metadata.
//!
//! Used by `engine inspect`, by `engine check` (which must not load wasm into
//! wasmtime) and by [`crate::runtime::Runtime::load`] before compiling, so the
//! same rules and the same error text apply everywhere. The rules are the ones
//! docs/abi.md states: imports only from `engine` (the ABI functions, with
//! their exact signatures) and `wasi_snapshot_preview1`; an SDK task exports
//! `engine_abi_v1`, `run: () -> i32` and `memory`; a command exports `_start`
//! and imports nothing from `engine`.

use serde::{Deserialize, Serialize};
use wasmparser::types::EntityType;
use wasmparser::{
    CompositeInnerType, Encoding, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Imports from module `engine` and exports the entry function.
    Sdk,
    /// A WASI preview 1 program with `_start` and no `engine` imports.
    Command,
    /// A component of the `engine:task@1.0.0` world (exports `run`).
    ComponentTask,
    /// A `wasi:cli/command` component (exports `wasi:cli/run@0.2.x`).
    ComponentCommand,
}

impl PluginKind {
    /// How `engine inspect` names the kind.
    pub fn describe(self) -> &'static str {
        match self {
            PluginKind::Sdk => "sdk task",
            PluginKind::Command => "command (WASI preview 1)",
            PluginKind::ComponentTask => "component task (engine:task@1.0.0)",
            PluginKind::ComponentCommand => "command component (wasi:cli/command)",
        }
    }

    /// A command of either form: inputs under `/in`, outputs under `/out`,
    /// an exit code, args, env, stdin and stdout.
    pub fn is_command(self) -> bool {
        matches!(self, PluginKind::Command | PluginKind::ComponentCommand)
    }
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
    /// The initial size in bytes of the linear memory the module defines
    /// (its declared minimum), if it defines one.
    #[serde(default)]
    pub min_memory: Option<u64>,
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

/// Name of the metadata custom section.
pub const META_SECTION: &str = "engine.task";
/// Import modules a plugin may use.
pub const ENGINE_MODULE: &str = "engine";
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// The output every successful command task has: its exit code as decimal
/// text and a newline (docs/pipeline.md).
pub const EXIT_CODE_OUTPUT: &str = "exit_code";
/// The export that declares ABI version 1.
pub const ABI_MARKER: &str = "engine_abi_v1";

/// Largest plugin file the engine reads (docs/security.md). Checked against
/// the file's size before anything is read, by `engine check`, `engine
/// inspect` and `engine run`.
pub const MAX_MODULE_SIZE: u64 = 256 << 20;

/// Read a plugin file, refusing one larger than [`MAX_MODULE_SIZE`] before
/// reading it (and never reading more than that, even if the file grows),
/// and anything but a regular file before opening it
/// ([`super::files::open_regular`]: a FIFO never blocks).
pub fn read_module(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let too_large = |len: u64| {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "the file is {len} bytes, more than the maximum module size of {} ({MAX_MODULE_SIZE} bytes)",
                crate::units::format_size(MAX_MODULE_SIZE)
            ),
        )
    };
    let file = super::files::open_regular(path)?;
    let len = file.metadata()?.len();
    if len > MAX_MODULE_SIZE {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_MODULE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_MODULE_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Every function of WASI preview 1 (`wasi_snapshot_preview1`), as wasmtime
/// links them; importing any other name from that module is rejected.
pub const WASI_P1_FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "random_get",
    "sched_yield",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The wasm proposals the engine accepts (docs/abi.md, "Wasm features"). The
/// runtime configures wasmtime with exactly these, so `engine check` and
/// `engine inspect` accept what `engine run` can compile.
pub fn enabled_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::GC_TYPES
        | WasmFeatures::THREADS
}

/// Proposals the engine turns off explicitly (threads, GC, exceptions,
/// memory64, multi-memory, relaxed SIMD, components, stack switching, ...).
pub fn disabled_features() -> WasmFeatures {
    WasmFeatures::SHARED_EVERYTHING_THREADS
        | WasmFeatures::GC
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::LEGACY_EXCEPTIONS
        | WasmFeatures::MEMORY64
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::RELAXED_SIMD
        | WasmFeatures::COMPONENT_MODEL
        | WasmFeatures::STACK_SWITCHING
        | WasmFeatures::CUSTOM_PAGE_SIZES
        | WasmFeatures::WIDE_ARITHMETIC
}

/// Why a module with a shared memory (defined or imported) is refused.
const SHARED_MEMORY: &str = "uses the wasm feature `shared memory` (threads), which the engine does not \
                             enable: tasks are single-threaded; atomic instructions on a non-shared memory \
                             are accepted (see docs/abi.md, \"Wasm features\")";

/// The name docs/abi.md gives a proposal the engine does not enable.
fn feature_name(f: WasmFeatures) -> String {
    let known = [
        (WasmFeatures::SHARED_EVERYTHING_THREADS, "shared-everything threads"),
        (WasmFeatures::GC, "garbage collection (gc)"),
        (WasmFeatures::FUNCTION_REFERENCES, "typed function references"),
        (WasmFeatures::LEGACY_EXCEPTIONS, "legacy exception handling (try/catch/rethrow)"),
        (WasmFeatures::MEMORY64, "memory64"),
        (WasmFeatures::MULTI_MEMORY, "multi-memory"),
        (WasmFeatures::RELAXED_SIMD, "relaxed SIMD"),
        (WasmFeatures::COMPONENT_MODEL, "component model"),
        (WasmFeatures::STACK_SWITCHING, "stack switching"),
        (WasmFeatures::CUSTOM_PAGE_SIZES, "custom page sizes"),
        (WasmFeatures::WIDE_ARITHMETIC, "wide arithmetic"),
    ];
    match known.iter().find(|(k, _)| *k == f) {
        Some((_, name)) => (*name).to_string(),
        None => f.iter_names().map(|(n, _)| n.to_lowercase().replace('_', " ")).collect::<Vec<_>>().join(", "),
    }
}

/// Turn a validation failure into the message users see: when the module is
/// valid wasm that needs a proposal the engine does not enable, name it.
fn validation_error(bytes: &[u8], e: &wasmparser::BinaryReaderError) -> String {
    let valid_with = |f: WasmFeatures| Validator::new_with_features(f).validate_all(bytes).is_ok();
    if valid_with(enabled_features() | disabled_features()) {
        for (_, f) in disabled_features().iter_names() {
            if valid_with(enabled_features() | f) {
                return format!(
                    "uses the wasm feature `{}`, which the engine does not enable \
                     (see docs/abi.md, \"Wasm features\"): {e}",
                    feature_name(f)
                );
            }
        }
        return format!("uses wasm features the engine does not enable (see docs/abi.md, \"Wasm features\"): {e}");
    }
    format!("malformed module: {e}")
}

/// The `engine` imports of ABI v1 with their signatures: (name, params, results).
pub const ABI_FUNCTIONS: &[(&str, &[ValType], &[ValType])] = {
    use ValType::{I32, I64};
    &[
        ("input_count", &[], &[I32]),
        ("input_name", &[I32, I32, I32], &[I32]),
        ("input_index", &[I32], &[I32]),
        ("input_len", &[I32], &[I64]),
        ("input_read", &[I32, I64, I32, I32], &[I32]),
        ("output_open", &[I32, I32], &[I32]),
        ("output_write", &[I32, I32, I32], &[I32]),
        ("params_len", &[], &[I32]),
        ("attempt", &[], &[I32]),
        ("params_read", &[I32, I32], &[I32]),
        ("log", &[I32, I32, I32], &[]),
        ("error", &[I32, I32], &[]),
    ]
};

fn sig(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    match results {
        [] => format!("({})", list(params)),
        [one] => format!("({}) -> {one}", list(params)),
        many => format!("({}) -> ({})", list(params), list(many)),
    }
}

fn kind_name(ty: &TypeRef) -> &'static str {
    match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
        TypeRef::Table(_) => "table",
        TypeRef::Memory(_) => "memory",
        TypeRef::Global(_) => "global",
        TypeRef::Tag(_) => "tag",
    }
}

fn export_kind_name(k: ExternalKind) -> &'static str {
    match k {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

/// Inspect module bytes. The error text says what is wrong with the module
/// (malformed, unsupported import, neither kind, ...).
/// Static limits that bound how long a module takes to compile (docs/security.md,
/// "Compilation"); `engine check` refuses a module over any of them.
pub const MAX_FUNCTIONS: u64 = 200_000;
/// Locals declared by one function (its parameters not counted).
pub const MAX_LOCALS_PER_FUNCTION: u64 = 10_000;
/// Bytes of one function body (its locals and code).
pub const MAX_FUNCTION_BODY: u64 = 1 << 20;
pub const MAX_GLOBALS: u64 = 100_000;
pub const MAX_DATA_SEGMENTS: u64 = 100_000;
/// Tables a module may define, and elements a table may hold (its minimum
/// at instantiation, and what `table.grow` may reach): the slots the
/// runtime's instance pool reserves.
pub const MAX_TABLES: u64 = 1;
pub const MAX_TABLE_ELEMENTS: u64 = 100_000;

/// Refuse a (valid) module over one of the static limits above, naming the
/// function (by its index in the function index space, imports first) and the
/// limit.
pub(crate) fn check_static_limits(bytes: &[u8]) -> Result<(), String> {
    let over = |n: u64, what: &str, max: u64| {
        Err(format!("the module has {n} {what}, more than the limit of {max} (docs/security.md, \"Compilation\")"))
    };
    let mut imported = 0u64;
    let mut index = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("malformed module: {e}"))? {
            Payload::ImportSection(reader) => {
                for imp in reader.into_imports() {
                    let imp = imp.map_err(|e| format!("malformed module: {e}"))?;
                    imported += u64::from(matches!(imp.ty, TypeRef::Func(_)));
                }
                index = imported;
            }
            Payload::FunctionSection(r) if imported + u64::from(r.count()) > MAX_FUNCTIONS => {
                return over(imported + u64::from(r.count()), "functions", MAX_FUNCTIONS);
            }
            Payload::GlobalSection(r) if u64::from(r.count()) > MAX_GLOBALS => {
                return over(u64::from(r.count()), "globals", MAX_GLOBALS);
            }
            Payload::TableSection(r) => {
                if u64::from(r.count()) > MAX_TABLES {
                    return over(u64::from(r.count()), "tables", MAX_TABLES);
                }
                for (i, t) in r.into_iter().enumerate() {
                    let min = t.map_err(|e| format!("malformed module: {e}"))?.ty.initial;
                    if min > MAX_TABLE_ELEMENTS {
                        return Err(format!(
                            "table {i} has a minimum of {min} elements, more than the limit of \
                             {MAX_TABLE_ELEMENTS} (docs/security.md, \"Compilation\")"
                        ));
                    }
                }
            }
            Payload::DataSection(r) if u64::from(r.count()) > MAX_DATA_SEGMENTS => {
                return over(u64::from(r.count()), "data segments", MAX_DATA_SEGMENTS);
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u64;
                if size > MAX_FUNCTION_BODY {
                    return Err(format!(
                        "function {index} has a body of {size} bytes, more than the limit of {MAX_FUNCTION_BODY} \
                         bytes per function (docs/security.md, \"Compilation\")"
                    ));
                }
                let mut locals = 0u64;
                for l in body.get_locals_reader().map_err(|e| format!("malformed module: {e}"))? {
                    locals += u64::from(l.map_err(|e| format!("malformed module: {e}"))?.0);
                }
                if locals > MAX_LOCALS_PER_FUNCTION {
                    return Err(format!(
                        "function {index} declares {locals} locals, more than the limit of \
                         {MAX_LOCALS_PER_FUNCTION} per function (docs/security.md, \"Compilation\")"
                    ));
                }
                index += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn inspect_bytes(bytes: &[u8]) -> Result<ModuleInfo, String> {
    // A component has a different layer number; say so rather than letting the
    // validator complain about a disabled proposal.
    if let Some(Ok(Payload::Version { encoding: Encoding::Component, .. })) = Parser::new(0).parse_all(bytes).next() {
        return super::component::inspect_component(bytes);
    }
    let mut validator = Validator::new_with_features(enabled_features());
    let types = validator.validate_all(bytes).map_err(|e| validation_error(bytes, &e))?;
    let types = types.as_ref();
    check_static_limits(bytes)?;

    let func_type = |ty: Option<EntityType>| -> Option<FuncType> {
        match ty? {
            EntityType::Func(id) => match &types[id].composite_type.inner {
                CompositeInnerType::Func(f) => Some(f.clone()),
                _ => None,
            },
            _ => None,
        }
    };

    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut meta_text: Option<Vec<u8>> = None;
    let mut export_types: Vec<(String, ExternalKind, Option<FuncType>)> = Vec::new();
    let mut imports_engine = false;
    let mut min_memory = None;

    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("malformed module: {e}"))?;
        match payload {
            Payload::MemorySection(reader) => {
                for mem in reader {
                    let mem = mem.map_err(|e| format!("malformed module: {e}"))?;
                    if mem.shared {
                        return Err(SHARED_MEMORY.into());
                    }
                    let bytes = mem.initial.saturating_mul(1u64 << mem.page_size_log2.unwrap_or(16));
                    min_memory = Some(min_memory.map_or(bytes, |m: u64| m.max(bytes)));
                }
            }
            Payload::ImportSection(reader) => {
                for imp in reader.into_imports() {
                    let imp = imp.map_err(|e| format!("malformed module: {e}"))?;
                    let kind = kind_name(&imp.ty);
                    match imp.module {
                        ENGINE_MODULE => {
                            imports_engine = true;
                            let Some(&(_, params, results)) = ABI_FUNCTIONS.iter().find(|(n, _, _)| *n == imp.name)
                            else {
                                return Err(format!(
                                    "imports `engine.{}`, which is not part of the engine ABI v1 \
                                     (see docs/abi.md)",
                                    imp.name
                                ));
                            };
                            let want = sig(params, results);
                            let Some(f) = func_type(types.entity_type_from_import(&imp)) else {
                                return Err(format!(
                                    "imports `engine.{}` as a {kind}, but it is a function {want}",
                                    imp.name
                                ));
                            };
                            let got = sig(f.params(), f.results());
                            if got != want {
                                return Err(format!(
                                    "imports `engine.{}` with type {got}, but the engine ABI v1 \
                                     defines it as {want}",
                                    imp.name
                                ));
                            }
                        }
                        WASI_MODULE => {
                            if kind != "func" {
                                return Err(format!(
                                    "imports {kind} `{}.{}`; only functions can be imported",
                                    imp.module, imp.name
                                ));
                            }
                            if !WASI_P1_FUNCTIONS.contains(&imp.name) {
                                return Err(format!(
                                    "imports `{}.{}`, which is not a WASI preview 1 function",
                                    imp.module, imp.name
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "imports `{other}.{}`, which the engine does not provide \
                                 (allowed modules: engine, wasi_snapshot_preview1)",
                                imp.name
                            ));
                        }
                    }
                    imports.push((imp.module.to_string(), imp.name.to_string(), kind.to_string()));
                }
            }
            Payload::ExportSection(reader) => {
                for exp in reader {
                    let exp = exp.map_err(|e| format!("malformed module: {e}"))?;
                    exports.push((exp.name.to_string(), export_kind_name(exp.kind).to_string()));
                    let f = func_type(types.entity_type_from_export(&exp));
                    export_types.push((exp.name.to_string(), exp.kind, f));
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

    let export = |name: &str| export_types.iter().find(|(n, _, _)| n == name);
    let kind = if imports_engine || export(ABI_MARKER).is_some() {
        if export(ABI_MARKER).is_none() {
            return Err(format!("plugin does not export `{ABI_MARKER}`: built for another ABI version?"));
        }
        match export("run") {
            Some((_, ExternalKind::Func, Some(f))) if f.params().is_empty() && f.results() == [ValType::I32] => {}
            Some((_, _, f)) => {
                let got = f.as_ref().map(|f| sig(f.params(), f.results()));
                return Err(format!(
                    "SDK plugin exports `run` with type {}, expected () -> i32",
                    got.as_deref().unwrap_or("(not a function)")
                ));
            }
            None => return Err("SDK plugin does not export `run: () -> i32`".into()),
        }
        if !matches!(export("memory"), Some((_, ExternalKind::Memory, _))) {
            return Err("SDK plugin does not export its linear memory as `memory`".into());
        }
        PluginKind::Sdk
    } else if export("_start").is_some() {
        match export("_start") {
            Some((_, ExternalKind::Func, Some(f))) if f.params().is_empty() && f.results().is_empty() => {}
            _ => return Err("command exports `_start`, but not as a function () -> ()".into()),
        }
        PluginKind::Command
    } else {
        return Err(format!(
            "plugin is neither an SDK task (exports `{ABI_MARKER}` and `run`) nor a command \
             (exports `_start`)"
        ));
    };

    let meta = parse_meta(meta_text)?;
    Ok(ModuleInfo { kind, imports, exports, meta, min_memory })
}

/// The metadata of an `engine.task` custom section, if there is one.
pub(crate) fn parse_meta(text: Option<Vec<u8>>) -> Result<Option<PluginMeta>, String> {
    let Some(text) = text else { return Ok(None) };
    let meta: PluginMeta = serde_json::from_slice(&text)
        .map_err(|e| format!("custom section `{META_SECTION}` is not valid task metadata: {e}"))?;
    if meta.abi != 0 && meta.abi != 1 {
        return Err(format!(
            "custom section `{META_SECTION}` declares abi {}, but this engine implements abi 1",
            meta.abi
        ));
    }
    Ok(Some(meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<PluginKind, String> {
        let bytes = wat::parse_str(wat).map_err(|e| e.to_string())?;
        inspect_bytes(&bytes).map(|i| i.kind)
    }

    #[test]
    fn kinds_and_errors() {
        assert_eq!(
            check(
                r#"(module (memory (export "memory") 1) (func (export "engine_abi_v1")) (func (export "run") (result i32) i32.const 0))"#
            ),
            Ok(PluginKind::Sdk)
        );
        assert_eq!(check(r#"(module (func (export "_start")))"#), Ok(PluginKind::Command));
        assert_eq!(
            check(r#"(module (import "env" "foo" (func)) (func (export "_start")))"#),
            Err("imports `env.foo`, which the engine does not provide (allowed modules: engine, wasi_snapshot_preview1)".into())
        );
        assert_eq!(
            check(
                r#"(module (import "engine" "input_count" (func (result i32))) (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))"#
            ),
            Err("plugin does not export `engine_abi_v1`: built for another ABI version?".into())
        );
        assert_eq!(
            check(
                r#"(module (import "engine" "input_len" (func (param i32) (result i32))) (func (export "engine_abi_v1")))"#
            ),
            Err("imports `engine.input_len` with type (i32) -> i32, but the engine ABI v1 defines it as (i32) -> i64"
                .into())
        );
        assert_eq!(
            check(r#"(module (func (export "main")))"#),
            Err("plugin is neither an SDK task (exports `engine_abi_v1` and `run`) nor a command (exports `_start`)"
                .into())
        );
    }
}
