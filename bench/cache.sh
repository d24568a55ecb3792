#!/usr/bin/env bash
# The action-cache benchmark (issue 12): on the layered graph (bench/shapes.py,
# every task the no-op SDK plugin, given a distinct `params = { i = N }` so
# that no two tasks share a cache key), per size:
#   check        `engine check`
#   no cache     `engine run --no-cache` on a fresh store
#   misses       `engine run` on a fresh store: every task a miss (lookup + record)
#   all cached   `engine run` again on that store: every task a hit
# Each figure is the median of RUNS (default 3) runs, wall time. Prints a
# markdown table, with the per-task cost of a miss ((misses - no cache) / n)
# and the fully cached rerun as a multiple of `check`.
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
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
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
venv="$root/bench/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "bench: creating $venv" >&2
  python3 -m venv "$venv"
fi
if ! cmp -s "$root/bench/requirements.txt" "$venv/.requirements.installed"; then
  echo "bench: installing bench/requirements.txt into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/requirements.txt"
  cp "$root/bench/requirements.txt" "$venv/.requirements.installed"
fi
"$venv/bin/python" "$root/bench/wat2wasm.py" "$root/bench/noop.wat" "$work/noop.wasm" >/dev/null

# median WALL-CLOCK seconds of running "$@" $runs times; $prepare runs before each.
median() {
  local prepare="$1"
  shift
  local ts=()
  for _ in $(seq "$runs"); do
    eval "$prepare"
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    ts+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

echo "| tasks | check | no cache | misses | all cached | miss cost / task | all cached / check |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  dir="$work/layered-$n"
  mkdir -p "$dir"
  python3 "$root/bench/gen_pipeline.py" --shape layered --n "$n" --plugin "$work/noop.wasm" --out "$dir/raw.toml" >/dev/null
  awk '/^plugin = "noop"$/ { print; print "params = { i = " (++i) " }"; next } { print }' "$dir/raw.toml" >"$dir/pipeline.toml"
  p="$dir/pipeline.toml"
  check=$(median : "$ENGINE" check "$p")
  nocache=$(median "rm -rf $dir/a" "$ENGINE" run "$p" --quiet --no-cache --store "$dir/a")
  misses=$(median "rm -rf $dir/b" "$ENGINE" run "$p" --quiet --store "$dir/b")
  cached=$(median : "$ENGINE" run "$p" --quiet --store "$dir/b")
  per=$(echo "scale=2; ($misses - $nocache) * 1000000 / $n" | bc)
  ratio=$(echo "scale=2; $cached / $check" | bc)
  printf "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %s µs | %sx |\n" "$n" "$check" "$nocache" "$misses" "$cached" "$per" "$ratio"
done
