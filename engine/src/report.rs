//! Run reports: the machine-readable JSON report (`--report`), the Chrome
//! trace-event file (`--trace`, opens in Perfetto with one lane per worker),
//! and the list of slowest tasks for the human summary.
//!
//! The report's shape is documented in `docs/pipeline.md` ("Run report").
//! `html` renders a JSON report as one offline HTML page.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::exec::driver::RunOutcome;
use crate::plan::Plan;
use crate::sched::TaskState;
use crate::store::BlobRef;

pub mod dashboard;
pub mod events;
pub mod html;

#[derive(Serialize)]
pub struct Report<'a> {
    pub pipeline: &'a str,
    pub pipeline_file: String,
    /// `succeeded`, `failed` or `interrupted`.
    pub status: &'a str,
    pub executor: &'a str,
    /// The Dask scheduler's address (`--executor dask`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    pub workers: usize,
    pub store: String,
    pub wall_ms: f64,
    pub counts: Counts,
    /// Each plugin as it was prepared before the tasks started.
    pub plugins: Vec<PluginReport>,
    pub tasks: Vec<TaskReport<'a>>,
}

/// How a plugin was prepared for the run.
#[derive(Serialize, Clone)]
pub struct PluginReport {
    /// The name in `[plugins]`.
    pub name: String,
    /// sha256 of the module, hex.
    pub sha256: String,
    /// True when the compiled module came from the cache (no compilation).
    pub cached: bool,
    /// Milliseconds to compile, or to load from the cache, and link.
    pub load_ms: f64,
    /// Why it could not be prepared (its tasks failed with this), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct Counts {
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: u32,
    /// Succeeded tasks that came from the action cache.
    pub cached: u32,
}

#[derive(Serialize)]
pub struct TaskReport<'a> {
    pub id: &'a str,
    /// `succeeded`, `failed`, `skipped` or `cancelled`.
    pub state: &'static str,
    pub attempts: u32,
    /// True when the task was completed from the action cache (0 attempts).
    pub cached: bool,
    /// The task's action-cache key (sha256 hex), when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    /// The Dask worker that ran the last attempt (`--executor dask`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dask_worker: Option<String>,
    /// When its last attempt started, µs since the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// The attempts before the last one, in order (absent when there were none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier_attempts: Vec<AttemptReport>,
    /// The task's `resources.memory`: its request and its memory limit, bytes.
    pub requested_memory: u64,
    /// Peak wasm linear memory of the last attempt, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory: Option<u64>,
    /// Fuel (wasm instructions, roughly) the last attempt consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Command tasks without mounts or a workdir: `duration_us` split into
    /// set-up, the program's run and publishing its outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_us: Option<u64>,
    pub outputs: BTreeMap<&'a str, BlobRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// An attempt before a task's last one.
#[derive(Serialize)]
pub struct AttemptReport {
    pub worker: u32,
    pub start_us: u64,
    pub duration_us: u64,
    /// The failure kind (`error`, `trap`, `timeout`, ...), or `ok`.
    pub outcome: &'static str,
}

#[derive(Serialize)]
pub struct ErrorReport {
    pub kind: &'static str,
    pub message: String,
}

pub fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Succeeded => "succeeded",
        TaskState::Failed => "failed",
        TaskState::Skipped => "skipped",
        TaskState::Cancelled => "cancelled",
        TaskState::Waiting { .. } | TaskState::Ready | TaskState::Backoff { .. } | TaskState::Expanding => "cancelled",
        TaskState::Running => "running",
    }
}

