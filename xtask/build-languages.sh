#!/usr/bin/env bash
# Builds every guest-language example (examples/languages/<lang>/build.sh)
# into TARGET/languages/ (TARGET: cargo's target directory, see xtask/lib.sh):
# <lang>_wordcount.wasm for c, cpp, zig, go, assemblyscript, python,
# javascript (QuickJS) and javascript_spidermonkey (components), plus the
# WASI commands c_words.wasm and go_uniq.wasm.
# Run xtask/toolchains.sh first (xtask/test.sh does).
#
# A language whose toolchain is missing is skipped, and said so loudly:
#   SKIPPED <lang>: <why>
# Any other build failure fails this script. Idempotent: each build script
# rebuilds only when a source is newer than its output.
#
# Usage: xtask/build-languages.sh [lang...]   (default: every language)
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 2
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(c cpp zig go assemblyscript python javascript javascript_spidermonkey)

failed=()
skipped=()
for lang in "${langs[@]}"; do
  script="$root/examples/languages/$lang/build.sh"
  if [ ! -f "$script" ]; then
    echo "build-languages: no such language \`$lang\` (no $script)" >&2
    exit 2
  fi
  start=$(date +%s)
  err="$(mktemp)"
  bash "$script" 2>"$err"
  rc=$?
  if [ $rc -eq 77 ]; then
    why="$(sed -n 's/^missing toolchain: //p' "$err" | head -1)"
    echo "##################################################################" >&2
    echo "SKIPPED $lang: ${why:-toolchain missing}" >&2
    echo "##################################################################" >&2
    skipped+=("$lang")
  elif [ $rc -ne 0 ]; then
    cat "$err" >&2
    echo "build-languages: FAILED $lang (exit $rc)" >&2
    failed+=("$lang")
  else
    cat "$err" >&2
    echo "build-languages: $lang ok in $(($(date +%s) - start))s"
  fi
  rm -f "$err"
done

[ ${#skipped[@]} -eq 0 ] || echo "build-languages: SKIPPED ${skipped[*]} (run xtask/toolchains.sh)" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "build-languages: FAILED ${failed[*]}" >&2
  exit 1
fi
exit 0
