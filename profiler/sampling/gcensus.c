/* The greenlet census of record --greenlets: see gcensus.h. */
#include "profiler/sampling/gcensus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/greenlet_find.h"
#include "profiler/sampling/greenlet_threads.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "symbolizer/codecache.h"

/* A greenlet known from an earlier walk. */
struct known {
    uint64_t obj, pimpl;     /* pimpl 0: not read yet */
    unsigned char *impl;     /* its implementation's bytes at the last census, NULL when none */
    struct gcensus_entry e;
    struct greenlet g;       /* as parsed at the last census */
    pid_t tid;               /* the thread holding its C stack, 0 unknown */
    int tid_known;           /* tid looked up since its state last changed */
    uint32_t *ids;
    size_t idcap;
    int found;               /* met by the walk of this census */
};

struct gcensus {
    struct known *v;
    size_t n, cap;
    size_t *slots;           /* open addressing: index + 1 of each known obj, 0 free */
    size_t nslots;
    const struct greenlet_layout *gl;   /* found by gcensus_take */
    uint64_t gtype;
    struct greenlet_gc_lists lists;
    int module;              /* 1 found, 0 not (yet), -1 cannot be read */
    uint64_t module_at;      /* when it was last looked for */
    uint64_t next_full;      /* when every generation is walked next, 0 now */
    int full_ok;             /* every generation was walked once */
    uint64_t young[GREENLET_YOUNG_MARK]; /* the young generations' mark after the last good walk */
    int young_ok;
    struct greenlet_set scratch;
    uint64_t *objs;
    size_t nobjs;
    unsigned char *buf;
    size_t bufcap;
    struct mem_iov *iov;
    size_t iovcap;
    int *ok;                 /* read_impls: each implementation read */
    size_t okcap;
    size_t *order;           /* known greenlets by implementation address */
    size_t ordercap;
    int order_ok;            /* order is of the greenlets known now */
    unsigned char *span;     /* the pieces read */
    size_t spancap;
    struct gcensus_stats st;
};

struct gcensus *gcensus_new(void)
{
    return xcalloc(1, sizeof(struct gcensus));
}

static void known_release(struct known *k)
{
    free(k->impl);
    free(k->ids);
}

void gcensus_free(struct gcensus *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        known_release(&c->v[i]);
    free(c->v);
    free(c->slots);
    greenlet_set_release(&c->scratch);
    free(c->objs);
    free(c->buf);
    free(c->iov);
    free(c->ok);
    free(c->order);
    free(c->span);
    free(c);
}

size_t gcensus_count(const struct gcensus *c)
{
    return c->n;
}

const struct gcensus_entry *gcensus_entry(const struct gcensus *c, size_t i)
{
    return &c->v[i].e;
}

const struct gcensus_stats *gcensus_stats(const struct gcensus *c)
{
    return &c->st;
}

static size_t slot_of(uint64_t obj, size_t nslots)
{
    return (size_t)((obj >> 3) * 0x9E3779B97F4A7C15ull >> 20) & (nslots - 1);
}

static void rehash(struct gcensus *c)
{
    c->order_ok = 0;
    size_t want = 64;
    while (want < c->n * 2 + 2)
        want *= 2;
    if (want != c->nslots) {
        free(c->slots);
        c->slots = xmalloc(want * sizeof(*c->slots));
        c->nslots = want;
    }
    memset(c->slots, 0, c->nslots * sizeof(*c->slots));
    for (size_t i = 0; i < c->n; i++) {
        size_t h = slot_of(c->v[i].obj, c->nslots);
        while (c->slots[h])
            h = (h + 1) & (c->nslots - 1);
        c->slots[h] = i + 1;
    }
}

static struct known *lookup(struct gcensus *c, uint64_t obj)
{
    if (!c->nslots)
        return NULL;
    for (size_t h = slot_of(obj, c->nslots);; h = (h + 1) & (c->nslots - 1)) {
        size_t i = c->slots[h];
        if (!i)
            return NULL;
        if (c->v[i - 1].obj == obj)
            return &c->v[i - 1];
    }
}

