"""Word count in Python: the same bytes as the stock Rust `wordcount` on
ASCII text (one `word<TAB>count` line per distinct word, sorted by word).
Built into a component by examples/languages/python/build.sh."""

import re

from engine_task import WitWorld, log, task  # noqa: F401 (WitWorld is the export)

WORD = re.compile(r"[^\W_]+")


@task
def run(inputs, outputs, params):
    lowercase = params.get("lowercase", True)
    min_len = params.get("min_len", 1)
    counts = {}
    for line in inputs["text"].read().split(b"\n"):
        for word in WORD.findall(line.decode("utf-8", "replace")):
            if lowercase:
                word = word.lower()
            if len(word) >= min_len:
                counts[word] = counts.get(word, 0) + 1
    outputs.open("out").write("".join(f"{w}\t{n}\n" for w, n in sorted(counts.items())))
    log(f"{len(counts)} distinct words")
