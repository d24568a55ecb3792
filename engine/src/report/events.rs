//! The run's event stream as NDJSON (`engine run --events FILE`): one JSON
//! object per line, each with the format version `v`, the time `t_us` and
//! the kind `event`. The format is documented, and kept stable, in
//! `docs/pipeline.md` ("`--events FILE`"): a later engine may add fields or
//! event kinds under `"v":1`, and changes or removes one only with a new `v`.
//!
//! [`record`] turns a driver [`Event`] into a typed [`Record`]; [`EventLog`]
//! is the observer that writes them. The dashboard (`report::dashboard`)
//! folds the same events. Nothing here runs unless one of them was asked
//! for: the driver's per-task cost without them is a branch.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use crate::exec::driver::{Event, Observer};
use crate::plan::{Plan, Resources, TaskId};
use crate::sched::{Counts, FailureDecision};
use crate::task::message::{OutputBlob, TaskMetrics};

/// The format version, `v` on every line.
pub const VERSION: u32 = 1;

/// How long a written line may wait in the buffer while events keep coming.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One line of the stream.
#[derive(Serialize)]
pub struct Record<'a> {
    pub v: u32,
    /// Microseconds since the run started.
    pub t_us: u64,
    #[serde(flatten)]
    pub kind: Kind<'a>,
}

/// The event kinds, tagged `event` (see `docs/pipeline.md` for each field).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Kind<'a> {
    Run {
        pipeline: &'a str,
        executor: &'a str,
        workers: usize,
        tasks: usize,
        capacity: Res<'a>,
    },
    Queued {
        task: &'a str,
    },
    Started {
        task: &'a str,
        attempt: u32,
        worker: u32,
        resources: Res<'a>,
    },
    Finished {
        task: &'a str,
        attempt: u32,
        worker: u32,
        start_us: u64,
        end_us: u64,
        outputs: usize,
        output_bytes: u64,
        peak_memory: Option<u64>,
        fuel_consumed: Option<u64>,
    },
    Retried {
        task: &'a str,
        attempt: u32,
        worker: Option<u32>,
        start_us: Option<u64>,
        end_us: Option<u64>,
        kind: &'static str,
        message: String,
        retry_at_us: u64,
    },
    Failed {
        task: &'a str,
        attempt: u32,
        worker: Option<u32>,
        start_us: Option<u64>,
        end_us: Option<u64>,
        kind: &'static str,
        message: String,
        log_tail: &'a str,
        skipped: u32,
    },
    Cached {
        task: &'a str,
        outputs: usize,
        output_bytes: u64,
    },
    Expanded {
        task: &'a str,
        children: u32,
    },
    Cancelled {
        task: &'a str,
    },
    Interrupted {},
    End {
        wall_us: u64,
        interrupted: bool,
        counts: EndCounts,
    },
}

/// The task counts of the `end` event.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndCounts {
    pub total: u32,
    pub succeeded: u32,
    pub cached: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: u32,
}

/// Resources as the stream writes them: `cpu` in CPUs, `memory` in bytes,
/// `gpu` a count, `custom` by name in units (all as numbers).
pub struct Res<'a>(pub &'a Resources);

impl Serialize for Res<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Custom<'a>(&'a BTreeMap<String, u64>);
        impl Serialize for Custom<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, &(*v as f64 / 1000.0))?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_struct("Resources", 4)?;
        m.serialize_field("cpu", &(self.0.cpu_milli as f64 / 1000.0))?;
        m.serialize_field("memory", &self.0.memory)?;
        m.serialize_field("gpu", &self.0.gpu)?;
        m.serialize_field("custom", &Custom(&self.0.custom))?;
        m.end()
    }
}

/// Total length of a task's outputs, in bytes.
pub fn output_bytes(outputs: &[OutputBlob]) -> u64 {
    outputs.iter().map(|o| o.blob.len).sum()
}

