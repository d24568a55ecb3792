//! The WASI preview 1 descriptor and path calls over [`super::vfs`], defined
//! on the task linker over (shadowing) those of `wasmtime_wasi::p1`.
//! `poll_oneoff` is [`super::poll`]'s, linked after these, so it asks this
//! descriptor table about descriptor subscriptions.
//!
//! Each call follows wasmtime-wasi's p1 adapter exactly where a program can
//! tell the difference: only the first non-empty iovec of a vectored read or
//! write is used, `fd_pwrite` on an append descriptor writes at the end,
//! `fd_readdir` lists `.` and `..` first with cookies counting entries,
//! stdio answers `ESPIPE` to seeks, a pointer outside memory traps with
//! wiggle's message.
//! Entries are listed in name order, inode numbers count up from 1 in
//! creation order, and in deterministic mode every timestamp is
//! 2000-01-01T00:00:00Z, so two runs see the same metadata.

use wasmtime::{Caller, Linker};

use super::TaskState;
use super::failure::Abort;
use super::vfs::{Desc, Fail, Stdin, VResult, errno};
use crate::task::abi::WASI_MODULE;

const ILSEQ: u16 = 25;

/// The guest's memory and the task state; a module without a memory traps.
/// The memory found at instantiation (`Vfs::memory`) saves a lookup by
/// name per call; the helper instance of `poll` re-exports that same memory.
fn parts<'a>(caller: &'a mut Caller<'_, TaskState>) -> VResult<(&'a mut [u8], &'a mut TaskState)> {
    let mem = match caller.data().vfs.as_ref().and_then(|v| v.memory) {
        Some(m) => m,
        None => caller
            .get_export("memory")
            .and_then(|e| e.into_memory())
            .ok_or_else(|| Fail::Abort(Abort::Trap("missing required memory export".into())))?,
    };
    Ok(mem.data_and_store_mut(caller))
}

/// The memory range `ptr..ptr+len`; out of bounds traps, with wiggle's message.
fn range(mem: &[u8], ptr: i32, len: u64) -> VResult<std::ops::Range<usize>> {
    let start = ptr as u32 as u64;
    match start.checked_add(len) {
        Some(end) if end <= mem.len() as u64 => Ok(start as usize..end as usize),
        _ => Err(Fail::Abort(Abort::Trap(format!("Pointer out of bounds: Region {{ start: {start}, len: {len} }}")))),
    }
}

fn put(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> VResult<()> {
    let r = range(mem, ptr, bytes.len() as u64)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

fn get_u32(mem: &[u8], ptr: u64) -> VResult<u32> {
    let r = range(mem, ptr as i32, 4)?;
    Ok(u32::from_le_bytes(mem[r].try_into().unwrap_or_default()))
}

fn path(mem: &[u8], ptr: i32, len: i32) -> VResult<String> {
    let r = range(mem, ptr, len as u32 as u64)?;
    std::str::from_utf8(&mem[r]).map(str::to_string).map_err(|_| Fail::Errno(ILSEQ))
}

/// The first non-empty buffer of an iovec array, as a memory range.
fn first_iov(mem: &[u8], iovs: i32, n: i32) -> VResult<std::ops::Range<usize>> {
    for i in 0..n as u32 as u64 {
        let at = iovs as u32 as u64 + i * 8;
        let (buf, len) = (get_u32(mem, at)?, get_u32(mem, at + 4)?);
        if len > 0 {
            return range(mem, buf as i32, u64::from(len));
        }
    }
    Ok(0..0)
}

fn done(r: VResult<()>) -> wasmtime::Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(Fail::Errno(e)) => Ok(i32::from(e)),
        Err(Fail::Abort(a)) => Err(wasmtime::Error::new(a)),
    }
}

fn vfs(st: &mut TaskState) -> VResult<&mut super::vfs::Vfs> {
    st.vfs.as_mut().ok_or(Fail::Errno(errno::BADF))
}

