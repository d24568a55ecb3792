// Word count in JavaScript, a component of the engine:task@1.0.0 world
// (sdk/wit/engine-task.wit) built with componentize-qjs (QuickJS): the same
// bytes as the stock Rust `wordcount` on ASCII text (one `word<TAB>count` line
// per distinct word, sorted by word). QuickJS has no TextDecoder, so bytes are
// turned into characters one by one; a byte of 0x80 or more counts as a word
// character, as Rust's Unicode letters do, but is not lowercased.
import { findInput, read, outputOpen, outputWrite, params, log } from "engine:task/host@1.0.0";

const CHUNK = 1 << 20;

function isWordByte(b) {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b >= 128;
}

export function run() {
  const p = JSON.parse(params());
  const lowercase = p.lowercase === undefined ? true : p.lowercase;
  const minLen = p.min_len === undefined ? 1 : p.min_len;
  const item = findInput("text");
  if (item === undefined || item === null) throw "no input `text`";
  const counts = new Map();
  let word = "";
  const flush = () => {
    if (word.length > 0) {
      const w = lowercase ? word.toLowerCase() : word;
      if (w.length >= minLen) counts.set(w, (counts.get(w) || 0) + 1);
      word = "";
    }
  };
  let offset = 0;
  for (;;) {
    const piece = read(item, offset, CHUNK);
    if (!piece || piece.length === 0) break;
    offset += piece.length;
    for (let i = 0; i < piece.length; i++) {
      const b = piece[i];
      if (isWordByte(b)) word += String.fromCharCode(b);
      else flush();
    }
  }
  flush();
  // Sorted entries, not keys looked up again: QuickJS's Map does not find a
  // key of 70,000 characters a second time.
  const entries = Array.from(counts.entries()).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let text = "";
  for (const [k, n] of entries) text += k + "\t" + n + "\n";
  const out = outputOpen("out");
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  outputWrite(out, bytes);
  log("info", counts.size + " distinct words");
}
