"""wasi-testsuite runtime adapter for `engine run`.

The official runner (test-runner/wasi_test_runner in a checkout of
WebAssembly/wasi-testsuite) loads this file as a module and calls
`get_name`, `get_version`, `get_wasi_versions`, `get_wasi_worlds`,
`get_timeout_seconds` and `compute_argv` (see the suite's doc/adapters.md).
`compute_argv` returns a command line that runs this same file with
`--run SPEC`, which maps the one test to a one-task pipeline:

* the test module is the task's plugin (a command task);
* the test's args and env become the task's `args` and `env`;
* `io_dirs = false`: no `/in` and `/out` preopens, so the descriptors from
  3 up are the ones a plain `wasmtime run` gives the test (its root dir, or
  none);
* the test's root directory, when it has one, seeds a `workdir` at `/`
  (a private copy: the checkout is never written to);
* the program's stdout is captured as an output and written to our stdout;
  its stderr (the task log) is written to our stderr;
* every exit code 0..=255 is a success code, so the outputs are published
  whatever the code, and the code is our exit status.

Environment: ENGINE (the engine binary, default `engine`; may hold
arguments), ENGINE_EXECUTOR (`sync`, `threads` or `processes`; default
`threads`).
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

ENGINE = shlex.split(os.getenv("ENGINE", "engine"))
EXECUTORS = ("sync", "threads", "processes")


def get_name() -> str:
    return "engine"


def get_version() -> str:
    result = subprocess.run(ENGINE[0:1] + ["--version"], encoding="UTF-8",
                            capture_output=True, check=True)
    return result.stdout.split()[1]


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    # One `engine run` per test: process start, pipeline check, module
    # cache lookup and store set-up come on top of the test itself.
    return 60.0


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    spec = {
        "wasm": os.path.abspath(test_path),
        "args": list(args),
        "env": dict(env),
        "root": os.path.abspath(str(root)) if root else None,
    }
    return [sys.executable, os.path.abspath(__file__), "--run", json.dumps(spec)]


def _toml_str(s: str) -> str:
    # A JSON string is a TOML basic string (same escapes, \uXXXX included).
    return json.dumps(s, ensure_ascii=True)


def pipeline_text(spec: dict) -> str:
    """The one-task pipeline for a test, as TOML."""
    lines = [
        "[pipeline]",
        'name = "wasi-testsuite"',
        "",
        "[plugins]",
        f"test = {_toml_str(spec['wasm'])}",
        "",
        "[tasks.t]",
        'plugin = "test"',
        "args = [" + ", ".join(_toml_str(a) for a in spec["args"]) + "]",
        "env = { " + ", ".join(f"{_toml_str(k)} = {_toml_str(v)}"
                               for k, v in spec["env"].items()) + " }",
        'stdout = "stdout"',
        "io_dirs = false",
        "success_exit_codes = [" + ", ".join(str(c) for c in range(256)) + "]",
        "timeout = \"50s\"",
    ]
    if spec["root"]:
        lines.append(f"workdir = {{ from = {_toml_str('file:' + spec['root'])}, at = \"/\" }}")
    lines += ["", "[outputs]", '"stdout.out" = "t.stdout"', '"exit_code.out" = "t.exit_code"', ""]
    return "\n".join(lines)


def run_one(spec: dict) -> int:
    executor = os.getenv("ENGINE_EXECUTOR", "threads")
    if executor not in EXECUTORS:
        sys.stderr.write(f"ENGINE_EXECUTOR must be one of {', '.join(EXECUTORS)}, not `{executor}`\n")
        return 125
    with tempfile.TemporaryDirectory(prefix="engine-wasi-") as tmp:
        pipeline = os.path.join(tmp, "pipeline.toml")
        with open(pipeline, "w", encoding="utf-8") as f:
            f.write(pipeline_text(spec))
        report = os.path.join(tmp, "report.json")
        argv = ENGINE + ["run", pipeline, "--executor", executor, "--workers", "1",
                         "--store", os.path.join(tmp, "store"), "--report", report, "--quiet"]
        proc = subprocess.run(argv, capture_output=True, check=False)
        task = {}
        if os.path.exists(report):
            with open(report, encoding="utf-8") as f:
                task = json.load(f)["tasks"][0]
        log = task.get("log")
        if log and os.path.exists(log):
            with open(log, "rb") as f:
                sys.stderr.buffer.write(f.read())
        if proc.returncode != 0 or task.get("state") != "succeeded":
            # The program did not exit (trap, limit, invalid pipeline ...):
            # show why, and fail like a runtime that aborts.
            sys.stderr.buffer.write(proc.stdout + proc.stderr)
            return 134
        with open(os.path.join(tmp, "stdout.out"), "rb") as f:
            sys.stdout.buffer.write(f.read())
        sys.stdout.flush()
        with open(os.path.join(tmp, "exit_code.out"), encoding="utf-8") as f:
            return int(f.read().strip())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        sys.exit(run_one(json.loads(sys.argv[2])))
    # Loaded as a script with any other arguments (the runner's check for
    # legacy adapters runs it with `--version`): print nothing.
