//! `fs_conformance`: a WASI preview 1 command that exercises, through Rust
//! `std` (and the raw `fd_pread`, `fd_pwrite` and `fd_readdir` calls that std
//! does not expose on stable), every filesystem call real programs make on a
//! command task's directories, and prints a deterministic transcript: one
//! line per step, with results, lengths, contents and raw WASI errno values,
//! never timestamps or inode numbers.
//!
//! It expects `/in/data` (read-only, holding `0123456789`), an empty
//! writable `/out` and an empty writable `/tmp`. `tests/all/conformance.rs`
//! runs it through `engine run` and under plain `wasmtime_wasi` preopens and
//! requires identical transcripts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_pread(fd: u32, iovs: *const Iovec, n: usize, offset: u64, nread: *mut usize) -> u16;
    fn fd_pwrite(fd: u32, iovs: *const Iovec, n: usize, offset: u64, nwritten: *mut usize) -> u16;
    fn fd_readdir(fd: u32, buf: *mut u8, len: usize, cookie: u64, used: *mut usize) -> u16;
    fn fd_fdstat_get(fd: u32, out: *mut u8) -> u16;
    fn fd_filestat_get(fd: u32, out: *mut u8) -> u16;
    fn fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, flags: u16) -> u16;
    fn fd_advise(fd: u32, offset: u64, len: u64, advice: u8) -> u16;
    fn fd_allocate(fd: u32, offset: u64, len: u64) -> u16;
    fn fd_sync(fd: u32) -> u16;
    fn fd_datasync(fd: u32) -> u16;
    fn fd_renumber(from: u32, to: u32) -> u16;
    fn fd_close(fd: u32) -> u16;
    fn fd_tell(fd: u32, out: *mut u64) -> u16;
    fn fd_seek(fd: u32, delta: i64, whence: u8, out: *mut u64) -> u16;
    fn fd_prestat_get(fd: u32, out: *mut u8) -> u16;
    fn fd_prestat_dir_name(fd: u32, buf: *mut u8, len: usize) -> u16;
    fn fd_fdstat_set_flags(fd: u32, flags: u16) -> u16;
    fn path_readlink(fd: u32, path: *const u8, len: usize, buf: *mut u8, buf_len: usize, used: *mut usize) -> u16;
    fn path_filestat_set_times(fd: u32, flags: u32, path: *const u8, len: usize, atim: u64, mtim: u64, fst: u16)
    -> u16;
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
    fn poll_oneoff(subs: *const u8, events: *mut u8, n: usize, nevents: *mut usize) -> u16;
}

#[repr(C)]
struct Iovec {
    buf: *const u8,
    len: usize,
}

/// `ok` or the error's kind and raw WASI errno.
fn res<T>(r: io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => err(&e),
    }
}

fn err(e: &io::Error) -> String {
    let kind = match e.kind() {
        ErrorKind::NotFound => "not-found",
        ErrorKind::AlreadyExists => "already-exists",
        ErrorKind::PermissionDenied => "permission-denied",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::NotADirectory => "not-a-directory",
        ErrorKind::IsADirectory => "is-a-directory",
        ErrorKind::DirectoryNotEmpty => "directory-not-empty",
        ErrorKind::ReadOnlyFilesystem => "read-only-filesystem",
        ErrorKind::CrossesDevices => "crosses-devices",
        _ => "other",
    };
    format!("error {kind} errno={}", e.raw_os_error().unwrap_or(-1))
}

fn say(line: String) {
    println!("{line}");
}

fn pread(f: &File, len: usize, offset: u64) -> String {
    let mut buf = vec![0u8; len];
    let iov = Iovec { buf: buf.as_mut_ptr(), len };
    let mut n = 0usize;
    let rc = unsafe { fd_pread(f.as_raw_fd() as u32, &iov, 1, offset, &mut n) };
    if rc != 0 {
        return format!("errno={rc}");
    }
    format!("{n} {:?}", String::from_utf8_lossy(&buf[..n]))
}

