//! The globs of a workdir's `publish` list: validated by the pipeline loader,
//! matched by the runtime against paths relative to the workdir.
//!
//! A glob is a relative path of `/`-separated components. In a component, `*`
//! matches any run of characters and `?` any one character (neither matches
//! `/`); a component that is exactly `**` matches any number of components,
//! none included. Nothing else is special. Because a glob is relative, has no
//! `.` or `..` component and its wildcards never match `/`, it can only match
//! paths inside the workdir.

/// Why `pattern` cannot be a publish glob, if it cannot.
pub fn problem(pattern: &str) -> Option<&'static str> {
    if pattern.is_empty() {
        return Some("must not be empty");
    }
    if pattern.starts_with('/') {
        return Some("must be relative to the workdir, not start with `/`");
    }
    if pattern.contains('\0') {
        return Some("must not contain NUL");
    }
    if pattern.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("must not contain empty, `.` or `..` components or end with `/`");
    }
    if pattern.split('/').any(|c| c != "**" && c.contains("**")) {
        return Some("must use `**` only as a whole path component, as in `build/**`");
    }
    if pattern.contains(['[', ']', '{', '}', '\\']) {
        return Some("must not contain `[`, `]`, `{`, `}` or `\\` (only `*`, `?` and `**` are special)");
    }
    None
}

/// Whether the relative path `path` (components separated by `/`) matches
/// the valid glob `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let comps: Vec<&str> = path.split('/').collect();
    match_components(&pat, &comps)
}

fn match_components(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_components(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((c, tail)) => match_name(first.as_bytes(), c.as_bytes()) && match_components(rest, tail),
            None => false,
        },
    }
}

/// `*` and `?` within one component (iterative, with one backtrack point).
fn match_name(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::{matches, problem};

    #[test]
    fn globs_match_within_the_workdir() {
        let cases = [
            ("*.hex", "a.hex", true),
            ("*.hex", "build/a.hex", false),
            ("build/**", "build/a.o", true),
            ("build/**", "build/x/y/z.o", true),
            ("build/**", "buildx/a.o", false),
            ("**/*.o", "a.o", true),
            ("**/*.o", "x/y/a.o", true),
            ("**/*.o", "x/y/a.oo", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("*", ".hidden", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxx", false),
        ];
        for (pat, path, want) in cases {
            assert_eq!(matches(pat, path), want, "{pat} vs {path}");
        }
    }

    #[test]
    fn globs_that_reach_outside_are_refused() {
        assert_eq!(problem("../x"), Some("must not contain empty, `.` or `..` components or end with `/`"));
        assert_eq!(problem("a/../../x"), Some("must not contain empty, `.` or `..` components or end with `/`"));
        assert_eq!(problem("/etc/*"), Some("must be relative to the workdir, not start with `/`"));
        assert_eq!(problem("a**"), Some("must use `**` only as a whole path component, as in `build/**`"));
        assert_eq!(
            problem("[ab].o"),
            Some("must not contain `[`, `]`, `{`, `}` or `\\` (only `*`, `?` and `**` are special)")
        );
        assert_eq!(problem(""), Some("must not be empty"));
        assert_eq!(problem("build/**"), None);
    }
}
