/* The asyncio task census: see tcensus.h. */
#include "profiler/sampling/tcensus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/sampling/session.h"
#include "symbolizer/codecache.h"

/* An awaited task's coroutine frame, and its awaiters' stitched stack (ids[off .. off+len)). */
struct prefix {
    uint64_t frame;
    size_t off, len;
};

struct tcensus {
    struct task_set ts;
    uint32_t *own;          /* frame ids parallel to ts.raw */
    size_t owncap;
    uint32_t *ids;          /* the stitched stacks */
    size_t nids, idcap;
    struct tcensus_entry *e;
    size_t ne, ecap;
    struct prefix *pre;
    size_t npre, precap;
    struct htab pidx;
    uint64_t codes_cap;
    uint64_t *codes;
    struct code_entry **ents;
    uint64_t next_look;     /* no look for the module before this (after -ENOENT) */
    struct asyncio_cache *cache;
    struct tcensus_stats stats;
};

struct tcensus *tcensus_new(void)
{
    struct tcensus *c = xcalloc(1, sizeof(struct tcensus));
    c->cache = asyncio_cache_new();
    return c;
}

void tcensus_free(struct tcensus *c)
{
    if (!c)
        return;
    task_set_release(&c->ts);
    asyncio_cache_free(c->cache);
    free(c->own);
    free(c->ids);
    free(c->e);
    free(c->pre);
    free(c->codes);
    free(c->ents);
    htab_release(&c->pidx);
    free(c);
}

size_t tcensus_count(const struct tcensus *c)
{
    return c->ne;
}

const struct tcensus_entry *tcensus_entry(const struct tcensus *c, size_t i)
{
    return &c->e[i];
}

struct tcensus_stats *tcensus_stats(struct tcensus *c)
{
    return &c->stats;
}

static int prefix_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct tcensus *c = ctx;
    return c->pre[idx].frame == *(const uint64_t *)key;
}

const uint32_t *tcensus_prefix(const struct tcensus *c, uint64_t frame, size_t *len)
{
    if (!c || !c->npre || !frame)
        return NULL;
    uint32_t i = htab_find(&c->pidx, hash_u64(frame), prefix_eq, c, &frame);
    if (i == HTAB_NONE)
        return NULL;
    *len = c->pre[i].len;
    return c->ids + c->pre[i].off;
}

/*
 * Frame ids of every frame read (UINT32_MAX where the code could not be
 * read): each distinct code object resolved once (thousands of tasks share
 * a few), each distinct (code, offset) made a frame once.
 */
static void resolve(struct tcensus *c, struct session *s, int by_function)
{
    const struct task_set *ts = &c->ts;
    size_t n = ts->nraw, nu = 0;
    GROW(c->own, c->owncap, n ? n : 1);
    if (c->codes_cap < n) {
        c->codes = xrealloc(c->codes, n * sizeof(*c->codes));
        c->ents = xrealloc(c->ents, n * sizeof(*c->ents));
        c->codes_cap = n;
    }
    /* Distinct codes: an open-addressed table of indices into c->codes. */
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slot = xmalloc(cap * sizeof(*slot));
    memset(slot, 0xff, cap * sizeof(*slot));
    uint32_t *which = xmalloc((n ? n : 1) * sizeof(*which));
    for (size_t i = 0; i < n; i++) {
        uint64_t code = ts->raw[i].code;
        size_t h = (size_t)hash_u64(code) & (cap - 1);
        while (slot[h] != UINT32_MAX && c->codes[slot[h]] != code)
            h = (h + 1) & (cap - 1);
        if (slot[h] == UINT32_MAX) {
            slot[h] = (uint32_t)nu;
            c->codes[nu++] = code;
        }
        which[i] = slot[h];
    }
    int ok = nu && codecache_resolve(s->cc, c->codes, nu, c->ents) >= 0;
    uint64_t last_code = 0;
    int64_t last_q = 0;
    uint32_t last_id = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        struct code_entry *e = ok ? c->ents[which[i]] : NULL;
        if (!e) {
            c->own[i] = UINT32_MAX;
            continue;
        }
        if (ts->raw[i].code != last_code || ts->raw[i].addrq != last_q || last_id == UINT32_MAX) {
            last_code = ts->raw[i].code;
            last_q = ts->raw[i].addrq;
            last_id = codecache_frame(s->cc, e, last_q, by_function);
        }
        c->own[i] = last_id;
    }
    free(which);
    free(slot);
}

/*
 * Appends task i's stitched stack to c->ids, root first: its awaiters'
 * frames (the outermost awaiter's first), then, unless awaiters_only, its
 * own.  Returns its length; *own the number of its own frames.
 */
