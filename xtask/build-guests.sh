#!/usr/bin/env bash
# Builds every guest program for wasm32-wasip1 (release) into
#   target/guests/wasm32-wasip1/release/<name>.wasm
# - the stock plugins (plugins/*), the test guests (tests/guests/rust/*) and
#   the Rust SDK: one cargo workspace rooted at plugins/Cargo.toml;
# - the C SDK example sdk/c/examples/wordcount.c -> c_wordcount.wasm, with
#   Debian's clang + wasi-libc (skipped, loudly, when they are missing; run
#   xtask/setup.sh to install them).
# Idempotent: cargo and the timestamp check make a second run a no-op.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="$root/target/guests"
out_dir="$target_dir/wasm32-wasip1/release"

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "build-guests: rustup target add wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

# The caller's CARGO_TARGET_DIR (the host build's) must not be reused: guest
# builds go to their own directory so they never touch the wasmtime build.
CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --quiet \
  --target wasm32-wasip1 --manifest-path "$root/plugins/Cargo.toml" --workspace

# C example.
c_src="$root/sdk/c/examples/wordcount.c"
c_out="$out_dir/c_wordcount.wasm"
c_missing=""
command -v clang >/dev/null 2>&1 || c_missing="clang"
command -v wasm-ld >/dev/null 2>&1 || c_missing="$c_missing lld"
[ -f /usr/include/wasm32-wasi/stdio.h ] || c_missing="$c_missing wasi-libc"
if [ -n "$c_missing" ]; then
  echo "build-guests: WARNING: SKIPPING the C example ($c_out): missing${c_missing:+ }$c_missing; run xtask/setup.sh" >&2
elif [ ! -f "$c_out" ] || [ "$c_src" -nt "$c_out" ] || [ "$root/sdk/c/engine.h" -nt "$c_out" ]; then
  clang --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Wextra -Werror -mexec-model=reactor \
    -I "$root/sdk/c" -o "$c_out.tmp" "$c_src"
  mv "$c_out.tmp" "$c_out"
fi

echo "build-guests: guests are in $out_dir:"
(cd "$out_dir" && ls -- *.wasm | sed 's/^/  /')
