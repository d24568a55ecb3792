#!/usr/bin/env bash
# Builds the C word-count task (the C SDK example sdk/c/examples/wordcount.c)
# -> c_wordcount.wasm, and the C WASI command words.c -> c_words.wasm, with
# Debian's clang + wasi-libc (xtask/setup.sh installs them).
source "$(dirname "$0")/../lib.sh"
command -v clang >/dev/null 2>&1 || missing "clang not found (apt-get install clang)"
command -v wasm-ld >/dev/null 2>&1 || missing "wasm-ld not found (apt-get install lld)"
[ -f /usr/include/wasm32-wasi/stdio.h ] || missing "wasi-libc not found (apt-get install wasi-libc)"
cflags=(--target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Wextra -Werror)

out="$out_dir/c_wordcount.wasm"
if ! up_to_date "$out" "$root/sdk/c" "$0"; then
  clang "${cflags[@]}" -mexec-model=reactor -I "$root/sdk/c" -o "$out.tmp" "$root/sdk/c/examples/wordcount.c"
  mv "$out.tmp" "$out"
fi
done_msg "$out"

out="$out_dir/c_words.wasm"
if ! up_to_date "$out" "$root/examples/languages/c/words.c" "$0"; then
  clang "${cflags[@]}" -o "$out.tmp" "$root/examples/languages/c/words.c"
  mv "$out.tmp" "$out"
fi
done_msg "$out"
