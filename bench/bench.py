#!/usr/bin/env python3
"""The engine-vs-Dask matrix: run every shape x size on the engine (threads with
2 workers, and sync) and on Dask (sync, threaded with 2 workers), then print ONE
markdown table and check the targets. Called by bench/run.sh, which prepares
the venv, the engine binary and bench/noop.wasm first.

Engine side: `engine run pipeline.toml --executor threads --workers 2` (and
`--executor sync`) with `--report`, a fresh `--store` per run and a shared,
pre-warmed module cache (ENGINE_CACHE_DIR). "wall" is `wall_ms` from the run
report, nothing subtracted; "process" is the whole process (parse, plan,
compile-cache lookup, run, report), measured here; peak RSS is the process's
ru_maxrss from wait4.

Dask side: bench/dask_peer.py, one process per (shape, size, scheduler). Sizes
that would take too long are skipped with the reason: layered >= 100k always
(dask.order is super-linear on it), other sizes when the time extrapolated from
the smaller sizes of the same shape/scheduler exceeds --dask-max-run-s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_pipeline  # noqa: E402
import shapes  # noqa: E402

SECTION = "## engine run vs Dask (per-task overhead)"

DASK_FORCED_SKIPS = {
    "layered": (100_000, "dask.order() is super-linear on this graph (peer study, "
                         "/work/shared/bench/peers: 10k 0.8 s/0.25 GiB, 20k 3.0 s/0.8 GiB, "
                         "40k 11.5 s/3.0 GiB; 100k dies with MemoryError under a 16 GiB cap "
                         "before the first task runs)"),
}

TARGET_US = 10.0
TARGET_VS_THREADS = 10.0
TARGET_VS_SYNC = 3.0
TARGET_RSS_MIB = 2048.0
FLAT_RATIO = 1.5


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ measuring

def run_measured(cmd, timeout_s, stdout_path, stderr_path, env=None):
    """Run cmd; return (exit status or None on timeout, wall s, peak RSS MiB)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss = round(ru.ru_maxrss / 1024, 1)
    return (None if timed_out.is_set() else proc.returncode), wall, rss


def tail(path, n=600):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def report_head(path):
    """wall_ms, status and counts from the top of a run report (the per-task list,
    which follows them, can be 100+ MB at 1M tasks and is not needed)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    out = {}
    m = re.search(r'"wall_ms"\s*:\s*([0-9.eE+-]+)', head)
    if m:
        out["wall_ms"] = float(m.group(1))
    m = re.search(r'"status"\s*:\s*"(\w+)"', head)
    if m:
        out["status"] = m.group(1)
    m = re.search(r'"counts"\s*:\s*(\{[^}]*\})', head)
    if m:
        out["counts"] = json.loads(m.group(1))
    return out


def report_task_time_us(path):
    """Sum of the tasks' `duration_us` in a run report (time spent inside the
    worker per task: instantiate, run, publish outputs), by a regex over the raw
    bytes: json.load on a 1M-task report would cost seconds and a GiB."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(int(m) for m in re.findall(rb'"duration_us"\s*:\s*(\d+)', data))


