//! Pass 3, tasks: every `[tasks]` entry is read once ([`Loader::raw_task`]),
//! then instantiated per expansion, with placeholders substituted, references
//! resolved and params written as JSON, into the plan's tasks in id order.
//!
//! Large pipelines are built on two threads, in chunks of entries, with the
//! same result as one.

use std::ops::Range;
use std::sync::Arc;

use super::Loader;
use super::ids::Slot;
use super::raw::RawTask;
use super::resolve::User;
use crate::pipeline::Threads;
use crate::pipeline::doc::{NodeId, Val};
use crate::pipeline::refs;
use crate::plan::{InputSpec, Source, TaskId, TaskSpec};

/// Entries of `[tasks]` per chunk when tasks are built on two threads.
const BUILD_CHUNK: usize = 8192;

impl<'d> Loader<'d, '_> {
    /// Pass 3: read every task table and instantiate its tasks, in file order.
    ///
    /// Large pipelines are cut into chunks of entries; a helper thread with a
    /// clone of this loader takes every other chunk, and this thread appends
    /// its results (tasks and diagnostics) in chunk order, so the output is the
    /// same as a sequential pass. Each task only reads the shared tables of
    /// pass 2, so chunks are independent.
    pub(in crate::pipeline) fn build_tasks(&mut self, threads: Threads) -> Vec<TaskSpec> {
        let mut out: Vec<TaskSpec> = Vec::with_capacity(self.task_count);
        let Some(tasks) = self.tasks_node() else { return out };
        let n = self.doc.entries(tasks).len();
        let parallel = threads == Threads::Auto && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1);
        if n < 2 * BUILD_CHUNK || !parallel {
            self.build_range(tasks, 0..n, &mut |t| out.push(t));
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
                    helper.build_range(tasks, r, &mut |t| part.push(t));
                    if tx.send((part, std::mem::take(&mut helper.diags))).is_err() {
                        return;
                    }
                }
            });
            for (i, r) in chunks.into_iter().enumerate() {
                if i % 2 == 0 {
                    self.build_range(tasks, r, &mut |t| out.push(t));
                    continue;
                }
                match rx.recv() {
                    Ok((mut part, diags)) => {
                        out.append(&mut part);
                        self.diags.extend(diags);
                    }
                    // No helper (it could not start, or it panicked and the
                    // scope re-raises that).
                    Err(_) => self.build_range(tasks, r, &mut |t| out.push(t)),
                }
            }
        });
        out
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
                    let raw = self.raw_task(id, e, None);
                    out(self.instantiate(id.to_string(), t, &raw, &[], &[]));
                }
                Slot::Foreach(f) => {
                    let fe = &foreach[f as usize];
                    let raw = self.raw_task(id, e, Some(&fe.vars));
                    for (k, values) in fe.values.iter().enumerate() {
                        let tid = format!("{id}[{}]", values.join(","));
                        out(self.instantiate(tid, fe.first + k as u32, &raw, &fe.vars, values));
                    }
                }
            }
        }
    }

    /// Task `me`, expansion `values` of `vars` (none for a task without
    /// `foreach`), of a task table read once.
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
}
