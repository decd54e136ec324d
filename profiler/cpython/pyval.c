#include "profiler/cpython/pyval.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/pyobj.h"

/*
 * Bytes read at the start of an object: enough for the header of every type
 * shown, a short ASCII str's characters, a small int's digits and a small
 * tuple's items, so that most values cost a single read.
 */
#define HDR 128
/* Object headers kept from batched reads (one frame's worth). */
#define PRE_MAX 512
/* Entry slots of a dict or set looked at for its first items. */
#define SLOTS_MAX 64
/* Characters of a variable's name. */
#define NAME_MAX_CHARS 256
/* Type objects remembered. */
#define TYPES_MAX 1024
/* How far up tp_base a subclass of float or set is looked for. */
#define BASE_DEPTH 4

#define TPFLAGS_HEAPTYPE (1ul << 9)
#define CO_VARARGS 0x04
#define CO_VARKEYWORDS 0x08
#define CO_FAST_HIDDEN 0x10
#define CO_FAST_CELL 0x40
#define CO_FAST_FREE 0x80

enum vkind {
    VK_OTHER, VK_NONE, VK_BOOL, VK_INT, VK_INT27, VK_LONG27, VK_FLOAT, VK_STR, VK_UNICODE27,
    VK_BYTES, VK_TUPLE, VK_LIST, VK_DICT, VK_SET, VK_FROZENSET, VK_CELL, VK_COUNT
};

/* Each kind's type name, as tp_name spells the built-in type. */
static const char *const kind_names[VK_COUNT] = {
    [VK_OTHER] = "", [VK_NONE] = "NoneType", [VK_BOOL] = "bool", [VK_INT] = "int",
    [VK_INT27] = "int", [VK_LONG27] = "long", [VK_FLOAT] = "float", [VK_STR] = "str",
    [VK_UNICODE27] = "unicode", [VK_BYTES] = "bytes", [VK_TUPLE] = "tuple", [VK_LIST] = "list",
    [VK_DICT] = "dict", [VK_SET] = "set", [VK_FROZENSET] = "frozenset", [VK_CELL] = "cell",
};

struct vtype {
    uint64_t addr;
    enum vkind kind;
    int exact;          /* the built-in type itself, not a subclass */
    int ok;             /* the type object could be read */
    char name[64];      /* printable UTF-8 */
};

/* The first bytes of an object. */
struct objhdr {
    uint64_t addr;
    size_t len;
    unsigned char b[HDR];
};

struct pyval {
    struct pyrt *rt;
    const struct pylayout *l;
    struct mem *m;
    uint64_t value_reads;   /* mem_read_calls when the value being rendered started */
    int unbounded;          /* reading a frame: no per-value bound */
    struct objhdr *pre;
    size_t npre;
    struct vtype *types;
    size_t ntypes, tcap;
};

/* 2.7: str is bytes, and unicode a type apart. */
static int bytes27(const struct pyval *pv)
{
    return pv->l->strings == STR_BYTES27;
}

/* 2.7: int is a PyIntObject, long a type apart. */
static int int27(const struct pyval *pv)
{
    return pv->l->int27_ival >= 0;
}

/* A kind's built-in type name on this version (2.7 calls bytes str). */
static const char *canon_name(const struct pyval *pv, enum vkind kind)
{
    return bytes27(pv) && kind == VK_BYTES ? "str" : kind_names[kind];
}

struct pyval *pyval_new(struct pyrt *rt)
{
    struct pyval *pv = xcalloc(1, sizeof(*pv));
    pv->rt = rt;
    pv->l = &rt->layout;
    pv->m = rt->mem;
    pv->pre = xmalloc(PRE_MAX * sizeof(*pv->pre));
    return pv;
}

void pyval_free(struct pyval *pv)
{
    if (!pv)
        return;
    free(pv->pre);
    free(pv->types);
    free(pv);
}

const char *pylocal_kind_name(enum pylocal_kind k)
{
    switch (k) {
    case PYLOCAL_ARG: return "arg";
    case PYLOCAL_CELL: return "cell";
    case PYLOCAL_FREE: return "free";
    default: return "local";
    }
}

void pylocals_release(struct pylocals *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->v[i].name);
        free(ls->v[i].value);
    }
    free(ls->v);
    memset(ls, 0, sizeof(*ls));
}

/* ---- reading -------------------------------------------------------------- */

/* 1 while the value being rendered may still make n reads. */
static int can_read_n(const struct pyval *pv, uint64_t n)
{
    return pv->unbounded || mem_read_calls(pv->m) - pv->value_reads + n <= PYVAL_MAX_READS;
}

static int can_read(const struct pyval *pv)
{
    return can_read_n(pv, 1);
}

static int rd(struct pyval *pv, uint64_t addr, void *buf, size_t len)
{
    if (!can_read(pv))
        return -ENOSPC;
    return mem_read(pv->m, addr, buf, len);
}

static const struct objhdr *pre_find(const struct pyval *pv, uint64_t addr)
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
static void prefetch(struct pyval *pv, const uint64_t *objs, size_t n)
{
    size_t first = pv->npre, k = 0;
    if (!can_read(pv))
        return;
    struct mem_iov *iov = xmalloc((n + 1) * sizeof(*iov));
    for (size_t i = 0; i < n && pv->npre + k < PRE_MAX; i++) {
        uint64_t a = objs[i];
        int dup = !a || is_singleton(pv, a) || pre_find(pv, a) != NULL;
        for (size_t j = 0; j < k && !dup; j++)
            dup = pv->pre[first + j].addr == a;
        if (dup)
            continue;
        struct objhdr *h = &pv->pre[first + k];
        h->addr = a;
        h->len = HDR;
        iov[k++] = (struct mem_iov){a, h->b, HDR, 0};
    }
    if (k && mem_readv(pv->m, iov, k) >= 0) {
        for (size_t j = 0; j < k; j++)
            if (iov[j].ok)
                pv->pre[pv->npre++] = pv->pre[first + j];
    }
    free(iov);
}

