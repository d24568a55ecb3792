//! Real WASI programs as command tasks: the wasm features they need
//! (exceptions, atomics) and the ones refused at `engine check`, read-only
//! mounts, the scratch `/tmp`, a symlink-free `/in`, success exit codes and the
//! `exit_code` output, partial outputs of failed programs, and the FPGA
//! example that chains four unmodified third-party programs.

use std::path::{Path, PathBuf};

use crate::util::{EngineRun, Ran, engine, guest, repo_root, report, task, wat_guest};

/// A pipeline in a temp dir with `cmd_probe` as plugin `probe`, and those of
/// `cmd_exceptions`, `cmd_atomics`, `cmd_memory64` and `cmd_shared_memory` that
/// `body` uses, under their own names.
fn pipeline(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_pipeline(dir.path(), body);
    dir
}

fn write_pipeline(dir: &Path, body: &str) {
    let mut plugins = format!("[plugins]\nprobe = \"{}\"\n", guest("cmd_probe").display());
    // Only the ones the body uses: every plugin listed is checked.
    for w in ["cmd_exceptions", "cmd_atomics", "cmd_memory64", "cmd_shared_memory"] {
        if !body.contains(&format!("plugin = \"{w}\"")) {
            continue;
        }
        plugins.push_str(&format!("{w} = \"{}\"\n", wat_guest(w).display()));
    }
    let text = format!("[pipeline]\nname = \"t\"\n\n{plugins}\n{body}");
    std::fs::write(dir.join("pipeline.toml"), text).unwrap();
}

