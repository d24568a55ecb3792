//! A [`BlobStore`] over any `object_store` backend: S3-compatible servers
//! (`s3://`), a shared directory (`file://`) and memory (tests).
//!
//! # Layout
//!
//! ```text
//! PREFIX/engine-store.json   marker, also the probe for create-if-absent writes
//! PREFIX/blobs/<64 hex>      one object per blob, named by its sha256
//! PREFIX/actions/<64 hex>    one action-cache record per key, written create-if-absent
//! ```
//!
//! # Writes
//!
//! A writer spools to a temp file under the local cache while hashing, so
//! nothing reaches the backend before `finish`: a writer dropped early leaves
//! nothing behind, anywhere. `finish` uploads a blob of at most
//! [`PART_SIZE`] with one create-if-absent PUT (`If-None-Match: *`); "already
//! exists" is success, since the key is the content's digest. A larger blob
//! gets a HEAD and, if absent, a multipart upload in `PART_SIZE` parts (S3 has
//! no create-if-absent multipart; overwriting identical bytes is harmless).
//! The spooled file then becomes the cached copy, so a task reading its own
//! upstream's output on the same host never downloads it.
//!
//! # Reads
//!
//! The first read of a blob downloads it in ranged GETs of `PART_SIZE` (each
//! request bounded by the client's timeout, however large the blob) into
//! `CACHE/blobs/<store id>/<hex>`, checks its sha256 and length (a mismatch is
//! [`StoreError::Corrupt`] naming the digest), and renames it into place;
//! later `read_at`s are ranged reads of that file. The cache is per store
//! (a cached digest proves the blob is in *this* store) and immutable:
//! blobs never change. Concurrent downloads of one digest in a process are
//! deduplicated.
//!
//! The [`BlobStore`] trait is synchronous; a small private tokio runtime
//! drives the backend's async API. `sync` and `flush` are no-ops: a finished
//! PUT is durable and visible to every host.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest as _, Sha256};

use super::{BlobRef, BlobStore, BlobWriter, Digest, Hasher, StoreError, StoreResult};

/// Upload part and download range size; blobs up to this size go up in one PUT.
pub const PART_SIZE: usize = 8 << 20;
/// Open cache files kept per store (reads of one blob come in many chunks).
const OPEN_FILES: usize = 256;
const MARKER: &str = "engine-store.json";
const MARKER_BODY: &str = "{\"engine_store\": 1}\n";

pub struct ObjectBlobStore {
    backend: Arc<dyn ObjectStore>,
    /// `""` or `"a/b/"`: prepended to every key.
    prefix: String,
    /// How the user named the store (in errors).
    name: String,
    rt: tokio::runtime::Runtime,
    /// Verified copies of this store's blobs.
    cache: PathBuf,
    /// Spooled uploads and downloads in progress (same filesystem as `cache`).
    tmp: PathBuf,
    open_files: Mutex<HashMap<Digest, Arc<File>>>,
    downloads: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io { path: path.display().to_string(), source }
}

