#include "symbolizer/codecache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "symbolizer/linetable.h"
#include "symbolizer/pystr.h"

/* Remembered (addrq -> frame id) pairs per code object. */
#define LINE_MEMO 4

struct code_entry {
    uint64_t addr;
    /* What validation compares: the pointers and the first line. */
    uint64_t filename, name, qualname, linetable;
    int32_t firstlineno;
    uint32_t func;
    uint32_t gen;  /* the resolve call that last validated or loaded it */
    uint8_t *table;
    uint8_t *bytecode;     /* a copy of the bytecode (only opcodes at instruction starts are
                            * used), then (3.11+) a bitmap of the code units that start one */
    uint32_t starts_known; /* 3.11+: code units whose instruction is known (the bitmap's extent) */
    uint32_t frame_bytes;  /* 3.11+: the size of its frames on the data stack, 0 unknown */
    int generator;         /* <= 3.10: a generator, coroutine or async generator's code */
    int shim;              /* 3.12: the interpreter trampoline (C-stack entry frames run it) */
    int init_shim;         /* 3.13+: the frame under an __init__ a class call pushed */
    int special;           /* named __x__: a special method (or so named) */
    int table_bad;         /* its line table is no bytes object: lines are unknown (0) */
    uint32_t bytecode_len;
    uint32_t table_len;
    int64_t memo_addrq[LINE_MEMO];
    uint32_t memo_frame[LINE_MEMO];
    uint32_t memo_next;
};

struct codecache {
    struct mem *m;
    struct code_facts cf;
    const struct opcode_facts *ops; /* NULL: frames are not checked */
    struct names *names;
    uint64_t code_type;
    uint64_t seen_code_type; /* a type confirmed by name to be "code" */
    uint64_t seen_str_type;   /* ... to be the type of co_filename ("str") */
    uint64_t seen_table_type; /* ... to be the type of line tables ("bytes"; 2.7 "str") */
    int unicode27_width;
    /* The entries, in blocks that never move: a pointer to one stays good
     * until a resolve empties a full cache (a peek may load more). */
    struct code_entry **blocks;
    size_t n, nblocks, blockcap;
    struct htab index;
    uint32_t gen;
    /* The header span covering every field read on a load / on validation. */
    int hdr_len, span_start, span_len;
    unsigned char *vbuf;
    size_t vbufcap;
    struct mem_iov *iov;
    size_t iovcap;
    struct code_entry **pending;
    size_t pendcap;
    struct code_entry **found; /* lookup: each address's entry, or NULL */
    size_t foundcap;
    struct codecache_stats stats;
};

static void field_span(int off, int width, int *lo, int *hi)
{
    if (off < 0)
        return;
    *lo = MIN(*lo, off);
    *hi = MAX(*hi, off + width);
}

struct codecache *codecache_new(struct mem *m, const struct code_facts *cf, struct names *names,
                                uint64_t code_type, int unicode27_width)
{
    struct codecache *cc = xcalloc(1, sizeof(*cc));
    const struct code_facts *l = &cc->cf;
    cc->cf = *cf;
    cc->ops = cf->ops;
    cc->gen = 1; /* generation 0 marks entries that never count as validated */
    cc->m = m;
    cc->names = names;
    cc->code_type = code_type;
    cc->unicode27_width = unicode27_width;
    int lo = 1 << 30, hi = 0;
    /* The reference count and type too: a freed code object keeps its
     * header but for the first word (the allocator's free-list link). */
    field_span(0, 8, &lo, &hi);
    field_span(l->ob_type, 8, &lo, &hi);
    field_span(l->co_filename, 8, &lo, &hi);
    field_span(l->co_name, 8, &lo, &hi);
    field_span(l->co_qualname, 8, &lo, &hi);
    field_span(l->co_linetable, 8, &lo, &hi);
    field_span(l->co_firstlineno, 4, &lo, &hi);
    cc->span_start = lo;
    cc->span_len = hi - lo;
    cc->hdr_len = hi;
    /* The bytecode's size (ob_size, 3.11+) or its bytes object (<= 3.10). */
    if (cc->ops)
        cc->hdr_len = MAX(cc->hdr_len, l->co_code > 0 ? l->co_code + 8 : 24);
    if (l->co_flags > 0)
        cc->hdr_len = MAX(cc->hdr_len, l->co_flags + 4);
    if (l->co_stacksize > 0 && l->co_nlocalsplus > 0)
        cc->hdr_len = MAX(cc->hdr_len, MAX(l->co_stacksize, l->co_nlocalsplus) + 4);
    return cc;
}

