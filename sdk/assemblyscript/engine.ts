// engine.ts: write `engine` task plugins in AssemblyScript (guest ABI v1,
// see docs/abi.md). One file, no dependencies.
//
// The plugin's entry file re-exports the ABI marker and exports `run`:
//
//   import { Context, runTask } from "../sdk/assemblyscript/engine";
//   export { engine_abi_v1 } from "../sdk/assemblyscript/engine";
//   function upper(ctx: Context): void { ... }
//   export function run(): i32 { return runTask(upper); }
//
// and is built as a reactor with the stub-free default runtime:
//
//   asc mytask.ts -O3 --noAssert --use abort=sdk/assemblyscript/engine/abort -o mytask.wasm
//
// AssemblyScript cannot emit custom sections, so the `engine.task` metadata
// section is added after the build by ./addmeta.mjs (Node):
//
//   node sdk/assemblyscript/addmeta.mjs mytask.wasm meta.json
//
// The SDK never depends on the engine; it only speaks the ABI.

// ---- The raw ABI: imports from module "engine" ---------------------------------

@external("engine", "input_count") declare function sys_input_count(): i32;
@external("engine", "input_name") declare function sys_input_name(item: i32, buf: usize, buf_len: i32): i32;
@external("engine", "input_index") declare function sys_input_index(item: i32): i32;
@external("engine", "input_len") declare function sys_input_len(item: i32): i64;
@external("engine", "input_read") declare function sys_input_read(item: i32, offset: i64, buf: usize, len: i32): i32;
@external("engine", "output_open") declare function sys_output_open(name: usize, name_len: i32): i32;
@external("engine", "output_write") declare function sys_output_write(handle: i32, buf: usize, len: i32): i32;
@external("engine", "params_len") declare function sys_params_len(): i32;
@external("engine", "params_read") declare function sys_params_read(buf: usize, len: i32): i32;
@external("engine", "log") declare function sys_log(level: i32, msg: usize, len: i32): void;
@external("engine", "error") declare function sys_error(msg: usize, len: i32): void;

/** Size of an Output's write buffer; a good read size for an Input. */
export const CHUNK: i32 = 64 * 1024;

// ---- Logging and errors ---------------------------------------------------------

export enum Level { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4 }

/** Append `[level] msg` to the task log. */
export function log(level: Level, msg: string): void {
  const b = String.UTF8.encode(msg);
  sys_log(level, changetype<usize>(b), b.byteLength);
}

let failed = false;

/** Record the task's error message; the task fails when `run` returns. */
export function fail(msg: string): void {
  const b = String.UTF8.encode(msg);
  sys_error(changetype<usize>(b), b.byteLength);
  failed = true;
}

/** Whether `fail` was called. */
export function hasFailed(): bool {
  return failed;
}

/** The abort handler (`--use abort=.../engine/abort`): a failed assertion or
 * `throw` records the message as the task's error and traps. */
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  let msg = message !== null ? message : "abort";
  if (file !== null) msg += " (" + file + ":" + line.toString() + ":" + column.toString() + ")";
  fail(msg);
  unreachable();
}

// ---- Inputs --------------------------------------------------------------------------

/** One input item, read in chunks through `input_read` at increasing offsets. */
export class Input {
  /** Offset of the next byte to read. */
  pos: i64 = 0;
  constructor(
    readonly item: i32,
    /** The input name from the pipeline, e.g. `text`. */
    readonly name: string,
    /** Position within a list input, -1 for a scalar input. */
    readonly index: i32,
    /** Length in bytes. */
    readonly length: i64,
  ) {}

  /** `name`, or `name[index]` for a list item. */
  label(): string {
    return this.index < 0 ? this.name : this.name + "[" + this.index.toString() + "]";
  }

  /** Read up to `buf.length` bytes into `buf`; 0 at the end, -1 on error
   * (the task's error is then recorded). */
  read(buf: Uint8Array): i32 {
    const n = sys_input_read(this.item, this.pos, buf.dataStart, buf.length);
    if (n < 0) {
      fail("host refused to read input `" + this.label() + "`");
      return -1;
    }
    this.pos += n;
    return n;
  }

