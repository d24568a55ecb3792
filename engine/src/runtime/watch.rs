//! The live limits on a command task's writable directories: `/out`, scratch
//! `/tmp` and the workdir.
//!
//! Each directory is held to a number of entries (files, directories, links:
//! anything), to the bytes of its regular files (by length, so sparse files
//! count in full) and to a depth: no relative path of more than [`MAX_DEPTH`]
//! components or more than [`MAX_PATH_BYTES`] bytes. The depth
//! limit also keeps every path short enough for the host to open it, so that
//! a deep tree cannot hide bytes from the walk.
//!
//! [`OutWatch::check`] runs from the epoch callback (every
//! [`super::EPOCH_TICK`] of wasm execution, on the task's own thread, with
//! the guest paused) and fails the task as soon as a directory exceeds one of
//! its limits. Each walk stops at the first excess, so it costs at most the
//! entry limit; to keep its overhead under about 10% of the task's time the
//! next walk waits at least ten times as long as this one took. The runtime
//! walks scratch and the workdir once more after the program exits (it can
//! fill them between two ticks), and `/out` for depth; `/out` is counted and
//! sized again when it is collected.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::failure::Abort;
use crate::task::message::{LimitKind, TaskFailure};

/// Most entries a scratch directory or a workdir may hold.
pub const MAX_SCRATCH_ENTRIES: u64 = 100_000;
/// Most components of a path relative to `/out`, `/tmp` or a workdir
/// (`a/b/c` has 3).
pub const MAX_DEPTH: usize = 64;
/// Longest path, in bytes, relative to `/out`, `/tmp` or a workdir.
pub const MAX_PATH_BYTES: usize = 2048;

/// Which directory a [`Watched`] is, for messages.
#[derive(Debug, Clone)]
pub(crate) enum Area {
    Out,
    Scratch,
    /// The workdir, with its guest path.
    Workdir(String),
}

/// One directory and its limits.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub dir: PathBuf,
    pub max_entries: u64,
    pub max_bytes: u64,
    pub area: Area,
}

/// What a watched directory exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Excess {
    Entries,
    Bytes,
    Depth,
}

impl Watched {
    /// Walk the directory now; the limit it exceeds, if any.
    pub(crate) fn check_now(&self) -> Result<(), (LimitKind, String)> {
        match walk(&self.dir, self.max_entries, self.max_bytes) {
            Some(excess) => Err(self.describe(excess)),
            None => Ok(()),
        }
    }

    /// The limit name and detail of an excess, as shown in `NAME limit exceeded: DETAIL`.
    pub(crate) fn describe(&self, excess: Excess) -> (LimitKind, String) {
        let place = match &self.area {
            Area::Out => "/out".to_string(),
            Area::Scratch => "/tmp".to_string(),
            Area::Workdir(at) => format!("its workdir `{at}`"),
        };
        let limit = match (&self.area, excess) {
            (Area::Out, Excess::Entries) => LimitKind::OutputCount,
            (Area::Out, Excess::Bytes) => LimitKind::OutputBytes,
            (Area::Out, Excess::Depth) => LimitKind::OutputDepth,
            (Area::Scratch, _) => LimitKind::Scratch,
            (Area::Workdir(_), _) => LimitKind::Workdir,
        };
        let detail = match (&self.area, excess) {
            (Area::Out, Excess::Bytes) => {
                format!("the task's outputs total more than {}", crate::units::format_size(self.max_bytes))
            }
            (_, Excess::Entries) => format!("the task created more than {} entries in {place}", self.max_entries),
            (_, Excess::Bytes) => {
                format!("the task wrote more than {} to {place}", crate::units::format_size(self.max_bytes))
            }
            (_, Excess::Depth) => {
                format!("the task made a path of more than {MAX_DEPTH} components or {MAX_PATH_BYTES} bytes in {place}")
            }
        };
        (limit, detail)
    }

    /// [`Watched::check_now`] as a task failure.
    pub(crate) fn check_failure(&self) -> Result<(), TaskFailure> {
        self.check_now().map_err(|(limit, detail)| TaskFailure::Limit { limit, detail })
    }
}

/// The live check of a command task's writable directories while its program runs.
pub(crate) struct OutWatch {
    areas: Vec<Watched>,
    next: Instant,
}

impl OutWatch {
    pub(crate) fn new(areas: Vec<Watched>) -> OutWatch {
        OutWatch { areas, next: Instant::now() }
    }

    pub(crate) fn check(&mut self) -> Result<(), Abort> {
        let start = Instant::now();
        if start < self.next {
            return Ok(());
        }
        let r = self.areas.iter().try_for_each(Watched::check_now);
        let cost = start.elapsed();
        self.next = Instant::now() + cost.saturating_mul(10).max(Duration::from_millis(1));
        r.map_err(|(limit, detail)| Abort::Limit { limit, detail })
    }
}

/// Walk `root`, stopping at the first excess of entries, bytes (regular files
/// by length) or depth. Links are counted, never followed.
pub(crate) fn walk(root: &Path, max_entries: u64, max_bytes: u64) -> Option<Excess> {
    let mut tally = Tally { max_entries, max_bytes, entries: 0, bytes: 0 };
    let mut stack = vec![(root.to_path_buf(), 0usize, 0usize)];
    while let Some((dir, depth, rel_len)) = stack.pop() {
        // A directory removed meanwhile is fine; one the host cannot open
        // because its path is too long is a depth excess (it is checked
        // below, so this is a second line of defence).
        let list = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Some(Excess::Depth),
            Err(_) => continue,
        };
        for entry in list.flatten() {
            let name_len = entry.file_name().len();
            let len = if rel_len == 0 { name_len } else { rel_len + 1 + name_len };
            let Ok(meta) = fs::symlink_metadata(entry.path()) else { continue };
            if let Err(excess) = tally.add(depth + 1, len, meta.is_file().then_some(meta.len())) {
                return Some(excess);
            }
            if meta.is_dir() {
                stack.push((entry.path(), depth + 1, len));
            }
        }
    }
    None
}

/// Running totals of a walk or a copy against one directory's limits.
pub(crate) struct Tally {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub entries: u64,
    pub bytes: u64,
}

impl Tally {
    /// Count one entry `depth` directories down whose relative path is
    /// `path_len` bytes long, holding `file_len` bytes when it is a regular file.
    pub(crate) fn add(&mut self, depth: usize, path_len: usize, file_len: Option<u64>) -> Result<(), Excess> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(Excess::Entries);
        }
        if depth > MAX_DEPTH || path_len > MAX_PATH_BYTES {
            return Err(Excess::Depth);
        }
        self.bytes = self.bytes.saturating_add(file_len.unwrap_or(0));
        if self.bytes > self.max_bytes {
            return Err(Excess::Bytes);
        }
        Ok(())
    }
}
