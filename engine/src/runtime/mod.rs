//! The wasmtime host: one shared engine, the compiled-module cache, the SDK ABI
//! and command tasks, and the sandbox limits.
//!
//! [`Runtime`] is what executors call: [`Runtime::load`] compiles (or loads
//! from the on-disk cache) and prepares a plugin once per digest, and
//! [`Runtime::run_task`] runs one attempt in a fresh `Store` and turns
//! everything the plugin can do into a [`TaskResult`]. The engine is
//! configured once (docs/security.md): pooling allocator with
//! `pagemap_scan` + `keep_resident`, epoch interruption driven by a 10 ms
//! ticker thread (timeouts and cancellation), fuel metering, a resource
//! limiter for memory and tables, a bounded wasm stack, and a fixed set of
//! wasm proposals ([`crate::task::abi::enabled_features`]).
//!
//! Architecture invariant: nothing here knows about pipelines, the scheduler
//! or terminals; a task is a [`TaskMessage`] plus a [`BlobStore`].

mod cache;
mod command;
mod command_vfs;
mod component;
mod failure;
mod fd_limit;
mod limits;
mod log;
mod mounts;
mod poll;
mod sdk;
mod spill;
mod spool;
mod vfs;
mod vfs_calls;
mod watch;
mod workdir;

pub use watch::{MAX_DEPTH, MAX_PATH_BYTES, MAX_SCRATCH_ENTRIES};

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig, Store,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::store::{BlobStore, Digest};
use crate::task::abi::{self as inspect, PluginKind, PluginMeta};
use crate::task::message::{InfraKind, OutputBlob, PluginRef, TaskFailure, TaskMessage, TaskMetrics, TaskResult};
use failure::{Abort, Ended, LimitsSeen, classify};
use limits::TaskLimiter;
use log::{SharedLog, Sink};
use sdk::{Item, SdkState};

/// Hard cap on a pool slot's linear memory (wasm32 cannot address more).
const MAX_SLOT_MEMORY: u64 = crate::task::message::MAX_TASK_MEMORY;
/// Table elements per pool slot.
const TABLE_ELEMENTS: usize = crate::task::abi::MAX_TABLE_ELEMENTS as usize;
/// Max wasm stack (bytes). Worker threads need a native stack of at least 2 MiB.
const MAX_WASM_STACK: usize = 512 << 10;
/// Epoch ticker period: the granularity of timeouts and cancellation.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The engine's own compiled-module cache. Never inside a task-visible dir.
    pub cache_dir: PathBuf,
    /// Pool size: the most tasks alive at once (workers plus slack). Each
    /// task may use two core instances (its module and the forwarding
    /// instance of `poll`), so the pool holds twice this many.
    pub max_instances: u32,
    /// The largest memory limit of any task; the pool slot size (capped at 4 GiB).
    pub max_task_memory: u64,
}

impl RuntimeConfig {
    /// `$XDG_CACHE_HOME/engine`, else `$HOME/.cache/engine`, else
    /// `<temp dir>/engine-cache`.
    pub fn default_cache_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("engine");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".cache").join("engine");
        }
        std::env::temp_dir().join("engine-cache")
    }
}

/// Errors loading a plugin or setting up the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read plugin `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The module is malformed, imports something the engine does not
    /// provide, or is neither an SDK task nor a command.
    #[error("invalid plugin `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot compile plugin `{path}`: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("cannot link plugin `{path}`: {message}")]
    Link { path: PathBuf, message: String },
    #[error("module cache error at `{path}`: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the wasm engine: {message}")]
    Engine { message: String },
}

/// What [`Runtime::load`] reports.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    pub digest: Digest,
    pub kind: PluginKind,
    /// True when no compilation was needed (already loaded, or in the disk cache).
    pub cache_hit: bool,
    pub load_time: Duration,
    pub meta: Option<PluginMeta>,
}

/// Whether [`Runtime::prepare`] may compile a module the cache does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    IfNeeded,
    Never,
}

