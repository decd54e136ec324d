/*
 * Fake CPython process images for unit tests and fuzzing: objects laid out
 * byte for byte as a given version's struct pylayout says, in a local
 * staging buffer that appears at a chosen address of a buffer memory source
 * (mem_new_buffer), or, for tests that must change bytes under a reader, at
 * its own address in this process (mem_new_pid(getpid())).
 *
 * Every test_*.c is its own program, so this header is self-contained:
 * static functions only, unused ones allowed.  Builders abort on misuse (a
 * field the version lacks, an image that is full): that is a bug in the test.
 *
 *     struct img im;
 *     img_init(&im, 3, 12, 0);
 *     uint64_t code = img_code(&im, "f.py", "f", "C.f", 10, NULL, 0);
 *     img_commit(&im);              // im.m, im.rt ready
 *     ...
 *     img_release(&im);
 */
#ifndef PYSTROBE_TEST_IMAGE_H
#define PYSTROBE_TEST_IMAGE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"
#include "profiler/cpython/pyrt.h"
#include "symbolizer/codefacts.h"

#define IMG_FN static __attribute__((unused))

/* Where a buffer image appears: far from anything a test uses by accident. */
#define IMG_BASE 0x10000000ull
#define IMG_DEFAULT_CAP (1u << 20)
#define IMG_MAX_GAPS 64

/* CPython type flags the object readers look at. */
#define IMG_TPFLAGS_INLINE_VALUES (1ull << 2)
#define IMG_TPFLAGS_MANAGED_DICT (1ull << 4)
#define IMG_TPFLAGS_HEAPTYPE (1ull << 9)

struct img {
    struct pylayout lay;
    int major, minor;
    uint64_t base;          /* address of buf[0] in the image */
    unsigned char *buf;     /* staging bytes, cap long */
    size_t cap, used;
    int live;               /* base == buf: readable through mem_new_pid(getpid()) */
    uint64_t gaps[IMG_MAX_GAPS][2]; /* [start, end) left out of the buffer segments */
    size_t ngaps;
    struct mem *m;          /* after img_commit */
    struct pyrt rt;         /* after img_commit */
    /* Well-known objects. */
    uint64_t t_type, t_object, t_str, t_unicode, t_bytes, t_code, t_frame, t_dict, t_int,
        t_module, t_none, t_gen;
    /* Built-in types of values (dump --locals); t_long27 is 2.7's long. */
    uint64_t t_float, t_tuple, t_list, t_set, t_frozenset, t_bool, t_cell, t_long27;
    uint64_t none, true_, false_;
    uint64_t runtime;       /* fake _PyRuntime (or the interp_head variable) */
    uint64_t interp_head;   /* address of the pointer to the first interpreter */
    uint64_t dummy27;       /* 2.7's dummy key for deleted dict entries */
};

IMG_FN void img_die(const char *what)
{
    fprintf(stderr, "    image: %s\n", what);
    fflush(stderr);
    abort();
}

/* ---- raw bytes ---------------------------------------------------------- */

IMG_FN unsigned char *img_at(struct img *im, uint64_t addr, size_t len)
{
    if (addr < im->base || addr - im->base > im->cap || len > im->cap - (addr - im->base))
        img_die("access outside the image");
    return im->buf + (addr - im->base);
}

IMG_FN void img_wmem(struct img *im, uint64_t addr, const void *p, size_t n)
{
    if (n)
        memcpy(img_at(im, addr, n), p, n);
}
IMG_FN void img_w64(struct img *im, uint64_t addr, uint64_t v) { img_wmem(im, addr, &v, 8); }
IMG_FN void img_w32(struct img *im, uint64_t addr, uint32_t v) { img_wmem(im, addr, &v, 4); }
IMG_FN void img_w16(struct img *im, uint64_t addr, uint16_t v) { img_wmem(im, addr, &v, 2); }
IMG_FN void img_w8(struct img *im, uint64_t addr, uint8_t v) { img_wmem(im, addr, &v, 1); }
IMG_FN uint64_t img_r64(struct img *im, uint64_t addr)
{
    uint64_t v;
    memcpy(&v, img_at(im, addr, 8), 8);
    return v;
}

/* Writes a 64-bit field at obj+off; the layout must have it. */
IMG_FN void img_f64(struct img *im, uint64_t obj, int off, uint64_t v)
{
    if (off < 0)
        img_die("64-bit field absent in this version's layout");
    img_w64(im, obj + (uint64_t)off, v);
}
IMG_FN void img_f32(struct img *im, uint64_t obj, int off, uint32_t v)
{
    if (off < 0)
        img_die("32-bit field absent in this version's layout");
    img_w32(im, obj + (uint64_t)off, v);
}

/* Reserves size zeroed bytes (16-aligned) and returns their address. */
IMG_FN uint64_t img_alloc(struct img *im, size_t size)
{
    size_t off = (im->used + 15) & ~(size_t)15;
    if (size == 0)
        size = 1;
    if (off > im->cap || size > im->cap - off)
        img_die("image full: pass a larger cap to img_init");
    im->used = off + size;
    memset(im->buf + off, 0, size);
    return im->base + off;
}

/* Reserves size bytes that no buffer segment covers (reads there fail). */
IMG_FN uint64_t img_gap(struct img *im, size_t size)
{
    if (im->ngaps >= IMG_MAX_GAPS)
        img_die("too many gaps");
    uint64_t a = img_alloc(im, size);
    im->gaps[im->ngaps][0] = a;
    im->gaps[im->ngaps][1] = a + size;
    im->ngaps++;
    return a;
}

/* Leaves [start, start+size) out of the segments; start is at or past the end of the last allocation. */
IMG_FN void img_gap_at(struct img *im, uint64_t start, size_t size)
{
    if (im->ngaps >= IMG_MAX_GAPS || start < im->base + im->used - 16)
        img_die("bad gap");
    (void)img_at(im, start, size);
    im->gaps[im->ngaps][0] = start;
    im->gaps[im->ngaps][1] = start + size;
    im->ngaps++;
    im->used = (size_t)(start + size - im->base);
}

/* An address that no segment of the image covers. */
IMG_FN uint64_t img_hole(const struct img *im)
{
    return im->base + im->cap + (1u << 20);
}

IMG_FN uint64_t img_cstr(struct img *im, const char *s)
{
    size_t n = strlen(s) + 1;
    uint64_t a = img_alloc(im, n);
    img_wmem(im, a, s, n);
    return a;
}

/* ---- objects ------------------------------------------------------------ */

IMG_FN uint64_t img_object(struct img *im, uint64_t type, size_t size)
{
    uint64_t o = img_alloc(im, size < 16 ? 16 : size);
    img_w64(im, o, 1);
    img_f64(im, o, im->lay.ob_type, type);
    return o;
}