/* Entries per block of cc->blocks. */
#define BLOCK 256

static struct code_entry *entry_at(const struct codecache *cc, size_t i)
{
    return &cc->blocks[i / BLOCK][i % BLOCK];
}

/* Frees every entry's tables: the cache is empty. */
static void empty(struct codecache *cc)
{
    for (size_t i = 0; i < cc->n; i++) {
        free(entry_at(cc, i)->table);
        free(entry_at(cc, i)->bytecode);
    }
    cc->n = 0;
    htab_clear(&cc->index);
}

void codecache_free(struct codecache *cc)
{
    if (!cc)
        return;
    empty(cc);
    for (size_t i = 0; i < cc->nblocks; i++)
        free(cc->blocks[i]);
    free(cc->blocks);
    free(cc->vbuf);
    free(cc->iov);
    free(cc->pending);
    free(cc->found);
    htab_release(&cc->index);
    free(cc);
}

const struct codecache_stats *codecache_stats(const struct codecache *cc)
{
    return &cc->stats;
}

uint32_t codecache_unreadable_frame(struct codecache *cc, uint64_t addr)
{
    char name[64];
    int n = snprintf(name, sizeof(name), "<unreadable code object at 0x%" PRIx64 ">", addr);
    uint32_t ns = names_str(cc->names, name, (size_t)n);
    uint32_t fs = names_str(cc->names, CODECACHE_UNKNOWN_FILE, strlen(CODECACHE_UNKNOWN_FILE));
    return names_frame(cc->names, names_func(cc->names, ns, fs, 0), NAMES_LINE_UNKNOWN);
}

uint32_t codecache_func(const struct code_entry *e)
{
    return e->func;
}

static int addr_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct codecache *cc = ctx;
    return entry_at(cc, idx)->addr == *(const uint64_t *)key;
}

static struct code_entry *find(struct codecache *cc, uint64_t addr)
{
    uint32_t i = htab_find(&cc->index, hash_u64(addr), addr_eq, cc, &addr);
    return i == HTAB_NONE ? NULL : entry_at(cc, i);
}

/* Copies the validated fields out of a header span that starts at base. */
static void fields_from(const struct codecache *cc, const unsigned char *buf, int base,
                        struct code_entry *e)
{
    const struct code_facts *l = &cc->cf;
    memcpy(&e->filename, buf + l->co_filename - base, 8);
    memcpy(&e->name, buf + l->co_name - base, 8);
    e->qualname = 0;
    if (l->co_qualname >= 0)
        memcpy(&e->qualname, buf + l->co_qualname - base, 8);
    memcpy(&e->linetable, buf + l->co_linetable - base, 8);
    memcpy(&e->firstlineno, buf + l->co_firstlineno - base, 4);
}

/*
 * 1 when the reference count and type at the start of a header span (that
 * begins at base) are those of a live code object.  A freed one's first word
 * is a free-list link (an address, or 0); its type word survives.
 */
static int is_code_type(struct codecache *cc, uint64_t type);

