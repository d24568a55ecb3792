#!/usr/bin/env bash
# Cold compile, cached load and per-task start of WebAssembly components
# (docs/languages.md, "Components"): for each module, `engine run --executor
# sync --no-cache` of one task on a 1-byte input with an empty module cache
# (cold: the plugin's `load_ms` in the report), then of 11 tasks (cached: its
# `load_ms`; per-task start: the median `duration_us`).
#
#   bash bench/components.sh [MODULE...]
#
# Default modules: the Python word count (xtask/build-languages.sh python), the
# Rust wasm32-wasip2 test components and the stock Rust wordcount
# (xtask/build-guests.sh). Works in TARGET/bench/components/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
engine="${ENGINE:-$target_dir/release/engine}"
[ -x "$engine" ] || { echo "bench: no engine at $engine (cargo build --release -p engine, or set ENGINE)" >&2; exit 2; }
mods=("$@")
[ ${#mods[@]} -gt 0 ] || mods=("$target_dir/languages/python_wordcount.wasm" "$target_dir/languages/javascript_wordcount.wasm"
  "$target_dir/test-guests/comp_task.wasm"
  "$target_dir/test-guests/comp_cmd.wasm" "$target_dir/plugins/wordcount.wasm")
for mod in "${mods[@]}"; do
  name="$(basename "$mod" .wasm)"
  if [ ! -f "$mod" ]; then echo "$name: missing"; continue; fi
  w="$target_dir/bench/components/$name"
  rm -rf "$w"
  mkdir -p "$w"
  printf 'x' >"$w/tiny.txt"
  export ENGINE_CACHE_DIR="$w/cache"
  for n in 1 11; do
    cat >"$w/p.toml" <<TOML
[pipeline]
name = "bench-$name"

[plugins]
m = "$mod"

[tasks.t]
plugin = "m"
foreach = { i = { range = [0, $n] } }
inputs = { text = "file:tiny.txt" }
TOML
    "$engine" run -q --no-cache --executor sync --store "$w/store" --report "$w/$n.json" "$w/p.toml" >/dev/null
  done
  python3 - "$w" "$name" "$(wc -c <"$mod")" <<'PY'
import json, statistics, sys
w, name, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
cold = json.load(open(w + "/1.json"))["plugins"][0]
warm = json.load(open(w + "/11.json"))
start = statistics.median(t["duration_us"] for t in warm["tasks"]) / 1000
print(f"{name:20} {size / 1024:9.1f} KiB  cold compile {cold['load_ms'] / 1000:6.2f} s  "
      f"cached load {warm['plugins'][0]['load_ms']:7.1f} ms  per-task start {start:6.2f} ms")
PY
done