/* The greenlet module: looked for again now and then until the target imports it. */
static int find_module(struct gcensus *c, struct session *s, uint64_t interp, uint64_t now,
                       struct pserr *err)
{
    if (c->module > 0)
        return 0;
    if (c->module < 0)
        return pserr_set(err, ENOTSUP, "greenlets cannot be read in this process");
    if (c->module_at && now - c->module_at < GCENSUS_MODULE_RETRY_NS)
        return -ENOENT;
    c->module_at = now;
    /* A module map may be new since the maps were read. */
    mem_refresh_maps(s->mem, NULL);
    int ret = greenlet_find_module(&s->rt, &c->gtype, &c->gl, err);
    if (ret == -ENOENT)
        return ret;
    if (ret < 0) {
        c->module = -1;
        return -ENOTSUP;
    }
    if ((ret = greenlet_gc_lists_of(&s->rt, interp, &c->lists)) < 0) {
        c->module = -1;
        return pserr_set(err, ENOTSUP, "cannot find the collector's object lists of Python %s: "
                         "%s", s->rt.version, strerror(-ret));
    }
    c->module = 1;
    return 0;
}

/* Adds the greenlets the walk found that are not known yet; marks those it met. */
static void merge_found(struct gcensus *c)
{
    for (size_t i = 0; i < c->nobjs; i++) {
        struct known *k = lookup(c, c->objs[i]);
        if (k) {
            k->found = 1;
            continue;
        }
        if (c->n >= GCENSUS_MAX)
            break;
        GROW(c->v, c->cap, c->n + 1);
        k = &c->v[c->n++];
        memset(k, 0, sizeof(*k));
        c->order_ok = 0;
        k->obj = c->objs[i];
        k->found = 1;
        /* Within this loop a duplicate (a node met twice) must be found too. */
        if (c->n * 2 + 2 > c->nslots)
            rehash(c);
        else {
            size_t h = slot_of(k->obj, c->nslots);
            while (c->slots[h])
                h = (h + 1) & (c->nslots - 1);
            c->slots[h] = c->n;
        }
    }
}

/* Drops the greenlets flagged gone (obj 0), keeping the order of the others. */
static void compact(struct gcensus *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->v[i].obj) {
            known_release(&c->v[i]);
            c->st.gone++;
            continue;
        }
        if (j != i)
            c->v[j] = c->v[i];
        j++;
    }
    if (j != c->n) {
        c->n = j;
        rehash(c);
    }
}

/* Reads len bytes at addr(k) for each k with want set, in batched reads. */
static int read_all(struct gcensus *c, const struct gcensus_source *src, size_t len, int heads)
{
    GROW(c->iov, c->iovcap, c->n + 1);
    if (c->bufcap < (c->n + 1) * len) {
        c->bufcap = (c->n + 1) * len;
        c->buf = xrealloc(c->buf, c->bufcap);
    }
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct known *k = &c->v[i];
        uint64_t addr = heads ? (k->pimpl ? 0 : k->obj + (uint64_t)src->gl->pimpl) : k->pimpl;
        c->iov[i] = (struct mem_iov){.addr = addr, .buf = c->buf + i * len, .len = addr ? len : 0};
        m += addr != 0;
    }
    if (!m)
        return 0;
    int ret = mem_readv(src->m, c->iov, c->n);
    return ret == -ESRCH ? ret : 0;
}

#define SPAN_WASTE 4

static int by_pimpl(const void *a, const void *b, void *ctx)
{
    const struct known *v = ctx;
    uint64_t x = v[*(const size_t *)a].pimpl, y = v[*(const size_t *)b].pimpl;
    return x < y ? -1 : x > y;
}

/*
 * Every known greenlet's implementation (plen bytes) into buf[i * plen],
 * ok[i] set when read.  They are small objects of one allocator, many to a
 * page: those that share a page are read as one piece (its pages are
 * mapped or not as a whole), so the kernel pins each page once.  A piece
 * that fails is read again object by object.
 */
