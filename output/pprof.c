#include "output/pprof.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "common/util.h"
#include "common/version.h"

/*
 * Field numbers of perftools.profiles (pprof's proto/profile.proto).  Only
 * what we write is listed.
 */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,
    LABEL_KEY = 1,
    LABEL_STR = 2,
    LABEL_NUM = 3,
    LOCATION_ID = 1,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,
    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* ---- protobuf encoding into a strbuf ------------------------------------------- */

static void pb_varint(struct strbuf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    sb_add(b, tmp, n);
}

static void pb_key(struct strbuf *b, unsigned field, unsigned wire)
{
    pb_varint(b, (uint64_t)field << 3 | wire);
}

/*
 * A varint field (int64 as two's complement, as protobuf does).  Zero is
 * left out: proto3 readers take a missing scalar as 0.
 */
static void pb_int(struct strbuf *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, v);
}

/* A length-delimited field: a string, an embedded message or a packed array. */
static void pb_bytes(struct strbuf *b, unsigned field, const void *data, size_t n)
{
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    sb_add(b, data, n);
}

static void pb_msg(struct strbuf *b, unsigned field, const struct strbuf *msg)
{
    pb_bytes(b, field, msg->buf, msg->len);
}

/* ---- gzip stream ---------------------------------------------------------------- */

struct gz {
    z_stream z;
    gz_header head; /* zlib reads it at the first deflate(), so it lives here */
    FILE *f;
    int err;        /* the first error, a negative errno */
    unsigned char out[1 << 15];
};

static int gz_open(struct gz *g, FILE *f)
{
    memset(g, 0, sizeof(*g));
    g->f = f;
    /* 15 + 16: a 32K window with the gzip wrapper instead of zlib's. */
    int rc = deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    /*
     * mtime 0 (no clock in the bytes) and OS "unknown" rather than the
     * build machine's, so equal profiles give equal files everywhere.
     */
    g->head.time = 0;
    g->head.os = 255;
    if (deflateSetHeader(&g->z, &g->head) != Z_OK) {
        deflateEnd(&g->z);
        return -EINVAL;
    }
    return 0;
}

/* Compresses data[0..n) (flush: Z_NO_FLUSH or, once at the end, Z_FINISH). */
static void gz_write(struct gz *g, const void *data, size_t n, int flush)
{
    const unsigned char *p = data;
    do {
        /* avail_in is an unsigned int: feed huge buffers in pieces. */
        size_t chunk = MIN(n, (size_t)1 << 30);
        int fl = chunk == n ? flush : Z_NO_FLUSH;
        g->z.next_in = p;
        g->z.avail_in = (uInt)chunk;
        int rc;
        do {
            if (g->err)
                return;
            g->z.next_out = g->out;
            g->z.avail_out = sizeof(g->out);
            rc = deflate(&g->z, fl);
            if (rc == Z_STREAM_ERROR) {
                g->err = -EINVAL;
                return;
            }
            size_t have = sizeof(g->out) - g->z.avail_out;
            errno = 0;
            if (have && fwrite(g->out, 1, have, g->f) != have)
                g->err = errno ? -errno : -EIO;
        } while (g->z.avail_out == 0);
        if (fl == Z_FINISH && rc != Z_STREAM_END && !g->err)
            g->err = -EIO;
        p += chunk;
        n -= chunk;
    } while (n);
}

/* ---- the tables ----------------------------------------------------------------- */

struct pp_str {
    size_t off, len; /* in pool */
};

struct pp_func {
    uint32_t name, file; /* string indexes */
};

struct pp_loc {
    uint32_t func; /* function index (its id is func + 1) */
    uint32_t line;
};

struct pprof {
    const struct profile *p;
    struct strbuf pool; /* the strings' bytes, back to back */
    struct pp_str *strs;
    size_t nstrs, strcap;
    struct htab str_index;
    struct pp_func *funcs;
    size_t nfuncs, funccap;
    struct htab func_index;
    struct pp_loc *locs;
    size_t nlocs, loccap;
    struct htab loc_index;
    uint32_t *frame_loc;   /* per frame: its location's id, 0 until met */
    uint32_t *thread_name; /* per thread: its name's string index (0: none), UINT32_MAX until met */
    uint32_t key_thread, key_tid; /* label keys' string indexes, 0 until needed */
    struct strbuf clean;   /* scratch for intern() */
};

