# Shared by examples/languages/*/build.sh (sourced, not run).
#
# Sets: root (the repository), target_dir (cargo's target directory, see
# xtask/lib.sh), out_dir (where the .wasm files go: $ENGINE_LANG_OUT or
# TARGET/languages), tc (the toolchains dir: $ENGINE_TOOLCHAINS_DIR or
# TARGET/toolchains, filled by xtask/toolchains.sh).
# A build script that cannot find its toolchain calls `missing "<why>"`,
# which exits with status 77: xtask/build-languages.sh prints
# `SKIPPED <lang>: <why>` for it. Any other failure is a real build error.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../../xtask/lib.sh"
out_dir="${ENGINE_LANG_OUT:-$target_dir/languages}"
tc="${ENGINE_TOOLCHAINS_DIR:-$target_dir/toolchains}"
mkdir -p "$out_dir"

missing() {
  echo "missing toolchain: $*" >&2
  exit 77
}

# up_to_date OUT SRC...: OUT exists and is newer than every file under SRC...
up_to_date() {
  local out="$1"
  shift
  [ -f "$out" ] || return 1
  [ -z "$(find "$@" -type f -newer "$out" -print -quit)" ]
}

# done_msg OUT: print what was built.
done_msg() {
  echo "built $1 ($(wc -c <"$1") bytes)"
}

# npm_tool NAME PACKAGE: the path of the npm tool NAME, from
# $tc/node_modules/.bin (xtask/toolchains.sh) or else PATH; `missing` when
# neither has it (PACKAGE: what `npm install` needs for it).
npm_tool() {
  if [ -x "$tc/node_modules/.bin/$1" ]; then
    echo "$tc/node_modules/.bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    missing "$1 not found (run xtask/toolchains.sh: npm install $2)"
  fi
}
