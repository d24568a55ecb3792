//! Generate WebAssembly modules with wasm-smith, write a pipeline around each
//! and run it through the engine library as `engine run` does: the check
//! (`pipeline::load` with plugin checks), compilation and the run
//! (`Session::run`), under small limits (memory, fuel, timeout, output bytes,
//! open files). Most modules are shaped as task plugins, so that they pass the
//! check and run: SDK tasks that may import the `engine` ABI and WASI and
//! export `engine_abi_v1`, `run` and `memory`, and WASI commands that may
//! import WASI and export `_start` (docs/abi.md); the rest are unshaped.
//!
//! What must hold for every input (a failed assertion is a crash):
//! * nothing panics, in the engine or in wasmtime (libfuzzer-sys aborts on any
//!   panic, even one the engine would catch and report as a `host_panic`);
//! * a module the check accepts can be prepared: `Session::run` returns an
//!   outcome, never an error, and it is not interrupted;
//! * every task ends in success or a typed failure other than a host panic,
//!   and no attempt outlives its timeout by more than [`SLACK`], uses more
//!   memory or fuel than its limits, or stores more output bytes than
//!   `max_output_bytes`;
//! * the whole run, compilation included, ends within [`WALL_BOUND`].
//!
//! Compilation is in this process by default (so a compiler panic is a crash
//! here); with `ENGINE_FUZZ_COMPILER=/path/to/engine` it is in an `engine
//! compile-plugin` child held to the plugin's `max_compile_time`, as `engine
//! run` does. Run with `bash xtask/fuzz.sh run_module SECONDS`
//! (docs/security.md, "Fuzzing").
#![no_main]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use engine::pipeline::{self, LoadOptions};
use engine::session::{ExecutorKind, RunStatus, Session};
use engine::task::message::{InfraKind, TaskFailure};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection, Instruction,
    MemorySection, MemoryType, Module, TypeSection, ValType,
};

/// How long a whole run may take, compilation included.
const WALL_BOUND: Duration = Duration::from_secs(60);
/// How far past its timeout an attempt may end (the epoch ticks every 10 ms;
/// the machine may be loaded).
const SLACK: Duration = Duration::from_secs(5);

/// The signatures of the 46 functions of WASI preview 1 (`wasi_snapshot_preview1`):
/// `I` = i32, `L` = i64; every function but `proc_exit` returns an i32 errno.
const WASI: &[(&str, &str)] = &[
    ("args_get", "II"),
    ("args_sizes_get", "II"),
    ("clock_res_get", "II"),
    ("clock_time_get", "ILI"),
    ("environ_get", "II"),
    ("environ_sizes_get", "II"),
    ("fd_advise", "ILLI"),
    ("fd_allocate", "ILL"),
    ("fd_close", "I"),
    ("fd_datasync", "I"),
    ("fd_fdstat_get", "II"),
    ("fd_fdstat_set_flags", "II"),
    ("fd_fdstat_set_rights", "ILL"),
    ("fd_filestat_get", "II"),
    ("fd_filestat_set_size", "IL"),
    ("fd_filestat_set_times", "ILLI"),
    ("fd_pread", "IIILI"),
    ("fd_prestat_dir_name", "III"),
    ("fd_prestat_get", "II"),
    ("fd_pwrite", "IIILI"),
    ("fd_read", "IIII"),
    ("fd_readdir", "IIILI"),
    ("fd_renumber", "II"),
    ("fd_seek", "ILII"),
    ("fd_sync", "I"),
    ("fd_tell", "II"),
    ("fd_write", "IIII"),
    ("path_create_directory", "III"),
    ("path_filestat_get", "IIIII"),
    ("path_filestat_set_times", "IIIILLI"),
    ("path_link", "IIIIIII"),
    ("path_open", "IIIIILLII"),
    ("path_readlink", "IIIIII"),
    ("path_remove_directory", "III"),
    ("path_rename", "IIIIII"),
    ("path_symlink", "IIIII"),
    ("path_unlink_file", "III"),
    ("poll_oneoff", "IIII"),
    ("proc_exit", "I"),
    ("proc_raise", "I"),
    ("random_get", "II"),
    ("sched_yield", ""),
    ("sock_accept", "III"),
    ("sock_recv", "IIIIII"),
    ("sock_send", "IIIII"),
    ("sock_shutdown", "II"),
];

