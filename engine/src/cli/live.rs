//! `engine run --events FILE` and `--dashboard [ADDR]`: the observers that
//! watch a run besides the progress display, the lines they print, and the
//! dashboard's linger after the run (`--dashboard-linger`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{EXIT_INTERNAL, ExecutorKind, RunArgs};
use crate::exec::driver::{Observer, Tee};
use crate::report::dashboard::Dashboard;
use crate::report::events::{EventLog, WriteError};
use crate::units::format_duration;

/// `--dashboard ADDR`: `HOST:PORT`, with a port number.
pub fn parse_addr(s: &str) -> Result<String, String> {
    let port = match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => port,
        _ => return Err("expected HOST:PORT, e.g. 127.0.0.1:8787".into()),
    };
    port.parse::<u16>().map_err(|_| format!("`{port}` is not a port number (0 to 65535)"))?;
    Ok(s.to_string())
}

fn executor_name(k: ExecutorKind) -> &'static str {
    match k {
        ExecutorKind::Sync => "sync",
        ExecutorKind::Threads => "threads",
        ExecutorKind::Processes => "processes",
        ExecutorKind::Dask => "dask",
    }
}

/// What watches a run besides the progress display.
#[derive(Default)]
pub(super) struct Live {
    dashboard: Option<(Dashboard, Duration)>,
    events: Option<(PathBuf, WriteError)>,
}

impl Live {
    /// Start the dashboard, if asked (before the pipeline is loaded, so a
    /// local Dask cluster started by the run leaves it its port).
    pub fn start(a: &RunArgs) -> Result<Live, i32> {
        let Some(addr) = a.dashboard.as_deref().filter(|_| !a.dry_run) else { return Ok(Live::default()) };
        let d = match Dashboard::bind(addr) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: cannot serve the dashboard at {addr}: {e}");
                return Err(EXIT_INTERNAL);
            }
        };
        let url = format!("http://{}/", d.addr());
        eprintln!("dashboard: {url}");
        if !d.is_loopback() {
            eprintln!(
                "warning: the dashboard at {url} has no authentication: anyone who can reach this address sees the run's tasks, errors and logs"
            );
        }
        let linger = a.dashboard_linger.unwrap_or(Duration::ZERO);
        Ok(Live { dashboard: Some((d, linger)), events: None })
    }

    /// The observer of the run: `progress`, then the event log and the
    /// dashboard when asked for.
    pub fn observer(
        &mut self,
        a: &RunArgs,
        progress: Box<dyn Observer + Send>,
    ) -> Result<Box<dyn Observer + Send>, i32> {
        let executor = executor_name(a.executor);
        let mut all = vec![progress];
        if let Some(path) = a.events.as_ref().filter(|_| !a.dry_run) {
            let file = match std::fs::File::create(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: cannot write events {}: {e}", path.display());
                    return Err(EXIT_INTERNAL);
                }
            };
            let log = EventLog::new(Box::new(file), executor);
            self.events = Some((path.clone(), log.error()));
            all.push(Box::new(log));
        }
        if let Some((d, _)) = &self.dashboard {
            all.push(Box::new(d.observer(executor)));
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Box::new(Tee(all)) })
    }

    /// After the run: report an event-log write error (exit status 3), and
    /// keep the dashboard up for `--dashboard-linger` unless `interrupt` is
    /// set (Ctrl-C).
    pub fn finish(self, quiet: bool, interrupt: &AtomicBool) -> Option<i32> {
        let mut code = None;
        if let Some((path, error)) = &self.events
            && let Some(e) = error.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            eprintln!("error: cannot write events {}: {e}", path.display());
            code = Some(EXIT_INTERNAL);
        }
        if let Some((d, linger)) = &self.dashboard
            && !linger.is_zero()
            && !interrupt.load(Ordering::SeqCst)
        {
            if !quiet {
                eprintln!(
                    "dashboard: the run has ended; serving its final state at http://{}/ for {} (Ctrl-C to stop)",
                    d.addr(),
                    format_duration(*linger)
                );
            }
            let until = Instant::now() + *linger;
            while Instant::now() < until && !interrupt.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
            }
        }
        code
    }
}
