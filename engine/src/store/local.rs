//! The local-filesystem blob store, the embedded default.
//!
//! # Layout
//!
//! ```text
//! <dir>/objects/<2 hex>/<64 hex>   one file per large blob (>= SMALL_MAX bytes)
//! <dir>/packs/<unique>.pack        append-only packs of small blobs, one per process
//! <dir>/packs/<unique>.idx         a pack's persisted index, written when it is closed
//! <dir>/tmp/                       large blobs being written (renamed into objects/), and
//!                                  anonymous scratch files (`scratch_file`, linked in by `put_file`)
//! <dir>/lock                       flock: shared while open, exclusive for `engine gc`
//! ```
//!
//! # Why packs
//!
//! Most intermediates in a pipeline of small tasks are tiny. A file plus an
//! fsync per blob would cost tens of microseconds each and blow the per-task
//! budget, so blobs under [`SMALL_MAX`] are appended to a pack file instead:
//! each record is `magic | len | digest | bytes`. A process appends to its own
//! pack through a shared mapping of a region allocated ahead of the writes
//! (`posix_fallocate`, so a full disk is an error there, never a `SIGBUS`
//! later): a record costs a copy, not a system call, and it is in the page
//! cache, where a `kill -9` of the engine cannot take it back, as soon as the
//! copy ends. The magic word is written last, so neither a reader in another
//! process nor a kill mid-copy can see half a record as whole; the unused,
//! zeroed end of the region is cut off when the store is closed (a killed
//! process leaves it, and readers stop at it). The in-memory index is only a cache of the packs: on a miss, packs
//! that grew since the last scan (for example written by a worker process
//! sharing the store) are scanned from where the scan stopped: first the packs
//! already open, and only if the blob is still missing is the directory
//! listed for new packs.
//! Small blobs written in this process are also kept in memory (up to
//! [`HOT_MAX`] bytes), so a downstream task reads its input without touching
//! the disk.
//!
//! # Opening: the persisted index
//!
//! A process that closes its store writes its pack's index
//! ([`super::index`]: name → offset and length, for the bytes of the pack it
//! covers, with a checksum), after the pack is durable. Opening a store maps
//! each pack's index and checks its checksum, and scans (reads and hashes)
//! only what no usable index covers: a pack whose writer was killed (it has
//! no index), the end of a pack that grew after its index, or a whole pack
//! whose index is missing, corrupt or covers more than the pack has. A scan
//! verifies every record against its digest and stops at a torn tail (from a
//! crash mid-write), as before. What an index names is checked when it is
//! read instead: a blob against its digest on its first read in this process
//! (a mismatch is [`StoreError::Corrupt`], never wrong bytes), an action
//! record against the sha256 in its header at every lookup (a mismatch is a
//! miss). `engine store verify` still re-hashes everything, and checks that
//! each index lists exactly the records of its pack.
//!
//! Action-cache records go to the same packs, as records of their own kind
//! (`magic | len | key | sha256(record) | record`), after the blobs they name
//! in the same append stream, so a record never outlives its blobs; a torn or corrupt record is skipped like a torn
//! blob. Records are looked up in memory and in the indexes the packs had
//! when the store was opened, never by rescanning: a record another process
//! writes later is not seen by this one (both compute the task; the first
//! record stays).
//!
//! Large blobs stream into a temp file that is fsynced and renamed to its
//! digest, so a crash never leaves a half-written file under a real digest.
//! `sync` msyncs and fsyncs the pack and the directories: one fsync batch per
//! call, not one per blob. An object file is checked against its digest the first time
//! a process reads it (a mismatch is `StoreError::Corrupt`), so a tampered or
//! bit-rotted file is never served as the blob. S3 and shared directories are
//! [`super::object`].

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::index::{self, Entry, PackIndex};
use super::{BlobRef, BlobStore, BlobWriter, Digest, DigestMap, Hasher, StoreError, StoreResult};

/// Blobs smaller than this go to packs; larger ones get their own file.
pub const SMALL_MAX: usize = 64 * 1024;
/// The first region of our pack allocated and mapped ahead of the writes;
/// each next one is twice as large, up to [`REGION_MAX`].
const REGION_MIN: u64 = 1 << 20;
const REGION_MAX: u64 = 64 << 20;
/// Other processes' packs are read in blocks of this size (a live pack ends
/// in a zeroed region that is not read past its first word).
const SCAN_BLOCK: usize = 1 << 20;
/// Bytes of flushed small blobs kept in memory for fast reads.
const HOT_MAX: usize = 256 << 20;

pub(crate) const MAGIC: u32 = 0x454e_4231; // "ENB1"
pub(crate) const HEADER: usize = 4 + 4 + 32;
pub(crate) const ACTION_MAGIC: u32 = 0x454e_4131; // "ENA1"
pub(crate) const ACTION_HEADER: usize = 4 + 4 + 32 + 32;
/// Largest action record accepted (a record names a task's outputs).
const ACTION_MAX: usize = 16 << 20;

#[derive(Clone)]
enum Loc {
    /// In `hot` (and maybe also in a pack).
    Hot(Arc<[u8]>),
    Pack {
        pack: u32,
        offset: u64,
        len: u32,
    },
    File {
        len: u64,
    },
    /// Named by a pack's persisted index and not yet checked against its
    /// digest (checked on its first read). Never kept in `Inner::index`.
    Indexed {
        pack: u32,
        offset: u64,
        len: u32,
    },
}

struct PackFile {
    path: PathBuf,
    file: Arc<File>,
    /// Bytes scanned so far (for packs written by others) or written (ours).
    scanned: u64,
    /// A read-only mapping of the first bytes of a pack another process
    /// wrote, all of them scanned whole records (so never cut off by its
    /// writer): records are read from it without a system call.
    view: Option<Arc<Mmap>>,
    /// The pack's persisted index, if it had a usable one when it was
    /// opened: its records are looked up there, not in `Inner::index`, and
    /// `scanned` starts where it ends.
    index: Option<PackIndex>,
}

