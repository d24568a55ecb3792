"""Python tasks for the engine, as WebAssembly components.

A small layer over the componentize-py bindings of the engine's task world
(sdk/wit/engine-task.wit, `engine:task@1.0.0`; docs/abi.md, "Components"):

    from engine_task import WitWorld, task

    @task
    def run(inputs, outputs, params):
        outputs.open("out").write(inputs["text"].read().upper())

`inputs[name]` is an `Input` for a scalar input and a list of them for a list
input; `params` is the task's params table as a dict; raising any exception
fails the task with its message. Modules must be imported at the top level
(componentize-py snapshots the interpreter after importing the app).
"""

import json

from componentize_py_types import Err
from wit_world.imports import host

# Bytes asked of the engine per read call (it returns at most 16 MiB).
_CHUNK = 1 << 20


class Input:
    """One input item: `name`, `index` (None for a scalar input), `size` in bytes."""

    def __init__(self, item, name, index, size):
        self.item, self.name, self.index, self.size = item, name, index, size

    def read(self, offset=0, size=None):
        """The bytes from `offset` to the end (or `size` of them)."""
        end = self.size if size is None else min(self.size, offset + size)
        parts = []
        while offset < end:
            piece = host.read(self.item, offset, min(_CHUNK, end - offset))
            if not piece:
                break
            parts.append(piece)
            offset += len(piece)
        return b"".join(parts)

    def text(self):
        """The whole input as text (UTF-8, invalid bytes replaced)."""
        return self.read().decode("utf-8", "replace")


class Inputs:
    """The task's inputs by name: an `Input`, or a list of them for a list input."""

    def __init__(self):
        self._by_name = {}
        for item, i in enumerate(host.inputs()):
            one = Input(item, i.name, i.index, i.size)
            if i.index is None:
                self._by_name[i.name] = one
            else:
                self._by_name.setdefault(i.name, []).append(one)

    def __getitem__(self, name):
        return self._by_name[name]

    def __contains__(self, name):
        return name in self._by_name

    def names(self):
        return list(self._by_name)


class Output:
    """An output being written; `write` takes bytes or str (UTF-8)."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not host.output_write(self.handle, data):
            raise ValueError("write to a closed output")

    def close(self):
        host.output_close(self.handle)


class Outputs:
    """Opens outputs by name (`out` is the default name)."""

    def open(self, name="out"):
        return Output(host.output_open(name))


_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}


def log(message, level="info"):
    """Append one line to the task log."""
    host.log(_LEVELS.get(level, host.Level.INFO), str(message))


def attempt():
    """1 for the first attempt, 2 for the first retry, ..."""
    return host.attempt()


_task = None


def task(fn):
    """Make `fn(inputs, outputs, params)` the task."""
    global _task
    _task = fn
    return fn


class WitWorld:
    """The world's export: componentize-py calls `run` once per attempt."""

    def run(self):
        if _task is None:
            raise Err("no function is decorated with @task")
        try:
            _task(Inputs(), Outputs(), json.loads(host.params()))
        except Err:
            raise
        except Exception as e:
            raise Err(f"{type(e).__name__}: {e}")
