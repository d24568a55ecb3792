//! Tests that keep the house clean: the layer order of `engine/src` (each
//! module imports only from its own layer or below), every `.rs` file opening
//! with a `//!` paragraph, no leftover `dbg!`/`todo!`/`unimplemented!`, no
//! function longer than 120 lines where the run logic lives, and no test guest
//! under `tests/guests/` that nothing uses.

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
    for d in ["engine/src", "engine/examples", "tests/all", "fuzz/fuzz_targets"] {
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

// ---- the guest inventory ------------------------------------------------------

/// The kinds of test guest under `tests/guests/`, each reached through its own
/// loaders: a guest counts as used when its name is a string literal (`"NAME"`)
/// in a test file that uses one of its kind's loaders, or, for a Rust or C
/// guest (built by `xtask/build-guests.sh` to `TARGET/test-guests/NAME.wasm`),
/// when `NAME.wasm` appears in a test, script or example. Tying a name to a
/// loader keeps a WAT `echo` from counting as a use of the Rust `echo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuestKind {
    /// `tests/guests/rust/<dir>/`, named by its `Cargo.toml` package name.
    Rust,
    /// `tests/guests/c/NAME.c`, a WASI command built to `c_NAME.wasm`, so
    /// named `c_NAME`.
    C,
    /// `tests/guests/wat/NAME.wat`.
    Wat,
    /// `tests/guests/hostile/NAME.wat`, loaded by the file that names that directory.
    Hostile,
    /// `tests/guests/components/<dir>/`, a wasm32-wasip2 crate of that
    /// workspace, named by its `Cargo.toml` package name.
    Component,
}

impl GuestKind {
    /// The directory under `tests/guests/` and the marks of a file that loads
    /// this kind: calls of the `util` loaders (see [`has_mark`]), or the
    /// directory's path.
    fn dir_and_loaders(self) -> (&'static str, &'static [&'static str]) {
        match self {
            GuestKind::Rust => ("rust", &["guest(", "run_guest(", "run_guest_with("]),
            GuestKind::C => ("c", &["guest(", "run_guest(", "run_guest_with("]),
            GuestKind::Wat => ("wat", &["wat_guest(", "run_wat("]),
            GuestKind::Hostile => ("hostile", &["tests/guests/hostile"]),
            GuestKind::Component => ("components", &["guest(", "run_guest(", "run_guest_with("]),
        }
    }

    /// Whether `xtask/build-guests.sh` builds this kind to
    /// `TARGET/test-guests/NAME.wasm`, so a script may use it by that file name.
    fn built_to_wasm(self) -> bool {
        matches!(self, GuestKind::Rust | GuestKind::C | GuestKind::Component)
    }

    /// What an entry of this kind's directory must be, for the failure message.
    fn entry(self) -> &'static str {
        match self {
            GuestKind::Rust | GuestKind::Component => "a crate directory with a Cargo.toml",
            GuestKind::C => "a .c file",
            GuestKind::Wat | GuestKind::Hostile => "a .wat file",
        }
    }
}

const GUEST_KINDS: [GuestKind; 5] =
    [GuestKind::Rust, GuestKind::C, GuestKind::Wat, GuestKind::Hostile, GuestKind::Component];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Guest {
    kind: GuestKind,
    name: String,
    /// Where it lives, relative to the repository, for the failure message.
    path: String,
}

