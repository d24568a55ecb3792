//! The on-disk cache of compiled modules and components.
//!
//! Layout: `<cache_dir>/modules/<module sha256>-<fingerprint>.cwasm`, where
//! the fingerprint is a sha256 (first 16 hex digits) over the wasmtime
//! version, the engine's compatibility hash (target, compiler settings and
//! enabled features) and the engine's own config version. Entries are written
//! to a temp file in the same directory and renamed into place, so readers
//! never see a partial file; concurrent writers of the same entry both write
//! identical bytes.
//!
//! Loading uses `Module::deserialize_file`, which maps the file and trusts its
//! machine code. That is sound here because (1) the cache directory belongs
//! to the engine (under `$XDG_CACHE_HOME/engine` or `~/.cache/engine` by
//! default) and is never mounted into a task: tasks only see their per-attempt
//! `/in` and `/out` temp dirs; (2) the entry is found by a name derived from
//! the sha256 of the module bytes just read plus this engine's fingerprint,
//! and only regular files (not symlinks) are accepted; (3) wasmtime itself
//! checks the header (version, target, config) and refuses incompatible
//! files. Any error while deserializing makes the runtime recompile and
//! overwrite the entry.

use std::fs;
use std::hash::Hasher;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::store::Digest;

/// Bump when the runtime's wasmtime `Config` changes in a way the
/// compatibility hash might not see.
const CONFIG_VERSION: &str = "engine-runtime-config-2";

pub(crate) struct ModuleCache {
    dir: PathBuf,
    fingerprint: String,
}

/// Feeds `std::hash::Hash` output into sha256, so the fingerprint is stable
/// across processes (unlike `DefaultHasher` seeds, which are fixed but not a
/// documented format).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    pub(crate) fn new(cache_dir: &Path, engine: &Engine) -> io::Result<ModuleCache> {
        let dir = cache_dir.join("modules");
        fs::create_dir_all(&dir)?;
        let mut h = ShaHasher(Sha256::new());
        h.write(b"wasmtime 48.0.8\0");
        h.write(CONFIG_VERSION.as_bytes());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let fingerprint = hex::encode(&h.0.finalize()[..8]);
        Ok(ModuleCache { dir, fingerprint })
    }

    pub(crate) fn path_for(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint))
    }

    /// Load a cached entry, or `None` if there is none or it is unusable.
    pub(crate) fn load(&self, engine: &Engine, digest: &Digest) -> Option<Module> {
        let path = self.path_for(digest);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        // SAFETY: see the module docs: the file lives in the engine-owned
        // cache dir that no task can write, its name binds it to the sha256
        // of the module bytes and to this engine's configuration, and wasmtime
        // validates the header before using it. On error we recompile.
        unsafe { Module::deserialize_file(engine, &path) }.ok()
    }

    /// A cached component, as [`ModuleCache::load`] (the entry name is the
    /// same: the digest of the component's bytes decides which one it is).
    pub(crate) fn load_component(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let path = self.path_for(digest);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        // SAFETY: as in `load`.
        unsafe { Component::deserialize_file(engine, &path) }.ok()
    }

    /// Serialize and store a compiled module atomically.
    pub(crate) fn store(&self, digest: &Digest, module: &Module) -> io::Result<PathBuf> {
        let bytes = module.serialize().map_err(|e| io::Error::other(e.to_string()))?;
        self.store_bytes(digest, &bytes)
    }

    /// Serialize and store a compiled component atomically.
    pub(crate) fn store_component(&self, digest: &Digest, component: &Component) -> io::Result<PathBuf> {
        let bytes = component.serialize().map_err(|e| io::Error::other(e.to_string()))?;
        self.store_bytes(digest, &bytes)
    }

    fn store_bytes(&self, digest: &Digest, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.path_for(digest);
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").suffix(".cwasm").tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}
