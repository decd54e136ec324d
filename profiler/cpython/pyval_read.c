/*
 * Reading the target's objects for the value renderer: every read counted
 * against a value's budget (PYVAL_MAX_READS), object headers read in
 * batches and kept for the frame, and type objects classified (by address
 * where the interpreter exports it, else by name and subclass flags) and
 * remembered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/pyval.h"
#include "profiler/cpython/pyval_impl.h"

/* Type objects remembered. */
#define TYPES_MAX 1024
/* How far up tp_base a subclass of float or set is looked for. */
#define BASE_DEPTH 4
#define TPFLAGS_HEAPTYPE (1ul << 9)

/* Each kind's type name, as tp_name spells the built-in type. */
static const char *const kind_names[VK_COUNT] = {
    [VK_OTHER] = "", [VK_NONE] = "NoneType", [VK_BOOL] = "bool", [VK_INT] = "int",
    [VK_INT27] = "int", [VK_LONG27] = "long", [VK_FLOAT] = "float", [VK_STR] = "str",
    [VK_UNICODE27] = "unicode", [VK_BYTES] = "bytes", [VK_TUPLE] = "tuple", [VK_LIST] = "list",
    [VK_DICT] = "dict", [VK_SET] = "set", [VK_FROZENSET] = "frozenset", [VK_CELL] = "cell",
};

/* A kind's built-in type name on this version (2.7 calls bytes str). */
static const char *canon_name(const struct pyval *pv, enum vkind kind)
{
    return pyval_bytes27(pv) && kind == VK_BYTES ? "str" : kind_names[kind];
}

/* ---- reading -------------------------------------------------------------- */

/* 1 while the value being rendered may still make n reads. */
int pyval_can_read_n(const struct pyval *pv, uint64_t n)
{
    return pv->unbounded || mem_read_calls(pv->m) - pv->value_reads + n <= PYVAL_MAX_READS;
}

static int can_read(const struct pyval *pv)
{
    return pyval_can_read_n(pv, 1);
}

static int rd(struct pyval *pv, uint64_t addr, void *buf, size_t len)
{
    if (!can_read(pv))
        return -ENOSPC;
    return mem_read(pv->m, addr, buf, len);
}

const struct objhdr *pyval_pre_find(const struct pyval *pv, uint64_t addr)
{
    for (size_t i = 0; i < pv->npre; i++)
        if (pv->pre[i].addr == addr)
            return &pv->pre[i];
    return NULL;
}

/* 1 for the objects known by address alone (None, True, False): never read. */
static int is_singleton(const struct pyval *pv, uint64_t obj)
{
    const uint64_t *k = pv->rt->known;
    return obj && (obj == k[PYK_NONE] || obj == k[PYK_TRUE] || obj == k[PYK_FALSE]);
}

/*
 * Reads the headers of objs[0..n) in one batch into the cache (objects
 * already there, NULL and singletons are skipped).  Pieces that fail are
 * read again one by one, smaller, when needed.
 */
void pyval_prefetch(struct pyval *pv, const uint64_t *objs, size_t n)
{
    size_t first = pv->npre, k = 0;
    if (!can_read(pv))
        return;
    struct mem_iov *iov = xmalloc((n + 1) * sizeof(*iov));
    for (size_t i = 0; i < n && pv->npre + k < PYVAL_PRE_MAX; i++) {
        uint64_t a = objs[i];
        int dup = !a || is_singleton(pv, a) || pyval_pre_find(pv, a) != NULL;
        for (size_t j = 0; j < k && !dup; j++)
            dup = pv->pre[first + j].addr == a;
        if (dup)
            continue;
        struct objhdr *h = &pv->pre[first + k];
        h->addr = a;
        h->len = PYVAL_HDR;
        iov[k++] = (struct mem_iov){a, h->b, PYVAL_HDR, 0};
    }
    if (k && mem_readv(pv->m, iov, k) >= 0) {
        for (size_t j = 0; j < k; j++)
            if (iov[j].ok)
                pv->pre[pv->npre++] = pv->pre[first + j];
    }
    free(iov);
}

