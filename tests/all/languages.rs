//! Tasks in many languages (examples/languages, docs/languages.md): the
//! word-count task written in C, C++, Zig, Go and AssemblyScript gives the
//! same bytes as the stock Rust `wordcount` on ASCII text, through the
//! `engine` CLI, and so do the Python and JavaScript ones (components) on
//! every executor;
//! the cross-language pipeline and the WASI-command pipeline
//! give their expected outputs.
//!
//! The modules come from `xtask/build-languages.sh` (see
//! `util::language_guest`): a language whose toolchain is missing FAILS these
//! tests under CI (env `CI` set) and is skipped, loudly, elsewhere.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Output;

use crate::util::{engine, guest, language_guest, repo_root};

/// Every language with a word-count task, as named in `TARGET/languages/<lang>_wordcount.wasm`.
const LANGUAGES: [&str; 5] = ["c", "cpp", "zig", "go", "assemblyscript"];

/// The word-count module of each language whose toolchain is installed.
fn wordcounts() -> Vec<(&'static str, PathBuf)> {
    LANGUAGES.iter().filter_map(|l| language_guest(&format!("{l}_wordcount")).map(|p| (*l, p))).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
}

/// Write `pipeline.toml` (with a `[pipeline]` header) into a fresh temp dir and run it.
fn run_pipeline(body: &str, files: &[(&str, &[u8])], args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    std::fs::write(dir.path().join("pipeline.toml"), format!("[pipeline]\nname = \"languages\"\n\n{body}")).unwrap();
    let o = engine().arg("run").arg("-q").arg(dir.path().join("pipeline.toml")).args(args).output().unwrap();
    (dir, o)
}

/// ASCII text with the cases word splitting can get wrong: case, digits,
/// punctuation inside words, CRLF, tabs, empty lines, no final newline.
const SMALL: &str = "The cat and the Hat.\nthe CAT sat; don't_stop-me 42x 007 x42\r\n\n\ttabs\there  \
                     A a B b\nLAST line, no newline THE";

/// About 300 KiB of words (so words straddle the 64 KiB read chunks), plus
/// one word of 70 000 letters.
fn big_text() -> Vec<u8> {
    const WORDS: [&str; 12] =
        ["Alpha", "beta", "GAMMA", "delta7", "e", "Zeta", "eta", "theta", "IOTA", "kappa9", "lambda", "mu"];
    let mut s = String::new();
    let mut x: u32 = 12345;
    for i in 0..45_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        s.push_str(WORDS[(x >> 16) as usize % WORDS.len()]);
        s.push_str(match i % 11 {
            0 => ".\n",
            3 => ", ",
            7 => "\r\n",
            _ => " ",
        });
    }
    s.push_str(&"Q".repeat(70_000));
    s.push('\n');
    s.into_bytes()
}

/// The params cases of [`wordcount_tables`]: name and the task's `params` line.
const CASES: [(&str, &str); 2] = [("default", ""), ("cased3", "params = { lowercase = false, min_len = 3 }\n")];

/// The `[plugins]`, tasks and `[outputs]` of a pipeline that runs the Rust
/// wordcount and each of `langs` on `small.txt` and `big.txt`, with default
/// params and with `lowercase = false, min_len = 3`; task and output
/// `LANG_INPUT_CASE`.
fn wordcount_tables(langs: &[(&str, PathBuf)]) -> (String, String, String) {
    let mut plugins = format!("[plugins]\nrust = \"{}\"\n", guest("wordcount").display());
    for (l, p) in langs {
        writeln!(plugins, "{l} = \"{}\"", p.display()).unwrap();
    }
    let mut tasks = String::new();
    let mut outputs = String::from("[outputs]\n");
    for input in ["small", "big"] {
        for (case, params) in CASES {
            for l in std::iter::once("rust").chain(langs.iter().map(|(l, _)| *l)) {
                let id = format!("{l}_{input}_{case}");
                write!(tasks, "[tasks.{id}]\nplugin = \"{l}\"\ninputs = {{ text = \"file:{input}.txt\" }}\n{params}\n")
                    .unwrap();
                writeln!(outputs, "\"out/{id}\" = \"{id}\"").unwrap();
            }
        }
    }
    (plugins, tasks, outputs)
}

