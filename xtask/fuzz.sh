#!/usr/bin/env bash
# Run a cargo-fuzz target of fuzz/ for a while (not part of CI).
#
#   bash xtask/fuzz.sh TARGET SECONDS [LIBFUZZER_FLAG...]
#   bash xtask/fuzz.sh run_module 600
#
# TARGET is a file of fuzz/fuzz_targets/ without `.rs` (run_module,
# load_pipeline). Installs what it needs, idempotently: cargo-fuzz (`cargo
# install cargo-fuzz --locked`) and, when no nightly toolchain is installed,
# builds with the stable one and RUSTC_BOOTSTRAP=1. Builds optimised with
# debug assertions and no sanitizer (`--sanitizer none`: the engine and
# wasmtime are Rust; a panic is what is looked for) into TARGET/fuzz/ (TARGET:
# cargo's target directory, see xtask/lib.sh; ENGINE_FUZZ_TARGET_DIR
# overrides it), then runs one libFuzzer job for SECONDS seconds with a 120 s
# timeout per input, a 4 GiB RSS limit and inputs of any length up to 4096
# bytes from the start (`-len_control=0`: wasm-smith makes little of a few
# bytes). The corpus grows in
# fuzz/corpus/TARGET/, crashes go to fuzz/artifacts/TARGET/ (both
# git-ignored); the log, with libFuzzer's final statistics (executions), is
# TARGET/fuzz/TARGET.log. Exit status: libFuzzer's (0: nothing found).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

if [ $# -lt 2 ]; then
  echo "usage: $(basename "$0") TARGET SECONDS [LIBFUZZER_FLAG...]" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
  echo "$(basename "$0"): no fuzz target \`$target\` (fuzz/fuzz_targets/$target.rs)" >&2
  exit 2
fi

fuzz_dir=${ENGINE_FUZZ_TARGET_DIR:-$target_dir/fuzz}
mkdir -p "$fuzz_dir"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  logged "$fuzz_dir/install.log" cargo install cargo-fuzz --locked
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  # cargo-fuzz passes nightly-only flags to rustc.
  export RUSTC_BOOTSTRAP=1
fi

export CARGO_TARGET_DIR=$fuzz_dir
flags=(--sanitizer none -O --debug-assertions)
echo "building fuzz target $target into $fuzz_dir"
logged "$fuzz_dir/build.log" cargo "${toolchain[@]}" fuzz build "${flags[@]}" "$target"

mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
log=$fuzz_dir/$target.log
echo "fuzzing $target for ${seconds}s (one job); log: $log"
status=0
cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -timeout=120 -rss_limit_mb=4096 -len_control=0 -print_final_stats=1 \
  -artifact_prefix="fuzz/artifacts/$target/" "$@" >"$log" 2>&1 || status=$?
grep -E '^(stat::|Done |#[0-9]+ +DONE)' "$log" || true
grep -E 'panicked at|deadly signal|Test unit written|ERROR: libFuzzer' "$log" || true
exit "$status"