/// A compiled, linked plugin.
struct Plugin {
    kind: PluginKind,
    meta: Option<PluginMeta>,
    /// argv[0] of command tasks: the file name without `.wasm`.
    name: String,
    code: Code,
}

/// A plugin's compiled code, linked.
enum Code {
    Core {
        pre: InstancePre<TaskState>,
        /// Command tasks: the module linked against plain wasmtime-wasi, for
        /// tasks with mounts or a workdir (host directories, see `command`).
        pre_host: Option<InstancePre<TaskState>>,
        has_initialize: bool,
    },
    /// A component (either kind), linked against WASI 0.2 and the task
    /// world ([`component`]).
    Component(wasmtime::component::InstancePre<TaskState>),
}

impl Plugin {
    /// The linked core module (never asked of a component: the kind decides).
    fn core_pre(&self) -> wasmtime::Result<&InstancePre<TaskState>> {
        match &self.code {
            Code::Core { pre, .. } => Ok(pre),
            Code::Component(_) => Err(wasmtime::Error::msg("internal error: a component has no core module")),
        }
    }
}

/// Per-Store data of one attempt.
pub(crate) struct TaskState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: TaskLimiter,
    pub(crate) log: SharedLog,
    pub(crate) sdk: SdkState,
    /// Command tasks: the live check of `/out`, scratch and the workdir
    /// against their limits.
    pub(crate) out_watch: Option<watch::OutWatch>,
    /// When the attempt times out, and the run's cancel flag: checked by the
    /// interruptible `poll_oneoff` (see `poll`).
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancelled: Arc<AtomicBool>,
    /// The helper instance `poll` asks about clocks and descriptors.
    pub(crate) poll_helper: Option<poll::Helper>,
    /// The descriptor table and virtual tree ([`vfs`]); `None` on the
    /// host-directory path, where wasmtime-wasi owns the descriptors.
    pub(crate) vfs: Option<vfs::Vfs>,
    /// The store `/in` and stdin read from (see the SAFETY notes where it is set).
    pub(crate) vfs_store: Option<&'static dyn BlobStore>,
    /// The host-directory path: open descriptors against `max_open_files`
    /// ([`fd_limit`]).
    pub(crate) host_fds: Option<fd_limit::HostFds>,
}

struct Inner {
    engine: Engine,
    linker: Linker<TaskState>,
    /// Components: WASI 0.2 and the `engine:task/host` interface.
    component_linker: wasmtime::component::Linker<TaskState>,
    /// Plain wasmtime-wasi preopens (command tasks with mounts or a workdir).
    host_linker: Linker<TaskState>,
    cache: cache::ModuleCache,
    plugins: RwLock<HashMap<Digest, Arc<Plugin>>>,
    compile_lock: Mutex<()>,
    cancelled: Arc<AtomicBool>,
    stop_ticker: Arc<AtomicBool>,
    max_memory: u64,
    /// The cache root (`RuntimeConfig::cache_dir`): `modules/` and `mounts/` live under it.
    cache_root: PathBuf,
    unpacked: mounts::Unpacked,
}

/// The wasm task runtime. `Send + Sync`: share one per process.
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.inner.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The wasmtime configuration (see docs/security.md for the reasoning).
fn engine_config(max_instances: u32, max_memory: u64) -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_features(inspect::disabled_features(), false)
        .wasm_features(inspect::enabled_features(), true)
        .wasm_component_model(true)
        // The adapters wasmtime generates between the core modules of a
        // component that have memories of their own use several memories.
        // Plugins' own modules never do: `inspect_bytes` (which runs before
        // anything is compiled) validates them without multi-memory.
        .wasm_multi_memory(true);
    let n = max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // A task that uses exceptions gets a GC heap (for its exception objects),
    // which takes a second memory slot.
    // Each task may also make one small forwarding instance (see `poll`).
    // A component instantiates several core modules (a Rust one about four,
    // with one memory and a few tables; an interpreter more), so the pool
    // holds room for them.
    pool.total_core_instances(16 * n)
        .total_component_instances(n)
        .total_memories(4 * n)
        .total_gc_heaps(n)
        .total_tables(16 * n)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(max_memory as usize)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(1 << 20)
        .pagemap_scan(Enabled::Auto);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