/* The first bytes of obj: from the cache, else read (smaller when a full header fails). */
static int hdr_get(struct pyval *pv, uint64_t obj, struct objhdr *h)
{
    const struct objhdr *c = pre_find(pv, obj);
    if (c) {
        *h = *c;
        return 0;
    }
    static const size_t sizes[] = {HDR, 32, 16};
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
static int bytes_at(struct pyval *pv, const struct objhdr *h, uint64_t addr, void *out, size_t len)
{
    if (addr >= h->addr && addr - h->addr <= h->len && len <= h->len - (addr - h->addr)) {
        memcpy(out, h->b + (addr - h->addr), len);
        return 0;
    }
    return rd(pv, addr, out, len);
}

static int field(struct pyval *pv, const struct objhdr *h, int off, void *out, size_t len)
{
    if (off < 0)
        return -EINVAL;
    return bytes_at(pv, h, h->addr + (uint64_t)off, out, len);
}

static int field_i64(struct pyval *pv, const struct objhdr *h, int off, int64_t *v)
{
    return field(pv, h, off, v, 8);
}

static int field_u64(struct pyval *pv, const struct objhdr *h, int off, uint64_t *v)
{
    return field(pv, h, off, v, 8);
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
        return int27(pv) ? VK_INT27 : VK_INT;
    if (type == k[PYK_STR])
        return bytes27(pv) ? VK_BYTES : VK_STR;
    if (int27(pv) && type == k[PYK_LONG27])
        return VK_LONG27;
    if (bytes27(pv) && type == k[PYK_UNICODE27])
        return VK_UNICODE27;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (type == k[map[i].k])
            return map[i].v;
    return VK_OTHER;
}

/* The kind a type's subclass flags (or, for types without one, its name) give. */
static enum vkind kind_of_flags(const struct pyval *pv, uint64_t flags, const char *name)
{
    if (int27(pv) && (flags & (1ul << 23)))
        return strcmp(name, "bool") == 0 ? VK_BOOL : VK_INT27;
    if (flags & (1ul << 24))
        return int27(pv) ? VK_LONG27 : strcmp(name, "bool") == 0 ? VK_BOOL : VK_INT;
    if (flags & (1ul << 25))
        return VK_LIST;
    if (flags & (1ul << 26))
        return VK_TUPLE;
    if (flags & (1ul << 27))
        return VK_BYTES; /* 2.7: str */
    if (flags & (1ul << 28))
        return bytes27(pv) ? VK_UNICODE27 : VK_STR;
    if (flags & (1ul << 29))
        return VK_DICT;
    static const enum vkind by_name[] = {VK_FLOAT, VK_SET, VK_FROZENSET, VK_NONE, VK_CELL};
    for (size_t i = 0; i < ARRAY_SIZE(by_name); i++)
        if (strcmp(name, kind_names[by_name[i]]) == 0)
            return by_name[i];
    return VK_OTHER;
}

/* Types are returned by value: the cache moves as it grows. */
static struct vtype type_info_depth(struct pyval *pv, uint64_t type, int depth);

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
        enum vkind bk = type_info_depth(pv, base, depth + 1).kind;
        if (bk == VK_FLOAT || bk == VK_SET || bk == VK_FROZENSET)
            t->kind = bk;
    }
    return 0;
}

static struct vtype type_info_depth(struct pyval *pv, uint64_t type, int depth)
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

static struct vtype type_of(struct pyval *pv, const struct objhdr *h)
{
    uint64_t type = 0;
    if (field_u64(pv, h, pv->l->ob_type, &type) < 0)
        type = 0;
    return type_info_depth(pv, type, 0);
}

/* ---- scalars -------------------------------------------------------------- */

/* Takes out back to len bytes. */
static void cut_back(struct strbuf *out, size_t len)
{
    if (out->buf && len < out->len) {
        out->len = len;
        out->buf[len] = 0;
    }
}

