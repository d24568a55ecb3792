//! Where a run's store lives, as the user names it (`--store`), and opening
//! it. Today a directory holding the local pack store; other backends (a
//! shared filesystem, S3-compatible object storage) add variants here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::local::LocalStore;
use super::{BlobStore, StoreResult};

/// A store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A directory on this machine: the local pack store.
    Local(PathBuf),
}

impl StoreSpec {
    /// Parse a `--store` value: a directory path.
    pub fn parse(s: &str) -> Result<StoreSpec, String> {
        if s.is_empty() {
            return Err("the store location is empty".into());
        }
        Ok(StoreSpec::Local(PathBuf::from(s)))
    }

    /// Open (creating if needed) the store.
    pub fn open(&self) -> StoreResult<Arc<dyn BlobStore>> {
        match self {
            StoreSpec::Local(dir) => Ok(Arc::new(LocalStore::open(dir)?)),
        }
    }

    /// The directory of a store on this machine's filesystem, if it is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            StoreSpec::Local(dir) => Some(dir),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Local(dir) => write!(f, "{}", dir.display()),
        }
    }
}
