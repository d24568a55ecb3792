#!/usr/bin/env bash
# The Python environments of the tests (TARGET = cargo's target directory):
#   $TARGET/pyenv          python/requirements-test.txt (Dask, moto_server, boto3, maturin)
#   $TARGET/pyenv-old-dask python/requirements-old-dask.txt: an older dask/distributed,
#                          for the Dask version-mismatch test (tests/all/dask.rs)
# Idempotent: each venv is installed only when its requirements file changed since
# its last install (a copy kept in the venv as .requirements.installed). Called by
# xtask/test.sh; tests that need a venv (tests/all/s3.rs, the Dask tests) skip with
# a loud message when it is missing, and fail under CI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# setup_venv VENV REQUIREMENTS
setup_venv() {
  local venv="$1" req="$2" name
  name="python/$(basename "$req")"
  if [ ! -x "$venv/bin/python" ]; then
    echo "setup-python: creating $venv" >&2
    mkdir -p "$target_dir"
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$req" "$venv/.requirements.installed"; then
    echo "setup-python: installing $name into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/.requirements.installed"
    echo "setup-python: installed $name ($(size_of "$venv"))" >&2
  fi
  echo "setup-python: $venv ready ($("$venv/bin/python" --version))" >&2
}

setup_venv "$target_dir/pyenv" "$root/python/requirements-test.txt"
setup_venv "$target_dir/pyenv-old-dask" "$root/python/requirements-old-dask.txt"