static int bit_length(uint32_t v)
{
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/*
 * Appends the decimal form of the magnitude in 30-bit digits d[0..nd)
 * (least significant first), or returns -ERANGE when it has more than
 * PYVAL_MAX_DIGITS digits.
 */
static int digits_decimal(const uint32_t *d, size_t nd, struct strbuf *out)
{
    uint32_t a[8];
    uint32_t chunks[16];
    size_t nc = 0;
    if (nd > ARRAY_SIZE(a))
        return -ERANGE;
    memcpy(a, d, nd * sizeof(*a));
    while (nd > 0 && nc < ARRAY_SIZE(chunks)) {
        uint64_t rem = 0;
        for (size_t i = nd; i-- > 0;) {
            uint64_t cur = rem << 30 | a[i];
            a[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nc++] = (uint32_t)rem;
        while (nd > 0 && a[nd - 1] == 0)
            nd--;
    }
    char buf[160];
    int len = snprintf(buf, sizeof(buf), "%" PRIu32, chunks[nc - 1]);
    for (size_t i = nc - 1; i-- > 0 && len > 0 && (size_t)len < sizeof(buf) - 10;)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%09" PRIu32, chunks[i]);
    if (len <= 0 || len > PYVAL_MAX_DIGITS)
        return -ERANGE;
    sb_add(out, buf, (size_t)len);
    return 0;
}

/* A 3.x int, or a 2.7 long (suffix "L"): 30-bit digits. */
static int render_long(struct pyval *pv, const struct objhdr *h, const char *suffix,
                       struct strbuf *out)
{
    const struct pylayout *l = pv->l;
    int64_t size;
    int negative;
    uint64_t nd;
    if (field_i64(pv, h, l->long_size, &size) < 0)
        return -EFAULT;
    if (l->long_tagged) {
        /* lv_tag: digit count << 3, sign in the low bits (0 positive, 1 zero, 2 negative). */
        uint64_t tag = (uint64_t)size;
        if ((tag & 3) == 3 || ((tag & 3) == 1 && (tag >> 3) != 0))
            return -EINVAL;
        negative = (tag & 3) == 2;
        nd = tag >> 3;
    } else {
        negative = size < 0;
        nd = size < 0 ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    }
    if (nd == 0) {
        sb_adds(out, "0");
        sb_adds(out, suffix);
        return 0;
    }
    if (nd > (1u << 28))
        return -EINVAL;
    uint64_t digits = h->addr + (uint64_t)l->long_digit;
    uint32_t d[8];
    if (nd <= ARRAY_SIZE(d)) {
        if (bytes_at(pv, h, digits, d, nd * 4) < 0)
            return -EFAULT;
        for (size_t i = 0; i < nd; i++)
            if (d[i] >> 30)
                return -EINVAL;
        if (d[nd - 1] == 0)
            return -EINVAL;
        size_t mark = out->len;
        if (negative)
            sb_addc(out, '-');
        if (digits_decimal(d, nd, out) == 0) {
            sb_adds(out, suffix);
            return 0;
        }
        cut_back(out, mark);
    } else if (bytes_at(pv, h, digits + 4 * (nd - 1), d, 4) < 0) {
        return -EFAULT;
    } else if (d[0] == 0 || (d[0] >> 30)) {
        return -EINVAL;
    }
    uint32_t top = nd <= ARRAY_SIZE(d) ? d[nd - 1] : d[0];
    sb_addf(out, "<%sint of %" PRIu64 " bits>", negative ? "negative " : "",
            (nd - 1) * 30 + (uint64_t)bit_length(top));
    return 0;
}

static int render_int27(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    int64_t v;
    if (field_i64(pv, h, pv->l->int27_ival, &v) < 0)
        return -EFAULT;
    sb_addf(out, "%" PRId64, v);
    return 0;
}

/* True or False from an int's value, when the singletons' addresses are unknown. */
static int render_bool(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    int64_t v;
    int ret;
    if (int27(pv)) {
        ret = field_i64(pv, h, pv->l->int27_ival, &v);
    } else {
        uint32_t d;
        ret = field(pv, h, pv->l->long_digit, &d, 4);
        v = d;
        if (ret == 0 && !pv->l->long_tagged && field_i64(pv, h, pv->l->long_size, &v) == 0)
            v = v ? d : 0;
    }
    if (ret < 0)
        return -EFAULT;
    sb_adds(out, v ? "True" : "False");
    return 0;
}

void pyval_float_repr(double v, struct strbuf *out)
{
    if (isnan(v)) {
        sb_adds(out, "nan");
        return;
    }
    if (isinf(v)) {
        sb_adds(out, v < 0 ? "-inf" : "inf");
        return;
    }
    /* The fewest significant digits that read back as v, from %e. */
    char buf[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = buf;
    int negative = *p == '-';
    p += negative;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
    int exp10 = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    /* repr: the point after decpt digits; exponent form outside -4 < decpt <= 16. */
    int decpt = exp10 + 1;
    if (negative)
        sb_addc(out, '-');
    if (decpt <= -4 || decpt > 16) {
        sb_addc(out, digits[0]);
        if (nd > 1) {
            sb_addc(out, '.');
            sb_adds(out, digits + 1);
        }
        sb_addf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        sb_adds(out, "0.");
        for (int i = decpt; i < 0; i++)
            sb_addc(out, '0');
        sb_adds(out, digits);
    } else {
        for (int i = 0; i < decpt; i++)
            sb_addc(out, (size_t)i < nd ? digits[i] : '0');
        sb_addc(out, '.');
        sb_adds(out, (size_t)decpt < nd ? digits + decpt : "0");
    }
}

static int render_float(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    double v;
    if (field(pv, h, pv->l->float_fval, &v, 8) < 0)
        return -EFAULT;
    pyval_float_repr(v, out);
    return 0;
}

/* ---- strings -------------------------------------------------------------- */

/*
 * The first max characters (or bytes) of a str, 2.7 unicode or bytes object
 * into cps[], their number in *n and the object's whole length in *total.
 */
static int str_units(struct pyval *pv, const struct objhdr *h, enum vkind kind, uint32_t *cps,
                     size_t max, size_t *n, int64_t *total)
{
    const struct pylayout *l = pv->l;
    int64_t len;
    uint64_t data;
    int width = 1;
    if (kind == VK_BYTES) {
        if (field_i64(pv, h, l->bytes_size, &len) < 0)
            return -EFAULT;
        data = h->addr + (uint64_t)l->bytes_sval;
    } else if (kind == VK_UNICODE27) {
        if (field_i64(pv, h, l->uni_length, &len) < 0 || field_u64(pv, h, l->uni27_str, &data) < 0)
            return -EFAULT;
        width = pv->rt->unicode27_width;
    } else {
        uint32_t state;
        if (field_i64(pv, h, l->uni_length, &len) < 0 || field(pv, h, l->uni_state, &state, 4) < 0)
            return -EFAULT;
        width = (int)((state >> 2) & 7);
        int compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
        if ((width != 1 && width != 2 && width != 4) || (ascii && (width != 1 || !compact)))
            return -EINVAL;
        if (compact)
            data = h->addr + (uint64_t)(ascii ? l->uni_ascii_size : l->uni_compact_size);
        else if (field_u64(pv, h, l->uni_data_any, &data) < 0)
            return -EFAULT;
    }
    if (len < 0 || len > ((int64_t)1 << 40))
        return -EINVAL;
    size_t k = (size_t)MIN((uint64_t)len, (uint64_t)max);
    unsigned char *buf = xmalloc(k * (size_t)width + 1);
    int ret = k ? bytes_at(pv, h, data, buf, k * (size_t)width) : 0;
    if (ret == 0) {
        for (size_t i = 0; i < k; i++) {
            const unsigned char *u = buf + i * (size_t)width;
            cps[i] = width == 1 ? u[0] : width == 2 ? (uint32_t)(u[0] | u[1] << 8)
                                                    : (uint32_t)(u[0] | u[1] << 8 | u[2] << 16 |
                                                                 (uint32_t)u[3] << 24);
        }
        *n = k;
        *total = len;
    }
    free(buf);
    return ret < 0 ? -EFAULT : 0;
}

/* Python 3 prints these as escapes in a str's repr (a close approximation of
 * "not printable": controls, separators, format characters, surrogates,
 * private use). */
static int unprintable(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
           (c >= 0x205f && c <= 0x206f) || c == 0x3000 || (c >= 0xd800 && c <= 0xf8ff) ||
           c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0xfffe || c == 0xffff ||
           c >= 0xf0000;
}

/*
 * Appends cps[0..n) as Python's repr would quote them.  bytes: every unit is
 * a byte; ascii_only: 2.7 unicode, which escapes everything past ASCII.
 */
static void quote(const uint32_t *cps, size_t n, int bytes, int ascii_only, struct strbuf *out)
{
    int has_single = 0, has_double = 0;
    for (size_t i = 0; i < n; i++) {
        has_single |= cps[i] == '\'';
        has_double |= cps[i] == '"';
    }
    char q = has_single && !has_double ? '"' : '\'';
    sb_addc(out, q);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c == (uint32_t)q || c == '\\')
            sb_addf(out, "\\%c", (char)c);
        else if (c == '\t')
            sb_adds(out, "\\t");
        else if (c == '\n')
            sb_adds(out, "\\n");
        else if (c == '\r')
            sb_adds(out, "\\r");
        else if (c >= 0x20 && c < 0x7f)
            sb_addc(out, (char)c);
        else if (c < 0x100 && (bytes || ascii_only || unprintable(c)))
            sb_addf(out, "\\x%02x", c);
        else if (c < 0x10000 && (ascii_only || unprintable(c)))
            sb_addf(out, "\\u%04x", c);
        else if (ascii_only || unprintable(c))
            sb_addf(out, "\\U%08x", c);
        else
            utf8_put(out, c);
    }
    sb_addc(out, q);
}

/* Appends " (TYPE, N UNITS)" for a cut value, " (TYPE)" for a subclass's. */
static void suffix(const struct vtype *t, int cut, uint64_t count, const char *unit,
                   struct strbuf *out)
{
    if (cut)
        sb_addf(out, " (%s, %" PRIu64 " %s)", t->name, count, unit);
    else if (!t->exact)
        sb_addf(out, " (%s)", t->name);
}

static int render_str(struct pyval *pv, const struct objhdr *h, const struct vtype *t,
                      struct strbuf *out)
{
    uint32_t cps[PYVAL_MAX_CHARS];
    size_t n;
    int64_t total;
    int ret = str_units(pv, h, t->kind, cps, PYVAL_MAX_CHARS, &n, &total);
    if (ret < 0)
        return ret;
    if (t->kind == VK_UNICODE27)
        sb_addc(out, 'u');
    else if (t->kind == VK_BYTES && !bytes27(pv))
        sb_addc(out, 'b');
    quote(cps, n, t->kind == VK_BYTES, t->kind == VK_UNICODE27, out);
    if ((uint64_t)total > n)
        sb_adds(out, "...");
    suffix(t, (uint64_t)total > n, (uint64_t)total,
           t->kind == VK_BYTES ? "bytes" : "chars", out);
    return 0;
}

/* ---- containers ----------------------------------------------------------- */

static void render_depth(struct pyval *pv, uint64_t obj, int depth, struct strbuf *out);

/*
 * Renders items[0..n) separated by ", " (dict: key-value pairs when vals is
 * not NULL).  Returns how many were rendered before the reads ran out.
 */
static size_t render_items(struct pyval *pv, const uint64_t *items, const uint64_t *vals,
                           size_t n, int depth, struct strbuf *out)
{
    uint64_t all[2 * PYVAL_MAX_ITEMS] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        all[k++] = items[i];
        if (vals)
            all[k++] = vals[i];
    }
    prefetch(pv, all, k);
    for (size_t i = 0; i < n; i++) {
        if (!can_read(pv) && (!pre_find(pv, items[i]) || (vals && !pre_find(pv, vals[i]))))
            return i;
        if (i)
            sb_adds(out, ", ");
        render_depth(pv, items[i], depth + 1, out);
        if (vals) {
            sb_adds(out, ": ");
            render_depth(pv, vals[i], depth + 1, out);
        }
    }
    return n;
}

