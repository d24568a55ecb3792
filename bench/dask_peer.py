#!/usr/bin/env python3
"""Run one benchmark graph (see shapes.py) on Dask and print one JSON line.

The graph is the same DAG the engine runs (same names, edges and seed) as a raw
Dask dict `{name: (task, *upstream_names)}`; `task` ignores its arguments and
returns 0 (the Dask counterpart of bench/noop.wat). Every sink is requested, so
nothing is culled and every task runs.

Schedulers: `sync` = `dask.get`; `threads` = `dask.threaded.get(num_workers=2)`;
`processes` = `dask.multiprocessing.get(num_workers=2, optimize_graph=False)` on
a pool started (and reported) beforehand. No scheduler is given a chance to fuse
tasks: raw dicts are not optimized by `dask.get`/`dask.threaded.get`, and
`optimize_graph=False` for processes.

"exec_s" is the wall time of one `get(dsk, keys)` call (graph conversion,
ordering, scheduling, running), minimum over the runs; building the dict is
reported separately as "build_s". "peak_rss_mib" is this process's ru_maxrss.

  bench/.venv/bin/python bench/dask_peer.py --shape wide --n 10000 --scheduler threads
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402


def task(*_upstream):
    return 0


def build(shape, n):
    dsk = {}
    for name, deps, _as_list in shapes.tasks(shape, n):
        dsk[name] = (task, *deps)
    return dsk, shapes.sinks(shape, n)


def peak_rss_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _sleep(s):
    time.sleep(s)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, choices=shapes.SHAPES)
    p.add_argument("--n", required=True, type=int)
    p.add_argument("--scheduler", required=True, choices=["sync", "threads", "processes"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args(argv)

    import dask
    import dask.threaded

    rec = {"side": "dask", "shape": a.shape, "n": a.n, "scheduler": a.scheduler,
           "workers": a.workers, "dask": dask.__version__}
    cleanup = None
    if a.scheduler == "sync":
        def get(dsk, keys):
            return dask.get(dsk, keys)
    elif a.scheduler == "threads":
        def get(dsk, keys):
            return dask.threaded.get(dsk, keys, num_workers=a.workers)
    else:
        from concurrent.futures import ProcessPoolExecutor
        import dask.multiprocessing
        t0 = time.perf_counter()
        pool = ProcessPoolExecutor(a.workers, mp_context=dask.multiprocessing.get_context())
        list(pool.map(_sleep, [0.1] * a.workers))  # start every worker now
        rec["startup_s"] = round(time.perf_counter() - t0, 3)
        cleanup = pool.shutdown

        def get(dsk, keys):
            return dask.multiprocessing.get(dsk, keys, num_workers=a.workers, pool=pool,
                                            optimize_graph=False)

    runs, builds = [], []
    try:
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            dsk, keys = build(a.shape, a.n)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = get(dsk, keys)
            runs.append(time.perf_counter() - t0)
            if len(res) != len(keys) or any(r != 0 for r in res):
                sys.exit(f"dask returned unexpected results for {a.shape} {a.n}")
            del dsk, res
    finally:
        if cleanup:
            cleanup()
    tasks = shapes.task_count(a.shape, a.n)
    best = min(runs)
    rec.update({"tasks": tasks, "runs_s": [round(x, 4) for x in runs], "exec_s": round(best, 4),
                "build_s": round(min(builds), 4), "us_per_task": round(best / tasks * 1e6, 2),
                "peak_rss_mib": peak_rss_mib()})
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
