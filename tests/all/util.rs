//! Shared test helpers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// What a run of the `engine` binary produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the real `engine` binary with `args` in directory `dir`.
pub fn run_engine(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .current_dir(dir)
        .env_remove("ENGINE_PROFILE_LOAD")
        .output()
        .expect("cannot start the engine binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compare `actual` with the contents of the file `expected` (expect-test
/// style). With `UPDATE_EXPECT=1` the file is (re)written instead. Returns a
/// description of the mismatch.
pub fn check_expect_file(expected: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(expected, actual).map_err(|e| format!("cannot write {}: {e}", expected.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if want == actual {
        Ok(())
    } else {
        Err(format!(
            "{} differs (run with UPDATE_EXPECT=1 to accept)\n--- expected\n{want}\n--- actual\n{actual}",
            expected.display()
        ))
    }
}

/// Copy the files (not subdirectories) of `src` into `dst`.
pub fn copy_files(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// Tiny test plugins, assembled from WAT, written to `dir/plugins/`:
/// `sdk.wasm` (an SDK task with metadata: inputs `in`, outputs `out` and
/// `stats`, params `lowercase`, `min_len` and `part`), `cmd.wasm` (a WASI command),
/// `badimport.wasm` (a command importing `env.clock`) and `notwasm.wasm` (text).
pub fn write_test_plugins(dir: &Path) {
    let p = dir.join("plugins");
    std::fs::create_dir_all(&p).unwrap();
    let sdk = r#"(module
        (import "engine" "log" (func (param i32 i32 i32)))
        (memory (export "memory") 1)
        (func (export "engine_abi_v1"))
        (func (export "run") (result i32) i32.const 0)
        (@custom "engine.task" "{\"abi\":1,\"name\":\"sdk\",\"version\":\"0.1.0\",\"inputs\":[\"in\"],\"outputs\":[\"out\",\"stats\"],\"params\":[\"lowercase\",\"min_len\",\"part\"]}"))"#;
    let cmd = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")))"#;
    let bad = r#"(module
        (import "env" "clock" (func (result i64)))
        (memory (export "memory") 1)
        (func (export "_start")))"#;
    std::fs::write(p.join("sdk.wasm"), wat::parse_str(sdk).unwrap()).unwrap();
    std::fs::write(p.join("cmd.wasm"), wat::parse_str(cmd).unwrap()).unwrap();
    std::fs::write(p.join("badimport.wasm"), wat::parse_str(bad).unwrap()).unwrap();
    std::fs::write(p.join("notwasm.wasm"), "this is not wasm\n").unwrap();
}
