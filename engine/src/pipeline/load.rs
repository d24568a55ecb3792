//! The validation passes that turn a parsed document into a [`Plan`].
//!
//! 1. top level: `[pipeline]`, `[plugins]` (and, when asked, the plugin files:
//!    existence, sha256 pins, imports, metadata), `[defaults]`, `[resources]`;
//! 2. ids: every `[tasks.<id>]` gets its dense [`TaskId`]s, `foreach` tasks one
//!    per expansion, so references can be resolved in any order;
//! 3. tasks: each task table is read once, then instantiated per expansion with
//!    its references resolved (large pipelines on two threads, same result);
//! 4. `[outputs]`, then the graph (self-dependencies are caught in 3, cycles here).
//!
//! Every pass reports into one list of diagnostics and keeps going.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::diag::Diagnostic;
use super::doc::{Doc, Entry, NodeId, ROOT, Sp, Val};
use super::plugins::{self, PluginCheck};
use super::refs::{self, Ref};
use super::resources::{self, Partial};
use super::{LoadOptions, Threads};
use crate::plan::{DEFAULT_OUTPUT, InputSpec, OutputSpec, Plan, PluginSpec, Resources, Source, TaskId, TaskSpec};

const TOP_KEYS: &[&str] = &["pipeline", "plugins", "defaults", "resources", "tasks", "outputs"];
const PIPELINE_KEYS: &[&str] = &["name", "description"];
const PLUGIN_KEYS: &[&str] = &["path", "sha256"];
const DEFAULTS_KEYS: &[&str] =
    &["resources", "retries", "timeout", "priority", "deterministic", "fuel", "max_output_bytes"];
const TASK_KEYS: &[&str] = &[
    "plugin",
    "inputs",
    "params",
    "resources",
    "retries",
    "timeout",
    "priority",
    "args",
    "env",
    "stdin",
    "stdout",
    "deterministic",
    "fuel",
    "max_output_bytes",
    "foreach",
    "mounts",
    "scratch",
    "success_exit_codes",
];
/// Guest paths a mount may not use (or be under).
const RESERVED_GUEST_PATHS: &[&str] = &["/in", "/out", "/tmp"];
/// Scratch space of `scratch = true`.
pub const DEFAULT_SCRATCH: u64 = 1 << 30;
const BUILTIN_RESOURCES: &[&str] = &["cpu", "memory", "gpu"];
/// Most retries a task may ask for.
pub const MAX_RETRIES: i64 = 100;
/// Most tasks a pipeline may expand to.
pub const MAX_TASKS: usize = 10_000_000;
/// Most tasks one `foreach` may expand to.
pub const MAX_FOREACH: usize = 1_000_000;
/// Entries of `[tasks]` per chunk when tasks are built on two threads.
const BUILD_CHUNK: usize = 8192;

/// Per-task settings that `[defaults]` can also give.
#[derive(Debug, Clone, Default)]
struct Settings {
    resources: Partial,
    retries: Option<u32>,
    timeout: Option<Duration>,
    priority: Option<i32>,
    deterministic: Option<bool>,
    fuel: Option<u64>,
    max_output_bytes: Option<u64>,
}

/// The known keys of a table, read in one pass.
struct Fields {
    keys: &'static [&'static str],
    vals: [Option<Entry>; 24],
}

impl Fields {
    fn get(&self, key: &str) -> Option<Entry> {
        self.keys.iter().position(|k| *k == key).and_then(|i| self.vals.get(i).copied().flatten())
    }
}

/// What ids map to.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Single(TaskId),
    /// A foreach task: index into `Cx::foreach`.
    Foreach(u32),
}

struct Foreach {
    first: TaskId,
    vars: Vec<String>,
    /// Per expansion: the variable values, in `vars` order.
    values: Vec<Vec<String>>,
    /// Expansion key (`3`, `eu,1`) -> offset from `first`.
    keys: HashMap<String, u32>,
}

