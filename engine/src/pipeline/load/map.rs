//! Pass 3, dynamic fan-out: a task's `map` (`TASK.*`, `TASK.lines` or
//! `TASK.OUTPUT.lines`) and `max_items`, checked for everything that can be
//! known before the run: the producer exists, is a single task, and declares
//! `*` outputs (or the output whose lines are mapped); lines need a
//! `max_items`; `{item}` is an input only when mapping over outputs.

use super::Loader;
use super::access::{Field, Fields, suggest};
use super::ids::{MAX_TASKS, Slot};
use super::raw::RawInput;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, Sp};
use crate::plan::{DEFAULT_OUTPUT, MapSpec, TaskId};

/// The input reference that names a mapped task's item.
pub(super) const ITEM_REF: &str = "{item}";

impl<'d> Loader<'d, '_> {
    /// `map` and `max_items` of task `id` (number `me`); `None` without
    /// `map`, or when it is invalid (reported).
    pub(super) fn raw_map(&mut self, id: &str, me: TaskId, f: &Fields, inputs: &[RawInput<'d>]) -> Option<MapSpec> {
        let max_items = self.max_items(id, f);
        let Some(m) = f.get("map") else {
            if let Some(x) = f.get("max_items") {
                self.err(
                    Diagnostic::error(Code::Map, format!("task `{id}` sets `max_items` without `map`"))
                        .primary(x.key_span.range(), "`max_items` bounds a dynamic fan-out"),
                );
            }
            return None;
        };
        let text = self.as_str(&Field::new(&["tasks", id, "map"]), m.value)?;
        let sp = self.doc.node(m.value).span;
        let Some((task, lines)) = parse_map(text) else {
            self.err(
                Diagnostic::error(
                    Code::Map,
                    format!(
                        "`map` of task `{id}` must be `TASK.*`, `TASK.lines` or `TASK.OUTPUT.lines`, found `{text}`"
                    ),
                )
                .primary(sp.range(), "one task per output (`.*`) or per line (`.lines`)"),
            );
            return None;
        };
        let producer = self.producer(id, me, task, sp)?;
        match lines {
            None => self.check_star_outputs(id, producer, text, sp),
            Some(o) => {
                self.check_output(producer, o, text, sp);
                if max_items.is_none() && f.get("max_items").is_none() {
                    self.err(
                        Diagnostic::error(
                            Code::Map,
                            format!("task `{id}` maps over the lines of `{text}` but sets no `max_items`"),
                        )
                        .primary(sp.range(), "add `max_items = N`, the most lines it may expand to"),
                    );
                }
                for i in inputs {
                    if let Some(&(_, isp)) = i.refs.iter().find(|(r, _)| *r == ITEM_REF) {
                        self.err(
                            Diagnostic::error(
                                Code::Map,
                                format!(
                                    "input `{}` of task `{id}` is `{ITEM_REF}`, but the task maps over lines",
                                    i.name
                                ),
                            )
                            .primary(isp.range(), "a line is text: use `{item}` in `params`, `args` or `env`"),
                        );
                    }
                }
            }
        }
        Some(MapSpec { task: producer, lines: lines.map(str::to_string), max_items })
    }

    fn max_items(&mut self, id: &str, f: &Fields) -> Option<u32> {
        let e: Entry = f.get("max_items")?;
        let v = self.as_int(&Field::new(&["tasks", id, "max_items"]), e.value)?;
        if !(1..=MAX_TASKS as i64).contains(&v) {
            self.value_error(
                &Field::new(&["tasks", id, "max_items"]),
                e.value,
                &format!("must be between 1 and {MAX_TASKS} (got {v})"),
            );
            return None;
        }
        Some(v as u32)
    }

    /// The task that `map` names: a single task other than `id` itself.
    fn producer(&mut self, id: &str, me: TaskId, task: &str, sp: Sp) -> Option<TaskId> {
        let Some(slot) = self.slot(task) else {
            let d = Diagnostic::error(Code::Map, format!("task `{id}` maps over unknown task `{task}`"));
            let sug = if self.id_count <= 10_000 { suggest(task, self.known_ids()) } else { None };
            self.err(match sug {
                Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
                None => d.primary(sp.range(), "no task has this id"),
            });
            return None;
        };
        let why = match slot {
            Slot::Single(t) | Slot::Map(t) if t == me => "a task cannot map over its own outputs",
            Slot::Single(t) => return Some(t),
            Slot::Foreach(_) => "it is a foreach task: map over a single task",
            Slot::Map(_) => "it is itself a mapped task: map over a single task",
        };
        self.err(
            Diagnostic::error(Code::Map, format!("task `{id}` cannot map over `{task}`")).primary(sp.range(), why),
        );
        None
    }

    /// With plugin metadata, a producer mapped over by `.*` must declare `*`
    /// outputs (outputs named at run time).
    fn check_star_outputs(&mut self, id: &str, producer: TaskId, text: &str, sp: Sp) {
        let Some(&pid) = self.task_plugin.get(producer as usize) else { return };
        let Some(Some(check)) = self.checks.get(pid as usize) else { return };
        let Some(meta) = &check.meta else { return };
        if meta.outputs.iter().any(|o| o == "*") {
            return;
        }
        let pname = &self.plugins[pid as usize].name;
        let d = Diagnostic::error(
            Code::Metadata,
            format!("task `{id}` maps over `{text}`, but plugin `{pname}` does not declare `*` outputs"),
        );
        let d = if meta.outputs.is_empty() {
            d.primary(sp.range(), "the plugin declares no outputs")
        } else {
            d.primary(sp.range(), format!("its outputs are fixed: {}", meta.outputs.join(", ")))
        };
        self.err(d.note("`.*` needs a producer whose outputs are named at run time (`\"*\"` in its metadata)"));
    }
}

/// `TASK.*` → (`TASK`, None); `TASK.lines` → (`TASK`, `out`);
/// `TASK.OUTPUT.lines` → (`TASK`, `OUTPUT`).
fn parse_map(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(task) = s.strip_suffix(".*") {
        return crate::pipeline::refs::valid_id(task).then_some((task, None));
    }
    let rest = s.strip_suffix(".lines")?;
    let (task, output) = rest.split_once('.').unwrap_or((rest, DEFAULT_OUTPUT));
    (crate::pipeline::refs::valid_id(task) && crate::pipeline::refs::output_name_error(output).is_none())
        .then_some((task, Some(output)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_forms() {
        use super::parse_map;
        assert_eq!(parse_map("split.*"), Some(("split", None)));
        assert_eq!(parse_map("split.lines"), Some(("split", Some("out"))));
        assert_eq!(parse_map("split.names.txt.lines"), Some(("split", Some("names.txt"))));
        assert_eq!(parse_map("split"), None);
        assert_eq!(parse_map("split[*].*"), None);
        assert_eq!(parse_map(".*"), None);
    }
}