/* Tuples and lists. */
static int render_seq(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                      struct strbuf *out)
{
    const struct pylayout *l = pv->l;
    int tuple = t->kind == VK_TUPLE;
    int64_t size;
    uint64_t items[PYVAL_MAX_ITEMS];
    if (field_i64(pv, h, 16, &size) < 0)
        return -EFAULT;
    if (size < 0 || size > ((int64_t)1 << 40))
        return -EINVAL;
    size_t n = (size_t)MIN(size, PYVAL_MAX_ITEMS);
    if (depth >= PYVAL_MAX_DEPTH && size > 0) {
        sb_adds(out, tuple ? "(...)" : "[...]");
        return 0;
    }
    if (n) {
        uint64_t at = h->addr + (uint64_t)(tuple ? l->tuple_item : l->list_item);
        if (!tuple && field_u64(pv, h, l->list_item, &at) < 0)
            return -EFAULT;
        if (bytes_at(pv, h, at, items, n * 8) < 0)
            return -EFAULT;
    }
    sb_addc(out, tuple ? '(' : '[');
    size_t shown = render_items(pv, items, NULL, n, depth, out);
    if (shown < (size_t)size)
        sb_adds(out, shown ? ", ..." : "...");
    else if (tuple && size == 1)
        sb_addc(out, ',');
    sb_addc(out, tuple ? ')' : ']');
    suffix(t, shown < (size_t)size, (uint64_t)size, "items", out);
    return 0;
}

