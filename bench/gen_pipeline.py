#!/usr/bin/env python3
"""Write a benchmark graph (see shapes.py) as a pipeline.toml for the engine.

Every task runs the no-op SDK plugin (bench/noop.wat) and takes its upstream
tasks' default output `out` as inputs, so the graph has real edges:
scalar inputs `a`, `b` for chain/layered, one list input `parts` for the
wide and mapreduce reducers.

  bench/gen_pipeline.py --shape layered --n 1000000 --plugin bench/noop.wasm \\
      --out bench/.work/layered-1000000/pipeline.toml

Written with plain string formatting (a 1M-task file takes a few seconds).
Prints one JSON line: {"path", "shape", "n", "tasks", "bytes", "gen_s"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

SCALAR_NAMES = "abcdefghijklmnopqrstuvwxyz"


def write_pipeline(f, shape, n, plugin_ref, cpu=None):
    """Write the pipeline text to the text file `f`; return the number of tasks."""
    f.write(f'[pipeline]\nname = "bench-{shape}-{n}"\n\n')
    f.write(f'[plugins]\nnoop = "{plugin_ref}"\n\n')
    if cpu is not None:
        f.write(f"[resources]\ncpu = {cpu}\n\n")
    buf = []
    count = 0
    for name, deps, as_list in shapes.tasks(shape, n):
        count += 1
        if not deps:
            buf.append(f'[tasks.{name}]\nplugin = "noop"\n\n')
        elif as_list:
            parts = '", "'.join(deps)
            buf.append(f'[tasks.{name}]\nplugin = "noop"\ninputs = {{ parts = ["{parts}"] }}\n\n')
        else:
            ins = ", ".join(f'{SCALAR_NAMES[k]} = "{d}"' for k, d in enumerate(deps))
            buf.append(f'[tasks.{name}]\nplugin = "noop"\ninputs = {{ {ins} }}\n\n')
        if len(buf) >= 8192:
            f.write("".join(buf))
            buf.clear()
    f.write("".join(buf))
    return count


def generate(shape, n, out, plugin, cpu=None):
    t0 = time.perf_counter()
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    plugin_ref = os.path.relpath(os.path.abspath(plugin), out_dir)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as f:
        count = write_pipeline(f, shape, n, plugin_ref, cpu)
    os.replace(tmp, out)
    return {"path": out, "shape": shape, "n": n, "tasks": count,
            "bytes": os.path.getsize(out), "gen_s": round(time.perf_counter() - t0, 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, choices=shapes.SHAPES)
    p.add_argument("--n", required=True, type=int, help="size parameter (see shapes.py)")
    p.add_argument("--plugin", required=True, help="the no-op .wasm (referenced relative to --out)")
    p.add_argument("--out", required=True, help="pipeline.toml to write")
    p.add_argument("--cpu", type=int, default=None,
                   help="write a [resources] cpu = N table (default: none)")
    a = p.parse_args(argv)
    print(json.dumps(generate(a.shape, a.n, a.out, a.plugin, a.cpu)))


if __name__ == "__main__":
    main()
