/*
 * engine.h: write `engine` task plugins in C (guest ABI v1, see docs/abi.md).
 *
 * Single header, no library. Build a plugin as a WASI reactor:
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s -mexec-model=reactor \
 *         -o mytask.wasm mytask.c
 *
 * (Debian bookworm: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32.)
 *
 * A plugin defines `int my_task(void)` returning 0 on success, and writes
 *
 *   ENGINE_TASK(my_task);
 *   ENGINE_TASK_META("{\"abi\":1,\"name\":\"mytask\",\"version\":\"0.1.0\","
 *                    "\"inputs\":[\"text\"],\"outputs\":[\"out\"],\"params\":[]}");
 *
 * ENGINE_TASK exports `run` and `engine_abi_v1`. ENGINE_TASK_META (optional)
 * embeds the JSON as the `engine.task` custom section; its argument must be
 * string literals (adjacent literals, as above, are fine), not a variable.
 *
 * Everything below is `static inline` so the header can be included once per
 * plugin without a separate object file.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The raw ABI: imports from module "engine" --------------------------- */

#define ENGINE__IMPORT(name) __attribute__((import_module("engine"), import_name(#name)))

ENGINE__IMPORT(input_count) int32_t engine_input_count(void);
ENGINE__IMPORT(input_name) int32_t engine_input_name(int32_t item, char *buf, int32_t buf_len);
ENGINE__IMPORT(input_index) int32_t engine_input_index(int32_t item);
ENGINE__IMPORT(input_len) int64_t engine_input_len(int32_t item);
ENGINE__IMPORT(input_read) int32_t engine_input_read(int32_t item, int64_t offset, void *buf, int32_t len);
ENGINE__IMPORT(output_open) int32_t engine_output_open_n(const char *name, int32_t name_len);
ENGINE__IMPORT(output_write) int32_t engine_output_write(int32_t handle, const void *buf, int32_t len);
ENGINE__IMPORT(params_len) int32_t engine_params_len(void);
ENGINE__IMPORT(params_read) int32_t engine_params_read(char *buf, int32_t len);
ENGINE__IMPORT(log) void engine_log_n(int32_t level, const char *msg, int32_t len);
ENGINE__IMPORT(error) void engine_error_n(const char *msg, int32_t len);

/* ---- Declaring the task -------------------------------------------------- */

/* Export `run` (calling fn, an `int fn(void)`) and the ABI version marker. */
#define ENGINE_TASK(fn)                                                           \
    __attribute__((export_name("run"))) int32_t engine__run(void) { return (fn)(); } \
    __attribute__((export_name("engine_abi_v1"))) void engine__abi_v1(void) {}

/* Embed `json` (one string literal) as the `engine.task` custom section.
 * wasm-ld turns an object-file section named `.custom_section.<name>` into a
 * custom section `<name>`; stringizing the literal once more yields exactly
 * the quoted, escaped text the assembler's `.ascii` expects. */
#define ENGINE__STR(x) #x
#define ENGINE_TASK_META(json)                                          \
    __asm__(".section .custom_section.engine.task,\"\",@\n"             \
            ".ascii " ENGINE__STR(json) "\n"                            \
            ".text\n")

/* ---- Logging and errors -------------------------------------------------- */

enum { ENGINE_TRACE = 0, ENGINE_DEBUG = 1, ENGINE_INFO = 2, ENGINE_WARN = 3, ENGINE_ERROR = 4 };

static inline void engine_vlog(int level, const char *fmt, va_list ap) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    engine_log_n(level, buf, n);
}

/* printf-style line in the task log, e.g. engine_log(ENGINE_INFO, "%d words", n). */
__attribute__((format(printf, 2, 3))) static inline void engine_log(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    engine_vlog(level, fmt, ap);
    va_end(ap);
}

/* Record the task's error message (printf-style) and return 1, so that
 * `return engine_fail("bad input: %s", why);` fails the task. */
__attribute__((format(printf, 1, 2))) static inline int engine_fail(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    engine_error_n(buf, n);
    return 1;
}

/* ---- Inputs -------------------------------------------------------------- */

/* The item number of input `name` (index -1 for a scalar input, else the
 * position in a list input), or -1 if there is none. */
static inline int32_t engine_input_find(const char *name, int32_t index) {
    size_t want = strlen(name);
    char buf[256];
    int32_t count = engine_input_count();
    for (int32_t item = 0; item < count; item++) {
        int32_t n = engine_input_name(item, buf, (int32_t)sizeof buf);
        if (n < 0 || (size_t)n != want || n > (int32_t)sizeof buf) continue;
        if (memcmp(buf, name, want) == 0 && engine_input_index(item) == index) return item;
    }
    return -1;
}

/* Sequential chunked reader over one input item. */
typedef struct {
    int32_t item;
    int64_t offset;
} engine_reader;

static inline engine_reader engine_reader_new(int32_t item) {
    engine_reader r = {item, 0};
    return r;
}

/* Read up to len bytes; returns the number read, 0 at the end, -1 on error. */
static inline int32_t engine_read(engine_reader *r, void *buf, int32_t len) {
    int32_t n = engine_input_read(r->item, r->offset, buf, len);
    if (n > 0) r->offset += n;
    return n;
}