/* A (heap) type object named name. */
IMG_FN uint64_t img_type(struct img *im, const char *name)
{
    uint64_t t = img_object(im, im->t_type, 1024);
    img_f64(im, t, im->lay.tp_name, img_cstr(im, name));
    img_f64(im, t, im->lay.tp_basicsize, 16);
    img_f64(im, t, im->lay.tp_flags, IMG_TPFLAGS_HEAPTYPE);
    if (im->t_object)
        img_f64(im, t, im->lay.tp_base, im->t_object);
    return t;
}

/* ---- UTF-8 literals to code points (trusted test input) ------------------ */

IMG_FN size_t img_utf8_cps(const char *s, uint32_t *cps, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p && n < max) {
        uint32_t c = *p;
        int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        if (extra)
            c &= 0x3F >> extra;
        p++;
        for (int i = 0; i < extra && *p; i++)
            c = (c << 6) | (*p++ & 0x3F);
        cps[n++] = c;
    }
    return n;
}

/* ---- strings ------------------------------------------------------------ */

enum img_str_form {
    IMG_STR_ASCII,   /* 3.x compact ASCII */
    IMG_STR_COMPACT, /* 3.x compact, kind-wide */
    IMG_STR_LEGACY,  /* 3.x not compact: data behind data.any */
};

IMG_FN void img_put_units(struct img *im, uint64_t at, const uint32_t *cps, size_t n, int width)
{
    for (size_t i = 0; i < n; i++) {
        if (width == 1)
            img_w8(im, at + i, (uint8_t)cps[i]);
        else if (width == 2)
            img_w16(im, at + 2 * i, (uint16_t)cps[i]);
        else
            img_w32(im, at + 4 * i, cps[i]);
    }
}

/* A 3.x str header with an explicit state word (for garbage tests too). */
IMG_FN uint64_t img_ustr_raw(struct img *im, int64_t length, uint32_t state, size_t size)
{
    const struct pylayout *l = &im->lay;
    if (l->strings != STR_UNICODE3)
        img_die("img_ustr_raw: not a 3.x layout");
    uint64_t s = img_object(im, im->t_str, size);
    img_w64(im, s + (uint64_t)l->uni_length, (uint64_t)length);
    img_w64(im, s + (uint64_t)l->uni_hash, (uint64_t)-1);
    img_w32(im, s + (uint64_t)l->uni_state, state);
    return s;
}

IMG_FN uint32_t img_ustate(const struct img *im, int kind, int compact, int ascii)
{
    uint32_t st = (uint32_t)kind << 2 | (uint32_t)compact << 5 | (uint32_t)ascii << 6;
    if (im->minor <= 11)
        st |= 1u << 7; /* ready */
    return st;
}

/* A 3.x str of n code points, kind 1/2/4, in the given form. */
IMG_FN uint64_t img_ustr_cps(struct img *im, const uint32_t *cps, size_t n, int kind,
                             enum img_str_form form)
{
    const struct pylayout *l = &im->lay;
    uint64_t s;
    if (form == IMG_STR_ASCII) {
        s = img_ustr_raw(im, (int64_t)n, img_ustate(im, 1, 1, 1),
                         (size_t)l->uni_ascii_size + n + 1);
        img_put_units(im, s + (uint64_t)l->uni_ascii_size, cps, n, 1);
    } else if (form == IMG_STR_COMPACT) {
        s = img_ustr_raw(im, (int64_t)n, img_ustate(im, kind, 1, 0),
                         (size_t)l->uni_compact_size + (n + 1) * (size_t)kind);
        img_put_units(im, s + (uint64_t)l->uni_compact_size, cps, n, kind);
    } else {
        s = img_ustr_raw(im, (int64_t)n, img_ustate(im, kind, 0, 0),
                         (size_t)l->uni_data_any + 8);
        uint64_t data = img_alloc(im, (n + 1) * (size_t)kind);
        img_put_units(im, data, cps, n, kind);
        img_w64(im, s + (uint64_t)l->uni_data_any, data);
    }
    return s;
}

/* A 2.7 str (PyStringObject) holding len bytes. */
IMG_FN uint64_t img_str27(struct img *im, const void *data, size_t len)
{
    const struct pylayout *l = &im->lay;
    uint64_t s = img_object(im, im->t_str, (size_t)l->bytes_sval + len + 1);
    img_w64(im, s + (uint64_t)l->bytes_size, len);
    img_w64(im, s + 24, (uint64_t)-1); /* ob_shash */
    img_wmem(im, s + (uint64_t)l->bytes_sval, data, len);
    return s;
}

/* A 2.7 unicode object of n code units of width bytes (Py_UNICODE). */
IMG_FN uint64_t img_unicode27(struct img *im, const uint32_t *units, size_t n, int width)
{
    const struct pylayout *l = &im->lay;
    uint64_t s = img_object(im, im->t_unicode, 48);
    uint64_t data = img_alloc(im, (n + 1) * (size_t)width);
    img_put_units(im, data, units, n, width);
    img_w64(im, s + (uint64_t)l->uni_length, n);
    img_w64(im, s + (uint64_t)l->uni27_str, data);
    img_w64(im, s + 32, (uint64_t)-1); /* hash */
    return s;
}

/*
 * The version's ordinary str for a UTF-8 literal: 2.7 a PyStringObject of
 * those bytes, 3.x the narrowest compact form (as CPython would make it).
 */
IMG_FN uint64_t img_str(struct img *im, const char *utf8)
{
    if (im->lay.strings == STR_BYTES27)
        return img_str27(im, utf8, strlen(utf8));
    size_t max = strlen(utf8) + 1;
    uint32_t *cps = xmalloc(max * sizeof(*cps));
    size_t n = img_utf8_cps(utf8, cps, max);
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++)
        top = MAX(top, cps[i]);
    uint64_t s = top < 0x80 ? img_ustr_cps(im, cps, n, 1, IMG_STR_ASCII)
                            : img_ustr_cps(im, cps, n, top < 0x100 ? 1 : top < 0x10000 ? 2 : 4,
                                           IMG_STR_COMPACT);
    free(cps);
    return s;
}

/* A bytes object (2.7: str). */
IMG_FN uint64_t img_bytes(struct img *im, const void *data, size_t len)
{
    const struct pylayout *l = &im->lay;
    if (l->strings == STR_BYTES27)
        return img_str27(im, data, len);
    uint64_t b = img_object(im, im->t_bytes, (size_t)l->bytes_sval + len + 1);
    img_w64(im, b + (uint64_t)l->bytes_size, len);
    img_w64(im, b + 24, (uint64_t)-1); /* ob_shash */
    img_wmem(im, b + (uint64_t)l->bytes_sval, data, len);
    return b;
}

/* ---- line tables -------------------------------------------------------- */

/* A run of len bytes of bytecode on one line. */
struct img_seg {
    int len;
    int line;
};

