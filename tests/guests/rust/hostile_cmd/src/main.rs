//! `hostile_cmd`: a test guest (a plain WASI command) that tries to break out
//! of the command-task sandbox. `argv[1]` picks the attack; the remaining
//! arguments are host paths the test wants attacked (a sentinel directory).
//!
//! Escape attempts print one line per attempt to stderr:
//! `denied: <attempt>: <error>` when the sandbox refused it, or
//! `ESCAPED: <attempt>` when it worked. The program exits with code 13 when
//! every attempt was denied and 0 (publishing what it found) otherwise, so a
//! working escape makes the task *succeed*, which the tests reject.
//!
//! Attacks: `passwd`, `paths <sentinel>`, `links <sentinel>`, `write <sentinel>`,
//! `files <n>`, `bigfile <mib>`, `log <mib>`, `sleep <secs>`, `ambient`, `clock`, `net`,
//! `panic <text>` (after a few KiB of stderr), `random <calls> <mib>` (`random_get`
//! of `<mib>` MiB, `<calls>` times),
//! `escape` (`..` and absolute paths through every path-taking call, printed
//! as errno values to `/out/out`), `rename_out`, `fds <n>`, `sparse <dir>`,
//! `unlinked <dir> <mib>`, `deep <dir> <levels>`, `readdir_mod`.

use std::fs;
use std::io::{self, Write};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
    fn sock_accept(fd: u32, flags: u16, result: *mut u32) -> u16;
    fn sock_send(fd: u32, iovs: *const u8, iovs_len: usize, flags: u16, result: *mut usize) -> u16;
    fn path_symlink(old: *const u8, old_len: usize, fd: u32, new: *const u8, new_len: usize) -> u16;
    fn path_open(
        fd: u32,
        dirflags: u32,
        path: *const u8,
        len: usize,
        oflags: u16,
        base: u64,
        inheriting: u64,
        fdflags: u16,
        out: *mut u32,
    ) -> u16;
    fn path_create_directory(fd: u32, path: *const u8, len: usize) -> u16;
    fn path_remove_directory(fd: u32, path: *const u8, len: usize) -> u16;
    fn path_unlink_file(fd: u32, path: *const u8, len: usize) -> u16;
    fn path_filestat_get(fd: u32, flags: u32, path: *const u8, len: usize, out: *mut u8) -> u16;
    fn path_filestat_set_times(fd: u32, flags: u32, path: *const u8, len: usize, a: u64, m: u64, f: u16) -> u16;
    fn path_readlink(fd: u32, path: *const u8, len: usize, buf: *mut u8, buf_len: usize, used: *mut usize) -> u16;
    fn path_rename(fd: u32, old: *const u8, old_len: usize, fd2: u32, new: *const u8, new_len: usize) -> u16;
    fn path_link(fd: u32, flags: u32, old: *const u8, old_len: usize, fd2: u32, new: *const u8, new_len: usize) -> u16;
}

/// Every path-taking WASI call on `path` relative to `/out`, as `name errno` lines.
fn every_path_call(path: &str) -> Vec<String> {
    let (p, l) = (path.as_ptr(), path.len());
    let mut st = [0u8; 64];
    let mut buf = [0u8; 64];
    let mut used = 0usize;
    let mut fd = 0u32;
    let ok = "ok".as_ptr();
    // SAFETY: every buffer is valid for the length given with it.
    let calls: Vec<(&str, u16)> = unsafe {
        vec![
            ("path_open read", path_open(OUT_FD, 0, p, l, 0, 2, 2, 0, &mut fd)),
            ("path_open create", path_open(OUT_FD, 0, p, l, 1, 64, 64, 0, &mut fd)),
            ("path_create_directory", path_create_directory(OUT_FD, p, l)),
            ("path_remove_directory", path_remove_directory(OUT_FD, p, l)),
            ("path_unlink_file", path_unlink_file(OUT_FD, p, l)),
            ("path_filestat_get", path_filestat_get(OUT_FD, 0, p, l, st.as_mut_ptr())),
            ("path_filestat_set_times", path_filestat_set_times(OUT_FD, 0, p, l, 0, 0, 8)),
            ("path_readlink", path_readlink(OUT_FD, p, l, buf.as_mut_ptr(), 64, &mut used)),
            ("path_rename from", path_rename(OUT_FD, p, l, OUT_FD, ok, 2)),
            ("path_rename to", path_rename(OUT_FD, ok, 2, OUT_FD, p, l)),
            ("path_link from", path_link(OUT_FD, 0, p, l, OUT_FD, ok, 2)),
            ("path_link to", path_link(OUT_FD, 0, ok, 2, OUT_FD, p, l)),
            ("path_symlink", path_symlink(ok, 2, OUT_FD, p, l)),
        ]
    };
    calls.into_iter().map(|(name, e)| format!("{path}: {name} errno {e}")).collect()
}

