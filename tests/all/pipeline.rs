//! The pipeline format: every fixture under `tests/pipelines/invalid/` must be
//! rejected by `engine check` with exactly the diagnostics in its `.stderr`
//! file; every fixture under `tests/pipelines/valid/` must pass with exactly the
//! summary in `.check` and draw exactly `.dot`, `.mermaid` and `.json`. A
//! fixture with a `.check.json` file must print exactly that with `engine
//! check --format json`, with nothing on stderr (exit status 2 or 0). A
//! fixture's `.args` file, if any, holds more arguments, one per line.
//! `UPDATE_EXPECT=1` rewrites the expected files.

use std::path::Path;

use engine::pipeline::{self, LoadOptions};
use proptest::prelude::*;

use crate::util::{check_expect_file, copy_files, repo_root, run_engine, write_test_plugins};

/// Copy a fixture directory next to freshly built test plugins.
fn fixture_dir(kind: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = repo_root().join("tests/pipelines").join(kind);
    let tmp = tempfile::tempdir().unwrap();
    copy_files(&src, tmp.path());
    write_test_plugins(tmp.path());
    (tmp, src)
}

/// `engine ARGS... FILE` plus the fixture's `.args`, if it has one.
fn with_args(src: &Path, name: &str, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if let Ok(text) = std::fs::read_to_string(src.join(format!("{name}.args"))) {
        all.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    all
}

fn run_fixture(dir: &Path, src: &Path, name: &str, args: &[&str]) -> crate::util::Output {
    let all = with_args(src, name, args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_engine(dir, &refs)
}

fn fixtures(src: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn invalid_pipelines_report_exact_diagnostics() {
    let (tmp, src) = fixture_dir("invalid");
    let names = fixtures(&src);
    assert!(names.len() >= 40, "only {} invalid fixtures", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let file = format!("{name}.toml");
        let out = run_fixture(tmp.path(), &src, name, &["check", &file]);
        if out.code != 2 || !out.stdout.is_empty() {
            failures
                .push(format!("{file}: exit {} (want 2), stdout {:?}, stderr:\n{}", out.code, out.stdout, out.stderr));
            continue;
        }
        if let Err(e) = check_expect_file(&src.join(format!("{name}.stderr")), &out.stderr) {
            failures.push(e);
        }
        if let Err(e) = check_json(tmp.path(), &src, name, 2) {
            failures.push(e);
        }
    }
    let jsons = names.iter().filter(|n| src.join(format!("{n}.check.json")).exists()).count();
    assert!(jsons >= 8, "only {jsons} invalid fixtures have a .check.json");
    assert!(failures.is_empty(), "{} of {} fixtures failed:\n{}", failures.len(), names.len(), failures.join("\n\n"));
}

/// `engine check --format json` of fixture `name`, when it has a `.check.json`.
fn check_json(dir: &Path, src: &Path, name: &str, code: i32) -> Result<(), String> {
    let expected = src.join(format!("{name}.check.json"));
    if !expected.exists() {
        return Ok(());
    }
    let file = format!("{name}.toml");
    let out = run_fixture(dir, src, name, &["check", &file, "--format", "json"]);
    if out.code != code || !out.stderr.is_empty() {
        return Err(format!("{file} --format json: exit {} (want {code}), stderr:\n{}", out.code, out.stderr));
    }
    serde_json::from_str::<serde_json::Value>(&out.stdout).map_err(|e| format!("{file}: not JSON: {e}"))?;
    check_expect_file(&expected, &out.stdout)
}

#[test]
fn valid_pipelines_check_and_draw_exactly() {
    let (tmp, src) = fixture_dir("valid");
    let names = fixtures(&src);
    assert!(names.len() >= 3);
    let dir = tmp.path().canonicalize().unwrap();
    let mut failures = Vec::new();
    for name in &names {
        let file = format!("{name}.toml");
        let out = run_fixture(tmp.path(), &src, name, &["check", &file]);
        if out.code != 0 || !out.stderr.is_empty() {
            failures.push(format!("{file}: exit {}, stderr:\n{}", out.code, out.stderr));
            continue;
        }
        if let Err(e) = check_expect_file(&src.join(format!("{name}.check")), &out.stdout) {
            failures.push(e);
        }
        if let Err(e) = check_json(tmp.path(), &src, name, 0) {
            failures.push(e);
        }
        for format in ["dot", "mermaid", "json"] {
            let out = run_fixture(tmp.path(), &src, name, &["graph", &file, "--format", format]);
            let text = out.stdout.replace(&dir.display().to_string(), "$DIR");
            if out.code != 0 {
                failures.push(format!("{file} graph {format}: exit {}: {}", out.code, out.stderr));
            } else if let Err(e) = check_expect_file(&src.join(format!("{name}.{format}")), &text) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn resources_flag_overrides_capacity_per_key() {
    let (tmp, _) = fixture_dir("valid");
    let out = run_engine(tmp.path(), &["check", "wordcount.toml", "--resources", "memory=2GiB,licence=5"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("  capacity:     cpu=4, memory=2GiB, gpu=1, licence=5\n"), "{}", out.stdout);
    // A request that no longer fits makes the pipeline invalid.
    let out = run_engine(tmp.path(), &["check", "wordcount.toml", "--resources", "memory=768MiB"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(
            "error: task `merge` requests memory = 1GiB but the machine has memory = 768MiB; it could never run\n"
        ),
        "{}",
        out.stderr
    );
    let out = run_engine(tmp.path(), &["check", "wordcount.toml", "--resources", "cpu=lots"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: invalid --resources `cpu=lots`: cpu `lots` is not a number\n\nerror: `wordcount.toml` is invalid: 1 error\n"
    );
}

#[test]
fn missing_file_and_directory_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_engine(tmp.path(), &["check", "nope.toml"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "error: cannot read `nope.toml`: no such file\n\nerror: `nope.toml` is invalid: 1 error\n");
    let out = run_engine(tmp.path(), &["check", "."]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "error: `.` is a directory, not a pipeline file\n\nerror: `.` is invalid: 1 error\n");
    // As JSON: no place in the file.
    let out = run_engine(tmp.path(), &["check", "nope.toml", "--format", "json"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    assert_eq!(
        out.stdout,
        r#"{
  "file": "nope.toml",
  "valid": false,
  "errors": 1,
  "diagnostics": [
    {
      "file": "nope.toml",
      "line": null,
      "column": null,
      "end_line": null,
      "end_column": null,
      "code": "file",
      "message": "cannot read `nope.toml`: no such file",
      "help": null,
      "notes": [],
      "related": []
    }
  ]
}
"#
    );
}

#[test]
fn load_expands_foreach_and_resolves_references() {
    let (tmp, _) = fixture_dir("valid");
    let plan = pipeline::load(&tmp.path().join("wordcount.toml"), &LoadOptions::default()).unwrap();
    let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["split", "count[0]", "count[1]", "count[2]", "count[3]", "merge"]);
    let merge = &plan.tasks[5];
    assert_eq!(merge.deps, [1, 2, 3, 4]);
    assert!(merge.inputs[0].list);
    assert_eq!(merge.inputs[0].sources.len(), 4);
    assert_eq!(plan.tasks[2].params, r#"{"part":"part1","lowercase":true}"#);
    assert_eq!(plan.tasks[2].resources.memory, 512 << 20);
    assert_eq!(plan.tasks[2].retries, 2);
}

/// Loading arbitrary bytes must never panic; it returns a plan or diagnostics
/// that render.
fn load_bytes(bytes: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.toml");
    std::fs::write(&p, bytes).unwrap();
    let opts = LoadOptions { capacity_override: None, check_plugins: false, vars: Vec::new(), confine: None };
    if let Err(d) = pipeline::load(&p, &opts) {
        assert!(!d.is_empty());
        assert!(d.to_string().contains("error"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_bytes(&bytes);
    }

    #[test]
    fn tomlish_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[pipeline]".to_string()),
                Just("name = \"p\"".to_string()),
                Just("[plugins]".to_string()),
                Just("a = \"a.wasm\"".to_string()),
                Just("[tasks.a]".to_string()),
                Just("[tasks.b]".to_string()),
                Just("[[tasks]]".to_string()),
                Just("plugin = \"a\"".to_string()),
                Just("inputs = { x = \"a\", y = [\"b[*]\", \"file:x\"] }".to_string()),
                Just("foreach = { i = { range = [0, 3] } }".to_string()),
                Just("foreach = { i = [1, 1] }".to_string()),
                Just("params = { a = [1, { b = \"{i}\" }] }".to_string()),
                Just("resources = { cpu = 0.5, memory = \"1GiB\", x = 1 }".to_string()),
                Just("tasks.c.plugin = \"a\"".to_string()),
                "[a-z\\[\\]{}=\\.\" ,0-9*]{0,30}",
            ],
            0..24,
        )
    ) {
        load_bytes(lines.join("\n").as_bytes());
    }
}

#[test]
fn vars_files_and_globs_over_awkward_names() {
    let tmp = tempfile::tempdir().unwrap();
    write_test_plugins(tmp.path());
    std::fs::create_dir_all(tmp.path().join("my data/sub")).unwrap();
    for f in ["é t.csv", "b.csv", "c.txt", "sub/d.csv"] {
        std::fs::write(tmp.path().join("my data").join(f), "x").unwrap();
    }
    let pipeline = "[pipeline]\nname = \"g\"\n[vars]\ndata = \"nowhere\"\nn = 1\n\
                    [plugins]\ncmd = \"plugins/cmd.wasm\"\n\
                    [tasks.a]\nplugin = \"cmd\"\nforeach = { f = { glob = \"{data}/*.csv\" } }\n\
                    args = [\"{f}\", \"{f.name}\", \"{f.stem}\", \"{n}\"]\n";
    std::fs::write(tmp.path().join("p.toml"), pipeline).unwrap();
    std::fs::write(tmp.path().join("v.toml"), "data = \"my data\"\nn = 2\n").unwrap();
    let out = run_engine(tmp.path(), &["graph", "p.toml", "--format", "json", "--vars", "v.toml", "--set", "n=3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let tasks: Vec<(String, Vec<String>)> = plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), serde_json::from_value(t["args"].clone()).unwrap()))
        .collect();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        tasks,
        [
            ("a[b]".to_string(), args(&["my data/b.csv", "b.csv", "b", "3"])),
            ("a[__t]".to_string(), args(&["my data/é t.csv", "é t.csv", "é t", "3"])),
        ]
    );
    // A `--vars` file with a syntax error is reported against that file.
    std::fs::write(tmp.path().join("bad.toml"), "data = \n").unwrap();
    let out = run_engine(tmp.path(), &["check", "p.toml", "--vars", "bad.toml"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("┌─ bad.toml:1:"), "{}", out.stderr);
    assert!(out.stderr.ends_with("error: `bad.toml` is invalid: 1 error\n"), "{}", out.stderr);
}

/// The JSON example of docs/pipeline.md ("Diagnostics as JSON") is what
/// `engine check --format json` prints for the `p.toml` of "Diagnostics", and
/// its table of codes lists exactly the codes diagnostics have.
#[test]
fn the_documented_json_diagnostics_are_exact() {
    let doc = std::fs::read_to_string(repo_root().join("docs/pipeline.md")).unwrap();
    let section = &doc[doc.find("### Diagnostics as JSON").unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let want = &section[start..start + section[start..].find("```").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    write_test_plugins(tmp.path());
    std::fs::copy(tmp.path().join("plugins/cmd.wasm"), tmp.path().join("cmd.wasm")).unwrap();
    std::fs::write(
        tmp.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\n\n[plugins]\ncmd = \"cmd.wasm\"\n\n[tasks.a]\nplgin = \"cmd\"\n",
    )
    .unwrap();
    let out = run_engine(tmp.path(), &["check", "p.toml", "--format", "json"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    assert_eq!(out.stdout, want);
    let table = &section[section.find("| `code` | what |").unwrap()..];
    let table = &table[..table.find("\n\n").unwrap()];
    let documented: Vec<&str> = table.lines().skip(2).map(|l| l.split('`').nth(1).unwrap()).collect();
    let codes: Vec<&str> = pipeline::Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, codes);
}
