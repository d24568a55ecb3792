//! The report's measurements (`peak_memory`, `fuel_consumed`, `cached`) and
//! the HTML report: `engine run --report-html FILE` and `engine report
//! RUN.json --html FILE`, on the threads and processes executors.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{EngineRun, engine, guest, task};

/// Six 20 ms SDK tasks in family `nap[*]` requesting 512 MiB, three echoes
/// (each its own cache key), and a command task that prints a line and exits 3.
fn pipeline() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[pipeline]
name = "h"

[plugins]
sleep_ms = "{}"
echo = "{}"
probe = "{}"

[tasks.nap]
plugin = "sleep_ms"
foreach = {{ i = {{ range = [0, 6] }} }}
params = {{ ms = 20 }}
resources = {{ memory = "512MiB" }}

[tasks.say]
plugin = "echo"
foreach = {{ i = {{ range = [0, 3] }} }}
params = {{ text = "{{i}}" }}

[tasks.bad]
plugin = "probe"
args = ["write", "/out/x", "hi", "exit", "3"]
"#,
        guest("sleep_ms").display(),
        guest("echo").display(),
        guest("cmd_probe").display()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

/// The workers that ran an attempt, from the report.
fn workers(r: &Value) -> BTreeSet<u64> {
    let mut w = BTreeSet::new();
    for t in r["tasks"].as_array().unwrap() {
        if let Some(n) = t["worker"].as_u64() {
            w.insert(n);
        }
        for a in t["earlier_attempts"].as_array().into_iter().flatten() {
            w.insert(a["worker"].as_u64().unwrap());
        }
    }
    w
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_report_has_peak_memory_fuel_and_cached_per_task() {
    for executor in ["threads", "processes"] {
        let dir = pipeline();
        let first = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(first.code, 1, "{executor}: {}", first.stderr);
        let r = first.report();
        let nap = task(&r, "nap[0]");
        assert_eq!(nap["cached"], false);
        assert_eq!(nap["requested_memory"], 512u64 << 20);
        assert!(nap["start_us"].as_u64().is_some());
        let say = task(&r, "say[1]");
        assert_eq!(say["requested_memory"], 256u64 << 20);
        let peak = say["peak_memory"].as_u64().expect("peak_memory");
        assert!(peak > 0 && peak.is_multiple_of(65536), "{executor}: {peak}");
        let fuel = say["fuel_consumed"].as_u64().expect("fuel_consumed");
        assert!(fuel > 0, "{executor}");
        assert!(task(&r, "bad")["fuel_consumed"].as_u64().is_some());
        assert!(task(&r, "bad").get("earlier_attempts").is_none());

        // Again: the echoes come from the cache, with what was measured when they ran.
        let second = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(second.code, 1, "{executor}: {}", second.stderr);
        let r = second.report();
        let say = task(&r, "say[1]");
        assert_eq!(say["cached"], true);
        assert_eq!(say["attempts"], 0);
        assert_eq!(say["peak_memory"], peak);
        assert_eq!(say["fuel_consumed"], fuel);
        assert!(say.get("start_us").is_none() && say.get("duration_us").is_none());
    }
}

#[test]
fn a_run_writes_an_offline_html_report_with_one_row_per_worker() {
    for executor in ["threads", "processes"] {
        let dir = pipeline();
        let html = dir.path().join("out/run.html");
        let ran = EngineRun::new(dir.path())
            .executor(executor)
            .args(["--no-cache", "--workers", "2", "--report-html"])
            .args([&html])
            .run();
        assert_eq!(ran.code, 1, "{executor}: {}", ran.stderr);
        let r = ran.report();
        let page = read(&html);
        let w = workers(&r);
        assert!(!w.is_empty() && w.len() <= 2, "{w:?}");
        assert_eq!(page.matches("<g class=\"lane\"").count(), w.len(), "{executor}");
        for n in &w {
            assert!(page.contains(&format!("<g class=\"lane\" data-worker=\"{n}\"><text x=\"0\" y=\"")));
        }
        // One bar per attempt: 6 naps, 3 echoes and the failed task.
        assert_eq!(page.matches("<rect class=\"bar ok\"").count(), 9, "{executor}");
        assert_eq!(page.matches("<rect class=\"bar fail\"").count(), 1, "{executor}");
        assert!(page.contains("10 attempts on "), "{executor}");
        // The failure, with its message and the tail of its log.
        assert_eq!(task(&r, "bad")["error"]["message"], "task error: exited with code 3");
        assert!(page.contains("<code>bad</code> failed after 1 attempt (error): task error: exited with code 3</p>"));
        assert!(page.contains("<p class=\"note\">last lines of its log:</p><pre>write /out/x: ok</pre>"), "{page}");
        // Memory against the request, per family.
        let peak = task(&r, "nap[0]")["peak_memory"].as_u64().unwrap();
        let hint = format!("requested 512 MiB, used at most {}", ::engine::report::html::spaced_size(peak));
        assert!(page.contains("<td><code>nap[*]</code></td><td class=\"n\">6</td>"), "{page}");
        assert!(page.contains(&hint), "{hint} not in {page}");
        assert!(page.contains("<p id=\"cached\">0 cached, 10 executed, 0 neither"), "{page}");
        assert!(page.contains("<h3><code>nap[*]</code></h3><p class=\"note\">6 ran; min "), "{page}");
        assert!(page.contains("<table id=\"slowest\">"));
        // Self-contained: no URL at all, no script, no external resource.
        for bad in ["http://", "https://", "<script", "<link", "src="] {
            assert!(!page.contains(bad), "{executor}: `{bad}` in the page");
        }

        // `engine report` renders the same page from the saved JSON report.
        let again = dir.path().join("again.html");
        let o = engine().arg("report").arg(dir.path().join("report.json")).arg("--html").arg(&again).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(read(&again), page, "{executor}");
    }
}

#[test]
fn engine_report_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"tasks\": 3}").unwrap();
    let o = engine().arg("report").arg(&bad).arg("--html").arg(dir.path().join("x.html")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with(&format!("error: {} is not a run report: ", bad.display())), "{err}");
    assert!(!dir.path().join("x.html").exists());
    let o = engine().arg("report").arg(dir.path().join("none.json")).arg("--html").arg("x.html").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: cannot read report "));
}