fn us_since(t: Instant, base: Instant) -> u64 {
    t.saturating_duration_since(base).as_micros() as u64
}

/// Deterministic clocks: start at 2000-01-01T00:00:00Z (wall) and 0 (monotonic)
/// and advance by 1 µs on every read.
struct FixedClock {
    base: Duration,
    reads: AtomicU64,
}

impl FixedClock {
    fn tick(&self) -> Duration {
        self.base + Duration::from_micros(self.reads.fetch_add(1, Ordering::Relaxed))
    }
}

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        self.tick()
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.tick().as_nanos() as u64
    }
}

/// WASI context shared by both kinds: stderr (and stdout unless redirected)
/// to the log; deterministic clocks and random when asked.
fn wasi_builder(msg: &TaskMessage, log: &SharedLog) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.allow_blocking_current_thread(true).stdout(Sink(log.clone())).stderr(Sink(log.clone()));
    if msg.deterministic {
        let d = Digest::of(msg.name.as_bytes()).0;
        let seed = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        b.wall_clock(FixedClock { base: Duration::from_secs(946_684_800), reads: AtomicU64::new(0) })
            .monotonic_clock(FixedClock { base: Duration::ZERO, reads: AtomicU64::new(0) })
            .secure_random(rand::rngs::StdRng::seed_from_u64(seed))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15))
            .insecure_random_seed(u128::from(seed));
    }
    b
}

