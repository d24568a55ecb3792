//! Command tasks: any WASI preview 1 program with `_start`, and every
//! `wasi:cli/command` component (WASI 0.2 over the same directories).
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
use wasmtime_wasi::p1::WasiP1Ctx;

use super::failure::{Ended, classify};
use super::log::{Capture, SharedCapture, SharedLog, Sink};
use super::sdk::{SdkState, name_problem, show_name};
use super::watch::{Area, Excess, MAX_SCRATCH_ENTRIES, OutWatch, Watched, walk};
use super::{Code, Plugin, Runtime, explain_trap, wasi_builder, workdir};
use crate::plan::{CommandFs, Workdir};
use crate::store::{BlobReader, BlobStore};
use crate::task::abi::EXIT_CODE_OUTPUT;
use crate::task::message::{InfraKind, LimitKind, Limits, OutputBlob, TaskFailure, TaskMessage, TaskMetrics};

fn storage_failure(what: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::infra(InfraKind::Storage, what.to_string())
}

/// Copy a blob into a new read-only file.
fn materialize(store: &dyn BlobStore, blob: &crate::store::BlobRef, path: &Path) -> Result<(), TaskFailure> {
    let mut reader = BlobReader::for_store(store, &blob.digest)
        .map_err(|e| storage_failure(format!("cannot read input blob {}: {e}", blob.digest)))?;
    let mut file =
        File::create(path).map_err(|e| storage_failure(format!("cannot create `{}`: {e}", path.display())))?;
    io::copy(&mut reader, &mut file).map_err(|e| storage_failure(format!("cannot write `{}`: {e}", path.display())))?;
    drop(file);
    set_mode(path, 0o444)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TaskFailure> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| storage_failure(format!("cannot set permissions of `{}`: {e}", path.display())))
}

