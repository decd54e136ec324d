#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/target/core.h"
#include "profiler/target/proc.h"

/* 3.11+ frame owners. */
#define OWNED_BY_THREAD 0
#define OWNED_BY_GENERATOR 1
#define OWNED_BY_FRAME_OBJECT 2

/* Data-stack chunks copied per walk, and bytes copied of one. */
#define MAX_CHUNKS 256
#define MAX_CHUNK_BYTES (8u << 20)
/* A parked stack's chunks copied before another is (what a walk copies is
 * then at most this and one chunk more), and a chunk buffer's size kept
 * after its walk. */
#define PARKED_CHUNK_BYTES (8u << 20)
#define PARKED_KEEP (64u << 10)
/* Bytes of a struct pthread searched for the tid field, and threads read for it. */
#define PTHREAD_SCAN 2048
#define TID_SAMPLE 64
/* After a search for it failed, the thread lists before the next search:
 * 1, then twice as many after each failure, up to this. */
#define TID_SEARCH_EVERY 64

struct chunk_copy {
    uint64_t base, len;    /* [base, base+len) of the target, header included */
    uint64_t copied;       /* bytes in buf from base: len, or more (read beyond the top) */
    int pieces;            /* read ahead page by page, the top first */
    unsigned char *buf;
    size_t cap;
    uint64_t previous;     /* the next older chunk, 0 at the end */
};

/* 3.11+: older data-stack chunks read ahead per thread. */
#define AHEAD_OLDER 4

/* Frames outside the data stack read ahead per thread (C-stack shims,
 * generators' frames), and their most bytes. */
#define AHEAD_SINGLES 8
#define AHEAD_FRAME 128

/* 3.11/3.12: places of a thread's current frame pointer (in the cframes of
 * its eval loops, on its C stack) read ahead per thread. */
#define AHEAD_CFRAMES 8

/*
 * 3.11+: what is read with the thread state of a thread walked since the
 * previous thread list (with the list, or again by walk_refresh), where
 * its frames were last time: the walk takes every frame it can from here,
 * all read in one instant, and what it must read alone is noted to be read
 * ahead next time.
 */
struct ahead {
    uint64_t tstate;          /* the thread state it belongs to */
    int walked;               /* walked since the last walk_threads */
    /* 3.11/3.12: the current frame pointers of recent cframes (most recent
     * first), each read with the cframe's previous one (the next field) */
    uint64_t cf_at[AHEAD_CFRAMES], cf_val[AHEAD_CFRAMES][2];
    uint8_t cf_ok[AHEAD_CFRAMES];
    int ncf;
    uint64_t chunk, want;     /* the data stack's newest chunk, and the bytes read of it */
    struct chunk_copy copy;
    int chunk_ok;             /* read with this call's list, not used yet */
    /* Frames outside the chunks (3.12+ entry shims on the C stack,
     * generators' frames) of the last walk, and their bytes read again. */
    uint64_t single_at[AHEAD_SINGLES];
    unsigned char single[AHEAD_SINGLES][AHEAD_FRAME];
    uint8_t single_ok[AHEAD_SINGLES];
    int nread;                /* slots read with this call's list */
    int nnext;                /* slots the last walk filled: read next time */
    /* 3.11+: the older chunks the last walk went through, read again */
    struct chunk_copy older[AHEAD_OLDER];
    uint8_t older_ok[AHEAD_OLDER];
    int older_read, older_next;
    /* 3.11+: a window of the thread's C stack, where its eval loops keep
     * their cframes (3.11, 3.12) and entry shims (3.12+): from some way
     * below the lowest the last walk met (an eval loop entered since is
     * there) to the highest.  Read with the thread state, so that a loop
     * entered or left just then is seen as it was. */
    uint64_t cs_lo, cs_hi;    /* the window read, [lo, hi); equal when none */
    unsigned char *cs_buf;
    int cs_ok;                /* read with this call's list */
    uint64_t cs_min, cs_max;  /* what the last walk met there, [min, max); min 0: nothing */
};

/* The pieces a chunk is read ahead in (the pages of x86_64). */
#define PIECE 4096u

/* The C-stack window: bytes below the lowest place met, and the most in all. */
#define CS_BELOW 3072u
#define CS_MAX 8192u
/* The farthest apart two cframes of one thread are taken to be (a C stack's
 * size), the nearest an eval loop's shim is to its cframe, and the most
 * cframes one walk tries. */
#define CS_SPAN (8u << 20)
#define CS_NEAR 1024u
#define CF_TRIES 6

/* Bytes read ahead beyond a chunk's last used top, and the most per thread and per call. */
#define AHEAD_SLACK 1024
#define AHEAD_MAX (128u << 10)
#define AHEAD_BUDGET (4u << 20)

/*
 * <= 3.10: the frame objects a thread ran lately, read with its thread
 * state: the last walk's chain (innermost first) and, in a ring, frames of
 * earlier walks that left it (frames are recycled, so a fast recursion
 * runs through a few dozen addresses).  They are read as spans, nearby
 * frames in one piece, so that a stack is read in one instant.
 */
struct span {
    uint64_t lo, hi;          /* [lo, hi) of the target */
    size_t off;               /* where its bytes are in buf (and buf2) */
    uint32_t rank;            /* its innermost frame's place in the chain (ring frames: 0) */
    uint32_t pos;             /* its place in the order it is read in */
    uint8_t ok, ok2;          /* read into buf, and again into buf2 */
};

struct chain_hint {
    uint64_t tstate;
    uint32_t used;            /* walks counter when last used */
    uint64_t *chain;          /* the last walk's frames, innermost first */
    size_t nchain, chaincap;
    uint64_t ring[256];       /* other frames seen lately */
    int nring, ring_next;
    struct span *spans;       /* covering chain and ring, by address */
    size_t nspans, spancap;
    uint32_t *order;          /* the spans by rank: the order they are read in */
    int dirty;                /* spans to compute again */
    unsigned char *buf;       /* the spans' bytes */
    unsigned char *buf2;      /* and as read again right after */
    size_t bufcap;
    int planned;              /* its spans are in the read being made */
    uint32_t fresh;           /* buf holds the read of this thread list (lists + 1), or 0 */
    uint32_t read;            /* the same, kept after the walk used it (walk_callee) */
};

/* Hints unused for this many walks are dropped. */
#define HINT_TTL 4096
/* Frames of a chain read ahead (its innermost ones), the most bytes of a
 * span, and the gap below which two frames are read as one span (copying a
 * gap costs about what another piece of the read does). */
#define HINT_CHAIN 256
#define SPAN_MAX (64u << 10)
#define SPAN_GAP 2048

struct walker {
    struct pyrt *rt;
    struct pyrt *own_rt;    /* walker_new_parked's: only its mem and layout set */
    const struct pylayout *l;
    struct chunk_copy chunks[MAX_CHUNKS];
    size_t nchunks;
    int rewalk;             /* a walk again from the same reads (walk_cframes) */
    int settled;            /* <= 3.10: the last walk kept only the frames that moved not */
    int no_open;            /* a walk from what was read ahead alone (walk_cframes) */
    int (*returned)(void *ctx, uint64_t code, int64_t addrq); /* walk_set_returned */
    void *returned_ctx;
    uint64_t frame_type;    /* PyFrame_Type, known or confirmed by name */
    int tid_offset;         /* offset of tid in struct pthread; -1 unknown */
    uint32_t lists;         /* walk_threads calls */
    uint32_t tid_search_at; /* the call of the last search for tid_offset */
    uint32_t tid_search_wait; /* calls from a failed search to the next; 0: none failed */
    pid_t ns_pid;           /* the process's id in its own PID namespace */
    /* The thread states of the last walk_threads, and a buffer for them. */
    uint64_t *prev_ts;
    size_t nprev, prevcap;
    unsigned char *tsbuf;
    size_t tsbufcap;
    struct mem_iov *iov;
    size_t iovcap;
    /* <= 3.10: each thread's frames of late, by thread state. */
    struct chain_hint *hints;
    size_t nhints, hintcap;
    struct htab hint_index;
    uint32_t walks;
    uint64_t *chain;        /* the chain being walked */
    size_t chaincap;
    uint64_t *sorted;       /* scratch: hint addresses to sort */
    size_t sortedcap;
    uint64_t *prevs;        /* each walked frame's caller as read (0: the outermost) */
    size_t prevscap;
    uint8_t *owners;        /* 3.11+: each walked frame's owner */
    size_t ownerscap;
    uint8_t *entries;       /* 3.11: and its is_entry flag */
    size_t entriescap;
    size_t nseen;           /* 3.11+: frames in chain[] of the last walk, shims included */
    /* 3.11+: reads ahead, by index in the last thread list */
    struct ahead *ahead;
    size_t nahead, aheadcap;
    uint8_t *tsok;
    size_t tsokcap;
    /* <= 3.10: each listed thread's tid in its struct pthread, read with the
     * list: its thread_id (the struct's address), the tid read and if it was */
    uint64_t *tid_at;
    int32_t *tidv;
    uint8_t *tidok;
    size_t tidcap;
    struct walk_stats stats;
    enum walk_torn torn;    /* why the last walk that returned -EINVAL was torn */
    uint64_t open;          /* reads the last walk made besides the reads ahead */
};

