//! Pass 0, `[vars]`: the pipeline's parameters, their typed defaults, the
//! values given from outside (`--vars FILE`, then `--set name=value`), and the
//! substitution of `{name}` in every string of the document but `[vars]`
//! itself (and in the destinations of `[outputs]`, which are keys). It runs only when the pipeline declares vars or is given some, so a
//! pipeline without vars pays nothing.
//!
//! Substitution computes edits on the read-only document ([`Loader::vars`]),
//! which the caller then applies ([`apply`]); the later passes see plain
//! strings. In `params`, a string that is exactly one `{name}` of an
//! integer, float or boolean var takes the var's type. Inside a `foreach` task, its own
//! placeholders and `{{`/`}}` are left for the expansion (and substituted
//! values have their braces doubled); elsewhere `{{` and `}}` become braces
//! and a placeholder that names no var is an error.

use super::Loader;
use super::access::suggest;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Doc, NodeId, ROOT, Sp, Val};
use crate::pipeline::refs;
use crate::pipeline::{SetValue, VarSetting};
use crate::plan::VarValue;

pub(super) const VAR_KEYS: &[&str] = &["default", "description"];

/// A declared var and its value.
#[derive(Debug, Clone)]
struct Var {
    name: String,
    value: Typed,
    description: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Typed {
    fn kind(&self) -> &'static str {
        match self {
            Typed::Str(_) => "a string",
            Typed::Int(_) => "an integer",
            Typed::Float(_) => "a float",
            Typed::Bool(_) => "a boolean",
        }
    }

    /// The value as it is substituted into a string.
    fn text(&self) -> String {
        match self {
            Typed::Str(s) => s.clone(),
            Typed::Int(i) => i.to_string(),
            Typed::Float(f) => f.to_string(),
            Typed::Bool(b) => b.to_string(),
        }
    }

    /// The value as TOML would write it (for `engine check`).
    fn toml(&self) -> String {
        match self {
            Typed::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            other => other.text(),
        }
    }

    /// `given` converted to this value's type, if it has it.
    fn convert(&self, given: &SetValue) -> Option<Typed> {
        Some(match (self, given) {
            (Typed::Str(_), SetValue::Text(s) | SetValue::Str(s)) => Typed::Str(s.clone()),
            (Typed::Int(_), SetValue::Text(s)) => Typed::Int(s.trim().parse().ok()?),
            (Typed::Int(_), SetValue::Int(i)) => Typed::Int(*i),
            (Typed::Float(_), SetValue::Text(s)) => {
                Typed::Float(s.trim().parse::<f64>().ok().filter(|f| f.is_finite())?)
            }
            (Typed::Float(_), SetValue::Float(f)) => Typed::Float(*f),
            (Typed::Float(_), SetValue::Int(i)) => Typed::Float(*i as f64),
            (Typed::Bool(_), SetValue::Text(s)) => Typed::Bool(s.trim().parse().ok()?),
            (Typed::Bool(_), SetValue::Bool(b)) => Typed::Bool(*b),
            _ => return None,
        })
    }
}

/// A change to one string node of the document.
pub(in crate::pipeline) enum Edit {
    Str(NodeId, String),
    /// Entry `.1` of table `.0` gets a new key (`[outputs]` destinations).
    Key(NodeId, usize, String),
    Scalar(NodeId, Val),
}

/// Apply the edits of [`Loader::vars`].
pub(in crate::pipeline) fn apply(doc: &mut Doc<'_>, edits: Vec<Edit>) {
    for e in edits {
        match e {
            Edit::Str(n, s) => doc.set_str(n, s),
            Edit::Key(t, i, k) => doc.set_key(t, i, k),
            Edit::Scalar(n, v) => doc.set_scalar(n, v),
        }
    }
}

/// Whether the document needs pass 0 at all.
pub(in crate::pipeline) fn wanted(doc: &Doc<'_>, given: &[VarSetting]) -> bool {
    !given.is_empty() || doc.get(ROOT, "vars").is_some()
}

