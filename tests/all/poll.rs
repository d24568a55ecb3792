//! WASI `poll_oneoff`, every subscription kind, through `engine run` on every
//! executor: the `cmd_poll` guest (`tests/guests/rust/cmd_poll`) makes the
//! call its arguments describe and prints the events the engine wrote, which
//! are compared byte for byte with what docs/abi.md ("poll_oneoff") says. A
//! wait that never ends is stopped by the task's timeout (tests/all/hostile.rs)
//! and by Ctrl-C (here).

use std::time::Duration;

use crate::util::{engine, guest, interrupted, run_engine};

/// One task per form: its `args`, `env`, and the exact stdout.
const CASES: &[(&str, &str, &str, &str)] = &[
    ("rel", r#"["rel:20"]"#, r#"{ EXPECT_MS = "20" }"#, "n=1\nud=1 err=0 type=0 nbytes=0 flags=0\nslept>=20\n"),
    ("abs", r#"["abs:40"]"#, r#"{ EXPECT_MS = "30" }"#, "n=1\nud=1 err=0 type=0 nbytes=0 flags=0\nslept>=30\n"),
    ("realabs", r#"["realabs:40"]"#, r#"{ EXPECT_MS = "30" }"#, "n=1\nud=1 err=0 type=0 nbytes=0 flags=0\nslept>=30\n"),
    (
        "two_clocks",
        r#"["rel:60000", "abs:20", "realabs:60000"]"#,
        r#"{ EXPECT_MS = "10" }"#,
        "n=1\nud=2 err=0 type=0 nbytes=0 flags=0\nslept>=10\n",
    ),
    (
        "past",
        r#"["rel:60000", "realabs:-5", "abs:-5"]"#,
        "{}",
        "n=2\nud=2 err=0 type=0 nbytes=0 flags=0\nud=3 err=0 type=0 nbytes=0 flags=0\n",
    ),
    (
        "fds",
        r#"["rel:60000", "read:0", "write:1", "write:2", "read:/in/data", "read:/in/data:6", "read:/in/data:11", "write:/in/data"]"#,
        "{}",
        "n=7\nud=2 err=0 type=1 nbytes=0 flags=0\nud=3 err=0 type=2 nbytes=0 flags=0\n\
         ud=4 err=0 type=2 nbytes=0 flags=0\nud=5 err=0 type=1 nbytes=11 flags=0\n\
         ud=6 err=0 type=1 nbytes=5 flags=0\nud=7 err=0 type=1 nbytes=0 flags=0\nud=8 err=0 type=2 nbytes=0 flags=0\n",
    ),
    (
        "errors",
        r#"["read:99", "write:77", "read:/in", "clock:2:0", "rel:60000"]"#,
        "{}",
        "n=4\nud=1 err=8 type=1 nbytes=0 flags=0\nud=2 err=8 type=2 nbytes=0 flags=0\n\
         ud=3 err=8 type=1 nbytes=0 flags=0\nud=4 err=28 type=0 nbytes=0 flags=0\n",
    ),
    ("none", "[]", "{}", "errno=28\n"),
];

#[test]
fn every_poll_oneoff_form_gives_its_exact_events_on_every_executor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "hello world").unwrap();
    let mut toml =
        format!("[pipeline]\nname = \"poll\"\n\n[plugins]\npoll = {:?}\n", guest("cmd_poll").display().to_string());
    let mut outputs = String::from("\n[outputs]\n");
    for (name, args, env, _) in CASES {
        toml.push_str(&format!(
            "\n[tasks.{name}]\nplugin = \"poll\"\nargs = {args}\nenv = {env}\nstdout = \"events\"\ninputs = {{ data = \"file:data.txt\" }}\n"
        ));
        outputs.push_str(&format!("\"out/{name}\" = \"{name}.events\"\n"));
    }
    // Deterministic clocks: an absolute time is read against the fixed clock.
    toml.push_str("\n[tasks.fixed]\nplugin = \"poll\"\nargs = [\"abs:20\", \"rel:60000\"]\ndeterministic = true\nstdout = \"events\"\n");
    outputs.push_str("\"out/fixed\" = \"fixed.events\"\n");
    std::fs::write(dir.path().join("pipeline.toml"), toml + &outputs).unwrap();
    for executor in ["sync", "threads", "processes"] {
        let o = run_engine(dir.path(), &["run", "pipeline.toml", "--no-cache", "--quiet", "--executor", executor]);
        assert_eq!(o.code, 0, "{executor}: {}{}", o.stdout, o.stderr);
        for (name, _, _, expected) in CASES {
            let got = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
            assert_eq!(got, *expected, "{executor}: task {name}");
        }
        let fixed = std::fs::read_to_string(dir.path().join("out/fixed")).unwrap();
        assert_eq!(fixed, "n=1\nud=1 err=0 type=0 nbytes=0 flags=0\n", "{executor}");
    }
}

#[test]
fn ctrl_c_interrupts_a_poll_on_an_absolute_clock() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[pipeline]\nname = \"poll\"\n\n[plugins]\npoll = {:?}\n\n[tasks.wait]\nplugin = \"poll\"\nargs = [\"abs:3600000\", \"realabs:3600000\"]\n",
        guest("cmd_poll").display().to_string()
    );
    std::fs::write(dir.path().join("pipeline.toml"), toml).unwrap();
    for executor in ["threads", "processes"] {
        let mut cmd = engine();
        cmd.args(["run", "--no-cache", "--executor", executor])
            .arg(dir.path().join("pipeline.toml"))
            .args(["--report", dir.path().join("report.json").to_str().unwrap()]);
        let (o, took) = interrupted(cmd, |_| std::thread::sleep(Duration::from_millis(1500)));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{executor}: {stderr}");
        assert!(took < Duration::from_secs(5), "{executor}: took {took:?} after Ctrl-C");
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(r["counts"]["cancelled"], 1, "{executor}: {stderr}");
    }
}
