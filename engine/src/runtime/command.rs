//! Command tasks: any WASI preview 1 program with `_start`.
//!
//! Each attempt gets a fresh temp dir holding `in/` (inputs copied from the
//! store as read-only regular files — never links — mounted read-only at
//! `/in`), `out/` (empty, mounted read-write at `/out`), `scratch/` when the
//! task asks for one (read-write at `/tmp`, with `TMPDIR=/tmp`) and a private
//! stdout capture file that the guest cannot see. The task's `mounts` are
//! preopened read-only at their guest paths (archives through
//! [`super::mounts`]). After an exit code the task counts as success (0, or
//! one of `success_exit_codes`) every regular file under `out/` is streamed
//! into the store as an output named by its relative path, plus the
//! `exit_code` output; after any other ending nothing is stored. The temp dir
//! is removed when the attempt ends, whatever the outcome.
//!
//! A task with a `workdir` also gets a private copy of its seed, preopened
//! read-write at its guest path ([`super::workdir`]); files matching its
//! `publish` globs become outputs after a successful exit.
//!
//! While the program runs, [`OutWatch`] holds `/out` to the output limits,
//! and scratch and the workdir to theirs (entries, bytes, depth), at epoch
//! ticks, so a program cannot fill the disk or the inode table before its
//! outputs are collected at exit.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime_wasi::FsPerms;
use wasmtime_wasi::cli::InputFile;

use super::failure::{Ended, classify};
use super::log::{Capture, SharedCapture, SharedLog, Sink};
use super::sdk::{SdkState, name_problem, show_name};
use super::watch::{Area, Excess, MAX_SCRATCH_ENTRIES, OutWatch, Watched, walk};
use super::{Plugin, Runtime, wasi_builder, workdir, write_backtrace};
use crate::exec::message::{OutputBlob, TaskFailure, TaskMessage, TaskMetrics};
use crate::store::{BlobReader, BlobStore};

/// The output every successful command task has: its exit code in decimal
/// and a newline.
pub const EXIT_CODE_OUTPUT: &str = "exit_code";

fn infra(what: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::Infra { message: what.to_string() }
}

/// Copy a blob into a new read-only file.
fn materialize(store: &dyn BlobStore, blob: &crate::store::BlobRef, path: &Path) -> Result<(), TaskFailure> {
    let mut reader = BlobReader::for_store(store, &blob.digest)
        .map_err(|e| infra(format!("cannot read input blob {}: {e}", blob.digest)))?;
    let mut file = File::create(path).map_err(|e| infra(format!("cannot create `{}`: {e}", path.display())))?;
    io::copy(&mut reader, &mut file).map_err(|e| infra(format!("cannot write `{}`: {e}", path.display())))?;
    drop(file);
    set_mode(path, 0o444)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TaskFailure> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| infra(format!("cannot set permissions of `{}`: {e}", path.display())))
}

/// Lay out `/in`: `/in/<name>` for a scalar input, `/in/<name>/<index>` for a list.
fn layout_inputs(msg: &TaskMessage, store: &dyn BlobStore, in_dir: &Path) -> Result<(), TaskFailure> {
    for input in &msg.inputs {
        if name_problem(input.name.as_bytes()).is_some() || input.name.contains('/') {
            return Err(infra(format!("input name `{}` cannot be used as a file name", input.name)));
        }
        let path = in_dir.join(&input.name);
        if input.list {
            fs::create_dir(&path).map_err(|e| infra(format!("cannot create `{}`: {e}", path.display())))?;
            for (i, blob) in input.items.iter().enumerate() {
                materialize(store, blob, &path.join(i.to_string()))?;
            }
        } else {
            match input.items.as_slice() {
                [blob] => materialize(store, blob, &path)?,
                items => {
                    return Err(infra(format!("scalar input `{}` has {} blobs, expected 1", input.name, items.len())));
                }
            }
        }
    }
    Ok(())
}

