//! A `wasi:cli/command` component (Rust on wasm32-wasip2), for tests: copies
//! `/in/text` uppercased to `/out/upper`, writes its arguments to
//! `/out/args`, prints `hello from p2` on stdout and, when `/tmp` exists,
//! round-trips a file there. Its first argument can change that: `exit N`
//! exits with code N after writing, `loop` spins forever, `grow` allocates
//! until the memory limit stops it.

use std::fs;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("loop") => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some("grow") => {
            let mut keep: Vec<Vec<u8>> = Vec::new();
            loop {
                keep.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&keep);
            }
        }
        _ => {}
    }
    let text = fs::read("/in/text").unwrap_or_default();
    fs::write("/out/upper", text.to_ascii_uppercase()).expect("write /out/upper");
    fs::write("/out/args", format!("{:?}\n", &args[1..])).expect("write /out/args");
    if fs::metadata("/tmp").is_ok() {
        fs::write("/tmp/scratch", b"kept").expect("write /tmp/scratch");
        let back = fs::read("/tmp/scratch").expect("read /tmp/scratch");
        fs::write("/out/scratch", back).expect("write /out/scratch");
    }
    println!("hello from p2");
    std::io::stdout().flush().ok();
    if let (Some("exit"), Some(code)) = (args.get(1).map(String::as_str), args.get(2)) {
        std::process::exit(code.parse().unwrap_or(1));
    }
}
