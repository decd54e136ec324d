#include "profiler/target/srcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
    char *also;         /* absolute paths not under root: under this too, or NULL */
    struct srcfile_creds creds;
    int checked;        /* creds are set */
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

void srcfiles_set_fallback(struct srcfiles *sf, const char *also)
{
    free(sf->also);
    sf->also = also ? xstrdup(also) : NULL;
}

void srcfiles_set_creds(struct srcfiles *sf, const struct srcfile_creds *c)
{
    sf->checked = c != NULL;
    if (c)
        sf->creds = *c;
}

/* Reads the numbers after key in a /proc status file's text into v (at most max). */
static size_t status_ids(const char *text, const char *key, unsigned long *v, size_t max)
{
    const char *p = strstr(text, key);
    size_t n = 0;
    if (!p)
        return 0;
    p += strlen(key);
    while (n < max) {
        char *end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            break;
        v[n++] = strtoul(p, &end, 10);
        p = end;
    }
    return n;
}

int srcfile_creds_of(pid_t pid, struct srcfile_creds *c)
{
    char path[64], text[8192];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    text[n] = 0;
    unsigned long uid[4], gid[4], groups[SRCFILE_MAX_GROUPS];
    /* Real, effective, saved, file system: files are opened with the last. */
    if (status_ids(text, "\nUid:", uid, 4) != 4 || status_ids(text, "\nGid:", gid, 4) != 4)
        return -EIO;
    memset(c, 0, sizeof(*c));
    c->uid = (uid_t)uid[3];
    c->gid = (gid_t)gid[3];
    c->ngroups = status_ids(text, "\nGroups:", groups, SRCFILE_MAX_GROUPS);
    for (size_t i = 0; i < c->ngroups; i++)
        c->groups[i] = (gid_t)groups[i];
    return 0;
}

/* 1 when c may do what bits (4 read, 1 search) of st's mode say, by its owner, group, others. */
static int allowed(const struct srcfile_creds *c, const struct stat *st, unsigned bits)
{
    if (c->uid == 0)
        return 1;
    if (st->st_uid == c->uid)
        return ((st->st_mode >> 6) & bits) == bits;
    int member = st->st_gid == c->gid;
    for (size_t i = 0; i < c->ngroups && !member; i++)
        member = st->st_gid == c->groups[i];
    if (member)
        return ((st->st_mode >> 3) & bits) == bits;
    return (st->st_mode & bits) == bits;
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
    free(sf->also);
    free(sf);
}

/*
 * Opens path under base ("" for none) for reading, one component at a time
 * with O_PATH and O_NOFOLLOW (see srcfile.h), and only once it is known to
 * be a regular file that sf's credentials may read.  The fd, or -errno.
 */
static int open_checked(const struct srcfiles *sf, const char *base, const char *path)
{
    struct stat st;
    int dir = open(base[0] ? base : path[0] == '/' ? "/" : ".",
                   O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    int ret = 0;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char comp[256];
        if (n == 0 || n >= sizeof(comp)) {
            ret = n ? -ENAMETOOLONG : -EISDIR;
            break;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        p += n;
        if (strcmp(comp, ".") == 0)
            continue;
        /* ".." could climb out of the prefix (/proc/PID/root's parent is ours). */
        if (strcmp(comp, "..") == 0 || fstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
            (sf->checked && !allowed(&sf->creds, &st, 1))) {
            ret = -EACCES;
            break;
        }
        int next = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            ret = -errno;
            break;
        }
        close(dir);
        dir = next;
        if (fstat(dir, &st) < 0 || S_ISLNK(st.st_mode)) {
            ret = -ELOOP;
            break;
        }
        if (*p == 0)
            break;
    }
    if (ret == 0 && (!S_ISREG(st.st_mode) || (sf->checked && !allowed(&sf->creds, &st, 4))))
        ret = S_ISREG(st.st_mode) ? -EACCES : -EINVAL;
    if (ret < 0) {
        close(dir);
        return ret;
    }
    /* The regular file found, opened for reading through its own fd. */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", dir);
    int fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    ret = fd < 0 ? -errno : 0;
    struct stat now;
    if (fd >= 0 && (fstat(fd, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino ||
                    !S_ISREG(now.st_mode)))
        ret = -EINVAL;
    close(dir);
    if (ret < 0 && fd >= 0)
        close(fd);
    return ret < 0 ? ret : fd;
}

/* Reads a whole regular file of at most SRCFILE_MAX_BYTES.  0 or a negative errno. */
static int read_file(const struct srcfiles *sf, const char *base, const char *path, char **data,
                     size_t *len)
{
    int fd = open_checked(sf, base, path);
    struct stat st;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)SRCFILE_MAX_BYTES) {
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
    int ret = read_file(sf, path[0] == '/' ? sf->root : sf->cwd, path, &f->data, &f->len);
    /* Only a file that is not there: one there but refused stays refused. */
    if (ret == -ENOENT && path[0] == '/' && sf->also)
        ret = read_file(sf, sf->also, path, &f->data, &f->len);
    if (ret == 0)
        index_lines(f);
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