IMG_FN size_t img_put_varint(uint8_t *out, uint32_t u)
{
    size_t n = 0;
    while (u >= 64) {
        out[n++] = (uint8_t)(64 | (u & 63));
        u >>= 6;
    }
    out[n++] = (uint8_t)u;
    return n;
}

/* The line-table format of the version of l, as naming decodes it. */
IMG_FN enum lt_format img_lt_format(const struct pylayout *l)
{
    struct code_facts cf;
    layout_code_facts(l, &cf);
    return cf.linetable;
}

/*
 * Encodes segments (from byte offset 0) as the version's line table.  Deltas
 * must fit the format (small, and non-decreasing lines for 2.7).  Returns
 * the table's length.
 */
IMG_FN size_t img_linetable(enum lt_format fmt, int first, const struct img_seg *segs, size_t n,
                            uint8_t *out, size_t cap)
{
    size_t k = 0;
    int prev_line = first, addr = 0, prev_addr = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 16 > cap)
            img_die("line table too long");
        int dl = segs[i].line - prev_line;
        switch (fmt) {
        case LT_LNOTAB_27:
        case LT_LNOTAB_36:
            if (i > 0 || dl != 0) {
                out[k++] = (uint8_t)(addr - prev_addr);
                out[k++] = (uint8_t)(int8_t)dl;
            }
            prev_addr = addr;
            break;
        case LT_LINETABLE_310:
            out[k++] = (uint8_t)segs[i].len;
            out[k++] = (uint8_t)(int8_t)dl;
            break;
        case LT_LOCATIONS_311:
            for (int units = segs[i].len / 2, d = dl; units > 0; d = 0) {
                int u = MIN(units, 8);
                out[k++] = (uint8_t)(0x80 | (13 << 3) | (u - 1));
                k += img_put_varint(out + k, d < 0 ? (uint32_t)(-d) << 1 | 1 : (uint32_t)d << 1);
                units -= u;
            }
            break;
        }
        prev_line = segs[i].line;
        addr += segs[i].len;
    }
    return k;
}

/* ---- code objects ------------------------------------------------------- */

/* Bytes of a code object: through co_code_adaptive plus some bytecode. */
IMG_FN size_t img_code_size(const struct img *im)
{
    return im->lay.co_code_adaptive >= 0 ? (size_t)im->lay.co_code_adaptive + 64 : 256;
}

/* A code object from existing string objects (qualname 0: none). */
IMG_FN uint64_t img_code_objs(struct img *im, uint64_t file, uint64_t name, uint64_t qualname,
                              int firstlineno, uint64_t table)
{
    const struct pylayout *l = &im->lay;
    uint64_t c = img_object(im, im->t_code, img_code_size(im));
    img_f64(im, c, l->co_filename, file);
    img_f64(im, c, l->co_name, name);
    if (l->co_qualname >= 0)
        img_f64(im, c, l->co_qualname, qualname);
    img_f32(im, c, l->co_firstlineno, (uint32_t)firstlineno);
    img_f64(im, c, l->co_linetable, table);
    return c;
}

/* A code object; qualname NULL means the same as name; table may be empty. */
IMG_FN uint64_t img_code(struct img *im, const char *file, const char *name, const char *qualname,
                         int firstlineno, const uint8_t *table, size_t tlen)
{
    uint64_t n = img_str(im, name);
    uint64_t q = qualname ? img_str(im, qualname) : n;
    return img_code_objs(im, img_str(im, file), n, q, firstlineno, img_bytes(im, table, tlen));
}

/* Where byte offset off of a 3.11+ code object's bytecode is. */
IMG_FN uint64_t img_instr(const struct img *im, uint64_t code, int64_t off)
{
    return code + (uint64_t)im->lay.co_code_adaptive + (uint64_t)off;
}

/* ---- frames ------------------------------------------------------------- */

/* A <= 3.10 PyFrameObject. */
IMG_FN uint64_t img_frame(struct img *im, uint64_t code, uint64_t back, int32_t lasti)
{
    const struct pylayout *l = &im->lay;
    uint64_t f = img_object(im, im->t_frame, 160);
    img_f64(im, f, l->fo_back, back);
    img_f64(im, f, l->fo_code, code);
    img_f32(im, f, l->fo_lasti, (uint32_t)lasti);
    return f;
}

/* A 3.11+ _PyStackChunk being filled. */
struct img_chunk {
    uint64_t addr;
    size_t size;
    uint64_t top;
};

IMG_FN void img_chunk_new(struct img *im, struct img_chunk *c, size_t size, uint64_t previous)
{
    const struct pylayout *l = &im->lay;
    c->addr = img_alloc(im, size);
    c->size = size;
    c->top = c->addr + (uint64_t)l->chunk_data;
    img_f64(im, c->addr, l->chunk_previous, previous);
    img_f64(im, c->addr, l->chunk_size, size);
    /* The chunk's own top is a count of PyObject* slots used in data[]
     * (CPython saves it there when it pushes a newer chunk). */
    img_f64(im, c->addr, l->chunk_top, (c->top - c->addr - (uint64_t)l->chunk_data) / 8);
}

/*
 * Writes a 3.11+ interpreter frame at f; instr is code + co_code_adaptive +
 * off.  On 3.11 a thread's frame with no caller is marked is_entry, as the
 * first frame of an eval loop called from C is.
 */
IMG_FN void img_iframe_at(struct img *im, uint64_t f, uint64_t code, int64_t off, int owner,
                          uint64_t previous)
{
    const struct pylayout *l = &im->lay;
    img_f64(im, f, l->if_code, code);
    img_f64(im, f, l->if_previous, previous);
    img_f64(im, f, l->if_instr, code ? img_instr(im, code, off) : 0);
    img_w8(im, f + (uint64_t)l->if_owner, (uint8_t)owner);
    if (l->if_is_entry >= 0)
        img_w8(im, f + (uint64_t)l->if_is_entry, owner == 0 && previous == 0);
}

/* Pushes a frame (with `locals` bytes of localsplus) onto chunk c. */
IMG_FN uint64_t img_push(struct img *im, struct img_chunk *c, uint64_t code, int64_t off,
                         int owner, uint64_t previous, size_t locals)
{
    const struct pylayout *l = &im->lay;
    size_t fsize = (size_t)l->if_size + locals;
    if (c->top + fsize > c->addr + c->size)
        img_die("chunk full");
    uint64_t f = c->top;
    img_iframe_at(im, f, code, off, owner, previous);
    c->top += fsize;
    img_f64(im, c->addr, l->chunk_top, (c->top - c->addr - (uint64_t)l->chunk_data) / 8);
    return f;
}

/* A frame outside any chunk (a generator's, or a C-stack shim). */
IMG_FN uint64_t img_loose_iframe(struct img *im, uint64_t code, int64_t off, int owner,
                                 uint64_t previous)
{
    uint64_t f = img_alloc(im, (size_t)im->lay.if_size + 16);
    img_iframe_at(im, f, code, off, owner, previous);
    return f;
}

