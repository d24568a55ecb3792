"""A `wasi:cli/command` component in Python (componentize-py), for tests: the
Python twin of the Rust `comp_cmd`. Copies `/in/text` uppercased to
`/out/upper`, writes its arguments to `/out/args`, prints `hello from python`
on stdout and, when `/tmp` exists, round-trips a file there. Its first
argument can change that: `exit N` exits with code N after writing, `loop`
spins forever, `grow` allocates until the memory limit stops it.

The arguments come from `wasi:cli/environment` at run time (`sys.argv` is
the build-time snapshot's). Built by examples/languages/python/build.sh.
"""

import os

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import environment, exit


class Run(exports.Run):
    def run(self):
        args = environment.get_arguments()[1:]
        mode = args[0] if args else ""
        if mode == "loop":
            n = 0
            while True:
                n += 1
        if mode == "grow":
            keep = []
            while True:
                keep.append(bytearray(1 << 20))
        with open("/in/text", "rb") as f:
            text = f.read()
        with open("/out/upper", "wb") as f:
            f.write(text.upper())
        with open("/out/args", "w") as f:
            f.write("[" + ", ".join('"' + a + '"' for a in args) + "]\n")
        if os.path.isdir("/tmp"):
            with open("/tmp/scratch", "wb") as f:
                f.write(b"kept")
            with open("/tmp/scratch", "rb") as f:
                back = f.read()
            with open("/out/scratch", "wb") as f:
                f.write(back)
        print("hello from python", flush=True)
        if mode == "exit" and len(args) > 1:
            exit.exit(Ok(None) if args[1] == "0" else Err(None))
