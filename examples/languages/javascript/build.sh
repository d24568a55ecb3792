#!/usr/bin/env bash
# Builds the JavaScript word-count task wordcount.js -> javascript_wordcount.wasm,
# a component of the engine:task@1.0.0 world (sdk/wit/engine-task.wit) over
# the JavaScript SDK sdk/js, with
# npm `componentize-qjs` (QuickJS, the small backend jco uses;
# xtask/toolchains.sh installs it into target/toolchains/node_modules).
# Also the JavaScript test guest tests/guests/components/javascript/js_task.js
# -> test_js_task.wasm (for tests/all/components.rs).
source "$(dirname "$0")/../lib.sh"
qjs="$(npm_tool componentize-qjs componentize-qjs)"

out="$out_dir/javascript_wordcount.wasm"
here="$root/examples/languages/javascript"
if ! up_to_date "$out" "$here/wordcount.js" "$root/sdk/js/engine_task.js" "$root/sdk/wit" "$0"; then
  # --module-root: the import of ../../../sdk/js/engine_task.js is resolved
  # (at Wizer time) only under it.
  "$qjs" -w "$root/sdk/wit/engine-task.wit" -n task -j "$here/wordcount.js" --module-root "$root" --sync \
    -o "$out.tmp" >/dev/null
  mv "$out.tmp" "$out"
fi
done_msg "$out"
guest="$root/tests/guests/components/javascript/js_task.js"
out="$out_dir/test_js_task.wasm"
if ! up_to_date "$out" "$guest" "$root/sdk/wit" "$0"; then
  "$qjs" -w "$root/sdk/wit/engine-task.wit" -n task -j "$guest" --sync -o "$out.tmp" >/dev/null
  mv "$out.tmp" "$out"
  done_msg "$out"
fi
