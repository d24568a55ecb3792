//! Whether output is coloured. One rule for every coloured output (the
//! diagnostics of `engine check`, `graph` and `run`, and clap's help and
//! usage errors): `NO_COLOR` set to anything but the empty string turns
//! colour off; otherwise `CLICOLOR_FORCE` set to anything but the empty
//! string or `0` turns it on, even when the output is not a terminal;
//! otherwise output is coloured only when it goes to a terminal.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// What the environment asks for, before looking at the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Never,
    Always,
    /// Colour when the stream is a terminal.
    Auto,
}

/// The rule, over the values of `NO_COLOR` and `CLICOLOR_FORCE`.
pub fn choose(no_color: Option<&OsStr>, force: Option<&OsStr>) -> Choice {
    if no_color.is_some_and(|v| !v.is_empty()) {
        Choice::Never
    } else if force.is_some_and(|v| !v.is_empty() && v != "0") {
        Choice::Always
    } else {
        Choice::Auto
    }
}

/// The rule applied to this process's environment.
pub fn choice() -> Choice {
    choose(std::env::var_os("NO_COLOR").as_deref(), std::env::var_os("CLICOLOR_FORCE").as_deref())
}

/// Colour on stderr?
pub fn stderr() -> bool {
    match choice() {
        Choice::Never => false,
        Choice::Always => true,
        Choice::Auto => std::io::stderr().is_terminal(),
    }
}

/// The same choice for clap's help and errors.
pub fn clap_choice() -> clap::ColorChoice {
    match choice() {
        Choice::Never => clap::ColorChoice::Never,
        Choice::Always => clap::ColorChoice::Always,
        Choice::Auto => clap::ColorChoice::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_then_clicolor_force() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(choose(None, None), Choice::Auto);
        assert_eq!(choose(s("1"), None), Choice::Never);
        assert_eq!(choose(s("1"), s("1")), Choice::Never);
        assert_eq!(choose(s(""), s("1")), Choice::Always);
        assert_eq!(choose(None, s("yes")), Choice::Always);
        assert_eq!(choose(None, s("0")), Choice::Auto);
        assert_eq!(choose(None, s("")), Choice::Auto);
    }
}
