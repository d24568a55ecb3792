//! A regular file of a command task's virtual tree ([`super::vfs`]) that
//! outgrew the attempt's memory ([`super::vfs::MEMORY_SPILL`]): an anonymous
//! file on disk, written through a small gathering buffer and, while it is
//! written in order, hashed as it grows.
//!
//! * Appends smaller than [`GATHER_MAX`] are gathered in memory and written
//!   [`GATHER`] bytes at a time, so a program that writes 8 KiB (or 1 KiB)
//!   at a time costs one `pwrite` per 256 KiB, not one per write. Reads and
//!   the length see gathered bytes as written; anything but an append writes
//!   them out first. Nothing is gathered past the end of the attempt: the
//!   bytes are written out before the file is published.
//! * While every write so far has appended at the end (no overwrite, no
//!   write past the end, no resize), no byte of the file below its end ever
//!   changes again. Once such a file holds [`AHEAD_MIN`] bytes and it can be
//!   taken over by the store as it is ([`BlobStore::scratch_file`]), a
//!   helper thread reads back what was written (from the page cache) and
//!   hashes it, while the task's thread starts the writeback to disk
//!   (`sync_file_range`) of each [`WRITEBACK`] bytes once the next ones are
//!   written (measured: with the writeback on the hashing thread, which is
//!   the one that lags, a 1 GiB copy took 1.00 s in the task, against 0.82 s).
//!   Publishing then takes the digest from the thread
//!   ([`BlobStore::put_file_hashed`]) instead of reading the whole file again
//!   on the task's thread, and the store's fsync finds little left to write.
//!   The first write that is not an append stops the thread and its result
//!   is never used: publishing hashes the file whole, as before. Either way
//!   the digest a file is stored under is the sha256 of its bytes.
//!
//! The thread holds the file open until it notices it was stopped (after at
//! most one 1 MiB read), so a dropped attempt never waits for it.
//!
//! [`BlobStore::scratch_file`]: crate::store::BlobStore::scratch_file
//! [`BlobStore::put_file_hashed`]: crate::store::BlobStore::put_file_hashed

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::store::{BlobRef, Hasher};

/// Appends smaller than this are gathered; larger ones are written at once.
pub(crate) const GATHER_MAX: usize = 64 << 10;
/// Gathered bytes are written out once there are this many.
pub(crate) const GATHER: usize = 256 << 10;
/// A file written in order is hashed ahead once it holds this many bytes.
pub(crate) const AHEAD_MIN: u64 = 8 << 20;
/// The hashing thread is told about new bytes this many at a time.
const ANNOUNCE: u64 = 1 << 20;
/// The hashing thread reads this many bytes at a time.
const CHUNK: usize = 1 << 20;
/// The writeback of every this many written bytes is started at once.
const WRITEBACK: u64 = 8 << 20;

/// A spilled file: its bytes are the file's, then the gathered ones.
pub(crate) struct Spill {
    file: Arc<File>,
    /// The length the program sees (gathered bytes included).
    len: u64,
    /// Appended bytes not written to `file` yet: the last `gathered.len()`
    /// bytes of the file.
    gathered: Vec<u8>,
    /// Whether the store can take `file` over as it is (it came from
    /// [`crate::store::BlobStore::scratch_file`]): only then is it hashed ahead.
    linkable: bool,
    /// Whether every write so far appended at the end.
    in_order: bool,
    /// Whether hashing ahead was tried already (it is tried once).
    tried: bool,
    ahead: Option<Ahead>,
}

