// A component of the engine:task@1.0.0 world in JavaScript (componentize-qjs,
// QuickJS), for tests: param `mode` = "loop" spins forever, "grow" allocates
// until the memory limit stops it; otherwise it writes `ok` to output `out`.
// Built by examples/languages/javascript/build.sh.
import { outputOpen, outputWrite, params } from "engine:task/host@1.0.0";

export function run() {
  const mode = JSON.parse(params()).mode;
  if (mode === "loop") {
    let n = 0;
    for (;;) n = (n + 1) | 0;
  }
  if (mode === "grow") {
    const keep = [];
    for (;;) keep.push(new Uint8Array(1 << 20).fill(1));
  }
  outputWrite(outputOpen("out"), new Uint8Array([111, 107]));
}
