//! The action cache end to end: which changes are hits and which are misses,
//! the cache controls, `--dry-run`, `engine cat` / `engine logs`, and resuming
//! after the engine is killed at random points.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{EngineRun, engine, guest, run_engine};

/// A command task `a` (args, env, a mount, a `file:` input) feeding an SDK
/// task `b` (params). `edit` rewrites the pipeline text before it is written.
fn setup(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.txt"), "hello\n").unwrap();
    std::fs::create_dir(dir.path().join("mnt")).unwrap();
    std::fs::write(dir.path().join("mnt/m.txt"), "mounted\n").unwrap();
    std::fs::copy(guest("echo"), dir.path().join("echo.wasm")).unwrap();
    write_pipeline(dir.path(), &edit(base_pipeline()));
    dir
}

fn base_pipeline() -> String {
    format!(
        r#"[pipeline]
name = "cached"

[plugins]
probe = "{}"
echo = "echo.wasm"

[tasks.a]
plugin = "probe"
inputs = {{ x = "file:x.txt" }}
args = ["cat", "/in/x", "cat", "/m/m.txt"]
env = {{ MODE = "one" }}
mounts = {{ "/m" = "file:mnt" }}
stdout = "out"
priority = 0

[tasks.b]
plugin = "echo"
inputs = {{ x = "a" }}
params = {{ text = "b" }}

[outputs]
"b.txt" = "b.x"
"#,
        guest("cmd_probe").display()
    )
}

fn write_pipeline(dir: &Path, text: &str) {
    std::fs::write(dir.join("pipeline.toml"), text).unwrap();
}

/// Run the pipeline in `dir`; return the report.
fn run(dir: &Path, extra: &[&str]) -> Value {
    EngineRun::new(dir).args(extra).run().ok().report()
}