/// `engine run` with a report, and `TMPDIR` pointed at `tmp` so the test can
/// see what the engine leaves behind there.
fn run(dir: &Path, tmp: &Path, args: &[&str]) -> Ran {
    EngineRun::new(dir).env("TMPDIR", tmp).args(args).run()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read(p: PathBuf) -> String {
    String::from_utf8(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn empty_dir(p: &Path) -> Vec<String> {
    std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_module_that_needs_exceptions_runs() {
    // cmd_exceptions throws 7 through a call, catches it and exits with it.
    let dir = pipeline(
        r#"[tasks.t]
plugin = "cmd_exceptions"
success_exit_codes = [7]

[outputs]
"code.txt" = "t.exit_code"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    run(dir.path(), tmp.path(), &[]).ok();
    assert_eq!(read(dir.path().join("code.txt")), "7\n");
    assert_eq!(task(&report(dir.path()), "t")["exit_code"], 7);
}

#[test]
fn every_exit_status_up_to_255_is_an_exit_code_on_both_filesystem_paths() {
    // wasmtime-wasi alone refuses 126 and more (WASI reserves them); the
    // engine takes them as a process would. 256 is no exit status.
    let mut body = String::new();
    for (code, ok) in [(125, true), (126, true), (200, true), (255, true), (3, false)] {
        for (path, extra) in [("v", ""), ("h", "workdir = { at = \"/w\" }\n")] {
            let codes = if ok { format!("success_exit_codes = [{code}]\n") } else { String::new() };
            body.push_str(&format!(
                "[tasks.{path}{code}]\nplugin = \"probe\"\nargs = [\"exit\", \"{code}\"]\n{codes}{extra}\n"
            ));
        }
    }
    body.push_str("[tasks.big]\nplugin = \"probe\"\nargs = [\"exit\", \"256\"]\n");
    let dir = pipeline(&body);
    let tmp = tempfile::tempdir().unwrap();
    let r = run(dir.path(), tmp.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let rep = report(dir.path());
    for code in [125, 126, 200, 255] {
        for path in ["v", "h"] {
            let t = task(&rep, &format!("{path}{code}"));
            assert_eq!((t["state"].as_str(), t["exit_code"].as_i64()), (Some("succeeded"), Some(code)), "{t}");
        }
    }
    for path in ["v", "h"] {
        let t = task(&rep, &format!("{path}3"));
        assert_eq!(t["error"]["message"], "task error: exited with code 3", "{t}");
    }
    let t = task(&rep, "big");
    assert_eq!(t["error"]["kind"], "trap", "{t}");
    assert_eq!(t["error"]["message"], "trap: exit with invalid exit status 256 outside of [0..256)", "{t}");
}

#[test]
fn atomics_on_a_non_shared_memory_are_accepted() {
    let dir = pipeline(
        r#"[tasks.t]
plugin = "cmd_atomics"
success_exit_codes = [42]

[outputs]
"code.txt" = "t.exit_code"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    run(dir.path(), tmp.path(), &[]).ok();
    assert_eq!(read(dir.path().join("code.txt")), "42\n");
}

#[test]
fn a_feature_the_engine_does_not_enable_is_rejected_by_check() {
    let dir = pipeline("[tasks.a]\nplugin = \"cmd_memory64\"\n\n[tasks.b]\nplugin = \"cmd_shared_memory\"\n");
    let o = engine().arg("check").arg(dir.path().join("pipeline.toml")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    let m64 = format!(
        "error: plugin `cmd_memory64`: `{}` is not a valid task plugin: uses the wasm feature `memory64`, which the \
         engine does not enable (see docs/abi.md, \"Wasm features\"): memory64 must be enabled for 64-bit memories",
        wat_guest("cmd_memory64").display()
    );
    assert!(err.contains(&m64), "{err}");
    let shared = format!(
        "error: plugin `cmd_shared_memory`: `{}` is not a valid task plugin: uses the wasm feature `shared memory` \
         (threads), which the engine does not enable: tasks are single-threaded; atomic instructions on a non-shared \
         memory are accepted (see docs/abi.md, \"Wasm features\")\n",
        wat_guest("cmd_shared_memory").display()
    );
    assert!(err.contains(&shared), "{err}");
    assert!(err.ends_with("is invalid: 2 errors\n"), "{err}");
}

#[test]
fn success_exit_codes_and_the_exit_code_output() {
    //   ten (exits 10: success) ──► show (prints ten's exit_code)
    //   three (exits 3: failure)
    let dir = pipeline(
        r#"[tasks.ten]
plugin = "probe"
args = ["write", "/out/result", "found", "exit", "10"]
success_exit_codes = [0, 10, 20]

[tasks.show]
plugin = "probe"
inputs = { code = "ten.exit_code", result = "ten.result" }
args = ["cat", "/in/code", "cat", "/in/result"]
stdout = "text"

[tasks.three]
plugin = "probe"
args = ["exit", "3"]
success_exit_codes = [0, 10, 20]

[outputs]
"show.txt" = "show.text"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let o = run(dir.path(), tmp.path(), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr.clone());
    let r = report(dir.path());
    assert_eq!(task(&r, "ten")["state"], "succeeded");
    assert_eq!(task(&r, "ten")["exit_code"], 10);
    assert_eq!(task(&r, "show")["state"], "succeeded");
    assert_eq!(task(&r, "show")["exit_code"], 0);
    assert_eq!(task(&r, "three")["state"], "failed");
    assert_eq!(task(&r, "three")["exit_code"], 3);
    assert_eq!(
        task(&r, "three")["error"]["message"],
        "task error: exited with code 3, which is not one of success_exit_codes [0, 10, 20]"
    );
    // [outputs] of the tasks that succeeded are written even so.
    assert_eq!(read(dir.path().join("show.txt")), "10\nfound");
    std::fs::remove_file(dir.path().join("show.txt")).unwrap();

    // Without the failing task, the exit code reaches the downstream task.
    let body = std::fs::read_to_string(dir.path().join("pipeline.toml")).unwrap();
    let body = body
        .replace("[tasks.three]\nplugin = \"probe\"\nargs = [\"exit\", \"3\"]\nsuccess_exit_codes = [0, 10, 20]\n", "");
    std::fs::write(dir.path().join("pipeline.toml"), body).unwrap();
    run(dir.path(), tmp.path(), &[]).ok();
    assert_eq!(read(dir.path().join("show.txt")), "10\nfound");
}

#[test]
fn a_failed_programs_partial_output_is_not_published() {
    let marker = "PARTIAL-OUTPUT-8f3a1c";
    let dir = pipeline(&format!(
        r#"[tasks.half]
plugin = "probe"
args = ["write", "/out/data", "{marker}", "exit", "1"]

[tasks.after]
plugin = "probe"
inputs = {{ data = "half.data" }}
args = ["cat", "/in/data"]

[outputs]
"data.txt" = "half.data"
"#
    ));
    let tmp = tempfile::tempdir().unwrap();
    let o = run(dir.path(), tmp.path(), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr.clone());
    let r = report(dir.path());
    assert_eq!(task(&r, "half")["state"], "failed");
    assert_eq!(task(&r, "half")["error"]["message"], "task error: exited with code 1");
    assert_eq!(task(&r, "half")["outputs"], serde_json::json!({}));
    assert_eq!(task(&r, "after")["state"], "skipped");
    assert!(!dir.path().join("data.txt").exists());
    // Nothing in the store holds the partial bytes, and the task's temp dir is gone.
    let mut stack = vec![dir.path().join(".engine-store")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "log") {
                let bytes = std::fs::read(&p).unwrap();
                assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{} holds it", p.display());
            }
        }
    }
    assert_eq!(empty_dir(tmp.path()), Vec::<String>::new());
}

/// `share/data.txt` and `bundle.tar.gz` (holding `sub/a.txt`) in `dir`.
fn mount_sources(dir: &Path) {
    std::fs::create_dir_all(dir.join("share")).unwrap();
    std::fs::write(dir.join("share/data.txt"), "shared data\n").unwrap();
    let src = dir.join("bundle-src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a.txt"), "from the archive\n").unwrap();
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(dir.join("bundle.tar.gz"))
        .arg("-C")
        .arg(&src)
        .arg("sub")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn mounts_are_read_only_and_scratch_is_private_on_every_executor() {
    for ex in ["sync", "threads", "processes"] {
        let dir = pipeline(
            r#"[tasks.look]
plugin = "probe"
args = ["cat", "/share/data.txt", "cat", "/bundle/sub/a.txt", "write", "/share/new", "x",
        "write", "/bundle/sub/a.txt", "x", "tmp", "list", "/tmp", "fill", "/tmp", "1000"]
mounts = { "/share" = "file:share", "/bundle" = "file:bundle.tar.gz" }
scratch = true
stdout = "report"

[outputs]
"report.txt" = "look.report"
"#,
        );
        mount_sources(dir.path());
        let tmp = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        EngineRun::new(dir.path())
            .env("TMPDIR", tmp.path())
            .env("ENGINE_CACHE_DIR", cache.path())
            .executor(ex)
            .run()
            .ok();
        assert_eq!(
            read(dir.path().join("report.txt")),
            "shared data\nfrom the archive\nwrite /share/new: error\nwrite /bundle/sub/a.txt: error\n\
             TMPDIR=/tmp ok\n/tmp/probe.txt file 7\nfilled 1000\n",
            "on {ex}"
        );
        assert!(!dir.path().join("share/new").exists());
        // The scratch directory and the task's /in and /out are gone.
        assert_eq!(empty_dir(tmp.path()), Vec::<String>::new(), "on {ex}");
        // The archive was unpacked once into the cache, by content.
        let unpacked = empty_dir(&cache.path().join("mounts"));
        assert_eq!(unpacked.len(), 1, "{unpacked:?}");
        assert_eq!(unpacked[0].len(), 64, "{unpacked:?}");
    }
}

#[test]
fn without_scratch_there_is_no_tmp() {
    let dir = pipeline(
        "[tasks.t]\nplugin = \"probe\"\nargs = [\"write\", \"/tmp/x\", \"y\", \"tmp\"]\nstdout = \"r\"\n\n\
         [outputs]\n\"r.txt\" = \"t.r\"\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    run(dir.path(), tmp.path(), &[]).ok();
    assert_eq!(read(dir.path().join("r.txt")), "write /tmp/x: error\nTMPDIR= error\n");
}

#[test]
fn scratch_is_held_to_its_size() {
    let dir = pipeline("[tasks.t]\nplugin = \"probe\"\nargs = [\"fill\", \"/tmp\", \"4194304\"]\nscratch = \"1MiB\"\n");
    let tmp = tempfile::tempdir().unwrap();
    let o = run(dir.path(), tmp.path(), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr.clone());
    let r = report(dir.path());
    assert_eq!(task(&r, "t")["error"]["kind"], "limit");
    assert_eq!(task(&r, "t")["error"]["message"], "scratch limit exceeded: the task wrote more than 1MiB to /tmp");
    assert_eq!(empty_dir(tmp.path()), Vec::<String>::new());
}

#[test]
fn an_archive_holding_a_link_is_refused() {
    let dir = pipeline(
        "[tasks.t]\nplugin = \"probe\"\nargs = [\"list\", \"/data\"]\nmounts = { \"/data\" = \"file:links.tar\" }\n",
    );
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(dir.path().join("links.tar"))
        .arg("-C")
        .arg(&src)
        .arg("passwd")
        .status()
        .unwrap();
    assert!(st.success());
    let tmp = tempfile::tempdir().unwrap();
    let o = run(dir.path(), tmp.path(), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr.clone());
    let r = report(dir.path());
    let err = task(&r, "t")["error"]["message"].as_str().unwrap().to_string();
    let want = format!(
        "mount `/data`: cannot unpack archive `{}`: entry `passwd` is a symbolic link; only regular files and \
         directories can be mounted",
        dir.path().join("links.tar").display()
    );
    assert_eq!(err, want);
}

#[test]
fn in_holds_real_files_never_symlinks() {
    let dir = pipeline(
        r#"[tasks.make]
plugin = "probe"
args = ["write", "/out/made", "abc"]

[tasks.look]
plugin = "probe"
inputs = { one = "file:one.txt", many = ["file:one.txt", "make.made", "file:two.txt"], made = "make.made" }
args = ["list", "/in"]
stdout = "listing"

[outputs]
"listing.txt" = "look.listing"
"#,
    );
    std::fs::write(dir.path().join("one.txt"), "1").unwrap();
    std::fs::write(dir.path().join("two.txt"), "22").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    run(dir.path(), tmp.path(), &[]).ok();
    assert_eq!(
        read(dir.path().join("listing.txt")),
        "/in/made file 3\n/in/many dir\n/in/many/0 file 1\n/in/many/1 file 3\n/in/many/2 file 2\n/in/one file 1\n"
    );
}

/// The FPGA example (examples/fpga): four programs from PyPI, fetched by
/// `xtask/fetch-wasi-programs.sh`, give byte-identical outputs on the threads
/// and processes executors.
#[test]
fn the_fpga_example_builds_the_expected_bitstream() {
    let src = repo_root().join("examples/fpga");
    assert!(
        src.join("vendor/.complete").exists(),
        "examples/fpga/vendor is missing: run `bash xtask/fetch-wasi-programs.sh` (xtask/test.sh does)"
    );
    let expected = std::fs::read_to_string(src.join("expected.sha256")).unwrap();
    for ex in ["threads", "processes"] {
        let dir = tempfile::tempdir().unwrap();
        for f in ["pipeline.toml", "blinky.v", "icestick.pcf"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        std::os::unix::fs::symlink(src.join("vendor"), dir.path().join("vendor")).unwrap();
        EngineRun::new(dir.path()).executor(ex).run().ok();
        for line in expected.lines() {
            let (digest, file) = line.split_once("  ").unwrap();
            let bytes = std::fs::read(dir.path().join(file)).unwrap();
            let got = engine::store::Digest::of(&bytes).to_string();
            assert_eq!(got, digest, "{file} on {ex}");
        }
    }
}

#[test]
fn a_plugin_is_compiled_once_per_run_under_foreach() {
    let dir = pipeline(
        "[tasks.t]\nplugin = \"probe\"\nforeach = { i = { range = [0, 8] } }\nargs = [\"exit\", \"{i}\"]\n\
         success_exit_codes = [0, 1, 2, 3, 4, 5, 6, 7]\n",
    );
    let cache = tempfile::tempdir().unwrap();
    for (round, cached) in [(1, false), (2, true)] {
        EngineRun::new(dir.path())
            .env("ENGINE_CACHE_DIR", cache.path())
            .args(["--executor", "processes", "--workers", "2"])
            .run()
            .ok();
        let r = report(dir.path());
        let plugins = r["plugins"].as_array().unwrap();
        assert_eq!(plugins.len(), 1, "round {round}: {plugins:?}");
        assert_eq!(plugins[0]["name"], "probe");
        assert_eq!(plugins[0]["cached"], cached, "round {round}");
        let sha = engine::store::Digest::of(&std::fs::read(guest("cmd_probe")).unwrap()).to_string();
        assert_eq!(plugins[0]["sha256"], sha);
        // One compiled module in the cache, whatever the number of tasks and workers.
        assert_eq!(empty_dir(&cache.path().join("modules")).len(), 1, "round {round}");
        for i in 0..8 {
            assert_eq!(task(&r, &format!("t[{i}]"))["exit_code"], i);
        }
    }
}

#[test]
fn io_dirs_false_leaves_the_preopens_to_scratch_and_the_workdir_on_every_executor() {
    for ex in ["sync", "threads", "processes"] {
        let dir = pipeline(
            r#"[tasks.plain]
plugin = "probe"
args = ["preopens", "write", "/out/x", "y"]
io_dirs = false
stdout = "r"

[tasks.work]
plugin = "probe"
args = ["preopens", "write", "/made.txt", "made"]
io_dirs = false
scratch = true
workdir = { at = "/", publish = ["made.txt"] }
stdout = "r"

[tasks.usual]
plugin = "probe"
args = ["preopens"]
scratch = true
workdir = { at = "/" }
stdout = "r"

[outputs]
"plain.txt" = "plain.r"
"work.txt" = "work.r"
"made.txt" = "work.made.txt"
"usual.txt" = "usual.r"
"#,
        );
        let tmp = tempfile::tempdir().unwrap();
        run(dir.path(), tmp.path(), &["--executor", ex]).ok();
        assert_eq!(read(dir.path().join("plain.txt")), "fd 3: errno 8\nwrite /out/x: error\n", "on {ex}");
        assert_eq!(
            read(dir.path().join("work.txt")),
            "fd 3: /tmp\nfd 4: /\nfd 5: errno 8\nwrite /made.txt: ok\n",
            "on {ex}"
        );
        assert_eq!(read(dir.path().join("made.txt")), "made", "on {ex}");
        assert_eq!(
            read(dir.path().join("usual.txt")),
            "fd 3: /in\nfd 4: /out\nfd 5: /tmp\nfd 6: /\nfd 7: errno 8\n",
            "on {ex}"
        );
    }
}
