//! The pipeline format: parse, validate and expand `pipeline.toml` into a [`crate::plan::Plan`].
//!
//! Parsing and validation run in passes, all before any wasm is compiled:
//! [`doc`] turns the TOML text into a compact spanned tree (syntax errors and
//! duplicate keys); [`load`] checks names, types, values, plugin files and
//! references, expands `foreach` and builds the plan; [`crate::graph`] rejects
//! cycles. Each pass reports every problem it finds as a [`Diagnostic`] with a
//! file:line:column span; [`Diagnostics`] renders them. The format is documented
//! in `docs/pipeline.md`.

pub mod call;
pub mod cgroup;
pub mod diag;
pub mod doc;
mod load;
pub mod plugins;
pub mod refs;
pub mod resources;

use std::path::Path;

pub use diag::{Code, Diagnostic, Diagnostics};

use crate::plan::{Plan, Resources};

/// Largest pipeline file accepted.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// How [`load`] validates.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Machine capacity overrides, e.g. `cpu=4,memory=8GiB,gpu=1,licence=2`;
    /// each key given wins over `[resources]` and the detected defaults.
    pub capacity_override: Option<String>,
    /// Read plugin files: existence, sha256 pins, imports and metadata.
    pub check_plugins: bool,
    /// Values for `[vars]`, applied in order (`--vars FILE`, then `--set`).
    pub vars: Vec<VarSetting>,
    /// `--confine`: every host path the pipeline names must resolve inside
    /// its directory or one of these (`--allow-path`); `None`: not confined.
    pub confine: Option<Vec<std::path::PathBuf>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { capacity_override: None, check_plugins: true, vars: Vec::new(), confine: None }
    }
}

/// A value for a var given from outside the pipeline file.
#[derive(Debug, Clone)]
pub struct VarSetting {
    pub name: String,
    pub value: SetValue,
    /// Where it was given, for messages: `` `--set n=3` `` or `` `vars.toml:2:1` ``.
    pub from: String,
}

/// A var value as given: text from `--set` (parsed as the var's type), or a
/// typed TOML value from `--vars`.
#[derive(Debug, Clone)]
pub enum SetValue {
    Text(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The JSON Schema of the pipeline file, pretty-printed with a final newline:
/// what `engine schema` prints and `docs/pipeline.schema.json` holds.
pub fn json_schema() -> String {
    let mut s = serde_json::to_string_pretty(&load::json_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Parse one `--set name=value`.
pub fn parse_set(s: &str) -> Result<VarSetting, String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!("`{s}` is not `name=value`"));
    };
    let name = name.trim();
    if !refs::valid_var(name) {
        return Err(format!("`{name}` is not a valid var name"));
    }
    Ok(VarSetting { name: name.to_string(), value: SetValue::Text(value.to_string()), from: format!("`--set {s}`") })
}

/// Read a `--vars` file: a TOML table of `name = value` (strings, integers,
/// floats, booleans). Its own syntax and type errors are reported against it.
pub fn read_vars_file(path: &Path) -> Result<Vec<VarSetting>, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::new(
            file.clone(),
            String::new(),
            vec![Diagnostic::error(Code::File, format!("cannot read `{file}`: {}", io_message(&e)))],
        )
    })?;
    let (d, syntax, mut items) = doc::Doc::parse(&text);
    for s in syntax {
        let span = s.span.start.min(text.len())..s.span.end.min(text.len());
        let label = if s.label.is_empty() { "here".to_string() } else { s.label };
        items.push(Diagnostic::error(Code::Syntax, s.message).primary(span, label));
    }
    let mut out = Vec::new();
    if items.is_empty() {
        let line_col = |at: usize| {
            let before = &text[..at.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("`{file}:{line}:{col}`")
        };
        for e in d.entries(doc::ROOT) {
            let node = d.node(e.value);
            let value = match node.val {
                doc::Val::Str(s) => SetValue::Str(d.str(s).to_string()),
                doc::Val::Int(i) => SetValue::Int(i),
                doc::Val::Float(f) if f.is_finite() => SetValue::Float(f),
                doc::Val::Bool(b) => SetValue::Bool(b),
                _ => {
                    items.push(
                        Diagnostic::error(
                            Code::Var,
                            format!("var `{}` must be a string, integer, float or boolean", d.str(e.key)),
                        )
                        .primary(node.span.range(), format!("found {}", d.type_name(e.value))),
                    );
                    continue;
                }
            };
            let from = line_col(e.key_span.start as usize);
            out.push(VarSetting { name: d.str(e.key).to_string(), value, from });
        }
    }
    if items.is_empty() { Ok(out) } else { Err(Diagnostics::new(file, text, items)) }
}

/// Whether a load may use other threads: the parser's helper thread (for
/// large files; see [`doc::Doc::parse`]) and the current rayon pool (for the
/// task pass of large pipelines, sized by `RAYON_NUM_THREADS`; see `load`).
/// The result is the same either way; tests compare one thread with pools of
/// several sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    #[cfg_attr(not(test), expect(dead_code, reason = "only tests ask for one thread"))]
    One,
    Auto,
}