fn pwrite(f: &File, data: &[u8], offset: u64) -> String {
    let iov = Iovec { buf: data.as_ptr(), len: data.len() };
    let mut n = 0usize;
    let rc = unsafe { fd_pwrite(f.as_raw_fd() as u32, &iov, 1, offset, &mut n) };
    if rc != 0 {
        return format!("errno={rc}");
    }
    format!("{n}")
}

/// A directory entry as `fd_readdir` gives it: name, next cookie, file type.
type Dirent = (String, u64, u8);

/// One `fd_readdir` call: the (name, next cookie) entries that fit whole, and
/// whether the buffer was filled (more may follow).
fn readdir_once(fd: u32, buf_len: usize, cookie: u64) -> Result<(Vec<Dirent>, bool), u16> {
    let mut buf = vec![0u8; buf_len];
    let mut used = 0usize;
    let rc = unsafe { fd_readdir(fd, buf.as_mut_ptr(), buf_len, cookie, &mut used) };
    if rc != 0 {
        return Err(rc);
    }
    let mut out = Vec::new();
    let mut at = 0;
    // dirent: d_next u64, d_ino u64, d_namlen u32, d_type u8 (+3 pad), name.
    while at + 24 <= used {
        let next = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or_default());
        let namlen = u32::from_le_bytes(buf[at + 16..at + 20].try_into().unwrap_or_default()) as usize;
        let kind = buf[at + 20];
        if at + 24 + namlen > used {
            break;
        }
        out.push((String::from_utf8_lossy(&buf[at + 24..at + 24 + namlen]).into_owned(), next, kind));
        at += 24 + namlen;
    }
    Ok((out, used == buf_len))
}

/// All entries via `fd_readdir` with a buffer of `buf_len`, resuming from
/// each call's last cookie.
fn readdir_all(fd: u32, buf_len: usize) -> Result<Vec<Dirent>, u16> {
    let mut all: Vec<Dirent> = Vec::new();
    let mut cookie = 0;
    loop {
        let (batch, full) = readdir_once(fd, buf_len, cookie)?;
        if let Some(last) = batch.last() {
            cookie = last.1;
        }
        let empty = batch.is_empty();
        all.extend(batch);
        if !full || empty {
            return Ok(all);
        }
    }
}

fn step_create_open() {
    say("## create, open, truncate".into());
    let mut f = File::create("/out/a.txt").expect("create /out/a.txt");
    say(format!("write: {}", res(f.write_all(b"hello world"))));
    drop(f);
    say(format!("len after create: {}", fs::metadata("/out/a.txt").map(|m| m.len()).unwrap_or(999)));
    let excl = OpenOptions::new().write(true).create_new(true).open("/out/a.txt");
    say(format!("create_new on existing: {}", res(excl)));
    let excl = OpenOptions::new().write(true).create_new(true).open("/out/new.txt");
    say(format!("create_new on missing: {}", res(excl)));
    let mut s = String::new();
    let r = File::open("/out/a.txt").and_then(|mut f| f.read_to_string(&mut s));
    say(format!("read back: {} {s:?}", res(r)));
    let t = OpenOptions::new().write(true).truncate(true).open("/out/a.txt");
    say(format!("open with truncate: {}", res(t)));
    say(format!("len after truncate: {}", fs::metadata("/out/a.txt").map(|m| m.len()).unwrap_or(999)));
    let a = OpenOptions::new().append(true).open("/out/a.txt").and_then(|mut f| {
        f.write_all(b"one,")?;
        f.write_all(b"two")
    });
    say(format!("append: {}", res(a)));
    say(format!("contents: {:?}", fs::read_to_string("/out/a.txt").unwrap_or_default()));
    say(format!("open missing for read: {}", res(File::open("/out/missing"))));
    say(format!("open in missing dir: {}", res(File::create("/out/nodir/x"))));
    say(format!("open under a file: {}", res(File::open("/out/a.txt/x"))));
    say(format!("open dir for write: {}", res(OpenOptions::new().write(true).open("/out"))));
    say(format!("open dir for read: {}", res(File::open("/out"))));
}

