//! The `workdir` of command tasks through `engine run`: a private copy of a
//! seed directory or archive per attempt, at `/`, `.` or any guest path,
//! with `publish` globs turning files into outputs after a successful exit;
//! and the hostile cases: `..` out of it, links in a seed, over-limit
//! writes and depth, links matching a publish glob, failed attempts.
//!
//! ```text
//!   t (cmd_probe or a WAT command, one task)
//! ```

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::{EngineRun, guest, wat_guest};

/// A pipeline dir with a seed directory `seed/` (`README`, `src/main.c`,
/// an empty `build/`) and one task whose table body is `task`.
fn setup(plugin: &Path, task: &str) -> tempfile::TempDir {
    setup_in(&std::env::temp_dir(), plugin, task)
}

/// [`setup`] in a new directory under `parent`.
pub(crate) fn setup_in(parent: &Path, plugin: &Path, task: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(parent).unwrap();
    let seed = dir.path().join("seed");
    fs::create_dir_all(seed.join("src")).unwrap();
    fs::create_dir_all(seed.join("build")).unwrap();
    fs::write(seed.join("README"), "seed readme\n").unwrap();
    fs::write(seed.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
    let text = format!(
        "[pipeline]\nname = \"workdir\"\n\n[plugins]\nt = {:?}\n\n[tasks.t]\nplugin = \"t\"\n{task}\n",
        plugin.display().to_string()
    );
    fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

fn run(dir: &Path, executor: &str) -> (i32, String, Value) {
    let r = EngineRun::new(dir).executor(executor).args(["--quiet"]).run();
    let task = r.report()["tasks"][0].clone();
    (r.code, r.stderr, task)
}

fn output_names(task: &Value) -> Vec<String> {
    task["outputs"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

pub(crate) fn seed_unchanged(dir: &Path) {
    let seed = dir.join("seed");
    let mut names: Vec<String> = walkdir(&seed);
    names.sort();
    assert_eq!(names, ["README", "build", "src", "src/main.c"]);
    assert_eq!(fs::read_to_string(seed.join("README")).unwrap(), "seed readme\n");
}

fn walkdir(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_workdir_is_a_private_seeded_copy_and_publishes_matching_files() {
    let body = r#"args = ["cat", "/work/README", "list", "/work", "write", "/work/top.hex", "ff", "write", "/work/build/a.o", "obj", "write", "/work/notes.txt", "n", "write", "/work/README", "changed"]
stdout = "log"
workdir = { from = "file:seed", at = "/work", publish = ["*.hex", "build/**"] }

[outputs]
"hex" = "t.top.hex"
"obj" = "t.build/a.o"
"log" = "t.log""#;
    for executor in ["sync", "threads", "processes"] {
        let dir = setup(&guest("cmd_probe"), body);
        let (code, stderr, task) = run(dir.path(), executor);
        assert_eq!(code, 0, "{executor}: {stderr}");
        assert_eq!(output_names(&task), ["build/a.o", "exit_code", "log", "top.hex"], "{executor}");
        assert_eq!(fs::read_to_string(dir.path().join("hex")).unwrap(), "ff");
        assert_eq!(fs::read_to_string(dir.path().join("obj")).unwrap(), "obj");
        assert_eq!(
            fs::read_to_string(dir.path().join("log")).unwrap(),
            "seed readme\n/work/README file 12\n/work/build dir\n/work/src dir\n/work/src/main.c file 29\n\
             write /work/top.hex: ok\nwrite /work/build/a.o: ok\nwrite /work/notes.txt: ok\nwrite /work/README: ok\n"
        );
        seed_unchanged(dir.path());
    }
}

#[test]
fn a_workdir_at_root_or_dot_takes_absolute_or_relative_paths() {
    for (at, path) in [("/", "/x.hex"), (".", "x.hex")] {
        let body = format!(
            "args = [\"write\", \"{path}\", \"v\", \"list\", \"{}\"]\nstdout = \"log\"\nworkdir = {{ at = \"{at}\", publish = [\"*.hex\"] }}\n\n[outputs]\n\"log\" = \"t.log\"",
            if at == "/" { "/" } else { "." }
        );
        let dir = setup(&guest("cmd_probe"), &body);
        let (code, stderr, task) = run(dir.path(), "threads");
        assert_eq!(code, 0, "{at}: {stderr}");
        assert_eq!(output_names(&task), ["exit_code", "log", "x.hex"], "{at}");
        let log = fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(log.starts_with(&format!("write {path}: ok\n")), "{at}: {log}");
        assert!(log.contains("x.hex file 1"), "{at}: {log}");
    }
}

#[test]
fn dotdot_out_of_the_workdir_is_refused_and_touches_nothing() {
    let body = r#"args = ["write", "/work/../escape", "x", "write", "/work/src/../../escape", "x", "cat", "/work/../seed/README", "write", "../escape", "x"]
stdout = "log"
workdir = { from = "file:seed", at = "/work", publish = ["**"] }

[outputs]
"log" = "t.log""#;
    let dir = setup(&guest("cmd_probe"), body);
    let (code, stderr, task) = run(dir.path(), "threads");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.path().join("log")).unwrap(),
        "write /work/../escape: error\nwrite /work/src/../../escape: error\ncat /work/../seed/README: error\n\
         write ../escape: error\n"
    );
    assert_eq!(output_names(&task), ["README", "exit_code", "log", "src/main.c"]);
    assert!(!dir.path().join("escape").exists());
    seed_unchanged(dir.path());
}

#[test]
fn links_in_a_seed_are_refused_before_the_program_starts() {
    // An archive holding a symlink.
    let dir = setup(&guest("cmd_probe"), "args = [\"exit\", \"0\"]\nworkdir = { from = \"file:seed.tar\" }");
    {
        let f = fs::File::create(dir.path().join("seed.tar")).unwrap();
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "evil", "/etc/passwd").unwrap();
        b.finish().unwrap();
    }
    let (code, _, task) = run(dir.path(), "threads");
    assert_eq!(code, 1);
    assert_eq!(task["error"]["kind"], "infra");
    let msg = task["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("workdir seed: cannot unpack archive `")
            && msg.ends_with(
                "seed.tar`: entry `evil` is a symbolic link; only regular files and directories can be mounted"
            ),
        "{msg}"
    );
    // A directory holding a symlink.
    let dir = setup(&guest("cmd_probe"), "args = [\"exit\", \"0\"]\nworkdir = { from = \"file:seed\" }");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("seed/src/evil")).unwrap();
    let (code, _, task) = run(dir.path(), "processes");
    assert_eq!(code, 1);
    assert_eq!(task["error"]["kind"], "infra");
    assert_eq!(
        task["error"]["message"].as_str().unwrap(),
        format!(
            "workdir seed `{}`: `src/evil` is a symbolic link; only regular files and directories can seed a workdir",
            dir.path().join("seed").display()
        )
    );
}

