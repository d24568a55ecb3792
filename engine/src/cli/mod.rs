//! The command line: argument definitions (clap), dispatch, and the one place
//! where errors are rendered and mapped to exit codes.
//!
//! Exit codes (documented in `engine --help`):
//! 0 success · 1 the run finished with failed tasks · 2 invalid pipeline, plugin
//! or arguments · 3 internal or I/O error · 130 interrupted (Ctrl-C).
//! Only this module knows about terminals and exit codes.

pub mod call;
pub mod check;
pub mod color;
pub mod dask;
pub mod escape;
pub mod inspect;
mod live;
mod look;
pub mod new;
pub mod plugins;
pub mod report;
pub mod run;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::store::StoreSpec;

pub const EXIT_OK: i32 = 0;
pub const EXIT_TASKS_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_INTERNAL: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// What `engine --version` prints after `engine `: the crate version, the
/// wasmtime it embeds and the git commit it was built from (see `engine/build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (wasmtime ",
    env!("ENGINE_WASMTIME_VERSION"),
    ", commit ",
    env!("ENGINE_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "engine",
    version = VERSION,
    about = "Run data pipelines whose tasks are sandboxed WebAssembly plugins",
    long_about = "Run data pipelines whose tasks are sandboxed WebAssembly plugins.\n\n\
A pipeline.toml names .wasm task plugins and wires their inputs and outputs into a graph \
(see docs/pipeline.md). `engine check` validates it without running anything; `engine run` \
schedules the tasks within the machine's resources, runs each one in a wasmtime sandbox and \
passes data between tasks through a content-addressed store.",
    after_help = "Exit status: 0 success, 1 some tasks failed, 2 invalid pipeline/plugin/arguments, \
3 internal or I/O error, 130 interrupted.\n\n\
Colour: output is coloured only on a terminal; NO_COLOR (set, not empty) turns colour off \
everywhere, CLICOLOR_FORCE (set, not empty or 0) turns it on even when the output is not a \
terminal; NO_COLOR wins."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a pipeline and print a summary (tasks, edges, plugins, longest path).
    ///
    /// Every error is reported at once with file:line:column; nothing is run and no
    /// wasm is compiled. Exit status 2 when the pipeline is invalid.
    Check(CheckArgs),
    /// Draw the resolved task graph as Graphviz dot, Mermaid, or the JSON plan.
    Graph(GraphArgs),
    /// Run a pipeline.
    ///
    /// Validates the pipeline (as `engine check`), compiles each plugin once (cached in
    /// $ENGINE_CACHE_DIR, else $XDG_CACHE_HOME/engine, else ~/.cache/engine), then runs the
    /// tasks: a task starts when its inputs exist and its resource request fits in what the
    /// running tasks leave free. A failed task is retried `retries` times (backoff 100ms,
    /// doubling, capped at 10s; $ENGINE_RETRY_BACKOFF sets the first delay); when it fails
    /// for good its dependents are skipped and independent tasks run on. Outputs are stored
    /// by sha256 in the store; `[outputs]` of the tasks that succeeded are copied out
    /// atomically. A task whose action-cache record is in the store (same plugin,
    /// params, args, env, inputs, mounts) completes without running. Per-task logs go to
    /// STORE/runs/RUN/logs/TASK.log (see --log-dir). The summary goes to
    /// stdout, progress and failures to stderr. Ctrl-C cancels running tasks and exits 130.
    #[command(after_help = "Exit status: 0 every task succeeded, 1 some task failed or was skipped, \
2 invalid pipeline/plugin/arguments (nothing ran), 3 internal or I/O error, 130 interrupted.")]
    Run(Box<RunArgs>),
    /// Render a run's JSON report (`engine run --report FILE`) as one offline HTML page.
    ///
    /// The page holds a timeline (one row per worker, one bar per attempt, at most 2000
    /// bars: the longest), duration histograms per task family (`count[*]`), peak memory
    /// against the request, cached and executed counts, the 10 slowest tasks and the
    /// failures with the last lines of their logs. It loads nothing from the network.
    /// Exit status 2 when the report cannot be read, 3 when the page cannot be written.
    Report(ReportArgs),
    /// Print a stored blob to stdout: an output of the latest finished run of the
    /// pipeline (`TASK` for its output `out` or its only output, `TASK.OUTPUT`), or
    /// any blob by its sha256 (64 hex digits).
    Cat(CatArgs),
    /// Print a task's log from the latest run of the pipeline (the last attempt,
    /// or `--attempt N`).
    Logs(LogsArgs),
    /// Remove from a local store what the last runs do not need: everything but the
    /// outputs of the last N finished runs of each pipeline (default 1), the action-cache
    /// records of their tasks and the blobs those name; older run directories (logs) go too.
    /// Waits for runs using the store to finish; runs wait for it.
    Gc(GcArgs),
    /// Store maintenance: `engine store verify` re-hashes every blob and action record.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run one task without a pipeline file and write its outputs into a directory.
    ///
    /// The plugin (a .wasm file, or std:NAME for a stock plugin) is checked as `engine
    /// check` checks a pipeline's (its file, its metadata against the inputs and params),
    /// then run once, sandboxed, with no action cache. The task's log goes to stderr;
    /// each output is written (atomically) to DIR/OUTPUT and `wrote DIR/OUTPUT` printed on
    /// stdout (`wrote OUTPUT` without --out); a command's `exit_code` output is not written.
    /// Example: `engine call std:wordcount --input text=words.txt --out res`. Exit status 0 when the task succeeded, 1 when it failed, 2 when the call is
    /// invalid (arguments, plugin, input files), 3 on an I/O error, 130 when interrupted.
    Call(CallArgs),
    /// Write a ready-to-build task from an SDK template: `engine new task --lang LANG DIR`.
    #[command(subcommand)]
    New(NewCommand),
    /// Print the JSON Schema (draft 2020-12) of the pipeline file, for editors.
    ///
    /// It is generated from the key tables `engine check` reads tables with; it checks
    /// tables, keys, TOML types, required keys and simple bounds, and leaves the rest
    /// (references, plugin files, sizes and durations beyond their type) to `engine check`.
    Schema,
    /// Print a plugin's kind, metadata, imports and exports.
    Inspect(InspectArgs),
    /// List the stock plugins (`plugin = "std:NAME"`) with their kind, inputs, outputs and params.
    ///
    /// Stock plugins are looked for in each directory of $ENGINE_PLUGIN_PATH (colon-separated),
    /// then in <exe dir>/../share/engine/plugins (installed), then in <exe dir>/../plugins (a
    /// build tree); the first directory holding NAME.wasm wins.
    Plugins(PluginsArgs),
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell).
    ///
    /// For example `engine completions bash > ~/.local/share/bash-completion/completions/engine`,
    /// or `source <(engine completions zsh)`.
    Completions(CompletionsArgs),
    /// Print the manual page engine(1), in roff, to stdout (`engine man | man -l -`).
    Man,
    /// Internal: a worker subprocess of the processes executor (speaks the framed protocol on stdio).
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Internal: compile one plugin into the compiled-module cache, for `engine run`, which
    /// bounds it by `max_compile_time` and Ctrl-C.
    #[command(hide = true, name = "compile-plugin")]
    CompilePlugin(CompilePluginArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override machine capacity, e.g. `cpu=4,memory=8GiB,gpu=1,licence=2`.
    #[arg(long, value_name = "LIST")]
    pub resources: Option<String>,
    /// Set a var of `[vars]`: `--set name=value` (repeatable; wins over `--vars`).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = crate::pipeline::parse_set)]
    pub set: Vec<crate::pipeline::VarSetting>,
    /// Read var values from a TOML file of `name = value` lines.
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    #[command(flatten)]
    pub confine: ConfineArgs,
    /// `text`: the summary on stdout, or the diagnostics on stderr. `json`: one JSON
    /// object on stdout either way, with every diagnostic's file, line, column, code,
    /// message and help (docs/pipeline.md, "Diagnostics as JSON").
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

/// `--confine` and `--allow-path`, for `engine check` and `engine run`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfineArgs {
    /// For pipeline files from people you do not trust: every plugin file (except `std:` stock
    /// plugins), `file:` input, mount and workdir source, foreach glob directory and `[outputs]`
    /// destination must resolve, after symbolic links, inside the pipeline file's directory or
    /// an --allow-path directory; any other is an error of the check (docs/security.md).
    #[arg(long)]
    pub confine: bool,
    /// With --confine: also allow paths inside DIR (repeatable).
    #[arg(long = "allow-path", value_name = "DIR", requires = "confine")]
    pub allow_path: Vec<PathBuf>,
}