/// What the generated module is meant to be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Exports `engine_abi_v1`, `run` and `memory`; may import `engine` and WASI.
    Sdk,
    /// Exports `_start` (and usually `memory`); may import WASI.
    Command,
    /// No required exports; may import `engine` and WASI (mostly refused by the check).
    Free,
}

/// The limits of a generated pipeline's tasks.
#[derive(Debug)]
struct Limits {
    memory: u64,
    timeout: Duration,
    fuel: Option<u64>,
    max_output_bytes: u64,
    max_open_files: u32,
}

fn val_types(sig: &str) -> Vec<ValType> {
    sig.chars().map(|c| if c == 'L' { ValType::I64 } else { ValType::I32 }).collect()
}

fn engine_type(t: &wasmparser::ValType) -> ValType {
    match t {
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        _ => ValType::I32,
    }
}

/// A module that only imports what a plugin may import: the `engine` ABI
/// (when `engine`) and WASI preview 1, with their exact signatures; given to
/// wasm-smith as `available_imports`.
fn available_imports(engine: bool) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut n = 0;
    if engine {
        for (name, params, results) in engine::task::abi::ABI_FUNCTIONS {
            let params: Vec<ValType> = params.iter().map(engine_type).collect();
            let results: Vec<ValType> = results.iter().map(engine_type).collect();
            types.ty().function(params, results);
            imports.import("engine", name, EntityType::Function(n));
            n += 1;
        }
    }
    for (name, sig) in WASI {
        let results = if *name == "proc_exit" { vec![] } else { vec![ValType::I32] };
        types.ty().function(val_types(sig), results);
        imports.import("wasi_snapshot_preview1", name, EntityType::Function(n));
        n += 1;
    }
    let mut m = Module::new();
    m.section(&types).section(&imports);
    m.finish()
}

