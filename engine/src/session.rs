//! A run as a library API: take a validated [`Plan`], open its store, prepare
//! its plugins, run it on an executor, copy `[outputs]` out, and hand back a
//! typed [`RunOutcome`]. The CLI is one user of this module; anything that
//! embeds the engine is another.
//!
//! What stays out: flags, terminals and exit codes (the CLI maps
//! [`RunStatus`] to an exit code), and how progress is shown (an [`Observer`]
//! is told what happens). See [`Session`] for an example.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::exec::Executor;
use crate::exec::compile::{CompileError, CompileJob, compile_in_child};
use crate::exec::dask::{Cluster, DaskConfig, DaskError, DaskExecutor};
use crate::exec::driver::{self, CacheOptions, NoObserver, Observer, RunOptions};
use crate::exec::processes::{ProcessesConfig, ProcessesExecutor};
use crate::exec::proto::{PROTOCOL_VERSION, WorkerInit};
use crate::exec::sync::SyncExecutor;
use crate::history::{RunHistory, RunHistoryRef, Runs, TaskHistoryRef, Tasks};
use crate::pipeline::LoadOptions;
use crate::plan::{Plan, PluginSpec};
use crate::report::{self, PluginReport};
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig, RuntimeError};
use crate::store::{BlobReader, BlobStore, Digest, StoreError, StoreSpec};
use crate::task::message::{InfraKind, LimitKind, Limits, TaskFailure};

pub use crate::exec::driver::RunOutcome as Records;
/// The engine's cache directory (compiled modules, unpacked mounts, the read
/// cache of remote stores).
pub use crate::store::spec::default_cache_dir;

/// Where tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorKind {
    /// One task at a time on the calling thread, in a deterministic order.
    Sync,
    /// A pool of worker threads (the default).
    Threads,
    /// A pool of `engine worker` subprocesses.
    Processes,
    /// A Dask cluster, in `engine worker` processes on its workers (see
    /// `docs/cluster.md`). The session connects when it runs, unless it was
    /// given a cluster connected beforehand ([`Session::on_dask`]).
    Dask(DaskOptions),
}

impl ExecutorKind {
    /// The name used on the command line and in the report.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorKind::Sync => "sync",
            ExecutorKind::Threads => "threads",
            ExecutorKind::Processes => "processes",
            ExecutorKind::Dask(_) => "dask",
        }
    }
}

/// How to reach a Dask cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaskOptions {
    /// `tcp://HOST:PORT`, `local:N` for a new local cluster of N workers, or
    /// `None` for a local cluster (like `distributed.Client()`).
    pub scheduler: Option<String>,
    /// Most tasks in Dask at once (default: the cluster's threads, each
    /// holding up to 16 while tasks are short).
    pub window: Option<usize>,
    /// The Python with `engine_dask` installed, which runs the bridge.
    pub python: PathBuf,
    /// How long to try to reach the scheduler.
    pub connect_timeout: Duration,
}

impl Default for DaskOptions {
    fn default() -> Self {
        DaskOptions {
            scheduler: None,
            window: None,
            python: PathBuf::from("python3"),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A Dask cluster connected before its pipeline is loaded: its workers'
/// resources are the capacity the pipeline is validated against
/// ([`DaskCluster::load_options`]), and the session that runs the plan
/// ([`Session::on_dask`]) refuses a task no single worker can hold.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use engine::pipeline;
/// use engine::session::{DaskCluster, DaskOptions, Session};
///
/// let opts = DaskOptions { scheduler: Some("tcp://10.0.0.5:8786".into()), ..DaskOptions::default() };
/// let cluster = DaskCluster::connect(opts)?;
/// let plan = pipeline::load("pipeline.toml".as_ref(), &cluster.load_options()).map_err(|d| d.to_string())?;
/// let outcome = Session::new(plan).on_dask(cluster).run()?;
/// # Ok(()) }
/// ```
pub struct DaskCluster {
    options: DaskOptions,
    exec: DaskExecutor,
}

impl DaskCluster {
    /// Start the bridge (`python -m engine_dask.bridge`) and connect to the
    /// scheduler. Local cluster workers run this process's own binary.
    pub fn connect(options: DaskOptions) -> Result<DaskCluster, SessionError> {
        if options.window == Some(0) {
            return Err(SessionError::InvalidOptions("the Dask window must be at least 1".into()));
        }
        let engine_exe = std::env::current_exe().map_err(|e| SessionError::Executor {
            executor: "dask",
            message: format!("cannot find the engine binary: {e}"),
        })?;
        let exec = DaskExecutor::connect(&DaskConfig {
            python: options.python.clone(),
            scheduler: options.scheduler.clone(),
            connect_timeout: options.connect_timeout,
            window: options.window,
            engine_exe,
        })
        .map_err(SessionError::Dask)?;
        Ok(DaskCluster { options, exec })
    }

    /// What the cluster looks like: the scheduler, versions, the workers and
    /// their resources.
    pub fn info(&self) -> &Cluster {
        self.exec.cluster()
    }

    /// Load options whose capacity no request exceeds on the kinds the
    /// workers declare: whether a task fits is checked per worker when the
    /// session runs.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { capacity_override: Some(self.info().load_capacity()), ..LoadOptions::default() }
    }
}

/// Where the tasks of a Dask run ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaskPlacement {
    /// The scheduler's address.
    pub scheduler: String,
    /// The Dask worker of each trace lane (a lane is one of its thread slots).
    pub lane_workers: Vec<String>,
}

/// How a run ended, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every task succeeded and every `[outputs]` file was written.
    Succeeded,
    /// Some task failed, was skipped or cancelled, or an `[outputs]` file is missing.
    Failed,
    /// Interrupted (Ctrl-C): running tasks were cancelled.
    Interrupted,
}

