//! `engine new task --lang LANG DIR`: a ready-to-build task in a new
//! directory, from the templates in `engine/templates/` (built into the
//! binary). Each template is the task of its SDK's README ("A task from an
//! empty directory"), with a `build.sh` holding that README's build command,
//! a `pipeline.toml` and an `input.txt` to run it on, and a `README.md`. The
//! SDK paths written into the files are those of the SDKs this engine finds
//! ([`sdk_roots`]).

use std::path::{Path, PathBuf};

use super::{EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, NewLang, NewTaskArgs};

/// One language's template.
struct Template {
    /// As `--lang` names it.
    lang: &'static str,
    /// For the README: "Rust", "C"...
    title: &'static str,
    /// What the task writes to `out`, for the README.
    what: &'static str,
    /// The SDK directories (under the SDK root) the files refer to; the
    /// first is the one the README points at.
    sdk: &'static [&'static str],
    /// Whether the task takes the param `prefix`.
    prefix: bool,
    /// Path (`TASK` stands for the task's name) and text of each file.
    files: &'static [(&'static str, &'static str)],
}

macro_rules! tmpl {
    ($path:literal) => {
        include_str!(concat!("../../templates/", $path, ".tmpl"))
    };
}

const PREFIX_WHAT: &str = "every line of it after the param `prefix`";

fn template(lang: NewLang) -> Template {
    match lang {
        NewLang::Rust => Template {
            lang: "rust",
            title: "Rust",
            what: PREFIX_WHAT,
            sdk: &["rust"],
            prefix: true,
            files: &[
                ("Cargo.toml", tmpl!("rust/Cargo.toml")),
                ("src/lib.rs", tmpl!("rust/src/lib.rs")),
                ("build.sh", tmpl!("rust/build.sh")),
            ],
        },
        NewLang::C => Template {
            lang: "c",
            title: "C",
            what: "it uppercased",
            sdk: &["c"],
            prefix: false,
            files: &[("TASK.c", tmpl!("c/TASK.c")), ("build.sh", tmpl!("c/build.sh"))],
        },
        NewLang::Zig => Template {
            lang: "zig",
            title: "Zig",
            what: PREFIX_WHAT,
            sdk: &["zig"],
            prefix: true,
            files: &[("TASK.zig", tmpl!("zig/TASK.zig")), ("build.sh", tmpl!("zig/build.sh"))],
        },
        NewLang::Go => Template {
            lang: "go",
            title: "Go",
            what: PREFIX_WHAT,
            sdk: &["go"],
            prefix: true,
            files: &[
                ("main.go", tmpl!("go/main.go")),
                ("go.mod", tmpl!("go/go.mod")),
                ("meta.json", tmpl!("go/meta.json")),
                ("build.sh", tmpl!("go/build.sh")),
            ],
        },
        NewLang::Assemblyscript => Template {
            lang: "assemblyscript",
            title: "AssemblyScript",
            what: PREFIX_WHAT,
            sdk: &["assemblyscript"],
            prefix: true,
            files: &[
                ("TASK.ts", tmpl!("assemblyscript/TASK.ts")),
                ("meta.json", tmpl!("assemblyscript/meta.json")),
                ("build.sh", tmpl!("assemblyscript/build.sh")),
            ],
        },
        NewLang::Python => Template {
            lang: "python",
            title: "Python",
            what: "it uppercased",
            sdk: &["python", "wit"],
            prefix: false,
            files: &[("TASK.py", tmpl!("python/TASK.py")), ("build.sh", tmpl!("python/build.sh"))],
        },
        NewLang::Js => Template {
            lang: "js",
            title: "JavaScript",
            what: "it with its ASCII letters uppercased",
            sdk: &["wit"],
            prefix: false,
            files: &[("TASK.js", tmpl!("js/TASK.js")), ("build.sh", tmpl!("js/build.sh"))],
        },
    }
}

/// The files every template has besides its own.
const COMMON: &[(&str, &str)] = &[
    ("pipeline.toml", tmpl!("common/pipeline.toml")),
    ("input.txt", tmpl!("common/input.txt")),
    ("README.md", tmpl!("common/README.md")),
];

