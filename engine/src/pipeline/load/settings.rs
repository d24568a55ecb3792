//! The per-task settings that `[defaults]` and task tables share (resources,
//! retries, timeout, priority, determinism, fuel, output cap), and the
//! `resources` tables of tasks, `[defaults]` and `[resources]`.

use std::time::Duration;

use super::Loader;
use super::access::{Field, Fields, suggest};
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{NodeId, Val};
use crate::pipeline::resources::{self, Partial};

/// The built-in resources, for "did you mean" on custom ones.
pub(super) const BUILTIN_RESOURCES: &[&str] = &["cpu", "memory", "gpu"];
/// Most retries a task may ask for.
pub const MAX_RETRIES: i64 = 100;
/// Largest `max_open_files` a task may ask for.
pub const MAX_OPEN_FILES_LIMIT: i64 = 1 << 20;

/// Per-task settings that `[defaults]` can also give.
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    pub(super) resources: Partial,
    pub(super) retries: Option<u32>,
    pub(super) timeout: Option<Duration>,
    pub(super) priority: Option<i32>,
    pub(super) deterministic: Option<bool>,
    pub(super) cache: Option<bool>,
    pub(super) fuel: Option<u64>,
    pub(super) max_output_bytes: Option<u64>,
    pub(super) max_open_files: Option<u32>,
}

