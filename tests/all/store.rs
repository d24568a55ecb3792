//! The store conformance suite: one set of checks run against every backend
//! (the local pack store, `object_store`'s in-memory and local-directory
//! backends behind `ObjectBlobStore`, and S3 on a real moto server).
//!
//! Each backend is opened afresh (with an empty read cache) whenever a check
//! wants to see what another process would see.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use engine::store::object::ObjectBlobStore;
use engine::store::{BlobStore, Digest, StoreSpec};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::util::{Moto, block_on};

/// Replaces the stored bytes of a blob (behind the store's back).
type Tamper = Box<dyn Fn(&Digest, Vec<u8>)>;

/// One backend under test.
struct Backend {
    name: &'static str,
    /// A fresh handle on the same stored data, with its own empty cache.
    open: Box<dyn Fn() -> Arc<dyn BlobStore>>,
    /// Replace the stored bytes of a blob (behind the store's back).
    tamper: Tamper,
    /// Everything the backend holds, by name.
    listing: Box<dyn Fn() -> BTreeSet<String>>,
    _keep: Vec<Box<dyn std::any::Any>>,
}

fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Read caches of the handles a test opened, removed when the test ends.
type Caches = Rc<RefCell<Vec<tempfile::TempDir>>>;

fn fresh_cache(caches: &Caches) -> PathBuf {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().to_path_buf();
    caches.borrow_mut().push(t);
    p
}

fn local() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (r1, r2, r3) = (root.clone(), root.clone(), root.clone());
    Backend {
        name: "local",
        open: Box::new(move || StoreSpec::Local(r1.clone()).open().unwrap()),
        tamper: Box::new(move |d, bytes| {
            let hex = d.to_hex();
            std::fs::write(r2.join("objects").join(&hex[..2]).join(&hex), bytes).unwrap()
        }),
        listing: Box::new(move || files_under(&r3).into_iter().filter(|f| !f.starts_with("packs/")).collect()),
        _keep: vec![Box::new(dir)],
    }
}

/// An `ObjectBlobStore` on `backend` under `prefix`; `list` names every object.
fn object(name: &'static str, backend: Arc<dyn ObjectStore>, prefix: &'static str) -> Backend {
    let (b1, b2, b3) = (backend.clone(), backend.clone(), backend);
    let key = move |d: &Digest| Key::from(format!("{prefix}blobs/{}", d.to_hex()));
    let caches = Caches::default();
    let c = caches.clone();
    Backend {
        name,
        open: Box::new(move || {
            let cache = fresh_cache(&c);
            Arc::new(ObjectBlobStore::open(b1.clone(), prefix.trim_end_matches('/'), name, name, &cache).unwrap())
        }),
        tamper: Box::new(move |d, bytes| {
            block_on(b2.put(&key(d), PutPayload::from(bytes))).unwrap();
        }),
        listing: Box::new(move || {
            let p = Key::from(format!("{prefix}blobs"));
            let l = block_on(b3.list_with_delimiter(Some(&p))).unwrap();
            l.objects.into_iter().map(|o| o.location.to_string()).collect()
        }),
        _keep: vec![Box::new(caches)],
    }
}

fn memory() -> Backend {
    object("memory", Arc::new(object_store::memory::InMemory::new()), "")
}

fn file_dir() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let mut b = object("file", Arc::new(fs), "run/");
    // Also through the spec, the way `--store file:///...` opens it.
    let spec = StoreSpec::File(dir.path().join("run"));
    let caches = Caches::default();
    let c = caches.clone();
    b.open = Box::new(move || spec.open_with_cache(&fresh_cache(&c)).unwrap());
    b._keep.push(Box::new(caches));
    b._keep.push(Box::new(dir));
    b
}

#[cfg(feature = "s3")]
fn s3(moto: &Moto) -> Backend {
    moto.create_bucket("conformance");
    object("s3", Arc::new(moto.client("conformance")), "suite/")
}

/// Every backend; S3 only when the test venv is there (see `Moto::start`).
fn backends(check: impl Fn(&Backend)) {
    let mut all = vec![local(), memory(), file_dir()];
    #[cfg(feature = "s3")]
    let moto = Moto::start(false);
    #[cfg(feature = "s3")]
    if let Some(m) = &moto {
        all.push(s3(m));
    }
    for b in &all {
        check(b);
    }
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all(store: &dyn BlobStore, d: &Digest) -> Vec<u8> {
    engine::store::local::read_all(store, d).unwrap()
}

#[test]
fn store_conformance_abandoned_writer_leaves_nothing() {
    backends(|b| {
        let store = (b.open)();
        let before = (b.listing)();
        let data = bytes(200 << 10, 1);
        {
            let mut w = store.put().unwrap();
            w.write_all(&data).unwrap();
            assert_eq!(w.written(), data.len() as u64);
        } // dropped without finish
        drop(store);
        assert_eq!((b.listing)(), before, "{}: an abandoned write left something", b.name);
        assert_eq!((b.open)().size(&Digest::of(&data)).unwrap(), None, "{}", b.name);
    });
}

#[test]
fn store_conformance_concurrent_identical_puts() {
    backends(|b| {
        let store = (b.open)();
        for data in [bytes(10, 2), bytes(300 << 10, 3)] {
            let refs: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..6).map(|_| s.spawn(|| store.put_bytes(&data).unwrap())).collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            store.sync().unwrap(); // visible to other handles (the local store's packs)
            let d = Digest::of(&data);
            assert!(refs.iter().all(|r| r.digest == d && r.len == data.len() as u64), "{}: {refs:?}", b.name);
            assert!(read_all(&*(b.open)(), &d) == data, "{}: the blob reads back differently", b.name);
        }
    });
}

