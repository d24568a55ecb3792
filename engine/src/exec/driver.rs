//! The run loop: connects the scheduler core to an executor, the store and an
//! observer (progress display), and records what happened for the report and
//! the trace.
//!
//! The loop: move due retries to ready; start tasks on the executor's workers
//! while they have room and the core allows, one per worker per round so the
//! work is spread evenly (each worker is a lane in the core: see "Dispatch
//! policy" in `sched`); wait for a result (bounded by the next retry time and a
//! short tick so Ctrl-C is noticed); feed it and every other result already
//! there to the core.
//! A task's inputs are resolved to blob digests when it starts: upstream
//! outputs by name, external `file:` inputs by copying the file into the store
//! once per run. With the action cache on, the task's key is then looked up
//! in the store: a hit whose outputs all exist completes the task there and
//! then, without a worker; a task that succeeds leaves a record, written
//! after its outputs.
//!
//! Dynamic fan-out: when the core lists a template (`map`) as expanding, the
//! driver reads its producer's outputs (or the lines of one, from the
//! store), appends one child [`crate::plan::TaskSpec`] per item to the plan
//! (ids `TEMPLATE[N]`, see [`crate::plan::map`]) and tells the core how many.
//! An input that names a template (`count[*]`) resolves to the outputs of
//! its children, in order.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Completion, Executor};
use crate::plan::{Plan, Source, TaskId, TaskSpec};
use crate::sched::{Core, CoreOptions, Counts, FailureClass, FailureDecision, TaskState};
use crate::store::{BlobRef, BlobStore, Digest};
use crate::task::cache::{ActionKey, ActionRecord};
use crate::task::message::{
    CommandOpts, InfraKind, Limits, MsgInput, OutputBlob, PluginRef, TaskFailure, TaskMessage, TaskMetrics, TaskResult,
};

pub struct RunOptions {
    pub fail_fast: bool,
    pub backoff_base: Duration,
    /// Where per-task logs are written (created on first use).
    pub log_dir: PathBuf,
    /// Set from a signal handler to interrupt the run.
    pub interrupt: Arc<AtomicBool>,
    pub limits: Limits,
    pub cache: CacheOptions,
    /// Per plugin (by index): why it could not be prepared (it did not
    /// compile within its `max_compile_time`, or failed to compile). Its
    /// tasks fail with this at once, without running; the others run. Empty
    /// or `None`: every plugin is ready.
    pub failed_plugins: Vec<Option<TaskFailure>>,
}

/// How the action cache is used in a run.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// Look tasks up and record them (`--no-cache` turns it off).
    pub enabled: bool,
    /// Per task: run it even if it has a record (`--rerun`). Empty: none.
    pub rerun: Vec<bool>,
    /// Content digest of each mount's host path (a missing one makes the
    /// tasks that mount it uncacheable).
    pub mounts: HashMap<PathBuf, Digest>,
}

/// One attempt of one task, as it appears in the report and the trace.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub task: TaskId,
    pub attempt: u32,
    pub worker: u32,
    pub start_us: u64,
    pub end_us: u64,
    /// `ok` or the failure kind.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct TaskRecord {
    pub outputs: Vec<OutputBlob>,
    pub failure: Option<TaskFailure>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    /// Command tasks on the virtual filesystem: set-up, run and publish
    /// times of the last attempt, in microseconds.
    pub phases_us: Option<[u64; 3]>,
    pub log_path: Option<PathBuf>,
    pub start_us: u64,
    pub end_us: u64,
    pub worker: u32,
    /// Completed from the action cache, without running.
    pub cached: bool,
    /// The task's cache key, when it had one. Boxed: a run without the
    /// cache has none, and a record is kept for every task of the plan.
    pub key: Option<Box<ActionKey>>,
    /// Peak wasm linear memory (bytes) and fuel consumed by the last attempt
    /// (for a cached task: as recorded when it ran). `None` when no attempt
    /// reported them (never ran, or lost with its worker).
    pub peak_memory: Option<u64>,
    pub fuel_consumed: Option<u64>,
}

pub struct RunOutcome {
    pub counts: Counts,
    pub states: Vec<TaskState>,
    pub records: Vec<TaskRecord>,
    pub attempts: Vec<AttemptRecord>,
    pub wall: Duration,
    pub interrupted: bool,
    /// Tasks completed from the action cache.
    pub cached: usize,
    /// Action records that could not be written (the tasks still succeeded).
    pub record_errors: Vec<String>,
    /// Why the run was stopped by the engine itself (no worker could be
    /// started), if it was.
    pub aborted: Option<String>,
    /// Names of the trace lanes by worker index (`worker N` when missing).
    pub lane_names: Vec<String>,
}