impl RunStatus {
    /// `succeeded`, `failed` or `interrupted` (the report's `status`).
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Why a run could not be carried out (as opposed to tasks failing, which is
/// a [`RunStatus::Failed`] outcome).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    InvalidOptions(String),
    /// The store could not be opened (the error names the store).
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Runtime(RuntimeError),
    #[error("plugin `{name}`: {error}")]
    Plugin { name: String, error: RuntimeError },
    #[error("plugin `{name}` changed since the pipeline was checked (sha256 {now} instead of {checked})")]
    PluginChanged { name: String, checked: Digest, now: Digest },
    #[error("cannot start the {executor} executor: {message}")]
    Executor { executor: &'static str, message: String },
    #[error("cannot make the store durable: {0}")]
    Sync(StoreError),
    /// The Dask cluster cannot be used, or cannot run the plan.
    #[error(transparent)]
    Dask(DaskError),
}

/// An `[outputs]` entry that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingOutput {
    pub dest: PathBuf,
    pub why: String,
}

/// Everything a finished run produced.
pub struct RunOutcome {
    /// The plan that ran, with every plugin's digest.
    pub plan: Plan,
    pub status: RunStatus,
    pub executor: ExecutorKind,
    pub workers: usize,
    pub store: StoreSpec,
    /// Where per-task logs of this run were written.
    pub log_dir: PathBuf,
    /// How each plugin was prepared.
    pub plugins: Vec<PluginReport>,
    /// `[outputs]` files written.
    pub written: Vec<PathBuf>,
    /// `[outputs]` files not written.
    pub missing: Vec<MissingOutput>,
    /// Why the engine itself stopped the run (no worker left), if it did.
    pub aborted: Option<String>,
    /// Why the run's record (for `engine cat`, `logs`, `--dry-run`) could not
    /// be written, if it could not.
    pub history_error: Option<String>,
    /// Where each task ran, on the Dask executor.
    pub dask: Option<DaskPlacement>,
    /// What happened to each task and attempt.
    pub records: Records,
}

impl RunOutcome {
    /// The JSON report (docs/pipeline.md, "Run report").
    pub fn report(&self) -> report::Report<'_> {
        let mut r = report::build(
            &self.plan,
            &self.records,
            self.status.name(),
            self.executor.name(),
            self.workers,
            &self.store,
            self.plugins.clone(),
        );
        if let Some(d) = &self.dask {
            r.scheduler = Some(d.scheduler.clone());
            r.tasks.on_dask(&d.lane_workers);
        }
        r
    }

    /// Write the JSON report to `path`, atomically.
    pub fn write_report(&self, path: &Path) -> std::io::Result<()> {
        let r = self.report();
        write_atomic_with(path, |w| serde_json::to_writer_pretty(w, &r).map_err(std::io::Error::other))
    }

    /// Write the HTML report (see [`report::html`]) to `path`, atomically:
    /// rendered from the JSON report, as `engine report` renders a saved one.
    pub fn write_report_html(&self, path: &Path) -> std::io::Result<()> {
        // Through JSON text: faster than a `serde_json::Value` at 100k tasks.
        let json = serde_json::to_vec(&self.report()).map_err(std::io::Error::other)?;
        let r: report::html::RunReport = serde_json::from_slice(&json).map_err(std::io::Error::other)?;
        let page = report::html::render(&r);
        write_atomic_with(path, |w| w.write_all(page.as_bytes()))
    }

    /// Write the Chrome trace to `path`, atomically.
    pub fn write_trace(&self, path: &Path) -> std::io::Result<()> {
        write_atomic_with(path, |w| report::write_trace(&self.plan, &self.records, w))
    }
}

/// What a session is told about plugin preparation (compilation can take
/// minutes for large modules, so a user interface may show it).
pub enum PluginEvent<'a> {
    /// About to compile or load plugin `name` of `size` bytes.
    Preparing { name: &'a str, size: u64 },
    /// Done: whether it came from the module cache, and how long it took.
    Prepared { name: &'a str, cached: bool, took: Duration },
    /// It could not be compiled; each of its tasks (`tasks`, those of the
    /// plan so far) fails with `failure` without running.
    Failed { name: &'a str, failure: &'a TaskFailure, tasks: &'a [&'a str] },
}

