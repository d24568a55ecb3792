//! The `workdir` key of a command task: `{ from, at, size, publish }`, checked
//! into a [`Workdir`].
//!
//! `from` (optional) is `file:` and a directory or archive relative to the
//! pipeline file, checked like a mount source; `at` (default `.`) is `.` or an
//! absolute guest path, `/` included, outside the reserved `/in`, `/out` and
//! `/tmp` and not a mount's path; `size` (default 1GiB) caps the bytes of its
//! regular files; `publish` lists globs ([`crate::plan::glob`]) whose matches
//! become outputs.

use super::Loader;
use super::access::Field;
use super::command_fs::{DEFAULT_SCRATCH, RESERVED_GUEST_PATHS};
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, Val};
use crate::plan::{Mount, Workdir};

pub(super) const WORKDIR_KEYS: &[&str] = &["from", "at", "size", "publish"];

impl Loader<'_, '_> {
    /// The `workdir` of task `id` (entry `e`), given its already checked mounts.
    pub(super) fn workdir(&mut self, id: &str, e: Entry, mounts: &[Mount]) -> Option<Workdir> {
        let w = |k| Field::new(&["tasks", id, "workdir", k]);
        let t = self.as_table(&Field::new(&["tasks", id, "workdir"]), e.value)?;
        let f = self.fields(t, WORKDIR_KEYS, &format_args!("the workdir of task `{id}`"));
        let mut ok = true;
        let from = match f.get("from") {
            Some(x) => {
                let host = self.workdir_from(id, x);
                ok &= host.is_some();
                host
            }
            None => None,
        };
        let at = match f.get("at") {
            Some(x) => match self.as_str(&w("at"), x.value) {
                Some(at) => match workdir_at_problem(at, mounts) {
                    Some(p) => {
                        self.err(
                            Diagnostic::error(
                                Code::Command,
                                format!("the workdir of task `{id}` cannot be at `{at}`: {p}"),
                            )
                            .primary(self.span(x.value), "invalid guest path"),
                        );
                        None
                    }
                    None => Some(at.to_string()),
                },
                None => None,
            },
            None => Some(".".to_string()),
        };
        let size = match f.get("size") {
            Some(x) => self.workdir_size(&w("size"), x),
            None => Some(DEFAULT_SCRATCH),
        };
        let publish = match f.get("publish") {
            Some(x) => self.workdir_publish(id, x),
            None => Some(Vec::new()),
        };
        let (at, size, publish) = (at?, size?, publish?);
        ok.then_some(Workdir { from, at, size, publish })
    }

    fn workdir_from(&mut self, id: &str, x: Entry) -> Option<std::path::PathBuf> {
        let v = self.as_str(&Field::new(&["tasks", id, "workdir", "from"]), x.value)?;
        let Some(rel) = v.strip_prefix("file:").filter(|r| !r.is_empty()) else {
            self.err(
                Diagnostic::error(
                    Code::Command,
                    format!(
                        "`from` of the workdir of task `{id}` must be `file:` and a directory or archive, found `{v}`"
                    ),
                )
                .primary(self.span(x.value), "expected e.g. \"file:src/\" or \"file:project.tar.gz\""),
            );
            return None;
        };
        let host = self.base_dir.join(rel);
        if !self.confined(
            &format_args!("`from` of the workdir of task `{id}`"),
            rel,
            &host,
            self.doc.node(x.value).span,
        ) {
            return None;
        }
        let problem = super::checks::fs_source_problem(&host, rel);
        if let Some(p) = problem {
            self.err(
                Diagnostic::error(Code::Command, format!("`from` of the workdir of task `{id}`: {p}"))
                    .primary(self.span(x.value), "paths are relative to the pipeline file"),
            );
            return None;
        }
        Some(host)
    }

    fn workdir_size(&mut self, what: &Field<'_>, x: Entry) -> Option<u64> {
        let parsed = match self.doc.node(x.value).val {
            Val::Str(v) => crate::units::parse_size(self.doc.str(v)),
            Val::Int(i) => u64::try_from(i).map_err(|_| "must not be negative".to_string()),
            _ => {
                self.type_error(what, x.value, "a size such as \"2GiB\"");
                return None;
            }
        };
        match parsed {
            Ok(0) => {
                self.value_error(what, x.value, "must be more than 0 bytes");
                None
            }
            Ok(b) => Some(b),
            Err(m) => {
                self.err(
                    Diagnostic::error(Code::Command, format!("{what}: {m}"))
                        .primary(self.span(x.value), "expected a size such as \"2GiB\""),
                );
                None
            }
        }
    }

    fn workdir_publish(&mut self, id: &str, x: Entry) -> Option<Vec<String>> {
        let what = Field::new(&["tasks", id, "workdir", "publish"]);
        if !matches!(self.doc.node(x.value).val, Val::Array(_)) {
            self.type_error(&what, x.value, "an array of strings");
            return None;
        }
        let mut globs = Vec::new();
        let mut ok = true;
        for &item in self.doc.items(x.value) {
            let Some(g) = self.as_str(&format_args!("an item of {what}"), item) else {
                ok = false;
                continue;
            };
            if let Some(p) = crate::plan::glob::problem(g) {
                self.err(
                    Diagnostic::error(Code::Command, format!("publish glob `{g}` of task `{id}` {p}"))
                        .primary(self.span(item), "globs match paths inside the workdir"),
                );
                ok = false;
                continue;
            }
            globs.push(g.to_string());
        }
        ok.then_some(globs)
    }
}

/// Why `at` cannot be the guest path of a workdir, if it cannot.
fn workdir_at_problem(at: &str, mounts: &[Mount]) -> Option<String> {
    if at == "." || at == "/" {
        return None;
    }
    if !at.starts_with('/') {
        return Some("the guest path must be `.` or absolute, e.g. `/work`".into());
    }
    if at.contains('\0') || at[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("the guest path must not contain empty, `.` or `..` components or end with `/`".into());
    }
    if let Some(r) = RESERVED_GUEST_PATHS.iter().find(|r| at == **r || at.starts_with(&format!("{r}/"))) {
        return Some(format!("`{r}` is reserved (inputs, outputs and scratch)"));
    }
    if mounts.iter().any(|m| m.guest == at) {
        return Some("a mount of the task is already there".into());
    }
    None
}