impl Spill {
    /// A spill file that starts as `start` (the file's bytes so far, from
    /// memory). `file` is empty; `linkable` says whether the store made it.
    pub(crate) fn new(file: File, linkable: bool, start: &[u8]) -> io::Result<Spill> {
        file.write_all_at(start, 0)?;
        Ok(Spill {
            file: Arc::new(file),
            len: start.len() as u64,
            gathered: Vec::new(),
            linkable,
            in_order: true,
            tried: false,
            ahead: None,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Bytes already in `file`.
    fn written(&self) -> u64 {
        self.len - self.gathered.len() as u64
    }

    /// Read into `buf` at `off`, up to the end: as many bytes as fit.
    pub(crate) fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.len.saturating_sub(off)) as usize;
        let on_disk = self.written();
        let mut got = 0;
        while got < want {
            let at = off + got as u64;
            if at >= on_disk {
                let from = (at - on_disk) as usize;
                let n = (want - got).min(self.gathered.len() - from);
                buf[got..got + n].copy_from_slice(&self.gathered[from..from + n]);
                got += n;
                continue;
            }
            let upto = (want - got).min((on_disk - at) as usize);
            let k = self.file.read_at(&mut buf[got..got + upto], at)?;
            if k == 0 {
                // Shorter than written: only if the file was cut behind our back.
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the spill file is shorter than written"));
            }
            got += k;
        }
        Ok(got)
    }

    /// Write `data` at `off`; an append keeps the file in order.
    pub(crate) fn write_at(&mut self, data: &[u8], off: u64) -> io::Result<()> {
        let end = off + data.len() as u64;
        if off != self.len {
            self.flush()?;
            self.out_of_order();
            self.file.write_all_at(data, off)?;
            self.len = self.len.max(end);
            return Ok(());
        }
        if data.len() < GATHER_MAX {
            if self.gathered.capacity() == 0 {
                self.gathered.reserve_exact(GATHER + GATHER_MAX);
            }
            self.gathered.extend_from_slice(data);
            self.len = end;
            if self.gathered.len() >= GATHER {
                self.flush()?;
            }
        } else {
            self.flush()?;
            self.file.write_all_at(data, off)?;
            self.len = end;
        }
        self.announce(false);
        Ok(())
    }

    /// Resize to `size` (zero-filled when it grows): out of order.
    pub(crate) fn set_len(&mut self, size: u64) -> io::Result<()> {
        self.flush()?;
        self.out_of_order();
        self.file.set_len(size)?;
        self.len = size;
        Ok(())
    }

    /// Write the gathered bytes to the file.
    fn flush(&mut self) -> io::Result<()> {
        if !self.gathered.is_empty() {
            self.file.write_all_at(&self.gathered, self.written())?;
            self.gathered.clear();
        }
        Ok(())
    }

    /// The file is no longer written in order: its hash ahead, if any, is
    /// stopped and will never be used.
    fn out_of_order(&mut self) {
        self.in_order = false;
        self.stop_hashing();
    }

    /// Stop hashing ahead (the file left `/out`: it will not be published).
    pub(crate) fn stop_hashing(&mut self) {
        self.tried = true;
        self.ahead = None;
    }

    /// Start hashing ahead if the file is in order, linkable, holds
    /// [`AHEAD_MIN`] bytes and was never tried before. Returns whether a
    /// thread was started.
    pub(crate) fn hash_ahead(&mut self) -> bool {
        if self.tried || !self.in_order || !self.linkable || self.written() < AHEAD_MIN {
            return false;
        }
        self.tried = true;
        let shared = Arc::new(Shared::default());
        let (file, s) = (self.file.clone(), shared.clone());
        let spawned = std::thread::Builder::new().name("engine-out-hash".into()).spawn(move || hash_file(&file, &s));
        match spawned {
            Ok(thread) => {
                self.ahead = Some(Ahead { shared, thread: Some(thread), announced: 0, queued: 0 });
                self.announce(false);
                true
            }
            // No thread: the file is hashed when it is published.
            Err(_) => false,
        }
    }

    /// Tell the hashing thread how far the file is written (every
    /// [`ANNOUNCE`] bytes, or now when `last`).
    fn announce(&mut self, last: bool) {
        let end = self.written();
        let Some(a) = self.ahead.as_mut() else { return };
        if !last && end < a.announced + ANNOUNCE {
            return;
        }
        a.announced = end;
        // Writeback of what was written a window ago starts here, on the
        // task's thread: the hashing thread is the one that lags.
        while end >= a.queued + 2 * WRITEBACK {
            start_writeback(&self.file, a.queued, WRITEBACK);
            a.queued += WRITEBACK;
        }
        let mut st = a.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.end = end;
        st.done = last;
        drop(st);
        a.shared.cv.notify_one();
    }

    /// Write out the gathered bytes and return the file, with its blob
    /// reference when it was hashed ahead (all of it, in order).
    pub(crate) fn finish(&mut self) -> io::Result<(&File, Option<BlobRef>)> {
        self.flush()?;
        self.announce(true);
        let len = self.len;
        let r = self.ahead.as_mut().and_then(|a| a.thread.take()).and_then(|t| t.join().ok().flatten());
        self.ahead = None;
        Ok((&self.file, r.filter(|r| r.len == len && self.in_order)))
    }
}

/// What the task's thread tells the hashing thread.
#[derive(Default)]
struct State {
    /// Bytes written, in order, from the start.
    end: u64,
    /// `end` is the file's final length: hash up to it and return.
    done: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// The result will not be used: return as soon as possible.
    stop: AtomicBool,
}

/// A running hashing thread.
struct Ahead {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Option<BlobRef>>>,
    /// The last `end` told to the thread.
    announced: u64,
    /// Bytes whose writeback was started.
    queued: u64,
}

impl Drop for Ahead {
    /// Stop the thread and leave it (it ends after its current read).
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _held = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.cv.notify_one();
    }
}