/// A run being set up. Build with [`Session::new`] and the setters, then
/// [`Session::run`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use engine::pipeline::{self, LoadOptions};
/// use engine::session::{RunStatus, Session};
///
/// // Two tasks: a command task that writes a file to /out, and one that copies it.
/// let dir = tempfile::tempdir()?;
/// let wasm = wat::parse_str(r#"(module
///   (import "wasi_snapshot_preview1" "path_open"
///     (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
///   (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
///   (memory (export "memory") 1)
///   (data (i32.const 16) "hi\n") (data (i32.const 32) "greeting")
///   (func (export "_start")
///     ;; /out is preopened as fd 4 (after /in as fd 3)
///     (drop (call $open (i32.const 4) (i32.const 0) (i32.const 32) (i32.const 8) (i32.const 1)
///       (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 48)))
///     (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
///     (drop (call $write (i32.load (i32.const 48)) (i32.const 0) (i32.const 1) (i32.const 8)))))"#)?;
/// std::fs::write(dir.path().join("hello.wasm"), wasm)?;
/// std::fs::write(dir.path().join("pipeline.toml"), r#"
/// [pipeline]
/// name = "two"
/// [plugins]
/// hello = "hello.wasm"
/// [tasks.a]
/// plugin = "hello"
/// [tasks.b]
/// plugin = "hello"
/// inputs = { x = "a.greeting" }
/// [outputs]
/// "greeting.txt" = "a.greeting"
/// "#)?;
/// let plan = pipeline::load(&dir.path().join("pipeline.toml"), &LoadOptions::default())
///     .map_err(|d| d.to_string())?;
/// let outcome = Session::new(plan).cache_dir(dir.path().join("cache")).run()?;
/// assert_eq!(outcome.status, RunStatus::Succeeded);
/// assert_eq!(std::fs::read_to_string(dir.path().join("greeting.txt"))?, "hi\n");
/// # Ok(()) }
/// ```
pub struct Session {
    plan: Plan,
    store: Option<StoreSpec>,
    executor: ExecutorKind,
    workers: Option<usize>,
    fail_fast: bool,
    backoff_base: Duration,
    cache_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer + Send>,
    on_plugin: Box<dyn FnMut(PluginEvent<'_>)>,
    use_cache: bool,
    rerun: Vec<String>,
    /// A Dask cluster connected before the plan was loaded.
    dask: Option<DaskExecutor>,
    /// The engine binary that compiles plugins in a child process
    /// ([`Session::compile_in_child`]); `None`: in this process, unbounded.
    compiler: Option<PathBuf>,
}

impl Session {
    /// A run of `plan` with the defaults: the threads executor with one worker
    /// per CPU of the plan's capacity, the store `.engine-store` next to the
    /// pipeline file, the user's module cache.
    pub fn new(plan: Plan) -> Session {
        Session {
            plan,
            store: None,
            executor: ExecutorKind::Threads,
            workers: None,
            fail_fast: false,
            backoff_base: Duration::from_millis(100),
            cache_dir: None,
            log_dir: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            observer: Box::new(NoObserver),
            on_plugin: Box::new(|_| {}),
            use_cache: true,
            rerun: Vec::new(),
            dask: None,
            compiler: None,
        }
    }

    /// Compile each plugin that is not in the module cache in a child process
    /// of `engine_exe` (the `engine` binary, `engine compile-plugin`), so that
    /// its `max_compile_time` and the interrupt flag can stop it; what
    /// `engine run` does. Without it (a library default) plugins are compiled
    /// in this process, which no limit or interrupt can stop mid-way. Either
    /// way a plugin that cannot be compiled fails only its own tasks.
    pub fn compile_in_child(mut self, engine_exe: PathBuf) -> Self {
        self.compiler = Some(engine_exe);
        self
    }

    /// Use the action cache (the default): skip tasks whose record is in the
    /// store, and record the tasks that succeed. `false` is `--no-cache`.
    pub fn use_cache(mut self, yes: bool) -> Self {
        self.use_cache = yes;
        self
    }
    /// Run the tasks whose id matches one of `patterns` even if they have a
    /// record (`*` matches any run of characters, e.g. `count[*]`).
    pub fn rerun(mut self, patterns: Vec<String>) -> Self {
        self.rerun = patterns;
        self
    }

