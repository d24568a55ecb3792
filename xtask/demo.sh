#!/usr/bin/env bash
# The main job: build everything and run the word-count example end to end.
# Works from any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$root/xtask/setup.sh"
bash "$root/xtask/build-guests.sh"
cargo build --release --locked -p engine --manifest-path "$root/Cargo.toml"
"$target_dir/release/engine" run "$root/examples/wordcount/pipeline.toml"
echo "--- examples/wordcount/out/top.tsv"
cat "$root/examples/wordcount/out/top.tsv"
echo "--- the engine is $target_dir/release/engine; \`bash xtask/install.sh\` puts it on PATH"
