//! `one_byte`: the command-task benchmark guest (bench/): a Rust `std`
//! program that writes one byte to `/out/out`, the output `out` that the
//! benchmark graphs wire into their downstream tasks.

fn main() {
    if let Err(e) = std::fs::write("/out/out", b"x") {
        eprintln!("one_byte: {e}");
        std::process::exit(1);
    }
}
