#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this). Works from
# any current directory; honours $CARGO_TARGET_DIR (see xtask/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$root/xtask/setup.sh"
bash "$root/xtask/build-guests.sh"
# Guest-language toolchains (Zig, Go, AssemblyScript, C++) and their examples;
# see docs/languages.md. A missing toolchain skips only its language here, but
# the tests in tests/all/languages.rs then fail when CI is set.
bash "$root/xtask/toolchains.sh"
bash "$root/xtask/build-languages.sh"
# Third-party WASI programs (YoWASP yosys, nextpnr-ice40, icepack, icepll from
# PyPI, digests checked) for examples/fpga and tests/all/programs.rs.
bash "$root/xtask/fetch-wasi-programs.sh"
cd "$root"
cargo test --release --locked -p engine "$@"
# The first hour of a new user, against the binary the tests just built:
# install into a temp prefix, run std: plugins and an SDK task made outside the repo.
bash "$root/xtask/first-hour.sh"