struct walker *walker_new(struct pyrt *rt)
{
    struct walker *w = xcalloc(1, sizeof(*w));
    w->rt = rt;
    w->l = &rt->layout;
    w->frame_type = rt->frame_type;
    w->tid_offset = -1;
    w->ns_pid = proc_ns_pid(rt->pid);
    return w;
}

static void hint_release(struct chain_hint *h)
{
    free(h->chain);
    free(h->spans);
    free(h->order);
    free(h->buf);
    free(h->buf2);
}

void walker_free(struct walker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < MAX_CHUNKS; i++)
        free(w->chunks[i].buf);
    for (size_t i = 0; i < w->nahead; i++) {
        free(w->ahead[i].copy.buf);
        free(w->ahead[i].cs_buf);
        for (int j = 0; j < AHEAD_OLDER; j++)
            free(w->ahead[i].older[j].buf);
    }
    free(w->ahead);
    free(w->tsok);
    free(w->tid_at);
    free(w->tidv);
    free(w->tidok);
    for (size_t i = 0; i < w->nhints; i++)
        hint_release(&w->hints[i]);
    free(w->hints);
    htab_release(&w->hint_index);
    free(w->prev_ts);
    free(w->tsbuf);
    free(w->iov);
    free(w->chain);
    free(w->sorted);
    free(w->prevs);
    free(w->owners);
    free(w->entries);
    free(w->own_rt);
    free(w);
}

const struct walk_stats *walk_stats(const struct walker *w)
{
    return &w->stats;
}

enum walk_torn walk_last_torn(const struct walker *w)
{
    return w->torn;
}

const char *walk_torn_name(enum walk_torn why)
{
    static const char *const names[TORN_COUNT] = {
        "none", "a frame freed", "frames moved", "outermost frame", "garbage", "not code",
        "generator outermost", "frame cycle", "unreadable",
    };
    return (unsigned)why < TORN_COUNT ? names[why] : "?";
}

static uint64_t get_u64(const unsigned char *buf, int off)
{
    uint64_t v;
    memcpy(&v, buf + off, 8);
    return v;
}

/* Notes why a walk is judged torn; returns -EINVAL. */
static int torn(struct walker *w, enum walk_torn why)
{
    w->torn = why;
    return -EINVAL;
}

/* Fills t from the thread state's bytes ts (read from tstate). */
static void decode_tstate(struct walker *w, uint64_t tstate, const unsigned char *ts,
                          struct walk_thread *t)
{
    const struct pylayout *l = w->l;
    memset(t, 0, sizeof(*t));
    t->tstate = tstate;
    t->spec = -1;
    t->thread_id = get_u64(ts, l->ts_thread_id);
    if (l->ts_native_thread_id >= 0) {
        uint64_t tid = get_u64(ts, l->ts_native_thread_id);
        t->native_tid = (pid_t)(tid & 0x7fffffff);
    }
    if (l->ts_frame >= 0) {
        t->frame = get_u64(ts, l->ts_frame);
    } else if (l->ts_current_frame >= 0) {
        t->frame = get_u64(ts, l->ts_current_frame);
    } else {
        uint64_t cframe = get_u64(ts, l->ts_cframe);
        uint64_t at = cframe + (uint64_t)l->cf_current_frame;
        /* The root cframe lives inside the thread state itself (checked
         * without wrapping around: cframe is untrusted); any other is on the
         * thread's C stack, read only if the thread is walked. */
        if (cframe >= tstate && at >= cframe && at - tstate <= (uint64_t)l->ts_size - 8)
            t->frame = get_u64(ts, (int)(at - tstate));
        else if (cframe)
            t->frame_at = at >= cframe ? at : UINT64_MAX; /* wrapped: unreadable */
    }
    if (l->ts_datastack_chunk >= 0) {
        t->chunk = get_u64(ts, l->ts_datastack_chunk);
        t->chunk_top = get_u64(ts, l->ts_datastack_top);
    }
}

static uint32_t hint_lookup(struct walker *w, uint64_t tstate);

