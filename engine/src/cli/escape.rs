//! The one rule for text that reaches a terminal: anything a plugin (or a
//! pipeline file) controls is passed through [`escape`] before the CLI prints
//! it, so no byte of it can drive the terminal — set the window title, write
//! the clipboard (OSC 52), move the cursor, or forge a `succeeded:` line with
//! `\r`. Reports (`--report`) and `engine cat` keep the exact bytes.
//!
//! Escapes are visible and unambiguous to a reader (docs/security.md,
//! "Terminal output"): `\t`, `\n`, `\r` by name; every other C0 control and
//! DEL as `\xNN` (ESC is `\x1b`, BEL `\x07`); C1 controls (U+0080–U+009F) and
//! the Unicode bidirectional controls (U+200E, U+200F, U+202A–U+202E,
//! U+2066–U+2069) as `\u{NN}`. A backslash is left alone.

use std::borrow::Cow;

/// Which line breaks a piece of text keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: `\n` is escaped too (error text, metadata, names).
    One,
    /// Text meant to span lines, such as a log tail or a task's log: `\n`
    /// is kept, every other control is escaped.
    Keep,
}

/// Whether `c` is shown escaped.
fn needs_escape(c: char, lines: Lines) -> bool {
    match c {
        '\n' => lines == Lines::One,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `s` with every control character made visible (see the module comment);
/// borrowed when there is nothing to escape.
pub fn escape(s: &str, lines: Lines) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, lines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !needs_escape(c, lines) {
            out.push(c);
            continue;
        }
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] on one line.
pub fn one(s: &str) -> Cow<'_, str> {
    escape(s, Lines::One)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_visible_and_plain_text_is_untouched() {
        assert_eq!(one("plain `text` \\x1b ünïcode"), "plain `text` \\x1b ünïcode");
        assert!(matches!(one("plain"), Cow::Borrowed(_)));
        assert_eq!(one("\x1b]52;c;cHduZWQ=\x07"), "\\x1b]52;c;cHduZWQ=\\x07");
        assert_eq!(one("a\rsucceeded:\tb\nc\0\x7f"), "a\\rsucceeded:\\tb\\nc\\x00\\x7f");
        assert_eq!(one("\u{9b}31m \u{202e}abc"), "\\u{9b}31m \\u{202e}abc");
        assert_eq!(escape("line 1\nline\x1b[2J 2\r\n", Lines::Keep), "line 1\nline\\x1b[2J 2\\r\n");
    }
}
