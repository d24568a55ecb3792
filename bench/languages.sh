#!/usr/bin/env bash
# Benchmarks the word-count task in every guest language (docs/languages.md;
# the components: rust_p2 (wasm32-wasip2, wit-bindgen; the test guest
# comp_wordcount), python (componentize-py), javascript (componentize-qjs,
# QuickJS) and javascript_spidermonkey (componentize-js), the last two from
# one source):
# module size, median per-task start-up and throughput on one 64 MiB input.
#
#   bash bench/languages.sh [RUNS]      (RUNS: start-up tasks per language, default 21)
#
# Needs the engine (`cargo build --release -p engine`; $ENGINE overrides the
# path), the stock plugins (xtask/build-guests.sh) and the language modules
# (xtask/toolchains.sh && xtask/build-languages.sh); a missing module is
# reported as `missing` in its row. Works in TARGET/bench/languages/ (TARGET:
# cargo's target directory, see xtask/lib.sh), from any current directory.
#
# Method (all with `--executor sync`, one task at a time, times from the
# report's per-task `duration_us`, which covers instantiation and `run`):
#  - first run: the wall time of `engine run` of one task on a 1-byte input
#    with an empty module cache (reading, validating and compiling the module
#    with Cranelift, then running it once).
#  - cached load: the plugin's `load_ms` in the report of the next run
#    (reading the compiled code from the engine's module cache).
#  - start-up: RUNS tasks on a 1-byte input after that first run (so the
#    compiled module comes from the engine's cache); the median is printed.
#  - throughput: one task on the 64 MiB input (examples/wordcount/corpus.txt
#    repeated, cut at a line end), default params; MiB/s = 64 / seconds.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
runs="${1:-21}"
engine="${ENGINE:-$target_dir/release/engine}"
[ -x "$engine" ] || { echo "bench: no engine at $engine (cargo build --release -p engine, or set ENGINE)" >&2; exit 2; }
work="$target_dir/bench/languages"
mkdir -p "$work"
export ENGINE_CACHE_DIR="$work/module-cache"

input="$work/input-64MiB.txt"
if [ ! -f "$input" ]; then
  python3 - "$root/examples/wordcount/corpus.txt" "$input" <<'PY'
import sys
corpus = open(sys.argv[1], "rb").read()
size = 64 << 20
data = corpus * (size // len(corpus) + 1)
data = data[: data.rindex(b"\n", 0, size) + 1]
open(sys.argv[2], "wb").write(data)
PY
fi
printf 'x' >"$work/tiny.txt"

# module path for a language ("rust" = the stock plugin)
module() {
  case "$1" in
    rust) echo "$target_dir/plugins/wordcount.wasm" ;;
    rust_p2) echo "$target_dir/test-guests/comp_wordcount.wasm" ;;
    *) echo "$target_dir/languages/$1_wordcount.wasm" ;;
  esac
}

# durations LANG INPUT COUNT: prints the duration_us of each task, one a line.
durations() {
  local lang="$1" in="$2" count="$3" p="$work/$1.toml"
  cat >"$p" <<TOML
[pipeline]
name = "bench-$lang"

[plugins]
wc = "$(module "$lang")"

[tasks.count]
plugin = "wc"
foreach = { i = { range = [0, $count] } }
inputs = { text = "file:$in" }
resources = { memory = "1GiB" }
timeout = "600s"
TOML
  "$engine" run -q --no-cache --executor sync --store "$work/store" --report "$work/$lang.json" "$p" >/dev/null
  python3 -c 'import json,sys; [print(t["duration_us"]) for t in json.load(open(sys.argv[1]))["tasks"]]' "$work/$lang.json"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-24s %12s %10s %12s %15s %12s %13s\n' language "module size" "first run" "cached load" "start-up (med)" "64 MiB time" throughput
for lang in rust c cpp zig go assemblyscript rust_p2 python javascript javascript_spidermonkey; do
  m="$(module "$lang")"
  if [ ! -f "$m" ]; then
    printf '%-24s %12s\n' "$lang" missing
    continue
  fi
  size=$(wc -c <"$m")
  rm -rf "$ENGINE_CACHE_DIR"
  t0=$(date +%s%N)
  durations "$lang" "$work/tiny.txt" 1 >/dev/null # compiles into the cache
  first=$((($(date +%s%N) - t0) / 1000))
  start=$(durations "$lang" "$work/tiny.txt" "$runs" | median)
  # that run loaded the compiled code from the cache: the plugin's load_ms
  cached=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"][0]["load_ms"])' "$work/$lang.json")
  big=$(durations "$lang" "$input" 1)
  awk -v l="$lang" -v s="$size" -v f="$first" -v c="$cached" -v st="$start" -v b="$big" 'BEGIN {
    printf "%-24s %8.1f KiB %8.2f s %9.1f ms %12.3f ms %10.2f s %7.1f MiB/s\n", l, s / 1024, f / 1e6, c, st / 1000, b / 1e6, 64 / (b / 1e6)
  }'
done
