#!/usr/bin/env python3
"""Before/after comparison of engine builds, in one run.

    bench/.venv/bin/python bench/compare.py NAME=ENGINE [NAME=ENGINE ...] [--rounds 5] [--sizes ...]

For each build, alternately, `engine check` on the 1M-task layered pipeline of
bench/check (wall, user+sys CPU, peak RSS; medians over --rounds), then the
`engine run` matrix of bench/bench.py (--no-dask; every shape x size, threads and
sync, --no-cache when the build has a task cache), then Dask once on the same
graphs (10k and 100k). Prints two markdown tables and the geometric mean of the
run-time ratios of each build against the first. Run `bash bench/run.sh --quick`
once first (it makes bench/.venv and bench/noop.wasm).
"""
import argparse, json, math, os, resource, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def check_once(engine, pipeline):
    t0 = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(["/usr/bin/time", "-f", "%M", engine, "check", pipeline],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{engine} check failed: {p.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(p.stderr.strip().splitlines()[-1]) // 1024


def wrapper(engine, work, name):
    """A build with `--no-cache` gets it on `run`, so both sides run every task."""
    help_text = subprocess.run([engine, "run", "--help"], capture_output=True, text=True).stdout
    if "--no-cache" not in help_text:
        return engine
    path = os.path.join(work, f"engine-{name}")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nif [ "$1" = run ]; then exec "{engine}" "$@" --no-cache; fi\nexec "{engine}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def load(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            r = json.loads(line)
            if r.get("status") == "ok" and r.get("us_per_task") is not None:
                d[(r["shape"], r["n"], r.get("executor") or r.get("key"))] = r
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", metavar="NAME=ENGINE")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds]
    work = tempfile.mkdtemp(prefix="engine-compare-")
    py = sys.executable
    pipeline = subprocess.run([py, os.path.join(HERE, "check", "gen.py"), "1000000", work],
                              capture_output=True, text=True, check=True).stdout.strip()
    checks = {n: [] for n, _ in builds}
    for _ in range(a.rounds):
        for n, e in builds:
            checks[n].append(check_once(e, pipeline))
    os.remove(pipeline)
    load1 = os.getloadavg()[0]
    for n, e in builds:
        subprocess.run([py, os.path.join(HERE, "bench.py"), "--engine", wrapper(e, work, n), "--python", py,
                        "--no-dask", "--sizes", *map(str, a.sizes), "--workdir", os.path.join(work, n),
                        "--results", os.path.join(work, f"run-{n}.jsonl")],
                       stdout=subprocess.DEVNULL, check=True)
    if not a.no_dask:
        subprocess.run([py, os.path.join(HERE, "bench.py"), "--engine", builds[0][1], "--python", py,
                        "--no-engine", "--sizes", *map(str, [s for s in a.sizes if s <= 100_000]),
                        "--workdir", os.path.join(work, "dask"), "--results", os.path.join(work, "run-dask.jsonl")],
                       stdout=subprocess.DEVNULL, check=True)
    print(f"`engine check`, 1M-task layered pipeline, medians of {a.rounds} alternating rounds (load average {load1:.2f} at the end):\n")
    print("| build | wall s | user+sys s | peak RSS MiB |\n|---|---:|---:|---:|")
    for n, _ in builds:
        w, c, r = (statistics.median(x[i] for x in checks[n]) for i in range(3))
        print(f"| {n} | {w:.2f} | {c:.2f} | {r:.0f} |")
    runs = {n: load(os.path.join(work, f"run-{n}.jsonl")) for n, _ in builds}
    dask = load(os.path.join(work, "run-dask.jsonl"))
    first = builds[0][0]
    print("\n`engine run` (µs/task, the report's wall time; peak RSS MiB in brackets) and Dask on the same graphs:\n")
    print("| shape | tasks | executor | " + " | ".join(n for n, _ in builds) + " | Dask sync / threads |")
    print("|---|---:|---|" + "---:|" * (len(builds) + 1))
    for k in sorted(runs[first]):
        ds, dt = dask.get((k[0], k[1], "dask-sync")), dask.get((k[0], k[1], "dask-threads"))
        cells = [f"{runs[n][k]['us_per_task']} ({runs[n][k]['peak_rss_mib']:.0f})" if k in runs[n] else "–" for n, _ in builds]
        dd = f"{ds['us_per_task']} / {dt['us_per_task']}" if ds and dt else "–"
        print(f"| {k[0]} | {k[1]:,} | {k[2]} | " + " | ".join(cells) + f" | {dd} |")
    print()
    for n, _ in builds[1:]:
        rs = [runs[n][k]["us_per_task"] / runs[first][k]["us_per_task"] for k in runs[first] if k in runs[n]]
        if rs:
            print(f"- {n} / {first}: geometric mean of the time ratios over {len(rs)} rows: "
                  f"{math.exp(sum(map(math.log, rs)) / len(rs)):.3f}")


if __name__ == "__main__":
    main()
