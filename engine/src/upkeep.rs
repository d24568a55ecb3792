//! Keeping a local store healthy: `engine store verify` re-hashes everything
//! in it, and `engine gc` removes what no recent run needs.
//!
//! Both read the on-disk layout of [`crate::store::local`] directly. `gc`
//! holds the store's lock exclusively (every open
//! [`crate::store::local::LocalStore`] holds it shared), so it waits for
//! running `engine run`s and no run starts while it rewrites the packs: a
//! concurrent run is never broken.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::Digest;
use crate::store::index::{self, Entry, PackIndex, Unusable};
use crate::store::local::{ACTION_HEADER, ACTION_MAGIC, HEADER, MAGIC, lock};

/// One pack record as found on disk.
struct Record {
    action: bool,
    /// Blob digest, or action key.
    name: Digest,
    /// Where the record starts in its pack.
    offset: u64,
    /// The whole record, header included.
    bytes: Vec<u8>,
    /// The record's value (blob bytes or action record).
    value: std::ops::Range<usize>,
}

/// What a pack holds: its valid records, and its problems.
struct PackScan {
    records: Vec<Record>,
    /// (record offset, value offset, what is wrong) for each record whose
    /// bytes do not hash to its name (the records after it are still read).
    bad: Vec<(u64, u64, String)>,
    /// Where the records stopped making sense (an unknown record kind: the
    /// rest of the pack cannot be framed), and why.
    lost: Option<(u64, String)>,
    /// Bytes after the last whole record that do not form a record (a torn
    /// write from a crash: ignored by readers).
    torn_tail: u64,
}

fn scan_pack(bytes: &[u8]) -> PackScan {
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let digest = |at: usize| {
        let mut d = [0u8; 32];
        d.copy_from_slice(&bytes[at..at + 32]);
        Digest(d)
    };
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let mut pos = 0usize;
    while pos + HEADER <= bytes.len() {
        let (magic, n) = (word(pos), word(pos + 4) as usize);
        let header = match magic {
            MAGIC => HEADER,
            ACTION_MAGIC => ACTION_HEADER,
            // The zeroed end of a region a killed process had allocated
            // (records are written magic last): a torn tail, not corruption.
            0 => break,
            _ => {
                let lost = Some((pos as u64, "unknown record kind".to_string()));
                return PackScan { records, bad, lost, torn_tail: 0 };
            }
        };
        if pos + header + n > bytes.len() {
            break;
        }
        let value = pos + header..pos + header + n;
        let want = if magic == MAGIC { digest(pos + 8) } else { digest(pos + 40) };
        let got = Digest::of(&bytes[value.clone()]);
        if got != want {
            let what = if magic == MAGIC { "blob" } else { "action record" };
            let why = format!("{what} {} has bytes that hash to {got}", digest(pos + 8));
            bad.push((pos as u64, value.start as u64, why));
            pos += header + n;
            continue;
        }
        records.push(Record {
            action: magic == ACTION_MAGIC,
            name: digest(pos + 8),
            offset: pos as u64,
            bytes: bytes[pos..pos + header + n].to_vec(),
            value: header..header + n,
        });
        pos += header + n;
    }
    PackScan { records, bad, lost: None, torn_tail: (bytes.len() - pos) as u64 }
}

fn packs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("packs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("pack"))
        .collect();
    v.sort();
    Ok(v)
}

fn objects(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for sub in fs::read_dir(dir.join("objects"))? {
        let sub = sub?.path();
        if sub.is_dir() {
            for f in fs::read_dir(&sub)? {
                v.push(f?.path());
            }
        }
    }
    v.sort();
    Ok(v)
}

fn hash_file(p: &Path) -> std::io::Result<Digest> {
    let mut f = File::open(p)?;
    let mut h = crate::store::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            return Ok(h.finish().digest);
        }
        h.update(&buf[..n]);
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub blobs: u64,
    pub actions: u64,
    pub bytes: u64,
    /// Each problem, naming the file and what is wrong.
    pub problems: Vec<String>,
    /// Harmless findings (torn pack tails left by a crash).
    pub notes: Vec<String>,
}

