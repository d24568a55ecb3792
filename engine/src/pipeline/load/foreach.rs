//! `foreach` tables (part of pass 2): each variable's values (a list, a
//! `{ range = [start, end] }` or a `{ glob = "data/*.csv" }` of files),
//! checked to be usable in task ids, and their cartesian product, first
//! variable outermost (or, with `foreach_mode = "zip"`, the n-th value of
//! every variable), as the task's expansions.
//!
//! A glob variable `f` binds three placeholders: `{f}` (the path as the glob
//! wrote it, e.g. `data/jan.csv.gz`), `{f.name}` (`jan.csv.gz`) and `{f.stem}`
//! (the name up to its first `.`, `jan`); its part of the task id is the stem
//! with every character other than letters, digits, `_`, `-` and `.` replaced
//! by `_`.

use std::borrow::Cow;
use std::collections::HashMap;

use super::Loader;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::{Entry, NodeId, Sp, Val};
use crate::pipeline::refs;
use crate::plan::TaskId;

/// The keys of a foreach variable written as a table.
pub(super) const FOREACH_VAR_KEYS: &[&str] = &["range", "glob", "allow_empty"];

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
    /// Per expansion, its key, when it is not `values` joined with `,`
    /// (a glob variable binds more than its key).
    pub(super) ids: Option<Vec<String>>,
}

impl Foreach {
    /// The key of expansion `k` (what goes between the brackets of its id).
    pub(super) fn key(&self, k: usize) -> Cow<'_, str> {
        match &self.ids {
            Some(ids) => Cow::Borrowed(ids.get(k).map(String::as_str).unwrap_or("")),
            None => Cow::Owned(self.values.get(k).map(|v| v.join(",")).unwrap_or_default()),
        }
    }

    /// An empty expansion (of an invalid `foreach`).
    pub(super) fn empty(first: TaskId) -> Foreach {
        Foreach { first, vars: vec![], values: vec![], keys: HashMap::new(), ids: None }
    }
}

/// One value of a variable: its part of the task id, and for a file of a
/// glob, the path, name and stem it binds.
#[derive(Clone)]
struct Item {
    key: String,
    file: Option<Box<[String; 3]>>,
    sp: Sp,
}

impl Item {
    fn plain(key: String, sp: Sp) -> Item {
        Item { key, file: None, sp }
    }
}

/// The values of one variable, and whether they were read without problems.
struct VarValues {
    values: Vec<Item>,
    ok: bool,
    /// Skip the variable altogether (its value has the wrong shape).
    skip: bool,
    /// No values is fine (a glob with `allow_empty = true`).
    may_be_empty: bool,
}
// A glob variable is one whose `may_be_empty` is set: only globs set it.

impl VarValues {
    fn failed(skip: bool) -> VarValues {
        VarValues { values: Vec::new(), ok: false, skip, may_be_empty: false }
    }
}