struct str_key {
    const char *s;
    size_t n;
};

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct pprof *pp = ctx;
    const struct str_key *k = key;
    const struct pp_str *s = &pp->strs[idx];
    return s->len == k->n && memcmp(pp->pool.buf + s->off, k->s, k->n) == 0;
}

/*
 * The string table index of s, adding it when new.  Go's decoder wants
 * valid UTF-8 and labels may hold any bytes: each invalid byte becomes
 * U+FFFD before deduplication, so equal cleaned strings share an index.
 */
static uint32_t intern(struct pprof *pp, const char *s)
{
    struct strbuf *c = &pp->clean;
    size_t n = strlen(s);
    sb_reset(c);
    sb_add_utf8(c, s, n);
    struct str_key k = {sb_str(c), c->len};
    uint64_t h = hash_bytes(k.s, k.n, 0);
    uint32_t idx = htab_find(&pp->str_index, h, str_eq, pp, &k);
    if (idx != HTAB_NONE)
        return idx;
    GROW(pp->strs, pp->strcap, pp->nstrs + 1);
    idx = (uint32_t)pp->nstrs++;
    pp->strs[idx] = (struct pp_str){pp->pool.len, k.n};
    sb_add(&pp->pool, k.s, k.n);
    htab_insert(&pp->str_index, h, idx);
    return idx;
}

static int func_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct pprof *pp = ctx;
    const struct pp_func *k = key;
    return pp->funcs[idx].name == k->name && pp->funcs[idx].file == k->file;
}

static int loc_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct pprof *pp = ctx;
    const struct pp_loc *k = key;
    return pp->locs[idx].func == k->func && pp->locs[idx].line == k->line;
}

/* The location id of frame id: one function per (name, file), one location per (function, line). */
static uint32_t frame_location(struct pprof *pp, uint32_t id)
{
    if (pp->frame_loc[id])
        return pp->frame_loc[id];
    const struct prof_frame *fr = &pp->p->frames[id];
    /* Markers, bare names and thread roots have file "": index 0, no file. */
    struct pp_func fk;
    fk.name = intern(pp, fr->name);
    fk.file = intern(pp, fr->file);
    uint64_t h = hash_u64((uint64_t)fk.name << 32 | fk.file);
    uint32_t fn = htab_find(&pp->func_index, h, func_eq, pp, &fk);
    if (fn == HTAB_NONE) {
        GROW(pp->funcs, pp->funccap, pp->nfuncs + 1);
        fn = (uint32_t)pp->nfuncs++;
        pp->funcs[fn] = fk;
        htab_insert(&pp->func_index, h, fn);
    }
    struct pp_loc lk = {fn, fr->line};
    h = hash_u64((uint64_t)fn << 32 | fr->line);
    uint32_t loc = htab_find(&pp->loc_index, h, loc_eq, pp, &lk);
    if (loc == HTAB_NONE) {
        GROW(pp->locs, pp->loccap, pp->nlocs + 1);
        loc = (uint32_t)pp->nlocs++;
        pp->locs[loc] = lk;
        htab_insert(&pp->loc_index, h, loc);
    }
    pp->frame_loc[id] = loc + 1;
    return loc + 1;
}

/* Meets the strings, functions and locations of stack s, numbering the new ones. */
static void meet_stack(struct pprof *pp, const struct prof_stack *s)
{
    const struct prof_thread *t = &pp->p->threads[s->thread];
    if (pp->thread_name[s->thread] == UINT32_MAX)
        pp->thread_name[s->thread] = t->name && t->name[0] ? intern(pp, t->name) : 0;
    if (pp->thread_name[s->thread] && !pp->key_thread)
        pp->key_thread = intern(pp, "thread");
    if (t->tid && !pp->key_tid)
        pp->key_tid = intern(pp, "thread_id");
    size_t n;
    const uint32_t *ids = profile_stack_frames(pp->p, s, &n);
    for (size_t i = 0; i < n; i++)
        frame_location(pp, ids[i]);
}

