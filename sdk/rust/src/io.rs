//! Inputs and outputs as `std::io` streams over the host calls.
//!
//! An [`Input`] reads its blob in chunks through `input_read` at increasing
//! offsets (it is `Read` and `BufRead`, so `lines()` works and nothing forces
//! a whole blob into guest memory). An [`Output`] buffers writes in a 64 KiB
//! chunk and hands each full chunk to `output_write`.

use std::io::{self, BufRead, Read, Write};

use crate::sys;
use crate::{Error, Result, ResultExt};

/// Size of the read buffer of an [`Input`] and the write buffer of an [`Output`].
pub const CHUNK: usize = 64 * 1024;

/// One input item as the host describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Position in the host's flat item list (0..input_count()).
    pub item: i32,
    /// The input name from the pipeline, e.g. `text`.
    pub name: String,
    /// Position within a list input; `None` for a scalar input.
    pub index: Option<u32>,
    /// Length in bytes.
    pub len: u64,
}

impl Item {
    /// `name` for a scalar input, `name[index]` for an item of a list.
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{}]", self.name, i),
            None => self.name.clone(),
        }
    }

    /// Every input item the host offers, in host order.
    pub(crate) fn all() -> Vec<Item> {
        // SAFETY (all calls in this module): the host bounds-checks every
        // (pointer, length) pair against our memory; we pass live buffers.
        let count = unsafe { sys::input_count() }.max(0);
        let mut items = Vec::with_capacity(count as usize);
        for item in 0..count {
            let mut buf = vec![0u8; 256];
            let mut n = unsafe { sys::input_name(item, buf.as_mut_ptr(), buf.len() as i32) };
            if n > buf.len() as i32 {
                buf.resize(n as usize, 0);
                n = unsafe { sys::input_name(item, buf.as_mut_ptr(), buf.len() as i32) };
            }
            if n < 0 {
                continue;
            }
            buf.truncate(n as usize);
            let index = unsafe { sys::input_index(item) };
            let len = unsafe { sys::input_len(item) };
            items.push(Item {
                item,
                name: String::from_utf8_lossy(&buf).into_owned(),
                index: u32::try_from(index).ok(),
                len: len.max(0) as u64,
            });
        }
        items
    }
}

/// A readable input blob. Implements `Read` and `BufRead`.
pub struct Input {
    info: Item,
    /// Offset of the next byte to fetch from the host.
    pos: u64,
    buf: Vec<u8>,
    start: usize,
}

impl Input {
    pub(crate) fn new(info: Item) -> Input {
        Input { info, pos: 0, buf: Vec::new(), start: 0 }
    }

    /// The input's name in the pipeline.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Position within a list input; `None` for a scalar input.
    pub fn index(&self) -> Option<u32> {
        self.info.index
    }

    /// `name` or `name[index]`, for messages.
    pub fn label(&self) -> String {
        self.info.label()
    }

    /// Total length of the blob in bytes.
    pub fn len(&self) -> u64 {
        self.info.len
    }

    pub fn is_empty(&self) -> bool {
        self.info.len == 0
    }

    /// Read the rest of the input into memory.
    pub fn read_all(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.info.len.saturating_sub(self.pos) as usize);
        self.read_to_end(&mut out).with_context(|| format!("reading input `{}`", self.label()))?;
        Ok(out)
    }

    /// Read the rest of the input as UTF-8 text; invalid UTF-8 is an error.
    pub fn read_string(&mut self) -> Result<String> {
        let bytes = self.read_all()?;
        String::from_utf8(bytes).map_err(|e| {
            Error::msg(format!(
                "input `{}` is not valid UTF-8 (at byte {})",
                self.label(),
                e.utf8_error().valid_up_to()
            ))
        })
    }

    /// One host read at the current position into `dst`.
    fn fetch(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let want = dst.len().min(i32::MAX as usize) as i32;
        let n = unsafe { sys::input_read(self.info.item, self.pos as i64, dst.as_mut_ptr(), want) };
        if n < 0 {
            return Err(io::Error::other(format!("host refused to read input `{}`", self.label())));
        }
        self.pos += n as u64;
        Ok(n as usize)
    }
}

impl Read for Input {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.start == self.buf.len() && dst.len() >= CHUNK {
            // Large reads bypass the buffer.
            return self.fetch(dst);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(dst.len());
        dst[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.buf.len() {
            let mut chunk = std::mem::take(&mut self.buf);
            chunk.resize(CHUNK, 0);
            let fetched = self.fetch(&mut chunk);
            chunk.truncate(fetched.as_ref().map_or(0, |n| *n));
            self.buf = chunk;
            self.start = 0;
            fetched?;
        }
        Ok(&self.buf[self.start..])
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.buf.len());
    }
}

/// A named output. Implements `Write`; bytes are buffered in a 64 KiB chunk.
/// Call [`Output::finish`] to flush and see errors; dropping an output
/// flushes too but cannot report a failure.
pub struct Output {
    handle: i32,
    name: String,
    buf: Vec<u8>,
}

impl Output {
    pub(crate) fn open(name: &str) -> Output {
        let handle = unsafe { sys::output_open(name.as_ptr(), name.len() as i32) };
        Output { handle, name: name.to_owned(), buf: Vec::with_capacity(CHUNK) }
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Flush buffered bytes to the host.
    pub fn finish(mut self) -> Result<()> {
        self.flush().with_context(|| format!("writing output `{}`", self.name))
    }

    fn send(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = data.len().min(1 << 30);
            let rc = unsafe { sys::output_write(self.handle, data.as_ptr(), n as i32) };
            if rc < 0 {
                return Err(io::Error::other(format!("host refused to write output `{}`", self.name)));
            }
            data = &data[n..];
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK {
            self.flush()?;
        }
        if data.len() >= CHUNK {
            self.send(data)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