    pub fn store(mut self, spec: StoreSpec) -> Self {
        self.store = Some(spec);
        self
    }
    pub fn executor(mut self, kind: ExecutorKind) -> Self {
        self.executor = kind;
        self
    }
    /// Run on a Dask cluster connected beforehand (the executor becomes
    /// [`ExecutorKind::Dask`] with its options).
    pub fn on_dask(mut self, cluster: DaskCluster) -> Self {
        self.executor = ExecutorKind::Dask(cluster.options);
        self.dask = Some(cluster.exec);
        self
    }
    /// Number of workers (at least 1; the sync executor always has 1; on
    /// Dask, the window of [`DaskOptions`] applies instead).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }
    /// Stop dispatching at the first task that fails for good.
    pub fn fail_fast(mut self, yes: bool) -> Self {
        self.fail_fast = yes;
        self
    }
    /// Delay before a task's second attempt (doubled for each further one, capped at 10s).
    pub fn backoff_base(mut self, d: Duration) -> Self {
        self.backoff_base = d;
        self
    }
    /// The compiled-module cache (default: [`default_cache_dir`]).
    pub fn cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = Some(dir);
        self
    }
    /// The root of per-task logs, written as `DIR/RUN/logs/TASK.log` (default:
    /// `STORE/runs` for a directory store, `.engine-runs` next to the pipeline
    /// file for `file://` and `s3://` stores).
    pub fn log_dir(mut self, dir: PathBuf) -> Self {
        self.log_dir = Some(dir);
        self
    }
    /// A flag that, once set (e.g. from a Ctrl-C handler), interrupts the run.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = flag;
        self
    }
    /// Told about every task event (progress display).
    pub fn observer(mut self, o: Box<dyn Observer + Send>) -> Self {
        self.observer = o;
        self
    }
    /// Told when each plugin is being prepared and when it is ready.
    pub fn on_plugin(mut self, f: impl FnMut(PluginEvent<'_>) + 'static) -> Self {
        self.on_plugin = Box::new(f);
        self
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Carry out the run. `Err` only when the run could not be carried out
    /// (bad options, store, plugins, executor); failed tasks are an `Ok`
    /// outcome with [`RunStatus::Failed`].
    pub fn run(mut self) -> Result<RunOutcome, SessionError> {
        let mut dask = self.connect_dask()?;
        let workers = match &dask {
            Some(d) => d.workers(),
            None => self.worker_count()?,
        };
        let rerun = rerun_flags(&self.plan, &self.rerun)?;
        let spec = self.store.clone().unwrap_or_else(|| StoreSpec::Local(self.plan.base_dir.join(".engine-store")));
        let cache_dir = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let store = spec.open_with_cache(&cache_dir).map_err(SessionError::Store)?;
        let max_task_memory = Limits::max_task_memory(&self.plan);
        let runtime_config = RuntimeConfig {
            cache_dir: cache_dir.clone(),
            // On Dask this process only compiles plugins; tasks run elsewhere.
            // Counted in tasks, like `engine worker`'s 2: the pool doubles it
            // for each task's forwarding instance (see `runtime::engine_config`).
            max_instances: if dask.is_some() { 2 } else { workers as u32 + 1 },
            max_task_memory,
        };
        let runtime = Arc::new(Runtime::new(runtime_config.clone()).map_err(SessionError::Runtime)?);
        let (plugins, failed_plugins) = self.prepare_plugins(&runtime, &runtime_config)?;

        let run_start = Instant::now();
        let run_id = new_run_id();
        let runs = Runs::new(self.log_root(&spec), &self.plan.pipeline_file);
        let log_dir = runs.run_dir(&run_id).join("logs");
        // Best effort: without it `engine logs` cannot find this run's logs.
        let _ = runs.started(&run_id);
        let opts = RunOptions {
            fail_fast: self.fail_fast,
            backoff_base: self.backoff_base,
            log_dir: log_dir.clone(),
            interrupt: self.interrupt.clone(),
            limits: Limits::default(),
            cache: CacheOptions {
                enabled: self.use_cache,
                rerun,
                mounts: if self.use_cache { mount_digests(&self.plan) } else { HashMap::new() },
            },
            failed_plugins,
        };
        // The children of mapped tasks are appended to the plan as they expand.
        let plan = &mut self.plan;
        let observer = &mut *self.observer;
        let records = match &self.executor {
            ExecutorKind::Dask(_) => {
                let Some(exec) = dask.as_mut() else {
                    return Err(SessionError::Executor { executor: "dask", message: "not connected".into() });
                };
                let init = worker_init(plan, &opts.failed_plugins, &spec, &cache_dir, max_task_memory);
                exec.prepare(plan, &run_id, init, run_start);
                let mut records = driver::run_plan(plan, exec, &*store, &opts, observer, run_start);
                records.lane_names = exec.lane_names();
                records
            }
            ExecutorKind::Threads => {
                driver::run_plan_threads(plan, &runtime, workers, &*store, &opts, observer, run_start)
                    .map_err(|e| SessionError::Executor { executor: "threads", message: e.to_string() })?
            }
            ExecutorKind::Sync => {
                let mut exec = SyncExecutor::new(runtime.clone(), store.clone(), run_start);
                driver::run_plan(plan, &mut exec, &*store, &opts, observer, run_start)
            }
            ExecutorKind::Processes => {
                let ready = ready_plugins(plan, &opts.failed_plugins);
                let mut exec = processes_executor(plan, ready, &spec, workers, cache_dir, max_task_memory)?;
                driver::run_plan(plan, &mut *exec, &*store, &opts, observer, run_start)
            }
        };
        let dask = dask.map(|d| DaskPlacement {
            scheduler: d.cluster().scheduler.clone(),
            lane_workers: d.slots().iter().map(|(worker, _)| worker.clone()).collect(),
        });
        store.sync().map_err(SessionError::Sync)?;
        let history = write_history(&runs, plan, &records, &run_id, &spec).err().map(|e| e.to_string());
        // The outputs of every task that succeeded; the rest are listed as missing.
        let (written, missing) = write_outputs(plan, &records, &*store);
        let status = if records.interrupted {
            RunStatus::Interrupted
        } else if records.counts.succeeded == records.counts.total && missing.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        Ok(RunOutcome {
            plan: self.plan,
            status,
            executor: self.executor,
            workers,
            store: spec,
            log_dir,
            plugins,
            written,
            missing,
            aborted: records.aborted.clone(),
            history_error: history,
            dask,
            records,
        })
    }

    /// Per-task logs: inside a directory store, else beside the pipeline (a
    /// shared or remote store is no place for one machine's logs).
    fn log_root(&self, spec: &StoreSpec) -> PathBuf {
        match &self.log_dir {
            Some(dir) => dir.clone(),
            None => default_runs_dir(&self.plan.base_dir, spec),
        }
    }

    /// On the Dask executor: connect (unless connected beforehand), make
    /// sure every task fits on some single worker, and take the cluster's
    /// totals as the plan's capacity.
    fn connect_dask(&mut self) -> Result<Option<DaskExecutor>, SessionError> {
        let ExecutorKind::Dask(opts) = &self.executor else { return Ok(None) };
        if self.workers.is_some() {
            return Err(SessionError::InvalidOptions(
                "the number of workers does not apply to the Dask executor: set its window".into(),
            ));
        }
        let exec = match self.dask.take() {
            Some(exec) => exec,
            None => DaskCluster::connect(opts.clone())?.exec,
        };
        exec.cluster().check_fit(&self.plan).map_err(SessionError::Dask)?;
        self.plan.capacity = exec.cluster().capacity();
        Ok(Some(exec))
    }

    fn worker_count(&self) -> Result<usize, SessionError> {
        if self.workers == Some(0) {
            return Err(SessionError::InvalidOptions("--workers must be at least 1".into()));
        }
        Ok(match self.executor {
            ExecutorKind::Sync => 1,
            _ => self.workers.unwrap_or_else(|| (self.plan.capacity.cpu_milli / 1000).max(1) as usize),
        })
    }

    /// Compile (or load from the cache) every plugin once, before any task
    /// starts, and make sure each is the module `engine check` read. A plugin
    /// that does not compile (within its `max_compile_time`, when compiled
    /// in a child process) is reported with the failure its tasks get; the
    /// second vector holds it by plugin index.
    #[allow(clippy::type_complexity)]
    fn prepare_plugins(
        &mut self,
        runtime: &Runtime,
        config: &RuntimeConfig,
    ) -> Result<(Vec<PluginReport>, Vec<Option<TaskFailure>>), SessionError> {
        let mut reports = Vec::with_capacity(self.plan.plugins.len());
        let mut failed = vec![None; self.plan.plugins.len()];
        for (i, p) in self.plan.plugins.iter_mut().enumerate() {
            let size = fs::metadata(&p.path).map(|m| m.len()).unwrap_or(0);
            (self.on_plugin)(PluginEvent::Preparing { name: &p.name, size });
            let started = Instant::now();
            let plugin_error = |error| SessionError::Plugin { name: p.name.clone(), error };
            let loaded = match runtime.load_cached(&p.path) {
                Ok(Some(loaded)) => Ok(loaded),
                Ok(None) => compile(runtime, config, self.compiler.as_deref(), p, &self.interrupt)?,
                // What a fresh compile reports for its tasks: the plugin's
                // own fault, not the run's (a module that does not link).
                Err(e @ (RuntimeError::Compile { .. } | RuntimeError::Link { .. })) => {
                    Err(TaskFailure::infra(InfraKind::PluginLoad, format!("plugin `{}`: {e}", p.name)))
                }
                Err(e) => return Err(plugin_error(e)),
            };
            let took = started.elapsed();
            let loaded = match loaded {
                Ok(loaded) => loaded,
                Err(failure) => {
                    let tasks: Vec<&str> =
                        self.plan.tasks.iter().filter(|t| t.plugin as usize == i).map(|t| t.id.as_str()).collect();
                    (self.on_plugin)(PluginEvent::Failed { name: &p.name, failure: &failure, tasks: &tasks });
                    reports.push(PluginReport {
                        name: p.name.clone(),
                        sha256: p.digest.map(|d| d.to_string()).unwrap_or_default(),
                        cached: false,
                        load_ms: took.as_secs_f64() * 1000.0,
                        error: Some(failure.to_string()),
                    });
                    failed[i] = Some(failure);
                    continue;
                }
            };
            (self.on_plugin)(PluginEvent::Prepared { name: &p.name, cached: loaded.cache_hit, took });
            match p.digest {
                Some(checked) if checked != loaded.digest => {
                    return Err(SessionError::PluginChanged { name: p.name.clone(), checked, now: loaded.digest });
                }
                _ => p.digest = Some(loaded.digest),
            }
            reports.push(PluginReport {
                name: p.name.clone(),
                sha256: loaded.digest.to_string(),
                cached: loaded.cache_hit,
                load_ms: took.as_secs_f64() * 1000.0,
                error: None,
            });
        }
        Ok((reports, failed))
    }
}

/// Compile plugin `p`, which the module cache does not hold: in a child
/// process of `compiler` within the plugin's `max_compile_time` (and stopped
/// by `interrupt`), else in this process. `Ok(Err(failure))`: the plugin
/// cannot be used, and `failure` is what each of its tasks fails with.
fn compile(
    runtime: &Runtime,
    config: &RuntimeConfig,
    compiler: Option<&Path>,
    p: &PluginSpec,
    interrupt: &Arc<AtomicBool>,
) -> Result<Result<LoadedPlugin, TaskFailure>, SessionError> {
    let load_failure = |message: String| TaskFailure::infra(InfraKind::PluginLoad, message);
    let Some(exe) = compiler else {
        return match runtime.load(&p.path) {
            Ok(loaded) => Ok(Ok(loaded)),
            Err(e @ RuntimeError::Compile { .. }) => Ok(Err(load_failure(format!("plugin `{}`: {e}", p.name)))),
            Err(error) => Err(SessionError::Plugin { name: p.name.clone(), error }),
        };
    };
    if interrupt.load(Ordering::SeqCst) {
        return Ok(Err(TaskFailure::Cancelled));
    }
    let job = CompileJob {
        exe: exe.to_path_buf(),
        plugin: p.path.clone(),
        config: config.clone(),
        limit: p.max_compile_time(),
    };
    match compile_in_child(&job, interrupt) {
        // The child wrote the cache entry; loading it compiles nothing (in
        // the unlikely case the entry does not fit, this compiles again).
        // Compiled in this run, though this load reads it from the cache.
        Ok(()) => match runtime.load(&p.path) {
            Ok(loaded) => Ok(Ok(LoadedPlugin { cache_hit: false, ..loaded })),
            Err(error) => Err(SessionError::Plugin { name: p.name.clone(), error }),
        },
        Err(CompileError::TimedOut(limit)) => Ok(Err(TaskFailure::Limit {
            limit: LimitKind::CompileTime,
            detail: format!(
                "plugin `{}` did not compile within its max_compile_time of {}",
                p.name,
                crate::units::format_duration(limit)
            ),
        })),
        Err(CompileError::Interrupted) => Ok(Err(TaskFailure::Cancelled)),
        Err(e) => Ok(Err(load_failure(format!("plugin `{}`: {e}", p.name)))),
    }
}

/// The paths of the plugins that were prepared (workers load these).
fn ready_plugins(plan: &Plan, failed: &[Option<TaskFailure>]) -> Vec<PathBuf> {
    plan.plugins
        .iter()
        .enumerate()
        .filter(|(i, _)| failed.get(*i).is_none_or(Option::is_none))
        .map(|(_, p)| p.path.clone())
        .collect()
}

fn processes_executor(
    plan: &Plan,
    plugins: Vec<PathBuf>,
    spec: &StoreSpec,
    workers: usize,
    cache_dir: PathBuf,
    max_task_memory: u64,
) -> Result<Box<dyn Executor>, SessionError> {
    let fail = |message: String| SessionError::Executor { executor: "processes", message };
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find the engine binary: {e}")))?;
    let exec = ProcessesExecutor::new(ProcessesConfig {
        workers,
        exe,
        store: spec.absolute(),
        cache_dir,
        max_task_memory,
        plugins,
        run_start: SystemTime::now(),
        harden: true,
        read_only: mount_sources(plan),
    })
    .map_err(|e| fail(e.to_string()))?;
    Ok(Box::new(exec))
}

/// The `Init` frame every `engine worker` of a Dask run starts with (on
/// whatever machine its Dask worker runs).
fn worker_init(
    plan: &Plan,
    failed: &[Option<TaskFailure>],
    spec: &StoreSpec,
    cache_dir: &Path,
    max_task_memory: u64,
) -> WorkerInit {
    WorkerInit {
        protocol: PROTOCOL_VERSION,
        worker: 0,
        store: spec.absolute(),
        cache_dir: fs::canonicalize(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf()),
        max_task_memory,
        plugins: ready_plugins(plan, failed),
        run_start_unix_us: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
        harden: true,
        read_only: mount_sources(plan),
    }
}

/// Copy every `[outputs]` entry out of the store, each atomically and
/// streamed; say why each one that could not be written is missing.
fn write_outputs(plan: &Plan, records: &Records, store: &dyn BlobStore) -> (Vec<PathBuf>, Vec<MissingOutput>) {
    let mut written = Vec::new();
    let mut missing = Vec::new();
    for o in &plan.outputs {
        let task = &plan.tasks[o.task as usize];
        let rec = &records.records[o.task as usize];
        let state = crate::report::state_name(records.states[o.task as usize]);
        let why = if state != "succeeded" {
            Some(format!("task `{}` {state}", task.id))
        } else if let Some(blob) = rec.outputs.iter().find(|b| b.name == o.output) {
            let copy = BlobReader::for_store(store, &blob.blob.digest)
                .map_err(std::io::Error::other)
                .and_then(|mut r| write_atomic_with(&o.dest, |w| std::io::copy(&mut r, w).map(|_| ())));
            match copy {
                Ok(()) => None,
                Err(e) => Some(format!("cannot write it: {e}")),
            }
        } else {
            Some(format!("task `{}` produced no output `{}`", task.id, o.output))
        };
        match why {
            None => written.push(o.dest.clone()),
            Some(why) => missing.push(MissingOutput { dest: o.dest.clone(), why }),
        }
    }
    (written, missing)
}

/// Stream a file into place atomically: a temp file in the destination's
/// directory, buffered writes, fsync, rename. Like any new file, it gets mode
/// 0666 less the umask.
pub fn write_atomic_with(dest: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
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

/// The distinct host paths of every task's mounts and workdir seeds (what
/// `processes` workers may read besides the store, the cache and the temp dir).
fn mount_sources(plan: &Plan) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = plan
        .tasks
        .iter()
        .filter_map(|t| t.fs.as_deref())
        .flat_map(|f| f.host_sources().map(|h| fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf())))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// What `engine run --dry-run` found for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunTask {
    pub id: String,
    /// The cache has the task: a run would not execute it.
    pub hit: bool,
    /// Why it is a miss (empty for a hit).
    pub reason: String,
}

