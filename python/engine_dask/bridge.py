"""The bridge between `engine run --executor dask` and a Dask cluster.

Started by the engine as `python -m engine_dask.bridge`; speaks frames on
stdio. A frame is a u32 LE total length, a u32 LE header length, a JSON
header and an opaque payload (engine worker frames, never decoded here).

engine -> bridge:  connect{scheduler, timeout, engine, protocol}
                   prepare{run_id}      + the worker Init frame
                   submit{tasks:[{key, resources, priority, len}]}
                                        + the task frames, concatenated
                   cancel{}             + the worker Cancel frame
                   shutdown{}
bridge -> engine:  hello{engine_dask, distributed, protocol, scheduler}
                   cluster{workers:[{name, address, host, nthreads,
                                     memory_limit, resources}]}
                   started{key, worker, slot}
                   done{key, worker, slot} + the result frame
                   lost{key, why, message}  why: killed_worker |
                                           engine_worker_lost | error
                   lost_execution{key, worker}  (Dask runs it again)
                   fatal{message}

The engine keeps every decision (retries, skips, fail-fast): each attempt is
one future with `retries=0`, `pure=False` and a fresh key.
"""

import json
import signal
import struct
import sys
import threading

from . import BRIDGE_PROTOCOL, DONE_TOPIC, PLUGIN_NAME, STARTED_TOPIC, __version__


