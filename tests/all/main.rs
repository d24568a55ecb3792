//! The one integration-test binary. Shared helpers live in `util`.
mod cache;
mod call;
mod cli;
mod compile;
mod components;
mod confine;
mod conformance;
mod dask;
mod fanout;
mod hostile;
mod html;
mod languages;
mod new_task;
mod pipeline;
mod plugins;
mod poll;
mod programs;
mod run;
mod runtime;
#[cfg(feature = "s3")]
mod s3;
mod schema;
mod stock;
mod store;
mod tidy;
mod util;
mod workdir;
