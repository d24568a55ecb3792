//! `engine run --executor dask` against real Dask processes on loopback: a
//! `dask scheduler` and two `dask worker`s (`w-gpu` with `gpu=1,licence=1`,
//! `w-cpu` with `licence=1`, one thread each) started by
//! `python -m engine_dask.testing` from the venv of `xtask/setup-python.sh`.
//!
//! Tests that leave the cluster as they found it share one (a OnceLock); tests
//! that kill a process or need a worker environment of their own start their
//! own. Kill points are found by polling processes, never by sleeping. The
//! version-mismatch test starts a scheduler and a worker from a second venv
//! with an older `distributed` (`pyenv-old-dask`). Without a venv the tests
//! that need it skip with a loud message, and fail under `CI`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run::{example, pipeline};
use crate::util::{engine, guest, repo_root};
use crate::util::{report, task};

/// The Python of the test venv, if it is there.
fn pyenv() -> Option<PathBuf> {
    venv_python("pyenv", "the Dask tests")
}

/// The Python of the venv with an older `distributed`
/// (`python/requirements-old-dask.txt`), if it is there.
fn old_pyenv() -> Option<PathBuf> {
    venv_python("pyenv-old-dask", "the Dask version-mismatch test")
}

/// `TARGET/VENV/bin/python`; when it is missing, a panic under `CI`, else
/// a loud message that `what` is skipped.
fn venv_python(venv: &str, what: &str) -> Option<PathBuf> {
    let python = crate::util::target_dir().join(venv).join("bin/python");
    if python.exists() {
        return Some(python);
    }
    let msg = format!("{} is missing: run `bash xtask/setup-python.sh`", python.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\nSKIPPING {what}: {msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

/// A running `engine_dask.testing` cluster; torn down (workers first) when
/// dropped, or when this process ends and its stdin closes.
struct Cluster {
    harness: Child,
    python: PathBuf,
    scheduler: String,
    /// Worker name -> (pid, address).
    workers: BTreeMap<String, (u32, String)>,
}

impl Cluster {
    fn start(env: &[(&str, &str)]) -> Option<Cluster> {
        Cluster::start_with(&[], env)
    }

    /// A cluster started with harness options `args` (`--nthreads 2`,
    /// `--workers SPEC`) and extra environment `env` for its processes.
    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Option<Cluster> {
        let python = pyenv()?;
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "engine_dask.testing"])
            .args(args)
            .env("PYTHONPATH", repo_root().join("python"))
            .env("ENGINE_DASK_ENGINE", env!("CARGO_BIN_EXE_engine"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut harness = cmd.spawn().expect("start python -m engine_dask.testing");
        let mut line = String::new();
        BufReader::new(harness.stdout.take().expect("piped")).read_line(&mut line).expect("read the harness line");
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("harness said {line:?}: {e}"));
        let workers = info["workers"]
            .as_object()
            .expect("workers")
            .iter()
            .map(|(k, v)| (k.clone(), (v["pid"].as_u64().unwrap() as u32, v["address"].as_str().unwrap().to_string())))
            .collect();
        Some(Cluster { harness, python, scheduler: info["scheduler"].as_str().unwrap().to_string(), workers })
    }

    fn pid(&self, name: &str) -> u32 {
        self.workers[name].0
    }

    /// `engine run DIR/pipeline.toml --executor dask --scheduler ... ARGS --report DIR/report.json`.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = engine();
        c.env("ENGINE_RETRY_BACKOFF", "10ms")
            .env("ENGINE_DASK_PYTHON", &self.python)
            .env("PYTHONPATH", repo_root().join("python"))
            .arg("run")
            .arg(dir.join("pipeline.toml"))
            .args(["--executor", "dask", "--scheduler", &self.scheduler])
            .args(args)
            .arg("--report")
            .arg(dir.join("report.json"));
        c
    }

    /// Run with the action cache off: these tests check where and how tasks
    /// run, and identical tasks would otherwise be cache hits.
    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args).arg("--no-cache").output().unwrap()
    }

    /// The `started` events the engine's tasks logged on the scheduler.
    fn started_events(&self) -> Vec<Value> {
        let script = "import json, sys\nfrom distributed import Client\n\
                      with Client(sys.argv[1], timeout=10) as c:\n    \
                      print(json.dumps([m for _, m in c.get_events('engine-dask-started')]))";
        let o = Command::new(&self.python).args(["-c", script, &self.scheduler]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap().as_array().unwrap().clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.harness.stdin.take());
        let _ = self.harness.wait();
    }
}

