#!/usr/bin/env bash
# A new user's first hour, end to end, outside the repository (xtask/test.sh runs
# it after the tests, so it reuses their build and compiles no engine code):
#  1. `xtask/install.sh --prefix TMP/prefix` (copies the up-to-date build);
#  2. in an empty directory, a pipeline naming only stock plugins (`std:`), run
#     with the installed engine; its output is checked byte for byte;
#  3. sdk/rust/README.md's "A task from an empty directory", word for word: its
#     Cargo.toml (depending on the installed SDK), src/lib.rs, pipeline.toml and
#     commands, in another empty directory; out/top.txt must be the README's text.
# Everything happens in a temporary directory, removed on exit. Needs network
# access to crates.io for the task crate's serde (as a user's first build does).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start=$SECONDS
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "first-hour: FAILED: $*" >&2
  exit 1
}
# expect_file FILE EXPECTED: FILE's bytes are EXPECTED plus a final newline.
expect_file() {
  [ -f "$1" ] || fail "$1 was not written"
  printf '%s\n' "$2" | cmp -s - "$1" || fail "$1 differs; expected:
$2
got:
$(cat "$1")"
}

# 1. Install.
bash "$root/xtask/install.sh" --prefix "$tmp/prefix" >"$tmp/install.log" || {
  cat "$tmp/install.log" >&2
  fail "xtask/install.sh --prefix $tmp/prefix"
}
# A user's environment: the installed engine on PATH, no plugin path, their own
# target directories and module cache.
export PATH="$tmp/prefix/bin:$PATH"
unset ENGINE_PLUGIN_PATH CARGO_TARGET_DIR
export ENGINE_CACHE_DIR="$tmp/cache"
[ "$(command -v engine)" = "$tmp/prefix/bin/engine" ] || fail "the installed engine is not first on PATH"
engine --version | grep -Eq '^engine [0-9.]+ \(wasmtime [0-9.]+, commit ([0-9a-f]{12}|unknown)\)$' ||
  fail "engine --version printed: $(engine --version)"
want_stock="$(cd "$root/plugins" && for d in */; do [ -f "$d/Cargo.toml" ] && echo "std:${d%/}"; done)"
got_stock="$(engine plugins | sed -n 's/^\(std:[^ ]*\) .*/\1/p')"
[ "$got_stock" = "$want_stock" ] || fail "engine plugins lists:
$got_stock
expected the stock plugins:
$want_stock"

# 2. Only stock plugins, from an empty directory.
mkdir "$tmp/std" && cd "$tmp/std"
printf 'the cat and the hat\nThe Cat sat\n' >words.txt
cat >pipeline.toml <<'EOF'
[pipeline]
name = "first-hour"

[tasks.split]
plugin = "std:split"
inputs = { text = "file:words.txt" }
params = { chunks = 2 }

[tasks.count]
plugin = "std:wordcount"
foreach = { i = { range = [0, 2] } }
inputs = { text = "split.{i}" }

[tasks.merge]
plugin = "std:merge"
inputs = { parts = "count[*]" }

[tasks.top]
plugin = "std:topk"
inputs = { counts = "merge" }
params = { k = 2 }

[outputs]
"out/top.tsv" = "top"
EOF
engine run -q pipeline.toml >run.log 2>&1 || { cat run.log >&2; fail "engine run of the std: pipeline"; }
expect_file out/top.tsv "$(printf 'the\t3\ncat\t2')"
echo "first-hour: installed (xtask/install.sh) and ran a std: pipeline in an empty directory ($((SECONDS - start))s)"

# 3. sdk/rust/README.md, word for word. block LANG N: the Nth ```LANG block.
readme="$root/sdk/rust/README.md"
block() { awk -v lang="$1" -v n="$2" '/^```/ { if (on) { on = 0; next } if ($0 == "```" lang) { k++; if (k == n) { on = 1; next } } } on' "$readme"; }
mkdir "$tmp/sdk" && cd "$tmp/sdk"
eval "$(block sh 1)" # mkdir prefix && cd prefix && mkdir src
block toml 1 | sed "s|<prefix>|$tmp/prefix|" >Cargo.toml
grep -q "path = \"$tmp/prefix/share/engine/sdk/rust\"" Cargo.toml || fail "the README's Cargo.toml has no <prefix> SDK path"
block rust 1 >src/lib.rs
block toml 2 >pipeline.toml
bash -e -c "$(block sh 2)" >build.log 2>&1 || { cat build.log >&2; fail "the README's build-and-run commands"; }
expect_file out/top.txt "$(block text 1)"
echo "first-hour: built a Rust task outside the repository against the installed SDK and ran it with std: plugins ($((SECONDS - start))s)"
