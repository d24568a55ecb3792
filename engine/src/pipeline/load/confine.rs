//! `--confine`, for pipeline files from people you do not trust: every host
//! path the pipeline names — plugin files (not `std:` stock plugins), `file:`
//! inputs, mount and workdir sources, the directories of `foreach` globs and
//! `[outputs]` destinations — must resolve, after symbolic links, inside the
//! pipeline file's directory or one of the `--allow-path` directories
//! (docs/security.md, "Threat model"). A path that does not resolve there is
//! an error of `engine check` (and so of `engine run`) at the place the
//! pipeline names it, and is never opened.
//!
//! Resolution follows the kernel's: components are taken left to right, each
//! prefix that exists is replaced by its canonical path (so a symlink is
//! followed, and a `..` after it leaves the link's target), and a prefix that
//! does not exist yet (an output to be created) is kept as written, with `..`
//! removing the last component.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::Loader;
use crate::pipeline::diag::{Code, Diagnostic};
use crate::pipeline::doc::Sp;

/// The canonical directories a confined pipeline may name paths in: its own
/// directory first, then each `--allow-path`.
pub(super) type Roots = Arc<Vec<PathBuf>>;

/// The roots for a pipeline in `base_dir` and the allowed directories, when
/// confined. A root that cannot be resolved is kept as given (it then holds
/// nothing that exists).
pub(super) fn roots(base_dir: &Path, allow: &[PathBuf]) -> Roots {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| resolve(p));
    Arc::new(std::iter::once(base_dir).chain(allow.iter().map(PathBuf::as_path)).map(real).collect())
}

/// `path` (absolute) with every existing prefix resolved (see the module docs).
pub(super) fn resolve(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::CurDir => {}
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => {
                out.push(n);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    out
}

impl Loader<'_, '_> {
    /// Under `--confine`: report (and return false) when `path`, which the
    /// pipeline writes as `rel` at `sp` for `who`, resolves outside the
    /// allowed directories. True when allowed or not confined.
    pub(super) fn confined(&mut self, who: &dyn std::fmt::Display, rel: &str, path: &Path, sp: Sp) -> bool {
        let Some(roots) = self.confine.clone() else { return true };
        let real = resolve(path);
        if roots.iter().any(|r| real.starts_with(r)) {
            return true;
        }
        self.err(
            Diagnostic::error(
                Code::Confine,
                format!("{who}: `{rel}` resolves to `{}`, outside the directories --confine allows", real.display()),
            )
            .primary(sp.range(), "outside the pipeline's directory")
            .note(format!(
                "with --confine, paths must resolve (after symbolic links) inside the pipeline's directory `{}`{}",
                roots[0].display(),
                if roots.len() > 1 {
                    " or an --allow-path directory"
                } else {
                    " (add --allow-path DIR to allow another)"
                }
            )),
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::Path;

    #[test]
    fn resolution_follows_links_and_keeps_missing_parts() {
        let d = tempfile::tempdir().expect("a temporary directory");
        let root = std::fs::canonicalize(d.path()).expect("canonical");
        std::fs::create_dir(root.join("in")).expect("mkdir");
        std::os::unix::fs::symlink("/", root.join("in/up")).expect("symlink");
        assert_eq!(resolve(&root.join("in/x/../y")), root.join("in/y"));
        assert_eq!(resolve(&root.join("in/../../z")), root.parent().expect("a parent").join("z"));
        assert_eq!(resolve(&root.join("in/up/etc/passwd")), Path::new("/etc/passwd"));
        assert_eq!(resolve(&root.join("in/up/..")), Path::new("/"));
    }
}