/// The cluster shared by tests that leave it as they found it.
fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start(&[])).as_ref()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
}

fn trace(dir: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("trace.json")).unwrap()).unwrap();
    v["traceEvents"].as_array().unwrap().clone()
}

/// The processes whose parent is `pid` (spawned by any of its threads).
fn children_of(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`; comm may hold spaces, so split after it.
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
            && let Some(child) = e.file_name().to_str().and_then(|s| s.parse().ok())
        {
            v.push(child);
        }
    }
    v
}

/// Poll until some `engine worker` runs under one of `pids` (a task reached
/// that Dask worker); returns the Dask worker's pid.
fn wait_for_engine_worker(pids: &[u32], within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        for &p in pids {
            if !children_of(p).is_empty() {
                return p;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no engine worker started under {pids:?} within {within:?}");
}

#[test]
fn dask_wordcount_gives_the_expected_bytes_and_names_each_dask_worker() {
    let Some(c) = shared() else { return };
    let dir = example("wordcount");
    let o = c.run(dir.path(), &["--trace", dir.path().join("trace.json").to_str().unwrap()]);
    assert_exit(&o, 0);
    for f in ["counts.tsv", "top.tsv"] {
        let got = std::fs::read(dir.path().join("out").join(f)).unwrap();
        let want = std::fs::read(repo_root().join("examples/wordcount/expected").join(f)).unwrap();
        assert!(got == want, "wordcount/{f} on dask differs:\n{}", text(&got));
    }
    let r = report(dir.path());
    assert_eq!(r["executor"], "dask");
    assert_eq!(r["scheduler"], c.scheduler.as_str());
    for t in r["tasks"].as_array().unwrap() {
        let w = t["dask_worker"].as_str().unwrap_or_else(|| panic!("no dask_worker in {t}"));
        assert!(w == "w-gpu" || w == "w-cpu", "{t}");
    }
    // Trace lanes are named after the Dask worker and its thread.
    let lanes: Vec<String> =
        trace(dir.path()).iter().filter(|e| e["ph"] == "M").map(|e| e["args"]["name"].to_string()).collect();
    assert!(lanes.iter().all(|l| l == "\"w-gpu slot 0\"" || l == "\"w-cpu slot 0\""), "{lanes:?}");
}

/// Dask with intermediates in S3 (moto): every example the executors test
/// (`run::examples_give_the_expected_bytes_on_every_executor`, where threads
/// on a local store write exactly `expected/`) writes the same bytes on Dask
/// with `--store s3://`; the workers' `engine worker`s open the bucket
/// themselves. Every blob in the bucket re-hashes to its key and every action
/// record names blobs that are there.
#[cfg(feature = "s3")]
#[test]
fn dask_every_example_on_s3_gives_the_expected_bytes_and_every_blob_hashes_to_its_key() {
    use crate::run::{EXAMPLES_CHECKED_ELSEWHERE, examples_with_expected, output_differences};
    use crate::util::Moto;

    let Some(moto) = Moto::start(false) else { return };
    moto.create_bucket("engine-dask");
    let Some(c) = Cluster::start(&moto.vars()) else { return };
    let examples: Vec<String> = examples_with_expected(&repo_root().join("examples"))
        .into_iter()
        .filter(|e| !EXAMPLES_CHECKED_ELSEWHERE.iter().any(|(n, _)| n == e))
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");
    for name in &examples {
        let dir = example(name);
        let cache = tempfile::tempdir().unwrap();
        let store = format!("s3://engine-dask/{name}");
        let mut cmd = c.command(dir.path(), &["--store", &store]);
        moto.env(&mut cmd);
        let o = cmd.env("ENGINE_CACHE_DIR", cache.path()).output().unwrap();
        assert_exit(&o, 0);
        let diff =
            output_differences(&dir.path().join("out"), &repo_root().join("examples").join(name).join("expected"));
        assert!(diff.is_empty(), "examples/{name} on dask + s3:\n{}", diff.join("\n"));
        assert!(!dir.path().join(".engine-store").exists(), "{name}: a local .engine-store was created");
        let r = report(dir.path());
        assert_eq!(r["executor"], "dask");
        assert_eq!(r["store"], store.as_str());
        assert!(r["tasks"].as_array().unwrap().iter().all(|t| t["dask_worker"].is_string()), "{r}");
        let (blobs, records) = check_bucket(&moto, "engine-dask", name);
        // The inputs and outputs; one record per task.
        assert!(blobs >= 3, "{name}: only {blobs} blobs in the bucket");
        assert_eq!(records, r["tasks"].as_array().unwrap().len(), "{name}: action records");
    }
}

/// Every object under `PREFIX/blobs/` in `bucket` re-hashes to its key, and
/// every record under `PREFIX/actions/` names only blobs that are there;
/// returns how many blobs and records there are.
#[cfg(feature = "s3")]
fn check_bucket(moto: &crate::util::Moto, bucket: &str, prefix: &str) -> (usize, usize) {
    use engine::store::Digest;
    use engine::task::cache::ActionRecord;
    use object_store::path::Path as Key;
    use object_store::{ObjectStore, ObjectStoreExt};

    use crate::util::block_on;

    let client = moto.client(bucket);
    let get = |key: &Key| block_on(async { client.get(key).await.unwrap().bytes().await.unwrap() });
    let blobs = block_on(client.list_with_delimiter(Some(&Key::from(format!("{prefix}/blobs"))))).unwrap().objects;
    let mut names = std::collections::BTreeSet::new();
    for obj in &blobs {
        let name = obj.location.filename().unwrap().to_string();
        assert_eq!(Digest::of(&get(&obj.location)).to_hex(), name, "{} does not hash to its key", obj.location);
        names.insert(name);
    }
    let records = block_on(client.list_with_delimiter(Some(&Key::from(format!("{prefix}/actions"))))).unwrap().objects;
    for obj in &records {
        let rec = ActionRecord::decode(&get(&obj.location))
            .unwrap_or_else(|| panic!("{} is not an action record", obj.location));
        for out in &rec.outputs {
            assert!(names.contains(&out.blob.digest.to_hex()), "{} names a missing blob {}", obj.location, out.name);
        }
    }
    (blobs.len(), records.len())
}

/// A command task with a `workdir` on Dask: the hardened `engine worker`
/// under the Dask worker reads the seed (its read-only paths include workdir
/// seeds), gives the program its private copy and publishes the matching files.
/// The pipeline lives outside the temp dir (which workers may always read), so
/// only the seed's place in the read-only paths lets Landlock allow it.
#[test]
fn dask_a_command_task_gets_its_seeded_workdir_and_publishes_from_it() {
    let Some(c) = shared() else { return };
    let body = r#"args = ["cat", "/work/README", "write", "/work/top.hex", "ff", "write", "/work/README", "changed"]
stdout = "log"
workdir = { from = "file:seed", at = "/work", publish = ["*.hex"] }

[outputs]
"hex" = "t.top.hex"
"log" = "t.log""#;
    let dir = crate::workdir::setup_in(&crate::util::target_dir(), &guest("cmd_probe"), body);
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("hex")).unwrap(), "ff");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log")).unwrap(),
        "seed readme\nwrite /work/top.hex: ok\nwrite /work/README: ok\n"
    );
    crate::workdir::seed_unchanged(dir.path());
    let r = report(dir.path());
    assert!(task(&r, "t")["dask_worker"].is_string(), "{r}");
}

