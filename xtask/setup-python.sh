#!/usr/bin/env bash
# The Python environment of the tests: a venv at $TARGET/pyenv (TARGET = cargo's
# target directory) with the pinned python/requirements-test.txt (Dask, moto_server,
# boto3, maturin). Idempotent: installs only when that file changed since the last
# install. Called by xtask/test.sh; tests that need it (tests/all/s3.rs, Dask tests)
# skip with a loud message when it is missing, and fail under CI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
venv="$target_dir/pyenv"
req="$root/python/requirements-test.txt"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup-python: creating $venv" >&2
  mkdir -p "$target_dir"
  python3 -m venv "$venv"
fi
if ! cmp -s "$req" "$venv/.requirements.installed"; then
  echo "setup-python: installing python/requirements-test.txt into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements.installed"
  echo "setup-python: installed python/requirements-test.txt ($(size_of "$venv"))" >&2
fi
echo "setup-python: $venv ready ($("$venv/bin/python" --version))" >&2
