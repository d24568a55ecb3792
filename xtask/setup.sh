#!/usr/bin/env bash
# Installs what building and testing need, one line per install step with its
# size (rustup's own output goes to TARGET/setup.log, shown when it fails; apt's
# progress to TARGET/setup-apt.log, its errors to stderr). Idempotent: when
# everything is in place it prints nothing. Sizes: README.md's Quick start.
#  - the wasm32-wasip1 Rust target (guest plugins) and wasm32-wasip2 (component
#    test guests), with rustup, into $(rustc --print sysroot)/lib/rustlib
#    (~96 MB each)
#  - rustfmt and clippy (xtask/test.sh's gates), when rustup lacks them
#  - Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (the C SDK
#    example, the C and C++ language examples), with apt-get, as root (~280 MB
#    with their dependencies on a Debian bookworm without clang)
#  - Debian's chromium (the HTML report's headless browser test,
#    html::the_html_report_renders_in_headless_chromium), in the same apt-get
#    step (~414 MB with its dependencies)
# XTASK_NO_SYSTEM=1 skips the apt-get step and says what is skipped as a result.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log="$target_dir/setup.log"
have_target() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }
for t in wasm32-wasip1 wasm32-wasip2; do
  if command -v rustup >/dev/null 2>&1 && ! have_target "$t"; then
    echo "setup: rustup target add $t (into $(rustc --print sysroot)/lib/rustlib)"
    logged "$log" rustup target add "$t"
    echo "setup: $t target installed ($(size_of "$(rustc --print sysroot)/lib/rustlib/$t"))"
  fi
done

# rustfmt and clippy: the gates of xtask/test.sh (in rustup's default profile).
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      sysroot="$(rustc --print sysroot)"
      before="$(du -sk "$sysroot" | cut -f1)"
      echo "setup: rustup component add $c (into $sysroot)"
      logged "$log" rustup component add "$c"
      echo "setup: $c installed ($((($(du -sk "$sysroot" | cut -f1) - before) / 1024)) MB)"
    fi
  done
fi

apt_pkgs=(clang lld wasi-libc libclang-rt-dev-wasm32 chromium)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
without="the C SDK example (build-guests) and the C and C++ language examples will be skipped, and without chromium the HTML report's browser test (which fails when CI is set)"
if [ "${XTASK_NO_SYSTEM:-}" = 1 ]; then
  echo "setup: XTASK_NO_SYSTEM=1: not installing ${missing[*]}; $without" >&2
elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: WARNING: missing ${missing[*]} (not root or no apt-get); $without" >&2
else
  log="$target_dir/setup-apt.log"
  mkdir -p "$target_dir"
  echo "setup: apt-get install ${missing[*]} (as root; apt-get update first; log in $log)"
  export DEBIAN_FRONTEND=noninteractive
  # stdout (progress) goes to the log; apt's errors stay on stderr.
  apt-get update -q >"$log"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log"
  used="$(sed -n 's/^After this operation, \(.*\) of additional disk space will be used\./\1/p' "$log" | tail -1)"
  echo "setup: installed ${missing[*]} (${used:-no additional disk space})"
fi