#[test]
fn dask_gpu_tasks_run_on_the_gpu_worker() {
    let Some(c) = shared() else { return };
    let dir = pipeline(
        r#"[tasks.dgpu]
plugin = "sleep_ms"
foreach = { i = { range = [0, 3] } }
params = { ms = 20 }
resources = { gpu = 1 }

[tasks.dcpu]
plugin = "sleep_ms"
foreach = { i = { range = [0, 3] } }
params = { ms = 20 }
"#,
    );
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 0);
    let r = report(dir.path());
    for i in 0..3 {
        assert_eq!(task(&r, &format!("dgpu[{i}]"))["dask_worker"], "w-gpu");
        assert_eq!(task(&r, &format!("dcpu[{i}]"))["state"], "succeeded");
    }
}

#[test]
fn dask_a_task_no_single_worker_can_hold_fails_before_anything_runs() {
    let Some(c) = shared() else { return };
    let dir = pipeline(
        r#"[tasks.fine]
plugin = "sleep_ms"

[tasks.twogpus]
plugin = "sleep_ms"
resources = { gpu = 2 }
"#,
    );
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 2);
    let stderr = text(&o.stderr);
    let (gpu, cpu) = (&c.workers["w-gpu"].1, &c.workers["w-cpu"].1);
    assert!(
        stderr.starts_with(
            "error: task `twogpus` requests gpu = 2, which no single Dask worker has (Dask would leave it pending forever); the workers have: "
        ),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("w-gpu ({gpu}): cpu=1, memory=")), "{stderr}");
    assert!(stderr.contains(", gpu=1, licence=1"), "{stderr}");
    assert!(stderr.contains(&format!("w-cpu ({cpu}): cpu=1, memory=")), "{stderr}");
    assert!(stderr.contains(", gpu=0, licence=1"), "{stderr}");
    // Nothing ran: no store, no report.
    assert!(!dir.path().join(".engine-store").exists());
    assert!(!dir.path().join("report.json").exists());
}

