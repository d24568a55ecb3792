#!/usr/bin/env python3
"""`engine run --executor dask` next to Dask's own API on the same local cluster.

Run by bench/dask.sh (which builds what it needs); prints one markdown table.
Every case starts its cluster with `python -m engine_dask.testing` (a `dask
scheduler` and workers of one thread each, on loopback), then alternates the
two sides `--repeats` times and keeps each side's best time:

* wide:  N independent no-op tasks (the test guest `noop`) vs
         `client.map(noop, range(N))` + `gather`;
* chain: N tasks, each taking the previous one's output (the test guest
         `echo`, which copies its input and writes 1 byte) vs a Dask-native
         chain (`client.submit(f, previous_future)`, the last one gathered),
         and the client-in-the-loop chain (`submit`, `result()`, `submit`, ...)
         that the engine's one-hop-per-edge design matches;
* cpu:   sha256 of FILES files of 16 MiB (`std:sha256`) on 1 and on 2 workers.

The engine's time is the report's `wall_ms` (from the run's start to its end:
every task, its `engine worker` children starting, the store); "process" adds
the engine's start, the bridge's Python start and the connect. Dask's time is
the `map`/`submit` to `gather` on a connected client. Both use one run of
plugins and `--no-cache`.

  target/pyenv/bin/python bench/dask_bench.py --engine target/release/engine \\
      --guests target/test-guests --work bench/.work/dask
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def noop(i):
    return i


def inc(x):
    return x + 1


class Cluster:
    def __init__(self, python, env, workers):
        self.proc = subprocess.Popen(
            [python, "-m", "engine_dask.testing", "--workers", workers],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        info = json.loads(self.proc.stdout.readline())
        self.scheduler = info["scheduler"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def wide_pipeline(n, guests):
    s = f'[pipeline]\nname = "dask-wide-{n}"\n\n[plugins]\nnoop = "{guests}/noop.wasm"\n\n'
    return s + "[tasks.w]\nplugin = \"noop\"\nforeach = { i = { range = [0, %d] } }\n" % n


def chain_pipeline(n, guests):
    s = f'[pipeline]\nname = "dask-chain-{n}"\n\n[plugins]\necho = "{guests}/echo.wasm"\n\n'
    s += '[tasks.c0]\nplugin = "echo"\nparams = { text = "x" }\n\n'
    for i in range(1, n):
        s += f'[tasks.c{i}]\nplugin = "echo"\ninputs = {{ a = "c{i - 1}" }}\nparams = {{ text = "x" }}\n\n'
    return s


def cpu_pipeline():
    return (
        '[pipeline]\nname = "dask-sha256"\n\n[tasks.h]\nplugin = "std:sha256"\n'
        'foreach = { f = { glob = "data/*.bin" } }\ninputs = { data = "file:{f}" }\n'
        'resources = { memory = "64MiB" }\n'
    )


def run_engine(args, dirpath, scheduler, env):
    """One `engine run`: (report wall_ms, process seconds)."""
    report = os.path.join(dirpath, "report.json")
    cmd = [args.engine, "run", os.path.join(dirpath, "pipeline.toml"), "--executor", "dask"]
    cmd += ["--scheduler", scheduler, "--no-cache", "--quiet", "--report", report]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"engine run failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    with open(report) as f:
        r = json.load(f)
    return r["wall_ms"] / 1000.0, took


def best(xs):
    return min(xs)


def case_wide(args, env, row):
    d = os.path.join(args.work, "wide")
    write(os.path.join(d, "pipeline.toml"), wide_pipeline(args.wide, args.guests))
    from distributed import Client

    c = Cluster(args.python, env, "w1:;w2:")
    try:
        eng, proc, dsk = [], [], []
        with Client(c.scheduler, timeout=30) as client:
            client.gather(client.map(noop, range(8), pure=False))  # warm the workers
            for _ in range(args.repeats):
                w, p = run_engine(args, d, c.scheduler, env)
                eng.append(w)
                proc.append(p)
                t0 = time.perf_counter()
                client.gather(client.map(noop, range(args.wide), pure=False))
                dsk.append(time.perf_counter() - t0)
    finally:
        c.close()
    row(f"wide no-op, {args.wide} tasks, 2 workers", best(eng), best(proc), best(dsk), "`client.map` + `gather`", 1.25)


def case_chain(args, env, row):
    d = os.path.join(args.work, "chain")
    write(os.path.join(d, "pipeline.toml"), chain_pipeline(args.chain, args.guests))
    from distributed import Client

    c = Cluster(args.python, env, "w1:;w2:")
    try:
        eng, proc, native, loop = [], [], [], []
        with Client(c.scheduler, timeout=30) as client:
            client.gather(client.map(noop, range(8), pure=False))
            for _ in range(args.repeats):
                w, p = run_engine(args, d, c.scheduler, env)
                eng.append(w)
                proc.append(p)
                t0 = time.perf_counter()
                f = client.submit(inc, 0, pure=False)
                for _ in range(args.chain - 1):
                    f = client.submit(inc, f, pure=False)
                assert f.result() == args.chain
                native.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                x = 0
                for _ in range(args.chain):
                    x = client.submit(inc, x, pure=False).result()
                loop.append(time.perf_counter() - t0)
    finally:
        c.close()
    row(f"chain, {args.chain} tasks, 2 workers", best(eng), best(proc), best(native), "Dask-native chain (futures as args)", 2.5)
    row(
        f"chain, {args.chain} tasks, 2 workers",
        best(eng),
        best(proc),
        best(loop),
        "client in the loop (`submit`, `result()`)",
        None,
    )


def case_cpu(args, env, row):
    d = os.path.join(args.work, "cpu")
    data = os.path.join(d, "data")
    os.makedirs(data, exist_ok=True)
    size = 16 << 20
    for i in range(args.files):
        p = os.path.join(data, f"{i:02}.bin")
        if not (os.path.exists(p) and os.path.getsize(p) == size):
            with open(p, "wb") as f:
                f.write(os.urandom(size))
    write(os.path.join(d, "pipeline.toml"), cpu_pipeline())
    times = {}
    for n, spec in [(1, "w1:"), (2, "w1:;w2:")]:
        c = Cluster(args.python, env, spec)
        try:
            ws, ps = [], []
            for _ in range(args.repeats):
                w, p = run_engine(args, d, c.scheduler, env)
                ws.append(w)
                ps.append(p)
            times[n] = (best(ws), best(ps))
        finally:
            c.close()
    label = f"sha256 of {args.files} × 16 MiB"
    print(f"| {label}, 1 worker | {times[1][0]:.2f} s | {times[1][1]:.2f} s | | | |")
    speedup = times[1][0] / times[2][0]
    print(f"| {label}, 2 workers | {times[2][0]:.2f} s | {times[2][1]:.2f} s | | {speedup:.2f}× faster than 1 worker | |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--guests", required=True, help="directory of the test guests (noop.wasm, echo.wasm)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--wide", type=int, default=1000)
    ap.add_argument("--chain", type=int, default=200)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="*", default=["wide", "chain", "cpu"])
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    args.guests = os.path.abspath(args.guests)
    env = dict(os.environ)
    env["ENGINE_DASK_PYTHON"] = args.python
    env["ENGINE_CACHE_DIR"] = os.path.join(args.work, "cache")

    load0 = os.getloadavg()
    print(f"{subprocess.run([args.engine, '--version'], capture_output=True, text=True).stdout.strip()}; ", end="")
    import distributed

    print(f"distributed {distributed.__version__}; {os.cpu_count()} cores; best of {args.repeats}")
    print()
    print("| case | engine (run) | engine (process) | Dask | Dask side | engine ÷ Dask (target) |")
    print("|---|---|---|---|---|---|")

    def row(case, eng, proc, dsk, how, target):
        ratio = eng / dsk
        verdict = "" if target is None else (" ✓" if ratio <= target else " ✗")
        tgt = "" if target is None else f" (≤ {target}×){verdict}"
        print(f"| {case} | {eng:.2f} s | {proc:.2f} s | {dsk:.2f} s | {how} | {ratio:.2f}×{tgt} |", flush=True)

    for case in args.cases:
        {"wide": case_wide, "chain": case_chain, "cpu": case_cpu}[case](args, env, row)
    load1 = os.getloadavg()
    print()
    print(
        f"load average (1/5/15 min) before: {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
        f"after: {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}"
    )

if __name__ == "__main__":
    main()
