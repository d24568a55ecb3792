// JavaScript tasks for the engine, as WebAssembly components.
//
// A small layer over the bindings that componentize-qjs (QuickJS) gives the
// engine's task world (sdk/wit/engine-task.wit, `engine:task@1.0.0`;
// docs/abi.md, "Components"):
//
//     import { task } from "./engine_task.js";
//
//     export const run = task((inputs, outputs, params) => {
//       outputs.open("out").write(inputs.text.read());
//     });
//
// `inputs.NAME` is an `Input` for a scalar input and an array of them for a
// list input; `params` is the task's params table as an object; throwing
// fails the task with `<Error name>: <message>` (or the thrown string).
import * as host from "engine:task/host@1.0.0";

// Bytes asked of the engine per read call (it returns at most 16 MiB).
const CHUNK = 1 << 20;

// QuickJS has no TextEncoder/TextDecoder: UTF-8 by hand.
export function encodeUtf8(s) {
  const out = [];
  for (const ch of s) {
    let c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

// Invalid sequences become U+FFFD, one per byte.
export function decodeUtf8(b) {
  let s = "";
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const need = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    let cp = need === 0 ? c : need === 1 ? c & 31 : need === 2 ? c & 15 : c & 7;
    let ok = need >= 0 && i + need < b.length + (need === 0 ? 1 : 0);
    for (let k = 1; ok && k <= need; k++) {
      if ((b[i + k] & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (b[i + k] & 63);
    }
    if (ok && ((need === 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff))))
      ok = false;
    if (ok) {
      s += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      s += "\ufffd";
      i += 1;
    }
  }
  return s;
}

// One input item: `name`, `index` (null for a scalar input), `size` in bytes.
export class Input {
  constructor(item, name, index, size) {
    this.item = item;
    this.name = name;
    this.index = index;
    this.size = size;
  }

  // The bytes from `offset` to the end (or `size` of them), a Uint8Array.
  read(offset = 0, size = undefined) {
    const end = size === undefined ? this.size : Math.min(this.size, offset + size);
    const parts = [];
    let total = 0;
    while (offset < end) {
      const piece = host.read(this.item, offset, Math.min(CHUNK, end - offset));
      if (!piece || piece.length === 0) break;
      parts.push(piece);
      total += piece.length;
      offset += piece.length;
    }
    if (parts.length === 1) return Uint8Array.from(parts[0]);
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  }

  // The whole input as a string (UTF-8, invalid bytes replaced).
  text() {
    return decodeUtf8(this.read());
  }
}

// The task's inputs by name: `inputs.text`, `inputs["my-list"]`.
function inputs() {
  const byName = {};
  host.inputs().forEach((i, item) => {
    const scalar = i.index === undefined || i.index === null;
    const one = new Input(item, i.name, scalar ? null : i.index, Number(i.size));
    if (scalar) byName[i.name] = one;
    else (byName[i.name] = byName[i.name] || []).push(one);
  });
  return byName;
}

// An output being written; `write` takes a Uint8Array, an array of bytes or
// a string (UTF-8).
export class Output {
  constructor(handle) {
    this.handle = handle;
  }

  write(data) {
    const bytes = typeof data === "string" ? encodeUtf8(data) : data;
    if (!host.outputWrite(this.handle, bytes)) throw new Error("write to a closed output");
  }

  close() {
    host.outputClose(this.handle);
  }
}

// Opens outputs by name (`out` is the default name).
export const outputs = {
  open(name = "out") {
    return new Output(host.outputOpen(name));
  },
};

const LEVELS = ["trace", "debug", "info", "warn", "error"];

// Append one line to the task log.
export function log(message, level = "info") {
  host.log(LEVELS.includes(level) ? level : "info", String(message));
}

// 1 for the first attempt, 2 for the first retry, ...
export function attempt() {
  return host.attempt();
}

// Make `fn(inputs, outputs, params)` the task: `export const run = task(fn)`.
export function task(fn) {
  return function run() {
    try {
      fn(inputs(), outputs, JSON.parse(host.params()));
    } catch (e) {
      throw e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
  };
}
