#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this). Works from
# any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The README's main job first, end to end (the first command of the Quick
# start): it installs what the demo needs, builds the engine and the stock
# plugins (the test build reuses both) and runs examples/wordcount.
bash "$root/xtask/demo.sh"
bash "$root/xtask/setup.sh"
# The pinned Python venv ($CARGO_TARGET_DIR/pyenv): moto_server for the S3 store
# tests, Dask (tests/all/dask.rs).
bash "$root/xtask/setup-python.sh"
# Gates first, failing fast: formatting of every Rust workspace (the engine, the
# guests in plugins/, fuzz/), then clippy with warnings as errors, which is how
# any warning fails CI: on the engine with every target (library, binary, the
# test binary, examples), and on the guest workspace (stock plugins, test
# guests, the Rust SDK) in the guests' own target directory. Not RUSTFLAGS=-D
# warnings: cargo rebuilds every crate, wasmtime included, whenever RUSTFLAGS
# changes. Clippy runs in the release profile so its proc macros are shared
# with the release test build; see docs/performance.md for what the gates cost.
for manifest in Cargo.toml plugins/Cargo.toml fuzz/Cargo.toml tests/guests/components/Cargo.toml; do
  cargo fmt --all --check --manifest-path "$root/$manifest" ||
    { echo "test: \`cargo fmt --all --manifest-path $manifest\` fixes the formatting above" >&2; exit 1; }
done
cargo clippy --manifest-path "$root/Cargo.toml" --release --locked -p engine --all-targets -- -D warnings
CARGO_TARGET_DIR="$target_dir/guests" cargo clippy --manifest-path "$root/plugins/Cargo.toml" --release --locked \
  --workspace --target wasm32-wasip1 -- -D warnings
bash "$root/xtask/build-guests.sh"
# Guest-language toolchains (Zig, Go, AssemblyScript, C++) and their examples;
# see docs/languages.md. A missing toolchain skips only its language here, but
# the tests in tests/all/languages.rs then fail when CI is set.
bash "$root/xtask/toolchains.sh"
bash "$root/xtask/build-languages.sh"
# Third-party WASI programs (YoWASP yosys, nextpnr-ice40, icepack, icepll from
# PyPI, digests checked) for examples/fpga and tests/all/programs.rs.
bash "$root/xtask/fetch-wasi-programs.sh"
cd "$root"
cargo test --release --locked -p engine "$@"
# The official WASI test suite, only with a checkout in WASI_TESTSUITE
# (tests/wasi-testsuite/README.md); otherwise one line and exit 0.
bash "$root/tests/wasi-testsuite/run.sh"
# The first hour of a new user, against the binary the tests just built:
# install into a temp prefix, run std: plugins and an SDK task made outside the repo.
bash "$root/xtask/first-hour.sh"
# The packaging test, once: the engine-dask wheel (maturin, reusing the release
# build) in a fresh venv, a Dask cluster started from it, wordcount on it.
bash "$root/xtask/package-test.sh"
