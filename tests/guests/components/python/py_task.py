"""A component of the engine:task@1.0.0 world in Python (componentize-py over
sdk/python), for tests: param `mode` = "loop" spins forever, "grow" allocates
until the memory limit stops it; otherwise it writes `ok` to output `out`.
Built by examples/languages/python/build.sh."""

from engine_task import WitWorld, task  # noqa: F401 (WitWorld is the export)


@task
def run(inputs, outputs, params):
    mode = params.get("mode")
    if mode == "loop":
        n = 0
        while True:
            n += 1
    if mode == "grow":
        keep = []
        while True:
            keep.append(bytearray(1 << 20))
    outputs.open("out").write("ok")
