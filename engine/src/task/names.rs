//! The one rule for output names, shared by `engine check` (names written in
//! the pipeline) and the runtime (names a plugin chooses while it runs), so
//! the two can never disagree. The messages are the ones docs/abi.md lists.

/// Longest output name, in bytes.
pub const MAX_NAME: usize = 255;

/// Why an output name is invalid, or `None` if it is fine: 1 to 255 bytes of
/// UTF-8, segments of `[A-Za-z0-9._-]` separated by `/`, no empty, `.` or
/// `..` segment, no leading `/`.
pub fn name_problem(name: &[u8]) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Some(format!("names must be 1 to {MAX_NAME} bytes long, this one is {} bytes", name.len()));
    }
    let Ok(s) = std::str::from_utf8(name) else {
        return Some("not valid UTF-8".into());
    };
    if s.starts_with('/') {
        return Some("must not start with `/`".into());
    }
    for seg in s.split('/') {
        if seg.is_empty() {
            return Some("empty path segment".into());
        }
        if seg == "." || seg == ".." {
            return Some(format!("`{seg}` segments are not allowed"));
        }
        if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
            return Some(format!("character {c:?} is not allowed (use A-Z a-z 0-9 . _ - and / between segments)"));
        }
    }
    None
}

/// A name as shown in messages: lossy UTF-8, at most 64 bytes then `...`.
pub fn show_name(name: &[u8]) -> String {
    if name.len() <= 64 {
        String::from_utf8_lossy(name).into_owned()
    } else {
        format!("{}...", String::from_utf8_lossy(&name[..64]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_abi_rule() {
        assert_eq!(name_problem(b"out"), None);
        assert_eq!(name_problem(b"stats/a.csv"), None);
        assert_eq!(name_problem(b"a/../b").as_deref(), Some("`..` segments are not allowed"));
        assert_eq!(name_problem(b"/a").as_deref(), Some("must not start with `/`"));
        assert_eq!(name_problem(b"a//b").as_deref(), Some("empty path segment"));
        assert_eq!(
            name_problem(b"a b").as_deref(),
            Some("character ' ' is not allowed (use A-Z a-z 0-9 . _ - and / between segments)")
        );
        assert_eq!(name_problem(b"\xff").as_deref(), Some("not valid UTF-8"));
        assert_eq!(name_problem(b"").as_deref(), Some("names must be 1 to 255 bytes long, this one is 0 bytes"));
    }
}
