//! `pipeline.schema.json`: a JSON Schema (draft 2020-12) of the pipeline file
//! (`engine schema`), generated from the same key tables the passes read
//! tables with ([`super::top`], [`super::raw`], [`super::vars`],
//! [`super::foreach`], [`super::workdir`]), so a key the loader accepts is a
//! key the schema knows and the other way round.
//!
//! The schema holds the structure (tables, keys, TOML types, required keys and
//! simple bounds) that editors can check as one types; what needs the file
//! system, the plugins or the whole graph (references, cycles, plugin files,
//! `{name}` placeholders, sizes and durations beyond their type) is left to
//! `engine check`. A `{name}` var may stand for any string value, so strings
//! are never constrained beyond their type.

use serde_json::{Value, json};

use super::foreach::FOREACH_VAR_KEYS;
use super::ids::MAX_TASKS;
use super::raw::TASK_KEYS;
use super::settings::{BUILTIN_RESOURCES, MAX_OPEN_FILES_LIMIT, MAX_RETRIES};
use super::top::{DEFAULTS_KEYS, PIPELINE_KEYS, PLUGIN_KEYS, TOP_KEYS};
use super::vars::VAR_KEYS;
use super::workdir::WORKDIR_KEYS;
use crate::pipeline::resources::{MAX_AMOUNT, MAX_GPU};

/// The JSON Schema of a pipeline file, as `engine schema` prints it.
pub(in crate::pipeline) fn json_schema() -> Value {
    let mut root = table(TOP_KEYS, top_key);
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["title"] = json!("engine pipeline file (pipeline.toml)");
    root["description"] = json!("A pipeline of WebAssembly tasks; see docs/pipeline.md.");
    root["required"] = json!(["pipeline", "tasks"]);
    root["$defs"] = json!({
        "size": { "type": ["string", "integer"], "description": "a size: \"512MiB\", \"1.5GB\", or bytes" },
        "duration": { "type": "string", "description": "a duration: \"30s\", \"5m\", \"1.5h\"" },
        "resources": resources(),
        "task": task(),
    });
    root
}

/// An object whose keys are exactly `keys`, each typed by `schema_of`.
fn table(keys: &[&str], schema_of: fn(&str) -> Option<Value>) -> Value {
    let props: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.to_string(), schema_of(k).unwrap_or_else(|| json!({})))).collect();
    json!({ "type": "object", "properties": props, "additionalProperties": false })
}

fn top_key(key: &str) -> Option<Value> {
    Some(match key {
        "pipeline" => {
            let mut t = table(PIPELINE_KEYS, pipeline_key);
            t["required"] = json!(["name"]);
            t
        }
        "vars" => json!({
            "type": "object",
            "description": "parameters: name = default, or { default, description }",
            "additionalProperties": var(),
        }),
        "plugins" => json!({
            "type": "object",
            "description": "plugin name = path (or std:NAME), or { path, sha256, max_compile_time }",
            "additionalProperties": plugin(),
        }),
        "defaults" => table(DEFAULTS_KEYS, task_key),
        "resources" => json!({ "$ref": "#/$defs/resources" }),
        "tasks" => json!({
            "type": "object",
            "minProperties": 1,
            "additionalProperties": { "$ref": "#/$defs/task" },
        }),
        "outputs" => json!({
            "type": "object",
            "description": "destination path = task output reference",
            "additionalProperties": { "type": "string" },
        }),
        _ => return None,
    })
}

fn pipeline_key(key: &str) -> Option<Value> {
    Some(match key {
        "name" => json!({ "type": "string", "minLength": 1 }),
        "description" => json!({ "type": "string" }),
        _ => return None,
    })
}

fn plugin() -> Value {
    let mut t = table(PLUGIN_KEYS, |k| {
        Some(match k {
            "path" => json!({ "type": "string" }),
            "sha256" => json!({ "type": "string", "minLength": 64, "maxLength": 64 }),
            "max_compile_time" => json!({ "$ref": "#/$defs/duration" }),
            _ => return None,
        })
    });
    // A plugin is a path, or a table that must name one.
    t["type"] = json!(["string", "object"]);
    t["required"] = json!(["path"]);
    t
}

fn var() -> Value {
    let mut t = table(VAR_KEYS, |k| {
        Some(match k {
            "default" => json!({ "type": ["string", "integer", "number", "boolean"] }),
            "description" => json!({ "type": "string" }),
            _ => return None,
        })
    });
    // A var is its default alone, or a table.
    t["type"] = json!(["string", "integer", "number", "boolean", "object"]);
    t["required"] = json!(["default"]);
    t
}