static int alive_code(struct codecache *cc, const unsigned char *buf, int base)
{
    uint64_t refcnt, type;
    memcpy(&refcnt, buf - base, 8);
    memcpy(&type, buf + cc->cf.ob_type - base, 8);
    /* The count is the word's low half, never 0 in a live object; above it
     * 16 bits that stay 0 (3.14+: the count's overflow), then 16 that 3.14+
     * keep flags in (a static immortal object's word is 0x0005'0000'c000'0000).
     * A free-list link is an address: 0 or, mapped high, with those middle
     * bits set. */
    return (uint32_t)refcnt != 0 && ((refcnt >> 32) & 0xffff) == 0 && is_code_type(cc, type);
}

static int same_fields(const struct code_entry *a, const struct code_entry *b)
{
    return a->filename == b->filename && a->name == b->name && a->qualname == b->qualname &&
           a->linetable == b->linetable && a->firstlineno == b->firstlineno;
}

static int is_code_type(struct codecache *cc, uint64_t type)
{
    if (!type)
        return 0;
    if (cc->code_type)
        return type == cc->code_type;
    if (type == cc->seen_code_type)
        return 1;
    uint64_t name;
    char buf[8];
    if (mem_read_u64(cc->m, type + (uint64_t)cc->cf.tp_name, &name) < 0 ||
        mem_read(cc->m, name, buf, 5) < 0 || memcmp(buf, "code", 5) != 0)
        return 0;
    cc->seen_code_type = type;
    return 1;
}

/*
 * 1 when the object at obj is of the type named name (seen: the type
 * address once confirmed), 0 when it is of another, -errno when its type
 * cannot be read.
 */
static int of_type(struct codecache *cc, uint64_t obj, const char *name, uint64_t *seen)
{
    uint64_t type, tp_name;
    char buf[8];
    size_t n = strlen(name) + 1;
    int ret = mem_read_u64(cc->m, obj + (uint64_t)cc->cf.ob_type, &type);
    if (ret < 0)
        return ret;
    if (!type)
        return 0;
    if (type == *seen)
        return 1;
    if (n > sizeof(buf) || mem_read_u64(cc->m, type + (uint64_t)cc->cf.tp_name, &tp_name) < 0 ||
        mem_read(cc->m, tp_name, buf, n) < 0 || memcmp(buf, name, n) != 0)
        return 0;
    *seen = type;
    return 1;
}

static int read_string(struct codecache *cc, uint64_t addr, struct strbuf *out)
{
    enum pystr_type t = cc->cf.str.bytes27 ? PYSTR_BYTES27 : PYSTR_UNICODE;
    int ret = pystr_read(cc->m, &cc->cf.str, addr, t, cc->unicode27_width, out);
    return ret < 0 ? ret : 0;
}

/* Reads the line table (a bytes object, a str on 2.7) into a new buffer. */
static int read_table(struct codecache *cc, uint64_t addr, uint8_t **out, uint32_t *len)
{
    int64_t size;
    int ret = mem_read(cc->m, addr + (uint64_t)cc->cf.str.bytes_size, &size, 8);
    *out = NULL;
    *len = 0;
    if (ret < 0)
        return ret;
    if (size < 0)
        return -EINVAL;
    if (size == 0 || size > CODECACHE_MAX_TABLE)
        return 0;
    uint8_t *t = xmalloc((size_t)size);
    if ((ret = mem_read(cc->m, addr + (uint64_t)cc->cf.str.bytes_sval, t, (size_t)size)) < 0) {
        free(t);
        return ret;
    }
    *out = t;
    *len = (uint32_t)size;
    return 0;
}

/*
 * 3.11+: marks in the bitmap after the bytecode which code units start an
 * instruction, walking the opcodes and their caches from the first, up to
 * an opcode whose size its byte does not tell (instrumentation).
 */
