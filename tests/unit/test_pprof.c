/*
 * The pprof writer: a golden file, and a small protobuf reader of our own
 * that decodes what was written and checks it against the profile.
 */
#include <errno.h>
#include <zlib.h>

#include "golden.h"
#include "test.h"

#include "common/util.h"
#include "output/pprof.h"
#include "output/profile.h"

/* ---- gzip and protobuf reading ----------------------------------------------- */

/* Inflates a gzip stream (15 + 32: detect the wrapper); NULL when it is not one whole stream. */
static unsigned char *gunzip(const void *in, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    REQUIRE(inflateInit2(&z, 15 + 32) == Z_OK);
    size_t cap = 4096, len = 0;
    unsigned char *out = malloc(cap);
    REQUIRE(out != NULL);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    int rc;
    do {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap);
            REQUIRE(out != NULL);
        }
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    } while (rc == Z_OK);
    int whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) {
        free(out);
        return NULL;
    }
    *outlen = len;
    return out;
}

struct rd {
    const unsigned char *p, *end;
    int bad;
};

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            break;
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

/* The next field: 1, or 0 at the end or when malformed (then r->bad). */
static int rd_field(struct rd *r, unsigned *field, unsigned *wire, uint64_t *v, struct rd *sub)
{
    if (r->bad || r->p >= r->end)
        return 0;
    uint64_t key = rd_varint(r);
    *field = (unsigned)(key >> 3);
    *wire = (unsigned)(key & 7);
    if (*wire == 0) {
        *v = rd_varint(r);
    } else if (*wire == 2) {
        uint64_t n = rd_varint(r);
        if (r->bad || n > (uint64_t)(r->end - r->p)) {
            r->bad = 1;
            return 0;
        }
        *sub = (struct rd){r->p, r->p + n, 0};
        r->p += n;
    } else {
        r->bad = 1; /* the writer uses no other wire type */
    }
    return !r->bad && *field != 0;
}

/* Appends to a malloc'd array whose capacity is the next power of two (realloc at 0, 1, 2, 4, ...). */
#define PUSH(arr, n, val)                                                     \
    do {                                                                      \
        if (((n) & ((n) - 1)) == 0) {                                         \
            (arr) = realloc((arr), ((n) ? 2 * (n) : 1) * sizeof(*(arr)));     \
            REQUIRE((arr) != NULL);                                           \
        }                                                                     \
        (arr)[(n)++] = (val);                                                 \
    } while (0)

struct u64s {
    uint64_t *v;
    size_t n;
};

/* A repeated varint field, packed or not (readers must take both). */
static void rd_repeated(unsigned wire, uint64_t v, struct rd *sub, struct u64s *out, int *bad)
{
    if (wire == 0) {
        PUSH(out->v, out->n, v);
        return;
    }
    while (sub->p < sub->end && !sub->bad) {
        uint64_t x = rd_varint(sub);
        PUSH(out->v, out->n, x);
    }
    *bad |= sub->bad;
}

struct dvt {
    int64_t type, unit;
};
struct dlabel {
    int64_t key, str, num, unit;
};
struct dsample {
    struct u64s locs, vals;
    struct dlabel *labels;
    size_t nlabels;
};
struct dloc {
    uint64_t id, mapping, address, func;
    int64_t line;
    size_t nlines;
};
struct dfunc {
    uint64_t id;
    int64_t name, sys, file, start;
};
struct dprof {
    char **strs;
    size_t *strlens;
    size_t nstrs;
    struct dvt *types;
    size_t ntypes;
    struct dsample *samples;
    size_t nsamples;
    struct dloc *locs;
    size_t nlocs;
    struct dfunc *funcs;
    size_t nfuncs;
    int64_t time, dur, period, dst;
    struct dvt ptype;
    int has_ptype;
    struct u64s comments;
    int bad; /* malformed, or a field the writer should not write */
};

static struct dvt rd_value_type(struct rd *r, int *bad)
{
    struct dvt t = {0, 0};
    unsigned f, w;
    uint64_t v;
    struct rd sub;
    while (rd_field(r, &f, &w, &v, &sub)) {
        if (f == 1 && w == 0)
            t.type = (int64_t)v;
        else if (f == 2 && w == 0)
            t.unit = (int64_t)v;
        else
            *bad = 1;
    }
    *bad |= r->bad;
    return t;
}

