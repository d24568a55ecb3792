//! Pass 2, ids: every valid entry of `[tasks]` gets a [`Slot`] and dense
//! [`TaskId`]s in file order (a `foreach` task one per expansion), and each
//! task's plugin and stdout output are noted, so that pass 3 can resolve
//! references to any task, above or below, without a second lookup table.

use std::collections::HashMap;
use std::sync::Arc;

use super::Loader;
use super::foreach::Foreach;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, NodeId, ROOT, Val};
use crate::pipeline::refs;
use crate::plan::TaskId;

/// Most tasks a pipeline may expand to.
pub const MAX_TASKS: usize = 10_000_000;

/// What ids map to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Single(TaskId),
    /// A foreach task: index into `Loader::foreach`.
    Foreach(u32),
    /// A mapped task (`map`): the template, expanded at run time.
    Map(TaskId),
}

impl<'d> Loader<'d, '_> {
    pub(super) fn tasks_node(&mut self) -> Option<NodeId> {
        let e = self.doc.get(ROOT, "tasks")?;
        self.as_table(&"`tasks`", e.value)
    }

    /// Pass 2.
    pub(in crate::pipeline) fn assign_ids(&mut self) {
        let Some(tasks) = self.tasks_node() else {
            self.err(
                Diagnostic::error(Code::MissingKey, "the pipeline has no tasks")
                    .note("add a task with `[tasks.<id>]` and `plugin = \"...\"`"),
            );
            return;
        };
        let entries = self.doc.entries(tasks);
        if entries.is_empty() {
            self.err(
                Diagnostic::error(Code::MissingKey, "the pipeline has no tasks")
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
            let Some(id) = self.task_entry(e) else { continue };
            let (plugin, stdout) = self.peek_plugin_and_stdout(e);
            let (slot, count) = self.entry_slot(id, e, next as TaskId, &mut foreach);
            id_count += 1;
            if let Some(s) = entry_slots.get_mut(ei) {
                *s = Some(slot);
            }
            if next + count > MAX_TASKS {
                self.err(
                    Diagnostic::error(Code::Foreach, format!("the pipeline expands to more than {MAX_TASKS} tasks"))
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

    /// The id of a `[tasks]` entry, if it is valid and its value is a table.
    fn task_entry(&mut self, e: &Entry) -> Option<&'d str> {
        let id = self.key(e);
        if !refs::valid_id(id) {
            let mut d = Diagnostic::error(Code::Name, format!("`{id}` is not a valid task id"))
                .primary(e.key_span.range(), "allowed: letters, digits, `_` and `-`");
            if id.contains('[') {
                d = d
                    .note("expanded ids such as `count[3]` come from `foreach`; they cannot be written as table names");
            }
            self.err(d);
            return None;
        }
        if !matches!(self.doc.node(e.value).val, Val::Table(_)) {
            self.type_error(&format_args!("task `{id}`"), e.value, "a table");
            return None;
        }
        Some(id)
    }

    /// A task's plugin id (`u32::MAX` if unknown) and stdout output, read
    /// without reporting: pass 3 reports problems with either.
    fn peek_plugin_and_stdout(&self, e: &Entry) -> (u32, Option<&'d str>) {
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
        (plugin, stdout)
    }

    /// The slot of task `id`, whose first task id is `first`, and how many
    /// tasks it expands to.
    fn entry_slot(&mut self, id: &str, e: &Entry, first: TaskId, foreach: &mut Vec<Foreach>) -> (Slot, usize) {
        if let Some(m) = self.doc.get(e.value, "map") {
            for k in ["foreach", "foreach_mode"] {
                if let Some(x) = self.doc.get(e.value, k) {
                    self.err(
                        Diagnostic::error(Code::Map, format!("task `{id}` sets both `map` and `{k}`"))
                            .primary(x.key_span.range(), "a task fans out either statically or dynamically")
                            .secondary(m.key_span.range(), "`map` is here"),
                    );
                }
            }
            return (Slot::Map(first), 1);
        }
        let Some(f) = self.doc.get(e.value, "foreach") else {
            if let Some(m) = self.doc.get(e.value, "foreach_mode") {
                self.err(
                    Diagnostic::error(Code::Foreach, format!("task `{id}` sets `foreach_mode` but has no `foreach`"))
                        .primary(m.key_span.range(), "remove it, or add a `foreach`"),
                );
            }
            return (Slot::Single(first), 1);
        };
        let slot = Slot::Foreach(foreach.len() as u32);
        match self.foreach(id, e.value, f.value) {
            Some(mut fe) => {
                fe.first = first;
                let n = fe.values.len();
                foreach.push(fe);
                (slot, n)
            }
            None => {
                // Keep the id known so references to it do not cascade.
                foreach.push(Foreach::empty(first));
                (slot, 0)
            }
        }
    }
}
