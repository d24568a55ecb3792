#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash xtask/setup.sh
bash xtask/build-guests.sh
cargo test --release --locked -p engine "$@"
