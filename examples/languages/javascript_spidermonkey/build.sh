#!/usr/bin/env bash
# Builds the JavaScript word-count task examples/languages/javascript/wordcount.js
# (the same source as the QuickJS build next door, over sdk/js) with
# npm `@bytecodealliance/componentize-js` (SpiderMonkey, through
# StarlingMonkey; xtask/toolchains.sh installs it into
# target/toolchains/node_modules) -> javascript_spidermonkey_wordcount.wasm,
# a component of the engine:task@1.0.0 world (sdk/wit/engine-task.wit).
#
# `--disable http fetch-event`: otherwise the component imports wasi:http,
# which the engine refuses (tasks get no network). Run from the repository
# root: componentize-js resolves the module's relative imports
# (../../../sdk/js/engine_task.js) against the current directory.
source "$(dirname "$0")/../lib.sh"
cjs="$(npm_tool componentize-js @bytecodealliance/componentize-js)"

out="$out_dir/javascript_spidermonkey_wordcount.wasm"
src="$root/examples/languages/javascript/wordcount.js"
if ! up_to_date "$out" "$src" "$root/sdk/js/engine_task.js" "$root/sdk/wit" "$0"; then
  (cd "$root" && "$cjs" examples/languages/javascript/wordcount.js --wit sdk/wit/engine-task.wit -n task \
    --disable http fetch-event -o "$out.tmp" >/dev/null)
  mv "$out.tmp" "$out"
fi
done_msg "$out"