impl Loader<'_, '_> {
    /// Pass 0: read `[vars]`, apply the given values, and compute the
    /// substitutions; returns the vars (for the plan) and the edits.
    pub(in crate::pipeline) fn vars(&mut self) -> (Vec<VarValue>, Vec<Edit>) {
        let mut vars = self.declared_vars();
        self.given_vars(&mut vars);
        let mut edits = Vec::new();
        for e in self.doc.entries(ROOT) {
            match self.key(e) {
                "vars" => {}
                "tasks" => {
                    for t in self.doc.entries(e.value) {
                        let mapped = self.doc.get(t.value, "map").is_some();
                        let own: Vec<&str> = if mapped {
                            crate::plan::map::MAP_VARS.to_vec()
                        } else {
                            self.doc
                                .get(t.value, "foreach")
                                .map(|f| self.doc.entries(f.value).iter().map(|v| self.key(v)).collect())
                                .unwrap_or_default()
                        };
                        for f in self.doc.get(t.value, "foreach").map(|f| self.doc.entries(f.value)).unwrap_or(&[]) {
                            let name = self.key(f);
                            if vars.iter().any(|v| v.name == name) {
                                self.err(
                                    Diagnostic::error(
                                        Code::Var,
                                        format!(
                                            "foreach variable `{name}` of task `{}` has the name of a var",
                                            self.key(t)
                                        ),
                                    )
                                    .primary(f.key_span.range(), "rename the foreach variable or the var"),
                                );
                            }
                        }
                        let foreach = (mapped || self.doc.get(t.value, "foreach").is_some()).then_some(own.as_slice());
                        for k in self.doc.entries(t.value) {
                            let typed = self.key(k) == "params";
                            self.substitute_tree(k.value, &vars, foreach, typed, &mut edits);
                        }
                    }
                }
                "outputs" => {
                    self.substitute_tree(e.value, &vars, None, false, &mut edits);
                    self.substitute_keys(e.value, &vars, &mut edits);
                }
                _ => self.substitute_tree(e.value, &vars, None, false, &mut edits),
            }
        }
        let plan_vars = vars
            .into_iter()
            .map(|v| VarValue { name: v.name, value: v.value.toml(), description: v.description })
            .collect();
        (plan_vars, edits)
    }