/* ---- writing -------------------------------------------------------------------- */

/* Counts and times are int64 in the proto: saturate rather than wrap. */
static uint64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

static uint64_t mul_i64(uint64_t a, uint64_t b)
{
    if (b && a > (uint64_t)INT64_MAX / b)
        return (uint64_t)INT64_MAX;
    return a * b;
}

/* The sampling period in ns, 1e9 / rate rounded; 0 when the rate is unknown. */
static uint64_t sample_period(double rate)
{
    if (!(rate > 0))
        return 0;
    double ns = 1e9 / rate;
    if (!(ns < 9.2e18))
        return (uint64_t)INT64_MAX;
    uint64_t period = (uint64_t)(ns + 0.5);
    /* Above 2e9 samples a second the period rounds to 0: keep times nonzero. */
    return period ? period : 1;
}

static void put_value_type(struct strbuf *out, unsigned field, uint32_t type, uint32_t unit,
                           struct strbuf *msg)
{
    sb_reset(msg);
    pb_int(msg, VALUE_TYPE_TYPE, type);
    pb_int(msg, VALUE_TYPE_UNIT, unit);
    pb_msg(out, field, msg);
}

static void put_sample(struct pprof *pp, struct strbuf *out, const struct prof_stack *s,
                       uint64_t period, struct strbuf *msg, struct strbuf *sub)
{
    const struct prof_thread *t = &pp->p->threads[s->thread];
    size_t n;
    const uint32_t *ids = profile_stack_frames(pp->p, s, &n);
    sb_reset(msg);
    /* Stacks are stored root first; pprof wants the leaf at location_id[0]. */
    sb_reset(sub);
    for (size_t i = n; i-- > 0;)
        pb_varint(sub, pp->frame_loc[ids[i]]);
    if (sub->len)
        pb_msg(msg, SAMPLE_LOCATION_ID, sub);
    sb_reset(sub);
    pb_varint(sub, clamp_i64(s->count));
    if (period)
        pb_varint(sub, mul_i64(clamp_i64(s->count), period));
    pb_msg(msg, SAMPLE_VALUE, sub);
    if (pp->thread_name[s->thread]) {
        sb_reset(sub);
        pb_int(sub, LABEL_KEY, pp->key_thread);
        pb_int(sub, LABEL_STR, pp->thread_name[s->thread]);
        pb_msg(msg, SAMPLE_LABEL, sub);
    }
    if (t->tid) {
        /* No num_unit: pprof then prints the plain number. */
        sb_reset(sub);
        pb_int(sub, LABEL_KEY, pp->key_tid);
        pb_key(sub, LABEL_NUM, WIRE_VARINT);
        pb_varint(sub, (uint64_t)t->tid);
        pb_msg(msg, SAMPLE_LABEL, sub);
    }
    pb_msg(out, PROFILE_SAMPLE, msg);
}

static void pprof_release(struct pprof *pp)
{
    sb_release(&pp->pool);
    sb_release(&pp->clean);
    free(pp->strs);
    free(pp->funcs);
    free(pp->locs);
    free(pp->frame_loc);
    free(pp->thread_name);
    htab_release(&pp->str_index);
    htab_release(&pp->func_index);
    htab_release(&pp->loc_index);
}

/* Hands out's bytes to the compressor once there are enough of them to bother. */
static void drain(struct gz *g, struct strbuf *out, int force)
{
    if (out->len && (force || out->len >= (1 << 16))) {
        gz_write(g, out->buf, out->len, Z_NO_FLUSH);
        sb_reset(out);
    }
}

