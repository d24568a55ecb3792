#!/usr/bin/env bash
# A new user's first hour, end to end, outside the repository (xtask/test.sh runs
# it after the tests, so it reuses their build):
#  1. `xtask/install.sh --prefix TMP/prefix` (copies the up-to-date build);
#  2. in an empty directory, a pipeline naming only stock plugins (`std:`), run
#     with the installed engine; its output is checked byte for byte;
#  3. every SDK's README (sdk/{rust,c,zig,go,assemblyscript,python,js,wit}/README.md), section
#     "A task from an empty directory", word for word, each in its own empty
#     directory (xtask/readme_script.py: its files written, its commands run
#     against the installed SDK, `<prefix>` being TMP/prefix, the file its last
#     `cat` shows compared with the README's text).
# Everything happens in a temporary directory, removed on exit. Needs network
# access to crates.io for the Rust task's serde (as a user's first build does).
# The Zig, Go and AssemblyScript toolchains are xtask/toolchains.sh's
# (TARGET/toolchains, or $ENGINE_TOOLCHAINS_DIR), put on PATH as a user would
# have them; a README whose toolchain is missing is skipped with a warning, or
# fails this script when $CI is set (as in CI).
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

# 3. Each SDK README's "A task from an empty directory", word for word. The
# toolchains as a user would have them on PATH (xtask/toolchains.sh's), with
# their caches where xtask/build-languages.sh keeps them.
tc="${ENGINE_TOOLCHAINS_DIR:-$target_dir/toolchains}"
export PATH="$tc/venv/bin:$tc/node_modules/.bin:$PATH"
export GOCACHE="$tc/go-cache" GOPATH="$tc/gopath" GOPROXY=off GOTELEMETRY=off
export ZIG_GLOBAL_CACHE_DIR="$tc/zig-cache"

# missing_for LANG: what LANG's README needs that is not here (empty: nothing).
missing_for() {
  local m=""
  case "$1" in
    rust) rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || m="the rustup target wasm32-wasip1" ;;
    c)
      command -v clang >/dev/null 2>&1 || m="clang"
      command -v wasm-ld >/dev/null 2>&1 || m="$m lld"
      [ -f /usr/include/wasm32-wasi/stdio.h ] || m="$m wasi-libc"
      ;;
    zig) python -c 'import ziglang' >/dev/null 2>&1 || m="zig (python -m ziglang)" ;;
    go) command -v go >/dev/null 2>&1 || m="go" ;;
    assemblyscript)
      command -v asc >/dev/null 2>&1 || m="asc"
      command -v node >/dev/null 2>&1 || m="$m node"
      ;;
    python) command -v componentize-py >/dev/null 2>&1 || m="componentize-py" ;;
    js) command -v componentize-qjs >/dev/null 2>&1 || m="componentize-qjs" ;;
    wit) rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || m="the rustup target wasm32-wasip2" ;;
  esac
  echo "${m# }"
}

skipped=()
for lang in rust c zig go assemblyscript python js wit; do
  readme="sdk/$lang/README.md"
  missing="$(missing_for "$lang")"
  if [ -n "$missing" ]; then
    [ -z "${CI:-}" ] || fail "$readme needs $missing (xtask/setup.sh, xtask/toolchains.sh install it)"
    echo "first-hour: WARNING: SKIPPING $readme: missing $missing (run xtask/setup.sh and xtask/toolchains.sh)" >&2
    skipped+=("$lang")
    continue
  fi
  script="$(python3 "$root/xtask/readme_script.py" "$root/$readme" "$tmp/prefix")" ||
    fail "$readme cannot be followed (above)"
  mkdir "$tmp/sdk-$lang"
  (cd "$tmp/sdk-$lang" && bash -c "$script") >"$tmp/sdk-$lang.log" 2>&1 || {
    cat "$tmp/sdk-$lang.log" >&2
    fail "$readme, \"A task from an empty directory\", failed (its output is above)"
  }
  echo "first-hour: $readme: built a task outside the repository against the installed SDK and ran it ($((SECONDS - start))s)"
done
[ ${#skipped[@]} -eq 0 ] || echo "first-hour: SKIPPED the READMEs of: ${skipped[*]}" >&2
