/*
 * The stack walker, <= 3.10: PyFrameObject chains, and the frames of late
 * read ahead with a thread state (chain hints).
 */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/cpython/walk_impl.h"

/* Hints unused for this many walks are dropped. */
#define HINT_TTL 4096
/* Frames of a chain read ahead (its innermost ones), the most bytes of a
 * span, and the gap below which two frames are read as one span (copying a
 * gap costs about what another piece of the read does). */
#define HINT_CHAIN 256
#define SPAN_MAX (64u << 10)
#define SPAN_GAP 2048

void walk_hint_release(struct chain_hint *h)
{
    free(h->chain);
    free(h->spans);
    free(h->order);
    free(h->buf);
    free(h->buf2);
}

static int addr_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Bytes of a thread's frames read ahead, at most. */
#define SPAN_BUDGET (256u << 10)

/* The span of h holding frame [addr, addr+len), or NULL. */
static struct span *span_of(struct chain_hint *h, uint64_t addr, size_t len)
{
    size_t lo = 0, hi = h->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->spans[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr > UINT64_MAX - len || addr + len > h->spans[lo - 1].hi)
        return NULL;
    return &h->spans[lo - 1];
}

static void span_rank(struct chain_hint *h, uint64_t addr, uint32_t rank, size_t len)
{
    struct span *sp = span_of(h, addr, len);
    if (sp && rank < sp->rank)
        sp->rank = rank;
}

static const struct span *rank_spans; /* for rank_cmp */

static int rank_cmp(const void *a, const void *b)
{
    const struct span *x = &rank_spans[*(const uint32_t *)a], *y = &rank_spans[*(const uint32_t *)b];
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* <= 3.10: the spans covering h's frames, nearby ones merged, and room for their bytes. */
static void hint_spans(struct walker *w, struct chain_hint *h)
{
    size_t len = walk_frame_len(w->l), n = 0,
           want = MIN(h->nchain, (size_t)HINT_CHAIN) + (size_t)h->nring;
    GROW(w->sorted, w->sortedcap, want + 1);
    for (size_t i = 0; i < MIN(h->nchain, (size_t)HINT_CHAIN); i++)
        w->sorted[n++] = h->chain[i];
    for (int i = 0; i < h->nring; i++)
        w->sorted[n++] = h->ring[i];
    qsort(w->sorted, n, sizeof(*w->sorted), addr_cmp);
    size_t bytes = 0;
    h->nspans = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = w->sorted[i];
        if (!a || (a & 7) || a > UINT64_MAX - len)
            continue;
        struct span *last = h->nspans ? &h->spans[h->nspans - 1] : NULL;
        if (last && a <= last->hi + SPAN_GAP && a + len - last->lo <= SPAN_MAX) {
            if (a + len > last->hi) {
                bytes += a + len - last->hi;
                last->hi = a + len;
            }
            continue;
        }
        if (bytes + len > SPAN_BUDGET)
            break;
        GROW(h->spans, h->spancap, h->nspans + 1);
        h->spans[h->nspans++] = (struct span){.lo = a, .hi = a + len};
        bytes += len;
    }
    size_t off = 0;
    for (size_t i = 0; i < h->nspans; i++) {
        h->spans[i].off = off;
        h->spans[i].rank = UINT32_MAX;
        off += (size_t)(h->spans[i].hi - h->spans[i].lo);
    }
    /* Read the spans innermost first: a frame no later than its callers,
     * which cannot change while it lives (ring frames are the likeliest
     * innermost ones: a fast recursion's). */
    for (size_t i = 0; i < MIN(h->nchain, (size_t)HINT_CHAIN); i++)
        span_rank(h, h->chain[i], (uint32_t)i + 1, len);
    for (int i = 0; i < h->nring; i++)
        span_rank(h, h->ring[i], 0, len);
    h->order = xrealloc(h->order, (h->nspans + 1) * sizeof(*h->order));
    for (size_t i = 0; i < h->nspans; i++)
        h->order[i] = (uint32_t)i;
    rank_spans = h->spans;
    qsort(h->order, h->nspans, sizeof(*h->order), rank_cmp);
    for (size_t i = 0; i < h->nspans; i++)
        h->spans[h->order[i]].pos = (uint32_t)i;
    if (h->bufcap < off) {
        free(h->buf);
        free(h->buf2);
        h->bufcap = MAX(off, (size_t)4096);
        h->buf = xmalloc(h->bufcap);
        h->buf2 = xmalloc(h->bufcap);
    }
    h->dirty = 0;
}

