//! `engine call`: one task without a pipeline file, with the stock plugins —
//! its outputs written into `--out` (or the current directory), its log on
//! stderr, and the exact errors for a bad `--input`, a missing file, an
//! undeclared input and a failing task.

use std::path::Path;

use crate::util::{Output, guest, run_engine, wat_guest};

/// `engine ARGS` in `dir`, without the lines saying how long the plugin took
/// to compile or load (which depend on the module cache).
fn call(dir: &Path, args: &[&str]) -> Output {
    let mut out = run_engine(dir, args);
    out.stderr = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("compiled plugin `") && !l.starts_with("loaded plugin `"))
        .map(|l| format!("{l}\n"))
        .collect();
    out
}

/// A directory holding `words.txt`, with the stock plugins built.
fn setup() -> tempfile::TempDir {
    guest("wordcount");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("words.txt"), "b a b\nc b a\n").unwrap();
    tmp
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn out_is_created_even_for_a_task_without_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let noop = guest("noop");
    let out = call(tmp.path(), &["call", noop.to_str().unwrap(), "--out", "none/yet"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert!(tmp.path().join("none/yet").is_dir());
}

#[test]
fn a_stock_plugin_writes_its_output_into_out_and_its_log_to_stderr() {
    let tmp = setup();
    let out = call(tmp.path(), &["call", "std:wordcount", "--input", "text=words.txt", "--out", "res"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "wrote res/out\n");
    assert_eq!(out.stderr, "[info] 3 distinct words\n");
    assert_eq!(read(&tmp.path().join("res/out")), "a\t2\nb\t3\nc\t1\n");
    // Nothing else is left behind: no store, no run directory.
    let mut left: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["res", "words.txt"]);
}

#[test]
fn a_plugin_file_with_params_writes_into_the_current_directory() {
    let tmp = setup();
    let wasm = guest("topk");
    std::fs::write(tmp.path().join("counts.tsv"), "a\t2\nb\t1\nc\t5\nd\t2\n").unwrap();
    let out = call(tmp.path(), &["call", wasm.to_str().unwrap(), "--input", "counts=counts.tsv", "--param", "k=2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "wrote out\n");
    assert_eq!(read(&tmp.path().join("out")), "c\t5\na\t2\n");
    // A value that is not TOML is a string: topk refuses a string `k`.
    let out = call(tmp.path(), &["call", "std:topk", "--input", "counts=counts.tsv", "--param", "k=two"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("error: task `topk` failed: task error: "), "{}", out.stderr);
}

#[test]
fn a_repeated_input_is_a_list_input() {
    let tmp = setup();
    std::fs::write(tmp.path().join("a.tsv"), "a\t2\nb\t1\n").unwrap();
    std::fs::write(tmp.path().join("b.tsv"), "b\t5\nc\t1\n").unwrap();
    let out =
        call(tmp.path(), &["call", "std:merge", "--input", "parts=a.tsv", "--input", "parts=b.tsv", "--out", "x/y"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "wrote x/y/out\n");
    assert_eq!(read(&tmp.path().join("x/y/out")), "a\t2\nb\t6\nc\t1\n");
}

#[test]
fn a_failing_task_exits_1_and_writes_nothing() {
    let tmp = setup();
    std::fs::write(tmp.path().join("bad.tsv"), "no tab here\n").unwrap();
    let out = call(tmp.path(), &["call", "std:topk", "--input", "counts=bad.tsv", "--out", "res"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "error: task `topk` failed: task error: input `counts` line 1: expected `word<TAB>count`\n");
    assert!(!tmp.path().join("res").exists());
}

#[test]
fn bad_calls_exit_2_with_exact_messages() {
    let tmp = setup();
    let cases: &[(&[&str], &str)] = &[
        (&["call", "std:wordcount", "--input", "text=nope.txt"], "error: input file `nope.txt` does not exist\n"),
        (
            &["call", "nope.wasm", "--input", "text=words.txt"],
            "error: plugin `nope`: file `nope.wasm` does not exist\n",
        ),
        (
            &["call", "std:wordcount", "--input", "txt=words.txt"],
            "error: task `wordcount` has input `txt`, which plugin `std:wordcount` does not declare\n",
        ),
        (
            &["call", "std:wordcount", "--input", "text=words.txt", "--param", "lowercas=false"],
            "error: plugin `std:wordcount` does not take a param `lowercas` (task `wordcount`)\n",
        ),
        (&["call", "std:wordcont", "--input", "text=words.txt"], "error: unknown stock plugin `std:wordcont`\n"),
        (
            &["call", "std:wordcount", "--input", "text"],
            "error: invalid value 'text' for '--input <NAME=FILE>': `text` is not NAME=FILE\n\nFor more information, try '--help'.\n",
        ),
        (
            &["call", "std:wordcount", "--input", "=words.txt"],
            "error: invalid value '=words.txt' for '--input <NAME=FILE>': `=words.txt` is not NAME=FILE\n\nFor more information, try '--help'.\n",
        ),
        (
            &["call", "std:topk", "--param", "k"],
            "error: invalid value 'k' for '--param <KEY=VALUE>': `k` is not KEY=VALUE\n\nFor more information, try '--help'.\n",
        ),
    ];
    for (args, want) in cases {
        let out = call(tmp.path(), args);
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (2, "", *want), "{args:?}");
    }
}

/// A WASI command: its files in `/out` are the outputs (an output name with
/// `/` makes directories), its stdout is its log, its `exit_code` is not
/// written, and an exit code other than 0 fails it.
#[test]
fn a_command_writes_its_out_files_and_logs_its_stdout() {
    let tmp = setup();
    for (name, text) in [("a.txt", "the text\n"), ("p0", "p0\n"), ("p1", "p1\n")] {
        std::fs::write(tmp.path().join(name), text).unwrap();
    }
    let copy = wat_guest("cmd_copy");
    let args = ["call", copy.to_str().unwrap(), "--input", "text=a.txt", "--input", "parts=p0", "--input", "parts=p1"];
    let out = call(tmp.path(), &[&args[..], &["--out", "o"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "wrote o/copy\nwrote o/stats/part1\n");
    assert_eq!(out.stderr, "the text\n");
    assert_eq!(read(&tmp.path().join("o/copy")), "the text\n");
    assert_eq!(read(&tmp.path().join("o/stats/part1")), "p1\n");
    assert!(!tmp.path().join("o/exit_code").exists());
    let exit = wat_guest("cmd_exit");
    let out = call(tmp.path(), &["call", exit.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert_eq!(out.stderr, "error: task `cmd_exit` failed: task error: exited with code 1\n");
}
