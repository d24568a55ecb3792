//! Pass 3, reading one task table (once, however many tasks it expands to):
//! its plugin, inputs (references kept unresolved), params checked against the
//! plugin's metadata, settings, command keys (`args`, `env`, `stdin`,
//! `stdout`; rejected for SDK plugins), placeholders against its `foreach`,
//! and whether the machine could ever run it.

use smallvec::SmallVec;

use super::Loader;
use super::access::{Field, Fields, suggest};
use super::settings::{BUILTIN_RESOURCES, Settings};
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, NodeId, Sp, Val};
use crate::pipeline::refs;
use crate::plan::TaskId;

pub(super) const TASK_KEYS: &[&str] = &[
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
    "cache",
    "fuel",
    "max_output_bytes",
    "max_open_files",
    "foreach",
    "foreach_mode",
    "map",
    "max_items",
    "mounts",
    "scratch",
    "success_exit_codes",
    "workdir",
    "io_dirs",
];

// Every key must have a slot in `Fields`.
const _: () = assert!(TASK_KEYS.len() <= super::access::MAX_FIELDS);

/// Keys only command plugins take.
const COMMAND_KEYS: &[&str] =
    &["args", "env", "stdin", "stdout", "mounts", "scratch", "success_exit_codes", "workdir", "io_dirs"];