static int in_list(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Adds frame f to h's ring unless h has it already. */
static void ring_add(struct chain_hint *h, uint64_t f)
{
    if (in_list(h->chain, MIN(h->nchain, (size_t)HINT_CHAIN), f) ||
        in_list(h->ring, (size_t)h->nring, f))
        return;
    h->ring[h->ring_next] = f;
    h->ring_next = (h->ring_next + 1) % (int)ARRAY_SIZE(h->ring);
    if (h->nring < (int)ARRAY_SIZE(h->ring))
        h->nring++;
    h->dirty = 1;
}

/* <= 3.10: the frames of a walk that broke off, addrs[0, n), go to h's ring (at most 16). */
static void hint_note(struct chain_hint *h, const uint64_t *addrs, size_t n)
{
    for (size_t i = 0; i < MIN(n, (size_t)16); i++)
        ring_add(h, addrs[i]);
}

/*
 * <= 3.10: takes a walk's frames chain[0, n) (innermost first) as h's
 * chain; the old chain's frames it no longer has (the ones above the part
 * both share, at most 64) go to the ring.
 */
static void hint_update(struct chain_hint *h, const uint64_t *chain, size_t n)
{
    size_t a = h->nchain, b = n;
    while (a > 0 && b > 0 && h->chain[a - 1] == chain[b - 1]) {
        a--;
        b--;
    }
    if (a == 0 && b == 0)
        return;
    /* The old chain's frames above the shared part, unless the new one has them. */
    for (size_t i = 0; i < MIN(a, ARRAY_SIZE(h->ring)); i++)
        if (!in_list(chain, MIN(b, (size_t)HINT_CHAIN), h->chain[i]))
            ring_add(h, h->chain[i]);
    if (h->chaincap < n + 1) {
        h->chaincap = n + 1;
        h->chain = xrealloc(h->chain, h->chaincap * sizeof(*h->chain));
    }
    memcpy(h->chain, chain, n * sizeof(*chain));
    h->nchain = n;
    h->dirty = 1;
}

/* Adds to w->iov from k the reads of h's spans; returns the new k. */
size_t walk_plan_spans(struct walker *w, struct chain_hint *h, size_t k, size_t *budget)
{
    if (h->dirty)
        hint_spans(w, h);
    size_t bytes = h->nspans ? h->spans[h->nspans - 1].off +
                                   (size_t)(h->spans[h->nspans - 1].hi - h->spans[h->nspans - 1].lo)
                             : 0;
    h->planned = 0;
    if (!h->nspans || 2 * bytes > *budget)
        return k;
    *budget -= 2 * bytes;
    h->planned = 1;
    /* Twice, outermost first and then innermost first: a caller the same
     * in both reads did not move while its callees were read, twice each
     * (see settle_frames), and the innermost frames, which move the most,
     * are read twice in the shortest while. */
    GROW(w->iov, w->iovcap, k + 2 * h->nspans + 1);
    for (int again = 0; again < 2; again++) {
        for (size_t i = 0; i < h->nspans; i++) {
            const struct span *s = &h->spans[h->order[again ? i : h->nspans - 1 - i]];
            w->iov[k++] = (struct mem_iov){s->lo, (again ? h->buf2 : h->buf) + s->off,
                                           (size_t)(s->hi - s->lo), 0};
        }
    }
    return k;
}

/* The bytes of frame [addr, addr+len) in h's spans just read, or NULL. */
static const unsigned char *span_find(struct chain_hint *h, uint64_t addr, size_t len)
{
    const struct span *sp = span_of(h, addr, len);
    return sp && sp->ok ? h->buf + sp->off + (addr - sp->lo) : NULL;
}

/* The same as read the second time, or NULL. */
static const unsigned char *span_find2(struct chain_hint *h, uint64_t addr, size_t len)
{
    const struct span *sp = span_of(h, addr, len);
    return sp && sp->ok2 ? h->buf2 + sp->off + (addr - sp->lo) : NULL;
}

/*
 * Which read of frame callee (in h's spans) falls between the two reads of
 * frame caller: 1 the first, 2 the second, 0 neither.  The first pass reads
 * the spans outermost first, the second innermost first, each span from
 * its low end: a span read earlier in the second pass is read twice within
 * the reads of one read later.
 */
static int read_within(struct chain_hint *h, uint64_t callee, uint64_t caller, size_t len)
{
    const struct span *sa = span_of(h, callee, len), *sb = span_of(h, caller, len);
    if (!sa || !sb || sa->pos > sb->pos)
        return 0;
    return sa->pos < sb->pos || callee > caller ? 1 : 2;
}

static int is_frame_type(struct walker *w, uint64_t type)
{
    if (type && type == w->frame_type)
        return 1;
    if (!type || w->rt->frame_type)
        return 0;
    /* Not exported: confirm a type by its name once. */
    uint64_t name;
    char buf[6];
    if (mem_read_u64(w->rt->mem, type + (uint64_t)w->l->tp_name, &name) < 0 ||
        mem_read(w->rt->mem, name, buf, 6) < 0 || memcmp(buf, "frame", 6) != 0)
        return 0;
    w->frame_type = type;
    return 1;
}

static int hint_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct walker *w = ctx;
    return w->hints[idx].tstate == *(const uint64_t *)key;
}