/// What an observer (the progress display, the event log, the dashboard)
/// is told: the run's typed event stream. `docs/pipeline.md` ("`--events
/// FILE`") documents its stable NDJSON form (`crate::report::events`).
#[derive(Clone)]
pub enum Event<'a> {
    /// The run starts (before any task) on `workers` workers; times are
    /// measured from `run_start`.
    Begin {
        workers: usize,
        run_start: Instant,
    },
    /// Became ready: every dependency succeeded (or its retry delay passed,
    /// or the worker it was handed to died before starting it). Only sent
    /// to an observer whose [`Observer::wants_queued`] is true.
    Queued {
        task: TaskId,
    },
    /// Handed to worker `worker` (which may queue it behind another task),
    /// `at` after the run's start.
    Started {
        task: TaskId,
        attempt: u32,
        worker: u32,
        at: Duration,
    },
    Succeeded {
        task: TaskId,
        attempt: u32,
        metrics: &'a TaskMetrics,
        outputs: &'a [OutputBlob],
    },
    /// Completed from the action cache.
    Cached {
        task: TaskId,
        outputs: &'a [OutputBlob],
    },
    /// A mapped task was expanded into `children` tasks (now in the plan).
    Expanded {
        task: TaskId,
        children: u32,
    },
    /// An attempt failed (`decision` says whether the task is retried), or
    /// the task could not start or be expanded (`metrics` is `None`).
    Failed {
        task: TaskId,
        attempt: u32,
        failure: &'a TaskFailure,
        decision: FailureDecision,
        log_tail: &'a str,
        metrics: Option<&'a TaskMetrics>,
    },
    Cancelled {
        task: TaskId,
    },
    Interrupted,
    /// Nothing else happened for a while (about every 100 ms while waiting).
    Tick,
    /// The run ended: nothing runs and nothing more will start.
    End {
        cached: usize,
        interrupted: bool,
    },
}

