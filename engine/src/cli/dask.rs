//! `engine run --executor dask`: connect to the cluster first (its workers'
//! resources are the run's capacity), load the pipeline against them, refuse
//! a task that fits on no single worker, then run as any other executor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{EXIT_INTERNAL, EXIT_INVALID, RunArgs};
use crate::exec::dask::{DaskConfig, DaskError, DaskExecutor};
use crate::pipeline::{self, LoadOptions};

/// The Python that runs the bridge: `--dask-python`, else `$ENGINE_DASK_PYTHON`, else `python3`.
fn python(a: &RunArgs) -> PathBuf {
    a.dask_python
        .clone()
        .or_else(|| std::env::var_os("ENGINE_DASK_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

pub fn run(a: &RunArgs, interrupt: Arc<AtomicBool>) -> i32 {
    if a.resources.is_some() {
        eprintln!("error: --resources does not apply to --executor dask: the Dask workers declare theirs");
        return EXIT_INVALID;
    }
    if a.workers.is_some() {
        eprintln!("error: --workers does not apply to --executor dask: use --dask-window");
        return EXIT_INVALID;
    }
    if a.dask_window == Some(0) {
        eprintln!("error: --dask-window must be at least 1");
        return EXIT_INVALID;
    }
    let connect_timeout = match crate::units::parse_duration(&a.dask_connect_timeout) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: invalid --dask-connect-timeout `{}`: {e}", a.dask_connect_timeout);
            return EXIT_INVALID;
        }
    };
    let engine_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find the engine binary: {e}");
            return EXIT_INTERNAL;
        }
    };
    let cfg = DaskConfig {
        python: python(a),
        scheduler: a.scheduler.clone(),
        connect_timeout,
        window: a.dask_window.map(|w| w as usize),
        engine_exe,
    };
    let exec = match DaskExecutor::connect(&cfg) {
        Ok(e) => e,
        Err(e) => {
            super::print_error(&e);
            return EXIT_INTERNAL;
        }
    };
    let cluster = exec.cluster().clone();
    let opts = LoadOptions { capacity_override: Some(cluster.load_capacity()), check_plugins: true };
    let mut plan = match pipeline::load(&a.pipeline, &opts) {
        Ok(p) => p,
        Err(d) => {
            use std::io::IsTerminal;
            let text = if std::io::stderr().is_terminal() { d.to_colored_string() } else { d.to_string() };
            eprint!("{text}");
            return EXIT_INVALID;
        }
    };
    if let Err(e @ DaskError::NoWorkerFits(_)) = cluster.check_fit(&plan) {
        super::print_error(&e);
        return EXIT_INVALID;
    }
    plan.capacity = cluster.capacity();
    match super::run::run_loaded(&plan, a, interrupt, Some(exec)) {
        Ok(code) => code,
        Err(e) => {
            super::print_error(&*e);
            EXIT_INTERNAL
        }
    }
}