/// The 64-byte `filestat` of node `n` (dev 1, like wasmtime-wasi).
fn filestat(v: &super::vfs::Vfs, n: usize) -> VResult<[u8; 64]> {
    let (ino, ftype, nlink, size, mtime) = v.stat(n)?;
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&1u64.to_le_bytes());
    b[8..16].copy_from_slice(&ino.to_le_bytes());
    b[16] = ftype;
    b[24..32].copy_from_slice(&nlink.to_le_bytes());
    b[32..40].copy_from_slice(&size.to_le_bytes());
    for o in [40, 48, 56] {
        b[o..o + 8].copy_from_slice(&mtime.to_le_bytes());
    }
    Ok(b)
}

const R_FD_READ: u64 = 1 << 1;
const R_FD_SEEK: u64 = 1 << 2;
const R_FD_WRITE: u64 = 1 << 6;
const R_FD_READDIR: u64 = 1 << 14;
const R_PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
const R_FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
const R_ALL: u64 = (1 << 30) - 1;
/// The rights wasmtime-wasi reports for a preopened directory, base and inheriting.
const PREOPEN_BASE: u64 = (1 << 9)
    | (1 << 10)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26)
    | (1 << 18)
    | (1 << 20)
    | (1 << 21)
    | (1 << 23);
const PREOPEN_INHERIT: u64 = PREOPEN_BASE
    | 1
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 21)
    | (1 << 22)
    | (1 << 23)
    | (1 << 27);

fn fdstat(d: &Desc) -> [u8; 24] {
    let (ftype, flags, base, inherit) = match d {
        Desc::Stdin => (0u8, 0u16, R_FD_READ, R_FD_READ),
        Desc::Stdout | Desc::Stderr => (0, 0, R_FD_WRITE, R_FD_WRITE),
        Desc::Dir { preopen: Some(_), .. } => (3, 0, PREOPEN_BASE, PREOPEN_INHERIT),
        Desc::Dir { preopen: None, .. } => {
            let r = R_ALL & !(R_FD_SEEK | R_FD_FILESTAT_SET_SIZE | R_PATH_FILESTAT_SET_SIZE | R_FD_WRITE);
            (3, 0, r, r)
        }
        Desc::File { read, write, append, .. } => {
            let mut r = R_ALL;
            if !read {
                r &= !(R_FD_READ | R_FD_READDIR);
            }
            if !write {
                r &= !R_FD_WRITE;
            }
            (4, if *append { 1 } else { 0 }, r, r)
        }
    };
    let mut b = [0u8; 24];
    b[0] = ftype;
    b[2..4].copy_from_slice(&flags.to_le_bytes());
    b[8..16].copy_from_slice(&base.to_le_bytes());
    b[16..24].copy_from_slice(&inherit.to_le_bytes());
    b
}

/// Read from descriptor `fd` into memory range `r`: at `at`, or at the
/// descriptor's position (advanced) when `at` is `None`. Returns the count.
fn read_into(
    st: &mut TaskState,
    mem: &mut [u8],
    fd: u32,
    r: std::ops::Range<usize>,
    at: Option<u64>,
) -> VResult<usize> {
    let store = st.vfs_store;
    let store = move || store.ok_or(Fail::Errno(errno::BADF));
    let v = vfs(st)?;
    match v.desc(fd)?.clone() {
        Desc::File { node, pos, read, .. } => {
            if !read {
                return Err(Fail::Errno(errno::BADF));
            }
            let off = at.unwrap_or(pos);
            let n = v.read_at(store()?, node, off, &mut mem[r])?;
            if at.is_none()
                && let Some(Desc::File { pos, .. }) = v.fds.get_mut(&fd)
            {
                *pos = off.checked_add(n as u64).ok_or(Fail::Errno(errno::OVERFLOW))?;
            }
            Ok(n)
        }
        Desc::Stdin if at.is_some() => Err(Fail::Errno(errno::SPIPE)),
        Desc::Stdin => match &mut v.stdin {
            Stdin::Empty => Ok(0),
            Stdin::Blob { digest, len, pos } => {
                if *pos >= *len || r.is_empty() {
                    return Ok(0);
                }
                let n = store()?
                    .read_at(digest, *pos, &mut mem[r])
                    .map_err(|e| Fail::Abort(Abort::Infra(crate::task::message::InfraKind::Storage, e.to_string())))?;
                *pos += n as u64;
                Ok(n)
            }
        },
        _ => Err(Fail::Errno(errno::BADF)),
    }
}