#[test]
fn dask_retries_are_new_futures_with_distinct_keys() {
    let Some(c) = shared() else { return };
    let dir = pipeline(
        r#"[tasks.dflaky]
plugin = "flaky"
params = { fail_attempts = 1 }
retries = 1
"#,
    );
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 0);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("task `dflaky` failed (attempt 1 of 2): task error: failing attempt 1 as asked; retrying"),
        "{stderr}"
    );
    let r = report(dir.path());
    assert_eq!(task(&r, "dflaky")["attempts"], 2);
    assert_eq!(task(&r, "dflaky")["state"], "succeeded");
    // Both attempts reached Dask, each under its own key.
    let keys: Vec<String> = c
        .started_events()
        .iter()
        .filter_map(|e| e["key"].as_str())
        .filter(|k| k.starts_with("dflaky-"))
        .map(String::from)
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].ends_with("-a1") && keys[1].ends_with("-a2"), "{keys:?}");
    assert_eq!(keys[0].trim_end_matches("-a1"), keys[1].trim_end_matches("-a2"), "{keys:?}");
}

#[test]
fn dask_a_timeout_stops_the_task_and_its_worker_runs_the_next_one() {
    let Some(c) = shared() else { return };
    let dir = pipeline(
        r#"[tasks.dspin]
plugin = "spin"
timeout = "300ms"
priority = 1
resources = { gpu = 1 }

[tasks.dafter]
plugin = "sleep_ms"
params = { ms = 10 }
resources = { gpu = 1 }
"#,
    );
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 1);
    let stderr = text(&o.stderr);
    assert!(stderr.contains("error: task `dspin` failed: timed out after 300.0ms"), "{stderr}");
    let r = report(dir.path());
    assert_eq!(task(&r, "dspin")["error"]["kind"], "timeout");
    assert_eq!(task(&r, "dspin")["dask_worker"], "w-gpu");
    assert_eq!(task(&r, "dafter")["state"], "succeeded");
    assert_eq!(task(&r, "dafter")["dask_worker"], "w-gpu");
}

#[test]
fn dask_an_unreachable_scheduler_exits_3_within_the_connect_timeout() {
    let Some(python) = pyenv() else { return };
    let dir = pipeline("[tasks.x]\nplugin = \"noop\"\n");
    let started = Instant::now();
    let o = engine()
        .env("PYTHONPATH", repo_root().join("python"))
        .args(["run", dir.path().join("pipeline.toml").to_str().unwrap()])
        .args(["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--dask-connect-timeout", "2s"])
        .arg("--dask-python")
        .arg(&python)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_exit(&o, 3);
    let stderr = text(&o.stderr);
    assert!(
        stderr.starts_with("error: cannot connect to the Dask scheduler at tcp://127.0.0.1:1 within 2.0 s"),
        "{stderr}"
    );
    // 2 s of trying, plus starting Python and importing distributed on a busy machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn dask_a_python_without_engine_dask_is_named_with_the_fix() {
    let dir = pipeline("[tasks.x]\nplugin = \"noop\"\n");
    let o = engine()
        .env_remove("PYTHONPATH")
        .args(["run", dir.path().join("pipeline.toml").to_str().unwrap()])
        .args(["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--dask-python", "/usr/bin/python3"])
        .output()
        .unwrap();
    assert_exit(&o, 3);
    assert_eq!(
        text(&o.stderr),
        "error: /usr/bin/python3 cannot import engine_dask: install engine-dask==0.1.0 into it \
         (pip install engine-dask==0.1.0), or name another Python with --dask-python or ENGINE_DASK_PYTHON\n"
    );
}