/// Where the SDKs may be, in order: `$ENGINE_SDK_DIR`, `<exe dir>/../share/engine/sdk`
/// (installed by `xtask/install.sh`), and the `sdk/` directory of the source tree
/// this engine was built from.
pub fn sdk_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(d) = std::env::var_os("ENGINE_SDK_DIR").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(d));
    }
    if let Some(dir) =
        std::env::current_exe().ok().and_then(|e| e.canonicalize().ok()).and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(dir.join("../share/engine/sdk"));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"));
    roots
}

/// Whether `name` can name a task in every language: a crate, a Go module,
/// a Python module, a plugin and a task id.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Fill in a template's placeholders.
fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut s = text.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

pub fn new_task(a: &NewTaskArgs) -> i32 {
    let t = template(a.lang);
    let dir = &a.dir;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !valid_name(&name) {
        eprintln!(
            "error: `{}` is not a valid task name: use lowercase letters, digits and `_`, starting with a letter (at most 64)",
            super::escape::one(&name)
        );
        return EXIT_INVALID;
    }
    if std::fs::symlink_metadata(dir).is_ok() {
        eprintln!("error: `{}` already exists; `engine new` never overwrites anything", dir.display());
        return EXIT_INVALID;
    }
    let roots = sdk_roots();
    let Some(root) = roots.iter().find(|r| t.sdk.iter().all(|s| r.join(s).is_dir())) else {
        let looked: Vec<String> = roots.iter().map(|r| format!("`{}`", r.display())).collect();
        eprintln!(
            "error: cannot find the {} SDK (`{}/`) in {}; set ENGINE_SDK_DIR to the directory that holds it",
            t.title,
            t.sdk.join("/`, `"),
            looked.join(", ")
        );
        return EXIT_INVALID;
    };
    let root = root.canonicalize().unwrap_or_else(|_| root.clone());
    let sdk = root.display().to_string();
    let (params_toml, params_cli) =
        if t.prefix { ("params = { prefix = \"> \" }\n", " --param 'prefix=> '") } else { ("", "") };
    let vars = [
        ("name", name.as_str()),
        ("sdk", sdk.as_str()),
        ("sdk_dir", t.sdk[0]),
        ("lang", t.lang),
        ("language", t.title),
        ("what", t.what),
        ("params_toml", params_toml),
        ("params_cli", params_cli),
    ];
    // `create_dir` (not `_all`) for the directory itself: if something
    // appeared there since the check, it fails rather than writing into it.
    // Only `DIR` itself appearing is the "already exists" of the check (2);
    // a parent that cannot be made (a file in the way) is an I/O error (3).
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let made = match parent.map_or(Ok(()), std::fs::create_dir_all) {
        Ok(()) => std::fs::create_dir(dir).map_err(|e| (e.kind() == std::io::ErrorKind::AlreadyExists, e)),
        Err(e) => Err((false, e)),
    };
    if let Err((exists, e)) = made {
        eprintln!("error: cannot create `{}`: {e}", dir.display());
        return if exists { EXIT_INVALID } else { EXIT_INTERNAL };
    }
    for (path, text) in t.files.iter().chain(COMMON) {
        let dest = dir.join(path.replace("TASK", &name));
        let written = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&dest, fill(text, &vars)))
            .and_then(|()| {
                if path.ends_with(".sh") {
                    std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            eprintln!("error: cannot write `{}`: {e}", dest.display());
            return EXIT_INTERNAL;
        }
        println!("wrote {}", dest.display());
    }
    println!("build it with `bash {}`, then see {}", dir.join("build.sh").display(), dir.join("README.md").display());
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "prefix", "my_task2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "2a", "A", "my-task", "a.b", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let vars = [
            ("name", "n"),
            ("sdk", "/s"),
            ("sdk_dir", "d"),
            ("lang", "l"),
            ("language", "L"),
            ("what", "w"),
            ("params_toml", ""),
            ("params_cli", ""),
        ];
        for &lang in <NewLang as clap::ValueEnum>::value_variants() {
            for (path, text) in template(lang).files.iter().chain(COMMON) {
                let filled = fill(text, &vars);
                assert!(!filled.contains("{{"), "{path} of {lang:?} keeps a placeholder");
            }
        }
    }
}
