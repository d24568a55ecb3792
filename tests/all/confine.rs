//! `--confine` (docs/security.md, "Threat model"; docs/pipeline.md): every
//! host path a pipeline names must resolve, after symbolic links, inside the
//! pipeline's directory or an `--allow-path` directory. Each way out is an
//! exact error of `engine check --confine` (and `engine run --confine`, which
//! then runs nothing), and the same pipeline passes without `--confine`.
//!
//! ```text
//!   ROOT/p/pipeline.toml, echo.wasm, probe.wasm, link -> ../outside
//!   ROOT/outside/secret.txt, outside.wasm
//! ```

use std::path::PathBuf;

use crate::util::{engine, guest};

struct Dir {
    _tmp: tempfile::TempDir,
    /// Canonical: what the messages show.
    root: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let p = root.join("p");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/secret.txt"), "secret\n").unwrap();
        std::fs::copy(guest("echo"), p.join("echo.wasm")).unwrap();
        std::fs::copy(guest("echo"), root.join("outside/outside.wasm")).unwrap();
        std::fs::copy(guest("cmd_probe"), p.join("probe.wasm")).unwrap();
        std::os::unix::fs::symlink("../outside", p.join("link")).unwrap();
        Dir { _tmp: tmp, root }
    }

    fn pipeline(&self) -> PathBuf {
        self.root.join("p/pipeline.toml")
    }

    /// The pipeline: plugin `echo` at `plugin`, task `a` using `uses` with
    /// `extra` lines, and `[outputs]` `dest` = `a.out` (`exit_code` for a command).
    fn write(&self, plugin: &str, uses: &str, extra: &str, dest: &str) {
        let output = if uses == "probe" { "a.exit_code" } else { "a" };
        let text = format!(
            "[pipeline]\nname = \"c\"\n\n[plugins]\necho = \"{plugin}\"\nprobe = \"probe.wasm\"\n\n[tasks.a]\nplugin = \"{uses}\"\n{extra}\n\n[outputs]\n\"{dest}\" = \"{output}\"\n"
        );
        std::fs::write(self.pipeline(), text).unwrap();
    }

    fn engine(&self, args: &[&str]) -> (Option<i32>, String) {
        let o = engine().args(args).arg(self.pipeline()).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// `engine check --confine` fails with `message` at `at` (`LINE:COL`) and
/// `engine check` passes.
#[track_caller]
fn refused(d: &Dir, message: &str, at: &str) {
    let (code, stderr) = d.engine(&["check", "--confine"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("error: {message}\n")), "want `{message}`, got:\n{stderr}");
    assert!(stderr.contains(&format!("pipeline.toml:{at}\n")), "want at {at}:\n{stderr}");
    assert!(stderr.contains("outside the pipeline's directory"), "{stderr}");
    let (code, stderr) = d.engine(&["check"]);
    assert_eq!(code, Some(0), "without --confine the pipeline is valid:\n{stderr}");
}

#[test]
fn confine_refuses_every_path_outside_the_pipeline_directory() {
    let d = Dir::new();
    let (root, outside) = (d.root.display().to_string(), d.root.join("outside").display().to_string());
    let allows = "outside the directories --confine allows";

    d.write("echo.wasm", "echo", "", "../x.txt");
    refused(&d, &format!("`[outputs]` destination of `a`: `../x.txt` resolves to `{root}/x.txt`, {allows}"), "13:1");

    let abs = format!("{outside}/abs.txt");
    d.write("echo.wasm", "echo", "", &abs);
    refused(&d, &format!("`[outputs]` destination of `a`: `{abs}` resolves to `{abs}`, {allows}"), "13:1");

    d.write("echo.wasm", "echo", "", "link/out.txt");
    refused(
        &d,
        &format!("`[outputs]` destination of `a`: `link/out.txt` resolves to `{outside}/out.txt`, {allows}"),
        "13:1",
    );

    d.write("echo.wasm", "echo", "inputs = { x = \"file:link/secret.txt\" }", "x.txt");
    refused(
        &d,
        &format!("input file of task `a`: `link/secret.txt` resolves to `{outside}/secret.txt`, {allows}"),
        "10:16",
    );

    d.write("echo.wasm", "probe", "mounts = { \"/host\" = \"file:/\" }", "x.txt");
    refused(&d, &format!("mount `/host` of task `a`: `/` resolves to `/`, {allows}"), "10:22");

    d.write("../outside/outside.wasm", "echo", "", "x.txt");
    refused(
        &d,
        &format!("plugin `echo`: `../outside/outside.wasm` resolves to `{outside}/outside.wasm`, {allows}"),
        "5:8",
    );
    // An --allow-path directory is allowed.
    let (code, stderr) = d.engine(&["check", "--confine", "--allow-path", &outside]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_confined_run_runs_nothing_and_writes_nothing_outside() {
    let d = Dir::new();
    d.write("echo.wasm", "echo", "params = { text = \"hi\" }", "../escaped.txt");
    for executor in ["threads", "processes"] {
        let (code, stderr) = d.engine(&["run", "--confine", "--executor", executor]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("`[outputs]` destination of `a`: `../escaped.txt` resolves to"), "{stderr}");
        assert!(!d.root.join("escaped.txt").exists());
        assert!(!d.root.join("p/.engine-store").exists(), "nothing ran");
    }
    // Without --confine the author is trusted: the destination is written.
    let (code, stderr) = d.engine(&["run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(d.root.join("escaped.txt")).unwrap(), "hi");
    // Inside the pipeline's directory, confined runs work as usual.
    d.write("echo.wasm", "echo", "params = { text = \"hi\" }", "out/a.txt");
    let (code, stderr) = d.engine(&["run", "--confine"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(d.root.join("p/out/a.txt")).unwrap(), "hi");
}
