//! `engine run --store s3://...` and `file://...` end to end: the examples on a
//! real S3-compatible server (moto, started per test on loopback) with the
//! threads and processes executors, what lands in the bucket, and the errors
//! for a missing bucket, refused credentials and a server that never answers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use engine::store::Digest;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::run::example;
use crate::util::{EngineRun, Moto, block_on, repo_root};

const WORDCOUNT_OUT: [&str; 2] = ["counts.tsv", "top.tsv"];

/// `engine run DIR/pipeline.toml ARGS` with the environment `env` sets.
fn run(dir: &Path, args: &[&str], env: impl FnOnce(&mut Command)) -> (i32, String, String, Duration) {
    let r = EngineRun::new(dir).args(args).with(env).run();
    (r.code, r.stdout, r.stderr, r.elapsed)
}

fn assert_wordcount_outputs(dir: &Path, what: &str) {
    let expected = repo_root().join("examples/wordcount/expected");
    for f in WORDCOUNT_OUT {
        let got = std::fs::read(dir.join("out").join(f)).unwrap();
        assert!(got == std::fs::read(expected.join(f)).unwrap(), "{what}: {f} differs");
    }
    assert!(!dir.join(".engine-store").exists(), "{what}: a local .engine-store was created");
}

/// Every object under `prefix/blobs/` re-hashes to its key; returns how many there are.
fn check_blobs(moto: &Moto, bucket: &str, prefix: &str) -> usize {
    let client = moto.client(bucket);
    let list = block_on(client.list_with_delimiter(Some(&Key::from(format!("{prefix}/blobs"))))).unwrap();
    for o in &list.objects {
        let name = o.location.filename().unwrap().to_string();
        let bytes = block_on(async { client.get(&o.location).await.unwrap().bytes().await.unwrap() });
        assert_eq!(Digest::of(&bytes).to_hex(), name, "{} does not hash to its key", o.location);
    }
    list.objects.len()
}

#[test]
fn wordcount_on_s3_gives_the_local_bytes_with_threads_and_processes() {
    let Some(moto) = Moto::start(false) else { return };
    moto.create_bucket("engine-test");
    for (executor, prefix) in [("threads", "run1"), ("processes", "run2")] {
        let dir = example("wordcount");
        let cache = tempfile::tempdir().unwrap();
        let store = format!("s3://engine-test/{prefix}");
        let (code, stdout, stderr, _) =
            run(dir.path(), &["--executor", executor, "--workers", "2", "--store", &store], |c| {
                moto.env(c);
                c.env("ENGINE_CACHE_DIR", cache.path());
            });
        assert_eq!(code, 0, "{executor}:\n{stdout}\n{stderr}");
        assert_wordcount_outputs(dir.path(), executor);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(report["store"], store.as_str());
        // Each of the 8 tasks' outputs plus the input file.
        let n = check_blobs(&moto, "engine-test", prefix);
        assert!(n >= 5, "{executor}: only {n} blobs in {store}");
    }
}

#[test]
fn wordcount_on_a_file_store_gives_the_local_bytes() {
    let shared = tempfile::tempdir().unwrap();
    for executor in ["threads", "processes"] {
        let dir = example("wordcount");
        let store = format!("file://{}/run", shared.path().display());
        let (code, stdout, stderr, _) =
            run(dir.path(), &["--executor", executor, "--workers", "2", "--store", &store], |_| {});
        assert_eq!(code, 0, "{executor}:\n{stdout}\n{stderr}");
        assert_wordcount_outputs(dir.path(), executor);
        // One file per blob, named by its digest; no packs.
        let blobs = shared.path().join("run/blobs");
        let names: Vec<_> = std::fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(names.len() >= 5, "{names:?}");
        for n in names {
            let bytes = std::fs::read(blobs.join(&n)).unwrap();
            assert_eq!(Digest::of(&bytes).to_hex(), n.to_str().unwrap());
        }
        assert!(!shared.path().join("run/packs").exists());
    }
}