static int render_dict(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                       struct strbuf *out)
{
    int64_t used;
    if (field_i64(pv, h, pv->l->ma_used, &used) < 0)
        return -EFAULT;
    if (used < 0 || used > ((int64_t)1 << 40))
        return -EINVAL;
    uint64_t keys[PYVAL_MAX_ITEMS], vals[PYVAL_MAX_ITEMS];
    size_t n = 0;
    if (used > 0 && depth >= PYVAL_MAX_DEPTH) {
        sb_adds(out, "{...}");
        return 0;
    }
    /* pydict_entries_max reads up to five times (the dict, its keys and values). */
    if (used > 0 && can_read_n(pv, 5)) {
        struct pydict_entry *e;
        size_t ne;
        int ret = pydict_entries_max(pv->rt, h->addr, SLOTS_MAX, &e, &ne);
        if (ret == -EFAULT)
            return ret;
        for (size_t i = 0; ret == 0 && i < ne && n < PYVAL_MAX_ITEMS; i++, n++) {
            keys[n] = e[i].key;
            vals[n] = e[i].value;
        }
        if (ret == 0)
            free(e);
    }
    sb_addc(out, '{');
    size_t shown = render_items(pv, keys, vals, n, depth, out);
    if (shown < (size_t)used)
        sb_adds(out, shown ? ", ..." : "...");
    sb_addc(out, '}');
    suffix(t, shown < (size_t)used, (uint64_t)used, "items", out);
    return 0;
}

/* 2.7's deleted set entries hold a str "<dummy key>" (not exported). */
static int is_dummy27(struct pyval *pv, uint64_t key)
{
    static const char dummy[] = "<dummy key>";
    const struct pylayout *l = pv->l;
    const struct objhdr *h = pre_find(pv, key);
    int64_t len;
    if (!h || (size_t)l->bytes_sval + sizeof(dummy) > h->len)
        return 0;
    memcpy(&len, h->b + l->bytes_size, 8);
    return len == (int64_t)sizeof(dummy) - 1 &&
           memcmp(h->b + l->bytes_sval, dummy, sizeof(dummy) - 1) == 0;
}

/* The first live keys of a set's table (at most PYVAL_MAX_ITEMS, among SLOTS_MAX slots). */
static int set_keys(struct pyval *pv, const struct objhdr *h, uint64_t *keys, size_t *n)
{
    const struct pylayout *l = pv->l;
    int64_t mask;
    uint64_t table;
    unsigned char raw[SLOTS_MAX * 16];
    if (field_i64(pv, h, l->set_mask, &mask) < 0 || field_u64(pv, h, l->set_table, &table) < 0)
        return -EFAULT;
    if (mask < 0 || mask >= ((int64_t)1 << 40) || ((mask + 1) & mask) || l->setentry_size != 16)
        return -EINVAL;
    size_t slots = (size_t)MIN(mask + 1, SLOTS_MAX);
    if (bytes_at(pv, h, table, raw, slots * 16) < 0)
        return -EFAULT;
    uint64_t cand[SLOTS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < slots; i++) {
        uint64_t key;
        int64_t hash;
        memcpy(&key, raw + i * 16 + l->setentry_key, 8);
        memcpy(&hash, raw + i * 16 + l->setentry_hash, 8);
        if (key && key != pv->rt->known[PYK_SET_DUMMY] &&
            !(l->set_dummy == SET_DUMMY_HASH && hash == -1))
            cand[k++] = key;
    }
    *n = 0;
    int dummy27 = l->set_dummy == SET_DUMMY_STR27;
    if (dummy27)
        prefetch(pv, cand, k);
    for (size_t i = 0; i < k && *n < PYVAL_MAX_ITEMS; i++)
        if (!dummy27 || !is_dummy27(pv, cand[i]))
            keys[(*n)++] = cand[i];
    return 0;
}

static int render_set(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                      struct strbuf *out)
{
    int call = pv->l->set_repr_call, frozen = t->kind == VK_FROZENSET;
    const char *name = frozen ? "frozenset" : "set";
    int64_t used;
    uint64_t keys[PYVAL_MAX_ITEMS];
    size_t n = 0;
    if (field_i64(pv, h, pv->l->set_used, &used) < 0)
        return -EFAULT;
    if (used < 0 || used > ((int64_t)1 << 40))
        return -EINVAL;
    if (used == 0) {
        sb_addf(out, "%s()", name);
        suffix(t, 0, 0, "", out);
        return 0;
    }
    if (depth >= PYVAL_MAX_DEPTH) {
        sb_addf(out, call ? "%s([...])" : frozen ? "%s({...})" : "{...}", name);
        return 0;
    }
    int ret = set_keys(pv, h, keys, &n);
    if (ret == -EFAULT || ret == -EINVAL)
        return ret;
    if (call || frozen)
        sb_addf(out, "%s(", name);
    sb_addc(out, call ? '[' : '{');
    size_t shown = render_items(pv, keys, NULL, n, depth, out);
    if (shown < (size_t)used)
        sb_adds(out, shown ? ", ..." : "...");
    sb_addc(out, call ? ']' : '}');
    if (call || frozen)
        sb_addc(out, ')');
    suffix(t, shown < (size_t)used, (uint64_t)used, "items", out);
    return 0;
}