/// The guests under `guests_dir` (`tests/guests/`), and every entry there that
/// is no guest of a known kind (a stray file, an unknown directory, a Rust
/// directory without `Cargo.toml`).
fn guest_inventory(guests_dir: &Path) -> (Vec<Guest>, Vec<String>) {
    let list = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(d)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        v.sort();
        v
    };
    let rel = |p: &Path| format!("tests/guests/{}", p.strip_prefix(guests_dir).unwrap_or(p).display());
    let (mut guests, mut stray) = (Vec::new(), Vec::new());
    for top in list(guests_dir) {
        let top_name = top.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(kind) = GUEST_KINDS.into_iter().find(|k| k.dir_and_loaders().0 == top_name && top.is_dir()) else {
            stray.push(format!("{}: not a guest directory (rust/, c/, wat/, hostile/ or components/)", rel(&top)));
            continue;
        };
        for p in list(&top) {
            // The components workspace's own manifest and lock file.
            let workspace_file = p.file_name().is_some_and(|n| n == "Cargo.toml" || n == "Cargo.lock");
            if kind == GuestKind::Component && p.is_file() && workspace_file {
                continue;
            }
            let dir_name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // The WASI and world WIT the interpreted guests are built against.
            if kind == GuestKind::Component && p.is_dir() && dir_name == "wit" {
                continue;
            }
            // Python and JavaScript sources, each built (examples/languages/*/build.sh)
            // to `test_<stem>.wasm`.
            if kind == GuestKind::Component && p.is_dir() && (dir_name == "python" || dir_name == "javascript") {
                // `__pycache__`: what componentize-py's import of a source leaves beside it.
                for f in list(&p).into_iter().filter(|f| !f.ends_with("__pycache__")) {
                    match f.file_stem().filter(|_| f.is_file()) {
                        Some(stem) => {
                            guests.push(Guest { kind, name: format!("test_{}", stem.to_string_lossy()), path: rel(&f) })
                        }
                        None => stray.push(format!("{}: not a guest (a Python or JavaScript source)", rel(&f))),
                    }
                }
                continue;
            }
            let name = match kind {
                GuestKind::Rust | GuestKind::Component => fs::read_to_string(p.join("Cargo.toml")).ok().and_then(|t| {
                    t.lines().find_map(|l| Some(l.trim().strip_prefix("name = \"")?.strip_suffix('"')?.to_string()))
                }),
                GuestKind::C | GuestKind::Wat | GuestKind::Hostile => {
                    let (ext, prefix) = if kind == GuestKind::C { ("c", "c_") } else { ("wat", "") };
                    p.extension()
                        .is_some_and(|x| x == ext)
                        .then(|| p.file_stem().map(|s| format!("{prefix}{}", s.to_string_lossy())))
                        .flatten()
                        .filter(|_| p.is_file())
                }
            };
            match name {
                Some(name) => guests.push(Guest { kind, name, path: rel(&p) }),
                None => stray.push(format!("{}: not a guest ({})", rel(&p), kind.entry())),
            }
        }
    }
    (guests, stray)
}

