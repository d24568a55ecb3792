//! `cmd_probe`: a test guest that is a plain WASI command which reports what
//! it sees of its filesystem. Its arguments are actions, run in order, each
//! printing one line (or more) to stdout:
//!
//! * `list <dir>`: every entry under `<dir>`, recursively and sorted, as
//!   `<path> <file|symlink|other> <len>` or `<path> dir` (from `symlink_metadata`).
//! * `cat <path>`: the file's contents.
//! * `write <path> <text>`: create `<path>` holding `<text>`; prints
//!   `write <path>: ok` or `write <path>: error`.
//! * `tmp`: writes and reads back a file in `$TMPDIR`; prints `TMPDIR=<dir> ok`.
//! * `fill <dir> <bytes>`: writes `<bytes>` bytes into `<dir>/fill`, 64 KiB at a time.
//! * `mkdir <path>`: `create_dir_all`; prints `mkdir <path>: ok` or `mkdir <path>: error`.
//! * `deep <dir> <n>`: creates `<dir>/d/d/...`, `<n>` levels; prints `deep <n>: ok` or
//!   `deep <n>: error at <level>`.
//! * `copy <src> <dst>`: writes a new file `<dst>`: the line `copy\n`, then `<src>`
//!   copied 1 MiB at a time (so `<dst>` is never the same blob as `<src>`); prints
//!   `copied <bytes of src>` (the 1 GiB copy of `bench/command.py`).
//! * `exit <code>`: exits with that code at once.
//! * `preopens`: the preopened descriptors from 3 up, one line each, as
//!   `fd <n>: <guest path>`, then `fd <n>: errno <e>` for the first one that
//!   is not a preopen (8 is EBADF: closed).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

fn list(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else {
        out.push(format!("{} unreadable", dir.display()));
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let md = fs::symlink_metadata(&p).expect("symlink_metadata");
        let kind = if md.file_type().is_symlink() {
            "symlink"
        } else if md.is_dir() {
            "dir"
        } else if md.is_file() {
            "file"
        } else {
            "other"
        };
        if md.is_dir() {
            out.push(format!("{} {kind}", p.display()));
        } else {
            out.push(format!("{} {kind} {}", p.display(), md.len()));
        }
        if md.is_dir() {
            list(&p, out);
        }
    }
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_prestat_get(fd: u32, out: *mut u8) -> u16;
    fn fd_prestat_dir_name(fd: u32, buf: *mut u8, len: usize) -> u16;
}

/// `fd <n>: <path>` per preopen from 3 up, ending with the first errno.
fn preopens() -> Vec<String> {
    let mut lines = Vec::new();
    for fd in 3.. {
        let mut stat = [0u8; 8];
        let e = unsafe { fd_prestat_get(fd, stat.as_mut_ptr()) };
        if e != 0 {
            lines.push(format!("fd {fd}: errno {e}"));
            return lines;
        }
        let len = u32::from_le_bytes([stat[4], stat[5], stat[6], stat[7]]) as usize;
        let mut name = vec![0u8; len];
        let e = unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), len) };
        lines.push(if e == 0 {
            format!("fd {fd}: {}", String::from_utf8_lossy(&name))
        } else {
            format!("fd {fd}: name errno {e}")
        });
    }
    lines
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdout = std::io::stdout().lock();
    let mut i = 0;
    while i < args.len() {
        let arg = |k: usize| args.get(i + k).cloned().unwrap_or_default();
        match args[i].as_str() {
            "list" => {
                let mut lines = Vec::new();
                list(Path::new(&arg(1)), &mut lines);
                for l in lines {
                    writeln!(stdout, "{l}").unwrap();
                }
                i += 2;
            }
            "cat" => {
                match fs::read(arg(1)) {
                    Ok(b) => stdout.write_all(&b).unwrap(),
                    Err(_) => writeln!(stdout, "cat {}: error", arg(1)).unwrap(),
                }
                i += 2;
            }
            "write" => {
                let r = fs::write(arg(1), arg(2));
                writeln!(stdout, "write {}: {}", arg(1), if r.is_ok() { "ok" } else { "error" }).unwrap();
                i += 3;
            }
            "tmp" => {
                let dir = std::env::var("TMPDIR").unwrap_or_default();
                let p = Path::new(&dir).join("probe.txt");
                let ok = fs::write(&p, b"scratch").is_ok() && fs::read(&p).map(|b| b == b"scratch").unwrap_or(false);
                writeln!(stdout, "TMPDIR={dir} {}", if ok { "ok" } else { "error" }).unwrap();
                i += 1;
            }
            "fill" => {
                let n: u64 = arg(2).parse().unwrap_or(0);
                let mut f = fs::File::create(Path::new(&arg(1)).join("fill")).expect("create fill");
                let chunk = vec![b'x'; 64 << 10];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    f.write_all(&chunk[..k]).expect("write fill");
                    left -= k as u64;
                }
                writeln!(stdout, "filled {n}").unwrap();
                i += 3;
            }
            "mkdir" => {
                let r = fs::create_dir_all(arg(1));
                writeln!(stdout, "mkdir {}: {}", arg(1), if r.is_ok() { "ok" } else { "error" }).unwrap();
                i += 2;
            }
            "deep" => {
                let n: usize = arg(2).parse().unwrap_or(0);
                let mut p = std::path::PathBuf::from(arg(1));
                let mut failed = None;
                for level in 1..=n {
                    p.push("d");
                    if fs::create_dir(&p).is_err() {
                        failed = Some(level);
                        break;
                    }
                }
                match failed {
                    None => writeln!(stdout, "deep {n}: ok").unwrap(),
                    Some(l) => writeln!(stdout, "deep {n}: error at {l}").unwrap(),
                }
                i += 3;
            }
            "preopens" => {
                for line in preopens() {
                    writeln!(stdout, "{line}").unwrap();
                }
                i += 1;
            }
            "copy" => {
                let mut src = fs::File::open(arg(1)).expect("open copy source");
                let mut dst = fs::File::create(arg(2)).expect("create copy destination");
                dst.write_all(b"copy\n").expect("write copy destination");
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                loop {
                    let n = src.read(&mut buf).expect("read copy source");
                    if n == 0 {
                        break;
                    }
                    dst.write_all(&buf[..n]).expect("write copy destination");
                    total += n as u64;
                }
                writeln!(stdout, "copied {total}").unwrap();
                i += 3;
            }
            "exit" => {
                stdout.flush().unwrap();
                std::process::exit(arg(1).parse().unwrap_or(1));
            }
            other => {
                eprintln!("cmd_probe: unknown action `{other}`");
                std::process::exit(2);
            }
        }
    }
}