/* ---- values --------------------------------------------------------------- */

static int render_kind(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                       struct strbuf *out)
{
    int ret;
    switch (t->kind) {
    case VK_NONE:
        sb_adds(out, "None");
        return 0;
    case VK_BOOL:
        return render_bool(pv, h, out);
    case VK_INT:
    case VK_LONG27:
        ret = render_long(pv, h, t->kind == VK_LONG27 ? "L" : "", out);
        break;
    case VK_INT27:
        ret = render_int27(pv, h, out);
        break;
    case VK_FLOAT:
        ret = render_float(pv, h, out);
        break;
    case VK_STR:
    case VK_UNICODE27:
    case VK_BYTES:
        return render_str(pv, h, t, out);
    case VK_TUPLE:
    case VK_LIST:
        return render_seq(pv, h, t, depth, out);
    case VK_DICT:
        return render_dict(pv, h, t, depth, out);
    case VK_SET:
    case VK_FROZENSET:
        return render_set(pv, h, t, depth, out);
    default:
        return -ENOENT;
    }
    if (ret == 0)
        suffix(t, 0, 0, "", out);
    return ret;
}

static void render_depth(struct pyval *pv, uint64_t obj, int depth, struct strbuf *out)
{
    const uint64_t *k = pv->rt->known;
    struct objhdr h;
    if (!obj) {
        sb_adds(out, "<NULL>");
        return;
    }
    if (obj == k[PYK_NONE] || obj == k[PYK_TRUE] || obj == k[PYK_FALSE]) {
        sb_adds(out, obj == k[PYK_NONE] ? "None" : obj == k[PYK_TRUE] ? "True" : "False");
        return;
    }
    int ret = hdr_get(pv, obj, &h);
    if (ret == -ENOSPC) {
        sb_adds(out, "...");
        return;
    }
    struct vtype tv = ret == 0 ? type_of(pv, &h) : (struct vtype){.ok = 0};
    const struct vtype *t = &tv;
    if (!t->ok) {
        sb_addf(out, "<unreadable at 0x%" PRIx64 ">", obj);
        return;
    }
    size_t mark = out->len;
    if (render_kind(pv, &h, t, depth, out) == 0)
        return;
    cut_back(out, mark);
    /* Out of reads: a failed read says nothing about the value. */
    if (!can_read(pv)) {
        sb_adds(out, "...");
        return;
    }
    /* Anything else, or a value that makes no sense for its type. */
    sb_addf(out, "<%s at 0x%" PRIx64 ">", t->name, obj);
}

/* Starts a value's read budget. */
static void value_start(struct pyval *pv)
{
    pv->value_reads = mem_read_calls(pv->m);
}

void pyval_render(struct pyval *pv, uint64_t obj, struct strbuf *out)
{
    pv->npre = 0;
    value_start(pv);
    render_depth(pv, obj, 0, out);
}

/* ---- locals --------------------------------------------------------------- */

/* A slot of a frame: its name object, value and kind. */
struct slot {
    uint64_t name, value;
    enum pylocal_kind kind;
    int deref;      /* the value may be a cell to look into */
};

/* Appends the UTF-8 text of a str (2.7: str or unicode) name object. */
static int name_text(struct pyval *pv, uint64_t obj, struct strbuf *out)
{
    uint32_t cps[NAME_MAX_CHARS];
    struct objhdr h;
    size_t n;
    int64_t total;
    if (hdr_get(pv, obj, &h) < 0)
        return -EFAULT;
    struct vtype tv = type_of(pv, &h);
    const struct vtype *t = &tv;
    if (t->kind != VK_STR && t->kind != VK_UNICODE27 && !(t->kind == VK_BYTES && bytes27(pv)))
        return -EINVAL;
    if (str_units(pv, &h, t->kind, cps, NAME_MAX_CHARS, &n, &total) < 0)
        return -EFAULT;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        utf8_put(out, c < 0x20 || c == 0x7f ? '?' : c);
    }
    return 0;
}

/* The code object's type is code (by address where known). */
static int is_code(struct pyval *pv, const unsigned char *code_hdr)
{
    uint64_t type;
    memcpy(&type, code_hdr + pv->l->ob_type, 8);
    if (pv->rt->code_type)
        return type == pv->rt->code_type;
    return strcmp(type_info_depth(pv, type, 0).name, "code") == 0;
}

/* Reads the head of a code object (through off_max + 4) and checks its type. */
static int read_code(struct pyval *pv, uint64_t code, unsigned char *buf, size_t len)
{
    if (!code || mem_read(pv->m, code, buf, len) < 0)
        return -EFAULT;
    return is_code(pv, buf) ? 0 : -EINVAL;
}

static int32_t get_i32(const unsigned char *b, int off)
{
    int32_t v;
    memcpy(&v, b + off, 4);
    return v;
}

