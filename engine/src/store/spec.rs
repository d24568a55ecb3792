//! Where the blob store lives, as the user names it with `--store`, and how
//! to open it.
//!
//! Three forms (see `docs/pipeline.md`):
//!
//! * a directory path: today's embedded pack store ([`LocalStore`]);
//! * `file:///abs/dir`: a directory that several hosts may share (NFS and the
//!   like). One file per blob, no packs, written through `object_store`'s
//!   local backend ([`ObjectBlobStore`]), so nothing relies on appends seen
//!   across hosts;
//! * `s3://bucket/prefix`: an S3-compatible object store ([`super::s3`]).
//!
//! A [`StoreSpec`] is plain data: the processes executor sends it to its
//! workers in their init frame, and each opens the same store for itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::local::LocalStore;
use super::object::ObjectBlobStore;
use super::{BlobStore, StoreError};

/// What `--store` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreSpec {
    /// A directory holding the embedded pack store.
    Local(PathBuf),
    /// `file:///abs/dir`: a shared directory, one file per blob.
    File(PathBuf),
    /// `s3://bucket/prefix`; `prefix` has no leading or trailing `/` and may be empty.
    S3 { bucket: String, prefix: String },
}

const FORMS: &str = "expected a directory, file:///abs/dir or s3://bucket/prefix";

fn bad(spec: &str, why: impl Into<String>) -> StoreError {
    StoreError::Spec { spec: spec.to_string(), why: why.into() }
}

impl StoreSpec {
    /// Parse a `--store` value. Anything without a `scheme://` is a directory.
    pub fn parse(s: &str) -> Result<StoreSpec, StoreError> {
        if s.is_empty() {
            return Err(bad(s, "the store is empty; expected a directory, file:///abs/dir or s3://bucket/prefix"));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(StoreSpec::Local(PathBuf::from(s)));
        };
        match scheme {
            "file" => {
                // `file:///abs` or `file://localhost/abs`; any other host is not ours.
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(bad(
                        s,
                        "a file:// store needs an absolute path and no host, as in file:///shared/store",
                    ));
                }
                let path = path.trim_end_matches('/');
                if path.is_empty() {
                    return Err(bad(s, "a file:// store cannot be the root directory"));
                }
                if path.split('/').any(|c| c == "..") {
                    return Err(bad(s, "a file:// store path may not contain `..`"));
                }
                Ok(StoreSpec::File(PathBuf::from(path)))
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad(s, "the URL names no bucket, as in s3://bucket/prefix"));
                }
                if !valid_bucket(bucket) {
                    return Err(bad(
                        s,
                        format!(
                            "`{bucket}` is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)"
                        ),
                    ));
                }
                let prefix = prefix.trim_matches('/');
                if prefix.split('/').any(|c| c.is_empty() || c == "." || c == "..") && !prefix.is_empty() {
                    return Err(bad(s, format!("the prefix `{prefix}` has an empty, `.` or `..` component")));
                }
                Ok(StoreSpec::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() })
            }
            other => Err(bad(s, format!("unsupported scheme `{other}://`; {FORMS}"))),
        }
    }

    /// Open the store, with the read cache of remote stores in
    /// [`default_cache_dir`]`/blobs`.
    pub fn open(&self) -> Result<Arc<dyn BlobStore>, StoreError> {
        self.open_with_cache(&default_cache_dir())
    }

    /// Open the store; remote stores keep their read cache and their
    /// upload spool under `cache_dir/blobs`.
    pub fn open_with_cache(&self, cache_dir: &Path) -> Result<Arc<dyn BlobStore>, StoreError> {
        let open_err = |e: StoreError| StoreError::Open { store: self.to_string(), message: e.to_string() };
        match self {
            StoreSpec::Local(dir) => Ok(Arc::new(LocalStore::open(dir).map_err(open_err)?)),
            StoreSpec::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                    store: self.to_string(),
                    message: format!("cannot create {}: {e}", dir.display()),
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| StoreError::Open { store: self.to_string(), message: e.to_string() })?;
                let name = self.to_string();
                Ok(Arc::new(ObjectBlobStore::open(Arc::new(fs), "", &name, &name, cache_dir)?))
            }
            StoreSpec::S3 { bucket, prefix } => super::s3::open(self, bucket, prefix, cache_dir),
        }
    }

    /// The local directory the store lives in, if any (for the workers'
    /// filesystem sandbox, and for where task logs go by default).
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            StoreSpec::Local(d) | StoreSpec::File(d) => Some(d),
            StoreSpec::S3 { .. } => None,
        }
    }

    /// The same spec with a relative `Local` directory made absolute (what
    /// worker processes with another working directory need).
    pub fn absolute(&self) -> StoreSpec {
        match self {
            StoreSpec::Local(d) => StoreSpec::Local(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())),
            other => other.clone(),
        }
    }
}

/// S3's bucket naming rules (the subset that matters for a URL).
fn valid_bucket(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&b.len())
        && bytes.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[b.len() - 1].is_ascii_alphanumeric()
}

impl FromStr for StoreSpec {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreSpec::parse(s)
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Local(d) => write!(f, "{}", d.display()),
            StoreSpec::File(d) => write!(f, "file://{}", d.display()),
            StoreSpec::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreSpec::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The engine's cache directory: `$ENGINE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/engine`, else `~/.cache/engine`, else a temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENGINE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("engine");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("engine");
    }
    std::env::temp_dir().join("engine-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        StoreSpec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_three_forms_and_prints_them_back() {
        let cases = [
            ("out/store", StoreSpec::Local("out/store".into()), "out/store"),
            ("/abs/store", StoreSpec::Local("/abs/store".into()), "/abs/store"),
            ("file:///shared/store/", StoreSpec::File("/shared/store".into()), "file:///shared/store"),
            ("file://localhost/shared", StoreSpec::File("/shared".into()), "file:///shared"),
            ("s3://bucket-1", StoreSpec::S3 { bucket: "bucket-1".into(), prefix: "".into() }, "s3://bucket-1"),
            (
                "s3://my.bucket/runs/r1/",
                StoreSpec::S3 { bucket: "my.bucket".into(), prefix: "runs/r1".into() },
                "s3://my.bucket/runs/r1",
            ),
        ];
        for (text, spec, shown) in cases {
            assert_eq!(StoreSpec::parse(text).unwrap(), spec, "{text}");
            assert_eq!(spec.to_string(), shown);
            assert_eq!(StoreSpec::parse(shown).unwrap(), spec, "round trip of {shown}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert_eq!(
            err("gs://b/p"),
            "invalid store `gs://b/p`: unsupported scheme `gs://`; expected a directory, file:///abs/dir or s3://bucket/prefix"
        );
        assert_eq!(err("s3://"), "invalid store `s3://`: the URL names no bucket, as in s3://bucket/prefix");
        assert_eq!(
            err("s3://My_Bucket/x"),
            "invalid store `s3://My_Bucket/x`: `My_Bucket` is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        );
        assert_eq!(
            err("s3://b0b/a//c"),
            "invalid store `s3://b0b/a//c`: the prefix `a//c` has an empty, `.` or `..` component"
        );
        assert_eq!(
            err("file://host/x"),
            "invalid store `file://host/x`: a file:// store needs an absolute path and no host, as in file:///shared/store"
        );
        assert_eq!(err("file:///a/../b"), "invalid store `file:///a/../b`: a file:// store path may not contain `..`");
        assert_eq!(err("file:///"), "invalid store `file:///`: a file:// store cannot be the root directory");
    }
}