#[test]
fn dask_a_killed_dask_worker_reruns_its_task_elsewhere() {
    let Some(c) = Cluster::start(&[]) else { return };
    let dir = pipeline(
        r#"[tasks.dlong]
plugin = "sleep_ms"
params = { ms = 2500 }

[outputs]
"long.txt" = "dlong.out"
"#,
    );
    let child = c
        .command(dir.path(), &["--trace", dir.path().join("trace.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (gpu, cpu) = (c.pid("w-gpu"), c.pid("w-cpu"));
    let victim = wait_for_engine_worker(&[gpu, cpu], Duration::from_secs(60));
    // SAFETY: killing a Dask worker process this test started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("long.txt")).unwrap(), "slept 2500\n");
    let survivor = if victim == gpu { "w-cpu" } else { "w-gpu" };
    let r = report(dir.path());
    assert_eq!(task(&r, "dlong")["dask_worker"], survivor);
    assert_eq!(task(&r, "dlong")["attempts"], 1);
    let outcomes: Vec<String> = trace(dir.path())
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "dlong")
        .map(|e| e["args"]["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["worker_lost", "ok"]);
}

#[test]
fn dask_a_lost_engine_worker_is_retried_then_fails_as_worker_lost() {
    let Some(c) = Cluster::start(&[("ENGINE_TEST_WORKER_ABORT_ON", "dcrash")]) else { return };
    let dir = pipeline(
        r#"[tasks.dcrash]
plugin = "sleep_ms"
params = { ms = 0 }

[tasks.dafter]
plugin = "echo"
inputs = { in = "dcrash" }

[tasks.dfine]
plugin = "sleep_ms"
foreach = { i = { range = [0, 3] } }
params = { ms = 10 }
"#,
    );
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 1);
    let r = report(dir.path());
    let crash = task(&r, "dcrash");
    assert_eq!(crash["state"], "failed");
    assert_eq!(crash["attempts"], 3);
    assert_eq!(crash["error"]["kind"], "worker_lost");
    let msg = crash["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("worker lost: EngineWorkerLost: engine worker (pid "), "{msg}");
    assert!(msg.ends_with(") was killed by signal 6"), "{msg}");
    assert_eq!(task(&r, "dafter")["state"], "skipped");
    assert_eq!(r["counts"]["succeeded"], 3);
}

#[test]
fn dask_ctrl_c_cancels_the_futures_and_exits_130_quickly() {
    let Some(c) = Cluster::start(&[]) else { return };
    let dir = pipeline(
        r#"[tasks.dspin]
plugin = "spin"
foreach = { i = { range = [0, 3] } }
"#,
    );
    let (gpu, cpu) = (c.pid("w-gpu"), c.pid("w-cpu"));
    let (o, took) = crate::util::interrupted(c.command(dir.path(), &[]), |_| {
        wait_for_engine_worker(&[gpu], Duration::from_secs(60));
        wait_for_engine_worker(&[cpu], Duration::from_secs(60));
    });
    assert_exit(&o, 130);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(text(&o.stderr).contains("interrupted: cancelling running tasks"));
    let r = report(dir.path());
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["counts"]["cancelled"], 3);
    // The workers are free again: a new run on them succeeds.
    let dir =
        pipeline("[tasks.dnext]\nplugin = \"sleep_ms\"\nforeach = { i = { range = [0, 2] } }\nparams = { ms = 10 }\n");
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 0);
}

#[test]
fn dask_reruns_come_from_the_action_cache() {
    let Some(c) = shared() else { return };
    let dir = pipeline(
        r#"[tasks.s]
plugin = "echo"
foreach = { i = { range = [1, 4] } }
params = { text = "{i}" }
"#,
    );
    let first = c.command(dir.path(), &[]).output().unwrap();
    assert_exit(&first, 0);
    assert_eq!(report(dir.path())["counts"]["cached"], 0);
    let again = c.command(dir.path(), &[]).output().unwrap();
    assert_exit(&again, 0);
    let r = report(dir.path());
    assert_eq!(r["counts"]["cached"], 3);
    for i in 1..4 {
        let t = task(&r, &format!("s[{i}]"));
        assert_eq!((t["cached"].as_bool(), t.get("dask_worker")), (Some(true), None), "{r}");
    }
}

/// The engine killed with SIGKILL mid-run on Dask with an S3 store, then
/// resumed (`DASK_KILLS` times, default 3): the same outputs as an
/// uninterrupted run, every task completed once except the ones in flight at
/// each kill, and every blob in the bucket hashes to its key.
#[cfg(feature = "s3")]
#[test]
fn dask_killed_runs_on_s3_resume_to_the_same_outputs() {
    use crate::util::Moto;
    let Some(moto) = Moto::start(false) else { return };
    moto.create_bucket("engine-dask-resume");
    let Some(c) = Cluster::start(&moto.vars()) else { return };
    let kills: usize = std::env::var("DASK_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(3);
    let env = |cmd: &mut Command| {
        moto.env(cmd);
        cmd.env("ENGINE_DASK_PYTHON", &c.python).env("PYTHONPATH", repo_root().join("python"));
    };
    let args = ["--executor", "dask", "--scheduler", &c.scheduler, "--store", "s3://engine-dask-resume/r"];
    // The engine keeps up to 16 short tasks queued per Dask thread (lanes).
    let threads = c.workers.len();
    let report = crate::cache::kill_and_resume(
        &crate::cache::Resumable { args: &args, env: &env, runs: Path::new(".engine-runs"), in_flight: threads * 16 },
        kills,
    );
    assert_eq!(report["executor"], "dask");
    assert_eq!(report["counts"]["succeeded"], 301);
    let (blobs, records) = check_bucket(&moto, "engine-dask-resume", "r");
    assert!(blobs >= 301, "only {blobs} blobs in the bucket");
    assert_eq!(records, 301, "one record per task");
}

/// Dynamic fan-out on Dask: 1,000 children of `split`'s outputs, each with
/// the template's resources, run as Dask futures and are collected in order.
#[test]
fn dask_dynamic_children_run_on_dask_and_are_collected_in_order() {
    let Some(c) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    crate::fanout::split_pipeline(dir.path(), 1_000, 1_000);
    let o = c.run(dir.path(), &["--quiet"]);
    assert_exit(&o, 0);
    assert!(text(&o.stdout).starts_with("succeeded: 1003 tasks: 1003 succeeded"), "{}", text(&o.stdout));
    let joined = std::fs::read(dir.path().join("out/joined.txt")).unwrap();
    assert!(joined == std::fs::read(dir.path().join("input.txt")).unwrap(), "joined differs");
    let r = report(dir.path());
    let children: Vec<&Value> =
        r["tasks"].as_array().unwrap().iter().filter(|t| t["id"].as_str().unwrap().starts_with("copy[")).collect();
    assert_eq!(children.len(), 1_000);
    assert!(children.iter().all(|t| t["dask_worker"].is_string()), "{r}");
    assert_eq!(children[999]["id"], "copy[999]");
}

/// Dask places a task only on a worker with its resources free: two workers
/// of two threads with one `licence` each never run two licence tasks at
/// once, though the ledger (two licences in all) hands Dask two at a time and
/// each worker has a thread to spare.
#[test]
fn dask_tasks_sharing_a_licence_never_overlap_on_one_worker() {
    let Some(c) = Cluster::start_with(&["--nthreads", "2", "--workers", "w-a:licence=1;w-b:licence=1"], &[]) else {
        return;
    };
    let dir = pipeline(
        r#"[tasks.lic]
plugin = "sleep_ms"
foreach = { i = { range = [0, 6] } }
params = { ms = 150 }
resources = { licence = 1 }

[tasks.free]
plugin = "sleep_ms"
foreach = { i = { range = [0, 4] } }
params = { ms = 150 }
"#,
    );
    let o = c.run(dir.path(), &["--trace", dir.path().join("trace.json").to_str().unwrap()]);
    assert_exit(&o, 0);
    let r = report(dir.path());
    let mut by_worker: BTreeMap<String, Vec<(u64, u64, String)>> = BTreeMap::new();
    for e in trace(dir.path()).iter().filter(|e| e["ph"] == "X") {
        let id = e["name"].as_str().unwrap();
        if !id.starts_with("lic[") {
            continue;
        }
        let w = task(&r, id)["dask_worker"].as_str().unwrap().to_string();
        let ts = e["ts"].as_u64().unwrap();
        by_worker.entry(w).or_default().push((ts, ts + e["dur"].as_u64().unwrap(), id.to_string()));
    }
    assert_eq!(by_worker.values().map(Vec::len).sum::<usize>(), 6, "{by_worker:?}");
    for (w, mut spans) in by_worker {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "{} and {} overlap on {w}: {pair:?}", pair[0].2, pair[1].2);
        }
    }
}

/// A task's log comes back with its result and lands in the coordinator's
/// log directory; a failed task prints the last 10 lines of its log.
#[test]
fn dask_task_logs_reach_the_coordinator_and_a_failure_prints_their_tail() {
    let Some(c) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = (1..=12).flat_map(|i| ["write".into(), format!("/out/f{i}"), "x".into()]).collect();
    args.extend(["exit".into(), "3".into()]);
    let body = format!(
        "[pipeline]\nname = \"t\"\n\n[plugins]\necho = {echo:?}\nprobe = {probe:?}\n\n\
         [tasks.dtalk]\nplugin = \"echo\"\nparams = {{ log = \"hello from a dask worker\" }}\n\n\
         [tasks.dloud]\nplugin = \"probe\"\nargs = {args:?}\n",
        echo = guest("echo").display().to_string(),
        probe = guest("cmd_probe").display().to_string(),
    );
    std::fs::write(dir.path().join("pipeline.toml"), body).unwrap();
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 1);
    let r = report(dir.path());
    let talk = task(&r, "dtalk");
    assert!(talk["dask_worker"].is_string(), "{r}");
    let log = PathBuf::from(talk["log"].as_str().unwrap());
    assert!(log.starts_with(dir.path().join(".engine-store/runs")), "{}", log.display());
    assert!(std::fs::read_to_string(&log).unwrap().contains("hello from a dask worker"));
    let loud = std::fs::read_to_string(task(&r, "dloud")["log"].as_str().unwrap()).unwrap();
    let lines: Vec<String> = (1..=12).map(|i| format!("write /out/f{i}: ok")).collect();
    assert_eq!(loud, lines.iter().map(|l| format!("{l}\n")).collect::<String>());
    let tail: String = lines[2..].iter().map(|l| format!("\n    {l}")).collect();
    let stderr = text(&o.stderr);
    assert!(stderr.contains(&format!("\n  last lines of its log:{tail}\n")), "{stderr}");
}

/// Workers with another engine_dask than the bridge's are named before any
/// task runs.
#[test]
fn dask_workers_with_another_engine_dask_are_named() {
    let old = tempfile::tempdir().unwrap();
    crate::util::copy_files(&repo_root().join("python/engine_dask"), &old.path().join("engine_dask"));
    let init = old.path().join("engine_dask/__init__.py");
    let src = std::fs::read_to_string(&init).unwrap().replace("__version__ = \"0.1.0\"", "__version__ = \"0.0.9\"");
    std::fs::write(&init, src).unwrap();
    let Some(c) = Cluster::start(&[("PYTHONPATH", old.path().to_str().unwrap())]) else { return };
    let dir = pipeline("[tasks.x]\nplugin = \"noop\"\n");
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 3);
    let stderr = text(&o.stderr);
    let addrs: Vec<&String> = c.workers.values().map(|(_, a)| a).collect();
    assert!(
        addrs.iter().any(|a| stderr
            == format!("error: Dask worker {a} has engine_dask 0.0.9, this engine needs engine-dask==0.1.0\n")),
        "{stderr}"
    );
    assert!(!dir.path().join("report.json").exists());
}

