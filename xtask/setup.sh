#!/usr/bin/env bash
# Installs what building and testing need. Idempotent: running it twice does no harm.
#  - the wasm32-wasip1 / wasm32-wasip2 Rust targets (guest plugins)
#  - Debian's clang + wasi-libc (the C SDK example), when apt is available
set -euo pipefail

have_target() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }
for t in wasm32-wasip1 wasm32-wasip2; do
  if ! have_target "$t"; then
    echo "setup: rustup target add $t"
    rustup target add "$t"
  fi
done

apt_pkgs=(clang lld wasi-libc libclang-rt-dev-wasm32)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: WARNING: missing ${missing[*]} (not root or no apt-get); the C SDK example will be skipped" >&2
  fi
fi