impl Session {
    /// Run nothing: say, per task in dependency order, whether the action
    /// cache has it, and for a miss why (what changed since the last run of
    /// this pipeline, or why it has no record). A task whose upstream is a
    /// miss is a miss too: its inputs are not known before that runs.
    pub fn dry_run(mut self) -> Result<Vec<DryRunTask>, SessionError> {
        let rerun = rerun_flags(&self.plan, &self.rerun)?;
        let spec = self.store.clone().unwrap_or_else(|| StoreSpec::Local(self.plan.base_dir.join(".engine-store")));
        let cache_dir = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let store = spec.open_with_cache(&cache_dir).map_err(SessionError::Store)?;
        for p in &mut self.plan.plugins {
            if p.digest.is_none() {
                let bytes = fs::read(&p.path).map_err(|e| SessionError::Plugin {
                    name: p.name.clone(),
                    error: RuntimeError::Read { path: p.path.clone(), source: e },
                })?;
                p.digest = Some(Digest::of(&bytes));
            }
        }
        let plan = &self.plan;
        let last = Runs::new(self.log_root(&spec), &plan.pipeline_file).last().ok();
        let mounts = if self.use_cache { mount_digests(plan) } else { HashMap::new() };
        let mut outputs: Vec<Option<Vec<crate::task::message::OutputBlob>>> = vec![None; plan.tasks.len()];
        let mut files: HashMap<PathBuf, Result<crate::store::BlobRef, String>> = HashMap::new();
        let mut out = Vec::with_capacity(plan.tasks.len());
        for t in dependency_order(plan) {
            let spec_t = &plan.tasks[t as usize];
            let (hit, reason) = match self.dry_run_one(t, &rerun, &outputs, &mut files, &mounts, &*store, last.as_ref())
            {
                Ok(rec) => {
                    outputs[t as usize] = Some(rec);
                    (true, String::new())
                }
                Err(why) => (false, why),
            };
            out.push(DryRunTask { id: spec_t.id.clone(), hit, reason });
        }
        Ok(out)
    }

