//! The persisted index of a local pack: `packs/NAME.idx` beside `packs/NAME.pack`.
//!
//! Opening a store used to read and re-hash every record of every pack. A
//! pack's index lists where each of its records is (blob digest or action
//! key → offset and length of the value), for the first `pack_len` bytes of
//! the pack, so opening a store maps the indexes and checks their checksums
//! instead, and only the bytes of a pack past `pack_len` (a pack without an
//! index, or one that grew after its index was written) are scanned and
//! hashed as before.
//!
//! An index is an optimisation, never a source of truth: one that is
//! missing, torn, fails its checksum or covers more bytes than its pack has
//! is ignored and the pack is scanned. The records it names are checked when
//! they are read: a blob against its digest, once per process, an action
//! record against the sha256 in its header, at every lookup (see
//! [`super::local`]).
//!
//! # Format (little-endian)
//!
//! ```text
//! magic u32 "ENX1" | version u32 | pack_len u64
//! blob table | action table
//! crc32 u32 of every byte before it
//! ```
//!
//! A table is `count u64 | bits u32 | 0u32 | dir: (2^bits + 1) u32 | count entries`,
//! an entry `name [32] | offset u64 | len u32` (44 bytes), the value's offset
//! in the pack and its length. Entries are grouped by bucket, the top `bits`
//! bits of the name (in any order within a bucket); `dir[b]` is the first
//! entry of bucket `b`, so a lookup reads two directory words and the few
//! entries of one bucket (digests are uniform: `bits` is chosen for two to
//! four entries per bucket).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use super::Digest;

const MAGIC: u32 = 0x454e_5831; // "ENX1"
const VERSION: u32 = 1;
const HEAD: usize = 16;
const TABLE_HEAD: usize = 16;
const ENTRY: usize = 44;
const MAX_BITS: u32 = 24;

/// One record of a pack: its name (blob digest or action key), and where
/// its value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: Digest,
    pub offset: u64,
    pub len: u32,
}

/// The index file of a pack.
pub(crate) fn path_for(pack: &Path) -> PathBuf {
    pack.with_extension("idx")
}

/// Where a table lies in the index file.
#[derive(Clone, Copy)]
struct Table {
    count: usize,
    bits: u32,
    dir: usize,
    entries: usize,
}

/// A pack's index, mapped read-only and checked.
pub(crate) struct PackIndex {
    map: Mmap,
    /// Bytes of the pack it covers (whole records).
    pack_len: u64,
    blobs: Table,
    actions: Table,
}

/// Why an index was not used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    Missing,
    /// Torn, not an index, or a checksum that does not match.
    Corrupt,
    /// It covers more bytes than the pack has.
    PastEnd {
        covers: u64,
        pack_len: u64,
    },
}

impl PackIndex {
    /// Map and check the index of the pack at `pack`, whose length is
    /// `pack_len` now.
    pub(crate) fn load(pack: &Path, pack_len: u64) -> Result<PackIndex, Unusable> {
        let file = File::open(path_for(pack)).map_err(|_| Unusable::Missing)?;
        let len = file.metadata().map_err(|_| Unusable::Missing)?.len() as usize;
        if len < HEAD + 2 * TABLE_HEAD + 4 {
            return Err(Unusable::Corrupt);
        }
        // SAFETY: index files are written whole under a temporary name and
        // renamed into place, never changed afterwards; `engine gc`, which
        // removes them, cannot run while a store holds its shared lock.
        let map = unsafe { MmapOptions::new().len(len).populate().map(&file) }.map_err(|_| Unusable::Missing)?;
        let body = &map[..len - 4];
        if u32_at(&map, len - 4) != crc32fast::hash(body) || u32_at(body, 0) != MAGIC || u32_at(body, 4) != VERSION {
            return Err(Unusable::Corrupt);
        }
        let covers = u64_at(body, 8);
        let blobs = table_at(body, HEAD).ok_or(Unusable::Corrupt)?;
        let actions = table_at(body, blobs.entries + blobs.count * ENTRY).ok_or(Unusable::Corrupt)?;
        if actions.entries + actions.count * ENTRY != body.len() {
            return Err(Unusable::Corrupt);
        }
        if covers > pack_len {
            return Err(Unusable::PastEnd { covers, pack_len });
        }
        Ok(PackIndex { map, pack_len: covers, blobs, actions })
    }