#[test]
fn wordcount_in_every_language_matches_rust() {
    let langs = wordcounts();
    let (plugins, tasks, outputs) = wordcount_tables(&langs);
    let big = big_text();
    let (dir, o) = run_pipeline(
        &format!("{plugins}\n[defaults]\ntimeout = \"120s\"\n\n{tasks}{outputs}"),
        &[("small.txt", SMALL.as_bytes()), ("big.txt", &big)],
        &[],
    );
    assert_exit(&o, 0);
    let read = |id: &str| std::fs::read(dir.path().join("out").join(id)).unwrap();

    // The Rust plugin itself, pinned on the small text.
    assert_eq!(
        text(&read("rust_small_default")),
        "007\t1\n42x\t1\na\t2\nand\t1\nb\t2\ncat\t2\ndon\t1\nhat\t1\nhere\t1\nlast\t1\nline\t1\nme\t1\n\
         newline\t1\nno\t1\nsat\t1\nstop\t1\nt\t1\ntabs\t1\nthe\t4\nx42\t1\n"
    );
    for input in ["small", "big"] {
        for (case, _) in CASES {
            let want = read(&format!("rust_{input}_{case}"));
            for (l, _) in &langs {
                let got = read(&format!("{l}_{input}_{case}"));
                assert!(
                    got == want,
                    "{l} on {input} ({case}) differs from Rust:\n--- {l}\n{}\n--- rust\n{}",
                    text(&got),
                    text(&want)
                );
            }
        }
    }
}

/// The Python and JavaScript word counts (components of the engine:task
/// world, built with componentize-py over sdk/python, and from one source
/// over sdk/js with componentize-qjs (QuickJS) and with componentize-js
/// (SpiderMonkey)) and the Rust one on wasm32-wasip2 (wit-bindgen) give the
/// Rust plugin's bytes, on the sync, threads and processes executors.
#[test]
fn component_wordcounts_match_rust_on_every_executor() {
    let mut langs: Vec<(&str, PathBuf)> = ["python", "javascript", "javascript_spidermonkey"]
        .into_iter()
        .filter_map(|l| language_guest(&format!("{l}_wordcount")).map(|p| (l, p)))
        .collect();
    langs.push(("rust_p2", guest("comp_wordcount")));
    let (plugins, tasks, outputs) = wordcount_tables(&langs);
    let big = big_text();
    for executor in ["sync", "threads", "processes"] {
        let (dir, o) = run_pipeline(
            &format!("{plugins}\n[defaults]\ntimeout = \"120s\"\n\n{tasks}{outputs}"),
            &[("small.txt", SMALL.as_bytes()), ("big.txt", &big)],
            &["--executor", executor],
        );
        assert_exit(&o, 0);
        let read = |id: &str| std::fs::read(dir.path().join("out").join(id)).unwrap();
        for input in ["small", "big"] {
            for (case, _) in CASES {
                let want = read(&format!("rust_{input}_{case}"));
                for (l, _) in &langs {
                    let got = read(&format!("{l}_{input}_{case}"));
                    assert!(
                        got == want,
                        "{l} on {input} ({case}, {executor}) differs from Rust:\n--- {l}\n{}\n--- rust\n{}",
                        text(&got),
                        text(&want)
                    );
                }
            }
        }
    }
}

#[test]
fn every_language_embeds_its_metadata() {
    for (l, p) in wordcounts() {
        let o = engine().arg("inspect").arg(&p).output().unwrap();
        assert_exit(&o, 0);
        let out = text(&o.stdout);
        for line in [
            "kind:    sdk task".to_string(),
            format!("  name:        {l}_wordcount"),
            "  inputs:      text".to_string(),
            "  outputs:     out".to_string(),
            "  params:      lowercase, min_len".to_string(),
        ] {
            assert!(out.lines().any(|x| x == line), "{l}: no line `{line}` in:\n{out}");
        }
    }
}

