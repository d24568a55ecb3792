// wordcount.ts: the word-count task in AssemblyScript, with
// sdk/assemblyscript/engine.ts.
//
// Counts the words of input `text` and writes `word<TAB>count` lines sorted
// by word (byte order) to output `out`. A word is a maximal run of ASCII
// letters and digits; every other byte (including each byte of a non-ASCII
// character) separates words. Params: `lowercase` (bool, default true: ASCII
// letters are lowercased) and `min_len` (integer >= 0, default 1). On ASCII
// text the output is byte-identical to the stock `wordcount`.
import { CHUNK, Context, Level, log, hasFailed, runTask } from "../../../sdk/assemblyscript/engine";
export { engine_abi_v1 } from "../../../sdk/assemblyscript/engine";

function isAlnum(c: u8): bool {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}

function wordcount(ctx: Context): void {
  const params = ctx.params();
  if (!params.only(["lowercase", "min_len"])) return;
  const lowercase = params.bool("lowercase", true);
  const minLen = params.int("min_len", 1, 0);
  const input = ctx.input("text");
  if (hasFailed() || input === null) return;

  const counts = new Map<string, u64>();
  const buf = new Uint8Array(CHUNK);
  let word = new Uint8Array(64);
  let wlen = 0;
  for (;;) {
    const n = input.read(buf);
    if (n < 0) return;
    // n == 0 (the end) flushes the last word.
    for (let i = 0; i <= n; i++) {
      let c: u8 = i < n ? buf[i] : 0;
      if (i < n && isAlnum(c)) {
        if (lowercase && c >= 65 && c <= 90) c += 32;
        if (wlen == word.length) {
          const bigger = new Uint8Array(wlen * 2);
          bigger.set(word);
          word = bigger;
        }
        word[wlen++] = c;
      } else if (wlen > 0 && (i < n || n == 0)) {
        if (<i64>wlen >= minLen) {
          const w = String.UTF8.decodeUnsafe(word.dataStart, <usize>wlen);
          counts.set(w, counts.has(w) ? counts.get(w) + 1 : 1);
        }
        wlen = 0;
      }
    }
    if (n == 0) break;
  }

  const words = counts.keys();
  words.sort(); // code unit order = byte order on ASCII
  const out = ctx.output("out");
  for (let i = 0; i < words.length; i++) {
    out.writeString(words[i] + "\t" + counts.get(words[i]).toString() + "\n");
  }
  if (!out.close()) return;
  log(Level.Info, words.length.toString() + " distinct words");
}

export function run(): i32 {
  return runTask(wordcount);
}
