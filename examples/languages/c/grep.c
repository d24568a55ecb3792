/*
 * grep.c: a plain WASI command in C (no SDK): the command-task contract of
 * docs/abi.md (inputs are files under /in, every file written under /out is
 * an output).
 *
 *   c_grep [-i] [-v] PATTERN FILE...
 *
 * Writes the lines of the FILEs (in order) that contain PATTERN (a plain
 * substring; -i: ignoring ASCII case; -v: the lines that do NOT contain it) to
 * /out/out, and prints `<n> of <m> lines matched` to stdout. A missing
 * last newline is added. Exit 0, or 2 with a message on stderr for a bad
 * command line or an unreadable file.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s -o c_grep.wasm grep.c
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ignore_case, invert;

static int contains(const char *line, size_t len, const char *pat, size_t plen) {
    if (plen == 0) return 1;
    for (size_t i = 0; i + plen <= len; i++) {
        size_t j = 0;
        if (ignore_case) {
            while (j < plen && tolower((unsigned char)line[i + j]) == tolower((unsigned char)pat[j])) j++;
        } else {
            while (j < plen && line[i + j] == pat[j]) j++;
        }
        if (j == plen) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
        if (strcmp(argv[a], "-i") == 0) ignore_case = 1;
        else if (strcmp(argv[a], "-v") == 0) invert = 1;
        else {
            fprintf(stderr, "c_grep: unknown option `%s`\n", argv[a]);
            return 2;
        }
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: c_grep [-i] [-v] PATTERN FILE...\n");
        return 2;
    }
    const char *pat = argv[a++];
    size_t plen = strlen(pat);

    FILE *out = fopen("/out/out", "w");
    if (!out) {
        perror("c_grep: /out/out");
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    long matched = 0, total = 0;
    for (; a < argc; a++) {
        FILE *in = fopen(argv[a], "r");
        if (!in) {
            fprintf(stderr, "c_grep: cannot open `%s`\n", argv[a]);
            return 2;
        }
        ssize_t n;
        while ((n = getline(&line, &cap, in)) > 0) {
            size_t len = (size_t)n;
            if (line[len - 1] == '\n') len--;
            total++;
            if (contains(line, len, pat, plen) != invert) {
                matched++;
                fwrite(line, 1, len, out);
                fputc('\n', out);
            }
        }
        fclose(in);
    }
    free(line);
    if (fclose(out) != 0) {
        perror("c_grep: writing /out/out");
        return 2;
    }
    printf("%ld of %ld lines matched\n", matched, total);
    return 0;
}
