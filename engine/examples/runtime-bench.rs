//! Runtime micro-benchmarks: per-task overhead of a no-op SDK task, cached
//! module load time, and copy-in / copy-out throughput of a 64 MiB blob.
//!
//! Run with `cargo run --release -p engine --example runtime-bench`. Each
//! figure is the median of several trials; results go in docs/performance.md.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::runtime::{Runtime, RuntimeConfig};
use engine::store::mem::MemStore;
use engine::store::{BlobRef, BlobStore, BlobWriter, Digest, StoreResult};
use engine::task::message::{CommandOpts, Limits, MsgInput, PluginRef, TaskMessage};

const NOOP: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (i32.const 0)))"#;

/// Reads input 0 into a 1 MiB buffer until the end, discarding it.
const COPY_IN: &str = r#"(module
  (import "engine" "input_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $off i64) (local $n i32)
    (block $done (loop $next
      (local.set $n (call $read (i32.const 0) (local.get $off) (i32.const 65536) (i32.const 1048576)))
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $n))))
      (br $next)))
    (i32.const 0)))"#;

/// Writes its 1 MiB buffer 64 times to output `out`.
const COPY_OUT: &str = r#"(module
  (import "engine" "output_open" (func $open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $h i32) (local $i i32)
    (local.set $h (call $open (i32.const 0) (i32.const 3)))
    (loop $next
      (drop (call $write (local.get $h) (i32.const 65536) (i32.const 1048576)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 64))))
    (i32.const 0)))"#;

const BLOB: usize = 64 << 20;

/// A store whose one input is a pre-faulted 64 MiB buffer and whose writers
/// copy into a reused pre-faulted buffer, so the figures measure the
/// runtime's copy path rather than a store's hashing or I/O.
struct BenchStore {
    input: Vec<u8>,
    digest: Digest,
    sink: Mutex<Vec<u8>>,
}

struct SinkWriter<'a> {
    sink: &'a Mutex<Vec<u8>>,
    pos: usize,
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let end = (self.pos + b.len()).min(s.len());
        let n = end - self.pos;
        s[self.pos..end].copy_from_slice(&b[..n]);
        self.pos = end;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for SinkWriter<'_> {
    fn finish(self: Box<Self>) -> StoreResult<BlobRef> {
        Ok(BlobRef { digest: Digest([0; 32]), len: self.pos as u64 })
    }
    fn written(&self) -> u64 {
        self.pos as u64
    }
}

impl BlobStore for BenchStore {
    fn put(&self) -> StoreResult<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(SinkWriter { sink: &self.sink, pos: 0 }))
    }
    fn read_at(&self, _d: &Digest, offset: u64, buf: &mut [u8]) -> StoreResult<usize> {
        let start = (offset as usize).min(self.input.len());
        let n = buf.len().min(self.input.len() - start);
        buf[..n].copy_from_slice(&self.input[start..start + n]);
        Ok(n)
    }
    fn size(&self, _d: &Digest) -> StoreResult<Option<u64>> {
        Ok(Some(self.input.len() as u64))
    }
    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }
    // Tasks run straight on the runtime here: no action cache.
    fn get_action(&self, _key: &Digest) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
    fn put_action(&self, _key: &Digest, _record: &[u8]) -> StoreResult<()> {
        Ok(())
    }
}

fn write_wat(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(text).expect("valid wat")).expect("write wasm");
    path
}

fn message(path: &Path, inputs: Vec<MsgInput>) -> TaskMessage {
    TaskMessage {
        task: 0,
        name: "bench".into(),
        attempt: 1,
        plugin: PluginRef { digest: Digest::of(&std::fs::read(path).expect("read")), path: path.into() },
        inputs,
        params: "{}".into(),
        limits: Limits::default(),
        command: CommandOpts::default(),
        deterministic: false,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache_dir = tmp.path().join("cache");
    let cfg = || RuntimeConfig { cache_dir: cache_dir.clone(), max_instances: 4, max_task_memory: 256 << 20 };
    let rt = Runtime::new(cfg()).expect("runtime");
    let noop = write_wat(tmp.path(), "noop", NOOP);
    let copy_in = write_wat(tmp.path(), "copy_in", COPY_IN);
    let copy_out = write_wat(tmp.path(), "copy_out", COPY_OUT);
    for p in [&noop, &copy_in, &copy_out] {
        rt.load(p).expect("load");
    }

    // 1. Instantiate + run a no-op SDK task (run_task end to end).
    let store = MemStore::new();
    let msg = message(&noop, vec![]);
    let run_start = Instant::now();
    const N: u32 = 20_000;
    let mut trials = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..N {
            let r = rt.run_task(&msg, &store, 0, run_start);
            assert!(r.outcome.is_ok());
        }
        trials.push(t.elapsed() / N);
    }
    let per_task = median(trials);

    // 2. Cached module load: a fresh runtime (empty in-process map) loading a
    //    module whose compiled form is in the disk cache; and the in-process hit.
    let mut disk = Vec::new();
    let mut mem = Vec::new();
    for _ in 0..15 {
        let fresh = Runtime::new(cfg()).expect("runtime");
        let l = fresh.load(&copy_out).expect("load");
        assert!(l.cache_hit);
        disk.push(l.load_time);
        mem.push(fresh.load(&copy_out).expect("load").load_time);
    }
    let disk_load = median(disk);
    let mem_load = median(mem);

    // 3. Copy-in / copy-out of 64 MiB through host calls (1 MiB guest buffer).
    let input: Vec<u8> = (0..BLOB).map(|i| (i % 251) as u8).collect();
    let bstore = BenchStore { input, digest: Digest([1; 32]), sink: Mutex::new(vec![1u8; BLOB]) };
    let in_msg = message(
        &copy_in,
        vec![MsgInput {
            name: "data".into(),
            list: false,
            items: vec![BlobRef { digest: bstore.digest, len: BLOB as u64 }],
        }],
    );
    let out_msg = message(&copy_out, vec![]);
    let (mut tin, mut tout) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        let t = Instant::now();
        assert!(rt.run_task(&in_msg, &bstore, 0, run_start).outcome.is_ok());
        tin.push(t.elapsed());
        let t = Instant::now();
        assert!(rt.run_task(&out_msg, &bstore, 0, run_start).outcome.is_ok());
        tout.push(t.elapsed());
    }
    let gbps = |d: Duration| BLOB as f64 / d.as_secs_f64() / 1e9;
    let (din, dout) = (median(tin), median(tout));

    println!("| benchmark | median | target |");
    println!("|---|---|---|");
    println!(
        "| no-op SDK task, `run_task` end to end (instantiate + run + result) | {:.2} µs | ≤ 10 µs |",
        per_task.as_secs_f64() * 1e6
    );
    println!(
        "| cached module load, fresh runtime (read + sha256 + validate + deserialize + link) | {:.3} ms | ≤ 1 ms |",
        disk_load.as_secs_f64() * 1e3
    );
    println!(
        "| module load, already loaded in this runtime (read + sha256 + map hit) | {:.3} ms | — |",
        mem_load.as_secs_f64() * 1e3
    );
    println!(
        "| copy-in 64 MiB (`input_read`, 1 MiB buffer) | {:.1} ms = {:.2} GB/s | ≥ 2 GB/s |",
        din.as_secs_f64() * 1e3,
        gbps(din)
    );
    println!(
        "| copy-out 64 MiB (`output_write`, 1 MiB buffer) | {:.1} ms = {:.2} GB/s | ≥ 2 GB/s |",
        dout.as_secs_f64() * 1e3,
        gbps(dout)
    );
}
