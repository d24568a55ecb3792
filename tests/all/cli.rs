//! The command line's conveniences: colour (`NO_COLOR`, `CLICOLOR_FORCE`),
//! `engine completions SHELL`, `engine man`, and the capacity defaults that
//! `engine check` says it detected.

use std::path::Path;

use crate::util::{engine, guest};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = engine();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("cannot start the engine binary");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const ESC: char = '\u{1b}';

#[test]
fn diagnostics_and_help_are_coloured_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[pipeline]\nname = \"x\"\nnope = 1\n").unwrap();
    let bad = bad.to_str().unwrap();
    // Not a terminal: no colour by default, nor with NO_COLOR.
    let (code, _, plain) = run(&["check", bad], &[]);
    assert_eq!(code, 2);
    assert!(plain.contains("unknown key `nope`") && !plain.contains(ESC), "{plain}");
    let (code, _, forced) = run(&["check", bad], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(code, 2);
    assert!(forced.contains(&format!("{ESC}[")), "{forced}");
    // NO_COLOR wins; CLICOLOR_FORCE=0 forces nothing.
    for env in [[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], [("CLICOLOR_FORCE", "0"), ("NO_COLOR", "")]] {
        let (_, _, err) = run(&["check", bad], &env);
        assert_eq!(err, plain, "{env:?}");
    }
    // clap's help follows the same rule.
    let (_, help, _) = run(&["--help"], &[]);
    assert!(!help.contains(ESC));
    assert!(help.contains("NO_COLOR (set, not empty) turns colour off"), "{help}");
    let (_, help, _) = run(&["--help"], &[("CLICOLOR_FORCE", "1")]);
    assert!(help.contains(&format!("{ESC}[")), "{help}");
    let (_, help, _) = run(&["--help"], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!help.contains(ESC), "{help}");
}

#[test]
fn completions_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in [
            "check",
            "graph",
            "run",
            "report",
            "cat",
            "logs",
            "gc",
            "inspect",
            "plugins",
            "completions",
            "call",
            "new",
            "schema",
        ] {
            assert!(out.contains(sub), "{shell}: no `{sub}`");
        }
        assert!(out.contains("engine"), "{shell}");
    }
    let (_, bash, _) = run(&["completions", "bash"], &[]);
    assert!(bash.contains("complete -F _engine"), "{bash}");
    assert!(bash.contains("--report-html"));
    let (_, zsh, _) = run(&["completions", "zsh"], &[]);
    assert!(zsh.starts_with("#compdef engine"), "{zsh}");
    let (_, fish, _) = run(&["completions", "fish"], &[]);
    assert!(fish.contains("complete -c engine"), "{fish}");
    assert!(fish.contains("-a \"report\""), "{fish}");
    let (code, _, err) = run(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn man_prints_the_manual_page() {
    let (code, out, err) = run(&["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{}", &out[..out.len().min(200)]);
    assert!(out.contains(".TH engine 1"), "{out}");
    assert!(out.contains("Run data pipelines whose tasks are sandboxed WebAssembly plugins"));
    for sub in ["engine\\-check(1)", "engine\\-run(1)", "engine\\-report(1)", "engine\\-completions(1)"] {
        assert!(out.contains(sub), "no {sub} in\n{out}");
    }
}

/// A one-task pipeline with the given `[resources]` body.
fn one_task(dir: &Path, resources: &str) -> String {
    let p = dir.join("pipeline.toml");
    std::fs::write(
        &p,
        format!(
            "[pipeline]\nname = \"c\"\n\n[plugins]\nnoop = \"{}\"\n\n{resources}\n[tasks.t]\nplugin = \"noop\"\n",
            guest("noop").display()
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn check_says_where_detected_capacity_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let p = one_task(dir.path(), "");
    let (code, out, err) = run(&["check", &p], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("  capacity:     cpu=")).expect(&out);
    let cpu = lines[at + 1];
    let mem = lines[at + 2];
    let (want_cpu, _) = lines[at].trim_start_matches("  capacity:     cpu=").split_once(',').unwrap();
    assert!(cpu.starts_with(&format!("    cpu:        {want_cpu} (")), "{out}");
    assert!(
        ["(affinity mask)", "(available parallelism)", "(cgroup cpu.max)", "(cgroup cpu.cfs_quota_us)"]
            .iter()
            .any(|s| cpu.ends_with(s)),
        "{out}"
    );
    assert!(mem.starts_with("    memory:     "), "{out}");
    assert!(
        ["(MemTotal)", "(cgroup memory.max)", "(cgroup memory.limit_in_bytes)", "(default)"]
            .iter()
            .any(|s| mem.ends_with(s)),
        "{out}"
    );
    assert_eq!(lines.len(), at + 3, "{out}");
    // A key that `[resources]` or `--resources` gives is not detected.
    let p = one_task(dir.path(), "[resources]\ncpu = 3\n");
    let (_, out, _) = run(&["check", &p], &[]);
    assert!(out.contains("  capacity:     cpu=3, memory="), "{out}");
    assert!(!out.contains("    cpu:") && out.contains("    memory:     "), "{out}");
    let (_, out, _) = run(&["check", &p, "--resources", "memory=2GiB"], &[]);
    assert!(out.ends_with("  capacity:     cpu=3, memory=2GiB, gpu=0\n"), "{out}");
}
