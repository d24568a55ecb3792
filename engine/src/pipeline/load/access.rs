//! Typed access to the document, shared by every pass: reading a table's known
//! keys (reporting unknown ones with a "did you mean"), typed values that
//! report a type error, the dotted key paths ([`Field`]) that messages name,
//! and [`suggest`].

use std::fmt::Display;

use super::Loader;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, NodeId, Val};

/// The known keys of a table, read in one pass.
pub(super) struct Fields {
    keys: &'static [&'static str],
    vals: [Option<Entry>; MAX_FIELDS],
}

/// The most keys a table kind may allow (a task's are the most).
pub(super) const MAX_FIELDS: usize = 32;

impl Fields {
    pub(super) fn get(&self, key: &str) -> Option<Entry> {
        self.keys.iter().position(|k| *k == key).and_then(|i| self.vals.get(i).copied().flatten())
    }
}

/// The candidate closest to `word` (at most 2 edits), if any.
pub(super) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
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

impl<'d> Loader<'d, '_> {
    pub(super) fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub(super) fn key(&self, e: &Entry) -> &'d str {
        self.doc.str(e.key)
    }

    pub(super) fn span(&self, id: NodeId) -> std::ops::Range<usize> {
        self.doc.node(id).span.range()
    }

    /// Report keys of `table` that are not in `allowed`.
    pub(super) fn check_keys(&mut self, table: NodeId, allowed: &'static [&'static str], what: &dyn Display) {
        self.fields(table, allowed, what);
    }

    /// Read the known keys of `table` in one pass, reporting unknown ones.
    pub(super) fn fields(&mut self, table: NodeId, allowed: &'static [&'static str], what: &dyn Display) -> Fields {
        debug_assert!(allowed.len() <= MAX_FIELDS, "{} allowed keys, more than MAX_FIELDS", allowed.len());
        let mut f = Fields { keys: allowed, vals: [None; MAX_FIELDS] };
        for e in self.doc.entries(table) {
            let k = self.key(e);
            if let Some(i) = allowed.iter().position(|a| *a == k) {
                if let Some(v) = f.vals.get_mut(i) {
                    *v = Some(*e);
                }
                continue;
            }
            let d = Diagnostic::error(Code::UnknownKey, format!("unknown key `{k}` in {what}"));
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

    pub(super) fn type_error(&mut self, what: &dyn Display, node: NodeId, expected: &str) {
        let found = self.doc.type_name(node);
        self.err(
            Diagnostic::error(Code::Type, format!("{what} must be {expected}, found {found}"))
                .primary(self.span(node), format!("expected {expected}")),
        );
    }

    pub(super) fn as_table(&mut self, what: &dyn Display, node: NodeId) -> Option<NodeId> {
        match self.doc.node(node).val {
            Val::Table(_) => Some(node),
            _ => {
                self.type_error(what, node, "a table");
                None
            }
        }
    }

    pub(super) fn as_str(&mut self, what: &dyn Display, node: NodeId) -> Option<&'d str> {
        match self.doc.node(node).val {
            Val::Str(s) => Some(self.doc.str(s)),
            _ => {
                self.type_error(what, node, "a string");
                None
            }
        }
    }

    pub(super) fn as_int(&mut self, what: &dyn Display, node: NodeId) -> Option<i64> {
        match self.doc.node(node).val {
            Val::Int(i) => Some(i),
            _ => {
                self.type_error(what, node, "an integer");
                None
            }
        }
    }

    pub(super) fn as_number(&mut self, what: &dyn Display, node: NodeId) -> Option<f64> {
        match self.doc.node(node).val {
            Val::Int(i) => Some(i as f64),
            Val::Float(f) => Some(f),
            _ => {
                self.type_error(what, node, "a number");
                None
            }
        }
    }

    pub(super) fn as_bool(&mut self, what: &dyn Display, node: NodeId) -> Option<bool> {
        match self.doc.node(node).val {
            Val::Bool(b) => Some(b),
            _ => {
                self.type_error(what, node, "a boolean");
                None
            }
        }
    }

    pub(super) fn value_error(&mut self, what: &dyn Display, node: NodeId, problem: &str) {
        self.err(Diagnostic::error(Code::Value, format!("{what} {problem}")).primary(self.span(node), "invalid value"));
    }
}

/// A dotted key path such as `tasks.split.retries`, formatted (in backticks)
/// only when a message is shown.
#[derive(Clone, Copy)]
pub(super) struct Field<'a>([&'a str; 5]);

impl<'a> Field<'a> {
    pub(super) fn new(parts: &[&'a str]) -> Self {
        let mut f = [""; 5];
        for (d, s) in f.iter_mut().zip(parts) {
            *d = s;
        }
        Field(f)
    }
    pub(super) fn with(self, part: &'a str) -> Self {
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