/* The index of a thread state's chain hint, or HTAB_NONE. */
uint32_t walk_hint_lookup(struct walker *w, uint64_t tstate)
{
    return htab_find(&w->hint_index, hash_u64(tstate), hint_eq, w, &tstate);
}

/* The chain hint of a thread state, created empty if new. */
static struct chain_hint *get_hint(struct walker *w, uint64_t tstate)
{
    uint32_t i = htab_find(&w->hint_index, hash_u64(tstate), hint_eq, w, &tstate);
    if (i == HTAB_NONE) {
        /* Now and then, drop the hints of threads that are gone. */
        if (w->nhints >= 64 && (w->walks & 1023) == 0) {
            size_t k = 0;
            for (size_t j = 0; j < w->nhints; j++) {
                if (w->walks - w->hints[j].used < HINT_TTL)
                    w->hints[k++] = w->hints[j];
                else
                    walk_hint_release(&w->hints[j]);
            }
            w->nhints = k;
            htab_clear(&w->hint_index);
            for (size_t j = 0; j < k; j++)
                htab_insert(&w->hint_index, hash_u64(w->hints[j].tstate), (uint32_t)j);
        }
        GROW(w->hints, w->hintcap, w->nhints + 1);
        i = (uint32_t)w->nhints++;
        memset(&w->hints[i], 0, sizeof(w->hints[i]));
        w->hints[i].tstate = tstate;
        htab_insert(&w->hint_index, hash_u64(tstate), i);
    }
    w->hints[i].used = w->walks;
    return &w->hints[i];
}

/*
 * Checks a PyFrameObject's bytes and fills out.  A frame freed (refcount 0)
 * had returned by the time it was read: the stack changed under the walk.
 */
int walk_take_frame_object(struct walker *w, const unsigned char *buf, struct rawframe *out)
{
    const struct pylayout *l = w->l;
    int64_t refcnt = (int64_t)buf_u64(buf, 0);
    if (refcnt <= 0 || !is_frame_type(w, buf_u64(buf, l->ob_type)))
        return walk_set_torn(w, TORN_DEAD);
    return walk_frame_raw(l, buf, out) < 0 ? walk_set_torn(w, TORN_GARBAGE) : 0;
}

/* <= 3.10: what a frame object's bytes say it is, to tell whether it moved. */
static int same_frame(const struct pylayout *l, const unsigned char *a, const unsigned char *b)
{
    int32_t la, lb;
    memcpy(&la, a + l->fo_lasti, 4);
    memcpy(&lb, b + l->fo_lasti, 4);
    return (int64_t)buf_u64(a, 0) > 0 && (int64_t)buf_u64(b, 0) > 0 &&
           buf_u64(a, l->ob_type) == buf_u64(b, l->ob_type) &&
           buf_u64(a, l->fo_back) == buf_u64(b, l->fo_back) &&
           buf_u64(a, l->fo_code) == buf_u64(b, l->fo_code) && la == lb;
}

