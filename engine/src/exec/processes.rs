//! The `processes` executor: tasks run in `engine worker` subprocesses of the
//! same binary, driven over stdio pipes with the framed protocol in
//! [`super::proto`]. Each worker has its own wasmtime engine and shares the
//! on-disk compiled-module cache and the blob store with the parent.
//!
//! A worker that dies (SIGKILL, abort, out of memory) or speaks garbage is
//! replaced by a fresh one, and its task comes back as
//! `TaskFailure::WorkerLost`; the scheduler core retries it on another worker
//! until the same task has taken down `MAX_WORKER_LOST` workers in a row.

use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::Executor;
use super::message::{TaskFailure, TaskMessage, TaskMetrics, TaskResult};
use super::proto::{FromWorker, PROTOCOL_VERSION, ToWorker, WorkerInit, read_frame, write_frame};

pub struct ProcessesConfig {
    pub workers: usize,
    /// The `engine` binary to start (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    pub store_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub max_task_memory: u64,
    pub plugins: Vec<PathBuf>,
    pub run_start: SystemTime,
    pub harden: bool,
}

enum Event {
    Frame(FromWorker),
    /// The worker's stdout ended or carried garbage.
    Gone(String),
}

struct Worker {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    /// The task it is running, if any.
    busy: Option<(u32, u32)>,
    /// Bumped on every respawn so stale events from a dead process are ignored.
    generation: u64,
}

pub struct ProcessesExecutor {
    cfg: ProcessesConfig,
    workers: Vec<Worker>,
    tx: Sender<(usize, u64, Event)>,
    rx: Receiver<(usize, u64, Event)>,
    next_generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start worker process {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("worker {worker} failed to start: {message}")]
    Start { worker: usize, message: String },
}

impl ProcessesExecutor {
    pub fn new(cfg: ProcessesConfig) -> Result<Self, SpawnError> {
        let (tx, rx) = unbounded();
        let mut ex = ProcessesExecutor { cfg, workers: Vec::new(), tx, rx, next_generation: 0 };
        for i in 0..ex.cfg.workers.max(1) {
            let w = ex.spawn(i)?;
            ex.workers.push(w);
        }
        // Wait for every worker's handshake so start-up errors surface here.
        let mut ready = 0;
        while ready < ex.workers.len() {
            match ex.rx.recv_timeout(Duration::from_secs(120)) {
                Ok((_, _, Event::Frame(FromWorker::Ready { protocol, .. }))) if protocol == PROTOCOL_VERSION => {
                    ready += 1
                }
                Ok((i, _, Event::Frame(FromWorker::Ready { protocol, .. }))) => {
                    return Err(SpawnError::Start {
                        worker: i,
                        message: format!("speaks protocol {protocol}, expected {PROTOCOL_VERSION}"),
                    });
                }
                Ok((i, _, Event::Frame(FromWorker::Fatal { message }))) => {
                    return Err(SpawnError::Start { worker: i, message });
                }
                Ok((i, _, Event::Gone(message))) => {
                    return Err(SpawnError::Start { worker: i, message });
                }
                Ok((i, _, Event::Frame(FromWorker::Result(_)))) => {
                    return Err(SpawnError::Start { worker: i, message: "sent a result before its handshake".into() });
                }
                Err(_) => {
                    return Err(SpawnError::Start { worker: 0, message: "no handshake within 120 s".into() });
                }
            }
        }
        Ok(ex)
    }

