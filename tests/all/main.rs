//! The one integration-test binary. Shared helpers live in `util`.
mod util;
mod hostile;
mod pipeline;
mod plugins;
mod run;
mod languages;
mod runtime;
