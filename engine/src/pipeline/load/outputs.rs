//! Pass 4, `[outputs]`: each destination (relative to the pipeline file) and
//! the one task output copied there.

use super::Loader;
use super::resolve::User;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::ROOT;
use crate::plan::{OutputSpec, Source, TaskId};

impl Loader<'_, '_> {
    /// Pass 4.
    pub(in crate::pipeline) fn outputs(&mut self) -> Vec<OutputSpec> {
        let mut outs = Vec::new();
        let Some(e) = self.doc.get(ROOT, "outputs") else { return outs };
        let Some(t) = self.as_table(&"`outputs`", e.value) else { return outs };
        for e in self.doc.entries(t) {
            let dest = self.key(e);
            if dest.trim().is_empty() {
                self.err(
                    Diagnostic::error(Code::Value, "an output destination cannot be empty")
                        .primary(e.key_span.range(), "empty path"),
                );
                continue;
            }
            let Some(r) = self.as_str(&format_args!("`outputs.\"{dest}\"`"), e.value) else { continue };
            let mut sources = Vec::new();
            let sp = self.doc.node(e.value).span;
            self.resolve(r, sp, User::Output(dest), TaskId::MAX, &mut sources, true);
            if let Some(Source::Task { task, output }) = sources.pop() {
                let path = self.base_dir.join(dest);
                if self.confined(&format_args!("`[outputs]` destination of `{r}`"), dest, &path, e.key_span) {
                    outs.push(OutputSpec { dest: path, task, output });
                }
            }
        }
        outs
    }
}