    pub(crate) fn pack_len(&self) -> u64 {
        self.pack_len
    }

    /// Where the blob `d` is, if this index names it.
    pub(crate) fn blob(&self, d: &Digest) -> Option<(u64, u32)> {
        self.find(self.blobs, d)
    }

    /// Where the action record under `key` is, if this index names it.
    pub(crate) fn action(&self, key: &Digest) -> Option<(u64, u32)> {
        self.find(self.actions, key)
    }

    /// Every entry of both tables (for `engine store verify`).
    pub(crate) fn entries(&self) -> (Vec<Entry>, Vec<Entry>) {
        let all =
            |t: Table| -> Vec<Entry> { (0..t.count).map(|i| entry_at(&self.map, t.entries + i * ENTRY)).collect() };
        (all(self.blobs), all(self.actions))
    }

    fn find(&self, t: Table, d: &Digest) -> Option<(u64, u32)> {
        let b = bucket(d, t.bits);
        let (lo, hi) = (u32_at(&self.map, t.dir + 4 * b) as usize, u32_at(&self.map, t.dir + 4 * b + 4) as usize);
        for i in lo..hi.min(t.count) {
            let at = t.entries + i * ENTRY;
            if self.map[at..at + 32] == d.0 {
                let e = entry_at(&self.map, at);
                // An entry past what the index covers is not believed.
                let end = e.offset.checked_add(e.len as u64)?;
                return (end <= self.pack_len).then_some((e.offset, e.len));
            }
        }
        None
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn entry_at(b: &[u8], at: usize) -> Entry {
    let mut name = [0u8; 32];
    name.copy_from_slice(&b[at..at + 32]);
    Entry { name: Digest(name), offset: u64_at(b, at + 32), len: u32_at(b, at + 40) }
}

/// The bucket of `d` in a directory of `2^bits` buckets: its top bits.
fn bucket(d: &Digest, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&d.0[..8]);
    (u64::from_be_bytes(w) >> (64 - bits)) as usize
}

/// Check the table at `at` of `body` fits it, with a directory whose words
/// never decrease and end at `count`; `None` if not.
fn table_at(body: &[u8], at: usize) -> Option<Table> {
    if at + TABLE_HEAD > body.len() {
        return None;
    }
    let count = usize::try_from(u64_at(body, at)).ok()?;
    let bits = u32_at(body, at + 8);
    if bits > MAX_BITS {
        return None;
    }
    let dir = at + TABLE_HEAD;
    let words = (1usize << bits) + 1;
    let entries = dir + 4 * words;
    let end = count.checked_mul(ENTRY)?.checked_add(entries)?;
    if end > body.len() {
        return None;
    }
    let mut last = 0;
    for i in 0..words {
        let w = u32_at(body, dir + 4 * i);
        if w < last || w as usize > count {
            return None;
        }
        last = w;
    }
    (last as usize == count).then_some(Table { count, bits, dir, entries })
}

/// Directory bits for `count` entries: about two entries per bucket.
fn bits_for(count: usize) -> u32 {
    let mut bits = 0;
    while bits < MAX_BITS && (2usize << bits) * 2 <= count {
        bits += 1;
    }
    bits
}

fn put_table(out: &mut Vec<u8>, entries: &[Entry]) {
    // A counting sort by bucket: the counts are the directory, and a lookup
    // compares whole names within a bucket, so their order there is free.
    let bits = bits_for(entries.len());
    let mut dir = vec![0u32; (1usize << bits) + 1];
    for e in entries {
        dir[bucket(&e.name, bits) + 1] += 1;
    }
    for b in 1..dir.len() {
        dir[b] += dir[b - 1];
    }
    let mut slot: Vec<u32> = dir[..dir.len() - 1].to_vec();
    let mut order = vec![0u32; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let s = &mut slot[bucket(&e.name, bits)];
        order[*s as usize] = i as u32;
        *s += 1;
    }
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for w in &dir {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for &i in &order {
        let e = &entries[i as usize];
        let mut rec = [0u8; ENTRY];
        rec[..32].copy_from_slice(&e.name.0);
        rec[32..40].copy_from_slice(&e.offset.to_le_bytes());
        rec[40..].copy_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&rec);
    }
}

/// The bytes of an index covering the first `pack_len` bytes of a pack.
pub(crate) fn encode(pack_len: u64, blobs: &[Entry], actions: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + 2 * TABLE_HEAD + (blobs.len() + actions.len()) * (ENTRY + 2) + 16);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&pack_len.to_le_bytes());
    put_table(&mut out, blobs);
    put_table(&mut out, actions);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Write the index of the pack at `pack` (whose first `pack_len` bytes hold
/// exactly these records and are durable): under a temporary name, then
/// renamed over any older index, so a reader sees a whole index or none.
pub(crate) fn write(pack: &Path, pack_len: u64, blobs: &[Entry], actions: &[Entry]) -> io::Result<()> {
    let bytes = encode(pack_len, blobs, actions);
    let tmp = pack.with_extension("idx-tmp");
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        drop(f);
        std::fs::rename(&tmp, path_for(pack))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize, salt: &str) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: Digest::of(format!("{salt}{i}").as_bytes()),
                offset: 40 + i as u64 * 100,
                len: i as u32,
            })
            .collect()
    }

    #[test]
    fn every_entry_is_found_and_nothing_else() {
        for n in [0, 1, 2, 3, 7, 100, 5000] {
            let dir = tempfile::tempdir().unwrap();
            let pack = dir.path().join("p.pack");
            let (mut b, mut a) = (entries(n, "b"), entries(n / 2, "a"));
            write(&pack, 1 << 40, &b, &a).unwrap();
            b.sort_unstable_by_key(|e| e.name.0);
            a.sort_unstable_by_key(|e| e.name.0);
            let idx = PackIndex::load(&pack, 1 << 40).unwrap();
            for e in &b {
                assert_eq!(idx.blob(&e.name), Some((e.offset, e.len)));
                assert_eq!(idx.action(&e.name), None);
            }
            for e in &a {
                assert_eq!(idx.action(&e.name), Some((e.offset, e.len)));
            }
            assert_eq!(idx.blob(&Digest::of(b"absent")), None);
            let (mut gb, mut ga) = idx.entries();
            gb.sort_unstable_by_key(|e| e.name.0);
            ga.sort_unstable_by_key(|e| e.name.0);
            assert_eq!((gb, ga), (b, a));
            assert!(!dir.path().join("p.idx-tmp").exists());
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_makes_the_index_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("p.pack");
        write(&pack, 1000, &entries(3, "b"), &entries(2, "a")).unwrap();
        let good = std::fs::read(path_for(&pack)).unwrap();
        for at in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(path_for(&pack), &bad).unwrap();
            assert_eq!(PackIndex::load(&pack, 1000).err(), Some(Unusable::Corrupt), "byte {at}");
        }
        std::fs::write(path_for(&pack), &good[..good.len() - 1]).unwrap();
        assert_eq!(PackIndex::load(&pack, 1000).err(), Some(Unusable::Corrupt));
        std::fs::write(path_for(&pack), &good).unwrap();
        assert_eq!(PackIndex::load(&pack, 999).err(), Some(Unusable::PastEnd { covers: 1000, pack_len: 999 }));
        assert!(PackIndex::load(&pack, 1000).is_ok());
    }
}
