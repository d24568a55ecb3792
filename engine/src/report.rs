//! Run reports: the machine-readable JSON report (`--report`), the Chrome
//! trace-event file (`--trace`, opens in Perfetto with one lane per worker),
//! and the list of slowest tasks for the human summary.
//!
//! The report's shape is documented in `docs/pipeline.md` ("Run report").
//! `html` renders a JSON report as one offline HTML page.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::exec::driver::RunOutcome;
use crate::plan::Plan;
use crate::sched::TaskState;
use crate::store::Digest;
use crate::task::message::OutputBlob;

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
    pub tasks: Tasks<'a>,
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

/// The report's task list, serialised one task at a time straight from the
/// plan and the run's records: a million-task report is never held in
/// memory (each [`TaskReport`] borrows, and lives while it is written).
pub struct Tasks<'a> {
    plan: &'a Plan,
    out: &'a RunOutcome,
    /// Every attempt but the last of each task that had several.
    earlier: BTreeMap<u32, Vec<AttemptReport>>,
    /// The Dask worker of each lane (`--executor dask`).
    dask_lanes: Option<&'a [String]>,
}

impl<'a> Tasks<'a> {
    /// Name the Dask worker of each task that ran: `lanes[worker]`.
    pub fn on_dask(&mut self, lanes: &'a [String]) {
        self.dask_lanes = Some(lanes);
    }

    /// The report entry of task `i`.
    fn task(&self, i: usize) -> TaskReport<'_> {
        let (t, r) = (&self.plan.tasks[i], &self.out.records[i]);
        let ran = r.attempts > 0 && r.end_us > 0;
        TaskReport {
            id: &t.id,
            state: state_name(self.out.states[i]),
            attempts: r.attempts,
            cached: r.cached,
            cache_key: r.key.as_ref().map(|k| Hex(&k.key)),
            worker: ran.then_some(r.worker),
            dask_worker: self.dask_lanes.filter(|_| ran).and_then(|l| l.get(r.worker as usize)).map(String::as_str),
            start_us: ran.then_some(r.start_us),
            duration_us: ran.then(|| r.end_us.saturating_sub(r.start_us)),
            earlier_attempts: self.earlier.get(&(i as u32)).map_or(&[], Vec::as_slice),
            requested_memory: t.resources.memory,
            peak_memory: r.peak_memory,
            fuel_consumed: r.fuel_consumed,
            exit_code: r.exit_code,
            setup_us: r.phases_us.filter(|_| ran).map(|p| p[0]),
            run_us: r.phases_us.filter(|_| ran).map(|p| p[1]),
            publish_us: r.phases_us.filter(|_| ran).map(|p| p[2]),
            outputs: Outputs(&r.outputs),
            error: r.failure.as_ref().map(|f| ErrorReport { kind: f.kind(), message: f.to_string() }),
            log: r.log_path.as_deref().map(Path::display),
        }
    }
}

impl Serialize for Tasks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((0..self.plan.tasks.len()).map(|i| self.task(i)))
    }
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
    pub cache_key: Option<Hex<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    /// The Dask worker that ran the last attempt (`--executor dask`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dask_worker: Option<&'a str>,
    /// When its last attempt started, µs since the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// The attempts before the last one, in order (absent when there were none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub earlier_attempts: &'a [AttemptReport],
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
    /// By name, in name order.
    pub outputs: Outputs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "display_some")]
    pub log: Option<std::path::Display<'a>>,
}

/// A digest written as lowercase hex, without a `String` per task.
pub struct Hex<'a>(&'a Digest);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0.0, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

fn display_some<S: Serializer>(v: &Option<std::path::Display<'_>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

/// A task's outputs as a JSON object in name order (as a `BTreeMap` wrote
/// them: a name given twice keeps its last blob), without building a map.
pub struct Outputs<'a>(&'a [OutputBlob]);

impl Serialize for Outputs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        // Runtimes list outputs in name order already; anything else is sorted here.
        if o.windows(2).all(|w| w[0].name < w[1].name) {
            return s.collect_map(o.iter().map(|b| (b.name.as_str(), &b.blob)));
        }
        let mut sorted: Vec<&OutputBlob> = o.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        // Stable sort: the last of equal names wins, as a map insert would.
        let keep = |i: &usize| sorted.get(i + 1).is_none_or(|n| n.name != sorted[*i].name);
        s.collect_map((0..sorted.len()).filter(keep).map(|i| (sorted[i].name.as_str(), &sorted[i].blob)))
    }
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