static void mark_starts(const struct opcode_facts *ops, struct code_entry *e)
{
    uint32_t units = e->bytecode_len / 2, u = 0;
    uint8_t *bits = e->bytecode + e->bytecode_len;
    while (u < units) {
        int caches = codefacts_caches(ops, e->bytecode[2 * u]);
        if (caches < 0)
            break;
        bits[u >> 3] |= (uint8_t)(1u << (u & 7));
        u += 1 + (uint32_t)caches;
    }
    e->starts_known = MIN(u, units);
}

/*
 * Copies the bytecode, to tell later whether a frame can be calling another
 * (codecache_can_call).  Only the opcodes at instruction starts are looked
 * at: specialisation rewrites an instruction in place, but within its
 * family, and the tables list whole families.  A failure leaves no copy,
 * and frames of that code are not checked.
 */
static void read_bytecode(struct codecache *cc, uint64_t addr, const unsigned char *hdr,
                          struct code_entry *e)
{
    const struct code_facts *l = &cc->cf;
    if (!cc->ops)
        return;
    if (l->co_code_adaptive > 0) {
        int64_t units;
        memcpy(&units, hdr + l->ob_size, 8); /* 2-byte code units */
        if (units <= 0 || units > (int64_t)CODECACHE_MAX_TABLE / 2)
            return;
        size_t len = (size_t)units * 2, bits = ((size_t)units + 7) / 8;
        uint8_t *b = xcalloc(1, len + bits);
        if (mem_read(cc->m, addr + (uint64_t)l->co_code_adaptive, b, len) < 0) {
            free(b);
            return;
        }
        e->bytecode = b;
        e->bytecode_len = (uint32_t)len;
        if (cc->ops->caches)
            mark_starts(cc->ops, e);
    } else if (l->co_code > 0) {
        uint64_t bytes;
        memcpy(&bytes, hdr + l->co_code, 8);
        if (read_table(cc, bytes, &e->bytecode, &e->bytecode_len) < 0) {
            free(e->bytecode);
            e->bytecode = NULL;
            e->bytecode_len = 0;
        }
    }
}

/*
 * 0 when the code object at addr still has the type, names, line table and
 * code of header hdr (read at first), else -EAGAIN.
 */
static int still_there(struct codecache *cc, uint64_t addr, const unsigned char *hdr,
                       const struct code_entry *e)
{
    const struct code_facts *l = &cc->cf;
    unsigned char now[256];
    struct code_entry f;
    int ret;
    if ((ret = mem_read(cc->m, addr, now, (size_t)cc->hdr_len)) < 0)
        return ret;
    fields_from(cc, now, 0, &f);
    if (!alive_code(cc, now, 0) || memcmp(now + l->ob_type, hdr + l->ob_type, 8) != 0 ||
        !same_fields(e, &f) ||
        (l->co_code > 0 && memcmp(now + l->co_code, hdr + l->co_code, 8) != 0))
        return -EAGAIN;
    return 0;
}

/*
 * 3.11+: the bytes a frame of the code with header hdr takes on the data
 * stack (its specials, locals and value stack), or 0.
 */
static uint32_t frame_bytes(const struct code_facts *l, const unsigned char *hdr)
{
    int32_t nlocals, stack;
    if (l->co_stacksize < 0 || l->co_nlocalsplus < 0 || l->frame_size <= 0)
        return 0;
    memcpy(&nlocals, hdr + l->co_nlocalsplus, 4);
    memcpy(&stack, hdr + l->co_stacksize, 4);
    if (nlocals < 0 || stack < 0 || nlocals > 65536 || stack > 65536)
        return 0;
    /* The specials are the frame struct's fixed part, in pointer slots. */
    return (uint32_t)((l->frame_size - 1) / 8 + nlocals + stack) * 8;
}

/* 1 for a name (qualified or not) whose last part is __x__. */
static int special_name(const char *name, size_t len)
{
    if (!name)
        return 0;
    const char *dot = memrchr(name, '.', len);
    if (dot) {
        len -= (size_t)(dot + 1 - name);
        name = dot + 1;
    }
    return len > 4 && name[0] == '_' && name[1] == '_' && name[len - 1] == '_' &&
           name[len - 2] == '_';
}

