//! `engine-sdk`: write `engine` task plugins in Rust.
//!
//! A task is a `wasm32-wasip1` `cdylib` that calls [`task!`] once. The macro
//! exports `run` and `engine_abi_v1` (guest ABI v1, see `docs/abi.md`) and
//! embeds the `engine.task` metadata section. The task function gets a
//! [`Context`] with typed params, inputs as `std::io::Read` streams and outputs
//! as `std::io::Write` sinks, and returns `Result<(), engine_sdk::Error>`; an
//! error becomes the task's error message.
//!
//! ```no_run
//! use std::io::{BufRead, Write};
//! use engine_sdk::{Context, Result};
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default)]
//! struct Params { prefix: String }
//!
//! fn run(ctx: &mut Context) -> Result<()> {
//!     let p: Params = ctx.params()?;
//!     let mut out = ctx.output("out")?;
//!     for line in ctx.input("text")?.lines() {
//!         writeln!(out, "{}{}", p.prefix, line?)?;
//!     }
//!     out.finish()
//! }
//!
//! engine_sdk::task!(
//!     name = "prefix", version = "0.1.0", description = "prefix every line",
//!     inputs = ["text"], outputs = ["out"], params = ["prefix"], run = run,
//! );
//! ```
//!
//! Architecture Invariant: this crate never depends on the engine; it only
//! speaks the ABI. Its only dependencies are serde and serde_json.

mod error;
mod io;
#[doc(hidden)]
pub mod meta;
#[doc(hidden)]
pub mod sys;

pub use error::{Error, Result, ResultExt};
pub use io::{CHUNK, Input, Item, Output};

/// What a running task sees: its input items, params and outputs.
pub struct Context {
    items: Vec<Item>,
    params: Option<String>,
}

impl Context {
    /// Query the host for the task's inputs. [`task!`] does this for you.
    pub fn new() -> Context {
        Context { items: Item::all(), params: None }
    }

    /// Every input item, in the host's order (scalars and list items).
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Whether an input with this name was given.
    pub fn has_input(&self, name: &str) -> bool {
        self.items.iter().any(|i| i.name == name)
    }

    /// The scalar input `name`. Errors if it is missing or is a list.
    pub fn input(&self, name: &str) -> Result<Input> {
        let mut found = self.items.iter().filter(|i| i.name == name);
        match (found.next(), found.next()) {
            (None, _) => Err(Error::msg(format!("missing input `{name}`"))),
            (Some(item), None) if item.index.is_none() => Ok(Input::new(item.clone())),
            _ => Err(Error::msg(format!("input `{name}` is a list; expected a single input"))),
        }
    }

    /// The scalar input `name`, or `None` if it was not given.
    pub fn input_opt(&self, name: &str) -> Result<Option<Input>> {
        if self.has_input(name) { self.input(name).map(Some) } else { Ok(None) }
    }

    /// Every item of the list input `name`, ordered by index. A scalar input is
    /// a list of one; a missing input is an empty list.
    pub fn input_list(&self, name: &str) -> Vec<Input> {
        let mut items: Vec<&Item> = self.items.iter().filter(|i| i.name == name).collect();
        items.sort_by_key(|i| i.index);
        items.into_iter().map(|i| Input::new(i.clone())).collect()
    }

    /// The number of this attempt of the task: 1 for the first, 2 for the
    /// first retry, and so on.
    pub fn attempt(&self) -> u32 {
        unsafe { sys::attempt() }.max(1) as u32
    }

    /// The params JSON text exactly as the host passed it (`{}` when empty).
    pub fn params_json(&mut self) -> &str {
        self.params.get_or_insert_with(|| {
            let len = unsafe { sys::params_len() }.max(0) as usize;
            let mut buf = vec![0u8; len];
            let n = unsafe { sys::params_read(buf.as_mut_ptr(), len as i32) }.max(0) as usize;
            buf.truncate(n);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if text.trim().is_empty() { "{}".to_owned() } else { text }
        })
    }

    /// The params deserialized into `T`. Missing params read as `{}`, so a
    /// struct with `#[serde(default)]` gets its defaults. Use
    /// `#[serde(deny_unknown_fields)]` to reject unknown params.
    pub fn params<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        serde_json::from_str(self.params_json()).map_err(|e| Error::msg(format!("invalid params: {e}")))
    }

    /// Open the output `name` (`out` is the default output). Opening the same
    /// name twice, or an invalid name, fails the task (the host traps).
    pub fn output(&mut self, name: &str) -> Result<Output> {
        Ok(Output::open(name))
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

/// Log levels, as the `log` host call numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// Append a line to the task log (`[info] msg`).
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)*) => { $crate::log($level, &::std::format!($($arg)*)) };
}
/// Log at trace level, `format!`-style.
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::__log!($crate::Level::Trace, $($arg)*) }; }
/// Log at debug level, `format!`-style.
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::__log!($crate::Level::Debug, $($arg)*) }; }
/// Log at info level, `format!`-style.
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::__log!($crate::Level::Info, $($arg)*) }; }
/// Log at warn level, `format!`-style.
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::__log!($crate::Level::Warn, $($arg)*) }; }
/// Log at error level, `format!`-style (this does not fail the task; return an `Err` for that).
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::__log!($crate::Level::Error, $($arg)*) }; }

/// Run a task function and report its error to the host. Used by [`task!`].
#[doc(hidden)]
pub fn __run(f: fn(&mut Context) -> Result<()>) -> i32 {
    let mut ctx = Context::new();
    match f(&mut ctx) {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.message();
            unsafe { sys::error(msg.as_ptr(), msg.len() as i32) };
            1
        }
    }
}

/// Declare the task: exports `run` and `engine_abi_v1` and embeds the
/// `engine.task` metadata section. Use once per plugin crate.
///
/// ```no_run
/// # fn run(_: &mut engine_sdk::Context) -> engine_sdk::Result<()> { Ok(()) }
/// engine_sdk::task!(
///     name = "wordcount",
///     version = "0.1.0",
///     description = "count words",
///     inputs = ["text"],
///     outputs = ["out"],
///     params = ["lowercase", "min_len"], // optional; omit = params not declared
///     run = run,                         // fn(&mut Context) -> Result<()>
/// );
/// ```
#[macro_export]
macro_rules! task {
    (
        name = $name:expr,
        version = $version:expr,
        description = $description:expr,
        inputs = [$($input:expr),* $(,)?],
        outputs = [$($output:expr),* $(,)?],
        $(params = [$($param:expr),* $(,)?],)?
        run = $run:expr $(,)?
    ) => {
        const _: () = {
            const META: $crate::meta::Meta<'static> = $crate::meta::Meta {
                name: $name,
                version: $version,
                description: $description,
                inputs: &[$($input),*],
                outputs: &[$($output),*],
                params: $crate::__params!($([$($param),*])?),
            };
            const LEN: usize = $crate::meta::json_len(&META);
            #[used]
            #[unsafe(link_section = "engine.task")]
            static ENGINE_TASK: [u8; LEN] = $crate::meta::json_bytes::<LEN>(&META);

            // Inside this anonymous block so that the user's function may be
            // called `run` too.
            #[unsafe(export_name = "run")]
            extern "C" fn __engine_run() -> i32 {
                $crate::__run($run)
            }

            #[unsafe(export_name = "engine_abi_v1")]
            extern "C" fn __engine_abi_v1() {}
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __params {
    () => { ::core::option::Option::None };
    ([$($param:expr),*]) => { ::core::option::Option::Some(&[$($param),*]) };
}
