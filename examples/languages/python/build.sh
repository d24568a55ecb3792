#!/usr/bin/env bash
# Builds the Python word-count task wordcount.py -> python_wordcount.wasm, a
# component of the engine:task@1.0.0 world (sdk/wit/engine-task.wit), with
# componentize-py from PyPI (xtask/toolchains.sh installs it into
# target/toolchains/venv) and the Python SDK in sdk/python.
source "$(dirname "$0")/../lib.sh"
if [ -x "$tc/venv/bin/componentize-py" ]; then
  cpy="$tc/venv/bin/componentize-py"
elif command -v componentize-py >/dev/null 2>&1; then
  cpy="$(command -v componentize-py)"
else
  missing "componentize-py not found (run xtask/toolchains.sh: pip install componentize-py)"
fi

out="$out_dir/python_wordcount.wasm"
here="$root/examples/languages/python"
if ! up_to_date "$out" "$here/wordcount.py" "$root/sdk/python/engine_task.py" "$root/sdk/wit" "$0"; then
  # componentize-py writes its bindings next to nothing it is given; run it
  # in a scratch dir so no __pycache__ lands in the source tree.
  scratch="$(mktemp -d)"
  (cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 "$cpy" -d "$root/sdk/wit/engine-task.wit" -w task componentize \
    -p "$root/sdk/python" -p "$here" wordcount -o "$out.tmp" >/dev/null)
  rm -rf "$scratch"
  mv "$out.tmp" "$out"
fi
done_msg "$out"
