#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void die_oom(void)
{
    static const char msg[] = "pystrobe: out of memory\n";
    fwrite(msg, 1, sizeof(msg) - 1, stderr);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        die_oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void grow_array(void **v, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap;
    if (need <= n)
        return;
    if (n < 8)
        n = 8;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            die_oom();
        n *= 2;
    }
    *v = xrealloc(*v, n * elem);
    *cap = n;
}

void sb_grow(struct strbuf *sb, size_t extra)
{
    if (extra > SIZE_MAX - sb->len - 1)
        die_oom();
    GROW(sb->buf, sb->cap, sb->len + extra + 1);
    /* A first allocation must hold "" too: the buffer is always terminated. */
    sb->buf[sb->len] = '\0';
}

void sb_add(struct strbuf *sb, const void *data, size_t len)
{
    sb_grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

void sb_addc(struct strbuf *sb, char c)
{
    sb_grow(sb, 1);
    sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    sb_grow(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vaddf(sb, fmt, ap);
    va_end(ap);
}

void sb_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->buf)
        sb->buf[0] = '\0';
}

const char *sb_str(const struct strbuf *sb)
{
    return sb->buf ? sb->buf : "";
}

char *sb_detach(struct strbuf *sb)
{
    char *s = sb->buf ? sb->buf : xstrdup("");
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return s;
}

void sb_release(struct strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

int pserr_set(struct pserr *e, int code, const char *fmt, ...)
{
    if (code < 0)
        code = -code;
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return -code;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t wall_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    /* FNV-1a over 8-byte words where possible, finished with a mixer. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--) {
        h = (h ^ *s++) * 0x100000001b3ULL;
    }
    return hash_u64(h);
}

void utf8_put(struct strbuf *sb, uint32_t cp)
{
    char b[4];
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        sb_addc(sb, (char)cp);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        sb_add(sb, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        sb_add(sb, b, 3);
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        sb_add(sb, b, 4);
    }
}

size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t sb_add_utf8(struct strbuf *sb, const char *s, size_t n)
{
    size_t bad = 0;
    sb_grow(sb, n);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_valid_len((const unsigned char *)s + i, n - i);
        if (len) {
            sb_add(sb, s + i, len);
            i += len;
        } else {
            sb_add(sb, "\xef\xbf\xbd", 3);
            bad++;
            i++;
        }
    }
    return bad;
}

int text_unsafe(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x061c || c == 0x200e || c == 0x200f ||
           (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

size_t text_char(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = utf8_valid_len(u, n);
    if (len == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = len == 1 ? u[0] : len == 2 ? u[0] & 0x1Fu : len == 3 ? u[0] & 0x0Fu : u[0] & 0x07u;
    for (size_t i = 1; i < len; i++)
        c = (c << 6) | (u[i] & 0x3Fu);
    *cp = text_unsafe(c) ? '?' : c;
    return len;
}

void sb_add_clean(struct strbuf *sb, const char *s, size_t n)
{
    uint32_t c;
    sb_grow(sb, n);
    for (size_t i = 0, len; i < n; i += len) {
        len = text_char(s + i, n - i, &c);
        if (c == '?' || c == 0xFFFD)
            utf8_put(sb, c);
        else
            sb_add(sb, s + i, len);
    }
}

const char *path_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int parse_long(const char *s, long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s)
        return -1;
    *out = v;
    return 0;
}

int parse_seconds(const char *s, double *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || v != v)
        return -1;
    *out = v;
    return 0;
}

/* open_regular's second half: pfd is an O_PATH descriptor of the file (closed here). */
static int reopen_regular(int pfd, const char *path, struct stat *st)
{
    if (fstat(pfd, st) < 0) {
        int e = errno;
        close(pfd);
        return -e;
    }
    if (!S_ISREG(st->st_mode)) {
        close(pfd);
        return -EINVAL;
    }
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
    int fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int e = errno;
    if (fd < 0 && e == ENOENT && path) {
        /* No /proc: open the name again, and keep it only if it is still that file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        e = errno;
    }
    close(pfd);
    if (fd < 0)
        return -e;
    struct stat now;
    if (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) || now.st_dev != st->st_dev ||
        now.st_ino != st->st_ino) {
        close(fd);
        return -EINVAL;
    }
    /* Reads of a regular file never block; the flag only kept the open from doing so. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *st = now;
    return fd;
}

int open_regular(const char *path, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    int pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    return reopen_regular(pfd, path, st);
}

int open_regular_in(const char *root, const char *path, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*path == '/')
        path++;
    int pfd = (int)syscall(SYS_openat2, dir, *path ? path : ".", &how, sizeof(how));
    int e = errno;
    close(dir);
    if (pfd < 0)
        return -e;
    /* No name to open again: a root needs /proc/self/fd (there is one, or no openat2). */
    return reopen_regular(pfd, NULL, st);
}

const char *file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a FIFO";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "not a regular file";
    }
}
