//! `json_select`: pick one value out of a JSON document by a path such as
//! `a.b[0]` (see docs/plugins.md#json_select). The document is parsed whole
//! (JSON has no line structure to stream by); object key order is kept.

use std::io::Write;

use engine_sdk::{Context, Error, Result, bail};
use serde_json::Value;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: Option<String>,
    #[serde(default)]
    pretty: bool,
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parse `a.b[0][1].c`. An empty path selects the whole document.
fn parse_path(path: &str) -> Result<Vec<Step>> {
    let bad = |why: &str| Error::msg(format!("param `path` `{path}` is invalid: {why}"));
    let mut steps = Vec::new();
    let mut rest = path;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return Err(bad("missing `]`")) };
            let digits = &r[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("an index must be a non-negative integer, like `[0]`"));
            }
            steps.push(Step::Index(digits.parse().map_err(|_| bad("index too large"))?));
            rest = &r[end + 1..];
        } else {
            let r = if first {
                rest
            } else {
                match rest.strip_prefix('.') {
                    Some(r) => r,
                    None => return Err(bad("expected `.` or `[` after `]`")),
                }
            };
            let end = r.find(['.', '[', ']']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty key"));
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
        first = false;
    }
    Ok(steps)
}

fn select<'v>(doc: &'v Value, path: &str, steps: &[Step]) -> Result<&'v Value> {
    let mut cur = doc;
    let mut at = String::new();
    for step in steps {
        let here = if at.is_empty() { "the document".to_owned() } else { format!("`{at}`") };
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(map)) => match map.get(k) {
                Some(v) => v,
                None => bail!("path `{path}`: {here} has no key `{k}`"),
            },
            (Step::Index(i), Value::Array(items)) => match items.get(*i) {
                Some(v) => v,
                None => bail!("path `{path}`: index {i} is out of range for {here} (length {})", items.len()),
            },
            (Step::Key(_), other) => bail!("path `{path}`: {here} is {}, not an object", kind(other)),
            (Step::Index(_), other) => bail!("path `{path}`: {here} is {}, not an array", kind(other)),
        };
        match step {
            Step::Key(k) if at.is_empty() => at.push_str(k),
            Step::Key(k) => {
                at.push('.');
                at.push_str(k);
            }
            Step::Index(i) => at.push_str(&format!("[{i}]")),
        }
    }
    Ok(cur)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let Some(path) = p.path else {
        bail!("param `path` is required (e.g. \"a.b[0]\", or \"\" for the whole document)")
    };
    let steps = parse_path(&path)?;
    let bytes = ctx.input("json")?.read_all()?;
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::msg(format!("input `json` is not valid JSON: {e}")))?;
    let value = select(&doc, &path, &steps)?;
    let mut text = if p.pretty { serde_json::to_string_pretty(value)? } else { serde_json::to_string(value)? };
    text.push('\n');
    let mut out = ctx.output("out")?;
    out.write_all(text.as_bytes())?;
    out.finish()
}

engine_sdk::task!(
    name = "json_select",
    version = "0.1.0",
    description = "select the value at `path` (like `a.b[0]`) from the JSON input `json`",
    inputs = ["json"],
    outputs = ["out"],
    params = ["path", "pretty"],
    run = run,
);
