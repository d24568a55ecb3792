#!/usr/bin/env bash
# Run the official WASI test suite (WebAssembly/wasi-testsuite, preview 1 tests)
# through `engine run`, with our adapter and expectations. See README.md.
#
#   WASI_TESTSUITE=DIR bash tests/wasi-testsuite/run.sh
#
# DIR is a checkout of the suite's `prod/testsuite-base` branch (prebuilt
# tests). ENGINE_EXECUTOR picks the executor (sync, threads, processes;
# default threads); ENGINE the engine binary (default TARGET/release/engine,
# TARGET being cargo's target directory, see xtask/lib.sh);
# PYTHON the interpreter (default python3; the runner needs Python 3.12 or
# newer with colorama and requests).
# Extra arguments go to the runner (e.g. --json-output-location FILE).
set -euo pipefail

if [ -z "${WASI_TESTSUITE:-}" ]; then
    echo "wasi-testsuite: WASI_TESTSUITE is not set, skipping the official WASI test suite (see tests/wasi-testsuite/README.md)"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
suite=$(cd "$WASI_TESTSUITE" && pwd)
if [ -z "${ENGINE:-}" ]; then
    source "$here/../../xtask/lib.sh"
    ENGINE="$target_dir/release/engine"
fi
export ENGINE
export ENGINE_EXECUTOR="${ENGINE_EXECUTOR:-threads}"

dirs=()
for lang in rust c assemblyscript; do
    d="$suite/tests/$lang/testsuite/wasm32-wasip1"
    if [ ! -f "$d/manifest.json" ]; then
        echo "wasi-testsuite: $d/manifest.json is missing; is $suite a checkout of the prod/testsuite-base branch?" >&2
        exit 2
    fi
    dirs+=("$d")
done

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    echo "wasi-testsuite: the runner needs Python 3.12 or newer; set PYTHON (see tests/wasi-testsuite/README.md)" >&2
    exit 2
fi
commit="commit unknown"
if [ "$(git -C "$suite" rev-parse --show-toplevel 2>/dev/null)" = "$suite" ]; then
    commit="commit $(git -C "$suite" rev-parse HEAD)"
fi
echo "wasi-testsuite: $suite ($commit), executor $ENGINE_EXECUTOR, engine $ENGINE"
PYTHONPATH="$suite/test-runner${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m wasi_test_runner \
    --test-suite "${dirs[@]}" \
    --runtime-adapter "$here/engine_adapter.py" \
    --expectations "$here/expectations.toml" \
    --disable-colors "$@"