/// Lay out `/in`: `/in/<name>` for a scalar input, `/in/<name>/<index>` for a list.
fn layout_inputs(msg: &TaskMessage, store: &dyn BlobStore, in_dir: &Path) -> Result<(), TaskFailure> {
    for input in &msg.inputs {
        if name_problem(input.name.as_bytes()).is_some() || input.name.contains('/') {
            return Err(storage_failure(format!("input name `{}` cannot be used as a file name", input.name)));
        }
        let path = in_dir.join(&input.name);
        if input.list {
            fs::create_dir(&path).map_err(|e| storage_failure(format!("cannot create `{}`: {e}", path.display())))?;
            for (i, blob) in input.items.iter().enumerate() {
                materialize(store, blob, &path.join(i.to_string()))?;
            }
        } else {
            match input.items.as_slice() {
                [blob] => materialize(store, blob, &path)?,
                items => {
                    return Err(storage_failure(format!(
                        "scalar input `{}` has {} blobs, expected 1",
                        input.name,
                        items.len()
                    )));
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
        let entries =
            fs::read_dir(&dir).map_err(|e| storage_failure(format!("cannot list `{}`: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| storage_failure(format!("cannot list `{}`: {e}", dir.display())))?;
            let fname = entry.file_name();
            let fname = fname.to_string_lossy();
            let rel = if prefix.is_empty() { fname.to_string() } else { format!("{prefix}/{fname}") };
            let meta = fs::symlink_metadata(entry.path())
                .map_err(|e| storage_failure(format!("cannot inspect `/out/{rel}`: {e}")))?;
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

/// A command attempt set up and ready to start: its temp dir (holding `/in`,
/// `/out`, scratch, the workdir and captured stdout, deleted on drop) and
/// WASI context.
struct Prepared {
    tmp: tempfile::TempDir,
    out_dir: PathBuf,
    /// Scratch `/tmp` and the workdir, with their limits.
    scratch: Option<Watched>,
    work: Option<Watched>,
    capture: Option<(String, PathBuf, SharedCapture)>,
    wasi: WasiP1Ctx,
    /// Descriptors open when the program starts: stdio and the preopens.
    open_fds: u32,
}

pub(super) fn run(
    rt: &Runtime,
    plugin: &Plugin,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    log: &SharedLog,
    metrics: &mut TaskMetrics,
) -> Result<Vec<OutputBlob>, TaskFailure> {
    let p = prepare(rt, plugin, msg, store, log)?;
    let fs_opts = msg.command.fs.as_deref().cloned().unwrap_or_default();
    let (mut st, seen) = rt.new_store(msg, p.wasi, log, SdkState::default());
    st.data_mut().host_fds = Some(super::fd_limit::HostFds::new(p.open_fds, msg.limits.max_open_files));
    let out_limits = out_watched(&p.out_dir, &msg.limits);
    let after_exit: Vec<Watched> = p.scratch.iter().chain(&p.work).cloned().collect();
    st.data_mut().out_watch =
        Some(OutWatch::new(std::iter::once(out_limits.clone()).chain(after_exit.clone()).collect()));
    let result = match &plugin.code {
        Code::Core { pre, pre_host, .. } => (|| -> wasmtime::Result<()> {
            let instance = pre_host.as_ref().unwrap_or(pre).instantiate(&mut st)?;
            let start = instance.get_typed_func::<(), ()>(&mut st, "_start")?;
            start.call(&mut st, ())
        })(),
        Code::Component(pre) => super::component::run_command(&mut st, pre),
    };
    Runtime::record_usage(&st, msg, metrics, result.as_ref().err());
    drop(st);

    let code = match result {
        Ok(()) => 0,
        Err(e) => match classify(&e, &seen) {
            Ended::Exit(code) => code,
            Ended::Failed(f) => return Err(explain_trap(log, &e, f)),
        },
    };
    metrics.exit_code = Some(code);
    // The watch runs at epoch ticks; a program can fill /tmp or its workdir
    // and exit in between.
    for w in &after_exit {
        w.check_failure()?;
    }
    // `/out` is counted and sized when it is collected; its depth is checked here.
    if walk(&p.out_dir, u64::MAX, u64::MAX) == Some(Excess::Depth) {
        let (limit, detail) = out_limits.describe(Excess::Depth);
        return Err(TaskFailure::Limit { limit, detail });
    }
    check_success(code, &fs_opts.success_exit_codes)?;
    let workdir = fs_opts.workdir.as_ref().zip(p.work.as_ref().map(|w| w.dir.as_path()));
    let files = collect_files(msg, &p.out_dir, p.capture, workdir)?;
    let blobs = publish(store, code, files);
    drop(p.tmp);
    blobs
}

/// The limits of `/out`, for the live watch and the depth check at exit.
fn out_watched(out_dir: &Path, limits: &Limits) -> Watched {
    Watched {
        dir: out_dir.to_path_buf(),
        max_entries: u64::from(limits.max_outputs),
        max_bytes: limits.max_output_bytes,
        area: Area::Out,
    }
}

/// Create the attempt's temp dir, lay out `/in`, and build the WASI context:
/// args, env, preopens (`/in`, `/out`, scratch `/tmp`, mounts, workdir),
/// stdin and stdout capture.
fn prepare(
    rt: &Runtime,
    plugin: &Plugin,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    log: &SharedLog,
) -> Result<Prepared, TaskFailure> {
    let tmp = tempfile::Builder::new()
        .prefix("engine-task-")
        .tempdir()
        .map_err(|e| storage_failure(format!("cannot create the task's temp dir: {e}")))?;
    let in_dir = tmp.path().join("in");
    let out_dir = tmp.path().join("out");
    for d in [&in_dir, &out_dir] {
        fs::create_dir(d).map_err(|e| storage_failure(format!("cannot create `{}`: {e}", d.display())))?;
    }
    layout_inputs(msg, store, &in_dir)?;

    let fs_opts = msg.command.fs.as_deref().cloned().unwrap_or_default();
    let mut b = wasi_builder(msg, log);
    let mut argv = vec![plugin.name.clone()];
    argv.extend(msg.command.args.iter().cloned());
    b.args(&argv).envs(&msg.command.env);
    if !fs_opts.no_io_dirs {
        b.preopened_dir(&in_dir, "/in", FsPerms::ReadOnly)
            .map_err(|e| storage_failure(format!("cannot mount /in: {e}")))?;
        b.preopened_dir(&out_dir, "/out", FsPerms::ReadWrite)
            .map_err(|e| storage_failure(format!("cannot mount /out: {e}")))?;
    }
    let (scratch, work) = preopen_optional(rt, &mut b, msg, &fs_opts, tmp.path())?;
    if let Some(name) = &msg.command.stdin {
        b.stdin(stdin_file(msg, &in_dir, name)?);
    }
    let capture = match &msg.command.stdout {
        Some(name) => {
            let c = stdout_capture(msg, tmp.path(), name)?;
            b.stdout(Sink(c.2.clone()));
            Some(c)
        }
        None => None,
    };
    let preopens = if fs_opts.no_io_dirs { 0 } else { 2 }
        + u32::from(scratch.is_some())
        + fs_opts.mounts.len() as u32
        + u32::from(work.is_some());
    Ok(Prepared { wasi: b.build_p1(), tmp, out_dir, scratch, work, capture, open_fds: 3 + preopens })
}

/// Preopen what the task asks for beyond `/in` and `/out`, in this order:
/// scratch `/tmp`, the mounts, the workdir (seeded here, preopened last so
/// that it may sit at `/` or `.` without hiding the others). Returns the
/// limits of scratch and of the workdir.
fn preopen_optional(
    rt: &Runtime,
    b: &mut wasmtime_wasi::WasiCtxBuilder,
    msg: &TaskMessage,
    fs_opts: &CommandFs,
    tmp: &Path,
) -> Result<(Option<Watched>, Option<Watched>), TaskFailure> {
    let scratch = match fs_opts.scratch {
        Some(cap) => {
            let dir = tmp.join("scratch");
            fs::create_dir(&dir).map_err(|e| storage_failure(format!("cannot create `{}`: {e}", dir.display())))?;
            b.preopened_dir(&dir, "/tmp", FsPerms::ReadWrite)
                .map_err(|e| storage_failure(format!("cannot mount /tmp: {e}")))?;
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
            .map_err(|e| storage_failure(format!("mount `{}`: {e}", m.guest)))?;
        b.preopened_dir(&dir, &m.guest, FsPerms::ReadOnly)
            .map_err(|e| storage_failure(format!("cannot mount `{}` at `{}`: {e}", dir.display(), m.guest)))?;
    }
    let work = match &fs_opts.workdir {
        Some(wd) => {
            let dir = tmp.join("work");
            workdir::seed(rt, wd, &dir)?;
            b.preopened_dir(&dir, &wd.at, FsPerms::ReadWrite)
                .map_err(|e| storage_failure(format!("cannot mount the workdir at `{}`: {e}", wd.at)))?;
            Some(workdir::watched(wd, &dir))
        }
        None => None,
    };
    Ok((scratch, work))
}

/// The file under `/in` that feeds stdin.
fn stdin_file(msg: &TaskMessage, in_dir: &Path, name: &str) -> Result<InputFile, TaskFailure> {
    let input = msg
        .inputs
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| storage_failure(format!("stdin input `{name}` is not an input of this task")))?;
    if input.list || input.items.len() != 1 {
        return Err(storage_failure(format!("stdin input `{name}` must be a single blob, not a list")));
    }
    let path = in_dir.join(name);
    let f = File::open(&path).map_err(|e| storage_failure(format!("cannot open `{}`: {e}", path.display())))?;
    Ok(InputFile::new(f))
}

/// A file in the temp dir that captures stdout as output `name`, held to the
/// output size limit.
fn stdout_capture(msg: &TaskMessage, tmp: &Path, name: &str) -> Result<(String, PathBuf, SharedCapture), TaskFailure> {
    if let Some(p) = name_problem(name.as_bytes()) {
        return Err(storage_failure(format!("invalid stdout output name `{}`: {p}", show_name(name.as_bytes()))));
    }
    let path = tmp.join("stdout");
    let file = File::create(&path).map_err(|e| storage_failure(format!("cannot create `{}`: {e}", path.display())))?;
    let cap = SharedCapture(Arc::new(Mutex::new(Capture { file, written: 0, cap: msg.limits.max_output_bytes })));
    Ok((name.to_string(), path, cap))
}

/// Whether exit code `code` is a success (`success_exit_codes`, default `[0]`).
pub(super) fn check_success(code: i32, success_exit_codes: &[i32]) -> Result<(), TaskFailure> {
    let success = if success_exit_codes.is_empty() { code == 0 } else { success_exit_codes.contains(&code) };
    if success {
        return Ok(());
    }
    let message = if success_exit_codes.is_empty() {
        format!("exited with code {code}")
    } else {
        let codes: Vec<String> = success_exit_codes.iter().map(i32::to_string).collect();
        format!("exited with code {code}, which is not one of success_exit_codes [{}]", codes.join(", "))
    };
    Err(TaskFailure::Error { message })
}

/// The outputs of a successful attempt, `(name, file, length)`: captured
/// stdout, every file under `/out` and the workdir's published files, checked
/// against the name rule and the output limits.
fn collect_files(
    msg: &TaskMessage,
    out_dir: &Path,
    capture: Option<(String, PathBuf, SharedCapture)>,
    workdir: Option<(&Workdir, &Path)>,
) -> Result<Vec<(String, PathBuf, u64)>, TaskFailure> {
    let mut files = Vec::new();
    if let Some((name, path, cap)) = capture {
        let len = cap.0.lock().unwrap_or_else(|e| e.into_inner()).written;
        files.push((name, path, len));
    }
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
    if files.len() > msg.limits.max_outputs as usize {
        return Err(TaskFailure::Limit {
            limit: LimitKind::OutputCount,
            detail: format!("the task produced {} outputs, more than {}", files.len(), msg.limits.max_outputs),
        });
    }
    let total: u64 = files.iter().map(|(_, _, len)| *len).sum();
    if total > msg.limits.max_output_bytes {
        return Err(TaskFailure::Limit {
            limit: LimitKind::OutputBytes,
            detail: format!(
                "the task's outputs total more than {}",
                crate::units::format_size(msg.limits.max_output_bytes)
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

/// Store every output file and the `exit_code` output.
fn publish(
    store: &dyn BlobStore,
    code: i32,
    files: Vec<(String, PathBuf, u64)>,
) -> Result<Vec<OutputBlob>, TaskFailure> {
    let mut blobs = Vec::with_capacity(files.len() + 1);
    let mut w = store.put().map_err(|e| storage_failure(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    io::Write::write_all(&mut w, format!("{code}\n").as_bytes())
        .map_err(|e| storage_failure(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    let exit_blob =
        w.finish().map_err(|e| storage_failure(format!("cannot store output `{EXIT_CODE_OUTPUT}`: {e}")))?;
    for (name, path, _) in files {
        let mut f = File::open(&path).map_err(|e| storage_failure(format!("cannot read output `{name}`: {e}")))?;
        let mut w = store.put().map_err(|e| storage_failure(format!("cannot store output `{name}`: {e}")))?;
        io::copy(&mut f, &mut w).map_err(|e| storage_failure(format!("cannot store output `{name}`: {e}")))?;
        let blob = w.finish().map_err(|e| storage_failure(format!("cannot store output `{name}`: {e}")))?;
        blobs.push(OutputBlob { name, blob });
    }
    blobs.push(OutputBlob { name: EXIT_CODE_OUTPUT.to_string(), blob: exit_blob });
    Ok(blobs)
}