#[test]
fn bad_params_and_missing_inputs_fail_with_the_sdk_message() {
    // The C example predates the shared wording (docs/plugins.md documents it).
    let expect = |l: &str, param: &str| match (l, param) {
        ("c", "min_len") => "param `min_len` must be an integer".to_string(),
        (_, "min_len") => "param `min_len` must be an integer >= 0".to_string(),
        (_, "lowercase") => "param `lowercase` must be a boolean".to_string(),
        (_, _) => "missing input `text`".to_string(),
    };
    // and the Rust component, which words its errors as the SDKs do.
    let mut langs = wordcounts();
    langs.push(("rust_p2", guest("comp_wordcount")));
    let mut body = String::from("[plugins]\n");
    for (l, p) in &langs {
        writeln!(body, "{l} = \"{}\"", p.display()).unwrap();
    }
    for (l, _) in &langs {
        write!(
            body,
            "[tasks.{l}_min_len]\nplugin = \"{l}\"\ninputs = {{ text = \"file:a.txt\" }}\nparams = {{ min_len = \"x\" }}\n\
             [tasks.{l}_lowercase]\nplugin = \"{l}\"\ninputs = {{ text = \"file:a.txt\" }}\nparams = {{ lowercase = 1 }}\n\
             [tasks.{l}_missing]\nplugin = \"{l}\"\n"
        )
        .unwrap();
    }
    let (_dir, o) = run_pipeline(&body, &[("a.txt", b"a b c\n")], &[]);
    assert_exit(&o, 1);
    let stderr = text(&o.stderr);
    for (l, _) in &langs {
        for param in ["min_len", "lowercase", "missing"] {
            let line = format!("error: task `{l}_{param}` failed: task error: {}", expect(l, param));
            assert!(stderr.lines().any(|x| x == line), "no line `{line}` in:\n{stderr}");
        }
    }
}

/// Copy example pipeline `file` of examples/languages into a temp dir with an
/// absolute corpus path, run it with `--set modules=TARGET/languages` (as its
/// comment tells a user with `$CARGO_TARGET_DIR` set), and compare every output
/// with `expected/`.
fn check_example(file: &str, outputs: &[&str], modules: &[&str]) {
    for m in modules {
        if language_guest(m).is_none() {
            return;
        }
    }
    for p in ["split", "merge", "topk", "wordcount"] {
        guest(p);
    }
    let src = repo_root().join("examples/languages");
    let root = repo_root();
    let body = std::fs::read_to_string(src.join(file))
        .unwrap()
        .replace("\"file:../wordcount/", &format!("\"file:{}/examples/wordcount/", root.display()));
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join(file);
    std::fs::write(&pipeline, body).unwrap();
    let modules = format!("modules={}", crate::util::target_dir().join("languages").display());
    let o = engine().arg("run").arg("-q").arg(&pipeline).args(["--set", &modules]).output().unwrap();
    assert_exit(&o, 0);
    for f in outputs {
        let got = std::fs::read(dir.path().join("out").join(f)).unwrap();
        let want = std::fs::read(src.join("expected").join(f)).unwrap();
        assert!(got == want, "{file}: out/{f} differs:\n{}", text(&got));
    }
}

#[test]
fn cross_language_pipeline_gives_the_expected_counts() {
    let modules: Vec<String> = LANGUAGES.iter().map(|l| format!("{l}_wordcount")).collect();
    check_example("pipeline.toml", &["counts.tsv", "top.tsv"], &modules.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn wasi_commands_pipeline_gives_the_expected_outputs() {
    check_example(
        "commands.toml",
        &["commands/counts.tsv", "commands/distinct.txt", "commands/words.txt", "commands/wordcount.tsv"],
        &["c_words", "go_uniq"],
    );
}

/// The expected files are the stock example's, computed independently.
#[test]
fn expected_counts_are_the_wordcount_examples() {
    let a = |p: &str| std::fs::read(repo_root().join(p)).unwrap();
    assert_eq!(a("examples/languages/expected/counts.tsv"), a("examples/wordcount/expected/counts.tsv"));
    assert_eq!(a("examples/languages/expected/top.tsv"), a("examples/wordcount/expected/top.tsv"));
}
