//! `engine run`: load and validate the pipeline, prepare the plugins, run the
//! plan on the chosen executor with a progress display, then write outputs,
//! the summary, the report and the trace. Also `engine worker`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{
    EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_TASKS_FAILED, ExecutorKind, RunArgs, WorkerArgs,
};
use crate::exec::dask::DaskError;
use crate::exec::driver::{Event, Observer};
use crate::plan::{Plan, TaskId};
use crate::report;
use crate::sched::{Counts, FailureDecision};
use crate::session::{self, PluginEvent, RunOutcome, RunStatus, Session, SessionError};
use crate::task::message::TaskFailure;
use crate::units::{format_duration, format_size};

use super::escape;

/// The interrupt flag set by the Ctrl-C handler (installed once per process).
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // If a handler cannot be installed, Ctrl-C simply kills the process.
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: give up immediately.
                std::process::exit(EXIT_INTERRUPTED);
            }
        });
        flag
    })
    .clone()
}

pub fn run(a: &RunArgs) -> i32 {
    let kind = match a.executor {
        ExecutorKind::Sync => session::ExecutorKind::Sync,
        ExecutorKind::Threads => session::ExecutorKind::Threads,
        ExecutorKind::Processes => session::ExecutorKind::Processes,
        ExecutorKind::Dask => match super::dask::options(a) {
            Ok(opts) => session::ExecutorKind::Dask(opts),
            Err(code) => return code,
        },
    };
    let mut live = match super::live::Live::start(a) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let vars = match super::check::given_vars(&a.vars_file, &a.set) {
        Ok(v) => v,
        Err(code) => return code,
    };
    // On Dask the cluster's workers are the capacity: connect first.
    let loaded = match &kind {
        session::ExecutorKind::Dask(opts) => {
            super::dask::connect_and_load(a, opts.clone(), vars).map(|(p, c)| (p, Some(c)))
        }
        _ => super::check::load(&a.pipeline, &a.resources, &vars, a.confine.allowed()).map(|p| (p, None)),
    };
    let (plan, dask) = match loaded {
        Ok(x) => x,
        Err(code) => return code,
    };
    let tty = std::io::stderr().is_terminal() && !a.quiet;
    let observer = match live.observer(a, Box::new(Progress::new(tty, a.quiet))) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut session = Session::new(plan)
        .executor(kind)
        .fail_fast(a.fail_fast)
        .use_cache(!a.no_cache)
        .rerun(a.rerun.clone())
        .backoff_base(backoff_base())
        .interrupt(interrupt_flag())
        .observer(observer)
        .on_plugin(plugin_progress(tty, a.quiet));
    if let Some(s) = &a.store {
        session = session.store(s.clone());
    }
    if let Some(dir) = &a.log_dir {
        session = session.log_dir(dir.clone());
    }
    if let Some(w) = a.workers {
        session = session.workers(w as usize);
    }
    if let Some(cluster) = dask {
        session = session.on_dask(cluster);
    }
    // Compile in a child process, so that `max_compile_time` and Ctrl-C can stop it.
    if let Ok(exe) = std::env::current_exe() {
        session = session.compile_in_child(exe);
    }
    if a.dry_run {
        return dry_run(session);
    }
    let out = match session.run() {
        Ok(out) => out,
        Err(e) => {
            super::print_error(&e);
            return exit_code(&e);
        }
    };
    if let Some(e) = &out.history_error {
        eprintln!("warning: cannot record this run for `engine cat`, `engine logs` and --dry-run: {}", escape::one(e));
    }
    if let Some(why) = &out.aborted {
        eprintln!("error: the run was stopped, no worker is left to run tasks: {}", escape::one(why));
    }
    print_summary(&out);
    if let Some(path) = &a.report
        && let Err(e) = out.write_report(path)
    {
        eprintln!("error: cannot write report {}: {e}", path.display());
        return EXIT_INTERNAL;
    }
    if let Some(path) = &a.report_html
        && let Err(e) = out.write_report_html(path)
    {
        eprintln!("error: cannot write HTML report {}: {e}", path.display());
        return EXIT_INTERNAL;
    }
    if let Some(path) = &a.trace
        && let Err(e) = out.write_trace(path)
    {
        eprintln!("error: cannot write trace {}: {e}", path.display());
        return EXIT_INTERNAL;
    }
    if let Some(code) = live.finish(a.quiet, &interrupt_flag()) {
        return code;
    }
    // The process exits next; freeing a million-task plan would only cost time.
    let status = out.status;
    std::mem::forget(out);
    match status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
        RunStatus::Failed => EXIT_TASKS_FAILED,
    }
}

