#!/usr/bin/env python3
"""Time `engine run` plain, with --events and with --dashboard (and one
client on its server-sent event stream), interleaved; print a markdown table
of medians. Called by bench/dashboard.sh: dashboard.py ENGINE PIPELINE WORK RUNS
"""

import os
import socket
import statistics
import subprocess
import sys
import threading
import shutil
import time

CURL = shutil.which("curl")


def drain(addr, counter):
    """Read /events until the server closes it; count snapshots."""
    host, port = addr.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode())
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            counter[0] += b.count(b"\ndata: ") + b.startswith(b"data: ")
    except OSError:
        pass


def once(engine, pipeline, work, mode):
    args = [engine, "run", pipeline, "--quiet", "--no-cache", "--store", os.path.join(work, "store")]
    if mode == "--events":
        args += ["--events", os.path.join(work, "events.ndjson")]
    if mode.startswith("--dashboard"):
        args += ["--dashboard", "127.0.0.1:0"]
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    counter = [0]
    client = curl = None
    stream = os.path.join(work, "stream.txt")
    if mode.startswith("--dashboard"):
        line = p.stderr.readline()
        assert line.startswith("dashboard: http://"), line
        addr = line.strip()[len("dashboard: http://"):].rstrip("/")
        if mode == "--dashboard (no client)":
            pass
        elif CURL:
            # A client in its own process, as a browser is: a thread of this
            # interpreter would compete with the engine for the GIL's holder's
            # core and show up in the engine's times.
            with open(stream, "wb") as out:
                curl = subprocess.Popen(["curl", "-sN", f"http://{addr}/events"], stdout=out)
        else:
            client = threading.Thread(target=drain, args=(addr, counter), daemon=True)
            client.start()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{mode}: exit {code}: {err}")
    if client:
        client.join(timeout=5)
    if curl:
        curl.wait(timeout=10)
        with open(stream, "rb") as f:
            counter[0] = sum(1 for l in f if l.startswith(b"data: "))
    return wall, ru.ru_utime + ru.ru_stime, counter[0]


def main():
    engine, pipeline, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    modes = ["plain", "--events", "--dashboard", "--dashboard (no client)"]
    if os.environ.get("MODES"):
        modes = [m for m in modes if m in os.environ["MODES"].split(",")]
    times = {m: [] for m in modes}
    cpus = {m: [] for m in modes}
    snaps = []
    for r in range(runs):
        # The order rotates each round, and the disk is settled before each
        # run (the --events file is 38 MB at 100k tasks: its writeback must
        # not land in the next mode's timing).
        k = r % len(modes)
        for m in modes[k:] + modes[:k]:
            events = os.path.join(work, "events.ndjson")
            if os.path.exists(events):
                os.remove(events)
            os.sync()
            wall, cpu, n = once(engine, pipeline, work, m)
            times[m].append(wall)
            cpus[m].append(cpu)
            if m == "--dashboard":
                snaps.append(n)
    base = statistics.median(times["plain"])
    base_cpu = statistics.median(cpus["plain"])
    print("| mode | median wall | min wall | max wall | wall vs plain | median CPU (user+sys) | CPU vs plain |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in modes:
        t, c = times[m], statistics.median(cpus[m])
        med = statistics.median(t)
        print(f"| {m} | {med:.2f} s | {min(t):.2f} s | {max(t):.2f} s | {100 * (med / base - 1):+.1f}% "
              f"| {c:.2f} s | {100 * (c / base_cpu - 1):+.1f}% |")
    # Paired: each round's run against the same round's plain run, which
    # ran next to it (the VM's speed drifts by more than 5% over minutes).
    print("\n| mode | median of the rounds' wall ÷ plain | middle half of the rounds | "
          "median of the rounds' CPU ÷ plain |")
    print("|---|---:|---:|---:|")
    for m in modes:
        if m == "plain":
            continue
        w = sorted(a / b for a, b in zip(times[m], times["plain"]))
        c = [a / b for a, b in zip(cpus[m], cpus["plain"])]
        q1, q3 = w[len(w) // 4], w[(3 * len(w)) // 4]
        print(f"| {m} | {100 * (statistics.median(w) - 1):+.1f}% | {100 * (q1 - 1):+.1f}% to "
              f"{100 * (q3 - 1):+.1f}% | {100 * (statistics.median(c) - 1):+.1f}% |")
    print(f"\nsnapshots received by the dashboard client per run: {snaps}")


if __name__ == "__main__":
    main()