/* Reads the code object at addr into e (whose old table the caller freed). */
static int load(struct codecache *cc, uint64_t addr, struct code_entry *e)
{
    unsigned char hdr[256];
    struct strbuf name = STRBUF_INIT, file = STRBUF_INIT;
    uint64_t type;
    int ret;
    memset(e, 0, sizeof(*e));
    e->addr = addr;
    if (!addr || (addr & 7) || cc->hdr_len > (int)sizeof(hdr))
        return -EINVAL;
    if ((ret = mem_read(cc->m, addr, hdr, (size_t)cc->hdr_len)) < 0)
        return ret;
    memcpy(&type, hdr + cc->cf.ob_type, 8);
    if (!alive_code(cc, hdr, 0))
        return -EINVAL;
    fields_from(cc, hdr, 0, e);
    uint64_t name_obj = e->qualname ? e->qualname : e->name;
    if ((ret = read_string(cc, name_obj, &name)) < 0 && e->qualname)
        ret = read_string(cc, e->name, &name);
    /* A file name or line table of the wrong type says nothing of the
     * code: shown as such rather than decoded as garbage. */
    int is;
    if (ret == 0 && (ret = is = of_type(cc, e->filename, "str", &cc->seen_str_type)) == 1)
        ret = read_string(cc, e->filename, &file);
    else if (ret == 0)
        sb_adds(&file, CODECACHE_INVALID_FILE);
    const char *table_type = cc->cf.str.bytes27 ? "str" : "bytes";
    if (ret == 0 && (ret = is = of_type(cc, e->linetable, table_type, &cc->seen_table_type)) >= 0) {
        e->table_bad = !is;
        ret = is ? read_table(cc, e->linetable, &e->table, &e->table_len) : 0;
    }
    if (ret == 0)
        read_bytecode(cc, addr, hdr, e);
    /* The strings were read one after another while the target ran: had the
     * code object been freed meanwhile, they may be freed and reused too, and
     * the names a mix of two code objects or garbage.  The header read again
     * must show the same code object. */
    if (ret == 0 && (ret = still_there(cc, addr, hdr, e)) < 0)
        cc->stats.moved++;
    if (ret == 0) {
        e->shim = cc->cf.trampoline && name.buf && file.buf &&
                  strcmp(name.buf, "<interpreter trampoline>") == 0 && strcmp(file.buf, "<shim>") == 0;
        e->special = special_name(name.buf, name.len);
        /* 3.13+: the frame a call of a class pushes under its __init__, to
         * check what __init__ returns (the interpreter's own code). */
        e->init_shim = cc->cf.init_shim && name.buf && file.buf &&
                       strcmp(name.buf, "__init__") == 0 &&
                       strcmp(file.buf, "__init__") == 0;
        uint32_t ns = names_str(cc->names, name.buf ? name.buf : "", name.len);
        uint32_t fs = names_str(cc->names, file.buf ? file.buf : "", file.len);
        e->func = names_func(cc->names, ns, fs, e->firstlineno);
        for (int i = 0; i < LINE_MEMO; i++)
            e->memo_addrq[i] = INT64_MIN;
        e->frame_bytes = frame_bytes(&cc->cf, hdr);
        if (cc->cf.co_flags > 0) {
            uint32_t flags;
            memcpy(&flags, hdr + cc->cf.co_flags, 4);
            e->generator = (flags & cc->cf.generator_flags) != 0;
        }
    }
    sb_release(&name);
    sb_release(&file);
    return ret;
}

