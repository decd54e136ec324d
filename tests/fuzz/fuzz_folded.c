/*
 * libFuzzer target for the folded-stack reader, built and run by
 * tests/fuzz/run.sh (`make fuzz`) as:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -o fuzz_folded tests/fuzz/fuzz_folded.c output/foldedin.c \
 *       output/profile.c output/folded.c output/diff.c output/label.c symbolizer/names.c \
 *       common/util.c common/htab.c -lm
 *   ./fuzz_folded -max_len=4096 corpus/
 *
 * Seeds: tests/fuzz/corpus/folded/; inputs that once failed, replayed on
 * every run: tests/fuzz/crashes/folded/.
 *
 * Whatever the text, the reader either fails with a message or gives a
 * profile whose folded form reads back to the same samples; read a line at
 * a time from a pipe or from a file, it gives the same profile or the same
 * message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "output/diff.h"
#include "output/folded.h"
#include "output/foldedin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The lines of data in reverse order, each ending in a newline (size + 1 bytes). */
static char *reversed(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 2);
    size_t o = 0, end = size;
    if (!out)
        abort();
    for (;;) {
        size_t start = end;
        while (start > 0 && data[start - 1] != '\n')
            start--;
        memcpy(out + o, data + start, end - start);
        o += end - start;
        out[o++] = '\n';
        if (start == 0)
            break;
        end = start - 1;
    }
    while (o < size + 1)
        out[o++] = '\n';
    out[o] = '\0';
    return out;
}

/* The folded text of p, or NULL. */
static char *folded_text(const struct profile *p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || folded_write(f, p) != 0 || fclose(f) != 0)
        abort();
    return text;
}

/* data read from a pipe (from_file 0) or a file through folded_read_fd: what folded_read gave. */
static void same_from_fd(const uint8_t *data, size_t size, int from_file, int want_ret,
                         const char *want, const char *want_msg)
{
    int fd, fds[2] = {-1, -1};
    if (from_file) {
        fd = memfd_create("fuzz", 0);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
            abort();
    } else {
        /* (-max_len stays under a pipe's buffer: written whole before it is read) */
        if (pipe(fds) != 0 || write(fds[1], data, size) != (ssize_t)size)
            abort();
        close(fds[1]);
        fd = fds[0];
    }
    struct profile p;
    struct pserr err;
    profile_init(&p);
    int ret = folded_read_fd(&p, fd, "fuzz", FOLDEDIN_MAX_INPUT, &err);
    close(fd);
    if ((ret == 0) != (want_ret == 0))
        abort();
    if (ret == 0) {
        char *text = folded_text(&p);
        if (strcmp(text, want) != 0)
            abort();
        free(text);
    } else if (strcmp(err.msg, want_msg) != 0) {
        abort();
    }
    profile_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct profile p, q, d;
    struct pserr err;
    profile_init(&p);
    int ret = folded_read(&p, (const char *)data, size, "fuzz", &err);
    if (size <= 4096) {
        char *want = ret == 0 ? folded_text(&p) : NULL;
        same_from_fd(data, size, 0, ret, want, err.msg);
        same_from_fd(data, size, 1, ret, want, err.msg);
        free(want);
    }
    if (ret == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        /* (A first line that reads as austin's "# key: value" header is the
         * format's one ambiguity: nothing to compare then.) */
        if (f && folded_write(f, &p) == 0 && fclose(f) == 0 && strncmp(text, "# ", 2) != 0) {
            profile_init(&q);
            if (folded_read(&q, text, len, "again", &err) != 0 || q.total != p.total)
                abort();
            profile_release(&q);
            /* Nor do the stacks depend on the order of the lines (but a byte
             * order mark is skipped on the first line only). */
            if (!memchr(data, '#', size) && !memmem(data, size, "\xEF\xBB\xBF", 3)) {
                char *rev = reversed(data, size);
                char *text2 = NULL;
                size_t len2 = 0;
                profile_init(&q);
                if (folded_read(&q, rev, size + 1, "reversed", &err) != 0)
                    abort();
                FILE *g = open_memstream(&text2, &len2);
                if (!g || folded_write(g, &q) != 0 || fclose(g) != 0 || strcmp(text, text2) != 0)
                    abort();
                free(text2);
                free(rev);
                profile_release(&q);
            }
            profile_init(&q);
            if (folded_read(&q, text, len, "again", &err) != 0)
                abort();
            profile_init(&d);
            diff_normalize(&d, &q);
            struct diff_row *rows;
            (void)diff_rows(&d, &p, &rows);
            free(rows);
            profile_release(&d);
            profile_release(&q);
        }
        free(text);
    }
    profile_release(&p);
    return 0;
}
