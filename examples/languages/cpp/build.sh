#!/usr/bin/env bash
# Builds the C++ word-count task wordcount.cpp -> cpp_wordcount.wasm with
# Debian's clang++ + wasi-libc + libc++-dev-wasm32 (xtask/setup.sh and
# xtask/toolchains.sh install them). C++ uses the C SDK header sdk/c/engine.h.
source "$(dirname "$0")/../lib.sh"
command -v clang++ >/dev/null 2>&1 || missing "clang++ not found (apt-get install clang)"
command -v wasm-ld >/dev/null 2>&1 || missing "wasm-ld not found (apt-get install lld)"
[ -f /usr/include/wasm32-wasi/stdio.h ] || missing "wasi-libc not found (apt-get install wasi-libc)"
[ -f /usr/lib/wasm32-wasi/libc++.a ] || missing "libc++ for wasm32 not found (apt-get install libc++-dev-wasm32)"

out="$out_dir/cpp_wordcount.wasm"
src="$root/examples/languages/cpp/wordcount.cpp"
if ! up_to_date "$out" "$src" "$root/sdk/c/engine.h" "$0"; then
  clang++ --target=wasm32-wasi --sysroot=/usr -std=c++17 -O2 -s -Wall -Wextra -Werror -fno-exceptions \
    -mexec-model=reactor -I "$root/sdk/c" -o "$out.tmp" "$src"
  mv "$out.tmp" "$out"
fi
done_msg "$out"