/// A module whose exports the generated one must have (wasm-smith `exports`).
fn required_exports(shape: Shape, memory_pages: Option<u64>, initialize: bool) -> Option<Vec<u8>> {
    let funcs: &[(&str, &[ValType])] = match shape {
        Shape::Sdk if initialize => &[("engine_abi_v1", &[]), ("run", &[ValType::I32]), ("_initialize", &[])],
        Shape::Sdk => &[("engine_abi_v1", &[]), ("run", &[ValType::I32])],
        Shape::Command => &[("_start", &[])],
        Shape::Free => return None,
    };
    let mut types = TypeSection::new();
    let mut functions = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    for (i, (name, results)) in funcs.iter().enumerate() {
        types.ty().function([], results.iter().copied());
        functions.function(i as u32);
        exports.export(name, ExportKind::Func, i as u32);
        let mut f = Function::new([]);
        f.instruction(&Instruction::Unreachable).instruction(&Instruction::End);
        code.function(&f);
    }
    let mut memories = MemorySection::new();
    if let Some(pages) = memory_pages {
        memories.memory(MemoryType {
            minimum: pages,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        exports.export("memory", ExportKind::Memory, 0);
    }
    let mut m = Module::new();
    m.section(&types).section(&functions);
    if memory_pages.is_some() {
        m.section(&memories);
    }
    m.section(&exports).section(&code);
    Some(m.finish())
}

/// The wasm-smith configuration for `shape`: the wasm features the engine
/// enables (docs/abi.md, "Wasm features"), except that a few inputs may use
/// one it refuses; small modules, so that compiling one takes milliseconds.
fn smith_config(u: &mut Unstructured<'_>, shape: Shape) -> Result<wasm_smith::Config> {
    let mut c: wasm_smith::Config = u.arbitrary()?;
    let engine_imports = shape != Shape::Command || u.ratio(1, 10)?;
    c.available_imports =
        if shape == Shape::Free && u.ratio(1, 3)? { None } else { Some(available_imports(engine_imports)) };
    let memory_pages = match shape {
        Shape::Sdk => Some(u.int_in_range(0..=4)?),
        Shape::Command if u.ratio(9, 10)? => Some(u.int_in_range(0..=4)?),
        _ => None,
    };
    c.exports = required_exports(shape, memory_pages, u.ratio(1, 4)?);
    if memory_pages.is_some() {
        // The required exports add the one memory, beyond these limits.
        c.max_memories = 0;
        c.min_memories = 0;
    } else {
        c.max_memories = c.max_memories.min(1);
    }
    c.max_tables = c.max_tables.min(1);
    c.max_types = c.max_types.min(40);
    c.max_imports = c.max_imports.min(30);
    c.max_funcs = c.max_funcs.min(40);
    c.max_globals = c.max_globals.min(20);
    c.max_exports = c.max_exports.min(10);
    c.max_tags = c.max_tags.min(5);
    c.max_element_segments = c.max_element_segments.min(8);
    c.max_elements = c.max_elements.min(64);
    c.max_data_segments = c.max_data_segments.min(8);
    c.max_instructions = c.max_instructions.min(300);
    c.max_memory32_bytes = c.max_memory32_bytes.min(64 << 20);
    c.max_table_elements = c.max_table_elements.min(100_000);
    c.max_type_size = c.max_type_size.min(200);
    c.max_nesting_depth = c.max_nesting_depth.min(10);
    c.min_uleb_size = c.min_uleb_size.min(2);
    // What no engine accepts; one input in ten keeps what wasm-smith chose
    // of the rest, so that the check's refusals are exercised too.
    c.memory64_enabled = false;
    c.gc_enabled = false;
    c.custom_page_sizes_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.wide_arithmetic_enabled = false;
    if !u.ratio(1, 10)? {
        c.relaxed_simd_enabled = false;
        c.threads_enabled = false;
        c.multi_value_enabled = true;
        c.saturating_float_to_int_enabled = true;
        c.sign_extension_ops_enabled = true;
        c.bulk_memory_enabled = true;
        c.reference_types_enabled = true;
        c.simd_enabled = u.arbitrary()?;
        c.exceptions_enabled = u.arbitrary()?;
        c.tail_call_enabled = u.arbitrary()?;
        c.extended_const_enabled = u.arbitrary()?;
    }
    c.allow_invalid_funcs = false;
    c.generate_custom_sections = u.ratio(1, 10)?;
    Ok(c)
}

/// One generated case: the module, the pipeline text and what its tasks are held to.
struct Case {
    shape: Shape,
    module: Vec<u8>,
    input: Vec<u8>,
    pipeline: String,
    limits: Limits,
    executor: ExecutorKind,
}

fn generate(u: &mut Unstructured<'_>) -> Result<Case> {
    let shape = match u.int_in_range(0..=19)? {
        0..=8 => Shape::Sdk,
        9..=17 => Shape::Command,
        _ => Shape::Free,
    };
    let limits = Limits {
        memory: *u.choose(&[1u64 << 20, 4 << 20, 16 << 20])?,
        timeout: *u.choose(&[Duration::from_millis(100), Duration::from_millis(500)])?,
        fuel: *u.choose(&[Some(10_000), Some(200_000), Some(5_000_000), None])?,
        max_output_bytes: *u.choose(&[16u64, 4096, 1 << 20])?,
        max_open_files: *u.choose(&[4u32, 8, 64])?,
    };
    let deterministic: bool = u.arbitrary()?;
    let executor = if u.ratio(1, 4)? { ExecutorKind::Sync } else { ExecutorKind::Threads };
    let input_len = u.int_in_range(0..=64)?;
    let input = u.bytes(input_len)?.to_vec();
    let mut command_keys = String::new();
    if shape == Shape::Command {
        if u.ratio(1, 4)? {
            command_keys.push_str("stdout = \"stdout\"\n");
        }
        if u.ratio(1, 4)? {
            command_keys.push_str("stdin = \"data\"\n");
        }
        if u.ratio(1, 3)? {
            command_keys.push_str("scratch = \"64KiB\"\n");
        }
        if u.ratio(1, 3)? {
            command_keys.push_str("args = [\"-x\", \"y\"]\nenv = { K = \"v\" }\n");
        }
    }
    let second = u.ratio(1, 3)?;
    let config = smith_config(u, shape)?;
    let module = wasm_smith::Module::new(config, u)?.to_bytes();

    let mut p = String::new();
    let _ = write!(
        p,
        "[pipeline]\nname = \"fuzz\"\n\
         [plugins]\np = {{ path = \"p.wasm\", max_compile_time = \"20s\" }}\n\
         [resources]\ncpu = 2\nmemory = \"64MiB\"\n\
         [defaults]\nresources = {{ cpu = 1, memory = \"{}\" }}\ntimeout = \"{}ms\"\n\
         max_output_bytes = {}\nmax_open_files = {}\ndeterministic = {deterministic}\n",
        limits.memory,
        limits.timeout.as_millis(),
        limits.max_output_bytes,
        limits.max_open_files,
    );
    if let Some(fuel) = limits.fuel {
        let _ = writeln!(p, "fuel = {fuel}");
    }
    let _ = write!(
        p,
        "[tasks.a]\nplugin = \"p\"\ninputs = {{ data = \"file:input.bin\" }}\nparams = {{ n = 3 }}\n{command_keys}"
    );
    if second {
        let _ = write!(p, "[tasks.b]\nplugin = \"p\"\ninputs = {{ data = \"a\" }}\n");
    }
    Ok(Case { shape, module, input, pipeline: p, limits, executor })
}

/// Check, compile and run `case` in a fresh directory; assert what the module
/// comment lists.
fn run(case: &Case, dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("cannot write to the temp dir");
    write("p.wasm", &case.module);
    write("input.bin", &case.input);
    write("pipeline.toml", case.pipeline.as_bytes());
    let started = Instant::now();
    let plan = match pipeline::load(&dir.join("pipeline.toml"), &LoadOptions::default()) {
        Ok(plan) => plan,
        Err(diagnostics) => {
            // Refused by the check: fine, if it renders.
            let text = diagnostics.to_string();
            say(case, || format!("refused by the check: {}", text.lines().find(|l| l.contains("error")).unwrap_or("")));
            return;
        }
    };
    let mut session = Session::new(plan).executor(case.executor.clone()).workers(1).cache_dir(dir.join("cache"));
    if let Some(exe) = std::env::var_os("ENGINE_FUZZ_COMPILER") {
        session = session.compile_in_child(exe.into());
    }
    let outcome = match session.run() {
        Ok(o) => o,
        Err(e) => panic!("a {:?} module that passed the check could not be run: {e}", case.shape),
    };
    assert_ne!(outcome.status, RunStatus::Interrupted);
    assert!(outcome.aborted.is_none(), "run aborted: {:?}", outcome.aborted);
    let limits = &case.limits;
    for (task, rec) in outcome.plan.tasks.iter().zip(&outcome.records.records) {
        let id = &task.id;
        if let Some(TaskFailure::Infra { kind: InfraKind::HostPanic | InfraKind::Storage, message }) = &rec.failure {
            panic!("task `{id}`: the engine failed: {message}");
        }
        let took = Duration::from_micros(rec.end_us.saturating_sub(rec.start_us));
        assert!(
            took <= limits.timeout + SLACK,
            "task `{id}` ran for {took:?}, past its timeout of {:?}",
            limits.timeout
        );
        if let Some(peak) = rec.peak_memory {
            assert!(peak <= limits.memory, "task `{id}`: peak memory {peak} over the limit {}", limits.memory);
        }
        if let (Some(used), Some(fuel)) = (rec.fuel_consumed, limits.fuel) {
            assert!(used <= fuel, "task `{id}`: used {used} fuel, over the limit {fuel}");
        }
        // A command's `exit_code` is an output the engine adds.
        let stored: u64 = rec.outputs.iter().filter(|o| o.name != "exit_code").map(|o| o.blob.len).sum();
        assert!(
            stored <= limits.max_output_bytes,
            "task `{id}`: {stored} output bytes stored, over max_output_bytes {}",
            limits.max_output_bytes
        );
    }
    let wall = started.elapsed();
    assert!(wall <= WALL_BOUND, "the run took {wall:?}");
    say(case, || {
        let ends: Vec<String> = (outcome.records.records.iter().zip(&outcome.records.states))
            .map(|(r, state)| r.failure.as_ref().map_or(format!("{state:?}"), |f| format!("{}: {f}", f.kind())))
            .collect();
        format!("ran in {wall:?}: {}", ends.join(" | "))
    });
}

/// With `ENGINE_FUZZ_VERBOSE` set, one line per input on stderr: its shape
/// and how it ended (to see what share of inputs pass the check and run).
fn say(case: &Case, line: impl FnOnce() -> String) {
    if std::env::var_os("ENGINE_FUZZ_VERBOSE").is_some() {
        let mut text = line();
        text.truncate(text.floor_char_boundary(300));
        eprintln!("run_module: {:?}: {}", case.shape, text.replace('\n', " "));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = generate(&mut u) else { return };
    let dir = tempfile::tempdir().expect("cannot make a temp dir");
    run(&case, dir.path());
});