/// A task table read once, before instantiation.
pub(super) struct RawTask<'d> {
    pub(super) plugin: Option<u32>,
    pub(super) inputs: SmallVec<[RawInput<'d>; 2]>,
    pub(super) params: Option<NodeId>,
    pub(super) settings: Settings,
    pub(super) args: Vec<(&'d str, Sp)>,
    pub(super) env: Vec<(&'d str, &'d str, Sp)>,
    pub(super) stdin: Option<(&'d str, Sp)>,
    pub(super) stdout: Option<&'d str>,
    pub(super) fs: Option<Box<crate::plan::CommandFs>>,
    /// `map`, for a mapped task (whose placeholders stay for expansion).
    pub(super) map: Option<crate::plan::MapSpec>,
}

pub(super) struct RawInput<'d> {
    pub(super) name: &'d str,
    pub(super) list: bool,
    pub(super) refs: SmallVec<[(&'d str, Sp); 2]>,
}

impl<'d> Loader<'d, '_> {
    /// Read and validate one task table, task number `me` (the first, for a
    /// `foreach` task). `foreach` holds the variables of a `foreach` task
    /// (none if its `foreach` is invalid), or `key` and `item` for a mapped
    /// task.
    pub(super) fn raw_task(&mut self, id: &'d str, me: TaskId, e: Entry, foreach: Option<&[String]>) -> RawTask<'d> {
        let f = self.fields(e.value, TASK_KEYS, &format_args!("task `{id}`"));
        self.binder = if f.get("map").is_some() { "map" } else { "foreach" };
        let plugin = self.task_plugin_id(id, &e, &f);
        let inputs = self.raw_inputs(id, &f, foreach);
        let map = self.raw_map(id, me, &f, &inputs);
        self.check_input_names(id, plugin, &f);
        let w = |k| Field::new(&["tasks", id, k]);
        let params = match f.get("params") {
            Some(p) => {
                let p = self.as_table(&w("params"), p.value);
                if let Some(p) = p {
                    self.check_params(id, p, plugin, foreach);
                }
                p
            }
            None => None,
        };
        let settings = self.settings(&f, Field::new(&["tasks", id]));
        let args = self.raw_args(id, &f, foreach);
        let env = self.raw_env(id, &f, foreach);
        let stdin = self.raw_stdin(id, &f, &inputs);
        let stdout = self.raw_stdout(id, &f);
        self.reject_command_keys(id, plugin, &f);
        self.check_fits(id, &e, &settings);
        self.check_memory_fits(id, plugin, &e, &f, &settings);
        let fs = self.command_fs(id, &f);
        RawTask { plugin, inputs, params, settings, args, env, stdin, stdout, fs, map }
    }

    /// The plugin a task names, if it is a valid one.
    fn task_plugin_id(&mut self, id: &str, e: &Entry, f: &Fields) -> Option<u32> {
        let Some(p) = f.get("plugin") else {
            self.err(
                Diagnostic::error(Code::MissingKey, format!("task `{id}` has no `plugin`"))
                    .primary(e.key_span.range(), "add `plugin = \"...\"` naming an entry of `[plugins]`"),
            );
            return None;
        };
        let name = self.as_str(&Field::new(&["tasks", id, "plugin"]), p.value).unwrap_or("");
        match self.plugin_ids.get(name) {
            _ if name.is_empty() && !matches!(self.doc.node(p.value).val, Val::Str(_)) => None,
            Some(&pid) => Some(pid),
            None if self.broken_plugins.contains(&name) => None,
            None => {
                let mut d = Diagnostic::error(Code::Plugin, format!("task `{id}` uses unknown plugin `{name}`"));
                d = match suggest(name, self.plugin_ids.keys().copied()) {
                    Some(s) => d.primary(self.span(p.value), format!("did you mean `{s}`?")),
                    None => d.primary(self.span(p.value), "not defined in `[plugins]`"),
                };
                self.err(d);
                None
            }
        }
    }

    /// Report the placeholders in `s` that the task's `foreach` (or `map`)
    /// does not define.
    fn check_placeholders(&mut self, id: &str, s: &str, sp: Sp, foreach: Option<&[String]>) {
        let Some(vars) = foreach else { return };
        for name in refs::unknown_placeholders(s, vars) {
            self.unknown_placeholder(id, &name, sp, vars);
        }
    }

    /// `{name}` is neither a variable of the task's `foreach` (or `map`)
    /// nor a var of the pipeline: suggest the closest of both.
    fn unknown_placeholder(&mut self, id: &str, name: &str, sp: Sp, vars: &[String]) {
        let b = self.binder;
        let d = Diagnostic::error(Code::Var, format!("task `{id}` uses `{{{name}}}`, which its `{b}` does not define"));
        let known = vars.iter().map(String::as_str).chain(self.vars.iter().map(|v| v.name.as_str()));
        let defines = format!("`{b}` defines: {}", vars.join(", "));
        let d = match suggest(name, known) {
            Some(s) => d.primary(sp.range(), format!("did you mean `{{{s}}}`? {defines}")),
            None => d.primary(sp.range(), defines),
        };
        self.err(d);
    }

    fn raw_inputs(&mut self, id: &str, f: &Fields, foreach: Option<&[String]>) -> SmallVec<[RawInput<'d>; 2]> {
        let mut inputs: SmallVec<[RawInput<'d>; 2]> = SmallVec::new();
        let Some(ie) = f.get("inputs") else { return inputs };
        let Some(it) = self.as_table(&Field::new(&["tasks", id, "inputs"]), ie.value) else { return inputs };
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
                            _ => self.type_error(
                                &format_args!("an item of input `{name}` of task `{id}`"),
                                item,
                                "a reference string",
                            ),
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
                    continue;
                }
            };
            // A reference with an unknown placeholder is reported once and not resolved.
            refs_.retain(|&mut (s, sp)| {
                let bad = foreach.is_some_and(|vars| !refs::unknown_placeholders(s, vars).is_empty());
                if bad {
                    self.check_placeholders(id, s, sp, foreach);
                } else if self.binder == "map" && s != super::map::ITEM_REF && s.contains('{') {
                    self.err(
                        Diagnostic::error(
                            Code::Map,
                            format!(
                                "task `{id}` uses a placeholder in reference `{s}`, which is known only at run time"
                            ),
                        )
                        .primary(sp.range(), "in a mapped task, write `{item}` alone for the mapped output"),
                    );
                    return false;
                }
                !bad
            });
            inputs.push(RawInput { name, list, refs: refs_ });
        }
        inputs
    }

    fn raw_args(&mut self, id: &str, f: &Fields, foreach: Option<&[String]>) -> Vec<(&'d str, Sp)> {
        let mut args = Vec::new();
        let Some(a) = f.get("args") else { return args };
        let what = Field::new(&["tasks", id, "args"]);
        if !matches!(self.doc.node(a.value).val, Val::Array(_)) {
            self.type_error(&what, a.value, "an array of strings");
            return args;
        }
        for &item in self.doc.items(a.value) {
            if let Some(s) = self.as_str(&format_args!("an item of {what}"), item) {
                let sp = self.doc.node(item).span;
                self.check_placeholders(id, s, sp, foreach);
                args.push((s, sp));
            }
        }
        args
    }

    fn raw_env(&mut self, id: &str, f: &Fields, foreach: Option<&[String]>) -> Vec<(&'d str, &'d str, Sp)> {
        let mut env = Vec::new();
        let what = Field::new(&["tasks", id, "env"]);
        let Some(en) = f.get("env") else { return env };
        let Some(et) = self.as_table(&what, en.value) else { return env };
        for ee in self.doc.entries(et) {
            let k = self.key(ee);
            if k.is_empty() || k.contains(['=', '\0']) {
                self.err(
                    Diagnostic::error(Code::Name, format!("`{k}` is not a valid environment variable name"))
                        .primary(ee.key_span.range(), "names must be non-empty and contain no `=`"),
                );
                continue;
            }
            if let Some(v) = self.as_str(&what.with(k), ee.value) {
                let sp = self.doc.node(ee.value).span;
                self.check_placeholders(id, v, sp, foreach);
                env.push((k, v, sp));
            }
        }
        env
    }

    /// `stdin`, which must name one of the task's inputs.
    fn raw_stdin(&mut self, id: &str, f: &Fields, inputs: &[RawInput<'d>]) -> Option<(&'d str, Sp)> {
        let s = f.get("stdin")?;
        let name = self.as_str(&Field::new(&["tasks", id, "stdin"]), s.value)?;
        let sp = self.doc.node(s.value).span;
        if !inputs.iter().any(|i| i.name == name) {
            let mut d = Diagnostic::error(
                Code::Reference,
                format!("`stdin` of task `{id}` names input `{name}`, which the task does not have"),
            );
            d = match suggest(name, inputs.iter().map(|i| i.name)) {
                Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
                None if inputs.is_empty() => d.primary(sp.range(), "the task has no inputs"),
                None => d.primary(
                    sp.range(),
                    format!("inputs: {}", inputs.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")),
                ),
            };
            self.err(d);
        } else if inputs.iter().any(|i| i.name == name && i.list) {
            self.err(
                Diagnostic::error(
                    Code::Reference,
                    format!("`stdin` of task `{id}` names input `{name}`, which is a list: stdin takes a single blob"),
                )
                .primary(sp.range(), "name an input that is one reference without `[*]`"),
            );
        }
        Some((name, sp))
    }

    /// `stdout`: the output that captures the command's standard output.
    fn raw_stdout(&mut self, id: &str, f: &Fields) -> Option<&'d str> {
        let s = f.get("stdout")?;
        let what = Field::new(&["tasks", id, "stdout"]);
        let v = self.as_str(&what, s.value);
        if let Some(v) = v
            && let Some(m) = refs::output_name_error(v)
        {
            self.value_error(&what, s.value, &format!("is not a valid output name: {m}"));
        } else if v == Some(crate::task::abi::EXIT_CODE_OUTPUT) {
            self.value_error(
                &what,
                s.value,
                "cannot be `exit_code`: that output holds the exit status of every command task",
            );
        }
        v
    }

    /// Command keys on a task whose plugin is known to be an SDK task.
    fn reject_command_keys(&mut self, id: &str, plugin: Option<u32>, f: &Fields) {
        let Some(pid) = plugin else { return };
        let Some(Some(check)) = self.checks.get(pid as usize) else { return };
        if !matches!(check.kind, Some(crate::task::abi::PluginKind::Sdk | crate::task::abi::PluginKind::ComponentTask))
        {
            return;
        }
        for &k in COMMAND_KEYS {
            if let Some(x) = f.get(k) {
                self.err(
                    Diagnostic::error(
                        Code::Metadata,
                        format!(
                            "task `{id}` sets `{k}`, but plugin `{}` is an SDK task, not a command",
                            self.plugins[pid as usize].name
                        ),
                    )
                    .primary(x.key_span.range(), "only command plugins (WASI programs with `_start`) take this"),
                );
            }
        }
    }

    /// Whether the machine could ever run the task: the same for every
    /// expansion, so checked once per table.
    fn check_fits(&mut self, id: &str, e: &Entry, settings: &Settings) {
        let req = settings.resources.over(&self.defaults.resources).resolve(
            1000,
            crate::task::message::DEFAULT_TASK_MEMORY,
            0,
        );
        let Some((what, asked, has)) = req.first_excess(&self.capacity) else { return };
        let mut d = Diagnostic::error(
            Code::Capacity,
            format!("task `{id}` requests {what} = {asked} but the machine has {what} = {has}; it could never run"),
        )
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

    /// Placeholders in params (of a `foreach` task), non-finite floats, and
    /// param names against the plugin's metadata.
    fn check_params(&mut self, id: &str, p: NodeId, plugin: Option<u32>, foreach: Option<&[String]>) {
        if let Some(vars) = foreach {
            let mut stack = vec![p];
            while let Some(n) = stack.pop() {
                match self.doc.node(n).val {
                    Val::Str(s) => {
                        let s = self.doc.str(s);
                        let sp = self.doc.node(n).span;
                        for name in refs::unknown_placeholders(s, vars) {
                            self.unknown_placeholder(id, &name, sp, vars);
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
            let d = Diagnostic::error(
                Code::Metadata,
                format!("plugin `{pname}` does not take a param `{k}` (task `{id}`)"),
            );
            let d = match suggest(k, declared.iter().map(String::as_str)) {
                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                None if declared.is_empty() => d.primary(e.key_span.range(), "the plugin takes no params"),
                None => d.primary(e.key_span.range(), format!("declared params: {}", declared.join(", "))),
            };
            self.err(d);
        }
    }
}
