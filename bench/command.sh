#!/usr/bin/env bash
# Command tasks vs SDK tasks (issue 14) in one command: prints two markdown tables
# (per-task overhead, quiet and under `dd` disk load, with Dask threads at 10k;
# a 1 GiB copy through a command task vs `cp`).
#
#   bench/command.sh                 10k and 100k layered graphs, dd runs, 1 GiB copy
#   bench/command.sh ARGS...         extra ARGS go to bench/command.py (see its --help),
#                                    e.g. --sizes 10000 --no-dd --copy-gib 0 --repeats 5
#
# Steps: Python deps into $VENV (default bench/.venv, pinned in
# bench/requirements.txt, as bench/run.sh does: dask, and wasmtime's wat2wasm);
# `cargo build --release -p engine`; the guests (xtask/build-guests.sh:
# one_byte.wasm, cmd_probe.wasm); bench/noop.wat -> bench/noop.wasm; then
# bench/command.py. Scratch files go to bench/.work/.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

bench_venv

echo "bench: cargo build --release -p engine" >&2
cargo build --release -p engine
bash "$root/xtask/build-guests.sh" >&2
"$venv/bin/python" "$root/bench/wat2wasm.py" "$root/bench/noop.wat" "$root/bench/noop.wasm"

exec "$venv/bin/python" "$root/bench/command.py" --engine "$target_dir/release/engine" \
  --guests "$target_dir/test-guests" --dask-python "$venv/bin/python" "$@"
