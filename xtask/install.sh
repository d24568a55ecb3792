#!/usr/bin/env bash
# Installs the engine, by default for the current user into ~/.local:
#   PREFIX/bin/engine                     the engine
#   PREFIX/share/engine/plugins/*.wasm    the stock plugins, which any pipeline
#                                         anywhere names as `plugin = "std:NAME"`
#   PREFIX/share/engine/sdk/<lang>/       the guest SDKs as source (rust, c, zig,
#                                         go, assemblyscript, python, js, and wit: the
#                                         component task world), so a task crate
#                                         anywhere can depend on
#                                         `engine-sdk = { path = "PREFIX/share/engine/sdk/rust" }`
# It builds first (`cargo build --release -p engine`, then xtask/build-guests.sh
# for the stock plugins); both are no-ops when cargo's target directory is up to
# date (after xtask/demo.sh or xtask/test.sh), so installing then only copies.
# A fresh clone compiles the engine first (about 10 minutes on 2 cores).
#
# Usage: bash xtask/install.sh [--prefix DIR]
# Idempotent: a second run replaces the same files. Works from any current
# directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh). Needs no root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prefix="$HOME/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      [ $# -ge 2 ] || { echo "install: --prefix needs a directory" >&2; exit 2; }
      prefix="$2"
      shift 2
      ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument \`$1\` (usage: bash xtask/install.sh [--prefix DIR])" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
share="$prefix/share/engine"

echo "install: building the engine (cargo build --release -p engine; a no-op when up to date)"
cargo build --release --locked --quiet -p engine --manifest-path "$root/Cargo.toml"
bash "$root/xtask/build-guests.sh" --plugins-only >/dev/null

# The engine: copied to a temporary name, then renamed, so a running engine is never overwritten.
mkdir -p "$prefix/bin"
cp "$target_dir/release/engine" "$prefix/bin/.engine.tmp"
mv "$prefix/bin/.engine.tmp" "$prefix/bin/engine"
echo "install: $prefix/bin/engine ($(size_of "$prefix/bin/engine")): $("$prefix/bin/engine" --version)"

# The stock plugins: exactly those of this build (a stale one is removed).
rm -rf "$share/plugins.tmp"
mkdir -p "$share/plugins.tmp"
cp "$target_dir"/plugins/*.wasm "$share/plugins.tmp/"
rm -rf "$share/plugins"
mv "$share/plugins.tmp" "$share/plugins"
echo "install: $share/plugins ($(size_of "$share/plugins")): $(cd "$share/plugins" && ls -- *.wasm | sed 's/\.wasm$//' | paste -sd' ')"

# The SDKs, as source. The Rust SDK's manifest loses its `workspace` key (the
# guest workspace of this repository), so it builds on its own.
rm -rf "$share/sdk.tmp"
mkdir -p "$share/sdk.tmp"
for lang in rust c zig go assemblyscript python js wit; do
  cp -R "$root/sdk/$lang" "$share/sdk.tmp/$lang"
done
rm -rf "$share/sdk.tmp/python/__pycache__"
rm -rf "$share/sdk.tmp/rust/target" "$share/sdk.tmp/rust/Cargo.lock"
sed -e '/^# Built as part of the guest workspace/d' -e '/^workspace = /d' \
  "$root/sdk/rust/Cargo.toml" >"$share/sdk.tmp/rust/Cargo.toml"
rm -rf "$share/sdk"
mv "$share/sdk.tmp" "$share/sdk"
echo "install: $share/sdk ($(size_of "$share/sdk")): rust c zig go assemblyscript python js wit"

case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: $prefix/bin is not on your PATH; add it with: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
