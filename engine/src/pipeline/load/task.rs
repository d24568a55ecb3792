//! Pass 3, tasks: every `[tasks]` entry is read once ([`Loader::raw_task`]),
//! then instantiated per expansion, with placeholders substituted, references
//! resolved and params written as JSON, into the plan's tasks in id order.
//!
//! Large pipelines are built in parallel on rayon's threads, in chunks of
//! entries. Pass 2 numbered the tasks densely in file order, so each chunk
//! knows which slice of the task list it fills; each keeps its diagnostics,
//! and they are appended in chunk order. Each task only reads the shared
//! tables of passes 1 and 2, so chunks are independent and the plan and the
//! diagnostics are the same as a sequential pass, on any number of threads.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::Loader;
use super::ids::Slot;
use super::raw::RawTask;
use super::resolve::User;
use crate::pipeline::Threads;
use crate::pipeline::diag::Diagnostic;
use crate::pipeline::doc::{NodeId, Val};
use crate::pipeline::refs;
use crate::plan::{InputSpec, Resources, Source, TaskId, TaskSpec};

/// Entries of `[tasks]` per chunk when tasks are built in parallel.
const BUILD_CHUNK: usize = 8192;

impl<'d> Loader<'d, '_> {
    /// Pass 3: read every task table and instantiate its tasks, in file order.
    pub(in crate::pipeline) fn build_tasks(&mut self, threads: Threads) -> Vec<TaskSpec> {
        let Some(tasks) = self.tasks_node() else { return Vec::new() };
        let n = self.doc.entries(tasks).len();
        if n < 2 * BUILD_CHUNK || threads != Threads::Auto || rayon::current_num_threads() < 2 {
            let mut out = Vec::with_capacity(self.task_count);
            self.build_range(tasks, 0..n, &mut |t| out.push(t));
            return out;
        }
        self.build_parallel(tasks, n)
    }

    /// [`Loader::build_tasks`] for the `n` entries of `[tasks]`, in chunks on
    /// rayon's threads (see the module comment).
    fn build_parallel(&mut self, tasks: NodeId, n: usize) -> Vec<TaskSpec> {
        let chunks: Vec<(Range<usize>, usize)> = (0..n)
            .step_by(BUILD_CHUNK)
            .map(|s| s..(s + BUILD_CHUNK).min(n))
            .map(|r| (r.clone(), self.tasks_in(r)))
            .collect();
        let total = chunks.iter().map(|(_, count)| count).sum();
        let mut out: Vec<TaskSpec> = Vec::with_capacity(total);
        out.par_extend(rayon::iter::repeat_n(placeholder(), total));
        let mut parts = Vec::with_capacity(chunks.len());
        let mut rest: &mut [TaskSpec] = &mut out;
        for (range, count) in chunks {
            // `count` fits: `out` holds the sum of the counts.
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(count);
            parts.push((range, part));
            rest = tail;
        }
        // Workers are clones without the diagnostics so far.
        let before = std::mem::take(&mut self.diags);
        let this = &*self;
        let diags: Vec<Vec<Diagnostic>> = parts
            .into_par_iter()
            .map_init(
                || this.clone(),
                |w, (range, part)| {
                    let mut slots = part.iter_mut();
                    w.build_range(tasks, range, &mut |t| {
                        if let Some(s) = slots.next() {
                            *s = t;
                        }
                    });
                    std::mem::take(&mut w.diags)
                },
            )
            .collect();
        self.diags = before;
        self.diags.extend(diags.into_iter().flatten());
        out
    }

    /// How many tasks the entries `range` of `[tasks]` expand to.
    fn tasks_in(&self, range: Range<usize>) -> usize {
        let slots = self.entry_slots.get(range).unwrap_or(&[]);
        slots
            .iter()
            .map(|s| match s {
                None => 0,
                Some(Slot::Single(_)) | Some(Slot::Map(_)) => 1,
                Some(Slot::Foreach(f)) => self.foreach[*f as usize].values.len(),
            })
            .sum()
    }

    /// [`Loader::build_tasks`] for the entries `range` of `[tasks]`, giving
    /// each task to `out` in id order.
    fn build_range(&mut self, tasks: NodeId, range: Range<usize>, out: &mut impl FnMut(TaskSpec)) {
        let foreach = Arc::clone(&self.foreach);
        for i in range {
            let Some(&e) = self.doc.entries(tasks).get(i) else { break };
            let Some(slot) = self.entry_slots.get(i).copied().flatten() else { continue };
            let id = self.key(&e);
            match slot {
                Slot::Single(t) => {
                    let raw = self.raw_task(id, t, e, None);
                    out(self.instantiate(id.to_string(), t, &raw, &[], &[]));
                }
                Slot::Map(t) => {
                    let vars = crate::plan::map::MAP_VARS.map(str::to_string);
                    let raw = self.raw_task(id, t, e, Some(&vars));
                    out(self.instantiate(id.to_string(), t, &raw, &[], &[]));
                }
                Slot::Foreach(f) => {
                    let fe = &foreach[f as usize];
                    // An invalid `foreach` (no vars) was reported: check no placeholders.
                    let raw = self.raw_task(id, fe.first, e, (!fe.vars.is_empty()).then_some(&fe.vars[..]));
                    for (k, values) in fe.values.iter().enumerate() {
                        let tid = format!("{id}[{}]", fe.key(k));
                        out(self.instantiate(tid, fe.first + k as u32, &raw, &fe.vars, values));
                    }
                }
            }
        }
    }

    /// Task `me`, expansion `values` of `vars` (none for a task without
    /// `foreach`), of a task table read once. A mapped task keeps its text
    /// as written (placeholders and escapes), for expansion at run time.
    fn instantiate(
        &mut self,
        id: String,
        me: TaskId,
        raw: &RawTask<'d>,
        vars: &[String],
        values: &[String],
    ) -> TaskSpec {
        let mut inputs = Vec::with_capacity(raw.inputs.len());
        let mut deps = Vec::new();
        let map = raw.map.as_ref();
        let verbatim = map.is_some();
        let sub = |s: &'d str| if verbatim { s.to_string() } else { refs::substitute(s, vars, values).into_owned() };
        if let Some(m) = map {
            deps.push(m.task);
        }
        for inp in &raw.inputs {
            let mut sources = Vec::with_capacity(inp.refs.len());
            for &(r, sp) in &inp.refs {
                // A mapped task's item (when its `map` is invalid, that was reported).
                if r == super::map::ITEM_REF && (map.is_some() || self.binder == "map") {
                    if let Some(m) = map {
                        sources.push(Source::Task { task: m.task, output: crate::plan::map::ITEM_OUTPUT.to_string() });
                    }
                    continue;
                }
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
                self.write_json(p, &mut s, vars, values, verbatim);
                s
            }
            None => "{}".to_string(),
        };
        let st = &raw.settings;
        let d = &self.defaults;
        TaskSpec {
            id,
            plugin: raw.plugin.unwrap_or(0),
            inputs,
            params,
            resources: st.resources.over(&d.resources).resolve(1000, crate::task::message::DEFAULT_TASK_MEMORY, 0),
            retries: st.retries.or(d.retries).unwrap_or(0),
            timeout: st.timeout.or(d.timeout),
            priority: st.priority.or(d.priority).unwrap_or(0),
            args: raw.args.iter().map(|(a, _)| sub(a)).collect(),
            env: raw.env.iter().map(|(k, v, _)| (k.to_string(), sub(v))).collect(),
            stdin: raw.stdin.map(|(s, _)| s.to_string()),
            stdout: raw.stdout.map(str::to_string),
            deterministic: st.deterministic.or(d.deterministic).unwrap_or(false),
            cache: st.cache.or(d.cache).unwrap_or(true),
            fuel: st.fuel.or(d.fuel),
            max_output_bytes: st.max_output_bytes.or(d.max_output_bytes),
            max_open_files: st.max_open_files.or(d.max_open_files),
            fs: raw.fs.clone(),
            deps,
            map: map.map(|m| Box::new(m.clone())),
        }
    }

    /// Write a params node as JSON, substituting placeholders in strings
    /// (unless `verbatim`: a mapped task's, substituted at run time).
    fn write_json(&self, n: NodeId, out: &mut String, vars: &[String], values: &[String], verbatim: bool) {
        match self.doc.node(n).val {
            Val::Str(s) => {
                let s = self.doc.str(s);
                let s = if verbatim { s.into() } else { refs::substitute(s, vars, values) };
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
                    self.write_json(item, out, vars, values, verbatim);
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
                    self.write_json(e.value, out, vars, values, verbatim);
                }
                out.push('}');
            }
        }
    }
}

/// What fills the task list until a chunk writes its task there.
fn placeholder() -> TaskSpec {
    TaskSpec {
        id: String::new(),
        plugin: 0,
        inputs: Vec::new(),
        params: String::new(),
        resources: Resources::default(),
        retries: 0,
        timeout: None,
        priority: 0,
        args: Vec::new(),
        env: Vec::new(),
        stdin: None,
        stdout: None,
        deterministic: false,
        cache: true,
        fuel: None,
        max_output_bytes: None,
        max_open_files: None,
        fs: None,
        deps: Vec::new(),
        map: None,
    }
}
