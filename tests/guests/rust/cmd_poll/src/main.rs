//! `cmd_poll`: a test guest, a plain WASI command that calls `poll_oneoff`
//! directly with the subscriptions its arguments name and prints, on stdout,
//! one line for the call (`n=N` or `errno=E`) and one per event
//! (`ud=U err=E type=T nbytes=B flags=F`), in the order the engine wrote them.
//!
//! Each argument is one subscription (userdata = its position, from 1):
//!
//! * `rel:MS`: relative monotonic clock of MS milliseconds;
//! * `abs:MS`: absolute monotonic clock at now + MS (`clock_time_get`);
//! * `realabs:MS`: absolute realtime clock at now + MS (MS may be negative);
//! * `clock:ID:MS`: relative clock on clock id ID;
//! * `read:FD`, `write:FD`: fd readiness; `read:/in/NAME` opens that file
//!   first and reads `SKIP` bytes when written `read:/in/NAME:SKIP`.
//!
//! A final line `slept>=MS` or `slept<MS` compares the time the call took with
//! the environment variable `EXPECT_MS`, when it is set.

use std::io::Read;
use std::os::fd::AsRawFd;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn poll_oneoff(subs: *const u8, events: *mut u8, n: u32, nevents: *mut u32) -> u16;
    fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
}

fn now(id: u32) -> u64 {
    let mut t = 0u64;
    let e = unsafe { clock_time_get(id, 1, &mut t) };
    assert_eq!(e, 0, "clock_time_get");
    t
}

fn clock(sub: &mut [u8], id: u32, timeout: u64, abs: bool) {
    sub[8] = 0;
    sub[16..20].copy_from_slice(&id.to_le_bytes());
    sub[24..32].copy_from_slice(&timeout.to_le_bytes());
    sub[40..42].copy_from_slice(&(abs as u16).to_le_bytes());
}

fn ms(s: &str) -> i64 {
    s.parse::<i64>().expect("milliseconds") * 1_000_000
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut subs = vec![0u64; args.len() * 6];
    let mut files = Vec::new();
    {
        let bytes: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(subs.as_mut_ptr().cast(), args.len() * 48) };
        for (i, a) in args.iter().enumerate() {
            let sub = &mut bytes[i * 48..(i + 1) * 48];
            sub[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let parts: Vec<&str> = a.split(':').collect();
            match parts[0] {
                "rel" => clock(sub, 1, ms(parts[1]) as u64, false),
                "abs" => clock(sub, 1, (now(1) as i64 + ms(parts[1])).max(0) as u64, true),
                "realabs" => clock(sub, 0, (now(0) as i64 + ms(parts[1])) as u64, true),
                "clock" => clock(sub, parts[1].parse().unwrap(), ms(parts[2]) as u64, false),
                "read" | "write" => {
                    sub[8] = if parts[0] == "read" { 1 } else { 2 };
                    let fd = match parts[1].parse::<u32>() {
                        Ok(fd) => fd,
                        Err(_) => {
                            let mut f = std::fs::File::open(parts[1]).expect("open");
                            if let Some(skip) = parts.get(2) {
                                let mut buf = vec![0u8; skip.parse().unwrap()];
                                f.read_exact(&mut buf).expect("skip");
                            }
                            let fd = f.as_raw_fd() as u32;
                            files.push(f);
                            fd
                        }
                    };
                    sub[16..20].copy_from_slice(&fd.to_le_bytes());
                }
                other => panic!("unknown subscription {other}"),
            }
        }
    }
    let mut events = vec![0u64; args.len().max(1) * 4];
    let mut n = 0u32;
    let start = std::time::Instant::now();
    let e = unsafe { poll_oneoff(subs.as_ptr().cast(), events.as_mut_ptr().cast(), args.len() as u32, &mut n) };
    let took = start.elapsed();
    if e != 0 {
        println!("errno={e}");
    } else {
        println!("n={n}");
        let ev: &[u8] = unsafe { std::slice::from_raw_parts(events.as_ptr().cast(), events.len() * 8) };
        for i in 0..n as usize {
            let e = &ev[i * 32..(i + 1) * 32];
            let ud = u64::from_le_bytes(e[0..8].try_into().unwrap());
            let err = u16::from_le_bytes([e[8], e[9]]);
            let nbytes = u64::from_le_bytes(e[16..24].try_into().unwrap());
            let flags = u16::from_le_bytes([e[24], e[25]]);
            println!("ud={ud} err={err} type={} nbytes={nbytes} flags={flags}", e[10]);
        }
    }
    if let Ok(expect) = std::env::var("EXPECT_MS") {
        let expect: u128 = expect.parse().unwrap();
        println!("{}", if took.as_millis() >= expect { format!("slept>={expect}") } else { format!("slept<{expect}") });
    }
    drop(files);
}