impl ObjectBlobStore {
    /// Open a store on `backend` under `prefix`. `name` is the store as the
    /// user wrote it; `identity` names the stored data uniquely (for S3 it
    /// includes the endpoint), and its hash names the read cache under
    /// `cache_dir/blobs`. Checks
    /// that the backend is reachable, writable, and refuses to overwrite on
    /// a create-if-absent PUT: one request when the store already exists.
    pub fn open(
        backend: Arc<dyn ObjectStore>,
        prefix: &str,
        name: &str,
        identity: &str,
        cache_dir: &Path,
    ) -> StoreResult<Self> {
        let open_err = |message: String| StoreError::Open { store: name.to_string(), message };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("engine-store-io")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start the I/O runtime: {e}")))?;
        let id = hex::encode(&Sha256::digest(identity.as_bytes())[..8]);
        let blobs = cache_dir.join("blobs");
        let cache = blobs.join(id);
        let tmp = blobs.join("tmp");
        for d in [&cache, &tmp] {
            fs::create_dir_all(d)
                .map_err(|e| open_err(format!("cannot create the blob cache {}: {e}", d.display())))?;
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{}/", prefix.trim_matches('/')) };
        let store = ObjectBlobStore {
            backend,
            prefix,
            name: name.to_string(),
            rt,
            cache,
            tmp,
            open_files: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
        };
        store.probe().map_err(open_err)?;
        Ok(store)
    }

    /// Create the marker if absent; if this call created it, a second
    /// create-if-absent must be refused, or the server ignores `If-None-Match`.
    fn probe(&self) -> Result<(), String> {
        let key = Key::from(format!("{}{MARKER}", self.prefix));
        let create = || {
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            self.rt.block_on(self.backend.put_opts(&key, PutPayload::from_static(MARKER_BODY.as_bytes()), opts))
        };
        match create() {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(explain(&e)),
            Ok(_) => match create() {
                Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(explain(&e)),
                Ok(_) => Err("the server ignored `If-None-Match: *` (it overwrote an existing object); the engine needs create-if-absent writes (conditional PUT)".into()),
            },
        }
    }

    fn key(&self, d: &Digest) -> Key {
        Key::from(format!("{}blobs/{}", self.prefix, d.to_hex()))
    }

    fn action_key(&self, k: &Digest) -> Key {
        Key::from(format!("{}actions/{}", self.prefix, k.to_hex()))
    }

    fn cache_path(&self, d: &Digest) -> PathBuf {
        self.cache.join(d.to_hex())
    }

    fn remote(&self, what: String, e: &object_store::Error) -> StoreError {
        StoreError::Remote { store: self.name.clone(), message: format!("{what}: {}", explain(e)) }
    }

    fn upload(&self, r: &BlobRef, spool: &Path) -> StoreResult<()> {
        let key = self.key(&r.digest);
        if r.len <= PART_SIZE as u64 {
            let data = fs::read(spool).map_err(|e| io_err(spool, e))?;
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            return match self.rt.block_on(self.backend.put_opts(&key, PutPayload::from(data), opts)) {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(self.remote(format!("cannot upload blob {}", r.digest), &e)),
            };
        }
        match self.rt.block_on(self.backend.head(&key)) {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.remote(format!("cannot look up blob {}", r.digest), &e)),
        }
        let mut file = File::open(spool).map_err(|e| io_err(spool, e))?;
        let fail = |e: &object_store::Error| self.remote(format!("cannot upload blob {}", r.digest), e);
        self.rt.block_on(async {
            let mut up = self.backend.put_multipart(&key).await.map_err(|e| fail(&e))?;
            let parts = async {
                let mut left = r.len;
                while left > 0 {
                    let n = left.min(PART_SIZE as u64) as usize;
                    let mut part = vec![0u8; n];
                    file.read_exact(&mut part).map_err(|e| io_err(spool, e))?;
                    up.put_part(PutPayload::from(part)).await.map_err(|e| fail(&e))?;
                    left -= n as u64;
                }
                up.complete().await.map_err(|e| fail(&e))?;
                Ok::<(), StoreError>(())
            }
            .await;
            if parts.is_err() {
                // Best effort: the error that matters is the one above.
                let _ = up.abort().await;
            }
            parts
        })
    }

    /// The verified local copy of a blob, downloading it on first use.
    fn local_copy(&self, d: &Digest) -> StoreResult<Arc<File>> {
        if let Some(f) = self.open_files.lock().unwrap_or_else(|e| e.into_inner()).get(d) {
            return Ok(f.clone());
        }
        let path = self.cache_path(d);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // One download per digest at a time; the others wait and then find the file.
                let gate = self.downloads.lock().unwrap_or_else(|e| e.into_inner()).entry(*d).or_default().clone();
                let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
                if !path.exists() {
                    self.download(d, &path)?;
                }
                self.downloads.lock().unwrap_or_else(|e| e.into_inner()).remove(d);
                File::open(&path).map_err(|e| io_err(&path, e))?
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        let file = Arc::new(file);
        let mut open = self.open_files.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= OPEN_FILES {
            open.clear();
        }
        open.insert(*d, file.clone());
        Ok(file)
    }

    fn download(&self, d: &Digest, dest: &Path) -> StoreResult<()> {
        let key = self.key(d);
        let len = match self.rt.block_on(self.backend.head(&key)) {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Err(StoreError::Missing(*d)),
            Err(e) => return Err(self.remote(format!("cannot look up blob {d}"), &e)),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp).map_err(|e| io_err(&self.tmp, e))?;
        let mut hasher = Hasher::new();
        {
            let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            let mut at = 0u64;
            while at < len {
                let end = (at + PART_SIZE as u64).min(len);
                let bytes = self
                    .rt
                    .block_on(self.backend.get_range(&key, at..end))
                    .map_err(|e| self.remote(format!("cannot download blob {d}"), &e))?;
                if bytes.is_empty() {
                    break;
                }
                hasher.update(&bytes);
                w.write_all(&bytes).map_err(|e| io_err(&self.tmp, e))?;
                at += bytes.len() as u64;
            }
            w.flush().map_err(|e| io_err(&self.tmp, e))?;
        }
        let got = hasher.finish();
        if got.digest != *d {
            return Err(StoreError::Corrupt(format!(
                "blob {d} in {} has other content (sha256 {}, {} bytes)",
                self.name, got.digest, got.len
            )));
        }
        tmp.persist(dest).map_err(|e| io_err(dest, e.error))?;
        Ok(())
    }
}