static int read_impls(struct gcensus *c, const struct gcensus_source *src, size_t plen)
{
    size_t n = c->n;
    GROW(c->iov, c->iovcap, n + 1);
    GROW(c->ok, c->okcap, n + 1);
    GROW(c->order, c->ordercap, n + 1);
    if (c->bufcap < (n + 1) * plen) {
        c->bufcap = (n + 1) * plen;
        c->buf = xrealloc(c->buf, c->bufcap);
    }
    /* A piece holds at most SPAN_WASTE times the bytes of the implementations in it. */
    if (c->spancap < (n + 1) * plen * SPAN_WASTE) {
        c->spancap = (n + 1) * plen * SPAN_WASTE;
        c->span = xrealloc(c->span, c->spancap);
    }
    /* The order changes only with the set. */
    if (!c->order_ok) {
        for (size_t i = 0; i < n; i++)
            c->order[i] = i;
        qsort_r(c->order, n, sizeof(*c->order), by_pimpl, c->v);
        c->order_ok = 1;
    }
    /* Pieces: runs of implementations within one page, in address order. */
    size_t np = 0, used = 0;
    for (size_t j = 0; j < n;) {
        uint64_t first = c->v[c->order[j]].pimpl, page = first & ~(uint64_t)4095;
        size_t e = j + 1;
        while (e < n && c->v[c->order[e]].pimpl + plen - 1 < page + 4096 &&
               c->v[c->order[e]].pimpl >= first)
            e++;
        uint64_t end = c->v[c->order[e - 1]].pimpl + plen;
        /* One alone, or one that crosses its page: read by itself. */
        if (e - j == 1 || end > page + 4096 || end - first > (e - j) * plen * SPAN_WASTE) {
            e = j + 1;
            end = first + plen;
        }
        c->iov[np++] = (struct mem_iov){.addr = first, .buf = c->span + used,
                                        .len = (size_t)(end - first)};
        used += (size_t)(end - first);
        j = e;
    }
    if (np && mem_readv(src->m, c->iov, np) == -ESRCH)
        return -ESRCH;
    /* Each implementation from its piece; those of a failed piece one by one. */
    size_t again = 0;
    for (size_t p = 0, j = 0; p < np; p++) {
        const struct mem_iov *v = &c->iov[p];
        for (; j < n && c->v[c->order[j]].pimpl < v->addr + v->len; j++) {
            size_t i = c->order[j];
            c->ok[i] = v->ok;
            if (v->ok)
                memcpy(c->buf + i * plen, (unsigned char *)v->buf + (c->v[i].pimpl - v->addr),
                       plen);
            else
                again++;
        }
    }
    if (!again)
        return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!c->ok[i])
            c->iov[m++] = (struct mem_iov){.addr = c->v[i].pimpl, .buf = c->buf + i * plen,
                                           .len = plen};
    if (mem_readv(src->m, c->iov, m) == -ESRCH)
        return -ESRCH;
    for (size_t k = 0, i = 0; i < n; i++)
        if (!c->ok[i])
            c->ok[i] = c->iov[k++].ok;
    return 0;
}

/* Turns each stack read in this census (gv[j], the greenlet at need[j]) into frame ids. */
static void resolve(struct gcensus *c, const struct gcensus_source *src, const size_t *need,
                    const struct greenlet *gv, size_t nneed)
{
    struct greenlet_set *gs = &c->scratch;
    for (size_t j = 0; j < nneed; j++) {
        struct known *k = &c->v[need[j]];
        const struct greenlet *g = &gv[j];
        k->e.status = g->status;
        k->e.depth = 0;
        if (k->e.status < 0)
            continue;
        GROW(k->ids, k->idcap, g->depth + 1);
        if (src->resolve(src->ctx, gs->raw + g->off, g->depth, k->ids) < 0) {
            k->e.status = -EINVAL;
            continue;
        }
        k->e.depth = g->depth;
    }
}

/*
 * Takes known greenlet i's state from its implementation's bytes p (ok: they
 * were read); a parked one whose state changed gets its frames read, to be
 * resolved with the others (need, gv).  0, or -ESRCH.
 */
