/*
 * wordcount.c: the C SDK example. Counts words in input `text` and writes
 * `word<TAB>count` lines sorted by word (byte order) to output `out`.
 *
 * A word is a maximal run of ASCII letters and digits; every other byte
 * separates words. Params: `lowercase` (bool, default true: ASCII letters are
 * lowercased) and `min_len` (int, default 1: shorter words are dropped).
 * The input is streamed in 64 KiB chunks.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s -mexec-model=reactor \
 *         -I sdk/c -o c_wordcount.wasm sdk/c/examples/wordcount.c
 */
#include "engine.h"

#include <ctype.h>

typedef struct {
    char *word;
    uint64_t count;
} entry;

static entry *table;
static size_t cap, used;

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow(void) {
    size_t ncap = cap ? cap * 2 : 1024;
    entry *nt = calloc(ncap, sizeof *nt);
    if (!nt) return -1;
    for (size_t i = 0; i < cap; i++) {
        if (!table[i].word) continue;
        size_t j = hash(table[i].word, strlen(table[i].word)) & (ncap - 1);
        while (nt[j].word) j = (j + 1) & (ncap - 1);
        nt[j] = table[i];
    }
    free(table);
    table = nt;
    cap = ncap;
    return 0;
}

static int add(const char *w, size_t n) {
    if ((used + 1) * 2 > cap && grow() < 0) return -1;
    size_t j = hash(w, n) & (cap - 1);
    while (table[j].word) {
        if (strlen(table[j].word) == n && memcmp(table[j].word, w, n) == 0) {
            table[j].count++;
            return 0;
        }
        j = (j + 1) & (cap - 1);
    }
    table[j].word = strndup(w, n);
    if (!table[j].word) return -1;
    table[j].count = 1;
    used++;
    return 0;
}

static int by_word(const void *a, const void *b) {
    return strcmp(((const entry *)a)->word, ((const entry *)b)->word);
}

static int wordcount(void) {
    char *params = engine_params();
    if (!params) return engine_fail("out of memory");
    int ok1, ok2;
    int lowercase = engine_param_bool(params, "lowercase", 1, &ok1);
    long long min_len = engine_param_int(params, "min_len", 1, &ok2);
    free(params);
    if (!ok1) return engine_fail("param `lowercase` must be a boolean");
    if (!ok2) return engine_fail("param `min_len` must be an integer");

    int32_t item = engine_input_find("text", -1);
    if (item < 0) return engine_fail("missing input `text`");

    engine_reader r = engine_reader_new(item);
    static char chunk[ENGINE_CHUNK];
    char *word = NULL;
    size_t wlen = 0, wcap = 0;
    for (;;) {
        int32_t n = engine_read(&r, chunk, sizeof chunk);
        if (n < 0) return engine_fail("reading input `text` failed");
        for (int32_t i = 0; i <= n; i++) {
            /* i == n at the end of the input flushes the last word */
            int c = i < n ? (unsigned char)chunk[i] : -1;
            if (c >= 0 && c < 128 && isalnum(c)) {
                if (wlen == wcap) {
                    wcap = wcap ? wcap * 2 : 64;
                    word = realloc(word, wcap);
                    if (!word) return engine_fail("out of memory");
                }
                word[wlen++] = (char)(lowercase ? tolower(c) : c);
            } else if (wlen > 0 && (c != -1 || n == 0)) {
                if ((long long)wlen >= min_len && add(word, wlen) < 0) return engine_fail("out of memory");
                wlen = 0;
            }
        }
        if (n == 0) break;
    }
    free(word);

    entry *list = malloc((used ? used : 1) * sizeof *list);
    if (!list) return engine_fail("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < cap; i++)
        if (table[i].word) list[k++] = table[i];
    qsort(list, k, sizeof *list, by_word);

    static engine_writer out;
    engine_writer_open(&out, "out");
    for (size_t i = 0; i < k; i++) engine_printf(&out, "%s\t%llu\n", list[i].word, (unsigned long long)list[i].count);
    if (engine_flush(&out) < 0) return engine_fail("writing output `out` failed");
    engine_log(ENGINE_INFO, "%zu distinct words", k);
    return 0;
}

ENGINE_TASK(wordcount);
ENGINE_TASK_META("{\"abi\":1,\"name\":\"c_wordcount\",\"version\":\"0.1.0\","
                 "\"description\":\"count ASCII words (C SDK example)\","
                 "\"inputs\":[\"text\"],\"outputs\":[\"out\"],\"params\":[\"lowercase\",\"min_len\"]}");
