//! `engine call`: run one task without a pipeline file. The plugin, inputs and
//! params become a one-task plan ([`crate::pipeline::call`], checked as
//! `engine check` checks a pipeline), which a [`Session`] runs in a temporary
//! store; the task's log goes to stderr and its outputs are copied into the
//! output directory, one file per output.

use std::io::Write;
use std::path::Path;

use super::escape::{self, Lines};
use super::{CallArgs, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_TASKS_FAILED, run};
use crate::pipeline::call::{self, CallSpec};
use crate::session::{RunStatus, Session, write_atomic_with};
use crate::store::{BlobReader, StoreSpec};

/// Parse one `--input NAME=FILE`.
pub fn parse_input(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => Ok((name.to_string(), file.to_string())),
        _ => Err(format!("`{s}` is not NAME=FILE")),
    }
}

/// Parse one `--param KEY=VALUE` (the value is read by [`call::param_value`]).
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub fn call(a: &CallArgs) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return EXIT_INTERNAL;
        }
    };
    let spec = CallSpec {
        plugin: a.plugin.clone(),
        inputs: a.inputs.clone(),
        params: a.params.iter().map(|(k, v)| (k.clone(), call::param_value(v))).collect(),
    };
    let plan = match call::plan(&spec, &cwd) {
        Ok(p) => p,
        Err(d) => {
            // The diagnostics point into generated text: their messages say it all.
            for item in &d.items {
                eprintln!("error: {}", escape::one(&item.message));
            }
            return EXIT_INVALID;
        }
    };
    let id = plan.tasks.first().map(|t| t.id.clone()).unwrap_or_default();
    let tmp = match tempfile::Builder::new().prefix("engine-call-").tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot create a temporary store: {e}");
            return EXIT_INTERNAL;
        }
    };
    let store = StoreSpec::Local(tmp.path().join("store"));
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut session = Session::new(plan)
        .store(store.clone())
        .log_dir(tmp.path().join("runs"))
        .use_cache(false)
        .backoff_base(run::backoff_base())
        .interrupt(run::interrupt_flag())
        .on_plugin(run::plugin_progress(tty, false));
    if let Ok(exe) = std::env::current_exe() {
        session = session.compile_in_child(exe);
    }
    let out = match session.run() {
        Ok(out) => out,
        Err(e) => {
            super::print_error(&e);
            return run::exit_code(&e);
        }
    };
    let Some(rec) = out.records.records.first() else {
        return EXIT_INTERNAL;
    };
    if let Some(log) = rec.log_path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        let text = String::from_utf8_lossy(&log);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(escape::escape(&text, Lines::Keep).as_bytes());
        if !text.is_empty() && !text.ends_with('\n') {
            let _ = err.write_all(b"\n");
        }
    }
    match out.status {
        RunStatus::Succeeded => {}
        RunStatus::Interrupted => return EXIT_INTERRUPTED,
        RunStatus::Failed => {
            let why = rec.failure.as_ref().map(|f| f.to_string()).unwrap_or_else(|| "it did not run".to_string());
            eprintln!("error: task `{}` failed: {}", escape::one(&id), escape::one(&why));
            return EXIT_TASKS_FAILED;
        }
    }
    let blobs = match store.open() {
        Ok(s) => s,
        Err(e) => {
            super::print_error(&e);
            return EXIT_INTERNAL;
        }
    };
    let dir = a.out.clone().unwrap_or_default();
    // `--out DIR` is created if missing, even for a task with no outputs.
    if let Some(out) = &a.out
        && let Err(e) = std::fs::create_dir_all(out)
    {
        eprintln!("error: cannot create {}: {e}", shown(out));
        return EXIT_INTERNAL;
    }
    let mut stdout = std::io::stdout().lock();
    for o in &rec.outputs {
        // A command's exit code is its success, not a file to keep.
        if rec.exit_code.is_some() && o.name == "exit_code" {
            continue;
        }
        let dest = dir.join(&o.name);
        let written = BlobReader::for_store(&*blobs, &o.blob.digest)
            .map_err(std::io::Error::other)
            .and_then(|mut r| write_atomic_with(&dest, |w| std::io::copy(&mut r, w).map(|_| ())));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", shown(&dest));
            return EXIT_INTERNAL;
        }
        let _ = writeln!(stdout, "wrote {}", shown(&dest));
    }
    EXIT_OK
}

fn shown(p: &Path) -> String {
    escape::one(&p.display().to_string()).into_owned()
}
