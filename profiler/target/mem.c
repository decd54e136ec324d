#include "profiler/target/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "profiler/target/core.h"
#include "profiler/target/mem_impl.h"
#include "profiler/target/proc.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

struct mem *mem_new_pid(pid_t pid)
{
    struct mem *m = xcalloc(1, sizeof(*m));
    m->pid = pid;
    m->tasks_pid = pid;
    return m;
}

int mem_open_core(const char *path, const char *exe, struct mem **out, struct pserr *err)
{
    return mem_open_core_in(path, exe, NULL, out, err);
}

int mem_open_core_in(const char *path, const char *exe, const char *root, struct mem **out,
                     struct pserr *err)
{
    struct core *c;
    int ret = core_open_in(path, exe, root, &c, err);
    if (ret < 0)
        return ret;
    struct mem *m = xcalloc(1, sizeof(*m));
    m->core = c;
    *out = m;
    return 0;
}

struct core *mem_core(struct mem *m)
{
    return m->core;
}

const struct core_psinfo *mem_core_psinfo(struct mem *m)
{
    return m->core ? core_psinfo(m->core) : NULL;
}

pid_t mem_pid(const struct mem *m)
{
    return m->core ? core_pid(m->core) : m->pid;
}

void mem_cmdline(struct mem *m, struct strbuf *out)
{
    if (!m->core) {
        proc_cmdline(m->pid, out);
        return;
    }
    const struct core_psinfo *ps = core_psinfo(m->core);
    if (!ps)
        return;
    /* The same cleaning as a live command line: control bytes as '?'. */
    for (const char *p = ps->args[0] ? ps->args : ps->fname; *p; p++)
        sb_addc(out, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
}

int mem_is_exe(struct mem *m, const char *path)
{
    if (!m->core)
        return m->pid > 0 && proc_is_exe(m->pid, path);
    const char *exe = core_exe(m->core);
    return exe && strcmp(exe, path) == 0;
}

int mem_open_mapped(struct mem *m, const struct mem_region *r)
{
    if (m->core)
        return core_open_mapped(m->core, r, &m->core_err);
    if (m->pid <= 0)
        return -ENOENT;
    return proc_open_mapped(m->pid, r, proc_is_exe(m->pid, r->path));
}

const char *mem_mapped_error(const struct mem *m)
{
    return m->core && m->core_err.msg[0] ? m->core_err.msg : NULL;
}

struct mem *mem_new_buffer(void)
{
    return xcalloc(1, sizeof(struct mem));
}

int mem_buffer_add(struct mem *m, uint64_t addr, const void *data, size_t len)
{
    if (m->pid > 0 || m->core || len == 0 || addr + len < addr)
        return -EINVAL;
    for (size_t i = 0; i < m->nsegs; i++) {
        struct buf_seg *s = &m->segs[i];
        if (addr < s->addr + s->len && s->addr < addr + len)
            return -EINVAL;
    }
    GROW(m->segs, m->segcap, m->nsegs + 1);
    struct buf_seg *s = &m->segs[m->nsegs++];
    s->addr = addr;
    s->len = len;
    s->data = xmalloc(len);
    memcpy(s->data, data, len);
    m->maps_read = 0;
    return 0;
}

void mem_buffer_on_piece(struct mem *m, void (*fn)(void *ctx, struct mem *m, size_t i, size_t n),
                         void *ctx)
{
    m->on_piece = fn;
    m->on_piece_ctx = ctx;
}

void mem_buffer_on_read(struct mem *m, void (*fn)(void *ctx, struct mem *m, uint64_t calls),
                        void *ctx)
{
    m->on_read = fn;
    m->on_read_ctx = ctx;
}

int mem_buffer_write(struct mem *m, uint64_t addr, const void *data, size_t len)
{
    if (m->pid > 0 || m->core || addr + len < addr)
        return -EINVAL;
    for (size_t i = 0; i < m->nsegs; i++) {
        struct buf_seg *s = &m->segs[i];
        if (addr >= s->addr && addr - s->addr <= s->len && len <= s->len - (addr - s->addr)) {
            memcpy(s->data + (addr - s->addr), data, len);
            return 0;
        }
    }
    return -EFAULT;
}

void mem_maps_release(struct mem_maps *maps)
{
    for (size_t i = 0; i < maps->n; i++)
        free(maps->v[i].path);
    free(maps->v);
    maps->v = NULL;
    maps->n = 0;
}

void mem_free(struct mem *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsegs; i++)
        free(m->segs[i].data);
    free(m->segs);
    mem_maps_release(&m->maps);
    core_free(m->core);
    free(m->local);
    free(m->remote);
    free(m->idx);
    free(m->fake);
    free(m);
}

