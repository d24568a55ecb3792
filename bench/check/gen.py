#!/usr/bin/env python3
"""Generate a layered pipeline for the `engine check` benchmark.

Usage: gen.py TASKS OUT_DIR [WIDTH]

Writes OUT_DIR/pipeline-TASKS.toml with TASKS explicit tasks in layers of WIDTH
(default 1000); every task after the first layer takes the outputs of 2 tasks of
the previous layer. Also writes OUT_DIR/plugins/noop.wasm, a minimal WASI
command module (exports `_start`).
"""
import os
import sys

# (module (func (export "_start")))
NOOP_WASM = bytes.fromhex(
    "0061736d01000000"      # magic, version
    "010401600000"          # type section: () -> ()
    "03020100"              # function section: 1 function of type 0
    "070a01065f737461727400 00".replace(" ", "")  # export "_start" func 0
    + "0a040102000b"        # code section: empty body
)


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    os.makedirs(os.path.join(out, "plugins"), exist_ok=True)
    with open(os.path.join(out, "plugins", "noop.wasm"), "wb") as f:
        f.write(NOOP_WASM)
    path = os.path.join(out, f"pipeline-{n}.toml")
    with open(path, "w") as f:
        f.write(f'[pipeline]\nname = "layers-{n}"\n\n[plugins]\nnoop = "plugins/noop.wasm"\n\n')
        f.write('[resources]\ncpu = 2\nmemory = "4GiB"\n\n')
        for i in range(n):
            layer, k = divmod(i, width)
            f.write(f"[tasks.t{layer}_{k}]\nplugin = \"noop\"\n")
            if layer > 0:
                w = min(width, n - (layer - 1) * width)
                f.write(f'inputs = {{ a = "t{layer - 1}_{k % w}", b = "t{layer - 1}_{(k + 1) % w}" }}\n')
            f.write("\n")
    print(path)


if __name__ == "__main__":
    main()
