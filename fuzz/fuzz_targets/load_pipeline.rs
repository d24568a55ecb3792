//! Feed arbitrary bytes to the pipeline loader: it must return a plan or
//! diagnostics that render, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("pipeline.toml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opts = engine::pipeline::LoadOptions { check_plugins: false, ..Default::default() };
    if let Err(d) = engine::pipeline::load(&path, &opts) {
        let _ = d.to_string();
    }
});