static struct code_entry *insert(struct codecache *cc, uint64_t addr, int *err)
{
    struct code_entry e;
    int ret = load(cc, addr, &e);
    cc->stats.loads++;
    if (ret < 0) {
        free(e.table);
        free(e.bytecode);
        cc->stats.bad++;
        *err = ret;
        return NULL;
    }
    if (cc->n / BLOCK >= cc->nblocks) {
        GROW(cc->blocks, cc->blockcap, cc->nblocks + 1);
        cc->blocks[cc->nblocks++] = xmalloc(BLOCK * sizeof(**cc->blocks));
    }
    e.gen = cc->gen;
    *entry_at(cc, cc->n) = e;
    htab_insert(&cc->index, hash_u64(addr), (uint32_t)cc->n);
    return entry_at(cc, cc->n++);
}

/* Re-reads a stale entry in place; on failure it is left marked bad. */
static int reload(struct codecache *cc, struct code_entry *e)
{
    struct code_entry fresh;
    free(e->table);
    e->table = NULL;
    e->table_len = 0;
    free(e->bytecode);
    e->bytecode = NULL;
    e->bytecode_len = 0;
    int ret = load(cc, e->addr, &fresh);
    cc->stats.loads++;
    if (ret < 0) {
        free(fresh.table);
        free(fresh.bytecode);
        /* Keep the slot (the index points at it) but make it never validate. */
        e->filename = e->name = e->qualname = e->linetable = 0;
        e->firstlineno = INT32_MIN;
        e->gen = 0;
        cc->stats.bad++;
        return ret;
    }
    fresh.gen = cc->gen;
    *e = fresh;
    return 0;
}

/* Points cc->iov at the validation spans of the entries listed in cc->pending. */
static void plan_pending(struct codecache *cc, size_t np)
{
    size_t span = (size_t)cc->span_len;
    if (cc->vbufcap < np * span) {
        cc->vbufcap = np * span;
        cc->vbuf = xrealloc(cc->vbuf, cc->vbufcap);
    }
    GROW(cc->iov, cc->iovcap, np + 1);
    for (size_t i = 0; i < np; i++) {
        struct code_entry *e = cc->pending[i];
        cc->iov[i] = (struct mem_iov){e->addr + (uint64_t)cc->span_start, cc->vbuf + i * span,
                                      span, 0};
    }
}

/* Compares the spans read for cc->pending (cc->iov) with the entries; reloads the stale. */
static void check_pending(struct codecache *cc, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        struct code_entry *e = cc->pending[i], now;
        int ok = cc->iov[i].ok;
        if (ok) {
            const unsigned char *span = cc->vbuf + i * (size_t)cc->span_len;
            fields_from(cc, span, cc->span_start, &now);
            ok = same_fields(e, &now) && alive_code(cc, span, cc->span_start);
        }
        if (ok) {
            cc->stats.hits++;
        } else {
            cc->stats.stale++;
            reload(cc, e);
        }
    }
}

/* Validates the entries listed in cc->pending with one vectored read. */
static int validate_pending(struct codecache *cc, size_t np)
{
    if (np == 0)
        return 0;
    plan_pending(cc, np);
    int ret = mem_readv(cc->m, cc->iov, np);
    if (ret < 0)
        return ret;
    check_pending(cc, np);
    return 0;
}

/* Starts a round: every entry is to be validated again before its next use. */
static void new_round(struct codecache *cc)
{
    /* Generation 0 marks entries that must never count as validated. */
    if (++cc->gen == 0)
        cc->gen = 1;
}

/*
 * Finds or loads the code objects at addrs[0..n) into out; with validate,
 * cached entries are read again first (once per call), else taken as cached
 * (an entry found bad is not code).
 */
