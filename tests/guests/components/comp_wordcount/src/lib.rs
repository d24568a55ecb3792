//! The word count as a Rust component of the `engine:task@1.0.0` world
//! (wasm32-wasip2, wit-bindgen over sdk/wit/engine-task.wit): the same bytes
//! as the stock `wordcount` plugin (plugins/wordcount, a core module over
//! the Rust SDK) for the same input and params, so that the languages test
//! and `bench/languages.sh` compare a Rust component with the others.
//!
//! Params (JSON, read by hand to keep the guest free of serde):
//! `lowercase` (boolean, default true), `min_len` (integer >= 0, default 1).

wit_bindgen::generate!({ path: "../../../../sdk/wit/engine-task.wit", world: "task" });

use std::collections::BTreeMap;

use engine::task::host;

/// Bytes asked of the engine per read.
const CHUNK: u32 = 1 << 20;

struct Task;

/// The value after `"key":` in a flat JSON object, up to the next `,` or `}`.
fn param<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_end())
}

fn count_line(line: &[u8], lowercase: bool, min_len: usize, counts: &mut BTreeMap<String, u64>) {
    let text = String::from_utf8_lossy(line);
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = if lowercase { word.to_lowercase() } else { word.to_owned() };
        if word.chars().count() >= min_len {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
}

impl Guest for Task {
    fn run() -> Result<(), String> {
        let params = host::params();
        let lowercase = match param(&params, "lowercase") {
            None => true,
            Some("true") => true,
            Some("false") => false,
            Some(_) => return Err("param `lowercase` must be a boolean".into()),
        };
        let min_len = match param(&params, "min_len") {
            None => 1,
            Some(v) => v.parse::<usize>().map_err(|_| "param `min_len` must be an integer >= 0".to_string())?,
        };
        let item = host::find_input("text").ok_or("missing input `text`")?;
        let mut counts = BTreeMap::new();
        // Lines, as the plugin reads them: up to and including each `\n`.
        let mut line = Vec::new();
        let mut offset = 0u64;
        loop {
            let piece = host::read(item, offset, CHUNK).ok_or("reading input `text`: no such item")?;
            if piece.is_empty() {
                break;
            }
            offset += piece.len() as u64;
            let mut rest = &piece[..];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&rest[..=i]);
                count_line(&line, lowercase, min_len, &mut counts);
                line.clear();
                rest = &rest[i + 1..];
            }
            line.extend_from_slice(rest);
        }
        if !line.is_empty() {
            count_line(&line, lowercase, min_len, &mut counts);
        }
        let mut text = String::new();
        for (word, n) in &counts {
            text.push_str(word);
            text.push('\t');
            text.push_str(&n.to_string());
            text.push('\n');
        }
        let out = host::output_open("out");
        for part in text.as_bytes().chunks(CHUNK as usize) {
            if !host::output_write(out, part) {
                return Err("writing output `out` failed".into());
            }
        }
        host::log(host::Level::Info, &format!("{} distinct words", counts.len()));
        Ok(())
    }
}

export!(Task);
