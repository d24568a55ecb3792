/* fs_conformance.c: a WASI preview 1 command in C (wasi-libc) that exercises
 * the filesystem calls real C programs make on a command task's directories
 * (open with O_CREAT/O_EXCL/O_TRUNC/O_APPEND, read/write, pread/pwrite,
 * lseek incl. past the end, opendir/readdir/telldir/seekdir, stat/fstat,
 * ftruncate, rename, unlink, mkdir, rmdir) and prints a deterministic
 * transcript: results, lengths, contents and errno names, never timestamps
 * or inode numbers.
 *
 * It expects /in/data (read-only, holding "0123456789"), an empty writable
 * /out and an empty writable /tmp. tests/all/conformance.rs runs it through
 * `engine run` and under plain wasmtime_wasi preopens and requires identical
 * transcripts. Built by xtask/build-guests.sh into c_fs_conformance.wasm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case EXDEV: return "EXDEV";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case ESPIPE: return "ESPIPE";
    default: return "other";
    }
}

/* Print "label: ok" or "label: -1 ENAME" for a call returning < 0 on error. */
static void rc(const char *label, long r) {
    if (r < 0) printf("%s: %ld %s\n", label, r, errname(errno));
    else printf("%s: ok\n", label);
}

static void val(const char *label, long r) {
    if (r < 0) printf("%s: %ld %s\n", label, r, errname(errno));
    else printf("%s: %ld\n", label, r);
}

static long file_len(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_size;
}

static void try_open(const char *label, const char *path, int flags) {
    errno = 0;
    int fd = open(path, flags, 0644);
    rc(label, fd);
    if (fd >= 0) close(fd);
}

