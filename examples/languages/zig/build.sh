#!/usr/bin/env bash
# Builds the Zig word-count task wordcount.zig -> zig_wordcount.wasm with the
# Zig from PyPI `ziglang` (xtask/toolchains.sh installs it into
# target/toolchains/venv), or a `zig` on PATH.
source "$(dirname "$0")/../lib.sh"
if [ -x "$tc/venv/bin/python" ] && "$tc/venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  zig=("$tc/venv/bin/python" -m ziglang)
elif command -v zig >/dev/null 2>&1; then
  zig=(zig)
else
  missing "zig not found (run xtask/toolchains.sh: pip install ziglang)"
fi
export ZIG_GLOBAL_CACHE_DIR="$tc/zig-cache" ZIG_LOCAL_CACHE_DIR="$tc/zig-cache"

out="$out_dir/zig_wordcount.wasm"
src="$root/examples/languages/zig/wordcount.zig"
if ! up_to_date "$out" "$src" "$root/sdk/zig" "$0"; then
  "${zig[@]}" build-exe -target wasm32-wasi -O ReleaseSmall -fstrip -fno-entry -rdynamic \
    --dep engine -Mroot="$src" -Mengine="$root/sdk/zig/engine.zig" -femit-bin="$out.tmp"
  mv "$out.tmp" "$out"
  rm -f "$out.tmp.o"
fi
done_msg "$out"
