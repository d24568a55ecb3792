//! Host files a pipeline names (plugins, `file:` inputs, mounts): what kind
//! of file a path is, found without opening it, and opening regular files
//! only, so a FIFO, a device or a socket can never block or feed the engine
//! without end (docs/security.md, "Files a pipeline names").
//!
//! Used by `engine check` (pipeline loader), `engine inspect` and the driver
//! that copies `file:` inputs into the store at run time.

use std::fs::{File, FileType, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// How a message names a file type that is neither a regular file nor a
/// directory: `a FIFO`, `a character device`, `a block device`, `a socket`.
pub fn special_kind(t: FileType) -> Option<&'static str> {
    if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_file() || t.is_dir() {
        None
    } else {
        Some("not a regular file")
    }
}

/// Why a file of this metadata is not a regular file, if it is not:
/// `is a directory`, `is a FIFO`, ...
pub fn not_regular(md: &Metadata) -> Option<String> {
    let t = md.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("is a directory".into())
    } else {
        Some(format!("is {}", special_kind(t).unwrap_or("not a regular file")))
    }
}

/// Open `path` for reading if it is a regular file (after symlinks), without
/// ever blocking: the type is checked before opening, the open is
/// non-blocking (a FIFO swapped in between does not wait for a writer), and
/// the type is checked again on the open descriptor. Any other type is an
/// [`io::ErrorKind::InvalidInput`] error whose text says what it is, such as
/// `` `p` is a FIFO, not a regular file``.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let refuse = |why: String| {
        let why = why.strip_prefix("is ").unwrap_or(&why).to_string();
        io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` is {why}, not a regular file", path.display()))
    };
    if let Some(why) = not_regular(&std::fs::metadata(path)?) {
        return Err(refuse(why));
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if let Some(why) = not_regular(&file.metadata()?) {
        return Err(refuse(why));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("a path without NUL");
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).expect_err("a FIFO is refused");
        assert_eq!(e.to_string(), format!("`{}` is a FIFO, not a regular file", fifo.display()));
        let e = open_regular(Path::new("/dev/zero")).expect_err("a device is refused");
        assert_eq!(e.to_string(), "`/dev/zero` is a character device, not a regular file");
        let e = open_regular(dir.path()).expect_err("a directory is refused");
        assert_eq!(e.to_string(), format!("`{}` is a directory, not a regular file", dir.path().display()));
        std::fs::write(dir.path().join("f"), "x").expect("a file");
        assert!(open_regular(&dir.path().join("f")).is_ok());
    }
}