def run_engine(engine, pipeline, executor, workdir, cache_dir, timeout_s, tasks):
    store = os.path.join(workdir, f"store-{executor}")
    report = os.path.join(workdir, f"report-{executor}.json")
    shutil.rmtree(store, ignore_errors=True)
    for p in (report,):
        if os.path.exists(p):
            os.remove(p)
    cmd = [engine, "run", pipeline, "--executor", executor, "--store", store,
           "--report", report, "--quiet"]
    if executor == "threads":
        cmd[5:5] = ["--workers", "2"]
    env = dict(os.environ, ENGINE_CACHE_DIR=cache_dir)
    so, se = os.path.join(workdir, f"{executor}.stdout"), os.path.join(workdir, f"{executor}.stderr")
    rc, wall, rss = run_measured(cmd, timeout_s, so, se, env)
    rec = {"side": "engine", "executor": executor, "cmd": " ".join(cmd), "tasks": tasks,
           "process_s": round(wall, 3), "peak_rss_mib": rss, "exit": rc}
    try:
        if rc is None:
            rec.update(status="timeout", reason=f"killed after {timeout_s:.0f} s")
            return rec
        head = report_head(report) if os.path.exists(report) else {}
        if rc != 0 or head.get("status") != "succeeded" or "wall_ms" not in head:
            msg = tail(se) or tail(so) or "no output"
            rec.update(status="error", reason=f"exit {rc}: {msg}")
            return rec
        counts = head.get("counts", {})
        if counts.get("succeeded") != tasks:
            rec.update(status="error",
                       reason=f"report counts {counts}, expected {tasks} succeeded tasks")
            return rec
        rec.update(status="ok", wall_ms=head["wall_ms"],
                   us_per_task=round(head["wall_ms"] * 1000 / tasks, 2),
                   in_task_us=round(report_task_time_us(report) / tasks, 2))
        return rec
    finally:
        shutil.rmtree(store, ignore_errors=True)
        if os.path.exists(report):
            os.remove(report)


def repeats(n):
    """Runs per measurement (the best one is kept), the same on both sides."""
    return 3 if n <= 10_000 else 2 if n <= 100_000 else 1


def best_of(k, run):
    """Run k times (stopping at the first failure); keep the fastest run, with the
    largest peak RSS of all runs and every run's wall time."""
    recs = []
    for _ in range(k):
        rec = run()
        if rec["status"] != "ok":
            return rec
        recs.append(rec)
    best = dict(min(recs, key=lambda r: r["wall_ms"]))
    best["runs_ms"] = [round(r["wall_ms"], 1) for r in recs]
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in recs)
    return best


def run_check(engine, pipeline, workdir, timeout_s):
    """`engine check` alone (parse, validate, plan; nothing runs): how much of a
    run's time and memory the pipeline file costs by itself."""
    cmd = [engine, "check", pipeline]
    so, se = os.path.join(workdir, "check.stdout"), os.path.join(workdir, "check.stderr")
    rc, wall, rss = run_measured(cmd, timeout_s, so, se)
    rec = {"side": "engine", "executor": "check", "cmd": " ".join(cmd),
           "process_s": round(wall, 3), "peak_rss_mib": rss, "exit": rc}
    if rc != 0:
        rec.update(status="error", reason=f"engine check: exit {rc}: {tail(se) or tail(so)}")
    else:
        rec.update(status="ok", us_per_task=None)
    return rec


def run_dask(python, shape, n, scheduler, repeats, timeout_s, workdir):
    cmd = [python, os.path.join(HERE, "dask_peer.py"), "--shape", shape, "--n", str(n),
           "--scheduler", scheduler, "--repeats", str(repeats)]
    so = os.path.join(workdir, f"dask-{scheduler}.stdout")
    se = os.path.join(workdir, f"dask-{scheduler}.stderr")
    rc, wall, _ = run_measured(cmd, timeout_s, so, se)
    base = {"side": "dask", "scheduler": scheduler, "shape": shape, "n": n}
    if rc is None:
        return {**base, "status": "timeout", "reason": f"killed after {timeout_s:.0f} s"}
    lines = [l for l in open(so, encoding="utf-8").read().splitlines() if l.startswith("{")]
    if rc != 0 or not lines:
        return {**base, "status": "error", "reason": f"exit {rc}: {tail(se)}"}
    return {**base, **json.loads(lines[-1]), "status": "ok", "process_s": round(wall, 3)}


def extrapolate(prev, n):
    """A run's time at size n from earlier (n, seconds) points: power law, exponent >= 1."""
    (n2, t2) = prev[-1]
    k = 1.0
    if len(prev) >= 2:
        (n1, t1) = prev[-2]
        if t1 > 0 and t2 > 0:
            k = max(1.0, math.log(t2 / t1) / math.log(n2 / n1))
    return t2 * (n / n2) ** k, k