static void rd_sample(struct rd *r, struct dprof *d)
{
    struct dsample s;
    memset(&s, 0, sizeof(s));
    unsigned f, w;
    uint64_t v;
    struct rd sub;
    while (rd_field(r, &f, &w, &v, &sub)) {
        if (f == 1) {
            rd_repeated(w, v, &sub, &s.locs, &d->bad);
        } else if (f == 2) {
            rd_repeated(w, v, &sub, &s.vals, &d->bad);
        } else if (f == 3 && w == 2) {
            struct dlabel l = {0, 0, 0, 0};
            unsigned f2, w2;
            struct rd sub2;
            while (rd_field(&sub, &f2, &w2, &v, &sub2)) {
                if (w2 != 0 || f2 > 4)
                    d->bad = 1;
                else if (f2 == 1)
                    l.key = (int64_t)v;
                else if (f2 == 2)
                    l.str = (int64_t)v;
                else if (f2 == 3)
                    l.num = (int64_t)v;
                else
                    l.unit = (int64_t)v;
            }
            d->bad |= sub.bad;
            PUSH(s.labels, s.nlabels, l);
        } else {
            d->bad = 1;
        }
    }
    d->bad |= r->bad;
    PUSH(d->samples, d->nsamples, s);
}

static void rd_location(struct rd *r, struct dprof *d)
{
    struct dloc l;
    memset(&l, 0, sizeof(l));
    unsigned f, w;
    uint64_t v;
    struct rd sub;
    while (rd_field(r, &f, &w, &v, &sub)) {
        if (f == 1 && w == 0) {
            l.id = v;
        } else if (f == 2 && w == 0) {
            l.mapping = v;
        } else if (f == 3 && w == 0) {
            l.address = v;
        } else if (f == 4 && w == 2) {
            l.nlines++;
            unsigned f2, w2;
            struct rd sub2;
            while (rd_field(&sub, &f2, &w2, &v, &sub2)) {
                if (f2 == 1 && w2 == 0)
                    l.func = v;
                else if (f2 == 2 && w2 == 0)
                    l.line = (int64_t)v;
                else
                    d->bad = 1;
            }
            d->bad |= sub.bad;
        } else {
            d->bad = 1;
        }
    }
    d->bad |= r->bad;
    PUSH(d->locs, d->nlocs, l);
}

static void rd_function(struct rd *r, struct dprof *d)
{
    struct dfunc fn;
    memset(&fn, 0, sizeof(fn));
    unsigned f, w;
    uint64_t v;
    struct rd sub;
    while (rd_field(r, &f, &w, &v, &sub)) {
        if (w != 0 || f > 5)
            d->bad = 1;
        else if (f == 1)
            fn.id = v;
        else if (f == 2)
            fn.name = (int64_t)v;
        else if (f == 3)
            fn.sys = (int64_t)v;
        else if (f == 4)
            fn.file = (int64_t)v;
        else
            fn.start = (int64_t)v;
    }
    d->bad |= r->bad;
    PUSH(d->funcs, d->nfuncs, fn);
}

/* Decodes a gzip-compressed Profile; fails the test when it is not one. */
static void decode(const void *gz, size_t n, struct dprof *d)
{
    memset(d, 0, sizeof(*d));
    size_t len;
    unsigned char *raw = gunzip(gz, n, &len);
    REQUIRE(raw != NULL);
    struct rd r = {raw, raw + len, 0};
    unsigned f, w;
    uint64_t v;
    struct rd sub;
    while (rd_field(&r, &f, &w, &v, &sub)) {
        switch (f) {
        case 1:
            PUSH(d->types, d->ntypes, rd_value_type(&sub, &d->bad));
            break;
        case 2:
            rd_sample(&sub, d);
            break;
        case 4:
            rd_location(&sub, d);
            break;
        case 5:
            rd_function(&sub, d);
            break;
        case 6: {
            size_t sl = (size_t)(sub.end - sub.p);
            char *s = malloc(sl + 1);
            REQUIRE(s != NULL);
            memcpy(s, sub.p, sl);
            s[sl] = '\0';
            size_t k = d->nstrs;
            PUSH(d->strs, k, s);
            PUSH(d->strlens, d->nstrs, sl);
            break;
        }
        case 9: d->time = (int64_t)v; break;
        case 10: d->dur = (int64_t)v; break;
        case 11:
            d->ptype = rd_value_type(&sub, &d->bad);
            d->has_ptype = 1;
            break;
        case 12: d->period = (int64_t)v; break;
        case 13: rd_repeated(w, v, &sub, &d->comments, &d->bad); break;
        case 14: d->dst = (int64_t)v; break;
        default: d->bad = 1;
        }
    }
    d->bad |= r.bad;
    free(raw);
    if (d->bad)
        TEST_FAILF("the profile is malformed or has unexpected fields");
}

