#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash xtask/setup.sh
# The pinned Python venv ($TARGET/pyenv): moto_server for the S3 store tests, Dask
# (tests/all/dask.rs).
bash xtask/setup-python.sh
bash xtask/build-guests.sh
# Guest-language toolchains (Zig, Go, AssemblyScript, C++) and their examples;
# see docs/languages.md. A missing toolchain skips only its language here, but
# the tests in tests/all/languages.rs then fail when CI is set.
bash xtask/toolchains.sh
bash xtask/build-languages.sh
# Third-party WASI programs (YoWASP yosys, nextpnr-ice40, icepack, icepll from
# PyPI, digests checked) for examples/fpga and tests/all/programs.rs.
bash xtask/fetch-wasi-programs.sh
cargo test --release --locked -p engine "$@"