/// A user-facing reading of a backend error: what went wrong and what to do,
/// without the backend's Debug output.
pub(crate) fn explain(e: &object_store::Error) -> String {
    // The whole cause chain: "error sending request" alone does not say
    // whether the connection was refused or timed out.
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    let code = xml_tag(&text, "Code");
    let detail = match (code, xml_tag(&text, "Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => text.clone(),
    };
    match e {
        object_store::Error::NotFound { .. } if code == Some("NoSuchBucket") => {
            "the bucket does not exist (NoSuchBucket); create it first".to_string()
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => format!(
            "the server refused the credentials ({detail}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        ),
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => format!(
            "the server does not support create-if-absent writes (PUT with `If-None-Match: *`), which the engine needs: {detail}"
        ),
        _ if code == Some("NotImplemented") => format!(
            "the server does not support create-if-absent writes (PUT with `If-None-Match: *`), which the engine needs: {detail}"
        ),
        _ => detail,
    }
}

/// The text of `<tag>…</tag>` in an S3 XML error body quoted in `text`.
fn xml_tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(&text[start..end])
}

struct ObjectWriter<'a> {
    store: &'a ObjectBlobStore,
    spool: BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
}

impl Write for ObjectWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.spool.write(b)?;
        self.hasher.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()
    }
}

impl BlobWriter for ObjectWriter<'_> {
    fn finish(self: Box<Self>) -> StoreResult<BlobRef> {
        let ObjectWriter { store, spool, hasher } = *self;
        let r = hasher.finish();
        if r.len == 0 {
            return Ok(r);
        }
        let spool = spool.into_inner().map_err(|e| io_err(&store.tmp, e.into_error()))?;
        let dest = store.cache_path(&r.digest);
        if dest.exists() {
            // Uploaded (or downloaded and verified) earlier: it is in the store.
            return Ok(r);
        }
        store.upload(&r, spool.path())?;
        spool.persist(&dest).map_err(|e| io_err(&dest, e.error))?;
        Ok(r)
    }
    fn written(&self) -> u64 {
        self.hasher.len()
    }
}

impl BlobStore for ObjectBlobStore {
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>> {
        let spool = tempfile::NamedTempFile::new_in(&self.tmp).map_err(|e| io_err(&self.tmp, e))?;
        Ok(Box::new(ObjectWriter {
            store: self,
            spool: BufWriter::with_capacity(256 << 10, spool),
            hasher: Hasher::new(),
        }))
    }

    fn read_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize> {
        if *digest == Digest::EMPTY {
            return Ok(0);
        }
        let file = self.local_copy(digest)?;
        file.read_at(buf, offset).map_err(|e| io_err(&self.cache_path(digest), e))
    }

    /// The verified local copy `read_at` reads from (downloaded first if needed).
    fn blob_file(&self, digest: &Digest) -> StoreResult<Option<Arc<File>>> {
        if *digest == Digest::EMPTY {
            return Ok(None);
        }
        self.local_copy(digest).map(Some)
    }

    fn size(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        if *digest == Digest::EMPTY {
            return Ok(Some(0));
        }
        if let Ok(meta) = fs::metadata(self.cache_path(digest)) {
            return Ok(Some(meta.len()));
        }
        match self.rt.block_on(self.backend.head(&self.key(digest))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.remote(format!("cannot look up blob {digest}"), &e)),
        }
    }

    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_action(&self, key: &Digest) -> StoreResult<Option<Vec<u8>>> {
        let k = self.action_key(key);
        let got = self.rt.block_on(async {
            let r = self.backend.get(&k).await?;
            r.bytes().await
        });
        match got {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.remote(format!("cannot read action record {key}"), &e)),
        }
    }

    fn put_action(&self, key: &Digest, record: &[u8]) -> StoreResult<()> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        let payload = PutPayload::from(record.to_vec());
        match self.rt.block_on(self.backend.put_opts(&self.action_key(key), payload, opts)) {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.remote(format!("cannot write action record {key}"), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_and_message_of_an_s3_error_body() {
        let t = "Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The key is unknown.</Message></Error>";
        assert_eq!(xml_tag(t, "Code"), Some("InvalidAccessKeyId"));
        assert_eq!(xml_tag(t, "Message"), Some("The key is unknown."));
        assert_eq!(xml_tag("no xml here", "Code"), None);
    }
}