/// Write memory range `r` to descriptor `fd`, at `at` or at the position.
fn write_from(st: &mut TaskState, mem: &[u8], fd: u32, r: std::ops::Range<usize>, at: Option<u64>) -> VResult<usize> {
    let log = st.log.clone();
    let v = vfs(st)?;
    let data = &mem[r];
    match v.desc(fd)?.clone() {
        Desc::File { node, pos, write, append, .. } => {
            if !write {
                return Err(Fail::Errno(errno::BADF));
            }
            let off = if append { v.content(node)?.len() } else { at.unwrap_or(pos) };
            let n = v.write_at(node, off, data)?;
            if at.is_none() {
                let new = off + n as u64;
                if let Some(Desc::File { pos, .. }) = v.fds.get_mut(&fd) {
                    *pos = new;
                }
            }
            Ok(n)
        }
        Desc::Stdout | Desc::Stderr if at.is_some() => Err(Fail::Errno(errno::SPIPE)),
        Desc::Stdout if v.stdout_capture.is_some() => {
            let cap = v.stdout_cap;
            let buf = v.stdout_capture.as_mut().ok_or(Fail::Errno(errno::BADF))?;
            if buf.len() as u64 + data.len() as u64 > cap {
                return Err(Fail::Abort(Abort::output_size(cap)));
            }
            buf.extend_from_slice(data);
            Ok(data.len())
        }
        Desc::Stdout | Desc::Stderr => {
            log.lock().append(data);
            Ok(data.len())
        }
        _ => Err(Fail::Errno(errno::BADF)),
    }
}

type C<'a> = Caller<'a, TaskState>;

/// A read or a write, at an offset (`fd_pread`, `fd_pwrite`) or at the
/// descriptor's position.
#[derive(Clone, Copy)]
enum Io {
    Read(Option<u64>),
    Write(Option<u64>),
}

/// The bytes a read or write of `fd` with buffer length `want` will move:
/// for a read, what is left of the file or stdin after the offset; for a
/// write, all of it. 0 when the call will fail (it then moves nothing).
fn io_bytes(st: &TaskState, fd: u32, want: u64, io: Io) -> u64 {
    let Some(v) = st.vfs.as_ref() else { return 0 };
    match (v.desc(fd), io) {
        (Ok(Desc::File { node, pos, read: true, .. }), Io::Read(at)) => {
            let len = v.content(*node).map(|c| c.len()).unwrap_or(0);
            want.min(len.saturating_sub(at.unwrap_or(*pos)))
        }
        (Ok(Desc::Stdin), Io::Read(None)) => match &v.stdin {
            Stdin::Blob { len, pos, .. } => want.min(len.saturating_sub(*pos)),
            Stdin::Empty => 0,
        },
        (Ok(Desc::File { write: true, .. }), Io::Write(_)) => want,
        (Ok(Desc::Stdout | Desc::Stderr), Io::Write(None)) => want,
        _ => 0,
    }
}

