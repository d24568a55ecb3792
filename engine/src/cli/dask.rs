//! `engine run --executor dask`: map the Dask flags onto
//! [`DaskOptions`], and connect to the cluster before loading the pipeline
//! (its workers' resources are the capacity the pipeline is validated
//! against). The run itself is the session's, as on any other executor.

use std::path::PathBuf;

use super::{EXIT_INVALID, RunArgs};
use crate::plan::Plan;
use crate::session::{DaskCluster, DaskOptions};

/// The Dask options the flags name, or the exit code of a flag error.
pub(crate) fn options(a: &RunArgs) -> Result<DaskOptions, i32> {
    if a.resources.is_some() {
        eprintln!("error: --resources does not apply to --executor dask: the Dask workers declare theirs");
        return Err(EXIT_INVALID);
    }
    if a.workers.is_some() {
        eprintln!("error: --workers does not apply to --executor dask: use --dask-window");
        return Err(EXIT_INVALID);
    }
    if a.dask_window == Some(0) {
        eprintln!("error: --dask-window must be at least 1");
        return Err(EXIT_INVALID);
    }
    let connect_timeout = crate::units::parse_duration(&a.dask_connect_timeout).map_err(|e| {
        eprintln!("error: invalid --dask-connect-timeout `{}`: {e}", a.dask_connect_timeout);
        EXIT_INVALID
    })?;
    Ok(DaskOptions {
        scheduler: a.scheduler.clone(),
        window: a.dask_window.map(|w| w as usize),
        // `--dask-python`, else `$ENGINE_DASK_PYTHON`, else `python3`.
        python: a
            .dask_python
            .clone()
            .or_else(|| std::env::var_os("ENGINE_DASK_PYTHON").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("python3")),
        connect_timeout,
    })
}

/// Connect to the cluster, then load the pipeline against its workers.
pub(crate) fn connect_and_load(
    a: &RunArgs,
    opts: DaskOptions,
    vars: Vec<crate::pipeline::VarSetting>,
) -> Result<(Plan, DaskCluster), i32> {
    let cluster = DaskCluster::connect(opts).map_err(|e| {
        super::print_error(&e);
        super::run::exit_code(&e)
    })?;
    let plan = super::check::load_with(
        &a.pipeline,
        &crate::pipeline::LoadOptions { vars, confine: a.confine.allowed(), ..cluster.load_options() },
    )?;
    Ok((plan, cluster))
}