fn cached(r: &Value, id: &str) -> bool {
    let t = r["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
    t["cached"].as_bool().unwrap()
}

/// After a first run, apply `change` and run again: is task `a` a hit?
fn a_is_hit_after(change: impl Fn(&Path)) -> bool {
    let dir = setup(|s| s);
    let first = run(dir.path(), &[]);
    assert!(!cached(&first, "a") && !cached(&first, "b"));
    change(dir.path());
    let second = run(dir.path(), &[]);
    assert!(std::fs::read_to_string(dir.path().join("b.txt")).unwrap().starts_with("h"));
    cached(&second, "a")
}

fn edit(dir: &Path, from: &str, to: &str) {
    let p = dir.join("pipeline.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "{from} not in the pipeline");
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_unchanged_rerun_is_all_hits_with_the_same_outputs() {
    let dir = setup(|s| s);
    let first = run(dir.path(), &[]);
    let out1 = std::fs::read(dir.path().join("b.txt")).unwrap();
    assert_eq!(out1, b"hello\nmounted\n");
    std::fs::remove_file(dir.path().join("b.txt")).unwrap();
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--report", "report.json"]);
    assert!(
        o.stdout.starts_with("succeeded: 2 tasks: 2 succeeded (2 cached), 0 failed, 0 skipped, 0 cancelled in "),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("slowest:"), "{}", o.stdout);
    let second: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(second["counts"]["cached"], 2);
    for id in ["a", "b"] {
        let t1 = first["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
        let t2 = second["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
        assert_eq!(t1["outputs"], t2["outputs"], "{id}");
        assert_eq!(t1["cache_key"], t2["cache_key"], "{id}");
        assert_eq!((t2["cached"].as_bool(), t2["attempts"].as_u64()), (Some(true), Some(0)));
        assert!(t2.get("worker").is_none());
    }
    // The `[outputs]` of a fully cached run are written all the same.
    assert_eq!(std::fs::read(dir.path().join("b.txt")).unwrap(), out1);
}

#[test]
fn changed_params_are_a_miss() {
    let dir = setup(|s| s);
    run(dir.path(), &[]);
    edit(dir.path(), r#"text = "b""#, r#"text = "c""#);
    let r = run(dir.path(), &[]);
    assert!(cached(&r, "a"));
    assert!(!cached(&r, "b"));
}

#[test]
fn changed_plugin_bytes_are_a_miss() {
    let dir = setup(|s| s);
    run(dir.path(), &[]);
    // Append a custom section: a different, still valid module.
    let mut bytes = std::fs::read(dir.path().join("echo.wasm")).unwrap();
    bytes.extend_from_slice(b"\x00\x04\x03abc");
    std::fs::write(dir.path().join("echo.wasm"), bytes).unwrap();
    let r = run(dir.path(), &[]);
    assert!(cached(&r, "a"));
    assert!(!cached(&r, "b"));
}

#[test]
fn changed_input_bytes_are_a_miss() {
    assert!(!a_is_hit_after(|d| std::fs::write(d.join("x.txt"), "hullo\n").unwrap()));
}

#[test]
fn changed_args_are_a_miss() {
    assert!(!a_is_hit_after(|d| edit(d, r#""cat", "/m/m.txt"]"#, r#""cat", "/m/m.txt", "cat", "/m/m.txt"]"#)));
}

#[test]
fn changed_env_is_a_miss() {
    assert!(!a_is_hit_after(|d| edit(d, r#"MODE = "one""#, r#"MODE = "two""#)));
}

#[test]
fn changed_mount_contents_are_a_miss() {
    assert!(!a_is_hit_after(|d| std::fs::write(d.join("mnt/m.txt"), "MOUNTED\n").unwrap()));
}

#[test]
fn changed_priority_is_a_hit() {
    assert!(a_is_hit_after(|d| edit(d, "priority = 0", "priority = 5")));
}

#[test]
fn changed_retries_are_a_hit() {
    assert!(a_is_hit_after(|d| edit(d, "priority = 0", "retries = 3")));
}

#[test]
fn changed_timeout_is_a_hit() {
    assert!(a_is_hit_after(|d| edit(d, "priority = 0", r#"timeout = "1m""#)));
}

#[test]
fn changed_resources_are_a_hit() {
    assert!(a_is_hit_after(|d| edit(d, "priority = 0", r#"resources = { cpu = 1, memory = "512MiB" }"#)));
}

#[test]
fn a_renamed_task_is_a_hit() {
    let dir = setup(|s| s);
    run(dir.path(), &[]);
    edit(dir.path(), "[tasks.a]", "[tasks.first]");
    edit(dir.path(), r#"x = "a""#, r#"x = "first""#);
    let r = run(dir.path(), &[]);
    assert!(cached(&r, "first"));
    assert!(cached(&r, "b"));
}

#[test]
fn cache_false_no_cache_and_rerun_run_the_task_again() {
    let dir = setup(|s| s.replace("priority = 0", "cache = false"));
    run(dir.path(), &[]);
    let r = run(dir.path(), &[]);
    assert!(!cached(&r, "a"), "cache = false");
    assert!(r["tasks"][0].get("cache_key").is_none());
    // `b`'s input is the same bytes, so it is still a hit.
    assert!(cached(&r, "b"));
    let r = run(dir.path(), &["--no-cache"]);
    assert!(!cached(&r, "b"), "--no-cache");
    let r = run(dir.path(), &["--rerun", "b"]);
    assert!(!cached(&r, "b"), "--rerun");
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--rerun", "nope*"]);
    assert_eq!(o.code, 2);
    assert_eq!(o.stderr, "error: --rerun `nope*` matches no task of the pipeline\n");
}

#[test]
fn default_cache_false_applies_to_every_task() {
    let dir = setup(|s| s.replace("[tasks.a]", "[defaults]\ncache = false\n\n[tasks.a]"));
    run(dir.path(), &[]);
    let r = run(dir.path(), &[]);
    assert!(!cached(&r, "a") && !cached(&r, "b"));
    assert_eq!(r["counts"]["cached"], 0);
}

#[test]
fn dry_run_names_what_changed() {
    let dir = setup(|s| s);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run"]);
    assert_eq!(
        o.stdout,
        "miss  a: no earlier run of this pipeline\nmiss  b: input `x` comes from `a`, which runs\ndry run: 2 tasks: 0 hits, 2 misses\n"
    );
    run(dir.path(), &[]);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run"]);
    assert_eq!(o.stdout, "hit   a\nhit   b\ndry run: 2 tasks: 2 hits, 0 misses\n");
    edit(dir.path(), r#"MODE = "one""#, r#"MODE = "two""#);
    edit(dir.path(), r#"text = "b""#, r#"text = "c""#);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run"]);
    assert_eq!(
        o.stdout,
        "miss  a: changed since the last run: env\nmiss  b: input `x` comes from `a`, which runs\ndry run: 2 tasks: 0 hits, 2 misses\n"
    );
    // Env back: `a` is a hit, and `b` is a miss for its params alone.
    edit(dir.path(), r#"MODE = "two""#, r#"MODE = "one""#);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run", "--rerun", "zz*"]);
    assert_eq!(o.code, 2);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run"]);
    assert_eq!(o.stdout, "hit   a\nmiss  b: changed since the last run: params\ndry run: 2 tasks: 1 hits, 1 misses\n");
    // Nothing ran: the real run still finds `b` changed.
    let r = run(dir.path(), &[]);
    assert!(cached(&r, "a") && !cached(&r, "b"));
}

#[test]
fn cat_and_logs_read_the_latest_run() {
    let dir = setup(|s| s.replace(r#"text = "b""#, r#"text = "b", log = "hello from b""#));
    run(dir.path(), &[]);
    let o = run_engine(dir.path(), &["cat", "a"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "hello\nmounted\n"));
    let o = run_engine(dir.path(), &["cat", "b.out"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "b"));
    let o = run_engine(dir.path(), &["cat", "b"]);
    assert_eq!(o.stdout, "b");
    let o = run_engine(dir.path(), &["cat", "b.nope"]);
    assert_eq!((o.code, o.stderr.as_str()), (2, "error: task `b` has no output `nope` (its outputs: out, x)\n"));
    let r: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let digest = r["tasks"][0]["outputs"]["out"]["digest"].as_str().unwrap().to_string();
    let o = run_engine(dir.path(), &["cat", &digest]);
    assert_eq!(o.stdout, "hello\nmounted\n");
    let o = run_engine(dir.path(), &["logs", "b"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("hello from b"), "{}", o.stdout);
    let o = run_engine(dir.path(), &["logs", "b", "--attempt", "2"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("error: task `b` has no log of attempt 2 in the latest run ("), "{}", o.stderr);
    let o = run_engine(dir.path(), &["cat", "zz"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("error: no task `zz` in the latest run ("), "{}", o.stderr);
    // A later run on a file:// store (recorded in .engine-runs) is the latest:
    // without --store, cat and logs follow it to its store.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let edited =
        std::fs::read_to_string(dir.path().join("pipeline.toml")).unwrap().replace("hello from b", "hi from b");
    std::fs::write(dir.path().join("pipeline.toml"), edited).unwrap();
    let spec = format!("file://{}", shared.display());
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--store", &spec]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    std::fs::remove_dir_all(dir.path().join(".engine-store/packs")).unwrap();
    let o = run_engine(dir.path(), &["cat", "b"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "b"), "{}", o.stderr);
    let o = run_engine(dir.path(), &["logs", "b"]);
    assert!(o.stdout.contains("hi from b") && !o.stdout.contains("hello"), "{}{}", o.stdout, o.stderr);
}

#[test]
fn outputs_of_succeeded_tasks_are_written_when_another_fails() {
    let dir = setup(|s| {
        s + r#"
[tasks.bad]
plugin = "probe"
args = ["exit", "3"]

[tasks.after]
plugin = "echo"
inputs = { x = "bad.out" }

"#
    });
    // `[outputs]` must stay the last table: add the failing pair's output to it.
    let p = dir.path().join("pipeline.toml");
    let s = std::fs::read_to_string(&p).unwrap().replace("[outputs]\n\"b.txt\" = \"b.x\"\n", "");
    std::fs::write(&p, s + "[outputs]\n\"b.txt\" = \"b.x\"\n\"after.txt\" = \"after.x\"\n").unwrap();
    let o = run_engine(dir.path(), &["run", "pipeline.toml"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("b.txt")).unwrap(), "hello\nmounted\n");
    assert!(!dir.path().join("after.txt").exists());
    assert!(
        o.stdout.contains(&format!("not written: {} (task `after` skipped)\n", dir.path().join("after.txt").display())),
        "{}",
        o.stdout
    );
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn resume_pipeline(dir: &Path) {
    let text = format!(
        r#"[pipeline]
name = "resume"

[plugins]
probe = "{probe}"
echo = "{echo}"

[tasks.gen]
plugin = "echo"
foreach = {{ i = {{ range = [0, 150] }} }}
params = {{ text = "item {{i}}", log = "gen {{i}}" }}

[tasks.cmd]
plugin = "probe"
foreach = {{ i = {{ range = [0, 150] }} }}
inputs = {{ x = "gen[{{i}}]" }}
args = ["cat", "/in/x", "write", "/out/r", "done {{i}}"]

[tasks.all]
plugin = "echo"
inputs = {{ parts = "cmd[*].r" }}
params = {{ log = "all" }}

[outputs]
"first.txt" = "cmd[0].r"
"last.txt" = "cmd[149].r"
"#,
        probe = guest("cmd_probe").display(),
        echo = guest("echo").display()
    );
    write_pipeline(dir, &text);
}

/// The run directories under `runs`.
fn run_dirs(runs: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(runs).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

/// Completed attempts across every run under `runs` but those in `before`:
/// each task of the resume pipeline logs once per completed attempt.
fn completed_attempts(runs: &Path, before: &[std::path::PathBuf]) -> usize {
    let mut n = 0;
    for run in run_dirs(runs).into_iter().filter(|r| !before.contains(r)) {
        n += std::fs::read_dir(run.join("logs")).into_iter().flatten().count();
    }
    n
}

/// Where a kill-and-resume test keeps its store: `args` name it, `env`
/// prepares each `engine` command, `runs` is where the run history lands.
pub(crate) struct Resumable<'a> {
    /// Every `engine run` gets these (the store, the executor, `--workers`).
    pub args: &'a [&'a str],
    pub env: &'a dyn Fn(&mut std::process::Command),
    pub runs: &'a Path,
    /// How many tasks the engine can have started and not yet seen finish:
    /// at most these are completed twice per kill.
    pub in_flight: usize,
}

/// `engine run` in `dir` with the store of `r`; the report.
fn run_on(dir: &Path, r: &Resumable, extra: &[&str]) -> Value {
    EngineRun::new(dir).args(r.args).args(extra).with(r.env).run().ok().report()
}

/// The resume pipeline killed with SIGKILL `kills` times at random points
/// (the seed is printed; `SEED` replays it), each kill followed by a resume;
/// then checked against an uninterrupted run: the same outputs, and every
/// task completed once except at most the ones running at each kill. Returns
/// the final report.
pub(crate) fn kill_and_resume(r: &Resumable, kills: usize) -> Value {
    let seed: u64 = std::env::var("SEED").ok().and_then(|k| k.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill_and_resume: SEED={seed} KILLS={kills}");
    let mut rng = Lcg(seed);
    let total = 301;

    // The reference: one uninterrupted run, on a local store.
    let reference = tempfile::tempdir().unwrap();
    resume_pipeline(reference.path());
    let want = run(reference.path(), &["--workers", "2", "--no-cache"]);
    // How long a run takes on this store, to spread the kills over it.
    let timing = tempfile::tempdir().unwrap();
    resume_pipeline(timing.path());
    let t0 = Instant::now();
    run_on(timing.path(), r, &["--no-cache"]);
    let full = t0.elapsed().max(Duration::from_millis(50));

    let dir = tempfile::tempdir().unwrap();
    resume_pipeline(dir.path());
    // (A shared store directory also holds the timing run's history.)
    let before = run_dirs(&dir.path().join(r.runs));
    for k in 0..kills {
        let mut cmd = engine();
        cmd.args(["run", "pipeline.toml", "--quiet"]).args(r.args);
        (r.env)(&mut cmd);
        let mut child = cmd.current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let at = Duration::from_micros(rng.next(full.as_micros() as u64 + 1));
        std::thread::sleep(at);
        // SAFETY: killing the engine process we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        eprintln!("kill {k} after {at:?}");
    }
    let got = run_on(dir.path(), r, &[]);
    assert_eq!(got["status"], "succeeded");
    for (w, g) in want["tasks"].as_array().unwrap().iter().zip(got["tasks"].as_array().unwrap()) {
        assert_eq!((&w["id"], &w["outputs"]), (&g["id"], &g["outputs"]), "SEED={seed}");
    }
    for f in ["first.txt", "last.txt"] {
        assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), std::fs::read(reference.path().join(f)).unwrap());
    }
    // Each task completed once, except at most the ones running at each kill.
    let done = completed_attempts(&dir.path().join(r.runs), &before);
    assert!(done >= total, "{done} completed attempts for {total} tasks (SEED={seed})");
    assert!(
        done <= total + kills * r.in_flight,
        "{done} completed attempts for {total} tasks and {kills} kills (SEED={seed})"
    );
    // A further run is all hits.
    let again = run_on(dir.path(), r, &[]);
    assert_eq!(again["counts"]["cached"], total);
    again
}

/// `KILLS` (default 10) kills of the engine with SIGKILL at random points,
/// each followed by a resume; then a final run.
#[test]
fn killed_runs_resume_to_the_same_outputs() {
    let kills: usize = std::env::var("KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(10);
    let no_env = |_: &mut std::process::Command| {};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.display().to_string();
    let runs = store.join("runs");
    kill_and_resume(
        &Resumable { args: &["--workers", "2", "--store", &store_arg], env: &no_env, runs: &runs, in_flight: 2 },
        kills,
    );
    // No temp files are left to grow, and the store checks out.
    let tmp: Vec<_> = std::fs::read_dir(store.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    let v = run_engine(dir.path(), &["store", "verify", "--store", &store_arg]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(!v.stdout.contains("corrupt:"), "{}", v.stdout);
}

#[test]
fn a_record_whose_blob_was_removed_by_hand_recomputes() {
    // `a`'s output is large enough to be an object file of its own.
    let dir = setup(|s| s);
    std::fs::write(dir.path().join("x.txt"), "z".repeat(100_000)).unwrap();
    let first = run(dir.path(), &[]);
    let digest = first["tasks"][0]["outputs"]["out"]["digest"].as_str().unwrap().to_string();
    let object = dir.path().join(".engine-store/objects").join(&digest[..2]).join(&digest);
    std::fs::remove_file(&object).unwrap();
    let v = run_engine(dir.path(), &["store", "verify"]);
    assert_eq!(v.code, 1);
    assert!(v.stdout.contains(&format!("names output `out` = {digest}, which is not in the store")), "{}", v.stdout);
    let o = run_engine(dir.path(), &["run", "pipeline.toml", "--dry-run"]);
    assert!(o.stdout.starts_with("miss  a: a recorded output is no longer in the store\n"), "{}", o.stdout);
    let second = run(dir.path(), &[]);
    assert!(!cached(&second, "a"));
    assert!(cached(&second, "b"), "the same bytes again: `b` is a hit");
    assert!(object.exists());
    assert_eq!(run_engine(dir.path(), &["store", "verify"]).code, 0);
}

#[test]
fn verify_names_a_corrupt_object() {
    let dir = setup(|s| s);
    std::fs::write(dir.path().join("x.txt"), "z".repeat(100_000)).unwrap();
    let first = run(dir.path(), &[]);
    let digest = first["tasks"][0]["outputs"]["out"]["digest"].as_str().unwrap().to_string();
    let object = dir.path().join(".engine-store/objects").join(&digest[..2]).join(&digest);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[500] = b'y';
    std::fs::write(&object, &bytes).unwrap();
    let v = run_engine(dir.path(), &["store", "verify"]);
    assert_eq!(v.code, 1);
    let got = engine::store::Digest::of(&bytes);
    assert!(v.stdout.contains(&format!("corrupt: {}: its bytes hash to {got}\n", object.display())), "{}", v.stdout);
    // The object, and the two records (`a.out`, `b.x`) that name it.
    assert!(v.stdout.ends_with(": 3 problems\n"), "{}", v.stdout);
}

#[test]
fn verify_reads_on_past_a_corrupt_record_in_a_pack() {
    // `a`'s small output sits in a pack, among other records.
    let dir = setup(|s| s);
    let first = run(dir.path(), &[]);
    let digest = first["tasks"][0]["outputs"]["out"]["digest"].as_str().unwrap().to_string();
    let v = run_engine(dir.path(), &["store", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let counts = v.stdout.lines().last().unwrap().split(": ").nth(1).unwrap().to_string();
    let packs = dir.path().join(".engine-store/packs");
    let pack = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = bytes.windows(14).position(|w| w == b"hello\nmounted\n").expect("the blob in the pack");
    bytes[at] = b'J';
    std::fs::write(&pack, &bytes).unwrap();
    let v = run_engine(dir.path(), &["store", "verify"]);
    assert_eq!(v.code, 1);
    let got = engine::store::Digest::of(b"Jello\nmounted\n");
    assert!(v.stdout.contains(&format!(" has bytes that hash to {got}\n")), "{}", v.stdout);
    assert!(v.stdout.contains(&format!("corrupt: {} at offset ", pack.display())), "{}", v.stdout);
    // The records after it are still read: the two action records naming it
    // are flagged, and every other record is counted as before, less the blob.
    assert!(v.stdout.contains(&format!("names output `out` = {digest}, which is not in the store")), "{}", v.stdout);
    assert!(v.stdout.ends_with(": 3 problems\n"), "{}", v.stdout);
    let last = v.stdout.lines().last().unwrap().to_string();
    let blobs = |c: &str| c.split(' ').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(blobs(last.split(": ").nth(1).unwrap()), blobs(&counts) - 1, "{last} / {counts}");
}

#[test]
fn gc_keeps_the_last_run_and_waits_for_a_running_one() {
    let dir = setup(|s| s);
    run(dir.path(), &[]);
    edit(dir.path(), r#"text = "b""#, r#"text = "c""#);
    run(dir.path(), &[]);
    // Dry run first: nothing goes. What would: the first run's `b.out`,
    // the copy of the `file:` input (stored again by each run that needs
    // it), `b`'s first record and the first run's directory.
    let o = run_engine(dir.path(), &["gc", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("would remove 2 blobs, 1 action records and 1 runs ("), "{}", o.stdout);
    let o = run_engine(dir.path(), &["gc", "--dry-run"]);
    assert!(o.stdout.starts_with("would remove 2 blobs, 1 action records and 1 runs ("), "{}", o.stdout);
    // A slow run holds the store while gc is asked to run.
    let slow = dir.path().join("slow");
    std::fs::create_dir(&slow).unwrap();
    std::fs::write(
        slow.join("pipeline.toml"),
        format!(
            "[pipeline]\nname = \"slow\"\n[plugins]\nsleep = \"{}\"\n[tasks.s]\nplugin = \"sleep\"\nparams = {{ ms = 1500 }}\n",
            guest("sleep_ms").display()
        ),
    )
    .unwrap();
    let store = dir.path().join(".engine-store");
    let mut child = engine()
        .args(["run", "pipeline.toml", "--store", store.to_str().unwrap(), "--report", "report.json"])
        .current_dir(&slow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let o = run_engine(dir.path(), &["gc"]);
    assert!(child.wait().unwrap().success());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr, "waiting for the runs using the store to finish...\n");
    // The slow run finished before gc started, so it is one of the pipelines kept.
    assert!(o.stdout.starts_with("removed 2 blobs, 1 action records and 1 runs ("), "{}", o.stdout);
    assert!(o.stdout.ends_with("; kept 2 runs\n"), "{}", o.stdout);
    let r = run(dir.path(), &[]);
    assert!(cached(&r, "a") && cached(&r, "b"));
    assert_eq!(run_engine(&slow, &["cat", "s", "--store", store.to_str().unwrap()]).stdout, "slept 1500\n");
    assert_eq!(run_engine(dir.path(), &["store", "verify"]).code, 0);
}