class Out:
    """Frames to the engine, from any thread."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.lock = threading.Lock()

    def send(self, header, payload=b""):
        h = json.dumps(header).encode()
        with self.lock:
            self.pipe.write(struct.pack("<II", 4 + len(h) + len(payload), len(h)) + h + payload)
            self.pipe.flush()


def read_frame(pipe):
    head = pipe.read(8)
    if len(head) < 8:
        return None, None
    total, hlen = struct.unpack("<II", head)
    body = pipe.read(total - 4)
    if len(body) < total - 4:
        return None, None
    return json.loads(body[:hlen]), body[hlen:]


def workers_of(client):
    info = client.scheduler_info(n_workers=-1)["workers"]
    return [
        {
            "name": str(w.get("name", addr)),
            "address": addr,
            "host": w.get("host", ""),
            "nthreads": w.get("nthreads", 1),
            "memory_limit": w.get("memory_limit") or 0,
            "resources": w.get("resources") or {},
        }
        for addr, w in sorted(info.items())
    ]


def connect(req):
    """A Client for the requested scheduler (or a new local cluster)."""
    import os

    from distributed import Client, LocalCluster

    timeout = req.get("timeout", 10)
    if req.get("engine"):
        # Local workers inherit this: they run the coordinator's binary.
        os.environ.setdefault("ENGINE_DASK_ENGINE", req["engine"])
    scheduler = req.get("scheduler")
    cluster = None
    if scheduler is None or scheduler.startswith("local:"):
        n = int(scheduler[len("local:") :]) if scheduler else None
        cluster = LocalCluster(n_workers=n, dashboard_address=None, host="127.0.0.1")
        client = Client(cluster, timeout=timeout)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except Exception as e:
            raise RuntimeError(f"cannot connect to the Dask scheduler at {scheduler} within {timeout} s: {e}") from None
    if not client.scheduler_info()["workers"]:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception:
            raise RuntimeError(f"the Dask scheduler at {client.scheduler.address} has no workers") from None
    return client, cluster


def version_mismatch(versions, scheduler_address, names):
    """The message naming who runs which `distributed` when the client (this
    bridge), the scheduler and the workers do not all run one version, else
    None. `versions` is `Client.get_versions()`; `names` maps worker
    addresses to names."""

    def of(info):
        return ((info or {}).get("packages") or {}).get("distributed") or "unknown"

    client = of(versions.get("client"))
    scheduler = of(versions.get("scheduler"))
    workers = {addr: of(info) for addr, info in (versions.get("workers") or {}).items()}
    if {scheduler, *workers.values()} <= {client}:
        return None
    parts = [f"client {client} ({sys.executable})"]
    parts.append(f"scheduler {scheduler} ({scheduler_address})")
    by_version = {}
    for addr in sorted(workers, key=lambda a: (str(names.get(a, a)), a)):
        by_version.setdefault(workers[addr], []).append(addr)
    for version in sorted(by_version, key=lambda v: (v != client, v)):
        addrs = by_version[version]
        if len(addrs) == 1:
            name = str(names.get(addrs[0], addrs[0]))
            parts.append(f"worker {name} {version}" + (f" ({addrs[0]})" if name != addrs[0] else ""))
        else:
            shown = ", ".join(str(names.get(a, a)) for a in addrs[:3])
            more = f" and {len(addrs) - 3} more" if len(addrs) > 3 else ""
            parts.append(f"{len(addrs)} workers {version} ({shown}{more})")
    return (
        "the Dask client, scheduler and workers run different distributed versions: "
        + ", ".join(parts)
        + f"; install the same distributed version everywhere: pip install distributed=={client} "
        "on the scheduler and every worker, or name a Python with the cluster's version in --dask-python"
    )


def check_cluster(client):
    """Refuse a cluster whose `distributed` versions differ or whose workers
    lack engine_dask; then install the worker plugin."""
    from . import plugin

    # Dask's own check (`get_versions(check=True)`) only warns: a mismatch
    # would go unnoticed until something breaks mid-run.
    names = {w["address"]: w["name"] for w in workers_of(client)}
    mismatch = version_mismatch(client.get_versions(), client.scheduler.address, names)
    if mismatch:
        raise RuntimeError(mismatch)
    pin = f"engine-dask=={__version__}"
    try:
        found = client.run(plugin.check_worker)
    except Exception as e:
        raise RuntimeError(
            f"the Dask workers cannot run engine_dask ({type(e).__name__}: {e}); install {pin} on every worker"
        ) from None
    for addr, info in sorted(found.items()):
        if info["engine_dask"] != __version__:
            raise RuntimeError(
                f"Dask worker {addr} has engine_dask {info['engine_dask']}, this engine needs {pin}"
            )
        if info["missing"]:
            raise RuntimeError(f"Dask worker {addr}: {info['missing']}")
    client.register_plugin(plugin.EnginePlugin(), name=PLUGIN_NAME)


class Bridge:
    def __init__(self, client, out):
        from distributed import as_completed

        self.client = client
        self.out = out
        self.run_id = None
        self.init_frame = None
        self.futures = {}  # key -> future, while the engine waits for it
        self.lock = threading.Lock()
        self.ac = as_completed([])
        self.more = threading.Event()
        self.closing = False
        client.subscribe_topic(STARTED_TOPIC, self.on_started)
        client.subscribe_topic(DONE_TOPIC, self.on_done)
        client.subscribe_topic("all", self.on_cluster_event)
        threading.Thread(target=self.completions, name="engine-dask-completions", daemon=True).start()

    def on_started(self, event):
        _, msg = event
        if msg.get("key") in self.futures:
            self.out.send({"op": "started", "key": msg["key"], "worker": msg["name"], "slot": msg["slot"]})

    def take(self, key):
        """Whether `key` is still awaited; if so it is not any more: exactly
        one of the done event and the completions thread answers for it."""
        with self.lock:
            return self.futures.pop(key, None) is not None

    def on_done(self, event):
        # Runs on the client's event loop, before the future is seen finished
        # (the worker sends the event before the task's end, on one stream).
        _, msg = event
        if self.take(msg["key"]):
            self.out.send({"op": "done", "key": msg["key"], "worker": msg["name"], "slot": msg["slot"]}, msg["frame"])

    def on_cluster_event(self, event):
        _, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        for key in msg.get("processing-tasks", ()):
            if key in self.futures:
                self.out.send({"op": "lost_execution", "key": key, "worker": msg.get("worker", "")})

    def submit(self, header, payload):
        from .task import run_task

        groups = {}
        at = 0
        for t in header["tasks"]:
            frame = payload[at : at + t["len"]]
            at += t["len"]
            res = tuple(sorted(t["resources"].items()))
            groups.setdefault((res, t["priority"]), []).append((t["key"], frame))
        for (res, priority), tasks in groups.items():
            keys = [k for k, _ in tasks]
            n = len(tasks)
            futs = self.client.map(
                run_task,
                [self.run_id] * n,
                [self.init_frame] * n,
                [f for _, f in tasks],
                keys,
                key=keys,
                resources=dict(res) or None,
                priority=priority,
                retries=0,
                pure=False,
            )
            with self.lock:
                for k, f in zip(keys, futs):
                    self.futures[k] = f
            self.ac.update(futs)
        self.more.set()

    def completions(self):
        from distributed import KilledWorker

        from .plugin import EngineWorkerLost

        while not self.closing:
            if self.ac.is_empty():
                self.more.wait(0.2)
                self.more.clear()
                continue
            try:
                fut = next(self.ac)
            except StopIteration:
                continue
            with self.lock:
                if fut.key not in self.futures:
                    continue  # answered by its done event, or cancelled by the engine
            if fut.status == "finished":
                try:
                    worker, slot, frame = fut.result()
                except Exception as e:  # the result was lost with its worker
                    frame, exc = None, e
                else:
                    exc = RuntimeError("its result event never reached the bridge") if frame is None else None
                if not self.take(fut.key):
                    continue  # its done event came meanwhile
                if exc is None:
                    self.out.send({"op": "done", "key": fut.key, "worker": worker, "slot": slot}, frame)
                    continue
            else:
                if not self.take(fut.key):
                    continue
                try:
                    exc = fut.exception()
                except Exception as e:  # cancelled or lost by Dask itself
                    exc = e
            if isinstance(exc, EngineWorkerLost):
                why = "engine_worker_lost"
            elif isinstance(exc, KilledWorker):
                why = "killed_worker"
            else:
                why = "error"
            self.out.send({"op": "lost", "key": fut.key, "why": why, "message": f"{type(exc).__name__}: {exc}"})

    def cancel(self, cancel_frame):
        from .plugin import cancel_run

        with self.lock:
            futs = list(self.futures.values())
            self.futures.clear()
        if futs:
            self.client.cancel(futs)
        if self.run_id is not None:
            try:
                self.client.run(cancel_run, self.run_id, cancel_frame)
            except Exception as e:
                print(f"engine_dask: cannot cancel running tasks: {e}", file=sys.stderr)

    def shutdown(self):
        from .plugin import release_run

        self.closing = True
        if self.run_id is not None:
            try:
                self.client.run(release_run, self.run_id)
            except Exception:
                pass


def main():
    # Ctrl-C is the engine's to handle: it tells us to cancel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp, out = sys.stdin.buffer, Out(sys.stdout.buffer)
    header, _ = read_frame(inp)
    if header is None or header.get("op") != "connect":
        return 2
    import distributed

    try:
        if header.get("protocol") != BRIDGE_PROTOCOL:
            raise RuntimeError(
                f"this engine speaks bridge protocol {header.get('protocol')}, engine_dask {__version__} "
                f"speaks {BRIDGE_PROTOCOL}: install the engine-dask wheel of the same release"
            )
        client, cluster = connect(header)
        check_cluster(client)
    except Exception as e:
        out.send({"op": "fatal", "message": str(e)})
        return 1
    out.send(
        {
            "op": "hello",
            "engine_dask": __version__,
            "distributed": distributed.__version__,
            "protocol": BRIDGE_PROTOCOL,
            "scheduler": client.scheduler.address,
        }
    )
    out.send({"op": "cluster", "workers": workers_of(client)})
    bridge = Bridge(client, out)
    while True:
        header, payload = read_frame(inp)
        op = header.get("op") if header else None
        if op == "prepare":
            bridge.run_id, bridge.init_frame = header["run_id"], payload
        elif op == "submit":
            bridge.submit(header, payload)
        elif op == "cancel":
            bridge.cancel(payload)
        else:  # shutdown, or the engine is gone
            if op != "shutdown":
                bridge.cancel(b"")
            break
    bridge.shutdown()
    client.close(timeout=2)
    if cluster is not None:
        cluster.close(timeout=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