/* Bytes of a PyFrameObject the walk reads. */
static size_t frame_len(const struct pylayout *l)
{
    return (size_t)MAX(MAX(l->fo_back, l->fo_code) + 8, l->fo_lasti + 4);
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
    size_t len = frame_len(w->l), n = 0, want = MIN(h->nchain, (size_t)HINT_CHAIN) + (size_t)h->nring;
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
static size_t plan_spans(struct walker *w, struct chain_hint *h, size_t k, size_t *budget)
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

/* The reads ahead of thread t, or NULL. */
static struct ahead *ahead_of(struct walker *w, const struct walk_thread *t)
{
    if (t->spec < 0 || (size_t)t->spec >= w->nahead || w->ahead[t->spec].tstate != t->tstate)
        return NULL;
    return &w->ahead[t->spec];
}

/* Forgets what slot a read ahead. */
static void ahead_reset(struct ahead *a)
{
    a->cs_ok = 0;
    a->cs_min = a->cs_max = 0;
    a->walked = a->chunk_ok = 0;
    a->want = 0;
    a->ncf = 0;
    a->nread = a->nnext = 0;
    a->older_read = a->older_next = 0;
}

/* Makes room in w->iov for n more pieces after k. */
static void iov_room(struct walker *w, size_t k, size_t n)
{
    GROW(w->iov, w->iovcap, k + n + 1);
}

/*
 * Adds to w->iov from k the reads ahead of the thread of slot a (thread
 * state tstate): where its frames were when it was last walked.  Returns
 * the new k; take_ahead takes them back in the same order.
 */
static size_t plan_ahead(struct walker *w, struct ahead *a, uint64_t tstate, size_t k,
                         size_t *budget)
{
    const struct pylayout *l = w->l;
    if (l->frames == FRAME_OBJECTS) {
        uint32_t hi = hint_lookup(w, tstate);
        return hi == HTAB_NONE ? k : plan_spans(w, &w->hints[hi], k, budget);
    }
    iov_room(w, k, (size_t)a->ncf + CS_MAX / PIECE + 1 + AHEAD_SINGLES + AHEAD_OLDER +
                       AHEAD_MAX / PIECE + 2);
    for (int j = 0; j < a->ncf; j++)
        w->iov[k++] = (struct mem_iov){a->cf_at[j], a->cf_val[j], 16, 0};
    a->cs_lo = a->cs_hi = 0;
    if (a->cs_min && a->cs_min > CS_BELOW && a->cs_max > a->cs_min) {
        a->cs_lo = (a->cs_min - CS_BELOW) & ~(uint64_t)63;
        a->cs_hi = MIN(a->cs_max, a->cs_lo + CS_MAX);
        if (!a->cs_buf)
            a->cs_buf = xmalloc(CS_MAX);
        /* Page by page, the lowest (the innermost loops) first. */
        for (uint64_t lo = a->cs_lo; lo < a->cs_hi;) {
            uint64_t hi = MIN(a->cs_hi, (lo & ~(uint64_t)(PIECE - 1)) + PIECE);
            w->iov[k++] = (struct mem_iov){lo, a->cs_buf + (lo - a->cs_lo), hi - lo, 0};
            lo = hi;
        }
    }
    if (l->if_size > AHEAD_FRAME)
        a->nnext = 0;
    for (int j = 0; j < a->nnext; j++)
        w->iov[k++] = (struct mem_iov){a->single_at[j], a->single[j], (size_t)l->if_size, 0};
    if (a->want > *budget)
        a->want = 0;
    if (!a->want && a->copy.cap > 16384) {
        /* Not read ahead this time: give back a big buffer. */
        free(a->copy.buf);
        a->copy.buf = NULL;
        a->copy.cap = 0;
    }
    if (a->want) {
        if (a->copy.cap < a->want) {
            free(a->copy.buf);
            a->copy.cap = MAX((size_t)a->want, (size_t)16384);
            a->copy.buf = xmalloc(a->copy.cap);
        }
        *budget -= a->want;
        /* Page by page, the top first: a frame is read no later than the
         * frames below it, which cannot change while it lives.  (The
         * kernel copies a range page by page, each page some tens of
         * nanoseconds after the one before, time enough for a frame at
         * the top of a fast recursion to return.) */
        uint64_t end = a->chunk + a->want;
        while (end > a->chunk) {
            uint64_t lo = MAX(a->chunk, (end - 1) & ~(uint64_t)(PIECE - 1));
            w->iov[k++] = (struct mem_iov){lo, a->copy.buf + (lo - a->chunk), end - lo, 0};
            end = lo;
        }
    }
    a->older_read = 0;
    for (int j = a->older_next; j < AHEAD_OLDER; j++) {
        if (a->older[j].cap > 16384) {
            free(a->older[j].buf);
            memset(&a->older[j], 0, sizeof(a->older[j]));
        }
    }
    for (int j = 0; j < a->older_next; j++) {
        struct chunk_copy *c = &a->older[j];
        if (c->len > *budget)
            break;
        *budget -= c->len;
        w->iov[k++] = (struct mem_iov){c->base, c->buf, c->len, 0};
        a->older_read++;
    }
    return k;
}

/* Takes back from w->iov at k what plan_ahead asked for; returns the new k. */
static size_t take_ahead(struct walker *w, struct ahead *a, uint64_t tstate, size_t k)
{
    const struct pylayout *l = w->l;
    if (l->frames == FRAME_OBJECTS) {
        uint32_t hi = hint_lookup(w, tstate);
        if (hi == HTAB_NONE || !w->hints[hi].planned)
            return k;
        struct chain_hint *h = &w->hints[hi];
        for (size_t i = h->nspans; i-- > 0;)
            h->spans[h->order[i]].ok = (uint8_t)w->iov[k++].ok;
        for (size_t i = 0; i < h->nspans; i++)
            h->spans[h->order[i]].ok2 = (uint8_t)w->iov[k++].ok;
        h->planned = 0;
        h->fresh = w->lists + 1; /* for a walk before the next list only */
        return k;
    }
    for (int j = 0; j < a->ncf; j++)
        a->cf_ok[j] = (uint8_t)w->iov[k++].ok;
    a->cs_ok = a->cs_hi > a->cs_lo;
    for (uint64_t lo = a->cs_lo; lo < a->cs_hi;) {
        a->cs_ok &= w->iov[k++].ok;
        lo = MIN(a->cs_hi, (lo & ~(uint64_t)(PIECE - 1)) + PIECE);
    }
    for (int j = 0; j < a->nnext; j++)
        a->single_ok[j] = (uint8_t)w->iov[k++].ok;
    if (a->want) {
        a->chunk_ok = 1;
        for (uint64_t end = a->chunk + a->want; end > a->chunk;
             end = MAX(a->chunk, (end - 1) & ~(uint64_t)(PIECE - 1)))
            a->chunk_ok &= w->iov[k++].ok;
    }
    if (a->chunk_ok) {
        a->copy.base = a->chunk;
        a->copy.len = a->want;
        a->copy.previous = get_u64(a->copy.buf, l->chunk_previous);
    }
    for (int j = 0; j < a->older_read; j++)
        a->older_ok[j] = (uint8_t)w->iov[k++].ok;
    a->nread = a->nnext;
    return k;
}

/*
 * Reads the list's head into *head and, in the same vectored read, the
 * previous call's thread states (into tsbuf, ok flags in tsok) and the
 * reads ahead of the threads walked since.  Returns 0 or a negative errno.
 */
static int read_with_list(struct walker *w, uint64_t interp, uint64_t *head)
{
    const struct pylayout *l = w->l;
    size_t sz = (size_t)l->ts_size, np = w->nprev, k = 0, budget = AHEAD_BUDGET;
    if (w->tsbufcap < np * sz) {
        w->tsbufcap = np * sz;
        w->tsbuf = xrealloc(w->tsbuf, w->tsbufcap);
    }
    GROW(w->tsok, w->tsokcap, np + 1);
    iov_room(w, 0, 2 * np + 1);
    /* <= 3.10, once the tid's place is known: each thread's tid, which
     * tells a new thread that took over a gone one's thread state and
     * struct pthread (both are recycled) from the old one. */
    int tids = w->tid_offset >= 0 && l->ts_native_thread_id < 0 && w->tidcap >= np;
    /* Slots past the previous list are not read ahead: forget them. */
    for (size_t i = np; i < w->nahead; i++)
        ahead_reset(&w->ahead[i]);
    w->iov[k++] = (struct mem_iov){interp + (uint64_t)l->is_tstate_head, head, 8, 0};
    for (size_t i = 0; i < np; i++) {
        struct ahead *a = i < w->nahead ? &w->ahead[i] : NULL;
        iov_room(w, k, 2);
        w->iov[k++] = (struct mem_iov){w->prev_ts[i], w->tsbuf + i * sz, sz, 0};
        if (tids && w->tid_at[i])
            w->iov[k++] = (struct mem_iov){w->tid_at[i] + (uint64_t)w->tid_offset, &w->tidv[i], 4, 0};
        if (!a)
            continue;
        a->chunk_ok = 0;
        memset(a->cf_ok, 0, sizeof(a->cf_ok));
        a->cs_ok = 0;
        memset(a->single_ok, 0, sizeof(a->single_ok));
        memset(a->older_ok, 0, sizeof(a->older_ok));
        if (!a->walked || a->tstate != w->prev_ts[i]) {
            ahead_reset(a);
            continue;
        }
        k = plan_ahead(w, a, a->tstate, k, &budget);
    }
    int ret = mem_readv(w->rt->mem, w->iov, k);
    if (ret < 0)
        return ret;
    if (!w->iov[0].ok)
        return -EFAULT;
    k = 1;
    for (size_t i = 0; i < np; i++) {
        struct ahead *a = i < w->nahead ? &w->ahead[i] : NULL;
        w->tsok[i] = (uint8_t)w->iov[k++].ok;
        if (tids)
            w->tidok[i] = w->tid_at[i] ? (uint8_t)w->iov[k++].ok : 0;
        if (!a || !a->walked)
            continue;
        k = take_ahead(w, a, a->tstate, k);
        a->walked = 0;
    }
    return 0;
}

/* Gives each listed thread its slot of reads ahead, kept where it is the same thread. */
static void index_ahead(struct walker *w, struct walk_thread *out, size_t n)
{
    if (w->aheadcap < n + 1) {
        size_t old = w->aheadcap;
        GROW(w->ahead, w->aheadcap, n + 1);
        memset(w->ahead + old, 0, (w->aheadcap - old) * sizeof(*w->ahead));
    }
    w->nahead = MAX(w->nahead, n);
    for (size_t i = 0; i < n; i++) {
        struct ahead *a = &w->ahead[i];
        if (a->tstate != out[i].tstate) {
            a->tstate = out[i].tstate;
            ahead_reset(a);
        }
        out[i].spec = (int)i;
    }
}

int walk_threads(struct walker *w, uint64_t interp, struct walk_thread *out, size_t max,
                 size_t *n)
{
    const struct pylayout *l = w->l;
    struct mem *m = w->rt->mem;
    unsigned char ts[512];
    uint64_t tstate;
    int ret;
    *n = 0;
    if (l->ts_size > (int)sizeof(ts))
        return -EINVAL;
    /* Thread states come and go rarely: read last time's all at once, with the head. */
    w->lists++;
    int tids_read = w->tid_offset >= 0 && l->ts_native_thread_id < 0 && w->tidcap >= w->nprev;
    if ((ret = read_with_list(w, interp, &tstate)) < 0)
        return ret;
    size_t nbatch = tstate && w->nprev && w->prev_ts[0] == tstate ? w->nprev : 0;
    /* Brent's cycle detection over the list. */
    uint64_t mark = tstate;
    size_t power = 1, lam = 0;
    for (size_t count = 0; tstate; count++) {
        if (count >= WALK_MAX_THREADS || count >= max || (tstate & 7)) {
            ret = -EINVAL;
            break;
        }
        const unsigned char *buf = ts;
        if (count < nbatch && w->prev_ts[count] == tstate && w->tsok[count]) {
            buf = w->tsbuf + count * (size_t)l->ts_size;
            w->stats.hinted_tstates++;
        } else {
            nbatch = 0;
            if ((ret = mem_read(m, tstate, ts, (size_t)l->ts_size)) < 0)
                break;
        }
        if (get_u64(buf, l->ts_interp) != interp) {
            ret = -EINVAL;
            break;
        }
        struct walk_thread *t = &out[(*n)++];
        decode_tstate(w, tstate, buf, t);
        if (buf != ts && tids_read && w->tidok[count] && w->tidv[count] > 0 &&
            w->tid_at[count] == t->thread_id)
            t->native_tid = w->tidv[count];
        tstate = get_u64(buf, l->ts_next);
        if (tstate == mark) {
            ret = -ELOOP;
            break;
        }
        if (++lam == power) {
            mark = tstate;
            power *= 2;
            lam = 0;
        }
    }
    index_ahead(w, out, *n);
    /* Remember this list for the next call (nothing when it was garbage). */
    GROW(w->prev_ts, w->prevcap, *n + 1);
    w->nprev = ret < 0 ? 0 : *n;
    for (size_t i = 0; i < w->nprev; i++)
        w->prev_ts[i] = out[i].tstate;
    if (l->ts_native_thread_id < 0) {
        if (w->tidcap < w->nprev + 1) {
            w->tidcap = w->nprev + 1;
            w->tid_at = xrealloc(w->tid_at, w->tidcap * sizeof(*w->tid_at));
            w->tidv = xrealloc(w->tidv, w->tidcap * sizeof(*w->tidv));
            w->tidok = xrealloc(w->tidok, w->tidcap * sizeof(*w->tidok));
        }
        for (size_t i = 0; i < w->nprev; i++)
            w->tid_at[i] = out[i].thread_id;
    }
    return ret < 0 ? ret : 0;
}

int walk_refresh(struct walker *w, uint64_t interp, struct walk_thread *t)
{
    unsigned char ts[512];
    size_t budget = AHEAD_BUDGET;
    if (w->l->ts_size > (int)sizeof(ts))
        return -EINVAL;
    /* The thread state and, in the same read, where its frames were last walked. */
    struct ahead *a = ahead_of(w, t);
    iov_room(w, 0, 1);
    w->iov[0] = (struct mem_iov){t->tstate, ts, (size_t)w->l->ts_size, 0};
    size_t k = 1;
    if (a) {
        a->chunk_ok = 0;
        memset(a->cf_ok, 0, sizeof(a->cf_ok));
        a->cs_ok = 0;
        memset(a->single_ok, 0, sizeof(a->single_ok));
        memset(a->older_ok, 0, sizeof(a->older_ok));
        k = plan_ahead(w, a, t->tstate, k, &budget);
    } else if (w->l->frames == FRAME_OBJECTS) {
        k = plan_ahead(w, NULL, t->tstate, k, &budget);
    }
    int ret = mem_readv(w->rt->mem, w->iov, k);
    if (ret < 0)
        return ret;
    if (!w->iov[0].ok)
        return -EFAULT;
    if (k > 1)
        take_ahead(w, a, t->tstate, 1);
    if (get_u64(ts, w->l->ts_interp) != interp)
        return -EINVAL;
    int spec = t->spec;
    decode_tstate(w, t->tstate, ts, t);
    t->spec = spec;
    return 0;
}

/* ---- <= 3.10: PyFrameObject chains ---- */

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
static uint32_t hint_lookup(struct walker *w, uint64_t tstate)
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
                    hint_release(&w->hints[j]);
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
static int take_frame_object(struct walker *w, const unsigned char *buf, struct rawframe *out)
{
    const struct pylayout *l = w->l;
    int64_t refcnt = (int64_t)get_u64(buf, 0);
    if (refcnt <= 0 || !is_frame_type(w, get_u64(buf, l->ob_type)))
        return torn(w, TORN_DEAD);
    int32_t lasti;
    memcpy(&lasti, buf + l->fo_lasti, 4);
    out->code = get_u64(buf, l->fo_code);
    out->addrq = lasti < 0 ? -1 : (int64_t)lasti * (l->lasti_units ? 2 : 1);
    return out->code ? 0 : torn(w, TORN_GARBAGE);
}

/* <= 3.10: what a frame object's bytes say it is, to tell whether it moved. */
static int same_frame(const struct pylayout *l, const unsigned char *a, const unsigned char *b)
{
    int32_t la, lb;
    memcpy(&la, a + l->fo_lasti, 4);
    memcpy(&lb, b + l->fo_lasti, 4);
    return (int64_t)get_u64(a, 0) > 0 && (int64_t)get_u64(b, 0) > 0 &&
           get_u64(a, l->ob_type) == get_u64(b, l->ob_type) &&
           get_u64(a, l->fo_back) == get_u64(b, l->fo_back) &&
           get_u64(a, l->fo_code) == get_u64(b, l->fo_code) && la == lb;
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
    size_t len = frame_len(l);
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
    if (!f || (int64_t)get_u64(f, 0) <= 0 || !is_frame_type(w, get_u64(f, l->ob_type)) ||
        get_u64(f, l->fo_back) != caller || !get_u64(f, l->fo_code))
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
    size_t len = frame_len(l), k = 0;
    /* Frames read alone, after both reads: taken again, with them (those
     * deeper than a hint's chain, read alone each time, are taken as read:
     * the deep end of a stack hardly moves). */
    for (size_t j = 0; j < MIN(*n, (size_t)HINT_CHAIN); j++)
        if (!span_find(h, w->chain[j], len) || !span_find2(h, w->chain[j], len))
            return torn(w, TORN_MOVED);
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
                return torn(w, TORN_MOVED);
            k = j;
            break;
        }
    }
    const unsigned char *f = callee_bytes(w, h, w->chain[k], w->chain[k + 1]);
    size_t drop = k;
    if (f) {
        struct rawframe r;
        if (take_frame_object(w, f, &r) == 0)
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
static int walk_frame_objects(struct walker *w, const struct walk_thread *t,
                              struct rawframe *out, size_t max, size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char buf[160];
    size_t len = frame_len(l);
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
            ret = torn(w, TORN_GARBAGE);
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
        if ((ret = take_frame_object(w, f, &out[n])) < 0 && n == 0 && !dead_top &&
            w->torn == TORN_DEAD && get_u64(f, 0) == 0 && is_frame_type(w, get_u64(f, l->ob_type))) {
            /* The top frame had returned, freed between the reads of the
             * thread state and of its frames: the thread was back in its
             * caller, which a freed frame kept as a code's zombie still
             * names (one on the free list names another freed frame). */
            uint64_t back = get_u64(f, l->fo_back);
            const unsigned char *b = fresh && back && !(back & 7) ? span_find(h, back, len) : NULL;
            struct rawframe r;
            if (b && take_frame_object(w, b, &r) == 0) {
                dead_top = 1;
                w->stats.dead_tops++;
                frame = mark = back;
                continue;
            }
            ret = torn(w, TORN_DEAD);
        }
        if (ret < 0) {
            /* Frames of this thread's of late all the same. */
            w->chain[n] = frame;
            hint_note(h, w->chain, n + 1);
            return ret;
        }
        w->prevs[n] = get_u64(f, l->fo_back);
        w->chain[n++] = frame;
        frame = get_u64(f, l->fo_back);
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

/* ---- 3.11+: _PyInterpreterFrame chains in data-stack chunks ---- */

static int copy_chunk(struct walker *w, struct chunk_copy *c, uint64_t base, uint64_t end)
{
    const struct pylayout *l = w->l;
    if (end < base + (uint64_t)l->chunk_data || end - base > MAX_CHUNK_BYTES)
        return -EINVAL;
    size_t len = (size_t)(end - base);
    if (c->cap < len) {
        free(c->buf);
        c->cap = MAX(len, (size_t)16384);
        c->buf = xmalloc(c->cap);
    }
    int ret = mem_read(w->rt->mem, base, c->buf, len);
    if (ret < 0)
        return ret;
    c->base = base;
    c->len = c->copied = len;
    c->pieces = 0;
    c->previous = get_u64(c->buf, l->chunk_previous);
    return 0;
}

/* Copies the next older chunk after the last one copied; 0, or -ENOENT at the end. */
/* An older chunk's used bytes from its header, or 0 when the header is garbage. */
static uint64_t older_used(const struct pylayout *l, const unsigned char *hdr)
{
    /* Its top is the number of PyObject* slots of data[] in use, saved when
     * the newer chunk was pushed; size is the chunk's bytes. */
    uint64_t size = get_u64(hdr, l->chunk_size), top = get_u64(hdr, l->chunk_top);
    if (size > MAX_CHUNK_BYTES || size < (uint64_t)l->chunk_data ||
        top > (size - (uint64_t)l->chunk_data) / 8)
        return 0;
    return (uint64_t)l->chunk_data + top * 8;
}

/*
 * Copies the next older chunk after the last one copied (from the copy read
 * with the thread list when it holds the chunk's used part); 0, or -ENOENT
 * at the end.  Notes it to be read ahead next time.
 */
static int copy_older_chunk(struct walker *w, struct ahead *a)
{
    const struct pylayout *l = w->l;
    if (w->nchunks == 0 || w->nchunks >= MAX_CHUNKS)
        return -ENOENT;
    uint64_t prev = w->chunks[w->nchunks - 1].previous;
    unsigned char hdr[32];
    if (!prev || (prev & 7))
        return -ENOENT;
    struct chunk_copy *c = &w->chunks[w->nchunks];
    int found = 0;
    for (int j = 0; a && j < a->older_read && !found; j++) {
        struct chunk_copy *o = &a->older[j];
        uint64_t used;
        if (o->base == prev && a->older_ok[j] && (used = older_used(l, o->buf)) &&
            used <= o->len) {
            struct chunk_copy tmp = *c;
            *c = *o;
            *o = tmp;
            c->len = c->copied = used;
            c->pieces = 0;
            c->previous = get_u64(c->buf, l->chunk_previous);
            a->older_ok[j] = 0;
            found = 1;
            w->stats.ahead_chunks++;
        }
    }
    if (!found && w->no_open)
        return -ENOENT;
    if (!found) {
        uint64_t used;
        if (mem_read(w->rt->mem, prev, hdr, (size_t)l->chunk_data) < 0 ||
            !(used = older_used(l, hdr)) || copy_chunk(w, c, prev, prev + used) < 0)
            return -ENOENT;
    }
    w->nchunks++;
    if (a && a->older_next < AHEAD_OLDER && c->len <= AHEAD_MAX) {
        /* Next time, the same bytes (an older chunk does not grow while a
         * newer one is in use).  The slot's buffer is made to fit. */
        a->older_ok[a->older_next] = 0; /* whatever it held is not for this chunk */
        struct chunk_copy *o = &a->older[a->older_next++];
        if (o->cap < c->len) {
            free(o->buf);
            o->cap = MAX((size_t)c->len, (size_t)4096);
            o->buf = xmalloc(o->cap);
        }
        o->base = c->base;
        o->len = c->len;
    }
    return 0;
}

/*
 * Finds frame [addr, addr+size) in the chunk copies: in what was read of
 * them, which for the newest can reach past the top the thread state gave
 * (a frame pushed since is there as read; one popped is stale, and its
 * caller shows it: see snapshot.h).
 */
static const unsigned char *in_chunks(struct walker *w, uint64_t addr, size_t size)
{
    for (size_t i = 0; i < w->nchunks; i++) {
        const struct chunk_copy *c = &w->chunks[i];
        if (addr >= c->base + (uint64_t)w->l->chunk_data && addr + size <= c->base + c->copied &&
            addr + size > addr)
            return c->buf + (addr - c->base);
    }
    return NULL;
}

/*
 * 3.11+: the stack a walk of interpreter frames goes through: a thread's
 * (with its reads ahead, when it has some), or a parked one's (p).
 */
struct istack {
    uint64_t frame;             /* the innermost frame */
    uint64_t chunk, chunk_top;  /* the newest data-stack chunk, and its top in use */
    struct ahead *a;            /* a thread's reads ahead, or NULL */
    const struct walk_parked *p; /* a parked stack, or NULL: a thread's */
};

/*
 * len bytes of parked stack p at addr, read alone: from the copy of its C
 * stack where addr lies in the part spilled there (the C stack itself now
 * holds another greenlet's), else in place.
 */
static int parked_read(struct walker *w, const struct walk_parked *p, uint64_t addr,
                       unsigned char *buf, size_t len)
{
    if (p->spill && addr >= p->cstack_lo && addr - p->cstack_lo < p->spill_len) {
        if (len > p->spill_len || addr - p->cstack_lo > p->spill_len - len)
            return torn(w, TORN_GARBAGE);
        addr = p->spill + (addr - p->cstack_lo);
    }
    return mem_read(w->rt->mem, addr, buf, len);
}

/* 1 when [addr, addr+len) lies on parked stack p's own C stack. */
static int on_cstack(const struct walk_parked *p, uint64_t addr, size_t len)
{
    return addr >= p->cstack_lo && addr < p->cstack_hi && p->cstack_hi - addr >= len;
}

/* 1 when frame is a C-stack shim (3.12+): it adds nothing to the depth. */
static int is_shim(struct walker *w, const struct istack *s, uint64_t frame)
{
    const struct pylayout *l = w->l;
    const unsigned char *f;
    unsigned char buf[AHEAD_FRAME];
    uint8_t owner;
    if (l->owner_cstack < 0 || (frame & 7))
        return 0;
    if ((f = in_chunks(w, frame, (size_t)l->if_size)))
        owner = f[l->if_owner];
    else if (s->p)
        return (size_t)l->if_size <= sizeof(buf) &&
               parked_read(w, s->p, frame, buf, (size_t)l->if_size) == 0 &&
               (int)buf[l->if_owner] == l->owner_cstack;
    else if (mem_read(w->rt->mem, frame + (uint64_t)l->if_owner, &owner, 1) < 0)
        return 0;
    return (int)owner == l->owner_cstack;
}

/*
 * A frame of parked stack p outside the chunks copied so far (*f: its
 * bytes).  The stack's own frames are in its data-stack chunks: the older
 * ones are copied as the chain reaches them (until *chunks_done), up to
 * PARKED_CHUNK_BYTES.  Outside them only a generator's or a frame object's
 * frame may be, or a shim on the stack's own C stack, read alone into buf:
 * anything else is stale (a link into another greenlet's frames, or garbage).
 */
static int parked_frame(struct walker *w, const struct walk_parked *p, uint64_t frame,
                        unsigned char *buf, const unsigned char **f, int *chunks_done)
{
    const struct pylayout *l = w->l;
    size_t fsize = (size_t)l->if_size;
    while (!*chunks_done && !(*f = in_chunks(w, frame, fsize))) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < w->nchunks; i++)
            bytes += w->chunks[i].len;
        *chunks_done = bytes >= PARKED_CHUNK_BYTES || copy_older_chunk(w, NULL) < 0;
    }
    if ((*f = in_chunks(w, frame, fsize))) {
        w->stats.chunk_frames++;
        return 0;
    }
    int ret = parked_read(w, p, frame, buf, fsize);
    if (ret < 0)
        return ret;
    w->stats.single_reads++;
    int owner = buf[l->if_owner];
    *f = buf;
    if (owner == OWNED_BY_GENERATOR || owner == OWNED_BY_FRAME_OBJECT ||
        (l->owner_cstack >= 0 && owner == l->owner_cstack && on_cstack(p, frame, fsize)))
        return 0;
    return torn(w, TORN_GARBAGE);
}

