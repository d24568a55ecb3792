//! One task without a pipeline file (`engine call`): the task a plugin, named
//! inputs and params describe is written as a one-task pipeline and loaded by
//! the same passes as any `pipeline.toml`, so it is checked exactly as
//! `engine check` would check it (plugin file, metadata, input files).

use std::path::{Path, PathBuf};

use super::{Diagnostics, LoadOptions, Threads};
use crate::plan::Plan;

/// What `engine call` runs.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// A `.wasm` path (relative to `base_dir`) or `std:NAME`.
    pub plugin: String,
    /// Input name → file path, in order; a name given more than once is a
    /// list input of those files, in order.
    pub inputs: Vec<(String, String)>,
    /// Param name → value, in order (a later value for a name wins).
    pub params: Vec<(String, toml::Value)>,
}

/// The task id and plugin name of a call: the plugin's file stem (or the
/// stock plugin's name) with every character a task id cannot hold replaced
/// by `_`.
pub fn task_id(plugin: &str) -> String {
    let stem = match plugin.strip_prefix("std:") {
        Some(name) => name.to_string(),
        None => Path::new(plugin).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    let id: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if id.is_empty() { "task".to_string() } else { id }
}

/// The one-task pipeline of `spec`, as TOML text.
pub fn pipeline_text(spec: &CallSpec) -> String {
    use toml::{Table, Value};
    let id = task_id(&spec.plugin);
    let mut doc = Table::new();
    doc.insert("pipeline".into(), Value::Table(Table::from_iter([("name".to_string(), Value::from("call"))])));
    let plugin = if spec.plugin.starts_with("std:") {
        spec.plugin.clone()
    } else {
        doc.insert("plugins".into(), Value::Table(Table::from_iter([(id.clone(), Value::from(spec.plugin.clone()))])));
        id.clone()
    };
    let mut task = Table::new();
    task.insert("plugin".into(), Value::from(plugin));
    let mut inputs = Table::new();
    for (name, _) in &spec.inputs {
        if inputs.contains_key(name) {
            continue;
        }
        let mut files: Vec<Value> =
            spec.inputs.iter().filter(|(n, _)| n == name).map(|(_, f)| Value::from(format!("file:{f}"))).collect();
        let v = if files.len() == 1 { files.remove(0) } else { Value::Array(files) };
        inputs.insert(name.clone(), v);
    }
    if !inputs.is_empty() {
        task.insert("inputs".into(), Value::Table(inputs));
    }
    if !spec.params.is_empty() {
        let mut params = Table::new();
        for (k, v) in &spec.params {
            params.insert(k.clone(), v.clone());
        }
        task.insert("params".into(), Value::Table(params));
    }
    doc.insert("tasks".into(), Value::Table(Table::from_iter([(id, Value::Table(task))])));
    toml::to_string(&doc).unwrap_or_default()
}

/// Check `spec` and make its plan; paths are relative to `base_dir`. The
/// diagnostics name the file `engine call` (they point into generated text,
/// so only their messages mean anything to a user).
pub fn plan(spec: &CallSpec, base_dir: &Path) -> Result<Plan, Diagnostics> {
    let text = pipeline_text(spec);
    let opts = LoadOptions::default();
    let file: PathBuf = base_dir.join("engine-call.toml");
    super::load_str(&text, file, base_dir.to_path_buf(), &opts, Threads::Auto)
        .map_err(|items| Diagnostics::new("engine call".to_string(), text, items))
}

/// A `--param` value: a TOML value when it is one (`5`, `1.5`, `true`,
/// `"text"`, `[1, 2]`, `{ a = 1 }`), else the text itself as a string.
pub fn param_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::from(text)),
        Err(_) => toml::Value::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values_are_toml_or_text() {
        assert_eq!(param_value("5"), toml::Value::Integer(5));
        assert_eq!(param_value("true"), toml::Value::Boolean(true));
        assert_eq!(param_value("\"5\""), toml::Value::from("5"));
        assert_eq!(param_value("> "), toml::Value::from("> "));
        assert_eq!(param_value("07"), toml::Value::from("07"));
        assert_eq!(param_value(""), toml::Value::from(""));
        assert_eq!(param_value("1 = 2"), toml::Value::from("1 = 2"));
    }

    #[test]
    fn ids_come_from_the_plugin() {
        assert_eq!(task_id("target/x/my.plugin.wasm"), "my_plugin");
        assert_eq!(task_id("std:wordcount"), "wordcount");
        assert_eq!(task_id(".wasm"), "_wasm");
    }

    #[test]
    fn a_repeated_input_is_a_list() {
        let spec = CallSpec {
            plugin: "p.wasm".into(),
            inputs: vec![("parts".into(), "a b.txt".into()), ("x".into(), "x".into()), ("parts".into(), "c".into())],
            params: vec![("k".into(), param_value("2"))],
        };
        let text = pipeline_text(&spec);
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let task = &doc["tasks"]["p"];
        assert_eq!(task["plugin"].as_str(), Some("p"));
        assert_eq!(doc["plugins"]["p"].as_str(), Some("p.wasm"));
        assert_eq!(task["inputs"]["parts"], toml::Value::Array(vec!["file:a b.txt".into(), "file:c".into()]));
        assert_eq!(task["inputs"]["x"].as_str(), Some("file:x"));
        assert_eq!(task["params"]["k"].as_integer(), Some(2));
    }
}
