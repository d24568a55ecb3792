//! The `dask` executor: tasks run on an existing Dask cluster, in the same
//! `engine worker` processes as `--executor processes`, while this process
//! keeps every decision (what runs, retries, skips, fail-fast).
//!
//! A Python bridge (`python -m engine_dask.bridge`, from `python/engine_dask`)
//! holds the Dask `Client`. This side speaks frames to it on its stdio: a u32
//! LE total length, a u32 LE header length, a JSON header ([`ToBridge`],
//! [`FromBridge`]) and an opaque payload, which is always a whole frame of the
//! worker protocol ([`super::proto`]): the `Init` frame, one `Run` frame per
//! task, and the `Result` frame coming back. Python never decodes them.
//!
//! # Lanes and resources
//!
//! The executor offers W lanes (W = `--dask-window`, or the cluster's
//! threads) and Dask picks the worker. A lane holds one task, so at most W
//! tasks are in Dask at once and the core's priority order holds. Without
//! `--dask-window`, while recent tasks are short (their mean under
//! [`SHORT_TASK`]) a lane holds up to [`QUEUE_DEPTH`]: a task then costs less
//! than the round trip engine → bridge → scheduler → worker and back, and with
//! one task per lane every Dask thread would idle for that round trip between
//! tasks (see docs/performance.md, "`--executor dask` vs Dask's own API"). The ledger counts a lane's queued tasks as the
//! largest of their requests (see "Dispatch policy" in `sched`); Dask still
//! runs at most a worker's threads and declared resources at once. The core's ledger gets
//! the cluster totals as its capacity ([`Cluster::capacity`]); each future
//! carries the task's `gpu` and custom amounts, and `cpu`/`memory` only when
//! the workers declare them (a request for a resource no worker declares would
//! stay pending forever). [`Cluster::check_fit`] refuses, before anything
//! runs, a task that fits on no single worker.
//!
//! # Attempts and lost workers
//!
//! Each attempt is one future with `retries=0`, `pure=False` and its own key
//! (`TASK-RUN-aATTEMPT`). When a Dask worker dies mid-task, Dask runs the key
//! again elsewhere by itself; the bridge reports the lost execution, which
//! becomes a [`Completion::Lost`] (a `worker_lost` slice in the trace, not an
//! attempt). After Dask's own `allowed-failures` the future fails with
//! `KilledWorker`, and a dead `engine worker` child with `EngineWorkerLost`:
//! both come back as `TaskFailure::WorkerLost`, as under `processes`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::{Deserialize, Serialize};

use super::proto::{FromWorker, ToWorker, WorkerInit, decode_frame, encode_frame};
use super::{Completion, Executor};
use crate::plan::{Plan, Resources, TaskId};
use crate::task::message::{DEFAULT_TASK_MEMORY, InfraKind, TaskFailure, TaskMessage, TaskMetrics, TaskResult};

/// Version of the bridge protocol (`engine_dask.BRIDGE_PROTOCOL`).
pub const BRIDGE_PROTOCOL: u32 = 1;
/// The `engine_dask` release this engine ships with (and asks for in errors).
pub const ENGINE_DASK_VERSION: &str = "0.1.0";
/// Most tasks one lane holds in Dask at once, while tasks are short.
pub const QUEUE_DEPTH: usize = 16;
/// Tasks whose recent mean duration is under this are queued [`QUEUE_DEPTH`] deep.
pub const SHORT_TASK: Duration = Duration::from_millis(100);
/// Largest bridge frame accepted.
const MAX_BRIDGE_FRAME: usize = 64 << 20;

pub struct DaskConfig {
    /// The Python that runs the bridge.
    pub python: PathBuf,
    /// `tcp://HOST:PORT`, `local:N`, or `None` for a local cluster.
    pub scheduler: Option<String>,
    pub connect_timeout: Duration,
    /// Most tasks in Dask at once (default: the cluster's threads, with
    /// [`QUEUE_DEPTH`] per thread while tasks are short).
    pub window: Option<usize>,
    /// This binary: what workers of a local cluster run.
    pub engine_exe: PathBuf,
}

