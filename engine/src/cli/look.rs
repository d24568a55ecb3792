//! `engine cat`, `engine logs`, `engine gc` and `engine store verify`: read
//! and tend what runs of a pipeline left in its store, without loading (or
//! even validating) the pipeline again.

use std::io::Write;
use std::path::PathBuf;

use super::{CatArgs, EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_TASKS_FAILED, GcArgs, LogsArgs, VerifyArgs};
use crate::history::{self, Runs};
use crate::store::{BlobReader, Digest, StoreSpec};

/// The canonical pipeline path, its store and its runs directory: the
/// store is `--store`, else `.engine-store` next to the pipeline.
fn locate(pipeline: &std::path::Path, store: &Option<String>) -> Result<(PathBuf, StoreSpec, Runs), String> {
    let abs = std::path::absolute(pipeline).unwrap_or_else(|_| pipeline.to_path_buf());
    let file = abs.canonicalize().map_err(|e| format!("cannot read pipeline {}: {e}", pipeline.display()))?;
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let spec = match store {
        Some(s) => StoreSpec::parse(s).map_err(|e| format!("--store: {e}"))?,
        None => StoreSpec::Local(base.join(".engine-store")),
    };
    let runs = Runs::new(crate::session::default_runs_dir(&base, &spec), &file);
    Ok((file, spec, runs))
}

/// As [`locate`], but without `--store` the store the latest run used: a
/// run on a `file://` or `s3://` store is recorded in `.engine-runs` next to
/// the pipeline, with its store; when the latest run started there is newer
/// than the latest in `.engine-store/runs`, that store and those runs.
fn locate_latest(pipeline: &std::path::Path, store: &Option<String>) -> Result<(PathBuf, StoreSpec, Runs), String> {
    let (file, spec, runs) = locate(pipeline, store)?;
    if store.is_some() {
        return Ok((file, spec, runs));
    }
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let shared = Runs::new(base.join(".engine-runs"), &file);
    let newest = |r: &Runs| r.latest("started").ok().map(|id| history::run_order(&id));
    let Some(theirs) = newest(&shared) else { return Ok((file, spec, runs)) };
    if newest(&runs).is_some_and(|ours| ours >= theirs) {
        return Ok((file, spec, runs));
    }
    match shared.last().ok().and_then(|h| StoreSpec::parse(&h.store).ok()) {
        Some(used) => Ok((file, used, shared)),
        None => Ok((file, spec, runs)),
    }
}

fn fail(msg: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("error: {}", super::escape::one(&msg.to_string()));
    code
}

