//! The pipeline format: every fixture under `tests/pipelines/invalid/` must be
//! rejected by `engine check` with exactly the diagnostics in its `.stderr`
//! file; every fixture under `tests/pipelines/valid/` must pass with exactly the
//! summary in `.check` and draw exactly `.dot`, `.mermaid` and `.json`.
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
        let out = run_engine(tmp.path(), &["check", &file]);
        if out.code != 2 || !out.stdout.is_empty() {
            failures
                .push(format!("{file}: exit {} (want 2), stdout {:?}, stderr:\n{}", out.code, out.stdout, out.stderr));
            continue;
        }
        if let Err(e) = check_expect_file(&src.join(format!("{name}.stderr")), &out.stderr) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures failed:\n{}", failures.len(), names.len(), failures.join("\n\n"));
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
        let out = run_engine(tmp.path(), &["check", &file]);
        if out.code != 0 || !out.stderr.is_empty() {
            failures.push(format!("{file}: exit {}, stderr:\n{}", out.code, out.stderr));
            continue;
        }
        if let Err(e) = check_expect_file(&src.join(format!("{name}.check")), &out.stdout) {
            failures.push(e);
        }
        for format in ["dot", "mermaid", "json"] {
            let out = run_engine(tmp.path(), &["graph", &file, "--format", format]);
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
    let opts = LoadOptions { capacity_override: None, check_plugins: false };
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
