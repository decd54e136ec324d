#include "profiler/srcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files kept: a dump looks at a few dozen. */
#define FILES_MAX 256

struct srcfile {
    char *path;         /* as the code object names it */
    char *data;         /* NULL when it could not be read */
    size_t len;
    size_t *starts;     /* offset of each line's first byte */
    size_t nlines;
};

struct srcfiles {
    char *root, *cwd;
    struct srcfile *v;
    size_t n, cap;
};

struct srcfiles *srcfiles_new(const char *root, const char *cwd)
{
    struct srcfiles *sf = xcalloc(1, sizeof(*sf));
    sf->root = xstrdup(root ? root : "");
    sf->cwd = xstrdup(cwd ? cwd : "");
    return sf;
}

static void file_release(struct srcfile *f)
{
    free(f->path);
    free(f->data);
    free(f->starts);
}

void srcfiles_free(struct srcfiles *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->n; i++)
        file_release(&sf->v[i]);
    free(sf->v);
    free(sf->root);
    free(sf->cwd);
    free(sf);
}

/*
 * Reads a whole regular file of at most SRCFILE_MAX_BYTES.  0 or a negative
 * errno.  The target names the file: anything else there (a device, a FIFO)
 * is not even opened.
 */
static int read_file(const char *path, char **data, size_t *len)
{
    struct stat st;
    int fd = open_regular(path, &st);
    if (fd < 0)
        return fd;
    if (st.st_size > (off_t)SRCFILE_MAX_BYTES) {
        close(fd);
        return -EINVAL;
    }
    /* The file may grow while read: never past the bound. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

static void index_lines(struct srcfile *f)
{
    size_t cap = 0;
    for (size_t i = 0; i < f->len;) {
        GROW(f->starts, cap, f->nlines + 1);
        f->starts[f->nlines++] = i;
        const char *nl = memchr(f->data + i, '\n', f->len - i);
        i = nl ? (size_t)(nl - f->data) + 1 : f->len;
    }
}

static struct srcfile *file_get(struct srcfiles *sf, const char *path)
{
    for (size_t i = 0; i < sf->n; i++)
        if (strcmp(sf->v[i].path, path) == 0)
            return &sf->v[i];
    if (sf->n >= FILES_MAX) {
        for (size_t i = 0; i < sf->n; i++)
            file_release(&sf->v[i]);
        sf->n = 0;
    }
    GROW(sf->v, sf->cap, sf->n + 1);
    struct srcfile *f = &sf->v[sf->n++];
    memset(f, 0, sizeof(*f));
    f->path = xstrdup(path);
    struct strbuf full = STRBUF_INIT;
    sb_adds(&full, path[0] == '/' ? sf->root : sf->cwd);
    if (path[0] != '/' && full.len)
        sb_addc(&full, '/');
    sb_adds(&full, path);
    if (read_file(sb_str(&full), &f->data, &f->len) == 0)
        index_lines(f);
    sb_release(&full);
    return f;
}

/* A line as shown: valid UTF-8, tabs to the next multiple of 8, no control characters, cut. */
static char *clean_line(const char *s, size_t len)
{
    struct strbuf u = STRBUF_INIT, out = STRBUF_INIT;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    sb_add_utf8(&u, s, len);
    size_t col = 0;
    for (size_t i = 0; i < u.len; i++) {
        unsigned char c = (unsigned char)u.buf[i];
        if ((c & 0xc0) != 0x80 && col >= SRCFILE_MAX_LINE) {
            sb_adds(&out, "...");
            break;
        }
        if (c == '\t') {
            do
                sb_addc(&out, ' ');
            while (++col % 8);
            continue;
        }
        sb_addc(&out, c < 0x20 || c == 0x7f ? '?' : (char)c);
        /* Columns count characters: continuation bytes do not start one. */
        col += (c & 0xc0) != 0x80;
    }
    sb_release(&u);
    return sb_detach(&out);
}

int srcfiles_lines(struct srcfiles *sf, const char *file, int line, int context,
                   struct srcline *out, size_t *n)
{
    *n = 0;
    if (!file || !*file || line <= 0 || context < 0 || context > SRCFILE_MAX_CONTEXT)
        return -ENOENT;
    struct srcfile *f = file_get(sf, file);
    if (!f->data || (size_t)line > f->nlines)
        return -ENOENT;
    size_t first = line - context > 1 ? (size_t)(line - context) : 1;
    size_t last = MIN((size_t)line + (size_t)context, f->nlines);
    for (size_t i = first; i <= last; i++) {
        size_t start = f->starts[i - 1];
        size_t end = i < f->nlines ? f->starts[i] : f->len;
        out[*n] = (struct srcline){(int)i, (int)i == line, clean_line(f->data + start, end - start)};
        (*n)++;
    }
    return 0;
}

void srclines_release(struct srcline *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
}
