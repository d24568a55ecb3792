//! Pass 1, the top level: the keys of the file, `[pipeline]`, `[plugins]`
//! and the stock plugins tasks name directly (`std:NAME`), with the plugin
//! files checked in parallel when asked, `[defaults]` and the machine
//! capacity (`[resources]` and `--resources`).

use std::path::PathBuf;

use rayon::prelude::*;

use super::Loader;
use super::access::Field;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, NodeId, ROOT, Val};
use crate::pipeline::plugins::{self, PluginCheck};
use crate::pipeline::refs;
use crate::pipeline::resources;
use crate::plan::{DetectedDefault, PluginSpec, Resources};

pub(super) const TOP_KEYS: &[&str] = &["pipeline", "vars", "plugins", "defaults", "resources", "tasks", "outputs"];
pub(super) const PIPELINE_KEYS: &[&str] = &["name", "description"];
pub(super) const PLUGIN_KEYS: &[&str] = &["path", "sha256", "max_compile_time"];
pub(super) const DEFAULTS_KEYS: &[&str] = &[
    "resources",
    "retries",
    "timeout",
    "priority",
    "deterministic",
    "cache",
    "fuel",
    "max_output_bytes",
    "max_open_files",
    "max_compile_time",
];

/// A valid `[plugins]` entry whose file is still to be checked.
struct PluginFile<'d> {
    name: &'d str,
    rel: &'d str,
    path: PathBuf,
    path_node: NodeId,
    /// The pin (lowercase) and where it is written.
    sha: Option<(String, NodeId)>,
    /// The plugin's own `max_compile_time`.
    max_compile_time: Option<std::time::Duration>,
    /// How many diagnostics were reported before this plugin's file checks
    /// would have been, had they run in file order.
    diags_before: usize,
}

