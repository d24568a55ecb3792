//! The one integration-test binary. Shared helpers live in `util`.
mod cache;
mod conformance;
mod hostile;
mod languages;
mod pipeline;
mod plugins;
mod programs;
mod run;
mod runtime;
mod stock;
mod tidy;
mod util;
mod workdir;
