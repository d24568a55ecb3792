//! The small languages inside strings: references (`task`, `task.output`,
//! `task[*]`, `task[key].output`, `file:path`), `{var}` placeholders of
//! `foreach` tasks, and the character sets of ids, keys and output names.

use std::borrow::Cow;

/// A parsed reference, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref<'a> {
    File(&'a str),
    Task { task: &'a str, key: Option<&'a str>, output: Option<&'a str> },
}

/// Task ids as written in `[tasks.<id>]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Plugin names and `foreach` variable names share the id character set,
/// except that variables must not start with a digit or `-`.
pub fn valid_var(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A `foreach` value as it appears between the brackets of an expanded id.
pub fn valid_key_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Output names as the guest ABI allows them (the one rule, in
/// [`crate::task::names`]).
pub fn output_name_error(s: &str) -> Option<String> {
    crate::task::names::name_problem(s.as_bytes())
}

/// Split a reference into its parts, or say why it is malformed.
pub fn parse_ref(s: &str) -> Result<Ref<'_>, String> {
    if let Some(path) = s.strip_prefix("file:") {
        if path.is_empty() {
            return Err("`file:` needs a path after it, e.g. `file:data/input.txt`".into());
        }
        return Ok(Ref::File(path));
    }
    let (task, key, rest) = match s.find(['[', '.']) {
        Some(i) if s.as_bytes()[i] == b'[' => {
            let Some(close) = s[i..].find(']').map(|c| c + i) else {
                return Err(format!("`{s}` has `[` without a matching `]`"));
            };
            (&s[..i], Some(&s[i + 1..close]), &s[close + 1..])
        }
        Some(i) => (&s[..i], None, &s[i..]),
        None => (s, None, ""),
    };
    if !valid_id(task) {
        return Err(if task.is_empty() {
            format!("`{s}` does not start with a task id")
        } else {
            format!("`{task}` is not a valid task id (allowed: letters, digits, `_` and `-`)")
        });
    }
    if let Some(k) = key
        && k.is_empty()
    {
        return Err(format!("`{s}` has empty brackets; use `{task}[*]` for all expanded tasks"));
    }
    let output = if rest.is_empty() {
        None
    } else if let Some(o) = rest.strip_prefix('.') {
        if let Some(e) = output_name_error(o) {
            return Err(format!("invalid output name `{o}`: {e}"));
        }
        Some(o)
    } else {
        return Err(format!("unexpected `{rest}` after `{}`; write `task.output`", &s[..s.len() - rest.len()]));
    };
    Ok(Ref::Task { task, key, output })
}

/// Find the `{name}` placeholders in `s` whose name is not in `vars`.
pub fn unknown_placeholders(s: &str, vars: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    scan(s, |name| {
        if !vars.iter().any(|v| v == name) {
            out.push(name.to_string());
        }
        None
    });
    out
}

/// Replace `{name}` placeholders by their values; `{{` and `}}` stand for braces.
pub fn substitute<'a>(s: &'a str, vars: &[String], values: &[String]) -> Cow<'a, str> {
    if !s.contains(['{', '}']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(scan(s, |name| vars.iter().position(|v| v == name).and_then(|i| values.get(i)).map(String::as_str)))
}

/// Walk `s`, calling `f` for each `{name}` placeholder; returns the text with
/// placeholders replaced by what `f` returns (left as written when `None`).
fn scan<'v>(s: &str, mut f: impl FnMut(&str) -> Option<&'v str>) -> String {
    scan_all(s, false, |name| f(name).map(str::to_string))
}

/// A placeholder name: a variable, or a variable and a part (`f.stem`).
pub fn valid_placeholder(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => valid_var(a) && valid_var(b),
        None => valid_var(s),
    }
}

/// [`scan`] with owned replacements; with `keep_escapes`, `{{` and `}}` are
/// copied as written (for a later expansion) instead of becoming braces.
pub fn scan_all(s: &str, keep_escapes: bool, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push_str(if keep_escapes { "{{" } else { "{" });
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push_str(if keep_escapes { "}}" } else { "}" });
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('{') {
            match inner.find('}') {
                Some(end) if valid_placeholder(&inner[..end]) => {
                    let name = &inner[..end];
                    match f(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&tail[..end + 2]),
                    }
                    rest = &tail[end + 2..];
                }
                _ => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        } else {
            out.push('}');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert_eq!(parse_ref("a"), Ok(Ref::Task { task: "a", key: None, output: None }));
        assert_eq!(parse_ref("a.b/c.txt"), Ok(Ref::Task { task: "a", key: None, output: Some("b/c.txt") }));
        assert_eq!(parse_ref("a[*].x"), Ok(Ref::Task { task: "a", key: Some("*"), output: Some("x") }));
        assert_eq!(parse_ref("a[eu,1]"), Ok(Ref::Task { task: "a", key: Some("eu,1"), output: None }));
        assert_eq!(parse_ref("file:x/y"), Ok(Ref::File("x/y")));
        assert!(parse_ref("a[3").is_err());
        assert!(parse_ref("a.").is_err());
        assert!(parse_ref("a[1]x").is_err());
        assert!(parse_ref("a b").is_err());
    }

    #[test]
    fn placeholders() {
        let vars = vec!["i".to_string()];
        let vals = vec!["3".to_string()];
        assert_eq!(substitute("part{i}", &vars, &vals), "part3");
        assert_eq!(substitute("{{i}} {i} {x} {", &vars, &vals), "{i} 3 {x} {");
        assert_eq!(unknown_placeholders("{i}{j}{ not}", &vars), vec!["j"]);
    }
}
