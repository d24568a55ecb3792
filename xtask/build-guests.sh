#!/usr/bin/env bash
# Builds every guest program for wasm32-wasip1 (release) into
#   target/guests/wasm32-wasip1/release/<name>.wasm
# - the stock plugins (plugins/*), the test guests (tests/guests/rust/*) and
#   the Rust SDK: one cargo workspace rooted at plugins/Cargo.toml;
# - the C SDK example sdk/c/examples/wordcount.c -> c_wordcount.wasm and the
#   C conformance guest tests/guests/c/fs_conformance.c -> c_fs_conformance.wasm,
#   with Debian's clang + wasi-libc (skipped, loudly, when they are missing;
#   run xtask/setup.sh to install them).
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

# C guests: the SDK example (a reactor) and the WASI filesystem conformance
# command (tests/guests/c/fs_conformance.c -> c_fs_conformance.wasm).
c_missing=""
command -v clang >/dev/null 2>&1 || c_missing="clang"
command -v wasm-ld >/dev/null 2>&1 || c_missing="$c_missing lld"
[ -f /usr/include/wasm32-wasi/stdio.h ] || c_missing="$c_missing wasi-libc"
# build_c OUT SRC [CLANG ARGS...]: rebuild OUT when SRC or engine.h is newer.
build_c() {
  local out="$1" src="$2"
  shift 2
  if [ -n "$c_missing" ]; then
    echo "build-guests: WARNING: SKIPPING $out: missing${c_missing:+ }$c_missing; run xtask/setup.sh" >&2
  elif [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$root/sdk/c/engine.h" -nt "$out" ]; then
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Wextra -Werror "$@" -o "$out.tmp" "$src"
    mv "$out.tmp" "$out"
  fi
}
build_c "$out_dir/c_wordcount.wasm" "$root/sdk/c/examples/wordcount.c" -mexec-model=reactor -I "$root/sdk/c"
build_c "$out_dir/c_fs_conformance.wasm" "$root/tests/guests/c/fs_conformance.c"

echo "build-guests: guests are in $out_dir:"
(cd "$out_dir" && ls -- *.wasm | sed 's/^/  /')