static int buffer_read(const struct mem *m, uint64_t addr, void *buf, size_t len)
{
    for (size_t i = 0; i < m->nsegs; i++) {
        struct buf_seg *s = &m->segs[i];
        if (addr >= s->addr && addr - s->addr <= s->len && len <= s->len - (addr - s->addr)) {
            memcpy(buf, s->data + (addr - s->addr), len);
            return 0;
        }
    }
    return -EFAULT;
}

int mem_read(struct mem *m, uint64_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (addr + len < addr)
        return -EFAULT;
    if (m->core) {
        m->calls++;
        return core_read(m->core, addr, buf, len);
    }
    if (m->pid <= 0) {
        m->calls++;
        int ret = buffer_read(m, addr, buf, len);
        if (m->on_read)
            m->on_read(m->on_read_ctx, m, m->calls);
        return ret;
    }
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    m->calls++;
    ssize_t r = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
    if (r == (ssize_t)len)
        return 0;
    if (r >= 0)
        return -EFAULT;
    return -errno;
}

int mem_readv(struct mem *m, struct mem_iov *iov, size_t n)
{
    int good = 0;
    if (m->core) {
        m->calls++;
        for (size_t i = 0; i < n; i++) {
            iov[i].ok = iov[i].len == 0 || core_read(m->core, iov[i].addr, iov[i].buf, iov[i].len) == 0;
            good += iov[i].ok;
        }
        return good;
    }
    if (m->pid <= 0) {
        /* Counted as one call, as process_vm_readv would be. */
        m->calls++;
        for (size_t i = 0; i < n; i++) {
            iov[i].ok = iov[i].len == 0 || buffer_read(m, iov[i].addr, iov[i].buf, iov[i].len) == 0;
            good += iov[i].ok;
            if (m->on_piece)
                m->on_piece(m->on_piece_ctx, m, i, n);
        }
        if (m->on_read)
            m->on_read(m->on_read_ctx, m, m->calls);
        return good;
    }
    if (!m->local) {
        m->local = xmalloc(IOV_MAX * sizeof(*m->local));
        m->remote = xmalloc(IOV_MAX * sizeof(*m->remote));
        m->idx = xmalloc(IOV_MAX * sizeof(*m->idx));
    }
    struct iovec *local = m->local, *remote = m->remote;
    size_t *idx = m->idx;
    size_t i = 0;
    while (i < n) {
        /* Gather up to IOV_MAX non-empty pieces starting at i. */
        size_t k = 0, j = i;
        for (; j < n && k < IOV_MAX; j++) {
            if (iov[j].len == 0) {
                iov[j].ok = 1;
                good++;
                continue;
            }
            local[k].iov_base = iov[j].buf;
            local[k].iov_len = iov[j].len;
            remote[k].iov_base = (void *)(uintptr_t)iov[j].addr;
            remote[k].iov_len = iov[j].len;
            idx[k++] = j;
        }
        if (k == 0)
            break;
        m->calls++;
        ssize_t r = process_vm_readv(m->pid, local, (unsigned long)k, remote, (unsigned long)k, 0);
        if (r < 0 && errno != EFAULT && errno != ENOMEM)
            return -errno;
        /* Pieces are never split: the ones that fit in r bytes were read, the
         * next one failed, and the call stopped there. */
        size_t done = 0, p = 0;
        if (r > 0) {
            for (; p < k && done + local[p].iov_len <= (size_t)r; p++) {
                done += local[p].iov_len;
                iov[idx[p]].ok = 1;
                good++;
            }
        }
        if (p < k) {
            iov[idx[p]].ok = 0;
            p++;
        }
        i = p < k ? idx[p] : j;
    }
    return good;
}

