//! The `processes` executor: tasks run in `engine worker` subprocesses of the
//! same binary, driven over stdio pipes with the framed protocol in
//! [`super::proto`]. Each worker has its own wasmtime engine and shares the
//! on-disk compiled-module cache and the blob store with the parent.
//!
//! # Keeping workers busy
//!
//! A worker runs the tasks sent to it one at a time, in order. While recent
//! tasks are short (their mean under [`SHORT_TASK`]), each worker is sent up to
//! [`QUEUE_DEPTH`] tasks, so it starts the next one as soon as it finishes one
//! instead of idling for a round trip on the pipe and the parent's scheduling;
//! with longer tasks a round trip does not matter and one task at a time keeps
//! the load even. The resource ledger counts queued tasks through the core's
//! lanes (see "Dispatch policy" in `sched`). The parent reads every worker's
//! pipe from one thread with `poll(2)`, so a result costs no thread hand-off,
//! and frames for a worker are written together in one `write`.
//!
//! # Crashes
//!
//! A worker that dies (SIGKILL, abort, out of memory) or speaks garbage is
//! replaced by a fresh one. A worker writes each result before it starts its
//! next task, so once its pipe is drained the first task still unanswered is
//! the one it was running: that task comes back as `TaskFailure::WorkerLost`
//! (the scheduler core retries it on another worker until the same task has
//! taken down `MAX_WORKER_LOST` workers in a row), and the tasks queued behind
//! it come back as [`Completion::Unstarted`], which is not an attempt.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::proto::{FromWorker, PROTOCOL_VERSION, ToWorker, WorkerInit, decode_frame, encode_frame, truncated};
use super::{Completion, Executor};
use crate::plan::TaskId;
use crate::store::StoreSpec;
use crate::task::message::{TaskFailure, TaskMessage, TaskMetrics, TaskResult};

/// Most tasks sent to one worker at once, while tasks are short.
pub const QUEUE_DEPTH: usize = 4;
/// Tasks whose recent mean duration is under this are queued [`QUEUE_DEPTH`] deep.
pub const SHORT_TASK: Duration = Duration::from_millis(1);

pub struct ProcessesConfig {
    pub workers: usize,
    /// The `engine` binary to start (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    /// The store, as every worker opens it (a local directory is absolute).
    pub store: StoreSpec,
    pub cache_dir: PathBuf,
    pub max_task_memory: u64,
    pub plugins: Vec<PathBuf>,
    pub run_start: SystemTime,
    pub harden: bool,
    /// Paths workers may read under Landlock besides the store, the cache and
    /// the temp dir: the sources of the tasks' mounts.
    pub read_only: Vec<PathBuf>,
}

/// Something a worker said, or its end.
enum Event {
    Frame(FromWorker),
    /// The worker's stdout ended or carried garbage.
    Gone(String),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Frames not yet written to `stdin` (written together before waiting).
    out: Vec<u8>,
    /// Bytes read from `stdout` that do not make a whole frame yet.
    input: Vec<u8>,
    /// Tasks sent and not answered, in order (task, attempt): the first one is
    /// running or about to, the others wait behind it.
    queue: VecDeque<(TaskId, u32)>,
    /// No process: it could not be replaced.
    dead: bool,
    /// The worker has sent its handshake.
    ready: bool,
    /// Workers in this slot that died in a row before their handshake.
    failed_starts: u32,
}

/// A slot whose workers die this many times in a row before their handshake
/// is given up (its tasks go to the other workers).
pub const MAX_FAILED_STARTS: u32 = 3;

pub struct ProcessesExecutor {
    cfg: ProcessesConfig,
    workers: Vec<Worker>,
    /// Completions decoded but not yet handed out.
    done: VecDeque<Completion>,
    /// Running mean of recent task durations (µs); `None` before the first.
    mean_us: Option<f64>,
    /// Where pipe reads land.
    buf: Box<[u8]>,
    /// What each first-generation worker reported of its hardening.
    hardening: Vec<String>,
    /// Why the first worker slot was given up, if one was.
    gone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start worker process {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("worker {worker} failed to start: {message}")]
    Start { worker: usize, message: String },
}

impl ProcessesExecutor {
    /// What each worker applied at start, e.g.
    /// `no_new_privs,rlimit_core=0,rlimit_nofile=4096,rlimit_fsize=64GiB,landlock=full`
    /// (`off` without hardening), by worker index.
    pub fn hardening(&self) -> &[String] {
        &self.hardening
    }

