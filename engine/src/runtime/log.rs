//! The task log and the WASI stdio sinks that feed it.
//!
//! A task's log collects SDK `log` calls and WASI stdout/stderr. It is capped
//! at `Limits::max_log_bytes`: the first N bytes are kept, then one truncation
//! marker line, and everything after is dropped (the task keeps running). The
//! stdio sinks implement wasmtime-wasi's stream traits directly, so guest
//! writes land in the log (or in a capped capture file for `stdout = "..."`)
//! without an extra pipe or worker task.

use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::failure::Abort;

/// A bounded log buffer.
#[derive(Debug)]
pub(crate) struct TaskLog {
    buf: Vec<u8>,
    cap: u64,
    truncated: bool,
    /// The last [`RECENT`] to `2 * RECENT` bytes appended, kept even past the
    /// cap, where [`TaskLog::panic_message`] looks for a Rust panic.
    recent: Vec<u8>,
}

/// How much of the latest log text is kept for [`TaskLog::panic_message`].
const RECENT: usize = 4096;
/// The longest panic message shown in a failure, in characters.
const PANIC_CHARS: usize = 300;

impl TaskLog {
    pub(crate) fn new(cap: u64) -> TaskLog {
        TaskLog { buf: Vec::new(), cap, truncated: false, recent: Vec::new() }
    }

    /// The first line of the latest Rust panic in the log (`thread 'main'
    /// panicked at src/main.rs:3:5:` then the message), as
    /// `panicked at src/main.rs:3:5: MESSAGE`.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.recent);
        let at = text.rfind(" panicked at ")?;
        let mut lines = text[at + " panicked at ".len()..].lines();
        let location = lines.next()?.trim_end().trim_end_matches(':');
        let message = match lines.next() {
            // Rust before 1.73: `panicked at 'MESSAGE', LOCATION` on one line.
            _ if location.starts_with('\'') => location.to_string(),
            Some(m) if !m.starts_with("note: ") => format!("{location}: {m}"),
            _ => location.to_string(),
        };
        let mut shown: String = message.chars().take(PANIC_CHARS).collect();
        if shown.len() < message.len() {
            shown.push_str(" [...]");
        }
        Some(format!("panicked at {shown}"))
    }

    /// Bytes that can still be appended before the cap.
    pub(crate) fn remaining(&self) -> usize {
        if self.truncated {
            return 0;
        }
        usize::try_from(self.cap.saturating_sub(self.buf.len() as u64)).unwrap_or(usize::MAX)
    }

    /// Append bytes, truncating at the cap with the marker line
    /// `[log truncated: limit of N bytes reached]`.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(RECENT);
        self.recent.extend_from_slice(&bytes[bytes.len() - keep..]);
        if self.recent.len() > 2 * RECENT {
            self.recent.drain(..self.recent.len() - RECENT);
        }
        if self.truncated {
            return;
        }
        let room = self.remaining();
        if bytes.len() <= room {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.buf.extend_from_slice(&bytes[..room]);
        self.truncated = true;
        if self.buf.last().is_some_and(|&b| b != b'\n') {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(format!("[log truncated: limit of {} bytes reached]\n", self.cap).as_bytes());
    }

    /// Append one `[level] message` line (lossy UTF-8).
    pub(crate) fn line(&mut self, level: &str, msg: &[u8]) {
        if self.truncated {
            return;
        }
        let mut line = Vec::with_capacity(level.len() + msg.len().min(self.remaining()) + 4);
        line.push(b'[');
        line.extend_from_slice(level.as_bytes());
        line.extend_from_slice(b"] ");
        // Only convert what can be kept: a guest cannot make the host copy more
        // than the log cap.
        let keep = msg.len().min(self.remaining().saturating_add(4));
        line.extend_from_slice(String::from_utf8_lossy(&msg[..keep]).as_bytes());
        line.push(b'\n');
        self.append(&line);
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The log shared by the store data and the WASI stdio sinks.
#[derive(Clone, Debug)]
pub(crate) struct SharedLog(Arc<Mutex<TaskLog>>);

impl SharedLog {
    pub(crate) fn new(cap: u64) -> SharedLog {
        SharedLog(Arc::new(Mutex::new(TaskLog::new(cap))))
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, TaskLog> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Take the log out (the sinks may still hold clones; they see an empty log).
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut g = self.lock();
        let cap = g.cap;
        std::mem::replace(&mut *g, TaskLog::new(cap)).into_bytes()
    }
}

/// Where a stdio sink writes.
pub(crate) trait SinkTarget: Send + Sync + 'static {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), Abort>;
}

impl SinkTarget for SharedLog {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), Abort> {
        self.lock().append(bytes);
        Ok(())
    }
}

/// stdout captured as a named output: written to a private file (never under
/// `/in` or `/out`), capped at the total output limit.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) file: File,
    pub(crate) written: u64,
    pub(crate) cap: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct SharedCapture(pub(crate) Arc<Mutex<Capture>>);

impl SinkTarget for SharedCapture {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), Abort> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let total = c.written.saturating_add(bytes.len() as u64);
        if total > c.cap {
            return Err(Abort::output_size(c.cap));
        }
        c.file.write_all(bytes).map_err(|e| {
            Abort::Infra(crate::task::message::InfraKind::Storage, format!("cannot write captured stdout: {e}"))
        })?;
        c.written = total;
        Ok(())
    }
}

/// A WASI stdout/stderr stream over a [`SinkTarget`].
#[derive(Clone)]
pub(crate) struct Sink<T: SinkTarget + Clone>(pub(crate) T);

impl<T: SinkTarget + Clone> IsTerminal for Sink<T> {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl<T: SinkTarget + Clone> StdoutStream for Sink<T> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl<T: SinkTarget + Clone> Pollable for Sink<T> {
    async fn ready(&mut self) {}
}

impl<T: SinkTarget + Clone> OutputStream for Sink<T> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.write_bytes(&bytes).map_err(|a| StreamError::Trap(wasmtime::Error::new(a)))
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl<T: SinkTarget + Clone> tokio::io::AsyncWrite for Sink<T> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.0.write_bytes(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_with_marker() {
        let mut log = TaskLog::new(10);
        log.line("info", b"hello");
        log.line("warn", b"world");
        log.line("info", b"dropped");
        assert_eq!(
            String::from_utf8(log.into_bytes()).unwrap(),
            "[info] hel\n[log truncated: limit of 10 bytes reached]\n"
        );
    }

    #[test]
    fn the_latest_panic_is_found_even_past_the_cap() {
        let mut log = TaskLog::new(10);
        log.append(b"thread 'main' panicked at a.rs:1:2:\nfirst\n");
        log.append(&[b'x'; 10_000]);
        log.append(
            b"\nthread 'main' (1) panicked at src/main.rs:3:5:\nboom\nmore\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(log.panic_message().as_deref(), Some("panicked at src/main.rs:3:5: boom"));
        let mut old = TaskLog::new(100);
        old.append(b"thread 'main' panicked at 'boom', src/main.rs:3:5\nnote: run with\n");
        assert_eq!(old.panic_message().as_deref(), Some("panicked at 'boom', src/main.rs:3:5"));
        assert_eq!(TaskLog::new(100).panic_message(), None);
    }
}