fn dry_run(session: Session) -> i32 {
    let tasks = match session.dry_run() {
        Ok(t) => t,
        Err(e) => {
            super::print_error(&e);
            return exit_code(&e);
        }
    };
    let mut o = std::io::stdout().lock();
    let hits = tasks.iter().filter(|t| t.hit).count();
    for t in &tasks {
        let (id, reason) = (escape::one(&t.id), escape::one(&t.reason));
        let _ = if t.hit { writeln!(o, "hit   {id}") } else { writeln!(o, "miss  {id}: {reason}") };
    }
    let _ = writeln!(o, "dry run: {} tasks: {hits} hits, {} misses", tasks.len(), tasks.len() - hits);
    EXIT_OK
}

/// The exit code of a run that could not be carried out: 2 when nothing
/// could run as asked (options, plugins, a task no Dask worker can hold),
/// else 3.
pub(crate) fn exit_code(e: &SessionError) -> i32 {
    match e {
        SessionError::InvalidOptions(_)
        | SessionError::Plugin { .. }
        | SessionError::PluginChanged { .. }
        | SessionError::Dask(DaskError::NoWorkerFits(_)) => EXIT_INVALID,
        _ => EXIT_INTERNAL,
    }
}

/// A spinner while a large plugin compiles, and a line when preparing one
/// took noticeable time.
pub(crate) fn plugin_progress(tty: bool, quiet: bool) -> impl FnMut(PluginEvent<'_>) + 'static {
    let mut spinner: Option<ProgressBar> = None;
    move |ev| match ev {
        PluginEvent::Preparing { name, size } => {
            spinner = (tty && size > (1 << 20)).then(|| {
                let s = ProgressBar::new_spinner();
                s.set_message(format!("compiling plugin `{name}` ({})", format_size(size)));
                s.enable_steady_tick(Duration::from_millis(120));
                s
            });
        }
        PluginEvent::Prepared { name, cached, took } => {
            if let Some(s) = spinner.take() {
                s.finish_and_clear();
            }
            if took > Duration::from_millis(500) && !quiet {
                if cached {
                    eprintln!("loaded plugin `{name}` from the module cache in {}", format_duration(took));
                } else {
                    eprintln!("compiled plugin `{name}` in {} (cached for later runs)", format_duration(took));
                }
            }
        }
        PluginEvent::Failed { failure, tasks, .. } => {
            if let Some(s) = spinner.take() {
                s.finish_and_clear();
            }
            if !matches!(failure, TaskFailure::Cancelled) {
                let tasks: Vec<String> = tasks.iter().map(|t| format!("`{t}`")).collect();
                eprintln!(
                    "error: {}; not run: {} {}",
                    escape::one(&failure.to_string()),
                    if tasks.len() == 1 { "task" } else { "tasks" },
                    escape::one(&tasks.join(", "))
                );
            }
        }
    }
}

/// Base delay between attempts: `ENGINE_RETRY_BACKOFF` (a duration such as
/// `10ms`), default 100ms; doubled for each further attempt, capped at 10s.
pub(crate) fn backoff_base() -> Duration {
    std::env::var("ENGINE_RETRY_BACKOFF")
        .ok()
        .and_then(|s| crate::units::parse_duration(&s).ok())
        .unwrap_or(Duration::from_millis(100))
}

fn print_summary(out: &RunOutcome) {
    // A closed stdout (e.g. piped into `head`) must not turn into a panic.
    let mut o = std::io::stdout().lock();
    macro_rules! say {
        ($($t:tt)*) => { let _ = writeln!(o, $($t)*); };
    }
    let r = &out.records;
    let c = &r.counts;
    say!(
        "{}: {} tasks: {} succeeded ({} cached), {} failed, {} skipped, {} cancelled in {}",
        out.status.name(),
        c.total,
        c.succeeded,
        r.cached,
        c.failed,
        c.skipped,
        c.cancelled,
        format_duration(r.wall)
    );
    let slow = report::slowest(&out.plan, r, 5);
    if !slow.is_empty() {
        let list: Vec<String> = slow
            .iter()
            .map(|(id, us)| format!("{} {}", escape::one(id), format_duration(Duration::from_micros(*us))))
            .collect();
        say!("slowest: {}", list.join(", "));
    }
    for e in &r.record_errors {
        say!("warning: not recorded in the cache: {}", escape::one(&e.to_string()));
    }
    for w in &out.written {
        say!("wrote {}", escape::one(&w.display().to_string()));
    }
    for m in &out.missing {
        say!("not written: {} ({})", escape::one(&m.dest.display().to_string()), escape::one(&m.why));
    }
    if c.failed > 0 || r.interrupted {
        say!(
            "task logs are under {}",
            out.log_dir.parent().unwrap_or(&out.log_dir).parent().unwrap_or(&out.log_dir).display()
        );
    }
}

/// The progress display: a live bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    cached: usize,
    quiet: bool,
    last_line: Instant,
}