/*
 * A frame outside the chunk copies: its bytes read with the thread state
 * when it was there last time too (used once), else NULL.  Its address is
 * read ahead next time either way (the first AHEAD_SINGLES of a walk).
 */
/* The len bytes at addr from the C-stack window read ahead, or NULL. */
static const unsigned char *cs_find(const struct ahead *a, uint64_t addr, size_t len)
{
    if (!a || !a->cs_ok || addr < a->cs_lo || addr >= a->cs_hi || a->cs_hi - addr < len)
        return NULL;
    return a->cs_buf + (addr - a->cs_lo);
}

/* Notes that the walk met [addr, addr + len) on the thread's C stack. */
static void cs_note(struct ahead *a, uint64_t addr, size_t len)
{
    if (!a || addr + len < addr)
        return;
    if (!a->cs_min || addr < a->cs_min)
        a->cs_min = addr;
    if (addr + len > a->cs_max)
        a->cs_max = addr + len;
}

static const unsigned char *ahead_single(struct walker *w, struct ahead *a, uint64_t frame)
{
    const unsigned char *f = NULL;
    if (!a)
        return NULL;
    if ((f = cs_find(a, frame, (size_t)w->l->if_size)) != NULL) {
        w->stats.ahead_frames++;
        return f;
    }
    for (int j = 0; j < a->nread && !f; j++) {
        if (a->single_at[j] == frame && a->single_ok[j]) {
            f = a->single[j];
            w->stats.ahead_frames++;
        }
    }
    /* Slots already used in this walk are rewritten for the next one. */
    if (a->nnext < AHEAD_SINGLES) {
        int j = a->nnext++;
        if (f != a->single[j]) {
            /* The slot's own read ahead, if any, is lost (walks rarely reorder). */
            a->single_ok[j] = f != NULL;
            if (f) {
                memcpy(a->single[j], f, (size_t)w->l->if_size);
                f = a->single[j];
            }
        }
        a->single_at[j] = frame;
    }
    return f;
}