pub trait Observer {
    /// `plan` is the plan being run (task ids, retries).
    fn event(&mut self, plan: &Plan, ev: Event<'_>, counts: &Counts);

    /// Whether to send [`Event::Queued`]: noting ready tasks costs a little
    /// per task, so only observers that ask get them.
    fn wants_queued(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {
    fn event(&mut self, _: &Plan, _: Event<'_>, _: &Counts) {}
}

/// Several observers, told in order.
pub struct Tee(pub Vec<Box<dyn Observer + Send>>);
impl Observer for Tee {
    fn event(&mut self, plan: &Plan, ev: Event<'_>, counts: &Counts) {
        let Some((last, first)) = self.0.split_last_mut() else { return };
        for o in first {
            o.event(plan, ev.clone(), counts);
        }
        last.event(plan, ev, counts);
    }

    fn wants_queued(&self) -> bool {
        self.0.iter().any(|o| o.wants_queued())
    }
}

/// How many trailing log lines a failure message shows.
pub const LOG_TAIL_LINES: usize = 10;

/// The state of one run, shared by both drivers: the core, what each task
/// produced, and the attempt log. Every method is a short critical section.
pub struct RunState<'a> {
    /// The plan being run; expanded children are appended to its tasks.
    plan: &'a mut Plan,
    store: &'a dyn BlobStore,
    opts: &'a RunOptions,
    observer: &'a mut (dyn Observer + Send),
    run_start: Instant,
    core: Core,
    records: Vec<TaskRecord>,
    attempts: Vec<AttemptRecord>,
    files: HashMap<PathBuf, Result<BlobRef, String>>,
    starts: Vec<TaskId>,
    in_flight: usize,
    interrupted: bool,
    aborted: Option<String>,
    cancel_sent: bool,
    scheduled: usize,
    cached: usize,
    record_errors: Vec<String>,
    /// Reused by [`RunState::announce_ready`] (only with a queued-event observer).
    became_ready: Vec<TaskId>,
    /// Per task, when its latest attempt was handed to a worker (µs since
    /// the run's start): the start of an attempt lost with its worker, which
    /// measured nothing.
    dispatched_us: Vec<u64>,
}

impl<'a> RunState<'a> {
    pub fn new(
        plan: &'a mut Plan,
        store: &'a dyn BlobStore,
        opts: &'a RunOptions,
        observer: &'a mut (dyn Observer + Send),
        run_start: Instant,
    ) -> Self {
        let core = Core::new(
            plan,
            CoreOptions { fail_fast: opts.fail_fast, backoff_base: opts.backoff_base, ..CoreOptions::default() },
        );
        let n = plan.tasks.len();
        RunState {
            plan,
            store,
            opts,
            observer,
            run_start,
            core,
            records: vec![TaskRecord::default(); n],
            attempts: Vec::with_capacity(n),
            files: HashMap::new(),
            starts: Vec::new(),
            in_flight: 0,
            interrupted: false,
            aborted: None,
            cancel_sent: false,
            scheduled: 0,
            cached: 0,
            record_errors: Vec::new(),
            became_ready: Vec::new(),
            dispatched_us: vec![0; n],
        }
    }

    /// Tell the observer the run starts on `workers` workers, and which
    /// tasks are ready, if it wants to know.
    pub fn begin(&mut self, workers: usize) {
        let ev = Event::Begin { workers, run_start: self.run_start };
        self.observer.event(self.plan, ev, &shown(&self.core));
        if self.observer.wants_queued() {
            self.core.log_ready();
            self.announce_ready();
        }
    }

    /// Tell the observer about the tasks that became ready since the last
    /// call (nothing to do unless it asked for them).
    fn announce_ready(&mut self) {
        self.core.take_ready(&mut self.became_ready);
        if self.became_ready.is_empty() {
            return;
        }
        let counts = shown(&self.core);
        for &task in &self.became_ready {
            self.observer.event(self.plan, Event::Queued { task }, &counts);
        }
        self.became_ready.clear();
    }

    /// Notice Ctrl-C and due retries, then start up to `max` tasks (on lane
    /// `lane` of the core, if given) for worker `worker`, appending their
    /// messages to `out`.
    /// Returns true when running tasks must now be cancelled (interrupt or
    /// fail-fast), exactly once per run. [`RunState::scheduled`] tells how many
    /// tasks the core started, including those that failed to start.
    pub fn next_tasks(&mut self, lane: Option<usize>, worker: u32, max: usize, out: &mut Vec<TaskMessage>) -> bool {
        let now = self.run_start.elapsed();
        self.notice_interrupt();
        self.core.tick(now);
        self.scheduled = 0;
        let mut pushed = 0;
        // Cache hits complete at once and may make more tasks ready: keep
        // scheduling until a task needs a worker or nothing more is ready.
        while pushed < max {
            self.expand_ready();
            self.announce_ready();
            self.starts.clear();
            match lane {
                Some(l) => self.core.schedule_lane(l, max - pushed, &mut self.starts),
                None => self.core.schedule(max - pushed, &mut self.starts),
            }
            if self.starts.is_empty() {
                break;
            }
            self.scheduled += self.starts.len();
            for i in 0..self.starts.len() {
                let t = self.starts[i];
                if self.start(t, worker, now, out) {
                    pushed += 1;
                }
            }
        }
        if self.core.is_stopped() && !self.cancel_sent {
            self.cancel_sent = true;
            return true;
        }
        false
    }

    /// Start task `t`: complete it from the cache, or append its message to
    /// `out` (true), or fail it when it cannot even start.
    fn start(&mut self, t: TaskId, worker: u32, now: Duration, out: &mut Vec<TaskMessage>) -> bool {
        let attempt = self.core.attempt(t);
        // The key is computed from the spec and the inputs: a hit builds no message.
        let built = self.build_inputs(t).and_then(|inputs| {
            if self.try_cached(t, &inputs) {
                return Ok(None);
            }
            task_message(self.plan, t, attempt, inputs, &self.opts.limits).map(Some)
        });
        match built {
            Ok(None) => false,
            Ok(Some(msg)) => {
                if let Some(d) = self.dispatched_us.get_mut(t as usize) {
                    *d = now.as_micros() as u64;
                }
                self.observer.event(
                    self.plan,
                    Event::Started { task: t, attempt, worker, at: now },
                    &shown(&self.core),
                );
                out.push(msg);
                self.in_flight += 1;
                true
            }
            Err(failure) => {
                // Could not even start: not retryable (the inputs will not change).
                let decision = self.core.on_failure(t, FailureClass::Final, now);
                let rec = &mut self.records[t as usize];
                rec.attempts = attempt;
                self.observer.event(
                    self.plan,
                    Event::Failed { task: t, attempt, failure: &failure, decision, log_tail: "", metrics: None },
                    &shown(&self.core),
                );
                rec.failure = Some(failure);
                false
            }
        }
    }

    /// Compute the task's cache key and, on a hit whose outputs all exist,
    /// complete the task from the record.
    fn try_cached(&mut self, t: TaskId, inputs: &[MsgInput]) -> bool {
        let cache = &self.opts.cache;
        let spec = &self.plan.tasks[t as usize];
        if !cache.enabled || !spec.cache {
            return false;
        }
        let Some(plugin) = &self.plan.plugins[spec.plugin as usize].digest else { return false };
        let parts = crate::task::cache::KeyParts {
            plugin,
            params: &spec.params,
            args: &spec.args,
            env: &spec.env,
            stdin: spec.stdin.as_deref(),
            stdout: spec.stdout.as_deref(),
            fs: spec.fs.as_deref(),
            max_open_files: spec.max_open_files.unwrap_or(self.opts.limits.max_open_files),
            deterministic: spec.deterministic,
            name: &spec.id,
            inputs,
        };
        let Some(key) = crate::task::cache::action_key_of(&parts, &|p| cache.mounts.get(p).copied()) else {
            return false;
        };
        // A child of a mapped task is rerun when its template is.
        let flag_of = self.core.parent(t).unwrap_or(t);
        let rerun = cache.rerun.get(flag_of as usize).copied().unwrap_or(false);
        let hit = if rerun { None } else { self.lookup(&key.key) };
        let rec = &mut self.records[t as usize];
        rec.key = Some(Box::new(key));
        let Some(hit) = hit else { return false };
        let now = self.run_start.elapsed().as_micros() as u64;
        rec.outputs = hit.outputs;
        rec.exit_code = hit.exit_code;
        rec.peak_memory = Some(hit.peak_memory);
        rec.fuel_consumed = hit.fuel_consumed;
        rec.cached = true;
        rec.start_us = now;
        rec.end_us = now;
        self.cached += 1;
        self.core.on_success(t);
        let outputs = &self.records[t as usize].outputs;
        self.observer.event(self.plan, Event::Cached { task: t, outputs }, &shown(&self.core));
        self.announce_ready();
        true
    }

    /// The record under `key`, if it decodes and every blob it names exists
    /// (a record whose blob is gone is a miss, and the task runs again).
    fn lookup(&self, key: &Digest) -> Option<ActionRecord> {
        let bytes = self.store.get_action(key).ok()??;
        let rec = ActionRecord::decode(&bytes)?;
        for o in &rec.outputs {
            if self.store.size(&o.blob.digest).ok()? != Some(o.blob.len) {
                return None;
            }
        }
        Some(rec)
    }

    /// How many tasks were completed from the cache so far.
    pub fn cached(&self) -> usize {
        self.cached
    }

    fn notice_interrupt(&mut self) {
        if !self.interrupted && self.opts.interrupt.load(Ordering::SeqCst) {
            self.interrupted = true;
            self.core.stop();
            self.observer.event(self.plan, Event::Interrupted, &shown(&self.core));
        }
    }

    /// Notice Ctrl-C when no worker has room (so [`RunState::next_tasks`] is
    /// not called). Returns true when running tasks must now be cancelled,
    /// exactly once per run.
    pub fn check_interrupt(&mut self) -> bool {
        self.notice_interrupt();
        if self.core.is_stopped() && !self.cancel_sent {
            self.cancel_sent = true;
            return true;
        }
        false
    }

    /// Feed a finished attempt back.
    pub fn complete(&mut self, res: TaskResult) {
        self.in_flight -= 1;
        self.handle_result(res, false);
    }

    /// Like [`RunState::complete`], for a result whose action record the
    /// caller already wrote (see [`write_record`]) or tried to: `recorded`
    /// holds the error of that write, if any.
    /// `log_path` is where the caller wrote the attempt's log, if it had one.
    pub fn complete_recorded(&mut self, res: TaskResult, recorded: Result<(), String>, log_path: Option<PathBuf>) {
        self.in_flight -= 1;
        if let Err(e) = recorded {
            self.record_errors.push(e);
        }
        self.records[res.task as usize].log_path = log_path.or(self.records[res.task as usize].log_path.take());
        self.handle_result(res, true);
    }

    /// The cache key of task `t`, once it was started with the cache on.
    pub fn key_of(&self, t: TaskId) -> Option<Digest> {
        self.records[t as usize].key.as_ref().map(|k| k.key)
    }

    /// A task queued on a worker that died before starting it: back to ready.
    pub fn unstart(&mut self, t: TaskId) {
        self.in_flight -= 1;
        self.core.unstart(t);
        self.announce_ready();
    }

    /// An execution the executor lost and runs again: recorded for the
    /// trace; the task stays running.
    pub fn lost_execution(&mut self, rec: AttemptRecord) {
        self.attempts.push(rec);
    }

    /// Stop the run for a reason of the engine's own: every task not
    /// finished is cancelled.
    pub fn abort(&mut self, why: String) {
        self.core.stop();
        self.aborted.get_or_insert(why);
    }

    /// How many tasks the last [`RunState::next_tasks`] call started,
    /// including those completed from the cache or failed to start.
    pub fn scheduled(&self) -> usize {
        self.scheduled
    }

    /// Nothing is running and nothing more can start.
    pub fn finished(&self) -> bool {
        self.core.is_done() && self.in_flight == 0
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How long to wait for a result before looking again (retries, Ctrl-C).
    pub fn wait_hint(&self) -> Duration {
        self.core
            .next_wakeup()
            .map(|at| at.saturating_sub(self.run_start.elapsed()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100))
    }

    pub fn tick(&mut self) {
        self.observer.event(self.plan, Event::Tick, &shown(&self.core));
    }

    pub fn into_outcome(mut self) -> RunOutcome {
        self.announce_ready();
        let end = Event::End { cached: self.cached, interrupted: self.interrupted };
        self.observer.event(self.plan, end, &shown(&self.core));
        let n = self.plan.tasks.len();
        RunOutcome {
            counts: self.core.counts(),
            states: (0..n as TaskId).map(|t| self.core.state(t)).collect(),
            records: self.records,
            attempts: self.attempts,
            wall: self.run_start.elapsed(),
            interrupted: self.interrupted,
            cached: self.cached,
            record_errors: self.record_errors,
            aborted: self.aborted,
            lane_names: Vec::new(),
        }
    }
}

/// Run every task of `plan` through a message-passing executor (sync,
/// processes). Every plugin of `plan` must have its digest. The children of
/// mapped tasks are appended to `plan.tasks` as they are expanded.
pub fn run_plan(
    plan: &mut Plan,
    exec: &mut dyn Executor,
    store: &dyn BlobStore,
    opts: &RunOptions,
    observer: &mut (dyn Observer + Send),
    run_start: Instant,
) -> RunOutcome {
    let mut st = RunState::new(plan, store, opts, observer, run_start);
    st.begin(exec.workers());
    let mut msgs = Vec::new();
    let mut last_tick = Instant::now();
    loop {
        let mut started = false;
        // Every worker may be busy with a long task: notice Ctrl-C anyway.
        if st.check_interrupt() {
            exec.cancel_all();
        }
        // One task per worker per round, until no worker takes another.
        loop {
            let mut more = false;
            for w in 0..exec.workers() {
                if exec.room(w) == 0 {
                    continue;
                }
                msgs.clear();
                if st.next_tasks(Some(w), w as u32, 1, &mut msgs) {
                    exec.cancel_all();
                }
                more |= st.scheduled() > 0;
                for m in msgs.drain(..) {
                    exec.submit(w, m);
                    started = true;
                }
            }
            if !more {
                break;
            }
        }
        if st.finished() {
            break;
        }
        if st.in_flight() == 0 && !started {
            if let Some(why) = exec.no_workers() {
                // Nothing can ever run again: cancel what is left.
                st.abort(why);
                continue;
            }
            // Only retries in backoff remain: sleep until the next one is due.
            std::thread::sleep(st.wait_hint());
            continue;
        }
        let Some(c) = exec.recv(st.wait_hint()) else {
            if last_tick.elapsed() >= Duration::from_millis(100) {
                last_tick = Instant::now();
                st.tick();
            }
            continue;
        };
        complete(&mut st, c);
        while let Some(c) = exec.recv(Duration::ZERO) {
            complete(&mut st, c);
        }
    }
    st.into_outcome()
}

fn complete(st: &mut RunState<'_>, c: Completion) {
    match c {
        Completion::Done(res) => st.complete(res),
        Completion::Unstarted { task } => st.unstart(task),
        Completion::Lost { task, attempt, worker, start_us, end_us, message: _ } => {
            st.lost_execution(AttemptRecord { task, attempt, worker, start_us, end_us, outcome: "worker_lost" })
        }
    }
}

/// Run every task of `plan` on `workers` threads that drive the scheduler
/// core themselves: a worker that finishes a task records the result and
/// picks its next task under one short lock, with no hand-off to a
/// coordinator thread. This is what keeps the per-task overhead in
/// microseconds when tasks are tiny (a hand-off costs two thread wake-ups).
pub fn run_plan_threads(
    plan: &mut Plan,
    runtime: &crate::runtime::Runtime,
    workers: usize,
    store: &dyn BlobStore,
    opts: &RunOptions,
    observer: &mut (dyn Observer + Send),
    run_start: Instant,
) -> std::io::Result<RunOutcome> {
    use std::sync::{Condvar, Mutex};
    let mut st = RunState::new(plan, store, opts, observer, run_start);
    st.begin(workers.max(1));
    let state = Mutex::new(st);
    let wake = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|scope| -> std::io::Result<()> {
        let mut handles = Vec::new();
        // Each worker says when it is done, so the run ends without waiting
        // for the calling thread's next tick.
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
        for w in 0..workers.max(1) {
            let (state, wake, done_tx) = (&state, &wake, done_tx.clone());
            let h = std::thread::Builder::new()
                .name(format!("engine-worker-{w}"))
                .stack_size(super::threads::WORKER_STACK)
                .spawn_scoped(scope, move || {
                    let mut msgs = Vec::with_capacity(1);
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        msgs.clear();
                        let hits = st.cached();
                        if st.next_tasks(None, w as u32, 1, &mut msgs) {
                            runtime.cancel_all();
                        }
                        if st.cached() != hits {
                            // Hits may have made work ready for the others.
                            wake.notify_all();
                        }
                        if let Some(msg) = msgs.pop() {
                            let key = st.key_of(msg.task);
                            drop(st);
                            let res = super::threads::run_one(runtime, &msg, store, w as u32, run_start);
                            // The log, then the record, are written outside the
                            // lock, so the other workers do not wait for them;
                            // the record last, as the task's commit point.
                            let log_path = (!res.log.is_empty())
                                .then(|| write_log(&opts.log_dir, &msg.name, res.attempt, &res.log))
                                .flatten();
                            let recorded = match (&key, &res.outcome) {
                                (Some(k), Ok(outputs)) => write_record(store, k, &res.metrics, outputs)
                                    .map_err(|e| format!("task `{}`: {e}", msg.name)),
                                _ => Ok(()),
                            };
                            st = state.lock().unwrap_or_else(|e| e.into_inner());
                            st.complete_recorded(res, recorded, log_path);
                            // New tasks may be ready for the others.
                            wake.notify_all();
                            continue;
                        }
                        if st.finished() {
                            wake.notify_all();
                            let _ = done_tx.send(());
                            return;
                        }
                        let hint = st.wait_hint();
                        st = wake.wait_timeout(st, hint).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
                    }
                })?;
            handles.push(h);
        }
        // The calling thread only keeps the progress display ticking and
        // notices Ctrl-C while the workers run.
        let mut done = 0;
        while done < handles.len() && !handles.iter().all(|h| h.is_finished()) {
            if done_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                done += 1;
            }
            {
                let mut st = lock();
                st.tick();
            }
            if opts.interrupt.load(Ordering::SeqCst) {
                // Workers busy in long tasks cannot notice it themselves.
                runtime.cancel_all();
                wake.notify_all();
            }
        }
        for h in handles {
            let _ = h.join();
        }
        Ok(())
    })?;
    Ok(state.into_inner().unwrap_or_else(|e| e.into_inner()).into_outcome())
}

impl RunState<'_> {
    /// Record a finished attempt and tell the core and the observer.
    fn handle_result(&mut self, mut res: TaskResult, recorded: bool) {
        // An attempt lost with its worker measured nothing: it ran from when
        // it was handed to the worker until the loss was seen.
        if matches!(res.outcome, Err(TaskFailure::WorkerLost { .. })) && res.metrics.end_us == 0 {
            res.metrics.start_us = self.dispatched_us.get(res.task as usize).copied().unwrap_or(0);
            res.metrics.end_us = (self.run_start.elapsed().as_micros() as u64).max(res.metrics.start_us);
        }
        let RunState { plan, core, records, attempts, opts, observer, run_start, store, record_errors, .. } = self;
        let (plan, opts, run_start) = (&**plan, *opts, *run_start);
        let t = res.task;
        let m = &res.metrics;
        attempts.push(AttemptRecord {
            task: t,
            attempt: res.attempt,
            worker: m.worker,
            start_us: m.start_us,
            end_us: m.end_us,
            outcome: match &res.outcome {
                Ok(_) => "ok",
                Err(f) => f.kind(),
            },
        });
        let rec = &mut records[t as usize];
        rec.attempts = res.attempt;
        rec.exit_code = m.exit_code;
        rec.phases_us = match (m.setup_us, m.run_us) {
            (Some(s), Some(r)) => Some([s, r, m.publish_us.unwrap_or(0)]),
            _ => None,
        };
        rec.worker = m.worker;
        rec.start_us = m.start_us;
        rec.end_us = m.end_us;
        // A result made up by an executor (a lost worker) measured nothing;
        // fuel is also unknown for an attempt stopped inside wasm code.
        rec.peak_memory = m.measured.then_some(m.peak_memory);
        rec.fuel_consumed = m.fuel_consumed;
        if !recorded && !res.log.is_empty() {
            rec.log_path = write_log(&opts.log_dir, &plan.tasks[t as usize].id, res.attempt, &res.log);
        }
        match res.outcome {
            Ok(outputs) => {
                if !recorded
                    && let Some(key) = &rec.key
                    && let Err(e) = write_record(*store, &key.key, &res.metrics, &outputs)
                {
                    record_errors.push(format!("task `{}`: {e}", plan.tasks[t as usize].id));
                }
                rec.outputs = outputs;
                rec.failure = None;
                core.on_success(t);
                let ev =
                    Event::Succeeded { task: t, attempt: res.attempt, metrics: &res.metrics, outputs: &rec.outputs };
                observer.event(plan, ev, &shown(core));
            }
            Err(TaskFailure::Cancelled) => {
                rec.failure = Some(TaskFailure::Cancelled);
                core.on_cancelled(t);
                observer.event(plan, Event::Cancelled { task: t }, &shown(core));
            }
            Err(failure) => {
                let now = run_start.elapsed();
                let class = match &failure {
                    TaskFailure::WorkerLost { .. } => FailureClass::WorkerLost,
                    f if f.retryable() => FailureClass::Retryable,
                    _ => FailureClass::Final,
                };
                let decision = core.on_failure(t, class, now);
                let tail = log_tail(&res.log, LOG_TAIL_LINES);
                let ev = Event::Failed {
                    task: t,
                    attempt: res.attempt,
                    failure: &failure,
                    decision,
                    log_tail: &tail,
                    metrics: Some(&res.metrics),
                };
                observer.event(plan, ev, &shown(core));
                rec.failure = Some(failure);
            }
        }
        self.announce_ready();
    }
}

