/* The stack walker, 3.11+: _PyInterpreterFrame chains in data-stack chunks. */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/walk_impl.h"

/* 3.11+ frame owners. */
#define OWNED_BY_THREAD 0
#define OWNED_BY_GENERATOR 1
#define OWNED_BY_FRAME_OBJECT 2

/* The farthest apart two cframes of one thread are taken to be (a C stack's
 * size), the nearest an eval loop's shim is to its cframe, and the most
 * cframes one walk tries. */
#define CS_SPAN (8u << 20)
#define CS_NEAR 1024u
#define CF_TRIES 6

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
    c->previous = buf_u64(c->buf, l->chunk_previous);
    return 0;
}

/* Copies the next older chunk after the last one copied; 0, or -ENOENT at the end. */
/* An older chunk's used bytes from its header, or 0 when the header is garbage. */
static uint64_t older_used(const struct pylayout *l, const unsigned char *hdr)
{
    /* Its top is the number of PyObject* slots of data[] in use, saved when
     * the newer chunk was pushed; size is the chunk's bytes. */
    uint64_t size = buf_u64(hdr, l->chunk_size), top = buf_u64(hdr, l->chunk_top);
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
    /* What the target says its chunks hold is bounded in all, not only each. */
    uint64_t copied = 0;
    for (size_t i = 0; i < w->nchunks; i++)
        copied += w->chunks[i].len;
    int found = 0;
    for (int j = 0; a && j < a->older_read && !found; j++) {
        struct chunk_copy *o = &a->older[j];
        uint64_t used;
        if (o->base == prev && a->older_ok[j] && (used = older_used(l, o->buf)) &&
            used <= o->len && copied + used <= MAX_WALK_CHUNK_BYTES) {
            struct chunk_copy tmp = *c;
            *c = *o;
            *o = tmp;
            c->len = c->copied = used;
            c->pieces = 0;
            c->previous = buf_u64(c->buf, l->chunk_previous);
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
            !(used = older_used(l, hdr)) || copied + used > MAX_WALK_CHUNK_BYTES ||
            copy_chunk(w, c, prev, prev + used) < 0)
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
 * len bytes of parked stack p at addr, read alone: from the copy of its C
 * stack where addr lies in the part spilled there (the C stack itself now
 * holds another greenlet's), else in place.
 */
static int parked_read(struct walker *w, const struct walk_parked *p, uint64_t addr,
                       unsigned char *buf, size_t len)
{
    if (p->spill && addr >= p->cstack_lo && addr - p->cstack_lo < p->spill_len) {
        if (len > p->spill_len || addr - p->cstack_lo > p->spill_len - len)
            return walk_set_torn(w, TORN_GARBAGE);
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
               layout_owner_shim(l, buf[l->if_owner]);
    else if (mem_read(w->rt->mem, frame + (uint64_t)l->if_owner, &owner, 1) < 0)
        return 0;
    return layout_owner_shim(l, owner);
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
        (layout_owner_shim(l, owner) && on_cstack(p, frame, fsize)))
        return 0;
    return walk_set_torn(w, TORN_GARBAGE);
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
        uint64_t size = buf_u64(w->chunks[0].buf, l->chunk_size);
        uint64_t want = size >= used ? MIN(used + AHEAD_SLACK, size) : used;
        a->chunk = t->chunk;
        a->want = want <= AHEAD_MAX ? want : 0;
    }
}

/*
 * 3.11+: walks the thread's interpreter frames.  A walk that broke off
 * keeps last time's notes of what to read ahead beyond those it got to.
 */
int walk_interpreter_frames(struct walker *w, const struct walk_thread *t,
                            struct rawframe *out, size_t max, size_t *depth)
{
    struct ahead *a = walk_ahead_of(w, t);
    int singles = a ? a->nnext : 0, older = a ? a->older_next : 0;
    struct istack s = {.frame = t->frame, .chunk = t->chunk, .chunk_top = t->chunk_top, .a = a};
    int ret = walk_iframes(w, &s, out, max, depth);
    if (ret < 0 && a) {
        a->nnext = MAX(a->nnext, singles);
        a->older_next = MAX(a->older_next, older);
    }
    return ret;
}

/*
 * 3.11+: the bytes of frame, met by the walk of stack s (*fp): from the
 * chunk copies, else a parked stack's (parked_frame), else a thread's read
 * ahead or read alone into single.  The walk's older chunks are copied as
 * it reaches them, until *chunks_done.  0 or a negative errno.
 */
static int frame_bytes(struct walker *w, const struct istack *s, uint64_t frame,
                       unsigned char *single, const unsigned char **fp, int *chunks_done)
{
    const struct pylayout *l = w->l;
    size_t fsize = (size_t)l->if_size;
    struct ahead *a = s->a;
    int ret;
    const unsigned char *f = in_chunks(w, frame, fsize);
    if (f) {
        w->stats.chunk_frames++;
    } else if (s->p) {
        if ((ret = parked_frame(w, s->p, frame, single, &f, chunks_done)) < 0)
            return ret;
    } else {
        f = ahead_single(w, a, frame);
        if (!f && w->no_open)
            return walk_set_torn(w, TORN_GARBAGE);
        if (!f) {
            if ((ret = mem_read(w->rt->mem, frame, single, fsize)) < 0)
                return ret;
            w->stats.single_reads++;
            f = single;
        }
        /* A thread-owned frame outside the copies: the stack continues in an
         * older chunk; copy it for the frames that follow. */
        if (f[l->if_owner] == OWNED_BY_THREAD && !*chunks_done)
            *chunks_done = copy_older_chunk(w, a) < 0;
    }
    *fp = f;
    return 0;
}

/*
 * 3.11+: walks stack s's interpreter frames (a thread's or a parked one's)
 * from its innermost frame through its data-stack chunks, copied whole.
 */
int walk_iframes(struct walker *w, const struct istack *s, struct rawframe *out, size_t max,
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
        /* Older chunks' large buffers are not kept from walk to walk: what a
         * target once said it held is not held for good. */
        for (size_t i = 1; i < w->nchunks; i++) {
            if (w->chunks[i].cap > CHUNK_KEEP) {
                free(w->chunks[i].buf);
                w->chunks[i].buf = NULL;
                w->chunks[i].cap = 0;
            }
        }
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
            return n >= max ? 1 : walk_set_torn(w, TORN_GARBAGE);
        }
        if (frame & 7)
            return walk_set_torn(w, TORN_GARBAGE);
        const unsigned char *f;
        if ((ret = frame_bytes(w, s, frame, single, &f, &chunks_done)) < 0)
            return ret;
        uint8_t owner = f[l->if_owner];
        uint64_t code = buf_u64(f, l->if_code);
        /* A tagged reference's low bit marks a borrowed one; low bits 11 (a
         * tagged int), or 10 (3.15's invalid one), are no object: garbage.
         * 3.14+ clear a returning frame's code (to PyStackRef_NULL) after
         * unlinking it: a thread's innermost frames found so had returned
         * between the read of its current frame and theirs, and their
         * callers are its stack now. */
        if (l->code_tagged && !s->p && n == 0 && owner == OWNED_BY_THREAD &&
            !(code & ~(uint64_t)1) && buf_u64(f, l->if_previous)) {
            w->stats.cleared_tops++;
            frame = buf_u64(f, l->if_previous);
            continue;
        }
        if (layout_owner_shim(l, owner))
            cs_note(a, frame, fsize);
        GROW(w->chain, w->chaincap, seen + 1);
        GROW(w->owners, w->ownerscap, seen + 1);
        GROW(w->entries, w->entriescap, seen + 1);
        GROW(w->prevs, w->prevscap, seen + 1);
        w->prevs[seen] = buf_u64(f, l->if_previous);
        w->chain[seen] = frame;
        w->owners[seen] = owner;
        w->entries[seen] = l->if_is_entry >= 0 && f[l->if_is_entry] != 0;
        w->nseen = ++seen;
        if (l->code_tagged)
            code &= ~(uint64_t)1;
        if ((int)owner > l->owner_max)
            return walk_set_torn(w, TORN_GARBAGE);
        if (!layout_owner_shim(l, owner)) {
            if (walk_frame_raw(l, f, &out[n]) < 0)
                return walk_set_torn(w, TORN_GARBAGE);
            n++;
        }
        uint64_t prev = buf_u64(f, l->if_previous);
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
                      (l->owner_cstack >= 0 && !layout_owner_shim(l, owner))))
            return walk_set_torn(w, TORN_ROOT);
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
        val[0] = buf_u64(c, 0);
        val[1] = buf_u64(c, 8);
        w->stats.ahead_frames++;
    } else if (a && j < a->ncf && a->cf_ok[j]) {
        memcpy(val, a->cf_val[j], sizeof(a->cf_val[j]));
        w->stats.ahead_frames++;
    } else {
        unsigned char b[16];
        if ((ret = mem_read(w->rt->mem, at, b, sizeof(b))) < 0)
            return ret;
        val[0] = buf_u64(b, 0);
        val[1] = buf_u64(b, 8);
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
        val[0] = buf_u64(c, 0);
        val[1] = buf_u64(c, 8);
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
int walk_cframes(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                 size_t max, size_t *depth)
{
    struct ahead *a = walk_ahead_of(w, t);
    const int off = w->l->cf_current_frame;
    struct walk_thread top = *t;
    uint64_t tried[CF_TRIES];
    int ntried = 0, ret = walk_set_torn(w, TORN_GARBAGE), walks = 0;
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
                    ret = walk_set_torn(w, TORN_GARBAGE);
                while (ret == 0 && outer[0] && k < w->nseen && w->chain[k] != outer[0])
                    k++;
                if (ret == 0 && outer[0] && k == w->nseen)
                    ret = walk_set_torn(w, TORN_GARBAGE);
            }
            /* A frame at a return had returned: the one named, when it began
             * its loop (3.11: it is cleared after the loop returns); one
             * found otherwise, whatever it is (the cframe may be left over,
             * holding the last frame its loop ran), as one not started. */
            if (ret == 0 && *depth > 0 && w->nseen > 0 &&
                ((!named_one && out[0].addrq < 0) ||
                 ((!named_one || (w->l->if_is_entry >= 0 && w->entries[0])) && w->returned &&
                  w->returned(w->returned_ctx, out[0].code, out[0].addrq))))
                ret = walk_set_torn(w, TORN_GARBAGE);
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

int walk_callee(struct walker *w, const struct walk_thread *t, uint64_t frame, uint64_t size,
                struct rawframe *out, struct walk_frameinfo *info)
{
    const struct pylayout *l = w->l;
    if (l->frames == FRAME_OBJECTS) {
        uint32_t hi = walk_hint_lookup(w, t->tstate);
        const unsigned char *f;
        if (hi == HTAB_NONE || w->hints[hi].read != w->lists + 1)
            return -ENOENT;
        uint64_t at = walk_old_callee(w, &w->hints[hi], frame, &f);
        if (!at || walk_take_frame_object(w, f, out) < 0)
            return -ENOENT;
        *info = (struct walk_frameinfo){.addr = at, .entry = 1};
        return 0;
    }
    size_t fsize = (size_t)l->if_size;
    uint64_t at = frame + size;
    const unsigned char *f = size && at > frame && !(at & 7) ? in_chunks(w, at, fsize) : NULL;
    if (!f || f[l->if_owner] != OWNED_BY_THREAD)
        return -ENOENT;
    uint64_t code = buf_u64(f, l->if_code), prev = buf_u64(f, l->if_previous);
    if (l->code_tagged)
        code &= ~(uint64_t)1;
    if (!code || (code & 7))
        return -ENOENT;
    int entry = l->if_is_entry >= 0 && f[l->if_is_entry] != 0;
    if (prev != frame) {
        /* 3.12+: called from C, through the shim that eval loop pushed. */
        unsigned char shim[AHEAD_FRAME];
        const unsigned char *sf = l->owner_cstack >= 0 && prev && !(prev & 7) && fsize <= sizeof(shim)
                                      ? ahead_single(w, walk_ahead_of(w, t), prev)
                                      : NULL;
        if (!sf && l->owner_cstack >= 0 && prev && !(prev & 7) && fsize <= sizeof(shim) &&
            mem_read(w->rt->mem, prev, shim, fsize) == 0)
            sf = shim;
        if (!sf || !layout_owner_shim(l, sf[l->if_owner]) || buf_u64(sf, l->if_previous) != frame)
            return -ENOENT;
        entry = 1;
    }
    out->code = code;
    out->addrq = (int64_t)(buf_u64(f, l->if_instr) - (code + (uint64_t)l->co_code_adaptive));
    *info = (struct walk_frameinfo){.addr = at, .entry = (uint8_t)entry};
    return 0;
}
