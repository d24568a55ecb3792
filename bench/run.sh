#!/usr/bin/env bash
# The engine-vs-Dask benchmark in one command: prints one markdown table.
#
#   bench/run.sh            full matrix (10k, 100k, 1M tasks; < 20 min), and writes the
#                           "engine run vs Dask" section of docs/performance.md
#   bench/run.sh --quick    10k only (a smoke run, ~1 min); docs untouched
#   bench/run.sh [--quick] ARGS...   extra ARGS go to bench/bench.py (see its --help),
#                           e.g. --shapes chain layered --sizes 10000 100000
#
# Steps: Python deps into bench/.venv (pinned in bench/requirements.txt, installed
# only when that file changes); `cargo build --release -p engine`; the guest
# plugins (xtask/build-guests.sh, when present); bench/noop.wat -> bench/noop.wasm;
# then bench/bench.py runs every shape x size on the engine and on Dask.
# Scratch files (generated pipelines, stores, logs) go to bench/.work/.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

quick=0
args=()
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) args+=("$a") ;;
  esac
done

# 1. Python deps (idempotent: reinstalls only when requirements.txt changes).
bench_venv

# 2. The engine and the guest plugins.
echo "bench: cargo build --release -p engine" >&2
cargo build --release -p engine
engine="$target_dir/release/engine"
if [ -f "$root/xtask/build-guests.sh" ]; then
  # The benchmark itself only needs bench/noop.wasm: a failure here is reported, not fatal.
  bash "$root/xtask/build-guests.sh" >&2 || echo "bench: WARNING: xtask/build-guests.sh failed (not needed for this benchmark)" >&2
fi

# 3. The no-op task.
"$venv/bin/python" "$root/bench/wat2wasm.py" "$root/bench/noop.wat" "$root/bench/noop.wasm"

# 4-5. The matrix, the table, the docs.
mkdir -p "$root/bench/.work"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
if [ "$quick" = 1 ]; then
  exec "$venv/bin/python" "$root/bench/bench.py" --engine "$engine" --python "$venv/bin/python" \
    --sizes 10000 --results "$root/bench/.work/results-quick-$stamp.jsonl" ${args[@]+"${args[@]}"}
else
  exec "$venv/bin/python" "$root/bench/bench.py" --engine "$engine" --python "$venv/bin/python" \
    --results "$root/bench/.work/results-$stamp.jsonl" --write-docs "$root/docs/performance.md" \
    --command "bench/run.sh${args[*]+ ${args[*]}}" ${args[@]+"${args[@]}"}
fi
