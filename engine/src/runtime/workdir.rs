//! The writable working directory of a command task (`workdir`): seeded per
//! attempt, published after a successful exit.
//!
//! Each attempt gets its own copy, in the attempt's temp dir, of the seed
//! named by `from`: a directory, or an archive unpacked once into the cache
//! by [`super::mounts`] (which refuses links, special files and entries that
//! escape the archive). Only regular files and directories are copied; a seed
//! directory holding a link or a special file is refused, and so is a seed
//! larger than the workdir's limits (see [`super::watch`]). Copied files are
//! new files owned by the engine (mode 0644, directories 0755), never links
//! to the seed, so the program cannot change the seed.
//!
//! After a successful exit, every regular file whose path relative to the
//! workdir matches a `publish` glob becomes an output named by that path. A
//! match that is a link or a special file fails the task; links are never
//! followed. Nothing is published from a failed attempt, and the copy is
//! deleted with the temp dir whatever happens.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::Runtime;
use super::watch::{Area, Excess, Tally, Watched};
use crate::plan::Workdir;
use crate::task::message::{InfraKind, TaskFailure};

/// Seeding and reading the workdir is host I/O: not the program's fault.
fn infra(what: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::infra(InfraKind::Storage, what.to_string())
}

/// The limits of a workdir, for the live watch and the seed copy.
pub(super) fn watched(wd: &Workdir, dir: &Path) -> Watched {
    Watched {
        dir: dir.to_path_buf(),
        max_entries: super::watch::MAX_SCRATCH_ENTRIES,
        max_bytes: wd.size,
        area: Area::Workdir(wd.at.clone()),
    }
}

/// Create `dest` and copy the seed into it, held to the workdir's limits.
pub(super) fn seed(rt: &Runtime, wd: &Workdir, dest: &Path) -> Result<(), TaskFailure> {
    fs::create_dir(dest).map_err(|e| infra(format!("cannot create `{}`: {e}", dest.display())))?;
    let Some(from) = &wd.from else { return Ok(()) };
    let src = rt.inner.unpacked.dir_for(&rt.inner.cache_root, from).map_err(|e| infra(format!("workdir seed: {e}")))?;
    let limits = watched(wd, dest);
    let mut tally = Tally { max_entries: limits.max_entries, max_bytes: limits.max_bytes, entries: 0, bytes: 0 };
    let over = |excess: Excess| {
        let (limit, detail) = limits.describe(excess);
        TaskFailure::Limit { limit, detail: format!("{detail} (while copying the seed `{}`)", from.display()) }
    };
    let mut stack = vec![(src.clone(), dest.to_path_buf(), String::new(), 0usize)];
    while let Some((from_dir, to_dir, prefix, depth)) = stack.pop() {
        let list = fs::read_dir(&from_dir).map_err(|e| infra(format!("cannot list `{}`: {e}", from_dir.display())))?;
        for entry in list {
            let entry = entry.map_err(|e| infra(format!("cannot list `{}`: {e}", from_dir.display())))?;
            let name = entry.file_name();
            let rel = if prefix.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{prefix}/{}", name.to_string_lossy())
            };
            let meta = fs::symlink_metadata(entry.path())
                .map_err(|e| infra(format!("cannot inspect `{}`: {e}", entry.path().display())))?;
            let ft = meta.file_type();
            if !ft.is_dir() && !ft.is_file() {
                let what = if ft.is_symlink() { "a symbolic link" } else { "a special file" };
                return Err(infra(format!(
                    "workdir seed `{}`: `{rel}` is {what}; only regular files and directories can seed a workdir",
                    from.display()
                )));
            }
            tally.add(depth + 1, rel.len(), ft.is_file().then_some(meta.len())).map_err(over)?;
            let target = to_dir.join(&name);
            if ft.is_dir() {
                fs::create_dir(&target).map_err(|e| infra(format!("cannot create `{}`: {e}", target.display())))?;
                stack.push((entry.path(), target, rel, depth + 1));
            } else {
                copy_file(&entry.path(), &target)?;
            }
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), TaskFailure> {
    let mut src = File::open(from).map_err(|e| infra(format!("cannot read `{}`: {e}", from.display())))?;
    let mut dst = File::create(to).map_err(|e| infra(format!("cannot create `{}`: {e}", to.display())))?;
    io::copy(&mut src, &mut dst).map_err(|e| infra(format!("cannot copy `{}`: {e}", from.display())))?;
    Ok(())
}

/// How the program sees `rel` inside the workdir, for messages.
fn guest_path(wd: &Workdir, rel: &str) -> String {
    match wd.at.as_str() {
        "." => rel.to_string(),
        "/" => format!("/{rel}"),
        at => format!("{at}/{rel}"),
    }
}

/// The files to publish: every regular file under `dir` whose relative path
/// matches a `publish` glob, as (output name, host path, length), sorted by name.
pub(super) fn published(wd: &Workdir, dir: &Path) -> Result<Vec<(String, PathBuf, u64)>, TaskFailure> {
    let mut found = Vec::new();
    if wd.publish.is_empty() {
        return Ok(found);
    }
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let list = fs::read_dir(&d).map_err(|e| infra(format!("cannot list `{}`: {e}", d.display())))?;
        for entry in list {
            let entry = entry.map_err(|e| infra(format!("cannot list `{}`: {e}", d.display())))?;
            let name = entry.file_name();
            let lossy = name.to_string_lossy();
            let rel = if prefix.is_empty() { lossy.into_owned() } else { format!("{prefix}/{lossy}") };
            let meta = fs::symlink_metadata(entry.path())
                .map_err(|e| infra(format!("cannot inspect `{}`: {e}", guest_path(wd, &rel))))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                stack.push((entry.path(), rel));
                continue;
            }
            let Some(glob) = wd.publish.iter().find(|g| crate::plan::glob::matches(g, &rel)) else { continue };
            if name.to_str().is_none() {
                return Err(TaskFailure::Error {
                    message: format!("`{}` in the workdir is not valid UTF-8", guest_path(wd, &rel)),
                });
            }
            if !ft.is_file() {
                let what = if ft.is_symlink() { "a symbolic link" } else { "not a regular file" };
                return Err(TaskFailure::Error {
                    message: format!(
                        "`{}` matches publish glob `{glob}` but is {what}; only regular files can be published",
                        guest_path(wd, &rel)
                    ),
                });
            }
            found.push((rel, entry.path(), meta.len()));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}
