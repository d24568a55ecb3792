//! Per-task cost of one plugin in `Runtime::run_task` alone, without the
//! scheduler, the report or a disk store: the plugin runs N times in a loop
//! on one thread against an in-memory store, each task with two one-byte
//! inputs `a` and `b` (what a task of the layered benchmark graph gets).
//! Prints wall and CPU (user + sys, this thread) time per task, and for
//! command tasks the mean set-up / run / publish split the report shows.
//!
//! ```sh
//! cargo run --release -p engine --example command-bench -- target/test-guests/one_byte.wasm [N]
//! ```
//!
//! Meant for profiling (`perf record -g target/release/examples/command-bench ...`).

use std::path::PathBuf;
use std::time::Instant;

use engine::runtime::{Runtime, RuntimeConfig};
use engine::store::BlobStore;
use engine::store::mem::MemStore;
use engine::task::message::{CommandOpts, Limits, MsgInput, PluginRef, TaskMessage};

fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().expect("usage: command-bench PLUGIN.wasm [N]"));
    let n: u32 = args.next().map_or(20_000, |s| s.parse().expect("N is a number"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let cfg = RuntimeConfig { cache_dir: tmp.path().join("cache"), max_instances: 3, max_task_memory: 256 << 20 };
    let rt = Runtime::new(cfg).expect("runtime");
    let loaded = rt.load(&path).expect("load");
    let store = MemStore::new();
    let blob = store.put_bytes(b"x").expect("put");
    let inputs = ["a", "b"].map(|name| MsgInput { name: name.into(), list: false, items: vec![blob] });
    let msg = TaskMessage {
        task: 0,
        name: "bench".into(),
        attempt: 1,
        plugin: PluginRef { digest: loaded.digest, path: path.clone() },
        inputs: inputs.to_vec(),
        params: "{}".into(),
        limits: Limits::default(),
        command: CommandOpts::default(),
        deterministic: false,
    };
    let run_start = Instant::now();
    for _ in 0..100 {
        let r = rt.run_task(&msg, &store, 0, run_start);
        assert!(r.outcome.is_ok(), "{:?}", r.outcome);
    }
    let (mut setup, mut run, mut publish) = (0u64, 0u64, 0u64);
    let (t, c) = (Instant::now(), thread_cpu_us());
    for _ in 0..n {
        let r = rt.run_task(&msg, &store, 0, run_start);
        assert!(r.outcome.is_ok(), "{:?}", r.outcome);
        setup += r.metrics.setup_us.unwrap_or(0);
        run += r.metrics.run_us.unwrap_or(0);
        publish += r.metrics.publish_us.unwrap_or(0);
    }
    let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let cpu = (thread_cpu_us() - c) / f64::from(n);
    let n = f64::from(n);
    println!(
        "{}: {wall:.2} µs/task wall, {cpu:.2} µs/task CPU; set-up / run / publish {:.1} / {:.1} / {:.1} µs",
        path.display(),
        setup as f64 / n,
        run as f64 / n,
        publish as f64 / n
    );
}