/*
 * What a thread's outermost frame links to: 3.12+, the C-stack shim the
 * eval loop called from C pushes (a frame outside any chunk); else none.
 */
IMG_FN uint64_t img_bottom(struct img *im)
{
    if (im->lay.owner_cstack < 0)
        return 0;
    uint64_t tramp = im->minor == 12 ? img_code(im, "<shim>", "<interpreter trampoline>", NULL, 0,
                                                NULL, 0)
                                     : im->none;
    return img_loose_iframe(im, tramp, 0, im->lay.owner_cstack, 0);
}

/* ---- interpreter and thread states --------------------------------------- */

IMG_FN uint64_t img_interp(struct img *im)
{
    const struct pylayout *l = &im->lay;
    int hi = MAX(MAX(l->is_modules, l->is_tstate_head), MAX(l->is_next, l->is_ceval_gil));
    uint64_t in = img_alloc(im, (size_t)hi + 64);
    if (!img_r64(im, im->interp_head))
        img_w64(im, im->interp_head, in);
    return in;
}

IMG_FN uint64_t img_tstate(struct img *im, uint64_t interp, uint64_t thread_id, uint32_t native)
{
    const struct pylayout *l = &im->lay;
    uint64_t ts = img_alloc(im, 512);
    img_f64(im, ts, l->ts_interp, interp);
    img_f64(im, ts, l->ts_thread_id, thread_id);
    if (l->ts_native_thread_id >= 0)
        img_f64(im, ts, l->ts_native_thread_id, native);
    return ts;
}

/* Makes tss[0..n) interp's thread list, in that order. */
IMG_FN void img_link_threads(struct img *im, uint64_t interp, const uint64_t *tss, size_t n)
{
    const struct pylayout *l = &im->lay;
    img_f64(im, interp, l->is_tstate_head, n ? tss[0] : 0);
    for (size_t i = 0; i < n; i++)
        img_f64(im, tss[i], l->ts_next, i + 1 < n ? tss[i + 1] : 0);
}

/*
 * Sets a thread's top frame (and, 3.11+, its data stack: chunk c, may be
 * NULL).  On 3.11/3.12 the _PyCFrame is put inside the thread state when
 * cframe_inside, else in a block of its own, called from the thread
 * state's own (inside it).
 */
IMG_FN void img_set_frame(struct img *im, uint64_t ts, uint64_t frame, const struct img_chunk *c,
                          int cframe_inside)
{
    const struct pylayout *l = &im->lay;
    if (l->ts_frame >= 0) {
        img_f64(im, ts, l->ts_frame, frame);
    } else if (l->ts_current_frame >= 0) {
        img_f64(im, ts, l->ts_current_frame, frame);
    } else {
        /* Inside: after every field the walker reads, within ts_size. */
        uint64_t root = ts + (uint64_t)(l->ts_size - 48);
        uint64_t cf = cframe_inside ? root : img_alloc(im, 32);
        img_f64(im, ts, l->ts_cframe, cf);
        img_f64(im, cf, l->cf_current_frame, frame);
        /* An eval loop's cframe: the one before it is the thread state's own. */
        if (!cframe_inside)
            img_f64(im, cf, l->cf_current_frame + 8, root);
    }
    if (l->ts_datastack_chunk >= 0) {
        img_f64(im, ts, l->ts_datastack_chunk, c ? c->addr : 0);
        img_f64(im, ts, l->ts_datastack_top, c ? c->top : 0);
    }
}

/* ---- dicts -------------------------------------------------------------- */

struct img_kv {
    uint64_t hash, key, value; /* value 0 (and key 0, or 2.7's dummy): deleted */
};

#define IMG_DICT_UNICODE 1u /* 3.11+: unicode-keys kind (no hashes stored) */
#define IMG_DICT_SPLIT 2u   /* 3.6+: values in a separate array, keys shareable */

IMG_FN int img_log2(size_t x)
{
    int k = 0;
    while (((size_t)1 << k) < x)
        k++;
    return k;
}

/* Index table size: a power of two >= 8 with room for n entries at 2/3 load. */
IMG_FN size_t img_dict_slots(size_t n)
{
    size_t s = 8;
    while (s * 2 < n * 3)
        s *= 2;
    return s;
}

/*
 * A 3.6+ keys object holding kv[0..n) as entries in that order.  With
 * IMG_DICT_SPLIT the entries keep no values (3.11+: split kind).
 */
IMG_FN uint64_t img_keys(struct img *im, const struct img_kv *kv, size_t n, unsigned flags)
{
    const struct pylayout *l = &im->lay;
    size_t size = img_dict_slots(n);
    int ixsize = size <= 0x80 ? 1 : size <= 0x8000 ? 2 : 4;
    if (l->dicts == DICT_36)
        ixsize = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
    int general = l->dicts == DICT_36 || !(flags & (IMG_DICT_UNICODE | IMG_DICT_SPLIT));
    size_t esize = general ? 24 : 16;
    size_t ixbytes = size * (size_t)ixsize;
    uint64_t k = img_alloc(im, (size_t)l->dk_indices + ixbytes + (n + 1) * esize);
    img_w64(im, k, 1); /* dk_refcnt */
    if (l->dicts == DICT_36) {
        img_w64(im, k + (uint64_t)l->dk_size, size);
    } else {
        img_w8(im, k + (uint64_t)l->dk_log2_size, (uint8_t)img_log2(size));
        img_w8(im, k + (uint64_t)l->dk_log2_index_bytes, (uint8_t)img_log2(ixbytes));
        img_w8(im, k + (uint64_t)l->dk_kind,
               (uint8_t)((flags & IMG_DICT_SPLIT) ? 2 : (flags & IMG_DICT_UNICODE) ? 1 : 0));
    }
    img_w64(im, k + (uint64_t)l->dk_nentries, n);
    /* Indices: empty (-1) everywhere, then each entry at its probe slot. */
    uint64_t ix = k + (uint64_t)l->dk_indices;
    unsigned char *taken = xcalloc(size, 1);
    for (size_t i = 0; i < ixbytes; i++)
        img_w8(im, ix + i, 0xff);
    for (size_t i = 0; i < n; i++) {
        size_t slot = (size_t)kv[i].hash & (size - 1);
        while (taken[slot])
            slot = (slot + 1) & (size - 1);
        taken[slot] = 1;
        int64_t v = kv[i].value ? (int64_t)i : -2; /* DKIX_DUMMY for deleted */
        img_wmem(im, ix + slot * (size_t)ixsize, &v, (size_t)ixsize);
    }
    free(taken);
    uint64_t e = ix + ixbytes;
    for (size_t i = 0; i < n; i++, e += esize) {
        int keep = !!kv[i].value;
        if (general) {
            img_w64(im, e, kv[i].hash);
            img_w64(im, e + 8, keep ? kv[i].key : 0);
            img_w64(im, e + 16, keep && !(flags & IMG_DICT_SPLIT) ? kv[i].value : 0);
        } else {
            img_w64(im, e, keep ? kv[i].key : 0);
            img_w64(im, e + 8, keep && !(flags & IMG_DICT_SPLIT) ? kv[i].value : 0);
        }
    }
    return k;
}

