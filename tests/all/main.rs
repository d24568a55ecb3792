//! The one integration-test binary. Shared helpers live in `util`.
mod util;
mod plugins;
mod run;
mod languages;
