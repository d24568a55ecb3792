//! Diagnostics: what is wrong with a pipeline file, where, and how it is shown.
//!
//! Every pass collects [`Diagnostic`]s instead of stopping at the first problem;
//! [`Diagnostics`] owns the source text so that it can render each one with
//! file:line:column and a snippet (via `codespan-reporting`), plain for files and
//! pipes, coloured for a terminal. Rendering is deterministic: diagnostics are
//! sorted by position, then by message.

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

/// One error, pointing into the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// (span, text, primary?)
    pub labels: Vec<(Range<usize>, String, bool)>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), labels: Vec::new(), notes: Vec::new() }
    }

    pub fn primary(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into(), true));
        self
    }

    pub fn secondary(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into(), false));
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }

    fn sort_key(&self) -> (usize, usize) {
        self.labels.iter().find(|l| l.2).map(|l| (l.0.start, l.0.end)).unwrap_or((0, 0))
    }
}

/// All the errors found in one pipeline file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The file name as the user gave it.
    pub file: String,
    source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: String, source: String, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.message.cmp(&b.message)));
        items.dedup();
        Diagnostics { file, source, items }
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Apply `f` to every text of every diagnostic (message, labels, notes)
    /// and to the file name, and show each control character of the source
    /// snippet (other than tab and line breaks) as `?` of the same length,
    /// so spans stay valid. The CLI uses this to keep what a plugin or a
    /// pipeline file controls from reaching a terminal raw.
    pub fn map_text(&mut self, f: impl Fn(&str) -> String) {
        for d in &mut self.items {
            d.message = f(&d.message);
            for l in &mut d.labels {
                l.1 = f(&l.1);
            }
            for n in &mut d.notes {
                *n = f(n);
            }
        }
        self.file = f(&self.file);
        let mut src = String::with_capacity(self.source.len());
        let mut chars = self.source.chars().peekable();
        while let Some(c) = chars.next() {
            let keep = match c {
                '\t' | '\n' => true,
                '\r' => chars.peek() == Some(&'\n'),
                _ => !c.is_control(),
            };
            if keep {
                src.push(c);
            } else {
                src.extend(std::iter::repeat_n('?', c.len_utf8()));
            }
        }
        self.source = src;
    }

    /// Render every diagnostic followed by a one-line summary.
    pub fn render(&self, out: &mut dyn termcolor::WriteColor) -> std::io::Result<()> {
        let file = SimpleFile::new(self.file.as_str(), self.source.as_str());
        let config = term::Config::default();
        for d in &self.items {
            let cs = CsDiagnostic::error()
                .with_message(&d.message)
                .with_labels(
                    d.labels
                        .iter()
                        .filter(|l| l.0.start <= l.0.end && l.0.end <= self.source.len())
                        .map(|(r, t, p)| {
                            if *p { Label::primary((), r.clone()) } else { Label::secondary((), r.clone()) }
                                .with_message(t)
                        })
                        .collect(),
                )
                .with_notes(d.notes.clone());
            if term::emit(out, &config, &file, &cs).is_err() {
                writeln!(out, "error: {}", d.message)?;
            }
        }
        let n = self.items.len();
        writeln!(out, "error: `{}` is invalid: {} error{}", self.file, n, if n == 1 { "" } else { "s" })
    }

    /// Render with ANSI colours (for a terminal).
    pub fn to_colored_string(&self) -> String {
        let mut buf = termcolor::Buffer::ansi();
        let _ = self.render(&mut buf);
        String::from_utf8_lossy(buf.as_slice()).into_owned()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = termcolor::NoColor::new(Vec::new());
        self.render(&mut buf).map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(buf.get_ref()))
    }
}

impl std::error::Error for Diagnostics {}