static int parse_maps_line(const char *line, struct mem_region *r)
{
    unsigned long long start, end, off, inode;
    unsigned maj, min;
    char perms[8];
    int n = 0;
    /* No whitespace directive after the inode: it would also skip the newline
     * that ends an anonymous mapping's line and take the next line as its path. */
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end, perms, &off, &maj, &min,
               &inode, &n) < 7 || n == 0)
        return -EINVAL;
    if (end < start)
        return -EINVAL;
    r->start = start;
    r->end = end;
    r->offset = off;
    r->dev_major = maj;
    r->dev_minor = min;
    r->inode = inode;
    r->perms = (perms[0] == 'r' ? MEM_R : 0) | (perms[1] == 'w' ? MEM_W : 0) |
               (perms[2] == 'x' ? MEM_X : 0);
    const char *p = line + n;
    p += strspn(p, " \t");
    size_t len = strcspn(p, "\n");
    r->path = xstrndup(p, len);
    return 0;
}

int mem_parse_maps(const char *text, struct mem_maps *maps)
{
    size_t cap = 0;
    maps->v = NULL;
    maps->n = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (*line != '\n') {
            struct mem_region r;
            if (parse_maps_line(line, &r) < 0) {
                mem_maps_release(maps);
                return -EINVAL;
            }
            GROW(maps->v, cap, maps->n + 1);
            maps->v[maps->n++] = r;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int read_proc_maps(pid_t pid, struct mem_maps *maps)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct strbuf sb = STRBUF_INIT;
    int ret = 0;
    for (;;) {
        sb_grow(&sb, 65536);
        ssize_t r = read(fd, sb.buf + sb.len, 65536);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            break;
        }
        if (r == 0)
            break;
        sb.len += (size_t)r;
        sb.buf[sb.len] = '\0';
        if (sb.len > (64u << 20)) { /* a sane process has far fewer mappings */
            ret = -E2BIG;
            break;
        }
    }
    close(fd);
    if (ret == 0)
        ret = mem_parse_maps(sb_str(&sb), maps);
    sb_release(&sb);
    return ret;
}

static int region_cmp(const void *a, const void *b)
{
    const struct mem_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int mem_refresh_maps(struct mem *m, const struct mem_maps **out)
{
    struct mem_maps fresh = {NULL, 0};
    if (m->core) {
        int ret = core_maps(m->core, &fresh);
        if (ret < 0)
            return ret;
    } else if (m->pid > 0) {
        int ret = read_proc_maps(m->pid, &fresh);
        if (ret < 0)
            return ret;
    } else {
        fresh.v = xcalloc(m->nsegs ? m->nsegs : 1, sizeof(*fresh.v));
        for (size_t i = 0; i < m->nsegs; i++) {
            struct mem_region *r = &fresh.v[i];
            r->start = m->segs[i].addr;
            r->end = m->segs[i].addr + m->segs[i].len;
            r->perms = MEM_R | MEM_W;
            r->path = xstrdup("");
        }
        fresh.n = m->nsegs;
        qsort(fresh.v, fresh.n, sizeof(*fresh.v), region_cmp);
    }
    mem_maps_release(&m->maps);
    m->maps = fresh;
    m->maps_read = 1;
    if (out)
        *out = &m->maps;
    return 0;
}

const struct mem_maps *mem_maps(struct mem *m)
{
    if (!m->maps_read)
        mem_refresh_maps(m, NULL);
    return &m->maps;
}

const struct mem_region *mem_find_region(struct mem *m, uint64_t addr)
{
    const struct mem_maps *maps = mem_maps(m);
    /* Mappings are sorted by address in /proc/PID/maps: binary search. */
    size_t lo = 0, hi = maps->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct mem_region *r = &maps->v[mid];
        if (addr < r->start)
            hi = mid;
        else if (addr >= r->end)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

int mem_readable(struct mem *m, uint64_t addr, size_t len)
{
    uint64_t end = addr + len;
    if (end < addr)
        return 0;
    while (addr < end) {
        const struct mem_region *r = mem_find_region(m, addr);
        if (!r || !(r->perms & MEM_R))
            return 0;
        addr = r->end;
    }
    return 1;
}

uint64_t mem_read_calls(const struct mem *m)
{
    return m->calls;
}