/// Whether `text` holds `mark` not preceded by an identifier character (so the
/// mark `guest(` is not found in `wat_guest(`).
fn has_mark(text: &str, mark: &str) -> bool {
    text.match_indices(mark)
        .any(|(i, _)| !text[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The guests that no source mentions (see [`GuestKind`]), as failure lines.
/// `sources` are `(path, text)`; `.rs` paths are tests, others scripts or examples.
fn unused_guests(guests: &[Guest], sources: &[(String, String)]) -> Vec<String> {
    let used = |g: &Guest| {
        let quoted = format!("\"{}\"", g.name);
        let wasm = format!("{}.wasm", g.name);
        sources.iter().any(|(path, text)| {
            let loads_kind = path.ends_with(".rs") && g.kind.dir_and_loaders().1.iter().any(|l| has_mark(text, l));
            let by_name = loads_kind && text.contains(&quoted);
            let by_file = g.kind.built_to_wasm()
                && text.match_indices(&wasm).any(|(i, _)| {
                    !text[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            by_name || by_file
        })
    };
    guests
        .iter()
        .filter(|g| !used(g))
        .map(|g| format!("{}: `{}` is used by no test or script", g.path, g.name))
        .collect()
}

/// The texts a guest may be used from: `tests/all/*.rs` (but this file, whose
/// self-tests name made-up guests), `xtask/*.sh` (but `build-guests.sh`:
/// building a guest is no use of it), and the `.toml`, `.sh` and `.md` files
/// under `examples/`.
fn guest_user_sources() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files: Vec<PathBuf> =
        rust_files(&root.join("tests/all")).into_iter().filter(|f| !f.ends_with("tidy.rs")).collect();
    let mut stack = vec![root.join("xtask"), root.join("examples")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let p = e.expect("a directory entry").path();
            let in_xtask = d == root.join("xtask");
            if p == root.join("xtask/build-guests.sh") {
                continue;
            } else if p.is_dir() && !in_xtask {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sh" || (!in_xtask && (x == "toml" || x == "md"))) {
                files.push(p);
            }
        }
    }
    files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            (f.strip_prefix(&root).unwrap_or(&f).display().to_string(), text)
        })
        .collect()
}

#[test]
fn every_test_guest_is_used_by_a_test_or_script() {
    let (guests, mut bad) = guest_inventory(&repo_root().join("tests/guests"));
    assert!(guests.len() > 40, "the inventory found only {} guests: {guests:?}", guests.len());
    bad.extend(unused_guests(&guests, &guest_user_sources()));
    assert!(bad.is_empty(), "tests/guests/ holds what no test uses (use it or delete it):\n{}", bad.join("\n"));
}

#[test]
fn the_guest_inventory_sees_unused_and_misplaced_guests() {
    // The check itself must be able to fail.
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path();
    for d in ["rust/echo/src", "rust/no_manifest", "c", "wat", "hostile", "extra"] {
        fs::create_dir_all(g.join(d)).unwrap();
    }
    fs::write(g.join("rust/echo/Cargo.toml"), "[package]\nname = \"echo\"\n").unwrap();
    for f in ["c/wc.c", "c/wc.h", "wat/echo.wat", "wat/spare.wat", "wat/notes.txt", "hostile/loop.wat", "README.md"] {
        fs::write(g.join(f), "").unwrap();
    }
    let (guests, stray) = guest_inventory(g);
    let found: Vec<(GuestKind, &str)> = guests.iter().map(|g| (g.kind, g.name.as_str())).collect();
    assert_eq!(
        found,
        [
            (GuestKind::C, "c_wc"),
            (GuestKind::Hostile, "loop"),
            (GuestKind::Rust, "echo"),
            (GuestKind::Wat, "echo"),
            (GuestKind::Wat, "spare")
        ]
    );
    assert_eq!(
        stray,
        [
            "tests/guests/README.md: not a guest directory (rust/, c/, wat/, hostile/ or components/)",
            "tests/guests/c/wc.h: not a guest (a .c file)",
            "tests/guests/extra: not a guest directory (rust/, c/, wat/, hostile/ or components/)",
            "tests/guests/rust/no_manifest: not a guest (a crate directory with a Cargo.toml)",
            "tests/guests/wat/notes.txt: not a guest (a .wat file)",
        ]
    );

    // `"echo"` in a file that loads WAT guests uses the WAT `echo` only; a
    // hostile guest's name outside the file that loads them is no use; names
    // count whole (`"spare_2"` is not `spare`).
    let src = |p: &str, t: &str| (p.to_string(), t.to_string());
    let wat_user =
        src("tests/all/runtime.rs", "let r = run_wat(\"echo\", x); let s = wat_guest(\"spare_2\"); // \"loop\"");
    let unused = unused_guests(&guests, &[wat_user]);
    assert_eq!(
        unused,
        [
            "tests/guests/c/wc.c: `c_wc` is used by no test or script",
            "tests/guests/hostile/loop.wat: `loop` is used by no test or script",
            "tests/guests/rust/echo: `echo` is used by no test or script",
            "tests/guests/wat/spare.wat: `spare` is used by no test or script",
        ]
    );
    // A Rust guest is used by a loader call or as `NAME.wasm` in a script, not as `my_echo.wasm`.
    let script = |t: &str| src("xtask/demo.sh", t);
    assert_eq!(unused_guests(&guests[2..3], &[script("cp my_echo.wasm x")]).len(), 1);
    assert!(unused_guests(&guests[2..3], &[script("cp \"$dir/echo.wasm\" x")]).is_empty());
    assert!(unused_guests(&guests[2..3], &[src("tests/all/run.rs", "guest(\"echo\")")]).is_empty());
    // A C guest `tests/guests/c/wc.c` is `c_wc` (its built file `c_wc.wasm`):
    // used by `guest("c_wc")` or `c_wc.wasm` in a script, not by `"wc"` nor by
    // `"c_wc"` in a file that loads only WAT guests.
    let c_wc = &guests[..1];
    assert!(unused_guests(c_wc, &[src("tests/all/conformance.rs", "check(\"c_wc\"); guest(name)")]).is_empty());
    assert!(unused_guests(c_wc, &[script("cp \"$dir/c_wc.wasm\" x")]).is_empty());
    assert_eq!(unused_guests(c_wc, &[src("tests/all/run.rs", "guest(\"wc\")")]).len(), 1);
    assert_eq!(unused_guests(c_wc, &[src("tests/all/runtime.rs", "wat_guest(\"c_wc\")")]).len(), 1);
    assert_eq!(unused_guests(c_wc, &[script("cp wc.wasm x")]).len(), 1);
    assert!(
        unused_guests(&guests[1..2], &[src("tests/all/hostile.rs", "join(\"tests/guests/hostile\"); wat(\"loop\")")])
            .is_empty()
    );
}