/// The host functions every task is linked against: WASI preview 1 (its
/// descriptor and path calls, and `poll_oneoff`, over the virtual
/// filesystem, [`vfs_calls`]) and the `engine` ABI ([`sdk`]).
fn task_linker(engine: &Engine) -> wasmtime::Result<Linker<TaskState>> {
    let mut linker: Linker<TaskState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut TaskState| &mut s.wasi)?;
    sdk::add_to_linker(&mut linker)?;
    vfs_calls::add_to_linker(&mut linker)?;
    limits::add_random_get(&mut linker)?;
    limits::add_proc_exit(&mut linker)?;
    // Last: `poll` asks the descriptor calls linked so far (the virtual
    // tree's) about descriptors, and serves every clock form exactly.
    poll::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The host-directory linker: all of WASI preview 1 from wasmtime-wasi (over
/// real preopened directories, its open descriptors counted by
/// [`fd_limit`]), the `engine` ABI and the interruptible `poll_oneoff`
/// ([`poll`]).
fn host_linker(engine: &Engine) -> wasmtime::Result<Linker<TaskState>> {
    let mut linker: Linker<TaskState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut TaskState| &mut s.wasi)?;
    fd_limit::add_to_linker(&mut linker)?;
    sdk::add_to_linker(&mut linker)?;
    limits::add_random_get(&mut linker)?;
    limits::add_proc_exit(&mut linker)?;
    poll::add_to_linker(&mut linker)?;
    Ok(linker)
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let max_memory = cfg.max_task_memory.clamp(64 << 10, MAX_SLOT_MEMORY);
        let engine = Engine::new(&engine_config(cfg.max_instances, max_memory))
            .map_err(|e| RuntimeError::Engine { message: failure::error_chain(&e) })?;
        let linker = task_linker(&engine).map_err(|e| RuntimeError::Engine { message: failure::error_chain(&e) })?;
        let host_linker =
            host_linker(&engine).map_err(|e| RuntimeError::Engine { message: failure::error_chain(&e) })?;
        let component_linker =
            component::linker(&engine).map_err(|e| RuntimeError::Engine { message: failure::error_chain(&e) })?;
        let cache = cache::ModuleCache::new(&cfg.cache_dir, &engine)
            .map_err(|source| RuntimeError::Cache { path: cfg.cache_dir.clone(), source })?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("engine-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine { message: format!("cannot start the epoch ticker thread: {e}") })?;
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                component_linker,
                host_linker,
                cache,
                plugins: RwLock::new(HashMap::new()),
                compile_lock: Mutex::new(()),
                cancelled: Arc::new(AtomicBool::new(false)),
                stop_ticker,
                max_memory,
                cache_root: cfg.cache_dir.clone(),
                unpacked: mounts::Unpacked::default(),
            }),
        })
    }

    /// The directory holding compiled modules.
    pub fn cache_dir(&self) -> &Path {
        self.inner.cache.dir()
    }

    /// Compile (or load from the on-disk cache) and prepare (Linker +
    /// InstancePre) a plugin; idempotent per digest, thread-safe. Returns its
    /// digest, kind, whether the cache was hit and how long it took.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, RuntimeError> {
        self.load_with(path, Compile::IfNeeded)?.ok_or_else(|| RuntimeError::Compile {
            path: path.to_owned(),
            message: "the plugin was not compiled".into(),
        })
    }

    /// Like [`Runtime::load`], but never compiles: `Ok(None)` when the plugin
    /// is neither loaded nor in the compiled-module cache (the session then
    /// compiles it in a child process it can stop, `exec::compile`).
    pub fn load_cached(&self, path: &Path) -> Result<Option<LoadedPlugin>, RuntimeError> {
        self.load_with(path, Compile::Never)
    }

    fn load_with(&self, path: &Path, compile: Compile) -> Result<Option<LoadedPlugin>, RuntimeError> {
        let t0 = Instant::now();
        let bytes =
            inspect::read_module(path).map_err(|source| RuntimeError::Read { path: path.to_owned(), source })?;
        let digest = Digest::of(&bytes);
        let Some((plugin, cache_hit)) = self.prepare(path, &bytes, digest, compile)? else { return Ok(None) };
        Ok(Some(LoadedPlugin {
            digest,
            kind: plugin.kind,
            cache_hit,
            load_time: t0.elapsed(),
            meta: plugin.meta.clone(),
        }))
    }

    fn loaded(&self, digest: &Digest) -> Option<Arc<Plugin>> {
        self.inner.plugins.read().unwrap_or_else(|e| e.into_inner()).get(digest).cloned()
    }

    fn prepare(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: Digest,
        compile: Compile,
    ) -> Result<Option<(Arc<Plugin>, bool)>, RuntimeError> {
        if let Some(p) = self.loaded(&digest) {
            return Ok(Some((p, true)));
        }
        let _guard = self.inner.compile_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = self.loaded(&digest) {
            return Ok(Some((p, true)));
        }
        let info = inspect::inspect_bytes(bytes)
            .map_err(|message| RuntimeError::Invalid { path: path.to_owned(), message })?;
        let inner = &self.inner;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".wasm").to_string())
            .unwrap_or_else(|| "plugin".into());
        if matches!(info.kind, PluginKind::ComponentTask | PluginKind::ComponentCommand) {
            let Some((pre, hit)) = component::prepare(inner, path, bytes, &digest, compile == Compile::IfNeeded)?
            else {
                return Ok(None);
            };
            let plugin = Arc::new(Plugin { kind: info.kind, meta: info.meta, name, code: Code::Component(pre) });
            inner.plugins.write().unwrap_or_else(|e| e.into_inner()).insert(digest, plugin.clone());
            return Ok(Some((plugin, hit)));
        }
        let (module, hit) = match inner.cache.load(&inner.engine, &digest) {
            Some(m) => (m, true),
            None if compile == Compile::Never => return Ok(None),
            None => {
                let m = Module::new(&inner.engine, bytes)
                    .map_err(|e| RuntimeError::Compile { path: path.to_owned(), message: failure::error_chain(&e) })?;
                inner
                    .cache
                    .store(&digest, &m)
                    .map_err(|source| RuntimeError::Cache { path: inner.cache.path_for(&digest), source })?;
                (m, false)
            }
        };
        let pre = inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| RuntimeError::Link { path: path.to_owned(), message: failure::error_chain(&e) })?;
        let has_initialize = module.get_export("_initialize").is_some();
        let pre_host = match info.kind {
            PluginKind::Command => Some(
                inner
                    .host_linker
                    .instantiate_pre(&module)
                    .map_err(|e| RuntimeError::Link { path: path.to_owned(), message: failure::error_chain(&e) })?,
            ),
            _ => None,
        };
        let code = Code::Core { pre, pre_host, has_initialize };
        let plugin = Arc::new(Plugin { kind: info.kind, meta: info.meta, name, code });
        inner.plugins.write().unwrap_or_else(|e| e.into_inner()).insert(digest, plugin.clone());
        Ok(Some((plugin, hit)))
    }

    /// The prepared plugin a message names, loading it from its path if needed.
    fn plugin_for(&self, r: &PluginRef) -> Result<Arc<Plugin>, TaskFailure> {
        if let Some(p) = self.loaded(&r.digest) {
            return Ok(p);
        }
        let bytes = inspect::read_module(&r.path).map_err(|e| {
            TaskFailure::infra(InfraKind::PluginLoad, format!("cannot read plugin `{}`: {e}", r.path.display()))
        })?;
        let digest = Digest::of(&bytes);
        if digest != r.digest {
            return Err(TaskFailure::infra(
                InfraKind::PluginLoad,
                format!(
                    "plugin `{}` changed since the run was planned (sha256 {} instead of {})",
                    r.path.display(),
                    digest,
                    r.digest
                ),
            ));
        }
        match self.prepare(&r.path, &bytes, digest, Compile::IfNeeded) {
            Ok(Some((p, _))) => Ok(p),
            Ok(None) => Err(TaskFailure::infra(InfraKind::PluginLoad, "the plugin was not compiled")),
            Err(e) => Err(TaskFailure::infra(InfraKind::PluginLoad, e.to_string())),
        }
    }

    /// Make every running and future task end with `TaskFailure::Cancelled`
    /// at the next epoch tick.
    pub fn cancel_all(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
    }

    /// Run one attempt. Never panics on anything the plugin does; every
    /// failure is a `TaskFailure`.
    pub fn run_task(&self, msg: &TaskMessage, store: &dyn BlobStore, worker: u32, run_start: Instant) -> TaskResult {
        let start = Instant::now();
        let log = SharedLog::new(msg.limits.max_log_bytes);
        let mut metrics = TaskMetrics { worker, start_us: us_since(start, run_start), ..TaskMetrics::default() };
        let outcome =
            catch_unwind(AssertUnwindSafe(|| self.attempt(msg, store, &log, &mut metrics))).unwrap_or_else(|_| {
                Err(TaskFailure::infra(
                    InfraKind::HostPanic,
                    "internal error: the runtime panicked while running the task (this is a bug)",
                ))
            });
        metrics.end_us = us_since(Instant::now(), run_start);
        TaskResult { task: msg.task, attempt: msg.attempt, outcome, log: log.take(), metrics }
    }

    fn attempt(
        &self,
        msg: &TaskMessage,
        store: &dyn BlobStore,
        log: &SharedLog,
        metrics: &mut TaskMetrics,
    ) -> Result<Vec<OutputBlob>, TaskFailure> {
        if self.inner.cancelled.load(Ordering::SeqCst) {
            return Err(TaskFailure::Cancelled);
        }
        let plugin = self.plugin_for(&msg.plugin)?;
        match plugin.kind {
            PluginKind::Sdk => self.run_sdk(&plugin, msg, store, log, metrics),
            PluginKind::Command => {
                let fs = msg.command.fs.as_deref();
                if fs.is_some_and(|f| !f.mounts.is_empty() || f.workdir.is_some()) {
                    command::run(self, &plugin, msg, store, log, metrics)
                } else {
                    command_vfs::run(self, &plugin, msg, store, log, metrics)
                }
            }
            PluginKind::ComponentTask => self.run_sdk(&plugin, msg, store, log, metrics),
            // Always on host directories: wasmtime-wasi's WASI 0.2 serves them.
            PluginKind::ComponentCommand => command::run(self, &plugin, msg, store, log, metrics),
        }
    }

    /// A fresh Store with the task's limits, fuel and epoch deadline set.
    fn new_store(
        &self,
        msg: &TaskMessage,
        wasi: WasiP1Ctx,
        log: &SharedLog,
        sdk: SdkState,
    ) -> (Store<TaskState>, LimitsSeen) {
        let memory = msg.limits.memory.min(self.inner.max_memory);
        let deadline = msg.limits.timeout.map(|t| Instant::now() + t);
        let cancelled = self.inner.cancelled.clone();
        let state = TaskState {
            wasi,
            limiter: TaskLimiter::new(memory, TABLE_ELEMENTS),
            log: log.clone(),
            sdk,
            out_watch: None,
            deadline,
            cancelled: cancelled.clone(),
            poll_helper: None,
            vfs: None,
            vfs_store: None,
            host_fds: None,
        };
        let mut st = Store::new(&self.inner.engine, state);
        st.limiter(|s| &mut s.limiter);
        // Fuel metering is always compiled in; without a limit the tank is
        // just very large, so the consumed amount is still reported.
        let _ = st.set_fuel(msg.limits.fuel.unwrap_or(u64::MAX));
        st.epoch_deadline_callback(move |mut cx| {
            if cancelled.load(Ordering::Relaxed) {
                return Err(wasmtime::Error::new(Abort::Cancelled));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(wasmtime::Error::new(Abort::Timeout));
            }
            if let Some(watch) = cx.data_mut().out_watch.as_mut() {
                watch.check().map_err(wasmtime::Error::new)?;
            }
            Ok(UpdateDeadline::Continue(1))
        });
        st.set_epoch_deadline(1);
        (st, LimitsSeen { memory, timeout: msg.limits.timeout, fuel: msg.limits.fuel })
    }

    /// Peak memory and fuel of the attempt that ended with `error` (if it
    /// failed). Fuel is left out when the attempt was stopped inside wasm
    /// code ([`failure::fuel_counted`]): wasmtime had not stored the count.
    fn record_usage(
        st: &Store<TaskState>,
        msg: &TaskMessage,
        metrics: &mut TaskMetrics,
        error: Option<&wasmtime::Error>,
    ) {
        metrics.peak_memory = st.data().limiter.peak as u64;
        metrics.measured = true;
        if error.is_some_and(|e| !failure::fuel_counted(e)) {
            metrics.fuel_consumed = None;
        } else if let Ok(left) = st.get_fuel() {
            metrics.fuel_consumed =
                Some(msg.limits.fuel.unwrap_or(u64::MAX) - left.min(msg.limits.fuel.unwrap_or(u64::MAX)));
        }
    }

    fn run_sdk(
        &self,
        plugin: &Plugin,
        msg: &TaskMessage,
        store: &dyn BlobStore,
        log: &SharedLog,
        metrics: &mut TaskMetrics,
    ) -> Result<Vec<OutputBlob>, TaskFailure> {
        let mut items = Vec::new();
        for input in &msg.inputs {
            for (i, blob) in input.items.iter().enumerate() {
                let index = if input.list { i32::try_from(i).unwrap_or(i32::MAX) } else { -1 };
                items.push(Item { name: input.name.clone(), index, blob: *blob });
            }
        }
        // SAFETY: the host functions need the blob store while the guest runs,
        // but wasmtime requires `'static` store data. The erased reference is
        // only reachable from `st` (the wasmtime Store), which is dropped
        // before this function returns (the output spool taken out of it
        // holds no reference: it is given `store` to finish), so nothing uses
        // it after `store`'s borrow ends.
        let store_static: &'static dyn BlobStore =
            unsafe { std::mem::transmute::<&dyn BlobStore, &'static dyn BlobStore>(store) };
        let sdk = SdkState {
            items,
            params: msg.params.as_bytes().to_vec(),
            attempt: msg.attempt,
            max_output_bytes: msg.limits.max_output_bytes,
            max_outputs: msg.limits.max_outputs,
            store: Some(store_static),
            ..SdkState::default()
        };
        let wasi = wasi_builder(msg, log).build_p1();
        let (mut st, seen) = self.new_store(msg, wasi, log, sdk);
        st.data_mut().vfs = Some(vfs::Vfs::stdio(msg.limits.max_open_files, msg.deterministic));

        let result = match &plugin.code {
            Code::Core { pre, has_initialize, .. } => (|| -> wasmtime::Result<i32> {
                let instance = pre.instantiate(&mut st)?;
                let memory = instance.get_memory(&mut st, "memory");
                st.data_mut().sdk.memory = memory;
                if *has_initialize {
                    let init = instance.get_typed_func::<(), ()>(&mut st, "_initialize")?;
                    init.call(&mut st, ())?;
                }
                let run = instance.get_typed_func::<(), i32>(&mut st, "run")?;
                run.call(&mut st, ())
            })(),
            Code::Component(pre) => component::run_task(&mut st, pre),
        };
        Self::record_usage(&st, msg, metrics, result.as_ref().err());
        let error = st.data_mut().sdk.error.take();
        let outputs = std::mem::take(&mut st.data_mut().sdk.outputs);
        drop(st);

        let failure = match result {
            Ok(0) => None,
            Ok(code) => Some(TaskFailure::Error { message: format!("run returned {code}") }),
            Err(e) => match classify(&e, &seen) {
                Ended::Exit(0) => None,
                Ended::Exit(code) => Some(TaskFailure::Error { message: format!("exited with code {code}") }),
                Ended::Failed(f) => Some(explain_trap(log, &e, f)),
            },
        };
        // An `error` call explains a non-zero return or a trap better than
        // the trap itself; resource limits, timeouts and cancellation win.
        let failure = match (failure, error) {
            (None, Some(message)) => Some(TaskFailure::Error { message }),
            (Some(TaskFailure::Trap { .. } | TaskFailure::Error { .. }), Some(message)) => {
                Some(TaskFailure::Error { message })
            }
            (f, _) => f,
        };
        if let Some(f) = failure {
            return Err(f); // `outputs` dropped: nothing is published
        }
        let stored = outputs.finish(store).map_err(|(name, e)| {
            TaskFailure::infra(InfraKind::Storage, format!("cannot store output `{name}`: {e}"))
        })?;
        Ok(stored.into_iter().map(|(name, blob)| OutputBlob { name, blob }).collect())
    }
}

