//! Pass 3 (and 4), resolving one reference (`task`, `task.output`,
//! `task[key]`, `task[*]`, `file:path`) through the ids of pass 2 into
//! [`Source`]s, with "did you mean" for unknown tasks, foreach keys that are
//! not produced, self-dependencies, and outputs checked against the plugin's
//! metadata.

use super::Loader;
use super::access::suggest;
use super::ids::Slot;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::Sp;
use crate::pipeline::refs::{self, Ref};
use crate::plan::{DEFAULT_OUTPUT, Source, TaskId};

/// Who makes a reference, for messages.
#[derive(Clone, Copy)]
pub(super) enum User<'a> {
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

/// A reference being resolved, for messages.
struct Reference<'a> {
    /// As written (after placeholder substitution).
    text: &'a str,
    sp: Sp,
    user: User<'a>,
    /// For `[outputs]`, which need exactly one task output.
    single: bool,
}

impl<'d, 's> Loader<'d, 's> {
    /// Resolve one reference into `out`. `single` is set for `[outputs]`, which
    /// need exactly one task output.
    pub(super) fn resolve(&mut self, r: &str, sp: Sp, user: User<'_>, me: TaskId, out: &mut Vec<Source>, single: bool) {
        let parsed = match refs::parse_ref(r) {
            Ok(p) => p,
            Err(m) => {
                self.err(
                    Diagnostic::error(Code::Reference, format!("invalid reference `{r}`: {m}"))
                        .primary(sp.range(), "in this reference"),
                );
                return;
            }
        };
        let (task, key, output) = match parsed {
            Ref::File(p) => {
                if single {
                    self.err(
                        Diagnostic::error(Code::Reference, format!("`{r}` is a file; `[outputs]` copies task outputs"))
                            .primary(sp.range(), "expected `task` or `task.output`"),
                    );
                } else {
                    let path = self.base_dir.join(p);
                    if self.confined(&format_args!("input file of {user}"), p, &path, sp) {
                        self.check_input_file(p, sp);
                    }
                    out.push(Source::File { path });
                }
                return;
            }
            Ref::Task { task, key, output } => (task, key, output),
        };
        let output = output.unwrap_or(DEFAULT_OUTPUT);
        let Some(slot) = self.slot(task) else {
            let mut d = Diagnostic::error(Code::Reference, format!("{user} refers to unknown task `{task}`"));
            let sug = if self.id_count <= 10_000 { suggest(task, self.known_ids()) } else { None };
            d = match sug {
                Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
                None => d.primary(sp.range(), "no task has this id"),
            };
            self.err(d);
            return;
        };
        let first_out = out.len();
        let at = Reference { text: r, sp, user, single };
        if !self.slot_sources(&at, task, slot, key, output, out) {
            return;
        }
        // Self-dependency and plugin metadata, per resolved source.
        let mut i = first_out;
        while i < out.len() {
            if let Source::Task { task: t, output: o } = &out[i] {
                let t = *t;
                if t == me {
                    self.err(
                        Diagnostic::error(Code::Cycle, format!("{user} depends on itself"))
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

    /// Push the sources that `task` (with its `[key]`, if any) names in
    /// `slot`; false if there are none to check further.
    fn slot_sources(
        &mut self,
        at: &Reference<'_>,
        task: &str,
        slot: Slot,
        key: Option<&str>,
        output: &str,
        out: &mut Vec<Source>,
    ) -> bool {
        let (sp, user) = (at.sp, at.user);
        match (slot, key) {
            (Slot::Single(t), None) => out.push(Source::Task { task: t, output: output.to_string() }),
            (Slot::Single(_), Some(k)) => {
                self.err(
                    Diagnostic::error(
                        Code::Reference,
                        format!("{user} refers to `{task}[{k}]`, but task `{task}` has no `foreach`"),
                    )
                    .primary(sp.range(), format!("write `{task}` without brackets")),
                );
                return false;
            }
            (Slot::Foreach(f), None) => {
                let fe = &self.foreach[f as usize];
                if fe.values.is_empty() {
                    return false;
                }
                let example = fe.key(0).into_owned();
                self.err(
                    Diagnostic::error(Code::Reference, format!("{user} refers to `{task}`, which is a foreach task"))
                        .primary(
                            sp.range(),
                            format!("use `{task}[*]` for all its tasks or one of them such as `{task}[{example}]`"),
                        ),
                );
                return false;
            }
            (Slot::Foreach(f), Some("*")) => {
                let first_out = out.len();
                let fe = &self.foreach[f as usize];
                for i in 0..fe.values.len() {
                    out.push(Source::Task { task: fe.first + i as u32, output: output.to_string() });
                }
                if at.single {
                    let r = at.text;
                    self.err(
                        Diagnostic::error(
                            Code::Reference,
                            format!("`{r}` names several task outputs; `[outputs]` copies one"),
                        )
                        .primary(sp.range(), "expected a single task output"),
                    );
                    out.truncate(first_out);
                    return false;
                }
            }
            (Slot::Foreach(f), Some(k)) => return self.expansion_source(at, task, f, k, output, out),
            (Slot::Map(t), Some("*")) => {
                if at.single {
                    let r = at.text;
                    self.err(
                        Diagnostic::error(
                            Code::Reference,
                            format!("`{r}` names several task outputs; `[outputs]` copies one"),
                        )
                        .primary(sp.range(), "expected a single task output"),
                    );
                    return false;
                }
                out.push(Source::Task { task: t, output: output.to_string() });
            }
            (Slot::Map(_), k) => {
                let written = k.map(|k| format!("{task}[{k}]")).unwrap_or_else(|| task.to_string());
                self.err(
                    Diagnostic::error(Code::Reference, format!(
                        "{user} refers to `{written}`, but `{task}` is a mapped task whose tasks are known only at run time"
                    ))
                    .primary(sp.range(), format!("use `{task}[*]` for the outputs of all its tasks")),
                );
                return false;
            }
        }
        true
    }

    /// `task[k]` of foreach task number `f`.
    fn expansion_source(
        &mut self,
        at: &Reference<'_>,
        task: &str,
        f: u32,
        k: &str,
        output: &str,
        out: &mut Vec<Source>,
    ) -> bool {
        let fe = &self.foreach[f as usize];
        if fe.values.is_empty() {
            return false;
        }
        if let Some(&i) = fe.keys.get(k) {
            out.push(Source::Task { task: fe.first + i, output: output.to_string() });
            return true;
        }
        let first = fe.key(0).into_owned();
        let last = fe.key(fe.values.len() - 1).into_owned();
        let range = if fe.values.len() == 1 {
            format!("`{task}[{first}]`")
        } else {
            format!("`{task}[{first}]` … `{task}[{last}]`")
        };
        self.err(
            Diagnostic::error(
                Code::Reference,
                format!("{} refers to `{task}[{k}]`, which `foreach` does not produce", at.user),
            )
            .primary(at.sp.range(), format!("`{task}` expands to {range}")),
        );
        false
    }

    /// What task id `id` maps to: its entry in `[tasks]` (found with the
    /// document's index), if that entry got a slot in pass 2.
    pub(super) fn slot(&self, id: &str) -> Option<Slot> {
        let i = self.doc.position(self.tasks?, id)?;
        self.entry_slots.get(i).copied().flatten()
    }

    /// The ids that have a slot.
    pub(super) fn known_ids(&self) -> impl Iterator<Item = &'d str> + use<'_, 'd, 's> {
        let entries = self.tasks.map(|t| self.doc.entries(t)).unwrap_or(&[]);
        entries.iter().zip(self.entry_slots.iter()).filter(|(_, s)| s.is_some()).map(|(e, _)| self.key(e))
    }

    /// With plugin metadata, check that task `t` declares output `o`.
    pub(super) fn check_output(&mut self, t: TaskId, o: &str, r: &str, sp: Sp) {
        let Some(&pid) = self.task_plugin.get(t as usize) else { return };
        let Some(Some(check)) = self.checks.get(pid as usize) else { return };
        if check.kind.is_some_and(crate::task::abi::PluginKind::is_command) && o == crate::task::abi::EXIT_CODE_OUTPUT {
            return;
        }
        let Some(meta) = &check.meta else { return };
        // `*` declares outputs named at run time (e.g. `split` writes `0`..`N-1`).
        if meta.outputs.iter().any(|x| x == o || x == "*") || self.task_stdout.get(&t) == Some(&o) {
            return;
        }
        let pname = &self.plugins[pid as usize].name;
        let d = Diagnostic::error(
            Code::Metadata,
            format!("`{r}` refers to output `{o}`, which plugin `{pname}` does not declare"),
        );
        let d = match suggest(o, meta.outputs.iter().map(String::as_str)) {
            Some(s) => d.primary(sp.range(), format!("did you mean `{s}`?")),
            None if meta.outputs.is_empty() => d.primary(sp.range(), "the plugin declares no outputs"),
            None => d.primary(sp.range(), format!("declared outputs: {}", meta.outputs.join(", "))),
        };
        self.err(d);
    }
}
