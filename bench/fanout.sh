#!/usr/bin/env bash
# The dynamic fan-out benchmark (issue 15): what a task expanded at run time
# (`map`) costs beyond a task expanded by `foreach` at load time.
#
# Two pipelines of N + 1 tasks (default N = 100000), every task the `echo`
# test guest with no inputs and one param, so it does nothing but start:
#   static    `gen` (std:concat of items.txt) and `work` with
#             `foreach = { i = { range = [0, N] } }`, params { n = "{i}" }
#   dynamic   `gen` and `work` with `map = "gen.lines"`, `max_items = N`,
#             params { n = "{item}" }: N tasks made when `gen` succeeds
# Each is run RUNS times (default 3), alternating, with `engine run --no-cache
# --executor threads --workers 2 --quiet`; per pipeline the best of the runs of
# the whole process: wall seconds, CPU seconds (user + sys, which on a shared
# machine is the steadier figure) and the report's `wall_ms` (the run itself).
# The last lines give (dynamic - static) / N per task for each.
#
# Usage: bench/fanout.sh [N]
# Set ENGINE to use an existing binary instead of building one; the `echo`
# guest must be built (bash xtask/build-guests.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../xtask/lib.sh"
n=${1:-100000}
runs=${RUNS:-3}
if [ -z "${ENGINE:-}" ]; then
  cargo build --release -p engine --manifest-path "$root/Cargo.toml" >&2
  ENGINE="$target_dir/release/engine"
fi
echo_wasm="$target_dir/test-guests/echo.wasm"
[ -f "$echo_wasm" ] || { echo "bench: $echo_wasm is missing: run bash xtask/build-guests.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for kind in static dynamic; do
  d="$work/$kind"
  mkdir -p "$d"
  cp "$echo_wasm" "$d/echo.wasm"
  seq 0 $((n - 1)) > "$d/items.txt"
  {
    printf '[pipeline]\nname = "fanout-%s"\n\n[plugins]\necho = "echo.wasm"\n\n' "$kind"
    printf '[tasks.gen]\nplugin = "std:concat"\ninputs = { parts = ["file:items.txt"] }\n\n'
    printf '[tasks.work]\nplugin = "echo"\n'
    if [ "$kind" = static ]; then
      printf 'foreach = { i = { range = [0, %d] } }\nparams = { n = "{i}" }\n' "$n"
    else
      printf 'map = "gen.lines"\nmax_items = %d\nparams = { n = "{item}" }\n' "$n"
    fi
  } > "$d/pipeline.toml"
done

# One run of pipeline $1: prints "wall cpu wall_ms".
one() {
  local d="$work/$1"
  rm -rf "$d/store" "$d/logs"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$d/time" "$ENGINE" run "$d/pipeline.toml" --no-cache --executor threads --workers 2 \
    --quiet --store "$d/store" --log-dir "$d/logs" --report "$d/report.json" >/dev/null 2>"$d/err" \
    || { cat "$d/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  local cpu wall_ms
  cpu=$(awk '{ print $1 + $2 }' "$d/time")
  wall_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_ms"])' "$d/report.json")
  echo "$(echo "$t1 - $t0" | bc) $cpu $wall_ms"
}

declare -A best
for _ in $(seq "$runs"); do
  for kind in static dynamic; do
    read -r w c r < <(one "$kind")
    for k in w c r; do
      v=${!k}
      cur=${best[$kind$k]:-}
      if [ -z "$cur" ] || (($(echo "$v < $cur" | bc))); then best[$kind$k]=$v; fi
    done
  done
done

echo "| pipeline | tasks | process wall s | process CPU s | run wall_ms |"
echo "|---|---:|---:|---:|---:|"
for kind in static dynamic; do
  echo "| $kind | $((n + 1)) | ${best[${kind}w]} | ${best[${kind}c]} | ${best[${kind}r]} |"
done
per() { echo "scale=3; ($1 - $2) * $3 / $n" | bc; }
echo
echo "dynamic - static, per task: process wall $(per "${best[dynamicw]}" "${best[staticw]}" 1000000) µs," \
  "process CPU $(per "${best[dynamicc]}" "${best[staticc]}" 1000000) µs," \
  "run wall $(per "${best[dynamicr]}" "${best[staticr]}" 1000) µs"