/// Every regular file under `out`, sorted by relative path.
fn collect_outputs(out: &Path) -> Result<Vec<(String, PathBuf, u64)>, TaskFailure> {
    let mut found = Vec::new();
    let mut stack = vec![(out.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| infra(format!("cannot list `{}`: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| infra(format!("cannot list `{}`: {e}", dir.display())))?;
            let fname = entry.file_name();
            let fname = fname.to_string_lossy();
            let rel = if prefix.is_empty() { fname.to_string() } else { format!("{prefix}/{fname}") };
            let meta =
                fs::symlink_metadata(entry.path()).map_err(|e| infra(format!("cannot inspect `/out/{rel}`: {e}")))?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(TaskFailure::Error {
                    message: format!("`/out/{rel}` is a symbolic link; only regular files can be outputs"),
                });
            } else if ft.is_dir() {
                stack.push((entry.path(), rel));
            } else if ft.is_file() {
                found.push((rel, entry.path(), meta.len()));
            } else {
                return Err(TaskFailure::Error {
                    message: format!("`/out/{rel}` is not a regular file; only regular files can be outputs"),
                });
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Preopen what the task asks for beyond `/in` and `/out`, in this order:
/// scratch `/tmp`, the mounts, the workdir (seeded here). Returns the
/// limits of scratch and of the workdir.
fn preopen_optional(
    rt: &Runtime,
    b: &mut wasmtime_wasi::WasiCtxBuilder,
    msg: &TaskMessage,
    fs_opts: &crate::plan::CommandFs,
    tmp: &Path,
) -> Result<(Option<Watched>, Option<Watched>), TaskFailure> {
    let scratch = match fs_opts.scratch {
        Some(cap) => {
            let dir = tmp.join("scratch");
            fs::create_dir(&dir).map_err(|e| infra(format!("cannot create `{}`: {e}", dir.display())))?;
            b.preopened_dir(&dir, "/tmp", FsPerms::ReadWrite).map_err(|e| infra(format!("cannot mount /tmp: {e}")))?;
            if !msg.command.env.iter().any(|(k, _)| k == "TMPDIR") {
                b.env("TMPDIR", "/tmp");
            }
            Some(Watched { dir, max_entries: MAX_SCRATCH_ENTRIES, max_bytes: cap, area: Area::Scratch })
        }
        None => None,
    };
    for m in &fs_opts.mounts {
        let dir = rt
            .inner
            .unpacked
            .dir_for(&rt.inner.cache_root, &m.host)
            .map_err(|e| infra(format!("mount `{}`: {e}", m.guest)))?;
        b.preopened_dir(&dir, &m.guest, FsPerms::ReadOnly)
            .map_err(|e| infra(format!("cannot mount `{}` at `{}`: {e}", dir.display(), m.guest)))?;
    }
    let work = match &fs_opts.workdir {
        Some(wd) => {
            let dir = tmp.join("work");
            workdir::seed(rt, wd, &dir)?;
            b.preopened_dir(&dir, &wd.at, FsPerms::ReadWrite)
                .map_err(|e| infra(format!("cannot mount the workdir at `{}`: {e}", wd.at)))?;
            Some(workdir::watched(wd, &dir))
        }
        None => None,
    };
    Ok((scratch, work))
}

pub(super) fn run(
    rt: &Runtime,
    plugin: &Plugin,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    log: &SharedLog,
    metrics: &mut TaskMetrics,
) -> Result<Vec<OutputBlob>, TaskFailure> {
    let tmp = tempfile::Builder::new()
        .prefix("engine-task-")
        .tempdir()
        .map_err(|e| infra(format!("cannot create the task's temp dir: {e}")))?;
    let in_dir = tmp.path().join("in");
    let out_dir = tmp.path().join("out");
    for d in [&in_dir, &out_dir] {
        fs::create_dir(d).map_err(|e| infra(format!("cannot create `{}`: {e}", d.display())))?;
    }
    layout_inputs(msg, store, &in_dir)?;

    let fs_opts = msg.command.fs.as_deref().cloned().unwrap_or_default();
    let mut b = wasi_builder(msg, log);
    let mut argv = vec![plugin.name.clone()];
    argv.extend(msg.command.args.iter().cloned());
    b.args(&argv).envs(&msg.command.env);
    b.preopened_dir(&in_dir, "/in", FsPerms::ReadOnly).map_err(|e| infra(format!("cannot mount /in: {e}")))?;
    b.preopened_dir(&out_dir, "/out", FsPerms::ReadWrite).map_err(|e| infra(format!("cannot mount /out: {e}")))?;
    let (scratch, work) = preopen_optional(rt, &mut b, msg, &fs_opts, tmp.path())?;
    if let Some(name) = &msg.command.stdin {
        let input = msg
            .inputs
            .iter()
            .find(|i| &i.name == name)
            .ok_or_else(|| infra(format!("stdin input `{name}` is not an input of this task")))?;
        if input.list || input.items.len() != 1 {
            return Err(infra(format!("stdin input `{name}` must be a single blob, not a list")));
        }
        let path = in_dir.join(name);
        let f = File::open(&path).map_err(|e| infra(format!("cannot open `{}`: {e}", path.display())))?;
        b.stdin(InputFile::new(f));
    }
    let capture = match &msg.command.stdout {
        Some(name) => {
            if let Some(p) = name_problem(name.as_bytes()) {
                return Err(infra(format!("invalid stdout output name `{}`: {p}", show_name(name.as_bytes()))));
            }
            let path = tmp.path().join("stdout");
            let file = File::create(&path).map_err(|e| infra(format!("cannot create `{}`: {e}", path.display())))?;
            let cap =
                SharedCapture(Arc::new(Mutex::new(Capture { file, written: 0, cap: msg.limits.max_output_bytes })));
            b.stdout(Sink(cap.clone()));
            Some((name.clone(), path, cap))
        }
        None => None,
    };
    let wasi = b.build_p1();
    let (mut st, seen) = rt.new_store(msg, wasi, log, SdkState::default());
    let out_limits = Watched {
        dir: out_dir.clone(),
        max_entries: u64::from(msg.limits.max_outputs),
        max_bytes: msg.limits.max_output_bytes,
        area: Area::Out,
    };
    let after_exit: Vec<Watched> = scratch.into_iter().chain(work.clone()).collect();
    st.data_mut().out_watch =
        Some(OutWatch::new(std::iter::once(out_limits.clone()).chain(after_exit.clone()).collect()));
    let result = (|| -> wasmtime::Result<()> {
        let instance = plugin.pre.instantiate(&mut st)?;
        let start = instance.get_typed_func::<(), ()>(&mut st, "_start")?;
        start.call(&mut st, ())
    })();
    Runtime::record_usage(&st, msg, metrics);
    drop(st);

    let code = match result {
        Ok(()) => 0,
        Err(e) => match classify(&e, &seen) {
            Ended::Exit(code) => code,
            Ended::Failed(f) => {
                if matches!(f, TaskFailure::Trap { .. }) {
                    write_backtrace(log, &e);
                }
                return Err(f);
            }
        },
    };
    metrics.exit_code = Some(code);
    // The watch runs at epoch ticks; a program can fill /tmp or its workdir
    // and exit in between.
    for w in &after_exit {
        w.check_failure()?;
    }
    // `/out` is counted and sized when it is collected; its depth is checked here.
    if walk(&out_dir, u64::MAX, u64::MAX) == Some(Excess::Depth) {
        let (limit, detail) = out_limits.describe(Excess::Depth);
        return Err(TaskFailure::Limit { limit, detail });
    }
    check_success(&fs_opts.success_exit_codes, code)?;
    let captured = capture.map(|(name, path, cap)| {
        let len = cap.0.lock().unwrap_or_else(|e| e.into_inner()).written;
        (name, path, len)
    });
    let workdir = fs_opts.workdir.as_ref().zip(work.as_ref().map(|w| w.dir.as_path()));
    let files = output_files(captured, &out_dir, workdir, &msg.limits)?;
    store_outputs(store, code, files)
}

/// Fail unless `code` counts as success (`codes` empty: only 0).
fn check_success(codes: &[i32], code: i32) -> Result<(), TaskFailure> {
    let success = if codes.is_empty() { code == 0 } else { codes.contains(&code) };
    if !success {
        let message = if codes.is_empty() {
            format!("exited with code {code}")
        } else {
            let codes: Vec<String> = codes.iter().map(i32::to_string).collect();
            format!("exited with code {code}, which is not one of success_exit_codes [{}]", codes.join(", "))
        };
        return Err(TaskFailure::Error { message });
    }
    Ok(())
}

/// What a successful attempt publishes: the captured stdout, every regular
/// file under `/out` and the workdir's published files, checked against the
/// output name rules and limits.
fn output_files(
    captured: Option<(String, PathBuf, u64)>,
    out_dir: &Path,
    workdir: Option<(&crate::plan::Workdir, &Path)>,
    limits: &crate::exec::message::Limits,
) -> Result<Vec<(String, PathBuf, u64)>, TaskFailure> {
    let mut files: Vec<(String, PathBuf, u64)> = captured.into_iter().collect();
    for (rel, path, len) in collect_outputs(out_dir)? {
        if let Some(p) = name_problem(rel.as_bytes()) {
            return Err(TaskFailure::Error {
                message: format!("`/out/{}` is not a valid output name: {p}", show_name(rel.as_bytes())),
            });
        }
        if files.iter().any(|(n, _, _)| *n == rel) {
            return Err(TaskFailure::Error {
                message: format!("output `{rel}` is both captured from stdout and written to /out"),
            });
        }
        files.push((rel, path, len));
    }
    if let Some((wd, dir)) = workdir {
        for (rel, path, len) in workdir::published(wd, dir)? {
            if let Some(p) = name_problem(rel.as_bytes()) {
                return Err(TaskFailure::Error {
                    message: format!("published file `{}` is not a valid output name: {p}", show_name(rel.as_bytes())),
                });
            }
            if files.iter().any(|(n, _, _)| *n == rel) {
                return Err(TaskFailure::Error {
                    message: format!(
                        "output `{rel}` is both published from the workdir and written to /out or captured from stdout"
                    ),
                });
            }
            files.push((rel, path, len));
        }
    }
    if files.len() > limits.max_outputs as usize {
        return Err(TaskFailure::Limit {
            limit: "output count".into(),
            detail: format!("the task produced {} outputs, more than {}", files.len(), limits.max_outputs),
        });
    }
    let total: u64 = files.iter().map(|(_, _, len)| *len).sum();
    if total > limits.max_output_bytes {
        return Err(TaskFailure::Limit {
            limit: "output size".into(),
            detail: format!(
                "the task's outputs total more than {}",
                crate::units::format_size(limits.max_output_bytes)
            ),
        });
    }
    if files.iter().any(|(n, _, _)| n == EXIT_CODE_OUTPUT) {
        return Err(TaskFailure::Error {
            message: format!("output `{EXIT_CODE_OUTPUT}` is reserved for the exit status of a command task"),
        });
    }
    Ok(files)
}

/// Stream `files` into the store, then the `exit_code` output.
fn store_outputs(
    store: &dyn BlobStore,
    code: i32,
    files: Vec<(String, PathBuf, u64)>,
) -> Result<Vec<OutputBlob>, TaskFailure> {
    let mut blobs = Vec::with_capacity(files.len() + 1);
    let mut w = store.put().map_err(|e| infra(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    io::Write::write_all(&mut w, format!("{code}\n").as_bytes())
        .map_err(|e| infra(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    let exit_blob = w.finish().map_err(|e| infra(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    for (name, path, _) in files {
        let mut f = File::open(&path).map_err(|e| infra(format!("cannot read output `{name}`: {e}")))?;
        let mut w = store.put().map_err(|e| infra(format!("cannot store output `{name}`: {e}")))?;
        io::copy(&mut f, &mut w).map_err(|e| infra(format!("cannot store output `{name}`: {e}")))?;
        let blob = w.finish().map_err(|e| infra(format!("cannot store output `{name}`: {e}")))?;
        blobs.push(OutputBlob { name, blob });
    }
    blobs.push(OutputBlob { name: EXIT_CODE_OUTPUT.to_string(), blob: exit_blob });
    Ok(blobs)
}
