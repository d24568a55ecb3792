//! `engine run`: load and validate the pipeline, prepare the plugins, run the
//! plan on the chosen executor with a progress display, then write outputs,
//! the summary, the report and the trace. Also `engine worker`.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{
    EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_TASKS_FAILED, ExecutorKind, RunArgs, WorkerArgs,
};
use crate::exec::Executor;
use crate::exec::dask::DaskExecutor;
use crate::exec::driver::{self, Event, Observer, RunOptions, RunOutcome};
use crate::exec::message::{DEFAULT_TASK_MEMORY, Limits};
use crate::exec::processes::{ProcessesConfig, ProcessesExecutor};
use crate::exec::proto::{PROTOCOL_VERSION, WorkerInit};
use crate::exec::sync::SyncExecutor;
use crate::plan::{Plan, TaskId};
use crate::report;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::sched::{Counts, FailureDecision};
use crate::store::local::{self, LocalStore};
use crate::store::{BlobStore, Digest};
use crate::units::{format_duration, format_size};

/// The interrupt flag set by the Ctrl-C handler (installed once per process).
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // If a handler cannot be installed, Ctrl-C simply kills the process.
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: give up immediately.
                std::process::exit(EXIT_INTERRUPTED);
            }
        });
        flag
    })
    .clone()
}

/// The engine's own compiled-module cache directory: `$ENGINE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/engine`, else `~/.cache/engine`, else a temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENGINE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("engine");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("engine");
    }
    std::env::temp_dir().join("engine-cache")
}

pub fn run(a: &RunArgs) -> i32 {
    if a.executor == ExecutorKind::Dask {
        return super::dask::run(a, interrupt_flag());
    }
    let plan = match super::check::load(&a.pipeline, &a.resources) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let interrupt = interrupt_flag();
    match run_loaded(&plan, a, interrupt, None) {
        Ok(code) => code,
        Err(e) => {
            super::print_error(&*e);
            EXIT_INTERNAL
        }
    }
}