impl ConfineArgs {
    /// The allowed directories besides the pipeline's, when confined.
    pub fn allowed(&self) -> Option<Vec<PathBuf>> {
        self.confine.then(|| self.allow_path.iter().map(|p| std::path::absolute(p).unwrap_or(p.clone())).collect())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Output format: `dot` (Graphviz), `mermaid`, or `json` (the fully resolved plan).
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
    /// Override machine capacity, e.g. `cpu=4,memory=8GiB`.
    #[arg(long, value_name = "LIST")]
    pub resources: Option<String>,
    /// Set a var of `[vars]`: `--set name=value` (repeatable; wins over `--vars`).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = crate::pipeline::parse_set)]
    pub set: Vec<crate::pipeline::VarSetting>,
    /// Read var values from a TOML file of `name = value` lines.
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// One task at a time on the calling thread, in a deterministic order (for debugging).
    Sync,
    /// A pool of worker threads (the default).
    Threads,
    /// A pool of `engine worker` subprocesses: a second wall around untrusted code.
    Processes,
    /// A Dask cluster (`--scheduler`), in `engine worker` processes on its workers.
    Dask,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    #[command(flatten)]
    pub confine: ConfineArgs,
    /// Where tasks run.
    #[arg(long, value_enum, default_value = "threads")]
    pub executor: ExecutorKind,
    /// Number of workers, at least 1 (default: the number of CPUs in the capacity).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,
    /// Override machine capacity, e.g. `cpu=4,memory=8GiB,gpu=1,licence=2`.
    #[arg(long, value_name = "LIST")]
    pub resources: Option<String>,
    /// Set a var of `[vars]`: `--set name=value` (repeatable; wins over `--vars`).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = crate::pipeline::parse_set)]
    pub set: Vec<crate::pipeline::VarSetting>,
    /// Read var values from a TOML file of `name = value` lines.
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Where blobs are stored: a directory (default: `.engine-store` next to the pipeline
    /// file), `file:///abs/dir` (a directory shared between hosts, one file per blob) or
    /// `s3://bucket/prefix` (an S3-compatible object store; settings from the AWS_*
    /// environment variables, see docs/cluster.md).
    #[arg(long, value_name = "STORE")]
    pub store: Option<StoreSpec>,
    /// Directory for per-task logs, written as LOG_DIR/RUN/logs/TASK.log (default: STORE/runs
    /// for a directory store, `.engine-runs` next to the pipeline file for file:// and s3://).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Stop dispatching at the first failed task (running tasks are cancelled).
    #[arg(long)]
    pub fail_fast: bool,
    /// Write a machine-readable JSON report of the run.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the HTML report of the run (as `engine report --html`): one offline page.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write a Chrome trace-event file (open in Perfetto), one lane per worker.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the run's events to FILE as they happen, one JSON object per line
    /// (NDJSON, `"v":1`; every event kind and field is in docs/pipeline.md).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Serve a live dashboard of the run at http://ADDR/ (default 127.0.0.1:8787; port 0
    /// picks a free port): tasks by state, progress per task family, the family graph,
    /// resources in use, the task stream by worker, and failures with their log tails.
    /// Put it after the pipeline file, or write `--dashboard=ADDR`.
    /// An address that is not loopback is served with a warning: the page has no
    /// authentication.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::report::dashboard::DEFAULT_ADDR,
          value_parser = live::parse_addr)]
    pub dashboard: Option<String>,
    /// With --dashboard: keep serving the run's final state for DURATION after the run
    /// ends (default 0s: exit at once; Ctrl-C stops it sooner).
    #[arg(long, value_name = "DURATION", requires = "dashboard", value_parser = crate::units::parse_duration)]
    pub dashboard_linger: Option<std::time::Duration>,
    /// Print no progress, only the summary and errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// With `--executor dask`: the scheduler, `tcp://HOST:PORT`, or `local:N` for a
    /// new local cluster of N workers (default: a local cluster, like `distributed.Client()`).
    #[arg(long, value_name = "ADDRESS")]
    pub scheduler: Option<String>,
    /// With `--executor dask`: most tasks in Dask at once (default: the cluster's threads,
    /// each holding up to 16 while tasks are short).
    #[arg(long, value_name = "N")]
    pub dask_window: Option<u32>,
    /// With `--executor dask`: the Python with `engine_dask` installed (default:
    /// $ENGINE_DASK_PYTHON, else `python3`).
    #[arg(long, value_name = "PYTHON")]
    pub dask_python: Option<PathBuf>,
    /// With `--executor dask`: how long to try to reach the scheduler.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub dask_connect_timeout: String,
    /// Do not use the action cache: run every task, and record nothing.
    #[arg(long)]
    pub no_cache: bool,
    /// Run these tasks even if the cache has them (repeatable; `*` matches any
    /// characters, so `count[*]` names every expansion of `count`).
    #[arg(long, value_name = "TASK", num_args = 1..)]
    pub rerun: Vec<String>,
    /// Run nothing: print, per task, whether the cache has it (`hit`) or not
    /// (`miss`, with the reason), then the number of each.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The JSON report of a run (`engine run --report FILE`).
    pub report: PathBuf,
    /// Where to write the HTML page (atomically).
    #[arg(long, value_name = "FILE", required = true)]
    pub html: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The pipeline file, whose store is meant when `--store` is not given.
    #[arg(long, short, value_name = "FILE", default_value = "pipeline.toml")]
    pub pipeline: PathBuf,
    /// The store directory (default: `.engine-store` next to the pipeline file).
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
    /// How many of the latest finished runs of each pipeline to keep, at least 1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// Say what would be removed, and how many bytes, without removing it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Re-hash every blob and action record of a local store and check that every
    /// record names blobs that exist. Exit status 0 when all is well, 1 when
    /// something is corrupt (each problem is printed, naming its file).
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The pipeline file, whose store is meant when `--store` is not given.
    #[arg(long, short, value_name = "FILE", default_value = "pipeline.toml")]
    pub pipeline: PathBuf,
    /// The store directory (default: `.engine-store` next to the pipeline file).
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// `TASK`, `TASK.OUTPUT`, or a blob's sha256.
    pub target: String,
    /// The pipeline file whose latest run is meant.
    #[arg(long, short, value_name = "FILE", default_value = "pipeline.toml")]
    pub pipeline: PathBuf,
    /// The store (default: the one the latest run used).
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The task id, e.g. `count[3]`.
    pub task: String,
    /// The pipeline file whose latest run is meant.
    #[arg(long, short, value_name = "FILE", default_value = "pipeline.toml")]
    pub pipeline: PathBuf,
    /// The store the run used (default: `.engine-store` next to the pipeline file).
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
    /// Print only attempt N (1 is the first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub attempt: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The plugin: a .wasm file, or `std:NAME` for a stock plugin.
    pub plugin: String,
    /// An input of the task: `--input NAME=FILE` (repeatable; a NAME given several
    /// times is a list input of those files, in order).
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = call::parse_input)]
    pub inputs: Vec<(String, String)>,
    /// A param of the task: `--param KEY=VALUE` (repeatable; the last VALUE of a KEY
    /// wins). VALUE is read as a TOML value when it is one (`5`, `1.5`, `true`, `"5"`,
    /// `[1, 2]`), else as a string (`prefix=> ` is the string `> `).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = call::parse_param)]
    pub params: Vec<(String, String)>,
    /// The directory to write the outputs into, created if missing (default: the
    /// current directory). A file already there with an output's name is replaced.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum NewCommand {
    /// Create directory DIR with a task named after it, ready to build: its source, a
    /// `build.sh` with the SDK README's build command, a `pipeline.toml` and an `input.txt`
    /// to run it on, and a `README.md`. DIR must not exist.
    ///
    /// The task's name is DIR's last component: lowercase letters, digits and `_`,
    /// starting with a letter. The files refer to the SDK found first in $ENGINE_SDK_DIR,
    /// <exe dir>/../share/engine/sdk (installed) or the source tree the engine was built
    /// from.
    Task(NewTaskArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewLang {
    /// engine-sdk, built for wasm32-wasip1 with cargo.
    Rust,
    /// engine.h, built with clang and wasi-libc.
    C,
    /// engine.zig, built with zig (or PyPI's ziglang).
    Zig,
    /// The Go SDK, built with Go's wasip1 port.
    Go,
    /// engine.ts, built with asc.
    Assemblyscript,
    /// A component, built with componentize-py.
    Python,
    /// A component, built with componentize-qjs.
    Js,
}

#[derive(Debug, clap::Args)]
pub struct NewTaskArgs {
    /// The language of the task.
    #[arg(long, value_enum)]
    pub lang: NewLang,
    /// The directory to create; its last component names the task.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plugin module.
    pub plugin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PluginsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Worker index (a trace lane).
    #[arg(long, default_value_t = 0)]
    pub index: u32,
}

#[derive(Debug, clap::Args)]
pub struct CompilePluginArgs {
    /// The compiled-module cache root (as `engine run` uses it).
    #[arg(long)]
    pub cache_dir: std::path::PathBuf,
    /// The runtime's instance count (it must match the run's for the cache entry to fit).
    #[arg(long)]
    pub max_instances: u32,
    /// The largest task memory of the run, bytes.
    #[arg(long)]
    pub max_task_memory: u64,
    /// The plugin to compile.
    pub plugin: std::path::PathBuf,
}

/// Parse arguments, run the command, return the exit code.
pub fn main() -> i32 {
    let matches = Cli::command().color(color::clap_choice()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Check(a) => check::check(&a),
        Command::Graph(a) => check::graph(&a),
        Command::Run(a) => run::run(&a),
        Command::Inspect(a) => inspect::inspect(&a),
        Command::Call(a) => call::call(&a),
        Command::New(NewCommand::Task(a)) => new::new_task(&a),
        Command::Schema => {
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), crate::pipeline::json_schema().as_bytes());
            EXIT_OK
        }
        Command::Report(a) => report::report(&a),
        Command::Cat(a) => look::cat(&a),
        Command::Logs(a) => look::logs(&a),
        Command::Gc(a) => look::gc(&a),
        Command::Store(StoreCommand::Verify(a)) => look::verify(&a),
        Command::Plugins(a) => plugins::plugins(&a),
        Command::Completions(a) => completions(a.shell),
        Command::Man => man(),
        Command::Worker(a) => run::worker(&a),
        Command::CompilePlugin(a) => crate::exec::compile::serve(
            &a.plugin,
            crate::runtime::RuntimeConfig {
                cache_dir: a.cache_dir,
                max_instances: a.max_instances,
                max_task_memory: a.max_task_memory,
            },
        ),
    }
}

/// `engine completions SHELL`.
fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    // Into memory first: `generate` panics on a write error, and a closed
    // stdout (`engine completions bash | head`) is not worth one.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "engine", &mut script);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &script);
    EXIT_OK
}

/// `engine man`.
fn man() -> i32 {
    let mut out = std::io::stdout().lock();
    match clap_mangen::Man::new(Cli::command()).render(&mut out) {
        Ok(()) => EXIT_OK,
        // A closed stdout (`engine man | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write the manual page: {e}");
            EXIT_INTERNAL
        }
    }
}

/// Print an error headline with its `caused by:` chain to stderr.
pub fn print_error(err: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {}", escape::one(&err.to_string()));
    let mut src = err.source();
    while let Some(s) = src {
        eprintln!("  caused by: {}", escape::one(&s.to_string()));
        src = s.source();
    }
}