/*
 * 3.11+: copies the thread's newest data-stack chunk into w->chunks[0],
 * from the copy read with the thread list when it still covers the chunk's
 * used part, and says what to read ahead next time.
 */
static void copy_newest_chunk(struct walker *w, const struct istack *t)
{
    const struct pylayout *l = w->l;
    struct ahead *a = t->a;
    uint64_t used = t->chunk_top - t->chunk;
    if (a && a->chunk_ok && a->chunk == t->chunk && used <= a->want &&
        used >= (uint64_t)l->chunk_data) {
        struct chunk_copy tmp = w->chunks[0];
        w->chunks[0] = a->copy;
        a->copy = tmp;
        w->chunks[0].len = used;
        w->chunks[0].copied = a->want;
        w->chunks[0].pieces = 1;
        w->nchunks = 1;
        w->stats.ahead_chunks++;
    } else if (copy_chunk(w, &w->chunks[0], t->chunk, t->chunk_top) == 0) {
        w->nchunks = 1;
    }
    if (!a)
        return;
    a->chunk_ok = 0;
    a->want = 0;
    if (w->nchunks == 1) {
        /* Next time: the used part and some more, within the chunk's size. */
        uint64_t size = get_u64(w->chunks[0].buf, l->chunk_size);
        uint64_t want = size >= used ? MIN(used + AHEAD_SLACK, size) : used;
        a->chunk = t->chunk;
        a->want = want <= AHEAD_MAX ? want : 0;
    }
}

static int iframes(struct walker *w, const struct istack *s, struct rawframe *out, size_t max,
                   size_t *depth);

/*
 * 3.11+: walks the thread's interpreter frames.  A walk that broke off
 * keeps last time's notes of what to read ahead beyond those it got to.
 */
static int walk_interpreter_frames(struct walker *w, const struct walk_thread *t,
                                   struct rawframe *out, size_t max, size_t *depth)
{
    struct ahead *a = ahead_of(w, t);
    int singles = a ? a->nnext : 0, older = a ? a->older_next : 0;
    struct istack s = {.frame = t->frame, .chunk = t->chunk, .chunk_top = t->chunk_top, .a = a};
    int ret = iframes(w, &s, out, max, depth);
    if (ret < 0 && a) {
        a->nnext = MAX(a->nnext, singles);
        a->older_next = MAX(a->older_next, older);
    }
    return ret;
}

/*
 * 3.11+: walks stack s's interpreter frames (a thread's or a parked one's)
 * from its innermost frame through its data-stack chunks, copied whole.
 */