/*
 * <= 3.10: of callee (a frame object) and its caller, read twice each, the
 * callee's bytes read while the caller was as in both its reads (so that it
 * did not move in between: it was calling that callee), and that still
 * name the caller; NULL when none (read_within).
 */
static const unsigned char *callee_bytes(struct walker *w, struct chain_hint *h, uint64_t callee,
                                         uint64_t caller)
{
    const struct pylayout *l = w->l;
    size_t len = walk_frame_len(l);
    int which = read_within(h, callee, caller, len);
    const unsigned char *f = which == 1 ? span_find(h, callee, len)
                             : which == 2 ? span_find2(h, callee, len) : NULL;
    /* Read before its caller in the second pass (a span read early for a
     * frame of the ring beside it): the callee the same in both its reads
     * was so between the passes too, when its caller was as read. */
    if (which == 0) {
        const unsigned char *a = span_find(h, callee, len), *b = span_find2(h, callee, len);
        f = a && b && same_frame(l, a, b) ? a : NULL;
    }
    if (!f || (int64_t)buf_u64(f, 0) <= 0 || !is_frame_type(w, buf_u64(f, l->ob_type)) ||
        buf_u64(f, l->fo_back) != caller || !buf_u64(f, l->fo_code))
        return NULL;
    return f;
}

/*
 * <= 3.10: the frames of a walk (out[0..*n), at w->chain) are read one
 * after the other, so a caller read after its callee may have gone on
 * since (the callee returned), or one read before it made the call after
 * (to another function).  The spans were read twice: the callers that are
 * the same in both reads did not move between them, and a callee read
 * between those reads was the one they called.  Keeps the frames from the
 * innermost caller on that moved not, with the frame above it as read
 * between its two reads if that one still named it.  0, or -EINVAL when
 * the outermost frame moved, or a frame was not among those read twice
 * (read alone: the walk is taken again, with it read ahead).
 */
static int settle_frames(struct walker *w, struct chain_hint *h, struct rawframe *out, size_t *n)
{
    const struct pylayout *l = w->l;
    size_t len = walk_frame_len(l), k = 0;
    /* Frames read alone, after both reads: taken again, with them (those
     * deeper than a hint's chain, read alone each time, are taken as read:
     * the deep end of a stack hardly moves). */
    for (size_t j = 0; j < MIN(*n, (size_t)HINT_CHAIN); j++)
        if (!span_find(h, w->chain[j], len) || !span_find2(h, w->chain[j], len))
            return walk_set_torn(w, TORN_MOVED);
    if (*n < 2)
        return 0;
    /* The innermost caller, from the outermost frame in, of the ones that
     * moved not: k is the frame above it (0: none moved). */
    for (size_t j = *n; j-- > 1;) {
        const unsigned char *a = span_find(h, w->chain[j], len), *b = span_find2(h, w->chain[j], len);
        if (j >= HINT_CHAIN && (!a || !b))
            continue;
        if (!a || !b || !same_frame(l, a, b)) {
            if (j == *n - 1)
                return walk_set_torn(w, TORN_MOVED);
            k = j;
            break;
        }
    }
    const unsigned char *f = callee_bytes(w, h, w->chain[k], w->chain[k + 1]);
    size_t drop = k;
    if (f) {
        struct rawframe r;
        if (walk_take_frame_object(w, f, &r) == 0)
            out[k] = r;
        else
            drop = k + 1;
    } else {
        drop = k + 1;
    }
    if (drop) {
        memmove(out, out + drop, (*n - drop) * sizeof(*out));
        memmove(w->chain, w->chain + drop, (*n - drop) * sizeof(*w->chain));
        memmove(w->prevs, w->prevs + drop, (*n - drop) * sizeof(*w->prevs));
        *n -= drop;
        w->settled++;
    }
    return 0;
}

/*
 * <= 3.10: follows f_back from the top frame.  Each frame is taken from the
 * thread's frames read with its thread state when it is among them, else
 * read alone (the walk is then no longer one instant: the caller counts
 * such reads, walk_last_open).  The frames walked are remembered to be read
 * ahead next time, whether or not the walk was whole.
 */