/// The `distributed` version pinned in `python/REQUIREMENTS`.
fn pinned_distributed(requirements: &str) -> String {
    let path = repo_root().join("python").join(requirements);
    let text = std::fs::read_to_string(&path).unwrap();
    let pin =
        text.lines().find_map(|l| l.strip_prefix("distributed==")).unwrap_or_else(|| panic!("{}", path.display()));
    pin.trim().to_string()
}

/// A scheduler and a worker from an older `distributed` (the venv
/// `pyenv-old-dask` of `xtask/setup-python.sh`) beside a worker from the
/// current one: Dask itself only warns, the engine exits 3 before any task
/// runs with one line naming every party's version and the fix.
#[test]
fn dask_a_distributed_version_mismatch_names_every_version_and_the_fix() {
    let Some(old) = old_pyenv() else { return };
    let (scheduler_python, worker_python) =
        (format!("scheduler={}", old.display()), format!("w-old={}", old.display()));
    let args = ["--workers", "w-new:;w-old:", "--python", &scheduler_python, "--python", &worker_python];
    let Some(c) = Cluster::start_with(&args, &[]) else { return };
    let (new_version, old_version) =
        (pinned_distributed("requirements-test.txt"), pinned_distributed("requirements-old-dask.txt"));
    assert_ne!(new_version, old_version);
    let dir = pipeline("[tasks.x]\nplugin = \"noop\"\n");
    let o = c.run(dir.path(), &[]);
    assert_exit(&o, 3);
    assert_eq!(
        text(&o.stderr),
        format!(
            "error: the Dask client, scheduler and workers run different distributed versions: \
             client {new_version} ({python}), scheduler {old_version} ({scheduler}), \
             worker w-new {new_version} ({new_worker}), worker w-old {old_version} ({old_worker}); \
             install the same distributed version everywhere: pip install distributed=={new_version} \
             on the scheduler and every worker, or name a Python with the cluster's version in --dask-python\n",
            python = c.python.display(),
            scheduler = c.scheduler,
            new_worker = c.workers["w-new"].1,
            old_worker = c.workers["w-old"].1,
        )
    );
    assert!(!dir.path().join("report.json").exists());
    assert!(!dir.path().join(".engine-store").exists());
}