impl<'d> Loader<'d, '_> {
    /// Pass 1; returns the pipeline's name and description.
    pub(in crate::pipeline) fn top_level(&mut self) -> (String, String) {
        self.check_keys(ROOT, TOP_KEYS, &"the pipeline file");
        let (name, description) = self.pipeline_table();
        self.plugins_table();
        if let Some(e) = self.doc.get(ROOT, "defaults")
            && let Some(t) = self.as_table(&"`defaults`", e.value)
        {
            let f = self.fields(t, DEFAULTS_KEYS, &"`[defaults]`");
            self.defaults = self.settings(&f, Field::new(&["defaults"]));
            if let Some(e) = f.get("max_compile_time")
                && let Some(d) = self.compile_time(&"`defaults.max_compile_time`", e.value)
            {
                for p in self.plugins.iter_mut().filter(|p| p.max_compile_time.is_none()) {
                    p.max_compile_time = Some(d);
                }
            }
        }
        self.capacity_table();
        (name, description)
    }

    fn pipeline_table(&mut self) -> (String, String) {
        let (mut name, mut description) = (String::new(), String::new());
        let Some(e) = self.doc.get(ROOT, "pipeline") else {
            self.err(
                Diagnostic::error(Code::MissingKey, "missing `[pipeline]` table")
                    .note("every pipeline starts with `[pipeline]` and `name = \"...\"`"),
            );
            return (name, description);
        };
        let Some(t) = self.as_table(&"`pipeline`", e.value) else { return (name, description) };
        self.check_keys(t, PIPELINE_KEYS, &"`[pipeline]`");
        match self.doc.get(t, "name") {
            None => self.err(
                Diagnostic::error(Code::MissingKey, "`[pipeline]` has no `name`")
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
        (name, description)
    }

    /// Read `[plugins]`, then (when asked) check the plugin files, several at
    /// once; their diagnostics are put where a sequential pass would have
    /// reported them, so the order is file order.
    fn plugins_table(&mut self) {
        let table = self.doc.get(ROOT, "plugins").and_then(|e| self.as_table(&"`plugins`", e.value));
        let mut files = Vec::new();
        for e in table.map(|t| self.doc.entries(t)).into_iter().flatten() {
            let Some(file) = self.plugin_entry(e) else {
                self.broken_plugins.push(self.key(e));
                continue;
            };
            self.declare_plugin(&file);
            files.push(file);
        }
        self.std_task_plugins(&mut files);
        if !self.opts.check_plugins {
            self.checks = vec![None; files.len()];
            return;
        }
        let check =
            |f: &PluginFile<'_>| plugins::check_file(f.name, f.rel, &f.path, f.sha.as_ref().map(|(s, _)| s.as_str()));
        let checks: Vec<PluginCheck> =
            if files.len() > 1 { files.par_iter().map(check).collect() } else { files.iter().map(check).collect() };
        let later = self.diags.split_off(files.first().map_or(self.diags.len(), |f| f.diags_before));
        let mut later = later.into_iter();
        let mut at = files.first().map_or(0, |f| f.diags_before);
        for (file, check) in files.iter().zip(&checks) {
            self.diags.extend(later.by_ref().take(file.diags_before - at));
            at = file.diags_before;
            self.report_plugin_check(file, check);
        }
        self.diags.extend(later);
        for (p, c) in self.plugins.iter_mut().zip(&checks) {
            p.digest = c.digest;
        }
        self.checks = checks.into_iter().map(Some).collect();
    }

    /// Give `file` the next plugin id.
    fn declare_plugin(&mut self, file: &PluginFile<'d>) {
        self.plugin_ids.insert(file.name, self.plugins.len() as u32);
        self.plugins.push(PluginSpec {
            name: file.name.to_string(),
            path: file.path.clone(),
            sha256: file.sha.as_ref().map(|(s, _)| s.clone()),
            digest: None,
            max_compile_time: file.max_compile_time,
        });
    }

    /// Tasks may name a stock plugin directly (`plugin = "std:NAME"`, see
    /// [`plugins::resolve_stock`]): each distinct such name not declared in
    /// `[plugins]` becomes a plugin of that name, as if `[plugins]` had
    /// declared it, and its file is checked with the others.
    fn std_task_plugins(&mut self, files: &mut Vec<PluginFile<'d>>) {
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
                Ok(path) => {
                    let file = PluginFile {
                        name,
                        rel: name,
                        path,
                        path_node: p.value,
                        sha: None,
                        max_compile_time: None,
                        diags_before: self.diags.len(),
                    };
                    self.declare_plugin(&file);
                    files.push(file);
                }
                Err(problem) => {
                    self.report_problems(&[problem], p.value, None);
                    self.broken_plugins.push(name);
                }
            }
        }
    }

    /// Validate one `[plugins]` entry; `None` if it is invalid (reported).
    fn plugin_entry(&mut self, e: &Entry) -> Option<PluginFile<'d>> {
        let name = self.key(e);
        let what = format!("plugin `{name}`");
        if !refs::valid_id(name) {
            self.err(
                Diagnostic::error(Code::Name, format!("`{name}` is not a valid plugin name"))
                    .primary(e.key_span.range(), "allowed: letters, digits, `_` and `-`"),
            );
            return None;
        }
        let mut max_compile_time = None;
        let (path_node, sha) = match self.doc.node(e.value).val {
            Val::Str(_) => (Some(e.value), None),
            Val::Table(_) => {
                self.check_keys(e.value, PLUGIN_KEYS, &format_args!("`plugins.{name}`"));
                let path = self.doc.get(e.value, "path").map(|p| p.value);
                if path.is_none() {
                    self.err(
                        Diagnostic::error(Code::MissingKey, format!("{what} has no `path`"))
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
                if let Some(t) = self.doc.get(e.value, "max_compile_time") {
                    max_compile_time = self.compile_time(&format_args!("`plugins.{name}.max_compile_time`"), t.value);
                }
                (path, sha)
            }
            _ => {
                self.type_error(&format_args!("`plugins.{name}`"), e.value, "a path string or a table");
                (None, None)
            }
        };
        let path_node = path_node?;
        let rel = self.as_str(&format_args!("`plugins.{name}.path`"), path_node)?;
        if rel.is_empty() {
            self.value_error(&format_args!("`plugins.{name}` path"), path_node, "must not be empty");
            return None;
        }
        let path = if rel.starts_with(plugins::STD_PREFIX) {
            match plugins::resolve_stock(rel) {
                Ok(path) => path,
                Err(problem) => {
                    self.report_problems(&[problem], path_node, sha.as_ref().map(|(_, n)| *n));
                    return None;
                }
            }
        } else {
            let path = self.base_dir.join(rel);
            if !self.confined(&format_args!("plugin `{name}`"), rel, &path, self.doc.node(path_node).span) {
                return None;
            }
            path
        };
        Some(PluginFile { name, rel, path, path_node, sha, max_compile_time, diags_before: self.diags.len() })
    }

    /// A `max_compile_time` value: a duration greater than 0.
    fn compile_time(&mut self, what: &dyn std::fmt::Display, node: NodeId) -> Option<std::time::Duration> {
        let v = self.as_str(what, node)?;
        match crate::units::parse_duration(v) {
            Ok(d) if d.is_zero() => {
                self.value_error(what, node, "must be greater than 0");
                None
            }
            Ok(d) => Some(d),
            Err(m) => {
                self.err(
                    Diagnostic::error(Code::Value, format!("{what}: {m}"))
                        .primary(self.span(node), "expected a duration such as \"30s\" or \"5m\""),
                );
                None
            }
        }
    }

    fn report_plugin_check(&mut self, file: &PluginFile<'_>, check: &PluginCheck) {
        self.report_problems(&check.problems, file.path_node, file.sha.as_ref().map(|(_, n)| *n));
    }

    /// Report problems with a plugin file at its path (or sha256) in the pipeline.
    fn report_problems(&mut self, problems: &[plugins::Problem], path_node: NodeId, sha_node: Option<NodeId>) {
        for problem in problems {
            let span = match problem.at {
                plugins::At::Path => self.span(path_node),
                plugins::At::Sha => sha_node.map(|n| self.span(n)).unwrap_or(self.span(path_node)),
            };
            let mut d = Diagnostic::error(Code::Plugin, problem.message.clone()).primary(span, problem.label.clone());
            for n in &problem.notes {
                d = d.note(n.clone());
            }
            self.err(d);
        }
    }

    fn capacity_table(&mut self) {
        let mut cap = resources::detect_capacity();
        let (mut cpu_given, mut memory_given) = (false, false);
        if let Some(e) = self.doc.get(ROOT, "resources")
            && let Some(t) = self.as_table(&"`resources`", e.value)
        {
            let p = self.resources(t, Field::new(&["resources"]));
            (cpu_given, memory_given) = (p.cpu_milli.is_some(), p.memory.is_some());
            cap = p.resolve(cap.cpu_milli, cap.memory, 0);
        }
        if let Some(o) = &self.opts.capacity_override {
            match resources::parse_list(o) {
                Ok(p) => {
                    cpu_given |= p.cpu_milli.is_some();
                    memory_given |= p.memory.is_some();
                    cap = p.resolve(cap.cpu_milli, cap.memory, cap.gpu).tap_custom(&cap);
                }
                Err(e) => self.err(Diagnostic::error(Code::Capacity, format!("invalid --resources `{o}`: {e}"))),
            }
        }
        let d = crate::pipeline::cgroup::detect();
        self.capacity_detected = [("cpu", cpu_given, d.cpu_source), ("memory", memory_given, d.memory_source)]
            .into_iter()
            .filter(|(_, given, _)| !given)
            .map(|(key, _, source)| DetectedDefault { key: key.into(), source: source.into() })
            .collect();
        self.capacity = cap;
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