/* The first bytes of obj: from the cache, else read (smaller when a full header fails). */
int pyval_hdr(struct pyval *pv, uint64_t obj, struct objhdr *h)
{
    const struct objhdr *c = pyval_pre_find(pv, obj);
    if (c) {
        *h = *c;
        return 0;
    }
    static const size_t sizes[] = {PYVAL_HDR, 32, 16};
    int ret = -EFAULT;
    h->addr = obj;
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        if ((ret = rd(pv, obj, h->b, sizes[i])) == 0) {
            h->len = sizes[i];
            return 0;
        }
        if (ret == -ENOSPC)
            break;
    }
    return ret;
}

/* len bytes at addr, from h when it holds them, else read. */
int pyval_bytes_at(struct pyval *pv, const struct objhdr *h, uint64_t addr, void *out, size_t len)
{
    if (addr >= h->addr && addr - h->addr <= h->len && len <= h->len - (addr - h->addr)) {
        memcpy(out, h->b + (addr - h->addr), len);
        return 0;
    }
    return rd(pv, addr, out, len);
}

int pyval_field(struct pyval *pv, const struct objhdr *h, int off, void *out, size_t len)
{
    if (off < 0)
        return -EINVAL;
    return pyval_bytes_at(pv, h, h->addr + (uint64_t)off, out, len);
}

int pyval_field_i64(struct pyval *pv, const struct objhdr *h, int off, int64_t *v)
{
    return pyval_field(pv, h, off, v, 8);
}

int pyval_field_u64(struct pyval *pv, const struct objhdr *h, int off, uint64_t *v)
{
    return pyval_field(pv, h, off, v, 8);
}

/* ---- types ---------------------------------------------------------------- */

static void set_name(struct vtype *t, const char *s, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    sb_add_utf8(&sb, s, n);
    for (size_t i = 0; i < sb.len; i++)
        if ((unsigned char)sb.buf[i] < 0x20 || sb.buf[i] == 0x7f)
            sb.buf[i] = '?';
    snprintf(t->name, sizeof(t->name), "%s", sb_str(&sb));
    sb_release(&sb);
}

static enum vkind kind_of_known(const struct pyval *pv, uint64_t type)
{
    static const struct {
        enum known_object k;
        enum vkind v;
    } map[] = {
        {PYK_BOOL, VK_BOOL}, {PYK_FLOAT, VK_FLOAT}, {PYK_TUPLE, VK_TUPLE}, {PYK_LIST, VK_LIST},
        {PYK_DICT, VK_DICT}, {PYK_SET, VK_SET}, {PYK_FROZENSET, VK_FROZENSET},
        {PYK_CELL, VK_CELL}, {PYK_BYTES, VK_BYTES},
    };
    const uint64_t *k = pv->rt->known;
    if (!type)
        return VK_OTHER;
    if (type == k[PYK_INT])
        return pyval_int27(pv) ? VK_INT27 : VK_INT;
    if (type == k[PYK_STR])
        return pyval_bytes27(pv) ? VK_BYTES : VK_STR;
    if (pyval_int27(pv) && type == k[PYK_LONG27])
        return VK_LONG27;
    if (pyval_bytes27(pv) && type == k[PYK_UNICODE27])
        return VK_UNICODE27;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (type == k[map[i].k])
            return map[i].v;
    return VK_OTHER;
}

