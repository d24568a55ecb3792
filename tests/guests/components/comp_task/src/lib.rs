//! A task component of the `engine:task@1.0.0` world, for tests. The `mode`
//! param picks what it does:
//!
//! * absent: uppercases input `text` into output `out` (read in 5-byte
//!   pieces), writes output `meta` (`items=N attempt=A text=SIZE params=JSON`),
//!   closes `meta` and checks a write after close returns false, logs one line;
//! * `"fail"`: returns `err("no good: ...")`;
//! * `"grow"`: allocates 1 MiB blocks until the memory limit stops it;
//! * `"loop"`: never returns;
//! * `"badname"`: opens output `../x` (a trap);
//! * `"exit"`: calls `wasi:cli/exit` with an error (exit code 1).

wit_bindgen::generate!({ path: "../../../../sdk/wit/engine-task.wit", world: "task" });

use engine::task::host;

struct Task;

impl Guest for Task {
    fn run() -> Result<(), String> {
        let params = host::params();
        let mode =
            ["fail", "grow", "loop", "badname", "exit"].into_iter().find(|m| params.contains(&format!("\"{m}\"")));
        match mode {
            Some("fail") => return Err(format!("no good: params were {params}")),
            Some("grow") => {
                let mut keep: Vec<Vec<u8>> = Vec::new();
                loop {
                    keep.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&keep);
                }
            }
            Some("loop") => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("badname") => {
                host::output_open("../x");
                return Ok(());
            }
            Some("exit") => std::process::exit(1),
            _ => {}
        }
        let item = host::find_input("text").ok_or("no input `text`")?;
        let out = host::output_open("out");
        let mut offset = 0u64;
        loop {
            let piece = host::read(item, offset, 5).ok_or("bad item")?;
            if piece.is_empty() {
                break;
            }
            offset += piece.len() as u64;
            if !host::output_write(out, &piece.to_ascii_uppercase()) {
                return Err("write failed".into());
            }
        }
        let meta = host::output_open("meta");
        let size = host::inputs().iter().find(|i| i.name == "text").map_or(0, |i| i.size);
        let line = format!("items={} attempt={} text={size} params={params}\n", host::inputs().len(), host::attempt());
        host::output_write(meta, line.as_bytes());
        if !host::output_close(meta) || host::output_write(meta, b"late") || host::read(99, 0, 1).is_some() {
            return Err("closed output or bad item accepted".into());
        }
        host::log(host::Level::Info, &format!("uppercased {offset} bytes"));
        eprintln!("to stderr");
        Ok(())
    }
}

export!(Task);
