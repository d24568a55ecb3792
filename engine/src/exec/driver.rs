//! The run loop: connects the scheduler core to an executor, the store and an
//! observer (progress display), and records what happened for the report and
//! the trace.
//!
//! The loop: move due retries to ready; start as many tasks as the executor
//! has free slots and the core allows; wait for a result (bounded by the next
//! retry time and a short tick so Ctrl-C is noticed); feed it to the core.
//! A task's inputs are resolved to blob digests when it starts: upstream
//! outputs by name, external `file:` inputs by copying the file into the store
//! once per run.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Executor;
use super::message::{
    CommandOpts, DEFAULT_TASK_MEMORY, Limits, MsgInput, OutputBlob, PluginRef, TaskFailure,
    TaskMessage, TaskResult,
};
use crate::plan::{Plan, Source, TaskId};
use crate::sched::{Core, CoreOptions, Counts, FailureClass, FailureDecision, TaskState};
use crate::store::{BlobRef, BlobStore, Digest};

pub struct RunOptions {
    pub fail_fast: bool,
    pub backoff_base: Duration,
    /// Where per-task logs are written (created on first use).
    pub log_dir: PathBuf,
    /// Set from a signal handler to interrupt the run.
    pub interrupt: Arc<AtomicBool>,
    pub limits: Limits,
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
    pub log_path: Option<PathBuf>,
    pub start_us: u64,
    pub end_us: u64,
    pub worker: u32,
}

pub struct RunOutcome {
    pub counts: Counts,
    pub states: Vec<TaskState>,
    pub records: Vec<TaskRecord>,
    pub attempts: Vec<AttemptRecord>,
    pub wall: Duration,
    pub interrupted: bool,
}

/// What an observer (the progress display) is told.
pub enum Event<'a> {
    Started {
        task: TaskId,
        attempt: u32,
    },
    Succeeded {
        task: TaskId,
    },
    Failed {
        task: TaskId,
        attempt: u32,
        failure: &'a TaskFailure,
        decision: FailureDecision,
        log_tail: &'a str,
    },
    Cancelled {
        task: TaskId,
    },
    Interrupted,
    Tick,
}

