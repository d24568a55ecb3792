//! `engine new task --lang LANG DIR`: the files each language gets, the SDK
//! paths written into them, a Rust (and, with clang, a C) task built with its
//! `build.sh` and run with `engine call` and `engine run`, and the refusals (an
//! existing directory, a bad name).

use std::path::Path;
use std::process::Command;

use crate::util::{engine, guest, repo_root, target_dir};

/// `engine new task --lang LANG DIR` in `dir`, with the repository's SDKs.
fn new_task(dir: &Path, lang: &str, name: &str) -> std::process::Output {
    engine()
        .args(["new", "task", "--lang", lang, name])
        .env("ENGINE_SDK_DIR", repo_root().join("sdk"))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sdk() -> String {
    repo_root().join("sdk").canonicalize().unwrap().display().to_string()
}

/// A language, the files of its own it gets, and text each must contain.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, String)]);

/// Every language's files, named after the task, with the SDK's path in them.
#[test]
fn every_language_gets_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let sdk = sdk();
    let cases: &[Case] = &[
        (
            "rust",
            &["Cargo.toml", "src/lib.rs", "build.sh"],
            &[
                ("Cargo.toml", format!("engine-sdk = {{ path = \"{sdk}/rust\" }}")),
                ("Cargo.toml", "name = \"t_rust\"".into()),
                ("src/lib.rs", "name = \"t_rust\",".into()),
                ("build.sh", "cp \"${CARGO_TARGET_DIR:-target}/wasm32-wasip1/release/t_rust.wasm\" t_rust.wasm".into()),
            ],
        ),
        (
            "c",
            &["t_c.c", "build.sh"],
            &[("t_c.c", "\\\"name\\\":\\\"t_c\\\"".into()), ("build.sh", format!("-I {sdk}/c -o t_c.wasm t_c.c"))],
        ),
        (
            "zig",
            &["t_zig.zig", "build.sh"],
            &[
                ("t_zig.zig", ".name = \"t_zig\",".into()),
                ("build.sh", format!("-Mroot=t_zig.zig -Mengine={sdk}/zig/engine.zig -femit-bin=t_zig.wasm")),
            ],
        ),
        (
            "go",
            &["main.go", "go.mod", "meta.json", "build.sh"],
            &[
                (
                    "go.mod",
                    format!(
                        "module example.local/t_go\n\ngo 1.24\n\nrequire engine.local/sdk v0.0.0\n\nreplace engine.local/sdk => {sdk}/go\n"
                    ),
                ),
                ("meta.json", "\"name\":\"t_go\"".into()),
                ("build.sh", format!("(cd {sdk}/go && go run ./cmd/addmeta -o \"$OLDPWD/t_go.wasm\"")),
            ],
        ),
        (
            "assemblyscript",
            &["t_as.ts", "meta.json", "build.sh"],
            &[
                ("meta.json", "\"name\":\"t_as\"".into()),
                ("build.sh", format!("cp {sdk}/assemblyscript/engine.ts .\nasc t_as.ts -O3")),
                ("build.sh", format!("node {sdk}/assemblyscript/addmeta.mjs raw.wasm meta.json t_as.wasm")),
            ],
        ),
        (
            "python",
            &["t_py.py", "build.sh"],
            &[
                ("t_py.py", "@task\ndef run(inputs, outputs, params):".into()),
                (
                    "build.sh",
                    format!(
                        "componentize-py -d {sdk}/wit/engine-task.wit -w task componentize \\\n  -p {sdk}/python -p . t_py -o t_py.wasm"
                    ),
                ),
            ],
        ),
        (
            "js",
            &["t_js.js", "build.sh"],
            &[
                ("t_js.js", "from \"engine:task/host@1.0.0\"".into()),
                (
                    "build.sh",
                    format!("componentize-qjs -w {sdk}/wit/engine-task.wit -n task -j t_js.js --sync -o t_js.wasm"),
                ),
            ],
        ),
    ];
    for (lang, files, contains) in cases {
        let name = match *lang {
            "assemblyscript" => "t_as".to_string(),
            "python" => "t_py".to_string(),
            l => format!("t_{l}"),
        };
        let out = new_task(tmp.path(), lang, &name);
        assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out.stderr));
        let mut want: Vec<String> = files.iter().map(|f| format!("wrote {name}/{f}\n")).collect();
        for f in ["pipeline.toml", "input.txt", "README.md"] {
            want.push(format!("wrote {name}/{f}\n"));
        }
        want.push(format!("build it with `bash {name}/build.sh`, then see {name}/README.md\n"));
        assert_eq!(text(&out.stdout), want.concat(), "{lang}");
        let dir = tmp.path().join(&name);
        for (file, needle) in *contains {
            let body = read(&dir.join(file));
            assert!(body.contains(needle.as_str()), "{lang}: {file} lacks {needle:?}:\n{body}");
        }
        let build = dir.join("build.sh");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&build).unwrap().permissions()) & 0o777,
            0o755
        );
        assert_eq!(read(&dir.join("input.txt")), "hello\nworld\n");
        let pipeline = read(&dir.join("pipeline.toml"));
        assert!(pipeline.contains(&format!("[plugins]\n{name} = \"{name}.wasm\"\n")), "{pipeline}");
        let readme = read(&dir.join("README.md"));
        assert!(readme.contains(&format!("engine call {name}.wasm --input text=input.txt")), "{readme}");
        // Nothing is left unfilled.
        for e in walk(&dir) {
            assert!(!read(&e).contains("{{"), "{} keeps a placeholder", e.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { v.extend(walk(&p)) } else { v.push(p) }
    }
    v
}