/// Run a loaded plan; `dask` is the connected executor for `--executor dask`.
pub(crate) fn run_loaded(
    plan: &Plan,
    a: &RunArgs,
    interrupt: Arc<AtomicBool>,
    dask: Option<DaskExecutor>,
) -> Result<i32, Box<dyn std::error::Error>> {
    let store_dir = a.store.clone().unwrap_or_else(|| plan.base_dir.join(".engine-store"));
    let store: Arc<LocalStore> = Arc::new(
        LocalStore::open(&store_dir).map_err(|e| format!("cannot open the store at {}: {e}", store_dir.display()))?,
    );
    let workers = match (a.executor, &dask) {
        (_, Some(d)) => d.workers(),
        (ExecutorKind::Sync, _) => 1,
        _ => a.workers.map(|w| w as usize).unwrap_or_else(|| (plan.capacity.cpu_milli / 1000).max(1) as usize),
    }
    .max(1);
    if a.workers == Some(0) {
        eprintln!("error: --workers must be at least 1");
        return Ok(EXIT_INVALID);
    }
    let max_task_memory = plan
        .tasks
        .iter()
        .map(|t| if t.resources.memory == 0 { DEFAULT_TASK_MEMORY } else { t.resources.memory })
        .max()
        .unwrap_or(DEFAULT_TASK_MEMORY)
        .min(4 << 30);
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(),
        max_instances: workers as u32 + 1,
        max_task_memory,
    })?);

    let tty = std::io::stderr().is_terminal() && !a.quiet;
    // Compile (or load from the cache) each plugin once for the whole run.
    let mut digests: Vec<Digest> = Vec::with_capacity(plan.plugins.len());
    let mut plugin_reports = Vec::with_capacity(plan.plugins.len());
    for p in &plan.plugins {
        let size = fs::metadata(&p.path).map(|m| m.len()).unwrap_or(0);
        let spinner = (tty && size > (1 << 20)).then(|| {
            let s = ProgressBar::new_spinner();
            s.set_message(format!("compiling plugin `{}` ({})", p.name, format_size(size)));
            s.enable_steady_tick(Duration::from_millis(120));
            s
        });
        let started = Instant::now();
        match runtime.load(&p.path) {
            Ok(loaded) => {
                if let Some(s) = spinner {
                    s.finish_and_clear();
                }
                let took = started.elapsed();
                if took > Duration::from_millis(500) && !a.quiet {
                    if loaded.cache_hit {
                        eprintln!("loaded plugin `{}` from the module cache in {}", p.name, format_duration(took));
                    } else {
                        eprintln!("compiled plugin `{}` in {} (cached for later runs)", p.name, format_duration(took));
                    }
                }
                digests.push(loaded.digest);
                plugin_reports.push(report::PluginReport {
                    name: p.name.clone(),
                    sha256: loaded.digest.to_string(),
                    cached: loaded.cache_hit,
                    load_ms: took.as_secs_f64() * 1000.0,
                });
            }
            Err(e) => {
                if let Some(s) = spinner {
                    s.finish_and_clear();
                }
                eprintln!("error: plugin `{}`: {e}", p.name);
                return Ok(EXIT_INVALID);
            }
        }
    }

    let run_start = Instant::now();
    let run_start_sys = std::time::SystemTime::now();
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        std::process::id()
    );
    let opts = RunOptions {
        fail_fast: a.fail_fast,
        backoff_base: backoff_base(),
        log_dir: store_dir.join("runs").join(&run_id).join("logs"),
        interrupt: interrupt.clone(),
        limits: Limits::default(),
    };
    let dyn_store: Arc<dyn BlobStore> = store.clone();
    let mut progress = Progress::new(plan, tty, a.quiet);
    let mut dask = dask;
    let out = match a.executor {
        ExecutorKind::Dask => {
            let Some(exec) = dask.as_mut() else { return Err("the Dask executor is not connected".into()) };
            let store_abs = fs::canonicalize(&store_dir).unwrap_or_else(|_| store_dir.clone());
            exec.prepare(
                plan,
                &run_id,
                WorkerInit {
                    protocol: PROTOCOL_VERSION,
                    worker: 0,
                    store_dir: store_abs,
                    cache_dir: fs::canonicalize(cache_dir()).unwrap_or_else(|_| cache_dir()),
                    max_task_memory,
                    plugins: plan.plugins.iter().map(|p| p.path.clone()).collect(),
                    run_start_unix_us: run_start_sys
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros() as u64)
                        .unwrap_or(0),
                    harden: true,
                    read_only: mount_sources(plan),
                },
                run_start,
            );
            let mut out = driver::run_plan(plan, &digests, exec, &*store, &opts, &mut progress, run_start);
            out.lane_names = exec.lane_names();
            out
        }
        ExecutorKind::Threads => {
            driver::run_plan_threads(plan, &digests, &runtime, workers, &*store, &opts, &mut progress, run_start)?
        }
        ExecutorKind::Sync | ExecutorKind::Processes => {
            let mut exec: Box<dyn Executor> = if a.executor == ExecutorKind::Sync {
                Box::new(SyncExecutor::new(runtime.clone(), dyn_store.clone(), run_start))
            } else {
                let exe = std::env::current_exe().map_err(|e| format!("cannot find the engine binary: {e}"))?;
                let store_abs = fs::canonicalize(&store_dir).unwrap_or_else(|_| store_dir.clone());
                Box::new(ProcessesExecutor::new(ProcessesConfig {
                    workers,
                    exe,
                    store_dir: store_abs,
                    cache_dir: cache_dir(),
                    max_task_memory,
                    plugins: plan.plugins.iter().map(|p| p.path.clone()).collect(),
                    run_start: run_start_sys,
                    harden: true,
                    read_only: mount_sources(plan),
                })?)
            };
            driver::run_plan(plan, &digests, &mut *exec, &*store, &opts, &mut progress, run_start)
        }
    };
    progress.finish();
    if let Some(why) = &out.aborted {
        eprintln!("error: the run was stopped, no worker is left to run tasks: {why}");
    }
    store.sync().map_err(|e| format!("cannot make the store durable: {e}"))?;

    let status = report::run_status(&out);
    let mut wrote = Vec::new();
    if status == "succeeded" {
        for o in &plan.outputs {
            let rec = &out.records[o.task as usize];
            let Some(blob) = rec.outputs.iter().find(|b| b.name == o.output) else {
                eprintln!(
                    "error: [outputs] {}: task `{}` produced no output `{}`",
                    o.dest.display(),
                    plan.tasks[o.task as usize].id,
                    o.output
                );
                return Ok(EXIT_TASKS_FAILED);
            };
            write_output(&*store, &blob.blob.digest, &o.dest)
                .map_err(|e| format!("cannot write output {}: {e}", o.dest.display()))?;
            wrote.push(o.dest.clone());
        }
    }

    print_summary(plan, &out, &wrote, &store_dir);
    let exec_name = match a.executor {
        ExecutorKind::Sync => "sync",
        ExecutorKind::Threads => "threads",
        ExecutorKind::Processes => "processes",
        ExecutorKind::Dask => "dask",
    };
    if let Some(path) = &a.report {
        let mut r = report::build(plan, &out, exec_name, workers, &store_dir, plugin_reports);
        if let Some(d) = &dask {
            r.scheduler = Some(d.cluster().scheduler.clone());
            for (t, rec) in r.tasks.iter_mut().zip(&out.records) {
                if t.worker.is_some() {
                    t.dask_worker = d.slot(rec.worker).map(|(name, _)| name.clone());
                }
            }
        }
        write_atomic_with(path, |w| serde_json::to_writer_pretty(w, &r).map_err(std::io::Error::other))
            .map_err(|e| format!("cannot write report {}: {e}", path.display()))?;
    }
    if let Some(path) = &a.trace {
        write_atomic_with(path, |w| report::write_trace(plan, &out, w))
            .map_err(|e| format!("cannot write trace {}: {e}", path.display()))?;
    }
    Ok(match status {
        "succeeded" => EXIT_OK,
        "interrupted" => EXIT_INTERRUPTED,
        _ => EXIT_TASKS_FAILED,
    })
}