int pprof_write(FILE *f, const struct profile *p)
{
    struct pprof pp;
    memset(&pp, 0, sizeof(pp));
    pp.p = p;
    pp.frame_loc = xcalloc(p->nframes + 1, sizeof(*pp.frame_loc));
    pp.thread_name = xmalloc((p->nthreads + 1) * sizeof(*pp.thread_name));
    for (size_t i = 0; i < p->nthreads; i++)
        pp.thread_name[i] = UINT32_MAX;

    /* Numbering follows first appearance in this order, so it is the same for equal profiles. */
    intern(&pp, "");
    uint32_t samples = intern(&pp, "samples"), count = intern(&pp, "count");
    uint64_t period = sample_period(p->meta.rate);
    uint32_t time_type = 0, ns = 0;
    if (period) {
        int wall = p->meta.mode && strcmp(p->meta.mode, "wall") == 0;
        time_type = intern(&pp, wall ? "wall" : "cpu");
        ns = intern(&pp, "nanoseconds");
    }
    uint32_t *order = profile_sorted(p);
    for (size_t i = 0; i < p->nstacks; i++)
        meet_stack(&pp, &p->stacks[order[i]]);
    uint32_t comments[2];
    size_t ncomments = 0;
    comments[ncomments++] = intern(&pp, "pystrobe " PYSTROBE_VERSION);
    if (p->meta.title && p->meta.title[0])
        comments[ncomments++] = intern(&pp, p->meta.title);

    struct gz *g = xmalloc(sizeof(*g));
    int err = gz_open(g, f);
    if (err) {
        free(g);
        free(order);
        pprof_release(&pp);
        return err;
    }
    struct strbuf out = STRBUF_INIT, msg = STRBUF_INIT, sub = STRBUF_INIT;
    put_value_type(&out, PROFILE_SAMPLE_TYPE, samples, count, &msg);
    if (period)
        put_value_type(&out, PROFILE_SAMPLE_TYPE, time_type, ns, &msg);
    for (size_t i = 0; i < p->nstacks && !g->err; i++) {
        put_sample(&pp, &out, &p->stacks[order[i]], period, &msg, &sub);
        drain(g, &out, 0);
    }
    for (size_t i = 0; i < pp.nlocs && !g->err; i++) {
        sb_reset(&msg);
        pb_int(&msg, LOCATION_ID, i + 1);
        sb_reset(&sub);
        pb_int(&sub, LINE_FUNCTION_ID, (uint64_t)pp.locs[i].func + 1);
        pb_int(&sub, LINE_LINE, pp.locs[i].line);
        pb_msg(&msg, LOCATION_LINE, &sub);
        pb_msg(&out, PROFILE_LOCATION, &msg);
        drain(g, &out, 0);
    }
    for (size_t i = 0; i < pp.nfuncs && !g->err; i++) {
        sb_reset(&msg);
        pb_int(&msg, FUNCTION_ID, i + 1);
        pb_int(&msg, FUNCTION_NAME, pp.funcs[i].name);
        /* Python names are not mangled: the system name is the name. */
        pb_int(&msg, FUNCTION_SYSTEM_NAME, pp.funcs[i].name);
        pb_int(&msg, FUNCTION_FILENAME, pp.funcs[i].file);
        pb_msg(&out, PROFILE_FUNCTION, &msg);
        drain(g, &out, 0);
    }
    /* Every entry is written, "" at index 0 included: the table is positional. */
    for (size_t i = 0; i < pp.nstrs && !g->err; i++) {
        pb_bytes(&out, PROFILE_STRING_TABLE, pp.pool.buf + pp.strs[i].off, pp.strs[i].len);
        drain(g, &out, 0);
    }
    pb_int(&out, PROFILE_TIME_NANOS, (uint64_t)p->meta.start_ns);
    if (p->meta.duration_ns > 0)
        pb_int(&out, PROFILE_DURATION_NANOS, (uint64_t)p->meta.duration_ns);
    if (period) {
        put_value_type(&out, PROFILE_PERIOD_TYPE, time_type, ns, &msg);
        pb_int(&out, PROFILE_PERIOD, period);
    }
    sb_reset(&sub);
    for (size_t i = 0; i < ncomments; i++)
        pb_varint(&sub, comments[i]);
    pb_msg(&out, PROFILE_COMMENT, &sub);
    /* pprof shows the last sample type by default anyway; this says so explicitly. */
    pb_int(&out, PROFILE_DEFAULT_SAMPLE_TYPE, time_type);
    drain(g, &out, 1);
    gz_write(g, "", 0, Z_FINISH);
    err = g->err;
    deflateEnd(&g->z);
    free(g);
    sb_release(&out);
    sb_release(&msg);
    sb_release(&sub);
    free(order);
    pprof_release(&pp);
    if (!err && ferror(f))
        err = -EIO;
    return err;
}
