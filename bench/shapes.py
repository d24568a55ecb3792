"""The benchmark graph shapes, as plain data shared by both sides of the benchmark.

`gen_pipeline.py` turns a shape into a `pipeline.toml` for the engine and
`dask_peer.py` turns the very same shape into a Dask graph dict, so both run an
identical DAG (same task names, same edges, same seed).

A shape is a generator of `(name, deps, as_list)` in topological order:
`deps` are the names of the upstream tasks; `as_list` says whether they are
wired as one list input (`parts = [...]`) or as scalar inputs (`a`, `b`, ...).

Shapes (N = the size parameter):
  wide       N independent tasks `w<i>` + 1 reducer `reduce` taking all N (N+1 tasks).
  chain      N tasks `c<i>`, each taking the previous one (N tasks).
  layered    L = N/W layers x W = 100 tasks `l<layer>_<j>`; every task of layer > 0
             takes 2 distinct random tasks of the previous layer
             (`random.Random(seed)`, seed 0 by default) (N tasks).
  mapreduce  N mappers `m<i>` + a tree of reducers `r<level>_<g>` over groups of
             16, down to one task (N=10k: 10,669 tasks).
"""

from __future__ import annotations

import random

SHAPES = ("wide", "chain", "layered", "mapreduce")
LAYER_WIDTH = 100
FAN_IN = 16


def wide(n):
    for i in range(n):
        yield f"w{i}", (), False
    yield "reduce", [f"w{i}" for i in range(n)], True


def chain(n):
    yield "c0", (), False
    for i in range(1, n):
        yield f"c{i}", (f"c{i - 1}",), False


def layered_edges(n, width=LAYER_WIDTH, seed=0):
    """For each layer l >= 1, a list of (a, b): task (l, j) takes (l-1, a) and (l-1, b)."""
    if n % width:
        raise ValueError(f"layered: N={n} is not a multiple of the layer width {width}")
    rnd = random.Random(seed).random
    edges = []
    for _ in range(1, n // width):
        layer = []
        for _ in range(width):
            # two distinct uniform picks out of `width` (cheaper than rng.sample)
            a = int(rnd() * width)
            b = int(rnd() * (width - 1))
            layer.append((a, b + 1 if b >= a else b))
        edges.append(layer)
    return edges


def layered(n, width=LAYER_WIDTH, seed=0):
    for j in range(width):
        yield f"l0_{j}", (), False
    for l, layer in enumerate(layered_edges(n, width, seed), start=1):
        p = l - 1
        for j, (a, b) in enumerate(layer):
            yield f"l{l}_{j}", (f"l{p}_{a}", f"l{p}_{b}"), False


def layered_sinks(n, width=LAYER_WIDTH, seed=0):
    """Names of the tasks nobody depends on (Dask must request them all, or it culls)."""
    edges = layered_edges(n, width, seed)
    sinks = []
    for l, layer in enumerate(edges):
        used = {x for ab in layer for x in ab}
        sinks.extend(f"l{l}_{j}" for j in range(width) if j not in used)
    last = n // width - 1
    sinks.extend(f"l{last}_{j}" for j in range(width))
    return sinks


def mapreduce(n, fan_in=FAN_IN):
    level = [f"m{i}" for i in range(n)]
    for name in level:
        yield name, (), False
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for g in range(0, len(level), fan_in):
            name = f"r{depth}_{g // fan_in}"
            yield name, level[g:g + fan_in], True
            nxt.append(name)
        level = nxt


BUILDERS = {"wide": wide, "chain": chain, "layered": layered, "mapreduce": mapreduce}


def tasks(shape, n):
    return BUILDERS[shape](n)


def sinks(shape, n):
    """Every task without dependents (the keys Dask is asked for)."""
    if shape == "wide":
        return ["reduce"]
    if shape == "chain":
        return [f"c{n - 1}"]
    if shape == "layered":
        return layered_sinks(n)
    if shape == "mapreduce":
        last = None
        for last, _, _ in mapreduce(n):
            pass
        return [last]
    raise ValueError(shape)


def task_count(shape, n):
    if shape == "wide":
        return n + 1
    if shape in ("chain", "layered"):
        return n
    total, level = n, n
    while level > 1:
        level = -(-level // FAN_IN)
        total += level
    return total