static int lookup(struct codecache *cc, const uint64_t *addrs, size_t n, struct code_entry **out,
                  int validate)
{
    size_t np = 0;
    int ret;
    if (validate)
        new_round(cc);
    /* A full cache is emptied by a resolve, never by a peek: the entries a
     * peek gave stay good until the snapshot's resolve (a peek may go past
     * the bound meanwhile, by what one snapshot walks). */
    if (validate && cc->n >= CODECACHE_MAX_ENTRIES)
        empty(cc);
    GROW(cc->pending, cc->pendcap, n + 1);
    GROW(cc->found, cc->foundcap, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && addrs[i] == addrs[i - 1]) {
            cc->found[i] = cc->found[i - 1]; /* recursion */
            continue;
        }
        struct code_entry *e = find(cc, addrs[i]);
        if (!e) {
            int err = 0;
            e = insert(cc, addrs[i], &err);
            if (!e && (err == -ESRCH || err == -EPERM))
                return err;
        } else if (validate && e->gen != cc->gen) {
            e->gen = cc->gen;
            cc->pending[np++] = e;
        } else if (!validate && e->gen == 0) {
            /* Found bad by a resolve: read again, as a code object not
             * cached would be (else peek would say not code for good). */
            reload(cc, e);
        }
        cc->found[i] = e;
    }
    if ((ret = validate_pending(cc, np)) < 0)
        return ret;
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        struct code_entry *e = cc->found[i];
        out[i] = e && (validate ? e->gen == cc->gen : e->gen != 0) ? e : NULL;
        missing += !out[i];
    }
    return missing;
}

int codecache_resolve(struct codecache *cc, const uint64_t *addrs, size_t n,
                      struct code_entry **out)
{
    return lookup(cc, addrs, n, out, 1);
}

int codecache_peek(struct codecache *cc, const uint64_t *addrs, size_t n,
                   struct code_entry **out)
{
    return lookup(cc, addrs, n, out, 0);
}

uint32_t codecache_frame(struct codecache *cc, struct code_entry *e, int64_t addrq,
                         int by_function)
{
    if (by_function)
        return names_frame(cc->names, e->func, e->firstlineno);
    for (int i = 0; i < LINE_MEMO; i++)
        if (e->memo_addrq[i] == addrq)
            return e->memo_frame[i];
    /* Unknown: a line table of the wrong type.  An instruction without a
     * line (-1), past the table or at a negative line (a frame or a code
     * object read as it moved: code made and freed apace) is shown at the
     * function's first. */
    int line = lt_line(cc->cf.linetable, e->table, e->table_len, e->firstlineno, addrq);
    if (e->table_bad)
        line = NAMES_LINE_UNKNOWN;
    else if (line < 0)
        line = e->firstlineno;
    uint32_t id = names_frame(cc->names, e->func, line);
    uint32_t slot = e->memo_next++ % LINE_MEMO;
    e->memo_addrq[slot] = addrq;
    e->memo_frame[slot] = id;
    return id;
}

/* 1 when code unit addrq / 2 starts an instruction (3.11+, within the known part). */
static int instruction_at_start(const struct code_entry *e, int64_t addrq)
{
    uint32_t u = (uint32_t)(addrq / 2);
    return u < e->starts_known && ((e->bytecode + e->bytecode_len)[u >> 3] >> (u & 7)) & 1;
}

/* The opcode of the instruction that code unit addrq / 2 belongs to, or -1 when unknown. */
static int instruction_at(const struct codecache *cc, const struct code_entry *e, int64_t addrq)
{
    if (!cc->ops->caches)
        return e->bytecode[addrq];
    uint32_t u = (uint32_t)(addrq / 2);
    const uint8_t *bits = e->bytecode + e->bytecode_len;
    if (u >= e->starts_known)
        return -1;
    /* Back over the caches (at most 15 units) to the instruction's start. */
    for (uint32_t k = 0; k <= 15 && k <= u; k++)
        if ((bits[(u - k) >> 3] >> ((u - k) & 7)) & 1)
            return e->bytecode[2 * (u - k)];
    return -1;
}