/// The descriptor of `/out`: preopens are numbered from 3 in the order the
/// engine mounts them (`/in`, then `/out`).
const OUT_FD: u32 = 4;

/// Create the symlink `/out/<name>` -> `target` (`std::os::wasi` is unstable).
fn symlink_in_out(target: &str, name: &str) -> u16 {
    // SAFETY: both buffers are valid for their lengths.
    unsafe { path_symlink(target.as_ptr(), target.len(), OUT_FD, name.as_ptr(), name.len()) }
}

/// Counts escape attempts.
struct Attempts {
    escaped: Vec<String>,
}

impl Attempts {
    fn check<T>(&mut self, what: &str, r: io::Result<T>) {
        match r {
            Ok(_) => {
                eprintln!("ESCAPED: {what}");
                self.escaped.push(what.to_string());
            }
            Err(e) => eprintln!("denied: {what}: {e}"),
        }
    }

    fn finish(self) -> ! {
        io::stderr().flush().ok();
        if self.escaped.is_empty() {
            std::process::exit(13);
        }
        let _ = fs::write("/out/escaped", self.escaped.join("\n"));
        std::process::exit(0);
    }
}

fn arg(i: usize) -> String {
    std::env::args().nth(i).unwrap_or_default()
}

fn main() {
    let mut a = Attempts { escaped: Vec::new() };
    match arg(1).as_str() {
        "passwd" => {
            a.check("read /etc/passwd", fs::read("/etc/passwd"));
            a.check("read /in/../etc/passwd", fs::read("/in/../etc/passwd"));
            a.check("read /in/../../../../etc/passwd", fs::read("/in/../../../../etc/passwd"));
            a.check("read /out/../../etc/passwd", fs::read("/out/../../etc/passwd"));
            a.check("read ../../etc/passwd", fs::read("../../etc/passwd"));
            a.check("list /", fs::read_dir("/"));
            a.check("list /out/..", fs::read_dir("/out/.."));
            a.finish()
        }
        "paths" => {
            let s = arg(2);
            a.check("read <sentinel>/keep.txt", fs::read(format!("{s}/keep.txt")));
            a.check("list <sentinel>", fs::read_dir(&s));
            a.check("read /in/..<sentinel>/keep.txt", fs::read(format!("/in/..{s}/keep.txt")));
            a.check("read /out/../..<sentinel>/keep.txt", fs::read(format!("/out/../..{s}/keep.txt")));
            a.check("stat /proc/self/environ", fs::metadata("/proc/self/environ"));
            a.finish()
        }
        "write" => {
            let s = arg(2);
            a.check("overwrite <sentinel>/keep.txt", fs::write(format!("{s}/keep.txt"), "pwned"));
            a.check("create <sentinel>/pwned", fs::write(format!("{s}/pwned"), "pwned"));
            a.check("create /tmp/hostile-pwned", fs::write("/tmp/hostile-pwned", "pwned"));
            a.check("create /out/../hostile-pwned", fs::write("/out/../hostile-pwned", "pwned"));
            a.check("create /in/hostile-pwned", fs::write("/in/hostile-pwned", "pwned"));
            a.check("overwrite /in/data", fs::write("/in/data", "pwned"));
            a.check("remove /in/data", fs::remove_file("/in/data"));
            a.check("mkdir /in/hostile-dir", fs::create_dir("/in/hostile-dir"));
            a.check("rename /in/data to /out/data", fs::rename("/in/data", "/out/data"));
            a.finish()
        }
        "links" => {
            let s = arg(2);
            // Creating a link may be allowed; following it out of /out must not be.
            let errno = |e: u16| if e == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(i32::from(e))) };
            a.check("symlink /out/abs -> /etc/passwd", errno(symlink_in_out("/etc/passwd", "abs")));
            a.check(
                "symlink /out/sentinel -> <sentinel>/keep.txt",
                errno(symlink_in_out(&format!("{s}/keep.txt"), "sentinel")),
            );
            // A relative target is stored as is; what matters is that it cannot be followed.
            let made = symlink_in_out("../../../../../../etc/passwd", "rel");
            eprintln!("symlink /out/rel -> ../../../../../../etc/passwd: errno {made}");
            a.check("read through /out/rel", fs::read("/out/rel"));
            a.check("write through /out/rel", fs::write("/out/rel", "pwned"));
            a.check("hard link /etc/passwd to /out/h1", fs::hard_link("/etc/passwd", "/out/h1"));
            a.check("hard link /out/../../etc/passwd to /out/h2", fs::hard_link("/out/../../etc/passwd", "/out/h2"));
            a.check("hard link <sentinel>/keep.txt to /out/h3", fs::hard_link(format!("{s}/keep.txt"), "/out/h3"));
            a.check("hard link /in/../../etc/passwd to /out/h4", fs::hard_link("/in/../../etc/passwd", "/out/h4"));
            // Exit 0 with the symlink left in /out: the engine must refuse it as an output.
            io::stderr().flush().ok();
            if !a.escaped.is_empty() {
                let _ = fs::write("/out/escaped", a.escaped.join("\n"));
            }
        }
        "files" => {
            let n: u32 = arg(2).parse().unwrap_or(0);
            for i in 0..n {
                if let Err(e) = fs::write(format!("/out/f{i}"), b"x") {
                    eprintln!("file {i}: {e}");
                    std::process::exit(2);
                }
            }
        }
        "bigfile" => {
            let mib: u64 = arg(2).parse().unwrap_or(0);
            let chunk = vec![0u8; 1 << 20];
            let mut f = fs::File::create("/out/big").unwrap_or_else(|e| fail(e));
            for _ in 0..mib {
                f.write_all(&chunk).unwrap_or_else(|e| fail(e));
            }
        }
        "log" => {
            let mib: u64 = arg(2).parse().unwrap_or(0);
            let chunk = vec![b'x'; 1 << 20];
            let mut err = io::stderr();
            for _ in 0..mib {
                err.write_all(&chunk).unwrap_or_else(|e| fail(e));
            }
            fs::write("/out/out", "logged\n").unwrap_or_else(|e| fail(e));
        }
        "panic" => {
            eprintln!("{}", "noise before the panic ".repeat(200));
            let nested = |text: &str| -> ! { panic!("{text}\nsecond line of the panic") };
            nested(&arg(2));
        }
        "random" => {
            let calls: u64 = arg(2).parse().unwrap_or(0);
            let mut buf = vec![0u8; arg(3).parse::<usize>().unwrap_or(0) << 20];
            for _ in 0..calls {
                // SAFETY: `buf` is a live buffer of that length.
                let e = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
                if e != 0 {
                    fail(io::Error::other(format!("random_get: errno {e}")));
                }
            }
            fs::write("/out/out", format!("{} random bytes\n", calls * buf.len() as u64)).unwrap_or_else(|e| fail(e));
        }
        "sleep" => {
            let secs: u64 = arg(2).parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            fs::write("/out/out", "woke up\n").unwrap_or_else(|e| fail(e));
        }
        "ambient" => {
            let args: Vec<String> = std::env::args().collect();
            let env: Vec<(String, String)> = std::env::vars().collect();
            let mut root: Vec<String> = Vec::new();
            for d in ["/", "/in", "/out", "/tmp", "."] {
                root.push(format!(
                    "{d}: {}",
                    fs::read_dir(d).map(|_| "readable".to_string()).unwrap_or_else(|e| e.to_string())
                ));
            }
            let text = format!("args: {args:?}\nenv: {env:?}\n{}\n", root.join("\n"));
            fs::write("/out/out", text).unwrap_or_else(|e| fail(e));
        }
        "clock" => {
            let wall =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
            let t0 = std::time::Instant::now();
            let mut buf = [0u8; 16];
            // SAFETY: `buf` is a valid writable buffer of the given length.
            let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            let text =
                format!("wall_us {wall}\nelapsed_ns {}\nrandom {hex} (errno {errno})\n", t0.elapsed().as_nanos());
            fs::write("/out/out", text).unwrap_or_else(|e| fail(e));
        }
        "net" => {
            // WASI preview 1 can only accept on sockets it was handed; none are.
            let mut lines = Vec::new();
            for fd in 0..8u32 {
                let mut newfd = 0u32;
                let mut sent = 0usize;
                // SAFETY: out-pointers are valid; an empty iovec list is never read.
                let (e1, e2) =
                    unsafe { (sock_accept(fd, 0, &mut newfd), sock_send(fd, std::ptr::null(), 0, 0, &mut sent)) };
                lines.push(format!("fd {fd}: sock_accept errno {e1}, sock_send errno {e2}"));
            }
            fs::write("/out/out", lines.join("\n") + "\n").unwrap_or_else(|e| fail(e));
        }
        "escape" => {
            fs::write("/out/ok", "ok").unwrap_or_else(|e| fail(e));
            let mut lines = Vec::new();
            for p in ["../x", "/etc/passwd", "/out/ok", "..", "../out/ok", "./../x"] {
                lines.extend(every_path_call(p));
            }
            fs::remove_file("/out/ok").unwrap_or_else(|e| fail(e));
            fs::write("/out/out", lines.join("\n") + "\n").unwrap_or_else(|e| fail(e));
        }
        "rename_out" => {
            fs::write("/out/x", "x").unwrap_or_else(|e| fail(e));
            a.check("rename /out/x to /in/x", fs::rename("/out/x", "/in/x"));
            a.check("rename /out/x to /out/../x", fs::rename("/out/x", "/out/../x"));
            a.check("rename /out/x to /x", fs::rename("/out/x", "/x"));
            a.check("rename /out to /out2", fs::rename("/out", "/out2"));
            a.check("rename /out/x to /tmp/x", fs::rename("/out/x", "/tmp/x"));
            a.finish()
        }
        "fds" => {
            let n: usize = arg(2).parse().unwrap_or(0);
            let mut held = Vec::new();
            let mut error = String::from("none");
            for _ in 0..n {
                match fs::File::open("/in/data") {
                    Ok(f) => held.push(f),
                    Err(e) => {
                        error = e.to_string();
                        break;
                    }
                }
            }
            let opened = held.len();
            drop(held);
            let again = fs::File::open("/in/data").map(|_| "ok").unwrap_or("failed");
            fs::write("/out/out", format!("opened {opened}, then: {error}; after closing them: {again}\n"))
                .unwrap_or_else(|e| fail(e));
        }
        "sparse" => {
            use std::io::{Seek, SeekFrom};
            let dir = arg(2);
            let mut f = fs::File::create(format!("{dir}/sparse")).unwrap_or_else(|e| fail(e));
            let at = f.seek(SeekFrom::Start(1 << 40)).unwrap_or_else(|e| fail(e));
            eprintln!("seeked to {at}");
            f.write_all(b"x").unwrap_or_else(|e| fail(e));
            fs::write("/out/out", "wrote past 1 TiB\n").unwrap_or_else(|e| fail(e));
        }
        "unlinked" => {
            let dir = arg(2);
            let mib: u64 = arg(3).parse().unwrap_or(0);
            let path = format!("{dir}/gone");
            let mut f = fs::File::create(&path).unwrap_or_else(|e| fail(e));
            fs::remove_file(&path).unwrap_or_else(|e| fail(e));
            let chunk = vec![7u8; 1 << 20];
            for _ in 0..mib {
                f.write_all(&chunk).unwrap_or_else(|e| fail(e));
            }
            fs::write("/out/out", "wrote through an unlinked file\n").unwrap_or_else(|e| fail(e));
        }
        "deep" => {
            let mut p = arg(2);
            let levels: usize = arg(3).parse().unwrap_or(0);
            for i in 0..levels {
                p.push_str("/d");
                if let Err(e) = fs::create_dir(&p) {
                    eprintln!("level {i}: {e}");
                    std::process::exit(2);
                }
            }
            fs::write(format!("{p}/leaf"), vec![1u8; 1 << 20]).unwrap_or_else(|e| fail(e));
        }
        "readdir_mod" => {
            // List /out/d while removing every listed entry and adding new ones.
            fs::create_dir("/out/d").unwrap_or_else(|e| fail(e));
            for i in 0..200 {
                fs::write(format!("/out/d/f{i:03}"), "x").unwrap_or_else(|e| fail(e));
            }
            let mut seen = 0;
            for (added, e) in fs::read_dir("/out/d").unwrap_or_else(|e| fail(e)).enumerate() {
                let e = e.unwrap_or_else(|e| fail(e));
                seen += 1;
                fs::remove_file(e.path()).unwrap_or_else(|e| fail(e));
                fs::write(format!("/out/d/n{added:05}"), "y").unwrap_or_else(|e| fail(e));
                if seen > 10_000 {
                    break;
                }
            }
            let left = fs::read_dir("/out/d").map(|d| d.count()).unwrap_or(0);
            fs::remove_dir_all("/out/d").unwrap_or_else(|e| fail(e));
            fs::write("/out/out", format!("listing ended: {}\n", seen <= 10_000 && left > 0))
                .unwrap_or_else(|e| fail(e));
        }
        other => {
            eprintln!("unknown attack `{other}`");
            std::process::exit(2);
        }
    }
}

fn fail(e: io::Error) -> ! {
    eprintln!("hostile_cmd: {e}");
    std::process::exit(3);
}
