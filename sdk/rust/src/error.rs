//! The task error type: a message plus the context it was raised in, rendered
//! once as the task's error (`outer context: inner context: cause`).

use std::fmt::{self, Display};

/// An error returned by a task. Anything that implements `Display` converts
/// into it with `?` (I/O errors, serde errors, `&str`, `String`, ...), and
/// [`ResultExt::context`] adds what was being done when it happened.
///
/// Deliberately not `Display` itself (that is what lets every `Display` type
/// convert into it); use [`Error::message`].
pub struct Error {
    /// Outermost context first; the last entry is the root cause.
    chain: Vec<String>,
}

impl Error {
    /// An error with just a message.
    pub fn msg(message: impl Display) -> Error {
        Error { chain: vec![message.to_string()] }
    }

    /// Wrap this error in more context.
    pub fn context(mut self, context: impl Display) -> Error {
        self.chain.insert(0, context.to_string());
        self
    }

    /// The full message: every context, then the cause, joined by `: `.
    pub fn message(&self) -> String {
        self.chain.join(": ")
    }

    /// The innermost message (the root cause).
    pub fn root_cause(&self) -> &str {
        self.chain.last().map(String::as_str).unwrap_or("")
    }
}

impl<E: Display> From<E> for Error {
    fn from(e: E) -> Error {
        Error::msg(e)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// `Result<T, engine_sdk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

mod private {
    use super::Error;
    use std::fmt::Display;

    /// Anything that can become an [`Error`]: `Display` types and `Error` itself.
    pub trait IntoError {
        fn into_error(self) -> Error;
    }
    impl<E: Display> IntoError for E {
        fn into_error(self) -> Error {
            Error::msg(self)
        }
    }
    impl IntoError for Error {
        fn into_error(self) -> Error {
            self
        }
    }
}

/// Add context to a `Result` or an `Option`, like `anyhow::Context`.
pub trait ResultExt<T> {
    fn context(self, context: impl Display) -> Result<T>;
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: private::IntoError> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| e.into_error().context(context))
    }
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into_error().context(f()))
    }
}

impl<T> ResultExt<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::msg(f()))
    }
}

/// Return early with an error built like `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}

/// Return early with an error unless a condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u32> {
        let n: u32 = s.parse().with_context(|| format!("parsing `{s}`"))?;
        Ok(n)
    }

    #[test]
    fn chains_context() {
        let e = parse("x").context("reading params").unwrap_err();
        assert_eq!(e.message(), "reading params: parsing `x`: invalid digit found in string");
        assert_eq!(e.root_cause(), "invalid digit found in string");
        let e = None::<u8>.context("no input").unwrap_err();
        assert_eq!(e.message(), "no input");
    }
}
