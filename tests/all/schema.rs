//! `engine schema` and `docs/pipeline.schema.json`: the checked-in copy is what
//! the engine generates; every valid fixture and example pipeline passes it and
//! every structural-error fixture (unknown key, wrong type, missing key, out of
//! range) fails it. Documents are TOML read into JSON by the `toml` crate and
//! checked by the small validator below, which knows exactly the keywords the
//! generated schema uses (and fails on any other); when a Python with
//! `jsonschema` is at hand (the test venv, else `python3`), it must agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{check_expect_file, repo_root, run_engine, target_dir};

/// The invalid fixtures whose errors are structural, which the schema catches.
const STRUCTURAL: &[&str] = &[
    "empty_file",
    "exit_codes_invalid",
    "foreach_bad_range",
    "foreach_empty",
    "missing_name",
    "no_tasks",
    "params_not_table",
    "pipeline_not_table",
    "plugin_table_no_path",
    "priority_out_of_range",
    "retries_too_many",
    "unknown_pipeline_key",
    "unknown_task_key",
    "unknown_top_key",
    "workdir_invalid",
    "wrong_types",
];

fn schema() -> Value {
    let out = run_engine(&repo_root(), &["schema"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("engine schema prints JSON")
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let out = run_engine(&repo_root(), &["schema"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr, "");
    check_expect_file(&repo_root().join("docs/pipeline.schema.json"), &out.stdout).unwrap();
}

/// A pipeline file as JSON.
fn document(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn valid_pipelines_pass_the_schema_and_structural_errors_fail_it() {
    let schema = schema();
    let mut docs: BTreeMap<String, (Value, bool)> = BTreeMap::new();
    let mut valid = tomls(&repo_root().join("tests/pipelines/valid"));
    for e in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let p = e.unwrap().path().join("pipeline.toml");
        if p.is_file() {
            valid.push(p);
        }
    }
    assert!(valid.len() >= 10, "{valid:?}");
    for p in valid {
        docs.insert(p.display().to_string(), (document(&p), true));
    }
    let invalid = repo_root().join("tests/pipelines/invalid");
    for name in STRUCTURAL {
        let p = invalid.join(format!("{name}.toml"));
        docs.insert(p.display().to_string(), (document(&p), false));
    }
    let mut wrong = Vec::new();
    let mut verdicts = BTreeMap::new();
    for (name, (doc, want_valid)) in &docs {
        let mut errors = Vec::new();
        validate(&schema, &schema, doc, "", &mut errors);
        if errors.is_empty() != *want_valid {
            wrong.push(format!("{name}: want valid = {want_valid}, errors: {errors:?}"));
        }
        verdicts.insert(name.clone(), errors.is_empty());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    python_agrees(&schema, &docs, &verdicts);
}

/// A few documents the validator must judge as the schema means.
#[test]
fn the_validator_reads_the_schema_as_meant() {
    let schema = schema();
    let base = r#"
[pipeline]
name = "p"
[tasks.a]
plugin = "std:wordcount"
"#;
    let check = |extra: &str| {
        let doc: Value = toml::from_str(&format!("{base}{extra}")).unwrap();
        let mut errors = Vec::new();
        validate(&schema, &schema, &doc, "", &mut errors);
        errors
    };
    assert_eq!(check(""), Vec::<String>::new());
    assert_eq!(check("retries = 3\nresources = { cpu = 0.5, memory = \"1GiB\", licence = 2 }"), Vec::<String>::new());
    assert_eq!(
        check("foreach = { i = { range = [0, 4] } }\ninputs = { x = [\"b[*]\", \"file:y\"] }"),
        Vec::<String>::new()
    );
    assert_eq!(check("retries = 101"), ["/tasks/a/retries: 101 is above the maximum 100"]);
    assert_eq!(check("plgin = \"x\""), ["/tasks/a: unknown key `plgin`"]);
    assert_eq!(
        check("foreach_mode = \"zipp\""),
        ["/tasks/a/foreach_mode: \"zipp\" is not one of [\"product\",\"zip\"]"]
    );
    let errors = check("[plugins]\nx = { sha256 = \"\" }");
    assert!(errors.contains(&"/plugins/x: missing key `path`".to_string()), "{errors:?}");
    assert!(errors.contains(&"/plugins/x/sha256: length 0, minLength is 64".to_string()), "{errors:?}");
    assert_eq!(check("[resources]\ncpu = 0"), ["/resources/cpu: 0 is not above 0"]);
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        // JSON Schema: a number with no fractional part is an integer.
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("the validator does not know type {other}"),
    }
}

/// Check `v` against `s` (a part of `root`), pushing `PATH: problem` lines.
/// Knows exactly the keywords `engine schema` uses.
fn validate(root: &Value, s: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = s.as_object() else { panic!("schema at {path} is not an object") };
    for (k, kw) in s {
        match k.as_str() {
            "$schema" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let r = kw.as_str().and_then(|r| r.strip_prefix('#')).expect("a local $ref");
                let target = root.pointer(r).unwrap_or_else(|| panic!("no {r} in the schema"));
                validate(root, target, v, path, errors);
            }
            "type" => {
                let types: Vec<&str> = match kw {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("bad type at {path}"),
                };
                if !types.iter().any(|t| type_matches(t, v)) {
                    errors.push(format!("{path}: {v} is not of type {}", types.join(" or ")));
                }
            }
            "enum" => {
                if !kw.as_array().is_some_and(|a| a.contains(v)) {
                    errors.push(format!("{path}: {v} is not one of {kw}"));
                }
            }
            "properties" | "additionalProperties" => {
                let Some(obj) = v.as_object() else { continue };
                if k == "additionalProperties" {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (key, item) in obj {
                        if known.is_some_and(|p| p.contains_key(key)) {
                            continue;
                        }
                        match kw {
                            Value::Bool(false) => errors.push(format!("{path}: unknown key `{key}`")),
                            Value::Bool(true) => {}
                            sub => validate(root, sub, item, &format!("{path}/{key}"), errors),
                        }
                    }
                } else if let Some(props) = kw.as_object() {
                    for (key, sub) in props {
                        if let Some(item) = obj.get(key) {
                            validate(root, sub, item, &format!("{path}/{key}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let Some(obj) = v.as_object() {
                    for key in kw.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !obj.contains_key(key) {
                            errors.push(format!("{path}: missing key `{key}`"));
                        }
                    }
                }
            }
            "minProperties" => {
                if let Some(obj) = v.as_object()
                    && (obj.len() as u64) < kw.as_u64().unwrap()
                {
                    errors.push(format!("{path}: fewer than {kw} keys"));
                }
            }
            "items" => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    validate(root, kw, item, &format!("{path}/{i}"), errors);
                }
            }
            "minItems" | "maxItems" => {
                if let Some(a) = v.as_array() {
                    let n = kw.as_u64().unwrap() as usize;
                    if (k == "minItems" && a.len() < n) || (k == "maxItems" && a.len() > n) {
                        errors.push(format!("{path}: {} items, {k} is {n}", a.len()));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(t) = v.as_str() {
                    let n = kw.as_u64().unwrap() as usize;
                    let len = t.chars().count();
                    if (k == "minLength" && len < n) || (k == "maxLength" && len > n) {
                        errors.push(format!("{path}: length {len}, {k} is {n}"));
                    }
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" => {
                let (Some(x), Some(bound)) = (v.as_f64(), kw.as_f64()) else { continue };
                match k.as_str() {
                    "minimum" if x < bound => errors.push(format!("{path}: {v} is below the minimum {kw}")),
                    "maximum" if x > bound => errors.push(format!("{path}: {v} is above the maximum {kw}")),
                    "exclusiveMinimum" if x <= bound => errors.push(format!("{path}: {v} is not above {kw}")),
                    _ => {}
                }
            }
            other => panic!("the validator does not know keyword `{other}` (at {path})"),
        }
    }
}

/// With a Python that has `jsonschema` (the test venv's, else `python3`),
/// its Draft 2020-12 validator gives every document the same verdict.
fn python_agrees(schema: &Value, docs: &BTreeMap<String, (Value, bool)>, verdicts: &BTreeMap<String, bool>) {
    let venv = target_dir().join("pyenv/bin/python");
    let pythons = [venv.display().to_string(), "python3".to_string()];
    let has_jsonschema = |py: &str| {
        std::process::Command::new(py).args(["-c", "import jsonschema"]).output().is_ok_and(|o| o.status.success())
    };
    let Some(py) = pythons.iter().find(|p| has_jsonschema(p)) else {
        eprintln!("note: no Python with jsonschema; the schema was checked by the test's own validator only");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let docs: BTreeMap<&String, &Value> = docs.iter().map(|(k, (d, _))| (k, d)).collect();
    std::fs::write(tmp.path().join("schema.json"), schema.to_string()).unwrap();
    std::fs::write(tmp.path().join("docs.json"), serde_json::to_string(&docs).unwrap()).unwrap();
    let script = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for name, doc in sorted(json.load(open(sys.argv[2])).items()):
    print(name, "valid" if v.is_valid(doc) else "invalid")
"#;
    let out = std::process::Command::new(py)
        .args(["-c", script])
        .arg(tmp.path().join("schema.json"))
        .arg(tmp.path().join("docs.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: String =
        verdicts.iter().map(|(n, ok)| format!("{n} {}\n", if *ok { "valid" } else { "invalid" })).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{py} with jsonschema disagrees");
}