# ------------------------------------------------------------------ the table

def fmt_n(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def f1(x):
    return f"{x:,.1f}"


def f0(x):
    return f"{x:,.0f}"


def cell(rec, key, fmt=f1, notes=None):
    if rec is None:
        return "–"
    if rec.get("status") != "ok":
        if rec.get("status") == "skipped" and notes is None:
            return "–"
        if notes is not None:
            if rec["reason"] not in notes:
                notes.append(rec["reason"])
            return f"{rec['status']} [{notes.index(rec['reason']) + 1}]"
        return rec["status"]
    return fmt(rec[key])


def ratio(num, den):
    if not num or not den or num.get("status") != "ok" or den.get("status") != "ok":
        return "–"
    return f"{num['us_per_task'] / den['us_per_task']:,.1f}×"


def render_table(results, shapes_, sizes):
    notes = []
    head = ("| shape | N | tasks | engine threads: wall ms (report) | process s | µs/task "
            "| peak RSS MiB | in-task µs | engine sync: µs/task | sync peak RSS MiB "
            "| Dask sync µs/task | Dask threads µs/task | Dask peak RSS MiB (sync / threads) "
            "| Dask threads ÷ engine threads | Dask sync ÷ engine threads |")
    lines = [head, "|" + "---|" * 15]
    for shape in shapes_:
        for n in sizes:
            r = results.get((shape, n))
            if r is None:
                continue
            et, es = r.get("engine-threads"), r.get("engine-sync")
            ds, dth = r.get("dask-sync"), r.get("dask-threads")
            lines.append("| " + " | ".join([
                shape, fmt_n(n), f"{shapes.task_count(shape, n):,}",
                cell(et, "wall_ms", notes=notes), cell(et, "process_s", lambda x: f"{x:.2f}"),
                cell(et, "us_per_task"), cell(et, "peak_rss_mib"), cell(et, "in_task_us"),
                cell(es, "us_per_task", notes=notes), cell(es, "peak_rss_mib"),
                cell(ds, "us_per_task", notes=notes), cell(dth, "us_per_task", notes=notes),
                f'{cell(ds, "peak_rss_mib", f0)} / {cell(dth, "peak_rss_mib", f0)}',
                ratio(dth, et), ratio(ds, et),
            ]) + " |")
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"[{i}] {r}" for i, r in enumerate(notes, 1))
    return text


def check_targets(results, shapes_, sizes):
    """The issue's targets, each with a verdict: list of (target, verdict, detail)."""
    out = []

    def ok(rec):
        return rec is not None and rec.get("status") == "ok"

    if 100_000 in sizes:
        for shape in shapes_:
            r = results.get((shape, 100_000), {})
            et = r.get("engine-threads")
            if not ok(et):
                out.append((f"{shape} 100k: ≤ {TARGET_US:g} µs/task (threads)", "NOT MET",
                            "engine run did not complete"))
                continue
            us = et["us_per_task"]
            out.append((f"{shape} 100k: ≤ {TARGET_US:g} µs/task (threads)",
                        "met" if us <= TARGET_US else "NOT MET", f"{us:.1f} µs/task"))
            for key, target, label in (("dask-threads", TARGET_VS_THREADS, "Dask threaded"),
                                       ("dask-sync", TARGET_VS_SYNC, "Dask sync")):
                d = r.get(key)
                name = f"{shape} 100k: ≥ {target:g}× better than {label}"
                if not ok(d):
                    why = d["reason"] if d else "not run"
                    out.append((name, "n/a", f"Dask has no number: {why.split(' (')[0]}"))
                    continue
                x = d["us_per_task"] / us
                out.append((name, "met" if x >= target else "NOT MET",
                            f"{d['us_per_task']:.1f} / {us:.1f} = {x:.1f}×"))
    if 1_000_000 in sizes and "layered" in shapes_:
        et = results.get(("layered", 1_000_000), {}).get("engine-threads")
        name = f"layered 1M completes with peak RSS < {TARGET_RSS_MIB / 1024:g} GiB"
        if not ok(et):
            out.append((name, "NOT MET", et["reason"] if et else "not run"))
        else:
            rss = et["peak_rss_mib"]
            out.append((name, "met" if rss < TARGET_RSS_MIB else "NOT MET",
                        f"{rss:,.0f} MiB, {et['wall_ms'] / 1000:.1f} s"))
    lo, hi = min(sizes), max(sizes)
    if hi > lo:
        for shape in shapes_:
            a = results.get((shape, lo), {}).get("engine-threads")
            b = results.get((shape, hi), {}).get("engine-threads")
            name = f"{shape}: per-task cost flat {fmt_n(lo)} → {fmt_n(hi)} (ratio ≤ {FLAT_RATIO:g})"
            if not (ok(a) and ok(b)):
                out.append((name, "NOT MET", "a run did not complete"))
                continue
            x = b["us_per_task"] / a["us_per_task"]
            out.append((name, "met" if x <= FLAT_RATIO else "NOT MET",
                        f"{a['us_per_task']:.1f} → {b['us_per_task']:.1f} µs/task ({x:.2f}×)"))
    return out