/// Charge fuel for the bytes a read or write will move, before it moves them
/// (docs/abi.md, "Fuel"). Bad arguments are left to the call itself.
fn charge_io(c: &mut C<'_>, fd: i32, iovs: i32, n: i32, io: Io) -> wasmtime::Result<()> {
    let bytes = match parts(c) {
        Ok((mem, st)) => match first_iov(mem, iovs, n) {
            Ok(r) => io_bytes(st, fd as u32, r.len() as u64, io),
            Err(_) => 0,
        },
        Err(_) => 0,
    };
    super::limits::charge_bytes(c, bytes)
}

/// Define the descriptor calls (`fd_*`).
fn add_fd_calls(l: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let m = WASI_MODULE;
    l.func_wrap(m, "fd_read", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| {
        charge_io(&mut c, fd, iovs, n, Io::Read(None))?;
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let r = first_iov(mem, iovs, n)?;
            let got = read_into(st, mem, fd as u32, r, None)?;
            put(mem, out, &(got as u32).to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_pread", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
        charge_io(&mut c, fd, iovs, n, Io::Read(Some(off as u64)))?;
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let r = first_iov(mem, iovs, n)?;
            let got = read_into(st, mem, fd as u32, r, Some(off as u64))?;
            put(mem, out, &(got as u32).to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_write", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| {
        charge_io(&mut c, fd, iovs, n, Io::Write(None))?;
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let r = first_iov(mem, iovs, n)?;
            let put_n = write_from(st, mem, fd as u32, r, None)?;
            put(mem, out, &(put_n as u32).to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_pwrite", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
        charge_io(&mut c, fd, iovs, n, Io::Write(Some(off as u64)))?;
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let r = first_iov(mem, iovs, n)?;
            let put_n = write_from(st, mem, fd as u32, r, Some(off as u64))?;
            put(mem, out, &(put_n as u32).to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_close", |mut c: C<'_>, fd: i32| done(vfs(c.data_mut()).and_then(|v| v.close(fd as u32))))?;
    l.func_wrap(m, "fd_renumber", |mut c: C<'_>, from: i32, to: i32| {
        done(vfs(c.data_mut()).and_then(|v| v.renumber(from as u32, to as u32)))
    })?;
    l.func_wrap(m, "fd_seek", |mut c: C<'_>, fd: i32, delta: i64, whence: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let v = vfs(st)?;
            let (node, pos) = match v.desc(fd as u32)? {
                Desc::File { node, pos, .. } => (*node, *pos),
                Desc::Stdin | Desc::Stdout | Desc::Stderr => return Err(Fail::Errno(errno::SPIPE)),
                Desc::Dir { .. } => return Err(Fail::Errno(errno::BADF)),
            };
            let new = match whence {
                0 if delta >= 0 => delta as u64,
                1 => pos.checked_add_signed(delta).ok_or(Fail::Errno(errno::INVAL))?,
                2 => v.content(node)?.len().checked_add_signed(delta).ok_or(Fail::Errno(errno::INVAL))?,
                _ => return Err(Fail::Errno(errno::INVAL)),
            };
            if let Some(Desc::File { pos, .. }) = v.fds.get_mut(&(fd as u32)) {
                *pos = new;
            }
            put(mem, out, &new.to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_tell", |mut c: C<'_>, fd: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let pos = match vfs(st)?.desc(fd as u32)? {
                Desc::File { pos, .. } => *pos,
                Desc::Stdin | Desc::Stdout | Desc::Stderr => return Err(Fail::Errno(errno::SPIPE)),
                Desc::Dir { .. } => return Err(Fail::Errno(errno::BADF)),
            };
            put(mem, out, &pos.to_le_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_fdstat_get", |mut c: C<'_>, fd: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let b = fdstat(vfs(st)?.desc(fd as u32)?);
            put(mem, out, &b)
        })())
    })?;
    l.func_wrap(m, "fd_fdstat_set_flags", |mut c: C<'_>, fd: i32, flags: i32| {
        done((|| {
            let v = vfs(c.data_mut())?;
            match v.fds.get_mut(&(fd as u32)) {
                Some(Desc::File { append, .. }) => {
                    if flags & (2 | 8 | 16) != 0 {
                        return Err(Fail::Errno(errno::INVAL));
                    }
                    *append = flags & 1 != 0;
                    Ok(())
                }
                _ => Err(Fail::Errno(errno::BADF)),
            }
        })())
    })?;
    l.func_wrap(m, "fd_fdstat_set_rights", |mut c: C<'_>, fd: i32, _b: i64, _i: i64| {
        done(vfs(c.data_mut()).and_then(|v| match v.desc(fd as u32)? {
            Desc::File { .. } | Desc::Dir { .. } => Err(Fail::Errno(errno::NOTSUP)),
            _ => Err(Fail::Errno(errno::BADF)),
        }))
    })?;
    add_fd_calls_2(l)
}