    /// A dry-run hit's outputs, or why task `t` is a miss.
    #[allow(clippy::too_many_arguments)]
    fn dry_run_one(
        &self,
        t: crate::plan::TaskId,
        rerun: &[bool],
        outputs: &[Option<Vec<crate::task::message::OutputBlob>>],
        files: &mut HashMap<PathBuf, Result<crate::store::BlobRef, String>>,
        mounts: &HashMap<PathBuf, Digest>,
        store: &dyn BlobStore,
        last: Option<&RunHistory>,
    ) -> Result<Vec<crate::task::message::OutputBlob>, String> {
        use crate::plan::Source;
        use crate::task::message::MsgInput;
        let plan = &self.plan;
        let spec = &plan.tasks[t as usize];
        if !self.use_cache {
            return Err("the cache is off (--no-cache)".into());
        }
        if !spec.cache {
            return Err("cache = false".into());
        }
        if rerun.get(t as usize).copied().unwrap_or(false) {
            return Err("--rerun".into());
        }
        if spec.map.is_some() {
            return Err("its tasks are known only at run time (`map`)".into());
        }
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for input in &spec.inputs {
            let mut items = Vec::with_capacity(input.sources.len());
            for src in &input.sources {
                let blob = match src {
                    Source::Task { task, output } => {
                        let up = &plan.tasks[*task as usize].id;
                        let Some(outs) = &outputs[*task as usize] else {
                            return Err(format!("input `{}` comes from `{up}`, which runs", input.name));
                        };
                        match outs.iter().find(|o| &o.name == output) {
                            Some(o) => o.blob,
                            None => return Err(format!("`{up}` recorded no output `{output}`")),
                        }
                    }
                    Source::File { path } => files
                        .entry(path.clone())
                        .or_insert_with(|| hash_file(path))
                        .clone()
                        .map_err(|e| format!("input `{}`: {e}", input.name))?,
                };
                items.push(blob);
            }
            inputs.push(MsgInput { name: input.name.clone(), list: input.list, items });
        }
        let msg = driver::task_message(plan, t, 1, inputs, &Limits::default()).map_err(|e| e.to_string())?;
        let Some(key) = crate::task::cache::action_key(&msg, &|p| mounts.get(p).copied()) else {
            return Err("a mount cannot be read".into());
        };
        if let Some(bytes) = store.get_action(&key.key).ok().flatten()
            && let Some(rec) = crate::task::cache::ActionRecord::decode(&bytes)
        {
            if rec.outputs.iter().all(|o| store.size(&o.blob.digest).ok().flatten() == Some(o.blob.len)) {
                return Ok(rec.outputs);
            }
            return Err("a recorded output is no longer in the store".into());
        }
        let Some(last) = last else {
            return Err("no earlier run of this pipeline".into());
        };
        let Some(prev) = last.tasks.iter().find(|h| h.id == spec.id) else {
            return Err("not in the last run".into());
        };
        match &prev.parts {
            Some(parts) => {
                let changed = key.parts.changed_since(parts);
                if !changed.is_empty() {
                    Err(format!("changed since the last run: {}", changed.join(", ")))
                } else if prev.state != "succeeded" {
                    Err(format!("it {} in the last run", prev.state))
                } else {
                    Err("its record is no longer in the store".into())
                }
            }
            None if prev.state != "succeeded" => Err(format!("it {} in the last run", prev.state)),
            None => Err("the last run did not cache it".into()),
        }
    }
}