def span(xs, fmt="{:.1f}"):
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return lo if lo == hi else f"{lo}–{hi}"


def observations(results, shapes_, sizes):
    """Facts computed from this run that explain the table (so they stay true on a rerun)."""
    def ok(rec):
        return rec is not None and rec.get("status") == "ok"

    rows = [results.get((sh, n), {}) for sh in shapes_ for n in sizes]
    pairs = [(r["engine-threads"], r["engine-sync"]) for r in rows
             if ok(r.get("engine-threads")) and ok(r.get("engine-sync"))]
    out = []
    if pairs:
        x = [t["us_per_task"] / s["us_per_task"] for t, s in pairs]
        out.append(
            f"- **threads vs sync:** µs/task of `--executor threads --workers 2` ÷ µs/task of "
            f"`--executor sync`: {span(x, '{:.2f}')} over {len(x)} rows (below 1 means the two "
            f"workers beat one thread). Time inside a worker per task (the report's "
            f"`duration_us`): threads {span([t['in_task_us'] for t, _ in pairs])} µs, "
            f"sync {span([s['in_task_us'] for _, s in pairs])} µs.")
    for key, label in (("dask-threads", "Dask threads"), ("dask-sync", "Dask sync")):
        xs = []
        for sh in shapes_:
            r = results.get((sh, 100_000), {})
            if ok(r.get("engine-sync")) and ok(r.get(key)):
                xs.append(f"{sh} {r[key]['us_per_task'] / r['engine-sync']['us_per_task']:.1f}×")
        if xs:
            out.append(f"- **engine sync vs {label} at 100k:** " + ", ".join(xs) + ".")
    big = max(sizes)
    mem = []
    startup = []
    for sh in shapes_:
        r = results.get((sh, big), {})
        for key in ("engine-threads", "engine-sync"):
            e = r.get(key)
            if ok(e):
                mem.append(e["peak_rss_mib"] * 1024 / e["tasks"])
                if key == "engine-threads":
                    startup.append((sh, e["process_s"] - e["wall_ms"] / 1000, e["tasks"]))
    checks = [(sh, results.get((sh, big), {}).get("engine-check"),
               results.get((sh, big), {}).get("engine-threads")) for sh in shapes_]
    checks = [(sh, c, e) for sh, c, e in checks if ok(c) and ok(e)]
    if mem:
        line = f"- **memory at {fmt_n(big)}:** peak RSS is {span(mem)} KiB per task"
        diffs = [abs(r["engine-threads"]["peak_rss_mib"] / r["engine-sync"]["peak_rss_mib"] - 1)
                 for r in (results.get((sh, big), {}) for sh in shapes_)
                 if ok(r.get("engine-threads")) and ok(r.get("engine-sync"))]
        if diffs and max(diffs) <= 0.1:
            line += (f"; sync and threads peak within {max(diffs):.0%} of each other, so it is "
                     f"not the executor's memory.")
        else:
            line += "."
        if checks:
            line += (" `engine check` alone (parse, validate, plan; nothing runs) peaks at "
                     + ", ".join(f"{sh} {c['peak_rss_mib']:,.0f} MiB "
                                 f"({c['peak_rss_mib'] / e['peak_rss_mib']:.0%} of the run's)"
                                 for sh, c, e in checks) + ".")
        out.append(line)
    if startup:
        parts = ", ".join(f"{sh} {d:.1f} s ({d * 1e6 / t:.0f} µs/task)" for sh, d, t in startup)
        line = (f"- **outside the run at {fmt_n(big)}** (process s − wall: loading the "
                f"pipeline before, the report after): {parts}.")
        if checks:
            line += (" `engine check` alone takes "
                     + ", ".join(f"{sh} {c['process_s']:.1f} s" for sh, c, _ in checks) + ".")
        out.append(line)
    return "\n".join(out)