/* A values array for a split dict or an instance (PyDictValues on 3.11+). */
IMG_FN uint64_t img_values(struct img *im, const struct img_kv *kv, size_t n)
{
    const struct pylayout *l = &im->lay;
    uint64_t v = img_alloc(im, (size_t)l->dv_values + (n + 1) * 8 + 8);
    if (l->dv_values >= 4) { /* 3.13: capacity, size, embedded, valid */
        img_w8(im, v, (uint8_t)(n + 1));
        img_w8(im, v + 1, (uint8_t)n);
        img_w8(im, v + 3, 1);
    }
    for (size_t i = 0; i < n; i++)
        img_w64(im, v + (uint64_t)l->dv_values + 8 * i, kv[i].value);
    return v;
}

/* A 2.7 dict: open addressing, the small table inside the object when it fits. */
IMG_FN uint64_t img_dict27(struct img *im, const struct img_kv *kv, size_t n)
{
    const struct pylayout *l = &im->lay;
    size_t slots = img_dict_slots(n);
    uint64_t d = img_object(im, im->t_dict, 56 + 8 * 24);
    uint64_t table = slots == 8 ? d + 56 : img_alloc(im, slots * 24);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t slot = (size_t)kv[i].hash & (slots - 1);
        while (img_r64(im, table + slot * 24 + 8))
            slot = (slot + 1) & (slots - 1);
        img_w64(im, table + slot * 24, kv[i].hash);
        img_w64(im, table + slot * 24 + 8, kv[i].value ? kv[i].key : im->dummy27);
        img_w64(im, table + slot * 24 + 16, kv[i].value);
        used += !!kv[i].value;
    }
    img_w64(im, d + 16, n); /* ma_fill */
    img_f64(im, d, l->ma_used, used);
    img_f64(im, d, l->ma_mask, slots - 1);
    img_f64(im, d, l->ma_table, table);
    return d;
}

/* A dict of kv[0..n) (entries with value 0 are deleted ones). */
IMG_FN uint64_t img_dict(struct img *im, const struct img_kv *kv, size_t n, unsigned flags)
{
    const struct pylayout *l = &im->lay;
    if (l->dicts == DICT_27)
        return img_dict27(im, kv, n);
    uint64_t d = img_object(im, im->t_dict, 48);
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += !!kv[i].value;
    img_f64(im, d, l->ma_used, used);
    img_f64(im, d, l->ma_keys, img_keys(im, kv, n, flags));
    if (flags & IMG_DICT_SPLIT)
        img_f64(im, d, l->ma_values, img_values(im, kv, n));
    return d;
}

/* A dict of str keys (0-terminated name list) to values. */
IMG_FN uint64_t img_str_dict(struct img *im, const char *const *names, const uint64_t *values,
                             size_t n, unsigned flags)
{
    struct img_kv *kv = xcalloc(n + 1, sizeof(*kv));
    for (size_t i = 0; i < n; i++)
        kv[i] = (struct img_kv){hash_bytes(names[i], strlen(names[i]), 7) >> 1,
                                img_str(im, names[i]), values[i]};
    uint64_t d = img_dict(im, kv, n, flags);
    free(kv);
    return d;
}

/* ---- instances ---------------------------------------------------------- */

enum img_inst {
    IMG_INST_DICT,      /* <= 3.10: a dict at tp_dictoffset */
    IMG_INST_MANAGED,   /* 3.11+: a materialised dict in the managed slot (obj-24) */
    IMG_INST_VALUES,    /* 3.11+: shared keys + values (3.11 obj-32, 3.12 tagged, 3.13 inline) */
};

/* The natural way an instance of this version keeps its attributes. */
IMG_FN enum img_inst img_inst_default(const struct img *im)
{
    return im->lay.managed == MANAGED_NONE ? IMG_INST_DICT : IMG_INST_VALUES;
}

/* Basic size of instance objects made here (object header + one slot). */
#define IMG_INST_SIZE 24

/*
 * An instance of a new type tname with attributes names[i] = values[i],
 * stored the given way.  *type_out (if not NULL) receives the type.
 */
IMG_FN uint64_t img_instance(struct img *im, const char *tname, const char *const *names,
                             const uint64_t *values, size_t n, enum img_inst how,
                             uint64_t *type_out)
{
    const struct pylayout *l = &im->lay;
    uint64_t t = img_type(im, tname);
    uint64_t flags = IMG_TPFLAGS_HEAPTYPE;
    img_f64(im, t, l->tp_basicsize, IMG_INST_SIZE);
    if (type_out)
        *type_out = t;
    /* Room before (3.11+ pre-header) and after (3.13 inline values). */
    uint64_t block = img_alloc(im, 32 + IMG_INST_SIZE + 16 + (n + 1) * 8);
    uint64_t o = block + 32;
    img_w64(im, o, 1);
    img_f64(im, o, l->ob_type, t);
    if (how == IMG_INST_DICT) {
        img_f64(im, t, l->tp_dictoffset, 16);
        img_w64(im, o + 16, img_str_dict(im, names, values, n, 0));
    } else {
        flags |= IMG_TPFLAGS_MANAGED_DICT;
        if (l->managed == MANAGED_313)
            flags |= IMG_TPFLAGS_INLINE_VALUES;
        img_f64(im, t, l->tp_dictoffset, (uint64_t)-1);
        if (how == IMG_INST_MANAGED) {
            img_w64(im, o - 24, img_str_dict(im, names, values, n, 0));
        } else {
            struct img_kv *kv = xcalloc(n + 1, sizeof(*kv));
            for (size_t i = 0; i < n; i++)
                kv[i] = (struct img_kv){hash_bytes(names[i], strlen(names[i]), 7) >> 1,
                                        img_str(im, names[i]), values[i]};
            img_f64(im, t, l->ht_cached_keys, img_keys(im, kv, n, IMG_DICT_SPLIT));
            if (l->managed == MANAGED_311) {
                img_w64(im, o - 32, img_values(im, kv, n));
            } else if (l->managed == MANAGED_312) {
                img_w64(im, o - 24, img_values(im, kv, n) - 1);
            } else {
                uint64_t v = o + IMG_INST_SIZE; /* inline, after the object */
                img_w8(im, v, (uint8_t)(n + 1));
                img_w8(im, v + 1, (uint8_t)n);
                img_w8(im, v + 2, 1);
                img_w8(im, v + 3, 1);
                for (size_t i = 0; i < n; i++)
                    img_w64(im, v + (uint64_t)l->dv_values + 8 * i, values[i]);
            }
            free(kv);
        }
    }
    img_f64(im, t, l->tp_flags, flags);
    return o;
}

