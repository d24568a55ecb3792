#!/usr/bin/env bash
# The packaging test (xtask/test.sh runs it once, after the tests, so the
# release build is reused): what `pip install engine-dask` gives a fresh machine.
#  1. build the wheel (xtask/wheel.sh);
#  2. install it into a fresh venv, with `dask` and `distributed` pinned as in
#     python/requirements-test.txt (from pip's cache when it is warm);
#  3. in an environment that knows nothing of this repository (PATH = the venv
#     and the system; no PYTHONPATH, ENGINE_*, CARGO_TARGET_DIR): `engine
#     --version`, `import engine_dask`, the stock plugins from the wheel;
#  4. a Dask scheduler and two workers started from the venv
#     (`python -m engine_dask.testing`, on loopback), whose `engine` is the
#     venv's;
#  5. examples/wordcount through `engine run --executor dask` with the
#     installed binary: out/ must equal examples/wordcount/expected/ byte for
#     byte, and the report must name a Dask worker for every task.
# Everything happens in a temporary directory, removed on exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start=$SECONDS
tmp="$(mktemp -d)"
harness=""
cleanup() {
  # Closing the harness's stdin stops the workers, then the scheduler.
  exec 3>&- 2>/dev/null || true
  [ -n "$harness" ] && wait "$harness" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "package-test: FAILED: $*" >&2
  exit 1
}

# 1. The wheel.
wheel="$(bash "$root/xtask/wheel.sh")"
built=$SECONDS

# 2. A fresh venv with the wheel.
venv="$tmp/venv"
python3 -m venv "$venv"
pins="$(grep -E '^(dask|distributed)==' "$root/python/requirements-test.txt")"
# shellcheck disable=SC2086 # one argument per pin
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" $pins || fail "pip install $wheel $pins"
installed=$SECONDS

# 3. A user's environment: nothing from this repository.
export PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin"
unset PYTHONPATH ENGINE_DASK_ENGINE ENGINE_DASK_PYTHON ENGINE_PLUGIN_PATH CARGO_TARGET_DIR
export ENGINE_CACHE_DIR="$tmp/cache"
[ "$(command -v engine)" = "$venv/bin/engine" ] || fail "the wheel's engine is not $venv/bin/engine"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/engine/Cargo.toml" | head -1)"
engine --version | grep -q "^engine $version " || fail "engine --version printed: $(engine --version)"
got="$(python -c 'import engine_dask; print(engine_dask.__version__)')"
[ "$got" = "$version" ] || fail "engine_dask.__version__ is $got, the engine is $version"
engine plugins | grep -q "^std:wordcount " || fail "the wheel's stock plugins are missing: $(engine plugins 2>&1)"

# 4. A cluster from the venv: it prints one JSON line, and stops when its stdin closes.
mkfifo "$tmp/harness-in"
python -m engine_dask.testing <"$tmp/harness-in" >"$tmp/harness.json" &
harness=$!
exec 3>"$tmp/harness-in"
for _ in $(seq 1200); do
  [ -s "$tmp/harness.json" ] && break
  kill -0 "$harness" 2>/dev/null || fail "python -m engine_dask.testing exited"
  sleep 0.1
done
scheduler="$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["scheduler"])' "$tmp/harness.json")"
# The workers run the venv's engine.
python - "$scheduler" "$venv/bin/engine" <<'EOF' || fail "the Dask workers do not run the wheel's engine"
import sys
from distributed import Client
from engine_dask.plugin import check_worker
with Client(sys.argv[1], timeout=30) as c:
    found = c.run(check_worker)
assert len(found) == 2 and all(i["engine"] == sys.argv[2] for i in found.values()), found
EOF
clustered=$SECONDS

# 5. wordcount on Dask with the installed engine.
mkdir "$tmp/wordcount"
cp "$root/examples/wordcount/pipeline.toml" "$root/examples/wordcount/corpus.txt" "$tmp/wordcount/"
cd "$tmp/wordcount"
engine run pipeline.toml --executor dask --scheduler "$scheduler" --report report.json --quiet >run.log 2>&1 ||
  fail "engine run --executor dask: $(cat run.log)"
for f in "$root"/examples/wordcount/expected/*; do
  cmp -s "$f" "out/$(basename "$f")" || fail "out/$(basename "$f") differs from examples/wordcount/expected"
done
[ "$(ls out | wc -l)" = "$(ls "$root/examples/wordcount/expected" | wc -l)" ] || fail "out/ holds other files: $(ls out)"
python - <<'EOF' || fail "the report does not name a Dask worker for every task"
import json
r = json.load(open("report.json"))
assert r["executor"] == "dask", r["executor"]
assert all(t.get("dask_worker") in ("w-gpu", "w-cpu") for t in r["tasks"]), r["tasks"]
EOF
echo "package-test: ok: $(basename "$wheel") ($(size_of "$wheel")) installed into a fresh venv ran wordcount on Dask;" \
  "build $((built - start)) s, install $((installed - built)) s, cluster $((clustered - installed)) s," \
  "run $((SECONDS - clustered)) s"