impl Loader<'_, '_> {
    /// Parse the `foreach` table `node` of task table `task` into its expansions.
    pub(super) fn foreach(&mut self, id: &str, task: NodeId, node: NodeId) -> Option<Foreach> {
        let zip = self.foreach_mode(id, task)?;
        let t = self.as_table(&format_args!("`tasks.{id}.foreach`"), node)?;
        let entries = self.doc.entries(t);
        if entries.is_empty() {
            self.err(
                Diagnostic::error(Code::Foreach, format!("`foreach` of task `{id}` defines no variables"))
                    .primary(self.span(t), "add a variable, e.g. `i = [1, 2, 3]`"),
            );
            return None;
        }
        let mut vars = Vec::new();
        let mut lists: Vec<Vec<Item>> = Vec::new();
        let mut ok = true;
        for e in entries {
            let var = self.key(e);
            if !refs::valid_var(var) {
                self.err(
                    Diagnostic::error(Code::Name, format!("`{var}` is not a valid foreach variable name"))
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
            if v.values.is_empty() && ok && !v.may_be_empty {
                self.err(
                    Diagnostic::error(Code::Foreach, format!("foreach variable `{var}` of task `{id}` has no values"))
                        .primary(self.span(e.value), "the task would expand to nothing"),
                );
                ok = false;
            }
            vars.push((var.to_string(), v.may_be_empty));
            lists.push(v.values);
        }
        if !ok {
            return None;
        }
        if zip {
            return self.zip(id, t, vars, &lists);
        }
        self.expand(id, t, vars, &lists)
    }

    /// `foreach_mode`: `Some(true)` for `"zip"`, `Some(false)` for
    /// `"product"` (the default), `None` if invalid (reported).
    fn foreach_mode(&mut self, id: &str, task: NodeId) -> Option<bool> {
        let Some(m) = self.doc.get(task, "foreach_mode") else { return Some(false) };
        match self.as_str(&format_args!("`tasks.{id}.foreach_mode`"), m.value)? {
            "product" => Some(false),
            "zip" => Some(true),
            other => {
                self.err(
                    Diagnostic::error(Code::Foreach, format!("unknown `foreach_mode` `{other}` in task `{id}`"))
                        .primary(self.span(m.value), "expected `product` or `zip`"),
                );
                None
            }
        }
    }

    /// The values of foreach variable `var` (entry `e`) of task `id`.
    fn foreach_var(&mut self, id: &str, var: &str, e: &Entry) -> VarValues {
        match self.doc.node(e.value).val {
            Val::Array(_) => self.foreach_list(var, e.value),
            Val::Table(_) => {
                let what = format!("`tasks.{id}.foreach.{var}`");
                self.check_keys(e.value, FOREACH_VAR_KEYS, &what);
                match (self.doc.get(e.value, "range"), self.doc.get(e.value, "glob")) {
                    (None, None) => {
                        self.err(
                            Diagnostic::error(
                                Code::Foreach,
                                format!("foreach variable `{var}` of task `{id}` has no `range` or `glob`"),
                            )
                            .primary(
                                self.span(e.value),
                                "write `{ range = [start, end] }` or `{ glob = \"data/*.csv\" }`",
                            ),
                        );
                        VarValues::failed(false)
                    }
                    (Some(r), None) => self.foreach_range(var, r.value),
                    (_, Some(g)) => {
                        let allow_empty = match self.doc.get(e.value, "allow_empty") {
                            Some(a) => self.as_bool(&format_args!("`tasks.{id}.foreach.{var}.allow_empty`"), a.value),
                            None => Some(false),
                        };
                        match allow_empty {
                            Some(allow_empty) => self.foreach_glob(id, var, g.value, allow_empty),
                            None => VarValues::failed(true),
                        }
                    }
                }
            }
            _ => {
                self.type_error(
                    &format_args!("foreach variable `{var}` of task `{id}`"),
                    e.value,
                    "an array, a `{ range = [start, end] }` or a `{ glob = \"...\" }` table",
                );
                VarValues::failed(true)
            }
        }
    }

    /// A list of values: strings usable in task ids, or integers.
    fn foreach_list(&mut self, var: &str, list: NodeId) -> VarValues {
        let mut v = VarValues { values: Vec::new(), ok: true, skip: false, may_be_empty: false };
        for &item in self.doc.items(list) {
            let sp = self.doc.node(item).span;
            match self.doc.node(item).val {
                Val::Int(i) => v.values.push(Item::plain(i.to_string(), sp)),
                Val::Str(s) => {
                    let s = self.doc.str(s);
                    if refs::valid_key_part(s) {
                        v.values.push(Item::plain(s.to_string(), sp));
                    } else {
                        self.err(
                            Diagnostic::error(
                                Code::Foreach,
                                format!("foreach value `{s}` cannot be part of a task id"),
                            )
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
                    return VarValues::failed(false);
                }
                let sp = self.doc.node(range).span;
                VarValues {
                    values: (*a..*b).map(|i| Item::plain(i.to_string(), sp)).collect(),
                    ok: true,
                    skip: false,
                    may_be_empty: false,
                }
            }
            _ => {
                self.err(
                    Diagnostic::error(
                        Code::Foreach,
                        format!("`range` of foreach variable `{var}` must be two integers"),
                    )
                    .primary(self.span(range), "expected `[start, end]` (end excluded)"),
                );
                VarValues::failed(true)
            }
        }
    }

    /// `glob = "..."`: the files that match, sorted by path.
    fn foreach_glob(&mut self, id: &str, var: &str, g: NodeId, allow_empty: bool) -> VarValues {
        let what = format!("`tasks.{id}.foreach.{var}.glob`");
        let Some(pattern) = self.as_str(&what, g) else { return VarValues::failed(true) };
        let sp = self.doc.node(g).span;
        // Under --confine, the directory the glob lists must be an allowed one.
        let literal: Vec<&str> = pattern.split('/').take_while(|c| !c.contains(['*', '?'])).collect();
        let literal = literal.join("/");
        let dir = self.base_dir.join(if literal.is_empty() && pattern.starts_with('/') { "/" } else { &literal });
        if !self.confined(&format_args!("glob of foreach variable `{var}` of task `{id}`"), pattern, &dir, sp) {
            return VarValues::failed(false);
        }
        let files = match glob_files(&self.base_dir, pattern) {
            Ok(f) => f,
            Err(problem) => {
                self.value_error(&what, g, &format!("is not a valid glob: {problem}"));
                return VarValues::failed(false);
            }
        };
        if files.is_empty() && !allow_empty {
            self.err(
                Diagnostic::error(Code::Foreach, format!("glob `{pattern}` of foreach variable `{var}` of task `{id}` matches no files"))
                    .primary(sp.range(), "no file matches")
                    .note("the glob is relative to the pipeline file's directory; add `allow_empty = true` if no files is fine"),
            );
            return VarValues::failed(false);
        }
        let values = files
            .into_iter()
            .map(|path| {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                let stem = match name.find('.') {
                    Some(0) | None => name.clone(),
                    Some(i) => name[..i].to_string(),
                };
                let key = stem
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
                    .collect();
                Item { key, file: Some(Box::new([path, name, stem])), sp }
            })
            .collect();
        VarValues { values, ok: true, skip: false, may_be_empty: true }
    }

    /// The cartesian product of `lists` (first variable outermost), with each
    /// expansion's key; `t` is the `foreach` table.
    fn expand(&mut self, id: &str, t: NodeId, vars: Vec<(String, bool)>, lists: &[Vec<Item>]) -> Option<Foreach> {
        let total = lists.iter().try_fold(1usize, |acc, l| acc.checked_mul(l.len()));
        if total.is_none_or(|t| t > MAX_FOREACH) {
            self.err(
                Diagnostic::error(Code::Foreach, format!("`foreach` of task `{id}` expands to too many tasks"))
                    .primary(self.span(t), format!("the limit is {MAX_FOREACH} tasks per foreach")),
            );
            return None;
        }
        let total = total.unwrap_or(0);
        let mut fe = Expansion::new(id, vars, lists, total);
        let mut idx = vec![0usize; lists.len()];
        for _ in 0..total {
            if !fe.push(self, &idx) {
                return None;
            }
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < lists[d].len() {
                    break;
                }
                idx[d] = 0;
            }
        }
        Some(fe.done())
    }

    /// `foreach_mode = "zip"`: the n-th value of every variable; all must
    /// have as many values.
    fn zip(&mut self, id: &str, t: NodeId, vars: Vec<(String, bool)>, lists: &[Vec<Item>]) -> Option<Foreach> {
        let total = lists.first().map_or(0, Vec::len);
        if let Some(((var, _), l)) = vars.iter().zip(lists).find(|(_, l)| l.len() != total) {
            let first = vars.first().map(|(v, _)| v.as_str()).unwrap_or("");
            self.err(
                Diagnostic::error(Code::Foreach, format!(
                    "`foreach_mode = \"zip\"` needs variables with as many values, but `{first}` has {total} and `{var}` has {}",
                    l.len()
                ))
                .primary(self.span(t), format!("task `{id}` zips these variables")),
            );
            return None;
        }
        let mut fe = Expansion::new(id, vars, lists, total);
        for n in 0..total {
            if !fe.push(self, &vec![n; lists.len()]) {
                return None;
            }
        }
        Some(fe.done())
    }
}

/// A [`Foreach`] being built, one expansion at a time.
struct Expansion<'a> {
    id: &'a str,
    lists: &'a [Vec<Item>],
    fe: Foreach,
    /// Whether a glob variable makes keys differ from the values.
    files: bool,
}

impl<'a> Expansion<'a> {
    fn new(id: &'a str, vars: Vec<(String, bool)>, lists: &'a [Vec<Item>], total: usize) -> Self {
        let files = vars.iter().any(|(_, glob)| *glob);
        // A glob variable `f` also binds `f.name` and `f.stem`.
        let mut names = Vec::with_capacity(vars.len());
        for (v, glob) in vars {
            names.push(v.clone());
            if glob {
                names.push(format!("{v}.name"));
                names.push(format!("{v}.stem"));
            }
        }
        let fe = Foreach {
            first: 0,
            vars: names,
            values: Vec::with_capacity(total),
            keys: HashMap::with_capacity(total),
            ids: files.then(|| Vec::with_capacity(total)),
        };
        Expansion { id, lists, fe, files }
    }

    /// Add the expansion that takes value `idx[d]` of variable `d`; false
    /// if its key repeats an earlier one (reported).
    fn push(&mut self, cx: &mut Loader<'_, '_>, idx: &[usize]) -> bool {
        let items: Vec<&Item> = idx.iter().zip(self.lists).map(|(&i, l)| &l[i]).collect();
        let key =
            if self.files { items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>().join(",") } else { String::new() };
        let mut values = Vec::with_capacity(self.fe.vars.len());
        for it in &items {
            match &it.file {
                Some(f) => values.extend(f.iter().cloned()), // path, name, stem
                None => values.push(it.key.clone()),
            }
        }
        let key = if self.files { key } else { values.join(",") };
        let n = self.fe.values.len();
        if self.fe.keys.insert(key.clone(), n as u32).is_some() {
            // Report at the last variable's repeated value.
            let sp = items.last().map(|i| i.sp).unwrap_or_default();
            let id = self.id;
            cx.err(
                Diagnostic::error(
                    Code::Foreach,
                    format!("task id `{id}[{key}]` is produced more than once by `foreach`"),
                )
                .primary(sp.range(), "this value repeats an earlier one"),
            );
            return false;
        }
        if let Some(ids) = &mut self.fe.ids {
            ids.push(key);
        }
        self.fe.values.push(values);
        true
    }

    fn done(self) -> Foreach {
        self.fe
    }
}

/// The regular files that `pattern` matches, as paths written like it
/// (`data/jan.csv`), sorted. The leading components without `*` or `?` name a
/// directory (relative to `base`, or absolute); the rest is a glob of
/// [`crate::plan::glob`].
fn glob_files(base: &std::path::Path, pattern: &str) -> Result<Vec<String>, &'static str> {
    let comps: Vec<&str> = pattern.split('/').collect();
    let literal = comps.iter().take_while(|c| !c.contains(['*', '?'])).count();
    if literal == comps.len() {
        return Err("it has no `*` or `?`; name the file in a list instead");
    }
    let prefix = comps[..literal].join("/");
    let rest = comps[literal..].join("/");
    if let Some(p) = crate::plan::glob::problem(&rest) {
        return Err(p);
    }
    let dir = base.join(if prefix.is_empty() && pattern.starts_with('/') { "/" } else { &prefix });
    let deep = rest.split('/').any(|c| c == "**");
    let depth = if deep { 64 } else { comps.len() - literal };
    let mut found = Vec::new();
    let mut stack = vec![(dir, String::new(), 0usize)];
    while let Some((d, rel, level)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let Ok(meta) = std::fs::metadata(e.path()) else { continue };
            if meta.is_dir() && level + 1 < depth {
                stack.push((e.path(), r, level + 1));
            } else if meta.is_file() && crate::plan::glob::matches(&rest, &r) {
                // `literal > 0` with an empty prefix is the root (`/*.csv`).
                found.push(if literal == 0 { r } else { format!("{prefix}/{r}") });
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::glob_files;

    #[test]
    fn globs_match_relative_absolute_and_deep_paths_in_order() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        for f in ["a/x.csv", "a/y.txt", "a/b/z.csv", "a/b/c/w.csv", "top.csv"] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("a directory");
            std::fs::write(&p, "").expect("a file");
        }
        assert_eq!(glob_files(d, "a/*.csv"), Ok(vec!["a/x.csv".to_string()]));
        assert_eq!(glob_files(d, "*.csv"), Ok(vec!["top.csv".to_string()]));
        assert_eq!(
            glob_files(d, "a/**/*.csv"),
            Ok(vec!["a/b/c/w.csv".to_string(), "a/b/z.csv".to_string(), "a/x.csv".to_string()])
        );
        let abs = format!("{}/a/b/*.csv", d.display());
        assert_eq!(
            glob_files(std::path::Path::new("/elsewhere"), &abs),
            Ok(vec![format!("{}/a/b/z.csv", d.display())])
        );
        assert_eq!(glob_files(d, "a/x.csv"), Err("it has no `*` or `?`; name the file in a list instead"));
        assert_eq!(glob_files(d, "nowhere/*.csv"), Ok(vec![]));
    }
}
