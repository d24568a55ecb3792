//! Diagnostics: what is wrong with a pipeline file, where, and how it is shown.
//!
//! Every pass collects [`Diagnostic`]s instead of stopping at the first problem;
//! [`Diagnostics`] owns the source text so that it can render each one with
//! file:line:column and a snippet (via `codespan-reporting`), plain for files and
//! pipes, coloured for a terminal. Rendering is deterministic: diagnostics are
//! sorted by position, then by message. Each has a [`Code`], its kind, and
//! they can be written as JSON ([`Diagnostics::to_json`], `engine check
//! --format json`).

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

/// What kind of problem a diagnostic is: the `code` of `engine check --format
/// json` (the table in docs/pipeline.md, "Diagnostics as JSON").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// The pipeline file (or a `--vars` file) cannot be read, is a directory,
    /// is too large or is not UTF-8.
    File,
    /// TOML syntax.
    Syntax,
    /// A key defined more than once.
    DuplicateKey,
    /// A key that its table does not allow.
    UnknownKey,
    /// A required table or key is missing (`[pipeline]`, `name`, a task's
    /// `plugin`, a plugin table's `path`, a var's `default`, any task at all).
    MissingKey,
    /// A value of the wrong TOML type.
    Type,
    /// A value of the right type that is not allowed (out of range, not a
    /// size or duration, empty...).
    Value,
    /// An invalid name: task id, plugin, var, foreach variable, resource,
    /// environment variable.
    Name,
    /// A plugin that is unknown, or whose file is missing, unreadable, not
    /// WebAssembly, imports what it may not, or differs from its `sha256`.
    Plugin,
    /// What the plugin's metadata does not allow: an input, output or param
    /// it does not declare, command keys on an SDK task, `map` over a plugin
    /// without `*` outputs.
    Metadata,
    /// A `file:` input that does not exist or is not a readable regular file.
    InputFile,
    /// A reference (input, `stdin`, `[outputs]`) that is invalid or names
    /// what does not exist.
    Reference,
    /// Tasks that depend on themselves or form a cycle.
    Cycle,
    /// A request the machine could never satisfy, or an invalid `--resources`.
    Capacity,
    /// `foreach` and `foreach_mode` (values, ranges, globs, zip, expansion size).
    Foreach,
    /// `map` and `max_items`.
    Map,
    /// `[vars]`, `--set` and `--vars`, and `{name}` that is neither a var nor a
    /// placeholder of the task.
    Var,
    /// Command-task settings: `mounts`, `scratch`, `workdir`, `io_dirs`.
    Command,
    /// A host path outside the directories `--confine` allows.
    Confine,
}

impl Code {
    /// Every code, in the order of the documentation's table.
    pub const ALL: [Code; 19] = [
        Code::File,
        Code::Syntax,
        Code::DuplicateKey,
        Code::UnknownKey,
        Code::MissingKey,
        Code::Type,
        Code::Value,
        Code::Name,
        Code::Plugin,
        Code::Metadata,
        Code::InputFile,
        Code::Reference,
        Code::Cycle,
        Code::Capacity,
        Code::Foreach,
        Code::Map,
        Code::Var,
        Code::Command,
        Code::Confine,
    ];

    /// The code as JSON writes it, e.g. `unknown-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::File => "file",
            Code::Syntax => "syntax",
            Code::DuplicateKey => "duplicate-key",
            Code::UnknownKey => "unknown-key",
            Code::MissingKey => "missing-key",
            Code::Type => "type",
            Code::Value => "value",
            Code::Name => "name",
            Code::Plugin => "plugin",
            Code::Metadata => "metadata",
            Code::InputFile => "input-file",
            Code::Reference => "reference",
            Code::Cycle => "cycle",
            Code::Capacity => "capacity",
            Code::Foreach => "foreach",
            Code::Map => "map",
            Code::Var => "var",
            Code::Command => "command",
            Code::Confine => "confine",
        }
    }
}

/// One error, pointing into the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// (span, text, primary?)
    pub labels: Vec<(Range<usize>, String, bool)>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { code, message: message.into(), labels: Vec::new(), notes: Vec::new() }
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

impl Diagnostics {
    /// Line and column (both from 1; the column counts characters) of byte
    /// offset `at` of the source.
    fn line_col(&self, at: usize) -> (usize, usize) {
        let mut at = at.min(self.source.len());
        while !self.source.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.source[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// Where a span starts and ends (the end is the position just after it).
    fn position(&self, span: &Range<usize>) -> Position {
        let (line, column) = self.line_col(span.start);
        let (end_line, end_column) = self.line_col(span.end);
        Position { line, column, end_line, end_column }
    }

    fn in_source(&self, span: &Range<usize>) -> bool {
        span.start <= span.end && span.end <= self.source.len()
    }

    /// One diagnostic as JSON (docs/pipeline.md, "Diagnostics as JSON").
    fn item_json<'a>(&'a self, d: &'a Diagnostic) -> JsonDiagnostic<'a> {
        let primary = d.labels.iter().find(|l| l.2 && self.in_source(&l.0));
        let at = primary.map(|l| self.position(&l.0));
        JsonDiagnostic {
            file: &self.file,
            line: at.as_ref().map(|p| p.line),
            column: at.as_ref().map(|p| p.column),
            end_line: at.as_ref().map(|p| p.end_line),
            end_column: at.as_ref().map(|p| p.end_column),
            code: d.code.as_str(),
            message: &d.message,
            help: primary.map(|l| l.1.as_str()).filter(|t| !t.is_empty()),
            notes: &d.notes,
            related: d
                .labels
                .iter()
                .filter(|l| !l.2 && self.in_source(&l.0))
                .map(|l| JsonRelated { at: self.position(&l.0), message: &l.1 })
                .collect(),
        }
    }

    /// Every diagnostic as JSON, in the order they are rendered.
    pub fn to_json(&self) -> Vec<JsonDiagnostic<'_>> {
        self.items.iter().map(|d| self.item_json(d)).collect()
    }
}

/// A diagnostic as `engine check --format json` writes it.
#[derive(Debug, serde::Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    /// From 1; `None` when the diagnostic points at no place in the file.
    pub line: Option<usize>,
    /// From 1, in characters.
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub code: &'static str,
    pub message: &'a str,
    /// The text under the caret, when there is one.
    pub help: Option<&'a str>,
    pub notes: &'a [String],
    /// Other places the diagnostic points at.
    pub related: Vec<JsonRelated<'a>>,
}

/// A secondary place of a [`JsonDiagnostic`].
#[derive(Debug, serde::Serialize)]
pub struct JsonRelated<'a> {
    #[serde(flatten)]
    pub at: Position,
    pub message: &'a str,
}

/// A span's start and end, from 1 (the end is the position just after it).
#[derive(Debug, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = termcolor::NoColor::new(Vec::new());
        self.render(&mut buf).map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(buf.get_ref()))
    }
}

impl std::error::Error for Diagnostics {}