pub fn build<'a>(
    plan: &'a Plan,
    out: &'a RunOutcome,
    status: &'a str,
    executor: &'a str,
    workers: usize,
    store: &dyn std::fmt::Display,
    plugins: Vec<PluginReport>,
) -> Report<'a> {
    // Every attempt but the last of each task that had several.
    let mut earlier: BTreeMap<u32, Vec<AttemptReport>> = BTreeMap::new();
    for a in &out.attempts {
        if a.attempt < out.records[a.task as usize].attempts {
            earlier.entry(a.task).or_default().push(AttemptReport {
                worker: a.worker,
                start_us: a.start_us,
                duration_us: a.end_us.saturating_sub(a.start_us),
                outcome: a.outcome,
            });
        }
    }
    let tasks = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let r = &out.records[i];
            let ran = r.attempts > 0 && r.end_us > 0;
            TaskReport {
                id: &t.id,
                state: state_name(out.states[i]),
                attempts: r.attempts,
                cached: r.cached,
                cache_key: r.key.as_ref().map(|k| k.key.to_hex()),
                worker: ran.then_some(r.worker),
                dask_worker: None,
                start_us: ran.then_some(r.start_us),
                duration_us: ran.then(|| r.end_us.saturating_sub(r.start_us)),
                earlier_attempts: earlier.remove(&(i as u32)).unwrap_or_default(),
                requested_memory: t.resources.memory,
                peak_memory: r.peak_memory,
                fuel_consumed: r.fuel_consumed,
                exit_code: r.exit_code,
                setup_us: r.phases_us.filter(|_| ran).map(|p| p[0]),
                run_us: r.phases_us.filter(|_| ran).map(|p| p[1]),
                publish_us: r.phases_us.filter(|_| ran).map(|p| p[2]),
                outputs: r.outputs.iter().map(|o| (o.name.as_str(), o.blob)).collect(),
                error: r.failure.as_ref().map(|f| ErrorReport { kind: f.kind(), message: f.to_string() }),
                log: r.log_path.as_ref().map(|p| p.display().to_string()),
            }
        })
        .collect();
    Report {
        pipeline: &plan.name,
        pipeline_file: plan.pipeline_file.display().to_string(),
        status,
        executor,
        scheduler: None,
        workers,
        store: store.to_string(),
        wall_ms: out.wall.as_secs_f64() * 1000.0,
        counts: Counts {
            total: out.counts.total,
            succeeded: out.counts.succeeded,
            failed: out.counts.failed,
            skipped: out.counts.skipped,
            cancelled: out.counts.cancelled,
            cached: out.cached as u32,
        },
        plugins,
        tasks,
    }
}

/// Write the Chrome trace-event JSON: one complete ("X") event per attempt,
/// `tid` = worker, plus thread-name metadata so each worker is a named lane.
pub fn write_trace(plan: &Plan, out: &RunOutcome, w: &mut dyn Write) -> std::io::Result<()> {
    let mut workers: Vec<u32> = out.attempts.iter().map(|a| a.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    write!(w, "{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[")?;
    let mut first = true;
    for wk in &workers {
        if !first {
            write!(w, ",")?;
        }
        first = false;
        let lane = match out.lane_names.get(*wk as usize) {
            Some(n) => serde_json::to_string(n).unwrap_or_else(|_| "\"?\"".into()),
            None => format!("\"worker {wk}\""),
        };
        write!(w, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{wk},\"args\":{{\"name\":{lane}}}}}")?;
    }
    for a in &out.attempts {
        if !first {
            write!(w, ",")?;
        }
        first = false;
        let name = serde_json::to_string(&plan.tasks[a.task as usize].id).unwrap_or_else(|_| "\"?\"".into());
        write!(
            w,
            "{{\"name\":{name},\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{\"attempt\":{},\"outcome\":\"{}\"}}}}",
            a.worker,
            a.start_us,
            a.end_us.saturating_sub(a.start_us),
            a.attempt,
            a.outcome
        )?;
    }
    // Cached tasks ran no attempt: an instant event each, on lane 0.
    for (i, r) in out.records.iter().enumerate().filter(|(_, r)| r.cached) {
        if !first {
            write!(w, ",")?;
        }
        first = false;
        let name = serde_json::to_string(&plan.tasks[i].id).unwrap_or_else(|_| "\"?\"".into());
        write!(
            w,
            "{{\"name\":{name},\"cat\":\"cached\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":0,\"ts\":{},\"args\":{{\"cached\":true}}}}",
            r.start_us
        )?;
    }
    writeln!(w, "]}}")
}

/// The `n` slowest successful tasks: (id, duration in µs), slowest first.
pub fn slowest<'a>(plan: &'a Plan, out: &RunOutcome, n: usize) -> Vec<(&'a str, u64)> {
    let mut v: Vec<(&str, u64)> = plan
        .tasks
        .iter()
        .enumerate()
        // A mapped task succeeds without running: it is not among them.
        .filter(|(i, t)| out.states[*i] == TaskState::Succeeded && !out.records[*i].cached && t.map.is_none())
        .map(|(i, t)| (t.id.as_str(), out.records[i].end_us.saturating_sub(out.records[i].start_us)))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}