/// This process's own pack, appended through a shared mapping.
struct OwnPack {
    /// Index in `Inner::packs`.
    idx: u32,
    file: Arc<File>,
    path: PathBuf,
    map: Option<MmapMut>,
    /// File offset of the mapping's first byte (page-aligned).
    map_start: u64,
    /// End of the last whole record.
    cursor: u64,
    /// Size of the last region allocated.
    region: u64,
}

impl OwnPack {
    /// Allocate and map room for `n` more bytes at the cursor.
    fn reserve(&mut self, n: u64) -> io::Result<()> {
        let mapped_end = self.map_start + self.map.as_ref().map_or(0, |m| m.len() as u64);
        if self.cursor + n <= mapped_end {
            return Ok(());
        }
        // SAFETY: sysconf has no preconditions.
        let page = (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as u64;
        let start = self.cursor / page * page;
        self.region = (self.region * 2).clamp(REGION_MIN, REGION_MAX);
        let len = (self.cursor - start + n).max(self.region).div_ceil(page) * page;
        self.map = None;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor of a file opened for writing.
        let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), start as libc::off_t, len as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: the file is this process's own pack (created with
        // `create_new`); other processes only read it, and `engine gc`, the
        // only other writer, cannot run while this store holds its shared lock.
        let map = unsafe { MmapOptions::new().offset(start).len(len as usize).map_mut(&*self.file)? };
        self.map = Some(map);
        self.map_start = start;
        Ok(())
    }

    /// Append one record: `magic`, then `head`, then `body`. The magic is
    /// written last. Returns the record's offset in the pack.
    fn append(&mut self, magic: u32, head: &[&[u8]], body: &[u8]) -> io::Result<u64> {
        let total = 4 + head.iter().map(|h| h.len()).sum::<usize>() + body.len();
        self.reserve(total as u64)?;
        let at = (self.cursor - self.map_start) as usize;
        let Some(map) = self.map.as_mut() else { return Err(io::Error::other("pack mapping missing")) };
        let mut p = at + 4;
        for part in head.iter().chain(std::iter::once(&body)) {
            map[p..p + part.len()].copy_from_slice(part);
            p += part.len();
        }
        std::sync::atomic::fence(Ordering::Release);
        map[at..at + 4].copy_from_slice(&magic.to_le_bytes());
        let start = self.cursor;
        self.cursor += total as u64;
        Ok(start)
    }
}

impl Drop for OwnPack {
    /// Cut off the allocated region past the last record.
    fn drop(&mut self) {
        self.map = None;
        let _ = self.file.set_len(self.cursor);
    }
}

struct Inner {
    index: DigestMap<Loc>,
    /// Action-cache records.
    actions: DigestMap<Loc>,
    packs: Vec<PackFile>,
    /// This process's own pack (created on the first write).
    own: Option<OwnPack>,
    hot_bytes: usize,
    /// Small blobs written to our pack but still served from memory.
    hot_written: Vec<(Digest, u32, u64, u32)>,
    dirty_dirs: bool,
}

pub struct LocalStore {
    dir: PathBuf,
    /// Held shared while the store is open; `engine gc` takes it exclusively.
    _lock: StoreLock,
    inner: Mutex<Inner>,
    tmp_seq: AtomicU64,
    /// Object files whose content this process has checked against their
    /// digest (or written itself): each is hashed once, on its first read.
    verified: Mutex<HashSet<Digest>>,
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io { path: path.display().to_string(), source }
}

