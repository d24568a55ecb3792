//! Store open time: a local store holding N small blobs (default 1,000,000,
//! each `blob NNNNNNNN`, in the one pack of the process that wrote them) is
//! opened RUNS times (default 9) with its persisted pack index, and 3 times
//! with the index moved away (a full scan, as every open did before the
//! index). Prints the medians of wall and CPU (user + sys) time, the time
//! to write the store and close it (which writes the index), and the cost of
//! a first read (checked against the digest) and of a lookup of a blob that
//! is not there.
//!
//! Run with `cargo run --release -p engine --example store-open -- [N] [RUNS]`
//! (or `bash bench/cache.sh --open [N]`); the store goes in `$TMPDIR`, and
//! every open after the first finds the files in the page cache.

use std::time::{Duration, Instant};

use engine::store::local::{LocalStore, read_all};
use engine::store::{BlobStore, Digest};

/// CPU time (user + sys) of this process so far.
fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Open the store `runs` times; medians of (wall, CPU).
fn open_times(dir: &std::path::Path, runs: usize) -> (Duration, Duration) {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu());
        let s = LocalStore::open(dir).expect("open the store");
        walls.push(t.elapsed());
        cpus.push(cpu() - c);
        drop(s);
    }
    walls.sort();
    cpus.sort();
    (walls[runs / 2], cpus[runs / 2])
}

fn blob(i: usize) -> Vec<u8> {
    format!("blob {i:08}").into_bytes()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(9).max(1);
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path().join("store");

    let t = Instant::now();
    let s = LocalStore::open(&dir).expect("create the store");
    for i in 0..n {
        s.put_bytes(&blob(i)).expect("put");
    }
    s.sync().expect("sync");
    let write = t.elapsed();
    let (t, c) = (Instant::now(), cpu());
    drop(s);
    let (close, close_cpu) = (t.elapsed(), cpu() - c);
    let packs: Vec<_> =
        std::fs::read_dir(dir.join("packs")).expect("packs").map(|e| e.expect("entry").path()).collect();
    let size = |ext: &str| {
        packs
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let (pack_bytes, idx_bytes) = (size("pack"), size("idx"));

    let (wall, cpu_t) = open_times(&dir, runs);

    // First reads (each checked against its digest), and lookups that miss.
    let s = LocalStore::open(&dir).expect("open the store");
    let k = 10_000.min(n);
    let t = Instant::now();
    for j in 0..k {
        let i = j.wrapping_mul(7_919) % n;
        assert_eq!(read_all(&s, &Digest::of(&blob(i))).expect("read"), blob(i));
    }
    let read = t.elapsed() / k.max(1) as u32;
    let absent: Vec<Digest> = (0..k).map(|j| Digest::of(format!("absent {j}").as_bytes())).collect();
    let t = Instant::now();
    for d in &absent {
        assert_eq!(s.get_action(d).expect("lookup"), None);
    }
    let miss = t.elapsed() / k.max(1) as u32;
    drop(s);

    // The same store without its index: every record is read and hashed.
    let idx: Vec<_> = packs.iter().filter(|p| p.extension().is_some_and(|x| x == "idx")).cloned().collect();
    for p in &idx {
        std::fs::rename(p, p.with_extension("idx-away")).expect("move the index away");
    }
    let (scan_wall, scan_cpu) = open_times(&dir, 3);
    for p in &idx {
        std::fs::rename(p.with_extension("idx-away"), p).expect("put the index back");
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("blobs: {n}; pack {} MiB, index {} MiB", pack_bytes >> 20, idx_bytes >> 20);
    println!(
        "write {n} blobs + sync: {:.2} s; close (writes the index): wall {}, cpu {}",
        write.as_secs_f64(),
        ms(close),
        ms(close_cpu)
    );
    println!("open with the index (median of {runs}): wall {}, cpu {}", ms(wall), ms(cpu_t));
    println!("open without it, scanning (median of 3): wall {}, cpu {}", ms(scan_wall), ms(scan_cpu));
    println!(
        "first read of an indexed blob: {:.2} µs; action lookup that misses: {:.2} µs",
        read.as_secs_f64() * 1e6,
        miss.as_secs_f64() * 1e6
    );
    println!("load average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
