#!/usr/bin/env bash
# `engine run --executor dask` vs Dask's own API on the same local cluster, in
# one run; prints one markdown table (docs/performance.md, "Dask executor vs
# Dask"):
#   a 1k-task wide no-op vs `client.map`; a 200-task chain vs a Dask-native
#   chain and a client-in-the-loop chain; sha256 of 64 × 16 MiB on 1 vs 2 workers.
#
#   bash bench/dask.sh                 the whole table (a few minutes)
#   bash bench/dask.sh --cases wide    ARGS go to bench/dask_bench.py (see its --help):
#                                      --wide N --chain N --files N --repeats N --cases ...
#
# Steps: the test venv (xtask/setup-python.sh: Dask, pinned); `cargo build
# --release -p engine`; the guests (xtask/build-guests.sh: the test guests noop
# and echo, the stock sha256); then bench/dask_bench.py. Scratch files (the
# pipelines, 1 GiB of random input, stores) go to bench/.work/dask/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
cd "$root"
bash "$root/xtask/setup-python.sh"
cargo build --release --locked --quiet -p engine
bash "$root/xtask/build-guests.sh" >&2
# The bridge and the workers import engine_dask from this checkout; workers
# run this build's engine.
export PYTHONPATH="$root/python"
export ENGINE_DASK_ENGINE="$target_dir/release/engine"
exec "$target_dir/pyenv/bin/python" "$root/bench/dask_bench.py" --engine "$target_dir/release/engine" \
  --guests "$target_dir/test-guests" --work "$root/bench/.work/dask" "$@"