impl LocalStore {
    /// Open (creating if needed) a store in `dir`.
    pub fn open(dir: &Path) -> StoreResult<LocalStore> {
        for sub in ["objects", "packs", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| io_err(&p, e))?;
        }
        let lock = lock(dir, false).map_err(|e| io_err(&dir.join("lock"), e))?;
        let store = LocalStore {
            dir: dir.to_path_buf(),
            _lock: lock,
            inner: Mutex::new(Inner {
                index: DigestMap::default(),
                actions: DigestMap::default(),
                packs: Vec::new(),
                own: None,
                hot_bytes: 0,
                hot_written: Vec::new(),
                dirty_dirs: false,
            }),
            tmp_seq: AtomicU64::new(0),
            verified: Mutex::new(HashSet::new()),
        };
        {
            let mut inner = store.lock();
            store.scan_packs(&mut inner)?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn object_path(&self, d: &Digest) -> PathBuf {
        let hex = d.to_hex();
        self.dir.join("objects").join(&hex[..2]).join(&hex)
    }

    /// Scan every pack, including packs created since the last look at the
    /// directory, for records added since the last scan.
    fn scan_packs(&self, inner: &mut Inner) -> StoreResult<()> {
        self.find_new_packs(inner)?;
        self.scan_known_packs(inner)
    }

    /// Open the packs in the directory that are not open yet.
    fn find_new_packs(&self, inner: &mut Inner) -> StoreResult<()> {
        let packs_dir = self.dir.join("packs");
        let entries = fs::read_dir(&packs_dir).map_err(|e| io_err(&packs_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&packs_dir, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pack") {
                continue;
            }
            if !inner.packs.iter().any(|p| p.path == path) {
                let file = File::open(&path).map_err(|e| io_err(&path, e))?;
                let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
                // Missing, corrupt or covering more than the pack has: scanned instead.
                let index = PackIndex::load(&path, len).ok();
                let scanned = index.as_ref().map_or(0, |i| i.pack_len());
                inner.packs.push(PackFile { path, file: Arc::new(file), scanned, view: None, index });
            }
        }
        Ok(())
    }

    /// Scan the packs already open for records added since the last scan
    /// (no directory listing: the common miss is a blob another worker just
    /// appended to a pack this process already knows).
    fn scan_known_packs(&self, inner: &mut Inner) -> StoreResult<()> {
        let own = inner.own.as_ref().map(|o| o.idx);
        for i in 0..inner.packs.len() {
            if Some(i as u32) == own {
                continue;
            }
            let (file, start, path) = {
                let p = &inner.packs[i];
                (p.file.clone(), p.scanned, p.path.clone())
            };
            let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
            let mut pos = start;
            let mut want = SCAN_BLOCK;
            while pos < len {
                let mut buf = vec![0u8; (len - pos).min(want as u64) as usize];
                file.read_exact_at(&mut buf, pos).map_err(|e| io_err(&path, e))?;
                let (used, stop) = scan_records(&buf, pos, i as u32, inner);
                pos += used as u64;
                match stop {
                    Stop::End => want = SCAN_BLOCK,
                    // A record that runs past this block: read it whole.
                    Stop::Short(need) if pos + need as u64 <= len && need > buf.len() - used => {
                        want = need.max(SCAN_BLOCK)
                    }
                    // A torn, corrupt or not yet written record: rescanned later.
                    Stop::Short(_) | Stop::Bad => break,
                }
            }
            inner.packs[i].scanned = pos;
        }
        Ok(())
    }

    /// Append one record to our pack (created on the first write); returns
    /// the pack's index and the record's offset.
    fn append(&self, inner: &mut Inner, magic: u32, head: &[&[u8]], body: &[u8]) -> StoreResult<(u32, u64)> {
        if inner.own.is_none() {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let path = self.dir.join("packs").join(format!("{}-{nanos}.pack", std::process::id()));
            let file =
                OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(|e| io_err(&path, e))?;
            let file = Arc::new(file);
            // Nothing else may describe a pack of this name.
            let _ = fs::remove_file(index::path_for(&path));
            inner.packs.push(PackFile { path: path.clone(), file: file.clone(), scanned: 0, view: None, index: None });
            let idx = inner.packs.len() as u32 - 1;
            inner.own = Some(OwnPack { idx, file, path, map: None, map_start: 0, cursor: 0, region: 0 });
            inner.dirty_dirs = true;
        }
        let Some(own) = inner.own.as_mut() else { return Err(StoreError::Corrupt("no pack to write".into())) };
        let at = own.append(magic, head, body).map_err(|e| io_err(&own.path, e))?;
        let idx = own.idx;
        inner.packs[idx as usize].scanned = own.cursor;
        Ok((idx, at))
    }

    fn put_action_record(&self, key: &Digest, record: &[u8]) -> StoreResult<()> {
        if record.len() > ACTION_MAX {
            return Err(StoreError::Corrupt(format!("action record of {} bytes is too large", record.len())));
        }
        let mut inner = self.lock();
        if inner.actions.contains_key(key) || indexed(&inner, key, PackIndex::action).is_some() {
            return Ok(());
        }
        // In the page cache when this returns, after the blobs it names: a
        // finished task's record survives the engine being killed a moment later.
        let len = (record.len() as u32).to_le_bytes();
        let (pack, at) = self.append(&mut inner, ACTION_MAGIC, &[&len, &key.0, &Digest::of(record).0], record)?;
        let loc = Loc::Pack { pack, offset: at + ACTION_HEADER as u64, len: record.len() as u32 };
        inner.actions.insert(*key, loc);
        Ok(())
    }

    fn put_small(&self, data: Vec<u8>, r: BlobRef) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.index.contains_key(&r.digest) || indexed(&inner, &r.digest, PackIndex::blob).is_some() {
            return Ok(());
        }
        let len = (data.len() as u32).to_le_bytes();
        let (pack, at) = self.append(&mut inner, MAGIC, &[&len, &r.digest.0], &data)?;
        inner.hot_written.push((r.digest, pack, at + HEADER as u64, data.len() as u32));
        inner.hot_bytes += data.len();
        inner.index.insert(r.digest, Loc::Hot(data.into()));
        if inner.hot_bytes > HOT_MAX {
            // Drop the in-memory copies; every one of them is in our pack now.
            for (d, pack, offset, len) in std::mem::take(&mut inner.hot_written) {
                inner.index.insert(d, Loc::Pack { pack, offset, len });
            }
            inner.hot_bytes = 0;
        }
        Ok(())
    }

    fn lookup(&self, d: &Digest) -> StoreResult<Option<Loc>> {
        let mut inner = self.lock();
        if let Some(loc) = inner.index.get(d) {
            return Ok(Some(loc.clone()));
        }
        if let Some(loc) = indexed(&inner, d, PackIndex::blob) {
            return Ok(Some(loc));
        }
        // Appended since our last scan to a pack we know (cheapest first)?
        self.scan_known_packs(&mut inner)?;
        if let Some(loc) = inner.index.get(d) {
            return Ok(Some(loc.clone()));
        }
        // A large object written by any process?
        let p = self.object_path(d);
        if let Ok(m) = fs::metadata(&p) {
            let loc = Loc::File { len: m.len() };
            inner.index.insert(*d, loc.clone());
            return Ok(Some(loc));
        }
        // A pack created by another process since we last listed them:
        // scanned, or, when its writer has closed it since, named by its index.
        self.scan_packs(&mut inner)?;
        Ok(inner.index.get(d).cloned().or_else(|| indexed(&inner, d, PackIndex::blob)))
    }

    /// Copy `buf.len()` bytes at `offset` of pack `pack` (which lie in its
    /// scanned records) into `buf`: from the pack's mapping when another
    /// process wrote it, else with `pread`.
    fn read_pack(&self, pack: u32, offset: u64, buf: &mut [u8]) -> StoreResult<()> {
        let end = offset + buf.len() as u64;
        let (file, path, view) = {
            let mut inner = self.lock();
            let own = inner.own.as_ref().map(|o| o.idx);
            let Some(p) = inner.packs.get_mut(pack as usize) else {
                return Err(StoreError::Corrupt(format!("pack {pack} vanished")));
            };
            if Some(pack) != own && end <= p.scanned && p.view.as_ref().is_none_or(|v| (v.len() as u64) < end) {
                // SAFETY: only the scanned part is mapped: whole records its
                // writer never changes or cuts off (a writer only appends, and
                // cuts its pack only past its last record).
                p.view = unsafe { MmapOptions::new().len(p.scanned as usize).map(&*p.file) }.ok().map(Arc::new);
            }
            let view = p.view.clone().filter(|v| v.len() as u64 >= end);
            (p.file.clone(), p.path.clone(), view)
        };
        match view {
            Some(v) => buf.copy_from_slice(&v[offset as usize..end as usize]),
            None => file.read_exact_at(buf, offset).map_err(|e| io_err(&path, e))?,
        }
        Ok(())
    }
}

