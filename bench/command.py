#!/usr/bin/env python3
"""Command tasks against SDK tasks (issue 14): prints two markdown tables.

Table 1, per-task overhead. The `layered` graph of shapes.py (layers of 100
tasks, each taking 2 tasks of the layer above) at each --sizes, run by
`engine run --executor threads --workers 2` on a fresh store, once with every
task the no-op SDK plugin (bench/noop.wasm) and once with every task the Rust
`std` WASI command `one_byte` (writes one byte to /out/out), each quiet and
while `dd if=/dev/zero of=FILE bs=1M count=4096 conv=fsync` writes to the
disk the store is on (restarted whenever it ends, until the run ends).
Optionally Dask threads (`dask.threaded.get(num_workers=2)`, bench/dask_peer.py)
on the same graph, with --dask-python.

Columns: the whole `engine run` process (wall), its CPU time (user + sys,
from wait4: what the run costs the machine, which is shared), the run phase
(`wall_ms` of the report), the mean in-task time of the report
(`duration_us`, and for command tasks its set-up / run / publish split),
peak RSS, and the 1-minute load average when the run started. Each cell is
the median of --repeats runs.

Table 2, a command task that copies a 1 GiB input to /out (`cmd_probe copy
/in/a /out/out`, which writes a 5-byte line first so that the output is a
new blob, not the input again): the task's in-task time from the report
(read from the store, through the guest, into the store: publish includes
the store's sha256 and fsync), against `cp` of the output blob file, and
`cp` then `sync FILE` (fsync), on the same disk.

  bench/command.sh                      # builds, then runs this with defaults
  python3 bench/command.py --engine target/release/engine --guests target/test-guests \\
      --sizes 10000 --repeats 3 --no-dd --copy-gib 0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_pipeline  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_measured(cmd, stdout_path, stderr_path, env=None, cwd=None):
    """Run cmd; return (exit status, wall s, cpu s (user+sys), peak RSS MiB)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


