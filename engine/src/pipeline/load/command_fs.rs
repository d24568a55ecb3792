//! Pass 3, the filesystem of a command task: `mounts` (guest paths, and host
//! directories or archives that must exist), `scratch`, `success_exit_codes`
//! and the `workdir` ([`super::workdir`]).

use super::Loader;
use super::access::{Field, Fields};
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::Val;
use crate::plan::{CommandFs, Mount};

/// Guest paths a mount (or a workdir) may not use (or be under).
pub(super) const RESERVED_GUEST_PATHS: &[&str] = &["/in", "/out", "/tmp"];
/// Scratch space of `scratch = true`.
pub const DEFAULT_SCRATCH: u64 = 1 << 30;

impl Loader<'_, '_> {
    /// `mounts`, `scratch`, `success_exit_codes` and `workdir` of a command task.
    pub(super) fn command_fs(&mut self, id: &str, f: &Fields) -> Option<Box<CommandFs>> {
        let mut fs = CommandFs::default();
        self.mounts(id, f, &mut fs.mounts);
        if let Some(e) = f.get("workdir") {
            fs.workdir = self.workdir(id, e, &fs.mounts);
        }
        fs.scratch = self.scratch(id, f);
        self.exit_codes(id, f, &mut fs.success_exit_codes);
        if fs.success_exit_codes == [0] {
            fs.success_exit_codes.clear();
        }
        fs.no_io_dirs = !self.io_dirs(id, f);
        (fs != CommandFs::default()).then(|| Box::new(fs))
    }

    fn mounts(&mut self, id: &str, f: &Fields, mounts: &mut Vec<Mount>) {
        let w = |k| Field::new(&["tasks", id, k]);
        let Some(m) = f.get("mounts") else { return };
        let Some(t) = self.as_table(&w("mounts"), m.value) else { return };
        for e in self.doc.entries(t) {
            let guest = self.key(e);
            if let Some(problem) = guest_path_problem(guest) {
                self.err(
                    Diagnostic::error(Code::Command, format!("mount `{guest}` of task `{id}`: {problem}"))
                        .primary(e.key_span.range(), "invalid guest path"),
                );
                continue;
            }
            let Some(v) = self.as_str(&w("mounts").with(guest), e.value) else { continue };
            let Some(rel) = v.strip_prefix("file:").filter(|r| !r.is_empty()) else {
                self.err(
                    Diagnostic::error(
                        Code::Command,
                        format!(
                            "mount `{guest}` of task `{id}` must be `file:` and a directory or archive, found `{v}`"
                        ),
                    )
                    .primary(self.span(e.value), "expected e.g. \"file:share/\" or \"file:data.tar.gz\""),
                );
                continue;
            };
            let host = self.base_dir.join(rel);
            if !self.confined(&format_args!("mount `{guest}` of task `{id}`"), rel, &host, self.doc.node(e.value).span)
            {
                continue;
            }
            let problem = super::checks::fs_source_problem(&host, rel);
            if let Some(p) = problem {
                self.err(
                    Diagnostic::error(Code::Command, format!("mount `{guest}` of task `{id}`: {p}"))
                        .primary(self.span(e.value), "paths are relative to the pipeline file"),
                );
                continue;
            }
            mounts.push(Mount { guest: guest.to_string(), host });
        }
        mounts.sort_by(|a, b| a.guest.cmp(&b.guest));
    }

    fn scratch(&mut self, id: &str, f: &Fields) -> Option<u64> {
        let e = f.get("scratch")?;
        let what = Field::new(&["tasks", id, "scratch"]);
        match self.doc.node(e.value).val {
            Val::Bool(true) => Some(DEFAULT_SCRATCH),
            Val::Bool(false) => None,
            Val::Str(v) => match crate::units::parse_size(self.doc.str(v)) {
                Ok(0) => {
                    self.value_error(&what, e.value, "must be more than 0 bytes (or `false` for no scratch)");
                    None
                }
                Ok(b) => Some(b),
                Err(m) => {
                    self.err(
                        Diagnostic::error(Code::Command, format!("{what}: {m}"))
                            .primary(self.span(e.value), "expected `true` or a size such as \"2GiB\""),
                    );
                    None
                }
            },
            _ => {
                self.type_error(&what, e.value, "`true`, `false` or a size string such as \"2GiB\"");
                None
            }
        }
    }

    /// `io_dirs` (default `true`). When `false`, every input but the `stdin`
    /// one would be unreadable, so naming one is an error.
    fn io_dirs(&mut self, id: &str, f: &Fields) -> bool {
        let Some(e) = f.get("io_dirs") else { return true };
        if self.as_bool(&Field::new(&["tasks", id, "io_dirs"]), e.value) != Some(false) {
            return true;
        }
        let stdin = f.get("stdin").and_then(|s| match self.doc.node(s.value).val {
            Val::Str(v) => Some(self.doc.str(v)),
            _ => None,
        });
        let Some(inputs) = f.get("inputs") else { return false };
        for i in self.doc.entries(inputs.value) {
            let name = self.key(i);
            if Some(name) != stdin {
                self.err(
                    Diagnostic::error(Code::Command, format!(
                        "input `{name}` of task `{id}` cannot be read: the task sets `io_dirs = false`, so it has no `/in` and only its `stdin` input reaches it"
                    ))
                    .primary(i.key_span.range(), "unreachable input")
                    .secondary(self.span(e.value), "no `/in` or `/out` because of this"),
                );
            }
        }
        false
    }

    /// `success_exit_codes`, sorted and without repeats.
    fn exit_codes(&mut self, id: &str, f: &Fields, codes: &mut Vec<i32>) {
        let Some(e) = f.get("success_exit_codes") else { return };
        let what = Field::new(&["tasks", id, "success_exit_codes"]);
        if !matches!(self.doc.node(e.value).val, Val::Array(_)) {
            self.type_error(&what, e.value, "an array of integers");
            return;
        }
        let items = self.doc.items(e.value);
        if items.is_empty() {
            self.value_error(&what, e.value, "must list at least one exit code");
        }
        for &item in items {
            if let Some(c) = self.as_int(&format_args!("an item of {what}"), item) {
                if (0..=255).contains(&c) {
                    codes.push(c as i32);
                } else {
                    self.value_error(&format_args!("exit code {c} in {what}"), item, "is not between 0 and 255");
                }
            }
        }
        codes.sort_unstable();
        codes.dedup();
    }
}

/// Why `p` cannot be a mount's guest path, if it cannot.
fn guest_path_problem(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return Some("the guest path must be absolute, e.g. `/share`".into());
    }
    if p == "/" {
        return Some("the root `/` cannot be a mount".into());
    }
    if p.contains('\0') || p[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("the guest path must not contain empty, `.` or `..` components or end with `/`".into());
    }
    if let Some(r) = RESERVED_GUEST_PATHS.iter().find(|r| p == **r || p.starts_with(&format!("{r}/"))) {
        return Some(format!("`{r}` is reserved (inputs, outputs and scratch)"));
    }
    None
}

/// Whether a mount source names an archive the runtime can unpack.
pub fn is_archive(path: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"].iter().any(|s| path.ends_with(s))
}