static int take_state(struct gcensus *c, const struct gcensus_source *src, size_t i, int ok,
                      const unsigned char *p, size_t *need, struct greenlet *gv, size_t *nneed)
{
    const struct greenlet_layout *gl = src->gl;
    size_t plen = (size_t)gl->size;
    struct known *k = &c->v[i];
    /* The implementation must still point back at its object. */
    if (!ok || buf_u64(p, gl->self) != k->obj) {
        k->obj = 0;
        return 0;
    }
    struct greenlet g = {.obj = k->obj, .pimpl = k->pimpl};
    greenlet_parse(gl, p, &g);
    int same = k->impl && !memcmp(k->impl, p, plen);
    k->g = g;
    k->e.thread = -1;
    if (!same)
        k->tid_known = 0;
    if (!k->impl)
        k->impl = xmalloc(plen);
    memcpy(k->impl, p, plen);
    k->e.obj = k->obj;
    k->e.state = g.state;
    k->e.main = g.main;
    if (g.state != GL_PARKED) {
        k->e.status = 0;
        k->e.depth = 0;
        return 0;
    }
    /* Parked as it was: the same frames, already resolved. */
    if (same && k->e.status >= 0) {
        c->st.stacks_kept++;
        return 0;
    }
    g.status = greenlet_parked_stack(src->m, src->l, &c->scratch, &g);
    c->st.stacks_read++;
    need[*nneed] = i;
    gv[(*nneed)++] = g;
    return g.status == -ESRCH ? -ESRCH : 0;
}

/*
 * Finds new greenlets: the young generations every time, all of them now
 * and then.  0, or a negative errno when the walk failed (the greenlets
 * known are still checked).
 */
static int discover(struct gcensus *c, const struct gcensus_source *src, uint64_t now)
{
    /* Until a walk of every generation succeeds, no census is whole: each tries one. */
    int full = now >= c->next_full || !c->full_ok;
    struct greenlet_stats gst = {0};
    uint64_t t0 = now_ns(), mark[GREENLET_YOUNG_MARK];
    /* The young generations as they were at the last walk: nothing new to find. */
    int marked = greenlet_young_mark(src->m, src->l, &src->lists, mark) == 0;
    if (!full && marked && c->young_ok && !memcmp(mark, c->young, sizeof(mark))) {
        c->st.walks_skipped++;
        return 0;
    }
    c->nobjs = 0;
    int ret = greenlet_gc_walk_gens(src->m, src->l, &src->lists, src->gtype, !full,
                                    GCENSUS_LIST_ATTEMPTS, &c->objs, &c->nobjs, &gst);
    uint64_t took = now_ns() - t0;
    c->st.walk_ns += took;
    uint64_t wait = MAX((uint64_t)GCENSUS_FULL_WALK_NS, took * GCENSUS_FULL_WALK_SHARE);
    c->young_ok = 0;
    if (ret < 0) {
        c->st.walks_failed++;
        /* Lists busy now: the next full walk comes sooner than usual. */
        if (full)
            c->next_full = now + wait / 8;
        /* What a broken walk found is new greenlets all the same (each is
         * checked before it counts); none is forgotten for not being met. */
        if (ret == -EAGAIN && c->nobjs) {
            for (size_t i = 0; i < c->n; i++)
                c->v[i].found = 0;
            merge_found(c);
        }
        return ret;
    }
    if (full) {
        c->st.walks_full++;
        c->next_full = now + wait;
        c->full_ok = 1;
    } else {
        c->st.walks_young++;
    }
    /* The mark read before the walk: a change during the walk shows at the next census. */
    if (marked) {
        memcpy(c->young, mark, sizeof(mark));
        c->young_ok = 1;
    }
    for (size_t i = 0; i < c->n; i++)
        c->v[i].found = 0;
    merge_found(c);
    /* Every generation walked: a greenlet not met is no longer tracked (freed). */
    if (full)
        for (size_t i = 0; i < c->n; i++)
            if (!c->v[i].found)
                c->v[i].obj = 0;
    compact(c);
    return 0;
}