class DiskLoad:
    """`dd ... conv=fsync` into `path`, restarted until stopped."""

    def __init__(self, path):
        self.path, self.stop_flag, self.proc = path, threading.Event(), None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.rounds = 0

    def _loop(self):
        while not self.stop_flag.is_set():
            self.proc = subprocess.Popen(
                ["dd", "if=/dev/zero", f"of={self.path}", "bs=1M", "count=4096", "conv=fsync"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.wait()
            self.rounds += 1

    def __enter__(self):
        self.thread.start()
        time.sleep(2.0)  # let dirty pages build up before the run starts
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join()
        if os.path.exists(self.path):
            os.remove(self.path)


def report_stats(path, tasks):
    """wall_ms and mean per-task times of a run report (regex over the bytes: a
    100k-task report is large)."""
    data = open(path, "rb").read()
    head = data[:1 << 16].decode("utf-8", "replace")
    wall = float(re.search(r'"wall_ms"\s*:\s*([0-9.eE+-]+)', head).group(1))
    status = re.search(r'"status"\s*:\s*"(\w+)"', head).group(1)
    out = {"wall_ms": wall, "status": status}
    for key in ("duration_us", "setup_us", "run_us", "publish_us"):
        xs = [int(m) for m in re.findall(rb'"' + key.encode() + rb'"\s*:\s*(\d+)', data)]
        if xs:
            out[key] = sum(xs) / len(xs)
    return out


def engine_run(a, pipeline, workdir, tag):
    store = os.path.join(workdir, f"store-{tag}")
    report = os.path.join(workdir, f"report-{tag}.json")
    shutil.rmtree(store, ignore_errors=True)
    cmd = [a.engine, "run", pipeline, "--executor", "threads", "--workers", "2",
           "--store", store, "--report", report, "--quiet"]
    if not a.cache:
        cmd.append("--no-cache")
    env = dict(os.environ, ENGINE_CACHE_DIR=os.path.join(a.workdir, "module-cache"))
    la = loadavg()
    rc, wall, cpu, rss = run_measured(cmd, os.path.join(workdir, f"{tag}.stdout"),
                                      os.path.join(workdir, f"{tag}.stderr"), env)
    if rc != 0:
        sys.exit(f"engine run failed (exit {rc}): {' '.join(cmd)}\n"
                 + open(os.path.join(workdir, f"{tag}.stderr")).read()[-2000:])
    rep = report_stats(report, None)
    rep.update(process_s=wall, cpu_s=cpu, rss_mib=rss, load=la)
    return rep, store, report


def median_run(a, pipeline, workdir, tag, tasks):
    recs = []
    for _ in range(a.repeats):
        rec, store, report = engine_run(a, pipeline, workdir, tag)
        shutil.rmtree(store, ignore_errors=True)
        os.remove(report)
        recs.append(rec)
    out = {k: statistics.median(r[k] for r in recs) for k in recs[0] if k != "status"}
    out["loads"] = [r["load"] for r in recs]
    out["tasks"] = tasks
    return out


def us(x, tasks):
    return x * 1e6 / tasks


def row(graph, kind, disk, r):
    t = r["tasks"]
    split = "–"
    if "setup_us" in r:
        split = f'{r["setup_us"]:.1f} / {r["run_us"]:.1f} / {r["publish_us"]:.1f}'
    return (f'| {graph} | {t:,} | {kind} | {disk} | {r["process_s"]:.2f} | '
            f'{us(r["process_s"], t):.1f} | {us(r["cpu_s"], t):.1f} | '
            f'{r["wall_ms"] * 1000 / t:.1f} | {r["duration_us"]:.1f} | {split} | '
            f'{r["rss_mib"]:.0f} | {min(r["loads"]):.1f}–{max(r["loads"]):.1f} |')


def overhead_table(a):
    lines = [
        "| graph | tasks | task | disk | process s | process µs/task | CPU µs/task (user+sys) "
        "| run phase µs/task | in-task µs | set-up / run / publish µs | peak RSS MiB | load avg |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    plugins = [("SDK no-op", a.noop), ("command `one_byte`", os.path.join(a.guests, "one_byte.wasm"))]
    results = {}
    for n in a.sizes:
        for kind, plugin in plugins:
            workdir = os.path.join(a.workdir, f"cmd-layered-{n}-{os.path.basename(plugin)[:-5]}")
            os.makedirs(workdir, exist_ok=True)
            pipeline = os.path.join(workdir, "pipeline.toml")
            gen_pipeline.generate("layered", n, pipeline, plugin)
            # Warm the module cache (compilation is not what is measured).
            engine_run(a, pipeline, workdir, "warm")
            disks = ["quiet"] + ([] if a.no_dd else ["dd"])
            for disk in disks:
                log(f"bench: layered {n} {kind} {disk}")
                if disk == "dd":
                    with DiskLoad(os.path.join(a.workdir, "dd.bin")):
                        r = median_run(a, pipeline, workdir, disk, n)
                else:
                    r = median_run(a, pipeline, workdir, disk, n)
                results[(n, kind, disk)] = r
                lines.append(row("layered", kind, "`dd` writing" if disk == "dd" else "quiet", r))
    notes = []
    for n in a.sizes:
        sdk, cmd = results.get((n, "SDK no-op", "quiet")), results.get((n, "command `one_byte`", "quiet"))
        if sdk and cmd:
            notes.append(f"- layered {n:,}: command ÷ SDK, whole process "
                         f"{cmd['process_s'] / sdk['process_s']:.2f}×, CPU {cmd['cpu_s'] / sdk['cpu_s']:.2f}×")
        dd = results.get((n, "command `one_byte`", "dd"))
        if cmd and dd:
            notes.append(f"- layered {n:,}: command tasks with `dd` writing ÷ quiet, whole process "
                         f"{dd['process_s'] / cmd['process_s']:.2f}× (target ≤ 1.3×)")
    if a.dask_python:
        for n in [s for s in a.sizes if s <= 10_000]:
            workdir = os.path.join(a.workdir, f"cmd-layered-{n}-dask")
            os.makedirs(workdir, exist_ok=True)
            so, se = os.path.join(workdir, "dask.stdout"), os.path.join(workdir, "dask.stderr")
            log(f"bench: layered {n} Dask threads")
            la = loadavg()
            rc, wall, cpu, rss = run_measured(
                [a.dask_python, os.path.join(HERE, "dask_peer.py"), "--shape", "layered", "--n", str(n),
                 "--scheduler", "threads", "--repeats", str(a.repeats)], so, se)
            if rc != 0:
                notes.append(f"- Dask threads layered {n:,}: failed (exit {rc})")
                continue
            d = json.loads([ln for ln in open(so).read().splitlines() if ln.startswith("{")][-1])
            lines.append(f'| layered | {n:,} | Dask threads, Python no-op | quiet | {wall:.2f} | '
                         f'{us(wall, n):.1f} | {us(cpu, n) / a.repeats:.1f} (per run) | '
                         f'{d["us_per_task"]:.1f} (one `get()`, best of {a.repeats}) | – | – | '
                         f'{rss:.0f} | {la:.1f} |')
            cmd = results.get((n, "command `one_byte`", "quiet"))
            if cmd:
                notes.append(f"- layered {n:,}: Dask threads (one `get()`) ÷ command tasks (whole "
                             f"`engine run` process) = {d['us_per_task'] / us(cmd['process_s'], n):.1f}× "
                             f"(target ≥ 5×)")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def copy_table(a):
    gib = a.copy_gib
    size = int(gib * (1 << 30))
    workdir = os.path.join(a.workdir, "cmd-copy")
    os.makedirs(workdir, exist_ok=True)
    src = os.path.join(workdir, "big.bin")
    if not os.path.exists(src) or os.path.getsize(src) != size:
        log(f"bench: writing {gib:g} GiB of random bytes to {src}")
        block = os.urandom(1 << 20)
        with open(src, "wb") as f:
            for i in range(size >> 20):
                f.write(block[i % 7:] + block[:i % 7])
    probe = os.path.relpath(os.path.join(a.guests, "cmd_probe.wasm"), workdir)
    pipeline = os.path.join(workdir, "pipeline.toml")
    with open(pipeline, "w") as f:
        f.write('[pipeline]\nname = "copy"\n\n[plugins]\nprobe = "' + probe + '"\n\n'
                '[tasks.copy]\nplugin = "probe"\ninputs = { a = "file:big.bin" }\n'
                'args = ["copy", "/in/a", "/out/out"]\n')
    recs = []
    for i in range(a.repeats):
        log(f"bench: copy {gib:g} GiB through a command task ({i + 1}/{a.repeats})")
        rec, store, report = engine_run(a, pipeline, workdir, "copy")
        # The stored output, to copy with cp (same disk, same bytes).
        blob = None
        for root, _, files in os.walk(os.path.join(store, "objects")):
            for name in files:
                p = os.path.join(root, name)
                if os.path.getsize(p) == size + len(b"copy\n"):
                    blob = p
        cp_dest = os.path.join(workdir, "cp.bin")
        for variant in ("cp", "cp+sync"):
            if os.path.exists(cp_dest):
                os.remove(cp_dest)
            subprocess.run(["sync"], check=True)
            t0 = time.perf_counter()
            subprocess.run(["cp", blob, cp_dest], check=True)
            if variant == "cp+sync":
                subprocess.run(["sync", cp_dest], check=True)
            rec[variant] = time.perf_counter() - t0
        os.remove(cp_dest)
        shutil.rmtree(store, ignore_errors=True)
        os.remove(report)
        recs.append(rec)
    med = {k: statistics.median(r[k] for r in recs)
           for k in ("duration_us", "setup_us", "run_us", "publish_us", "process_s", "cp", "cp+sync")}
    gb = size / 1e9
    task_s = med["duration_us"] / 1e6
    lines = [
        "| what | s | GB/s |",
        "|---|---:|---:|",
        f'| command task `cmd_probe copy /in/a /out/out`, in-task (set-up {med["setup_us"] / 1e6:.2f} s, '
        f'run {med["run_us"] / 1e6:.2f} s, publish {med["publish_us"] / 1e6:.2f} s) | {task_s:.2f} | {gb / task_s:.2f} |',
        f'| the whole `engine run` process (also stores the `file:` input) | {med["process_s"]:.2f} | '
        f'{gb / med["process_s"]:.2f} |',
        f'| `cp` of the output blob | {med["cp"]:.2f} | {gb / med["cp"]:.2f} |',
        f'| `cp` then `sync FILE` | {med["cp+sync"]:.2f} | {gb / med["cp+sync"]:.2f} |',
    ]
    return "\n".join(lines) + (f"\n\n- task ÷ `cp`: {task_s / med['cp']:.2f}×, task ÷ `cp`+`sync`: "
                               f"{task_s / med['cp+sync']:.2f}× (target ≤ 1.5×); ≥ 1 GB/s: "
                               f"{'met' if gb / task_s >= 1 else 'not met'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", required=True)
    p.add_argument("--guests", required=True, help="directory with one_byte.wasm and cmd_probe.wasm")
    p.add_argument("--noop", default=os.path.join(HERE, "noop.wasm"))
    p.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-dd", action="store_true", help="skip the runs under disk load")
    p.add_argument("--cache", action="store_true",
                   help="leave the action cache on (default: --no-cache, since every task of the "
                        "layered graph has the same inputs and would be a hit)")
    p.add_argument("--copy-gib", type=float, default=1.0, help="0 skips the copy table")
    p.add_argument("--dask-python", default=None, help="a python with dask: adds Dask threads at 10k")
    p.add_argument("--workdir", default=os.path.join(HERE, ".work"))
    a = p.parse_args(argv)
    a.engine = os.path.abspath(a.engine)
    a.guests = os.path.abspath(a.guests)
    os.makedirs(a.workdir, exist_ok=True)
    print(f"`{' '.join(['bench/command.py'] + (argv or sys.argv[1:]))}` — "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {loadavg():.1f}\n")
    print(overhead_table(a))
    if a.copy_gib > 0:
        print()
        print(copy_table(a))


if __name__ == "__main__":
    main()