/* ---- the threading module ------------------------------------------------ */

/* A Python 3 int of value v (30-bit digits; lv_tag from 3.12). */
IMG_FN uint64_t img_int(struct img *im, int64_t v)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint32_t digits[3];
    int64_t nd = 0;
    while (mag && nd < 3) {
        digits[nd++] = (uint32_t)(mag & 0x3fffffff);
        mag >>= 30;
    }
    uint64_t o = img_object(im, im->t_int, 24 + 4 * 3 + 4);
    if (im->minor >= 12)
        img_w64(im, o + 16, v == 0 ? 1 : ((uint64_t)nd << 3) | (v < 0 ? 2 : 0));
    else
        img_w64(im, o + 16, (uint64_t)(v < 0 ? -nd : nd));
    for (int64_t i = 0; i < nd; i++)
        img_w32(im, o + 24 + 4 * (uint64_t)i, digits[i]);
    return o;
}

/*
 * Makes interp's sys.modules hold a "threading" module whose _active dict
 * maps idents[i] (ints) to Thread instances named names[i] (attribute
 * "_name", 2.7 "_Thread__name").  Returns the _active dict.
 */
IMG_FN uint64_t img_threading(struct img *im, uint64_t interp, const uint64_t *idents,
                              const char *const *names, size_t n)
{
    const struct pylayout *l = &im->lay;
    const char *attr[2] = {im->major == 2 ? "_Thread__name" : "_name", "_ident"};
    struct img_kv *kv = xcalloc(n + 1, sizeof(*kv));
    for (size_t i = 0; i < n; i++) {
        uint64_t ident = img_object(im, im->t_int, 32);
        uint64_t vals[2] = {img_str(im, names[i]), ident};
        uint64_t th = img_instance(im, "Thread", attr, vals, 2, img_inst_default(im), NULL);
        kv[i] = (struct img_kv){idents[i], ident, th};
    }
    uint64_t active = img_dict(im, kv, n, 0);
    free(kv);
    const char *mnames[3] = {"_shutdown", "_active", "_limbo"};
    uint64_t mvals[3] = {im->none, active, img_dict(im, NULL, 0, 0)};
    uint64_t mod = img_object(im, im->t_module, 64);
    img_f64(im, mod, l->md_dict, img_str_dict(im, mnames, mvals, 3, 0));
    const char *snames[3] = {"sys", "threading", "time"};
    uint64_t svals[3] = {img_object(im, im->t_module, 64), mod, img_object(im, im->t_module, 64)};
    img_f64(im, interp, l->is_modules, img_str_dict(im, snames, svals, 3, 0));
    return active;
}

/* ---- values (dump --locals) ---------------------------------------------- */

/* Subclass flags of the built-in types (Include/object.h). */
#define IMG_TPFLAGS_INT_SUBCLASS (1ull << 23)     /* 2.7 int */
#define IMG_TPFLAGS_LONG_SUBCLASS (1ull << 24)
#define IMG_TPFLAGS_LIST_SUBCLASS (1ull << 25)
#define IMG_TPFLAGS_TUPLE_SUBCLASS (1ull << 26)
#define IMG_TPFLAGS_BYTES_SUBCLASS (1ull << 27)   /* 2.7 str */
#define IMG_TPFLAGS_UNICODE_SUBCLASS (1ull << 28)
#define IMG_TPFLAGS_DICT_SUBCLASS (1ull << 29)

/* A static (not heap) type with the given flags. */
IMG_FN uint64_t img_static_type(struct img *im, const char *name, uint64_t flags)
{
    uint64_t t = img_type(im, name);
    img_f64(im, t, im->lay.tp_flags, flags);
    return t;
}

/* A Python 3 int, or a 2.7 long, of nd 30-bit digits (least significant first). */
IMG_FN uint64_t img_long_digits(struct img *im, int negative, const uint32_t *d, size_t nd)
{
    const struct pylayout *l = &im->lay;
    uint64_t o = img_object(im, im->major == 2 ? im->t_long27 : im->t_int,
                            (size_t)l->long_digit + 4 * nd + 4);
    if (l->long_tagged)
        img_w64(im, o + (uint64_t)l->long_size, nd == 0 ? 1 : ((uint64_t)nd << 3) | (negative ? 2 : 0));
    else
        img_w64(im, o + (uint64_t)l->long_size, negative ? (uint64_t)0 - nd : nd);
    for (size_t i = 0; i < nd; i++)
        img_w32(im, o + (uint64_t)l->long_digit + 4 * i, d[i]);
    return o;
}

/* The version's small int: 2.7 a PyIntObject, 3.x an int. */
IMG_FN uint64_t img_smallint(struct img *im, int64_t v)
{
    if (im->major != 2)
        return img_int(im, v);
    uint64_t o = img_object(im, im->t_int, 24);
    img_w64(im, o + (uint64_t)im->lay.int27_ival, (uint64_t)v);
    return o;
}

IMG_FN uint64_t img_float(struct img *im, double v)
{
    uint64_t o = img_object(im, im->t_float, 24);
    img_wmem(im, o + (uint64_t)im->lay.float_fval, &v, 8);
    return o;
}

IMG_FN uint64_t img_tuple(struct img *im, const uint64_t *items, size_t n)
{
    uint64_t o = img_object(im, im->t_tuple, (size_t)im->lay.tuple_item + 8 * n);
    img_w64(im, o + 16, n);
    for (size_t i = 0; i < n; i++)
        img_w64(im, o + (uint64_t)im->lay.tuple_item + 8 * i, items[i]);
    return o;
}

IMG_FN uint64_t img_list(struct img *im, const uint64_t *items, size_t n)
{
    uint64_t o = img_object(im, im->t_list, 48);
    uint64_t arr = img_alloc(im, 8 * n + 8);
    img_w64(im, o + 16, n);
    img_w64(im, o + (uint64_t)im->lay.list_item, arr);
    img_w64(im, o + (uint64_t)im->lay.list_item + 8, n); /* allocated */
    for (size_t i = 0; i < n; i++)
        img_w64(im, arr + 8 * i, items[i]);
    return o;
}

/* A set (or frozenset) of keys[i] with hashes i+1, in a table of 8 or more slots. */
IMG_FN uint64_t img_set(struct img *im, const uint64_t *keys, size_t n, int frozen)
{
    const struct pylayout *l = &im->lay;
    size_t slots = img_dict_slots(n);
    uint64_t o = img_object(im, frozen ? im->t_frozenset : im->t_set, 200);
    uint64_t table = img_alloc(im, slots * (size_t)l->setentry_size);
    img_w64(im, o + 16, n); /* fill */
    img_w64(im, o + (uint64_t)l->set_used, n);
    img_w64(im, o + (uint64_t)l->set_mask, slots - 1);
    img_w64(im, o + (uint64_t)l->set_table, table);
    for (size_t i = 0; i < n; i++) {
        uint64_t e = table + (i + 1) % slots * (uint64_t)l->setentry_size;
        img_w64(im, e + (uint64_t)l->setentry_key, keys[i]);
        img_w64(im, e + (uint64_t)l->setentry_hash, i + 1);
    }
    return o;
}