#[test]
fn store_conformance_empty_and_multipart_blobs_round_trip() {
    backends(|b| {
        let store = (b.open)();
        let empty = store.put().unwrap().finish().unwrap();
        assert_eq!((empty.digest, empty.len), (Digest::EMPTY, 0), "{}", b.name);
        let data = bytes(20 << 20, 4); // 20 MiB: three parts of a multipart upload
        let mut w = store.put().unwrap();
        for chunk in data.chunks(3 << 20) {
            w.write_all(chunk).unwrap();
        }
        let r = w.finish().unwrap();
        assert_eq!((r.digest, r.len), (Digest::of(&data), data.len() as u64), "{}", b.name);
        let other = (b.open)();
        assert_eq!(other.size(&Digest::EMPTY).unwrap(), Some(0), "{}", b.name);
        assert_eq!(other.read_at(&Digest::EMPTY, 0, &mut [0u8; 8]).unwrap(), 0, "{}", b.name);
        assert_eq!(other.size(&r.digest).unwrap(), Some(20 << 20), "{}", b.name);
        assert!(read_all(&*other, &r.digest) == data, "{}: the 20 MiB blob reads back differently", b.name);
    });
}

#[test]
fn store_conformance_ranged_reads() {
    backends(|b| {
        let data = bytes(300_000, 5);
        let d = (b.open)().put_bytes(&data).unwrap().digest;
        let store = (b.open)();
        for (offset, len) in [(0usize, 10usize), (1, 65_536), (65_535, 3), (299_990, 100), (300_000, 5), (400_000, 5)] {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                let n = store.read_at(&d, (offset + got) as u64, &mut buf[got..]).unwrap();
                if n == 0 {
                    break;
                }
                got += n;
            }
            let want = &data[offset.min(data.len())..(offset + len).min(data.len())];
            assert_eq!(&buf[..got], want, "{}: read_at({offset}, {len})", b.name);
        }
        let missing = Digest::of(b"never stored");
        assert_eq!(store.size(&missing).unwrap(), None, "{}", b.name);
        let err = store.read_at(&missing, 0, &mut [0u8; 4]).unwrap_err().to_string();
        assert_eq!(err, format!("blob {missing} is not in the store"), "{}", b.name);
    });
}

#[test]
fn store_conformance_tampered_object_reads_as_corrupt() {
    backends(|b| {
        let data = bytes(100 << 10, 6);
        let d = (b.open)().put_bytes(&data).unwrap().digest;
        let mut evil = data.clone();
        evil[5000] ^= 0xff;
        (b.tamper)(&d, evil.clone());
        // Read by range, and opened for many reads (a command task's `/in` file).
        type Read = dyn Fn(&dyn BlobStore) -> String;
        let reads: [&Read; 2] = [&move |s| s.read_at(&d, 0, &mut [0u8; 16]).unwrap_err().to_string(), &move |s| {
            s.blob_file(&d).unwrap_err().to_string()
        }];
        for read in reads {
            let store = (b.open)();
            let err = read(&*store);
            let want = format!("store is corrupt: blob {d} ");
            assert!(err.starts_with(&want), "{}: {err}", b.name);
            assert!(
                err.contains(&format!("has other content (sha256 {}, 102400 bytes)", Digest::of(&evil))),
                "{}: {err}",
                b.name
            );
        }
    });
}

#[test]
fn store_conformance_a_blob_file_holds_exactly_the_blob() {
    use std::os::unix::fs::FileExt;
    backends(|b| {
        let (large, small) = (bytes(300 << 10, 9), bytes(100, 3));
        let (dl, ds) = {
            let s = (b.open)();
            (s.put_bytes(&large).unwrap().digest, s.put_bytes(&small).unwrap().digest)
        };
        for (d, want) in [(dl, &large), (ds, &small)] {
            // In this process, and in another one (a fresh handle).
            for store in [(b.open)(), (b.open)()] {
                let Some(f) = store.blob_file(&d).unwrap() else {
                    assert!(b.name != "local" || d == ds, "local: a large blob has its own file");
                    continue;
                };
                let mut got = vec![0u8; want.len()];
                f.read_exact_at(&mut got, 0).unwrap();
                assert_eq!(&got, want, "{}", b.name);
            }
        }
        if b.name == "local" {
            assert!((b.open)().blob_file(&ds).unwrap().is_none(), "a small blob lives in a pack");
        }
    });
}
