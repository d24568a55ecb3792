"""A throwaway Dask cluster on loopback for tests: `python -m engine_dask.testing`.

Starts `dask scheduler` on 127.0.0.1 (a free port, no dashboard) and two
`dask worker` processes without nannies, one thread each:

* `w-gpu` with `--resources "gpu=1,licence=1"`,
* `w-cpu` with `--resources "licence=1"`,

waits until both joined, then prints one JSON line:
`{"scheduler": ADDR, "scheduler_pid": PID, "workers": {NAME: {"pid", "address"}}}`.
When its stdin closes (the test ended, or died) it stops the workers first,
then the scheduler, each with SIGTERM and SIGKILL after 5 s: a worker whose
scheduler is gone can ignore SIGTERM for a long time.

Options: `--nanny` starts the workers under a nanny (restarted when killed);
`--workers SPEC` replaces the two workers: `name:resources;name:resources`;
`--nthreads N` gives every worker N threads; `--python NAME=PYTHON` (repeatable)
runs the scheduler (NAME `scheduler`) or worker NAME with another Python, for
example one with another `distributed` version (the harness then ignores
Dask's version-mismatch warning: the test is about it).
Extra environment for the workers comes from this process's environment.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings

DEFAULT_WORKERS = "w-gpu:gpu=1,licence=1;w-cpu:licence=1"


def wait_for(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m engine_dask.testing")
    ap.add_argument("--nanny", action="store_true")
    ap.add_argument("--workers", default=DEFAULT_WORKERS)
    ap.add_argument("--nthreads", type=int, default=1)
    ap.add_argument("--python", action="append", default=[], metavar="NAME=PYTHON")
    args = ap.parse_args(argv)
    pythons = dict(p.split("=", 1) for p in args.python)
    # Tear down on SIGTERM too (the `finally` below), not only when stdin closes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = tempfile.mkdtemp(prefix="engine-dask-")
    sched_file = os.path.join(tmp, "scheduler.json")
    dask = [pythons.get("scheduler", sys.executable), "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen(
        dask + ["--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", sched_file],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(tmp, "scheduler.log"), "wb"),
    )
    workers = {}
    try:
        address = wait_for("the scheduler start", lambda: os.path.exists(sched_file) and read_address(sched_file))
        for spec in args.workers.split(";"):
            name, _, resources = spec.partition(":")
            cmd = [pythons.get(name, sys.executable), "-m", "distributed.cli.dask_worker", "--scheduler-file", sched_file]
            cmd += ["--nthreads", str(args.nthreads), "--name", name, "--death-timeout", "10", "--no-dashboard"]
            cmd += ["--host", "127.0.0.1"]
            cmd += [] if args.nanny else ["--no-nanny"]
            if resources:
                cmd += ["--resources", resources]
            workers[name] = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, f"{name}.log"), "wb"),
            )
        from distributed import Client

        with warnings.catch_warnings():
            if pythons:
                warnings.simplefilter("ignore")
            with Client(address, timeout=30) as client:
                client.wait_for_workers(len(workers), timeout=60)
                info = client.scheduler_info(n_workers=-1)["workers"]
        by_name = {str(w["name"]): addr for addr, w in info.items()}
        print(
            json.dumps(
                {
                    "scheduler": address,
                    "scheduler_pid": scheduler.pid,
                    "logs": tmp,
                    "workers": {n: {"pid": p.pid, "address": by_name.get(n, "")} for n, p in workers.items()},
                }
            ),
            flush=True,
        )
        sys.stdin.read()
    finally:
        stop(list(workers.values()))
        stop([scheduler])
    return 0


def read_address(path):
    try:
        with open(path) as f:
            return json.load(f).get("address")
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
