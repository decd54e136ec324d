/*
 * Inside the value renderer: what pyval_read.c (reading objects and types),
 * pyval.c (rendering values) and pyval_locals.c (a frame's variables)
 * share.  Not for other modules.
 */
#ifndef PYSTROBE_PYVAL_IMPL_H
#define PYSTROBE_PYVAL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/pyrt.h"

/*
 * Bytes read at the start of an object: enough for the header of every type
 * shown, a short ASCII str's characters, a small int's digits and a small
 * tuple's items, so that most values cost a single read.
 */
#define PYVAL_HDR 128
/* Object headers kept from batched reads (one frame's worth). */
#define PYVAL_PRE_MAX 512

enum vkind {
    VK_OTHER, VK_NONE, VK_BOOL, VK_INT, VK_INT27, VK_LONG27, VK_FLOAT, VK_STR, VK_UNICODE27,
    VK_BYTES, VK_TUPLE, VK_LIST, VK_DICT, VK_SET, VK_FROZENSET, VK_CELL, VK_COUNT
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
    unsigned char b[PYVAL_HDR];
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
static inline int pyval_bytes27(const struct pyval *pv)
{
    return pv->l->strings == STR_BYTES27;
}

/* 2.7: int is a PyIntObject, long a type apart. */
static inline int pyval_int27(const struct pyval *pv)
{
    return pv->l->int27_ival >= 0;
}

/* 1 while the value being rendered may still make n reads. */
int pyval_can_read_n(const struct pyval *pv, uint64_t n);
/* The cached header of the object at addr, or NULL. */
const struct objhdr *pyval_pre_find(const struct pyval *pv, uint64_t addr);
/* len bytes at offset off of the object whose header is h. */
int pyval_field(struct pyval *pv, const struct objhdr *h, int off, void *out, size_t len);
/* Starts a value's read budget. */
void pyval_value_start(struct pyval *pv);
/* Reads the headers of objs[0..n) in one batch into the cache. */
void pyval_prefetch(struct pyval *pv, const uint64_t *objs, size_t n);
/* The first bytes of obj: from the cache, else read. */
int pyval_hdr(struct pyval *pv, uint64_t obj, struct objhdr *h);
/* len bytes at addr, from h when it holds them, else read. */
int pyval_bytes_at(struct pyval *pv, const struct objhdr *h, uint64_t addr, void *out, size_t len);
int pyval_field_i64(struct pyval *pv, const struct objhdr *h, int off, int64_t *v);
int pyval_field_u64(struct pyval *pv, const struct objhdr *h, int off, uint64_t *v);
/* A type, from the cache or read (by value: the cache moves as it grows). */
struct vtype pyval_type_info(struct pyval *pv, uint64_t type, int depth);
/* The type of the object whose header is h. */
struct vtype pyval_type_of(struct pyval *pv, const struct objhdr *h);
/* The first max characters of a str, 2.7 unicode or bytes; the whole length in *total. */
int pyval_str_units(struct pyval *pv, const struct objhdr *h, enum vkind kind, uint32_t *cps,
                    size_t max, size_t *n, int64_t *total);
/* Appends the rendering of obj, nested depth deep. */
void pyval_render_depth(struct pyval *pv, uint64_t obj, int depth, struct strbuf *out);

#endif
