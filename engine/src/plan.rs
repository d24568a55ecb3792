//! The resolved plan: what a validated pipeline becomes before anything runs.
//!
//! `pipeline` parses, validates and expands a `pipeline.toml` into a [`Plan`];
//! the scheduler core and the executors consume only this type, never TOML.
//! Tasks and plugins are addressed by dense indices ([`TaskId`], [`PluginId`])
//! so that the scheduler can keep its per-task state in flat vectors.
//! `engine graph --format json` prints a `Plan` as JSON, so every field here is
//! part of a documented, serialisable contract (see `docs/pipeline.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod glob;
pub mod map;

/// Index of a task in [`Plan::tasks`].
pub type TaskId = u32;
/// Index of a plugin in [`Plan::plugins`].
pub type PluginId = u32;

/// The name of a task's default output, used when a reference names only the task.
pub const DEFAULT_OUTPUT: &str = "out";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Absolute path of the pipeline file.
    pub pipeline_file: PathBuf,
    /// Directory of the pipeline file; relative paths in the pipeline are relative to it.
    pub base_dir: PathBuf,
    pub plugins: Vec<PluginSpec>,
    pub tasks: Vec<TaskSpec>,
    /// `[outputs]`: artifacts copied out of storage after a successful run.
    pub outputs: Vec<OutputSpec>,
    /// The machine's capacity (from `[resources]`, detected defaults, or the command line).
    pub capacity: Resources,
    /// The keys of `capacity` that were detected rather than given (by
    /// `[resources]` or `--resources`), with where each came from, for
    /// `engine check`. Not part of the JSON plan.
    #[serde(skip)]
    pub capacity_detected: Vec<DetectedDefault>,
    /// `[vars]` with their values (after `--vars` and `--set`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<VarValue>,
}

/// A capacity default and its source, e.g. `memory` from `cgroup memory.max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedDefault {
    /// `cpu` or `memory`.
    pub key: String,
    /// `affinity mask`, `cgroup cpu.max`, `MemTotal`, `cgroup memory.max`, ...
    pub source: String,
}

/// A pipeline parameter and the value it had.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VarValue {
    pub name: String,
    /// The value as TOML writes it (strings quoted).
    pub value: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginSpec {
    /// The name used in `[plugins]`.
    pub name: String,
    /// Absolute path of the `.wasm` file.
    pub path: PathBuf,
    /// Pinned sha256 digest (lowercase hex), when the pipeline gave one.
    pub sha256: Option<String>,
    /// sha256 of the module as `engine check` read it (absent when plugin
    /// files were not checked). A run refuses a plugin whose bytes changed
    /// since, and executors name plugins by this digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::store::Digest>,
    /// `max_compile_time` of the plugin's table, else of `[defaults]`; absent:
    /// [`DEFAULT_MAX_COMPILE_TIME`]. Not part of the plan's JSON (`engine
    /// graph --format json`): it bounds how the run prepares the plugin.
    #[serde(skip)]
    pub max_compile_time: Option<std::time::Duration>,
}

/// How long compiling one plugin may take when the pipeline does not say
/// (`max_compile_time`, docs/pipeline.md).
pub const DEFAULT_MAX_COMPILE_TIME: std::time::Duration = std::time::Duration::from_secs(300);

impl PluginSpec {
    /// How long compiling this plugin may take.
    pub fn max_compile_time(&self) -> std::time::Duration {
        self.max_compile_time.unwrap_or(DEFAULT_MAX_COMPILE_TIME)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task id after expansion, e.g. `split` or `count[3]`.
    pub id: String,
    pub plugin: PluginId,
    /// Inputs in the order of the pipeline file.
    pub inputs: Vec<InputSpec>,
    /// `params` as JSON text (an object; `{}` when absent).
    pub params: String,
    pub resources: Resources,
    /// How many times a failed attempt is retried (0 = run once).
    pub retries: u32,
    /// Wall-clock limit per attempt.
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    pub priority: i32,
    /// Command tasks only: argv after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Command tasks only: environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Command tasks only: the input whose bytes feed stdin.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Command tasks only: capture stdout as this output.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Fixed clock and seeded random.
    #[serde(default)]
    pub deterministic: bool,
    /// Whether the task's results may come from, and go to, the action cache
    /// (`cache = false` turns it off for this task).
    #[serde(default = "yes")]
    pub cache: bool,
    /// Optional fuel budget (wasm instructions, roughly).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Cap on the total bytes of the task's outputs (`None`: the engine default, 4 GiB).
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// Most guest descriptors open at once (`None`: the default, 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u32>,
    /// Command tasks only: mounts, scratch and exit codes (`None`: no mounts,
    /// no scratch, success is exit code 0). Boxed: most tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<Box<CommandFs>>,
    /// Distinct upstream tasks, sorted; derived from `inputs` (and `map`).
    pub deps: Vec<TaskId>,
    /// Dynamic fan-out (`map`): this task is a template, expanded at run time
    /// into one task per item of its producer. Boxed: most tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Box<MapSpec>>,
}

/// What a mapped task maps over (`map = "split.*"`, `map = "split.lines"`).
///
/// The template's `params`, `args` and `env` keep their `{key}` and `{item}`
/// placeholders (and `{{`/`}}` escapes), and an input written `"{item}"` is
/// the source `{ task: PRODUCER, output: "*" }`; [`map::child`] makes each
/// expanded task from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSpec {
    /// The producer.
    pub task: TaskId,
    /// `None`: one task per output of the producer. `Some(name)`: one task
    /// per line of that output.
    pub lines: Option<String>,
    /// The most items the expansion may have (required for `lines`).
    pub max_items: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `no_io_dirs` is written and read as its negation, `io_dirs`.
mod negated {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(!*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(!bool::deserialize(d)?)
    }
}

/// The filesystem and exit-status settings of a command task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandFs {
    /// Read-only mounts, sorted by guest path.
    pub mounts: Vec<Mount>,
    /// A writable scratch directory at `/tmp` (with `TMPDIR=/tmp`) holding at
    /// most this many bytes.
    pub scratch: Option<u64>,
    /// Exit codes that count as success, sorted (`[0]` when not given).
    pub success_exit_codes: Vec<i32>,
    /// A private writable working directory (`workdir`), `None` for none.
    #[serde(default)]
    pub workdir: Option<Workdir>,
    /// `io_dirs = false`: no `/in` and `/out` preopens, so the first
    /// preopened descriptor is scratch, a mount or the workdir (or none).
    /// Written (`engine graph --json`, worker messages) as its negation `io_dirs`.
    #[serde(default, rename = "io_dirs", with = "negated")]
    pub no_io_dirs: bool,
}

