//! `engine run --dashboard`: the server-sent event stream over plain HTTP
//! (progress mid-run, the final state with the failure and its log tail),
//! the page's paths and headers (no URL outside the engine), the warning for
//! a non-loopback address, and the page in headless chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{EngineRun, guest};

/// `n` 1-CPU naps of `ms` milliseconds (family `nap[*]`), and `bad`, which
/// runs first, prints a line and exits 3.
fn pipeline(n: u32, ms: u32) -> tempfile::TempDir {
    pipeline_with(n, ms, "")
}

/// [`pipeline`] with `more` appended to the file.
fn pipeline_with(n: u32, ms: u32, more: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        r#"[pipeline]
name = "dash"

[plugins]
sleep_ms = "{}"
probe = "{}"

[tasks.nap]
plugin = "sleep_ms"
foreach = {{ i = {{ range = [0, {n}] }} }}
params = {{ ms = {ms} }}

[tasks.bad]
plugin = "probe"
priority = 10
args = ["write", "/out/x", "hi", "exit", "3"]
"#,
        guest("sleep_ms").display(),
        guest("cmd_probe").display()
    );
    text.push_str(more);
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

/// A run with its dashboard on a free loopback port, lingering a minute.
struct Live {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Live {
    fn start(dir: &std::path::Path, executor: &str) -> Live {
        let mut child = EngineRun::new(dir)
            .executor(executor)
            .args(["--no-cache", "--workers", "2", "--dashboard", "127.0.0.1:0", "--dashboard-linger", "60s"])
            .spawn();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let all = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(url) = line.strip_prefix("dashboard: http://") {
                    let _ = tx.send(url.trim_end().trim_end_matches('/').to_string());
                }
                all.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("no `dashboard: http://` line on stderr");
        assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");
        Live { child, addr, stderr }
    }

    /// One request; the whole response (the server closes the connection).
    fn request(&self, text: &str) -> (String, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.write_all(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {out}"));
        (head.to_string(), body.to_string())
    }

    fn get(&self, path: &str) -> (String, String) {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr))
    }

    fn state(&self) -> Value {
        let (head, body) = self.get("/state");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        serde_json::from_str(&body).unwrap()
    }

