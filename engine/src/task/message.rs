//! The task message: what an executor sends to wherever a task runs, and what
//! comes back.
//!
//! Everything here is serialisable (serde) and self-contained: a plugin is
//! named by its digest, inputs by blob digests, and nothing refers to the
//! coordinator's memory. The threads executor passes these by value, the
//! processes executor frames them over a pipe, and a distributed executor
//! (Dask) will ship them to remote workers unchanged.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, TaskId, TaskSpec};
use crate::store::{BlobRef, Digest};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task: TaskId,
    /// Task id for logs and errors, e.g. `count[3]`.
    pub name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub plugin: PluginRef,
    pub inputs: Vec<MsgInput>,
    /// Params as JSON text.
    pub params: String,
    pub limits: Limits,
    pub command: CommandOpts,
    pub deterministic: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginRef {
    /// sha256 of the module bytes; the runtime's compiled-module cache key.
    pub digest: Digest,
    /// Where the module bytes can be read if this worker has not compiled it yet.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MsgInput {
    pub name: String,
    /// True for a list input: items are exposed with their index.
    pub list: bool,
    pub items: Vec<BlobRef>,
}

/// Limits enforced on one attempt. See `docs/security.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Cap on linear memories (bytes).
    pub memory: u64,
    pub timeout: Option<Duration>,
    pub fuel: Option<u64>,
    /// Total bytes across all outputs.
    pub max_output_bytes: u64,
    /// Number of outputs (files in `/out` for command tasks).
    pub max_outputs: u32,
    /// Bytes of log kept; the rest is dropped with a truncation marker.
    pub max_log_bytes: u64,
    /// Command tasks: most guest descriptors open at once (stdio and
    /// preopens included); `EMFILE` beyond.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: u32,
}

fn default_max_open_files() -> u32 {
    DEFAULT_MAX_OPEN_FILES
}

/// Most guest descriptors a command task may hold open when it sets no `max_open_files`.
pub const DEFAULT_MAX_OPEN_FILES: u32 = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_TASK_MEMORY,
            timeout: None,
            fuel: None,
            max_output_bytes: 4 << 30,
            max_outputs: 10_000,
            max_log_bytes: 1 << 20,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// Memory limit for a task that requests none (and has no `[defaults]`).
pub const DEFAULT_TASK_MEMORY: u64 = 256 << 20;

/// The largest memory limit a task can have: the size of one slot of the
/// runtime's pooling allocator is the largest limit among the run's tasks,
/// capped here.
pub const MAX_TASK_MEMORY: u64 = 4 << 30;

impl Limits {
    /// The limits of one attempt of `spec`: its own settings over the run's
    /// `defaults`. This is the only place per-task defaults are applied; a
    /// task's `resources.memory` is both its scheduling request and its hard
    /// memory limit.
    pub fn for_task(spec: &TaskSpec, defaults: &Limits) -> Limits {
        Limits {
            memory: Limits::task_memory(spec),
            timeout: spec.timeout,
            fuel: spec.fuel,
            max_output_bytes: spec.max_output_bytes.unwrap_or(defaults.max_output_bytes),
            max_open_files: spec.max_open_files.unwrap_or(defaults.max_open_files),
            ..defaults.clone()
        }
    }

    /// A task's memory limit: its request, or [`DEFAULT_TASK_MEMORY`] when it
    /// requests none, at most [`MAX_TASK_MEMORY`].
    pub fn task_memory(spec: &TaskSpec) -> u64 {
        let m = if spec.resources.memory == 0 { DEFAULT_TASK_MEMORY } else { spec.resources.memory };
        m.min(MAX_TASK_MEMORY)
    }