/// The report of a run. Its tasks are serialised from `plan` and `out` as
/// they are written (see [`Tasks`]).
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
        tasks: Tasks { plan, out, earlier, dask_lanes: None },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::driver::{AttemptRecord, TaskRecord};
    use crate::store::BlobRef;
    use crate::task::cache::{ActionKey, Fingerprints};
    use crate::task::message::TaskFailure;

    /// The task entry as the report held it before tasks were streamed:
    /// owned, with a `BTreeMap` of outputs (the bytes must not change).
    #[derive(Serialize)]
    struct HeldTask<'a> {
        id: &'a str,
        state: &'static str,
        attempts: u32,
        cached: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        worker: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dask_worker: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        start_us: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_us: Option<u64>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        earlier_attempts: Vec<AttemptReport>,
        requested_memory: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        peak_memory: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fuel_consumed: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        setup_us: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        run_us: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        publish_us: Option<u64>,
        outputs: BTreeMap<&'a str, BlobRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ErrorReport>,
        #[serde(skip_serializing_if = "Option::is_none")]
        log: Option<String>,
    }

    /// The task list as it was built before streaming (the former `build`).
    fn held<'a>(plan: &'a Plan, out: &'a RunOutcome, lanes: &[String]) -> Vec<HeldTask<'a>> {
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
        let mut tasks: Vec<HeldTask<'a>> = plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let r = &out.records[i];
                let ran = r.attempts > 0 && r.end_us > 0;
                HeldTask {
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
        if !lanes.is_empty() {
            for (t, rec) in tasks.iter_mut().zip(&out.records) {
                if t.worker.is_some() {
                    t.dask_worker = lanes.get(rec.worker as usize).cloned();
                }
            }
        }
        tasks
    }

    fn blob(b: u8, len: u64) -> BlobRef {
        BlobRef { digest: Digest([b; 32]), len }
    }

    fn output(name: &str, b: u8) -> OutputBlob {
        OutputBlob { name: name.into(), blob: blob(b, b as u64) }
    }

    /// A plan of five tasks and records covering every field of an entry:
    /// retries, a failure with text to escape, a cached task, outputs out of
    /// name order and a name given twice, command phases, a log path, a key.
    fn run() -> (Plan, RunOutcome) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("p.toml");
        let mut text = String::from("[pipeline]\nname = \"p\"\n[plugins]\np = \"p.wasm\"\n");
        for t in ["a", "b", "c", "d", "e"] {
            text.push_str(&format!("[tasks.{t}]\nplugin = \"p\"\n"));
        }
        std::fs::write(&file, text).expect("a pipeline file");
        let opts = crate::pipeline::LoadOptions { check_plugins: false, ..Default::default() };
        let plan = crate::pipeline::load(&file, &opts).expect("a valid pipeline");
        let key = |b| Some(Box::new(ActionKey { key: Digest([b; 32]), parts: Fingerprints::default() }));
        let records = vec![
            TaskRecord {
                outputs: vec![output("z", 1), output("a", 2), output("m\"x", 3)],
                attempts: 3,
                exit_code: Some(0),
                phases_us: Some([4, 5, 6]),
                log_path: Some("/logs/a \"1\"/\n.log".into()),
                start_us: 100,
                end_us: 250,
                worker: 1,
                key: key(0xab),
                peak_memory: Some(65536),
                fuel_consumed: Some(42),
                ..TaskRecord::default()
            },
            TaskRecord {
                failure: Some(TaskFailure::Error { message: "bad \"input\"\n\tline 2 \u{7}".into() }),
                attempts: 1,
                exit_code: Some(3),
                start_us: 10,
                end_us: 20,
                ..TaskRecord::default()
            },
            TaskRecord {
                outputs: vec![output("o", 4), output("b", 5), output("o", 6)],
                cached: true,
                start_us: 30,
                end_us: 30,
                key: key(0x01),
                peak_memory: Some(1),
                ..TaskRecord::default()
            },
            TaskRecord::default(),
            TaskRecord {
                outputs: vec![output("out", 7)],
                attempts: 1,
                start_us: 5,
                end_us: 9,
                worker: 7,
                ..Default::default()
            },
        ];
        let attempt = |task, attempt, worker, start_us, end_us, outcome| AttemptRecord {
            task,
            attempt,
            worker,
            start_us,
            end_us,
            outcome,
        };
        let out = RunOutcome {
            counts: crate::sched::Counts { total: 5, succeeded: 3, failed: 1, cancelled: 1, ..Default::default() },
            states: vec![
                TaskState::Succeeded,
                TaskState::Failed,
                TaskState::Succeeded,
                TaskState::Waiting { unfinished_deps: 1 },
                TaskState::Succeeded,
            ],
            records,
            attempts: vec![
                attempt(0, 1, 0, 1, 9, "trap"),
                attempt(1, 1, 0, 10, 20, "error"),
                attempt(0, 2, 1, 50, 60, "timeout"),
                attempt(0, 3, 1, 100, 250, "ok"),
                attempt(4, 1, 7, 5, 9, "ok"),
            ],
            wall: std::time::Duration::from_millis(3),
            interrupted: false,
            cached: 1,
            record_errors: Vec::new(),
            aborted: None,
            lane_names: Vec::new(),
        };
        (plan, out)
    }

    #[test]
    fn streamed_tasks_serialise_to_the_bytes_of_the_held_report() {
        let (plan, out) = run();
        let lanes = vec!["tcp://w0:1".to_string(), "tcp://w\"1\":2".to_string()];
        for dask in [false, true] {
            let mut r = build(&plan, &out, "failed", "threads", 2, &"st", Vec::new());
            let held = held(&plan, &out, if dask { &lanes } else { &[] });
            if dask {
                r.tasks.on_dask(&lanes);
            }
            let streamed = serde_json::to_string_pretty(&r.tasks).expect("serialises");
            assert_eq!(streamed, serde_json::to_string_pretty(&held).expect("serialises"));
            assert_eq!(
                serde_json::to_string(&r.tasks).expect("serialises"),
                serde_json::to_string(&held).expect("serialises")
            );
            // The fixture exercises what it is meant to.
            for needle in ["\"earlier_attempts\"", "\"cache_key\": \"abab", "\"setup_us\": 4", "\"m\\\"x\""] {
                assert!(streamed.contains(needle), "{needle} in {streamed}");
            }
            assert_eq!(streamed.contains("tcp://w0:1"), dask);
        }
    }
}