/// Base delay between attempts: `ENGINE_RETRY_BACKOFF` (a duration such as
/// `10ms`), default 100ms; doubled for each further attempt, capped at 10s.
fn backoff_base() -> Duration {
    std::env::var("ENGINE_RETRY_BACKOFF")
        .ok()
        .and_then(|s| crate::units::parse_duration(&s).ok())
        .unwrap_or(Duration::from_millis(100))
}

/// Copy a blob to `dest` atomically (temp file in the same directory, fsync, rename).
fn write_output(store: &dyn BlobStore, d: &Digest, dest: &Path) -> std::io::Result<()> {
    let data = local::read_all(store, d).map_err(std::io::Error::other)?;
    write_atomic(dest, &data)
}

fn write_atomic(dest: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_with(dest, |w| w.write_all(data))
}

/// Stream a file into place atomically: a temp file in the destination's
/// directory, buffered writes, fsync, rename. Large reports never exist as one
/// in-memory string.
fn write_atomic_with(dest: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    // Like any new file: mode 0666 less the umask (not tempfile's 0600).
    let mut tmp =
        tempfile::Builder::new().permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666)).tempfile_in(dir)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_data()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

fn print_summary(plan: &Plan, out: &RunOutcome, wrote: &[PathBuf], store_dir: &Path) {
    // A closed stdout (e.g. piped into `head`) must not turn into a panic.
    let mut o = std::io::stdout().lock();
    macro_rules! say {
        ($($t:tt)*) => { let _ = writeln!(o, $($t)*); };
    }
    let c = &out.counts;
    let status = report::run_status(out);
    say!(
        "{status}: {} tasks: {} succeeded, {} failed, {} skipped, {} cancelled in {}",
        c.total,
        c.succeeded,
        c.failed,
        c.skipped,
        c.cancelled,
        format_duration(out.wall)
    );
    let slow = report::slowest(plan, out, 5);
    if !slow.is_empty() {
        let list: Vec<String> =
            slow.iter().map(|(id, us)| format!("{id} {}", format_duration(Duration::from_micros(*us)))).collect();
        say!("slowest: {}", list.join(", "));
    }
    for w in wrote {
        say!("wrote {}", w.display());
    }
    if c.failed > 0 || out.interrupted {
        let logs = store_dir.join("runs");
        say!("task logs are under {}", logs.display());
    }
}