impl CommandFs {
    /// Host paths the task reads from outside the store: mount sources and
    /// the workdir seed.
    pub fn host_sources(&self) -> impl Iterator<Item = &std::path::Path> {
        self.mounts.iter().map(|m| m.host.as_path()).chain(self.workdir.iter().filter_map(|w| w.from.as_deref()))
    }
}

/// The writable working directory of a command task: a private copy per
/// attempt, seeded from `from` (or empty), preopened at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workdir {
    /// Absolute host path of the seed: a directory, or a `.tar`, `.tar.gz` or
    /// `.tgz` archive (unpacked once into the cache, like a mount).
    pub from: Option<PathBuf>,
    /// Guest path: `.` or an absolute path (`/` included).
    pub at: String,
    /// Most bytes its regular files may hold, seed included.
    pub size: u64,
    /// Globs over paths relative to the workdir; matching regular files
    /// become outputs (named by that path) after a successful exit.
    pub publish: Vec<String>,
}

/// One read-only mount of a command task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute guest path, e.g. `/share`.
    pub guest: String,
    /// Absolute host path of a directory, or of a `.tar`, `.tar.gz` or `.tgz`
    /// archive that the runtime unpacks (once, into its cache).
    pub host: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    /// True when the pipeline wrote a list (or `task[*]`); the guest then sees
    /// indexed items even when there is only one.
    pub list: bool,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The named output of an upstream task.
    Task { task: TaskId, output: String },
    /// An external file (absolute path), written `file:relative/path` in the pipeline.
    File { path: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Destination path (absolute).
    pub dest: PathBuf,
    pub task: TaskId,
    pub output: String,
}

/// A resource request or capacity, in integer units so that accounting is exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs in thousandths (`cpu = 0.5` is 500).
    pub cpu_milli: u64,
    /// Bytes.
    pub memory: u64,
    pub gpu: u64,
    /// Custom resources in thousandths, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, u64>,
}

impl Resources {
    /// True when `self` (a request) fits within `avail` on every dimension.
    pub fn fits_in(&self, avail: &Resources) -> bool {
        self.cpu_milli <= avail.cpu_milli
            && self.memory <= avail.memory
            && self.gpu <= avail.gpu
            && self.custom.iter().all(|(k, v)| *v == 0 || avail.custom.get(k).is_some_and(|a| v <= a))
    }

    /// The first dimension on which `self` exceeds `cap`: (name, requested, available),
    /// in display units.
    pub fn first_excess(&self, cap: &Resources) -> Option<(String, String, String)> {
        if self.cpu_milli > cap.cpu_milli {
            return Some(("cpu".into(), fmt_milli(self.cpu_milli), fmt_milli(cap.cpu_milli)));
        }
        if self.memory > cap.memory {
            return Some((
                "memory".into(),
                crate::units::format_size(self.memory),
                crate::units::format_size(cap.memory),
            ));
        }
        if self.gpu > cap.gpu {
            return Some(("gpu".into(), self.gpu.to_string(), cap.gpu.to_string()));
        }
        for (k, v) in &self.custom {
            let a = cap.custom.get(k).copied().unwrap_or(0);
            if *v > a {
                return Some((k.clone(), fmt_milli(*v), fmt_milli(a)));
            }
        }
        None
    }

    /// Subtract a request that is known to fit.
    pub fn take(&mut self, req: &Resources) {
        self.cpu_milli -= req.cpu_milli;
        self.memory -= req.memory;
        self.gpu -= req.gpu;
        for (k, v) in &req.custom {
            if let Some(a) = self.custom.get_mut(k) {
                *a -= *v;
            }
        }
    }

    /// Give back a request taken with [`Resources::take`].
    pub fn give(&mut self, req: &Resources) {
        self.cpu_milli += req.cpu_milli;
        self.memory += req.memory;
        self.gpu += req.gpu;
        for (k, v) in &req.custom {
            *self.custom.entry(k.clone()).or_insert(0) += *v;
        }
    }
}

/// Format thousandths as a short decimal: 1500 -> "1.5", 2000 -> "2".
pub fn fmt_milli(v: u64) -> String {
    if v.is_multiple_of(1000) {
        (v / 1000).to_string()
    } else {
        let s = format!("{}.{:03}", v / 1000, v % 1000);
        s.trim_end_matches('0').to_string()
    }
}

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
