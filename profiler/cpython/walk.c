/*
 * The stack walker (walk.h): the walker, the thread list and the reads
 * ahead, and walk_stack choosing the walk (walk_impl.h lists the files).
 */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/cpython/walk_impl.h"

/* The C-stack window: bytes below the lowest place met, and the most in all. */
#define CS_BELOW 3072u
#define CS_MAX 8192u

struct walker *walker_new(struct pyrt *rt)
{
    struct walker *w = xcalloc(1, sizeof(*w));
    w->rt = rt;
    w->l = &rt->layout;
    w->frame_type = rt->frame_type;
    w->tid_offset = -1;
    return w;
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
        walk_hint_release(&w->hints[i]);
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

/* Fills t from the thread state's bytes ts (read from tstate). */
static void decode_tstate(struct walker *w, uint64_t tstate, const unsigned char *ts,
                          struct walk_thread *t)
{
    const struct pylayout *l = w->l;
    memset(t, 0, sizeof(*t));
    t->tstate = tstate;
    t->spec = -1;
    t->thread_id = buf_u64(ts, l->ts_thread_id);
    if (l->ts_native_thread_id >= 0) {
        uint64_t tid = buf_u64(ts, l->ts_native_thread_id);
        t->native_tid = (pid_t)(tid & 0x7fffffff);
    }
    if (l->ts_frame >= 0) {
        t->frame = buf_u64(ts, l->ts_frame);
    } else if (l->ts_current_frame >= 0) {
        t->frame = buf_u64(ts, l->ts_current_frame);
    } else {
        uint64_t cframe = buf_u64(ts, l->ts_cframe);
        uint64_t at = cframe + (uint64_t)l->cf_current_frame;
        /* The root cframe lives inside the thread state itself (checked
         * without wrapping around: cframe is untrusted); any other is on the
         * thread's C stack, read only if the thread is walked. */
        if (cframe >= tstate && at >= cframe && at - tstate <= (uint64_t)l->ts_size - 8)
            t->frame = buf_u64(ts, (int)(at - tstate));
        else if (cframe)
            t->frame_at = at >= cframe ? at : UINT64_MAX; /* wrapped: unreadable */
    }
    if (l->ts_datastack_chunk >= 0) {
        t->chunk = buf_u64(ts, l->ts_datastack_chunk);
        t->chunk_top = buf_u64(ts, l->ts_datastack_top);
    }
}

/* The reads ahead of thread t, or NULL. */
struct ahead *walk_ahead_of(struct walker *w, const struct walk_thread *t)
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
        uint32_t hi = walk_hint_lookup(w, tstate);
        return hi == HTAB_NONE ? k : walk_plan_spans(w, &w->hints[hi], k, budget);
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
        uint32_t hi = walk_hint_lookup(w, tstate);
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
        a->copy.previous = buf_u64(a->copy.buf, l->chunk_previous);
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
        if (buf_u64(buf, l->ts_interp) != interp) {
            ret = -EINVAL;
            break;
        }
        struct walk_thread *t = &out[(*n)++];
        decode_tstate(w, tstate, buf, t);
        if (buf != ts && tids_read && w->tidok[count] && w->tidv[count] > 0 &&
            w->tid_at[count] == t->thread_id)
            t->native_tid = w->tidv[count];
        tstate = buf_u64(buf, l->ts_next);
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
    struct ahead *a = walk_ahead_of(w, t);
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
    if (buf_u64(ts, w->l->ts_interp) != interp)
        return -EINVAL;
    int spec = t->spec;
    decode_tstate(w, t->tstate, ts, t);
    t->spec = spec;
    return 0;
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
    struct ahead *a = walk_ahead_of(w, t);
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
        if (layout_owner_shim(w->l, w->owners[k]))
            continue;
        /* Entered from C: marked so (3.11), called from a shim (3.12+), or
         * the thread's outermost frame. */
        int entry = w->entries[k] || w->prevs[k] == 0 ||
                    (k + 1 < w->nseen && layout_owner_shim(w->l, w->owners[k + 1]));
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

int walk_frame_raw(const struct pylayout *l, const unsigned char *f, struct rawframe *out)
{
    if (l->frames == FRAME_INTERPRETER) {
        uint64_t code = buf_u64(f, l->if_code);
        if (l->code_tagged)
            code &= ~(uint64_t)1;
        if (!code || (code & 7))
            return -EINVAL;
        out->code = code;
        out->addrq = (int64_t)(buf_u64(f, l->if_instr) - (code + (uint64_t)l->co_code_adaptive));
        return 0;
    }
    int32_t lasti;
    memcpy(&lasti, f + l->fo_lasti, 4);
    out->code = buf_u64(f, l->fo_code);
    out->addrq = lasti < 0 ? -1 : (int64_t)lasti * (l->lasti_units ? 2 : 1);
    return out->code && !(out->code & 7) ? 0 : -EINVAL;
}
