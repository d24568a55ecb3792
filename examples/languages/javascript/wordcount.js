// Word count in JavaScript over sdk/js, a component of the engine:task@1.0.0
// world (sdk/wit/engine-task.wit) built with componentize-qjs (QuickJS): the
// same bytes as the stock Rust `wordcount` on ASCII text (one `word<TAB>count`
// line per distinct word, sorted by word). Bytes are turned into characters
// one by one; a byte of 0x80 or more counts as a word character, as Rust's
// Unicode letters do, but is not lowercased.
import { task, log } from "../../../sdk/js/engine_task.js";

const CHUNK = 1 << 20;

function isWordByte(b) {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b >= 128;
}

export const run = task((inputs, outputs, params) => {
  const lowercase = params.lowercase === undefined ? true : params.lowercase;
  const minLen = params.min_len === undefined ? 1 : params.min_len;
  const input = inputs.text;
  if (input === undefined) throw "no input `text`";
  const counts = new Map();
  let word = "";
  const flush = () => {
    if (word.length > 0) {
      const w = lowercase ? word.toLowerCase() : word;
      if (w.length >= minLen) counts.set(w, (counts.get(w) || 0) + 1);
      word = "";
    }
  };
  for (let offset = 0; offset < input.size; offset += CHUNK) {
    const piece = input.read(offset, CHUNK);
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
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  outputs.open("out").write(bytes);
  log(counts.size + " distinct words");
});