/// The record of `ev` at `t_us`, or `None` for an event the stream does not
/// carry (`Tick`). `executor` names the executor in the `run` event.
pub fn record<'a>(plan: &'a Plan, ev: &'a Event<'a>, executor: &'a str, t_us: u64, c: &Counts) -> Option<Record<'a>> {
    let id = |t: TaskId| plan.tasks[t as usize].id.as_str();
    let when = |m: Option<&TaskMetrics>| (m.map(|m| m.worker), m.map(|m| m.start_us), m.map(|m| m.end_us));
    let kind = match *ev {
        Event::Begin { workers, .. } => Kind::Run {
            pipeline: &plan.name,
            executor,
            workers,
            tasks: plan.tasks.len(),
            capacity: Res(&plan.capacity),
        },
        Event::Queued { task } => Kind::Queued { task: id(task) },
        Event::Started { task, attempt, worker, .. } => {
            Kind::Started { task: id(task), attempt, worker, resources: Res(&plan.tasks[task as usize].resources) }
        }
        Event::Succeeded { task, attempt, metrics: m, outputs } => Kind::Finished {
            task: id(task),
            attempt,
            worker: m.worker,
            start_us: m.start_us,
            end_us: m.end_us,
            outputs: outputs.len(),
            output_bytes: output_bytes(outputs),
            // As in the report: measured only when the attempt ran in the sandbox.
            peak_memory: m.measured.then_some(m.peak_memory),
            fuel_consumed: m.fuel_consumed,
        },
        Event::Cached { task, outputs } => {
            Kind::Cached { task: id(task), outputs: outputs.len(), output_bytes: output_bytes(outputs) }
        }
        Event::Expanded { task, children } => Kind::Expanded { task: id(task), children },
        Event::Failed { task, attempt, failure, decision, log_tail, metrics } => {
            let (worker, start_us, end_us) = when(metrics);
            match decision {
                FailureDecision::Retry { at } => Kind::Retried {
                    task: id(task),
                    attempt,
                    worker,
                    start_us,
                    end_us,
                    kind: failure.kind(),
                    message: failure.to_string(),
                    retry_at_us: at.as_micros() as u64,
                },
                FailureDecision::Failed { skipped } => Kind::Failed {
                    task: id(task),
                    attempt,
                    worker,
                    start_us,
                    end_us,
                    kind: failure.kind(),
                    message: failure.to_string(),
                    log_tail,
                    skipped,
                },
            }
        }
        Event::Cancelled { task } => Kind::Cancelled { task: id(task) },
        Event::Interrupted => Kind::Interrupted {},
        Event::Tick => return None,
        Event::End { cached, interrupted } => Kind::End {
            wall_us: t_us,
            interrupted,
            counts: EndCounts {
                total: c.total,
                succeeded: c.succeeded,
                cached: cached as u32,
                failed: c.failed,
                skipped: c.skipped,
                cancelled: c.cancelled,
            },
        },
    };
    Some(Record { v: VERSION, t_us, kind })
}

/// Where [`EventLog`] keeps the first write error, for the caller to report
/// once the run is over.
pub type WriteError = Arc<Mutex<Option<std::io::Error>>>;

/// The observer behind `--events FILE`: every event as one line, flushed at
/// least every [`FLUSH_EVERY`] while events come, on every tick and at the
/// end. After a write error it writes nothing more.
pub struct EventLog {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    executor: &'static str,
    start: Instant,
    last_flush: Instant,
    dirty: bool,
    failed: bool,
    error: WriteError,
}

impl EventLog {
    pub fn new(out: Box<dyn Write + Send>, executor: &'static str) -> EventLog {
        EventLog {
            out: std::io::BufWriter::with_capacity(64 << 10, out),
            executor,
            start: Instant::now(),
            last_flush: Instant::now(),
            dirty: false,
            failed: false,
            error: Arc::default(),
        }
    }

    /// The first write error, once there was one.
    pub fn error(&self) -> WriteError {
        self.error.clone()
    }

    fn write(&mut self, plan: &Plan, ev: &Event<'_>, c: &Counts) -> std::io::Result<()> {
        if let Event::Begin { run_start, .. } = ev {
            self.start = *run_start;
        }
        let now = Instant::now();
        let t_us = now.saturating_duration_since(self.start).as_micros() as u64;
        if let Some(rec) = record(plan, ev, self.executor, t_us, c) {
            serde_json::to_writer(&mut self.out, &rec)?;
            self.out.write_all(b"\n")?;
            self.dirty = true;
        }
        let end = matches!(ev, Event::End { .. });
        if self.dirty && (end || now.duration_since(self.last_flush) >= FLUSH_EVERY || matches!(ev, Event::Tick)) {
            self.out.flush()?;
            self.dirty = false;
            self.last_flush = now;
        }
        Ok(())
    }
}

impl Observer for EventLog {
    fn event(&mut self, plan: &Plan, ev: Event<'_>, counts: &Counts) {
        if self.failed {
            return;
        }
        if let Err(e) = self.write(plan, &ev, counts) {
            self.failed = true;
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    }

    fn wants_queued(&self) -> bool {
        true
    }
}