    /// The largest memory limit among the tasks of `plan` (what one sandbox
    /// slot of the runtime must hold).
    pub fn max_task_memory(plan: &Plan) -> u64 {
        plan.tasks.iter().map(Limits::task_memory).max().unwrap_or(DEFAULT_TASK_MEMORY)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommandOpts {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Input name whose (single) blob feeds stdin.
    pub stdin: Option<String>,
    /// Capture stdout as this output name.
    pub stdout: Option<String>,
    /// Mounts, scratch and success exit codes (`None`: none, none, `[0]`).
    /// (Never skipped when serialising: the worker protocol is postcard.)
    pub fs: Option<Box<crate::plan::CommandFs>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: TaskId,
    pub attempt: u32,
    pub outcome: Result<Vec<OutputBlob>, TaskFailure>,
    /// The task's log: guest log calls and stderr, capped by `Limits::max_log_bytes`.
    pub log: Vec<u8>,
    pub metrics: TaskMetrics,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputBlob {
    pub name: String,
    pub blob: BlobRef,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// Worker index (a lane in the trace).
    pub worker: u32,
    /// Microseconds since the run started.
    pub start_us: u64,
    pub end_us: u64,
    /// Peak linear memory, bytes.
    pub peak_memory: u64,
    /// `None` when the attempt was stopped inside wasm code (the count was
    /// not stored, see `runtime::failure::fuel_counted`) or measured nothing.
    pub fuel_consumed: Option<u64>,
    /// Command tasks: the exit code.
    pub exit_code: Option<i32>,
    /// Command tasks on the virtual filesystem: microseconds spent setting
    /// the attempt up (tree, descriptors, store), running the program, and
    /// publishing its outputs.
    #[serde(default)]
    pub setup_us: Option<u64>,
    #[serde(default)]
    pub run_us: Option<u64>,
    #[serde(default)]
    pub publish_us: Option<u64>,
    /// Whether the runtime ran the attempt and measured `peak_memory`
    /// (false for one an executor made up: a lost worker).
    #[serde(default)]
    pub measured: bool,
}

/// Why an attempt failed. Every kind is distinct so that retries and reports
/// can match on it exhaustively.
// Externally tagged (serde's default) so that binary formats, which cannot
// look ahead for a tag, can carry it (the processes executor's frames).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum TaskFailure {
    /// The task reported an error (SDK `error` call, or a non-success exit code).
    #[error("task error: {message}")]
    Error { message: String },
    /// The wasm trapped (unreachable, out-of-bounds access, stack overflow, ...).
    #[error("trap: {message}")]
    Trap { message: String },
    #[error("timed out after {}", crate::units::format_duration(*limit))]
    Timeout { limit: Duration },
    #[error("memory limit of {} exceeded", crate::units::format_size(*limit))]
    MemoryLimit { limit: u64 },
    /// A limit other than memory and time: fuel, output bytes, output count,
    /// scratch space, stack.
    #[error("{limit} limit exceeded: {detail}")]
    Limit { limit: LimitKind, detail: String },
    #[error("cancelled")]
    Cancelled,
    /// The worker running it died (processes executor).
    #[error("worker lost: {message}")]
    WorkerLost { message: String },
    /// The engine could not run the task: the plugin could not be loaded or
    /// instantiated, storage failed, or the host itself failed.
    #[error("{message}")]
    Infra { kind: InfraKind, message: String },
}

/// Which limit a [`TaskFailure::Limit`] is about. Shown as its name in
/// messages (`fuel limit exceeded: ...`) and in the report (`limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// `fuel`: the task's instruction budget.
    Fuel,
    /// `max_output_bytes`: total bytes across the outputs.
    OutputBytes,
    /// The number of outputs (files in `/out`).
    OutputCount,
    /// The depth of `/out`: path components and bytes of a path under it.
    OutputDepth,
    /// `scratch`: the size of a command task's private `/tmp`.
    Scratch,
    /// `workdir.size`: the size of a command task's writable working directory.
    Workdir,
    /// The wasm call stack.
    Stack,
    /// `max_compile_time`: the time to compile the task's plugin.
    CompileTime,
}

impl LimitKind {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Fuel => "fuel",
            LimitKind::OutputBytes => "output size",
            LimitKind::OutputCount => "output count",
            LimitKind::OutputDepth => "output depth",
            LimitKind::Scratch => "scratch",
            LimitKind::Workdir => "workdir",
            LimitKind::Stack => "stack",
            LimitKind::CompileTime => "compile time",
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What part of the engine a [`TaskFailure::Infra`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraKind {
    /// The plugin could not be read, compiled or instantiated.
    PluginLoad,
    /// An input could not be read into the store, or an output not stored.
    Storage,
    /// The engine's own code failed (a panic while running the task).
    HostPanic,
    /// A distributed executor could not run the task (Dask failed it, or its
    /// bridge or `engine worker` broke down).
    Executor,
}

impl TaskFailure {
    /// A [`TaskFailure::Infra`] of `kind`.
    pub fn infra(kind: InfraKind, message: impl Into<String>) -> TaskFailure {
        TaskFailure::Infra { kind, message: message.into() }
    }

    /// Whether a retry could help. Infrastructure failures and task errors are
    /// retried; cancellation never is.
    pub fn retryable(&self) -> bool {
        !matches!(self, TaskFailure::Cancelled)
    }
    /// Short machine name of the kind (used in reports).
    pub fn kind(&self) -> &'static str {
        match self {
            TaskFailure::Error { .. } => "error",
            TaskFailure::Trap { .. } => "trap",
            TaskFailure::Timeout { .. } => "timeout",
            TaskFailure::MemoryLimit { .. } => "memory_limit",
            TaskFailure::Limit { .. } => "limit",
            TaskFailure::Cancelled => "cancelled",
            TaskFailure::WorkerLost { .. } => "worker_lost",
            TaskFailure::Infra { .. } => "infra",
        }
    }
}
