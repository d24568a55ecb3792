# Shared by the xtask/ and bench/ scripts (sourced, not run).
#
# Sets:
#   root        the repository, absolute (scripts work from any current directory)
#   target_dir  cargo's target directory, as cargo itself reports it
#               (`cargo metadata`: $CARGO_TARGET_DIR, `build.target-dir` in a
#               cargo config, else $root/target), absolute
# and exports CARGO_TARGET_DIR=$target_dir, so every cargo call and every
# script run from here agree on it whatever their current directory.
#
# Where things go under $target_dir:
#   release/engine   the engine             plugins/      the stock plugins (.wasm)
#   test-guests/     test-only guests       guests/       cargo's build of both (wasm32)
#   languages/       xtask/build-languages.sh output
#   toolchains/      xtask/toolchains.sh installs (Zig, Go, AssemblyScript)
#   third-party/     wheels fetched by xtask/fetch-wasi-programs.sh
#
# Functions: size_of PATH (e.g. `38M`, what `du -sh` says); logged LOG CMD...
# (runs CMD with its output appended to LOG; when CMD fails, LOG's last lines
# go to stderr, so an install step prints one line of its own and no progress).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v cargo >/dev/null 2>&1; then
  echo "$(basename "$0"): cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 2
fi
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [ -z "$target_dir" ]; then
  echo "$(basename "$0"): cannot find cargo's target directory (cargo metadata failed)" >&2
  exit 2
fi
export CARGO_TARGET_DIR="$target_dir"

size_of() { du -sh "$1" 2>/dev/null | cut -f1; }
logged() {
  local log="$1"
  shift
  mkdir -p "$(dirname "$log")"
  if ! "$@" >>"$log" 2>&1; then
    echo "$(basename "$0"): FAILED: $* (the end of $log:)" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
}