#[test]
fn a_missing_bucket_is_named() {
    let Some(moto) = Moto::start(false) else { return };
    let dir = example("wordcount");
    let (code, stdout, stderr, _) = run(dir.path(), &["--store", "s3://no-such-bucket/x"], |c| moto.env(c));
    assert_eq!((code, stdout.as_str()), (3, ""), "{stderr}");
    assert_eq!(
        stderr,
        "error: cannot open the store s3://no-such-bucket/x: the bucket does not exist (NoSuchBucket); create it first\n"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn refused_credentials_are_explained() {
    let Some(moto) = Moto::start(true) else { return };
    let dir = example("wordcount");
    let (code, stdout, stderr, _) = run(dir.path(), &["--store", "s3://engine-test/x"], |c| moto.env(c));
    assert_eq!((code, stdout.as_str()), (3, ""), "{stderr}");
    assert_eq!(
        stderr,
        "error: cannot open the store s3://engine-test/x: the server refused the credentials (InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE\n"
    );
}

#[test]
fn a_server_that_never_answers_fails_within_the_configured_timeout() {
    // Accepts connections (the kernel does, into the backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let dir = example("wordcount");
    let (code, stdout, stderr, took) = run(dir.path(), &["--store", "s3://engine-test/x"], |c| {
        c.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
            .env("ENGINE_S3_TIMEOUT", "500ms")
            .env("ENGINE_S3_RETRIES", "1")
            .env("ENGINE_S3_RETRY_TIMEOUT", "5s");
    });
    assert_eq!((code, stdout.as_str()), (3, ""), "{stderr}");
    assert!(stderr.starts_with("error: cannot open the store s3://engine-test/x: "), "{stderr}");
    assert!(stderr.ends_with(" - HTTP error: error sending request: operation timed out\n"), "{stderr}");
    // At most two attempts of 500ms plus one back-off, plus starting the engine.
    assert!(took < Duration::from_secs(8), "took {took:?}");

    // Nothing listening at all: refused, retried ENGINE_S3_RETRIES times, then named.
    let port = crate::util::free_port();
    let (code, _, stderr, took) = run(dir.path(), &["--store", "s3://engine-test/x"], |c| {
        c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
            .env("ENGINE_S3_RETRIES", "2");
    });
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(", after 2 retries, max_retries: 2, retry_timeout: 60s "), "{stderr}");
    assert!(stderr.ends_with("tcp connect error: Connection refused (os error 111)\n"), "{stderr}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn bad_s3_settings_are_named() {
    let dir = example("wordcount");
    let (code, _, stderr, _) = run(dir.path(), &["--store", "s3://engine-test/x"], |c| {
        c.env("ENGINE_S3_RETRIES", "many");
    });
    assert_eq!(code, 3);
    assert_eq!(
        stderr,
        "error: cannot open the store s3://engine-test/x: ENGINE_S3_RETRIES=`many`: expected a whole number from 0 to 100\n"
    );
    let (code, _, stderr, _) = run(dir.path(), &["--store", "s3://engine-test/x"], |c| {
        c.env("AWS_PROFILE", "nope")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_CONFIG_FILE", "/dev/null");
    });
    assert_eq!(code, 3);
    assert_eq!(
        stderr,
        "error: cannot open the store s3://engine-test/x: AWS_PROFILE=`nope` names no profile in the AWS credentials or config file (~/.aws/credentials, ~/.aws/config)\n"
    );
    let (code, _, stderr, _) = run(dir.path(), &["--store", "gs://b/p"], |_| {});
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "invalid store `gs://b/p`: unsupported scheme `gs://`; expected a directory, file:///abs/dir or s3://bucket/prefix"
        ),
        "{stderr}"
    );
}

#[test]
fn task_logs_of_a_shared_store_stay_beside_the_pipeline_or_in_log_dir() {
    let shared = tempfile::tempdir().unwrap();
    let store = format!("file://{}", shared.path().display());
    let dir = crate::run::pipeline(
        r#"[tasks.talk]
plugin = "echo"
params = { log = "hello from the task" }
"#,
    );
    let custom = dir.path().join("my-logs");
    for (args, root) in [
        (vec!["--executor", "processes", "--store", &store], dir.path().join(".engine-runs")),
        // Same task and store: without --no-cache it would be a cache hit, and log nothing.
        (vec!["--store", &store, "--log-dir", custom.to_str().unwrap(), "--no-cache"], custom.clone()),
    ] {
        let (code, stdout, stderr, _) = run(dir.path(), &args, |_| {});
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
        let log = std::path::PathBuf::from(report["tasks"][0]["log"].as_str().unwrap());
        assert!(log.starts_with(&root), "{} is not under {}", log.display(), root.display());
        assert_eq!(log.file_name().unwrap(), "talk.log");
        assert_eq!(log.parent().unwrap().file_name().unwrap(), "logs");
        assert!(std::fs::read_to_string(&log).unwrap().contains("hello from the task"));
    }
    assert!(!shared.path().join("runs").exists(), "logs went into the shared store");
}

#[test]
fn the_action_cache_lives_in_the_bucket_and_serves_another_machine() {
    let Some(moto) = Moto::start(false) else { return };
    moto.create_bucket("engine-test");
    let store = "s3://engine-test/cached";
    // Two checkouts with separate module and read caches: two machines
    // sharing one bucket.
    let (first, second) = (example("wordcount"), example("wordcount"));
    for (dir, cached) in [(&first, 0), (&second, 7)] {
        let cache = tempfile::tempdir().unwrap();
        let (code, stdout, stderr, _) = run(dir.path(), &["--store", store], |c| {
            moto.env(c);
            c.env("ENGINE_CACHE_DIR", cache.path());
        });
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.starts_with(&format!("succeeded: 7 tasks: 7 succeeded ({cached} cached), ")), "{stdout}");
        assert_wordcount_outputs(dir.path(), "cached");
    }
    // One record per task, under actions/.
    let client = moto.client("engine-test");
    let list = block_on(client.list_with_delimiter(Some(&Key::from("cached/actions")))).unwrap();
    assert_eq!(list.objects.len(), 7);
}

/// The kill-and-resume test of the action cache, on a bucket: each record is
/// one create-if-absent PUT after the task's outputs, so a SIGKILL at any
/// point loses at most the tasks that were running (`S3_KILLS`, default 4).
#[test]
fn killed_runs_on_s3_resume_to_the_same_outputs() {
    let Some(moto) = Moto::start(false) else { return };
    moto.create_bucket("engine-test");
    let kills: usize = std::env::var("S3_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(4);
    let env = |c: &mut Command| moto.env(c);
    let report = crate::cache::kill_and_resume(
        &crate::cache::Resumable {
            args: &["--workers", "2", "--store", "s3://engine-test/resume"],
            env: &env,
            runs: Path::new(".engine-runs"),
            in_flight: 2,
        },
        kills,
    );
    assert_eq!(report["counts"]["succeeded"], 301);
    // Every blob in the bucket hashes to its name, and nothing was left in a local store.
    assert!(check_blobs(&moto, "engine-test", "resume") > 0);
}