static int iframes(struct walker *w, const struct istack *s, struct rawframe *out, size_t max,
                   size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char single[128];
    size_t fsize = (size_t)l->if_size;
    uint64_t frame = s->frame, mark = frame;
    size_t power = 1, lam = 0, n = 0, steps = 0, seen = 0;
    int ret, chunks_done = 0;
    *depth = 0;
    if (fsize > sizeof(single))
        return -EINVAL;
    struct ahead *a = s->a;
    if (a)
        a->nnext = a->older_next = 0;
    w->nseen = 0;
    if (w->rewalk) {
        /* Walked again in the same instant: the chunks as copied. */
        (void)0;
    } else {
        w->nchunks = 0;
        if (frame && s->chunk && s->chunk_top > s->chunk)
            copy_newest_chunk(w, s);
        else if (a)
            a->want = 0;
    }
    while (frame) {
        /* Shim frames do not count toward the depth, but do toward the walk:
         * a full stack whose next frame is a shim is not cut yet. */
        if ((n >= max && !is_shim(w, s, frame)) || steps++ >= 4 * (size_t)WALK_MAX_DEPTH) {
            *depth = n;
            return n >= max ? 1 : torn(w, TORN_GARBAGE);
        }
        if (frame & 7)
            return torn(w, TORN_GARBAGE);
        const unsigned char *f = in_chunks(w, frame, fsize);
        if (f) {
            w->stats.chunk_frames++;
        } else if (s->p) {
            if ((ret = parked_frame(w, s->p, frame, single, &f, &chunks_done)) < 0)
                return ret;
        } else {
            f = ahead_single(w, a, frame);
            if (!f && w->no_open)
                return torn(w, TORN_GARBAGE);
            if (!f) {
                if ((ret = mem_read(w->rt->mem, frame, single, fsize)) < 0)
                    return ret;
                w->stats.single_reads++;
                f = single;
            }
            /* A thread-owned frame outside the copies: the stack continues in an
             * older chunk; copy it for the frames that follow. */
            if (f[l->if_owner] == OWNED_BY_THREAD && !chunks_done)
                chunks_done = copy_older_chunk(w, a) < 0;
        }
        uint8_t owner = f[l->if_owner];
        uint64_t code = get_u64(f, l->if_code);
        if ((int)owner == l->owner_cstack)
            cs_note(a, frame, fsize);
        GROW(w->chain, w->chaincap, seen + 1);
        GROW(w->owners, w->ownerscap, seen + 1);
        GROW(w->entries, w->entriescap, seen + 1);
        GROW(w->prevs, w->prevscap, seen + 1);
        w->prevs[seen] = get_u64(f, l->if_previous);
        w->chain[seen] = frame;
        w->owners[seen] = owner;
        w->entries[seen] = l->if_is_entry >= 0 && f[l->if_is_entry] != 0;
        w->nseen = ++seen;
        if (l->code_tagged)
            code &= ~(uint64_t)3;
        if (owner > 4)
            return torn(w, TORN_GARBAGE);
        if ((int)owner != l->owner_cstack) {
            if (!code || (code & 7))
                return torn(w, TORN_GARBAGE);
            uint64_t instr = get_u64(f, l->if_instr);
            out[n].code = code;
            out[n].addrq = (int64_t)(instr - (code + (uint64_t)l->co_code_adaptive));
            n++;
        }
        uint64_t prev = get_u64(f, l->if_previous);
        /* greenlet 3.0.0-3.0.2 on 3.12 cut the innermost frame's link as it
         * switched away, and kept it aside. */
        if (!prev && seen == 1 && s->p)
            prev = w->prevs[0] = s->p->cut_link;
        if (prev == frame || prev == mark) {
            w->torn = TORN_CYCLE;
            return -ELOOP;
        }
        /* A thread's outermost frame is the first of an eval loop called
         * from C: marked is_entry (3.11), or the C-stack shim that loop
         * pushes (3.12+).  Any other was read as it returned, was suspended
         * or was pushed and not yet linked to its caller.  (A parked
         * greenlet's first frame may be any: greenlet 3.0.3+ on 3.12+ link
         * its frames past their shims.) */
        if (!prev && !s->p && (owner == OWNED_BY_GENERATOR || owner == OWNED_BY_FRAME_OBJECT ||
                      (l->if_is_entry >= 0 && !w->entries[seen - 1]) ||
                      (l->owner_cstack >= 0 && (int)owner != l->owner_cstack)))
            return torn(w, TORN_ROOT);
        frame = prev;
        if (++lam == power) {
            mark = frame;
            power *= 2;
            lam = 0;
        }
    }
    *depth = n;
    return 0;
}

/*
 * 3.11/3.12: the current frame pointer at (in a cframe) and the cframe's
 * previous one, read with the thread state when that cframe is one of the
 * last few, else read now.  Puts at first among the last few.
 */
static int cframe_at(struct walker *w, struct ahead *a, uint64_t at, uint64_t val[2])
{
    int j = 0, ret = 0;
    const unsigned char *c = cs_find(a, at, 16);
    while (a && j < a->ncf && a->cf_at[j] != at)
        j++;
    cs_note(a, at, 16);
    if (c) {
        val[0] = get_u64(c, 0);
        val[1] = get_u64(c, 8);
        w->stats.ahead_frames++;
    } else if (a && j < a->ncf && a->cf_ok[j]) {
        memcpy(val, a->cf_val[j], sizeof(a->cf_val[j]));
        w->stats.ahead_frames++;
    } else {
        unsigned char b[16];
        if ((ret = mem_read(w->rt->mem, at, b, sizeof(b))) < 0)
            return ret;
        val[0] = get_u64(b, 0);
        val[1] = get_u64(b, 8);
    }
    if (!a)
        return 0;
    /* The most recent first (what it read ahead goes with it); one not
     * among them takes the oldest's place. */
    uint64_t v[2] = {val[0], val[1]};
    uint8_t ok = 0;
    if (j < a->ncf) {
        memcpy(v, a->cf_val[j], sizeof(v));
        ok = a->cf_ok[j];
    } else {
        j = a->ncf < AHEAD_CFRAMES ? a->ncf++ : AHEAD_CFRAMES - 1;
    }
    memmove(a->cf_at + 1, a->cf_at, (size_t)j * sizeof(*a->cf_at));
    memmove(a->cf_val + 1, a->cf_val, (size_t)j * sizeof(*a->cf_val));
    memmove(a->cf_ok + 1, a->cf_ok, (size_t)j * sizeof(*a->cf_ok));
    a->cf_at[0] = at;
    memcpy(a->cf_val[0], v, sizeof(v));
    a->cf_ok[0] = ok;
    return 0;
}

/* 3.11/3.12: the current frame pointer of a cframe read ahead, or -ENOENT. */
static int cframe_ahead(const struct ahead *a, uint64_t at, uint64_t val[2])
{
    const unsigned char *c = cs_find(a, at, 16);
    if (c) {
        val[0] = get_u64(c, 0);
        val[1] = get_u64(c, 8);
        return 0;
    }
    for (int j = 0; a && j < a->ncf; j++) {
        if (a->cf_at[j] == at && a->cf_ok[j]) {
            memcpy(val, a->cf_val[j], sizeof(a->cf_val[j]));
            return 0;
        }
    }
    return -ENOENT;
}

/*
 * 3.11/3.12: what the cframe whose frame pointer is at holds (val: that
 * pointer and the previous cframe), judged: 0 when it is no running eval
 * loop's (a loop being left, whose frame is its own shim on the C stack
 * next to it, or left over on the C stack), 1 when it is, 2 when it is
 * and the loop was called with no Python frame (its previous cframe is
 * the thread state's own).  cframe_caller judges the previous cframe alone.
 */
static int cframe_caller(const struct walker *w, const struct walk_thread *t, uint64_t at,
                         uint64_t prev)
{
    if (prev >= t->tstate && prev - t->tstate < 2048)
        return 2;
    uint64_t pat = prev + (uint64_t)w->l->cf_current_frame;
    return prev && !(prev & 7) && pat > at && pat - at < CS_SPAN ? 1 : 0;
}

static int cframe_judge(const struct walker *w, const struct walk_thread *t, uint64_t at,
                        const uint64_t val[2])
{
    uint64_t cur = val[0];
    if (!cur || (cur & 7))
        return 0;
    /* 3.12: the loop's own shim (a local of the loop's C frame, like its
     * cframe), which the loop makes its frame as it returns. */
    if (w->l->owner_cstack >= 0 && cur < at + CS_NEAR && at < cur + CS_NEAR &&
        !(cur >= t->chunk && cur < t->chunk_top))
        return 0;
    return cframe_caller(w, t, at, val[1]);
}

/*
 * 3.11/3.12: walks from the thread's current cframe.  The thread state
 * names one (at t->frame_at, on the thread's C stack), but the cframes are
 * read a moment after it (in the window of the C stack read with it), by
 * when its eval loop may have been left.  Taking what the one named then
 * held all the same would drop the sample or take garbage, and retrying
 * would favour what runs after short calls into Python from C.  So the
 * walk starts from the one named if it still runs, else from the cframe
 * that called it (or, when the one named holds garbage, the nearest above
 * it of those met lately) if that one runs, and so on.  A cframe runs when
 * its frame pointer is a frame (not its own shim, as while its loop is
 * left, nor a leftover on the C stack) and the walk from that frame goes
 * through the frame of the cframe that called it (3.11: a loop's first
 * frame at a return had returned from it).  A loop entered since is taken
 * in by the snapshot (walk_callee).
 */