impl Progress {
    fn new(tty: bool, quiet: bool) -> Self {
        let bar = tty.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, cached: 0, quiet, last_line: Instant::now() }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Observer for Progress {
    fn event(&mut self, plan: &Plan, ev: Event<'_>, c: &Counts) {
        let done = (c.succeeded + c.failed + c.skipped + c.cancelled) as u64;
        let id = |t: TaskId| escape::one(plan.tasks[t as usize].id.as_str());
        if let Event::Cached { .. } = ev {
            self.cached += 1;
        }
        if let Some(b) = &self.bar {
            b.set_length(c.total as u64);
            b.set_position(done);
            b.set_message(format!("done ({} cached), {} running, {} failed", self.cached, c.running, c.failed));
        }
        match ev {
            Event::Failed { task, attempt, failure, decision, log_tail, .. } => {
                // Plugin text: the failure message and the log tail (docs/security.md).
                let lost = failure.kind() == "worker_lost";
                let failure = escape::one(&failure.to_string()).into_owned();
                let retries = plan.tasks[task as usize].retries;
                let mut line = match decision {
                    // Not an attempt of its `retries`: no "attempt N of M".
                    FailureDecision::Retry { .. } if lost => {
                        format!(
                            "task `{}` failed: {failure}; starting it again (a lost worker does not use its retries)",
                            id(task)
                        )
                    }
                    FailureDecision::Retry { .. } => format!(
                        "task `{}` failed (attempt {attempt} of {}): {failure}; retrying",
                        id(task),
                        retries + 1
                    ),
                    FailureDecision::Failed { skipped } => {
                        let mut s = format!("error: task `{}` failed: {failure}", id(task));
                        if skipped > 0 {
                            s.push_str(&format!(
                                " ({skipped} dependent task{} skipped)",
                                if skipped == 1 { "" } else { "s" }
                            ));
                        }
                        s
                    }
                };
                if !log_tail.is_empty() && matches!(decision, FailureDecision::Failed { .. }) {
                    line.push_str("\n  last lines of its log:");
                    // One terminal line per log line: `\n` is kept by the
                    // indentation, every other control is escaped.
                    for l in log_tail.lines() {
                        line.push_str("\n    ");
                        line.push_str(&escape::one(l));
                    }
                }
                self.say(&line);
            }
            Event::Interrupted => self.say("interrupted: cancelling running tasks"),
            Event::Tick
            | Event::Begin { .. }
            | Event::Queued { .. }
            | Event::End { .. }
            | Event::Started { .. }
            | Event::Succeeded { .. }
            | Event::Cached { .. }
            | Event::Expanded { .. }
            | Event::Cancelled { .. } => {
                if self.bar.is_none() && !self.quiet && self.last_line.elapsed() >= Duration::from_secs(5) {
                    self.last_line = Instant::now();
                    self.say(&format!(
                        "progress: {done}/{} done ({} cached), {} running, {} failed",
                        c.total, self.cached, c.running, c.failed
                    ));
                }
            }
        }
    }
}

pub fn worker(_a: &WorkerArgs) -> i32 {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "error: `engine worker` is started by `engine run --executor processes` and speaks a binary protocol on stdin/stdout"
        );
        return EXIT_INVALID;
    }
    crate::exec::worker::serve()
}