int walk_frame_objects(struct walker *w, const struct walk_thread *t,
                       struct rawframe *out, size_t max, size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char buf[160];
    size_t len = walk_frame_len(l);
    uint64_t frame = t->frame, mark = frame;
    size_t power = 1, lam = 0, n = 0;
    struct chain_hint *h = get_hint(w, t->tstate);
    int fresh = h->fresh == w->lists + 1, ret = 0, dead_top = 0;
    w->settled = 0;
    h->read = h->fresh;
    h->fresh = 0; /* a walk again reads afresh */
    *depth = 0;
    if (len > sizeof(buf))
        return -EINVAL;
    GROW(w->chain, w->chaincap, max + 2);
    GROW(w->prevs, w->prevscap, max + 1);
    while (frame) {
        if (n >= max) {
            ret = 1;
            break;
        }
        if (frame & 7) {
            ret = walk_set_torn(w, TORN_GARBAGE);
            break;
        }
        const unsigned char *f = fresh ? span_find(h, frame, len) : NULL;
        if (f) {
            w->stats.ahead_frames++;
        } else {
            if ((ret = mem_read(w->rt->mem, frame, buf, len)) < 0)
                break;
            w->stats.single_reads++;
            f = buf;
        }
        if ((ret = walk_take_frame_object(w, f, &out[n])) < 0 && n == 0 && !dead_top &&
            w->torn == TORN_DEAD && buf_u64(f, 0) == 0 &&
            is_frame_type(w, buf_u64(f, l->ob_type))) {
            /* The top frame had returned, freed between the reads of the
             * thread state and of its frames: the thread was back in its
             * caller, which a freed frame kept as a code's zombie still
             * names (one on the free list names another freed frame). */
            uint64_t back = buf_u64(f, l->fo_back);
            const unsigned char *b = fresh && back && !(back & 7) ? span_find(h, back, len) : NULL;
            struct rawframe r;
            if (b && walk_take_frame_object(w, b, &r) == 0) {
                dead_top = 1;
                w->stats.dead_tops++;
                frame = mark = back;
                continue;
            }
            ret = walk_set_torn(w, TORN_DEAD);
        }
        if (ret < 0) {
            /* Frames of this thread's of late all the same. */
            w->chain[n] = frame;
            hint_note(h, w->chain, n + 1);
            return ret;
        }
        w->prevs[n] = buf_u64(f, l->fo_back);
        w->chain[n++] = frame;
        frame = buf_u64(f, l->fo_back);
        if (frame == mark) {
            w->torn = TORN_CYCLE;
            ret = -ELOOP;
            break;
        }
        if (++lam == power) {
            mark = frame;
            power *= 2;
            lam = 0;
        }
    }
    /* Read with the thread state, twice: only what did not move between
     * (all of it read ahead next time). */
    if (ret >= 0 && fresh) {
        hint_update(h, w->chain, n);
        int r = settle_frames(w, h, out, &n);
        if (r < 0)
            return r;
    } else if (ret >= 0) {
        hint_update(h, w->chain, n);
    } else {
        hint_note(h, w->chain, n);
    }
    *depth = ret >= 0 ? n : 0;
    return ret;
}

/*
 * <= 3.10: the callee of frame among the frames of h read with the thread
 * state (twice), or 0: frame the same in both reads, and one frame alive
 * naming it when read between them (callee_bytes).
 */
uint64_t walk_old_callee(struct walker *w, struct chain_hint *h, uint64_t frame,
                         const unsigned char **bytes)
{
    const struct pylayout *l = w->l;
    size_t len = walk_frame_len(l);
    const unsigned char *fa = span_find(h, frame, len), *fb = span_find2(h, frame, len);
    uint64_t found = 0;
    if (!fa || !fb || !same_frame(l, fa, fb))
        return 0;
    for (size_t i = 0; i < MIN(h->nchain, (size_t)HINT_CHAIN) + (size_t)h->nring; i++) {
        uint64_t a = i < MIN(h->nchain, (size_t)HINT_CHAIN) ? h->chain[i]
                                                            : h->ring[i - MIN(h->nchain, (size_t)HINT_CHAIN)];
        const unsigned char *f = a && a != found && a != frame ? callee_bytes(w, h, a, frame) : NULL;
        if (!f)
            continue;
        if (found)
            return 0; /* two frames say they are its callee: neither is sure */
        found = a;
        *bytes = f;
    }
    return found;
}