/// A `resources` table: of a task, of `[defaults]`, or the capacity.
fn resources() -> Value {
    let props: serde_json::Map<String, Value> = BUILTIN_RESOURCES
        .iter()
        .map(|k| {
            let v = match *k {
                "cpu" => json!({ "type": "number", "exclusiveMinimum": 0, "maximum": MAX_AMOUNT }),
                "memory" => json!({ "$ref": "#/$defs/size" }),
                "gpu" => json!({ "type": "integer", "minimum": 0, "maximum": MAX_GPU }),
                _ => json!({}),
            };
            (k.to_string(), v)
        })
        .collect();
    json!({
        "type": "object",
        "properties": props,
        "additionalProperties": { "type": "number", "minimum": 0, "maximum": MAX_AMOUNT },
    })
}

fn task() -> Value {
    let mut t = table(TASK_KEYS, task_key);
    t["required"] = json!(["plugin"]);
    t
}

/// The type of a key of a task table (and of `[defaults]`, which takes the
/// same settings plus `max_compile_time`).
fn task_key(key: &str) -> Option<Value> {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let string_table = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    Some(match key {
        "plugin" | "stdin" | "stdout" | "map" => json!({ "type": "string" }),
        "inputs" => json!({
            "type": "object",
            "additionalProperties": { "type": ["string", "array"], "items": { "type": "string" } },
        }),
        "params" => json!({ "type": "object" }),
        "resources" => json!({ "$ref": "#/$defs/resources" }),
        "retries" => json!({ "type": "integer", "minimum": 0, "maximum": MAX_RETRIES }),
        "timeout" | "max_compile_time" => json!({ "$ref": "#/$defs/duration" }),
        "priority" => json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }),
        "args" => strings,
        "env" | "mounts" => string_table,
        "deterministic" | "cache" | "io_dirs" => json!({ "type": "boolean" }),
        "fuel" => json!({ "type": "integer", "minimum": 1 }),
        "max_output_bytes" => json!({ "$ref": "#/$defs/size" }),
        "max_open_files" => json!({ "type": "integer", "minimum": 1, "maximum": MAX_OPEN_FILES_LIMIT }),
        "foreach" => json!({ "type": "object", "minProperties": 1, "additionalProperties": foreach_var() }),
        "foreach_mode" => json!({ "enum": ["product", "zip"] }),
        "max_items" => json!({ "type": "integer", "minimum": 1, "maximum": MAX_TASKS }),
        "scratch" => json!({ "type": ["boolean", "string", "integer"] }),
        "success_exit_codes" => json!({
            "type": "array",
            "minItems": 1,
            "items": { "type": "integer", "minimum": 0, "maximum": 255 },
        }),
        "workdir" => table(WORKDIR_KEYS, |k| {
            Some(match k {
                "from" | "at" => json!({ "type": "string" }),
                "size" => json!({ "$ref": "#/$defs/size" }),
                "publish" => json!({ "type": "array", "items": { "type": "string" } }),
                _ => return None,
            })
        }),
        _ => return None,
    })
}

/// A foreach variable: a list of values, or `{ range }` / `{ glob, allow_empty }`.
fn foreach_var() -> Value {
    let mut t = table(FOREACH_VAR_KEYS, |k| {
        Some(match k {
            "range" => json!({ "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "integer" } }),
            "glob" => json!({ "type": "string" }),
            "allow_empty" => json!({ "type": "boolean" }),
            _ => return None,
        })
    });
    t["type"] = json!(["array", "object"]);
    t["minItems"] = json!(1);
    t["items"] = json!({ "type": ["string", "integer"] });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every table the loader reads has a type in the schema.
    #[test]
    fn every_key_has_a_type() {
        for (keys, f) in [
            (TOP_KEYS, top_key as fn(&str) -> Option<Value>),
            (PIPELINE_KEYS, pipeline_key),
            (TASK_KEYS, task_key),
            (DEFAULTS_KEYS, task_key),
        ] {
            for k in keys {
                assert!(f(k).is_some(), "no schema for key `{k}`");
            }
        }
        let s = json_schema();
        for (path, keys) in [
            ("/properties/plugins/additionalProperties/properties", PLUGIN_KEYS),
            ("/properties/vars/additionalProperties/properties", VAR_KEYS),
            ("/$defs/task/properties/workdir/properties", WORKDIR_KEYS),
            ("/$defs/task/properties/foreach/additionalProperties/properties", FOREACH_VAR_KEYS),
            ("/$defs/resources/properties", BUILTIN_RESOURCES),
        ] {
            let props = s.pointer(path).and_then(Value::as_object).unwrap_or_else(|| panic!("no {path}"));
            assert_eq!(props.len(), keys.len(), "{path}");
            for k in keys {
                assert_ne!(props.get(*k), Some(&json!({})), "no schema for `{k}` at {path}");
                assert!(props.contains_key(*k), "no `{k}` at {path}");
            }
        }
    }
}
