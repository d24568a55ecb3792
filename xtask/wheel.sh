#!/usr/bin/env bash
# Builds the engine-dask wheel (pyproject.toml: maturin `bin` bindings) into
# TARGET/wheels/ and prints its path on stdout. The wheel holds the `engine`
# binary, the `engine_dask` package and the stock plugins (as wheel data,
# installed to PREFIX/share/engine/plugins).
#
# Steps: maturin from the pinned venv (xtask/setup-python.sh, idempotent); the
# stock plugins (xtask/build-guests.sh --plugins-only, a no-op when built),
# copied into python/engine_dask.data/data/share/engine/plugins/ (not in git);
# then `maturin build --release --locked`. maturin runs
# `cargo rustc --release --bin engine` in the same target directory and profile
# as `cargo build --release -p engine` (not the test build's), so after that
# build it compiles nothing: the wheel costs the zip of the binary (see
# docs/performance.md).
# Works from any current directory; honours $CARGO_TARGET_DIR (xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$root/xtask/setup-python.sh"
maturin="$target_dir/pyenv/bin/maturin"
bash "$root/xtask/build-guests.sh" --plugins-only >&2

# The stock plugins of this build, exactly (a stale one is removed).
data="$root/python/engine_dask.data"
rm -rf "$data"
mkdir -p "$data/data/share/engine/plugins"
cp "$target_dir"/plugins/*.wasm "$data/data/share/engine/plugins/"

out="$target_dir/wheels"
rm -f "$out"/engine_dask-*.whl
cd "$root"
"$maturin" build --release --locked --quiet --out "$out" >&2
wheel="$(ls "$out"/engine_dask-*.whl)"
echo "wheel: $wheel ($(size_of "$wheel"))" >&2
echo "$wheel"