/// For a trap: the failure with the guest's Rust panic message, if its log
/// shows one (docs/abi.md, "Failures"), and the wasm backtrace appended to the
/// task log (with function names when the module has a `name` section).
fn explain_trap(log: &SharedLog, err: &wasmtime::Error, failure: TaskFailure) -> TaskFailure {
    if !matches!(failure, TaskFailure::Trap { .. }) {
        return failure;
    }
    let mut log = log.lock();
    let failure = match log.panic_message() {
        Some(message) => TaskFailure::Trap { message },
        None => failure,
    };
    if let Some(bt) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
        let text = bt.to_string();
        if !text.is_empty() {
            log.append(format!("[trap] {text}\n").as_bytes());
        }
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The functions `linker` defines in `module`, as `name` → `(params) -> results`
    /// written like `engine inspect` writes signatures, sorted by name.
    fn linked(linker: &Linker<TaskState>, module: &str) -> Vec<(String, String)> {
        let engine = linker.engine().clone();
        let state = TaskState {
            wasi: WasiCtxBuilder::new().build_p1(),
            limiter: TaskLimiter::new(1 << 20, 10),
            log: SharedLog::new(10),
            sdk: SdkState::default(),
            out_watch: None,
            deadline: None,
            cancelled: Arc::new(AtomicBool::new(false)),
            poll_helper: None,
            vfs: None,
            vfs_store: None,
            host_fds: None,
        };
        let mut store = Store::new(&engine, state);
        let defined: Vec<(String, wasmtime::Extern)> =
            linker.iter(&mut store).filter(|(m, _, _)| *m == module).map(|(_, n, e)| (n.to_string(), e)).collect();
        let list =
            |v: &mut dyn Iterator<Item = wasmtime::ValType>| v.map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
        let mut out: Vec<(String, String)> = defined
            .into_iter()
            .map(|(name, ext)| {
                let sig = match ext.ty(&store) {
                    wasmtime::ExternType::Func(f) => {
                        format!("({}) -> ({})", list(&mut f.params()), list(&mut f.results()))
                    }
                    other => format!("not a function: {other:?}"),
                };
                (name, sig)
            })
            .collect();
        out.sort();
        out
    }

    /// [`inspect::ABI_FUNCTIONS`] written like [`linked`], sorted by name.
    fn abi_table(table: &[(&str, &[wasmparser::ValType], &[wasmparser::ValType])]) -> Vec<(String, String)> {
        let list = |v: &[wasmparser::ValType]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
        let mut out: Vec<(String, String)> =
            table.iter().map(|(n, p, r)| (n.to_string(), format!("({}) -> ({})", list(p), list(r)))).collect();
        out.sort();
        out
    }

    /// What differs between the functions linked and those listed, one line each.
    fn differences(linked: &[(String, String)], listed: &[(String, String)]) -> Vec<String> {
        let mut out = Vec::new();
        for (name, sig) in linked {
            match listed.iter().find(|(n, _)| n == name) {
                None => out.push(format!("`{name}` {sig} is linked but not listed")),
                Some((_, s)) if s != sig => out.push(format!("`{name}` is linked as {sig} but listed as {s}")),
                Some(_) => {}
            }
        }
        for (name, sig) in listed {
            if !linked.iter().any(|(n, _)| n == name) {
                out.push(format!("`{name}` {sig} is listed but not linked"));
            }
        }
        out
    }

    #[test]
    fn the_wasi_p1_function_list_is_exactly_what_wasmtime_links() {
        let linker = task_linker(&Engine::default()).unwrap();
        let linked: Vec<String> = linked(&linker, inspect::WASI_MODULE).into_iter().map(|(n, _)| n).collect();
        let mut listed: Vec<&str> = inspect::WASI_P1_FUNCTIONS.to_vec();
        listed.sort();
        assert_eq!(linked, listed);
    }

    #[test]
    fn the_abi_function_table_is_exactly_what_the_engine_module_links() {
        let linker = task_linker(&Engine::default()).unwrap();
        let linked = linked(&linker, inspect::ENGINE_MODULE);
        assert_eq!(linked.len(), inspect::ABI_FUNCTIONS.len(), "{linked:?}");
        let diff = differences(&linked, &abi_table(inspect::ABI_FUNCTIONS));
        assert!(diff.is_empty(), "engine module vs task::abi::ABI_FUNCTIONS:\n{}", diff.join("\n"));
    }

    #[test]
    fn the_abi_table_check_sees_an_extra_a_missing_and_a_mistyped_function() {
        // The check itself must be able to fail.
        use wasmparser::ValType::{I32, I64};
        let mut linker = task_linker(&Engine::default()).unwrap();
        linker.func_wrap(inspect::ENGINE_MODULE, "extra", |_: i64| -> i32 { 0 }).unwrap();
        let mut table: Vec<(&str, &[wasmparser::ValType], &[wasmparser::ValType])> =
            inspect::ABI_FUNCTIONS.iter().filter(|(n, _, _)| *n != "attempt").copied().collect();
        for entry in &mut table {
            if entry.0 == "input_len" {
                entry.2 = &[I32];
            }
        }
        table.push(("gone", &[I64], &[]));
        assert_eq!(
            differences(&linked(&linker, inspect::ENGINE_MODULE), &abi_table(&table)),
            [
                "`attempt` () -> (i32) is linked but not listed",
                "`extra` (i64) -> (i32) is linked but not listed",
                "`input_len` is linked as (i32) -> (i64) but listed as (i32) -> (i32)",
                "`gone` (i64) -> () is listed but not linked",
            ]
        );
    }
}