static uint64_t get_u64(const unsigned char *b, int off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

/* The number of parameters: positional, keyword-only, *args, **kwargs. */
static int64_t arg_count(const struct pylayout *l, const unsigned char *code)
{
    int32_t flags = get_i32(code, l->co_argflags);
    int64_t n = get_i32(code, l->co_argcount);
    if (l->co_kwonlyargcount >= 0)
        n += get_i32(code, l->co_kwonlyargcount);
    return n + !!(flags & CO_VARARGS) + !!(flags & CO_VARKEYWORDS);
}

/* Reads a tuple of at most max items: its size in *n, items into items[]. */
static int read_tuple(struct pyval *pv, uint64_t tuple, uint64_t *items, size_t max, size_t *n)
{
    struct objhdr h;
    int64_t size;
    int ret;
    if ((ret = hdr_get(pv, tuple, &h)) < 0 || (ret = field_i64(pv, &h, 16, &size)) < 0)
        return ret;
    if (size < 0 || (uint64_t)size > max)
        return size < 0 ? -EINVAL : -E2BIG;
    *n = (size_t)size;
    return size ? bytes_at(pv, &h, tuple + (uint64_t)pv->l->tuple_item, items, *n * 8) : 0;
}

/*
 * The code object a frame runs: read now, or, when the walk said which it
 * is (want), taken from there and checked in the caller's next batch
 * (check gets the piece to add, *at where the frame's field lands).
 */
static int frame_code(struct pyval *pv, uint64_t field, uint64_t want, uint64_t *code,
                      struct mem_iov *check, uint64_t *at)
{
    if (want) {
        *code = want;
        *check = (struct mem_iov){field, at, 8, 0};
        return 0;
    }
    *check = (struct mem_iov){0, NULL, 0, 1};
    if (mem_read_u64(pv->m, field, code) < 0)
        return -EFAULT;
    if (pv->l->code_tagged)
        *code &= ~(uint64_t)3;
    return 0;
}

/* After the batch: 0 when the frame still runs code, else -EFAULT or -EINVAL. */
static int frame_code_same(const struct pyval *pv, const struct mem_iov *check, uint64_t code)
{
    uint64_t got;
    if (!check->buf)
        return 0;
    if (!check->ok)
        return -EFAULT;
    memcpy(&got, check->buf, 8);
    if (pv->l->code_tagged)
        got &= ~(uint64_t)3;
    return got == code ? 0 : -EINVAL;
}

/* <= 3.10: f_localsplus holds co_nlocals locals, then the cells, then the free variables. */
static int slots_old(struct pyval *pv, uint64_t frame, uint64_t want_code, struct slot **out,
                     size_t *nout)
{
    const struct pylayout *l = pv->l;
    uint64_t code, fcode = 0;
    unsigned char c[256];
    struct mem_iov iov[2];
    int ret;
    if ((ret = frame_code(pv, frame + (uint64_t)l->fo_code, want_code, &code, &iov[1], &fcode)) < 0)
        return ret;
    size_t clen = (size_t)MAX(MAX(l->co_varnames, l->co_cellvars), l->co_freevars) + 8;
    if (clen > sizeof(c) || (ret = read_code(pv, code, c, clen)) < 0)
        return clen > sizeof(c) ? -EINVAL : ret;
    int32_t nlocals = get_i32(c, l->co_nlocals);
    uint64_t tuples[3] = {get_u64(c, l->co_varnames), get_u64(c, l->co_cellvars),
                          get_u64(c, l->co_freevars)};
    if (nlocals < 0 || nlocals > PYVAL_MAX_LOCALS)
        return nlocals < 0 ? -EINVAL : -E2BIG;
    prefetch(pv, tuples, 3);
    uint64_t *names = xmalloc(3 * PYVAL_MAX_LOCALS * sizeof(*names));
    size_t count[3] = {0, 0, 0}, total = 0;
    for (int i = 0; i < 3 && ret == 0; i++) {
        ret = read_tuple(pv, tuples[i], names + total, PYVAL_MAX_LOCALS, &count[i]);
        total += count[i];
    }
    if (ret == 0 && count[0] != (size_t)nlocals)
        ret = -EINVAL;
    /* The slots (and the frame's code) in one batch. */
    uint64_t *vals = xcalloc(total + 1, sizeof(*vals));
    iov[0] = (struct mem_iov){frame + (uint64_t)l->fo_localsplus, vals, 8 * total, 1};
    struct mem_iov *first = total ? &iov[0] : &iov[1];
    size_t pieces = (size_t)(total > 0) + (iov[1].buf != NULL);
    if (ret == 0 && pieces) {
        ret = mem_readv(pv->m, first, pieces);
        int same = ret < 0 ? ret : frame_code_same(pv, &iov[1], code);
        ret = same == -EINVAL ? same : ret < 0 || !iov[0].ok || same < 0 ? -EFAULT : 0;
    }
    if (ret == 0) {
        int64_t nargs = arg_count(l, c);
        struct slot *s = xcalloc(total + 1, sizeof(*s));
        for (size_t i = 0; i < total; i++) {
            s[i].name = names[i];
            s[i].value = vals[i];
            s[i].kind = i < count[0] ? ((int64_t)i < nargs ? PYLOCAL_ARG : PYLOCAL_LOCAL)
                        : i < count[0] + count[1] ? PYLOCAL_CELL : PYLOCAL_FREE;
            s[i].deref = i >= count[0];
        }
        *out = s;
        *nout = total;
    }
    free(vals);
    free(names);
    return ret;
}

/* 3.11+: localsplus, named by co_localsplusnames and typed by co_localspluskinds. */
static int slots_new(struct pyval *pv, uint64_t frame, uint64_t want_code, struct slot **out,
                     size_t *nout)
{
    const struct pylayout *l = pv->l;
    uint64_t code, fcode = 0;
    unsigned char c[256];
    struct mem_iov iov[4];
    int ret;
    if ((ret = frame_code(pv, frame + (uint64_t)l->if_code, want_code, &code, &iov[3], &fcode)) < 0)
        return ret;
    int hi = MAX(MAX(l->co_localsplusnames, l->co_localspluskinds), MAX(l->co_argflags, l->co_argcount));
    hi = MAX(MAX(hi, l->co_nlocalsplus), l->co_kwonlyargcount);
    if ((size_t)hi + 8 > sizeof(c) || (ret = read_code(pv, code, c, (size_t)hi + 8)) < 0)
        return (size_t)hi + 8 > sizeof(c) ? -EINVAL : ret;
    int32_t n = get_i32(c, l->co_nlocalsplus);
    if (n < 0 || n > PYVAL_MAX_LOCALS)
        return n < 0 ? -EINVAL : -E2BIG;
    size_t un = (size_t)n;
    /* The names, the kinds, the slots (and the frame's code) in one batch. */
    unsigned char *names = xcalloc(1, (size_t)l->tuple_item + 8 * un + 8);
    unsigned char *kinds = xcalloc(1, (size_t)l->bytes_sval + un + 8);
    uint64_t *vals = xcalloc(un + 1, 8);
    iov[0] = (struct mem_iov){get_u64(c, l->co_localsplusnames), names, (size_t)l->tuple_item + 8 * un, 0};
    iov[1] = (struct mem_iov){get_u64(c, l->co_localspluskinds), kinds, (size_t)l->bytes_sval + un, 0};
    iov[2] = (struct mem_iov){frame + (uint64_t)l->if_localsplus, vals, 8 * un, !un};
    if (!un) /* no slots to read: the frame's check takes their place */
        iov[2] = iov[3], iov[3] = (struct mem_iov){0, NULL, 0, 1};
    ret = mem_readv(pv->m, iov, 2 + (iov[2].buf != NULL) + (iov[3].buf != NULL));
    int64_t nn, nk;
    memcpy(&nn, names + 16, 8);
    memcpy(&nk, kinds + l->bytes_size, 8);
    /* A frame that runs other code now says more than a failed read. */
    int same = ret < 0 ? ret : frame_code_same(pv, un ? &iov[3] : &iov[2], code);
    if (same == -EINVAL || same == -ESRCH)
        ret = same;
    else if (ret < 0 || !iov[0].ok || !iov[1].ok || (un && !iov[2].ok) || same < 0)
        ret = -EFAULT;
    else
        ret = nn != n || nk != n ? -EINVAL : 0;
    if (ret == 0) {
        int64_t nargs = arg_count(l, c);
        struct slot *s = xcalloc(un + 1, sizeof(*s));
        size_t k = 0;
        for (size_t i = 0; i < un; i++) {
            uint8_t kind = kinds[(size_t)l->bytes_sval + i];
            if (kind & CO_FAST_HIDDEN)
                continue; /* comprehension temporaries inlined into the frame (3.12+) */
            memcpy(&s[k].name, names + l->tuple_item + 8 * i, 8);
            s[k].value = vals[i];
            s[k].kind = (int64_t)i < nargs ? PYLOCAL_ARG : (kind & CO_FAST_FREE) ? PYLOCAL_FREE
                        : (kind & CO_FAST_CELL) ? PYLOCAL_CELL : PYLOCAL_LOCAL;
            /* A cell slot holds the raw value until MAKE_CELL runs. */
            s[k].deref = !!(kind & (CO_FAST_CELL | CO_FAST_FREE));
            k++;
        }
        *out = s;
        *nout = k;
    }
    free(names);
    free(kinds);
    free(vals);
    return ret;
}

/* Replaces the values of cell slots with their cells' contents (0: an empty cell). */
static void deref_cells(struct pyval *pv, struct slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct objhdr h;
        if (!s[i].deref || !s[i].value || hdr_get(pv, s[i].value, &h) < 0)
            continue;
        struct vtype tv = type_of(pv, &h);
    const struct vtype *t = &tv;
        uint64_t ref;
        if (t->kind == VK_CELL && field_u64(pv, &h, pv->l->cell_ref, &ref) == 0)
            s[i].value = ref;
    }
}

