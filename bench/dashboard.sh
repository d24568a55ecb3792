#!/usr/bin/env bash
# The overhead of watching a run (issue 17): a layered graph of N no-op SDK
# tasks (bench/shapes.py; default N = 100000), run with --no-cache on the
# threads executor
#   plain        `engine run`
#   --events     with `--events FILE` (NDJSON of every event)
#   --dashboard  with `--dashboard 127.0.0.1:0` and one client (`curl -N`, in its
#                own process; a Python thread without curl) reading the
#                server-sent event stream for the whole run (bench/dashboard.py)
# RUNS times each (default 5), the modes interleaved (in an order that rotates
# each round, the disk synced before each run) so that load drifts hit
# them alike. Prints a markdown table of median wall and CPU (user+sys) times and the overhead
# against plain (the target is at most 5% for the dashboard).
#
# Usage: bench/dashboard.sh [N]
# Set ENGINE to use an existing binary instead of building one.
# Works from any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
n=${1:-100000}
runs=${RUNS:-5}
if [ -z "${ENGINE:-}" ]; then
  cargo build --release -p engine --manifest-path "$root/Cargo.toml" >&2
  ENGINE="$target_dir/release/engine"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wat2wasm comes from the `wasmtime` wheel in bench/.venv (as in bench/run.sh).
bench_venv
"$venv/bin/python" "$root/bench/wat2wasm.py" "$root/bench/noop.wat" "$work/noop.wasm" >/dev/null
python3 "$root/bench/gen_pipeline.py" --shape layered --n "$n" --plugin "$work/noop.wasm" \
  --out "$work/pipeline.toml" >/dev/null
# Compile the plugin into the module cache once, outside the timings.
"$ENGINE" run "$work/pipeline.toml" --quiet --no-cache --store "$work/store" >/dev/null
python3 "$root/bench/dashboard.py" "$ENGINE" "$work/pipeline.toml" "$work" "$runs"