fn step_rw_seek() {
    say("## read, write, pread, pwrite, seek".into());
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open("/out/rw.bin").expect("rw");
    say(format!("write: {}", res(f.write_all(b"abcdefghij"))));
    say(format!("tell: {:?}", f.stream_position().map_err(|e| err(&e))));
    say(format!("seek start+3: {:?}", f.seek(SeekFrom::Start(3)).map_err(|e| err(&e))));
    let mut b = [0u8; 4];
    say(format!("read 4: {:?} {:?}", f.read(&mut b).map_err(|e| err(&e)), String::from_utf8_lossy(&b)));
    say(format!("seek cur-2: {:?}", f.seek(SeekFrom::Current(-2)).map_err(|e| err(&e))));
    say(format!("seek end: {:?}", f.seek(SeekFrom::End(0)).map_err(|e| err(&e))));
    say(format!("seek before start: {:?}", f.seek(SeekFrom::Current(-100)).map_err(|e| err(&e))));
    say(format!("tell after failed seek: {:?}", f.stream_position().map_err(|e| err(&e))));
    say(format!("seek past end: {:?}", f.seek(SeekFrom::End(90)).map_err(|e| err(&e))));
    let mut rest = Vec::new();
    say(format!("read past end: {:?} bytes", f.read_to_end(&mut rest).map_err(|e| err(&e))));
    say(format!("write past end: {}", res(f.write_all(b"Z"))));
    say(format!("len with hole: {}", f.metadata().map(|m| m.len()).unwrap_or(999)));
    let _ = f.seek(SeekFrom::Start(10));
    let mut hole = Vec::new();
    let _ = f.read_to_end(&mut hole);
    say(format!(
        "hole: {} bytes, {} zero, last {:?}",
        hole.len(),
        hole.iter().filter(|b| **b == 0).count(),
        hole.last()
    ));
    say(format!("pread 5@2: {}", pread(&f, 5, 2)));
    say(format!("pread past end: {}", pread(&f, 5, 1000)));
    say(format!("pwrite XY@1: {}", pwrite(&f, b"XY", 1)));
    say(format!("tell after pwrite: {:?}", f.stream_position().map_err(|e| err(&e))));
    say(format!("pread 4@0: {}", pread(&f, 4, 0)));
    say(format!("pwrite past end @200: {}", pwrite(&f, b"!", 200)));
    say(format!("len after pwrite: {}", f.metadata().map(|m| m.len()).unwrap_or(999)));
    let ro = File::open("/out/rw.bin").expect("open ro");
    say(format!("pwrite on read-only fd: {}", pwrite(&ro, b"no", 0)));
}

fn step_sizes() {
    say("## filestat and set_size".into());
    let f = OpenOptions::new().read(true).write(true).open("/out/rw.bin").expect("open");
    say(format!("set_len 5: {}", res(f.set_len(5))));
    say(format!("fstat len: {}", f.metadata().map(|m| m.len()).unwrap_or(999)));
    say(format!("set_len 4096: {}", res(f.set_len(4096))));
    say(format!("stat len: {}", fs::metadata("/out/rw.bin").map(|m| m.len()).unwrap_or(999)));
    say(format!("set_len 0: {}", res(f.set_len(0))));
    let ro = File::open("/out/a.txt").expect("open ro");
    say(format!("set_len on read-only fd: {}", res(ro.set_len(1))));
    for p in ["/out/a.txt", "/out", "/in", "/in/data", "/tmp", "/out/missing"] {
        let m = fs::metadata(p);
        let line = match m {
            Ok(m) => format!(
                "file={} dir={} symlink={} len={}",
                m.is_file(),
                m.is_dir(),
                m.file_type().is_symlink(),
                if m.is_file() { m.len() } else { 0 }
            ),
            Err(e) => err(&e),
        };
        say(format!("stat {p}: {line}"));
    }
}