#[test]
fn an_existing_directory_or_a_bad_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("mine")).unwrap();
    std::fs::write(tmp.path().join("mine/keep.txt"), "mine").unwrap();
    let out = new_task(tmp.path(), "rust", "mine");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "error: `mine` already exists; `engine new` never overwrites anything\n");
    assert_eq!(std::fs::read_dir(tmp.path().join("mine")).unwrap().count(), 1);
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let out = new_task(tmp.path(), "c", "file");
    assert_eq!(text(&out.stderr), "error: `file` already exists; `engine new` never overwrites anything\n");
    for bad in ["My-Task", "2go"] {
        let out = new_task(tmp.path(), "go", bad);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "error: `{bad}` is not a valid task name: use lowercase letters, digits and `_`, starting with a letter (at most 64)\n"
            )
        );
        assert!(!tmp.path().join(bad).exists());
    }
    let out = new_task(tmp.path(), "cobol", "x");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: invalid value 'cobol' for '--lang <LANG>'"), "{}", text(&out.stderr));
    // A nested directory is made with its parents; the task is its last component.
    let out = new_task(tmp.path(), "c", "a/b/upper");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(tmp.path().join("a/b/upper/upper.c").is_file());
    // A parent that cannot be made (a file in the way) is an I/O error: 3.
    let out = new_task(tmp.path(), "c", "file/sub");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "error: cannot create `file/sub`: File exists (os error 17)\n");
}

/// Build the new task with its `build.sh` and run it alone and in its pipeline.
fn build_and_run(dir: &Path, name: &str, want: &str) {
    let task = dir.join(name);
    let build = Command::new("bash")
        .arg(task.join("build.sh"))
        .env("CARGO_TARGET_DIR", target_dir().join("new-task"))
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    assert!(build.status.success(), "build.sh of {name}: {}{}", text(&build.stdout), text(&build.stderr));
    let wasm = format!("{name}.wasm");
    assert!(task.join(&wasm).is_file());
    let mut args = vec!["call", wasm.as_str(), "--input", "text=input.txt", "--out", "res"];
    if name.contains("rust") {
        args.extend(["--param", "prefix=> "]);
    }
    let out = engine().args(&args).current_dir(&task).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "wrote res/out\n");
    assert_eq!(read(&task.join("res/out")), want);
    let out = engine().args(["run", "pipeline.toml", "--quiet"]).current_dir(&task).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(&task.join(format!("out/{name}.txt"))), want);
}

#[test]
fn a_new_rust_task_builds_and_runs() {
    guest("wordcount");
    let tmp = tempfile::tempdir().unwrap();
    let out = new_task(tmp.path(), "rust", "hi_rust");
    assert!(out.status.success(), "{}", text(&out.stderr));
    build_and_run(tmp.path(), "hi_rust", "> hello\n> world\n");
}

#[test]
fn a_new_c_task_builds_and_runs_when_clang_is_there() {
    let clang = Command::new("clang").arg("--version").output().is_ok_and(|o| o.status.success());
    if !clang || !Path::new("/usr/include/wasm32-wasi").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "clang and wasi-libc are missing (xtask/setup.sh installs them)");
        eprintln!("SKIPPING a_new_c_task_builds_and_runs: clang or wasi-libc is missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = new_task(tmp.path(), "c", "hi_c");
    assert!(out.status.success(), "{}", text(&out.stderr));
    build_and_run(tmp.path(), "hi_c", "HELLO\nWORLD\n");
}
