//! Stock plugins and the installed layout: `std:NAME` resolution
//! ($ENGINE_PLUGIN_PATH, `<exe dir>/../share/engine/plugins`, `<exe dir>/../plugins`),
//! `engine plugins`, the unknown-name diagnostic, and `engine --version`.

use std::path::{Path, PathBuf};

use crate::util::{engine, guest, plugins_dir, repo_root, run_engine, stock_names, target_dir, write_test_plugins};

/// `engine ARGS` in `dir` with `ENGINE_PLUGIN_PATH` set to `path`.
fn engine_with_path(dir: &Path, path: &str, args: &[&str]) -> std::process::Output {
    engine().env("ENGINE_PLUGIN_PATH", path).args(args).current_dir(dir).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `std:NAME` lines of `engine plugins` output.
fn listed(stdout: &str) -> Vec<String> {
    stdout.lines().filter(|l| l.starts_with("std:")).map(|l| l.split([' ', ':']).nth(1).unwrap().to_string()).collect()
}

#[test]
fn version_names_the_crate_wasmtime_and_the_commit() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let at = lock.find("name = \"wasmtime\"\nversion = \"").unwrap() + "name = \"wasmtime\"\nversion = \"".len();
    let wasmtime = &lock[at..at + lock[at..].find('"').unwrap()];
    let git = std::process::Command::new("git")
        .args(["-C", &repo_root().display().to_string(), "rev-parse", "--short=12", "HEAD"])
        .output();
    let commit = match git {
        Ok(o) if o.status.success() => text(&o.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    };
    let out = engine().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("engine {} (wasmtime {wasmtime}, commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn engine_plugins_lists_exactly_the_stock_plugins_of_the_build_tree() {
    guest("wordcount");
    let out = run_engine(&repo_root(), &["plugins"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(listed(&out.stdout), stock_names(), "{}", out.stdout);
    // Only stock plugins: test guests (built next to them) are never listed.
    let files: Vec<String> = std::fs::read_dir(plugins_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(files.len(), stock_names().len(), "{files:?}");
    for g in ["hog", "spin", "flaky", "hostile_cmd", "c_wordcount"] {
        assert!(!plugins_dir().join(format!("{g}.wasm")).exists(), "{g} is in {}", plugins_dir().display());
    }
    let concat = format!(
        "std:concat (sdk task): concatenate the list input `parts` in index order, with `separator` between items; \
         `skip_header` drops the first line of every item after the first\n  \
         inputs: parts; outputs: out; params: separator, skip_header\n  file: {}\n",
        plugins_dir().join("concat.wasm").display()
    );
    assert!(out.stdout.starts_with(&concat), "{}", out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&run_engine(&repo_root(), &["plugins", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["name"], "std:concat");
    assert_eq!(json[0]["kind"], "sdk");
    assert_eq!(json[0]["meta"]["params"], serde_json::json!(["separator", "skip_header"]));
}

#[test]
fn the_plugin_path_comes_first_and_the_first_directory_wins() {
    guest("wordcount");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_test_plugins(a.path());
    write_test_plugins(b.path());
    // A `wordcount` of the path shadows the build tree's.
    std::fs::copy(a.path().join("plugins/sdk.wasm"), a.path().join("plugins/wordcount.wasm")).unwrap();
    let path = format!("{}:{}", a.path().join("plugins").display(), b.path().join("plugins").display());
    let out = engine_with_path(a.path(), &path, &["plugins", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file_of = |name: &str| {
        let e = json.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{name}: {json}"));
        PathBuf::from(e["path"].as_str().unwrap())
    };
    assert_eq!(file_of("std:sdk"), a.path().join("plugins/sdk.wasm"));
    assert_eq!(file_of("std:wordcount"), a.path().join("plugins/wordcount.wasm"));
    assert_eq!(file_of("std:merge"), plugins_dir().join("merge.wasm"));
    // `badimport.wasm` and `notwasm.wasm` are not valid plugins: reported, the
    // others still listed, exit 2.
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "error: invalid stock plugin `std:badimport` ({}): imports `env.clock`, which the engine does not provide \
             (allowed modules: engine, wasi_snapshot_preview1)",
            a.path().join("plugins/badimport.wasm").display()
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "error: invalid stock plugin `std:notwasm` ({}): not a WebAssembly module",
            a.path().join("plugins/notwasm.wasm").display()
        )
    );
    assert!(json.as_array().unwrap().iter().all(|e| e["name"] != "std:badimport" && e["name"] != "std:notwasm"));
}

#[test]
fn an_installed_engine_finds_share_engine_plugins_and_says_where_it_looked() {
    // A hard link, not a copy: a copy written while another test forks could be
    // busy ("text file busy") when run. Same filesystem: inside the target dir.
    let prefix = tempfile::tempdir_in(target_dir()).unwrap();
    // The engine finds its directory through /proc/self/exe: symlinks resolved.
    let root = prefix.path().canonicalize().unwrap();
    let bin = prefix.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::hard_link(env!("CARGO_BIN_EXE_engine"), bin.join("engine")).unwrap();
    let installed = std::process::Command::new(bin.join("engine"))
        .env_remove("ENGINE_PLUGIN_PATH")
        .arg("plugins")
        .output()
        .unwrap();
    assert_eq!(
        text(&installed.stdout),
        format!(
            "no stock plugins found in {}, {}\n",
            root.join("share/engine/plugins").display(),
            root.join("plugins").display()
        )
    );
    let share = prefix.path().join("share/engine/plugins");
    std::fs::create_dir_all(&share).unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    write_test_plugins(fixtures.path());
    std::fs::copy(fixtures.path().join("plugins/cmd.wasm"), share.join("cmd.wasm")).unwrap();
    let installed = std::process::Command::new(bin.join("engine"))
        .env_remove("ENGINE_PLUGIN_PATH")
        .arg("plugins")
        .output()
        .unwrap();
    assert_eq!(
        text(&installed.stdout),
        format!(
            "std:cmd (command (WASI preview 1))\n  metadata: none\n  file: {}\n",
            root.join("share/engine/plugins/cmd.wasm").display()
        )
    );
}

#[test]
fn std_names_resolve_in_tasks_and_in_the_plugins_table() {
    let split = guest("split");
    let digest = engine::store::Digest::of(&std::fs::read(guest("wordcount")).unwrap()).to_hex();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("words.txt"), "the cat and the hat\nThe Cat sat\n").unwrap();
    let pipeline = format!(
        r#"[pipeline]
name = "std"

[plugins]
wc = {{ path = "std:wordcount", sha256 = "{digest}" }}

[tasks.split]
plugin = "std:split"
inputs = {{ text = "file:words.txt" }}
params = {{ chunks = 2 }}

[tasks.count]
plugin = "wc"
foreach = {{ i = {{ range = [0, 2] }} }}
inputs = {{ text = "split.{{i}}" }}

[tasks.merge]
plugin = "std:merge"
inputs = {{ parts = "count[*]" }}

[tasks.top]
plugin = "std:topk"
inputs = {{ counts = "merge" }}
params = {{ k = 2 }}

[outputs]
"out/top.tsv" = "top"
"#
    );
    std::fs::write(dir.path().join("pipeline.toml"), pipeline).unwrap();
    let out = run_engine(dir.path(), &["run", "-q", "pipeline.toml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("out/top.tsv")).unwrap(), "the\t3\ncat\t2\n");
    let plan: serde_json::Value =
        serde_json::from_str(&run_engine(dir.path(), &["graph", "--format", "json", "pipeline.toml"]).stdout).unwrap();
    let plugins: Vec<(String, String)> = plan["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["path"].as_str().unwrap().to_string()))
        .collect();
    assert!(plugins.contains(&("std:split".to_string(), split.display().to_string())), "{plugins:?}");
    assert!(plugins.contains(&("wc".to_string(), plugins_dir().join("wordcount.wasm").display().to_string())));
}

#[test]
fn an_unknown_std_name_is_a_check_error_that_lists_the_stock_names() {
    guest("wordcount");
    let dir = tempfile::tempdir().unwrap();
    write_test_plugins(dir.path());
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\n\n[tasks.count]\nplugin = \"std:wordcont\"\n\n[tasks.again]\nplugin = \"std:wordcont\"\n",
    )
    .unwrap();
    let path = dir.path().join("plugins").display().to_string();
    let out = engine_with_path(dir.path(), &path, &["check", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let mut names: Vec<String> = ["badimport", "cmd", "notwasm", "sdk"].iter().map(|s| s.to_string()).collect();
    names.extend(stock_names());
    names.sort();
    let list: Vec<String> = names.iter().map(|n| format!("std:{n}")).collect();
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: unknown stock plugin `std:wordcont`\n  \
             ┌─ p.toml:5:10\n  \
             │\n\
             5 │ plugin = \"std:wordcont\"\n  \
             │          ^^^^^^^^^^^^^^ no such stock plugin\n  \
             │\n  \
             = stock plugins: {}\n\n\
             error: `p.toml` is invalid: 1 error\n",
            list.join(", ")
        )
    );
}