static void dprof_release(struct dprof *d)
{
    for (size_t i = 0; i < d->nstrs; i++)
        free(d->strs[i]);
    for (size_t i = 0; i < d->nsamples; i++) {
        free(d->samples[i].locs.v);
        free(d->samples[i].vals.v);
        free(d->samples[i].labels);
    }
    free(d->strs);
    free(d->strlens);
    free(d->types);
    free(d->samples);
    free(d->locs);
    free(d->funcs);
    free(d->comments.v);
}

/* String i of the table; a test failure (and "") when i is out of range. */
static const char *S(const struct dprof *d, int64_t i)
{
    if (i < 0 || (uint64_t)i >= d->nstrs) {
        TEST_FAILF("string index %lld out of range (%zu strings)", (long long)i, d->nstrs);
        return "";
    }
    return d->strs[i];
}

/* Ids are checked to be 1..n in order, so try that slot first. */
static const struct dloc *find_loc(const struct dprof *d, uint64_t id)
{
    if (id >= 1 && id <= d->nlocs && d->locs[id - 1].id == id)
        return &d->locs[id - 1];
    for (size_t i = 0; i < d->nlocs; i++)
        if (d->locs[i].id == id)
            return &d->locs[i];
    return NULL;
}

static const struct dfunc *find_func(const struct dprof *d, uint64_t id)
{
    if (id >= 1 && id <= d->nfuncs && d->funcs[id - 1].id == id)
        return &d->funcs[id - 1];
    for (size_t i = 0; i < d->nfuncs; i++)
        if (d->funcs[i].id == id)
            return &d->funcs[i];
    return NULL;
}

/* The label of sample s with key name, or NULL. */
static const struct dlabel *find_label(const struct dprof *d, const struct dsample *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(S(d, s->labels[i].key), key) == 0)
            return &s->labels[i];
    return NULL;
}

/* ---- helpers ------------------------------------------------------------------ */

static int write_cb(FILE *f, void *ctx)
{
    return pprof_write(f, ctx);
}

