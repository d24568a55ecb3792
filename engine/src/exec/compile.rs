//! Compilation a run can stop: a plugin the compiled-module cache does not
//! hold is compiled in a child process (`engine compile-plugin`, the engine
//! binary re-invoked, like `engine worker`), which writes the compiled module
//! to the cache and exits.
//!
//! wasmtime's compilation cannot be interrupted from inside its thread, and
//! some modules within the static limits of `engine check` still take
//! minutes to compile (docs/security.md, "Compilation"). In a child process
//! the parent can bound it: it waits in [`POLL`] slices, and kills the child
//! when the plugin's `max_compile_time` passes or the run is interrupted
//! (Ctrl-C). The child runs the same wasmtime configuration as the parent
//! (same cache dir, instance count and memory limit), so its cache entry has
//! the parent's fingerprint and the parent then loads it from the cache. The
//! child hardens itself like a worker (no core dumps, no new privileges,
//! bounded descriptors and file size) before it reads the module.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::runtime::{Runtime, RuntimeConfig};

/// How often the parent looks at the child and the interrupt flag.
const POLL: Duration = Duration::from_millis(10);
/// Most bytes of the child's stderr kept for the error message.
const MAX_MESSAGE: usize = 64 << 10;

/// The hidden subcommand that compiles one plugin into the cache.
pub const SUBCOMMAND: &str = "compile-plugin";

/// What the child is asked to do: compile `plugin` into `config`'s cache.
#[derive(Debug, Clone)]
pub struct CompileJob {
    /// The engine binary.
    pub exe: PathBuf,
    pub plugin: PathBuf,
    pub config: RuntimeConfig,
    /// The plugin's `max_compile_time`.
    pub limit: Duration,
}

/// Why a compilation in a child process did not produce a cache entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Still compiling when the limit passed; the child was killed.
    #[error("did not compile within its max_compile_time of {}", crate::units::format_duration(*.0))]
    TimedOut(Duration),
    /// The run was interrupted (Ctrl-C); the child was killed.
    #[error("compilation was interrupted")]
    Interrupted,
    /// The child reported an error (invalid module, compiler error, cache).
    #[error("{0}")]
    Failed(String),
    /// The child could not be started or waited for.
    #[error("cannot run the compiler process: {0}")]
    Spawn(String),
}

/// Compile `job.plugin` in a child process, within `job.limit`, stopping at
/// once when `interrupt` is set.
pub fn compile_in_child(job: &CompileJob, interrupt: &Arc<AtomicBool>) -> Result<(), CompileError> {
    let mut child = Command::new(&job.exe)
        .arg(SUBCOMMAND)
        .arg("--cache-dir")
        .arg(&job.config.cache_dir)
        .arg("--max-instances")
        .arg(job.config.max_instances.to_string())
        .arg("--max-task-memory")
        .arg(job.config.max_task_memory.to_string())
        .arg(&job.plugin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CompileError::Spawn(format!("`{}`: {e}", job.exe.display())))?;
    // Read stderr on the side so a chatty child can never block on a full pipe.
    let reader = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut err).take(MAX_MESSAGE as u64).read_to_end(&mut buf);
            let _ = std::io::copy(&mut err, &mut std::io::sink());
            buf
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(CompileError::Spawn(e.to_string())),
        }
        let stop = if interrupt.load(Ordering::SeqCst) {
            Some(CompileError::Interrupted)
        } else if started.elapsed() >= job.limit {
            Some(CompileError::TimedOut(job.limit))
        } else {
            None
        };
        if let Some(why) = stop {
            let _ = child.kill();
            let _ = child.wait();
            return Err(why);
        }
        std::thread::sleep(POLL);
    };
    let stderr = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    // A Ctrl-C on the terminal reaches the child too, which may die of it first.
    if interrupt.load(Ordering::SeqCst) {
        return Err(CompileError::Interrupted);
    }
    let text = String::from_utf8_lossy(&stderr);
    let message = text.trim().strip_prefix("error: ").unwrap_or(text.trim()).to_string();
    Err(CompileError::Failed(if message.is_empty() {
        format!("the compiler process ended with {status}")
    } else {
        message
    }))
}

/// The child's side: harden, compile `plugin` into the cache, exit 0; or
/// print `error: <message>` on stderr and exit 2.
pub fn serve(plugin: &Path, config: RuntimeConfig) -> i32 {
    super::worker::harden();
    let result = Runtime::new(config).and_then(|rt| rt.load(plugin));
    match result {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
