// addmeta.mjs: append the `engine.task` custom section to a wasm module.
//
//   node sdk/assemblyscript/addmeta.mjs mytask.wasm meta.json [out.wasm]
//
// AssemblyScript cannot emit custom sections, so the SDK adds the metadata
// after the build. meta.json must hold one JSON object; it is written
// compactly. A module that already has an `engine.task` section is an error.
import { readFileSync, writeFileSync } from "node:fs";

const [wasmPath, metaPath, outPath = wasmPath] = process.argv.slice(2);
if (!wasmPath || !metaPath) {
  console.error("usage: node addmeta.mjs in.wasm meta.json [out.wasm]");
  process.exit(2);
}

function uleb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function readUleb(buf, p) {
  let n = 0, shift = 0;
  for (let i = 0; i < 5; i++) {
    const b = buf[p + i];
    if (b === undefined) break;
    n |= (b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) === 0) return [n >>> 0, i + 1];
  }
  throw new Error("malformed LEB128 at byte " + p);
}

function fail(msg) {
  console.error("addmeta: " + msg);
  process.exit(1);
}

const wasm = readFileSync(wasmPath);
let meta;
try {
  meta = JSON.parse(readFileSync(metaPath, "utf8"));
} catch (e) {
  fail(`${metaPath} is not valid JSON: ${e.message}`);
}
if (meta === null || typeof meta !== "object" || Array.isArray(meta)) fail(`${metaPath} must hold a JSON object`);
if (wasm.length < 8 || wasm.readUInt32BE(0) !== 0x0061736d) fail(`${wasmPath} is not a wasm module`);
for (let p = 8; p < wasm.length; ) {
  const id = wasm[p];
  const [size, k] = readUleb(wasm, p + 1);
  const body = p + 1 + k;
  if (id === 0) {
    const [nl, j] = readUleb(wasm, body);
    if (wasm.toString("utf8", body + j, body + j + nl) === "engine.task") fail(`${wasmPath} already has an engine.task section`);
  }
  p = body + size;
}
const name = Buffer.from("engine.task");
const content = Buffer.from(JSON.stringify(meta));
const payload = Buffer.concat([Buffer.from(uleb(name.length)), name, content]);
writeFileSync(outPath, Buffer.concat([wasm, Buffer.from([0, ...uleb(payload.length)]), payload]));