fn step_readdir() {
    say("## readdir".into());
    fs::create_dir("/out/d").expect("mkdir /out/d");
    for i in 0..12 {
        fs::write(format!("/out/d/file-{i:02}"), format!("{i}")).expect("write");
    }
    fs::create_dir("/out/d/sub").expect("mkdir sub");
    let mut names: Vec<String> = fs::read_dir("/out/d")
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let t = e.file_type().expect("file type");
            format!("{}:{}", e.file_name().to_string_lossy(), if t.is_dir() { "dir" } else { "file" })
        })
        .collect();
    names.sort();
    say(format!("std read_dir: {}", names.join(" ")));
    let dir = File::open("/out/d").expect("open dir");
    let fd = dir.as_raw_fd() as u32;
    let big = readdir_all(fd, 4096);
    let small = readdir_all(fd, 64);
    match (&big, &small) {
        (Ok(big), Ok(small)) => {
            let mut sorted: Vec<String> = big.iter().map(|(n, _, k)| format!("{n}:{k}")).collect();
            sorted.sort();
            say(format!("fd_readdir (with . and ..): {}", sorted.join(" ")));
            let same = big.iter().map(|e| &e.0).eq(small.iter().map(|e| &e.0));
            say(format!("small-buffer listing resumed by cookie is the same sequence: {same}"));
            let cookies_ok = big.iter().enumerate().all(|(i, e)| match readdir_once(fd, 4096, e.1) {
                Ok((rest, _)) => rest.iter().map(|e| &e.0).eq(big[i + 1..].iter().map(|e| &e.0)),
                Err(_) => false,
            });
            say(format!("every cookie resumes after its entry: {cookies_ok}"));
            let end = big.last().map(|e| e.1).unwrap_or(0);
            say(format!("read at the last cookie: {:?}", readdir_once(fd, 4096, end).map(|(v, _)| v.len())));
        }
        _ => say(format!("fd_readdir failed: {:?} {:?}", big.err(), small.err())),
    }
    let file = File::open("/out/a.txt").expect("open");
    say(format!("fd_readdir on a file: {:?}", readdir_once(file.as_raw_fd() as u32, 256, 0).map(|_| ())));
    say(format!("read_dir on missing: {}", res(fs::read_dir("/out/nope"))));
    say(format!("read_dir on a file: {}", res(fs::read_dir("/out/a.txt"))));
}

fn step_rename_unlink() {
    say("## rename, unlink".into());
    for base in ["/out", "/tmp"] {
        fs::write(format!("{base}/r1"), "one").expect("write r1");
        fs::write(format!("{base}/r2"), "two").expect("write r2");
        say(format!("{base} rename r1 -> r3: {}", res(fs::rename(format!("{base}/r1"), format!("{base}/r3")))));
        say(format!("{base} r1 exists: {}", fs::metadata(format!("{base}/r1")).is_ok()));
        say(format!("{base} rename r3 over r2: {}", res(fs::rename(format!("{base}/r3"), format!("{base}/r2")))));
        say(format!("{base} r2 holds: {:?}", fs::read_to_string(format!("{base}/r2")).unwrap_or_default()));
        let open = File::open(format!("{base}/r2")).expect("open r2");
        fs::write(format!("{base}/r4"), "four").expect("write r4");
        say(format!("{base} rename r4 over open r2: {}", res(fs::rename(format!("{base}/r4"), format!("{base}/r2")))));
        let mut s = String::new();
        let _ = (&open).read_to_string(&mut s);
        say(format!(
            "{base} the open r2 still reads: {s:?}; the path reads {:?}",
            fs::read_to_string(format!("{base}/r2")).unwrap_or_default()
        ));
        say(format!("{base} rename missing: {}", res(fs::rename(format!("{base}/nope"), format!("{base}/x")))));
        let _ = fs::create_dir(format!("{base}/rd"));
        say(format!("{base} rename file into dir: {}", res(fs::rename(format!("{base}/r2"), format!("{base}/rd/r2")))));
        say(format!("{base} rename file over dir: {}", res(fs::rename(format!("{base}/rd/r2"), format!("{base}/rd")))));
        say(format!("{base} unlink: {}", res(fs::remove_file(format!("{base}/rd/r2")))));
        say(format!("{base} unlink again: {}", res(fs::remove_file(format!("{base}/rd/r2")))));
        say(format!("{base} unlink a dir: {}", res(fs::remove_file(format!("{base}/rd")))));
        say(format!("{base} rmdir: {}", res(fs::remove_dir(format!("{base}/rd")))));
    }
    fs::write("/tmp/cross", "x").expect("write /tmp/cross");
    say(format!("rename /tmp -> /out: {}", res(fs::rename("/tmp/cross", "/out/cross"))));
    say(format!("rename /out -> /in: {}", res(fs::rename("/out/a.txt", "/in/a.txt"))));
    say(format!("rename escaping with ..: {}", res(fs::rename("/out/a.txt", "/out/../a.txt"))));
}

