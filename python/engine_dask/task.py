"""The function Dask runs for each attempt of each task.

It announces the start (an event on `STARTED_TOPIC`, so the engine can tell a
re-execution after a lost worker from the first one), hands the task's frame to
this thread's `engine worker` child and returns the child's result frame
untouched, with the Dask worker's name and the thread's slot.
"""

from distributed import get_worker

from . import STARTED_TOPIC
from .plugin import plugin_on


def run_task(run_id, init_frame, msg_frame, key):
    worker = get_worker()
    plugin = plugin_on(worker)
    slot = plugin.slot()
    name = str(worker.name)
    worker.log_event(STARTED_TOPIC, {"key": key, "worker": name, "slot": slot})
    frame = plugin.run(run_id, init_frame, msg_frame, slot)
    return name, slot, frame