impl LocalStore {
    /// Open the object file of `digest`, checked against its digest the
    /// first time this process opens it (a mismatch is [`StoreError::Corrupt`]).
    fn open_object(&self, digest: &Digest) -> StoreResult<(File, PathBuf)> {
        let path = self.object_path(digest);
        let f = File::open(&path).map_err(|e| io_err(&path, e))?;
        if !self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(digest) {
            verify_file(&f, &path, digest)?;
            self.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(*digest);
        }
        Ok((f, path))
    }

    /// Make `file`, whose first `r.len` bytes (its whole length) hash to
    /// `r`, the object of `r.digest`: fsync it and link it into `objects/`
    /// through `/proc/self/fd` (streamed instead when it cannot be linked).
    fn link_in(&self, file: &File, r: BlobRef) -> StoreResult<BlobRef> {
        use std::os::fd::AsRawFd;
        let tmp_dir = self.dir.join("tmp");
        let dest = self.object_path(&r.digest);
        if self.lock().index.contains_key(&r.digest) || dest.exists() {
            return Ok(r);
        }
        file.sync_data().map_err(|e| io_err(&tmp_dir, e))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let named = tmp_dir.join(format!("{}-{seq}.tmp", std::process::id()));
        let (Ok(src), Ok(dst)) = (
            std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())),
            std::ffi::CString::new(named.as_os_str().as_encoded_bytes()),
        ) else {
            return super::stream_file(self.put()?, file, r.len);
        };
        // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::linkat(libc::AT_FDCWD, src.as_ptr(), libc::AT_FDCWD, dst.as_ptr(), libc::AT_SYMLINK_FOLLOW)
        };
        if rc != 0 {
            return super::stream_file(self.put()?, file, r.len);
        }
        if let Err(e) = fs::rename(&named, &dest) {
            let _ = fs::remove_file(&named);
            return Err(io_err(&dest, e));
        }
        // Our own bytes, hashed as they were written or just now: no need to check them on read.
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(r.digest);
        let mut inner = self.lock();
        inner.index.insert(r.digest, Loc::File { len: r.len });
        inner.dirty_dirs = true;
        Ok(r)
    }
}

/// Where the persisted index of one of the packs puts `name` (looked up
/// with `find`, [`PackIndex::blob`] or [`PackIndex::action`]): the first
/// pack, in the order they were opened, whose index names it.
fn indexed(inner: &Inner, name: &Digest, find: fn(&PackIndex, &Digest) -> Option<(u64, u32)>) -> Option<Loc> {
    inner.packs.iter().enumerate().find_map(|(i, p)| {
        let (offset, len) = find(p.index.as_ref()?, name)?;
        Some(Loc::Indexed { pack: i as u32, offset, len })
    })
}

impl Drop for LocalStore {
    /// Close our pack (cut off its unused region) and write its index, so
    /// the next open maps the index instead of reading the pack. Best
    /// effort: without an index, the pack is scanned as before.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(own) = inner.own.take() else { return };
        let idx = own.idx;
        let entry = |name: &Digest, loc: &Loc| match *loc {
            Loc::Pack { pack, offset, len } if pack == idx => Some(Entry { name: *name, offset, len }),
            _ => None,
        };
        let mut blobs: Vec<Entry> = inner.index.iter().filter_map(|(d, l)| entry(d, l)).collect();
        blobs.extend(inner.hot_written.iter().map(|&(name, _, offset, len)| Entry { name, offset, len }));
        let actions: Vec<Entry> = inner.actions.iter().filter_map(|(d, l)| entry(d, l)).collect();
        let (file, path, pack_len) = (own.file.clone(), own.path.clone(), own.cursor);
        drop(own);
        // The records an index names must be durable before it is (after a
        // run's `sync` there is only the new length left to write).
        if file.sync_data().is_ok() {
            let _ = index::write(&path, pack_len, &blobs, &actions);
        }
    }
}

/// The store's lock file, held shared by every open store and exclusively
/// by `engine gc`.
pub struct StoreLock(#[allow(dead_code)] File);

/// Lock the store in `dir`: shared (a run) or exclusive (gc). Blocks until
/// the lock is granted.
pub fn lock(dir: &Path, exclusive: bool) -> io::Result<StoreLock> {
    use std::os::unix::io::AsRawFd;
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) } != 0 {
        eprintln!(
            "{}",
            if exclusive {
                "waiting for the runs using the store to finish..."
            } else {
                "waiting for `engine gc` on the store to finish..."
            }
        );
        // SAFETY: as above, blocking this time.
        if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(StoreLock(f))
}

/// Why [`scan_records`] stopped.
enum Stop {
    /// At the end of the buffer.
    End,
    /// At a record of this many bytes (header included) that the buffer does
    /// not hold whole (or a header the buffer cuts).
    Short(usize),
    /// At something that is not a valid record: a zeroed region not written
    /// yet, a torn write, corruption.
    Bad,
}

