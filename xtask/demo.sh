#!/usr/bin/env bash
# The main job: build everything and run the word-count example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash xtask/setup.sh
bash xtask/build-guests.sh
cargo build --release --locked -p engine
./target/release/engine run examples/wordcount/pipeline.toml
echo "--- examples/wordcount/out/top.tsv"
cat examples/wordcount/out/top.tsv
