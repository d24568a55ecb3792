//! Tests that keep the house clean: the layer order of `engine/src` (each
//! module imports only from its own layer or below), every `.rs` file opening
//! with a `//!` paragraph, no leftover `dbg!`/`todo!`/`unimplemented!`, and
//! no function longer than 120 lines where the run logic lives.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::repo_root;

/// `engine/src`'s top-level modules from the bottom layer up. A module may
/// import from its own layer or any layer below it, never above. Modules on
/// one line share a layer.
const LAYERS: &[&[&str]] = &[
    &["units"],
    &["store"],
    &["plan"],
    &["task"],
    &["graph", "sched"],
    &["pipeline"],
    &["runtime"],
    &["exec"],
    &["report", "history", "upkeep"],
    &["session"],
    &["cli"],
    &["main"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `engine/src` belongs to (`exec` for
/// `exec/driver.rs`, `session` for `session.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source text names as `crate::X` (in `use` lines
/// and in paths).
fn crate_refs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_module_imports_only_from_its_layer_or_below() {
    let src = repo_root().join("engine/src");
    let mut bad = Vec::new();
    for file in rust_files(&src) {
        if file.file_name().is_some_and(|n| n == "lib.rs") {
            continue;
        }
        let module = module_of(&src, &file);
        let Some(own) = layer_of(&module) else {
            bad.push(format!("{}: module `{module}` is in no layer of tests/all/tidy.rs", file.display()));
            continue;
        };
        let text = fs::read_to_string(&file).expect("readable source");
        for (line, target) in crate_refs(&text) {
            match layer_of(&target) {
                Some(l) if l > own => bad.push(format!(
                    "{}:{line}: `{module}` imports `crate::{target}`, a higher layer",
                    file.strip_prefix(&src).unwrap_or(&file).display()
                )),
                Some(_) => {}
                None => bad.push(format!("{}:{line}: `crate::{target}` is in no layer", file.display())),
            }
        }
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    // The check itself must be able to fail.
    let refs = crate_refs("use crate::session::Session; // crate::cli\nlet x = crate::store::Digest::EMPTY;");
    assert_eq!(refs, vec![(1, "session".to_string()), (2, "store".to_string())]);
    assert!(layer_of("session") > layer_of("exec"));
    assert!(layer_of("task") < layer_of("runtime"));
    assert!(layer_of("pipeline") < layer_of("runtime"));
}

/// Files the tidy rules cover: the engine, its tests, examples and fuzz targets.
fn tidy_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = Vec::new();
    for d in ["engine/src", "engine/examples", "tests/all"] {
        files.extend(rust_files(&root.join(d)));
    }
    files
}

/// Macros that must not be left in the code (spelled in two halves so this
/// file does not match itself).
const LEFTOVERS: [&str; 3] = [concat!("dbg", "!("), concat!("todo", "!("), concat!("unimplemented", "!(")];

#[test]
fn every_rust_file_opens_with_a_module_doc_and_has_no_leftovers() {
    let mut bad = Vec::new();
    for file in tidy_files() {
        let text = fs::read_to_string(&file).expect("readable source");
        if !text.starts_with("//!") {
            bad.push(format!("{}: does not open with a `//!` paragraph", file.display()));
        }
        for (n, line) in text.lines().enumerate() {
            for word in LEFTOVERS {
                if line.contains(word) {
                    bad.push(format!("{}:{}: `{word}`", file.display(), n + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "tidy:\n{}", bad.join("\n"));
}

/// Longest function body allowed in the modules that hold the run logic.
const MAX_FN_LINES: usize = 120;

/// `(name, first line, length in lines)` of each `fn` item with a body: from
/// the line of `fn` to its closing brace, found by brace depth (string and
/// char literals and comments are skipped well enough for this code base).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let Some(pos) = t.find("fn ") else { continue };
        let head = &t[..pos];
        if t.starts_with("//")
            || !(head.is_empty()
                || head.ends_with("pub ")
                || head.ends_with(") ")
                || head.ends_with("const ")
                || head.ends_with("unsafe "))
        {
            continue;
        }
        let name: String = t[pos + 3..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // Find the opening brace of the body (or a `;` for a declaration).
        let mut depth = 0i32;
        let mut opened = false;
        let mut end = None;
        'scan: for (j, l) in lines.iter().enumerate().skip(i) {
            let code = strip_literals(l);
            for c in code.chars() {
                match c {
                    ';' if !opened && depth == 0 => break 'scan,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(j);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(e) = end {
            out.push((name, i + 1, e - i + 1));
        }
    }
    out
}

/// A line without its `//` comment and the contents of string and char literals.
fn strip_literals(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '\'' => {
                // A char literal such as '{' or '\n'; a lifetime has no closing quote.
                let rest: String = chars.clone().take(3).collect();
                if let Some(esc) = rest.strip_prefix('\\') {
                    if let Some(k) = esc.find('\'') {
                        for _ in 0..k + 2 {
                            chars.next();
                        }
                    }
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn no_function_in_the_run_logic_is_longer_than_120_lines() {
    let src = repo_root().join("engine/src");
    let mut files = Vec::new();
    for d in ["pipeline", "exec", "runtime"] {
        files.extend(rust_files(&src.join(d)));
    }
    files.push(src.join("session.rs"));
    let mut bad = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("readable source");
        // Unit tests are exempt: a test reads best as one story.
        let code = text.split("\n#[cfg(test)]").next().unwrap_or(&text);
        for (name, line, len) in functions(code) {
            if len > MAX_FN_LINES {
                bad.push(format!(
                    "{}:{line}: fn {name} is {len} lines",
                    file.strip_prefix(&src).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", bad.join("\n"));
}

#[test]
fn the_function_length_check_measures_bodies() {
    let text =
        "fn a() {\n    let s = \"}\";\n    if x { y('{') }\n}\n\npub(crate) fn b(x: u32) -> u32 { x }\nfn c();\n";
    assert_eq!(functions(text), vec![("a".to_string(), 1, 4), ("b".to_string(), 6, 1)]);
}