/// The mismatch line groups the workers of one version, three names at
/// most, the client's version first (`engine_dask.bridge.version_mismatch`
/// on made-up versions: a cluster of nine workers).
#[test]
fn dask_a_version_mismatch_groups_workers_by_version() {
    let Some(python) = pyenv() else { return };
    let script = "from engine_dask.bridge import version_mismatch as m\n\
                  v = lambda x: {'packages': {'distributed': x}}\n\
                  ws = {f'tcp://h{i}:1': v('2026.3.0' if i < 5 else '2026.8.0') for i in range(9)}\n\
                  print(m({'client': v('2026.8.0'), 'scheduler': v('2026.8.0'), 'workers': ws}, 'tcp://s:1', \
                  {'tcp://h0:1': 'w-a', 'tcp://h8:1': 'w-b'}))\n\
                  print(m({'client': v('2026.8.0'), 'scheduler': v('2026.8.0'), 'workers': {'tcp://h:1': v('2026.8.0')}}, 'tcp://s:1', {}))\n";
    let o = Command::new(&python).args(["-c", script]).env("PYTHONPATH", repo_root().join("python")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        format!(
            "the Dask client, scheduler and workers run different distributed versions: \
             client 2026.8.0 ({}), scheduler 2026.8.0 (tcp://s:1), \
             4 workers 2026.8.0 (tcp://h5:1, tcp://h6:1, tcp://h7:1 and 1 more), \
             5 workers 2026.3.0 (tcp://h1:1, tcp://h2:1, tcp://h3:1 and 2 more); \
             install the same distributed version everywhere: pip install distributed==2026.8.0 \
             on the scheduler and every worker, or name a Python with the cluster's version in --dask-python\nNone\n",
            python.display()
        )
    );
}