    fn spawn(&mut self, index: usize) -> Result<Worker, SpawnError> {
        let mut child = Command::new(&self.cfg.exe)
            .arg("worker")
            .arg("--index")
            .arg(index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| SpawnError::Spawn { exe: self.cfg.exe.display().to_string(), source: e })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SpawnError::Start { worker: index, message: "no stdio pipes".into() });
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("engine-worker-reader-{index}"))
            .spawn(move || {
                let mut r = BufReader::new(stdout);
                loop {
                    match read_frame::<FromWorker>(&mut r) {
                        Ok(f) => {
                            if tx.send((index, generation, Event::Frame(f))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send((index, generation, Event::Gone(e.to_string())));
                            return;
                        }
                    }
                }
            })
            .map_err(|e| SpawnError::Spawn { exe: "reader thread".into(), source: e })?;
        let mut stdin = BufWriter::new(stdin);
        let init = ToWorker::Init(WorkerInit {
            protocol: PROTOCOL_VERSION,
            worker: index as u32,
            store_dir: self.cfg.store_dir.clone(),
            cache_dir: self.cfg.cache_dir.clone(),
            max_task_memory: self.cfg.max_task_memory,
            plugins: self.cfg.plugins.clone(),
            run_start_unix_us: self.cfg.run_start.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0),
            harden: self.cfg.harden,
        });
        // A write error means the child died at once; the reader reports it.
        let _ = write_frame(&mut stdin, &init);
        Ok(Worker { child, stdin, busy: None, generation })
    }

    /// Replace a dead worker; returns the task it was running.
    fn replace(&mut self, i: usize, why: &str) -> Option<TaskResult> {
        let old = &mut self.workers[i];
        let _ = old.child.kill();
        let status = old.child.wait().ok();
        let pid = old.child.id();
        let busy = old.busy.take();
        let detail = match status {
            Some(s) => describe_exit(s),
            None => why.to_string(),
        };
        match self.spawn(i) {
            Ok(w) => self.workers[i] = w,
            Err(e) => eprintln!("warning: could not replace worker {i}: {e}"),
        }
        busy.map(|(task, attempt)| TaskResult {
            task,
            attempt,
            outcome: Err(TaskFailure::WorkerLost { message: format!("worker {i} (pid {pid}) {detail}") }),
            log: Vec::new(),
            metrics: TaskMetrics { worker: i as u32, ..TaskMetrics::default() },
        })
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = s.signal() {
        let name = match sig {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        format!("was killed by signal {sig}{name}")
    } else {
        format!("exited unexpectedly with status {}", s.code().unwrap_or(-1))
    }
}

impl Executor for ProcessesExecutor {
    fn slots(&self) -> usize {
        self.workers.len()
    }

    fn submit(&mut self, msg: TaskMessage) {
        let Some(i) = self.workers.iter().position(|w| w.busy.is_none()) else {
            // The driver never submits more than `slots()` tasks; treat it as lost.
            let _ = self.tx.send((usize::MAX, 0, Event::Gone(format!("no idle worker for task {}", msg.task))));
            return;
        };
        self.workers[i].busy = Some((msg.task, msg.attempt));
        if let Err(e) = write_frame(&mut self.workers[i].stdin, &ToWorker::Run(msg)) {
            // The reader thread will see EOF and report the loss.
            let _ = e;
        }
    }

    fn recv(&mut self, timeout: Duration) -> Option<TaskResult> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (i, generation, ev) = self.rx.recv_timeout(left).ok()?;
            if i >= self.workers.len() || self.workers[i].generation != generation {
                continue; // stale event from a replaced worker
            }
            match ev {
                Event::Frame(FromWorker::Result(mut res)) => {
                    self.workers[i].busy = None;
                    res.metrics.worker = i as u32;
                    return Some(res);
                }
                Event::Frame(FromWorker::Ready { .. }) => continue,
                Event::Frame(FromWorker::Fatal { message }) | Event::Gone(message) => {
                    if let Some(res) = self.replace(i, &message) {
                        return Some(res);
                    }
                }
            }
        }
    }

    fn cancel_all(&mut self) {
        for w in &mut self.workers {
            if w.busy.is_some() {
                let _ = write_frame(&mut w.stdin, &ToWorker::Cancel);
            }
        }
    }
}

impl Drop for ProcessesExecutor {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = write_frame(&mut w.stdin, &ToWorker::Shutdown);
        }
        for w in &mut self.workers {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            loop {
                match w.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    _ => {
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

/// The PIDs of the worker processes (for tests and diagnostics).
impl ProcessesExecutor {
    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.child.id()).collect()
    }
}