def render_targets(targets):
    lines = ["| target | verdict | measured |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {d} |" for t, v, d in targets]
    return "\n".join(lines)


# ------------------------------------------------------------------ machine

def machine_notes():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": mem,
            "kernel": platform.release(), "python": platform.python_version()}


def busy_fraction(sample_s=1.0):
    """Share of all CPUs busy over sample_s (nothing of ours runs meanwhile)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)
    b0, t0 = read()
    time.sleep(sample_s)
    b1, t1 = read()
    return (b1 - b0) / max(1, t1 - t0)


# ------------------------------------------------------------------ docs

def write_docs(path, body):
    """Replace (or append) this benchmark's section of docs/performance.md, leaving
    every other section as it is."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Performance\n"
    section = f"{SECTION}\n\n{body.strip()}\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = re.search(r"^## ", text[start + len(SECTION):], re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + section + ("\n" + text[end:] if nxt else "")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ------------------------------------------------------------------ main

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", default=os.path.join(ROOT, "target", "release", "engine"))
    p.add_argument("--plugin", default=os.path.join(HERE, "noop.wasm"))
    p.add_argument("--python", default=sys.executable, help="the venv python with dask")
    p.add_argument("--shapes", nargs="*", default=list(shapes.SHAPES), choices=shapes.SHAPES)
    p.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--workdir", default=os.path.join(HERE, ".work"))
    p.add_argument("--engine-timeout-s", type=float, default=300.0)
    p.add_argument("--dask-timeout-s", type=float, default=180.0)
    p.add_argument("--dask-max-run-s", type=float, default=60.0,
                   help="skip a Dask size whose extrapolated single run exceeds this")
    p.add_argument("--dask-processes", action="store_true",
                   help="also run Dask's multiprocessing scheduler (slow: ~1.7 ms/task on a chain)")
    p.add_argument("--no-engine", action="store_true", help="only the Dask side")
    p.add_argument("--no-dask", action="store_true", help="only the engine side")
    p.add_argument("--results", default=None, help="append every record to this JSONL file")
    p.add_argument("--write-docs", default=None, metavar="FILE",
                   help="replace the 'engine run vs Dask' section of this markdown file")
    p.add_argument("--command", default="bench/run.sh", help="the command line quoted in the docs")
    a = p.parse_args(argv)
    sizes = sorted(a.sizes)
    os.makedirs(a.workdir, exist_ok=True)
    cache_dir = os.path.join(a.workdir, "module-cache")
    started = dt.datetime.now(dt.timezone.utc)
    t_all = time.perf_counter()
    results = {}
    records = []
    res_file = open(a.results, "a", encoding="utf-8") if a.results else None

    def emit(shape, n, key, rec):
        rec = {"shape": shape, "n": n, "key": key, **rec, "load1": round(os.getloadavg()[0], 2)}
        results.setdefault((shape, n), {})[key] = rec
        records.append(rec)
        if res_file:
            res_file.write(json.dumps(rec) + "\n")
            res_file.flush()
        brief = (rec.get("us_per_task") or f'{rec.get("process_s")} s, {rec.get("peak_rss_mib")} MiB'
                 if rec["status"] == "ok" else rec.get("reason", "")[:200])
        log(f"  {key:<14} {rec['status']:<8} {brief}")

    engine_ok = not a.no_engine
    if engine_ok:
        # Warm-up and end-to-end check: a 10-task chain (also fills the module cache).
        wd = os.path.join(a.workdir, "warmup")
        pl = os.path.join(wd, "pipeline.toml")
        gen_pipeline.generate("chain", 10, pl, a.plugin)
        rec = run_engine(a.engine, pl, "threads", wd, cache_dir, 120, 10)
        if rec["status"] != "ok":
            log(f"engine warm-up (10-task chain) failed, engine side skipped: {rec['reason']}")
            engine_ok = False
            engine_down = rec["reason"]
        else:
            log(f"engine warm-up ok: 10 tasks in {rec['wall_ms']:.1f} ms")

    prev = {}  # (shape, scheduler) -> [(n, exec_s)]
    for n in sizes:
        for shape in a.shapes:
            tasks = shapes.task_count(shape, n)
            wd = os.path.join(a.workdir, f"{shape}-{n}")
            log(f"{shape} {fmt_n(n)} ({tasks:,} tasks)")
            if not a.no_engine:
                if engine_ok:
                    pl = os.path.join(wd, "pipeline.toml")
                    g = gen_pipeline.generate(shape, n, pl, a.plugin)
                    log(f"  generated {g['bytes'] / 1e6:.1f} MB in {g['gen_s']:.2f} s")
                    for ex in ("threads", "sync"):
                        emit(shape, n, f"engine-{ex}",
                             best_of(repeats(n), lambda: run_engine(
                                 a.engine, pl, ex, wd, cache_dir, a.engine_timeout_s, tasks)))
                    emit(shape, n, "engine-check",
                         run_check(a.engine, pl, wd, a.engine_timeout_s))
                    os.remove(pl)
                else:
                    for ex in ("threads", "sync"):
                        emit(shape, n, f"engine-{ex}", {"status": "error", "reason":
                             f"engine cannot run pipelines yet: {engine_down}"})
            if a.no_dask:
                continue
            os.makedirs(wd, exist_ok=True)
            scheds = ["sync", "threads"] + (["processes"] if a.dask_processes else [])
            for sched in scheds:
                key = f"dask-{sched}"
                forced = DASK_FORCED_SKIPS.get(shape)
                if forced and n >= forced[0]:
                    emit(shape, n, key, {"status": "skipped", "reason":
                         f"Dask {shape} ≥ {fmt_n(forced[0])} skipped: {forced[1]}"})
                    continue
                pts = prev.get((shape, sched), [])
                if pts:
                    est, k = extrapolate(pts, n)
                    if est > a.dask_max_run_s:
                        emit(shape, n, key, {"status": "skipped", "reason":
                             f"Dask {sched} {shape} {fmt_n(n)} skipped: one run extrapolates to "
                             f"~{est:.0f} s (N^{k:.2f} from {fmt_n(pts[-1][0])}: "
                             f"{pts[-1][1]:.1f} s) > {a.dask_max_run_s:.0f} s"})
                        continue
                rec = run_dask(a.python, shape, n, sched, repeats(n), a.dask_timeout_s, wd)
                emit(shape, n, key, rec)
                if rec["status"] == "ok":
                    prev.setdefault((shape, sched), []).append((n, rec["exec_s"]))

    total_s = time.perf_counter() - t_all
    table = render_table(results, a.shapes, sizes)
    targets = check_targets(results, a.shapes, sizes) if engine_ok else []
    print(table)
    obs = observations(results, a.shapes, sizes)
    if targets:
        print()
        print(render_targets(targets))
    if obs:
        print()
        print(obs)
    print(f"\n(total {total_s:.0f} s)")

    if a.write_docs:
        m = machine_notes()
        loads = [r["load1"] for r in records]
        body = DOC_TEMPLATE.format(
            command=a.command, date=started.strftime("%Y-%m-%d %H:%M UTC"),
            total=f"{total_s:.0f}", cpus=m["cpus"], cpu=m["cpu"], memory=m["memory"],
            kernel=m["kernel"], python=m["python"],
            load=f"{min(loads):.1f}–{max(loads):.1f}" if loads else "?",
            table=table, targets=render_targets(targets) if targets else "(no engine numbers)",
            observations=obs or "(no engine numbers)")
        write_docs(a.write_docs, body)
        log(f"wrote the results into {a.write_docs}")


