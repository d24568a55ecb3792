#!/usr/bin/env bash
# Builds every guest program for wasm32-wasip1 (release), TARGET being cargo's
# target directory (see xtask/lib.sh; $CARGO_TARGET_DIR is honoured):
#   TARGET/plugins/<name>.wasm      the stock plugins (plugins/*): what `std:<name>`
#                                   names when the engine runs from TARGET/release
#   TARGET/test-guests/<name>.wasm  test-only guests: the Rust ones
#                                   (tests/guests/rust/*), the Rust components
#                                   (tests/guests/components/*, wasm32-wasip2), the C ones
#                                   (tests/guests/c/NAME.c -> c_NAME.wasm, WASI
#                                   commands) and the C SDK example
#                                   (c_wordcount.wasm, a reactor); never plugins
# - Rust: one cargo workspace rooted at plugins/Cargo.toml (stock plugins, test
#   guests, the Rust SDK), compiled once into TARGET/guests/, then copied;
# - C: with Debian's clang + wasi-libc (skipped, loudly, when they are missing;
#   run xtask/setup.sh to install them).
# Idempotent: cargo, a byte comparison and the timestamp check make a second run
# a no-op. Works from any current directory.
#
# Usage: xtask/build-guests.sh [--plugins-only]   (--plugins-only: no C guests)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
plugins_only=0
[ "${1:-}" = --plugins-only ] && plugins_only=1

build_dir="$target_dir/guests"
wasm_dir="$build_dir/wasm32-wasip1/release"
plugins_dir="$target_dir/plugins"
tests_dir="$target_dir/test-guests"
mkdir -p "$plugins_dir" "$tests_dir"

for t in wasm32-wasip1 wasm32-wasip2; do
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$t"; then
    echo "build-guests: rustup target add $t"
    rustup target add "$t"
  fi
done

# Guests get their own cargo target directory so they never touch the host build.
CARGO_TARGET_DIR="$build_dir" cargo build --release --locked --quiet \
  --target wasm32-wasip1 --manifest-path "$root/plugins/Cargo.toml" --workspace
# Component guests (tests/guests/components, their own workspace): wasm32-wasip2.
CARGO_TARGET_DIR="$build_dir" cargo build --release --locked --quiet \
  --target wasm32-wasip2 --manifest-path "$root/tests/guests/components/Cargo.toml" --workspace

# copy_crates DEST CRATE_DIR...: copy each crate's <name>.wasm (from $wasm_dir)
# into DEST when it differs.
copy_crates() {
  local dest="$1" dir name
  shift
  for dir in "$@"; do
    [ -f "$dir/Cargo.toml" ] || continue
    name="$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)"
    if ! cmp -s "$wasm_dir/$name.wasm" "$dest/$name.wasm"; then
      cp "$wasm_dir/$name.wasm" "$dest/$name.wasm.tmp"
      mv "$dest/$name.wasm.tmp" "$dest/$name.wasm"
    fi
  done
}
copy_crates "$plugins_dir" "$root"/plugins/*/
copy_crates "$tests_dir" "$root"/tests/guests/rust/*/
wasm_dir="$build_dir/wasm32-wasip2/release" copy_crates "$tests_dir" "$root"/tests/guests/components/*/

# C guests: the SDK example (a reactor, against sdk/c/engine.h) and every
# tests/guests/c/NAME.c (a WASI command, plain wasi-libc) -> c_NAME.wasm.
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
if [ "$plugins_only" = 0 ]; then
  build_c "$tests_dir/c_wordcount.wasm" "$root/sdk/c/examples/wordcount.c" -mexec-model=reactor -I "$root/sdk/c"
  for c_src in "$root"/tests/guests/c/*.c; do
    [ -f "$c_src" ] || continue
    build_c "$tests_dir/c_$(basename "$c_src" .c).wasm" "$c_src"
  done
fi

list() { (cd "$1" && ls -- *.wasm | sed 's/\.wasm$//' | paste -sd' '); }
echo "build-guests: stock plugins in $plugins_dir ($(size_of "$plugins_dir")): $(list "$plugins_dir")"
echo "build-guests: test guests in $tests_dir ($(size_of "$tests_dir")): $(list "$tests_dir")"