fn step_dirs() {
    say("## mkdir, rmdir".into());
    say(format!("mkdir: {}", res(fs::create_dir("/out/m"))));
    say(format!("mkdir existing: {}", res(fs::create_dir("/out/m"))));
    say(format!("mkdir missing parent: {}", res(fs::create_dir("/out/no/m"))));
    say(format!("mkdir over a file: {}", res(fs::create_dir("/out/a.txt"))));
    fs::write("/out/m/f", "f").expect("write");
    say(format!("rmdir non-empty: {}", res(fs::remove_dir("/out/m"))));
    say(format!("rmdir a file: {}", res(fs::remove_dir("/out/m/f"))));
    say(format!("rmdir missing: {}", res(fs::remove_dir("/out/nope"))));
    let _ = fs::remove_file("/out/m/f");
    say(format!("rmdir emptied: {}", res(fs::remove_dir("/out/m"))));
    say(format!("create_dir_all: {}", res(fs::create_dir_all("/tmp/x/y/z"))));
    say(format!("remove_dir_all: {}", res(fs::remove_dir_all("/tmp/x"))));
    say(format!("escape with ..: {}", res(File::create("/out/../escape"))));
    say(format!("escape deeper: {}", res(fs::metadata("/out/d/../../in/data"))));
}

fn step_read_only_in() {
    say("## read-only /in".into());
    say(format!("read /in/data: {:?}", fs::read_to_string("/in/data").map_err(|e| err(&e))));
    say(format!("create in /in: {}", res(File::create("/in/new"))));
    say(format!("open /in/data for write: {}", res(OpenOptions::new().write(true).open("/in/data"))));
    say(format!("open /in/data for append: {}", res(OpenOptions::new().append(true).open("/in/data"))));
    say(format!("truncate /in/data: {}", res(OpenOptions::new().write(true).truncate(true).open("/in/data"))));
    say(format!("unlink /in/data: {}", res(fs::remove_file("/in/data"))));
    say(format!("mkdir in /in: {}", res(fs::create_dir("/in/d"))));
    say(format!("rename in /in: {}", res(fs::rename("/in/data", "/in/data2"))));
    let f = File::open("/in/data").expect("open /in/data");
    say(format!("write on a read fd: {}", res((&f).write_all(b"x"))));
    say(format!("set_len on /in/data: {}", res(f.set_len(0))));
    say(format!("/in/data still: {:?}", fs::read_to_string("/in/data").unwrap_or_default()));
}

/// `fd_fdstat_get` as "filetype flags base inheriting" (rights in hex).
fn fdstat(fd: u32) -> String {
    let mut b = [0u8; 24];
    let rc = unsafe { fd_fdstat_get(fd, b.as_mut_ptr()) };
    if rc != 0 {
        return format!("errno={rc}");
    }
    let u = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    format!("type {} flags {} base {:#x} inheriting {:#x}", b[0], u16::from_le_bytes([b[2], b[3]]), u(8), u(16))
}

/// `path_open` relative to descriptor `dir`: the new descriptor or the errno.
fn raw_open(dir: u32, path: &str, oflags: u16, rights: u64, fdflags: u16) -> Result<u32, u16> {
    let mut fd = 0u32;
    let rc = unsafe { path_open(dir, 0, path.as_ptr(), path.len(), oflags, rights, rights, fdflags, &mut fd) };
    if rc != 0 { Err(rc) } else { Ok(fd) }
}