/// Write the action record of a task that succeeded with `outputs`: after
/// its outputs, which are finished blobs by the time a result exists.
pub fn write_record(
    store: &dyn BlobStore,
    key: &Digest,
    m: &crate::task::message::TaskMetrics,
    outputs: &[OutputBlob],
) -> Result<(), crate::store::StoreError> {
    let r = ActionRecord {
        outputs: outputs.to_vec(),
        exit_code: m.exit_code,
        duration_us: m.end_us.saturating_sub(m.start_us),
        peak_memory: m.peak_memory,
        fuel_consumed: m.fuel_consumed,
    };
    store.put_action(key, &r.encode())
}

/// The counts an observer is shown: tasks waiting in a worker's queue are
/// started for the core but not running yet, so they are not counted as
/// running.
fn shown(core: &Core) -> Counts {
    let mut c = core.counts();
    c.running -= core.queued();
    c
}

/// The last `n` lines of a log, lossily decoded.
pub fn log_tail(log: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn write_log(dir: &Path, task: &str, attempt: u32, log: &[u8]) -> Option<PathBuf> {
    fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{task}.log"));
    let mut f = fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
    if attempt > 1 {
        let _ = writeln!(f, "--- attempt {attempt} ---");
    }
    f.write_all(log).ok()?;
    Some(path)
}

impl RunState<'_> {
    /// The self-contained message for attempt `attempt` of task `t`: its
    /// inputs resolved to blob digests, its limits from [`Limits::for_task`].
    /// The inputs of task `t`'s message: its upstream outputs and `file:`
    /// inputs (stored on first use).
    fn build_inputs(&mut self, t: TaskId) -> Result<Vec<MsgInput>, TaskFailure> {
        let RunState { plan, store, records, files, opts, core, .. } = self;
        let (plan, store) = (&**plan, *store);
        let spec = &plan.tasks[t as usize];
        if let Some(Some(failure)) = opts.failed_plugins.get(spec.plugin as usize) {
            return Err(failure.clone());
        }
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for input in &spec.inputs {
            let mut items = Vec::with_capacity(input.sources.len());
            for src in &input.sources {
                let blob = match src {
                    // A mapped task: the output of each of its children, in order.
                    Source::Task { task, output } if plan.tasks[*task as usize].map.is_some() => {
                        for c in core.children(*task).unwrap_or(0..0) {
                            items.push(output_of(plan, records, c, output, &input.name)?);
                        }
                        continue;
                    }
                    Source::Task { task, output } => output_of(plan, records, *task, output, &input.name)?,
                    Source::File { path } => {
                        files.entry(path.clone()).or_insert_with(|| put_file(store, path)).clone().map_err(
                            |message| {
                                TaskFailure::infra(InfraKind::Storage, format!("input `{}`: {message}", input.name))
                            },
                        )?
                    }
                };
                items.push(blob);
            }
            inputs.push(MsgInput { name: input.name.clone(), list: input.list, items });
        }
        Ok(inputs)
    }
}

