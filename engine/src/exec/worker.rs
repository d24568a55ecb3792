//! The worker side of the processes executor (`engine worker`): read framed
//! requests on stdin, run the tasks one at a time, in the order received, in
//! this process's own wasmtime runtime, and write each result on stdout before
//! starting the next task. The parent may send several tasks ahead; they wait
//! in a queue. Blobs go through the shared store, never the pipe.
//!
//! On Linux a worker drops what it does not need before running any task
//! (see [`harden`]): core dumps, extra file descriptors and new privileges.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::proto::{FromWorker, PROTOCOL_VERSION, ToWorker, WorkerInit, read_frame, write_frame};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::BlobStore;
use crate::task::message::TaskMessage;

/// Testing hook: a worker whose environment sets this to a task id aborts
/// (SIGABRT) when asked to run that task, to exercise crash recovery.
pub const ABORT_HOOK_ENV: &str = "ENGINE_TEST_WORKER_ABORT_ON";

/// What a worker of a remote store reads after hardening: resolver
/// configuration and TLS trust roots (paths that do not exist are skipped).
const NETWORK_READ_ONLY: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/run/systemd/resolve",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/lib/ssl",
];

/// Serve requests until stdin closes or a `Shutdown` arrives. Returns the exit code.
pub fn serve() -> i32 {
    let stdin = std::io::stdin();
    let mut input = BufReader::new(stdin.lock());
    let out = Arc::new(Mutex::new(BufWriter::new(std::io::stdout())));
    let send = |msg: &FromWorker| -> bool {
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *o, msg).is_ok()
    };

    let init = match read_frame::<ToWorker>(&mut input) {
        Ok(ToWorker::Init(init)) => init,
        Ok(_) => {
            send(&FromWorker::Fatal { message: "the first frame was not `init`".into() });
            return 2;
        }
        Err(e) => {
            eprintln!("engine worker: {e}");
            return 2;
        }
    };
    let Setup { store, runtime, hardening } = match setup(&init) {
        Ok(x) => x,
        Err(message) => {
            send(&FromWorker::Fatal { message });
            return 2;
        }
    };
    let run_start = {
        let start = UNIX_EPOCH + Duration::from_micros(init.run_start_unix_us);
        let ago = SystemTime::now().duration_since(start).unwrap_or_default();
        Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
    };
    if !send(&FromWorker::Ready { protocol: PROTOCOL_VERSION, pid: std::process::id(), hardening }) {
        return 2;
    }

    let abort_on = std::env::var(ABORT_HOOK_ENV).ok();
    let queue = Arc::new(TaskQueue::default());
    let worker_index = init.worker;
    let task_thread = {
        let runtime = runtime.clone();
        let out = out.clone();
        let store = store.clone();
        let queue = queue.clone();
        std::thread::Builder::new().name("engine-worker-task".into()).stack_size(super::threads::WORKER_STACK).spawn(
            move || {
                while let Some(msg) = queue.pop() {
                    if abort_on.as_deref() == Some(msg.name.as_str()) {
                        std::process::abort();
                    }
                    let res = runtime.run_task(&msg, &*store, worker_index, run_start);
                    // Make the outputs visible to the parent before it hears of them.
                    if let Err(e) = store.flush() {
                        eprintln!("engine worker: {e}");
                        std::process::exit(3);
                    }
                    // Written before the next task starts: if this process
                    // dies, the parent knows which task it was running.
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    if write_frame(&mut *o, &FromWorker::Result(res)).is_err() {
                        return;
                    }
                }
            },
        )
    };
    let Ok(task_thread) = task_thread else {
        send(&FromWorker::Fatal { message: "cannot start the task thread".into() });
        return 2;
    };

    let code = loop {
        match read_frame::<ToWorker>(&mut input) {
            Ok(ToWorker::Run(msg)) => queue.push(msg),
            // Cancellation is sticky in the runtime: the running task stops
            // at the next epoch tick and every queued one reports `Cancelled`.
            Ok(ToWorker::Cancel) => runtime.cancel_all(),
            Ok(ToWorker::Shutdown) => break 0,
            Ok(ToWorker::Init(_)) => {
                eprintln!("engine worker: unexpected second `init` frame");
                return 2;
            }
            // The parent is gone (a killed Dask worker, a killed engine):
            // nobody waits for the running task's result.
            Err(super::proto::FrameError::Closed) => {
                runtime.cancel_all();
                break 0;
            }
            Err(e) => {
                eprintln!("engine worker: {e}");
                return 2;
            }
        }
    };
    queue.close();
    let _ = task_thread.join();
    let _ = store.sync();
    if let Ok(mut o) = out.lock() {
        let _ = o.flush();
    }
    code
}

