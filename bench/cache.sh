#!/usr/bin/env bash
# The action-cache benchmark (issue 12): on the layered graph (bench/shapes.py,
# every task the no-op SDK plugin, given a distinct `params = { i = N }` so
# that no two tasks share a cache key), per size:
#   check        `engine check`
#   no cache     `engine run --no-cache` on a fresh store
#   misses       `engine run` on a fresh store: every task a miss (lookup + record)
#   all cached   `engine run` again on that store: every task a hit
# RUNS (default 3) rounds of the four, back to back; each figure is the median
# over rounds, wall time. Prints a markdown table, with the per-task cost of a
# miss (median over rounds of (misses - no cache) / n, by wall and by CPU
# time, user + system) and the fully cached rerun as a multiple of `check`.
# Needs /usr/bin/time (Debian package `time`).
#
# Usage: bench/cache.sh [SIZES...]   (default: 100000)
#        bench/cache.sh --open [BLOBS] [RUNS]   (default: 1000000 9)
# Set ENGINE to use an existing binary instead of building one.
# Works from any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
#
# --open: store open time. A local store with BLOBS small blobs in one pack
# (engine/examples/store-open.rs) is opened RUNS times with its persisted pack
# index and 3 times without it (a full scan); prints medians of wall and CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ "${1:-}" = "--open" ]; then
  shift
  exec cargo run --quiet --release -p engine --manifest-path "$root/Cargo.toml" --example store-open -- "$@"
fi
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100000)
runs=${RUNS:-3}
if [ -z "${ENGINE:-}" ]; then
  cargo build --release -p engine --manifest-path "$root/Cargo.toml" >&2
  ENGINE="$target_dir/release/engine"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wat2wasm comes from the `wasmtime` wheel in bench/.venv (as in bench/run.sh).
bench_venv
"$venv/bin/python" "$root/bench/wat2wasm.py" "$root/bench/noop.wat" "$work/noop.wasm" >/dev/null

# run "$@" once; prints "WALL CPU" in seconds (CPU = user + system, children included).
timed() {
  /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/time"
}
# median of the numbers on stdin
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "| tasks | check | no cache | misses | all cached | miss cost / task (wall) | miss cost / task (CPU) | all cached / check |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  dir="$work/layered-$n"
  mkdir -p "$dir"
  python3 "$root/bench/gen_pipeline.py" --shape layered --n "$n" --plugin "$work/noop.wasm" --out "$dir/raw.toml" >/dev/null
  awk '/^plugin = "noop"$/ { print; print "params = { i = " (++i) " }"; next } { print }' "$dir/raw.toml" >"$dir/pipeline.toml"
  p="$dir/pipeline.toml"
  : >"$work/rows"
  # One round = check, a --no-cache run on a fresh store, a caching run on a
  # fresh store (all misses), and a rerun of it (all hits), back to back, so
  # that the pairs compared see the same machine; the miss cost is the median
  # over rounds of (misses - no cache), by wall and by CPU time.
  for _ in $(seq "$runs"); do
    rm -rf "$dir/a" "$dir/b"
    c=$(timed "$ENGINE" check "$p")
    a=$(timed "$ENGINE" run "$p" --quiet --no-cache --store "$dir/a")
    b=$(timed "$ENGINE" run "$p" --quiet --store "$dir/b")
    h=$(timed "$ENGINE" run "$p" --quiet --store "$dir/b")
    echo "$c $a $b $h" >>"$work/rows"
  done
  col() { awk -v k="$1" '{ print $k }' "$work/rows" | med; }
  check=$(col 1) nocache=$(col 3) misses=$(col 5) cached=$(col 7)
  per_wall=$(awk -v n="$n" '{ printf "%.3f\n", ($5 - $3) * 1000000 / n }' "$work/rows" | med)
  per_cpu=$(awk -v n="$n" '{ printf "%.3f\n", ($6 - $4) * 1000000 / n }' "$work/rows" | med)
  ratio=$(awk -v a="$cached" -v b="$check" 'BEGIN { printf "%.2f", a / b }')
  printf "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f µs | %.2f µs | %sx |\n" "$n" "$check" "$nocache" "$misses" "$cached" "$per_wall" "$per_cpu" "$ratio"
done