/// The hashing thread: hash `file` from its start as far as it is
/// announced, until the final length is; `None` if stopped or on a read
/// error (the file is then hashed when published).
fn hash_file(file: &File, shared: &Shared) -> Option<BlobRef> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let (end, done) = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while !shared.stop.load(Ordering::Relaxed) && !st.done && st.end <= at {
                st = shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            (st.end, st.done)
        };
        while at < end {
            if shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            let want = ((end - at) as usize).min(buf.len());
            match file.read_at(&mut buf[..want], at) {
                Ok(0) | Err(_) => return None,
                Ok(k) => {
                    h.update(&buf[..k]);
                    at += k as u64;
                }
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        if done {
            return Some(h.finish());
        }
    }
}

/// Start writing `len` bytes at `from` of `file` to disk, without waiting
/// (best effort: the store's fsync is what makes them durable).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor; the call only starts writeback of a range.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Digest;

    fn spill(linkable: bool) -> Spill {
        Spill::new(tempfile::tempfile().unwrap(), linkable, b"head:").unwrap()
    }

    fn all(s: &Spill) -> Vec<u8> {
        let mut v = vec![0u8; s.len() as usize];
        assert_eq!(s.read_at(&mut v, 0).unwrap(), v.len());
        v
    }

    /// Bytes `i..i+n` of a pattern, as a program might write them.
    fn pattern(i: usize, n: usize) -> Vec<u8> {
        (i..i + n).map(|x| (x % 251) as u8).collect()
    }

    #[test]
    fn small_appends_are_gathered_and_read_back_exactly_at_any_offset() {
        let mut s = spill(false);
        let mut want = b"head:".to_vec();
        for i in 0..100 {
            let chunk = pattern(i * 1000, 5000 + i);
            s.write_at(&chunk, want.len() as u64).unwrap();
            want.extend_from_slice(&chunk);
            // Straddling the file and the gathered bytes.
            let mut buf = vec![0u8; 12000];
            let off = want.len().saturating_sub(8000);
            let n = s.read_at(&mut buf, off as u64).unwrap();
            assert_eq!(&buf[..n], &want[off..]);
        }
        assert!(!s.gathered.is_empty() && s.written() > 5, "some gathered, some written");
        assert_eq!(s.len(), want.len() as u64);
        assert_eq!(all(&s), want);
        let (f, r) = s.finish().unwrap();
        assert_eq!(r, None, "not linkable: never hashed ahead");
        let mut on_disk = vec![0u8; want.len()];
        f.read_exact_at(&mut on_disk, 0).unwrap();
        assert_eq!(on_disk, want);
    }

    #[test]
    fn a_file_written_in_order_is_hashed_ahead_exactly() {
        let mut s = spill(true);
        let mut want = b"head:".to_vec();
        let mut started = false;
        // Writes of every size class: gathered, written at once.
        for (i, n) in [8192usize, 1 << 20, 1000, 300_000, 65536].iter().cycle().take(60).enumerate() {
            let chunk = pattern(i, *n);
            s.write_at(&chunk, want.len() as u64).unwrap();
            want.extend_from_slice(&chunk);
            started |= s.hash_ahead();
        }
        assert!(started && want.len() as u64 > AHEAD_MIN);
        let (_, r) = s.finish().unwrap();
        assert_eq!(r, Some(BlobRef { digest: Digest::of(&want), len: want.len() as u64 }));
    }

    #[test]
    fn a_write_that_is_not_an_append_stops_the_hash_ahead() {
        for how in ["overwrite", "past the end", "resize"] {
            let mut s = spill(true);
            let mut want = b"head:".to_vec();
            let chunk = pattern(7, 1 << 20);
            for _ in 0..10 {
                s.write_at(&chunk, want.len() as u64).unwrap();
                want.extend_from_slice(&chunk);
                s.hash_ahead();
            }
            assert!(s.ahead.is_some(), "{how}");
            match how {
                "overwrite" => {
                    s.write_at(b"HEAD", 0).unwrap();
                    want[..4].copy_from_slice(b"HEAD");
                }
                "past the end" => {
                    s.write_at(b"x", want.len() as u64 + 10).unwrap();
                    want.extend_from_slice(&[0; 10]);
                    want.push(b'x');
                }
                _ => {
                    s.set_len(want.len() as u64 - 3).unwrap();
                    want.truncate(want.len() - 3);
                }
            }
            // Appends after it, gathered too, do not start it again.
            s.write_at(b"tail", want.len() as u64).unwrap();
            want.extend_from_slice(b"tail");
            assert!(!s.hash_ahead(), "{how}");
            assert_eq!(all(&s), want, "{how}");
            let (f, r) = s.finish().unwrap();
            assert_eq!(r, None, "{how}");
            assert_eq!(f.metadata().unwrap().len(), want.len() as u64, "{how}");
        }
    }
}