/// One Dask worker as the scheduler describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaskWorker {
    pub name: String,
    pub address: String,
    pub host: String,
    pub nthreads: u32,
    /// Bytes; 0 when unlimited.
    pub memory_limit: u64,
    /// What the worker declares with `--resources`.
    pub resources: BTreeMap<String, f64>,
}

/// Headers the engine sends.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ToBridge<'a> {
    Connect { scheduler: Option<&'a str>, timeout: f64, engine: String, protocol: u32 },
    Prepare { run_id: &'a str },
    Submit { tasks: Vec<SubmitTask> },
    Cancel {},
    Shutdown {},
}

#[derive(Debug, Serialize)]
struct SubmitTask {
    key: String,
    resources: BTreeMap<String, f64>,
    priority: i64,
    len: usize,
}

/// `what`, followed by the bridge's last stderr lines if there are any.
fn with_tail(what: &str, tail: &str) -> String {
    if tail.is_empty() { what.to_string() } else { format!("{what}; its last lines:\n{tail}") }
}

/// Headers the bridge sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum FromBridge {
    Hello { engine_dask: String, distributed: String, protocol: u32, scheduler: String },
    Cluster { workers: Vec<DaskWorker> },
    Started { key: String, worker: String, slot: u32 },
    Done { key: String, worker: String, slot: u32 },
    Lost { key: String, why: String, message: String },
    LostExecution { key: String, worker: String },
    Fatal { message: String },
}

/// What the reader thread passes on.
enum Incoming {
    Frame(FromBridge, Vec<u8>),
    /// The bridge's stdout ended or carried garbage.
    Gone(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DaskError {
    #[error("cannot start the Dask bridge with {python}: {source}")]
    Spawn { python: String, source: std::io::Error },
    #[error("{0}")]
    Bridge(String),
    #[error(
        "{python} cannot import engine_dask: install engine-dask=={ENGINE_DASK_VERSION} into it \
         (pip install engine-dask=={ENGINE_DASK_VERSION}), or name another Python with --dask-python \
         or ENGINE_DASK_PYTHON"
    )]
    NoPackage { python: String },
    #[error("{0}")]
    NoWorkerFits(String),
}

/// The cluster as seen when the run starts.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub scheduler: String,
    pub distributed: String,
    /// The bridge's engine_dask version.
    pub engine_dask: String,
    pub workers: Vec<DaskWorker>,
}

impl Cluster {
    fn declares(&self, kind: &str) -> bool {
        self.workers.iter().any(|w| w.resources.contains_key(kind))
    }

