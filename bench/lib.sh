# Shared by the bench/ scripts (sourced, not run): xtask/lib.sh (root,
# target_dir), and
#   bench_venv    makes $venv (default bench/.venv; $VENV overrides) with
#                 bench/requirements.txt installed (the `wasmtime` wheel's
#                 wat2wasm, Dask and the other peers), reinstalling when the
#                 requirements change.
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
venv="${VENV:-$root/bench/.venv}"

bench_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    echo "bench: creating $venv" >&2
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$root/bench/requirements.txt" "$venv/.requirements.installed"; then
    echo "bench: installing bench/requirements.txt into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/requirements.txt"
    cp "$root/bench/requirements.txt" "$venv/.requirements.installed"
  fi
}
