#!/usr/bin/env bash
# The `engine check` benchmark: layered pipelines of 10k, 100k and 1M tasks
# (each task takes 2 outputs of the previous layer of 1000), checked with
# /usr/bin/time -v. Prints a markdown table: tasks, file size, wall time, peak RSS.
#
# Usage: bench/check/run.sh [SIZES...]   (default: 10000 100000 1000000)
# Set ENGINE to use an existing binary instead of building one.
# Works from any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../xtask/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000 1000000)
if [ -z "${ENGINE:-}" ]; then
  cargo build --release -p engine --manifest-path "$root/Cargo.toml" >&2
  ENGINE="$target_dir/release/engine"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| tasks | file | wall time | peak RSS |"
echo "|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  file=$(python3 "$root/bench/check/gen.py" "$n" "$work")
  size=$(du -m "$file" | cut -f1)
  /usr/bin/time -v "$ENGINE" check "$file" >"$work/out" 2>"$work/time" || {
    cat "$work/time" >&2
    exit 1
  }
  wall=$(grep "Elapsed (wall clock)" "$work/time" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$work/time" | awk '{print $NF}')
  printf "| %s | %s MiB | %s | %s MiB |\n" "$n" "$size" "$wall" "$((rss / 1024))"
  rm -f "$file"
done
