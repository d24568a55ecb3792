//! Pass 3 checks that would otherwise fail at run time: a task's input names
//! against its plugin's declared inputs, the module's declared minimum
//! memory against the task's `resources.memory`, and the host files a task
//! names (`file:` inputs, mount and workdir sources) — they must exist, be
//! readable, and be regular files or directories, found without opening a
//! FIFO or a device (docs/pipeline.md, "What `engine check` checks").

use std::path::Path;

use super::Loader;
use super::access::{Fields, suggest};
use super::settings::Settings;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, Sp};
use crate::units::format_size;

/// What is wrong with a host path a pipeline names, for a message
/// `` `rel` {problem}``, and the label under it.
pub(super) struct FileProblem {
    pub(super) problem: String,
    pub(super) label: &'static str,
}

/// Why the host file `path` cannot be used, if it cannot: it does not exist,
/// is a directory when `dir_ok` is false, is a FIFO, device or socket, or
/// cannot be read. Nothing but a regular file or directory is ever opened.
pub(super) fn host_file_problem(path: &Path, dir_ok: bool) -> Option<FileProblem> {
    let fp = |problem: String, label| Some(FileProblem { problem, label });
    let md = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return fp("does not exist".into(), "no such file"),
        Err(e) => return fp(format!("cannot be read: {}", io_message(&e)), "cannot read this path"),
        Ok(md) => md,
    };
    if md.is_dir() {
        if !dir_ok {
            return fp("is a directory, not a regular file".into(), "not a regular file");
        }
        return match std::fs::read_dir(path) {
            Ok(_) => None,
            Err(e) => fp(format!("cannot be read: {}", io_message(&e)), "cannot read this directory"),
        };
    }
    if let Some(kind) = crate::task::files::special_kind(md.file_type()) {
        let what = if dir_ok { "a regular file or a directory" } else { "a regular file" };
        return fp(format!("is {kind}, not {what}"), "refused without opening it");
    }
    match crate::task::files::open_regular(path) {
        Ok(_) => None,
        Err(e) => fp(format!("cannot be read: {}", io_message(&e)), "cannot read this file"),
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

impl Loader<'_, '_> {
    /// A `file:` input: `rel` (relative to the pipeline's directory) must be a
    /// readable regular file. Checked when plugin files are checked.
    pub(super) fn check_input_file(&mut self, rel: &str, sp: Sp) {
        if !self.opts.check_plugins {
            return;
        }
        if let Some(p) = host_file_problem(&self.base_dir.join(rel), false) {
            self.err(
                Diagnostic::error(Code::InputFile, format!("input file `{rel}` {}", p.problem))
                    .primary(sp.range(), p.label)
                    .note("paths are relative to the directory of the pipeline file"),
            );
        }
    }

    /// Input names against the plugin's metadata: when the plugin declares
    /// its inputs (a non-empty list without `"*"`), every input of the task
    /// must be one of them.
    pub(super) fn check_input_names(&mut self, id: &str, plugin: Option<u32>, f: &Fields) {
        let Some(pid) = plugin else { return };
        let Some(Some(meta)) = self.checks.get(pid as usize).map(|c| c.as_ref().and_then(|c| c.meta.as_ref())) else {
            return;
        };
        if meta.inputs.is_empty() || meta.inputs.iter().any(|i| i == "*") {
            return;
        }
        let declared = meta.inputs.clone();
        let Some(ie) = f.get("inputs") else { return };
        let pname = self.plugins[pid as usize].name.clone();
        for e in self.doc.entries(ie.value) {
            let name = self.key(e);
            if declared.iter().any(|d| d == name) {
                continue;
            }
            let d = Diagnostic::error(
                Code::Metadata,
                format!("task `{id}` has input `{name}`, which plugin `{pname}` does not declare"),
            );
            let d = match suggest(name, declared.iter().map(String::as_str)) {
                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                None => d.primary(e.key_span.range(), "unknown input"),
            };
            self.err(d.note(format!("plugin `{pname}` declares inputs: {}", declared.join(", "))));
        }
    }

    /// The module's declared minimum memory must fit the task's
    /// `resources.memory` (the sandbox limit), or instantiation fails.
    pub(super) fn check_memory_fits(&mut self, id: &str, plugin: Option<u32>, e: &Entry, f: &Fields, st: &Settings) {
        let Some(pid) = plugin else { return };
        let Some(Some(min)) = self.checks.get(pid as usize).map(|c| c.as_ref().and_then(|c| c.min_memory)) else {
            return;
        };
        let memory =
            st.resources.over(&self.defaults.resources).resolve(1000, crate::task::message::DEFAULT_TASK_MEMORY, 0);
        if min <= memory.memory {
            return;
        }
        let pname = &self.plugins[pid as usize].name;
        let d = Diagnostic::error(
            Code::Capacity,
            format!(
                "task `{id}` has `resources.memory` = {}, but plugin `{pname}` declares {} of initial memory",
                format_size(memory.memory),
                format_size(min)
            ),
        );
        let at = f
            .get("resources")
            .and_then(|r| self.doc.get(r.value, "memory"))
            .map(|m| (self.span(m.value), "the task's memory limit"))
            .or_else(|| f.get("plugin").map(|p| (self.span(p.value), "this plugin's module needs more memory")))
            .unwrap_or((e.key_span.range(), "this task"));
        self.err(d.primary(at.0, at.1).note(format!(
            "raise `resources.memory` of the task (or in `[defaults]`) to at least {}",
            format_size(min)
        )));
    }
}

/// Why `host` (written `rel`) cannot be the source of a mount or a workdir,
/// if it cannot: it must be a readable directory or `.tar`, `.tar.gz` or
/// `.tgz` archive; a FIFO, device or socket is named as such, unopened.
pub(super) fn fs_source_problem(host: &Path, rel: &str) -> Option<String> {
    match std::fs::metadata(host) {
        Err(_) => Some(format!("`{rel}` does not exist")),
        Ok(md) if md.is_dir() || (md.is_file() && super::command_fs::is_archive(rel)) => {
            host_file_problem(host, true).map(|p| format!("`{rel}` {}", p.problem))
        }
        Ok(md) => match crate::task::files::special_kind(md.file_type()) {
            Some(kind) => Some(format!("`{rel}` is {kind}, not a directory or an archive")),
            None => Some(format!("`{rel}` is neither a directory nor a `.tar`, `.tar.gz` or `.tgz` archive")),
        },
    }
}
