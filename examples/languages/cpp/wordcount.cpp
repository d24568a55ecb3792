// wordcount.cpp: the word-count task in C++, with the C SDK header
// (sdk/c/engine.h, which declares everything `extern "C"`).
//
// Counts the words of input `text` and writes `word<TAB>count` lines sorted
// by word (byte order) to output `out`. A word is a maximal run of ASCII
// letters and digits; every other byte (including each byte of a non-ASCII
// character) separates words. Params: `lowercase` (bool, default true: ASCII
// letters are lowercased) and `min_len` (integer >= 0, default 1). On ASCII
// text the output is byte-identical to the stock `wordcount`.
//
// Built without exceptions (Debian's libc++ for wasm32 has none):
//   clang++ --target=wasm32-wasi --sysroot=/usr -O2 -s -fno-exceptions \
//           -mexec-model=reactor -I sdk/c -o cpp_wordcount.wasm wordcount.cpp
#include "engine.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

bool is_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

int wordcount() {
    char *params = engine_params();
    if (!params) return engine_fail("out of memory");
    int ok_lower = 1, ok_min = 1;
    const bool lowercase = engine_param_bool(params, "lowercase", 1, &ok_lower);
    const long long min_len = engine_param_int(params, "min_len", 1, &ok_min);
    free(params);
    if (!ok_lower) return engine_fail("param `lowercase` must be a boolean");
    if (!ok_min || min_len < 0) return engine_fail("param `min_len` must be an integer >= 0");

    const int32_t item = engine_input_find("text", -1);
    if (item < 0) return engine_fail("missing input `text`");

    std::unordered_map<std::string, uint64_t> counts;
    std::string word;
    auto add = [&] {
        if (static_cast<long long>(word.size()) >= min_len) ++counts[word];
        word.clear();
    };
    engine_reader r = engine_reader_new(item);
    std::vector<char> chunk(ENGINE_CHUNK);
    for (;;) {
        const int32_t n = engine_read(&r, chunk.data(), static_cast<int32_t>(chunk.size()));
        if (n < 0) return engine_fail("reading input `text` failed");
        if (n == 0) break;
        for (int32_t i = 0; i < n; i++) {
            const auto c = static_cast<unsigned char>(chunk[i]);
            if (is_alnum(c)) {
                word.push_back(static_cast<char>(lowercase && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
            } else if (!word.empty()) {
                add();
            }
        }
    }
    if (!word.empty()) add();

    std::vector<std::pair<std::string_view, uint64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());  // std::string_view compares bytes as unsigned char

    static engine_writer out;
    engine_writer_open(&out, "out");
    for (const auto &[w, n] : sorted) {
        engine_write(&out, w.data(), w.size());
        const std::string tail = "\t" + std::to_string(n) + "\n";
        engine_write(&out, tail.data(), tail.size());
    }
    if (engine_flush(&out) < 0) return engine_fail("writing output `out` failed");
    engine_log(ENGINE_INFO, "%zu distinct words", sorted.size());
    return 0;
}

}  // namespace

ENGINE_TASK(wordcount);
ENGINE_TASK_META("{\"abi\":1,\"name\":\"cpp_wordcount\",\"version\":\"0.1.0\","
                 "\"description\":\"count ASCII words (C++ example over the C SDK)\","
                 "\"inputs\":[\"text\"],\"outputs\":[\"out\"],\"params\":[\"lowercase\",\"min_len\"]}");