/// Index the records of `buf`, which holds the bytes of pack `pack` from
/// offset `start`; returns how many bytes of `buf` hold whole, valid records
/// and why the scan stopped (a torn or foreign tail stops it, to be rescanned
/// later).
fn scan_records(buf: &[u8], start: u64, pack: u32, inner: &mut Inner) -> (usize, Stop) {
    let word = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap_or_default());
    let digest = |at: usize| {
        let mut d = [0u8; 32];
        d.copy_from_slice(&buf[at..at + 32]);
        Digest(d)
    };
    let mut pos = 0usize;
    while pos < buf.len() {
        if pos + HEADER > buf.len() {
            return (pos, if word(pos) == 0 { Stop::Bad } else { Stop::Short(ACTION_HEADER) });
        }
        let (magic, n) = (word(pos), word(pos + 4) as usize);
        let header = match magic {
            MAGIC if n < SMALL_MAX => HEADER,
            ACTION_MAGIC if n <= ACTION_MAX => ACTION_HEADER,
            _ => return (pos, Stop::Bad),
        };
        if pos + header + n > buf.len() {
            return (pos, Stop::Short(header + n));
        }
        let data = &buf[pos + header..pos + header + n];
        let loc = Loc::Pack { pack, offset: start + (pos + header) as u64, len: n as u32 };
        if magic == MAGIC {
            let d = digest(pos + 8);
            if Digest::of(data) != d {
                return (pos, Stop::Bad);
            }
            inner.index.entry(d).or_insert(loc);
        } else {
            if Digest::of(data) != digest(pos + 40) {
                return (pos, Stop::Bad);
            }
            inner.actions.entry(digest(pos + 8)).or_insert(loc);
        }
        pos += header + n;
    }
    (pos, Stop::End)
}

/// Streams a blob: buffers up to SMALL_MAX in memory, then spills to a temp file.
struct LocalWriter<'a> {
    store: &'a LocalStore,
    buf: Vec<u8>,
    spill: Option<(File, PathBuf)>,
    hasher: Hasher,
    written: u64,
}

impl Write for LocalWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.hasher.update(b);
        self.written += b.len() as u64;
        if self.spill.is_none() && self.buf.len() + b.len() < SMALL_MAX {
            self.buf.extend_from_slice(b);
            return Ok(b.len());
        }
        if self.spill.is_none() {
            let seq = self.store.tmp_seq.fetch_add(1, Ordering::Relaxed);
            let path = self.store.dir.join("tmp").join(format!("{}-{seq}.tmp", std::process::id()));
            let mut f = OpenOptions::new().create_new(true).write(true).open(&path)?;
            f.write_all(&self.buf)?;
            self.buf = Vec::new();
            self.spill = Some((f, path));
        }
        if let Some((f, _)) = &mut self.spill {
            f.write_all(b)?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LocalWriter<'_> {
    fn drop(&mut self) {
        if let Some((_, path)) = self.spill.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl BlobWriter for LocalWriter<'_> {
    fn finish(mut self: Box<Self>) -> StoreResult<BlobRef> {
        let hasher = std::mem::replace(&mut self.hasher, Hasher::new());
        let r = hasher.finish();
        if r.len == 0 {
            return Ok(r);
        }
        match self.spill.take() {
            None => {
                let data = std::mem::take(&mut self.buf);
                self.store.put_small(data, r)?;
            }
            Some((f, tmp)) => {
                let res = (|| {
                    f.sync_data().map_err(|e| io_err(&tmp, e))?;
                    drop(f);
                    let dest = self.store.object_path(&r.digest);
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                    }
                    if dest.exists() {
                        fs::remove_file(&tmp).map_err(|e| io_err(&tmp, e))?;
                    } else {
                        fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
                        // Our own bytes, just hashed: no need to check them on read.
                        self.store.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(r.digest);
                    }
                    let mut inner = self.store.lock();
                    inner.index.insert(r.digest, Loc::File { len: r.len });
                    inner.dirty_dirs = true;
                    Ok(())
                })();
                if res.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                res?;
            }
        }
        Ok(r)
    }

    fn written(&self) -> u64 {
        self.written
    }
}