/// `chromium` on PATH, if any.
pub fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
}

/// The page renders in a real browser: Debian's `chromium` (installed by
/// `xtask/setup.sh`), headless, gives a DOM with the timeline's lanes and
/// bars, and a screenshot saved as `TARGET/screenshots/html-report.png`.
/// Skipped (with a line saying so) when chromium is missing, unless `CI` is set.
#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing on CI (xtask/setup.sh installs it)");
        println!("skipped: no `chromium` on PATH (xtask/setup.sh installs it)");
        return;
    };
    let dir = pipeline();
    let html = dir.path().join("run.html");
    let ran = EngineRun::new(dir.path()).args(["--no-cache", "--workers", "2", "--report-html"]).args([&html]).run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let lanes = workers(&ran.report()).len();
    let profile = tempfile::tempdir().unwrap();
    let headless = |extra: &[&str]| {
        let mut c = std::process::Command::new(&browser);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1200,1400"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&html);
        let m = crate::util::run_measured(c, std::time::Duration::from_secs(90));
        assert!(
            m.output.status.success(),
            "{} failed ({:?}): {}",
            browser.display(),
            m.output.status,
            String::from_utf8_lossy(&m.output.stderr)
        );
        String::from_utf8_lossy(&m.output.stdout).into_owned()
    };
    let dom = headless(&["--dump-dom"]);
    // What the browser built from the page, not the page's text.
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    assert_eq!(dom.matches("<g class=\"lane\"").count(), lanes, "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar ok\"").count(), 9, "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar fail\"").count(), 1, "{dom}");
    assert!(dom.contains("requested 512 MiB, used at most "), "{dom}");
    let shots = crate::util::target_dir().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("html-report.png");
    let _ = std::fs::remove_file(&shot);
    headless(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
}