  /** The rest of the input in one buffer (null on error). */
  readAll(): Uint8Array | null {
    const buf = new Uint8Array(<i32>(this.length - this.pos));
    let got = 0;
    while (got < buf.length) {
      const n = this.read(buf.subarray(got));
      if (n < 0) return null;
      if (n == 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  }
}

// ---- Outputs -----------------------------------------------------------------------------

/** A named output; bytes are buffered and handed to the host 64 KiB at a
 * time. Call `close()` at the end (an unflushed tail is lost otherwise). */
export class Output {
  private buf: Uint8Array = new Uint8Array(CHUNK);
  private used: i32 = 0;
  /** Set once a host write failed (the task's error is then recorded). */
  failed: bool = false;

  constructor(readonly name: string, readonly handle: i32) {}

  private send(ptr: usize, len: i32): void {
    if (len > 0 && sys_output_write(this.handle, ptr, len) < 0 && !this.failed) {
      this.failed = true;
      fail("host refused to write output `" + this.name + "`");
    }
  }

  /** Append `len` bytes at address `ptr`. */
  writeRaw(ptr: usize, len: i32): void {
    if (this.used + len > CHUNK) this.flush();
    if (len >= CHUNK) {
      this.send(ptr, len);
    } else {
      memory.copy(this.buf.dataStart + <usize>this.used, ptr, <usize>len);
      this.used += len;
    }
  }

  /** Append bytes. */
  write(data: Uint8Array): void {
    this.writeRaw(data.dataStart, data.length);
  }

  /** Append a string as UTF-8. */
  writeString(s: string): void {
    const len = String.UTF8.byteLength(s);
    if (this.used + len <= CHUNK) {
      String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.buf.dataStart + <usize>this.used);
      this.used += len;
    } else {
      const b = String.UTF8.encode(s);
      this.writeRaw(changetype<usize>(b), b.byteLength);
    }
  }

  /** Hand buffered bytes to the host. */
  flush(): void {
    this.send(this.buf.dataStart, this.used);
    this.used = 0;
  }

  /** Flush; the output is complete. Returns false if any write failed. */
  close(): bool {
    this.flush();
    return !this.failed;
  }
}

// ---- Params -----------------------------------------------------------------------------

/** The params: a flat JSON object, each value kept as its JSON text. */
export class Params {
  keys: string[] = [];
  values: string[] = [];
  /** Why the params are not a JSON object, or null. */
  error: string | null = null;

  /** The raw JSON text of param `key`, or null when absent. */
  raw(key: string): string | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.values[i];
    return null;
  }

  /** Boolean param `key` (`def` when absent); on a wrong type records
   * ``param `key` must be a boolean`` as the task's error. */
  bool(key: string, def: bool): bool {
    const v = this.raw(key);
    if (v === null) return def;
    if (v == "true") return true;
    if (v == "false") return false;
    fail("param `" + key + "` must be a boolean");
    return def;
  }

  /** Integer param `key` (`def` when absent); on a wrong type or a value
   * below `min` records ``param `key` must be an integer >= min``. */
  int(key: string, def: i64, min: i64 = i64.MIN_VALUE): i64 {
    const v = this.raw(key);
    if (v === null) return def;
    let ok = v.length > 0 && v.length < 19;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (!(c >= 48 && c <= 57) && !(i == 0 && c == 45 && v.length > 1)) ok = false;
    }
    const x = ok ? I64.parseInt(v) : 0;
    if (!ok || x < min) {
      fail("param `" + key + "` must be an integer" + (min == i64.MIN_VALUE ? "" : " >= " + min.toString()));
      return def;
    }
    return x;
  }

  /** String param `key` (`def` when absent); only `\"`, `\\`, `\/`, `\n`,
   * `\t`, `\r` escapes are decoded. Records ``param `key` must be a string``. */
  string(key: string, def: string): string {
    const v = this.raw(key);
    if (v === null) return def;
    if (v.length < 2 || v.charCodeAt(0) != 34) {
      fail("param `" + key + "` must be a string");
      return def;
    }
    let s = "";
    for (let i = 1; i < v.length - 1; i++) {
      let c = v.charAt(i);
      if (c == "\\") {
        i++;
        const e = v.charAt(i);
        c = e == "n" ? "\n" : e == "t" ? "\t" : e == "r" ? "\r" : e;
      }
      s += c;
    }
    return s;
  }

  /** Fail with ``invalid params: unknown field `x` `` if a param is not in `known`. */
  only(known: string[]): bool {
    for (let i = 0; i < this.keys.length; i++) {
      if (!known.includes(this.keys[i])) {
        fail("invalid params: unknown field `" + this.keys[i] + "`, expected one of `" + known.join("`, `") + "`");
        return false;
      }
    }
    return true;
  }
}

function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

/** End (exclusive) of the JSON value starting at `i` in `s`, or -1. */
function skipValue(s: string, i: i32): i32 {
  let depth = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c == 34) {
      i++;
      while (i < s.length && s.charCodeAt(i) != 34) i += s.charCodeAt(i) == 92 ? 2 : 1;
      if (i >= s.length) return -1;
      i++;
      if (depth == 0) return i;
      continue;
    }
    if (c == 123 || c == 91) depth++;
    else if (c == 125 || c == 93) {
      if (depth == 0) return i;
      depth--;
      if (depth == 0) return i + 1;
    } else if (depth == 0 && (c == 44 || isSpace(c))) return i;
    i++;
  }
  return depth == 0 ? i : -1;
}

