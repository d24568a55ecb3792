"""engine_dask: run `engine` pipelines on a Dask cluster.

The Rust engine stays in charge of the run (scheduling, retries, the store,
logs, the report). This package is the thin layer between it and Dask:

* `bridge`  - `python -m engine_dask.bridge`, started by `engine run --executor
  dask`; turns each ready task into one Dask future.
* `plugin`  - a Dask WorkerPlugin keeping long-lived `engine worker` children,
  one per Dask worker thread, per run.
* `task`    - the function Dask runs: hand a task message to a child and return
  its result frame.
* `testing` - a throwaway local cluster (scheduler + 2 workers) for tests.

Task messages and results pass through Python as opaque bytes (frames of the
engine's worker protocol); Python never decodes them.
"""

__version__ = "0.1.0"

# Version of the stdio protocol between `engine` and `engine_dask.bridge`.
BRIDGE_PROTOCOL = 1

# Name under which the worker plugin is registered on every Dask worker.
PLUGIN_NAME = "engine-dask"

# Dask event topic on which tasks announce that they started.
STARTED_TOPIC = "engine-dask-started"

# Dask event topic on which tasks push their result frames of at most
# PUSH_LIMIT bytes: one hop worker -> scheduler -> bridge, where fetching a
# future's result costs the bridge a round trip to the scheduler and one to
# the worker. The scheduler keeps the last 1000 events of a topic
# (`distributed.admin.low-level-log-length`), so at most 16 MiB of them.
DONE_TOPIC = "engine-dask-done"
PUSH_LIMIT = 16 << 10