static int walk_cframes(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                        size_t max, size_t *depth)
{
    struct ahead *a = ahead_of(w, t);
    const int off = w->l->cf_current_frame;
    struct walk_thread top = *t;
    uint64_t tried[CF_TRIES];
    int ntried = 0, ret = torn(w, TORN_GARBAGE), walks = 0;
    top.frame_at = 0;
    if (t->frame_at == UINT64_MAX)
        return -EFAULT;
    /* The one named is read now if it was not read ahead; the others only
     * as read ahead. */
    uint64_t at = t->frame_at, val[2] = {0, 0}, outer[2];
    if (cframe_at(w, a, at, val) < 0)
        return -EFAULT;
    while (ntried < CF_TRIES) {
        if (ntried > 0 && cframe_ahead(a, at, val) < 0)
            val[0] = val[1] = 0;
        tried[ntried++] = at;
        int judged = cframe_judge(w, t, at, val);
        int named_one = at == t->frame_at;
        if (judged) {
            /* Only the one named may need reads of its own. */
            top.frame = val[0];
            w->rewalk = walks++ > 0;
            w->no_open = !named_one;
            ret = walk_interpreter_frames(w, &top, out, max, depth);
            w->rewalk = w->no_open = 0;
            if (ret == -EFAULT && named_one)
                break;
            /* A full walk goes through the frame of the cframe before it,
             * if that one has a frame (a greenlet's first loop is called
             * from a cframe of the greenlet's own, with none). */
            if (ret == 0 && judged == 1) {
                uint64_t oat = val[1] + (uint64_t)off;
                size_t k = 0;
                if ((named_one ? cframe_at(w, a, oat, outer) : cframe_ahead(a, oat, outer)) < 0)
                    ret = torn(w, TORN_GARBAGE);
                while (ret == 0 && outer[0] && k < w->nseen && w->chain[k] != outer[0])
                    k++;
                if (ret == 0 && outer[0] && k == w->nseen)
                    ret = torn(w, TORN_GARBAGE);
            }
            /* A frame at a return had returned: the one named, when it began
             * its loop (3.11: it is cleared after the loop returns); one
             * found otherwise, whatever it is (the cframe may be left over,
             * holding the last frame its loop ran), as one not started. */
            if (ret == 0 && *depth > 0 && w->nseen > 0 &&
                ((!named_one && out[0].addrq < 0) ||
                 ((!named_one || (w->l->if_is_entry >= 0 && w->entries[0])) && w->returned &&
                  w->returned(w->returned_ctx, out[0].code, out[0].addrq))))
                ret = torn(w, TORN_GARBAGE);
            if (ret >= 0) {
                if (!named_one)
                    w->stats.outer_walks++;
                cs_note(a, at, 16);
                break;
            }
        }
        /* Next: the cframe that called it, else the nearest above it of
         * those met lately (the caller's, read ahead). */
        uint64_t next = cframe_caller(w, t, at, val[1]) == 1 ? val[1] + (uint64_t)off : 0;
        for (int j = 0; !next && a && j < a->ncf; j++) {
            uint64_t c = a->cf_at[j];
            if (c > at && c - at < CS_SPAN && (!next || c < next))
                next = c;
        }
        for (int i = 0; i < ntried && next; i++)
            if (tried[i] == next)
                next = 0;
        if (!next)
            break;
        at = next;
    }
    if (a)
        memset(a->cf_ok, 0, sizeof(a->cf_ok)); /* what was read ahead is for this walk only */
    return ret;
}

void walk_set_returned(struct walker *w, int (*returned)(void *ctx, uint64_t code, int64_t addrq),
                       void *ctx)
{
    w->returned = returned;
    w->returned_ctx = ctx;
}

int walk_stack(struct walker *w, const struct walk_thread *t, struct rawframe *out, size_t max,
               size_t *depth)
{
    uint64_t reads = mem_read_calls(w->rt->mem);
    int ret;
    w->walks++;
    struct ahead *a = ahead_of(w, t);
    if (a) {
        a->walked = 1;
        a->cs_min = a->cs_max = 0;
    }
    *depth = 0;
    if (t->frame_at) {
        ret = walk_cframes(w, t, out, max, depth);
    } else if (w->l->frames == FRAME_OBJECTS) {
        ret = walk_frame_objects(w, t, out, max, depth);
    } else {
        ret = walk_interpreter_frames(w, t, out, max, depth);
    }
    /* What the reads ahead held is for this walk only. */
    if (a) {
        a->chunk_ok = a->cs_ok = 0;
        memset(a->single_ok, 0, sizeof(a->single_ok));
        memset(a->older_ok, 0, sizeof(a->older_ok));
    }
    w->open = mem_read_calls(w->rt->mem) - reads;
    return ret;
}

int walk_last_settled(const struct walker *w)
{
    return w->settled;
}

unsigned walk_last_open(const struct walker *w)
{
    return (unsigned)w->open;
}

/* Fills info[0..depth) from what the walk that found depth frames left. */
static void frame_info(struct walker *w, struct walk_frameinfo *info, size_t depth)
{
    if (w->l->frames == FRAME_OBJECTS) {
        for (size_t i = 0; i < depth; i++)
            info[i] = (struct walk_frameinfo){.addr = w->chain[i], .entry = 1};
        return;
    }
    size_t n = 0;
    for (size_t k = 0; k < w->nseen && n < depth; k++) {
        if ((int)w->owners[k] == w->l->owner_cstack)
            continue;
        /* Entered from C: marked so (3.11), called from a shim (3.12+), or
         * the thread's outermost frame. */
        int entry = w->entries[k] || w->prevs[k] == 0 ||
                    (k + 1 < w->nseen && (int)w->owners[k + 1] == w->l->owner_cstack);
        info[n++] = (struct walk_frameinfo){.addr = w->chain[k], .entry = (uint8_t)entry};
    }
    for (; n < depth; n++)
        info[n] = (struct walk_frameinfo){0};
}

int walk_stack_info(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                    struct walk_frameinfo *info, size_t max, size_t *depth)
{
    int ret = walk_stack(w, t, out, max, depth);
    if (ret >= 0 && info)
        frame_info(w, info, *depth);
    return ret;
}

int walk_read_order(const struct walker *w, uint64_t frame, uint64_t below)
{
    const struct pylayout *l = w->l;
    if (l->frames != FRAME_INTERPRETER || !w->nchunks || !w->chunks[0].pieces)
        return 0;
    const struct chunk_copy *c = &w->chunks[0];
    uint64_t a = frame + (uint64_t)l->if_instr, b = below + (uint64_t)l->if_instr;
    if (a < c->base || b < c->base || a - c->base >= c->copied || b - c->base >= c->copied)
        return 0;
    uint64_t pa = a & ~(uint64_t)(PIECE - 1), pb = b & ~(uint64_t)(PIECE - 1);
    /* Pieces top first, each copied upward. */
    return pa > pb ? -1 : pa < pb ? 1 : a > b ? 1 : -1;
}

/*
 * <= 3.10: the callee of frame among the frames of h read with the thread
 * state (twice), or 0: frame the same in both reads, and one frame alive
 * naming it when read between them (callee_bytes).
 */
