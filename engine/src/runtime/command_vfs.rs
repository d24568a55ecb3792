//! Command tasks on the virtual filesystem ([`super::vfs`]): the path of
//! every command task without `mounts` or a `workdir` (those still run on
//! host directories, [`super::command`]).
//!
//! Set-up lays `/in` out as references to store blobs (`/in/<name>`, or
//! `/in/<name>/<index>` for a list), creates empty `/out` and, when asked,
//! `/tmp` (with `TMPDIR=/tmp`), and points stdin at its input blob and stdout
//! at the log or at an in-memory capture. No file is created on disk. After
//! an exit code that counts as success, every regular file under `/out` is
//! streamed into the store as an output named by its relative path, plus
//! `exit_code`; after any other ending the tree is dropped and nothing is
//! stored.

use std::io::Write;
use std::time::Instant;

use super::failure::{Ended, classify};
use super::log::SharedLog;
use super::sdk::{SdkState, name_problem, show_name};
use super::vfs::{Content, Stdin, Vfs};
use super::watch::{Area, MAX_SCRATCH_ENTRIES, Watched};
use super::{Plugin, Runtime, explain_trap, wasi_builder};
use crate::store::BlobStore;
use crate::task::abi::EXIT_CODE_OUTPUT;
use crate::task::message::{InfraKind, LimitKind, OutputBlob, TaskFailure, TaskMessage, TaskMetrics};

fn storage_failure(what: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::infra(InfraKind::Storage, what.to_string())
}