pub fn cat(a: &CatArgs) -> i32 {
    if let Some(d) = (a.target.len() == 64).then(|| Digest::from_hex(&a.target)).flatten() {
        let spec = match &a.store {
            Some(s) => match StoreSpec::parse(s) {
                Ok(s) => s,
                Err(e) => return fail(format!("--store: {e}"), EXIT_INVALID),
            },
            None => match locate(&a.pipeline, &None) {
                Ok((_, spec, _)) => spec,
                Err(e) => return fail(e, EXIT_INVALID),
            },
        };
        return print_blob(&spec, &d);
    }
    let (_, spec, runs) = match locate_latest(&a.pipeline, &a.store) {
        Ok(x) => x,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    let h = match runs.last() {
        Ok(h) => h,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    let (task, output) = match h.tasks.iter().find(|t| t.id == a.target) {
        Some(t) => (t, None),
        None => match a.target.rsplit_once('.').and_then(|(t, o)| Some((h.tasks.iter().find(|x| x.id == t)?, o))) {
            Some((t, o)) => (t, Some(o)),
            None => {
                return fail(
                    format!("no task `{}` in the latest run ({}) of this pipeline", a.target, h.run_id),
                    EXIT_INVALID,
                );
            }
        },
    };
    if task.state != "succeeded" {
        return fail(
            format!("task `{}` {} in the latest run ({}): it has no outputs", task.id, task.state, h.run_id),
            EXIT_INVALID,
        );
    }
    let mut names: Vec<&str> = task.outputs.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    let chosen = match output {
        Some(o) => task.outputs.iter().find(|x| x.name == o),
        None => task
            .outputs
            .iter()
            .find(|x| x.name == crate::plan::DEFAULT_OUTPUT)
            .or_else(|| (task.outputs.len() == 1).then(|| &task.outputs[0])),
    };
    let Some(chosen) = chosen else {
        let what = match output {
            Some(o) => format!("task `{}` has no output `{o}`", task.id),
            None => format!("task `{}` has several outputs; name one as `{}.OUTPUT`", task.id, task.id),
        };
        let list = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        return fail(format!("{what} (its outputs: {list})"), EXIT_INVALID);
    };
    let spec = if a.store.is_some() { spec } else { StoreSpec::parse(&h.store).unwrap_or(spec) };
    print_blob(&spec, &chosen.blob.digest)
}

fn print_blob(spec: &StoreSpec, d: &Digest) -> i32 {
    let store = match spec.open() {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot open the store at {spec}: {e}"), EXIT_INTERNAL),
    };
    let mut r = match BlobReader::for_store(&*store, d) {
        Ok(r) => r,
        Err(e) => return fail(format!("{e} (store {spec})"), EXIT_INVALID),
    };
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut r, &mut out).and_then(|_| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => fail(format!("cannot print blob {d}: {e}"), EXIT_INTERNAL),
    }
}

pub fn logs(a: &LogsArgs) -> i32 {
    let (_, _, runs) = match locate_latest(&a.pipeline, &a.store) {
        Ok(x) => x,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    let run = match runs.latest("started") {
        Ok(r) => r,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    let path = runs.run_dir(&run).join("logs").join(format!("{}.log", a.task));
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(
                format!(
                    "no log for task `{}` in the latest run ({run}): it logged nothing, or there is no such task",
                    a.task
                ),
                EXIT_INVALID,
            );
        }
        Err(e) => return fail(format!("cannot read {}: {e}", path.display()), EXIT_INTERNAL),
    };
    let text = match a.attempt {
        None => text,
        Some(n) => match history::attempt_log(&text, n) {
            Some(t) => t,
            None => {
                return fail(
                    format!("task `{}` has no log of attempt {n} in the latest run ({run})", a.task),
                    EXIT_INVALID,
                );
            }
        },
    };
    // A log is plugin text: shown with its lines, every other control escaped.
    let text = super::escape::escape(&text, super::escape::Lines::Keep);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    EXIT_OK
}

/// The local store directory named by `--store` or next to the pipeline.
fn local_store(pipeline: &std::path::Path, store: &Option<String>) -> Result<PathBuf, String> {
    let spec = match store {
        Some(s) => StoreSpec::parse(s).map_err(|e| format!("--store: {e}"))?,
        None => locate(pipeline, &None)?.1,
    };
    let Some(dir) = spec.local_dir() else {
        return Err(format!("{spec} is not a local store directory"));
    };
    if !dir.join("packs").is_dir() {
        return Err(format!("{} is not a store (no packs/ directory)", dir.display()));
    }
    Ok(dir.to_path_buf())
}

pub fn gc(a: &GcArgs) -> i32 {
    let dir = match local_store(&a.pipeline, &a.store) {
        Ok(d) => d,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    match crate::upkeep::gc(&dir, a.keep as usize, a.dry_run) {
        Ok(r) => {
            println!(
                "{} {} blobs, {} action records and {} runs ({}); kept {} runs",
                if a.dry_run { "would remove" } else { "removed" },
                r.removed_blobs,
                r.removed_actions,
                r.removed_runs,
                crate::units::format_size(r.removed_bytes),
                r.kept_runs
            );
            EXIT_OK
        }
        Err(e) => fail(format!("gc of {}: {e}", dir.display()), EXIT_INTERNAL),
    }
}

pub fn verify(a: &VerifyArgs) -> i32 {
    let dir = match local_store(&a.pipeline, &a.store) {
        Ok(d) => d,
        Err(e) => return fail(e, EXIT_INVALID),
    };
    let r = match crate::upkeep::verify(&dir) {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot verify {}: {e}", dir.display()), EXIT_INTERNAL),
    };
    for n in &r.notes {
        println!("note: {n}");
    }
    for p in &r.problems {
        println!("corrupt: {p}");
    }
    println!(
        "{}: {} blobs, {} action records, {}: {}",
        dir.display(),
        r.blobs,
        r.actions,
        crate::units::format_size(r.bytes),
        if r.problems.is_empty() { "ok".to_string() } else { format!("{} problems", r.problems.len()) }
    );
    if r.problems.is_empty() { EXIT_OK } else { EXIT_TASKS_FAILED }
}
