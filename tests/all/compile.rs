//! Compilation is bounded (docs/security.md, "Compilation"): a plugin that
//! compiles slowly, although within the static limits of `engine check`, is
//! stopped at its `max_compile_time` (or by Ctrl-C) in its `engine
//! compile-plugin` child process; only its own tasks fail, and independent
//! tasks still run.
//!
//! ```text
//!   innocent (echo)      slow_a (slow) ─► after_a (echo)      slow_b (slow)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{engine, guest, interrupted, run_measured, wat_guests_dir};

const INNOCENT: &str = "the innocent task ran to completion\n";

/// A command whose function declares 9000 locals (within the limit of 10000
/// per function), each set in its own `if` and all summed at the end: every
/// local is live across thousands of blocks, which takes the register
/// allocator over a minute (75 s on a loaded 2-core machine).
fn slow_module() -> PathBuf {
    const LOCALS: usize = 9000;
    let mut text =
        String::from("(module (memory (export \"memory\") 1)\n(func (export \"f\") (param i64) (result i64) (local");
    text.push_str(&" i64".repeat(LOCALS));
    text.push(')');
    for i in 1..=LOCALS {
        text.push_str(&format!(" (if (i64.eqz (local.get 0)) (then (local.set {i} (i64.const {i}))))"));
    }
    text.push_str(" (local.get 1)");
    for i in 2..=LOCALS {
        text.push_str(&format!(" (local.get {i}) (i64.add)"));
    }
    text.push_str(")\n(func (export \"_start\")))");
    let dir = wat_guests_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("compile_slow.wasm");
    // Atomically: several tests make it at once, and an engine reading it
    // must never see a half-written file.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".compile_slow.{}.{seq}.tmp", std::process::id()));
    std::fs::write(&tmp, wat::parse_str(&text).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// The pipeline above, with `slow`'s table and a `[defaults]` body.
fn setup(slow: &Path, slow_table: &str, defaults: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[pipeline]
name = "compile"

[defaults]
{defaults}

[plugins]
echo = {{ path = "{echo}", max_compile_time = "5m" }}
slow = {{ path = "{slow}"{slow_table} }}

[tasks.innocent]
plugin = "echo"
params = {{ text = "{innocent}" }}

[tasks.slow_a]
plugin = "slow"

[tasks.after_a]
plugin = "echo"
inputs = {{ x = "slow_a.exit_code" }}

[tasks.slow_b]
plugin = "slow"

[outputs]
"out/innocent.txt" = "innocent"
"#,
        echo = guest("echo").display(),
        slow = slow.display(),
        innocent = INNOCENT.escape_default(),
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

fn task<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()
}

#[test]
fn a_plugin_over_its_max_compile_time_fails_only_its_own_tasks() {
    let slow = slow_module();
    let message = "compile time limit exceeded: plugin `slow` did not compile within its max_compile_time of 1.00s";
    // The limit in the plugin's table, and in `[defaults]` (which `echo`'s own 5m overrides).
    for (table, defaults) in [(r#", max_compile_time = "1s""#, ""), ("", r#"max_compile_time = "1s""#)] {
        for executor in ["threads", "processes"] {
            let dir = setup(&slow, table, defaults);
            let cache = tempfile::tempdir().unwrap();
            let report = dir.path().join("report.json");
            let mut c = engine();
            c.env("ENGINE_CACHE_DIR", cache.path()).arg("run").arg(dir.path().join("pipeline.toml")).args([
                "--executor",
                executor,
                "--report",
                report.to_str().unwrap(),
            ]);
            let m = run_measured(c, Duration::from_secs(60));
            let stderr = String::from_utf8_lossy(&m.output.stderr);
            let ctx = format!("{executor} {table}{defaults}: {stderr}");
            assert_eq!(m.output.status.code(), Some(1), "{ctx}");
            assert!(m.elapsed < Duration::from_secs(20), "took {:?}: {ctx}", m.elapsed);
            assert!(stderr.contains(&format!("error: {message}; not run: tasks `slow_a`, `slow_b`\n")), "{ctx}");
            assert!(
                stderr.contains(&format!("error: task `slow_a` failed: {message} (1 dependent task skipped)\n")),
                "{ctx}"
            );
            assert!(stderr.contains(&format!("error: task `slow_b` failed: {message}\n")), "{ctx}");
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
            for id in ["slow_a", "slow_b"] {
                assert_eq!(task(&r, id)["state"], "failed", "{ctx}");
                assert_eq!(task(&r, id)["error"]["kind"], "limit", "{ctx}");
                assert_eq!(task(&r, id)["error"]["message"], message, "{ctx}");
            }
            assert_eq!(task(&r, "after_a")["state"], "skipped", "{ctx}");
            assert_eq!(task(&r, "innocent")["state"], "succeeded", "{ctx}");
            let slow_report = r["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "slow").unwrap();
            assert_eq!(slow_report["error"], message, "{ctx}");
            assert_eq!(std::fs::read_to_string(dir.path().join("out/innocent.txt")).unwrap(), INNOCENT, "{ctx}");
            // Nothing was cached for the slow plugin: the child was killed before it wrote.
            let entries: Vec<String> = std::fs::read_dir(cache.path().join("modules"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(entries.len(), 1, "only echo is cached: {entries:?}\n{ctx}");
        }
    }
}

#[test]
fn ctrl_c_stops_a_compilation() {
    let slow = slow_module();
    let dir = setup(&slow, "", "");
    let cache = tempfile::tempdir().unwrap();
    for executor in ["threads", "processes"] {
        let mut cmd = engine();
        cmd.env("ENGINE_CACHE_DIR", cache.path())
            .args(["run", "--executor", executor])
            .arg(dir.path().join("pipeline.toml"))
            .args(["--report", dir.path().join("report.json").to_str().unwrap()]);
        // Ctrl-C reaches the engine only, not the compiler process it started.
        let (o, took) = interrupted(cmd, |_| std::thread::sleep(Duration::from_millis(1500)));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{executor}: {stderr}");
        assert!(took < Duration::from_secs(5), "{executor}: took {took:?} after Ctrl-C");
        assert!(!stderr.contains("limit exceeded"), "{executor}: {stderr}");
    }
}