static char *write_profile(const struct profile *p, size_t *n)
{
    return golden_capture(write_cb, (void *)(uintptr_t)p, n);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts keys[0..n) and tells whether they are all different. */
static int all_distinct(uint64_t *keys, size_t n)
{
    qsort(keys, n, sizeof(*keys), u64_cmp);
    for (size_t i = 1; i < n; i++)
        if (keys[i - 1] == keys[i])
            return 0;
    return 1;
}

/* Checks everything a reader relies on, and that the samples are p's stacks in sorted order. */
static void check_against(const struct profile *p, const struct dprof *d, int64_t period)
{
    CHECK(d->nstrs > 0);
    CHECK_STR(S(d, 0), "");
    /* Sorted copies make the distinctness checks n log n: large profiles stay fast. */
    char **sorted = malloc((d->nstrs + 1) * sizeof(*sorted));
    uint64_t *fkeys = malloc((d->nfuncs + 1) * sizeof(*fkeys));
    uint64_t *lkeys = malloc((d->nlocs + 1) * sizeof(*lkeys));
    REQUIRE(sorted && fkeys && lkeys);
    if (d->nstrs)
        memcpy(sorted, d->strs, d->nstrs * sizeof(*sorted));
    qsort(sorted, d->nstrs, sizeof(*sorted), str_cmp);
    for (size_t i = 1; i < d->nstrs; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            TEST_FAILF("string \"%s\" is in the table twice", sorted[i]);
    free(sorted);
    /* Deduplicated, and valid UTF-8 with no NUL inside. */
    for (size_t i = 0; i < d->nstrs; i++) {
        CHECK_INT(strlen(d->strs[i]), d->strlens[i]);
        const unsigned char *s = (const unsigned char *)d->strs[i];
        for (size_t k = 0, n = d->strlens[i]; k < n;) {
            size_t l = utf8_valid_len(s + k, n - k);
            if (!l) {
                TEST_FAILF("string %zu is not valid UTF-8 at byte %zu", i, k);
                break;
            }
            k += l;
        }
    }
    /* Ids are 1..n in order, functions distinct by (name, file), locations by (function, line). */
    for (size_t i = 0; i < d->nfuncs; i++) {
        const struct dfunc *f = &d->funcs[i];
        CHECK_U64(f->id, i + 1);
        CHECK_INT(f->sys, f->name);
        CHECK_INT(f->start, 0);
        S(d, f->name);
        S(d, f->file);
        fkeys[i] = (uint64_t)f->name << 32 | (uint64_t)f->file;
    }
    for (size_t i = 0; i < d->nlocs; i++) {
        const struct dloc *l = &d->locs[i];
        CHECK_U64(l->id, i + 1);
        CHECK_INT(l->nlines, 1);
        CHECK_U64(l->mapping, 0);
        CHECK_U64(l->address, 0);
        CHECK(find_func(d, l->func) != NULL);
        lkeys[i] = l->func << 32 | (uint64_t)l->line;
    }
    CHECK(all_distinct(fkeys, d->nfuncs));
    CHECK(all_distinct(lkeys, d->nlocs));
    free(fkeys);
    free(lkeys);
    size_t ntypes = period ? 2 : 1;
    CHECK_INT(d->ntypes, ntypes);
    REQUIRE(d->ntypes >= 1);
    CHECK_STR(S(d, d->types[0].type), "samples");
    CHECK_STR(S(d, d->types[0].unit), "count");
    CHECK_INT(d->period, period);

    REQUIRE(d->nsamples == p->nstacks);
    uint32_t *order = profile_sorted(p);
    uint64_t sum = 0, sumtime = 0;
    for (size_t i = 0; i < d->nsamples; i++) {
        const struct dsample *ds = &d->samples[i];
        const struct prof_stack *s = &p->stacks[order[i]];
        const struct prof_thread *t = &p->threads[s->thread];
        REQUIRE(ds->vals.n == ntypes);
        CHECK_U64(ds->vals.v[0], s->count);
        sum += ds->vals.v[0];
        if (period) {
            CHECK_U64(ds->vals.v[1], s->count * (uint64_t)period);
            sumtime += ds->vals.v[1];
        }
        size_t n;
        const uint32_t *ids = profile_stack_frames(p, s, &n);
        REQUIRE(ds->locs.n == n);
        for (size_t j = 0; j < n; j++) {
            /* Leaf first: location j is frame n - 1 - j. */
            const struct prof_frame *fr = &p->frames[ids[n - 1 - j]];
            const struct dloc *l = find_loc(d, ds->locs.v[j]);
            if (!l) {
                TEST_FAILF("sample %zu: location id %" PRIu64 " is not defined", i, ds->locs.v[j]);
                continue;
            }
            const struct dfunc *f = find_func(d, l->func);
            if (!f)
                continue;
            CHECK_STR(S(d, f->name), fr->name);
            CHECK_STR(S(d, f->file), fr->file);
            CHECK_INT(l->line, fr->line);
        }
        const struct dlabel *ln = find_label(d, ds, "thread");
        const struct dlabel *lt = find_label(d, ds, "thread_id");
        CHECK_INT(ds->nlabels, (ln != NULL) + (lt != NULL));
        if (t->name && t->name[0]) {
            REQUIRE(ln != NULL);
            CHECK_STR(S(d, ln->str), t->name);
            CHECK_INT(ln->num, 0);
        } else {
            CHECK(ln == NULL);
        }
        if (t->tid) {
            REQUIRE(lt != NULL);
            CHECK_INT(lt->num, t->tid);
            CHECK_INT(lt->str, 0);
        } else {
            CHECK(lt == NULL);
        }
    }
    CHECK_U64(sum, p->total);
    if (period)
        CHECK_U64(sumtime, p->total * (uint64_t)period);
    free(order);
}

/* ---- tests -------------------------------------------------------------------- */

TEST(pprof_golden)
{
    struct profile p;
    golden_fixture(&p);
    size_t n;
    char *gz = write_profile(&p, &n);
    /* gzip magic, deflate, no flags, mtime 0: no clock in the bytes. */
    REQUIRE(n > 18);
    const unsigned char *h = (const unsigned char *)gz;
    CHECK(h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && h[3] == 0);
    CHECK(h[4] == 0 && h[5] == 0 && h[6] == 0 && h[7] == 0);
    int upd = golden_updating();
    if (upd) {
        if (upd > 0)
            golden_check("fixture.pb.gz", gz, n);
    } else {
        /*
         * Compare what the files hold, not the compressed bytes: another
         * zlib build (zlib-ng, another version) may compress differently.
         */
        FILE *f = fopen("tests/golden/fixture.pb.gz", "rb");
        if (!f) {
            TEST_FAILF("no golden file tests/golden/fixture.pb.gz (PYSTROBE_UPDATE_GOLDEN=1 writes it)");
        } else {
            char buf[1 << 16];
            size_t gn = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            size_t wl, gl;
            unsigned char *want = gunzip(buf, gn, &wl);
            unsigned char *got = gunzip(gz, n, &gl);
            REQUIRE(got != NULL);
            if (!want) {
                TEST_FAILF("tests/golden/fixture.pb.gz is not a whole gzip stream");
            } else {
                size_t i = 0;
                while (i < wl && i < gl && want[i] == got[i])
                    i++;
                if (i != wl || wl != gl)
                    TEST_FAILF("decompressed output differs from the golden file's at byte %zu "
                               "(output %zu bytes, golden %zu)", i, gl, wl);
            }
            free(want);
            free(got);
        }
    }
    free(gz);
    profile_release(&p);
}

TEST(pprof_decodes_to_the_fixture)
{
    struct profile p;
    golden_fixture(&p);
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 10000000);
    REQUIRE(d.ntypes == 2);
    CHECK_STR(S(&d, d.types[1].type), "cpu");
    CHECK_STR(S(&d, d.types[1].unit), "nanoseconds");
    CHECK(d.has_ptype);
    CHECK_STR(S(&d, d.ptype.type), "cpu");
    CHECK_STR(S(&d, d.ptype.unit), "nanoseconds");
    CHECK_STR(S(&d, d.dst), "cpu");
    CHECK_INT(d.time, 1795000000000000000LL);
    CHECK_INT(d.dur, 940000000LL);
    REQUIRE(d.comments.n == 2);
    CHECK_STR(S(&d, (int64_t)d.comments.v[0]), "pystrobe 0.1.0");
    CHECK_STR(S(&d, (int64_t)d.comments.v[1]), "python3 /srv/app.py (pid 4242)");
    /* Markers and native libraries: functions without a file or line. */
    int idle = 0, deflate_seen = 0;
    for (size_t i = 0; i < d.nfuncs; i++) {
        const char *name = S(&d, d.funcs[i].name);
        if (strcmp(name, "[idle]") == 0) {
            idle++;
            CHECK_INT(d.funcs[i].file, 0);
        }
        if (strcmp(name, "deflate") == 0) {
            deflate_seen++;
            CHECK_STR(S(&d, d.funcs[i].file), "libz.so.1");
        }
        /* Thread roots are labels, not frames. */
        CHECK(strncmp(name, "thread ", 7) != 0);
    }
    CHECK_INT(idle, 1);
    CHECK_INT(deflate_seen, 1);
    /* busy at lines 5 and 6: one function, two locations; fib's recursion: one location. */
    int busy = 0, busy_locs = 0, fib_locs = 0;
    for (size_t i = 0; i < d.nfuncs; i++)
        busy += strcmp(S(&d, d.funcs[i].name), "busy") == 0;
    for (size_t i = 0; i < d.nlocs; i++) {
        const struct dfunc *f = find_func(&d, d.locs[i].func);
        REQUIRE(f != NULL);
        busy_locs += strcmp(S(&d, f->name), "busy") == 0;
        fib_locs += strcmp(S(&d, f->name), "fib") == 0;
    }
    CHECK_INT(busy, 1);
    CHECK_INT(busy_locs, 2);
    CHECK_INT(fib_locs, 1);
    /* Numbered in order of appearance: the first sorted stack starts at <module> (app.py:30). */
    REQUIRE(d.nfuncs > 0 && d.nlocs > 0);
    CHECK_STR(S(&d, d.funcs[0].name), "<module>");
    CHECK_INT(d.locs[0].line, 30);
    CHECK_STR(S(&d, 1), "samples");
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

/* Rebuilds p into q with threads, frames and stacks added in reverse order. */
static void reversed_copy(const struct profile *p, struct profile *q)
{
    profile_init(q);
    q->thread_roots = p->thread_roots;
    uint32_t *tmap = calloc(p->nthreads + 1, sizeof(*tmap));
    REQUIRE(tmap != NULL);
    for (size_t i = p->nthreads; i-- > 0;)
        tmap[i] = profile_thread(q, p->threads[i].name, p->threads[i].tid);
    for (size_t i = p->nframes; i-- > 0;)
        profile_frame(q, p->frames[i].label);
    uint32_t ids[64];
    for (size_t i = p->nstacks; i-- > 0;) {
        const struct prof_stack *s = &p->stacks[i];
        REQUIRE(s->len <= 64);
        for (uint32_t j = 0; j < s->len; j++)
            ids[j] = profile_frame(q, p->frames[p->ids[s->off + j]].label);
        /* Split the count in two adds: merging must not change the result. */
        profile_add(q, tmap[s->thread], ids, s->len, s->count / 2);
        profile_add(q, tmap[s->thread], ids, s->len, s->count - s->count / 2);
    }
    q->meta = p->meta;
    q->meta.title = p->meta.title ? strdup(p->meta.title) : NULL;
    free(tmap);
}

TEST(pprof_deterministic)
{
    struct profile p, q;
    golden_fixture(&p);
    reversed_copy(&p, &q);
    CHECK(q.frames[q.threads[0].frame].label[7] == 'w'); /* really another order */
    size_t n1, n2, n3;
    char *a = write_profile(&p, &n1);
    char *b = write_profile(&q, &n2);
    char *c = write_profile(&p, &n3);
    CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
    CHECK(n1 == n3 && memcmp(a, c, n1) == 0);
    free(a);
    free(b);
    free(c);
    profile_release(&p);
    profile_release(&q);
}

TEST(pprof_invalid_utf8_becomes_replacement_characters)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "t\x80\xff-1", 7);
    uint32_t ids[3] = {p.threads[t].frame, 0, 0};
    ids[1] = profile_frame(&p, "m\xc3 (/srv/\xed\xa0\x80.py:3)"); /* truncated; a surrogate */
    ids[2] = profile_frame(&p, "f\xff (/srv/a.py:1)");
    profile_add(&p, t, ids, 3, 4);
    ids[2] = profile_frame(&p, "f\xfe (/srv/a.py:2)"); /* another bad byte, the same cleaned name */
    profile_add(&p, t, ids, 3, 5);
    ids[2] = profile_frame(&p, "\xf0\x9f\x90\x8d ok \xf4\x90\x80\x80 (/srv/a.py:9)"); /* past U+10FFFF */
    profile_add(&p, t, ids, 3, 6);
    p.meta.title = strdup("title \xc0\xaf");  /* overlong '/' */
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    /* check_against compares with the raw names, so check the parts by hand. */
    int fcount = 0, ok_name = 0, m_name = 0, tname = 0, title = 0;
    for (size_t i = 0; i < d.nstrs; i++) {
        const char *s = d.strs[i];
        fcount += strcmp(s, "f\xef\xbf\xbd") == 0;
        ok_name += strcmp(s, "\xf0\x9f\x90\x8d ok \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") == 0;
        m_name += strcmp(s, "m\xef\xbf\xbd") == 0;
        tname += strcmp(s, "t\xef\xbf\xbd\xef\xbf\xbd-1") == 0;
        title += strcmp(s, "title \xef\xbf\xbd\xef\xbf\xbd") == 0;
        const unsigned char *u = (const unsigned char *)s;
        for (size_t k = 0; k < d.strlens[i];) {
            size_t l = utf8_valid_len(u + k, d.strlens[i] - k);
            if (!l) {
                TEST_FAILF("string %zu is not valid UTF-8", i);
                break;
            }
            k += l;
        }
    }
    CHECK_INT(fcount, 1);
    CHECK_INT(ok_name, 1);
    CHECK_INT(m_name, 1);
    CHECK_INT(tname, 1);
    CHECK_INT(title, 1);
    /* Both bad f's are one function with two locations. */
    int ffuncs = 0;
    for (size_t i = 0; i < d.nfuncs; i++)
        ffuncs += strcmp(S(&d, d.funcs[i].name), "f\xef\xbf\xbd") == 0;
    CHECK_INT(ffuncs, 1);
    CHECK_INT(d.nlocs, 4);
    CHECK_INT(d.nsamples, 3);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_without_rate_has_one_sample_type)
{
    struct profile p;
    golden_fixture(&p);
    p.meta.rate = 0;
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 0);
    CHECK(!d.has_ptype);
    CHECK_INT(d.dst, 0);
    for (size_t i = 0; i < d.nstrs; i++)
        CHECK(strcmp(d.strs[i], "nanoseconds") != 0 && strcmp(d.strs[i], "cpu") != 0);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_wall_mode_and_rounded_period)
{
    struct profile p;
    golden_fixture(&p);
    p.meta.mode = "wall";
    p.meta.rate = 997; /* 1e9 / 997 = 1003009.03 */
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 1003009);
    REQUIRE(d.ntypes == 2);
    CHECK_STR(S(&d, d.types[1].type), "wall");
    CHECK_STR(S(&d, d.ptype.type), "wall");
    CHECK_STR(S(&d, d.dst), "wall");
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_no_thread_roots_and_unknown_thread)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 0);
    uint32_t ids[2] = {profile_frame(&p, "a (/x.py:1)"), profile_frame(&p, "b (/x.py:2)")};
    profile_add(&p, t, ids, 2, 3);
    profile_add(&p, t, ids, 1, 2);
    uint32_t t2 = profile_thread(&p, "", 99); /* an empty name is no name */
    profile_add(&p, t2, ids, 1, 1);
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 0);
    CHECK_INT(d.nfuncs, 2);
    REQUIRE(d.comments.n == 1);
    CHECK_STR(S(&d, (int64_t)d.comments.v[0]), "pystrobe 0.1.0");
    CHECK_INT(d.time, 0);
    CHECK_INT(d.dur, 0);
    for (size_t i = 0; i < d.nstrs; i++)
        CHECK(strcmp(d.strs[i], "thread") != 0);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_empty_profile)
{
    struct profile p;
    profile_init(&p);
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 0);
    CHECK_INT(d.nsamples, 0);
    CHECK_INT(d.nlocs, 0);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_huge_counts_saturate)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "main", 1);
    uint32_t ids[2] = {p.threads[t].frame, profile_frame(&p, "a (/x.py:1)")};
    profile_add(&p, t, ids, 2, (uint64_t)1 << 62);
    ids[1] = profile_frame(&p, "b (/x.py:1)");
    profile_add(&p, t, ids, 2, UINT64_MAX - ((uint64_t)1 << 62));
    p.meta.rate = 100;
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    REQUIRE(d.nsamples == 2);
    REQUIRE(d.samples[0].vals.n == 2 && d.samples[1].vals.n == 2);
    CHECK_U64(d.samples[0].vals.v[0], (uint64_t)1 << 62);
    CHECK_U64(d.samples[0].vals.v[1], INT64_MAX);
    CHECK_U64(d.samples[1].vals.v[0], INT64_MAX);
    CHECK_U64(d.samples[1].vals.v[1], INT64_MAX);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_extreme_rates)
{
    struct profile p;
    golden_fixture(&p);
    p.meta.rate = 1e12; /* the period would round to 0 */
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 1);
    dprof_release(&d);
    free(gz);
    p.meta.rate = 1e-30; /* the period would not fit */
    gz = write_profile(&p, &n);
    decode(gz, n, &d);
    CHECK_INT(d.period, INT64_MAX);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

