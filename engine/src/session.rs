//! A run as a library API: take a validated [`Plan`], open its store, prepare
//! its plugins, run it on an executor, copy `[outputs]` out, and hand back a
//! typed [`RunOutcome`]. The CLI is one user of this module; anything that
//! embeds the engine is another.
//!
//! What stays out: flags, terminals and exit codes (the CLI maps
//! [`RunStatus`] to an exit code), and how progress is shown (an [`Observer`]
//! is told what happens). See [`Session`] for an example.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use crate::exec::Executor;
use crate::exec::dask::{Cluster, DaskConfig, DaskError, DaskExecutor};
use crate::exec::driver::{self, NoObserver, Observer, RunOptions};
use crate::exec::processes::{ProcessesConfig, ProcessesExecutor};
use crate::exec::proto::{PROTOCOL_VERSION, WorkerInit};
use crate::exec::sync::SyncExecutor;
use crate::pipeline::LoadOptions;
use crate::plan::Plan;
use crate::report::{self, PluginReport};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::store::{BlobReader, BlobStore, Digest, StoreError, StoreSpec};
use crate::task::message::Limits;

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
    /// Most tasks in Dask at once (default: the cluster's threads).
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
            for (t, rec) in r.tasks.iter_mut().zip(&self.records.records) {
                if t.worker.is_some() {
                    t.dask_worker = d.lane_workers.get(rec.worker as usize).cloned();
                }
            }
        }
        r
    }

    /// Write the JSON report to `path`, atomically.
    pub fn write_report(&self, path: &Path) -> std::io::Result<()> {
        let r = self.report();
        write_atomic_with(path, |w| serde_json::to_writer_pretty(w, &r).map_err(std::io::Error::other))
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
    /// A Dask cluster connected before the plan was loaded.
    dask: Option<DaskExecutor>,
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
            dask: None,
        }
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
        let spec = self.store.clone().unwrap_or_else(|| StoreSpec::Local(self.plan.base_dir.join(".engine-store")));
        let cache_dir = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let store = spec.open_with_cache(&cache_dir).map_err(SessionError::Store)?;
        let max_task_memory = Limits::max_task_memory(&self.plan);
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig {
                cache_dir: cache_dir.clone(),
                // On Dask this process only compiles plugins; tasks run elsewhere.
                // Counted in tasks, like `engine worker`'s 2: the pool doubles it
                // for each task's forwarding instance (see `runtime::engine_config`).
                max_instances: if dask.is_some() { 2 } else { workers as u32 + 1 },
                max_task_memory,
            })
            .map_err(SessionError::Runtime)?,
        );
        let plugins = self.prepare_plugins(&runtime)?;

        let run_start = Instant::now();
        let run_id = format!(
            "{}-{}",
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            std::process::id()
        );
        let log_dir = self.log_root(&spec).join(&run_id).join("logs");
        let opts = RunOptions {
            fail_fast: self.fail_fast,
            backoff_base: self.backoff_base,
            log_dir: log_dir.clone(),
            interrupt: self.interrupt.clone(),
            limits: Limits::default(),
        };
        let plan = &self.plan;
        let observer = &mut *self.observer;
        let records = match &self.executor {
            ExecutorKind::Dask(_) => {
                let Some(exec) = dask.as_mut() else {
                    return Err(SessionError::Executor { executor: "dask", message: "not connected".into() });
                };
                let init = worker_init(plan, &spec, &cache_dir, max_task_memory);
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
                let mut exec = processes_executor(plan, &spec, workers, cache_dir, max_task_memory)?;
                driver::run_plan(plan, &mut *exec, &*store, &opts, observer, run_start)
            }
        };
        let dask = dask.map(|d| DaskPlacement {
            scheduler: d.cluster().scheduler.clone(),
            lane_workers: d.slots().iter().map(|(worker, _)| worker.clone()).collect(),
        });
        store.sync().map_err(SessionError::Sync)?;
        // `[outputs]` are copied out only when every task succeeded.
        let all_ok = !records.interrupted && records.counts.succeeded == records.counts.total;
        let (written, missing) = if all_ok { write_outputs(plan, &records, &*store) } else { (Vec::new(), Vec::new()) };
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
            dask,
            records,
        })
    }

    /// Per-task logs: inside a directory store, else beside the pipeline (a
    /// shared or remote store is no place for one machine's logs).
    fn log_root(&self, spec: &StoreSpec) -> PathBuf {
        match (&self.log_dir, spec) {
            (Some(dir), _) => dir.clone(),
            (None, StoreSpec::Local(dir)) => dir.join("runs"),
            (None, StoreSpec::File(_) | StoreSpec::S3 { .. }) => self.plan.base_dir.join(".engine-runs"),
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
    /// starts, and make sure each is the module `engine check` read.
    fn prepare_plugins(&mut self, runtime: &Runtime) -> Result<Vec<PluginReport>, SessionError> {
        let mut reports = Vec::with_capacity(self.plan.plugins.len());
        for p in &mut self.plan.plugins {
            let size = fs::metadata(&p.path).map(|m| m.len()).unwrap_or(0);
            (self.on_plugin)(PluginEvent::Preparing { name: &p.name, size });
            let started = Instant::now();
            let loaded = runtime.load(&p.path).map_err(|error| SessionError::Plugin { name: p.name.clone(), error })?;
            let took = started.elapsed();
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
            });
        }
        Ok(reports)
    }
}

fn processes_executor(
    plan: &Plan,
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
        plugins: plan.plugins.iter().map(|p| p.path.clone()).collect(),
        run_start: SystemTime::now(),
        harden: true,
        read_only: mount_sources(plan),
    })
    .map_err(|e| fail(e.to_string()))?;
    Ok(Box::new(exec))
}

/// The `Init` frame every `engine worker` of a Dask run starts with (on
/// whatever machine its Dask worker runs).
fn worker_init(plan: &Plan, spec: &StoreSpec, cache_dir: &Path, max_task_memory: u64) -> WorkerInit {
    WorkerInit {
        protocol: PROTOCOL_VERSION,
        worker: 0,
        store: spec.absolute(),
        cache_dir: fs::canonicalize(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf()),
        max_task_memory,
        plugins: plan.plugins.iter().map(|p| p.path.clone()).collect(),
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