/// Re-hash every blob and action record of the local store in `dir`, and
/// check that every action record names blobs that exist.
pub fn verify(dir: &Path) -> std::io::Result<VerifyReport> {
    let mut r = VerifyReport::default();
    let mut have: HashSet<Digest> = HashSet::new();
    let mut actions: Vec<(Digest, Vec<u8>, PathBuf)> = Vec::new();
    for p in packs(dir)? {
        let bytes = fs::read(&p)?;
        let scan = scan_pack(&bytes);
        check_index(&p, bytes.len() as u64, &scan, &mut r);
        for rec in scan.records {
            r.bytes += rec.value.len() as u64;
            if rec.action {
                r.actions += 1;
                actions.push((rec.name, rec.bytes[rec.value].to_vec(), p.clone()));
            } else {
                r.blobs += 1;
                have.insert(rec.name);
            }
        }
        for (off, _, what) in &scan.bad {
            r.problems.push(format!("{} at offset {off}: {what}", p.display()));
        }
        if let Some((off, what)) = &scan.lost {
            r.problems.push(format!("{} at offset {off}: {what}", p.display()));
        }
        if scan.torn_tail > 0 {
            r.notes.push(format!("{}: a torn tail of {} bytes (from a crash; ignored)", p.display(), scan.torn_tail));
        }
    }
    for p in objects(dir)? {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let got = hash_file(&p)?;
        r.blobs += 1;
        r.bytes += fs::metadata(&p)?.len();
        match Digest::from_hex(&name) {
            Some(d) if d == got => {
                have.insert(d);
            }
            _ => r.problems.push(format!("{}: its bytes hash to {got}", p.display())),
        }
    }
    for (key, value, pack) in actions {
        match crate::task::cache::ActionRecord::decode(&value) {
            None => r.problems.push(format!("{}: action record {key} is not a valid record", pack.display())),
            Some(rec) => {
                for o in rec.outputs.iter().filter(|o| o.blob.len > 0 && !have.contains(&o.blob.digest)) {
                    r.problems.push(format!(
                        "{}: action record {key} names output `{}` = {}, which is not in the store",
                        pack.display(),
                        o.name,
                        o.blob.digest
                    ));
                }
            }
        }
    }
    Ok(r)
}

/// The index entries of the records of `scan` that lie in the first
/// `pack_len` bytes of their pack: (blobs, actions), sorted.
fn entries_of(records: &[Record], pack_len: u64) -> (Vec<Entry>, Vec<Entry>) {
    let (mut blobs, mut actions) = (Vec::new(), Vec::new());
    for rec in records.iter().filter(|r| r.offset + r.value.end as u64 <= pack_len) {
        let e = Entry { name: rec.name, offset: rec.offset + rec.value.start as u64, len: rec.value.len() as u32 };
        if rec.action { actions.push(e) } else { blobs.push(e) }
    }
    blobs.sort_unstable_by_key(|e| e.name.0);
    actions.sort_unstable_by_key(|e| e.name.0);
    (blobs, actions)
}

/// Check the persisted index of the pack at `pack` (`pack_len` bytes,
/// scanned as `scan`): one that is unusable is a note (a store ignores it
/// and scans the pack), one that names other records than the pack holds
/// is a problem.
fn check_index(pack: &Path, pack_len: u64, scan: &PackScan, r: &mut VerifyReport) {
    let path = index::path_for(pack);
    let idx = match PackIndex::load(pack, pack_len) {
        Ok(idx) => idx,
        Err(Unusable::Missing) => return,
        Err(Unusable::Corrupt) => {
            r.notes.push(format!("{}: not a valid index (ignored: its pack is scanned)", path.display()));
            return;
        }
        Err(Unusable::PastEnd { covers, pack_len }) => {
            r.notes.push(format!(
                "{}: covers {covers} bytes of a pack of {pack_len} (ignored: its pack is scanned)",
                path.display()
            ));
            return;
        }
    };
    // Corrupt records and what follows a record that cannot be framed are
    // reported on their own.
    let upto = scan.lost.as_ref().map_or(u64::MAX, |(off, _)| *off);
    let listed = |e: &Entry| e.offset < upto && !scan.bad.iter().any(|b| b.1 == e.offset);
    let (mut blobs, mut actions) = idx.entries();
    blobs.retain(listed);
    actions.retain(listed);
    blobs.sort_unstable_by_key(|e| e.name.0);
    actions.sort_unstable_by_key(|e| e.name.0);
    if (blobs, actions) != entries_of(&scan.records, idx.pack_len()) {
        r.problems.push(format!(
            "{}: does not list the records of the first {} bytes of its pack",
            path.display(),
            idx.pack_len()
        ));
    }
}

/// What `gc` removed (or, with `dry_run`, would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    pub kept_runs: usize,
    pub removed_runs: usize,
    pub removed_blobs: u64,
    pub removed_actions: u64,
    pub removed_bytes: u64,
}

