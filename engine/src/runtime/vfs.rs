//! The virtual filesystem of a command task: `/in`, `/out` and scratch `/tmp`
//! as an in-memory tree, and the task's whole WASI descriptor table (stdio
//! included). [`super::vfs_calls`] exposes it to the guest as the WASI
//! preview 1 `fd_*` and `path_*` calls.
//!
//! * `/in` is read-only and holds only regular files, each a store blob read
//!   on demand ([`BlobStore::read_at`]): nothing is copied before the program
//!   runs and nothing is written to disk.
//! * `/out` and `/tmp` hold files in memory buffers. Once the attempt holds
//!   more than [`MEMORY_SPILL`] bytes in memory, further growth goes to
//!   anonymous temp files (unlinked at creation, so the OS reclaims them when
//!   the attempt ends, whatever happens), made by the store when it can
//!   ([`BlobStore::scratch_file`]), so that publishing a large `/out` file
//!   links it into the store instead of copying it ([`BlobStore::put_file`]).
//! * Space is accounted by write and by entry, not by walking: every byte a
//!   file grows by and every entry created counts against its area's limits
//!   at the moment of the call, and an unlinked file still counts until its
//!   last descriptor closes. Depth and path length are checked when an entry
//!   is created or a directory moved. An excess fails the task at once with
//!   the same limit error the directory watch gave.
//! * Descriptors are numbered exactly as wasmtime-wasi numbers them (0–2
//!   stdio, then the preopens; a closed number is reused highest first), and
//!   at most `max_open_files` may be open at once (`EMFILE` beyond).
//!
//! Errors are the errno values wasmtime-wasi returns for the same call on a
//! real directory (`tests/all/conformance.rs` holds them equal).

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::failure::Abort;
use super::spill::Spill;
use super::watch::{Excess, MAX_DEPTH, MAX_PATH_BYTES, Watched};
use crate::store::{BlobStore, Digest};
use crate::task::message::InfraKind;

/// WASI errno values used here.
pub(crate) mod errno {
    pub const ACCES: u16 = 2;
    pub const BADF: u16 = 8;
    pub const EXIST: u16 = 20;
    pub const FBIG: u16 = 22;
    pub const INVAL: u16 = 28;
    pub const ISDIR: u16 = 31;
    pub const MFILE: u16 = 33;
    pub const NAMETOOLONG: u16 = 37;
    pub const NOENT: u16 = 44;
    pub const NOTDIR: u16 = 54;
    pub const NOTEMPTY: u16 = 55;
    pub const NOTSUP: u16 = 58;
    pub const OVERFLOW: u16 = 61;
    pub const PERM: u16 = 63;
    pub const SPIPE: u16 = 70;
}

/// A failed call: an errno for the guest, or an end of the task.
#[derive(Debug)]
pub(crate) enum Fail {
    Errno(u16),
    Abort(Abort),
}

impl From<u16> for Fail {
    fn from(e: u16) -> Fail {
        Fail::Errno(e)
    }
}

pub(crate) type VResult<T> = Result<T, Fail>;

/// Bytes an attempt keeps in memory before file growth spills to anonymous
/// temp files.
pub const MEMORY_SPILL: u64 = 64 << 20;
/// `/out` files hashed ahead per attempt, at most ([`super::spill`]); any
/// further large file is hashed when it is published.
const MAX_AHEAD: u32 = 4;
/// `/in` blob files kept open per attempt, at most (each is a host
/// descriptor); reads of any further blob go through [`BlobStore::read_at`].
const MAX_BLOB_FILES: u32 = 64;
/// Fixed timestamp of every file in deterministic mode: 2000-01-01T00:00:00Z, in ns.
pub const FIXED_TIME_NS: u64 = 946_684_800 * 1_000_000_000;

/// The three areas of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    In,
    Out,
    Tmp,
}

/// What a regular file holds.
pub(crate) enum Content {
    /// A store blob (`/in`), read on demand: through the file the store
    /// keeps it in ([`BlobStore::blob_file`], opened and checked on the
    /// first read, then kept for the attempt), else by [`BlobStore::read_at`].
    Blob {
        digest: Digest,
        len: u64,
        file: OnceCell<Result<Option<Arc<File>>, String>>,
    },
    Mem(Vec<u8>),
    /// Spilled to an anonymous temp file ([`super::spill`]).
    Disk(Spill),
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Blob { len, .. } => *len,
            Content::Disk(s) => s.len(),
            Content::Mem(v) => v.len() as u64,
        }
    }
}

/// Why a file grows: a write (which extends a spill file itself) or a resize.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Growth {
    Write,
    Resize,
}

pub(crate) enum Kind {
    Dir {
        entries: BTreeMap<String, usize>,
        parent: Option<usize>,
    },
    File(Content),
    /// A relative symbolic link: it can be made, listed, read, renamed and
    /// removed, never followed (`EPERM`), and fails the task if left in `/out`.
    Symlink(String),
}

pub(crate) struct Node {
    pub zone: Zone,
    pub ino: u64,
    pub kind: Kind,
    /// Whether a directory entry names it.
    pub linked: bool,
    /// Open descriptors on it.
    pub opens: u32,
    /// Components and bytes of its path from its zone's root (directories).
    pub depth: usize,
    pub path_len: usize,
    pub mtime: u64,
}