/// A task table read once, before instantiation.
struct RawTask<'d> {
    plugin: Option<u32>,
    inputs: SmallVec<[RawInput<'d>; 2]>,
    params: Option<NodeId>,
    settings: Settings,
    args: Vec<(&'d str, Sp)>,
    env: Vec<(&'d str, &'d str, Sp)>,
    stdin: Option<(&'d str, Sp)>,
    stdout: Option<&'d str>,
    fs: Option<Box<crate::plan::CommandFs>>,
}

struct RawInput<'d> {
    name: &'d str,
    list: bool,
    refs: SmallVec<[(&'d str, Sp); 2]>,
}

/// Cloned (cheaply: the per-task tables are shared) to resolve tasks on a
/// second thread; see [`Cx::build_tasks`].
#[derive(Clone)]
pub(super) struct Cx<'d, 's> {
    doc: &'d Doc<'s>,
    opts: &'d LoadOptions,
    base_dir: PathBuf,
    pub diags: Vec<Diagnostic>,
    plugins: Vec<PluginSpec>,
    plugin_ids: rustc_hash::FxHashMap<&'d str, u32>,
    /// Plugins declared but invalid: tasks using them get no second error.
    broken_plugins: Vec<&'d str>,
    checks: Vec<Option<PluginCheck>>,
    defaults: Settings,
    capacity: Resources,
    /// The `[tasks]` table, whose index maps ids to entries (set in pass 2).
    tasks: Option<NodeId>,
    /// Per entry of `[tasks]`, in file order: its slot (`None` for an invalid entry).
    entry_slots: Arc<Vec<Option<Slot>>>,
    /// How many entries have a slot.
    id_count: usize,
    foreach: Arc<Vec<Foreach>>,
    /// Per task: its plugin (for metadata checks on references), set in pass 2.
    task_plugin: Arc<Vec<u32>>,
    /// Tasks that capture stdout, and the output name.
    task_stdout: Arc<HashMap<TaskId, &'d str>>,
    task_count: usize,
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Optimal string alignment distance (a transposition counts as one edit);
    // ties go to the alphabetically first candidate, so the choice never
    // depends on hash-map order.
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(word, c);
        if d <= 2 && d < c.len().max(2) && best.is_none_or(|b| (d, c) < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

impl<'d, 's> Cx<'d, 's> {
    pub(super) fn new(doc: &'d Doc<'s>, opts: &'d LoadOptions, base_dir: PathBuf) -> Self {
        Cx {
            doc,
            opts,
            base_dir,
            diags: Vec::new(),
            plugins: Vec::new(),
            plugin_ids: Default::default(),
            broken_plugins: Vec::new(),
            checks: Vec::new(),
            defaults: Settings::default(),
            capacity: Resources::default(),
            tasks: None,
            entry_slots: Default::default(),
            id_count: 0,
            foreach: Default::default(),
            task_plugin: Default::default(),
            task_stdout: Default::default(),
            task_count: 0,
        }
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn key(&self, e: &Entry) -> &'d str {
        self.doc.str(e.key)
    }

    fn span(&self, id: NodeId) -> std::ops::Range<usize> {
        self.doc.node(id).span.range()
    }

    /// Report keys of `table` that are not in `allowed`.
    fn check_keys(&mut self, table: NodeId, allowed: &'static [&'static str], what: &dyn Display) {
        self.fields(table, allowed, what);
    }

    /// Read the known keys of `table` in one pass, reporting unknown ones.
    fn fields(&mut self, table: NodeId, allowed: &'static [&'static str], what: &dyn Display) -> Fields {
        let mut f = Fields { keys: allowed, vals: [None; 24] };
        for e in self.doc.entries(table) {
            let k = self.key(e);
            if let Some(i) = allowed.iter().position(|a| *a == k) {
                if let Some(v) = f.vals.get_mut(i) {
                    *v = Some(*e);
                }
                continue;
            }
            let d = Diagnostic::error(format!("unknown key `{k}` in {what}"));
            let d = match suggest(k, allowed.iter().copied()) {
                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                None => d
                    .primary(e.key_span.range(), "unknown key")
                    .note(format!("expected one of: {}", allowed.join(", "))),
            };
            self.err(d);
        }
        f
    }

    fn type_error(&mut self, what: &dyn Display, node: NodeId, expected: &str) {
        let found = self.doc.type_name(node);
        self.err(
            Diagnostic::error(format!("{what} must be {expected}, found {found}"))
                .primary(self.span(node), format!("expected {expected}")),
        );
    }

    fn as_table(&mut self, what: &dyn Display, node: NodeId) -> Option<NodeId> {
        match self.doc.node(node).val {
            Val::Table(_) => Some(node),
            _ => {
                self.type_error(what, node, "a table");
                None
            }
        }
    }

    fn as_str(&mut self, what: &dyn Display, node: NodeId) -> Option<&'d str> {
        match self.doc.node(node).val {
            Val::Str(s) => Some(self.doc.str(s)),
            _ => {
                self.type_error(what, node, "a string");
                None
            }
        }
    }

    fn as_int(&mut self, what: &dyn Display, node: NodeId) -> Option<i64> {
        match self.doc.node(node).val {
            Val::Int(i) => Some(i),
            _ => {
                self.type_error(what, node, "an integer");
                None
            }
        }
    }

    fn as_number(&mut self, what: &dyn Display, node: NodeId) -> Option<f64> {
        match self.doc.node(node).val {
            Val::Int(i) => Some(i as f64),
            Val::Float(f) => Some(f),
            _ => {
                self.type_error(what, node, "a number");
                None
            }
        }
    }

    fn as_bool(&mut self, what: &dyn Display, node: NodeId) -> Option<bool> {
        match self.doc.node(node).val {
            Val::Bool(b) => Some(b),
            _ => {
                self.type_error(what, node, "a boolean");
                None
            }
        }
    }

    fn value_error(&mut self, what: &dyn Display, node: NodeId, problem: &str) {
        self.err(Diagnostic::error(format!("{what} {problem}")).primary(self.span(node), "invalid value"));
    }

    // ---- pass 1: top level ------------------------------------------------

    pub(super) fn top_level(&mut self) -> (String, String) {
        self.check_keys(ROOT, TOP_KEYS, &"the pipeline file");
        let (mut name, mut description) = (String::new(), String::new());
        match self.doc.get(ROOT, "pipeline") {
            None => self.err(
                Diagnostic::error("missing `[pipeline]` table")
                    .note("every pipeline starts with `[pipeline]` and `name = \"...\"`"),
            ),
            Some(e) => {
                if let Some(t) = self.as_table(&"`pipeline`", e.value) {
                    self.check_keys(t, PIPELINE_KEYS, &"`[pipeline]`");
                    match self.doc.get(t, "name") {
                        None => self.err(
                            Diagnostic::error("`[pipeline]` has no `name`")
                                .primary(self.span(t), "add `name = \"...\"` to this table"),
                        ),
                        Some(n) => {
                            if let Some(s) = self.as_str(&"`pipeline.name`", n.value) {
                                if s.trim().is_empty() {
                                    self.value_error(&"`pipeline.name`", n.value, "must not be empty");
                                }
                                name = s.to_string();
                            }
                        }
                    }
                    if let Some(d) = self.doc.get(t, "description")
                        && let Some(s) = self.as_str(&"`pipeline.description`", d.value)
                    {
                        description = s.to_string();
                    }
                }
            }
        }
        self.plugins_table();
        self.std_task_plugins();
        if let Some(e) = self.doc.get(ROOT, "defaults")
            && let Some(t) = self.as_table(&"`defaults`", e.value)
        {
            let f = self.fields(t, DEFAULTS_KEYS, &"`[defaults]`");
            self.defaults = self.settings(&f, Field::new(&["defaults"]));
        }
        self.capacity_table();
        (name, description)
    }

    fn plugins_table(&mut self) {
        let Some(e) = self.doc.get(ROOT, "plugins") else { return };
        let Some(t) = self.as_table(&"`plugins`", e.value) else { return };
        for e in self.doc.entries(t) {
            let name = self.key(e);
            let what = format!("plugin `{name}`");
            if !refs::valid_id(name) {
                self.err(
                    Diagnostic::error(format!("`{name}` is not a valid plugin name"))
                        .primary(e.key_span.range(), "allowed: letters, digits, `_` and `-`"),
                );
                self.broken_plugins.push(name);
                continue;
            }
            let (path_node, sha) = match self.doc.node(e.value).val {
                Val::Str(_) => (Some(e.value), None),
                Val::Table(_) => {
                    self.check_keys(e.value, PLUGIN_KEYS, &format_args!("`plugins.{name}`"));
                    let path = self.doc.get(e.value, "path").map(|p| p.value);
                    if path.is_none() {
                        self.err(
                            Diagnostic::error(format!("{what} has no `path`"))
                                .primary(self.span(e.value), "add `path = \"plugins/x.wasm\"`"),
                        );
                    }
                    let sha = self.doc.get(e.value, "sha256").and_then(|s| {
                        let v = self.as_str(&format_args!("`plugins.{name}.sha256`"), s.value)?;
                        if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                            self.value_error(
                                &format_args!("`plugins.{name}.sha256`"),
                                s.value,
                                "must be 64 hexadecimal digits",
                            );
                            return None;
                        }
                        Some((v.to_ascii_lowercase(), s.value))
                    });
                    (path, sha)
                }
                _ => {
                    self.type_error(&format_args!("`plugins.{name}`"), e.value, "a path string or a table");
                    (None, None)
                }
            };
            let Some(path_node) = path_node else {
                self.broken_plugins.push(name);
                continue;
            };
            let Some(rel) = self.as_str(&format_args!("`plugins.{name}.path`"), path_node) else {
                self.broken_plugins.push(name);
                continue;
            };
            if rel.is_empty() {
                self.value_error(&format_args!("`plugins.{name}` path"), path_node, "must not be empty");
                self.broken_plugins.push(name);
                continue;
            }
            let path = if rel.starts_with(plugins::STD_PREFIX) {
                match plugins::resolve_stock(rel) {
                    Ok(path) => path,
                    Err(problem) => {
                        self.plugin_problems(&[problem], path_node, None);
                        self.broken_plugins.push(name);
                        continue;
                    }
                }
            } else {
                self.base_dir.join(rel)
            };
            self.add_plugin(name, rel, path, path_node, sha);
        }
    }

    /// Tasks may name a stock plugin directly (`plugin = "std:NAME"`, see
    /// [`plugins::resolve_stock`]): each distinct such name becomes a plugin of
    /// that name, as if `[plugins]` had declared it.
    fn std_task_plugins(&mut self) {
        let Some(tasks) = self.doc.get(ROOT, "tasks") else { return };
        for e in self.doc.entries(tasks.value) {
            let Some(p) = self.doc.get(e.value, "plugin") else { continue };
            let Val::Str(s) = self.doc.node(p.value).val else { continue };
            let name = self.doc.str(s);
            if !name.starts_with(plugins::STD_PREFIX)
                || self.plugin_ids.contains_key(name)
                || self.broken_plugins.contains(&name)
            {
                continue;
            }
            match plugins::resolve_stock(name) {
                Ok(path) => self.add_plugin(name, name, path, p.value, None),
                Err(problem) => {
                    self.plugin_problems(&[problem], p.value, None);
                    self.broken_plugins.push(name);
                }
            }
        }
    }

    /// Declare plugin `name`, written `rel` at `path_node` and found at `path`:
    /// check the file (unless the options say not to) and give it the next id.
    fn add_plugin(
        &mut self,
        name: &'d str,
        rel: &str,
        path: PathBuf,
        path_node: NodeId,
        sha: Option<(String, NodeId)>,
    ) {
        let id = self.plugins.len() as u32;
        let check = if self.opts.check_plugins {
            let r = plugins::check_file(name, rel, &path, sha.as_ref().map(|(s, _)| s.as_str()));
            self.plugin_problems(&r.problems, path_node, sha.as_ref().map(|(_, n)| *n));
            Some(r)
        } else {
            None
        };
        self.plugin_ids.insert(name, id);
        self.checks.push(check);
        self.plugins.push(PluginSpec { name: name.to_string(), path, sha256: sha.map(|(s, _)| s) });
    }

    /// Report problems with a plugin file at its path (or sha256) in the pipeline.
    fn plugin_problems(&mut self, problems: &[plugins::Problem], path_node: NodeId, sha_node: Option<NodeId>) {
        for problem in problems {
            let span = match problem.at {
                plugins::At::Path => self.span(path_node),
                plugins::At::Sha => sha_node.map(|n| self.span(n)).unwrap_or(self.span(path_node)),
            };
            let mut d = Diagnostic::error(problem.message.clone()).primary(span, problem.label.clone());
            for n in &problem.notes {
                d = d.note(n.clone());
            }
            self.err(d);
        }
    }

    fn capacity_table(&mut self) {
        let mut cap = resources::detect_capacity();
        if let Some(e) = self.doc.get(ROOT, "resources")
            && let Some(t) = self.as_table(&"`resources`", e.value)
        {
            let p = self.resources(t, Field::new(&["resources"]));
            cap = p.resolve(cap.cpu_milli, cap.memory, 0);
        }
        if let Some(o) = &self.opts.capacity_override {
            match resources::parse_list(o) {
                Ok(p) => cap = p.resolve(cap.cpu_milli, cap.memory, cap.gpu).tap_custom(&cap),
                Err(e) => self.err(Diagnostic::error(format!("invalid --resources `{o}`: {e}"))),
            }
        }
        self.capacity = cap;
    }

    /// Read a `resources` table. `capacity` is true for `[resources]`.
    fn resources(&mut self, t: NodeId, what: Field<'_>) -> Partial {
        let mut p = Partial::default();
        for e in self.doc.entries(t) {
            let k = self.key(e);
            let kw = what.with(k);
            let kw = &kw;
            match k {
                "cpu" => {
                    if let Some(v) = self.as_number(&kw, e.value) {
                        match resources::amount_milli(v, false) {
                            Ok(m) => p.cpu_milli = Some(m),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                "memory" => {
                    let bytes = match self.doc.node(e.value).val {
                        Val::Str(s) => match crate::units::parse_size(self.doc.str(s)) {
                            Ok(b) => Some(b),
                            Err(m) => {
                                self.err(
                                    Diagnostic::error(format!("{kw}: {m}"))
                                        .primary(self.span(e.value), "expected a size such as \"512MiB\" or \"2GiB\""),
                                );
                                None
                            }
                        },
                        Val::Int(i) if i >= 0 => Some(i as u64),
                        Val::Int(i) => {
                            self.value_error(&kw, e.value, &format!("must not be negative (got {i})"));
                            None
                        }
                        _ => {
                            self.type_error(&kw, e.value, "a size string such as \"512MiB\"");
                            None
                        }
                    };
                    if let Some(b) = bytes {
                        match resources::check_memory(b) {
                            Ok(b) => p.memory = Some(b),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                "gpu" => {
                    if let Some(v) = self.as_int(&kw, e.value) {
                        match resources::check_gpu(v) {
                            Ok(g) => p.gpu = Some(g),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                _ => {
                    if !resources::valid_resource_name(k) {
                        self.err(Diagnostic::error(format!("`{k}` is not a valid resource name")).primary(
                            e.key_span.range(),
                            "allowed: letters, digits, `_` and `-`, not starting with a digit",
                        ));
                        continue;
                    }
                    let v = match self.doc.node(e.value).val {
                        Val::Int(i) => Some(i as f64),
                        Val::Float(f) => Some(f),
                        _ => {
                            let found = self.doc.type_name(e.value);
                            let mut d =
                                Diagnostic::error(format!("custom resource {kw} must be a number, found {found}"));
                            d = match suggest(k, BUILTIN_RESOURCES.iter().copied()) {
                                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                                None => d.primary(self.span(e.value), "expected a number"),
                            };
                            self.err(d);
                            None
                        }
                    };
                    if let Some(v) = v {
                        match resources::amount_milli(v, true) {
                            Ok(m) => {
                                p.custom.insert(k.to_string(), m);
                            }
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
            }
        }
        p
    }

    /// Read the per-task settings shared by `[defaults]` and tasks.
    fn settings(&mut self, f: &Fields, what: Field<'_>) -> Settings {
        let mut s = Settings::default();
        let w = |k| what.with(k);
        if let Some(e) = f.get("resources")
            && let Some(r) = self.as_table(&w("resources"), e.value)
        {
            s.resources = self.resources(r, w("resources"));
        }
        if let Some(e) = f.get("retries")
            && let Some(v) = self.as_int(&w("retries"), e.value)
        {
            if !(0..=MAX_RETRIES).contains(&v) {
                self.value_error(&w("retries"), e.value, &format!("must be between 0 and {MAX_RETRIES} (got {v})"));
            } else {
                s.retries = Some(v as u32);
            }
        }
        if let Some(e) = f.get("timeout")
            && let Some(v) = self.as_str(&w("timeout"), e.value)
        {
            match crate::units::parse_duration(v) {
                Ok(d) if d.is_zero() => self.value_error(&w("timeout"), e.value, "must be greater than 0"),
                Ok(d) => s.timeout = Some(d),
                Err(m) => self.err(
                    Diagnostic::error(format!("{}: {m}", w("timeout")))
                        .primary(self.span(e.value), "expected a duration such as \"30s\" or \"5m\""),
                ),
            }
        }
        if let Some(e) = f.get("priority")
            && let Some(v) = self.as_int(&w("priority"), e.value)
        {
            match i32::try_from(v) {
                Ok(p) => s.priority = Some(p),
                Err(_) => self.value_error(&w("priority"), e.value, "must fit in a 32-bit signed integer"),
            }
        }
        if let Some(e) = f.get("deterministic") {
            s.deterministic = self.as_bool(&w("deterministic"), e.value);
        }
        if let Some(e) = f.get("fuel")
            && let Some(v) = self.as_int(&w("fuel"), e.value)
        {
            if v <= 0 {
                self.value_error(&w("fuel"), e.value, &format!("must be greater than 0 (got {v})"));
            } else {
                s.fuel = Some(v as u64);
            }
        }
        if let Some(e) = f.get("max_output_bytes") {
            let what = w("max_output_bytes");
            let bytes = match self.doc.node(e.value).val {
                Val::Str(v) => match crate::units::parse_size(self.doc.str(v)) {
                    Ok(b) => Some(b),
                    Err(m) => {
                        self.err(
                            Diagnostic::error(format!("{what}: {m}"))
                                .primary(self.span(e.value), "expected a size such as \"64MiB\" or \"4GiB\""),
                        );
                        None
                    }
                },
                Val::Int(i) => Some(i.max(0) as u64),
                _ => {
                    self.type_error(&what, e.value, "a size string such as \"64MiB\"");
                    None
                }
            };
            match bytes {
                Some(0) => self.value_error(&what, e.value, "must be greater than 0"),
                Some(b) => s.max_output_bytes = Some(b),
                None => {}
            }
        }
        s
    }

    // ---- pass 2: ids ------------------------------------------------------

    fn tasks_node(&mut self) -> Option<NodeId> {
        let e = self.doc.get(ROOT, "tasks")?;
        self.as_table(&"`tasks`", e.value)
    }

    pub(super) fn assign_ids(&mut self) {
        let Some(tasks) = self.tasks_node() else {
            self.err(
                Diagnostic::error("the pipeline has no tasks")
                    .note("add a task with `[tasks.<id>]` and `plugin = \"...\"`"),
            );
            return;
        };
        let entries = self.doc.entries(tasks);
        if entries.is_empty() {
            self.err(
                Diagnostic::error("the pipeline has no tasks")
                    .primary(self.span(tasks), "this table is empty")
                    .note("add a task with `[tasks.<id>]` and `plugin = \"...\"`"),
            );
        }
        // Built locally, then shared (read-only) by the later passes.
        let mut id_count = 0;
        let mut entry_slots = vec![None; entries.len()];
        let mut foreach: Vec<Foreach> = Vec::new();
        let mut task_plugin = Vec::with_capacity(entries.len());
        let mut task_stdout = HashMap::new();
        let mut next: usize = 0;
        for (ei, e) in entries.iter().enumerate() {
            let id = self.key(e);
            if !refs::valid_id(id) {
                let mut d = Diagnostic::error(format!("`{id}` is not a valid task id"))
                    .primary(e.key_span.range(), "allowed: letters, digits, `_` and `-`");
                if id.contains('[') {
                    d = d.note(
                        "expanded ids such as `count[3]` come from `foreach`; they cannot be written as table names",
                    );
                }
                self.err(d);
                continue;
            }
            if !matches!(self.doc.node(e.value).val, Val::Table(_)) {
                self.type_error(&format_args!("task `{id}`"), e.value, "a table");
                continue;
            }
            let plugin = self
                .doc
                .get(e.value, "plugin")
                .and_then(|p| match self.doc.node(p.value).val {
                    Val::Str(s) => self.plugin_ids.get(self.doc.str(s)).copied(),
                    _ => None,
                })
                .unwrap_or(u32::MAX);
            let stdout = self.doc.get(e.value, "stdout").and_then(|p| match self.doc.node(p.value).val {
                Val::Str(s) => Some(self.doc.str(s)),
                _ => None,
            });
            let (slot, count) = match self.doc.get(e.value, "foreach") {
                None => (Slot::Single(next as TaskId), 1),
                Some(f) => match self.foreach(id, f.value) {
                    Some(mut fe) => {
                        fe.first = next as TaskId;
                        let n = fe.values.len();
                        let slot = Slot::Foreach(foreach.len() as u32);
                        foreach.push(fe);
                        (slot, n)
                    }
                    None => {
                        // Keep the id known so references to it do not cascade.
                        let slot = Slot::Foreach(foreach.len() as u32);
                        foreach.push(Foreach {
                            first: next as TaskId,
                            vars: vec![],
                            values: vec![],
                            keys: HashMap::new(),
                        });
                        (slot, 0)
                    }
                },
            };
            id_count += 1;
            if let Some(s) = entry_slots.get_mut(ei) {
                *s = Some(slot);
            }
            if next + count > MAX_TASKS {
                self.err(
                    Diagnostic::error(format!("the pipeline expands to more than {MAX_TASKS} tasks"))
                        .primary(e.key_span.range(), "the limit is reached here"),
                );
                self.task_count = 0;
                return;
            }
            for i in 0..count {
                task_plugin.push(plugin);
                if let Some(o) = stdout {
                    task_stdout.insert((next + i) as TaskId, o);
                }
            }
            next += count;
        }
        self.tasks = Some(tasks);
        self.id_count = id_count;
        self.entry_slots = Arc::new(entry_slots);
        self.foreach = Arc::new(foreach);
        self.task_plugin = Arc::new(task_plugin);
        self.task_stdout = Arc::new(task_stdout);
        self.task_count = next;
    }

    /// Parse a `foreach` table into its expansions.
    fn foreach(&mut self, id: &str, node: NodeId) -> Option<Foreach> {
        let t = self.as_table(&format_args!("`tasks.{id}.foreach`"), node)?;
        let entries = self.doc.entries(t);
        if entries.is_empty() {
            self.err(
                Diagnostic::error(format!("`foreach` of task `{id}` defines no variables"))
                    .primary(self.span(t), "add a variable, e.g. `i = [1, 2, 3]`"),
            );
            return None;
        }
        let mut vars = Vec::new();
        let mut lists: Vec<Vec<(String, Sp)>> = Vec::new();
        let mut ok = true;
        for e in entries {
            let var = self.key(e);
            if !refs::valid_var(var) {
                self.err(
                    Diagnostic::error(format!("`{var}` is not a valid foreach variable name"))
                        .primary(e.key_span.range(), "use letters, digits and `_`, not starting with a digit"),
                );
                ok = false;
                continue;
            }
            let mut values = Vec::new();
            match self.doc.node(e.value).val {
                Val::Array(_) => {
                    for &item in self.doc.items(e.value) {
                        let sp = self.doc.node(item).span;
                        match self.doc.node(item).val {
                            Val::Int(i) => values.push((i.to_string(), sp)),
                            Val::Str(s) => {
                                let s = self.doc.str(s);
                                if refs::valid_key_part(s) {
                                    values.push((s.to_string(), sp));
                                } else {
                                    self.err(
                                        Diagnostic::error(format!("foreach value `{s}` cannot be part of a task id"))
                                            .primary(sp.range(), "allowed: letters, digits, `_`, `-` and `.`"),
                                    );
                                    ok = false;
                                }
                            }
                            _ => {
                                self.type_error(
                                    &format_args!("a value of foreach variable `{var}`"),
                                    item,
                                    "a string or an integer",
                                );
                                ok = false;
                            }
                        }
                    }
                }
                Val::Table(_) => {
                    self.check_keys(e.value, &["range"], &format_args!("`tasks.{id}.foreach.{var}`"));
                    match self.doc.get(e.value, "range") {
                        None => {
                            self.err(
                                Diagnostic::error(format!("foreach variable `{var}` of task `{id}` has no `range`"))
                                    .primary(self.span(e.value), "write `{ range = [start, end] }`"),
                            );
                            ok = false;
                        }
                        Some(r) => {
                            let items = self.doc.items(r.value);
                            let bounds: Vec<Option<i64>> = items
                                .iter()
                                .map(|&n| match self.doc.node(n).val {
                                    Val::Int(i) => Some(i),
                                    _ => None,
                                })
                                .collect();
                            match (matches!(self.doc.node(r.value).val, Val::Array(_)), bounds.as_slice()) {
                                (true, [Some(a), Some(b)]) => {
                                    let n = (*b as i128 - *a as i128).max(0);
                                    if n > MAX_FOREACH as i128 {
                                        self.value_error(
                                            &format_args!("range of foreach variable `{var}`"),
                                            r.value,
                                            &format!("has {n} values; the limit is {MAX_FOREACH}"),
                                        );
                                        ok = false;
                                    } else {
                                        let sp = self.doc.node(r.value).span;
                                        values.extend((*a..*b).map(|i| (i.to_string(), sp)));
                                    }
                                }
                                _ => {
                                    self.err(
                                        Diagnostic::error(format!(
                                            "`range` of foreach variable `{var}` must be two integers"
                                        ))
                                        .primary(self.span(r.value), "expected `[start, end]` (end excluded)"),
                                    );
                                    ok = false;
                                    continue;
                                }
                            }
                        }
                    }
                }
                _ => {
                    self.type_error(
                        &format_args!("foreach variable `{var}` of task `{id}`"),
                        e.value,
                        "an array or a `{ range = [start, end] }` table",
                    );
                    ok = false;
                    continue;
                }
            }
            if values.is_empty() && ok {
                self.err(
                    Diagnostic::error(format!("foreach variable `{var}` of task `{id}` has no values"))
                        .primary(self.span(e.value), "the task would expand to nothing"),
                );
                ok = false;
            }
            vars.push(var.to_string());
            lists.push(values);
        }
        if !ok {
            return None;
        }
        let total = lists.iter().try_fold(1usize, |acc, l| acc.checked_mul(l.len()));
        if total.is_none_or(|t| t > MAX_FOREACH) {
            self.err(
                Diagnostic::error(format!("`foreach` of task `{id}` expands to too many tasks"))
                    .primary(self.span(t), format!("the limit is {MAX_FOREACH} tasks per foreach")),
            );
            return None;
        }
        let total = total.unwrap_or(0);
        let mut fe = Foreach { first: 0, vars, values: Vec::with_capacity(total), keys: HashMap::with_capacity(total) };
        // Cartesian product, first variable outermost.
        let mut idx = vec![0usize; lists.len()];
        for n in 0..total {
            let values: Vec<String> = idx.iter().zip(&lists).map(|(&i, l)| l[i].0.clone()).collect();
            let key = values.join(",");
            if fe.keys.insert(key.clone(), n as u32).is_some() {
                // Report at the last variable's repeated value.
                let sp = idx.last().zip(lists.last()).map(|(&i, l)| l[i].1).unwrap_or_default();
                self.err(
                    Diagnostic::error(format!("task id `{id}[{key}]` is produced more than once by `foreach`"))
                        .primary(sp.range(), "this value repeats an earlier one"),
                );
                return None;
            }
            fe.values.push(values);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < lists[d].len() {
                    break;
                }
                idx[d] = 0;
            }
        }
        Some(fe)
    }

    // ---- pass 3: tasks ----------------------------------------------------

    /// Read every task table and instantiate its tasks, in file order.
    ///
    /// Large pipelines are cut into chunks of entries; a helper thread with a
    /// clone of this context takes every other chunk, and this thread appends
    /// its results (tasks and diagnostics) in chunk order, so the output is the
    /// same as a sequential pass. Each task only reads the shared tables of
    /// pass 2, so chunks are independent.
    pub(super) fn build_tasks(&mut self, threads: Threads) -> Vec<TaskSpec> {
        let mut out: Vec<TaskSpec> = Vec::with_capacity(self.task_count);
        let Some(tasks) = self.tasks_node() else { return out };
        let n = self.doc.entries(tasks).len();
        let parallel = threads == Threads::Auto && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1);
        if n < 2 * BUILD_CHUNK || !parallel {
            self.build_range(tasks, 0..n, &mut out);
            return out;
        }
        let chunks: Vec<Range<usize>> = (0..n).step_by(BUILD_CHUNK).map(|s| s..(s + BUILD_CHUNK).min(n)).collect();
        let mut helper = self.clone();
        helper.diags = Vec::new();
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let theirs: Vec<Range<usize>> = chunks.iter().skip(1).step_by(2).cloned().collect();
            // If no thread can be started, `recv` fails below and this thread
            // builds every chunk.
            let _ = std::thread::Builder::new().name("tasks".into()).spawn_scoped(scope, move || {
                for r in theirs {
                    let mut part = Vec::new();
                    helper.build_range(tasks, r, &mut part);
                    if tx.send((part, std::mem::take(&mut helper.diags))).is_err() {
                        return;
                    }
                }
            });
            for (i, r) in chunks.into_iter().enumerate() {
                if i % 2 == 0 {
                    self.build_range(tasks, r, &mut out);
                    continue;
                }
                match rx.recv() {
                    Ok((mut part, diags)) => {
                        out.append(&mut part);
                        self.diags.extend(diags);
                    }
                    // No helper (it could not start, or it panicked and the
                    // scope re-raises that).
                    Err(_) => self.build_range(tasks, r, &mut out),
                }
            }
        });
        out
    }

    /// [`Cx::build_tasks`] for the entries `range` of `[tasks]`.
    fn build_range(&mut self, tasks: NodeId, range: Range<usize>, out: &mut Vec<TaskSpec>) {
        for i in range {
            let Some(&e) = self.doc.entries(tasks).get(i) else { break };
            let Some(slot) = self.entry_slots.get(i).copied().flatten() else { continue };
            let id = self.key(&e);
            let (first, expansions) = match slot {
                Slot::Single(t) => (t, None),
                Slot::Foreach(f) => (self.foreach[f as usize].first, Some(f)),
            };
            let vars: Vec<String> = expansions.map(|f| self.foreach[f as usize].vars.clone()).unwrap_or_default();
            let raw = self.raw_task(id, e, expansions.is_some(), &vars);
            match expansions {
                None => {
                    let t = self.instantiate(id.to_string(), first, &raw, &[], &[], e);
                    out.push(t);
                }
                Some(f) => {
                    let foreach = Arc::clone(&self.foreach);
                    for (k, values) in foreach[f as usize].values.iter().enumerate() {
                        let tid = format!("{id}[{}]", values.join(","));
                        let t = self.instantiate(tid, first + k as u32, &raw, &vars, values, e);
                        out.push(t);
                    }
                }
            }
        }
    }

    /// Read and validate one task table.
    fn raw_task(&mut self, id: &'d str, e: Entry, foreach: bool, vars: &[String]) -> RawTask<'d> {
        let t = e.value;
        let f = self.fields(t, TASK_KEYS, &format_args!("task `{id}`"));
        let w = |k| Field::new(&["tasks", id, k]);
        let plugin = match f.get("plugin") {
            None => {
                self.err(
                    Diagnostic::error(format!("task `{id}` has no `plugin`"))
                        .primary(e.key_span.range(), "add `plugin = \"...\"` naming an entry of `[plugins]`"),
                );
                None
            }
            Some(p) => {
                let name = self.as_str(&w("plugin"), p.value).unwrap_or("");
                match self.plugin_ids.get(name) {
                    _ if name.is_empty() && !matches!(self.doc.node(p.value).val, Val::Str(_)) => None,
                    Some(&pid) => Some(pid),
                    None if self.broken_plugins.contains(&name) => None,
                    None => {
                        let mut d = Diagnostic::error(format!("task `{id}` uses unknown plugin `{name}`"));
                        d = match suggest(name, self.plugin_ids.keys().copied()) {
                            Some(s) => d.primary(self.span(p.value), format!("did you mean `{s}`?")),
                            None => d.primary(self.span(p.value), "not defined in `[plugins]`"),
                        };
                        self.err(d);
                        None
                    }
                }
            }
        };
        let mut ok = true;
        let check_placeholders = |cx: &mut Self, s: &str, sp: Sp| {
            if !foreach {
                return;
            }
            for name in refs::unknown_placeholders(s, vars) {
                cx.err(
                    Diagnostic::error(format!("task `{id}` uses `{{{name}}}`, which its `foreach` does not define"))
                        .primary(sp.range(), format!("`foreach` defines: {}", vars.join(", "))),
                );
            }
        };
        let mut inputs: SmallVec<[RawInput<'d>; 2]> = SmallVec::new();
        if let Some(ie) = f.get("inputs")
            && let Some(it) = self.as_table(&w("inputs"), ie.value)
        {
            for ine in self.doc.entries(it) {
                let name = self.key(ine);
                let mut refs_ = SmallVec::new();
                let list = match self.doc.node(ine.value).val {
                    Val::Str(s) => {
                        let s = self.doc.str(s);
                        refs_.push((s, self.doc.node(ine.value).span));
                        s.contains("[*]")
                    }
                    Val::Array(_) => {
                        for &item in self.doc.items(ine.value) {
                            match self.doc.node(item).val {
                                Val::Str(s) => refs_.push((self.doc.str(s), self.doc.node(item).span)),
                                _ => {
                                    self.type_error(
                                        &format_args!("an item of input `{name}` of task `{id}`"),
                                        item,
                                        "a reference string",
                                    );
                                    ok = false;
                                }
                            }
                        }
                        true
                    }
                    _ => {
                        self.type_error(
                            &format_args!("input `{name}` of task `{id}`"),
                            ine.value,
                            "a reference string or a list of them",
                        );
                        ok = false;
                        continue;
                    }
                };
                // A reference with an unknown placeholder is reported once and not resolved.
                refs_.retain(|&mut (s, sp)| {
                    let bad = foreach && !refs::unknown_placeholders(s, vars).is_empty();
                    if bad {
                        check_placeholders(self, s, sp);
                    }
                    !bad
                });
                inputs.push(RawInput { name, list, refs: refs_ });
            }
        }
        let params = match f.get("params") {
            Some(p) => {
                let p = self.as_table(&w("params"), p.value);
                if let Some(p) = p {
                    self.check_params(id, p, plugin, foreach, vars);
                }
                p
            }
            None => None,
        };
        let settings = self.settings(&f, Field::new(&["tasks", id]));
        let mut args = Vec::new();
        if let Some(a) = f.get("args") {
            if matches!(self.doc.node(a.value).val, Val::Array(_)) {
                for &item in self.doc.items(a.value) {
                    if let Some(s) = self.as_str(&format_args!("an item of {}", w("args")), item) {
                        let sp = self.doc.node(item).span;
                        check_placeholders(self, s, sp);
                        args.push((s, sp));
                    }
                }
            } else {
                self.type_error(&w("args"), a.value, "an array of strings");
            }
        }
        let mut env = Vec::new();
        if let Some(en) = f.get("env")
            && let Some(et) = self.as_table(&w("env"), en.value)
        {
            for ee in self.doc.entries(et) {
                let k = self.key(ee);
                if k.is_empty() || k.contains(['=', '\0']) {
                    self.err(
                        Diagnostic::error(format!("`{k}` is not a valid environment variable name"))
                            .primary(ee.key_span.range(), "names must be non-empty and contain no `=`"),
                    );
                    continue;
                }
                if let Some(v) = self.as_str(&w("env").with(k), ee.value) {
                    let sp = self.doc.node(ee.value).span;
                    check_placeholders(self, v, sp);
                    env.push((k, v, sp));
                }
            }
        }
        let stdin = f.get("stdin").and_then(|s| {
            let v = self.as_str(&w("stdin"), s.value)?;
            Some((v, self.doc.node(s.value).span))
        });
        if let Some((name, sp)) = stdin
            && !inputs.iter().any(|i| i.name == name)
        {
            let mut d =
                Diagnostic::error(format!("`stdin` of task `{id}` names input `{name}`, which the task does not have"));
            d = match suggest(name, inputs.iter().map(|i| i.name)) {
                Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
                None if inputs.is_empty() => d.primary(sp.range(), "the task has no inputs"),
                None => d.primary(
                    sp.range(),
                    format!("inputs: {}", inputs.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")),
                ),
            };
            self.err(d);
        }
        let stdout = match f.get("stdout") {
            Some(s) => {
                let v = self.as_str(&w("stdout"), s.value);
                if let Some(v) = v
                    && let Some(m) = refs::output_name_error(v)
                {
                    self.value_error(&w("stdout"), s.value, &format!("is not a valid output name: {m}"));
                } else if v == Some(crate::runtime::EXIT_CODE_OUTPUT) {
                    self.value_error(
                        &w("stdout"),
                        s.value,
                        "cannot be `exit_code`: that output holds the exit status of every command task",
                    );
                }
                v
            }
            None => None,
        };
        if let Some(pid) = plugin
            && let Some(Some(check)) = self.checks.get(pid as usize)
            && check.kind == Some(crate::runtime::inspect::PluginKind::Sdk)
        {
            for (k, what) in [
                ("args", "args"),
                ("env", "env"),
                ("stdin", "stdin"),
                ("stdout", "stdout"),
                ("mounts", "mounts"),
                ("scratch", "scratch"),
                ("success_exit_codes", "success_exit_codes"),
            ] {
                if let Some(x) = f.get(k) {
                    self.err(
                        Diagnostic::error(format!(
                            "task `{id}` sets `{what}`, but plugin `{}` is an SDK task, not a command",
                            self.plugins[pid as usize].name
                        ))
                        .primary(x.key_span.range(), "only command plugins (WASI programs with `_start`) take this"),
                    );
                }
            }
        }
        // Capacity: the same for every expansion, so checked once per table.
        let req = settings.resources.over(&self.defaults.resources).resolve(
            1000,
            crate::exec::message::DEFAULT_TASK_MEMORY,
            0,
        );
        if let Some((what, asked, has)) = req.first_excess(&self.capacity) {
            let mut d = Diagnostic::error(format!(
                "task `{id}` requests {what} = {asked} but the machine has {what} = {has}; it could never run"
            ))
            .primary(e.key_span.range(), "this task");
            if let Some(s) = suggest(&what, BUILTIN_RESOURCES.iter().copied())
                && s != what
            {
                d = d.note(format!("`{what}` is a custom resource; did you mean `{s}`?"));
            } else {
                d = d.note("raise the capacity in `[resources]` or with `--resources`, or lower the request");
            }
            self.err(d);
        }
        let _ = ok;
        let fs = self.command_fs(id, &f);
        RawTask { plugin, inputs, params, settings, args, env, stdin, stdout, fs }
    }

    /// `mounts`, `scratch` and `success_exit_codes` of a command task.
    fn command_fs(&mut self, id: &str, f: &Fields) -> Option<Box<crate::plan::CommandFs>> {
        use crate::plan::{CommandFs, Mount};
        let w = |k| Field::new(&["tasks", id, k]);
        let mut fs = CommandFs::default();
        if let Some(m) = f.get("mounts")
            && let Some(t) = self.as_table(&w("mounts"), m.value)
        {
            for e in self.doc.entries(t) {
                let guest = self.key(e);
                if let Some(problem) = guest_path_problem(guest) {
                    self.err(
                        Diagnostic::error(format!("mount `{guest}` of task `{id}`: {problem}"))
                            .primary(e.key_span.range(), "invalid guest path"),
                    );
                    continue;
                }
                let Some(v) = self.as_str(&w("mounts").with(guest), e.value) else { continue };
                let Some(rel) = v.strip_prefix("file:").filter(|r| !r.is_empty()) else {
                    self.err(
                        Diagnostic::error(format!(
                            "mount `{guest}` of task `{id}` must be `file:` and a directory or archive, found `{v}`"
                        ))
                        .primary(self.span(e.value), "expected e.g. \"file:share/\" or \"file:data.tar.gz\""),
                    );
                    continue;
                };
                let host = self.base_dir.join(rel);
                let problem = match std::fs::metadata(&host) {
                    Err(_) => Some(format!("`{rel}` does not exist")),
                    Ok(md) if md.is_dir() => None,
                    Ok(md) if md.is_file() && is_archive(rel) => None,
                    Ok(_) => Some(format!("`{rel}` is neither a directory nor a `.tar`, `.tar.gz` or `.tgz` archive")),
                };
                if let Some(p) = problem {
                    self.err(
                        Diagnostic::error(format!("mount `{guest}` of task `{id}`: {p}"))
                            .primary(self.span(e.value), "paths are relative to the pipeline file"),
                    );
                    continue;
                }
                fs.mounts.push(Mount { guest: guest.to_string(), host });
            }
            fs.mounts.sort_by(|a, b| a.guest.cmp(&b.guest));
        }
        if let Some(e) = f.get("scratch") {
            let what = w("scratch");
            fs.scratch = match self.doc.node(e.value).val {
                Val::Bool(true) => Some(DEFAULT_SCRATCH),
                Val::Bool(false) => None,
                Val::Str(v) => match crate::units::parse_size(self.doc.str(v)) {
                    Ok(0) => {
                        self.value_error(&what, e.value, "must be more than 0 bytes (or `false` for no scratch)");
                        None
                    }
                    Ok(b) => Some(b),
                    Err(m) => {
                        self.err(
                            Diagnostic::error(format!("{what}: {m}"))
                                .primary(self.span(e.value), "expected `true` or a size such as \"2GiB\""),
                        );
                        None
                    }
                },
                _ => {
                    self.type_error(&what, e.value, "`true`, `false` or a size string such as \"2GiB\"");
                    None
                }
            };
        }
        if let Some(e) = f.get("success_exit_codes") {
            let what = w("success_exit_codes");
            if matches!(self.doc.node(e.value).val, Val::Array(_)) {
                let items = self.doc.items(e.value);
                if items.is_empty() {
                    self.value_error(&what, e.value, "must list at least one exit code");
                }
                for &item in items {
                    if let Some(c) = self.as_int(&format_args!("an item of {what}"), item) {
                        if (0..=255).contains(&c) {
                            fs.success_exit_codes.push(c as i32);
                        } else {
                            self.value_error(
                                &format_args!("exit code {c} in {what}"),
                                item,
                                "is not between 0 and 255",
                            );
                        }
                    }
                }
                fs.success_exit_codes.sort_unstable();
                fs.success_exit_codes.dedup();
            } else {
                self.type_error(&what, e.value, "an array of integers");
            }
        }
        if fs.success_exit_codes == [0] {
            fs.success_exit_codes.clear();
        }
        (fs != CommandFs::default()).then(|| Box::new(fs))
    }

    fn check_params(&mut self, id: &str, p: NodeId, plugin: Option<u32>, foreach: bool, vars: &[String]) {
        if foreach {
            let mut stack = vec![p];
            while let Some(n) = stack.pop() {
                match self.doc.node(n).val {
                    Val::Str(s) => {
                        let s = self.doc.str(s);
                        for name in refs::unknown_placeholders(s, vars) {
                            self.err(
                                Diagnostic::error(format!(
                                    "task `{id}` uses `{{{name}}}`, which its `foreach` does not define"
                                ))
                                .primary(self.span(n), format!("`foreach` defines: {}", vars.join(", "))),
                            );
                        }
                    }
                    Val::Table(_) => stack.extend(self.doc.entries(n).iter().map(|e| e.value)),
                    Val::Array(_) => stack.extend(self.doc.items(n).iter().copied()),
                    _ => {}
                }
            }
        }
        let mut stack = vec![p];
        while let Some(n) = stack.pop() {
            match self.doc.node(n).val {
                Val::Float(f) if !f.is_finite() => self.value_error(
                    &format_args!("a param of task `{id}`"),
                    n,
                    "cannot be nan or infinite (params become JSON)",
                ),
                Val::Table(_) => stack.extend(self.doc.entries(n).iter().map(|e| e.value)),
                Val::Array(_) => stack.extend(self.doc.items(n).iter().copied()),
                _ => {}
            }
        }
        let Some(pid) = plugin else { return };
        let Some(Some(check)) = self.checks.get(pid as usize) else { return };
        let Some(meta) = &check.meta else { return };
        let Some(declared) = &meta.params else { return };
        let pname = self.plugins[pid as usize].name.clone();
        let declared = declared.clone();
        for e in self.doc.entries(p) {
            let k = self.key(e);
            if declared.iter().any(|d| d == k) {
                continue;
            }
            let d = Diagnostic::error(format!("plugin `{pname}` does not take a param `{k}` (task `{id}`)"));
            let d = match suggest(k, declared.iter().map(String::as_str)) {
                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                None if declared.is_empty() => d.primary(e.key_span.range(), "the plugin takes no params"),
                None => d.primary(e.key_span.range(), format!("declared params: {}", declared.join(", "))),
            };
            self.err(d);
        }
    }

    fn instantiate(
        &mut self,
        id: String,
        me: TaskId,
        raw: &RawTask<'d>,
        vars: &[String],
        values: &[String],
        e: Entry,
    ) -> TaskSpec {
        let mut inputs = Vec::with_capacity(raw.inputs.len());
        let mut deps = Vec::new();
        for inp in &raw.inputs {
            let mut sources = Vec::with_capacity(inp.refs.len());
            for &(r, sp) in &inp.refs {
                let r = refs::substitute(r, vars, values);
                self.resolve(&r, sp, User::Task(&id), me, &mut sources, false);
            }
            for s in &sources {
                if let Source::Task { task, .. } = s {
                    deps.push(*task);
                }
            }
            inputs.push(InputSpec { name: inp.name.to_string(), list: inp.list, sources });
        }
        deps.sort_unstable();
        deps.dedup();
        let params = match raw.params {
            Some(p) => {
                let mut s = String::new();
                self.write_json(p, &mut s, vars, values);
                s
            }
            None => "{}".to_string(),
        };
        let st = &raw.settings;
        let d = &self.defaults;
        let _ = e;
        TaskSpec {
            id,
            plugin: raw.plugin.unwrap_or(0),
            inputs,
            params,
            resources: st.resources.over(&d.resources).resolve(1000, crate::exec::message::DEFAULT_TASK_MEMORY, 0),
            retries: st.retries.or(d.retries).unwrap_or(0),
            timeout: st.timeout.or(d.timeout),
            priority: st.priority.or(d.priority).unwrap_or(0),
            args: raw.args.iter().map(|(a, _)| refs::substitute(a, vars, values).into_owned()).collect(),
            env: raw
                .env
                .iter()
                .map(|(k, v, _)| (k.to_string(), refs::substitute(v, vars, values).into_owned()))
                .collect(),
            stdin: raw.stdin.map(|(s, _)| s.to_string()),
            stdout: raw.stdout.map(str::to_string),
            deterministic: st.deterministic.or(d.deterministic).unwrap_or(false),
            fuel: st.fuel.or(d.fuel),
            max_output_bytes: st.max_output_bytes.or(d.max_output_bytes),
            fs: raw.fs.clone(),
            deps,
        }
    }

    /// Resolve one reference into `out`. `single` is set for `[outputs]`, which
    /// need exactly one task output.
    fn resolve(&mut self, r: &str, sp: Sp, user: User<'_>, me: TaskId, out: &mut Vec<Source>, single: bool) {
        let parsed = match refs::parse_ref(r) {
            Ok(p) => p,
            Err(m) => {
                self.err(
                    Diagnostic::error(format!("invalid reference `{r}`: {m}")).primary(sp.range(), "in this reference"),
                );
                return;
            }
        };
        let (task, key, output) = match parsed {
            Ref::File(p) => {
                if single {
                    self.err(
                        Diagnostic::error(format!("`{r}` is a file; `[outputs]` copies task outputs"))
                            .primary(sp.range(), "expected `task` or `task.output`"),
                    );
                } else {
                    out.push(Source::File { path: self.base_dir.join(p) });
                }
                return;
            }
            Ref::Task { task, key, output } => (task, key, output),
        };
        let output = output.unwrap_or(DEFAULT_OUTPUT);
        let Some(slot) = self.slot(task) else {
            let mut d = Diagnostic::error(format!("{user} refers to unknown task `{task}`"));
            let sug = if self.id_count <= 10_000 { suggest(task, self.known_ids()) } else { None };
            d = match sug {
                Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
                None => d.primary(sp.range(), "no task has this id"),
            };
            self.err(d);
            return;
        };
        let first_out = out.len();
        match (slot, key) {
            (Slot::Single(t), None) => out.push(Source::Task { task: t, output: output.to_string() }),
            (Slot::Single(_), Some(k)) => {
                self.err(
                    Diagnostic::error(format!("{user} refers to `{task}[{k}]`, but task `{task}` has no `foreach`"))
                        .primary(sp.range(), format!("write `{task}` without brackets")),
                );
                return;
            }
            (Slot::Foreach(f), None) => {
                let fe = &self.foreach[f as usize];
                if fe.values.is_empty() {
                    return;
                }
                let example = fe.values.first().map(|v| v.join(",")).unwrap_or_default();
                self.err(Diagnostic::error(format!("{user} refers to `{task}`, which is a foreach task")).primary(
                    sp.range(),
                    format!("use `{task}[*]` for all its tasks or one of them such as `{task}[{example}]`"),
                ));
                return;
            }
            (Slot::Foreach(f), Some("*")) => {
                let fe = &self.foreach[f as usize];
                for i in 0..fe.values.len() {
                    out.push(Source::Task { task: fe.first + i as u32, output: output.to_string() });
                }
                if single {
                    self.err(
                        Diagnostic::error(format!("`{r}` names several task outputs; `[outputs]` copies one"))
                            .primary(sp.range(), "expected a single task output"),
                    );
                    out.truncate(first_out);
                    return;
                }
            }
            (Slot::Foreach(f), Some(k)) => {
                let fe = &self.foreach[f as usize];
                if fe.values.is_empty() {
                    return;
                }
                match fe.keys.get(k) {
                    Some(&i) => out.push(Source::Task { task: fe.first + i, output: output.to_string() }),
                    None => {
                        let first = fe.values.first().map(|v| v.join(",")).unwrap_or_default();
                        let last = fe.values.last().map(|v| v.join(",")).unwrap_or_default();
                        let range = if fe.values.len() == 1 {
                            format!("`{task}[{first}]`")
                        } else {
                            format!("`{task}[{first}]` … `{task}[{last}]`")
                        };
                        self.err(
                            Diagnostic::error(format!(
                                "{user} refers to `{task}[{k}]`, which `foreach` does not produce"
                            ))
                            .primary(sp.range(), format!("`{task}` expands to {range}")),
                        );
                        return;
                    }
                }
            }
        }
        // Self-dependency and plugin metadata, per resolved source.
        let mut i = first_out;
        while i < out.len() {
            if let Source::Task { task: t, output: o } = &out[i] {
                let t = *t;
                if t == me {
                    self.err(
                        Diagnostic::error(format!("{user} depends on itself"))
                            .primary(sp.range(), "this input is the task's own output"),
                    );
                    out.remove(i);
                    continue;
                }
                self.check_output(t, o, r, sp);
            }
            i += 1;
        }
    }

    /// What task id `id` maps to: its entry in `[tasks]` (found with the
    /// document's index), if that entry got a slot in pass 2.
    fn slot(&self, id: &str) -> Option<Slot> {
        let i = self.doc.position(self.tasks?, id)?;
        self.entry_slots.get(i).copied().flatten()
    }

    /// The ids that have a slot.
    fn known_ids(&self) -> impl Iterator<Item = &'d str> + use<'_, 'd, 's> {
        let entries = self.tasks.map(|t| self.doc.entries(t)).unwrap_or(&[]);
        entries.iter().zip(self.entry_slots.iter()).filter(|(_, s)| s.is_some()).map(|(e, _)| self.key(e))
    }

    /// With plugin metadata, check that task `t` declares output `o`.
    fn check_output(&mut self, t: TaskId, o: &str, r: &str, sp: Sp) {
        let Some(&pid) = self.task_plugin.get(t as usize) else { return };
        let Some(Some(check)) = self.checks.get(pid as usize) else { return };
        if check.kind == Some(crate::runtime::inspect::PluginKind::Command) && o == crate::runtime::EXIT_CODE_OUTPUT {
            return;
        }
        let Some(meta) = &check.meta else { return };
        // `*` declares outputs named at run time (e.g. `split` writes `0`..`N-1`).
        if meta.outputs.iter().any(|x| x == o || x == "*") || self.task_stdout.get(&t) == Some(&o) {
            return;
        }
        let pname = &self.plugins[pid as usize].name;
        let d = Diagnostic::error(format!("`{r}` refers to output `{o}`, which plugin `{pname}` does not declare"));
        let d = match suggest(o, meta.outputs.iter().map(String::as_str)) {
            Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
            None if meta.outputs.is_empty() => d.primary(sp.range(), "the plugin declares no outputs"),
            None => d.primary(sp.range(), format!("declared outputs: {}", meta.outputs.join(", "))),
        };
        self.err(d);
    }

    /// Write a params node as JSON, substituting placeholders in strings.
    fn write_json(&self, n: NodeId, out: &mut String, vars: &[String], values: &[String]) {
        match self.doc.node(n).val {
            Val::Str(s) => {
                let s = refs::substitute(self.doc.str(s), vars, values);
                out.push_str(&serde_json::to_string(s.as_ref()).unwrap_or_default());
            }
            Val::Int(i) => out.push_str(&i.to_string()),
            Val::Float(f) => out.push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "null".into())),
            Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Val::Datetime => out.push_str(&serde_json::to_string(self.doc.text(n)).unwrap_or_default()),
            Val::Array(_) => {
                out.push('[');
                for (i, &item) in self.doc.items(n).iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(item, out, vars, values);
                }
                out.push(']');
            }
            Val::Table(_) => {
                out.push('{');
                for (i, e) in self.doc.entries(n).iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(self.doc.str(e.key)).unwrap_or_default());
                    out.push(':');
                    self.write_json(e.value, out, vars, values);
                }
                out.push('}');
            }
        }
    }

    // ---- pass 4: outputs --------------------------------------------------

    pub(super) fn outputs(&mut self) -> Vec<OutputSpec> {
        let mut outs = Vec::new();
        let Some(e) = self.doc.get(ROOT, "outputs") else { return outs };
        let Some(t) = self.as_table(&"`outputs`", e.value) else { return outs };
        for e in self.doc.entries(t) {
            let dest = self.key(e);
            if dest.trim().is_empty() {
                self.err(
                    Diagnostic::error("an output destination cannot be empty")
                        .primary(e.key_span.range(), "empty path"),
                );
                continue;
            }
            let Some(r) = self.as_str(&format_args!("`outputs.\"{dest}\"`"), e.value) else { continue };
            let mut sources = Vec::new();
            let sp = self.doc.node(e.value).span;
            self.resolve(r, sp, User::Output(dest), TaskId::MAX, &mut sources, true);
            if let Some(Source::Task { task, output }) = sources.pop() {
                outs.push(OutputSpec { dest: self.base_dir.join(dest), task, output });
            }
        }
        outs
    }

    pub(super) fn finish(
        self,
        name: String,
        description: String,
        pipeline_file: PathBuf,
        tasks: Vec<TaskSpec>,
        outputs: Vec<OutputSpec>,
    ) -> (Plan, Vec<Diagnostic>) {
        (
            Plan {
                name,
                description,
                pipeline_file,
                base_dir: self.base_dir,
                plugins: self.plugins,
                tasks,
                outputs,
                capacity: self.capacity,
            },
            self.diags,
        )
    }

    pub(super) fn task_id_span(&self, id: &str) -> Option<std::ops::Range<usize>> {
        let tasks = self.doc.get(ROOT, "tasks")?;
        let base = id.split('[').next().unwrap_or(id);
        self.doc.get(tasks.value, base).map(|e| e.key_span.range())
    }
}

/// A dotted key path such as `tasks.split.retries`, formatted (in backticks)
/// only when a message is shown.
#[derive(Clone, Copy)]
struct Field<'a>([&'a str; 5]);

impl<'a> Field<'a> {
    fn new(parts: &[&'a str]) -> Self {
        let mut f = [""; 5];
        for (d, s) in f.iter_mut().zip(parts) {
            *d = s;
        }
        Field(f)
    }
    fn with(self, part: &'a str) -> Self {
        let mut f = self.0;
        if let Some(slot) = f.iter_mut().find(|s| s.is_empty()) {
            *slot = part;
        }
        Field(f)
    }
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("`")?;
        for (i, p) in self.0.iter().filter(|p| !p.is_empty()).enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(p)?;
        }
        f.write_str("`")
    }
}

/// Who makes a reference, for messages.
#[derive(Clone, Copy)]
enum User<'a> {
    Task(&'a str),
    Output(&'a str),
}

impl std::fmt::Display for User<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            User::Task(t) => write!(f, "task `{t}`"),
            User::Output(o) => write!(f, "output `{o}`"),
        }
    }
}

trait TapCustom {
    fn tap_custom(self, base: &Resources) -> Resources;
}

impl TapCustom for Resources {
    /// Keep custom capacities of `base` that `self` does not set.
    fn tap_custom(mut self, base: &Resources) -> Resources {
        for (k, v) in &base.custom {
            self.custom.entry(k.clone()).or_insert(*v);
        }
        self
    }
}

/// Why `p` cannot be a mount's guest path, if it cannot.
fn guest_path_problem(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return Some("the guest path must be absolute, e.g. `/share`".into());
    }
    if p == "/" {
        return Some("the root `/` cannot be a mount".into());
    }
    if p.contains('\0') || p[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("the guest path must not contain empty, `.` or `..` components or end with `/`".into());
    }
    if let Some(r) = RESERVED_GUEST_PATHS.iter().find(|r| p == **r || p.starts_with(&format!("{r}/"))) {
        return Some(format!("`{r}` is reserved (inputs, outputs and scratch)"));
    }
    None
}

/// Whether a mount source names an archive the runtime can unpack.
pub fn is_archive(path: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"].iter().any(|s| path.ends_with(s))
}