    /// What one worker offers, in the plan's units. `cpu` and `memory` are
    /// the declared amounts when any worker declares them, else its threads
    /// and memory limit (0 = unlimited).
    pub fn offers(&self, w: &DaskWorker) -> Resources {
        let declared = |k: &str| w.resources.get(k).copied().unwrap_or(0.0);
        let cpu_milli =
            if self.declares("cpu") { (declared("cpu") * 1000.0) as u64 } else { u64::from(w.nthreads) * 1000 };
        let memory = if self.declares("memory") {
            declared("memory") as u64
        } else if w.memory_limit == 0 {
            crate::pipeline::resources::MAX_MEMORY
        } else {
            w.memory_limit
        };
        let custom = w
            .resources
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "cpu" | "memory" | "gpu"))
            .map(|(k, v)| (k.clone(), (v * 1000.0) as u64))
            .collect();
        Resources { cpu_milli, memory, gpu: declared("gpu") as u64, custom }
    }

    /// The capacity of the core's ledger: the sum over workers.
    pub fn capacity(&self) -> Resources {
        let mut total = Resources::default();
        for w in &self.workers {
            let o = self.offers(w);
            total.cpu_milli += o.cpu_milli;
            total.memory = total.memory.saturating_add(o.memory);
            total.gpu += o.gpu;
            for (k, v) in o.custom {
                *total.custom.entry(k).or_insert(0) += v;
            }
        }
        total
    }

    /// Total threads.
    pub fn threads(&self) -> usize {
        self.workers.iter().map(|w| w.nthreads as usize).sum()
    }

    /// A capacity list for loading the pipeline that no request exceeds on
    /// the built-in kinds and the workers' custom ones: the real check is
    /// [`Cluster::check_fit`], per worker.
    pub fn load_capacity(&self) -> String {
        let mut s = String::from("cpu=1000000,memory=16TiB,gpu=1000000");
        let mut names: Vec<&String> = self.workers.iter().flat_map(|w| w.resources.keys()).collect();
        names.sort();
        names.dedup();
        for k in names {
            if !matches!(k.as_str(), "cpu" | "memory" | "gpu") {
                s.push_str(&format!(",{k}=1000000"));
            }
        }
        s
    }

    /// Every task must fit on one worker: Dask would leave it pending forever.
    pub fn check_fit(&self, plan: &Plan) -> Result<(), DaskError> {
        let offers: Vec<Resources> = self.workers.iter().map(|w| self.offers(w)).collect();
        let mut max = Resources::default();
        for o in &offers {
            max.cpu_milli = max.cpu_milli.max(o.cpu_milli);
            max.memory = max.memory.max(o.memory);
            max.gpu = max.gpu.max(o.gpu);
            for (k, v) in &o.custom {
                let e = max.custom.entry(k.clone()).or_insert(0);
                *e = (*e).max(*v);
            }
        }
        for t in &plan.tasks {
            let req = request(&t.resources);
            if offers.iter().any(|o| req.fits_in(o)) {
                continue;
            }
            let what = match req.first_excess(&max) {
                Some((what, asked, _)) => format!("{what} = {asked}"),
                None => crate::pipeline::resources::format_resources(&req),
            };
            let list: Vec<String> = self
                .workers
                .iter()
                .zip(&offers)
                .map(|(w, o)| {
                    format!("{} ({}): {}", w.name, w.address, crate::pipeline::resources::format_resources(o))
                })
                .collect();
            return Err(DaskError::NoWorkerFits(format!(
                "task `{}` requests {what}, which no single Dask worker has (Dask would leave it pending forever); \
                 the workers have: {}",
                t.id,
                list.join("; ")
            )));
        }
        Ok(())
    }

    /// The `resources=` of a task's future.
    fn dask_resources(&self, r: &Resources) -> BTreeMap<String, f64> {
        let r = request(r);
        let mut m = BTreeMap::new();
        if r.gpu > 0 {
            m.insert("gpu".to_string(), r.gpu as f64);
        }
        for (k, v) in &r.custom {
            if *v > 0 {
                m.insert(k.clone(), *v as f64 / 1000.0);
            }
        }
        if self.declares("cpu") && r.cpu_milli > 0 {
            m.insert("cpu".to_string(), r.cpu_milli as f64 / 1000.0);
        }
        if self.declares("memory") {
            m.insert("memory".to_string(), r.memory as f64);
        }
        m
    }
}

/// A task's request with the default memory filled in.
fn request(r: &Resources) -> Resources {
    let mut r = r.clone();
    if r.memory == 0 {
        r.memory = DEFAULT_TASK_MEMORY;
    }
    r
}

/// An attempt in Dask.
struct InFlight {
    task: TaskId,
    attempt: u32,
    lane: usize,
    submitted_us: u64,
    /// When and where (worker name, thread slot) Dask last started it.
    started: Option<(u64, String, u32)>,
}