impl Loader<'_, '_> {
    /// Read a `resources` table (of a task, `[defaults]` or `[resources]`).
    pub(super) fn resources(&mut self, t: NodeId, what: Field<'_>) -> Partial {
        let mut p = Partial::default();
        for e in self.doc.entries(t) {
            let k = self.key(e);
            let kw = what.with(k);
            let kw = &kw;
            match k {
                "cpu" => {
                    if let Some(v) = self.as_number(&kw, e.value) {
                        match resources::amount_milli(v, false) {
                            Ok(m) => p.cpu_milli = Some(m),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                "memory" => {
                    let bytes = match self.doc.node(e.value).val {
                        Val::Str(s) => match crate::units::parse_size(self.doc.str(s)) {
                            Ok(b) => Some(b),
                            Err(m) => {
                                self.err(
                                    Diagnostic::error(Code::Value, format!("{kw}: {m}"))
                                        .primary(self.span(e.value), "expected a size such as \"512MiB\" or \"2GiB\""),
                                );
                                None
                            }
                        },
                        Val::Int(i) if i >= 0 => Some(i as u64),
                        Val::Int(i) => {
                            self.value_error(&kw, e.value, &format!("must not be negative (got {i})"));
                            None
                        }
                        _ => {
                            self.type_error(&kw, e.value, "a size string such as \"512MiB\"");
                            None
                        }
                    };
                    if let Some(b) = bytes {
                        match resources::check_memory(b) {
                            Ok(b) => p.memory = Some(b),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                "gpu" => {
                    if let Some(v) = self.as_int(&kw, e.value) {
                        match resources::check_gpu(v) {
                            Ok(g) => p.gpu = Some(g),
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
                _ => {
                    if !resources::valid_resource_name(k) {
                        self.err(Diagnostic::error(Code::Name, format!("`{k}` is not a valid resource name")).primary(
                            e.key_span.range(),
                            "allowed: letters, digits, `_` and `-`, not starting with a digit",
                        ));
                        continue;
                    }
                    let v = match self.doc.node(e.value).val {
                        Val::Int(i) => Some(i as f64),
                        Val::Float(f) => Some(f),
                        _ => {
                            let found = self.doc.type_name(e.value);
                            let mut d = Diagnostic::error(
                                Code::Type,
                                format!("custom resource {kw} must be a number, found {found}"),
                            );
                            d = match suggest(k, BUILTIN_RESOURCES.iter().copied()) {
                                Some(s) => d.primary(e.key_span.range(), format!("did you mean `{s}`?")),
                                None => d.primary(self.span(e.value), "expected a number"),
                            };
                            self.err(d);
                            None
                        }
                    };
                    if let Some(v) = v {
                        match resources::amount_milli(v, true) {
                            Ok(m) => {
                                p.custom.insert(k.to_string(), m);
                            }
                            Err(m) => self.value_error(&kw, e.value, &m),
                        }
                    }
                }
            }
        }
        p
    }

    /// Read the per-task settings shared by `[defaults]` and tasks.
    pub(super) fn settings(&mut self, f: &Fields, what: Field<'_>) -> Settings {
        let mut s = Settings::default();
        let w = |k| what.with(k);
        if let Some(e) = f.get("resources")
            && let Some(r) = self.as_table(&w("resources"), e.value)
        {
            s.resources = self.resources(r, w("resources"));
        }
        if let Some(e) = f.get("retries")
            && let Some(v) = self.as_int(&w("retries"), e.value)
        {
            if !(0..=MAX_RETRIES).contains(&v) {
                self.value_error(&w("retries"), e.value, &format!("must be between 0 and {MAX_RETRIES} (got {v})"));
            } else {
                s.retries = Some(v as u32);
            }
        }
        if let Some(e) = f.get("timeout")
            && let Some(v) = self.as_str(&w("timeout"), e.value)
        {
            match crate::units::parse_duration(v) {
                Ok(d) if d.is_zero() => self.value_error(&w("timeout"), e.value, "must be greater than 0"),
                Ok(d) => s.timeout = Some(d),
                Err(m) => self.err(
                    Diagnostic::error(Code::Value, format!("{}: {m}", w("timeout")))
                        .primary(self.span(e.value), "expected a duration such as \"30s\" or \"5m\""),
                ),
            }
        }
        if let Some(e) = f.get("priority")
            && let Some(v) = self.as_int(&w("priority"), e.value)
        {
            match i32::try_from(v) {
                Ok(p) => s.priority = Some(p),
                Err(_) => self.value_error(&w("priority"), e.value, "must fit in a 32-bit signed integer"),
            }
        }
        if let Some(e) = f.get("deterministic") {
            s.deterministic = self.as_bool(&w("deterministic"), e.value);
        }
        if let Some(e) = f.get("cache") {
            s.cache = self.as_bool(&w("cache"), e.value);
        }
        if let Some(e) = f.get("fuel")
            && let Some(v) = self.as_int(&w("fuel"), e.value)
        {
            if v <= 0 {
                self.value_error(&w("fuel"), e.value, &format!("must be greater than 0 (got {v})"));
            } else {
                s.fuel = Some(v as u64);
            }
        }
        if let Some(e) = f.get("max_output_bytes") {
            let what = w("max_output_bytes");
            let bytes = match self.doc.node(e.value).val {
                Val::Str(v) => match crate::units::parse_size(self.doc.str(v)) {
                    Ok(b) => Some(b),
                    Err(m) => {
                        self.err(
                            Diagnostic::error(Code::Value, format!("{what}: {m}"))
                                .primary(self.span(e.value), "expected a size such as \"64MiB\" or \"4GiB\""),
                        );
                        None
                    }
                },
                Val::Int(i) => Some(i.max(0) as u64),
                _ => {
                    self.type_error(&what, e.value, "a size string such as \"64MiB\"");
                    None
                }
            };
            match bytes {
                Some(0) => self.value_error(&what, e.value, "must be greater than 0"),
                Some(b) => s.max_output_bytes = Some(b),
                None => {}
            }
        }
        if let Some(e) = f.get("max_open_files")
            && let Some(v) = self.as_int(&w("max_open_files"), e.value)
        {
            if !(1..=MAX_OPEN_FILES_LIMIT).contains(&v) {
                self.value_error(
                    &w("max_open_files"),
                    e.value,
                    &format!("must be between 1 and {MAX_OPEN_FILES_LIMIT} (got {v})"),
                );
            } else {
                s.max_open_files = Some(v as u32);
            }
        }
        s
    }
}
