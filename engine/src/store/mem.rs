//! An in-memory [`BlobStore`], for tests and for runs that keep nothing.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::RwLock;

use super::{BlobRef, BlobStore, BlobWriter, Digest, Hasher, StoreResult};

#[derive(Default)]
pub struct MemStore {
    blobs: RwLock<HashMap<Digest, std::sync::Arc<Vec<u8>>>>,
    actions: RwLock<HashMap<Digest, Vec<u8>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// A copy of a blob's bytes.
    pub fn get(&self, d: &Digest) -> Option<Vec<u8>> {
        if *d == Digest::EMPTY {
            return Some(Vec::new());
        }
        self.blobs.read().ok()?.get(d).map(|b| b.to_vec())
    }
}

struct MemWriter<'a> {
    store: &'a MemStore,
    buf: Vec<u8>,
    hasher: Hasher,
}

impl Write for MemWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        self.hasher.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for MemWriter<'_> {
    fn finish(self: Box<Self>) -> StoreResult<BlobRef> {
        let MemWriter { store, buf, hasher } = *self;
        let r = hasher.finish();
        if r.len > 0 {
            let mut map = store.blobs.write().unwrap_or_else(|e| e.into_inner());
            map.entry(r.digest).or_insert_with(|| std::sync::Arc::new(buf));
        }
        Ok(r)
    }
    fn written(&self) -> u64 {
        self.buf.len() as u64
    }
}

impl BlobStore for MemStore {
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(MemWriter { store: self, buf: Vec::new(), hasher: Hasher::new() }))
    }

    fn read_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize> {
        if *digest == Digest::EMPTY {
            return Ok(0);
        }
        let map = self.blobs.read().unwrap_or_else(|e| e.into_inner());
        let blob = map.get(digest).ok_or(super::StoreError::Missing(*digest))?;
        let start = (offset as usize).min(blob.len());
        let n = buf.len().min(blob.len() - start);
        buf[..n].copy_from_slice(&blob[start..start + n]);
        Ok(n)
    }

    fn size(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        if *digest == Digest::EMPTY {
            return Ok(Some(0));
        }
        let map = self.blobs.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(digest).map(|b| b.len() as u64))
    }

    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_action(&self, key: &Digest) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.actions.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned())
    }

    fn put_action(&self, key: &Digest, record: &[u8]) -> StoreResult<()> {
        self.actions.write().unwrap_or_else(|e| e.into_inner()).entry(*key).or_insert_with(|| record.to_vec());
        Ok(())
    }
}