/// Output `output` of task `task`, for input `input` of another task.
fn output_of(
    plan: &Plan,
    records: &[TaskRecord],
    task: TaskId,
    output: &str,
    input: &str,
) -> Result<crate::store::BlobRef, TaskFailure> {
    let up = &records[task as usize];
    match up.outputs.iter().find(|o| o.name == output) {
        Some(o) => Ok(o.blob),
        None => {
            let produced: Vec<&str> = up.outputs.iter().map(|o| o.name.as_str()).collect();
            Err(TaskFailure::Error {
                message: format!(
                    "input `{input}`: task `{}` produced no output `{output}` (it produced: {})",
                    plan.tasks[task as usize].id,
                    if produced.is_empty() { "nothing".to_string() } else { produced.join(", ") }
                ),
            })
        }
    }
}

impl RunState<'_> {
    /// Expand every template that the core lists as expanding (see the
    /// module comment).
    fn expand_ready(&mut self) {
        let mut ready = Vec::new();
        self.core.expansions(&mut ready);
        for t in ready {
            match self.items(t) {
                Ok(items) => {
                    let ex = crate::plan::map::Expander::new(&self.plan.tasks[t as usize]);
                    let children: Vec<TaskSpec> =
                        items.iter().enumerate().map(|(i, (key, item))| ex.child(i, key, item)).collect();
                    let n = children.len() as u32;
                    self.plan.tasks.extend(children);
                    self.records.resize(self.plan.tasks.len(), TaskRecord::default());
                    self.dispatched_us.resize(self.plan.tasks.len(), 0);
                    self.core.expand(t, n);
                    self.observer.event(self.plan, Event::Expanded { task: t, children: n }, &shown(&self.core));
                }
                Err(message) => {
                    let failure = TaskFailure::Error { message };
                    let skipped = self.core.fail_expansion(t);
                    let decision = FailureDecision::Failed { skipped };
                    self.observer.event(
                        self.plan,
                        Event::Failed { task: t, attempt: 0, failure: &failure, decision, log_tail: "", metrics: None },
                        &shown(&self.core),
                    );
                    self.records[t as usize].failure = Some(failure);
                }
            }
        }
    }

    /// The items template `t` maps over, as (`{key}`, `{item}`) pairs: each
    /// output of the producer (name, name), or each line of one (number,
    /// text), at most `max_items`.
    fn items(&self, t: TaskId) -> Result<Vec<(String, String)>, String> {
        let tpl = &self.plan.tasks[t as usize];
        let Some(m) = tpl.map.as_deref() else { return Ok(Vec::new()) };
        let producer = &self.records[m.task as usize];
        let pid = &self.plan.tasks[m.task as usize].id;
        let items: Vec<(String, String)> = match &m.lines {
            // `exit_code` is the engine's, not an output the producer wrote.
            None => producer
                .outputs
                .iter()
                .filter(|o| o.name != crate::task::abi::EXIT_CODE_OUTPUT)
                .map(|o| (o.name.clone(), o.name.clone()))
                .collect(),
            Some(name) => {
                let Some(o) = producer.outputs.iter().find(|o| &o.name == name) else {
                    let produced: Vec<&str> = producer.outputs.iter().map(|o| o.name.as_str()).collect();
                    return Err(format!(
                        "cannot expand: task `{pid}` produced no output `{name}` (it produced: {})",
                        if produced.is_empty() { "nothing".to_string() } else { produced.join(", ") }
                    ));
                };
                let bytes = read_blob(self.store, &o.blob)
                    .map_err(|e| format!("cannot expand: cannot read output `{name}` of task `{pid}`: {e}"))?;
                let lines = crate::plan::map::lines(&bytes)
                    .ok_or_else(|| format!("cannot expand: output `{name}` of task `{pid}` is not UTF-8 text"))?;
                if let Some(max) = m.max_items
                    && lines.len() > max as usize
                {
                    return Err(format!(
                        "cannot expand: output `{name}` of task `{pid}` has {} lines, more than `max_items` = {max}",
                        lines.len()
                    ));
                }
                lines.iter().enumerate().map(|(i, l)| (i.to_string(), l.to_string())).collect()
            }
        };
        if let Some(max) = m.max_items
            && items.len() > max as usize
        {
            return Err(format!(
                "cannot expand: task `{pid}` produced {} outputs, more than `max_items` = {max}",
                items.len()
            ));
        }
        Ok(items)
    }
}