/* The whole item in a malloc'd buffer with a NUL byte after the data (handy
 * for text). *len receives the length. Returns NULL on failure. */
static inline char *engine_read_all(int32_t item, size_t *len) {
    int64_t size = engine_input_len(item);
    if (size < 0 || (uint64_t)size >= SIZE_MAX) return NULL;
    char *buf = (char *)malloc((size_t)size + 1);
    if (!buf) return NULL;
    int64_t got = 0;
    while (got < size) {
        int64_t want = size - got;
        int32_t n = engine_input_read(item, got, buf + got, want > (1 << 30) ? (1 << 30) : (int32_t)want);
        if (n <= 0) break;
        got += n;
    }
    buf[got] = 0;
    if (len) *len = (size_t)got;
    return buf;
}

/* ---- Outputs ------------------------------------------------------------- */

/* Open output `name` (NUL-terminated). Invalid or duplicate names fail the task. */
static inline int32_t engine_output_open(const char *name) {
    return engine_output_open_n(name, (int32_t)strlen(name));
}

#define ENGINE_CHUNK 65536

/* A buffered output: bytes go to the host in 64 KiB chunks. */
typedef struct {
    int32_t handle;
    size_t used;
    int failed;
    char buf[ENGINE_CHUNK];
} engine_writer;

static inline void engine_writer_open(engine_writer *w, const char *name) {
    w->handle = engine_output_open(name);
    w->used = 0;
    w->failed = 0;
}

/* Send buffered bytes. Returns 0, or -1 if any write failed. */
static inline int engine_flush(engine_writer *w) {
    if (w->used > 0 && engine_output_write(w->handle, w->buf, (int32_t)w->used) < 0) w->failed = 1;
    w->used = 0;
    return w->failed ? -1 : 0;
}

static inline int engine_write(engine_writer *w, const void *data, size_t len) {
    const char *p = (const char *)data;
    if (w->used + len > ENGINE_CHUNK) engine_flush(w);
    if (len >= ENGINE_CHUNK) {
        while (len > 0) {
            int32_t n = len > (1u << 30) ? (1 << 30) : (int32_t)len;
            if (engine_output_write(w->handle, p, n) < 0) w->failed = 1;
            p += n;
            len -= (size_t)n;
        }
    } else {
        memcpy(w->buf + w->used, p, len);
        w->used += len;
    }
    return w->failed ? -1 : 0;
}

static inline int engine_puts(engine_writer *w, const char *s) { return engine_write(w, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static inline int engine_printf(engine_writer *w, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof buf) return engine_write(w, buf, (size_t)n);
    char *big = (char *)malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = engine_write(w, big, (size_t)n);
    free(big);
    return rc;
}

/* ---- Params -------------------------------------------------------------- */

/* The params JSON as a malloc'd NUL-terminated string ("{}" when empty). */
static inline char *engine_params(void) {
    int32_t len = engine_params_len();
    if (len < 0) len = 0;
    char *buf = (char *)malloc((size_t)len + 3);
    if (!buf) return NULL;
    int32_t n = engine_params_read(buf, len);
    if (n <= 0) {
        strcpy(buf, "{}");
    } else {
        buf[n] = 0;
    }
    return buf;
}

/* Find the value of top-level key `key` in a JSON object; returns a pointer
 * to the first character of its value, or NULL. Understands strings (with
 * escapes) and nesting well enough to skip them; keys with escapes are not
 * matched. */
static inline const char *engine__json_find(const char *json, const char *key) {
    size_t klen = strlen(key);
    int depth = 0;
    int expect_key = 0;
    for (const char *p = json; *p; p++) {
        char c = *p;
        if (c == '"') {
            const char *start = p + 1;
            for (p = start; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) return NULL;
            if (depth == 1 && expect_key) {
                const char *q = p + 1;
                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
                if (*q == ':' && (size_t)(p - start) == klen && memcmp(start, key, klen) == 0) {
                    q++;
                    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
                    return q;
                }
                expect_key = 0;
            }
        } else if (c == '{' || c == '[') {
            depth++;
            expect_key = (c == '{' && depth == 1);
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect_key = 1;
        }
    }
    return NULL;
}

/* Integer param `key` from a params JSON object, or `def` if absent.
 * Sets *ok to 0 (if ok is not NULL) when present but not an integer. */
static inline long long engine_param_int(const char *json, const char *key, long long def, int *ok) {
    if (ok) *ok = 1;
    const char *v = engine__json_find(json, key);
    if (!v) return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end == '.' || *end == 'e' || *end == 'E') {
        if (ok) *ok = 0;
        return def;
    }
    return x;
}

/* Boolean param `key`, or `def` if absent. Sets *ok to 0 when present but not a boolean. */
static inline int engine_param_bool(const char *json, const char *key, int def, int *ok) {
    if (ok) *ok = 1;
    const char *v = engine__json_find(json, key);
    if (!v) return def;
    if (strncmp(v, "true", 4) == 0) return 1;
    if (strncmp(v, "false", 5) == 0) return 0;
    if (ok) *ok = 0;
    return def;
}

#ifdef __cplusplus
}
#endif

#endif /* ENGINE_H */