/// The attempt's tree, descriptors and stdio, before the program starts.
fn prepare(msg: &TaskMessage) -> Result<Vfs, TaskFailure> {
    let fs_opts = msg.command.fs.as_deref().cloned().unwrap_or_default();
    let out = Watched {
        dir: "/out".into(),
        max_entries: u64::from(msg.limits.max_outputs),
        max_bytes: msg.limits.max_output_bytes,
        area: Area::Out,
    };
    let scratch = fs_opts.scratch.map(|cap| Watched {
        dir: "/tmp".into(),
        max_entries: MAX_SCRATCH_ENTRIES,
        max_bytes: cap,
        area: Area::Scratch,
    });
    let mut v = Vfs::new(out, scratch, !fs_opts.no_io_dirs, msg.limits.max_open_files, msg.deterministic);
    for input in &msg.inputs {
        if name_problem(input.name.as_bytes()).is_some() || input.name.contains('/') {
            return Err(storage_failure(format!("input name `{}` cannot be used as a file name", input.name)));
        }
        if input.list {
            v.add_dir_input(&input.name);
            for (i, blob) in input.items.iter().enumerate() {
                v.add_input(&[&input.name, &i.to_string()], blob.digest, blob.len);
            }
        } else {
            match input.items.as_slice() {
                [blob] => v.add_input(&[&input.name], blob.digest, blob.len),
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
    if let Some(name) = &msg.command.stdin {
        let input = msg
            .inputs
            .iter()
            .find(|i| i.name == *name)
            .ok_or_else(|| storage_failure(format!("stdin input `{name}` is not an input of this task")))?;
        match input.items.as_slice() {
            [blob] if !input.list => v.stdin = Stdin::Blob { digest: blob.digest, len: blob.len, pos: 0 },
            _ => return Err(storage_failure(format!("stdin input `{name}` must be a single blob, not a list"))),
        }
    }
    if let Some(name) = &msg.command.stdout {
        if let Some(p) = name_problem(name.as_bytes()) {
            return Err(storage_failure(format!("invalid stdout output name `{}`: {p}", show_name(name.as_bytes()))));
        }
        v.stdout_capture = Some(Vec::new());
        v.stdout_cap = msg.limits.max_output_bytes;
    }
    Ok(v)
}

pub(super) fn run(
    rt: &Runtime,
    plugin: &Plugin,
    msg: &TaskMessage,
    store: &dyn BlobStore,
    log: &SharedLog,
    metrics: &mut TaskMetrics,
) -> Result<Vec<OutputBlob>, TaskFailure> {
    let t0 = Instant::now();
    let fs_opts = msg.command.fs.as_deref().cloned().unwrap_or_default();
    let vfs = prepare(msg)?;
    let mut b = wasi_builder(msg, log);
    let mut argv = vec![plugin.name.clone()];
    argv.extend(msg.command.args.iter().cloned());
    b.args(&argv).envs(&msg.command.env);
    if fs_opts.scratch.is_some() && !msg.command.env.iter().any(|(k, _)| k == "TMPDIR") {
        b.env("TMPDIR", "/tmp");
    }
    // SAFETY: as in `Runtime::run_sdk`: the erased reference lives in `st`
    // and in the tree (`vfs`, taken back out of `st` below), both dropped
    // before this function returns.
    let store_static: &'static dyn BlobStore =
        unsafe { std::mem::transmute::<&dyn BlobStore, &'static dyn BlobStore>(store) };
    let mut vfs = vfs;
    vfs.spill_store = Some(store_static);
    let (mut st, seen) = rt.new_store(msg, b.build_p1(), log, SdkState::default());
    st.data_mut().vfs = Some(vfs);
    st.data_mut().vfs_store = Some(store_static);
    let t1 = Instant::now();
    let result = (|| -> wasmtime::Result<()> {
        let instance = plugin.core_pre()?.instantiate(&mut st)?;
        let memory = instance.get_memory(&mut st, "memory");
        if let Some(v) = st.data_mut().vfs.as_mut() {
            v.memory = memory;
        }
        let start = instance.get_typed_func::<(), ()>(&mut st, "_start")?;
        start.call(&mut st, ())
    })();
    Runtime::record_usage(&st, msg, metrics, result.as_ref().err());
    let vfs = st.data_mut().vfs.take();
    drop(st);
    let t2 = Instant::now();
    metrics.setup_us = Some((t1 - t0).as_micros() as u64);
    metrics.run_us = Some((t2 - t1).as_micros() as u64);

    let code = match result {
        Ok(()) => 0,
        Err(e) => match classify(&e, &seen) {
            Ended::Exit(code) => code,
            Ended::Failed(f) => return Err(explain_trap(log, &e, f)),
        },
    };
    metrics.exit_code = Some(code);
    super::command::check_success(code, &fs_opts.success_exit_codes)?;
    let mut vfs = vfs.ok_or_else(|| storage_failure("the task's filesystem is gone (this is a bug)"))?;
    let blobs = publish(msg, store, code, &mut vfs);
    metrics.publish_us = Some(t2.elapsed().as_micros() as u64);
    blobs
}

/// The outputs of a successful attempt, checked, then stored with `exit_code`.
fn publish(msg: &TaskMessage, store: &dyn BlobStore, code: i32, vfs: &mut Vfs) -> Result<Vec<OutputBlob>, TaskFailure> {
    let mut names: Vec<(String, Option<usize>)> = Vec::new();
    if let Some(name) = &msg.command.stdout {
        names.push((name.clone(), None));
    }
    let mut total = vfs.stdout_capture.as_ref().map_or(0, |b| b.len() as u64);
    for (rel, node) in vfs.out_files() {
        if vfs.node(node).is_ok_and(|n| matches!(n.kind, super::vfs::Kind::Symlink(_))) {
            return Err(TaskFailure::Error {
                message: format!("`/out/{rel}` is a symbolic link; only regular files can be outputs"),
            });
        }
        if let Some(p) = name_problem(rel.as_bytes()) {
            return Err(TaskFailure::Error {
                message: format!("`/out/{}` is not a valid output name: {p}", show_name(rel.as_bytes())),
            });
        }
        if names.iter().any(|(n, _)| *n == rel) {
            return Err(TaskFailure::Error {
                message: format!("output `{rel}` is both captured from stdout and written to /out"),
            });
        }
        total += vfs.content(node).map(Content::len).unwrap_or(0);
        names.push((rel, Some(node)));
    }
    if names.len() > msg.limits.max_outputs as usize {
        return Err(TaskFailure::Limit {
            limit: LimitKind::OutputCount,
            detail: format!("the task produced {} outputs, more than {}", names.len(), msg.limits.max_outputs),
        });
    }
    if total > msg.limits.max_output_bytes {
        return Err(TaskFailure::Limit {
            limit: LimitKind::OutputBytes,
            detail: format!(
                "the task's outputs total more than {}",
                crate::units::format_size(msg.limits.max_output_bytes)
            ),
        });
    }
    if names.iter().any(|(n, _)| n == EXIT_CODE_OUTPUT) {
        return Err(TaskFailure::Error {
            message: format!("output `{EXIT_CODE_OUTPUT}` is reserved for the exit status of a command task"),
        });
    }
    let mut blobs = Vec::with_capacity(names.len() + 1);
    let exit_blob = store_bytes(store, EXIT_CODE_OUTPUT, format!("{code}\n").as_bytes())?;
    for (name, node) in names {
        let blob = match node {
            None => store_bytes(store, &name, vfs.stdout_capture.as_deref().unwrap_or_default())?,
            Some(n) => store_content(store, &name, vfs, n)?,
        };
        blobs.push(OutputBlob { name, blob });
    }
    blobs.push(OutputBlob { name: EXIT_CODE_OUTPUT.to_string(), blob: exit_blob });
    Ok(blobs)
}

fn store_bytes(store: &dyn BlobStore, name: &str, bytes: &[u8]) -> Result<crate::store::BlobRef, TaskFailure> {
    let fail = |e: &dyn std::fmt::Display| storage_failure(format!("cannot store output `{name}`: {e}"));
    let mut w = store.put().map_err(|e| fail(&e))?;
    w.write_all(bytes).map_err(|e| fail(&e))?;
    w.finish().map_err(|e| fail(&e))
}

/// Stream file `n` into the store.
fn store_content(
    store: &dyn BlobStore,
    name: &str,
    vfs: &mut Vfs,
    n: usize,
) -> Result<crate::store::BlobRef, TaskFailure> {
    let fail = |e: &dyn std::fmt::Display| storage_failure(format!("cannot store output `{name}`: {e}"));
    match vfs.content_mut(n) {
        Ok(Content::Mem(v)) => store_bytes(store, name, v),
        // A spill file from the store's `scratch_file` is taken over as it
        // is, under the digest hashed while it was written when it was
        // written in order (`spill`), else hashed now.
        Ok(Content::Disk(s)) => {
            let len = s.len();
            match s.finish().map_err(|e| fail(&e))? {
                (f, Some(r)) => store.put_file_hashed(f, r),
                (f, None) => store.put_file(f, len),
            }
            .map_err(|e| fail(&e))
        }
        Ok(Content::Blob { digest, len, .. }) => Ok(crate::store::BlobRef { digest: *digest, len: *len }),
        Err(_) => Err(fail(&"not a regular file")),
    }
}