/// What a worker runs tasks with, once set up.
struct Setup {
    store: Arc<dyn BlobStore>,
    runtime: Arc<Runtime>,
    /// The hardening applied (sent in the `Ready` frame).
    hardening: String,
}

/// Check the protocol, open the store, start the runtime, load every plugin
/// and harden the process. Returns what the worker needs and the hardening
/// it applied, or the message of a `Fatal` frame.
fn setup(init: &WorkerInit) -> Result<Setup, String> {
    if init.protocol != PROTOCOL_VERSION {
        return Err(format!("protocol {} requested, this worker speaks {PROTOCOL_VERSION}", init.protocol));
    }
    // Opened before hardening: a remote store reads its credentials and
    // settings (the AWS profile files) here.
    let store = init.store.open_with_cache(&init.cache_dir).map_err(|e| e.to_string())?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: init.cache_dir.clone(),
        max_instances: 2,
        max_task_memory: init.max_task_memory,
    })
    .map_err(|e| e.to_string())?;
    for p in &init.plugins {
        runtime.load(p).map_err(|e| e.to_string())?;
    }
    // Plugins are loaded; from here on the worker needs only the store, the
    // module cache (compiled modules, unpacked mounts), the temp dir (command
    // tasks' /in, /out and /tmp) and, read-only, the tasks' mount sources.
    let hardening = if init.harden {
        let mut rw = vec![init.cache_dir.clone(), std::env::temp_dir()];
        let mut ro = init.read_only.clone();
        match init.store.local_dir() {
            Some(dir) => rw.push(dir.to_path_buf()),
            // A remote store also needs name resolution and TLS roots.
            None => ro.extend(NETWORK_READ_ONLY.iter().map(std::path::PathBuf::from)),
        }
        format!("{},{}", harden(), restrict_filesystem(&rw, &ro))
    } else {
        "off".to_string()
    };
    Ok(Setup { store, runtime: Arc::new(runtime), hardening })
}

/// Tasks received and not yet started, in order. A mutex and a condition
/// variable rather than a spinning channel: on a machine with few cores the
/// task thread must not burn the CPU the parent needs while it waits.
#[derive(Default)]
struct TaskQueue {
    state: Mutex<(VecDeque<TaskMessage>, bool)>,
    ready: Condvar,
}

impl TaskQueue {
    fn push(&self, msg: TaskMessage) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = st.0.is_empty();
        st.0.push_back(msg);
        drop(st);
        // The task thread only waits on an empty queue (checked under the lock).
        if was_empty {
            self.ready.notify_one();
        }
    }

    /// Stop once the queue is empty.
    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_one();
    }

    /// The next task, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<TaskMessage> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(m) = st.0.pop_front() {
                return Some(m);
            }
            if st.1 {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Drop privileges this process does not need. Returns a description of what
/// was applied (reported in the handshake).
#[cfg(target_os = "linux")]
pub fn harden() -> String {
    let mut applied = Vec::new();
    // SAFETY: plain syscalls on this process with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
            applied.push("no_new_privs");
        }
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) == 0 {
            applied.push("rlimit_core=0");
        }
        let files = libc::rlimit { rlim_cur: 4096, rlim_max: 4096 };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &files) == 0 {
            applied.push("rlimit_nofile=4096");
        }
        let fsize = libc::rlimit { rlim_cur: 64 << 30, rlim_max: 64 << 30 };
        if libc::setrlimit(libc::RLIMIT_FSIZE, &fsize) == 0 {
            applied.push("rlimit_fsize=64GiB");
        }
    }
    applied.join(",")
}

/// Landlock: restrict this process's filesystem access to `rw` (read and
/// write beneath each) and `ro` (read beneath each), where the kernel
/// supports it. Paths that do not exist are left out. Returns what happened.
#[cfg(target_os = "linux")]
pub fn restrict_filesystem(rw: &[std::path::PathBuf], ro: &[std::path::PathBuf]) -> String {
    use landlock::{
        ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
    };
    let abi = ABI::V3;
    let existing = |v: &[std::path::PathBuf]| v.iter().filter(|p| p.exists()).cloned().collect::<Vec<_>>();
    let result = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(existing(rw), AccessFs::from_all(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(existing(ro), AccessFs::from_read(abi))))
        .and_then(|r| r.restrict_self());
    match result {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => "landlock=full".to_string(),
            RulesetStatus::PartiallyEnforced => "landlock=partial".to_string(),
            RulesetStatus::NotEnforced => "landlock=unsupported".to_string(),
        },
        Err(e) => format!("landlock=error({e})"),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn restrict_filesystem(_rw: &[std::path::PathBuf], _ro: &[std::path::PathBuf]) -> String {
    "landlock=unsupported".to_string()
}

#[cfg(not(target_os = "linux"))]
pub fn harden() -> String {
    "none (not Linux)".to_string()
}
