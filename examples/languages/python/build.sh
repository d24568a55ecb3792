#!/usr/bin/env bash
# Builds the Python word-count task wordcount.py -> python_wordcount.wasm, a
# component of the engine:task@1.0.0 world (sdk/wit/engine-task.wit), with
# componentize-py from PyPI (xtask/toolchains.sh installs it into
# target/toolchains/venv) and the Python SDK in sdk/python.
# Also the Python test guests of tests/guests/components/python (for
# tests/all/components.rs): py_task.py -> test_py_task.wasm (task world) and
# py_cmd.py -> test_py_cmd.wasm (a wasi:cli/command, against the WASI WIT in
# tests/guests/components/wit).
source "$(dirname "$0")/../lib.sh"
if [ -x "$tc/venv/bin/componentize-py" ]; then
  # Through the venv's python: the script's #! line names the directory the
  # venv was created in, which a copied target dir no longer is.
  cpy=("$tc/venv/bin/python" "$tc/venv/bin/componentize-py")
elif command -v componentize-py >/dev/null 2>&1; then
  cpy=("$(command -v componentize-py)")
else
  missing "componentize-py not found (run xtask/toolchains.sh: pip install componentize-py)"
fi

# build OUT WIT WORLD APP PYTHON_PATH...: componentize APP into OUT.
build() {
  local out="$1" wit="$2" world="$3" app="$4"
  shift 4
  local paths=()
  for p in "$@"; do paths+=(-p "$p"); done
  # componentize-py writes its bindings next to nothing it is given; run it
  # in a scratch dir so no __pycache__ lands in the source tree.
  scratch="$(mktemp -d)"
  (cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 "${cpy[@]}" -d "$wit" -w "$world" componentize \
    "${paths[@]}" "$app" -o "$out.tmp" >/dev/null)
  rm -rf "$scratch"
  mv "$out.tmp" "$out"
  done_msg "$out"
}

here="$root/examples/languages/python"
guests="$root/tests/guests/components"
out="$out_dir/python_wordcount.wasm"
up_to_date "$out" "$here/wordcount.py" "$root/sdk/python/engine_task.py" "$root/sdk/wit" "$0" ||
  build "$out" "$root/sdk/wit/engine-task.wit" task wordcount "$root/sdk/python" "$here"
out="$out_dir/test_py_task.wasm"
up_to_date "$out" "$guests/python/py_task.py" "$root/sdk/python/engine_task.py" "$root/sdk/wit" "$0" ||
  build "$out" "$root/sdk/wit/engine-task.wit" task py_task "$root/sdk/python" "$guests/python"
out="$out_dir/test_py_cmd.wasm"
up_to_date "$out" "$guests/python/py_cmd.py" "$guests/wit" "$0" ||
  build "$out" "$guests/wit" wasi:cli/command@0.2.12 py_cmd "$guests/python"
