//! Where the outputs of an SDK task wait until the attempt ends: in engine
//! memory up to [`OUTPUT_MEMORY`] bytes in total across all its outputs, and
//! beyond that in **one** spill file per attempt (anonymous: the store's
//! `scratch_file`, else an unlinked temp file).
//!
//! A store writer per output would hold up to its own buffer (64 KiB in the
//! local store) or its own spill file per output, so a task opening 10,000
//! small outputs made the engine hold 640 MiB, or 10,000 descriptors. Here a
//! task costs at most [`OUTPUT_MEMORY`] bytes of buffers and one descriptor,
//! whatever it writes. When the buffers would pass the budget they are all
//! appended to the spill file, each as an extent of its output (consecutive
//! extents of one output are merged), so an output is its extents in order,
//! then its buffer. When the attempt succeeds the outputs are streamed into
//! the store one at a time, in the order they were opened; when it fails the
//! spool is dropped and nothing is stored.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::store::{BlobRef, BlobStore};

/// Bytes of SDK output an attempt may hold in engine memory, across all its
/// outputs (docs/security.md).
pub(crate) const OUTPUT_MEMORY: usize = 16 << 20;

/// Bytes copied per read when an output is moved from the spill file to the store.
const COPY_CHUNK: usize = 1 << 20;

/// One output: its name, its spilled extents `(offset, len)` and its buffer.
struct Spooled {
    name: String,
    extents: Vec<(u64, u64)>,
    buf: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Spool {
    outputs: Vec<Spooled>,
    /// Bytes in all buffers.
    buffered: usize,
    /// The spill file and its length, once something was spilled.
    file: Option<(File, u64)>,
}

impl Spool {
    pub(crate) fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Open output `name`; its handle is its index.
    pub(crate) fn open(&mut self, name: String) -> usize {
        self.outputs.push(Spooled { name, extents: Vec::new(), buf: Vec::new() });
        self.outputs.len() - 1
    }

    /// Append `data` to output `h` (a valid handle).
    pub(crate) fn write(&mut self, store: Option<&dyn BlobStore>, h: usize, data: &[u8]) -> std::io::Result<()> {
        if self.buffered + data.len() <= OUTPUT_MEMORY {
            self.outputs[h].buf.extend_from_slice(data);
            self.buffered += data.len();
            return Ok(());
        }
        // Over the budget: every buffer goes to the spill file, then `data`.
        for i in 0..self.outputs.len() {
            let buf = std::mem::take(&mut self.outputs[i].buf);
            if !buf.is_empty() {
                self.spill(store, i, &buf)?;
            }
        }
        self.buffered = 0;
        if data.len() <= OUTPUT_MEMORY {
            self.outputs[h].buf.extend_from_slice(data);
            self.buffered = data.len();
            Ok(())
        } else {
            self.spill(store, h, data)
        }
    }

    /// Append `data` to the spill file as the next extent of output `h`.
    fn spill(&mut self, store: Option<&dyn BlobStore>, h: usize, data: &[u8]) -> std::io::Result<()> {
        let (file, len) = match &mut self.file {
            Some(f) => f,
            None => {
                let f = match store.and_then(|s| s.scratch_file()) {
                    Some(f) => f,
                    None => tempfile::tempfile()?,
                };
                self.file.insert((f, 0))
            }
        };
        file.write_all_at(data, *len)?;
        let at = *len;
        *len += data.len() as u64;
        let extents = &mut self.outputs[h].extents;
        match extents.last_mut() {
            Some((off, n)) if *off + *n == at => *n += data.len() as u64,
            _ => extents.push((at, data.len() as u64)),
        }
        Ok(())
    }

    /// Store every output, one at a time, in opening order: `(name, blob)`,
    /// or the name of the output that could not be stored and why.
    pub(crate) fn finish(self, store: &dyn BlobStore) -> Result<Vec<(String, BlobRef)>, (String, String)> {
        let mut out = Vec::with_capacity(self.outputs.len());
        let mut chunk = Vec::new();
        for o in self.outputs {
            let stored = (|| -> Result<BlobRef, String> {
                let mut w = store.put().map_err(|e| e.to_string())?;
                for &(mut off, mut n) in &o.extents {
                    let Some((file, _)) = &self.file else { return Err("the spill file is gone".into()) };
                    while n > 0 {
                        let k = (n as usize).min(COPY_CHUNK);
                        chunk.resize(k, 0);
                        file.read_exact_at(&mut chunk, off).map_err(|e| format!("cannot read the spill file: {e}"))?;
                        w.write_all(&chunk).map_err(|e| e.to_string())?;
                        off += k as u64;
                        n -= k as u64;
                    }
                }
                w.write_all(&o.buf).map_err(|e| e.to_string())?;
                w.finish().map_err(|e| e.to_string())
            })();
            match stored {
                Ok(blob) => out.push((o.name, blob)),
                Err(why) => return Err((o.name, why)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mem::MemStore;

    #[test]
    fn outputs_keep_their_bytes_in_order_across_the_memory_budget() {
        let store = MemStore::new();
        let mut s = Spool::default();
        let (a, b, c) = (s.open("a".into()), s.open("b".into()), s.open("c".into()));
        let big = vec![7u8; OUTPUT_MEMORY + 5];
        s.write(Some(&store), a, b"first ").unwrap();
        s.write(Some(&store), b, &vec![1u8; OUTPUT_MEMORY - 3]).unwrap();
        s.write(Some(&store), a, b"second ").unwrap(); // spills a and b
        s.write(Some(&store), c, &big).unwrap(); // straight to the file
        s.write(Some(&store), a, b"third").unwrap();
        assert!(s.buffered <= OUTPUT_MEMORY);
        let blobs = s.finish(&store).unwrap();
        let names: Vec<&str> = blobs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let read = |r: &BlobRef| {
            let mut v = vec![0u8; r.len as usize];
            let mut at = 0;
            while at < v.len() {
                at += store.read_at(&r.digest, at as u64, &mut v[at..]).unwrap();
            }
            v
        };
        assert_eq!(read(&blobs[0].1), b"first second third");
        assert_eq!(read(&blobs[1].1), vec![1u8; OUTPUT_MEMORY - 3]);
        assert_eq!(read(&blobs[2].1), big);
    }
}
