//! `foreach` tables (part of pass 2): each variable's values (a list, or a
//! `{ range = [start, end] }`), checked to be usable in task ids, and their
//! cartesian product, first variable outermost, as the task's expansions.

use std::collections::HashMap;

use super::Loader;
use crate::pipeline::diag::Diagnostic;
use crate::pipeline::doc::{Entry, NodeId, Sp, Val};
use crate::pipeline::refs;
use crate::plan::TaskId;

/// Most tasks one `foreach` may expand to.
pub const MAX_FOREACH: usize = 1_000_000;

/// The expansions of one `foreach` task.
pub(super) struct Foreach {
    pub(super) first: TaskId,
    pub(super) vars: Vec<String>,
    /// Per expansion: the variable values, in `vars` order.
    pub(super) values: Vec<Vec<String>>,
    /// Expansion key (`3`, `eu,1`) -> offset from `first`.
    pub(super) keys: HashMap<String, u32>,
}

/// The values of one variable, and whether they were read without problems.
struct VarValues {
    values: Vec<(String, Sp)>,
    ok: bool,
    /// Skip the variable altogether (its value has the wrong shape).
    skip: bool,
}

impl Loader<'_, '_> {
    /// Parse a `foreach` table into its expansions.
    pub(super) fn foreach(&mut self, id: &str, node: NodeId) -> Option<Foreach> {
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
            let v = self.foreach_var(id, var, e);
            ok &= v.ok;
            if v.skip {
                continue;
            }
            // Reported only while everything before was valid.
            if v.values.is_empty() && ok {
                self.err(
                    Diagnostic::error(format!("foreach variable `{var}` of task `{id}` has no values"))
                        .primary(self.span(e.value), "the task would expand to nothing"),
                );
                ok = false;
            }
            vars.push(var.to_string());
            lists.push(v.values);
        }
        if !ok {
            return None;
        }
        self.expand(id, t, vars, &lists)
    }

    /// The values of foreach variable `var` (entry `e`) of task `id`.
    fn foreach_var(&mut self, id: &str, var: &str, e: &Entry) -> VarValues {
        match self.doc.node(e.value).val {
            Val::Array(_) => self.foreach_list(var, e.value),
            Val::Table(_) => {
                self.check_keys(e.value, &["range"], &format_args!("`tasks.{id}.foreach.{var}`"));
                match self.doc.get(e.value, "range") {
                    None => {
                        self.err(
                            Diagnostic::error(format!("foreach variable `{var}` of task `{id}` has no `range`"))
                                .primary(self.span(e.value), "write `{ range = [start, end] }`"),
                        );
                        VarValues { values: Vec::new(), ok: false, skip: false }
                    }
                    Some(r) => self.foreach_range(var, r.value),
                }
            }
            _ => {
                self.type_error(
                    &format_args!("foreach variable `{var}` of task `{id}`"),
                    e.value,
                    "an array or a `{ range = [start, end] }` table",
                );
                VarValues { values: Vec::new(), ok: false, skip: true }
            }
        }
    }

    /// A list of values: strings usable in task ids, or integers.
    fn foreach_list(&mut self, var: &str, list: NodeId) -> VarValues {
        let mut v = VarValues { values: Vec::new(), ok: true, skip: false };
        for &item in self.doc.items(list) {
            let sp = self.doc.node(item).span;
            match self.doc.node(item).val {
                Val::Int(i) => v.values.push((i.to_string(), sp)),
                Val::Str(s) => {
                    let s = self.doc.str(s);
                    if refs::valid_key_part(s) {
                        v.values.push((s.to_string(), sp));
                    } else {
                        self.err(
                            Diagnostic::error(format!("foreach value `{s}` cannot be part of a task id"))
                                .primary(sp.range(), "allowed: letters, digits, `_`, `-` and `.`"),
                        );
                        v.ok = false;
                    }
                }
                _ => {
                    self.type_error(
                        &format_args!("a value of foreach variable `{var}`"),
                        item,
                        "a string or an integer",
                    );
                    v.ok = false;
                }
            }
        }
        v
    }

    /// `range = [start, end]`: the integers from `start` to `end`, excluded.
    fn foreach_range(&mut self, var: &str, range: NodeId) -> VarValues {
        let bounds: Vec<Option<i64>> = self
            .doc
            .items(range)
            .iter()
            .map(|&n| match self.doc.node(n).val {
                Val::Int(i) => Some(i),
                _ => None,
            })
            .collect();
        match (matches!(self.doc.node(range).val, Val::Array(_)), bounds.as_slice()) {
            (true, [Some(a), Some(b)]) => {
                let n = (*b as i128 - *a as i128).max(0);
                if n > MAX_FOREACH as i128 {
                    self.value_error(
                        &format_args!("range of foreach variable `{var}`"),
                        range,
                        &format!("has {n} values; the limit is {MAX_FOREACH}"),
                    );
                    return VarValues { values: Vec::new(), ok: false, skip: false };
                }
                let sp = self.doc.node(range).span;
                VarValues { values: (*a..*b).map(|i| (i.to_string(), sp)).collect(), ok: true, skip: false }
            }
            _ => {
                self.err(
                    Diagnostic::error(format!("`range` of foreach variable `{var}` must be two integers"))
                        .primary(self.span(range), "expected `[start, end]` (end excluded)"),
                );
                VarValues { values: Vec::new(), ok: false, skip: true }
            }
        }
    }

    /// The cartesian product of `lists` (first variable outermost), with each
    /// expansion's key; `t` is the `foreach` table.
    fn expand(&mut self, id: &str, t: NodeId, vars: Vec<String>, lists: &[Vec<(String, Sp)>]) -> Option<Foreach> {
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
        let mut idx = vec![0usize; lists.len()];
        for n in 0..total {
            let values: Vec<String> = idx.iter().zip(lists).map(|(&i, l)| l[i].0.clone()).collect();
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
}