/// The progress display: a live bar on a terminal, plain lines otherwise.
struct Progress<'a> {
    plan: &'a Plan,
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Instant,
}

impl<'a> Progress<'a> {
    fn new(plan: &'a Plan, tty: bool, quiet: bool) -> Self {
        let bar = tty.then(|| {
            let b = ProgressBar::new(plan.tasks.len() as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { plan, bar, quiet, last_line: Instant::now() }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn id(&self, t: TaskId) -> &str {
        &self.plan.tasks[t as usize].id
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress<'_> {
    fn event(&mut self, ev: Event<'_>, c: &Counts) {
        let done = (c.succeeded + c.failed + c.skipped + c.cancelled) as u64;
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("done, {} running, {} failed", c.running, c.failed));
        }
        match ev {
            Event::Failed { task, attempt, failure, decision, log_tail } => {
                let retries = self.plan.tasks[task as usize].retries;
                let mut line = match decision {
                    FailureDecision::Retry { .. } => format!(
                        "task `{}` failed (attempt {attempt} of {}): {failure}; retrying",
                        self.id(task),
                        retries + 1
                    ),
                    FailureDecision::Failed { skipped } => {
                        let mut s = format!("error: task `{}` failed: {failure}", self.id(task));
                        if skipped > 0 {
                            s.push_str(&format!(
                                " ({skipped} dependent task{} skipped)",
                                if skipped == 1 { "" } else { "s" }
                            ));
                        }
                        s
                    }
                };
                if !log_tail.is_empty() && matches!(decision, FailureDecision::Failed { .. }) {
                    line.push_str("\n  last lines of its log:");
                    for l in log_tail.lines() {
                        line.push_str("\n    ");
                        line.push_str(l);
                    }
                }
                self.say(&line);
            }
            Event::Interrupted => self.say("interrupted: cancelling running tasks"),
            Event::Tick | Event::Started { .. } | Event::Succeeded { .. } | Event::Cancelled { .. } => {
                if self.bar.is_none() && !self.quiet && self.last_line.elapsed() >= Duration::from_secs(5) {
                    self.last_line = Instant::now();
                    self.say(&format!("progress: {done}/{} done, {} running, {} failed", c.total, c.running, c.failed));
                }
            }
        }
    }
}

pub fn worker(_a: &WorkerArgs) -> i32 {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "error: `engine worker` is started by `engine run --executor processes` and speaks a binary protocol on stdin/stdout"
        );
        return EXIT_INVALID;
    }
    crate::exec::worker::serve()
}

/// The distinct host paths of every task's mounts (what `processes` workers
/// may read besides the store, the cache and the temp dir).
fn mount_sources(plan: &Plan) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = plan
        .tasks
        .iter()
        .filter_map(|t| t.fs.as_deref())
        .flat_map(|f| f.mounts.iter().map(|m| fs::canonicalize(&m.host).unwrap_or_else(|_| m.host.clone())))
        .collect();
    v.sort();
    v.dedup();
    v
}