    /// Wait until stderr has `text`.
    fn wait_for(&self, text: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while !self.stderr.lock().unwrap().contains(text) {
            assert!(Instant::now() < until, "no `{text}` in {}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C (which ends the linger) and the exit status.
    fn stop(mut self) -> (i32, String) {
        // SAFETY: signalling our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn done(s: &Value) -> u64 {
    let c = &s["counts"];
    ["succeeded", "failed", "skipped", "cancelled"].iter().map(|k| c[k].as_u64().unwrap_or(0)).sum()
}

fn ended(s: &Value) -> bool {
    ["succeeded", "failed", "interrupted"].contains(&s["status"].as_str().unwrap_or(""))
}

/// The snapshots of `/events` until the run ends.
fn stream(addr: &str) -> Vec<Value> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/event-stream\r\n"), "{head}");
    let mut snaps = Vec::new();
    let mut line = String::new();
    while r.read_line(&mut line).unwrap() > 0 {
        if let Some(json) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(json.trim_end()).unwrap();
            let end = ended(&v);
            snaps.push(v);
            if end {
                break;
            }
        }
        line.clear();
    }
    snaps
}

#[test]
fn the_dashboard_streams_progress_and_the_final_state_over_sse() {
    for executor in ["threads", "processes"] {
        let dir = pipeline(40, 50);
        let live = Live::start(dir.path(), executor);
        let snaps = stream(&live.addr);
        assert!(snaps.len() >= 2, "{executor}: {snaps:?}");
        // It updated while the run went on: some snapshot shows part of the work done.
        let total = 41;
        assert!(
            snaps.iter().any(|s| s["status"] == "running" && done(s) > 0 && done(s) < total),
            "{executor}: {:?}",
            snaps.iter().map(|s| (s["status"].clone(), done(s))).collect::<Vec<_>>()
        );
        let last = snaps.last().unwrap();
        assert_eq!(last["status"], "failed", "{executor}");
        assert_eq!(last["executor"], executor);
        assert_eq!(last["workers"], 2);
        let c = &last["counts"];
        assert_eq!((c["total"].as_u64(), c["succeeded"].as_u64(), c["failed"].as_u64()), (Some(41), Some(40), Some(1)));
        // Two families, no task of one depends on the other.
        assert_eq!(last["edges"], serde_json::json!([]), "{executor}");
        let nap = last["families"].as_array().unwrap().iter().find(|f| f["name"] == "nap[*]").unwrap();
        assert_eq!(
            nap,
            &serde_json::json!({"name": "nap[*]", "total": 40, "succeeded": 40, "cached": 0, "failed": 0, "running": 0})
        );
        assert_eq!(
            last["failures"],
            serde_json::json!([{ "task": "bad", "attempt": 1, "kind": "error",
                "message": "task error: exited with code 3", "log_tail": "write /out/x: ok" }])
        );
        let bars: usize = last["lanes"].as_array().unwrap().iter().map(|l| l["bars"].as_array().unwrap().len()).sum();
        assert_eq!(bars, 41, "{executor}");
        assert_eq!(last["in_use"]["cpu"], 0.0);
        // Lingering: the final state is still served.
        live.wait_for(&format!(
            "dashboard: the run has ended; serving its final state at http://{}/ for 1m00s (Ctrl-C to stop)\n",
            live.addr
        ));
        assert_eq!(&live.state(), last);
        let (code, err) = live.stop();
        assert_eq!(code, 1, "{executor}: {err}");
    }
}

#[test]
fn the_dashboard_page_loads_nothing_from_elsewhere_and_answers_only_its_paths() {
    let dir = pipeline(2, 1);
    let live = Live::start(dir.path(), "threads");
    let (head, page) = live.get("/");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"), "{head}");
    assert!(
        head.contains(
            "\r\nContent-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'\r\n"
        ),
        "{head}"
    );
    // No URL at all, and nothing that would load one.
    for bad in ["http://", "https://", "//cdn", "src=", "<link", "@import", "url(", "<iframe", "<img"] {
        assert!(!page.contains(bad), "`{bad}` in the page");
    }
    assert!(page.contains("<script id=\"state\" type=\"application/json\">{"), "the state is embedded");
    assert!(page.contains("new EventSource(\"/events\")"));
    let (head, _) = live.get("/nope");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let (head, _) = live.request(&format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n", live.addr));
    assert!(head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{head}");
    // A DNS name rebound to 127.0.0.1 does not reach it.
    let (head, _) = live.request("GET /state HTTP/1.1\r\nHost: evil.example:8787\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    let (head, _) = live
        .request(&format!("GET /state HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", live.addr.split(':').nth(1).unwrap()));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // A head of exactly 8 KiB is read; one byte more is refused.
    let host = format!("GET /state HTTP/1.1\r\nHost: {}\r\nX-Pad: ", live.addr);
    let pad = |n: usize| format!("{host}{}\r\n\r\n", "a".repeat(n - host.len() - 4));
    let (head, _) = live.request(&pad(8192));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (head, body) = live.request(&pad(8193));
    assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
    assert_eq!(body, "request head over 8 KiB\n");
    live.stop();
}

#[test]
fn a_dashboard_off_loopback_warns_and_bad_arguments_are_refused() {
    let dir = pipeline(1, 1);
    let ran = EngineRun::new(dir.path()).args(["--dashboard", "0.0.0.0:0"]).run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let mut lines = ran.stderr.lines();
    let url = lines.next().unwrap().strip_prefix("dashboard: ").unwrap_or_else(|| panic!("{}", ran.stderr));
    assert!(url.starts_with("http://0.0.0.0:") && url.ends_with('/'), "{url}");
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "warning: the dashboard at {url} has no authentication: anyone who can reach this address sees the run's tasks, errors and logs"
        )
    );
    // Loopback: no warning.
    let ran = EngineRun::new(dir.path()).args(["--dashboard=127.0.0.1:0", "--quiet"]).run();
    assert_eq!(ran.code, 1);
    assert!(!ran.stderr.contains("warning:"), "{}", ran.stderr);
    assert!(ran.stderr.starts_with("dashboard: http://127.0.0.1:"), "{}", ran.stderr);
    for args in [&["--dashboard=nope"][..], &["--dashboard=127.0.0.1:99999"], &["--dashboard-linger", "5s"]] {
        let ran = EngineRun::new(dir.path()).args(args).run();
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.starts_with("error: "), "{}", ran.stderr);
    }
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let ran = EngineRun::new(dir.path()).args([format!("--dashboard={addr}")]).run();
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(ran.stderr.starts_with(&format!("error: cannot serve the dashboard at {addr}: ")), "{}", ran.stderr);
}

/// The page in a real browser (Debian's `chromium`, headless, as for the
/// HTML report): while the run goes on, the DOM shows non-zero progress and
/// the failed task with its log tail; the browser's network log shows no
/// request but to the engine; a screenshot is saved as
/// `TARGET/screenshots/dashboard.png`. Skipped when chromium is missing,
/// unless `CI` is set.
#[test]
fn the_dashboard_renders_in_headless_chromium_and_asks_only_the_engine() {
    let Some(browser) = crate::html::chromium() else {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing on CI (xtask/setup.sh installs it)");
        println!("skipped: no `chromium` on PATH (xtask/setup.sh installs it)");
        return;
    };
    // 10,000 naps of 1 ms on 2 workers (several seconds), and `tally`,
    // which takes them all, so the graph has an edge `nap[*]` → `tally`.
    let tally = "\n[tasks.tally]\nplugin = \"probe\"\ninputs = { naps = \"nap[*]\" }\nargs = [\"exit\", \"0\"]\n";
    let dir = pipeline_with(10_000, 1, tally);
    let live = Live::start(dir.path(), "threads");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = live.state();
        if done(&s) > 1 && !s["failures"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < until, "no progress: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://{}/", live.addr);
    let profile = tempfile::tempdir().unwrap();
    let netlog = profile.path().join("netlog.json");
    let headless = |extra: &[&str]| {
        let mut c = std::process::Command::new(&browser);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1200,1300"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url);
        let m = crate::util::run_measured(c, Duration::from_secs(90));
        assert!(
            m.output.status.success(),
            "{} failed: {}",
            browser.display(),
            String::from_utf8_lossy(&m.output.stderr)
        );
        String::from_utf8_lossy(&m.output.stdout).into_owned()
    };
    // The page is loaded mid-run and dumped once its stream has closed,
    // at the end of the run (virtual time does not pass while the stream
    // is open): it drew live updates, from the progress it loaded with to
    // the end.
    let dom = headless(&["--dump-dom", "--virtual-time-budget=1000", &format!("--log-net-log={}", netlog.display())]);
    // What the page's script built, not the page's text.
    let summary = dom.split("<p id=\"summary\">").nth(1).and_then(|s| s.split('/').next()).unwrap_or("");
    let shown: u64 = summary.parse().unwrap_or_else(|_| panic!("no summary in {dom}"));
    assert_eq!(shown, 10_002, "{dom}");
    assert!(dom.contains("data-updates=\"") && !dom.contains("data-updates=\"0\""), "{dom}");
    let first = dom.split("data-first-done=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
    let first: u64 = first.parse().unwrap_or_else(|_| panic!("no data-first-done in {dom}"));
    assert!(first > 0 && first < 10_002, "{dom}");
    assert!(dom.contains(">the run has ended</p>"), "{dom}");
    assert!(dom.contains("data-from=\"nap[*]\" data-to=\"tally\""), "{dom}");
    assert!(dom.contains("data-family=\"tally\" data-state=\"succeeded\""), "{dom}");
    assert!(dom.contains("data-family=\"bad\" data-state=\"failed\""), "{dom}");
    assert!(
        dom.contains("<code>bad</code> failed after 1 attempt (error): task error: exited with code 3</p>"),
        "{dom}"
    );
    assert!(dom.contains("<pre>write /out/x: ok</pre>"), "{dom}");
    assert!(dom.contains("<g class=\"lane\" data-worker=\"0\">"), "{dom}");
    assert!(dom.contains("data-family=\"nap[*]\""), "{dom}");
    // Every request made for the page (its network isolation key names the
    // page's site; the browser's own background requests have another) went
    // to the engine.
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&netlog).unwrap()).expect("the net log is JSON");
    let mut asked = Vec::new();
    for e in log["events"].as_array().unwrap() {
        let p = &e["params"];
        if let (Some(u), Some(key)) = (p["url"].as_str(), p["network_isolation_key"].as_str())
            && key.starts_with("http://127.0.0.1 ")
        {
            assert!(u.starts_with(&url), "the page asked for {u}");
            asked.push(u.to_string());
        }
    }
    assert!(asked.contains(&url), "the net log shows no request for the page: {asked:?}");
    let shots = crate::util::target_dir().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    headless(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    live.stop();
}

#[test]
fn the_dashboard_graph_links_families_including_one_mapped_at_run_time() {
    // split ─(map *)─> copy[*] ─> join, with 5 children.
    let dir = tempfile::tempdir().unwrap();
    crate::fanout::split_pipeline(dir.path(), 50, 5);
    let live = Live::start(dir.path(), "threads");
    live.wait_for("dashboard: the run has ended");
    let s = live.state();
    let fams = s["families"].as_array().unwrap();
    let names: Vec<&str> = fams.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["split", "join", "copy[*]"], "{s}");
    let copy = &fams[2];
    assert_eq!((copy["total"].as_u64(), copy["succeeded"].as_u64()), (Some(5), Some(5)), "{s}");
    // Indexes into `families`: split → copy[*], copy[*] → join.
    assert_eq!(s["edges"], serde_json::json!([[0, 2], [2, 1]]), "{s}");
    assert_eq!(s["edges_more"], 0);
    assert_eq!(s["status"], "succeeded");
    let (code, err) = live.stop();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn without_a_linger_a_client_still_gets_the_final_state() {
    // No --dashboard-linger: the engine exits right after the run; a
    // connected client is sent the final state first.
    let dir = pipeline(20, 20);
    let mut child =
        EngineRun::new(dir.path()).args(["--no-cache", "--workers", "2", "--dashboard", "127.0.0.1:0"]).spawn();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "no `dashboard: http://` line");
        if let Some(url) = line.strip_prefix("dashboard: http://") {
            break url.trim_end().trim_end_matches('/').to_string();
        }
    };
    let snaps = stream(&addr);
    let last = snaps.last().unwrap();
    assert_eq!(last["status"], "failed", "{snaps:?}");
    assert_eq!(done(last), 21);
    assert_eq!(child.wait().unwrap().code(), Some(1));
}
