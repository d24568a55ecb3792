/*
 * words.c: a plain WASI command in C (no SDK), following the command-task
 * contract of docs/abi.md: inputs are read-only files under /in, and every
 * file written under /out becomes an output.
 *
 *   c_words [-l] [-m MIN] FILE...
 *
 * Splits the FILEs (in order) into words, writing one word per line to
 * /out/out, and prints `<n> words` to stdout. A word is a maximal run of
 * ASCII letters and digits; every other byte separates words. -l lowercases
 * ASCII letters; -m MIN drops words shorter than MIN bytes (default 1).
 * Exit 0, or 2 with a message on stderr for a bad command line or an
 * unreadable file.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s -o c_words.wasm words.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_alnum(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

int main(int argc, char **argv) {
    int lower = 0;
    long min = 1;
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "-l") == 0) {
            lower = 1;
        } else if (strcmp(argv[a], "-m") == 0 && a + 1 < argc) {
            char *end;
            min = strtol(argv[++a], &end, 10);
            if (*end || min < 0) {
                fprintf(stderr, "c_words: -m wants a number >= 0, got `%s`\n", argv[a]);
                return 2;
            }
        } else {
            fprintf(stderr, "c_words: unknown option `%s`\n", argv[a]);
            return 2;
        }
    }
    if (a == argc) {
        fprintf(stderr, "usage: c_words [-l] [-m MIN] FILE...\n");
        return 2;
    }

    FILE *out = fopen("/out/out", "w");
    if (!out) {
        perror("c_words: /out/out");
        return 2;
    }
    char *word = NULL;
    size_t len = 0, cap = 0;
    long words = 0;
    for (; a < argc; a++) {
        FILE *in = fopen(argv[a], "r");
        if (!in) {
            fprintf(stderr, "c_words: cannot open `%s`\n", argv[a]);
            return 2;
        }
        for (;;) {
            int c = getc(in);
            if (c != EOF && is_alnum(c)) {
                if (len == cap) {
                    cap = cap ? cap * 2 : 64;
                    word = realloc(word, cap);
                    if (!word) {
                        fprintf(stderr, "c_words: out of memory\n");
                        return 2;
                    }
                }
                word[len++] = (char)(lower && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
            } else if (len > 0) {
                if ((long)len >= min) {
                    fwrite(word, 1, len, out);
                    putc('\n', out);
                    words++;
                }
                len = 0;
            }
            if (c == EOF) break;
        }
        fclose(in);
    }
    free(word);
    if (fclose(out) != 0) {
        perror("c_words: writing /out/out");
        return 2;
    }
    printf("%ld words\n", words);
    return 0;
}
