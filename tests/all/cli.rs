//! The command line's conveniences: colour (`NO_COLOR`, `CLICOLOR_FORCE`),
//! `engine completions SHELL` and `engine man`.

use crate::util::engine;

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
        for sub in ["check", "graph", "run", "report", "cat", "logs", "gc", "inspect", "plugins", "completions"] {
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
