//! Build script: embeds what `engine --version` prints besides the crate
//! version, as compile-time environment variables: `ENGINE_WASMTIME_VERSION`
//! (the `wasmtime` entry of the workspace's Cargo.lock) and `ENGINE_GIT_COMMIT`
//! (`git rev-parse --short=12 HEAD` of the repository this crate is the
//! `engine/` folder of; `unknown` outside git or without git). Cheap: it reruns
//! only when Cargo.lock, git's HEAD, the branch HEAD points at or packed-refs
//! change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| manifest.clone());

    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let wasmtime = std::fs::read_to_string(&lock).ok().and_then(|t| locked_version(&t, "wasmtime"));
    println!("cargo:rustc-env=ENGINE_WASMTIME_VERSION={}", wasmtime.as_deref().unwrap_or("unknown"));

    let commit = git_commit(&root);
    println!("cargo:rustc-env=ENGINE_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}

/// The version of package `name` in a Cargo.lock text.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let want = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == want {
            let v = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

/// The short commit of `root`'s git checkout, watching the files that change
/// with it. None when `root` is not the top of a git work tree.
fn git_commit(root: &Path) -> Option<String> {
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(root).ok()? {
        return None;
    }
    let mut watch = vec![git(root, &["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(root, &["rev-parse", "--git-path", &branch])?);
    }
    watch.push(git(root, &["rev-parse", "--git-path", "packed-refs"])?);
    for p in watch {
        // A path that does not exist would make cargo rerun this script every build.
        let p = root.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    git(root, &["rev-parse", "--short=12", "HEAD"])
}

/// The trimmed stdout of `git -C dir ARGS`, or None if git fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}