/// The bytes of a blob.
fn read_blob(store: &dyn BlobStore, blob: &BlobRef) -> Result<Vec<u8>, crate::store::StoreError> {
    let mut buf = vec![0u8; blob.len as usize];
    let mut at = 0;
    while at < buf.len() {
        let n = store.read_at(&blob.digest, at as u64, &mut buf[at..])?;
        if n == 0 {
            buf.truncate(at);
            break;
        }
        at += n;
    }
    Ok(buf)
}

/// The message for attempt `attempt` of task `t` with its inputs resolved.
pub fn task_message(
    plan: &Plan,
    t: TaskId,
    attempt: u32,
    inputs: Vec<MsgInput>,
    limits: &Limits,
) -> Result<TaskMessage, TaskFailure> {
    let spec = &plan.tasks[t as usize];
    let plugin = &plan.plugins[spec.plugin as usize];
    let Some(digest) = plugin.digest else {
        return Err(TaskFailure::infra(
            InfraKind::PluginLoad,
            format!("plugin `{}` was not prepared before the run", plugin.name),
        ));
    };
    Ok(TaskMessage {
        task: t,
        name: spec.id.clone(),
        attempt,
        plugin: PluginRef { digest, path: plugin.path.clone() },
        inputs,
        params: spec.params.clone(),
        limits: Limits::for_task(spec, limits),
        command: CommandOpts {
            args: spec.args.clone(),
            env: spec.env.clone(),
            stdin: spec.stdin.clone(),
            stdout: spec.stdout.clone(),
            fs: spec.fs.clone(),
        },
        deterministic: spec.deterministic,
    })
}

fn put_file(store: &dyn BlobStore, path: &Path) -> Result<BlobRef, String> {
    // A regular file only, opened without blocking and copied up to the size
    // it had when opened: a FIFO or a device swapped in after check is refused.
    let f = crate::task::files::open_regular(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = f.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    let mut w = store.put().map_err(|e| e.to_string())?;
    std::io::copy(&mut std::io::Read::take(f, len), &mut w)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let blob = w.finish().map_err(|e| e.to_string())?;
    // Worker processes share the store: make the blob visible to them now.
    store.flush().map_err(|e| e.to_string())?;
    Ok(blob)
}
