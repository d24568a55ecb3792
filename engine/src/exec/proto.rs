//! The framed protocol between `engine run --executor processes` and its
//! `engine worker` subprocesses, over the worker's stdin/stdout pipes.
//!
//! A frame is a 4-byte little-endian payload length followed by that many
//! bytes of [postcard](https://docs.rs/postcard) (serde, a compact binary
//! encoding: a task message costs well under a microsecond to encode or
//! decode, a fifth of what JSON took). The first frame in each direction is a handshake
//! carrying [`PROTOCOL_VERSION`]; a peer speaking another version is refused.
//! Frames larger than [`MAX_FRAME`] are refused before anything is allocated,
//! and a pipe that ends inside a frame is reported as truncated — garbage on
//! the pipe gives an error naming what was wrong, never a hang.
//!
//! Task data never travels here: messages carry blob digests, and workers read
//! and write blobs in the shared store.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::StoreSpec;
use crate::task::message::{TaskMessage, TaskResult};

pub const PROTOCOL_VERSION: u32 = 3;
/// Largest frame accepted (task messages are small: digests and params).
pub const MAX_FRAME: usize = 64 << 20;

// Enums are externally tagged (`{"run": {...}}`): an internally tagged enum
// makes serde buffer the whole message before decoding it, which doubled the
// cost of decoding a task message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    Init(WorkerInit),
    Run(TaskMessage),
    /// Interrupt the running task (it reports `Cancelled`).
    Cancel,
    Shutdown,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerInit {
    pub protocol: u32,
    pub worker: u32,
    /// The store to open (a local directory is absolute).
    pub store: StoreSpec,
    pub cache_dir: PathBuf,
    pub max_task_memory: u64,
    /// Plugins to compile (or load from the shared cache) before the first task.
    pub plugins: Vec<PathBuf>,
    /// Microseconds since the Unix epoch at which the run started (task
    /// timestamps are relative to it).
    pub run_start_unix_us: u64,
    /// Apply OS-level restrictions (rlimits, no_new_privs, Landlock).
    pub harden: bool,
    /// Paths the worker may read besides the store, the cache and the temp
    /// dir (the sources of the tasks' mounts), when Landlock applies.
    pub read_only: Vec<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromWorker {
    Ready {
        protocol: u32,
        pid: u32,
        hardening: String,
    },
    Result(TaskResult),
    /// The worker could not start (bad init, plugin failed to load, ...).
    Fatal {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("pipe closed")]
    Closed,
    #[error("pipe closed in the middle of a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME} bytes (garbage on the pipe?)")]
    TooLarge(usize),
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("pipe I/O error: {0}")]
    Io(#[from] io::Error),
}

pub fn write_frame<T: Serialize>(w: &mut dyn Write, msg: &T) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    encode_frame(&mut buf, msg)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Append one frame to `buf` (several frames can then go out in one write).
pub fn encode_frame<T: Serialize>(buf: &mut Vec<u8>, msg: &T) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(e) = postcard::to_extend(msg, Append(&mut *buf)) {
        buf.truncate(start);
        return Err(FrameError::Decode(e.to_string()));
    }
    let n = buf.len() - start - 4;
    if n > MAX_FRAME {
        buf.truncate(start);
        return Err(FrameError::TooLarge(n));
    }
    buf[start..start + 4].copy_from_slice(&(n as u32).to_le_bytes());
    Ok(())
}

/// Appends to a borrowed buffer (postcard writes to an `Extend` it owns).
struct Append<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

/// Decode the first frame in `buf`, if it holds a whole one: the message and
/// the bytes it took. `Ok(None)` means more bytes are needed; a length over
/// [`MAX_FRAME`] is refused as soon as the 4 length bytes are in.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(len) = buf.get(..4) else { return Ok(None) };
    let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    let Some(body) = buf.get(4..4 + n) else { return Ok(None) };
    Ok(Some((decode_body(body)?, 4 + n)))
}