static uint64_t old_callee(struct walker *w, struct chain_hint *h, uint64_t frame,
                           const unsigned char **bytes)
{
    const struct pylayout *l = w->l;
    size_t len = frame_len(l);
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

int walk_callee(struct walker *w, const struct walk_thread *t, uint64_t frame, uint64_t size,
                struct rawframe *out, struct walk_frameinfo *info)
{
    const struct pylayout *l = w->l;
    if (l->frames == FRAME_OBJECTS) {
        uint32_t hi = hint_lookup(w, t->tstate);
        const unsigned char *f;
        if (hi == HTAB_NONE || w->hints[hi].read != w->lists + 1)
            return -ENOENT;
        uint64_t at = old_callee(w, &w->hints[hi], frame, &f);
        if (!at || take_frame_object(w, f, out) < 0)
            return -ENOENT;
        *info = (struct walk_frameinfo){.addr = at, .entry = 1};
        return 0;
    }
    size_t fsize = (size_t)l->if_size;
    uint64_t at = frame + size;
    const unsigned char *f = size && at > frame && !(at & 7) ? in_chunks(w, at, fsize) : NULL;
    if (!f || f[l->if_owner] != OWNED_BY_THREAD)
        return -ENOENT;
    uint64_t code = get_u64(f, l->if_code), prev = get_u64(f, l->if_previous);
    if (l->code_tagged)
        code &= ~(uint64_t)3;
    if (!code || (code & 7))
        return -ENOENT;
    int entry = l->if_is_entry >= 0 && f[l->if_is_entry] != 0;
    if (prev != frame) {
        /* 3.12+: called from C, through the shim that eval loop pushed. */
        unsigned char shim[AHEAD_FRAME];
        const unsigned char *sf = l->owner_cstack >= 0 && prev && !(prev & 7) && fsize <= sizeof(shim)
                                      ? ahead_single(w, ahead_of(w, t), prev)
                                      : NULL;
        if (!sf && l->owner_cstack >= 0 && prev && !(prev & 7) && fsize <= sizeof(shim) &&
            mem_read(w->rt->mem, prev, shim, fsize) == 0)
            sf = shim;
        if (!sf || (int)sf[l->if_owner] != l->owner_cstack || get_u64(sf, l->if_previous) != frame)
            return -ENOENT;
        entry = 1;
    }
    out->code = code;
    out->addrq = (int64_t)(get_u64(f, l->if_instr) - (code + (uint64_t)l->co_code_adaptive));
    *info = (struct walk_frameinfo){.addr = at, .entry = (uint8_t)entry};
    return 0;
}

/* ---- parked stacks: greenlets ---- */

struct walker *walker_new_parked(struct mem *m, const struct pylayout *l)
{
    struct walker *w = xcalloc(1, sizeof(*w));
    w->own_rt = xcalloc(1, sizeof(*w->own_rt));
    w->own_rt->mem = m;
    w->own_rt->layout = *l;
    w->rt = w->own_rt;
    w->l = &w->own_rt->layout;
    w->tid_offset = -1;
    return w;
}

/*
 * <= 3.10: a parked stack's frame objects through f_back, each alive and
 * a frame (take_frame_object), its code a pointer; nothing read ahead (a
 * parked stack does not move).
 */
static int parked_frame_objects(struct walker *w, uint64_t frame, struct rawframe *out, size_t max,
                                size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char buf[160];
    size_t len = frame_len(l), n = 0, power = 1, lam = 0;
    uint64_t mark = frame;
    int ret;
    if (len > sizeof(buf) || l->fo_back < 0)
        return -EINVAL;
    while (frame) {
        if (n >= max) {
            *depth = n;
            return 1;
        }
        if (frame & 7)
            return torn(w, TORN_GARBAGE);
        if ((ret = mem_read(w->rt->mem, frame, buf, len)) < 0)
            return ret;
        w->stats.single_reads++;
        if ((ret = take_frame_object(w, buf, &out[n])) < 0)
            return ret;
        if (out[n].code & 7)
            return torn(w, TORN_GARBAGE);
        n++;
        frame = get_u64(buf, l->fo_back);
        if (frame == mark) {
            w->torn = TORN_CYCLE;
            return -ELOOP;
        }
        if (++lam == power) {
            mark = frame;
            power *= 2;
            lam = 0;
        }
    }
    *depth = n;
    return 0;
}

int walk_parked(struct walker *w, const struct walk_parked *p, struct rawframe *out, size_t max,
                size_t *depth)
{
    *depth = 0;
    w->torn = TORN_NONE;
    if (w->l->frames == FRAME_OBJECTS)
        return parked_frame_objects(w, p->frame, out, max, depth);
    struct istack s = {.frame = p->frame, .chunk = p->chunk, .chunk_top = p->chunk_top, .p = p};
    int ret = iframes(w, &s, out, max, depth);
    /* Many stacks are walked one after the other: big buffers go back at once. */
    for (size_t i = 0; i < MAX_CHUNKS; i++) {
        if (w->chunks[i].cap > PARKED_KEEP) {
            free(w->chunks[i].buf);
            w->chunks[i] = (struct chunk_copy){0};
        }
    }
    w->nchunks = 0;
    return ret;
}

/* ---- thread ids ---- */

static int pid_cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* The process's id in its own namespace: a core's threads are numbered as the core says. */
static pid_t own_pid(const struct walker *w)
{
    return mem_is_core(w->rt->mem) ? w->rt->pid : w->ns_pid;
}

/* The process's tasks as its own namespace numbers them (allocated): a count or a negative errno. */
static int list_tasks(struct walker *w, pid_t **tasks)
{
    const struct core_thread *ct;
    size_t n;
    if (mem_core_threads(w->rt->mem, &ct, &n) == 0) {
        *tasks = xmalloc((n ? n : 1) * sizeof(**tasks));
        for (size_t i = 0; i < n; i++)
            (*tasks)[i] = ct[i].tid;
        return (int)n;
    }
    int ntasks = proc_tasks(w->rt->pid, tasks);
    if (ntasks > 0 && w->ns_pid != w->rt->pid)
        for (int i = 0; i < ntasks; i++)
            (*tasks)[i] = proc_task_ns_tid(w->rt->pid, (*tasks)[i]);
    return ntasks;
}

/* The thread of a list of n whose struct pthread is read as the ith of k:
 * the newest threads, and last the oldest, which is the main thread (its
 * tid is the pid: what tells the field) in a list longer than k. */
static size_t tid_sampled(size_t i, size_t k, size_t n)
{
    return i + 1 == k ? n - 1 : i;
}

/*
 * Finds the offset of struct pthread's tid: the first 4-byte field that holds,
 * for every thread read, the id of one of the process's tasks (as the
 * process's own PID namespace numbers them) or 0 (a thread that has exited:
 * the kernel clears the field), distinct across threads, one of them the
 * main thread's (the process id).  Thread states that name the same struct
 * pthread are one thread here: before 3.11 a new thread's state is made by
 * the thread that starts it, and holds that one's ident until the new thread
 * runs.  The tasks are listed before the memory is read and after, so that
 * only a thread that started and exited in between can be missing from both;
 * one such in four is forgiven.
 */
static int find_tid_offset(struct walker *w, const struct walk_thread *threads, size_t n)
{
    pid_t *tasks = NULL, *later = NULL;
    size_t k = MIN(n, (size_t)TID_SAMPLE);
    int found = -1;
    int ntasks = list_tasks(w, &tasks);
    if (ntasks <= 0) {
        free(tasks);
        return ntasks < 0 ? ntasks : -ENOENT;
    }
    int32_t(*vals)[PTHREAD_SCAN / 4] = xcalloc(k ? k : 1, sizeof(*vals));
    int *ok = xcalloc(k ? k : 1, sizeof(int));
    for (size_t i = 0; i < k; i++) {
        uint64_t id = threads[tid_sampled(i, k, n)].thread_id;
        ok[i] = id != 0;
        for (size_t j = 0; j < i && ok[i]; j++)
            ok[i] = threads[tid_sampled(j, k, n)].thread_id != id;
        ok[i] = ok[i] && mem_read(w->rt->mem, id, vals[i], sizeof(vals[i])) == 0;
    }
    int nlater = list_tasks(w, &later);
    size_t nt = (size_t)ntasks;
    if (nlater > 0) {
        tasks = xrealloc(tasks, (nt + (size_t)nlater) * sizeof(*tasks));
        memcpy(tasks + nt, later, (size_t)nlater * sizeof(*tasks));
        nt += (size_t)nlater;
    }
    free(later);
    qsort(tasks, nt, sizeof(*tasks), pid_cmp);
    pid_t main_tid = own_pid(w);
    for (int off = 0; off < PTHREAD_SCAN / 4 && found < 0; off++) {
        int has_main = 0, good = 1, live = 0, missing = 0;
        for (size_t i = 0; i < k && !has_main; i++)
            has_main = ok[i] && vals[i][off] == main_tid;
        for (size_t i = 0; i < k && has_main && good; i++) {
            pid_t v = vals[i][off];
            if (!ok[i] || v == 0)
                continue;
            if (v < 0) {
                good = 0;
                break;
            }
            if (bsearch(&v, tasks, nt, sizeof(*tasks), pid_cmp))
                live++;
            else
                missing++;
            for (size_t j = 0; j < i && good; j++)
                if (ok[j] && vals[j][off] == v)
                    good = 0;
        }
        if (has_main && good && live > 0 && missing * 4 <= live)
            found = off * 4;
    }
    free(vals);
    free(ok);
    free(tasks);
    if (found < 0)
        return -ENOENT;
    w->tid_offset = found;
    return 0;
}

int walk_pthread_tid(struct walker *w, uint64_t thread_id, pid_t *ns_tid)
{
    int32_t v;
    int ret;
    if (w->tid_offset < 0 || w->l->ts_native_thread_id >= 0 || !thread_id)
        return -ENOENT;
    if ((ret = mem_read(w->rt->mem, thread_id + (uint64_t)w->tid_offset, &v, 4)) < 0)
        return ret;
    *ns_tid = v > 0 ? v : 0;
    return 0;
}

int walk_thread_tid(struct walker *w, const struct walk_thread *threads, size_t n, size_t i,
                    pid_t *tid, pid_t *ns_tid_out)
{
    const struct walk_thread *t = &threads[i];
    pid_t ns_tid;
    int ret;
    if (t->native_tid > 0) {
        ns_tid = t->native_tid;
    } else if (w->l->ts_native_thread_id >= 0) {
        return -ENOENT;
    } else {
        int32_t v;
        if (w->tid_offset < 0) {
            /* A search reads a lot: after one failed, the next waits for the
             * next list, then twice as many lists after each failure. */
            if (w->tid_search_wait && w->lists - w->tid_search_at < w->tid_search_wait)
                return -EAGAIN;
            w->tid_search_at = w->lists;
            if (find_tid_offset(w, threads, n) < 0) {
                w->tid_search_wait = w->tid_search_wait
                                         ? MIN(2 * w->tid_search_wait, (uint32_t)TID_SEARCH_EVERY)
                                         : 1;
                return -EAGAIN;
            }
        }
        if ((ret = mem_read(w->rt->mem, t->thread_id + (uint64_t)w->tid_offset, &v, 4)) < 0)
            return ret;
        if (v <= 0)
            return -EINVAL;
        ns_tid = v;
    }
    *ns_tid_out = ns_tid;
    /* A process in another PID namespace numbers its threads its own way. */
    if (own_pid(w) != w->rt->pid)
        return proc_tid_from_ns(w->rt->pid, ns_tid, tid);
    *tid = ns_tid;
    return 0;
}