impl BlobStore for LocalStore {
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(LocalWriter { store: self, buf: Vec::new(), spill: None, hasher: Hasher::new(), written: 0 }))
    }

    /// An `O_TMPFILE` file in `tmp/`: on the store's filesystem, so
    /// [`LocalStore::put_file`] can link it into `objects/`.
    fn scratch_file(&self) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(self.dir.join("tmp"))
            .ok()
    }

    /// A large file is hashed where it is, fsynced and linked into
    /// `objects/` (through `/proc/self/fd`, which is how an `O_TMPFILE` file
    /// gets a name): its bytes are written once. Small files, and files that
    /// cannot be linked (another filesystem, no `/proc`), are streamed.
    fn put_file(&self, file: &File, len: u64) -> StoreResult<BlobRef> {
        if len < SMALL_MAX as u64 || file.metadata().ok().map(|m| m.len()) != Some(len) {
            return super::stream_file(self.put()?, file, len);
        }
        let tmp_dir = self.dir.join("tmp");
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        while off < len {
            let want = (len - off).min(buf.len() as u64) as usize;
            let got = file.read_at(&mut buf[..want], off).map_err(|e| io_err(&tmp_dir, e))?;
            if got == 0 {
                return Err(StoreError::Corrupt("a scratch file is shorter than its length".into()));
            }
            h.update(&buf[..got]);
            off += got as u64;
        }
        self.link_in(file, h.finish())
    }

    /// As `put_file`, without reading the file back: `r` was computed by the
    /// caller from the bytes it wrote. Small files are streamed (and so
    /// hashed again) into a pack.
    fn put_file_hashed(&self, file: &File, r: BlobRef) -> StoreResult<BlobRef> {
        if r.len < SMALL_MAX as u64 || file.metadata().ok().map(|m| m.len()) != Some(r.len) {
            return super::stream_file(self.put()?, file, r.len);
        }
        self.link_in(file, r)
    }

    /// The object file of a large blob, opened once and checked against its
    /// digest once per process (as `read_at` checks it).
    fn blob_file(&self, digest: &Digest) -> StoreResult<Option<Arc<File>>> {
        if *digest == Digest::EMPTY {
            return Ok(None);
        }
        let Loc::File { len } = self.lookup(digest)?.ok_or(StoreError::Missing(*digest))? else { return Ok(None) };
        let (f, path) = self.open_object(digest)?;
        let on_disk = f.metadata().map_err(|e| io_err(&path, e))?.len();
        if on_disk < len {
            return Err(StoreError::Corrupt(format!("{} is shorter than recorded", path.display())));
        }
        Ok(Some(Arc::new(f)))
    }

    fn read_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize> {
        if *digest == Digest::EMPTY {
            return Ok(0);
        }
        match self.lookup(digest)?.ok_or(StoreError::Missing(*digest))? {
            Loc::Hot(data) => {
                let start = (offset.min(data.len() as u64)) as usize;
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Loc::Pack { pack, offset: base, len } => {
                if offset >= len as u64 {
                    return Ok(0);
                }
                let n = buf.len().min((len as u64 - offset) as usize);
                self.read_pack(pack, base + offset, &mut buf[..n])?;
                Ok(n)
            }
            Loc::Indexed { pack, offset: base, len } => {
                // Checked against its digest once, then served as a scanned record.
                let mut data = vec![0u8; len as usize];
                self.read_pack(pack, base, &mut data)?;
                if Digest::of(&data) != *digest {
                    let path = self.lock().packs.get(pack as usize).map(|p| p.path.display().to_string());
                    return Err(StoreError::Corrupt(format!(
                        "blob {digest} in {} at offset {base} has other content",
                        path.unwrap_or_default()
                    )));
                }
                self.lock().index.insert(*digest, Loc::Pack { pack, offset: base, len });
                let start = (offset.min(len as u64)) as usize;
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Loc::File { len } => {
                if offset >= len {
                    return Ok(0);
                }
                let (f, path) = self.open_object(digest)?;
                let n = buf.len().min((len - offset) as usize);
                let mut got = 0;
                while got < n {
                    let k = f.read_at(&mut buf[got..n], offset + got as u64).map_err(|e| io_err(&path, e))?;
                    if k == 0 {
                        return Err(StoreError::Corrupt(format!("{} is shorter than recorded", path.display())));
                    }
                    got += k;
                }
                Ok(n)
            }
        }
    }

    fn size(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        if *digest == Digest::EMPTY {
            return Ok(Some(0));
        }
        Ok(self.lookup(digest)?.map(|l| match l {
            Loc::Hot(d) => d.len() as u64,
            Loc::Pack { len, .. } | Loc::Indexed { len, .. } => len as u64,
            Loc::File { len } => len,
        }))
    }

    fn flush(&self) -> StoreResult<()> {
        // Every record is in the page cache as soon as it is appended.
        Ok(())
    }

    fn get_action(&self, key: &Digest) -> StoreResult<Option<Vec<u8>>> {
        let loc = {
            let inner = self.lock();
            inner.actions.get(key).cloned().or_else(|| indexed(&inner, key, PackIndex::action))
        };
        match loc {
            None | Some(Loc::File { .. }) => Ok(None),
            Some(Loc::Hot(data)) => Ok(Some(data.to_vec())),
            Some(Loc::Pack { pack, offset, len }) => {
                let mut v = vec![0u8; len as usize];
                self.read_pack(pack, offset, &mut v)?;
                Ok(Some(v))
            }
            Some(Loc::Indexed { pack, offset, len }) => {
                // Not scanned: the whole record is checked, header and
                // sha256, at every lookup (a record is read once per task).
                let Some(at) = offset.checked_sub(ACTION_HEADER as u64) else { return Ok(None) };
                let mut v = vec![0u8; ACTION_HEADER + len as usize];
                self.read_pack(pack, at, &mut v)?;
                let (head, value) = v.split_at(ACTION_HEADER);
                let whole = head[..4] == ACTION_MAGIC.to_le_bytes()
                    && head[4..8] == len.to_le_bytes()
                    && head[8..40] == key.0
                    && head[40..72] == Digest::of(value).0;
                if !whole {
                    return Ok(None);
                }
                v.drain(..ACTION_HEADER);
                Ok(Some(v))
            }
        }
    }

    fn put_action(&self, key: &Digest, record: &[u8]) -> StoreResult<()> {
        self.put_action_record(key, record)
    }

    fn sync(&self) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(own) = &inner.own {
            if let Some(map) = &own.map {
                map.flush().map_err(|e| io_err(&own.path, e))?;
            }
            own.file.sync_data().map_err(|e| io_err(&own.path, e))?;
        }
        if std::mem::take(&mut inner.dirty_dirs) {
            for sub in ["packs", "objects"] {
                let d = self.dir.join(sub);
                if let Ok(f) = File::open(&d) {
                    let _ = f.sync_all();
                }
            }
        }
        Ok(())
    }
}

/// Read a whole blob (for small things such as `[outputs]` copies and tests).
/// Check an object file against its digest (a mismatch is [`StoreError::Corrupt`]).
fn verify_file(f: &File, path: &Path, digest: &Digest) -> StoreResult<()> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let k = f.read_at(&mut buf, at).map_err(|e| io_err(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        at += k as u64;
    }
    let got = h.finish();
    if got.digest != *digest {
        return Err(StoreError::Corrupt(format!(
            "blob {digest} at {} has other content (sha256 {}, {} bytes)",
            path.display(),
            got.digest,
            got.len
        )));
    }
    Ok(())
}

