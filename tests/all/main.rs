//! The one integration-test binary. Shared helpers live in `util`.
mod cache;
mod cli;
mod compile;
mod components;
mod confine;
mod conformance;
mod dashboard;
mod dask;
mod events;
mod fanout;
mod hostile;
mod html;
mod languages;
mod pipeline;
mod plugins;
mod poll;
mod programs;
mod run;
mod runtime;
#[cfg(feature = "s3")]
mod s3;
mod stock;
mod store;
mod tidy;
mod util;
mod workdir;