int gcensus_run(struct gcensus *c, const struct gcensus_source *src, uint64_t now)
{
    const struct greenlet_layout *gl = src->gl;
    uint64_t calls = mem_read_calls(src->m);
    int ret = 0;
    if (discover(c, src, now) < 0 && !c->full_ok) {
        /* Nothing known whole yet: no census to give (the young alone would be counted). */
        ret = -EAGAIN;
        goto out;
    }
    /* New greenlets: where their implementation is. */
    size_t hlen = 8, plen = (size_t)gl->size;
    if ((ret = read_all(c, src, hlen, 1)) < 0)
        goto out;
    for (size_t i = 0; i < c->n; i++) {
        struct known *k = &c->v[i];
        if (!k->pimpl && c->iov[i].len) {
            uint64_t p = c->iov[i].ok ? buf_u64(c->buf + i * hlen, 0) : 0;
            if (!p || (p & 7))
                k->obj = 0; /* not a greenlet after all (freed under the walk) */
            else
                k->pimpl = p;
        }
    }
    compact(c);
    /* Every known greenlet, checked and read again in one batch. */
    if ((ret = read_impls(c, src, plen)) < 0)
        goto out;
    /* A greenlet's stack is read once per pass at most: the first and each re-read. */
    size_t needcap = (c->n ? c->n : 1) * (1 + GCENSUS_RUNNING_REREADS);
    size_t *need = xmalloc(needcap * sizeof(*need));
    struct greenlet *gv = xmalloc(needcap * sizeof(*gv));
    size_t nneed = 0;
    c->scratch.nraw = c->scratch.n = 0;
    for (size_t i = 0; i < c->n && ret == 0; i++)
        ret = take_state(c, src, i, c->ok[i], c->buf + i * plen, need, gv, &nneed);
    /*
     * One greenlet runs in a thread at a time, but the batch is not read
     * at one instant: one read while it ran may have switched away before
     * another was read while it ran.  Those that looked running are read
     * again, together, while more than one does.
     */
    for (int round = 0; ret == 0 && round < GCENSUS_RUNNING_REREADS; round++) {
        size_t m = 0;
        size_t *idx = xmalloc((c->n ? c->n : 1) * sizeof(*idx));
        for (size_t i = 0; i < c->n; i++) {
            if (!c->v[i].obj || c->v[i].e.state != GL_RUNNING || c->v[i].e.main)
                continue;
            c->iov[m] = (struct mem_iov){.addr = c->v[i].pimpl, .buf = c->buf + m * plen,
                                         .len = plen};
            idx[m++] = i;
        }
        if (m <= 1) {
            free(idx);
            break;
        }
        c->st.rereads++;
        if (mem_readv(src->m, c->iov, m) == -ESRCH)
            ret = -ESRCH;
        for (size_t j = 0; j < m && ret == 0; j++)
            ret = take_state(c, src, idx[j], c->iov[j].ok, c->buf + j * plen, need, gv, &nneed);
        free(idx);
    }
    if (ret == 0)
        resolve(c, src, need, gv, nneed);
    free(need);
    free(gv);
    if (ret < 0)
        goto out;
    compact(c);
    for (size_t i = 0; i < c->n; i++) {
        struct known *k = &c->v[i];
        k->e.ids = k->ids;
        switch (k->e.state) {
        case GL_PARKED:
            if (k->e.status < 0) {
                c->st.unreadable++;
                break;
            }
            c->st.parked++;
            c->st.counted++;
            break;
        case GL_RUNNING:
            c->st.running++;
            c->st.counted++;
            break;
        case GL_NOT_STARTED: c->st.not_started++; break;
        case GL_DEAD: c->st.dead++; break;
        default: c->st.unreadable++; break;
        }
    }
    c->st.most = MAX(c->st.most, (uint64_t)c->n);
    c->st.censuses++;
out:
    if (ret < 0)
        c->st.failed++;
    c->st.reads += mem_read_calls(src->m) - calls;
    return ret;
}

struct session_resolver {
    struct session *s;
    int by_function;
    uint64_t *codes;
    struct code_entry **entries;
    size_t cap;
};