/// The error for a pipe that ended with the undecoded bytes `buf` left over.
pub fn truncated(buf: &[u8]) -> FrameError {
    match buf.get(..4) {
        None => FrameError::Truncated { got: buf.len(), want: 4 },
        Some(len) => FrameError::Truncated {
            got: buf.len() - 4,
            want: u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
        },
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize, io::Error> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

pub fn read_frame<T: DeserializeOwned>(r: &mut dyn Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    let got = read_full(r, &mut len)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < 4 {
        return Err(FrameError::Truncated { got, want: 4 });
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    let mut body = vec![0u8; n];
    let got = read_full(r, &mut body)?;
    if got < n {
        return Err(FrameError::Truncated { got, want: n });
    }
    decode_body(&body)
}

/// One frame's payload: exactly one message, nothing after it.
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(body).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(format!("trailing bytes after the message: {}", rest.len())));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToWorker::Cancel).unwrap();
        let back: ToWorker = read_frame(&mut &buf[..]).unwrap();
        assert!(matches!(back, ToWorker::Cancel));

        let mut buf = Vec::new();
        write_frame(&mut buf, &FromWorker::Fatal { message: "cannot open the store".into() }).unwrap();
        let back: FromWorker = read_frame(&mut &buf[..]).unwrap();
        assert!(matches!(back, FromWorker::Fatal { message } if message == "cannot open the store"));
        let e = read_frame::<FromWorker>(&mut &buf[..buf.len() - 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("pipe closed in the middle of a frame ({} of {} bytes)", buf.len() - 6, buf.len() - 4)
        );

        let garbage = b"GET / HTTP/1.1\r\n";
        let e = read_frame::<ToWorker>(&mut &garbage[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame of 542393671 bytes exceeds the limit of 67108864 bytes (garbage on the pipe?)"
        );

        let mut bad = Vec::new();
        bad.extend_from_slice(&3u32.to_le_bytes());
        bad.extend_from_slice(b"{x}");
        let e = read_frame::<ToWorker>(&mut &bad[..]).unwrap_err();
        assert!(e.to_string().starts_with("undecodable frame: "), "{e}");
        assert!(matches!(read_frame::<ToWorker>(&mut &b""[..]), Err(FrameError::Closed)));
    }

    #[test]
    fn frames_decode_from_a_buffer_one_at_a_time() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ToWorker::Cancel).unwrap();
        encode_frame(&mut buf, &ToWorker::Shutdown).unwrap();
        encode_frame(&mut buf, &FromWorker::Fatal { message: "x".repeat(20) }).unwrap();
        let (a, used) = decode_frame::<ToWorker>(&buf).unwrap().unwrap();
        assert!(matches!(a, ToWorker::Cancel));
        let (b, used2) = decode_frame::<ToWorker>(&buf[used..]).unwrap().unwrap();
        assert!(matches!(b, ToWorker::Shutdown));
        let rest = &buf[used + used2..];
        let (c, used3) = decode_frame::<FromWorker>(rest).unwrap().unwrap();
        assert!(matches!(c, FromWorker::Fatal { .. }));
        assert_eq!(used3, rest.len());
        // A partial frame waits for more bytes; at the end of the pipe it is truncated.
        let part = &rest[..used3 - 1];
        assert!(decode_frame::<FromWorker>(part).unwrap().is_none());
        assert_eq!(
            truncated(part).to_string(),
            format!("pipe closed in the middle of a frame ({} of {} bytes)", used3 - 5, used3 - 4)
        );
        // A frame must hold exactly one message.
        let mut extra = Vec::new();
        encode_frame(&mut extra, &ToWorker::Cancel).unwrap();
        extra[0] += 1;
        extra.push(0);
        let e = decode_frame::<ToWorker>(&extra).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), "undecodable frame: trailing bytes after the message: 1");
        assert_eq!(truncated(&buf[..2]).to_string(), "pipe closed in the middle of a frame (2 of 4 bytes)");
        let e = decode_frame::<ToWorker>(b"GET / HTTP/1.1").map(|_| ()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame of 542393671 bytes exceeds the limit of 67108864 bytes (garbage on the pipe?)"
        );
    }
}