/// The tasks of `plan` with every task after the tasks it depends on.
fn dependency_order(plan: &Plan) -> Vec<crate::plan::TaskId> {
    let n = plan.tasks.len();
    let mut indeg: Vec<usize> = plan.tasks.iter().map(|t| t.deps.len()).collect();
    let mut users: Vec<Vec<crate::plan::TaskId>> = vec![Vec::new(); n];
    for (i, t) in plan.tasks.iter().enumerate() {
        for &d in &t.deps {
            users[d as usize].push(i as crate::plan::TaskId);
        }
    }
    let mut order: Vec<crate::plan::TaskId> =
        (0..n as crate::plan::TaskId).filter(|&t| indeg[t as usize] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        let t = order[i];
        for &u in &users[t as usize] {
            indeg[u as usize] -= 1;
            if indeg[u as usize] == 0 {
                order.push(u);
            }
        }
        i += 1;
    }
    order
}

/// The blob reference a file would get in the store, without storing it.
fn hash_file(path: &Path) -> Result<crate::store::BlobRef, String> {
    let mut f = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut h = crate::store::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// A run id: the start time in seconds, the process id and a sequence
/// number (several runs in one process and second stay apart).
fn new_run_id() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if seq == 0 { format!("{secs}-{}", std::process::id()) } else { format!("{secs}-{}-{seq}", std::process::id()) }
}

