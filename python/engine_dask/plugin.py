"""The worker plugin: long-lived `engine worker` children on each Dask worker.

Each Dask worker thread gets its own child per run (a run is named by its
`run_id`; its children share one Init frame, which carries the store, the
module cache and the plugins). A child is the same sandboxed, self-hardening
process as `engine run --executor processes` uses, so a crash in a task
stays in the child: the plugin notices the dead pipe, raises
`EngineWorkerLost` for the task it was running, and starts a fresh child for
the next one.

Frames are the engine's: a 4-byte little-endian length and a postcard body.
Python only reads the length to know where a frame ends.
"""

import os
import shutil
import struct
import subprocess
import sys
import threading
import time

from distributed import WorkerPlugin

from . import PLUGIN_NAME


class EngineWorkerLost(Exception):
    """The `engine worker` child running a task died or broke its pipe."""


# First byte of a `FromWorker` body (postcard writes the variant index first).
_READY, _RESULT, _FATAL = 0, 1, 2


def engine_exe():
    """The `engine` binary children run: $ENGINE_DASK_ENGINE, else `engine` on
    PATH, else the one installed next to this Python (the wheel's script)."""
    exe = os.environ.get("ENGINE_DASK_ENGINE") or shutil.which("engine")
    if exe:
        return exe
    beside = os.path.join(os.path.dirname(sys.executable), "engine")
    if os.path.exists(beside):
        return beside
    raise FileNotFoundError(
        "no `engine` binary on this Dask worker: install the engine-dask wheel "
        "(pip install engine-dask) or set ENGINE_DASK_ENGINE"
    )


def read_frame(pipe):
    """One whole frame (length prefix included) from `pipe`, or None at its end."""
    head = pipe.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    body = pipe.read(n)
    if len(body) < n:
        return None
    return head + body


class Child:
    """One `engine worker` process and its pipes."""

    def __init__(self, init_frame, slot):
        self.proc = subprocess.Popen(
            [engine_exe(), "worker", "--index", str(slot)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ready = False
        self.busy = False
        self.proc.stdin.write(init_frame)
        self.proc.stdin.flush()

    def describe_end(self):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"engine worker (pid {self.proc.pid}) {how}"

    def run(self, msg_frame):
        """Run one task; return the result frame, or a `Fatal` frame if the
        child could not start. Raises `EngineWorkerLost` if it died."""
        if not self.ready:
            frame = read_frame(self.proc.stdout)
            if frame is None:
                raise EngineWorkerLost(self.describe_end() + " before its handshake")
            if frame[4] == _FATAL:
                return frame
            self.ready = True
        try:
            self.proc.stdin.write(msg_frame)
            self.proc.stdin.flush()
        except OSError:
            raise EngineWorkerLost(self.describe_end()) from None
        frame = read_frame(self.proc.stdout)
        if frame is None:
            raise EngineWorkerLost(self.describe_end())
        return frame

    def send(self, frame):
        try:
            self.proc.stdin.write(frame)
            self.proc.stdin.flush()
        except OSError:
            pass

    def close(self):
        """Close stdin: the child finishes what it runs and exits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def alive(self):
        return self.proc.poll() is None


class EnginePlugin(WorkerPlugin):
    """Keeps `engine worker` children on one Dask worker, per run and thread."""

    name = PLUGIN_NAME
    idempotent = True

    # Runs whose last task ended this long ago have their children closed.
    IDLE_TTL = 300.0

    def setup(self, worker):
        self.worker = worker
        self.lock = threading.Lock()
        self.slots = {}  # thread ident -> dense slot number
        self.pools = {}  # run_id -> {slot: Child}
        self.used = {}  # run_id -> time of last use
        self.released = set()

    def teardown(self, worker):
        with self.lock:
            for pool in self.pools.values():
                for child in pool.values():
                    child.close()
            self.pools.clear()

    def slot(self):
        ident = threading.get_ident()
        with self.lock:
            return self.slots.setdefault(ident, len(self.slots))

    def _take(self, run_id, init_frame, slot):
        with self.lock:
            self._expire(run_id)
            pool = self.pools.setdefault(run_id, {})
            child = pool.get(slot)
            if child is None or not child.alive():
                child = pool[slot] = Child(init_frame, slot)
            child.busy = True
            self.used[run_id] = time.monotonic()
            return child

    def _expire(self, keep):
        now = time.monotonic()
        for run_id, at in list(self.used.items()):
            if run_id != keep and now - at > self.IDLE_TTL:
                self._release_locked(run_id)

    def run(self, run_id, init_frame, msg_frame, slot):
        """Run one task message on this thread's child for `run_id`."""
        child = self._take(run_id, init_frame, slot)
        try:
            return child.run(msg_frame)
        except EngineWorkerLost:
            with self.lock:
                if self.pools.get(run_id, {}).get(slot) is child:
                    del self.pools[run_id][slot]
            raise
        finally:
            with self.lock:
                child.busy = False
                if run_id in self.released:
                    child.close()

    def _release_locked(self, run_id):
        self.released.add(run_id)
        self.used.pop(run_id, None)
        for child in self.pools.pop(run_id, {}).values():
            if not child.busy:
                child.close()

    def release(self, run_id):
        with self.lock:
            self._release_locked(run_id)

    def cancel(self, run_id, cancel_frame):
        """Interrupt the running tasks of `run_id` and retire its children
        (cancellation is sticky in an `engine worker`)."""
        with self.lock:
            pool = self.pools.get(run_id, {})
            for child in pool.values():
                if child.busy:
                    child.send(cancel_frame)
            self._release_locked(run_id)


def plugin_on(worker):
    """The plugin on `worker`, installing one if it is missing (a worker
    that joined before registration finished)."""
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        plugin = EnginePlugin()
        plugin.setup(worker)
        worker.plugins[PLUGIN_NAME] = plugin
    return plugin


# Functions the bridge runs on every worker with `client.run`.


def check_worker():
    """What the bridge checks before the first task: engine_dask's version and
    whether an `engine` binary is there."""
    from . import __version__

    try:
        exe = engine_exe()
    except FileNotFoundError as e:
        exe = None
        missing = str(e)
    else:
        missing = None
    return {"engine_dask": __version__, "engine": exe, "missing": missing}


def cancel_run(run_id, cancel_frame, dask_worker=None):
    from distributed import get_worker

    plugin_on(dask_worker or get_worker()).cancel(run_id, cancel_frame)


def release_run(run_id, dask_worker=None):
    from distributed import get_worker

    plugin_on(dask_worker or get_worker()).release(run_id)