pub struct DaskExecutor {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Incoming>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The thread collecting `stderr_tail`; it ends when the bridge's stderr closes.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    cluster: Cluster,
    window: usize,
    run_id: String,
    run_start: Instant,
    /// Per lane: how many attempts it holds.
    lanes: Vec<usize>,
    /// Whether lanes queue short tasks (no `--dask-window` given).
    queue: bool,
    /// Running mean of recent task durations on the workers (µs); `None`
    /// before the first result.
    mean_us: Option<f64>,
    flights: HashMap<String, InFlight>,
    /// Submits not yet written: headers and frames.
    pending: Vec<SubmitTask>,
    pending_frames: Vec<u8>,
    done: VecDeque<Completion>,
    /// Dask worker name and thread slot of each trace lane.
    slots: Vec<(String, u32)>,
    dead: Option<String>,
    /// Each task's priority, by task id (Dask runs higher first too).
    priorities: Vec<i64>,
    /// Each task's resources for Dask.
    resources: Vec<BTreeMap<String, f64>>,
}

impl DaskExecutor {
    /// Start the bridge and connect to the cluster: returns once the
    /// cluster is known, or with why it cannot be used.
    pub fn connect(cfg: &DaskConfig) -> Result<Self, DaskError> {
        use std::os::unix::process::CommandExt;
        let python = cfg.python.display().to_string();
        let mut child = Command::new(&cfg.python)
            .args(["-m", "engine_dask.bridge"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: Ctrl-C in the terminal is the engine's
            // to handle (it tells the bridge to cancel).
            .process_group(0)
            .spawn()
            .map_err(|e| DaskError::Spawn { python: python.clone(), source: e })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DaskError::Bridge("the Dask bridge has no stdio pipes".into()));
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_reader = {
            let tail = stderr_tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == 20 {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            })
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("engine-dask-bridge".into())
            .spawn(move || read_bridge(stdout, tx))
            .map_err(|e| DaskError::Spawn { python: python.clone(), source: e })?;

        let hello = ToBridge::Connect {
            scheduler: cfg.scheduler.as_deref(),
            timeout: cfg.connect_timeout.as_secs_f64(),
            engine: cfg.engine_exe.display().to_string(),
            protocol: BRIDGE_PROTOCOL,
        };
        let mut buf = Vec::new();
        bridge_frame(&mut buf, &hello, &[]);
        let _ = stdin.write_all(&buf).and_then(|_| stdin.flush());

        let mut ex = DaskExecutor {
            child,
            stdin,
            rx,
            stderr_tail,
            stderr_reader: Some(stderr_reader),
            cluster: Cluster::default(),
            window: 0,
            run_id: String::new(),
            run_start: Instant::now(),
            lanes: Vec::new(),
            queue: cfg.window.is_none(),
            mean_us: None,
            flights: HashMap::new(),
            pending: Vec::new(),
            pending_frames: Vec::new(),
            done: VecDeque::new(),
            slots: Vec::new(),
            dead: None,
            priorities: Vec::new(),
            resources: Vec::new(),
        };
        // Python and distributed take a few seconds to import on a busy machine.
        let deadline = Instant::now() + cfg.connect_timeout + Duration::from_secs(60);
        let mut hello_seen = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match ex.rx.recv_timeout(left) {
                Ok(ev) => ev,
                Err(_) => {
                    // Still running: give the stderr reader a moment to catch the last lines.
                    std::thread::sleep(Duration::from_millis(50));
                    let tail = ex.tail();
                    return Err(DaskError::Bridge(with_tail("the Dask bridge did not answer in time", &tail)));
                }
            };
            match ev {
                Incoming::Frame(FromBridge::Hello { protocol, scheduler, distributed, engine_dask }, _) => {
                    if protocol != BRIDGE_PROTOCOL {
                        return Err(DaskError::Bridge(format!(
                            "engine_dask speaks bridge protocol {protocol}, this engine {BRIDGE_PROTOCOL}: \
                             install engine-dask=={ENGINE_DASK_VERSION}"
                        )));
                    }
                    ex.cluster.scheduler = scheduler;
                    ex.cluster.distributed = distributed;
                    ex.cluster.engine_dask = engine_dask;
                    hello_seen = true;
                }
                Incoming::Frame(FromBridge::Cluster { workers }, _) if hello_seen => {
                    ex.cluster.workers = workers;
                    break;
                }
                Incoming::Frame(FromBridge::Fatal { message }, _) => return Err(DaskError::Bridge(message)),
                Incoming::Gone(why) => {
                    let tail = ex.settled_tail();
                    if tail.contains("No module named 'engine_dask'") {
                        return Err(DaskError::NoPackage { python });
                    }
                    return Err(DaskError::Bridge(ex.explain(&format!("the Dask bridge exited ({why})"))));
                }
                Incoming::Frame(other, _) => {
                    return Err(DaskError::Bridge(format!("unexpected message from the Dask bridge: {other:?}")));
                }
            }
        }
        ex.window = cfg.window.unwrap_or_else(|| ex.cluster.threads()).max(1);
        ex.lanes = vec![0; ex.window];
        Ok(ex)
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Get ready to run `plan`: the Init frame every `engine worker` child of
    /// this run starts with, and what each task asks of Dask.
    pub fn prepare(&mut self, plan: &Plan, run_id: &str, init: WorkerInit, run_start: Instant) {
        self.run_id = run_id.to_string();
        self.run_start = run_start;
        self.priorities = plan.tasks.iter().map(|t| i64::from(t.priority)).collect();
        self.resources = plan.tasks.iter().map(|t| self.cluster.dask_resources(&t.resources)).collect();
        let mut frame = Vec::new();
        if let Err(e) = encode_frame(&mut frame, &ToWorker::Init(init)) {
            self.dead = Some(format!("cannot encode the worker init frame: {e}"));
            return;
        }
        let mut buf = Vec::new();
        bridge_frame(&mut buf, &ToBridge::Prepare { run_id }, &frame);
        self.write(&buf);
    }

    /// The Dask worker name and thread slot of every trace lane, by lane.
    pub fn slots(&self) -> &[(String, u32)] {
        &self.slots
    }

    /// Trace lane names, e.g. `w-gpu slot 0`.
    pub fn lane_names(&self) -> Vec<String> {
        self.slots.iter().map(|(w, s)| format!("{w} slot {s}")).collect()
    }

    fn tail(&self) -> String {
        let t = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The stderr tail once the bridge's stderr has closed (its stdout can
    /// close first), waiting at most 2 s for that: a process the bridge
    /// started may hold stderr open.
    fn settled_tail(&self) -> String {
        let until = Instant::now() + Duration::from_secs(2);
        while self.stderr_reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.tail()
    }

    /// `what`, with the last lines the bridge wrote on stderr.
    fn explain(&self, what: &str) -> String {
        with_tail(what, &self.settled_tail())
    }

    fn write(&mut self, buf: &[u8]) {
        if self.dead.is_none() && self.stdin.write_all(buf).and_then(|_| self.stdin.flush()).is_err() {
            // The reader thread reports the bridge's end.
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let tasks = std::mem::take(&mut self.pending);
        let frames = std::mem::take(&mut self.pending_frames);
        let mut buf = Vec::with_capacity(frames.len() + 256);
        bridge_frame(&mut buf, &ToBridge::Submit { tasks }, &frames);
        self.write(&buf);
    }

    fn now_us(&self) -> u64 {
        self.run_start.elapsed().as_micros() as u64
    }

    /// The trace lane of a Dask worker's thread slot.
    fn lane_of(&mut self, worker: &str, slot: u32) -> u32 {
        match self.slots.iter().position(|(w, s)| w == worker && *s == slot) {
            Some(i) => i as u32,
            None => {
                self.slots.push((worker.to_string(), slot));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn finish(&mut self, key: &str) -> Option<InFlight> {
        let f = self.flights.remove(key)?;
        self.lanes[f.lane] -= 1;
        Some(f)
    }

    fn handle(&mut self, ev: Incoming) {
        match ev {
            Incoming::Frame(FromBridge::Started { key, worker, slot }, _) => {
                let now = self.now_us();
                if let Some(f) = self.flights.get_mut(&key) {
                    f.started = Some((now, worker, slot));
                }
            }
            Incoming::Frame(FromBridge::Done { key, worker, slot }, payload) => {
                self.done_frame(&key, &worker, slot, &payload)
            }
            Incoming::Frame(FromBridge::Lost { key, why, message }, _) => {
                let Some(f) = self.finish(&key) else { return };
                let failure = match why.as_str() {
                    "killed_worker" => TaskFailure::WorkerLost { message: format!("Dask gave up on it: {message}") },
                    "engine_worker_lost" => TaskFailure::WorkerLost { message },
                    _ => TaskFailure::infra(InfraKind::Executor, format!("Dask failed to run it: {message}")),
                };
                let worker = f.started.as_ref().map(|(_, w, s)| self.lane_of(w, *s)).unwrap_or(0);
                let metrics =
                    TaskMetrics { worker, start_us: f.submitted_us, end_us: self.now_us(), ..TaskMetrics::default() };
                self.done.push_back(Completion::Done(TaskResult {
                    task: f.task,
                    attempt: f.attempt,
                    outcome: Err(failure),
                    log: Vec::new(),
                    metrics,
                }));
            }
            Incoming::Frame(FromBridge::LostExecution { key, worker }, _) => {
                let now = self.now_us();
                let Some(f) = self.flights.get_mut(&key) else { return };
                let (start, slot) = f.started.take().map(|(at, _, s)| (at, s)).unwrap_or((f.submitted_us, 0));
                let (task, attempt) = (f.task, f.attempt);
                let name = self.cluster.workers.iter().find(|w| w.address == worker).map(|w| w.name.clone());
                let name = name.unwrap_or(worker);
                let lane = self.lane_of(&name, slot);
                self.done.push_back(Completion::Lost {
                    task,
                    attempt,
                    worker: lane,
                    start_us: start,
                    end_us: now,
                    message: format!("Dask worker {name} was lost; Dask runs the task again"),
                });
            }
            Incoming::Frame(FromBridge::Fatal { message }, _) => self.die(message),
            Incoming::Frame(other, _) => {
                let _ = other; // hello/cluster after start: nothing to do
            }
            Incoming::Gone(why) => {
                let msg = self.explain(&format!("the Dask bridge exited ({why})"));
                self.die(msg)
            }
        }
    }

    fn done_frame(&mut self, key: &str, worker: &str, slot: u32, payload: &[u8]) {
        let Some(f) = self.finish(key) else { return };
        let lane = self.lane_of(worker, slot);
        let now = self.now_us();
        let outcome = match decode_frame::<FromWorker>(payload) {
            Ok(Some((FromWorker::Result(mut res), _))) if res.task == f.task && res.attempt == f.attempt => {
                res.metrics.worker = lane;
                let took = res.metrics.end_us.saturating_sub(res.metrics.start_us) as f64;
                self.mean_us = Some(match self.mean_us {
                    None => took,
                    Some(m) => m + (took - m) / 8.0,
                });
                // Worker clocks may differ: keep the times within what this
                // process saw (submitted .. received).
                res.metrics.start_us = res.metrics.start_us.clamp(f.submitted_us, now);
                res.metrics.end_us = res.metrics.end_us.clamp(res.metrics.start_us, now);
                self.done.push_back(Completion::Done(res));
                return;
            }
            Ok(Some((FromWorker::Fatal { message }, _))) => TaskFailure::infra(
                InfraKind::Executor,
                format!("engine worker on Dask worker {worker} failed to start: {message}"),
            ),
            Ok(_) => {
                TaskFailure::infra(InfraKind::Executor, format!("Dask worker {worker} sent a result for another task"))
            }
            Err(e) => {
                TaskFailure::infra(InfraKind::Executor, format!("Dask worker {worker} sent an undecodable result: {e}"))
            }
        };
        self.done.push_back(Completion::Done(TaskResult {
            task: f.task,
            attempt: f.attempt,
            outcome: Err(outcome),
            log: Vec::new(),
            metrics: TaskMetrics { worker: lane, start_us: f.submitted_us, end_us: now, ..TaskMetrics::default() },
        }));
    }

    /// The bridge is gone: every attempt in Dask fails, and nothing more starts.
    fn die(&mut self, why: String) {
        let keys: Vec<String> = self.flights.keys().cloned().collect();
        for key in keys {
            if let Some(f) = self.finish(&key) {
                self.done.push_back(Completion::Done(TaskResult {
                    task: f.task,
                    attempt: f.attempt,
                    outcome: Err(TaskFailure::infra(InfraKind::Executor, why.clone())),
                    log: Vec::new(),
                    metrics: TaskMetrics::default(),
                }));
            }
        }
        self.dead.get_or_insert(why);
    }
}

impl Executor for DaskExecutor {
    fn workers(&self) -> usize {
        self.window
    }

    fn no_workers(&self) -> Option<String> {
        self.dead.clone()
    }

    fn room(&self, w: usize) -> usize {
        if self.dead.is_some() {
            return 0;
        }
        let depth = match self.mean_us {
            Some(m) if self.queue && m < SHORT_TASK.as_micros() as f64 => QUEUE_DEPTH,
            _ => 1,
        };
        depth.saturating_sub(self.lanes[w])
    }

    fn submit(&mut self, w: usize, msg: TaskMessage) {
        let key = format!("{}-{}-a{}", msg.name, self.run_id, msg.attempt);
        let (task, attempt) = (msg.task, msg.attempt);
        let start = self.pending_frames.len();
        if let Err(e) = encode_frame(&mut self.pending_frames, &ToWorker::Run(msg)) {
            self.done.push_back(Completion::Done(TaskResult {
                task,
                attempt,
                outcome: Err(TaskFailure::infra(InfraKind::Executor, format!("cannot send the task: {e}"))),
                log: Vec::new(),
                metrics: TaskMetrics::default(),
            }));
            return;
        }
        self.pending.push(SubmitTask {
            key: key.clone(),
            resources: self.resources.get(task as usize).cloned().unwrap_or_default(),
            priority: self.priorities.get(task as usize).copied().unwrap_or(0),
            len: self.pending_frames.len() - start,
        });
        self.lanes[w] += 1;
        let submitted_us = self.now_us();
        self.flights.insert(key, InFlight { task, attempt, lane: w, submitted_us, started: None });
    }

    fn recv(&mut self, timeout: Duration) -> Option<Completion> {
        self.flush();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.done.pop_front() {
                return Some(c);
            }
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    if self.dead.is_none() {
                        self.die("the Dask bridge exited".into());
                    }
                    return self.done.pop_front();
                }
            }
        }
    }

    fn cancel_all(&mut self) {
        self.pending.clear();
        self.pending_frames.clear();
        let mut frame = Vec::new();
        let _ = encode_frame(&mut frame, &ToWorker::Cancel);
        let mut buf = Vec::new();
        bridge_frame(&mut buf, &ToBridge::Cancel {}, &frame);
        self.write(&buf);
        // Dask cannot stop a running function; the bridge tells the children
        // to cancel, and this side does not wait for them.
        let keys: Vec<String> = self.flights.keys().cloned().collect();
        let now = self.now_us();
        for key in keys {
            if let Some(f) = self.finish(&key) {
                self.done.push_back(Completion::Done(TaskResult {
                    task: f.task,
                    attempt: f.attempt,
                    outcome: Err(TaskFailure::Cancelled),
                    log: Vec::new(),
                    metrics: TaskMetrics { start_us: f.submitted_us, end_us: now, ..TaskMetrics::default() },
                }));
            }
        }
    }
}

impl Drop for DaskExecutor {
    fn drop(&mut self) {
        let mut buf = Vec::new();
        bridge_frame(&mut buf, &ToBridge::Shutdown {}, &[]);
        let _ = self.stdin.write_all(&buf).and_then(|_| self.stdin.flush());
        let deadline = Instant::now() + Duration::from_millis(1500);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => break,
            }
        }
        // SAFETY: signalling the process group we created for the bridge (and
        // a local cluster it started).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Append one bridge frame.
fn bridge_frame(buf: &mut Vec<u8>, header: &ToBridge<'_>, payload: &[u8]) {
    // Headers are plain structs of strings and numbers: they always encode.
    let h = serde_json::to_vec(header).unwrap_or_default();
    buf.extend_from_slice(&((4 + h.len() + payload.len()) as u32).to_le_bytes());
    buf.extend_from_slice(&(h.len() as u32).to_le_bytes());
    buf.extend_from_slice(&h);
    buf.extend_from_slice(payload);
}

/// Read bridge frames until its stdout ends.
fn read_bridge(stdout: impl Read, tx: crossbeam_channel::Sender<Incoming>) {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    loop {
        let mut head = [0u8; 8];
        if let Err(e) = r.read_exact(&mut head) {
            let why = if e.kind() == std::io::ErrorKind::UnexpectedEof { "pipe closed".into() } else { e.to_string() };
            let _ = tx.send(Incoming::Gone(why));
            return;
        }
        let total = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let hlen = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if total > MAX_BRIDGE_FRAME || hlen + 4 > total {
            let _ = tx.send(Incoming::Gone(format!("garbage on its stdout (a frame of {total} bytes)")));
            return;
        }
        let mut body = vec![0u8; total - 4];
        if r.read_exact(&mut body).is_err() {
            let _ = tx.send(Incoming::Gone("pipe closed in the middle of a frame".into()));
            return;
        }
        let payload = body.split_off(hlen);
        match serde_json::from_slice::<FromBridge>(&body) {
            Ok(h) => {
                if tx.send(Incoming::Frame(h, payload)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Incoming::Gone(format!("undecodable header: {e}")));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, threads: u32, res: &[(&str, f64)]) -> DaskWorker {
        DaskWorker {
            name: name.into(),
            address: format!("tcp://127.0.0.1:1{threads}"),
            host: "127.0.0.1".into(),
            nthreads: threads,
            memory_limit: 4 << 30,
            resources: res.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn capacity_sums_declared_and_falls_back_to_threads_and_memory() {
        let c = Cluster {
            workers: vec![worker("a", 2, &[("gpu", 1.0), ("licence", 1.0)]), worker("b", 1, &[("licence", 0.5)])],
            ..Cluster::default()
        };
        let cap = c.capacity();
        assert_eq!(cap.cpu_milli, 3000);
        assert_eq!(cap.memory, 8 << 30);
        assert_eq!(cap.gpu, 1);
        assert_eq!(cap.custom.get("licence"), Some(&1500));
        let mut r = Resources { cpu_milli: 1000, gpu: 1, ..Resources::default() };
        r.custom.insert("licence".into(), 1000);
        let d = c.dask_resources(&r);
        assert_eq!(d.into_iter().collect::<Vec<_>>(), vec![("gpu".to_string(), 1.0), ("licence".to_string(), 1.0)]);
    }

    #[test]
    fn bridge_frames_carry_a_json_header_and_opaque_bytes() {
        let mut buf = Vec::new();
        bridge_frame(&mut buf, &ToBridge::Prepare { run_id: "r1" }, b"\x01\x02");
        let h = br#"{"op":"prepare","run_id":"r1"}"#;
        assert_eq!(&buf[..4], &((4 + h.len() + 2) as u32).to_le_bytes());
        assert_eq!(&buf[4..8], &(h.len() as u32).to_le_bytes());
        assert_eq!(&buf[8..8 + h.len()], h);
        assert_eq!(&buf[8 + h.len()..], b"\x01\x02");
    }
}