static void prefetch_slots(struct pyval *pv, const struct slot *s, size_t n, int names)
{
    uint64_t *objs = xmalloc((2 * n + 1) * sizeof(*objs));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].value)
            continue;
        if (names)
            objs[k++] = s[i].name;
        objs[k++] = s[i].value;
    }
    for (size_t i = 0; i < k; i += PRE_MAX / 2)
        prefetch(pv, objs + i, MIN(k - i, (size_t)PRE_MAX / 2));
    free(objs);
}

int pyval_locals(struct pyval *pv, uint64_t frame, uint64_t code, struct pylocals *out)
{
    struct slot *s = NULL;
    size_t n = 0;
    pv->npre = 0;
    pv->unbounded = 1; /* the frame's own reads are not a value's */
    int ret = pv->l->frames == FRAME_OBJECTS ? slots_old(pv, frame, code, &s, &n)
                                             : slots_new(pv, frame, code, &s, &n);
    if (ret == 0) {
        /* Names and values in one batch, then what the cells hold in another. */
        prefetch_slots(pv, s, n, 1);
        deref_cells(pv, s, n);
        prefetch_slots(pv, s, n, 0);
    }
    pv->unbounded = 0;
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].value)
            continue;
        struct strbuf name = STRBUF_INIT, val = STRBUF_INIT;
        value_start(pv);
        if (name_text(pv, s[i].name, &name) < 0)
            sb_addf(&name, "<unreadable name at 0x%" PRIx64 ">", s[i].name);
        value_start(pv);
        render_depth(pv, s[i].value, 0, &val);
        GROW(out->v, out->cap, out->n + 1);
        out->v[out->n++] = (struct pylocal){sb_detach(&name), s[i].kind, sb_detach(&val)};
        sb_release(&name);
        sb_release(&val);
    }
    free(s);
    return 0;
}
