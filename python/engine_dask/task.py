"""The function Dask runs for each attempt of each task.

It announces the start (an event on `STARTED_TOPIC`, so the engine can tell a
re-execution after a lost worker from the first one), hands the task's frame to
this thread's `engine worker` child and returns the child's result frame
untouched, with the Dask worker's name and the thread's slot. A result frame of
at most `PUSH_LIMIT` bytes is pushed to the bridge as an event on `DONE_TOPIC`
instead, and the future's own result carries `None` in its place.
"""

from distributed import get_worker

from . import DONE_TOPIC, PUSH_LIMIT, STARTED_TOPIC
from .plugin import plugin_on


def run_task(run_id, init_frame, msg_frame, key):
    worker = get_worker()
    plugin = plugin_on(worker)
    slot = plugin.slot()
    name = str(worker.name)
    # (The scheduler sets "worker" of a worker's event to its address.)
    worker.log_event(STARTED_TOPIC, {"key": key, "name": name, "slot": slot})
    frame = plugin.run(run_id, init_frame, msg_frame, slot)
    if len(frame) <= PUSH_LIMIT:
        worker.log_event(DONE_TOPIC, {"key": key, "name": name, "slot": slot, "frame": frame})
        return name, slot, None
    return name, slot, frame