/* 1 when the operator at addrq (of opcode op) calls Python only as a special method. */
static int operator_at(const struct codecache *cc, const struct code_entry *e, int64_t addrq,
                       int op)
{
    if (!codefacts_has(cc->ops->operators, (uint8_t)op))
        return 0;
    /* Before 3.9, COMPARE_OP does `in` too, which may run a generator. */
    if (op == cc->ops->compare_op)
        return (uint64_t)addrq + 1 < e->bytecode_len && e->bytecode[addrq + 1] < 6 &&
               (!cc->ops->oparg16 || ((uint64_t)addrq + 2 < e->bytecode_len &&
                                      e->bytecode[addrq + 2] == 0));
    return 1;
}

int codecache_can_call(const struct codecache *cc, const struct code_entry *e, int64_t addrq,
                       int pushed, const struct code_entry *callee)
{
    if (addrq < 0)
        return 0; /* not started: it has called nothing yet */
    if (!e->bytecode || (uint64_t)addrq >= e->bytecode_len)
        return 1;
    int op = instruction_at(cc, e, addrq);
    int caches = op < 0 ? -1 : codefacts_caches(cc->ops, (uint8_t)op);
    if (caches < 0)
        return 1;
    if (!pushed || !cc->ops->caches) {
        if (codefacts_has(cc->ops->quiet, (uint8_t)op))
            return 0;
        /* An operator runs Python only through a special method. */
        return !callee || callee->special ||
               !operator_at(cc, e, cc->ops->caches ? addrq & ~(int64_t)1 : addrq, op);
    }
    if (!codefacts_has(cc->ops->pushes, (uint8_t)op))
        return 0;
    /* 3.11, 3.12: past the instruction's opcode, on its last cache unit,
     * while the frame it pushed runs. */
    return !cc->ops->calls_at_cache || caches == 0 || addrq % 2 != 0 ||
           instruction_at_start(e, addrq) == 0;
}

int codecache_pushing(const struct codecache *cc, const struct code_entry *e, int64_t addrq)
{
    if (addrq < 0 || !e->bytecode || (uint64_t)addrq >= e->bytecode_len || !cc->ops ||
        !cc->ops->caches || !e->frame_bytes)
        return 0;
    int op = instruction_at(cc, e, addrq);
    if (op < 0 || codefacts_caches(cc->ops, (uint8_t)op) < 0 ||
        !codefacts_has(cc->ops->pushes, (uint8_t)op) ||
        codefacts_has(cc->ops->resumes, (uint8_t)op))
        return 0;
    /* 3.11, 3.12 say so by the instruction pointer on the last cache unit. */
    return !cc->ops->calls_at_cache ||
           (codefacts_caches(cc->ops, (uint8_t)op) > 0 && !instruction_at_start(e, addrq));
}

int codecache_pushing_sure(const struct codecache *cc)
{
    return cc->ops && cc->ops->calls_at_cache;
}

int codecache_at_return(const struct codecache *cc, const struct code_entry *e, int64_t addrq)
{
    if (addrq < 0 || !e->bytecode || (uint64_t)addrq >= e->bytecode_len || !cc->ops)
        return 0;
    int op = instruction_at(cc, e, addrq);
    return op >= 0 && codefacts_has(cc->ops->returns, (uint8_t)op);
}

int codecache_code_at_return(void *cc, uint64_t code, int64_t addrq)
{
    struct code_entry *e;
    return codecache_peek(cc, &code, 1, &e) == 0 && e && codecache_at_return(cc, e, addrq);
}

int codecache_returned(const struct codecache *cc, const struct code_entry *e, int64_t addrq)
{
    return cc->ops && cc->ops->returns_unlinked && codecache_at_return(cc, e, addrq);
}

uint32_t codecache_frame_bytes(const struct code_entry *e)
{
    return e->frame_bytes;
}

int codecache_is_generator(const struct code_entry *e)
{
    return e->generator;
}

int codecache_is_shim(const struct code_entry *e)
{
    return e->shim;
}

int codecache_is_init_shim(const struct code_entry *e)
{
    return e->init_shim;
}