    pub fn new(cfg: ProcessesConfig) -> Result<Self, SpawnError> {
        let mut ex = ProcessesExecutor {
            cfg,
            workers: Vec::new(),
            done: VecDeque::new(),
            mean_us: None,
            buf: vec![0; 64 << 10].into(),
            hardening: Vec::new(),
            gone: None,
        };
        for i in 0..ex.cfg.workers.max(1) {
            let w = ex.spawn(i)?;
            ex.workers.push(w);
        }
        ex.flush_all();
        // Wait for every worker's handshake so start-up errors surface here.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut ready = vec![false; ex.workers.len()];
        ex.hardening = vec![String::new(); ex.workers.len()];
        let mut events = Vec::new();
        while !ready.iter().all(|&r| r) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let worker = ready.iter().position(|&r| !r).unwrap_or(0);
                return Err(SpawnError::Start { worker, message: "no handshake within 120 s".into() });
            }
            ex.poll(left, &mut events);
            for (i, ev) in events.drain(..) {
                match ev {
                    Event::Frame(FromWorker::Ready { protocol, hardening, .. }) if protocol == PROTOCOL_VERSION => {
                        ready[i] = true;
                        ex.workers[i].ready = true;
                        ex.hardening[i] = hardening;
                    }
                    Event::Frame(FromWorker::Ready { protocol, .. }) => {
                        return Err(SpawnError::Start {
                            worker: i,
                            message: format!("speaks protocol {protocol}, expected {PROTOCOL_VERSION}"),
                        });
                    }
                    Event::Frame(FromWorker::Fatal { message }) | Event::Gone(message) => {
                        return Err(SpawnError::Start { worker: i, message });
                    }
                    Event::Frame(FromWorker::Result(_)) => {
                        return Err(SpawnError::Start {
                            worker: i,
                            message: "sent a result before its handshake".into(),
                        });
                    }
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
        let init = ToWorker::Init(WorkerInit {
            protocol: PROTOCOL_VERSION,
            worker: index as u32,
            store: self.cfg.store.clone(),
            cache_dir: self.cfg.cache_dir.clone(),
            max_task_memory: self.cfg.max_task_memory,
            plugins: self.cfg.plugins.clone(),
            run_start_unix_us: self.cfg.run_start.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0),
            harden: self.cfg.harden,
            read_only: self.cfg.read_only.clone(),
        });
        let mut out = Vec::new();
        encode_frame(&mut out, &init).map_err(|e| SpawnError::Start { worker: index, message: e.to_string() })?;
        Ok(Worker {
            child,
            stdin,
            stdout,
            out,
            input: Vec::new(),
            queue: VecDeque::new(),
            dead: false,
            ready: false,
            failed_starts: 0,
        })
    }

    /// Write every worker's pending frames. A write error means the worker
    /// died: its pipe's end reports that.
    fn flush_all(&mut self) {
        for w in &mut self.workers {
            if !w.out.is_empty() {
                let _ = w.stdin.write_all(&w.out);
                w.out.clear();
            }
        }
    }