/// Where runs on the store `spec` of a pipeline in `base_dir` are recorded
/// (logs and history) unless `--log-dir` says otherwise: `STORE/runs` for a
/// directory store, `.engine-runs` next to the pipeline for the others.
pub fn default_runs_dir(base_dir: &Path, spec: &StoreSpec) -> PathBuf {
    match spec {
        StoreSpec::Local(dir) => dir.join("runs"),
        StoreSpec::File(_) | StoreSpec::S3 { .. } => base_dir.join(".engine-runs"),
    }
}

fn write_history(runs: &Runs, plan: &Plan, records: &Records, run_id: &str, spec: &StoreSpec) -> std::io::Result<()> {
    let tasks = || {
        plan.tasks.iter().zip(&records.records).zip(&records.states).map(|((t, r), s)| TaskHistoryRef {
            id: &t.id,
            state: crate::report::state_name(*s),
            key: r.key.as_ref().map(|k| &k.key),
            parts: r.key.as_ref().map(|k| &k.parts),
            outputs: &r.outputs,
        })
    };
    let store = spec.to_string();
    let pipeline = plan.pipeline_file.display().to_string();
    runs.finished_from(&RunHistoryRef { run_id, pipeline: &pipeline, store: &store, tasks: Tasks(tasks) })
}

/// Per task: whether it matches a `--rerun` pattern. A pattern that matches
/// no task is an error (a typo would otherwise silently rerun nothing).
fn rerun_flags(plan: &Plan, patterns: &[String]) -> Result<Vec<bool>, SessionError> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let mut flags = vec![false; plan.tasks.len()];
    for p in patterns {
        let mut any = false;
        for (i, t) in plan.tasks.iter().enumerate() {
            // A `map` task's children (`count[KEY]`) exist only once it has
            // run: a pattern that names them (`count[*]`) names the task.
            let children = || t.map.is_some() && glob_match(p, &format!("{}[*]", t.id));
            if glob_match(p, &t.id) || children() {
                flags[i] = true;
                any = true;
            }
        }
        if !any {
            return Err(SessionError::InvalidOptions(format!("--rerun `{p}` matches no task of the pipeline")));
        }
    }
    Ok(flags)
}

/// `*` matches any run of characters; everything else (including `[`) is
/// literal, so `count[*]` matches every expansion of `count`.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The content digest of every mount's and workdir seed's host path: for an archive, its bytes;
/// for a directory, every entry's relative path, kind and contents, in
/// sorted order. A path that cannot be read is left out (its tasks are not
/// cached; the runtime reports the mount itself).
fn mount_digests(plan: &Plan) -> HashMap<PathBuf, crate::store::Digest> {
    let mut out = HashMap::new();
    for t in &plan.tasks {
        for host in t.fs.iter().flat_map(|f| f.host_sources()) {
            if !out.contains_key(host)
                && let Ok(d) = content_digest(host)
            {
                out.insert(host.to_path_buf(), d);
            }
        }
    }
    out
}

fn content_digest(path: &Path) -> std::io::Result<crate::store::Digest> {
    use sha2::Digest as _;
    fn walk(h: &mut sha2::Sha256, root: &Path, dir: &Path) -> std::io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            let ty = e.file_type()?;
            h.update((rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            if ty.is_dir() {
                h.update(b"d");
                walk(h, root, &p)?;
            } else if ty.is_symlink() {
                h.update(b"l");
                h.update(fs::read_link(&p)?.to_string_lossy().as_bytes());
            } else {
                h.update(b"f");
                hash_file(h, &p)?;
            }
        }
        Ok(())
    }
    fn hash_file(h: &mut sha2::Sha256, p: &Path) -> std::io::Result<()> {
        let mut f = fs::File::open(p)?;
        h.update(f.metadata()?.len().to_le_bytes());
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            h.update(&buf[..n]);
        }
    }
    let mut h = sha2::Sha256::new();
    if fs::metadata(path)?.is_dir() {
        h.update(b"dir\0");
        walk(&mut h, path, path)?;
    } else {
        h.update(b"file\0");
        hash_file(&mut h, path)?;
    }
    Ok(crate::store::Digest(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn rerun_patterns() {
        assert!(glob_match("count[*]", "count[3]"));
        assert!(!glob_match("count[*]", "count"));
        assert!(glob_match("a", "a"));
        assert!(!glob_match("a", "ab"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("c*t[1*]", "count[12]"));
        assert!(!glob_match("c*t[1*]", "count[2]"));
    }
}