IMG_FN uint64_t img_cell(struct img *im, uint64_t ref)
{
    uint64_t o = img_object(im, im->t_cell, 24);
    img_w64(im, o + (uint64_t)im->lay.cell_ref, ref);
    return o;
}

/* ---- frames with variables (dump --locals) ------------------------------- */

/* Where each variable lives (<= 3.10) or its localsplus kind (3.11+). */
#define IMG_VAR_LOCAL 0x20
#define IMG_VAR_CELL 0x40
#define IMG_VAR_FREE 0x80
#define IMG_VAR_HIDDEN 0x10

struct img_var {
    const char *name;
    unsigned kind;      /* IMG_VAR_*: locals first, then cells, then free (<= 3.10) */
    uint64_t value;     /* the slot's content (0: unbound) */
};

/*
 * A frame running a new code object named fname with variables vars[0..n)
 * (the first nargs are its parameters, flags its co_flags): a frame object
 * (<= 3.10) or an interpreter frame (3.11+) with its localsplus filled.
 * *code_out (if not NULL) receives the code object.
 */
IMG_FN uint64_t img_frame_vars(struct img *im, const char *fname, const struct img_var *vars,
                               size_t n, int nargs, uint32_t flags, uint64_t *code_out)
{
    const struct pylayout *l = &im->lay;
    uint64_t code = img_code(im, "vars.py", fname, NULL, 1, NULL, 0);
    uint64_t *names = xcalloc(n + 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
        names[i] = img_str(im, vars[i].name);
    img_f32(im, code, l->co_argcount, (uint32_t)nargs);
    img_f32(im, code, l->co_argflags, flags);
    uint64_t f;
    if (l->frames == FRAME_OBJECTS) {
        size_t c[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++)
            c[vars[i].kind == IMG_VAR_LOCAL ? 0 : vars[i].kind == IMG_VAR_CELL ? 1 : 2]++;
        img_f32(im, code, l->co_nlocals, (uint32_t)c[0]);
        img_f64(im, code, l->co_varnames, img_tuple(im, names, c[0]));
        img_f64(im, code, l->co_cellvars, img_tuple(im, names + c[0], c[1]));
        img_f64(im, code, l->co_freevars, img_tuple(im, names + c[0] + c[1], c[2]));
        f = img_object(im, im->t_frame, (size_t)l->fo_localsplus + 8 * n + 8);
        img_f64(im, f, l->fo_code, code);
        for (size_t i = 0; i < n; i++)
            img_w64(im, f + (uint64_t)l->fo_localsplus + 8 * i, vars[i].value);
    } else {
        uint8_t *kinds = xcalloc(n + 1, 1);
        for (size_t i = 0; i < n; i++)
            kinds[i] = (uint8_t)vars[i].kind;
        img_f32(im, code, l->co_nlocalsplus, (uint32_t)n);
        img_f64(im, code, l->co_localsplusnames, img_tuple(im, names, n));
        img_f64(im, code, l->co_localspluskinds, img_bytes(im, kinds, n));
        free(kinds);
        f = img_alloc(im, (size_t)l->if_localsplus + 8 * n + 8);
        img_iframe_at(im, f, code, 0, 0, 0);
        /* 3.14+: a slot is a stack reference; every other one here is
         * borrowed (deferred), its low bit set, as the interpreter leaves
         * immortal objects and constants. */
        for (size_t i = 0; i < n; i++)
            img_w64(im, f + (uint64_t)l->if_localsplus + 8 * i,
                    vars[i].value | (l->code_tagged && vars[i].value && i % 2 ? 1 : 0));
    }
    free(names);
    if (code_out)
        *code_out = code;
    return f;
}

/* ---- lifecycle ---------------------------------------------------------- */

/*
 * Starts an image for major.minor of cap bytes (0: the default).  live: the
 * image sits at its own address, to be read through mem_new_pid(getpid()).
 */
IMG_FN void img_init_ex(struct img *im, int major, int minor, size_t cap, int live)
{
    const struct pylayout *l = layout_for(major, minor);
    memset(im, 0, sizeof(*im));
    if (!l)
        img_die("no layout for that version");
    im->lay = *l;
    im->major = major;
    im->minor = minor;
    im->cap = cap ? cap : IMG_DEFAULT_CAP;
    im->live = live;
    if (live) {
        im->buf = aligned_alloc(4096, (im->cap + 4095) & ~(size_t)4095);
        if (!im->buf)
            img_die("out of memory");
        im->base = (uint64_t)(uintptr_t)im->buf;
    } else {
        im->buf = xmalloc(im->cap);
        im->base = IMG_BASE;
    }
    /* Leave the first 64 bytes unused so that no object sits at the base. */
    im->used = 64;
    im->t_type = img_object(im, 0, 1024);
    img_f64(im, im->t_type, l->ob_type, im->t_type);
    img_f64(im, im->t_type, l->tp_name, img_cstr(im, "type"));
    im->t_object = img_type(im, "object");
    im->t_str = img_type(im, "str");
    im->t_unicode = img_type(im, "unicode");
    im->t_bytes = major == 2 ? im->t_str : img_type(im, "bytes");
    im->t_code = img_type(im, "code");
    im->t_frame = img_type(im, "frame");
    im->t_dict = img_type(im, "dict");
    im->t_int = img_type(im, "int");
    im->t_module = img_type(im, "module");
    im->t_none = img_type(im, "NoneType");
    im->t_gen = img_type(im, "generator");
    im->none = img_object(im, im->t_none, 16);
    im->t_float = img_type(im, "float");
    im->t_tuple = img_type(im, "tuple");
    im->t_list = img_type(im, "list");
    im->t_set = img_type(im, "set");
    im->t_frozenset = img_type(im, "frozenset");
    im->t_bool = img_type(im, "bool");
    im->t_cell = img_type(im, "cell");
    im->t_long27 = major == 2 ? img_type(im, "long") : im->t_int;
    im->true_ = img_object(im, im->t_bool, 32);
    im->false_ = img_object(im, im->t_bool, 32);
    if (major == 2) {
        img_w64(im, im->true_ + 16, 1);
    } else {
        img_w64(im, im->true_ + 16, minor >= 12 ? 1u << 3 : 1);
        img_w64(im, im->false_ + 16, minor >= 12 ? 1 : 0);
        img_w32(im, im->true_ + 24, 1);
    }
    im->dummy27 = img_str27(im, "<dummy key>", 11);
    /* _PyRuntime (3.7+) with interpreters.head, or 2.7/3.6's interp_head. */
    im->runtime = img_alloc(im, 2048);
    im->interp_head = im->runtime + (uint64_t)MAX(l->rt_interpreters_head, 0);
}

IMG_FN void img_init(struct img *im, int major, int minor, size_t cap)
{
    img_init_ex(im, major, minor, cap, 0);
}

/* Fills im->rt as pyrt_attach would for this image. */
IMG_FN void img_fill_rt(struct img *im)
{
    struct pyrt *rt = &im->rt;
    memset(rt, 0, sizeof(*rt));
    rt->pid = im->live ? getpid() : 0;
    rt->mem = im->m;
    rt->layout = im->lay;
    rt->major = im->major;
    rt->minor = im->minor;
    snprintf(rt->version, sizeof(rt->version), "%d.%d", im->major, im->minor);
    rt->runtime = im->lay.rt_interpreters_head >= 0 ? im->runtime : 0;
    rt->interp_head = im->interp_head;
    rt->code_type = im->t_code;
    rt->frame_type = im->t_frame;
    rt->unicode27_width = 4;
    uint64_t *k = rt->known;
    k[PYK_NONE] = im->none, k[PYK_TRUE] = im->true_, k[PYK_FALSE] = im->false_;
    k[PYK_INT] = im->t_int, k[PYK_BOOL] = im->t_bool, k[PYK_FLOAT] = im->t_float;
    k[PYK_STR] = im->t_str, k[PYK_TUPLE] = im->t_tuple, k[PYK_LIST] = im->t_list;
    k[PYK_DICT] = im->t_dict, k[PYK_SET] = im->t_set, k[PYK_FROZENSET] = im->t_frozenset;
    k[PYK_CELL] = im->t_cell;
    if (im->major == 2) {
        k[PYK_LONG27] = im->t_long27;
        k[PYK_UNICODE27] = im->t_unicode;
    } else {
        k[PYK_BYTES] = im->t_bytes;
    }
}


/*
 * Makes im->m from the staging bytes as they are now (again, after
 * changes; the old source is freed) and fills im->rt.  A live image is read
 * through the process itself and sees later changes without a commit.
 */
IMG_FN void img_commit(struct img *im)
{
    int width = im->rt.unicode27_width;
    mem_free(im->m);
    if (im->live) {
        im->m = mem_new_pid(getpid());
    } else {
        im->m = mem_new_buffer();
        uint64_t start = im->base, end = im->base + im->used;
        for (size_t i = 0; i <= im->ngaps; i++) {
            uint64_t stop = i < im->ngaps ? im->gaps[i][0] : end;
            if (stop > start &&
                mem_buffer_add(im->m, start, im->buf + (start - im->base), stop - start) < 0)
                img_die("mem_buffer_add failed");
            if (i < im->ngaps)
                start = im->gaps[i][1];
        }
    }
    img_fill_rt(im);
    if (width)
        im->rt.unicode27_width = width;
}

/*
 * Gives the built-in types the flags of static types with their subclass
 * bits, as an interpreter whose symbols are stripped would be read (and
 * forgets their addresses: call after img_commit).
 */
IMG_FN void img_forget_known(struct img *im)
{
    int py2 = im->major == 2;
    const struct {
        uint64_t t;
        uint64_t flags;
    } f[] = {
        {im->t_int, py2 ? IMG_TPFLAGS_INT_SUBCLASS : IMG_TPFLAGS_LONG_SUBCLASS},
        {im->t_long27, IMG_TPFLAGS_LONG_SUBCLASS},
        {im->t_bool, py2 ? IMG_TPFLAGS_INT_SUBCLASS : IMG_TPFLAGS_LONG_SUBCLASS},
        {im->t_str, py2 ? IMG_TPFLAGS_BYTES_SUBCLASS : IMG_TPFLAGS_UNICODE_SUBCLASS},
        {im->t_unicode, IMG_TPFLAGS_UNICODE_SUBCLASS},
        {im->t_bytes, IMG_TPFLAGS_BYTES_SUBCLASS},
        {im->t_tuple, IMG_TPFLAGS_TUPLE_SUBCLASS},
        {im->t_list, IMG_TPFLAGS_LIST_SUBCLASS},
        {im->t_dict, IMG_TPFLAGS_DICT_SUBCLASS},
        {im->t_float, 0}, {im->t_set, 0}, {im->t_frozenset, 0}, {im->t_none, 0}, {im->t_cell, 0},
        {im->t_code, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(f); i++)
        img_f64(im, f[i].t, im->lay.tp_flags, f[i].flags);
    img_commit(im);
    memset(im->rt.known, 0, sizeof(im->rt.known));
    im->rt.code_type = 0;
}

IMG_FN void img_release(struct img *im)
{
    mem_free(im->m);
    free(im->buf);
    memset(im, 0, sizeof(*im));
}

/*
 * Fuzz edits (fuzzpath.h, fuzzasync.h): im's staging bytes restored from
 * pristine[0..used), then each 8 bytes of data applied as one edit:
 * kind (1), offset (3, little-endian), value (4).
 *   kind & 3 == 0: a byte = value;  1: a word = a pointer into the image;
 *   2: a word = 0;  3: a word = value (sign-extended), or with kind & 0x40
 *   the word plus value's low 16 bits (signed: a pointer nudged).
 *   kind & 0x80: the offset picks a place in one of the nhot pointer-dense
 *   ranges hot[k] = {start, length} (offset >> 12: which, offset & 0xfff:
 *   where in it), else offset % used.
 * The caller commits the image.
 */
IMG_FN void img_apply_edits(struct img *im, const unsigned char *pristine, size_t used,
                            const uint64_t (*hot)[2], size_t nhot, const uint8_t *data,
                            size_t size)
{
    memcpy(im->buf, pristine, used);
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint8_t kind = data[i];
        uint32_t off = (uint32_t)data[i + 1] | (uint32_t)data[i + 2] << 8 |
                       (uint32_t)data[i + 3] << 16;
        uint32_t val;
        memcpy(&val, data + i + 4, 4);
        uint64_t at;
        if ((kind & 0x80) && nhot) {
            const uint64_t *h = hot[(off >> 12) % nhot];
            at = h[0] + (off & 0xfff) % h[1];
        } else {
            at = im->base + off % used;
        }
        if ((kind & 3) != 0) {
            at &= ~(uint64_t)7;
            if (at + 8 > im->base + used)
                continue;
        }
        switch (kind & 3) {
        case 0: img_w8(im, at, (uint8_t)val); break;
        case 1: img_w64(im, at, im->base + val % used); break;
        case 2: img_w64(im, at, 0); break;
        case 3:
            if (kind & 0x40)
                img_w64(im, at, img_r64(im, at) + (uint64_t)(int64_t)(int16_t)val);
            else
                img_w64(im, at, (uint64_t)(int64_t)(int32_t)val);
            break;
        }
    }
}

#endif