/// The wheel carries one version for both halves (pyproject.toml takes it
/// from engine/Cargo.toml): engine_dask's, and the one the engine asks for.
#[test]
fn engine_dask_has_the_engine_version() {
    let init = std::fs::read_to_string(repo_root().join("python/engine_dask/__init__.py")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(init.contains(&format!("\n__version__ = \"{version}\"\n")), "python/engine_dask/__init__.py");
    assert_eq!(engine::exec::dask::ENGINE_DASK_VERSION, version);
}

/// The `engine` processes whose parent is `pid`.
fn engine_children_of(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|c| std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim() == "engine"))
        .collect()
}

/// A Dask worker under a nanny, SIGKILLed mid-task: the nanny starts a new
/// worker process, Dask runs the task again on it, and the run succeeds
/// with the same bytes; the trace shows the lost execution.
#[test]
fn dask_a_worker_restarted_by_its_nanny_finishes_the_task() {
    let Some(c) = Cluster::start_with(&["--nanny", "--workers", "w-solo:"], &[]) else { return };
    let dir = pipeline(
        r#"[tasks.dlong]
plugin = "sleep_ms"
params = { ms = 1500 }

[outputs]
"long.txt" = "dlong.out"
"#,
    );
    let child = c
        .command(dir.path(), &["--trace", dir.path().join("trace.json").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker process is the nanny's child; the task runs once an
    // `engine worker` runs under it.
    let nanny = c.pid("w-solo");
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        assert!(Instant::now() < deadline, "no engine worker started under the nanny's worker");
        if let Some(w) = children_of(nanny).into_iter().find(|w| !engine_children_of(*w).is_empty()) {
            break w;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: killing a Dask worker process of the cluster this test started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("long.txt")).unwrap(), "slept 1500\n");
    let r = report(dir.path());
    assert_eq!(task(&r, "dlong")["dask_worker"], "w-solo");
    assert_eq!(task(&r, "dlong")["attempts"], 1);
    let outcomes: Vec<String> = trace(dir.path())
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "dlong")
        .map(|e| e["args"]["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["worker_lost", "ok"]);
}