/// One open descriptor.
#[derive(Debug, Clone)]
pub(crate) enum Desc {
    Stdin,
    Stdout,
    Stderr,
    Dir { node: usize, preopen: Option<String> },
    File { node: usize, pos: u64, read: bool, write: bool, append: bool },
}

/// Where a stdio stream goes.
pub(crate) enum Stdin {
    Empty,
    Blob { digest: Digest, len: u64, pos: u64 },
}

/// The limits of a writable zone and what it holds now.
pub(crate) struct Account {
    pub watched: Watched,
    pub entries: u64,
    pub bytes: u64,
}

pub(crate) struct Vfs {
    pub nodes: Vec<Option<Node>>,
    free_nodes: Vec<usize>,
    next_ino: u64,
    pub fds: BTreeMap<u32, Desc>,
    free_fds: BTreeSet<u32>,
    pub max_open: u32,
    pub out: Option<Account>,
    pub tmp: Option<Account>,
    pub in_mem: u64,
    pub deterministic: bool,
    pub stdin: Stdin,
    /// Captured stdout (`stdout = "name"`), held to the output byte limit.
    pub stdout_capture: Option<Vec<u8>>,
    pub stdout_cap: u64,
    pub out_root: usize,
    /// Where spill files come from: the store's own scratch files when it
    /// has them ([`BlobStore::scratch_file`]), so a large `/out` file is
    /// stored without a copy; else anonymous temp files.
    pub spill_store: Option<&'static dyn BlobStore>,
    /// The guest's exported `memory`, once instantiated (the WASI calls'
    /// memory, found once instead of by name on every call).
    pub memory: Option<wasmtime::Memory>,
    /// `/out` files hashed ahead so far ([`MAX_AHEAD`]).
    aheads: u32,
    /// `/in` blob files held open ([`MAX_BLOB_FILES`]).
    blob_files: std::cell::Cell<u32>,
}

impl Vfs {
    /// A tree with `/in` (holding `inputs`: path relative to `/in`, blob),
    /// `/out` and, when `scratch` is given, `/tmp`; descriptors 0–2 and the
    /// preopens in that order. Without `io_dirs`, `/in` and `/out` exist (the
    /// inputs and outputs live there) but are not preopened.
    pub(crate) fn new(
        out: Watched,
        scratch: Option<Watched>,
        io_dirs: bool,
        max_open: u32,
        deterministic: bool,
    ) -> Vfs {
        let mut v = Vfs::stdio(max_open, deterministic);
        v.out = Some(Account { watched: out, entries: 0, bytes: 0 });
        v.tmp = scratch.map(|w| Account { watched: w, entries: 0, bytes: 0 });
        let in_root = v.alloc(Zone::In, Kind::Dir { entries: BTreeMap::new(), parent: None });
        let out_root = v.alloc(Zone::Out, Kind::Dir { entries: BTreeMap::new(), parent: None });
        v.out_root = out_root;
        let mut next = 3;
        if io_dirs {
            v.fds.insert(3, Desc::Dir { node: in_root, preopen: Some("/in".into()) });
            v.fds.insert(4, Desc::Dir { node: out_root, preopen: Some("/out".into()) });
            next = 5;
        }
        if v.tmp.is_some() {
            let tmp_root = v.alloc(Zone::Tmp, Kind::Dir { entries: BTreeMap::new(), parent: None });
            v.fds.insert(next, Desc::Dir { node: tmp_root, preopen: Some("/tmp".into()) });
        }
        for d in v.fds.values() {
            if let Desc::Dir { node, .. } = d
                && let Some(n) = v.nodes[*node].as_mut()
            {
                n.opens += 1;
            }
        }
        v
    }

    /// Only stdio (SDK tasks, which have no directories).
    pub(crate) fn stdio(max_open: u32, deterministic: bool) -> Vfs {
        let mut v = Vfs {
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            next_ino: 1,
            fds: BTreeMap::new(),
            free_fds: BTreeSet::new(),
            max_open,
            out: None,
            tmp: None,
            in_mem: 0,
            deterministic,
            stdin: Stdin::Empty,
            stdout_capture: None,
            stdout_cap: u64::MAX,
            out_root: usize::MAX,
            spill_store: None,
            memory: None,
            aheads: 0,
            blob_files: std::cell::Cell::new(0),
        };
        v.fds.insert(0, Desc::Stdin);
        v.fds.insert(1, Desc::Stdout);
        v.fds.insert(2, Desc::Stderr);
        v
    }

    fn now(&self) -> u64 {
        if self.deterministic {
            return FIXED_TIME_NS;
        }
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    }