/// Parse, validate and expand the pipeline at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Plan, Diagnostics> {
    let file = path.display().to_string();
    let fail = |msg: String| Diagnostics::new(file.clone(), String::new(), vec![Diagnostic::error(Code::File, msg)]);
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(fail(format!("`{file}` is a directory, not a pipeline file"))),
        Ok(m) if m.len() > MAX_FILE_SIZE => {
            return Err(fail(format!(
                "`{file}` is too large ({}; the limit is 1GiB)",
                crate::units::format_size(m.len())
            )));
        }
        _ => {}
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read `{file}`: {}", io_message(&e))))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let end = text[at..].chars().next().map(|c| at + c.len_utf8()).unwrap_or(at);
            return Err(Diagnostics::new(
                file,
                text,
                vec![
                    Diagnostic::error(Code::File, "the pipeline file is not valid UTF-8")
                        .primary(at..end, "invalid byte sequence here"),
                ],
            ));
        }
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let abs = abs.canonicalize().unwrap_or(abs);
    let base_dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    match load_str(&text, abs, base_dir, opts, Threads::Auto) {
        Ok(plan) => Ok(plan),
        Err(items) => Err(Diagnostics::new(file, text, items)),
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

fn load_str(
    text: &str,
    pipeline_file: std::path::PathBuf,
    base_dir: std::path::PathBuf,
    opts: &LoadOptions,
    threads: Threads,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut phases = Phases::new();
    let (document, syntax, structural) = doc::Doc::parse_with(text, threads);
    phases.lap("parse toml");
    if !syntax.is_empty() {
        let mut items: Vec<Diagnostic> = syntax
            .into_iter()
            .map(|s| {
                let span = s.span.start.min(text.len())..s.span.end.min(text.len());
                let label = if s.label.is_empty() { "here".to_string() } else { s.label };
                Diagnostic::error(Code::Syntax, s.message).primary(span, label)
            })
            .collect();
        items.extend(structural);
        return Err(items);
    }
    let mut document = document;
    let (vars, var_diags) = if load::wants_vars(&document, &opts.vars) {
        let mut cx = load::Loader::new(&document, opts, base_dir.clone());
        let (vars, edits) = cx.vars();
        let diags = std::mem::take(&mut cx.diags);
        load::apply_vars(&mut document, edits);
        (vars, diags)
    } else {
        (Vec::new(), Vec::new())
    };
    phases.lap("vars");
    let mut cx = load::Loader::new(&document, opts, base_dir);
    cx.vars = vars;
    cx.diags.extend(structural);
    cx.diags.extend(var_diags);
    let (name, description) = cx.top_level();
    phases.lap("top level and plugins");
    cx.assign_ids();
    phases.lap("task ids and foreach");
    let tasks = cx.build_tasks(threads);
    phases.lap("tasks and references");
    let outputs = cx.outputs();
    let mut cycles = Vec::new();
    for cycle in crate::graph::find_cycles(&tasks) {
        let names: Vec<&str> = cycle.iter().map(|&t| tasks[t as usize].id.as_str()).collect();
        let Some(first) = names.first() else { continue };
        let mut path: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        path.push(format!("`{first}`"));
        let mut d = Diagnostic::error(Code::Cycle, format!("tasks form a cycle: {}", path.join(" → ")));
        if let Some(sp) = cx.task_id_span(first) {
            d = d.primary(sp, "this task is part of the cycle");
        }
        for n in names.iter().skip(1) {
            if let Some(sp) = cx.task_id_span(n) {
                d = d.secondary(sp, "");
            }
        }
        cycles.push(d.note("an arrow points from a task to a task that takes its output"));
    }
    phases.lap("cycles");
    let (plan, mut diags) = cx.finish(name, description, pipeline_file, tasks, outputs);
    diags.extend(cycles);
    drop(document);
    phases.lap("free document");
    if diags.is_empty() { Ok(plan) } else { Err(diags) }
}

/// Phase timings on stderr when `ENGINE_PROFILE_LOAD` is set (for `bench/check`).
struct Phases(Option<std::time::Instant>);

impl Phases {
    fn new() -> Self {
        Phases(std::env::var_os("ENGINE_PROFILE_LOAD").map(|_| std::time::Instant::now()))
    }
    fn lap(&mut self, what: &str) {
        if let Some(t) = &mut self.0 {
            eprintln!("load: {what}: {:.3}s", t.elapsed().as_secs_f64());
            *t = std::time::Instant::now();
        }
    }
}

/// Parse a `--resources` list such as `cpu=4,memory=8GiB,gpu=1,licence=2` into a
/// full capacity: keys that the list does not give are the detected defaults
/// (all cores, all memory, no GPU).
pub fn parse_capacity_override(s: &str) -> Result<Resources, String> {
    let d = resources::detect_capacity();
    Ok(resources::parse_list(s)?.resolve(d.cpu_milli, d.memory, d.gpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layered pipeline of `n` tasks (after a `foreach` task of 3), where
    /// task `t{i}` for `i` in `bad` gets the given lines instead of its inputs.
    fn layered(n: usize, bad: &[(usize, &str)]) -> String {
        let mut s = String::from("[pipeline]\nname = \"big\"\n[plugins]\np = \"p.wasm\"\n");
        s.push_str("[tasks.fan]\nplugin = \"p\"\nforeach = { i = [1, 2, 3] }\nparams = { n = \"{i}\" }\n");
        for i in 0..n {
            s.push_str(&format!("[tasks.t{i}]\nplugin = \"p\"\n"));
            if let Some((_, lines)) = bad.iter().find(|(at, _)| *at == i) {
                s.push_str(lines);
                s.push('\n');
            } else if i >= 100 {
                s.push_str(&format!("inputs = {{ a = \"t{}\", b = [\"t{}.x\", \"fan[*]\"] }}\n", i - 100, i - 99));
            }
        }
        s
    }

    /// Load `text` on one thread, then with rayon pools of 2, 3 and 4 threads.
    fn load_all(text: &str) -> Vec<Result<Plan, Vec<Diagnostic>>> {
        let opts = LoadOptions { capacity_override: None, check_plugins: false, vars: Vec::new(), confine: None };
        let run = |threads| load_str(text, "/p/big.toml".into(), "/p".into(), &opts, threads);
        let mut all = vec![run(Threads::One)];
        for n in [2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("a thread pool");
            all.push(pool.install(|| run(Threads::Auto)));
        }
        all
    }

    #[test]
    fn a_large_pipeline_loads_the_same_on_any_number_of_threads() {
        let text = layered(30_000, &[]);
        let all = load_all(&text);
        let Ok(one) = &all[0] else { panic!("the pipeline is valid") };
        assert_eq!(one.tasks.len(), 30_003);
        let last = &one.tasks[3 + 29_999];
        assert_eq!((last.id.as_str(), &last.deps[..]), ("t29999", &[0, 1, 2, 3 + 29_899, 3 + 29_900][..]));
        for other in &all[1..] {
            let Ok(other) = other else { panic!("the pipeline is valid") };
            assert_eq!(crate::graph::to_json(one), crate::graph::to_json(other));
            assert_eq!(serde_json::to_string(one).ok(), serde_json::to_string(other).ok());
        }
    }

    #[test]
    fn a_large_invalid_pipeline_reports_the_same_on_any_number_of_threads() {
        // Errors in several chunks of the task pass, including a cycle.
        let text = layered(
            30_000,
            &[
                (5, "retries = -1"),
                (9_000, "colour = 1"),
                (17_000, "inputs = { z = \"nope\" }"),
                (17_001, "inputs = { z = \"t17001\" }"),
                (25_000, "inputs = { z = \"t25100\" }"),
                (25_100, "inputs = { z = [\"fan[9]\", \"t25000\"] }"),
            ],
        );
        let all = load_all(&text);
        let Err(one) = &all[0] else { panic!("the pipeline is invalid") };
        let messages: Vec<&str> = one.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`tasks.t5.retries` must be between 0 and 100 (got -1)",
                "unknown key `colour` in task `t9000`",
                "task `t17000` refers to unknown task `nope`",
                "task `t17001` depends on itself",
                "task `t25100` refers to `fan[9]`, which `foreach` does not produce",
                "tasks form a cycle: `t25000` → `t25100` → `t25000`",
            ]
        );
        for other in &all[1..] {
            assert_eq!(other.as_ref().err(), Some(one));
        }
    }

    #[test]
    fn plugin_files_are_checked_in_parallel_and_reported_in_file_order() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("text.wasm"), "not wasm").expect("a plugin file");
        let text = "[pipeline]\nname = \"p\"\n[plugins]\na = \"missing-a.wasm\"\n\
                    b = { path = \"text.wasm\", colour = 1 }\nc = 3\nd = \"missing-d.wasm\"\n\
                    [tasks.t]\nplugin = \"a\"\n";
        let opts = LoadOptions { capacity_override: None, check_plugins: true, vars: Vec::new(), confine: None };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().expect("a thread pool");
        let run = || load_str(text, dir.path().join("p.toml"), dir.path().to_path_buf(), &opts, Threads::Auto);
        let Err(diags) = pool.install(run) else { panic!("the pipeline is invalid") };
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "plugin `a`: file `missing-a.wasm` does not exist",
                "unknown key `colour` in `plugins.b`",
                "plugin `b`: `text.wasm` is not a WebAssembly module",
                "`plugins.c` must be a path string or a table, found an integer",
                "plugin `d`: file `missing-d.wasm` does not exist",
            ]
        );
    }
}