/* The kind a type's subclass flags (or, for types without one, its name) give. */
static enum vkind kind_of_flags(const struct pyval *pv, uint64_t flags, const char *name)
{
    if (pyval_int27(pv) && (flags & (1ul << 23)))
        return strcmp(name, "bool") == 0 ? VK_BOOL : VK_INT27;
    if (flags & (1ul << 24))
        return pyval_int27(pv) ? VK_LONG27 : strcmp(name, "bool") == 0 ? VK_BOOL : VK_INT;
    if (flags & (1ul << 25))
        return VK_LIST;
    if (flags & (1ul << 26))
        return VK_TUPLE;
    if (flags & (1ul << 27))
        return VK_BYTES; /* 2.7: str */
    if (flags & (1ul << 28))
        return pyval_bytes27(pv) ? VK_UNICODE27 : VK_STR;
    if (flags & (1ul << 29))
        return VK_DICT;
    static const enum vkind by_name[] = {VK_FLOAT, VK_SET, VK_FROZENSET, VK_NONE, VK_CELL};
    for (size_t i = 0; i < ARRAY_SIZE(by_name); i++)
        if (strcmp(name, kind_names[by_name[i]]) == 0)
            return by_name[i];
    return VK_OTHER;
}

/* Reads a type object and classifies it; 0, -ENOSPC (out of reads) or -EFAULT. */
static int read_type(struct pyval *pv, struct vtype *t, int depth)
{
    const struct pylayout *l = pv->l;
    unsigned char b[272];
    size_t len = (size_t)MAX(l->tp_flags, l->tp_base) + 8;
    uint64_t name, flags, base = 0;
    char s[64];
    int ret;
    if (len > sizeof(b))
        return -EINVAL;
    if ((ret = rd(pv, t->addr, b, len)) < 0)
        return ret;
    memcpy(&name, b + l->tp_name, 8);
    memcpy(&flags, b + l->tp_flags, 8);
    if (l->tp_base >= 0)
        memcpy(&base, b + l->tp_base, 8);
    /* A short name may sit at the end of a mapping: shrink the read until it works. */
    ret = -EFAULT;
    for (size_t n = sizeof(s); n >= 8 && ret < 0; n /= 2)
        if ((ret = rd(pv, name, s, n)) == -ENOSPC)
            return ret;
        else if (ret == 0)
            s[n - 1] = 0;
    if (ret < 0)
        return ret;
    set_name(t, s, strlen(s));
    t->ok = 1;
    t->kind = kind_of_flags(pv, flags, t->name);
    t->exact = t->kind != VK_OTHER && !(flags & TPFLAGS_HEAPTYPE) &&
               strcmp(t->name, canon_name(pv, t->kind)) == 0;
    /* Float and set have no subclass flag: look at the bases. */
    if (t->kind == VK_OTHER && base && depth < BASE_DEPTH) {
        enum vkind bk = pyval_type_info(pv, base, depth + 1).kind;
        if (bk == VK_FLOAT || bk == VK_SET || bk == VK_FROZENSET)
            t->kind = bk;
    }
    return 0;
}

struct vtype pyval_type_info(struct pyval *pv, uint64_t type, int depth)
{
    static const struct vtype unreadable = {0, VK_OTHER, 0, 0, "?"};
    for (size_t i = 0; i < pv->ntypes; i++)
        if (pv->types[i].addr == type)
            return pv->types[i];
    struct vtype t = {.addr = type, .kind = kind_of_known(pv, type)};
    if (t.kind != VK_OTHER) {
        t.exact = t.ok = 1;
        snprintf(t.name, sizeof(t.name), "%s", canon_name(pv, t.kind));
    } else if (read_type(pv, &t, depth) == -ENOSPC) {
        return unreadable; /* not remembered: another value may read it */
    } else if (!t.ok) {
        snprintf(t.name, sizeof(t.name), "?");
    }
    if (pv->ntypes >= TYPES_MAX)
        pv->ntypes = 0;
    GROW(pv->types, pv->tcap, pv->ntypes + 1);
    pv->types[pv->ntypes++] = t;
    return t;
}

struct vtype pyval_type_of(struct pyval *pv, const struct objhdr *h)
{
    uint64_t type = 0;
    if (pyval_field_u64(pv, h, pv->l->ob_type, &type) < 0)
        type = 0;
    return pyval_type_info(pv, type, 0);
}
