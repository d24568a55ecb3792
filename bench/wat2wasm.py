#!/usr/bin/env python3
"""Convert a .wat file to a .wasm binary (wasmtime's `wat2wasm`, from the `wasmtime`
wheel installed in bench/.venv). Rewrites the output only when the bytes change.

  bench/.venv/bin/python bench/wat2wasm.py bench/noop.wat bench/noop.wasm
"""

import sys

from wasmtime import wat2wasm


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: wat2wasm.py IN.wat OUT.wasm")
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        wasm = bytes(wat2wasm(f.read()))
    try:
        with open(dst, "rb") as f:
            if f.read() == wasm:
                return
    except FileNotFoundError:
        pass
    with open(dst, "wb") as f:
        f.write(wasm)


if __name__ == "__main__":
    main()