    /// Wait up to `timeout` for any worker to say something; append what
    /// each said, in order, to `events`.
    fn poll(&mut self, timeout: Duration, events: &mut Vec<(usize, Event)>) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.workers.len());
        let mut who: Vec<usize> = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter().enumerate() {
            if !w.dead {
                fds.push(libc::pollfd { fd: w.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 });
                who.push(i);
            }
        }
        // Round up so that a short wait does not become a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return; // timeout, or EINTR: the caller looks again
        }
        for (k, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let i = who[k];
            let w = &mut self.workers[i];
            let buf = &mut self.buf;
            match w.stdout.read(buf) {
                Ok(0) => {
                    let why =
                        if w.input.is_empty() { "pipe closed".to_string() } else { truncated(&w.input).to_string() };
                    events.push((i, Event::Gone(why)));
                }
                Ok(got) => {
                    w.input.extend_from_slice(&buf[..got]);
                    let mut used = 0;
                    loop {
                        match decode_frame::<FromWorker>(&w.input[used..]) {
                            Ok(Some((msg, n))) => {
                                used += n;
                                events.push((i, Event::Frame(msg)));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                events.push((i, Event::Gone(e.to_string())));
                                break;
                            }
                        }
                    }
                    w.input.drain(..used);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => events.push((i, Event::Gone(format!("pipe I/O error: {e}")))),
            }
        }
    }

    /// Turn what workers said into completions.
    fn handle(&mut self, events: &mut Vec<(usize, Event)>) {
        // One `poll` reads each pipe once, so a replaced worker's later events
        // in the same batch come from its old process: skip them.
        let mut replaced = vec![false; self.workers.len()];
        for (i, ev) in events.drain(..) {
            if replaced[i] {
                continue;
            }
            match ev {
                Event::Frame(FromWorker::Result(mut res)) => {
                    let w = &mut self.workers[i];
                    if w.queue.front() != Some(&(res.task, res.attempt)) {
                        let msg =
                            format!("sent a result for task {} attempt {} it was not running", res.task, res.attempt);
                        self.replace(i, &msg);
                        replaced[i] = true;
                        continue;
                    }
                    w.queue.pop_front();
                    res.metrics.worker = i as u32;
                    let took = res.metrics.end_us.saturating_sub(res.metrics.start_us) as f64;
                    self.mean_us = Some(match self.mean_us {
                        None => took,
                        Some(m) => m + (took - m) / 8.0,
                    });
                    self.done.push_back(Completion::Done(res));
                }
                Event::Frame(FromWorker::Ready { .. }) => {
                    let w = &mut self.workers[i];
                    w.ready = true;
                    w.failed_starts = 0;
                }
                Event::Frame(FromWorker::Fatal { message }) | Event::Gone(message) => {
                    self.replace(i, &message);
                    replaced[i] = true;
                }
            }
        }
    }

    /// Replace a dead worker. The task it was running comes back as lost, the
    /// ones queued behind it as unstarted.
    fn replace(&mut self, i: usize, why: &str) {
        let old = &mut self.workers[i];
        let _ = old.child.kill();
        let status = old.child.wait().ok();
        let pid = old.child.id();
        let mut queue = std::mem::take(&mut old.queue);
        let detail = match status {
            Some(s) => describe_exit(s),
            None => why.to_string(),
        };
        let failed_starts = if old.ready { 0 } else { old.failed_starts + 1 };
        if failed_starts >= MAX_FAILED_STARTS {
            self.workers[i].dead = true;
            self.gone.get_or_insert_with(|| {
                format!("worker {i} failed to start {failed_starts} times in a row (last: {})", why.trim_end())
            });
        } else {
            match self.spawn(i) {
                Ok(mut w) => {
                    w.failed_starts = failed_starts;
                    self.workers[i] = w;
                }
                Err(e) => {
                    self.workers[i].dead = true;
                    self.gone.get_or_insert_with(|| format!("could not replace worker {i}: {e}"));
                }
            }
        }
        if let Some((task, attempt)) = queue.pop_front() {
            self.done.push_back(Completion::Done(TaskResult {
                task,
                attempt,
                outcome: Err(TaskFailure::WorkerLost { message: format!("worker {i} (pid {pid}) {detail}") }),
                log: Vec::new(),
                metrics: TaskMetrics { worker: i as u32, ..TaskMetrics::default() },
            }));
        }
        for (task, _) in queue {
            self.done.push_back(Completion::Unstarted { task });
        }
    }

    /// How deep a worker's queue may be now.
    fn depth(&self) -> usize {
        match self.mean_us {
            Some(m) if m < SHORT_TASK.as_micros() as f64 => QUEUE_DEPTH,
            _ => 1,
        }
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
    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn no_workers(&self) -> Option<String> {
        if self.workers.iter().all(|w| w.dead) { self.gone.clone() } else { None }
    }

    fn room(&self, w: usize) -> usize {
        let w = &self.workers[w];
        if w.dead { 0 } else { self.depth().saturating_sub(w.queue.len()) }
    }

    fn submit(&mut self, i: usize, msg: TaskMessage) {
        let w = &mut self.workers[i];
        w.queue.push_back((msg.task, msg.attempt));
        if let Err(e) = encode_frame(&mut w.out, &ToWorker::Run(msg)) {
            // Cannot happen for a message the driver built (it is small JSON);
            // report it as this worker's failure rather than lose the task.
            let why = format!("cannot send the task: {e}");
            self.replace(i, &why);
        }
    }

    fn recv(&mut self, timeout: Duration) -> Option<Completion> {
        self.flush_all();
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            if let Some(c) = self.done.pop_front() {
                return Some(c);
            }
            self.poll(deadline.saturating_duration_since(Instant::now()), &mut events);
            self.handle(&mut events);
            if self.done.is_empty() && Instant::now() >= deadline {
                return None;
            }
        }
    }

    fn cancel_all(&mut self) {
        for w in &mut self.workers {
            if !w.queue.is_empty() {
                // The worker cancels the running task and every queued one.
                let _ = encode_frame(&mut w.out, &ToWorker::Cancel);
            }
        }
        self.flush_all();
    }
}

impl Drop for ProcessesExecutor {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = encode_frame(&mut w.out, &ToWorker::Shutdown);
        }
        self.flush_all();
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