static void step_open(void) {
    printf("## open\n");
    int fd = open("/out/a.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    val("write", write(fd, "hello world", 11));
    close(fd);
    printf("len: %ld\n", file_len("/out/a.txt"));
    try_open("O_CREAT|O_EXCL on existing", "/out/a.txt", O_WRONLY | O_CREAT | O_EXCL);
    try_open("O_CREAT|O_EXCL on missing", "/out/new.txt", O_WRONLY | O_CREAT | O_EXCL);
    try_open("O_TRUNC", "/out/a.txt", O_WRONLY | O_TRUNC);
    printf("len after O_TRUNC: %ld\n", file_len("/out/a.txt"));
    fd = open("/out/a.txt", O_WRONLY | O_APPEND);
    val("append 1", write(fd, "one,", 4));
    val("append 2", write(fd, "two", 3));
    val("lseek 0 after append", lseek(fd, 0, SEEK_SET));
    val("append after seek", write(fd, "!", 1));
    close(fd);
    char buf[64] = {0};
    fd = open("/out/a.txt", O_RDONLY);
    long n = read(fd, buf, sizeof buf - 1);
    printf("contents: %ld \"%s\"\n", n, buf);
    close(fd);
    try_open("open missing", "/out/missing", O_RDONLY);
    try_open("create in missing dir", "/out/nodir/x", O_WRONLY | O_CREAT);
    try_open("open under a file", "/out/a.txt/x", O_RDONLY);
    try_open("open dir for write", "/out", O_WRONLY);
    try_open("open dir O_RDONLY", "/out", O_RDONLY);
    try_open("O_DIRECTORY on a file", "/out/a.txt", O_RDONLY | O_DIRECTORY);
    try_open("escape with ..", "/out/../x", O_WRONLY | O_CREAT);
}

static void step_rw(void) {
    printf("## read, write, pread, pwrite, lseek\n");
    int fd = open("/out/rw.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    val("write", write(fd, "abcdefghij", 10));
    val("tell", lseek(fd, 0, SEEK_CUR));
    val("seek set 3", lseek(fd, 3, SEEK_SET));
    char b[16] = {0};
    val("read 4", read(fd, b, 4));
    printf("got \"%s\"\n", b);
    val("seek cur -2", lseek(fd, -2, SEEK_CUR));
    val("seek end", lseek(fd, 0, SEEK_END));
    errno = 0;
    val("seek before start", lseek(fd, -100, SEEK_CUR));
    val("tell after failed seek", lseek(fd, 0, SEEK_CUR));
    val("seek past end", lseek(fd, 90, SEEK_END));
    val("read past end", read(fd, b, 4));
    val("write past end", write(fd, "Z", 1));
    printf("len with hole: %ld\n", file_len("/out/rw.bin"));
    char hole[128];
    long got = pread(fd, hole, sizeof hole, 10);
    int zeros = 0;
    for (long i = 0; i < got; i++) zeros += hole[i] == 0;
    printf("hole: %ld bytes, %d zero, last %d\n", got, zeros, got > 0 ? hole[got - 1] : -1);
    memset(b, 0, sizeof b);
    val("pread 5@2", pread(fd, b, 5, 2));
    printf("got \"%s\"\n", b);
    val("pread past end", pread(fd, b, 5, 1000));
    val("pwrite XY@1", pwrite(fd, "XY", 2, 1));
    val("tell after pwrite", lseek(fd, 0, SEEK_CUR));
    memset(b, 0, sizeof b);
    val("pread 4@0", pread(fd, b, 4, 0));
    printf("got \"%s\"\n", b);
    val("pwrite @200", pwrite(fd, "!", 1, 200));
    printf("len: %ld\n", file_len("/out/rw.bin"));
    errno = 0;
    val("pread negative offset", pread(fd, b, 1, -1));
    close(fd);
    fd = open("/out/rw.bin", O_RDONLY);
    errno = 0;
    val("write on O_RDONLY", write(fd, "x", 1));
    val("pwrite on O_RDONLY", pwrite(fd, "x", 1, 0));
    val("ftruncate on O_RDONLY", ftruncate(fd, 1));
    close(fd);
    errno = 0;
    val("read on a closed fd", read(fd, b, 1));
}

static void step_stat(void) {
    printf("## stat, fstat, ftruncate\n");
    int fd = open("/out/rw.bin", O_RDWR);
    rc("ftruncate 5", ftruncate(fd, 5));
    struct stat st;
    fstat(fd, &st);
    printf("fstat: size %ld reg %d\n", (long)st.st_size, S_ISREG(st.st_mode));
    rc("ftruncate 4096", ftruncate(fd, 4096));
    printf("stat size: %ld\n", file_len("/out/rw.bin"));
    errno = 0;
    rc("ftruncate -1", ftruncate(fd, -1));
    rc("ftruncate 0", ftruncate(fd, 0));
    close(fd);
    const char *paths[] = {"/out/a.txt", "/out", "/in", "/in/data", "/tmp", "/out/missing", "/out/a.txt/"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        errno = 0;
        int r = stat(paths[i], &st);
        if (r != 0) printf("stat %s: %s\n", paths[i], errname(errno));
        else printf("stat %s: reg %d dir %d size %ld\n", paths[i], S_ISREG(st.st_mode), S_ISDIR(st.st_mode),
                    S_ISREG(st.st_mode) ? (long)st.st_size : 0L);
    }
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void step_readdir(void) {
    printf("## readdir\n");
    mkdir("/out/d", 0755);
    char path[64];
    for (int i = 0; i < 12; i++) {
        snprintf(path, sizeof path, "/out/d/file-%02d", i);
        int fd = open(path, O_WRONLY | O_CREAT, 0644);
        close(fd);
    }
    mkdir("/out/d/sub", 0755);
    DIR *d = opendir("/out/d");
    char *names[32];
    long pos[32];
    int n = 0;
    struct dirent *e;
    for (;;) {
        long here = telldir(d);
        if (!(e = readdir(d)) || n == 32) break;
        pos[n] = here;
        names[n] = strdup(e->d_name);
        n++;
    }
    char *sorted[32];
    memcpy(sorted, names, sizeof names);
    qsort(sorted, n, sizeof *sorted, cmp);
    printf("entries:");
    for (int i = 0; i < n; i++) printf(" %s", sorted[i]);
    printf("\n");
    int ok = 1;
    for (int i = n - 1; i >= 0; i--) {
        seekdir(d, pos[i]);
        e = readdir(d);
        ok &= e && strcmp(e->d_name, names[i]) == 0;
    }
    printf("seekdir to every telldir position yields its entry: %d\n", ok);
    rewinddir(d);
    int again = 0;
    while (readdir(d)) again++;
    printf("after rewinddir: %d entries\n", again);
    closedir(d);
    errno = 0;
    printf("opendir missing: %s\n", opendir("/out/nope") ? "ok" : errname(errno));
    errno = 0;
    printf("opendir a file: %s\n", opendir("/out/a.txt") ? "ok" : errname(errno));
}

static void step_rename(const char *base) {
    char a[64], b[64], c[64];
    printf("## rename, unlink in %s\n", base);
#define P(buf, name) snprintf(buf, sizeof buf, "%s/%s", base, name)
    P(a, "r1"); P(b, "r2"); P(c, "r3");
    close(open(a, O_WRONLY | O_CREAT, 0644));
    int fd = open(b, O_WRONLY | O_CREAT, 0644);
    write(fd, "two", 3);
    close(fd);
    rc("rename r1 -> r3", rename(a, c));
    errno = 0;
    printf("r1 after: %s\n", access(a, F_OK) == 0 ? "exists" : errname(errno));
    int keep = open(b, O_RDONLY);
    rc("rename r3 over open r2", rename(c, b));
    char buf[8] = {0};
    read(keep, buf, sizeof buf - 1);
    printf("open r2 still reads \"%s\", path len %ld\n", buf, file_len(b));
    close(keep);
    errno = 0;
    rc("rename missing", rename(a, c));
    P(c, "rd");
    mkdir(c, 0755);
    errno = 0;
    rc("rename file over dir", rename(b, c));
    errno = 0;
    rc("rename dir over file", rename(c, b));
    P(a, "rd/inner");
    rc("rename file into dir", rename(b, a));
    errno = 0;
    rc("rmdir non-empty", rmdir(c));
    rc("unlink", unlink(a));
    errno = 0;
    rc("unlink again", unlink(a));
    errno = 0;
    rc("unlink a dir", unlink(c));
    rc("rmdir", rmdir(c));
    errno = 0;
    rc("rmdir again", rmdir(c));
#undef P
}

static void step_dirs(void) {
    printf("## mkdir, rmdir, cross-directory\n");
    rc("mkdir", mkdir("/out/m", 0755));
    errno = 0;
    rc("mkdir existing", mkdir("/out/m", 0755));
    errno = 0;
    rc("mkdir missing parent", mkdir("/out/no/m", 0755));
    errno = 0;
    rc("rmdir a file", rmdir("/out/a.txt"));
    rc("rmdir", rmdir("/out/m"));
    close(open("/tmp/cross", O_WRONLY | O_CREAT, 0644));
    errno = 0;
    rc("rename /tmp -> /out", rename("/tmp/cross", "/out/cross"));
    errno = 0;
    rc("rename /out -> /in", rename("/out/a.txt", "/in/a.txt"));
}

static void step_in(void) {
    printf("## read-only /in\n");
    char buf[32] = {0};
    int fd = open("/in/data", O_RDONLY);
    val("read /in/data", read(fd, buf, sizeof buf - 1));
    printf("got \"%s\"\n", buf);
    errno = 0;
    val("write on it", write(fd, "x", 1));
    errno = 0;
    rc("ftruncate it", ftruncate(fd, 0));
    close(fd);
    try_open("create in /in", "/in/new", O_WRONLY | O_CREAT);
    try_open("open /in/data O_WRONLY", "/in/data", O_WRONLY);
    try_open("open /in/data O_RDWR", "/in/data", O_RDWR);
    try_open("open /in/data O_TRUNC", "/in/data", O_RDONLY | O_TRUNC);
    try_open("open /in/data O_APPEND", "/in/data", O_WRONLY | O_APPEND);
    errno = 0;
    rc("unlink /in/data", unlink("/in/data"));
    errno = 0;
    rc("mkdir in /in", mkdir("/in/d", 0755));
    errno = 0;
    rc("rename in /in", rename("/in/data", "/in/data2"));
    printf("/in/data len: %ld\n", file_len("/in/data"));
}

static void step_tree(void) {
    printf("## final /out\n");
    const char *dirs[] = {"/out", "/out/d", "/out/d/sub"};
    for (unsigned i = 0; i < 3; i++) {
        DIR *d = opendir(dirs[i]);
        char *names[64];
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d)) && n < 64) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
        }
        if (d) closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (int j = 0; j < n; j++) {
            char p[128];
            snprintf(p, sizeof p, "%s/%s", dirs[i], names[j]);
            struct stat st;
            stat(p, &st);
            if (S_ISDIR(st.st_mode)) printf("%s dir\n", p);
            else printf("%s %ld\n", p, (long)st.st_size);
        }
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    step_open();
    step_rw();
    step_stat();
    step_readdir();
    step_rename("/out");
    step_rename("/tmp");
    step_dirs();
    step_in();
    step_tree();
    printf("done\n");
    return 0;
}
