/*
 * The variables of a frame (dump --locals): the code object's names and
 * kinds, the frame's slots read in one batch, cells looked into, and each
 * value rendered by pyval.c.
 */
#include "profiler/cpython/pyval.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/pyval_impl.h"

/* Characters of a variable's name. */
#define NAME_MAX_CHARS 256
#define CO_VARARGS 0x04
#define CO_VARKEYWORDS 0x08
#define CO_FAST_HIDDEN 0x10
#define CO_FAST_CELL 0x40
#define CO_FAST_FREE 0x80

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
    if (pyval_hdr(pv, obj, &h) < 0)
        return -EFAULT;
    struct vtype tv = pyval_type_of(pv, &h);
    const struct vtype *t = &tv;
    if (t->kind != VK_STR && t->kind != VK_UNICODE27 && !(t->kind == VK_BYTES && pyval_bytes27(pv)))
        return -EINVAL;
    if (pyval_str_units(pv, &h, t->kind, cps, NAME_MAX_CHARS, &n, &total) < 0)
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
    return strcmp(pyval_type_info(pv, type, 0).name, "code") == 0;
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
    if ((ret = pyval_hdr(pv, tuple, &h)) < 0 || (ret = pyval_field_i64(pv, &h, 16, &size)) < 0)
        return ret;
    if (size < 0 || (uint64_t)size > max)
        return size < 0 ? -EINVAL : -E2BIG;
    *n = (size_t)size;
    return size ? pyval_bytes_at(pv, &h, tuple + (uint64_t)pv->l->tuple_item, items, *n * 8) : 0;
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
        *code &= ~(uint64_t)1;
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
        got &= ~(uint64_t)1;
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
    uint64_t tuples[3] = {buf_u64(c, l->co_varnames), buf_u64(c, l->co_cellvars),
                          buf_u64(c, l->co_freevars)};
    if (nlocals < 0 || nlocals > PYVAL_MAX_LOCALS)
        return nlocals < 0 ? -EINVAL : -E2BIG;
    pyval_prefetch(pv, tuples, 3);
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
    iov[0] = (struct mem_iov){buf_u64(c, l->co_localsplusnames), names, (size_t)l->tuple_item + 8 * un, 0};
    iov[1] = (struct mem_iov){buf_u64(c, l->co_localspluskinds), kinds, (size_t)l->bytes_sval + un, 0};
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
            /* 3.14+: a slot is a stack reference, whose low bit marks a
             * borrowed (deferred) one; a tagged int (low bits 3) is no object
             * and stays unaligned, to show as unreadable. */
            if (l->code_tagged && (s[k].value & 3) == 1)
                s[k].value &= ~(uint64_t)1;
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
        if (!s[i].deref || !s[i].value || pyval_hdr(pv, s[i].value, &h) < 0)
            continue;
        struct vtype tv = pyval_type_of(pv, &h);
    const struct vtype *t = &tv;
        uint64_t ref;
        if (t->kind == VK_CELL && pyval_field_u64(pv, &h, pv->l->cell_ref, &ref) == 0)
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
    for (size_t i = 0; i < k; i += PYVAL_PRE_MAX / 2)
        pyval_prefetch(pv, objs + i, MIN(k - i, (size_t)PYVAL_PRE_MAX / 2));
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
        pyval_value_start(pv);
        if (name_text(pv, s[i].name, &name) < 0)
            sb_addf(&name, "<unreadable name at 0x%" PRIx64 ">", s[i].name);
        pyval_value_start(pv);
        pyval_render_depth(pv, s[i].value, 0, &val);
        GROW(out->v, out->cap, out->n + 1);
        out->v[out->n++] = (struct pylocal){sb_detach(&name), s[i].kind, sb_detach(&val)};
        sb_release(&name);
        sb_release(&val);
    }
    free(s);
    return 0;
}