    fn alloc(&mut self, zone: Zone, kind: Kind) -> usize {
        let ino = self.next_ino;
        self.next_ino += 1;
        let mtime = self.now();
        let node = Node { zone, ino, kind, linked: true, opens: 0, depth: 0, path_len: 0, mtime };
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    pub(crate) fn node(&self, i: usize) -> VResult<&Node> {
        self.nodes.get(i).and_then(Option::as_ref).ok_or(Fail::Errno(errno::BADF))
    }

    fn node_mut(&mut self, i: usize) -> VResult<&mut Node> {
        self.nodes.get_mut(i).and_then(Option::as_mut).ok_or(Fail::Errno(errno::BADF))
    }

    /// Add an empty directory `/in/<name>` (a list input; its items follow).
    pub(crate) fn add_dir_input(&mut self, name: &str) {
        let root = self.root_of(3);
        let d = self.alloc(Zone::In, Kind::Dir { entries: BTreeMap::new(), parent: Some(root) });
        if let Some(Node { kind: Kind::Dir { entries, .. }, .. }) = self.nodes[root].as_mut() {
            entries.insert(name.to_string(), d);
        }
    }

    /// Add an input file at `/in/<rel>` (`rel` is `name` or `name/index`).
    pub(crate) fn add_input(&mut self, rel: &[&str], digest: Digest, len: u64) {
        let mut dir = self.root_of(3);
        for (i, part) in rel.iter().enumerate() {
            let last = i + 1 == rel.len();
            let existing = match &self.nodes[dir].as_ref().map(|n| &n.kind) {
                Some(Kind::Dir { entries, .. }) => entries.get(*part).copied(),
                _ => None,
            };
            let child = match existing {
                Some(c) => c,
                None => {
                    let kind = if last {
                        Kind::File(Content::Blob { digest, len, file: OnceCell::new() })
                    } else {
                        Kind::Dir { entries: BTreeMap::new(), parent: Some(dir) }
                    };
                    let c = self.alloc(Zone::In, kind);
                    if let Some(Node { kind: Kind::Dir { entries, .. }, .. }) = self.nodes[dir].as_mut() {
                        entries.insert((*part).to_string(), c);
                    }
                    c
                }
            };
            dir = child;
        }
    }

    fn root_of(&self, fd: u32) -> usize {
        match self.fds.get(&fd) {
            Some(Desc::Dir { node, .. }) => *node,
            _ => 0,
        }
    }

    fn account(&mut self, zone: Zone) -> Option<&mut Account> {
        match zone {
            Zone::In => None,
            Zone::Out => self.out.as_mut(),
            Zone::Tmp => self.tmp.as_mut(),
        }
    }

    fn excess(acc: &Account, e: Excess) -> Fail {
        let (limit, detail) = acc.watched.describe(e);
        Fail::Abort(Abort::Limit { limit, detail })
    }

    /// Count one more entry in `zone`, or fail the task.
    fn add_entry(&mut self, zone: Zone) -> VResult<()> {
        if let Some(acc) = self.account(zone) {
            acc.entries += 1;
            if acc.entries > acc.watched.max_entries {
                return Err(Self::excess(acc, Excess::Entries));
            }
        }
        Ok(())
    }

    /// Change the bytes held in `zone` from `old` to `new`, or fail the task.
    fn resize_account(&mut self, zone: Zone, old: u64, new: u64) -> VResult<()> {
        let Some(acc) = self.account(zone) else { return Err(Fail::Errno(errno::PERM)) };
        let bytes = acc.bytes - old.min(acc.bytes) + new;
        if new > old && bytes > acc.watched.max_bytes {
            return Err(Self::excess(acc, Excess::Bytes));
        }
        acc.bytes = bytes;
        Ok(())
    }

    // ---- descriptors ----

    pub(crate) fn desc(&self, fd: u32) -> VResult<&Desc> {
        self.fds.get(&fd).ok_or(Fail::Errno(errno::BADF))
    }

    pub(crate) fn push_fd(&mut self, d: Desc) -> VResult<u32> {
        if self.fds.len() >= self.max_open as usize {
            return Err(Fail::Errno(errno::MFILE));
        }
        let fd = match self.free_fds.pop_last() {
            Some(fd) => fd,
            None => match self.fds.last_key_value() {
                Some((k, _)) => k.checked_add(1).ok_or(Fail::Errno(errno::MFILE))?,
                None => 0,
            },
        };
        if let Desc::Dir { node, .. } | Desc::File { node, .. } = &d {
            self.node_mut(*node)?.opens += 1;
        }
        self.fds.insert(fd, d);
        Ok(fd)
    }

    pub(crate) fn close(&mut self, fd: u32) -> VResult<()> {
        let d = self.fds.remove(&fd).ok_or(Fail::Errno(errno::BADF))?;
        self.free_fds.insert(fd);
        if let Desc::Dir { node, .. } | Desc::File { node, .. } = d {
            let n = self.node_mut(node)?;
            n.opens = n.opens.saturating_sub(1);
            self.maybe_free(node);
        }
        Ok(())
    }

    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> VResult<()> {
        if !self.fds.contains_key(&from) || !self.fds.contains_key(&to) {
            return Err(Fail::Errno(errno::BADF));
        }
        if from == to {
            return Ok(());
        }
        self.close(to)?;
        let d = self.fds.remove(&from).ok_or(Fail::Errno(errno::BADF))?;
        self.free_fds.insert(from);
        self.free_fds.remove(&to);
        self.fds.insert(to, d);
        Ok(())
    }

    /// Drop a node nobody names or holds open, releasing its space and entry.
    fn maybe_free(&mut self, i: usize) {
        let Some(n) = self.nodes.get(i).and_then(Option::as_ref) else { return };
        if n.linked || n.opens > 0 {
            return;
        }
        let zone = n.zone;
        let len = match &n.kind {
            Kind::File(c) => c.len(),
            Kind::Dir { .. } | Kind::Symlink(_) => 0,
        };
        if let Some(Some(Node { kind: Kind::File(Content::Mem(v)), .. })) = self.nodes.get(i) {
            self.in_mem = self.in_mem.saturating_sub(v.len() as u64);
        }
        self.nodes[i] = None;
        self.free_nodes.push(i);
        if let Some(acc) = self.account(zone) {
            acc.entries = acc.entries.saturating_sub(1);
            acc.bytes = acc.bytes.saturating_sub(len);
        }
    }

    // ---- paths ----

    /// The directory node of descriptor `fd`, for a path call.
    pub(crate) fn dir_fd(&self, fd: u32) -> VResult<usize> {
        match self.desc(fd)? {
            Desc::Dir { node, .. } => Ok(*node),
            _ => Err(Fail::Errno(errno::BADF)),
        }
    }

    fn entries(&self, dir: usize) -> VResult<&BTreeMap<String, usize>> {
        match &self.node(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            Kind::File(_) | Kind::Symlink(_) => Err(Fail::Errno(errno::NOTDIR)),
        }
    }

    /// Walk `path` from `base`, staying inside it (as cap-std does): the
    /// parent directory and the last component (`None` for the base itself
    /// or a path ending in `..`-resolved directory). A trailing slash is
    /// kept as `must_dir`.
    pub(crate) fn resolve_parent(&self, base: usize, path: &str) -> VResult<(usize, Option<String>, bool)> {
        if path.is_empty() {
            return Err(Fail::Errno(errno::NOENT));
        }
        if path.starts_with('/') {
            return Err(Fail::Errno(errno::PERM));
        }
        let must_dir = path.ends_with('/');
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        let mut stack: Vec<usize> = vec![base];
        let Some((last, init)) = parts.split_last() else { return Ok((base, None, true)) };
        for p in init {
            let cur = *stack.last().unwrap_or(&base);
            if *p == ".." {
                if stack.len() == 1 {
                    return Err(Fail::Errno(errno::PERM));
                }
                stack.pop();
                continue;
            }
            let child = *self.entries(cur)?.get(*p).ok_or(Fail::Errno(errno::NOENT))?;
            match self.node(child)?.kind {
                Kind::Dir { .. } => {}
                Kind::Symlink(_) => return Err(Fail::Errno(errno::PERM)),
                Kind::File(_) => return Err(Fail::Errno(errno::NOTDIR)),
            }
            stack.push(child);
        }
        let cur = *stack.last().unwrap_or(&base);
        self.entries(cur)?;
        if *last == ".." {
            if stack.len() == 1 {
                return Err(Fail::Errno(errno::PERM));
            }
            stack.pop();
            return Ok((*stack.last().unwrap_or(&base), None, true));
        }
        Ok((cur, Some((*last).to_string()), must_dir))
    }

    /// The node `path` names from `base`.
    pub(crate) fn lookup(&self, base: usize, path: &str) -> VResult<usize> {
        let (dir, name, must_dir) = self.resolve_parent(base, path)?;
        let Some(name) = name else { return Ok(dir) };
        let n = *self.entries(dir)?.get(&name).ok_or(Fail::Errno(errno::NOENT))?;
        match self.node(n)?.kind {
            Kind::Symlink(_) if must_dir => Err(Fail::Errno(errno::PERM)),
            Kind::File(_) if must_dir => Err(Fail::Errno(errno::NOTDIR)),
            _ => Ok(n),
        }
    }

    /// Check that a new entry `name` in `dir` keeps within depth and path length.
    fn check_depth(&self, dir: usize, name: &str) -> VResult<(usize, usize)> {
        let d = self.node(dir)?;
        let depth = d.depth + 1;
        let len = if d.depth == 0 { name.len() } else { d.path_len + 1 + name.len() };
        if depth > MAX_DEPTH || len > MAX_PATH_BYTES {
            let zone = d.zone;
            let acc = match zone {
                Zone::Out => self.out.as_ref(),
                Zone::Tmp => self.tmp.as_ref(),
                Zone::In => None,
            };
            let acc = acc.ok_or(Fail::Errno(errno::PERM))?;
            return Err(Self::excess(acc, Excess::Depth));
        }
        Ok((depth, len))
    }

    /// Create an empty file or directory `name` in `dir`.
    fn create(&mut self, dir: usize, name: &str, kind: Kind) -> VResult<usize> {
        let zone = self.node(dir)?.zone;
        if zone == Zone::In {
            return Err(Fail::Errno(errno::PERM));
        }
        let (depth, path_len) = self.check_depth(dir, name)?;
        self.add_entry(zone)?;
        let kind = match kind {
            Kind::Dir { entries, .. } => Kind::Dir { entries, parent: Some(dir) },
            k => k,
        };
        let n = self.alloc(zone, kind);
        let node = self.node_mut(n)?;
        node.depth = depth;
        node.path_len = path_len;
        let now = self.now();
        let d = self.node_mut(dir)?;
        d.mtime = now;
        if let Kind::Dir { entries, .. } = &mut d.kind {
            entries.insert(name.to_string(), n);
        }
        Ok(n)
    }

    /// `path_open`. `oflags`: 1 creat, 2 directory, 4 excl, 8 trunc.
    pub(crate) fn open(
        &mut self,
        dirfd: u32,
        path: &str,
        oflags: u16,
        read: bool,
        write: bool,
        append: bool,
    ) -> VResult<u32> {
        let base = match self.desc(dirfd)? {
            Desc::Dir { node, .. } => *node,
            Desc::File { .. } => return Err(Fail::Errno(errno::NOTDIR)),
            _ => return Err(Fail::Errno(errno::BADF)),
        };
        let (creat, directory, excl, trunc) = (oflags & 1 != 0, oflags & 2 != 0, oflags & 4 != 0, oflags & 8 != 0);
        if directory && (creat || excl || trunc) {
            return Err(Fail::Errno(errno::INVAL));
        }
        let writes = creat || trunc || write;
        let zone = self.node(base)?.zone;
        if zone == Zone::In && writes {
            return Err(Fail::Errno(errno::PERM));
        }
        let (dir, name, must_dir) = self.resolve_parent(base, path)?;
        let existing = match &name {
            Some(n) => self.entries(dir)?.get(n).copied(),
            None => Some(dir),
        };
        let node = match (existing, name) {
            (Some(_), _) if creat && excl => return Err(Fail::Errno(errno::EXIST)),
            (Some(n), _) => n,
            (None, Some(name)) if creat => {
                if must_dir {
                    return Err(Fail::Errno(errno::ISDIR));
                }
                self.create(dir, &name, Kind::File(Content::Mem(Vec::new())))?
            }
            (None, _) => return Err(Fail::Errno(errno::NOENT)),
        };
        let is_dir = matches!(self.node(node)?.kind, Kind::Dir { .. });
        if matches!(self.node(node)?.kind, Kind::Symlink(_)) {
            return Err(Fail::Errno(errno::PERM));
        }
        if is_dir {
            if writes {
                return Err(Fail::Errno(errno::ISDIR));
            }
            return self.push_fd(Desc::Dir { node, preopen: None });
        }
        if directory || must_dir {
            return Err(Fail::Errno(errno::NOTDIR));
        }
        // Reserve the descriptor before truncating.
        if self.fds.len() >= self.max_open as usize {
            return Err(Fail::Errno(errno::MFILE));
        }
        if trunc {
            self.set_size(node, 0)?;
        }
        self.push_fd(Desc::File { node, pos: 0, read: read || !write, write: writes, append })
    }

    pub(crate) fn mkdir(&mut self, dirfd: u32, path: &str) -> VResult<()> {
        let base = self.dir_fd(dirfd)?;
        if self.node(base)?.zone == Zone::In {
            return Err(Fail::Errno(errno::PERM));
        }
        let (dir, name, _) = self.resolve_parent(base, path)?;
        let Some(name) = name else { return Err(Fail::Errno(errno::EXIST)) };
        if self.entries(dir)?.contains_key(&name) {
            return Err(Fail::Errno(errno::EXIST));
        }
        self.create(dir, &name, Kind::Dir { entries: BTreeMap::new(), parent: None }).map(|_| ())
    }

    /// `path_symlink`: a relative `target` only (an absolute one is `EPERM`, as in wasmtime-wasi).
    pub(crate) fn symlink(&mut self, target: &str, dirfd: u32, path: &str) -> VResult<()> {
        let base = self.dir_fd(dirfd)?;
        if self.node(base)?.zone == Zone::In || target.starts_with('/') {
            return Err(Fail::Errno(errno::PERM));
        }
        let (dir, name, _) = self.resolve_parent(base, path)?;
        let Some(name) = name else { return Err(Fail::Errno(errno::EXIST)) };
        if self.entries(dir)?.contains_key(&name) {
            return Err(Fail::Errno(errno::EXIST));
        }
        self.create(dir, &name, Kind::Symlink(target.to_string())).map(|_| ())
    }

    /// Remove `name` from `dir` (the node stays while open).
    fn detach(&mut self, dir: usize, name: &str) -> VResult<usize> {
        let now = self.now();
        let d = self.node_mut(dir)?;
        d.mtime = now;
        let n = match &mut d.kind {
            Kind::Dir { entries, .. } => entries.remove(name).ok_or(Fail::Errno(errno::NOENT))?,
            Kind::File(_) | Kind::Symlink(_) => return Err(Fail::Errno(errno::NOTDIR)),
        };
        self.node_mut(n)?.linked = false;
        Ok(n)
    }

    pub(crate) fn unlink(&mut self, dirfd: u32, path: &str, want_dir: bool) -> VResult<()> {
        let base = self.dir_fd(dirfd)?;
        if self.node(base)?.zone == Zone::In {
            return Err(Fail::Errno(errno::PERM));
        }
        let (dir, name, must_dir) = self.resolve_parent(base, path)?;
        let Some(name) = name else {
            return Err(Fail::Errno(if want_dir { errno::ACCES } else { errno::ISDIR }));
        };
        let n = *self.entries(dir)?.get(&name).ok_or(Fail::Errno(errno::NOENT))?;
        match (&self.node(n)?.kind, want_dir) {
            (Kind::Dir { .. }, false) => return Err(Fail::Errno(errno::ISDIR)),
            (Kind::File(_) | Kind::Symlink(_), true) => return Err(Fail::Errno(errno::NOTDIR)),
            (Kind::File(_) | Kind::Symlink(_), false) if must_dir => return Err(Fail::Errno(errno::NOTDIR)),
            (Kind::Dir { entries, .. }, true) if !entries.is_empty() => return Err(Fail::Errno(errno::NOTEMPTY)),
            _ => {}
        }
        self.detach(dir, &name)?;
        self.maybe_free(n);
        Ok(())
    }

    pub(crate) fn rename(&mut self, from_fd: u32, from: &str, to_fd: u32, to: &str) -> VResult<()> {
        let (fb, tb) = (self.dir_fd(from_fd)?, self.dir_fd(to_fd)?);
        let (fz, tz) = (self.node(fb)?.zone, self.node(tb)?.zone);
        if fz == Zone::In || tz == Zone::In {
            return Err(Fail::Errno(errno::PERM));
        }
        let (fdir, fname, _) = self.resolve_parent(fb, from)?;
        let (tdir, tname, _) = self.resolve_parent(tb, to)?;
        let (Some(fname), Some(tname)) = (fname, tname) else { return Err(Fail::Errno(errno::INVAL)) };
        let src = *self.entries(fdir)?.get(&fname).ok_or(Fail::Errno(errno::NOENT))?;
        let src_dir = matches!(self.node(src)?.kind, Kind::Dir { .. });
        if let Some(&dst) = self.entries(tdir)?.get(&tname) {
            if dst == src {
                return Ok(());
            }
            // Linux: a destination that is an ancestor of the source is "not empty".
            if self.is_ancestor(dst, fdir)? {
                return Err(Fail::Errno(errno::NOTEMPTY));
            }
            match (&self.node(dst)?.kind, src_dir) {
                (Kind::Dir { .. }, false) => return Err(Fail::Errno(errno::ISDIR)),
                (Kind::File(_) | Kind::Symlink(_), true) => return Err(Fail::Errno(errno::NOTDIR)),
                (Kind::Dir { entries, .. }, true) if !entries.is_empty() => {
                    return Err(Fail::Errno(errno::NOTEMPTY));
                }
                _ => {}
            }
        }
        // Not into itself.
        if src_dir && self.is_ancestor(src, tdir)? {
            return Err(Fail::Errno(errno::INVAL));
        }
        let (depth, path_len) = self.check_depth(tdir, &tname)?;
        if fz != tz {
            self.move_zone(src, tz)?;
        }
        if let Some(&dst) = self.entries(tdir)?.get(&tname) {
            self.detach(tdir, &tname)?;
            self.maybe_free(dst);
        }
        self.detach(fdir, &fname)?;
        let now = self.now();
        let t = self.node_mut(tdir)?;
        t.mtime = now;
        if let Kind::Dir { entries, .. } = &mut t.kind {
            entries.insert(tname, src);
        }
        let s = self.node_mut(src)?;
        s.linked = true;
        if let Kind::Dir { parent, .. } = &mut s.kind {
            *parent = Some(tdir);
        }
        self.redepth(src, depth, path_len)
    }

    /// Whether directory `a` is `d` or one of its ancestors.
    fn is_ancestor(&self, a: usize, d: usize) -> VResult<bool> {
        let mut at = Some(d);
        while let Some(x) = at {
            if x == a {
                return Ok(true);
            }
            at = match &self.node(x)?.kind {
                Kind::Dir { parent, .. } => *parent,
                Kind::File(_) | Kind::Symlink(_) => None,
            };
        }
        Ok(false)
    }

    /// Set the depth of `n` and of everything under it, checking the limits.
    fn redepth(&mut self, n: usize, depth: usize, path_len: usize) -> VResult<()> {
        let mut stack = vec![(n, depth, path_len)];
        while let Some((i, depth, len)) = stack.pop() {
            let zone = self.node(i)?.zone;
            if depth > MAX_DEPTH || len > MAX_PATH_BYTES {
                let acc = if zone == Zone::Tmp { self.tmp.as_ref() } else { self.out.as_ref() };
                return Err(acc.map(|a| Self::excess(a, Excess::Depth)).unwrap_or(Fail::Errno(errno::PERM)));
            }
            let node = self.node_mut(i)?;
            node.depth = depth;
            node.path_len = len;
            if let Kind::Dir { entries, .. } = &node.kind {
                for (name, c) in entries {
                    stack.push((*c, depth + 1, len + 1 + name.len()));
                }
            }
        }
        Ok(())
    }

    /// Move `n` and its subtree from its zone to `to` (rename between `/out`
    /// and `/tmp`), moving their entries and bytes between the accounts.
    fn move_zone(&mut self, n: usize, to: Zone) -> VResult<()> {
        let mut all = Vec::new();
        let mut stack = vec![n];
        while let Some(i) = stack.pop() {
            all.push(i);
            if let Kind::Dir { entries, .. } = &self.node(i)?.kind {
                stack.extend(entries.values().copied());
            }
        }
        for i in all {
            let (from, len) = {
                let node = self.node(i)?;
                (node.zone, if let Kind::File(c) = &node.kind { c.len() } else { 0 })
            };
            if from == to {
                continue;
            }
            self.add_entry(to)?;
            self.resize_account(to, 0, len)?;
            if let Some(acc) = self.account(from) {
                acc.entries = acc.entries.saturating_sub(1);
                acc.bytes = acc.bytes.saturating_sub(len);
            }
            let node = self.node_mut(i)?;
            node.zone = to;
            // Only `/out` files are published: no use hashing one elsewhere.
            if let Kind::File(Content::Disk(s)) = &mut node.kind
                && to != Zone::Out
            {
                s.stop_hashing();
            }
        }
        Ok(())
    }

    // ---- file data ----

    /// Resize file `n` to `size`, zero-filling, accounted.
    pub(crate) fn set_size(&mut self, n: usize, size: u64) -> VResult<()> {
        self.grow(n, size, Growth::Resize)
    }

    /// Change the length of file `n` to `size`, accounted first (the limits
    /// are enforced on every call). For a write, a spill file is left to
    /// grow by the write itself.
    fn grow(&mut self, n: usize, size: u64, why: Growth) -> VResult<()> {
        let node = self.node(n)?;
        let zone = node.zone;
        let Kind::File(c) = &node.kind else { return Err(Fail::Errno(errno::ISDIR)) };
        let old = c.len();
        if old == size {
            return Ok(());
        }
        self.resize_account(zone, old, size)?;
        self.resize_content(n, size, why)
    }

    fn resize_content(&mut self, n: usize, size: u64, why: Growth) -> VResult<()> {
        let spill = self.in_mem.saturating_add(size.saturating_sub(self.len_of(n)?)) > MEMORY_SPILL;
        let spill_store = self.spill_store;
        let node = self.node_mut(n)?;
        let Kind::File(c) = &mut node.kind else { return Err(Fail::Errno(errno::ISDIR)) };
        let disk_err = |e: std::io::Error| infra(format!("cannot write a spill file: {e}"));
        match c {
            Content::Blob { .. } => Err(Fail::Errno(errno::PERM)),
            Content::Mem(v) if spill && size > v.len() as u64 => {
                let (f, linkable) = match spill_store.and_then(|st| st.scratch_file()) {
                    Some(f) => (f, true),
                    None => {
                        (tempfile::tempfile().map_err(|e| infra(format!("cannot create a spill file: {e}")))?, false)
                    }
                };
                let mut s = Spill::new(f, linkable, v).map_err(disk_err)?;
                if why == Growth::Resize {
                    s.set_len(size).map_err(disk_err)?;
                }
                let freed = v.len() as u64;
                *c = Content::Disk(s);
                self.in_mem = self.in_mem.saturating_sub(freed);
                Ok(())
            }
            Content::Mem(v) => {
                let old = v.len() as u64;
                let size_usize = usize::try_from(size).map_err(|_| Fail::Errno(errno::FBIG))?;
                v.resize(size_usize, 0);
                self.in_mem = self.in_mem - old.min(self.in_mem) + size;
                Ok(())
            }
            // The write that follows extends the file itself.
            Content::Disk(_) if why == Growth::Write => Ok(()),
            Content::Disk(s) => s.set_len(size).map_err(disk_err),
        }
    }

    fn len_of(&self, n: usize) -> VResult<u64> {
        match &self.node(n)?.kind {
            Kind::File(c) => Ok(c.len()),
            Kind::Dir { .. } | Kind::Symlink(_) => Ok(0),
        }
    }

    /// Read from file `n` at `off` into `buf`.
    pub(crate) fn read_at(&self, store: &dyn BlobStore, n: usize, off: u64, buf: &mut [u8]) -> VResult<usize> {
        let Kind::File(c) = &self.node(n)?.kind else { return Err(Fail::Errno(errno::ISDIR)) };
        let len = c.len();
        if off >= len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(len - off) as usize;
        let buf = &mut buf[..want];
        match c {
            Content::Mem(v) => {
                buf.copy_from_slice(&v[off as usize..off as usize + want]);
                Ok(want)
            }
            Content::Disk(s) => s.read_at(buf, off).map_err(|e| infra(format!("cannot read a spill file: {e}"))),
            Content::Blob { digest, file, .. } => {
                let fail = |e: &dyn std::fmt::Display| infra(format!("cannot read input blob {digest}: {e}"));
                let held = self.blob_files.get();
                let opened = match file.get() {
                    Some(o) => Some(o),
                    None if held < MAX_BLOB_FILES => {
                        let o = file.get_or_init(|| store.blob_file(digest).map_err(|e| e.to_string()));
                        if matches!(o, Ok(Some(_))) {
                            self.blob_files.set(held + 1);
                        }
                        Some(o)
                    }
                    None => None,
                };
                match opened {
                    Some(Ok(Some(f))) => read_full(f, buf, off).map_err(|e| fail(&e)),
                    Some(Ok(None)) | None => store.read_at(digest, off, buf).map_err(|e| fail(&e)),
                    Some(Err(e)) => Err(fail(e)),
                }
            }
        }
    }

    /// Write `data` to file `n` at `off`, growing it (accounted).
    pub(crate) fn write_at(&mut self, n: usize, off: u64, data: &[u8]) -> VResult<usize> {
        let end = off.checked_add(data.len() as u64).ok_or(Fail::Errno(errno::FBIG))?;
        let old = self.len_of(n)?;
        if end > old {
            self.grow(n, end, Growth::Write)?;
        }
        let now = self.now();
        let may_hash = self.aheads < MAX_AHEAD;
        let node = self.node_mut(n)?;
        node.mtime = now;
        let zone = node.zone;
        let Kind::File(c) = &mut node.kind else { return Err(Fail::Errno(errno::ISDIR)) };
        match c {
            Content::Mem(v) => {
                v[off as usize..end as usize].copy_from_slice(data);
                Ok(data.len())
            }
            Content::Disk(s) => {
                s.write_at(data, off).map_err(|e| infra(format!("cannot write a spill file: {e}")))?;
                if zone == Zone::Out && may_hash && s.hash_ahead() {
                    self.aheads += 1;
                }
                Ok(data.len())
            }
            Content::Blob { .. } => Err(Fail::Errno(errno::BADF)),
        }
    }

    /// `fd_filestat_set_times` / `path_filestat_set_times`: the modification
    /// time (`fst_flags` 4: `mtim`, 8: now); fixed in deterministic mode.
    pub(crate) fn set_times(&mut self, n: usize, mtim: u64, fst_flags: u16) -> VResult<()> {
        if fst_flags & 1 != 0 && fst_flags & 2 != 0 || fst_flags & 4 != 0 && fst_flags & 8 != 0 {
            return Err(Fail::Errno(errno::INVAL));
        }
        let now = self.now();
        let det = self.deterministic;
        let node = self.node_mut(n)?;
        if node.zone == Zone::In {
            return Err(Fail::Errno(errno::PERM));
        }
        if !det && fst_flags & 4 != 0 {
            node.mtime = mtim;
        } else if fst_flags & 8 != 0 {
            node.mtime = now;
        }
        Ok(())
    }

    /// The whole content of file `n` (for publishing).
    pub(crate) fn content(&self, n: usize) -> VResult<&Content> {
        match &self.node(n)?.kind {
            Kind::File(c) => Ok(c),
            Kind::Dir { .. } | Kind::Symlink(_) => Err(Fail::Errno(errno::ISDIR)),
        }
    }

    /// The content of file `n`, to publish a spill file ([`Spill::finish`]).
    pub(crate) fn content_mut(&mut self, n: usize) -> VResult<&mut Content> {
        match &mut self.node_mut(n)?.kind {
            Kind::File(c) => Ok(c),
            Kind::Dir { .. } | Kind::Symlink(_) => Err(Fail::Errno(errno::ISDIR)),
        }
    }

    /// Every regular file under `/out`, as (relative path, node), sorted by path.
    pub(crate) fn out_files(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        let mut stack = vec![(self.out_root, String::new())];
        while let Some((d, prefix)) = stack.pop() {
            let Ok(entries) = self.entries(d) else { continue };
            for (name, &c) in entries {
                let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
                match self.nodes.get(c).and_then(Option::as_ref).map(|n| &n.kind) {
                    Some(Kind::Dir { .. }) => stack.push((c, rel)),
                    Some(Kind::File(_) | Kind::Symlink(_)) => found.push((rel, c)),
                    None => {}
                }
            }
        }
        found.sort();
        found
    }

    /// The entries `fd_readdir` lists for `dir`: `.`, `..`, then the names in order.
    pub(crate) fn dirents(&self, dir: usize) -> VResult<Vec<(u64, u8, String)>> {
        let node = self.node(dir)?;
        let Kind::Dir { entries, parent } = &node.kind else { return Err(Fail::Errno(errno::BADF)) };
        let parent_ino = parent.and_then(|p| self.node(p).ok()).map(|p| p.ino).unwrap_or(node.ino);
        let mut out = Vec::with_capacity(entries.len() + 2);
        out.push((node.ino, 3, ".".to_string()));
        out.push((parent_ino, 3, "..".to_string()));
        for (name, &c) in entries {
            let Ok(n) = self.node(c) else { continue };
            out.push((n.ino, filetype(&n.kind), name.clone()));
        }
        Ok(out)
    }

    /// `filestat` of node `n`: (ino, filetype, nlink, size, mtime).
    pub(crate) fn stat(&self, n: usize) -> VResult<(u64, u8, u64, u64, u64)> {
        let node = self.node(n)?;
        Ok(match &node.kind {
            Kind::Dir { entries, .. } => {
                let subdirs = entries
                    .values()
                    .filter(|c| matches!(self.node(**c).map(|n| &n.kind), Ok(Kind::Dir { .. })))
                    .count() as u64;
                (node.ino, 3, 2 + subdirs, 4096, node.mtime)
            }
            Kind::File(c) => (node.ino, 4, u64::from(node.linked), c.len(), node.mtime),
            Kind::Symlink(t) => (node.ino, 7, u64::from(node.linked), t.len() as u64, node.mtime),
        })
    }
}

/// The WASI filetype of a node: 3 directory, 4 regular file, 7 symbolic link.
pub(crate) fn filetype(k: &Kind) -> u8 {
    match k {
        Kind::Dir { .. } => 3,
        Kind::File(_) => 4,
        Kind::Symlink(_) => 7,
    }
}

/// Fill `buf` from `f` at `off` (a blob file holds at least the blob's bytes).
fn read_full(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let k = f.read_at(&mut buf[got..], off + got as u64)?;
        if k == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "its file in the store is shorter than the blob",
            ));
        }
        got += k;
    }
    Ok(got)
}

fn infra(msg: String) -> Fail {
    Fail::Abort(Abort::Infra(InfraKind::Storage, msg))
}
