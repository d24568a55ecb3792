#!/usr/bin/env bash
# Cold compile, cached load and run time of the third-party WASI programs of
# examples/fpga (docs/performance.md, "Real WASI programs"). Prints a table.
#
#   bash bench/programs.sh            # builds the engine, fetches the programs
#   ENGINE=/path/to/engine bash bench/programs.sh
# Works from any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
cd "$root"
if [ -z "${ENGINE:-}" ]; then
  cargo build --release --locked -p engine --quiet
  ENGINE="$target_dir/release/engine"
fi
bash xtask/fetch-wasi-programs.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/fpga/pipeline.toml examples/fpga/blinky.v examples/fpga/icestick.pcf "$work/"
ln -s "$PWD/examples/fpga/vendor" "$work/vendor"
# Cold: an empty module cache, so every plugin is compiled.
ENGINE_CACHE_DIR="$work/cache" "$ENGINE" run "$work/pipeline.toml" --quiet --report "$work/cold.json" >/dev/null
# Warm: the same cache, three times; the best run per task counts.
for i in 1 2 3; do
  ENGINE_CACHE_DIR="$work/cache" "$ENGINE" run "$work/pipeline.toml" --quiet --report "$work/warm$i.json" >/dev/null
done
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
cold = json.load(open(f"{work}/cold.json"))
warm = [json.load(open(f"{work}/warm{i}.json")) for i in (1, 2, 3)]
task_of = {"icepll": "pll", "yosys": "synth", "nextpnr": "pnr", "icepack": "pack"}
print(f"{'program':<10} {'module':>9} {'cold compile':>13} {'cached load':>12} {'run (task)':>11}")
for p in cold["plugins"]:
    name = p["name"]
    assert not p["cached"], p
    size = os.path.getsize(os.path.join(work, "vendor", {"icepll": "icepll.wasm", "yosys": "yosys.wasm",
        "nextpnr": "nextpnr-ice40.wasm", "icepack": "icepack.wasm"}[name]))
    load = min(next(q for q in w["plugins"] if q["name"] == name)["load_ms"] for w in warm)
    assert all(next(q for q in w["plugins"] if q["name"] == name)["cached"] for w in warm)
    run = min(next(t for t in w["tasks"] if t["id"] == task_of[name])["duration_us"] for w in warm) / 1000
    print(f"{name:<10} {size/2**20:>7.1f}MiB {p['load_ms']/1000:>12.2f}s {load:>10.1f}ms {run:>9.1f}ms")
print(f"whole pipeline, warm: {min(w['wall_ms'] for w in warm):.0f} ms (tasks only; compile/load excluded)")
PY
