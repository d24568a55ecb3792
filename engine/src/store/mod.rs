//! Content-addressed blob storage: the only way data moves between tasks.
//!
//! A blob is named by the sha256 of its bytes ([`Digest`]). The [`BlobStore`]
//! trait is the seam for backends: the embedded local store ([`local`]), and
//! through [`object`] an S3-compatible object store or a shared directory;
//! [`spec`] turns a `--store` value into one of them. The contract:
//!
//! * `put` streams bytes through a [`BlobWriter`]; nothing is visible under a
//!   digest until `finish` returns, and a writer dropped without `finish`
//!   leaves nothing behind (atomic writes).
//! * `read_at` is a ranged read, so a task can stream a blob larger than its
//!   own memory.
//! * Blobs are immutable; putting the same bytes twice is a no-op.
//! * `sync` makes everything finished so far durable (one fsync batch, not
//!   one per blob).
//! * The action cache lives behind the same trait: `put_action` stores a
//!   small record under a key (create-if-absent: the first record for a key
//!   wins), `get_action` reads it. A record is only ever written after the
//!   blobs it names are finished, and a reader checks that they exist, so a
//!   record can never lead to missing bytes.

pub(crate) mod index;
pub mod local;
pub mod mem;
pub mod object;
mod s3;
pub mod spec;

pub use spec::StoreSpec;

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// sha256 of a blob's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

/// Hashes a [`Digest`] by its first eight bytes: they are already uniformly
/// distributed, so hashing them again (SipHash) would only cost time.
#[derive(Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A digest hashes as one 32-byte write; fold anything else in.
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(w);
            if bytes.len() == 32 {
                break;
            }
        }
    }
}

/// A map keyed by digests.
pub type DigestMap<V> = std::collections::HashMap<Digest, V, std::hash::BuildHasherDefault<DigestHasher>>;

impl Digest {
    /// The digest of the empty blob (every store holds it implicitly).
    pub const EMPTY: Digest = Digest([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae,
        0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
    ]);

    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

// Hex in human-readable formats (JSON), written on the stack rather than in a
// `String` per digest; the 32 raw bytes in binary formats (the processes
// executor's frames).
impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sha256 digest")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                Digest::from_hex(s).ok_or_else(|| E::custom("invalid sha256 digest"))
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Digest, E> {
                let raw: [u8; 32] = b.try_into().map_err(|_| E::custom("invalid sha256 digest"))?;
                Ok(Digest(raw))
            }
        }
        if d.is_human_readable() { d.deserialize_str(Visit) } else { d.deserialize_bytes(Visit) }
    }
}