/* Enough output to pass through the compressor in many pieces. */
TEST(pprof_large_profile)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t th[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "worker-%d", i);
        th[i] = profile_thread(&p, name, 1000 + i);
    }
    char label[128];
    uint32_t ids[12];
    for (int s = 0; s < 6000; s++) {
        uint32_t t = th[s % 4];
        size_t k = 0;
        ids[k++] = p.threads[t].frame;
        for (int j = 0; j < 10; j++) {
            snprintf(label, sizeof(label), "fn_%d_%d (/srv/mod%d.py:%d)", j, (s * 7 + j) % 500, j % 13,
                     (s + j) % 97);
            ids[k++] = profile_frame(&p, label);
        }
        profile_add(&p, t, ids, k, (uint64_t)(s % 17) + 1);
    }
    p.meta.rate = 250;
    size_t n;
    char *gz = write_profile(&p, &n);
    struct dprof d;
    decode(gz, n, &d);
    check_against(&p, &d, 4000000);
    dprof_release(&d);
    free(gz);
    profile_release(&p);
}

TEST(pprof_write_error)
{
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        SKIP("no /dev/full");
    setvbuf(f, NULL, _IONBF, 0);
    struct profile p;
    golden_fixture(&p);
    int rc = pprof_write(f, &p);
    CHECK(rc < 0);
    CHECK_INT(rc, -ENOSPC);
    fclose(f);
    profile_release(&p);
}