/// The node of a regular-file descriptor, else `EBADF`.
fn file_node(st: &mut TaskState, fd: i32) -> VResult<usize> {
    match vfs(st)?.desc(fd as u32)? {
        Desc::File { node, .. } => Ok(*node),
        _ => Err(Fail::Errno(errno::BADF)),
    }
}

fn add_fd_calls_2(l: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let m = WASI_MODULE;
    l.func_wrap(m, "fd_advise", |mut c: C<'_>, fd: i32, _o: i64, _l: i64, _a: i32| {
        done(file_node(c.data_mut(), fd).map(|_| ()))
    })?;
    l.func_wrap(m, "fd_allocate", |mut c: C<'_>, fd: i32, _o: i64, _l: i64| {
        done(file_node(c.data_mut(), fd).and(Err(Fail::Errno(errno::NOTSUP))))
    })?;
    l.func_wrap(m, "fd_datasync", |mut c: C<'_>, fd: i32| done(file_node(c.data_mut(), fd).map(|_| ())))?;
    l.func_wrap(m, "fd_sync", |mut c: C<'_>, fd: i32| done(file_node(c.data_mut(), fd).map(|_| ())))?;
    l.func_wrap(m, "fd_filestat_get", |mut c: C<'_>, fd: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let v = vfs(st)?;
            let b = match v.desc(fd as u32)? {
                Desc::File { node, .. } | Desc::Dir { node, .. } => filestat(v, *node)?,
                _ => [0u8; 64],
            };
            put(mem, out, &b)
        })())
    })?;
    l.func_wrap(m, "fd_filestat_set_size", |mut c: C<'_>, fd: i32, size: i64| {
        done((|| {
            let v = vfs(c.data_mut())?;
            let Desc::File { node, write, .. } = v.desc(fd as u32)?.clone() else {
                return Err(Fail::Errno(errno::BADF));
            };
            if v.node(node)?.zone == super::vfs::Zone::In {
                return Err(Fail::Errno(errno::PERM));
            }
            if !write {
                return Err(Fail::Errno(errno::INVAL));
            }
            v.set_size(node, size as u64)
        })())
    })?;
    l.func_wrap(m, "fd_filestat_set_times", |mut c: C<'_>, fd: i32, _a: i64, mtim: i64, flags: i32| {
        done((|| {
            let v = vfs(c.data_mut())?;
            let node = match v.desc(fd as u32)? {
                Desc::File { node, .. } | Desc::Dir { node, .. } => *node,
                _ => return Err(Fail::Errno(errno::BADF)),
            };
            v.set_times(node, mtim as u64, flags as u16)
        })())
    })?;
    l.func_wrap(m, "fd_prestat_get", |mut c: C<'_>, fd: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let Desc::Dir { preopen: Some(p), .. } = vfs(st)?.desc(fd as u32)? else {
                return Err(Fail::Errno(errno::BADF));
            };
            let mut b = [0u8; 8];
            b[4..8].copy_from_slice(&(p.len() as u32).to_le_bytes());
            put(mem, out, &b)
        })())
    })?;
    l.func_wrap(m, "fd_prestat_dir_name", |mut c: C<'_>, fd: i32, buf: i32, len: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let Desc::Dir { preopen: Some(p), .. } = vfs(st)?.desc(fd as u32)?.clone() else {
                return Err(Fail::Errno(errno::NOTDIR));
            };
            if p.len() > len as u32 as usize {
                return Err(Fail::Errno(errno::NAMETOOLONG));
            }
            put(mem, buf, p.as_bytes())
        })())
    })?;
    l.func_wrap(m, "fd_readdir", |mut c: C<'_>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let v = vfs(st)?;
            let Desc::Dir { node, .. } = v.desc(fd as u32)? else { return Err(Fail::Errno(errno::BADF)) };
            let list = v.dirents(*node)?;
            let cap = len as u32 as usize;
            let mut bytes = Vec::with_capacity(cap.min(1 << 16));
            for (i, (ino, ftype, name)) in list.iter().enumerate().skip(cookie as u64 as usize) {
                let mut ent = [0u8; 24];
                ent[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                ent[8..16].copy_from_slice(&ino.to_le_bytes());
                ent[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
                ent[20] = *ftype;
                bytes.extend_from_slice(&ent);
                bytes.extend_from_slice(name.as_bytes());
                if bytes.len() >= cap {
                    break;
                }
            }
            bytes.truncate(cap);
            put(mem, buf, &bytes)?;
            put(mem, out, &(bytes.len() as u32).to_le_bytes())
        })())
    })?;
    Ok(())
}