/// Remove from the local store in `dir` everything the last `keep` runs of
/// each pipeline (recorded under `dir/runs`) do not reach: their outputs,
/// the action records of their tasks and the blobs those name. Older run
/// directories (logs) go too. Holds the store's lock exclusively.
pub fn gc(dir: &Path, keep: usize, dry_run: bool) -> std::io::Result<GcReport> {
    let _lock = lock(dir, true)?;
    let mut report = GcReport::default();
    let (live_runs, dead_runs) = runs_to_keep(&dir.join("runs"), keep);
    report.kept_runs = live_runs.len();
    report.removed_runs = dead_runs.len();
    let mut live_blobs: HashSet<Digest> = HashSet::new();
    let mut live_keys: HashSet<Digest> = HashSet::new();
    for run in &live_runs {
        let Ok(bytes) = fs::read(run.join("tasks.bin")) else { continue };
        let Ok(h) = postcard::from_bytes::<crate::history::RunHistory>(&bytes) else { continue };
        for t in h.tasks {
            live_blobs.extend(t.outputs.iter().map(|o| o.blob.digest));
            live_keys.extend(t.key);
        }
    }
    // Blobs named by the live action records stay too.
    let mut scans = Vec::new();
    for p in packs(dir)? {
        let scan = scan_pack(&fs::read(&p)?);
        for rec in scan.records.iter().filter(|r| r.action && live_keys.contains(&r.name)) {
            if let Some(a) = crate::task::cache::ActionRecord::decode(&rec.bytes[rec.value.clone()]) {
                live_blobs.extend(a.outputs.iter().map(|o| o.blob.digest));
            }
        }
        scans.push((p, scan));
    }
    let mut kept: Vec<u8> = Vec::new();
    let mut kept_records: Vec<Record> = Vec::new();
    let mut seen: HashSet<(bool, Digest)> = HashSet::new();
    for (_, scan) in &mut scans {
        for rec in std::mem::take(&mut scan.records) {
            let live = if rec.action { live_keys.contains(&rec.name) } else { live_blobs.contains(&rec.name) };
            if live && seen.insert((rec.action, rec.name)) {
                kept.extend_from_slice(&rec.bytes);
                kept_records.push(Record { offset: (kept.len() - rec.bytes.len()) as u64, bytes: Vec::new(), ..rec });
            } else {
                report.removed_bytes += rec.value.len() as u64;
                if rec.action {
                    report.removed_actions += 1;
                } else {
                    report.removed_blobs += 1;
                }
            }
        }
    }
    let mut dead_objects = Vec::new();
    for p in objects(dir)? {
        let live =
            p.file_name().and_then(|n| Digest::from_hex(&n.to_string_lossy())).is_some_and(|d| live_blobs.contains(&d));
        if !live {
            report.removed_blobs += 1;
            report.removed_bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            dead_objects.push(p);
        }
    }
    if dry_run {
        return Ok(report);
    }
    // The new pack is complete and durable before any old one goes.
    if !kept.is_empty() {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let tmp = dir.join("tmp").join(format!("gc-{nanos}.pack"));
        let mut f = File::create(&tmp)?;
        f.write_all(&kept)?;
        f.sync_all()?;
        let pack = dir.join("packs").join(format!("gc-{nanos}.pack"));
        fs::rename(&tmp, &pack)?;
        // Its index, so the next open does not read it (best effort).
        let (blobs, actions) = entries_of(&kept_records, kept.len() as u64);
        let _ = index::write(&pack, kept.len() as u64, &blobs, &actions);
    }
    for (p, _) in &scans {
        fs::remove_file(p)?;
    }
    // The indexes of the packs removed (and any other without its pack).
    for e in fs::read_dir(dir.join("packs"))?.flatten() {
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str());
        if matches!(ext, Some("idx" | "idx-tmp")) && !p.with_extension("pack").exists() {
            fs::remove_file(&p)?;
        }
    }
    for p in dead_objects {
        fs::remove_file(p)?;
    }
    for r in dead_runs {
        fs::remove_dir_all(r)?;
    }
    if let Ok(d) = File::open(dir.join("packs")) {
        d.sync_all()?;
    }
    Ok(report)
}

/// The run directories to keep (the last `keep` finished runs of each
/// pipeline, and the last run started of each, whose logs `engine logs`
/// shows) and the ones to remove (older runs, and runs killed before they
/// finished).
fn runs_to_keep(runs: &Path, keep: usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut by_pipeline: HashMap<String, Vec<String>> = HashMap::new();
    let started: HashSet<String> = fs::read_dir(runs.join("latest"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "started"))
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|s| s.trim().to_string())
        .collect();
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for e in fs::read_dir(runs).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "latest" || !e.path().is_dir() {
            continue;
        }
        let h = fs::read(e.path().join("tasks.bin"))
            .ok()
            .and_then(|b| postcard::from_bytes::<crate::history::RunHistory>(&b).ok());
        match h {
            Some(h) => by_pipeline.entry(h.pipeline.clone()).or_default().push(name),
            None if started.contains(&name) => live.push(e.path()),
            None => dead.push(e.path()),
        }
    }
    for (_, mut ids) in by_pipeline {
        ids.sort_by_key(|id| crate::history::run_order(id));
        let cut = ids.len().saturating_sub(keep);
        for (i, id) in ids.into_iter().enumerate() {
            if i < cut { dead.push(runs.join(id)) } else { live.push(runs.join(id)) }
        }
    }
    (live, dead)
}