/** Parse a flat JSON object (nested values are kept as text). */
export function parseParams(json: string): Params {
  const p = new Params();
  let i = 0;
  while (i < json.length && isSpace(json.charCodeAt(i))) i++;
  if (i >= json.length || json.charCodeAt(i) != 123) {
    p.error = "expected a JSON object";
    return p;
  }
  i++;
  for (;;) {
    while (i < json.length && isSpace(json.charCodeAt(i))) i++;
    if (i < json.length && json.charCodeAt(i) == 125) return p;
    if (i >= json.length || json.charCodeAt(i) != 34) break;
    const kend = skipValue(json, i);
    if (kend < 0) break;
    const key = json.substring(i + 1, kend - 1);
    i = kend;
    while (i < json.length && isSpace(json.charCodeAt(i))) i++;
    if (i >= json.length || json.charCodeAt(i) != 58) break;
    i++;
    while (i < json.length && isSpace(json.charCodeAt(i))) i++;
    const vend = skipValue(json, i);
    if (vend <= i) break;
    p.keys.push(key);
    p.values.push(json.substring(i, vend));
    i = vend;
    while (i < json.length && isSpace(json.charCodeAt(i))) i++;
    if (i < json.length && json.charCodeAt(i) == 44) i++;
  }
  p.error = "malformed JSON object at character " + i.toString();
  return p;
}

// ---- The context ------------------------------------------------------------------------

/** What a running task sees: its input items, params and outputs. */
export class Context {
  /** Every input item, in the host's order. */
  items: Input[] = [];

  constructor() {
    const count = sys_input_count();
    const buf = new Uint8Array(256);
    for (let item = 0; item < count; item++) {
      const n = sys_input_name(item, buf.dataStart, buf.length);
      if (n < 0 || n > buf.length) continue;
      const name = String.UTF8.decodeUnsafe(buf.dataStart, <usize>n);
      this.items.push(new Input(item, name, sys_input_index(item), sys_input_len(item)));
    }
  }

  /** The scalar input `name`, or null after recording ``missing input `name` ``
   * (or ``input `name` is a list; expected a single input``). */
  input(name: string): Input | null {
    let found: Input | null = null;
    let n = 0;
    for (let i = 0; i < this.items.length; i++) {
      if (this.items[i].name == name) {
        found = this.items[i];
        n++;
      }
    }
    if (found === null) {
      fail("missing input `" + name + "`");
      return null;
    }
    if (n > 1 || found.index >= 0) {
      fail("input `" + name + "` is a list; expected a single input");
      return null;
    }
    return found;
  }

  /** Every item of the list input `name`, ordered by index (a scalar input
   * is a list of one; a missing input is an empty list). */
  inputList(name: string): Input[] {
    const list: Input[] = [];
    for (let i = 0; i < this.items.length; i++) if (this.items[i].name == name) list.push(this.items[i]);
    list.sort((a: Input, b: Input): i32 => a.index - b.index);
    return list;
  }

  /** The params JSON text as the host passed it (`{}` when empty). */
  paramsJson(): string {
    const len = sys_params_len();
    if (len <= 0) return "{}";
    const buf = new Uint8Array(len);
    const n = sys_params_read(buf.dataStart, len);
    const s = String.UTF8.decodeUnsafe(buf.dataStart, <usize>(n < 0 ? 0 : n));
    return s.trim().length == 0 ? "{}" : s;
  }

  /** The params, parsed (a malformed object records ``invalid params: ...``). */
  params(): Params {
    const p = parseParams(this.paramsJson());
    if (p.error !== null) fail("invalid params: " + p.error!);
    return p;
  }

  /** Open output `name` (`out` is the default output). An invalid or
   * duplicate name fails the task (the host traps). */
  output(name: string): Output {
    const b = String.UTF8.encode(name);
    return new Output(name, sys_output_open(changetype<usize>(b), b.byteLength));
  }
}

/** Run a task function: call it from the exported `run`
 * (`export function run(): i32 { return runTask(myTask); }`). Returns 1 if
 * the task called `fail` (or an output write failed), else 0. */
export function runTask(task: (ctx: Context) => void): i32 {
  task(new Context());
  return failed ? 1 : 0;
}

/** The ABI version marker; re-export it from the entry file. */
export function engine_abi_v1(): void {}
