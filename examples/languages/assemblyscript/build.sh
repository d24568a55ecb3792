#!/usr/bin/env bash
# Builds the AssemblyScript word-count task wordcount.ts ->
# assemblyscript_wordcount.wasm with asc from npm `assemblyscript`
# (xtask/toolchains.sh installs it into target/toolchains/node_modules), then
# sdk/assemblyscript/addmeta.mjs appends the engine.task section.
source "$(dirname "$0")/../lib.sh"
command -v node >/dev/null 2>&1 || missing "node not found"
asc="$(npm_tool asc assemblyscript)"
here="$root/examples/languages/assemblyscript"

out="$out_dir/assemblyscript_wordcount.wasm"
if ! up_to_date "$out" "$here" "$root/sdk/assemblyscript" "$0"; then
  # --use abort=...: a failed assertion records the task error and traps,
  # instead of importing `env.abort`.
  (cd "$root" && "$asc" examples/languages/assemblyscript/wordcount.ts -O3 --noAssert \
    --use abort=sdk/assemblyscript/engine/abort -o "$out.raw")
  rm -f "$out.tmp"
  node "$root/sdk/assemblyscript/addmeta.mjs" "$out.raw" "$here/meta.json" "$out.tmp"
  rm -f "$out.raw"
  mv "$out.tmp" "$out"
fi
done_msg "$out"
