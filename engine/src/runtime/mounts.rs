//! Archives mounted into command tasks: unpacked once, by content, into the
//! module cache directory.
//!
//! A mount (`mounts = { "/share" = "file:share.tar.gz" }`) names a directory,
//! which is preopened read-only as is, or a `.tar`, `.tar.gz` or `.tgz`
//! archive. An archive is unpacked into `<cache>/mounts/<sha256 of the
//! archive>/` the first time any task of any run needs it, through a private
//! temp directory that is renamed into place, so concurrent workers (threads
//! or processes) never see a half-unpacked tree. Only regular files and
//! directories are unpacked; an archive holding a link, a device or a path
//! that escapes its root is refused as a whole. Within one process the
//! result is remembered per archive path, so the archive is hashed once.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::store::Digest;

/// Archive path → unpacked directory, for this process.
#[derive(Default)]
pub(crate) struct Unpacked(Mutex<HashMap<PathBuf, PathBuf>>);

impl Unpacked {
    /// The directory to preopen for a mount source: the source itself when it
    /// is a directory, else its unpacked copy under `cache_dir`.
    pub(crate) fn dir_for(&self, cache_dir: &Path, source: &Path) -> Result<PathBuf, String> {
        let md = fs::metadata(source).map_err(|e| format!("cannot read `{}`: {e}", source.display()))?;
        if md.is_dir() {
            return Ok(source.to_path_buf());
        }
        // Held while unpacking so the threads of one process unpack once.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = map.get(source) {
            return Ok(d.clone());
        }
        let dir = unpack(cache_dir, source)?;
        map.insert(source.to_path_buf(), dir.clone());
        Ok(dir)
    }
}

fn digest_file(path: &Path) -> io::Result<Digest> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest(h.finalize().into()))
}

/// Unpack `archive` into `<cache_dir>/mounts/<digest>/` unless already there.
fn unpack(cache_dir: &Path, archive: &Path) -> Result<PathBuf, String> {
    let shown = archive.display();
    let digest = digest_file(archive).map_err(|e| format!("cannot read archive `{shown}`: {e}"))?;
    let root = cache_dir.join("mounts");
    let dest = root.join(digest.to_string());
    if dest.is_dir() {
        return Ok(dest);
    }
    fs::create_dir_all(&root).map_err(|e| format!("cannot create `{}`: {e}", root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&root)
        .map_err(|e| format!("cannot create a temp dir in `{}`: {e}", root.display()))?;
    let file = File::open(archive).map_err(|e| format!("cannot read archive `{shown}`: {e}"))?;
    let name = archive.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    extract(reader, tmp.path()).map_err(|e| format!("cannot unpack archive `{shown}`: {e}"))?;
    let staged = tmp.keep();
    if let Err(e) = fs::rename(&staged, &dest) {
        let _ = fs::remove_dir_all(&staged);
        // Another worker got there first.
        if !dest.is_dir() {
            return Err(format!("cannot move the unpacked archive `{shown}` into `{}`: {e}", dest.display()));
        }
    }
    Ok(dest)
}

/// Extract regular files and directories; refuse anything else.
fn extract(reader: impl Read, into: &Path) -> Result<(), String> {
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let shown = path.display().to_string();
        let mut rel = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => rel.push(p),
                Component::CurDir => {}
                _ => return Err(format!("entry `{shown}` is not a relative path inside the archive")),
            }
        }
        let kind = entry.header().entry_type();
        let target = into.join(&rel);
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(|e| format!("cannot create `{shown}`: {e}"))?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| format!("cannot create `{shown}`: {e}"))?;
            }
            let mut out = File::create(&target).map_err(|e| format!("cannot create `{shown}`: {e}"))?;
            io::copy(&mut entry, &mut out).map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        } else if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        } else {
            return Err(format!(
                "entry `{shown}` is a {}; only regular files and directories can be mounted",
                match kind {
                    tar::EntryType::Symlink => "symbolic link",
                    tar::EntryType::Link => "hard link",
                    _ => "special file",
                }
            ));
        }
    }
    Ok(())
}