pub trait Observer {
    fn event(&mut self, ev: Event<'_>, counts: &Counts);
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {
    fn event(&mut self, _: Event<'_>, _: &Counts) {}
}

/// How many trailing log lines a failure message shows.
pub const LOG_TAIL_LINES: usize = 10;

/// Run every task of `plan`. `plugins[i]` is the digest of `plan.plugins[i]`.
pub fn run_plan(
    plan: &Plan,
    plugins: &[Digest],
    exec: &mut dyn Executor,
    store: &dyn BlobStore,
    opts: &RunOptions,
    observer: &mut dyn Observer,
    run_start: Instant,
) -> RunOutcome {
    let mut core = Core::new(
        plan,
        CoreOptions {
            fail_fast: opts.fail_fast,
            backoff_base: opts.backoff_base,
            ..CoreOptions::default()
        },
    );
    let n = plan.tasks.len();
    let mut records: Vec<TaskRecord> = vec![TaskRecord::default(); n];
    let mut attempts: Vec<AttemptRecord> = Vec::with_capacity(n);
    let mut files: HashMap<PathBuf, Result<BlobRef, String>> = HashMap::new();
    let mut in_flight = 0usize;
    let mut starts: Vec<TaskId> = Vec::new();
    let mut interrupted = false;
    let mut cancel_sent = false;
    let mut last_tick = Instant::now();
    let slots = exec.slots();

    loop {
        let now = run_start.elapsed();
        if !interrupted && opts.interrupt.load(Ordering::SeqCst) {
            interrupted = true;
            core.stop();
            exec.cancel_all();
            cancel_sent = true;
            observer.event(Event::Interrupted, &core.counts());
        }
        core.tick(now);
        starts.clear();
        core.schedule(slots.saturating_sub(in_flight), &mut starts);
        for &t in &starts {
            let attempt = core.attempt(t);
            match build_message(
                plan,
                plugins,
                t,
                attempt,
                &records,
                store,
                &mut files,
                &opts.limits,
            ) {
                Ok(msg) => {
                    observer.event(Event::Started { task: t, attempt }, &core.counts());
                    exec.submit(msg);
                    in_flight += 1;
                }
                Err(failure) => {
                    // Could not even start: not retryable (the inputs will not change).
                    let decision = core.on_failure(t, FailureClass::Final, now);
                    let rec = &mut records[t as usize];
                    rec.attempts = attempt;
                    observer.event(
                        Event::Failed {
                            task: t,
                            attempt,
                            failure: &failure,
                            decision,
                            log_tail: "",
                        },
                        &core.counts(),
                    );
                    rec.failure = Some(failure);
                }
            }
        }
        if core.is_done() && in_flight == 0 {
            break;
        }
        if in_flight == 0 && starts.is_empty() {
            // Only retries in backoff remain: sleep until the next one is due.
            let wait = core
                .next_wakeup()
                .map(|at| at.saturating_sub(run_start.elapsed()))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(100));
            std::thread::sleep(wait);
            continue;
        }
        let wait = core
            .next_wakeup()
            .map(|at| at.saturating_sub(run_start.elapsed()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        let Some(res) = exec.recv(wait) else {
            if last_tick.elapsed() >= Duration::from_millis(100) {
                last_tick = Instant::now();
                observer.event(Event::Tick, &core.counts());
            }
            continue;
        };
        in_flight -= 1;
        handle_result(
            plan,
            &mut core,
            res,
            &mut records,
            &mut attempts,
            opts,
            observer,
            run_start,
        );
        // Drain whatever else is already there without blocking.
        while let Some(res) = exec.recv(Duration::ZERO) {
            in_flight -= 1;
            handle_result(
                plan,
                &mut core,
                res,
                &mut records,
                &mut attempts,
                opts,
                observer,
                run_start,
            );
        }
        if core.is_stopped() && !cancel_sent {
            // --fail-fast (or Ctrl-C): interrupt whatever is still running.
            cancel_sent = true;
            exec.cancel_all();
        }
    }

    let states = (0..n as TaskId).map(|t| core.state(t)).collect();
    RunOutcome {
        counts: core.counts(),
        states,
        records,
        attempts,
        wall: run_start.elapsed(),
        interrupted,
    }
}

#[allow(clippy::too_many_arguments)]
fn handle_result(
    plan: &Plan,
    core: &mut Core,
    res: TaskResult,
    records: &mut [TaskRecord],
    attempts: &mut Vec<AttemptRecord>,
    opts: &RunOptions,
    observer: &mut dyn Observer,
    run_start: Instant,
) {
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
    rec.worker = m.worker;
    if res.attempt == 1 || rec.start_us == 0 {
        rec.start_us = m.start_us;
    }
    rec.end_us = m.end_us;
    if !res.log.is_empty() {
        rec.log_path = write_log(
            &opts.log_dir,
            &plan.tasks[t as usize].id,
            res.attempt,
            &res.log,
        );
    }
    match res.outcome {
        Ok(outputs) => {
            rec.outputs = outputs;
            rec.failure = None;
            core.on_success(t);
            observer.event(Event::Succeeded { task: t }, &core.counts());
        }
        Err(TaskFailure::Cancelled) => {
            rec.failure = Some(TaskFailure::Cancelled);
            core.on_cancelled(t);
            observer.event(Event::Cancelled { task: t }, &core.counts());
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
            observer.event(
                Event::Failed {
                    task: t,
                    attempt: res.attempt,
                    failure: &failure,
                    decision,
                    log_tail: &tail,
                },
                &core.counts(),
            );
            rec.failure = Some(failure);
        }
    }
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
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    if attempt > 1 {
        let _ = writeln!(f, "--- attempt {attempt} ---");
    }
    f.write_all(log).ok()?;
    Some(path)
}

#[allow(clippy::too_many_arguments)]
fn build_message(
    plan: &Plan,
    plugins: &[Digest],
    t: TaskId,
    attempt: u32,
    records: &[TaskRecord],
    store: &dyn BlobStore,
    files: &mut HashMap<PathBuf, Result<BlobRef, String>>,
    limits: &Limits,
) -> Result<TaskMessage, TaskFailure> {
    let spec = &plan.tasks[t as usize];
    let mut inputs = Vec::with_capacity(spec.inputs.len());
    for input in &spec.inputs {
        let mut items = Vec::with_capacity(input.sources.len());
        for src in &input.sources {
            let blob = match src {
                Source::Task { task, output } => {
                    let up = &records[*task as usize];
                    match up.outputs.iter().find(|o| &o.name == output) {
                        Some(o) => o.blob,
                        None => {
                            let produced: Vec<&str> =
                                up.outputs.iter().map(|o| o.name.as_str()).collect();
                            return Err(TaskFailure::Error {
                                message: format!(
                                    "input `{}`: task `{}` produced no output `{}` (it produced: {})",
                                    input.name,
                                    plan.tasks[*task as usize].id,
                                    output,
                                    if produced.is_empty() {
                                        "nothing".to_string()
                                    } else {
                                        produced.join(", ")
                                    }
                                ),
                            });
                        }
                    }
                }
                Source::File { path } => files
                    .entry(path.clone())
                    .or_insert_with(|| put_file(store, path))
                    .clone()
                    .map_err(|message| TaskFailure::Infra {
                        message: format!("input `{}`: {message}", input.name),
                    })?,
            };
            items.push(blob);
        }
        inputs.push(MsgInput {
            name: input.name.clone(),
            list: input.list,
            items,
        });
    }
    let plugin = &plan.plugins[spec.plugin as usize];
    let memory = if spec.resources.memory == 0 {
        DEFAULT_TASK_MEMORY
    } else {
        spec.resources.memory
    };
    Ok(TaskMessage {
        task: t,
        name: spec.id.clone(),
        attempt,
        plugin: PluginRef {
            digest: plugins[spec.plugin as usize],
            path: plugin.path.clone(),
        },
        inputs,
        params: spec.params.clone(),
        limits: Limits {
            memory,
            timeout: spec.timeout,
            fuel: spec.fuel,
            ..limits.clone()
        },
        command: CommandOpts {
            args: spec.args.clone(),
            env: spec.env.clone(),
            stdin: spec.stdin.clone(),
            stdout: spec.stdout.clone(),
        },
        deterministic: spec.deterministic,
    })
}

fn put_file(store: &dyn BlobStore, path: &Path) -> Result<BlobRef, String> {
    let mut f = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut w = store.put().map_err(|e| e.to_string())?;
    std::io::copy(&mut f, &mut w).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let blob = w.finish().map_err(|e| e.to_string())?;
    // Worker processes share the store: make the blob visible to them now.
    store.flush().map_err(|e| e.to_string())?;
    Ok(blob)
}