#[test]
fn over_limit_writes_depth_and_seeds_fail_the_task_and_publish_nothing() {
    let cases = [
        (
            "args = [\"fill\", \"/w\", \"100000\"]\nworkdir = { at = \"/w\", size = \"64KiB\", publish = [\"**\"] }",
            "workdir limit exceeded: the task wrote more than 64KiB to its workdir `/w`",
        ),
        (
            "args = [\"deep\", \"/w\", \"70\"]\nworkdir = { at = \"/w\", publish = [\"**\"] }",
            "workdir limit exceeded: the task made a path of more than 64 components or 2048 bytes in its workdir `/w`",
        ),
        (
            "args = [\"deep\", \"/tmp\", \"70\"]\nscratch = true",
            "scratch limit exceeded: the task made a path of more than 64 components or 2048 bytes in /tmp",
        ),
        (
            "args = [\"deep\", \"/out\", \"70\"]",
            "output depth limit exceeded: the task made a path of more than 64 components or 2048 bytes in /out",
        ),
        (
            "args = [\"exit\", \"0\"]\nworkdir = { from = \"file:seed\", at = \"/w\", size = \"20B\" }",
            "workdir limit exceeded: the task wrote more than 20B to its workdir `/w` (while copying the seed `SEED`)",
        ),
    ];
    for (body, want) in cases {
        let dir = setup(&guest("cmd_probe"), body);
        let (code, stderr, task) = run(dir.path(), "threads");
        assert_eq!(code, 1, "{body}: {stderr}");
        assert_eq!(task["error"]["kind"], "limit", "{body}");
        let want = want.replace("SEED", &dir.path().join("seed").display().to_string());
        assert_eq!(task["error"]["message"].as_str().unwrap(), want, "{body}");
        assert_eq!(output_names(&task), Vec::<String>::new(), "{body}");
    }
}

#[test]
fn a_failed_attempt_publishes_nothing_and_a_link_cannot_be_published() {
    let body =
        "args = [\"write\", \"/w/top.hex\", \"ff\", \"exit\", \"3\"]\nworkdir = { at = \"/w\", publish = [\"*.hex\"] }";
    let dir = setup(&guest("cmd_probe"), body);
    let (code, _, task) = run(dir.path(), "threads");
    assert_eq!(code, 1);
    assert_eq!(task["error"]["message"], "task error: exited with code 3");
    assert_eq!(output_names(&task), Vec::<String>::new());

    let body = "workdir = { at = \"/w\", publish = [\"*.hex\"] }";
    let dir = setup(&wat_guest("cmd_workdir_symlink"), body);
    let (code, _, task) = run(dir.path(), "threads");
    assert_eq!(code, 1);
    assert_eq!(
        task["error"]["message"],
        "task error: `/w/link.hex` matches publish glob `*.hex` but is a symbolic link; only regular files can be published"
    );
    assert_eq!(output_names(&task), Vec::<String>::new());
}
