//! Dynamic fan-out: the tasks that a mapped task (`map = "split.*"` or
//! `map = "split.lines"`) expands into once its producer has succeeded.
//!
//! The template ([`TaskSpec`] with a [`super::MapSpec`]) keeps its `{key}`
//! and `{item}` placeholders; [`Expander::child`] substitutes them for one
//! item. Each child is named `TEMPLATE[N]`, N counting from 0 in item order,
//! so ids stay valid whatever the items hold. Pure: no I/O.

use super::{Source, TaskSpec};

/// The placeholders a mapped task may use.
pub const MAP_VARS: [&str; 2] = ["key", "item"];

/// The output name that an input written `"{item}"` has in the template.
pub const ITEM_OUTPUT: &str = "*";

/// Makes the children of one template, with what can be prepared once.
pub struct Expander<'p> {
    template: &'p TaskSpec,
    /// Whether the params hold a brace (otherwise every child shares the
    /// template's text).
    params_braces: bool,
    vars: [String; 2],
}

impl<'p> Expander<'p> {
    pub fn new(template: &'p TaskSpec) -> Self {
        let params_braces = template.params.contains(['{', '}']);
        Expander { template, params_braces, vars: MAP_VARS.map(str::to_string) }
    }

    /// Child number `index`, for item `item` named `key` (the output name
    /// when mapping over outputs; the line number, from 0, over lines).
    pub fn child(&self, index: usize, key: &str, item: &str) -> TaskSpec {
        let t = self.template;
        let values = [key.to_string(), item.to_string()];
        let sub = |s: &str| substitute(s, &self.vars, &values);
        let producer = t.map.as_ref().map(|m| m.task);
        let inputs = t
            .inputs
            .iter()
            .map(|i| {
                let mut i = i.clone();
                for s in &mut i.sources {
                    if let Source::Task { task, output } = s
                        && Some(*task) == producer
                        && output == ITEM_OUTPUT
                    {
                        *output = item.to_string();
                    }
                }
                i
            })
            .collect();
        let params = if self.params_braces { substitute_json(&t.params, &sub) } else { t.params.clone() };
        TaskSpec {
            id: format!("{}[{index}]", t.id),
            plugin: t.plugin,
            inputs,
            params,
            resources: t.resources.clone(),
            retries: t.retries,
            timeout: t.timeout,
            priority: t.priority,
            args: t.args.iter().map(|a| sub(a.as_str())).collect(),
            env: t.env.iter().map(|(k, v)| (k.clone(), sub(v.as_str()))).collect(),
            stdin: t.stdin.clone(),
            stdout: t.stdout.clone(),
            deterministic: t.deterministic,
            cache: t.cache,
            fuel: t.fuel,
            max_output_bytes: t.max_output_bytes,
            max_open_files: t.max_open_files,
            fs: t.fs.clone(),
            deps: t.deps.clone(),
            map: None,
        }
    }
}

fn substitute(s: &str, vars: &[String], values: &[String]) -> String {
    if !s.contains(['{', '}']) {
        return s.to_string();
    }
    scan(s, vars, values)
}

/// `{name}` → its value; `{{` and `}}` → braces; anything else as written.
fn scan(s: &str, vars: &[String], values: &[String]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('{')
            && let Some(end) = inner.find('}')
            && let Some(k) = vars.iter().position(|v| *v == inner[..end])
        {
            out.push_str(&values[k]);
            rest = &inner[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `json` (an object as the loader writes it) with `sub` applied to every
/// string value that holds a brace; keys and the order of keys stay as
/// they are.
fn substitute_json(json: &str, sub: &impl Fn(&str) -> String) -> String {
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        let end = (i + 1).min(b.len());
        i = end;
        let token = &json[start..end];
        let is_key = json[end..].trim_start().starts_with(':');
        if !is_key
            && token.contains(['{', '}'])
            && let Ok(text) = serde_json::from_str::<String>(token)
            && let Ok(new) = serde_json::to_string(&sub(&text))
        {
            out.push_str(&json[last..start]);
            out.push_str(&new);
            last = end;
        }
    }
    out.push_str(&json[last..]);
    out
}

/// The lines of a text output, as items: split at `\n` (a `\r` before it is
/// dropped); a final line break does not start another line. `None` when
/// the bytes are not UTF-8.
pub fn lines(bytes: &[u8]) -> Option<Vec<&str>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Some(Vec::new());
    }
    Some(text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{InputSpec, MapSpec, Resources};

    fn template(params: &str) -> TaskSpec {
        TaskSpec {
            id: "count".into(),
            plugin: 0,
            inputs: vec![InputSpec {
                name: "in".into(),
                list: false,
                sources: vec![Source::Task { task: 0, output: ITEM_OUTPUT.into() }],
            }],
            params: params.into(),
            resources: Resources::default(),
            retries: 0,
            timeout: None,
            priority: 0,
            args: vec!["--name={key}".into(), "{{key}}".into()],
            env: vec![("ITEM".into(), "{item}".into())],
            stdin: None,
            stdout: None,
            deterministic: false,
            cache: true,
            fuel: None,
            max_output_bytes: None,
            max_open_files: None,
            fs: None,
            deps: vec![0],
            map: Some(Box::new(MapSpec { task: 0, lines: None, max_items: None })),
        }
    }

    #[test]
    fn a_child_binds_key_and_item_everywhere_but_keys() {
        let t = template(r#"{"{key}":"{item} of {key}","n":[1,"{{x}}"],"q":"a\"b"}"#);
        let c = Expander::new(&t).child(3, "part3", "say \"hi\"");
        assert_eq!(c.id, "count[3]");
        assert_eq!(c.params, r#"{"{key}":"say \"hi\" of part3","n":[1,"{x}"],"q":"a\"b"}"#);
        assert_eq!(c.args, ["--name=part3", "{key}"]);
        assert_eq!(c.env, [("ITEM".to_string(), "say \"hi\"".to_string())]);
        assert_eq!(c.inputs[0].sources, [Source::Task { task: 0, output: "say \"hi\"".into() }]);
        assert!(c.map.is_none());
        // No placeholder in params: the text is shared as is.
        let t = template(r#"{"a":1}"#);
        assert_eq!(Expander::new(&t).child(0, "k", "i").params, r#"{"a":1}"#);
    }

    #[test]
    fn lines_split_at_newlines() {
        assert_eq!(lines(b"a\r\nb\n\nc\n"), Some(vec!["a", "b", "", "c"]));
        assert_eq!(lines(b"a"), Some(vec!["a"]));
        assert_eq!(lines(b""), Some(vec![]));
        assert_eq!(lines(b"\n"), Some(vec![]));
        assert_eq!(lines(b"\xff"), None);
    }
}