/*
 * A parked stack's frames (innermost first) to ids, checked as a
 * snapshot checks a thread's: every code object real, every caller at a call.
 */
static int resolve_frames(void *ctx, const struct rawframe *raw, size_t n, uint32_t *ids)
{
    struct session_resolver *r = ctx;
    if (r->cap < n + 1) {
        r->cap = n + 1;
        r->codes = xrealloc(r->codes, r->cap * sizeof(*r->codes));
        r->entries = xrealloc(r->entries, r->cap * sizeof(*r->entries));
    }
    for (size_t i = 0; i < n; i++)
        r->codes[i] = raw[i].code;
    int ret = codecache_resolve(r->s->cc, r->codes, n, r->entries);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < n; i++) {
        struct code_entry *e = r->entries[i];
        /* A parked stack does not move; a caller that cannot be calling is garbage. */
        if (!e || codecache_is_shim(e) ||
            (i > 0 && !codecache_can_call(r->s->cc, e, raw[i].addrq, 0, r->entries[i - 1])))
            return -EINVAL;
        ids[i] = codecache_frame(r->s->cc, e, raw[i].addrq, r->by_function);
    }
    return 0;
}

int gcensus_take(struct gcensus *c, struct session *s, uint64_t interp, int by_function,
                 uint64_t now, struct pserr *err)
{
    int ret = find_module(c, s, interp, now, err);
    if (ret < 0) {
        c->st.failed++;
        return ret;
    }
    struct session_resolver r = {.s = s, .by_function = by_function};
    struct gcensus_source src = {
        .m = s->mem, .l = &s->rt.layout, .gl = c->gl, .gtype = c->gtype, .lists = c->lists,
        .resolve = resolve_frames, .ctx = &r,
    };
    ret = gcensus_run(c, &src, now);
    free(r.codes);
    free(r.entries);
    if (ret == -ESRCH)
        return pserr_set(err, ESRCH, "process %d exited", (int)s->pid);
    if (ret < 0)
        return pserr_set(err, -ret, "the object lists changed under every walk");
    return 0;
}

void gcensus_threads(struct gcensus *c, struct session *s, const struct snapshot *sn)
{
    struct greenlet_set gs = {0};
    size_t *at = xmalloc((c->n ? c->n : 1) * sizeof(*at));
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].e.state != GL_RUNNING)
            continue;
        GROW(gs.v, gs.cap, gs.n + 1);
        gs.v[gs.n] = c->v[i].g;
        gs.v[gs.n].depth = 0;
        at[gs.n++] = i;
    }
    greenlet_join_threads(s, sn, &gs);
    for (size_t j = 0; j < gs.n; j++) {
        struct known *k = &c->v[at[j]];
        k->e.thread = gs.v[j].thread - 1;
        if (gs.v[j].state == GL_RUNNING && k->e.thread < 0) {
            /* Running nowhere that can be told: read as it switched, not counted. */
            k->e.status = -EAGAIN;
            c->st.running--;
            c->st.counted--;
            c->st.unreadable++;
        } else if (gs.v[j].state == GL_PARKED) {
            /* Suspended in C with no Python frame to show. */
            k->e.state = GL_PARKED;
            k->e.status = 0;
            k->e.depth = 0;
            c->st.running--;
            c->st.parked++;
        }
    }
    greenlet_set_release(&gs);
    free(at);
    /* A parked greenlet's C stack stays in its thread's: looked up once per state. */
    for (size_t i = 0; i < c->n; i++) {
        struct known *k = &c->v[i];
        if (k->e.state != GL_PARKED)
            continue;
        if (!k->tid_known) {
            int t = greenlet_owner(s, sn, &k->g);
            k->tid = t >= 0 ? s->threads[sn->st[t].tracked].tid : 0;
            k->tid_known = 1;
        }
        for (size_t t = 0; k->tid && t < sn->nthreads; t++)
            if (s->threads[sn->st[t].tracked].tid == k->tid)
                k->e.thread = (int)t;
    }
}