DOC_TEMPLATE = """\
Per-task overhead of `engine run` against Dask on the same graphs, measured by
`bench/run.sh` (harness in `bench/`). Every task is the no-op SDK task
`bench/noop.wat` (opens its output `out`, writes nothing, returns 0) and takes
its upstream tasks' `out` as inputs, so the cost measured is the engine's own:
planning, scheduling, instantiating the module, the host calls and the store.
Dask runs the identical DAG (same names, edges and seed) as a raw dict of
Python no-op functions (`bench/dask_peer.py`).

**Command:** `{command}` (full matrix, {total} s). `bench/run.sh --quick` runs 10k only
and does not touch this file.

**Date:** {date}. **Machine:** {cpus} vCPU ({cpu}), {memory} RAM, Linux {kernel},
Python {python}, dask/distributed 2026.8.0. The machine is shared: other sessions
were building at the same time (1-minute load average during the run: {load} on
{cpus} CPUs), so absolute numbers are noisy; the engine and Dask runs of one
row ran back to back, under similar load.

**Graphs** (`bench/shapes.py`): **wide** = N no-op tasks + 1 reducer taking all N
as a list input; **chain** = N tasks each taking the previous one; **layered** =
N/100 layers × 100 tasks, each taking 2 distinct random tasks of the previous
layer (seed 0); **mapreduce** = N mappers + a tree of reducers over groups of 16.

**Columns.** *engine threads*: `engine run --executor threads --workers 2`;
"wall ms" is `wall_ms` from `--report` (the run itself, nothing subtracted);
"process s" is the whole `engine run` process (parsing the pipeline.toml,
planning, loading the plugin from the module cache, running, writing the report);
µs/task = wall ms × 1000 / tasks; peak RSS = the process's maximum resident set
(`wait4`); "in-task µs" = the mean of the report's per-task `duration_us` (time
inside a worker: instantiate the module, run it, publish its output); with 2
workers it can exceed µs/task when both are busy (a chain keeps at most one
worker busy). *engine sync*: `--executor sync`. Each engine
run gets a fresh `--store`. *Dask sync* = `dask.get`, *Dask threads* =
`dask.threaded.get(num_workers=2)`:
µs/task = time of one `get()` call (conversion, ordering, scheduling, running;
not building the dict) / tasks. Both sides keep the best of 3 runs at 10k, of 2
at 100k, and run 1M once. Ratios > 1 mean
the engine is faster. Skipped cells give their reason below the table.

{table}

### Targets

From the issue: at 100k tasks ≤ 10 µs of engine overhead per task on the threads
executor, ≥ 10× better than Dask threaded and ≥ 3× better than Dask sync; layered
1M completes with peak RSS < 2 GiB; per-task cost flat from 10k to 1M (here:
1M µs/task ≤ 1.5 × 10k µs/task, threads executor).

{targets}

### Observations (computed from this run)

{observations}
"""


if __name__ == "__main__":
    main()