fn step_raw_calls() {
    say("## descriptors: fdstat, prestat, renumber, sync, advise, poll".into());
    for fd in 0..7u32 {
        let mut p = [0u8; 8];
        let rc = unsafe { fd_prestat_get(fd, p.as_mut_ptr()) };
        let mut name = [0u8; 16];
        let len = u32::from_le_bytes([p[4], p[5], p[6], p[7]]) as usize;
        let rc2 = unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), len.min(16)) };
        say(format!(
            "fd {fd}: prestat errno={rc} name errno={rc2} {:?}; fdstat {}",
            String::from_utf8_lossy(&name[..if rc2 == 0 { len.min(16) } else { 0 }]),
            fdstat(fd)
        ));
    }
    let mut short = [0u8; 2];
    say(format!("prestat_dir_name too short: errno={}", unsafe { fd_prestat_dir_name(4, short.as_mut_ptr(), 2) }));
    const READ: u64 = 1 << 1;
    const WRITE: u64 = 1 << 6;
    let f = raw_open(4, "raw.txt", 1 | 8, READ | WRITE, 0);
    say(format!("path_open raw.txt: {:?}", f.map(|_| ())));
    let Ok(f) = f else { return };
    say(format!("fdstat rw file: {}", fdstat(f)));
    let ro = raw_open(4, "raw.txt", 0, READ, 0).unwrap_or(u32::MAX);
    say(format!("fdstat read-only file: {}", fdstat(ro)));
    let wo = raw_open(4, "raw.txt", 0, WRITE, 1).unwrap_or(u32::MAX);
    say(format!("fdstat write-only append file: {}", fdstat(wo)));
    let d = raw_open(4, "d", 2, READ, 0).unwrap_or(u32::MAX);
    say(format!("fdstat opened dir: {}", fdstat(d)));
    say(format!("open O_DIRECTORY|O_CREAT: {:?}", raw_open(4, "dd", 2 | 1, READ, 0)));
    say(format!("open with fdflags sync: {:?}", raw_open(4, "raw.txt", 0, READ, 16)));
    say(format!("open absolute path: {:?}", raw_open(4, "/out/raw.txt", 0, READ, 0)));
    say(format!("open empty path: {:?}", raw_open(4, "", 0, READ, 0)));
    say(format!("open dot: {:?}", raw_open(4, ".", 0, READ, 0).map(|_| ())));
    say(format!("open ./d/../raw.txt: {:?}", raw_open(4, "./d/../raw.txt", 0, READ, 0).map(|_| ())));
    say(format!("open d/sub/../../..: {:?}", raw_open(4, "d/sub/../../..", 0, READ, 0)));
    say(format!("open on a file descriptor: {:?}", raw_open(f, "x", 0, READ, 0)));
    say(format!("open on stdout: {:?}", raw_open(1, "x", 0, READ, 0)));
    say(format!("set_flags append: {}", unsafe { fd_fdstat_set_flags(f, 1) }));
    say(format!("fdstat after set_flags: {}", fdstat(f)));
    say(format!("set_flags on a dir: {}", unsafe { fd_fdstat_set_flags(d, 0) }));
    say(format!("set_flags sync: {}", unsafe { fd_fdstat_set_flags(f, 16) }));
    say(format!("advise: {} on dir: {}", unsafe { fd_advise(f, 0, 10, 0) }, unsafe { fd_advise(d, 0, 1, 0) }));
    say(format!("allocate: {} on dir: {}", unsafe { fd_allocate(f, 0, 10) }, unsafe { fd_allocate(d, 0, 1) }));
    say(format!("sync: {} datasync: {}", unsafe { fd_sync(f) }, unsafe { fd_datasync(f) }));
    say(format!("sync dir: {} sync stdout: {}", unsafe { fd_sync(d) }, unsafe { fd_sync(1) }));
    say(format!("set_times now: {}", unsafe { fd_filestat_set_times(f, 0, 0, 2 | 8) }));
    say(format!("set_times both: {}", unsafe { fd_filestat_set_times(f, 0, 0, 4 | 8) }));
    say(format!("set_times on /in/data: {}", {
        let p = "data";
        unsafe { path_filestat_set_times(3, 0, p.as_ptr(), p.len(), 0, 0, 8) }
    }));
    let mut st = [0u8; 64];
    say(format!("filestat stdout: {} type {}", unsafe { fd_filestat_get(1, st.as_mut_ptr()) }, st[16]));
    say(format!("filestat dir: {} type {}", unsafe { fd_filestat_get(d, st.as_mut_ptr()) }, st[16]));
    let mut pos = 0u64;
    say(format!("tell stdout: {} seek stdin: {}", unsafe { fd_tell(1, &mut pos) }, unsafe {
        fd_seek(0, 0, 0, &mut pos)
    }));
    say(format!("tell dir: {} seek dir: {}", unsafe { fd_tell(d, &mut pos) }, unsafe { fd_seek(d, 0, 0, &mut pos) }));
    let mut buf = [0u8; 32];
    let mut used = 0usize;
    let p = "raw.txt";
    say(format!("readlink a file: {}", unsafe {
        path_readlink(4, p.as_ptr(), p.len(), buf.as_mut_ptr(), 32, &mut used)
    }));
    let p = "missing";
    say(format!("readlink missing: {}", unsafe {
        path_readlink(4, p.as_ptr(), p.len(), buf.as_mut_ptr(), 32, &mut used)
    }));
    // Poll: a read subscription on a file and a 10 s clock; the file is ready at once.
    let mut subs = [0u8; 96];
    subs[0..8].copy_from_slice(&7u64.to_le_bytes());
    subs[8] = 1;
    subs[16..20].copy_from_slice(&f.to_le_bytes());
    subs[48..56].copy_from_slice(&9u64.to_le_bytes());
    subs[56] = 0;
    subs[64..68].copy_from_slice(&1u32.to_le_bytes());
    subs[72..80].copy_from_slice(&10_000_000_000u64.to_le_bytes());
    let mut events = [0u8; 64];
    let mut n = 0usize;
    let rc = unsafe { poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), 2, &mut n) };
    say(format!(
        "poll file+clock: {rc} events {n} first userdata {} error {} type {}",
        u64::from_le_bytes(events[0..8].try_into().unwrap_or_default()),
        u16::from_le_bytes([events[8], events[9]]),
        events[10]
    ));
    // Descriptor numbers: closed ones are reused, then renumbered.
    say(format!("close ro: {} close again: {}", unsafe { fd_close(ro) }, unsafe { fd_close(ro) }));
    let again = raw_open(4, "raw.txt", 0, READ, 0).unwrap_or(u32::MAX);
    say(format!("reopened gets the closed number: {}", again == ro));
    say(format!("renumber to itself: {}", unsafe { fd_renumber(again, again) }));
    say(format!("renumber to a closed fd: {}", unsafe { fd_renumber(again, 999) }));
    say(format!("renumber over wo: {}", unsafe { fd_renumber(again, wo) }));
    say(format!("old number after renumber: {}", fdstat(again)));
    say(format!("new number after renumber: {}", fdstat(wo)));
    for fd in [wo, d, f] {
        unsafe { fd_close(fd) };
    }
    let _ = fs::remove_file("/out/raw.txt");
}

fn step_final_tree() {
    say("## final /out".into());
    let mut lines = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/out")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("metadata");
            if m.is_dir() {
                lines.push(format!("{} dir", p.display()));
                stack.push(p);
            } else {
                lines.push(format!("{} {}", p.display(), m.len()));
            }
        }
    }
    lines.sort();
    for l in lines {
        say(l);
    }
}

fn main() {
    step_create_open();
    step_rw_seek();
    step_sizes();
    step_readdir();
    step_rename_unlink();
    step_dirs();
    step_read_only_in();
    step_raw_calls();
    step_final_tree();
    say("done".into());
}