/// A blob reference as tasks pass it around: digest plus length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("store I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A `--store` value that names no store.
    #[error("invalid store `{spec}`: {why}")]
    Spec { spec: String, why: String },
    /// The store could not be opened (unreachable, no bucket, bad credentials, ...).
    #[error("cannot open the store {store}: {message}")]
    Open { store: String, message: String },
    /// A request to a remote store failed (after its bounded retries).
    #[error("store {store}: {message}")]
    Remote { store: String, message: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A content-addressed blob store. Implementations are shared between worker
/// threads, so every method takes `&self`.
pub trait BlobStore: Send + Sync {
    /// Start writing a new blob.
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>>;

    /// Read up to `buf.len()` bytes at `offset`; returns the number read (0 at the end).
    fn read_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize>;

    /// The blob's length, or `None` if it is not stored.
    fn size(&self, digest: &Digest) -> StoreResult<Option<u64>>;

    fn exists(&self, digest: &Digest) -> StoreResult<bool> {
        Ok(self.size(digest)?.is_some())
    }

    /// Make every finished blob durable.
    fn sync(&self) -> StoreResult<()>;

    /// Make every finished blob visible to other processes sharing the store
    /// (no fsync). Worker processes call this before reporting a result.
    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The action-cache record stored under `key`, if any. A record that was
    /// torn or corrupted is `None` (a miss), never an error.
    fn get_action(&self, key: &Digest) -> StoreResult<Option<Vec<u8>>>;

    /// Store `record` under `key` unless a record is already there. Visible to
    /// other processes after the next `flush`, durable after the next `sync`.
    fn put_action(&self, key: &Digest, record: &[u8]) -> StoreResult<()>;

    /// An empty anonymous file (no name on disk) for a blob built by
    /// random-access writes before it is stored, placed where
    /// [`BlobStore::put_file`] can take it without copying its bytes; `None`
    /// when this store has no such place (the caller uses a temp file).
    fn scratch_file(&self) -> Option<std::fs::File> {
        None
    }

    /// Store the first `len` bytes of `file` as a blob. The default streams
    /// them through [`BlobStore::put`]; a store may instead take over a file
    /// it made with [`BlobStore::scratch_file`] (the caller must not write
    /// to it afterwards).
    fn put_file(&self, file: &std::fs::File, len: u64) -> StoreResult<BlobRef> {
        stream_file(self.put()?, file, len)
    }

    /// Like [`BlobStore::put_file`] for a file whose blob reference the caller
    /// computed itself from exactly the bytes it wrote to `file` (the
    /// command-task runtime hashes a large `/out` file while it is written in
    /// order): a store that takes the file over trusts `r` instead of reading
    /// the file back to hash it. The default ignores `r` and hashes as
    /// `put_file` does.
    fn put_file_hashed(&self, file: &std::fs::File, r: BlobRef) -> StoreResult<BlobRef> {
        self.put_file(file, r.len)
    }

    /// An open file holding exactly the bytes of blob `digest`, already
    /// checked against its digest as [`BlobStore::read_at`] checks them, for
    /// a caller that reads the blob many times (a command task's `/in` file):
    /// its reads are then `pread`s on that file, with no lookup per read.
    /// `None` when the store keeps the blob elsewhere (in a pack, in memory);
    /// the caller then uses `read_at`.
    fn blob_file(&self, _digest: &Digest) -> StoreResult<Option<std::sync::Arc<std::fs::File>>> {
        Ok(None)
    }

    /// Convenience: store a whole buffer.
    fn put_bytes(&self, data: &[u8]) -> StoreResult<BlobRef> {
        let mut w = self.put()?;
        w.write_all(data).map_err(|e| StoreError::Io { path: "<blob writer>".into(), source: e })?;
        w.finish()
    }

    /// Convenience: a streaming reader over a whole blob.
    fn reader<'a>(&'a self, digest: &Digest) -> StoreResult<BlobReader<'a>>
    where
        Self: Sized,
    {
        let len = self.size(digest)?.ok_or(StoreError::Missing(*digest))?;
        Ok(BlobReader { store: self, digest: *digest, pos: 0, len })
    }
}

/// Copy the first `len` bytes of `file` into `w` and finish the blob.
pub(crate) fn stream_file(mut w: Box<dyn BlobWriter + '_>, file: &std::fs::File, len: u64) -> StoreResult<BlobRef> {
    use std::os::unix::fs::FileExt;
    let fail = |e: io::Error| StoreError::Io { path: "<scratch file>".into(), source: e };
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    let mut off = 0u64;
    while off < len {
        let want = (len - off).min(buf.len() as u64) as usize;
        let got = file.read_at(&mut buf[..want], off).map_err(fail)?;
        if got == 0 {
            return Err(fail(io::Error::new(io::ErrorKind::UnexpectedEof, "the file is shorter than its length")));
        }
        w.write_all(&buf[..got]).map_err(fail)?;
        off += got as u64;
    }
    w.finish()
}

/// Streaming writer for one blob. Dropping it without [`BlobWriter::finish`]
/// discards what was written.
pub trait BlobWriter: Write + Send {
    /// Seal the blob and return its reference. After this the bytes are
    /// readable by digest (and durable after the next [`BlobStore::sync`]).
    fn finish(self: Box<Self>) -> StoreResult<BlobRef>;
    /// Bytes written so far.
    fn written(&self) -> u64;
}

/// Sequential reader over a stored blob (see [`BlobStore::reader`]).
pub struct BlobReader<'a> {
    store: &'a dyn BlobStore,
    digest: Digest,
    pos: u64,
    len: u64,
}

impl BlobReader<'_> {
    pub fn for_store<'a>(store: &'a dyn BlobStore, digest: &Digest) -> StoreResult<BlobReader<'a>> {
        let len = store.size(digest)?.ok_or(StoreError::Missing(*digest))?;
        Ok(BlobReader { store, digest: *digest, pos: 0, len })
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = self.store.read_at(&self.digest, self.pos, buf).map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Incremental hasher: what a blob's [`BlobRef`] will be.
#[derive(Default)]
pub struct Hasher {
    h: Sha256,
    n: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, b: &[u8]) {
        self.h.update(b);
        self.n += b.len() as u64;
    }
    pub(crate) fn len(&self) -> u64 {
        self.n
    }
    pub fn finish(self) -> BlobRef {
        BlobRef { digest: Digest(self.h.finalize().into()), len: self.n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_constant() {
        assert_eq!(Digest::of(b""), Digest::EMPTY);
    }
}