    /// The `[vars]` table: `name = default` or `name = { default = ..., description = "..." }`.
    fn declared_vars(&mut self) -> Vec<Var> {
        let mut vars = Vec::new();
        let Some(t) = self.doc.get(ROOT, "vars") else { return Vec::new() };
        let Some(t) = self.as_table(&"`vars`", t.value) else { return Vec::new() };
        for e in self.doc.entries(t) {
            let name = self.key(e);
            if !refs::valid_var(name) {
                self.err(
                    Diagnostic::error(Code::Name, format!("`{name}` is not a valid var name"))
                        .primary(e.key_span.range(), "use letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            let (node, description) = match self.doc.node(e.value).val {
                Val::Table(_) => {
                    let f = self.fields(e.value, VAR_KEYS, &format_args!("`vars.{name}`"));
                    let description = f
                        .get("description")
                        .and_then(|d| self.as_str(&format_args!("`vars.{name}.description`"), d.value))
                        .unwrap_or("");
                    let Some(d) = f.get("default") else {
                        self.err(
                            Diagnostic::error(Code::MissingKey, format!("var `{name}` has no `default`"))
                                .primary(self.span(e.value), "add `default = ...`; its type is the var's type"),
                        );
                        continue;
                    };
                    (d.value, description.to_string())
                }
                _ => (e.value, String::new()),
            };
            let value = match self.doc.node(node).val {
                Val::Str(s) => Typed::Str(self.doc.str(s).to_string()),
                Val::Int(i) => Typed::Int(i),
                Val::Float(f) if f.is_finite() => Typed::Float(f),
                Val::Bool(b) => Typed::Bool(b),
                _ => {
                    self.type_error(
                        &format_args!("var `{name}`"),
                        node,
                        "a string, integer, float or boolean (or a table with `default`)",
                    );
                    continue;
                }
            };
            vars.push((Var { name: name.to_string(), value, description }, node));
        }
        self.declared = vars.iter().map(|(v, n)| (v.name.clone(), *n)).collect();
        vars.into_iter().map(|(v, _)| v).collect()
    }

    /// Apply `--vars` and `--set` values, in order, to the declared vars.
    fn given_vars(&mut self, vars: &mut [Var]) {
        let given = self.opts.vars.clone();
        for g in &given {
            let Some(i) = vars.iter().position(|v| v.name == g.name) else {
                let mut d = Diagnostic::error(
                    Code::Var,
                    format!("{} sets `{}`, which the pipeline does not declare", g.from, g.name),
                );
                let table = self.doc.get(ROOT, "vars");
                d = match (suggest(&g.name, vars.iter().map(|v| v.name.as_str())), table) {
                    (Some(s), Some(t)) => d.primary(t.key_span.range(), format!("did you mean `{s}`?")),
                    (None, Some(t)) if !vars.is_empty() => d.primary(
                        t.key_span.range(),
                        format!(
                            "declared vars: {}",
                            vars.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ),
                    _ => d.note("declare it in `[vars]`, e.g. `[vars]` then `name = \"default\"`"),
                };
                self.err(d);
                continue;
            };
            let v = &mut vars[i];
            match v.value.convert(&g.value) {
                Some(t) => v.value = t,
                None => {
                    let kind = v.value.kind();
                    let shown = match &g.value {
                        SetValue::Text(s) => format!("`{s}`"),
                        SetValue::Str(_) => "a string".into(),
                        SetValue::Int(_) => "an integer".into(),
                        SetValue::Float(_) => "a float".into(),
                        SetValue::Bool(_) => "a boolean".into(),
                    };
                    let at = self.declared.iter().find(|(n, _)| *n == v.name).map(|(_, n)| self.span(*n));
                    let mut d = Diagnostic::error(
                        Code::Var,
                        format!("{} sets var `{}` to {shown}, which is not {kind}", g.from, v.name),
                    );
                    if let Some(at) = at {
                        d = d.primary(at, format!("`{}` is declared as {kind} here", v.name));
                    }
                    self.err(d);
                }
            }
        }
    }

    /// Compute the substitutions in every string under `node`. `foreach`
    /// holds the variables of the enclosing `foreach` task, if any; `typed`
    /// is set under `params`, where a whole-string placeholder takes its var's type.
    fn substitute_tree(
        &mut self,
        node: NodeId,
        vars: &[Var],
        foreach: Option<&[&str]>,
        typed: bool,
        edits: &mut Vec<Edit>,
    ) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            match self.doc.node(n).val {
                Val::Str(s) => {
                    let s = self.doc.str(s);
                    if s.contains(['{', '}']) {
                        self.substitute_str(n, s, vars, foreach, typed, edits);
                    }
                }
                Val::Table(_) => stack.extend(self.doc.entries(n).iter().rev().map(|e| e.value)),
                Val::Array(_) => stack.extend(self.doc.items(n).iter().rev().copied()),
                _ => {}
            }
        }
    }

    /// The destinations of `[outputs]`, which are keys.
    fn substitute_keys(&mut self, table: NodeId, vars: &[Var], edits: &mut Vec<Edit>) {
        for (i, e) in self.doc.entries(table).iter().enumerate() {
            let k = self.key(e);
            if k.contains(['{', '}']) {
                let out = self.substituted(k, e.key_span, vars, None);
                if out != k {
                    edits.push(Edit::Key(table, i, out));
                }
            }
        }
    }

    fn substitute_str(
        &mut self,
        n: NodeId,
        s: &str,
        vars: &[Var],
        foreach: Option<&[&str]>,
        typed: bool,
        edits: &mut Vec<Edit>,
    ) {
        let own = |name: &str| foreach.is_some_and(|f| f.contains(&name.split('.').next().unwrap_or(name)));
        let find = |name: &str| vars.iter().find(|v| v.name == name && !own(name));
        // A whole-string placeholder of a typed var takes its type.
        if typed
            && let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
            && let Some(v) = find(name)
        {
            let val = match v.value {
                Typed::Int(i) => Some(Val::Int(i)),
                Typed::Float(f) => Some(Val::Float(f)),
                Typed::Bool(b) => Some(Val::Bool(b)),
                Typed::Str(_) => None,
            };
            if let Some(val) = val {
                edits.push(Edit::Scalar(n, val));
                return;
            }
        }
        let out = self.substituted(s, self.doc.node(n).span, vars, foreach);
        if out != s {
            edits.push(Edit::Str(n, out));
        }
    }

    /// `s` (at `sp`) with the vars substituted; unknown placeholders outside
    /// a `foreach` task are reported.
    fn substituted(&mut self, s: &str, sp: Sp, vars: &[Var], foreach: Option<&[&str]>) -> String {
        let own = |name: &str| foreach.is_some_and(|f| f.contains(&name.split('.').next().unwrap_or(name)));
        let find = |name: &str| vars.iter().find(|v| v.name == name && !own(name));
        let in_foreach = foreach.is_some();
        let mut unknown = Vec::new();
        let out = refs::scan_all(s, in_foreach, |name| {
            if let Some(v) = find(name) {
                let t = v.value.text();
                return Some(if in_foreach { t.replace('{', "{{").replace('}', "}}") } else { t });
            }
            if !in_foreach {
                unknown.push(name.to_string());
            }
            None
        });
        for name in unknown {
            let d = Diagnostic::error(Code::Var, format!("unknown var `{{{name}}}`"));
            let d = match suggest(&name, vars.iter().map(|v| v.name.as_str())) {
                Some(s) => d.primary(sp.range(), format!("did you mean `{{{s}}}`?")),
                None if vars.is_empty() => d.primary(sp.range(), "the pipeline declares no vars"),
                None => d.primary(
                    sp.range(),
                    format!("declared vars: {}", vars.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")),
                ),
            };
            self.err(d.note("write `{{` and `}}` for literal braces"));
        }
        out
    }
}