/// The socket calls: no descriptor here is a socket (`ENOTSOCK`), others are `EBADF`.
fn add_sock_calls(l: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    const NOTSOCK: u16 = 57;
    fn answer(st: &mut TaskState, fd: i32) -> VResult<()> {
        vfs(st)?.desc(fd as u32)?;
        Err(Fail::Errno(NOTSOCK))
    }
    let m = WASI_MODULE;
    l.func_wrap(m, "sock_accept", |mut c: C<'_>, fd: i32, _f: i32, _o: i32| done(answer(c.data_mut(), fd)))?;
    l.func_wrap(m, "sock_recv", |mut cx: C<'_>, fd: i32, _a: i32, _b: i32, _f: i32, _d: i32, _e: i32| {
        done(answer(cx.data_mut(), fd))
    })?;
    l.func_wrap(m, "sock_send", |mut cx: C<'_>, fd: i32, _a: i32, _b: i32, _f: i32, _d: i32| {
        done(answer(cx.data_mut(), fd))
    })?;
    l.func_wrap(m, "sock_shutdown", |mut c: C<'_>, fd: i32, _h: i32| done(answer(c.data_mut(), fd)))?;
    Ok(())
}

/// Define the path calls (`path_*`).
fn add_path_calls(l: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    let m = WASI_MODULE;
    l.func_wrap(
        m,
        "path_open",
        |mut c: C<'_>,
         fd: i32,
         _df: i32,
         p: i32,
         pl: i32,
         oflags: i32,
         rights: i64,
         _inh: i64,
         fdflags: i32,
         out: i32| {
            done((|| {
                let (mem, st) = parts(&mut c)?;
                let p = path(mem, p, pl)?;
                if fdflags & (2 | 8 | 16) != 0 {
                    return Err(Fail::Errno(errno::NOTSUP));
                }
                let (read, write) = (rights as u64 & R_FD_READ != 0, rights as u64 & R_FD_WRITE != 0);
                let new = vfs(st)?.open(fd as u32, &p, oflags as u16, read, write, fdflags & 1 != 0)?;
                put(mem, out, &new.to_le_bytes())
            })())
        },
    )?;
    l.func_wrap(m, "path_create_directory", |mut c: C<'_>, fd: i32, p: i32, pl: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let p = path(mem, p, pl)?;
            vfs(st)?.mkdir(fd as u32, &p)
        })())
    })?;
    l.func_wrap(m, "path_remove_directory", |mut c: C<'_>, fd: i32, p: i32, pl: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let p = path(mem, p, pl)?;
            vfs(st)?.unlink(fd as u32, &p, true)
        })())
    })?;
    l.func_wrap(m, "path_unlink_file", |mut c: C<'_>, fd: i32, p: i32, pl: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let p = path(mem, p, pl)?;
            vfs(st)?.unlink(fd as u32, &p, false)
        })())
    })?;
    l.func_wrap(m, "path_rename", |mut c: C<'_>, fd: i32, p: i32, pl: i32, fd2: i32, p2: i32, pl2: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let (a, b) = (path(mem, p, pl)?, path(mem, p2, pl2)?);
            vfs(st)?.rename(fd as u32, &a, fd2 as u32, &b)
        })())
    })?;
    l.func_wrap(m, "path_filestat_get", |mut c: C<'_>, fd: i32, flags: i32, p: i32, pl: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let p = path(mem, p, pl)?;
            let v = vfs(st)?;
            let n = v.lookup(v.dir_fd(fd as u32)?, &p)?;
            // Lookup flag 1: follow a final symbolic link, which never resolves here.
            if flags & 1 != 0 && matches!(v.node(n)?.kind, super::vfs::Kind::Symlink(_)) {
                return Err(Fail::Errno(errno::PERM));
            }
            let b = filestat(v, n)?;
            put(mem, out, &b)
        })())
    })?;
    l.func_wrap(
        m,
        "path_filestat_set_times",
        |mut c: C<'_>, fd: i32, _fl: i32, p: i32, pl: i32, _a: i64, mtim: i64, flags: i32| {
            done((|| {
                let (mem, st) = parts(&mut c)?;
                let p = path(mem, p, pl)?;
                let v = vfs(st)?;
                let base = v.dir_fd(fd as u32)?;
                if v.node(base)?.zone == super::vfs::Zone::In {
                    return Err(Fail::Errno(errno::PERM));
                }
                let n = v.lookup(base, &p)?;
                v.set_times(n, mtim as u64, flags as u16)
            })())
        },
    )?;
    // No links: regular files and directories only (docs/security.md).
    l.func_wrap(m, "path_link", |mut c: C<'_>, fd: i32, _f: i32, _p: i32, _pl: i32, fd2: i32, _p2: i32, _pl2: i32| {
        done(vfs(c.data_mut()).and_then(|v| {
            v.dir_fd(fd as u32)?;
            v.dir_fd(fd2 as u32)?;
            Err(Fail::Errno(errno::PERM))
        }))
    })?;
    l.func_wrap(m, "path_symlink", |mut c: C<'_>, t: i32, tl: i32, fd: i32, p: i32, pl: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let (target, p) = (path(mem, t, tl)?, path(mem, p, pl)?);
            vfs(st)?.symlink(&target, fd as u32, &p)
        })())
    })?;
    l.func_wrap(m, "path_readlink", |mut c: C<'_>, fd: i32, p: i32, pl: i32, buf: i32, bl: i32, out: i32| {
        done((|| {
            let (mem, st) = parts(&mut c)?;
            let p = path(mem, p, pl)?;
            let v = vfs(st)?;
            let n = v.lookup(v.dir_fd(fd as u32)?, &p)?;
            let super::vfs::Kind::Symlink(t) = &v.node(n)?.kind else { return Err(Fail::Errno(errno::INVAL)) };
            let t = t.as_bytes()[..t.len().min(bl as u32 as usize)].to_vec();
            put(mem, buf, &t)?;
            put(mem, out, &(t.len() as u32).to_le_bytes())
        })())
    })?;
    Ok(())
}

/// Shadow every WASI p1 descriptor and path call (`poll_oneoff` is
/// [`super::poll`]'s, linked after these so it asks them about descriptors).
pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    add_fd_calls(linker)?;
    add_path_calls(linker)?;
    add_sock_calls(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}