static size_t stitch(struct tcensus *c, size_t i, int awaiters_only, size_t *own)
{
    const struct task_set *ts = &c->ts;
    size_t chain[TCENSUS_MAX_AWAITERS + 1], k = 0;
    for (size_t t = awaiters_only ? ts->v[i].parent : i; t != SIZE_MAX && k <= TCENSUS_MAX_AWAITERS;
         t = ts->v[t].parent)
        chain[k++] = t;
    size_t total = 0;
    for (size_t j = 0; j < k; j++)
        total += ts->v[chain[j]].depth;
    size_t start = c->nids;
    GROW(c->ids, c->idcap, c->nids + MIN(total, (size_t)TCENSUS_MAX_DEPTH) + 1);
    /* The outermost frames go first when the whole is too deep. */
    size_t skip = total > TCENSUS_MAX_DEPTH ? total - TCENSUS_MAX_DEPTH : 0;
    for (size_t j = k; j-- > 0;) {
        const struct atask *t = &ts->v[chain[j]];
        for (size_t f = t->depth; f-- > 0;) {
            if (skip) {
                skip--;
                continue;
            }
            uint32_t id = c->own[t->off + f];
            c->ids[c->nids++] = id;
        }
    }
    *own = awaiters_only ? 0 : MIN(ts->v[i].depth, c->nids - start);
    return c->nids - start;
}

static int has_unreadable(const struct tcensus *c, size_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c->ids[off + i] == UINT32_MAX)
            return 1;
    return 0;
}

int tcensus_take(struct tcensus *c, struct session *s, uint64_t interp, int by_function,
                 uint64_t now, struct pserr *err)
{
    if (now < c->next_look)
        return -ENOENT;
    uint64_t cpu0 = cpu_ns();
    task_set_release(&c->ts);
    c->ne = c->nids = c->npre = 0;
    htab_clear(&c->pidx);
    int ret = asyncio_collect_cached(&s->rt, interp, c->cache, now, &c->ts, err);
    c->stats.reads += c->ts.stats.reads;
    if (ret < 0) {
        if (ret == -ENOENT)
            c->next_look = now + TCENSUS_MODULE_RETRY_NS;
        else
            c->stats.failed++;
        c->stats.ns += cpu_ns() - cpu0;
        return ret;
    }
    c->stats.censuses++;
    c->stats.most = MAX(c->stats.most, (uint64_t)c->ts.n);
    resolve(c, s, by_function);
    const struct task_set *ts = &c->ts;
    GROW(c->e, c->ecap, ts->n ? ts->n : 1);
    /* Stitched stacks are offsets first: c->ids moves as it grows. */
    size_t *offs = xcalloc(ts->n ? ts->n : 1, sizeof(*offs));
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        switch (t->state) {
        case TASK_PENDING: c->stats.waiting++; break;
        case TASK_RUNNING: c->stats.running++; break;
        case TASK_NOT_STARTED: c->stats.not_started++; break;
        case TASK_DONE: case TASK_CANCELLED: c->stats.done++; break;
        default: c->stats.unreadable++; break;
        }
        /* A task that waits on tasks it awaits (or gathers) is counted in
         * theirs: their stacks go under its own. */
        if (t->state != TASK_PENDING || t->awaits_tasks)
            continue;
        if (t->status < 0) {
            c->stats.unreadable++;
            continue;
        }
        /* Its coroutine ended, the task not yet told: nothing to show. */
        if (!t->depth)
            continue;
        struct tcensus_entry *e = &c->e[c->ne];
        offs[c->ne] = c->nids;
        e->state = t->state;
        e->depth = stitch(c, i, 0, &e->own);
        if (has_unreadable(c, offs[c->ne], e->depth)) {
            c->nids = offs[c->ne];
            c->stats.unreadable++;
            continue;
        }
        c->ne++;
    }
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        if (t->parent == SIZE_MAX || !t->coro_frame)
            continue;
        size_t own, off = c->nids, len = stitch(c, i, 1, &own);
        if (!len || has_unreadable(c, off, len)) {
            c->nids = off;
            continue;
        }
        GROW(c->pre, c->precap, c->npre + 1);
        c->pre[c->npre] = (struct prefix){t->coro_frame, off, len};
        htab_insert(&c->pidx, hash_u64(t->coro_frame), (uint32_t)c->npre);
        c->npre++;
    }
    for (size_t i = 0; i < c->ne; i++)
        c->e[i].ids = c->ids + offs[i];
    free(offs);
    c->stats.ns += cpu_ns() - cpu0;
    return 0;
}