pub fn read_all(store: &dyn BlobStore, d: &Digest) -> StoreResult<Vec<u8>> {
    let mut r = super::BlobReader::for_store(store, d)?;
    let mut v = Vec::with_capacity(r.len() as usize);
    r.read_to_end(&mut v).map_err(|e| StoreError::Io { path: d.to_hex(), source: e })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &dyn BlobStore, data: &[u8]) -> BlobRef {
        s.put_bytes(data).unwrap()
    }

    /// The (first) pack of the store in `dir`.
    fn the_pack(dir: &Path) -> PathBuf {
        let mut packs: Vec<PathBuf> = fs::read_dir(dir.join("packs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pack"))
            .collect();
        packs.sort();
        packs.remove(0)
    }

    #[test]
    fn a_scratch_file_is_linked_in_by_put_file_and_leaves_no_name_behind() {
        let dir = tempfile::tempdir().unwrap();
        let large: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let r;
        {
            let s = LocalStore::open(dir.path()).unwrap();
            let f = s.scratch_file().expect("O_TMPFILE in tmp/");
            f.write_all_at(&large, 0).unwrap();
            assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
            r = s.put_file(&f, large.len() as u64).unwrap();
            assert_eq!(r, BlobRef { digest: Digest::of(&large), len: 300_000 });
            // Linked, not copied: the object is the scratch file itself.
            use std::os::unix::fs::MetadataExt;
            assert_eq!(fs::metadata(s.object_path(&r.digest)).unwrap().ino(), f.metadata().unwrap().ino());
            assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
            // The same bytes again, and a small file (streamed into a pack).
            let again = s.scratch_file().unwrap();
            again.write_all_at(&large, 0).unwrap();
            assert_eq!(s.put_file(&again, large.len() as u64).unwrap(), r);
            let small = s.scratch_file().unwrap();
            small.write_all_at(b"tiny", 0).unwrap();
            let rs = s.put_file(&small, 4).unwrap();
            assert_eq!(read_all(&s, &rs.digest).unwrap(), b"tiny");
            s.sync().unwrap();
        }
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &r.digest).unwrap(), large);
        assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
    }

    #[test]
    fn small_and_large_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let small = b"hello world".to_vec();
        let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (rs, rl);
        {
            let s = LocalStore::open(dir.path()).unwrap();
            rs = put(&s, &small);
            rl = put(&s, &large);
            assert_eq!(rs.digest, Digest::of(&small));
            assert_eq!(rl.len, 200_000);
            assert_eq!(read_all(&s, &rs.digest).unwrap(), small);
            assert_eq!(read_all(&s, &rl.digest).unwrap(), large);
            s.sync().unwrap();
        }
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &rs.digest).unwrap(), small);
        assert_eq!(read_all(&s, &rl.digest).unwrap(), large);
        let mut buf = [0u8; 5];
        assert_eq!(s.read_at(&rs.digest, 6, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"world");
        assert_eq!(s.read_at(&rs.digest, 100, &mut buf).unwrap(), 0);
        assert_eq!(s.size(&Digest::EMPTY).unwrap(), Some(0));
        assert_eq!(s.size(&Digest::of(b"nope")).unwrap(), None);
        assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
    }

    #[test]
    fn torn_pack_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let r = {
            let s = LocalStore::open(dir.path()).unwrap();
            let r = put(&s, b"kept");
            s.sync().unwrap();
            r
        };
        // Simulate a crash mid-append: a header that promises more bytes than exist.
        let pack = the_pack(dir.path());
        let mut f = OpenOptions::new().append(true).open(&pack).unwrap();
        f.write_all(&MAGIC.to_le_bytes()).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&Digest::of(b"x").0).unwrap();
        f.write_all(b"partial").unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &r.digest).unwrap(), b"kept");
        assert_eq!(s.size(&Digest::of(b"x")).unwrap(), None);
    }

    #[test]
    fn action_records_survive_reopen_and_the_first_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        {
            let s = LocalStore::open(dir.path()).unwrap();
            assert_eq!(s.get_action(&key).unwrap(), None);
            s.put_action(&key, b"first").unwrap();
            s.put_action(&key, b"second").unwrap();
            assert_eq!(s.get_action(&key).unwrap().as_deref(), Some(&b"first"[..]));
        }
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.get_action(&key).unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn a_blob_written_without_its_record_is_a_miss() {
        // The writer is killed between the blob and the record: the blob is
        // in the pack, the record is not.
        let dir = tempfile::tempdir().unwrap();
        let r = {
            let s = LocalStore::open(dir.path()).unwrap();
            let r = put(&s, b"output");
            s.flush().unwrap();
            r
        };
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &r.digest).unwrap(), b"output");
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap(), None);
    }

    #[test]
    fn a_truncated_or_corrupt_record_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (Digest::of(b"k1"), Digest::of(b"k2"));
        {
            let s = LocalStore::open(dir.path()).unwrap();
            s.put_action(&k1, b"kept record").unwrap();
            s.put_action(&k2, b"torn record").unwrap();
        }
        let pack = the_pack(dir.path());
        let len = fs::metadata(&pack).unwrap().len();
        // Cut the last record short, as a crash mid-write would.
        OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 3).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.get_action(&k1).unwrap().as_deref(), Some(&b"kept record"[..]));
        assert_eq!(s.get_action(&k2).unwrap(), None);
        drop(s);
        // Flip a byte inside the first record's value: it no longer checks out.
        let mut bytes = fs::read(&pack).unwrap();
        bytes[ACTION_HEADER + 2] ^= 0xff;
        fs::write(&pack, bytes).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.get_action(&k1).unwrap(), None);
    }

    #[test]
    fn abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        {
            let mut w = s.put().unwrap();
            w.write_all(&vec![7u8; 300_000]).unwrap();
        }
        assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
        assert_eq!(s.size(&Digest::of(&vec![7u8; 300_000])).unwrap(), None);
    }

    #[test]
    fn a_killed_writer_leaves_a_zeroed_tail_that_readers_stop_at() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        let r = put(&s, b"before the kill");
        s.put_action(&Digest::of(b"key"), b"record").unwrap();
        // A reader in another process sees both at once, through the page cache.
        let other = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&other, &r.digest).unwrap(), b"before the kill");
        assert_eq!(other.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
        // No destructor runs on `kill -9`: the allocated region stays, zeroed.
        std::mem::forget(s);
        let pack = the_pack(dir.path());
        assert_eq!(fs::metadata(&pack).unwrap().len(), REGION_MIN);
        let again = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&again, &r.digest).unwrap(), b"before the kill");
        let r2 = put(&again, b"after the kill");
        drop(again);
        // A store closed normally cuts its pack to its last record.
        let packs: Vec<_> = fs::read_dir(dir.path().join("packs")).unwrap().map(|e| e.unwrap().path()).collect();
        let sizes: Vec<u64> = packs.iter().map(|p| fs::metadata(p).unwrap().len()).collect();
        assert!(sizes.contains(&(HEADER as u64 + 14)), "{sizes:?}");
        let last = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&last, &r2.digest).unwrap(), b"after the kill");
        assert_eq!(last.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
    }

    /// A closed store with blobs `one`, `two` and an action record under
    /// `key`, in one pack; returns the pack's path.
    fn closed_store(dir: &Path) -> PathBuf {
        let s = LocalStore::open(dir).unwrap();
        put(&s, b"one");
        put(&s, b"two");
        s.put_action(&Digest::of(b"key"), b"record").unwrap();
        s.sync().unwrap();
        drop(s);
        let pack = the_pack(dir);
        assert!(index::path_for(&pack).exists());
        assert!(!pack.with_extension("idx-tmp").exists());
        pack
    }

    /// Flip the first byte of blob `one`'s bytes in the pack (a scan stops
    /// there; an index still names it).
    fn corrupt_one(pack: &Path) {
        let mut bytes = fs::read(pack).unwrap();
        bytes[HEADER] ^= 0xff;
        fs::write(pack, bytes).unwrap();
    }

    #[test]
    fn an_indexed_pack_is_not_read_at_open_and_its_records_are_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let pack = closed_store(dir.path());
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.lock().packs[0].scanned, fs::metadata(&pack).unwrap().len());
        assert_eq!(read_all(&s, &Digest::of(b"one")).unwrap(), b"one");
        assert_eq!(read_all(&s, &Digest::of(b"two")).unwrap(), b"two");
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
        // Putting what the index names again appends nothing.
        put(&s, b"one");
        s.put_action(&Digest::of(b"key"), b"other").unwrap();
        assert!(s.lock().own.is_none());
        drop(s);
        // Damage that only a read can see: the index still names `one`,
        // and reading it is an error naming the blob, never wrong bytes.
        corrupt_one(&pack);
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.size(&Digest::of(b"one")).unwrap(), Some(3));
        let err = read_all(&s, &Digest::of(b"one")).unwrap_err().to_string();
        let want = format!("blob {} in {} at offset {HEADER} has other content", Digest::of(b"one"), pack.display());
        assert!(err.contains(&want), "{err}");
        assert_eq!(read_all(&s, &Digest::of(b"two")).unwrap(), b"two");
        // A damaged action record is a miss.
        drop(s);
        let mut bytes = fs::read(&pack).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&pack, bytes).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap(), None);
    }

    #[test]
    fn a_pack_another_process_wrote_and_closed_after_open_is_found() {
        // The processes executor: the coordinator opens the store, then a
        // worker writes blobs and exits (writing its pack's index) before the
        // coordinator reads them.
        let dir = tempfile::tempdir().unwrap();
        let coordinator = LocalStore::open(dir.path()).unwrap();
        assert_eq!(coordinator.size(&Digest::of(b"early")).unwrap(), None);
        let worker = LocalStore::open(dir.path()).unwrap();
        put(&worker, b"from the worker");
        worker.put_action(&Digest::of(b"key"), b"record").unwrap();
        worker.sync().unwrap();
        drop(worker);
        assert!(index::path_for(&the_pack(dir.path())).exists());
        assert_eq!(read_all(&coordinator, &Digest::of(b"from the worker")).unwrap(), b"from the worker");
        assert_eq!(coordinator.size(&Digest::of(b"from the worker")).unwrap(), Some(15));
    }

    #[test]
    fn a_pack_without_its_index_is_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let pack = closed_store(dir.path());
        fs::remove_file(index::path_for(&pack)).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &Digest::of(b"two")).unwrap(), b"two");
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
        drop(s);
        // Scanned, so a damaged first record hides the rest of the pack.
        corrupt_one(&pack);
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.size(&Digest::of(b"one")).unwrap(), None);
        assert_eq!(s.size(&Digest::of(b"two")).unwrap(), None);
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap(), None);
    }

    #[test]
    fn a_corrupt_index_is_ignored_and_the_pack_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let pack = closed_store(dir.path());
        let idx = index::path_for(&pack);
        let mut bytes = fs::read(&idx).unwrap();
        bytes[20] ^= 0x01;
        fs::write(&idx, bytes).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(read_all(&s, &Digest::of(b"one")).unwrap(), b"one");
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
        drop(s);
        corrupt_one(&pack);
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.size(&Digest::of(b"two")).unwrap(), None, "scanned, not read from the index");
        // A torn (empty) index too.
        fs::write(&idx, b"").unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.size(&Digest::of(b"two")).unwrap(), None);
    }

    #[test]
    fn a_pack_that_grew_after_its_index_is_scanned_from_where_the_index_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pack = closed_store(dir.path());
        let covered = fs::metadata(&pack).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&pack).unwrap();
        f.write_all(&MAGIC.to_le_bytes()).unwrap();
        f.write_all(&5u32.to_le_bytes()).unwrap();
        f.write_all(&Digest::of(b"later").0).unwrap();
        f.write_all(b"later").unwrap();
        drop(f);
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.lock().packs[0].scanned, covered + HEADER as u64 + 5);
        assert_eq!(read_all(&s, &Digest::of(b"later")).unwrap(), b"later");
        assert_eq!(read_all(&s, &Digest::of(b"one")).unwrap(), b"one");
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap().as_deref(), Some(&b"record"[..]));
    }

    #[test]
    fn an_index_that_covers_more_than_its_pack_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let pack = closed_store(dir.path());
        // Cut the action record short, as if the pack had lost its end.
        let len = fs::metadata(&pack).unwrap().len();
        OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 3).unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.get_action(&Digest::of(b"key")).unwrap(), None);
        assert_eq!(read_all(&s, &Digest::of(b"two")).unwrap(), b"two");
        assert_eq!(s.lock().packs[0].scanned, 2 * HEADER as u64 + 6, "scanned from the start, to the torn record");
    }

    #[test]
    fn second_process_sees_first_process_packs_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalStore::open(dir.path()).unwrap();
        let b = LocalStore::open(dir.path()).unwrap();
        let r = put(&a, b"from a");
        a.flush().unwrap();
        assert_eq!(read_all(&b, &r.digest).unwrap(), b"from a");
    }
}
