#include "profiler/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/core.h"
#include "profiler/proc.h"

/* 3.11+ frame owners. */
#define OWNED_BY_THREAD 0
#define OWNED_BY_GENERATOR 1
#define OWNED_BY_FRAME_OBJECT 2

/* Data-stack chunks copied per walk, and bytes copied in all. */
#define MAX_CHUNKS 256
#define MAX_CHUNK_BYTES (8u << 20)
/* Bytes of a struct pthread searched for the tid field. */
#define PTHREAD_SCAN 2048
/* Thread lists between two searches for it, after one failed. */
#define TID_SEARCH_EVERY 64

struct chunk_copy {
    uint64_t base, len;    /* [base, base+len) of the target, header included */
    unsigned char *buf;
    size_t cap;
    uint64_t previous;     /* the next older chunk, 0 at the end */
};

/* 3.11+: older data-stack chunks read ahead per thread. */
#define AHEAD_OLDER 4

/* <= 3.10: frame objects read ahead per thread (the innermost of its last stack). */
#define AHEAD_OLD_FRAMES 256

/* Frames outside the data stack read ahead per thread, and their most bytes. */
#define AHEAD_SINGLES 4
#define AHEAD_FRAME 128

/*
 * 3.11+: what was read with the thread list for a thread walked since the
 * previous call, where its top frame and data stack were then.
 */
struct ahead {
    uint64_t tstate;          /* the thread state it belongs to */
    int walked;               /* walked since the last walk_threads */
    uint64_t frame_at, frame; /* 3.11/3.12: the current cframe's frame pointer, read */
    uint64_t chunk, want;     /* the data stack's newest chunk, and the bytes read of it */
    struct chunk_copy copy;
    int frame_ok, chunk_ok;   /* read with this call's list, not used yet */
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
    /* <= 3.10: the frame objects of the thread's last stack, read again */
    uint64_t *old_addr;
    unsigned char *old_buf;
    uint8_t *old_ok;
    size_t old_n, old_cap;
};

/* Bytes read ahead beyond a chunk's last used top, and the most per thread and per call. */
#define AHEAD_SLACK 1024
#define AHEAD_MAX (128u << 10)
#define AHEAD_BUDGET (4u << 20)

struct chain_hint {
    uint64_t tstate;
    uint64_t *addr;     /* frame addresses, innermost first */
    size_t n, cap;
    uint32_t used;      /* walks counter when last used */
};

/* Hints unused for this many walks are dropped. */
#define HINT_TTL 4096
/* The first frames of a walk are looked up in the hint's first entries only. */
#define HINT_SEARCH 256
/* Batches per walk: a stack that keeps leaving its old chain is read one by one. */
#define HINT_BATCHES 4

struct walker {
    struct pyrt *rt;
    const struct pylayout *l;
    struct chunk_copy chunks[MAX_CHUNKS];
    size_t nchunks;
    uint64_t frame_type;    /* PyFrame_Type, known or confirmed by name */
    int tid_offset;         /* offset of tid in struct pthread; -1 unknown */
    uint32_t lists;         /* walk_threads calls */
    uint32_t tid_search_at; /* the call of the last search for tid_offset */
    int tid_search_failed;
    pid_t ns_pid;           /* the process's id in its own PID namespace */
    /* The thread states of the last walk_threads, and a buffer for them. */
    uint64_t *prev_ts;
    size_t nprev, prevcap;
    unsigned char *tsbuf;
    size_t tsbufcap;
    struct mem_iov *iov;
    size_t iovcap;
    /* <= 3.10: each thread's frame chain of its last walk, by thread state. */
    struct chain_hint *hints;
    size_t nhints, hintcap;
    struct htab hint_index;
    uint32_t walks;
    uint64_t *chain;        /* the chain being walked */
    size_t chaincap;
    unsigned char *specbuf; /* frames read in a batch along a hint */
    size_t speccap;
    uint8_t *specok;        /* and which of them were read */
    size_t specokcap;
    unsigned char *checkbuf; /* <= 3.10: the walked frames read again */
    size_t checkcap;
    int64_t *lastis;        /* each walked frame's f_lasti, or instruction pointer (3.11+) */
    size_t lasticap;
    uint64_t *prevs;        /* each walked frame's caller as read (0: the outermost) */
    size_t prevscap;
    uint64_t *codes_seen;   /* 3.11+: each walked frame's code */
    size_t codescap;
    uint8_t *owners;        /* 3.11+: and its owner */
    size_t ownerscap;
    uint8_t *entries;       /* 3.11: and its is_entry flag */
    size_t entriescap;
    size_t nseen;           /* 3.11+: frames in chain[] of the last walk, shims included */
    int *where;             /* 3.11+: the chunk copy each walked frame was found in, or -1 */
    size_t wherecap;
    size_t *checkoff;       /* where each walked frame's bytes are in checkbuf */
    size_t checkoffcap;
    uint64_t span_lo[MAX_CHUNKS], span_hi[MAX_CHUNKS];
    size_t span_off[MAX_CHUNKS];
    uint64_t *vcodes;       /* the walked code objects, for the validator */
    size_t vcodescap;
    struct walk_validator val;
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

void walker_free(struct walker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < MAX_CHUNKS; i++)
        free(w->chunks[i].buf);
    for (size_t i = 0; i < w->nahead; i++) {
        free(w->ahead[i].copy.buf);
        for (int j = 0; j < AHEAD_OLDER; j++)
            free(w->ahead[i].older[j].buf);
        free(w->ahead[i].old_addr);
        free(w->ahead[i].old_buf);
        free(w->ahead[i].old_ok);
    }
    free(w->ahead);
    free(w->tsok);
    free(w->tid_at);
    free(w->tidv);
    free(w->tidok);
    free(w->where);
    free(w->checkoff);
    free(w->vcodes);
    for (size_t i = 0; i < w->nhints; i++)
        free(w->hints[i].addr);
    free(w->hints);
    htab_release(&w->hint_index);
    free(w->prev_ts);
    free(w->tsbuf);
    free(w->iov);
    free(w->chain);
    free(w->specbuf);
    free(w->specok);
    free(w->checkbuf);
    free(w->lastis);
    free(w->codes_seen);
    free(w->prevs);
    free(w->owners);
    free(w->entries);
    free(w);
}

void walker_set_validator(struct walker *w, const struct walk_validator *v)
{
    if (v)
        w->val = *v;
    else
        memset(&w->val, 0, sizeof(w->val));
}

const struct walk_stats *walk_stats(const struct walker *w)
{
    return &w->stats;
}

static uint64_t get_u64(const unsigned char *buf, int off)
{
    uint64_t v;
    memcpy(&v, buf + off, 8);
    return v;
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

/*
 * <= 3.10: adds to w->iov from k the reads of the innermost frames of a's
 * thread's last stack; returns the new k.
 */
static size_t ahead_old_frames(struct walker *w, struct ahead *a, size_t k, size_t *budget)
{
    uint32_t hi = hint_lookup(w, a->tstate);
    if (hi == HTAB_NONE)
        return k;
    const struct chain_hint *h = &w->hints[hi];
    size_t len = frame_len(w->l), n = MIN(h->n, (size_t)AHEAD_OLD_FRAMES);
    if (n == 0 || n * len > *budget)
        return k;
    *budget -= n * len;
    if (a->old_cap < n) {
        a->old_cap = AHEAD_OLD_FRAMES;
        a->old_addr = xrealloc(a->old_addr, a->old_cap * sizeof(*a->old_addr));
        a->old_buf = xrealloc(a->old_buf, a->old_cap * len);
        a->old_ok = xrealloc(a->old_ok, a->old_cap);
    }
    /* Room for these and for what the caller adds per thread after them. */
    GROW(w->iov, w->iovcap, k + n + (4 + AHEAD_SINGLES + AHEAD_OLDER) * w->nprev + 1);
    for (size_t j = 0; j < n; j++) {
        a->old_addr[j] = h->addr[j];
        w->iov[k++] = (struct mem_iov){h->addr[j], a->old_buf + j * len, len, 0};
    }
    a->old_n = n;
    return k;
}

/* The reads ahead of thread t, or NULL. */
static struct ahead *ahead_of(struct walker *w, const struct walk_thread *t)
{
    if (t->spec < 0 || (size_t)t->spec >= w->nahead || w->ahead[t->spec].tstate != t->tstate)
        return NULL;
    return &w->ahead[t->spec];
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
    GROW(w->iov, w->iovcap, (4 + AHEAD_SINGLES + AHEAD_OLDER) * np + 1);
    /* <= 3.10, once the tid's place is known: each thread's tid, which
     * tells a new thread that took over a gone one's thread state and
     * struct pthread (both are recycled) from the old one. */
    int tids = w->tid_offset >= 0 && l->ts_native_thread_id < 0 && w->tidcap >= np;
    /* Slots past the previous list are not read ahead: forget them. */
    for (size_t i = np; i < w->nahead; i++) {
        struct ahead *a = &w->ahead[i];
        a->walked = a->frame_ok = a->chunk_ok = 0;
        a->frame_at = a->want = 0;
        a->nread = a->nnext = 0;
        a->older_read = a->older_next = 0;
    }
    w->iov[k++] = (struct mem_iov){interp + (uint64_t)l->is_tstate_head, head, 8, 0};
    for (size_t i = 0; i < np; i++) {
        struct ahead *a = i < w->nahead ? &w->ahead[i] : NULL;
        w->iov[k++] = (struct mem_iov){w->prev_ts[i], w->tsbuf + i * sz, sz, 0};
        if (tids && w->tid_at[i])
            w->iov[k++] = (struct mem_iov){w->tid_at[i] + (uint64_t)w->tid_offset, &w->tidv[i], 4, 0};
        if (!a)
            continue;
        a->frame_ok = a->chunk_ok = 0;
        memset(a->single_ok, 0, sizeof(a->single_ok));
        if (!a->walked || a->tstate != w->prev_ts[i]) {
            a->frame_at = a->want = 0;
            a->nread = a->nnext = 0;
            a->older_read = a->older_next = 0;
        } else if (a->want > budget) {
            a->want = 0;
        }
        if (!a->want && a->copy.cap > 16384) {
            /* Not read ahead this time: give back a big buffer. */
            free(a->copy.buf);
            a->copy.buf = NULL;
            a->copy.cap = 0;
        }
        if (a->frame_at == UINT64_MAX)
            a->frame_at = 0;
        if (a->frame_at)
            w->iov[k++] = (struct mem_iov){a->frame_at, &a->frame, 8, 0};
        if (a->want) {
            if (a->copy.cap < a->want) {
                free(a->copy.buf);
                a->copy.cap = MAX((size_t)a->want, (size_t)16384);
                a->copy.buf = xmalloc(a->copy.cap);
            }
            budget -= a->want;
            w->iov[k++] = (struct mem_iov){a->chunk, a->copy.buf, a->want, 0};
        }
        if (l->if_size > AHEAD_FRAME)
            a->nnext = 0;
        for (int j = 0; j < a->nnext; j++)
            w->iov[k++] = (struct mem_iov){a->single_at[j], a->single[j], (size_t)l->if_size, 0};
        a->older_read = 0;
        for (int j = a->older_next; j < AHEAD_OLDER; j++) {
            if (a->older[j].cap > 16384) {
                free(a->older[j].buf);
                memset(&a->older[j], 0, sizeof(a->older[j]));
            }
        }
        for (int j = 0; j < a->older_next; j++) {
            struct chunk_copy *c = &a->older[j];
            if (c->len > budget)
                break;
            budget -= c->len;
            w->iov[k++] = (struct mem_iov){c->base, c->buf, c->len, 0};
            a->older_read++;
        }
        a->old_n = 0;
        if (l->frames == FRAME_OBJECTS && a->walked && a->tstate == w->prev_ts[i])
            k = ahead_old_frames(w, a, k, &budget);
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
        if (!a)
            continue;
        if (a->frame_at)
            a->frame_ok = w->iov[k++].ok;
        if (a->want && (a->chunk_ok = w->iov[k++].ok)) {
            a->copy.base = a->chunk;
            a->copy.len = a->want;
            a->copy.previous = get_u64(a->copy.buf, l->chunk_previous);
        }
        for (int j = 0; j < a->nnext; j++)
            a->single_ok[j] = (uint8_t)w->iov[k++].ok;
        for (int j = 0; j < a->older_read; j++)
            a->older_ok[j] = (uint8_t)w->iov[k++].ok;
        for (size_t j = 0; j < a->old_n; j++)
            a->old_ok[j] = (uint8_t)w->iov[k++].ok;
        a->nread = a->nnext;
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
            a->walked = a->frame_ok = a->chunk_ok = 0;
            a->frame_at = a->want = 0;
            a->nread = a->nnext = 0;
            a->older_read = a->older_next = 0;
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
    int ret;
    if (w->l->ts_size > (int)sizeof(ts))
        return -EINVAL;
    if ((ret = mem_read(w->rt->mem, t->tstate, ts, (size_t)w->l->ts_size)) < 0)
        return ret;
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
                    free(w->hints[j].addr);
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

/* Index of frame among the hint's first entries, or -1. */
static long hint_find(const struct chain_hint *h, uint64_t frame)
{
    size_t n = MIN(h->n, (size_t)HINT_SEARCH);
    for (size_t k = 0; k < n; k++)
        if (h->addr[k] == frame)
            return (long)k;
    return -1;
}

/* Reads the hint's frames [from, from+count) in one batch into specbuf. */
static void hint_batch(struct walker *w, const struct chain_hint *h, size_t from, size_t count,
                       size_t len)
{
    if (w->speccap < count * len) {
        w->speccap = count * len;
        w->specbuf = xrealloc(w->specbuf, w->speccap);
    }
    GROW(w->iov, w->iovcap, count);
    for (size_t i = 0; i < count; i++)
        w->iov[i] = (struct mem_iov){h->addr[from + i], w->specbuf + i * len, len, 0};
    if (mem_readv(w->rt->mem, w->iov, count) < 0)
        for (size_t i = 0; i < count; i++)
            w->iov[i].ok = 0;
}

/*
 * Checks a PyFrameObject's bytes and fills out.  A frame freed while we
 * walked (refcount 0) means the stack changed under us: a torn read.  (Taking
 * freed frames as "the stack of a moment ago" was tried: their f_back is
 * often already reused, and a third of such stacks came out wrong.)
 */
static int take_frame_object(struct walker *w, const unsigned char *buf, struct rawframe *out)
{
    const struct pylayout *l = w->l;
    int64_t refcnt = (int64_t)get_u64(buf, 0);
    if (refcnt <= 0 || !is_frame_type(w, get_u64(buf, l->ob_type)))
        return -EINVAL;
    int32_t lasti;
    memcpy(&lasti, buf + l->fo_lasti, 4);
    out->code = get_u64(buf, l->fo_code);
    out->addrq = lasti < 0 ? -1 : (int64_t)lasti * (l->lasti_units ? 2 : 1);
    return out->code ? 0 : -EINVAL;
}

/*
 * Reads w->iov[0, k) (the walked frames again), and in the same call what
 * the validator wants about the walked code objects out[0, n).  Returns 0
 * when every one of the k pieces was read, else -EINVAL.
 */
static int reread(struct walker *w, size_t k, const struct rawframe *out, size_t n)
{
    size_t nv = 0;
    if (w->val.plan && n > 0) {
        GROW(w->vcodes, w->vcodescap, n);
        for (size_t i = 0; i < n; i++)
            w->vcodes[i] = out[i].code;
        GROW(w->iov, w->iovcap, k + n);
        nv = w->val.plan(w->val.ctx, w->vcodes, n, w->iov + k, n);
    }
    int ret = mem_readv(w->rt->mem, w->iov, k + nv);
    if (w->val.plan && n > 0)
        w->val.done(w->val.ctx, ret < 0 ? NULL : w->iov + k);
    if (ret < 0)
        return -EINVAL;
    for (size_t i = 0; i < k; i++)
        if (!w->iov[i].ok)
            return -EINVAL;
    return 0;
}

/* Makes room for `bytes` in checkbuf. */
static void check_room(struct walker *w, size_t bytes)
{
    if (w->checkcap < bytes) {
        w->checkcap = bytes;
        w->checkbuf = xrealloc(w->checkbuf, w->checkcap);
    }
}

/*
 * Reads bytes [lo, hi) of each of the walked frames w->chain[0, n) again,
 * in one vectored read (with the validator's).  Returns the copies (frame
 * i's at i * (hi - lo)), or NULL when the read failed.
 */
static const unsigned char *reread_chain(struct walker *w, size_t n, int lo, int hi,
                                         const struct rawframe *out, size_t nout)
{
    size_t len = (size_t)(hi - lo);
    check_room(w, n * len);
    GROW(w->iov, w->iovcap, n);
    for (size_t i = 0; i < n; i++)
        w->iov[i] = (struct mem_iov){w->chain[i] + (uint64_t)lo, w->checkbuf + i * len, len, 0};
    return reread(w, n, out, nout) < 0 ? NULL : w->checkbuf;
}

/*
 * Reads the walked frames [0, n) again, all at once, and checks that each
 * is still alive, still runs the same code with the same caller (the
 * outermost still none), and (all but the innermost, which runs) is still
 * at the same instruction.  Frames are read one after
 * another while the thread runs: a frame that returned and whose memory a
 * new call took over (frames of a code object are recycled) reads as a
 * live caller at some instruction of the new call.  A caller cannot move
 * while its callee lives, so a chain that changed is dropped (torn).
 */
static int recheck_chain(struct walker *w, size_t n, const struct rawframe *out)
{
    const struct pylayout *l = w->l;
    int lo = MIN(MIN(MIN(l->fo_back, l->fo_lasti), l->fo_code), 0);
    int hi = MAX(MAX(l->fo_back, l->fo_code) + 8, l->fo_lasti + 4);
    size_t len = (size_t)(hi - lo);
    const unsigned char *copies = reread_chain(w, n, lo, hi, out, n);
    if (!copies)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *f = copies + i * len - lo;
        int32_t lasti;
        memcpy(&lasti, f + l->fo_lasti, 4);
        uint64_t back = get_u64(f, l->fo_back);
        int64_t refcnt = (int64_t)get_u64(f, 0);
        /* A frame object freed and taken for a call of other code (they are
         * recycled) shows by its code. */
        if (refcnt <= 0 || back != w->prevs[i] || get_u64(f, l->fo_code) != out[i].code ||
            (i > 0 && lasti != w->lastis[i]))
            return -EINVAL;
    }
    return 0;
}

static int walk_frame_objects(struct walker *w, const struct walk_thread *t,
                              struct rawframe *out, size_t max, size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char buf[160];
    size_t len = frame_len(l);
    uint64_t frame = t->frame, mark = frame;
    size_t power = 1, lam = 0, n = 0;
    struct chain_hint *h = get_hint(w, t->tstate);
    /* Frames already read: addresses pa[0, pn), their bytes at pb + k * len
     * where pok[k]: first the last stack's innermost frames read with the
     * thread list, then batches along the last stack (hint_batch).  j: the
     * index in pa of the frame just taken, or -1. */
    const uint64_t *pa = NULL;
    const unsigned char *pb = NULL;
    const uint8_t *pok = NULL;
    size_t pn = 0;
    struct ahead *a = ahead_of(w, t);
    if (a && a->old_n) {
        pa = a->old_addr;
        pb = a->old_buf;
        pok = a->old_ok;
        pn = a->old_n;
        a->old_n = 0; /* this tick's: a walk again after a torn one reads afresh */
    }
    long j = -1;
    int batches = 0, ret = 0;
    *depth = 0;
    if (len > sizeof(buf))
        return -EINVAL;
    GROW(w->chain, w->chaincap, max + 1);
    while (frame) {
        if (n >= max) {
            ret = 1;
            break;
        }
        if (frame & 7) {
            ret = -EINVAL;
            break;
        }
        const unsigned char *f = NULL;
        if (j >= 0 && (size_t)j + 1 < pn && pa[j + 1] == frame && pok[j + 1]) {
            j++;
            f = pb + (size_t)j * len;
        } else {
            j = -1;
            for (size_t k = 0; k < MIN(pn, (size_t)HINT_SEARCH) && j < 0; k++)
                if (pa[k] == frame && pok[k])
                    j = (long)k;
            if (j >= 0) {
                f = pb + (size_t)j * len;
            } else {
                long k = batches < HINT_BATCHES ? hint_find(h, frame) : -1;
                if (k >= 0 && (size_t)k + 1 < h->n) {
                    /* This frame was on the last stack: the ones below it most
                     * likely still are.  Read this one fresh, those in one go. */
                    size_t from = (size_t)k + 1, count = MIN(h->n, from + (max - n)) - from;
                    hint_batch(w, h, from, count, len);
                    GROW(w->specok, w->specokcap, count);
                    for (size_t i = 0; i < count; i++)
                        w->specok[i] = (uint8_t)w->iov[i].ok;
                    pa = h->addr + from;
                    pb = w->specbuf;
                    pok = w->specok;
                    pn = count;
                    batches++;
                    j = -1; /* the next frame, if it is pa[0], is found by the search */
                }
            }
        }
        if (f && take_frame_object(w, f, &out[n]) == 0) {
            w->stats.hinted_frames++;
        } else {
            if ((ret = mem_read(w->rt->mem, frame, buf, len)) < 0)
                break;
            w->stats.single_reads++;
            f = buf;
            if ((ret = take_frame_object(w, f, &out[n])) < 0)
                break;
        }
        GROW(w->lastis, w->lasticap, n + 1);
        int32_t lasti;
        memcpy(&lasti, f + l->fo_lasti, 4);
        w->lastis[n] = lasti;
        GROW(w->prevs, w->prevscap, n + 1);
        w->prevs[n] = get_u64(f, l->fo_back);
        w->chain[n++] = frame;
        frame = get_u64(f, l->fo_back);
        if (frame == mark) {
            ret = -ELOOP;
            break;
        }
        if (++lam == power) {
            mark = frame;
            power *= 2;
            lam = 0;
        }
    }
    /* One frame is checked too: the validator's reads come along. */
    if (ret >= 0 && n > 0 && recheck_chain(w, n, out) < 0) {
        w->stats.rechecks_failed++;
        ret = -EINVAL;
    }
    if (ret >= 0) {
        /* This chain is the next walk's hint. */
        GROW(h->addr, h->cap, n + 1);
        memcpy(h->addr, w->chain, n * sizeof(uint64_t));
        h->n = n;
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
    c->len = len;
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
            c->len = used;
            c->previous = get_u64(c->buf, l->chunk_previous);
            a->older_ok[j] = 0;
            found = 1;
            w->stats.ahead_chunks++;
        }
    }
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

/* Finds frame [addr, addr+size) in the chunk copies (in copy *which, if not NULL). */
static const unsigned char *in_chunks(struct walker *w, uint64_t addr, size_t size, int *which)
{
    for (size_t i = 0; i < w->nchunks; i++) {
        const struct chunk_copy *c = &w->chunks[i];
        if (addr >= c->base + (uint64_t)w->l->chunk_data && addr + size <= c->base + c->len &&
            addr + size > addr) {
            if (which)
                *which = (int)i;
            return c->buf + (addr - c->base);
        }
    }
    return NULL;
}

/* 1 when frame is a C-stack shim (3.12+): it adds nothing to the depth. */
static int is_shim(struct walker *w, uint64_t frame)
{
    const struct pylayout *l = w->l;
    const unsigned char *f;
    uint8_t owner;
    if (l->owner_cstack < 0 || (frame & 7))
        return 0;
    if ((f = in_chunks(w, frame, (size_t)l->if_size, NULL)))
        owner = f[l->if_owner];
    else if (mem_read(w->rt->mem, frame + (uint64_t)l->if_owner, &owner, 1) < 0)
        return 0;
    return (int)owner == l->owner_cstack;
}

/*
 * 3.11+: reads the walked frames [0, n) again, all at once, and checks that
 * each still runs the same code with the same caller (the outermost still
 * none: a frame pushed from C is linked to its caller only once it starts),
 * and (all but the innermost) is still at the same instruction.  The data
 * stack is copied
 * while the thread runs: a caller's slot copied just before it made the
 * call shown above it, or a slot a returned frame left, reads as a caller
 * that is not calling.  A caller cannot move while its callee lives, so a
 * chain that changed is dropped (torn).
 */
static int recheck_iframes(struct walker *w, size_t n, const struct rawframe *out, size_t nout)
{
    const struct pylayout *l = w->l;
    int lo = MIN(MIN(MIN(l->if_previous, l->if_code), l->if_instr), l->if_owner);
    int hi = MAX(MAX(MAX(l->if_previous, l->if_code), l->if_instr) + 8, l->if_owner + 1);
    size_t len = (size_t)(hi - lo), k = 0, bytes = 0;
    /* Frames in a chunk copy are read again as one span of that chunk (one
     * piece instead of one per frame), the others one by one. */
    for (size_t c = 0; c < w->nchunks; c++) {
        w->span_lo[c] = UINT64_MAX;
        w->span_hi[c] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int c = w->where[i];
        uint64_t a = w->chain[i] + (uint64_t)lo;
        if (c < 0) {
            bytes += len;
            continue;
        }
        w->span_lo[c] = MIN(w->span_lo[c], a);
        w->span_hi[c] = MAX(w->span_hi[c], a + len);
    }
    for (size_t c = 0; c < w->nchunks; c++)
        if (w->span_hi[c])
            bytes += w->span_hi[c] - w->span_lo[c];
    check_room(w, bytes);
    GROW(w->iov, w->iovcap, w->nchunks + n);
    GROW(w->checkoff, w->checkoffcap, n);
    bytes = 0;
    for (size_t c = 0; c < w->nchunks; c++) {
        if (!w->span_hi[c])
            continue;
        size_t span = (size_t)(w->span_hi[c] - w->span_lo[c]);
        w->span_off[c] = bytes;
        w->iov[k++] = (struct mem_iov){w->span_lo[c], w->checkbuf + bytes, span, 0};
        bytes += span;
    }
    for (size_t i = 0; i < n; i++) {
        int c = w->where[i];
        if (c >= 0) {
            w->checkoff[i] = w->span_off[c] + (size_t)(w->chain[i] + (uint64_t)lo - w->span_lo[c]);
            continue;
        }
        w->checkoff[i] = bytes;
        w->iov[k++] = (struct mem_iov){w->chain[i] + (uint64_t)lo, w->checkbuf + bytes, len, 0};
        bytes += len;
    }
    if (reread(w, k, out, nout) < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *f = w->checkbuf + w->checkoff[i] - lo;
        if (get_u64(f, l->if_previous) != w->prevs[i] ||
            get_u64(f, l->if_code) != w->codes_seen[i] || f[l->if_owner] != w->owners[i] ||
            (i > 0 && (int64_t)get_u64(f, l->if_instr) != w->lastis[i]))
            return -EINVAL;
    }
    return 0;
}

/*
 * A frame outside the chunk copies: its bytes read with the thread list
 * when it was there last time too (used once), else NULL.  Its address is
 * read ahead next time either way (the first AHEAD_SINGLES of a walk).
 */
static const unsigned char *ahead_single(struct walker *w, struct ahead *a, uint64_t frame)
{
    const unsigned char *f = NULL;
    if (!a)
        return NULL;
    for (int j = 0; j < a->nread && !f; j++) {
        if (a->single_at[j] == frame && a->single_ok[j]) {
            a->single_ok[j] = 0;
            f = a->single[j];
            w->stats.ahead_frames++;
        }
    }
    /* Slots already used in this walk are rewritten for the next one. */
    if (a->nnext < AHEAD_SINGLES) {
        int j = a->nnext++;
        if (f != a->single[j]) {
            /* The slot's own read ahead, if any, is lost (walks rarely reorder). */
            a->single_ok[j] = 0;
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
static void copy_newest_chunk(struct walker *w, const struct walk_thread *t, struct ahead *a)
{
    const struct pylayout *l = w->l;
    uint64_t used = t->chunk_top - t->chunk;
    if (a && a->chunk_ok && a->chunk == t->chunk && used <= a->want &&
        used >= (uint64_t)l->chunk_data) {
        struct chunk_copy tmp = w->chunks[0];
        w->chunks[0] = a->copy;
        a->copy = tmp;
        w->chunks[0].len = used;
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

static int walk_interpreter_frames(struct walker *w, const struct walk_thread *t,
                                   struct rawframe *out, size_t max, size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char single[128];
    size_t fsize = (size_t)l->if_size;
    uint64_t frame = t->frame, mark = frame;
    size_t power = 1, lam = 0, n = 0, steps = 0, seen = 0;
    int ret, chunks_done = 0;
    *depth = 0;
    if (fsize > sizeof(single))
        return -EINVAL;
    struct ahead *a = ahead_of(w, t);
    if (a)
        a->nnext = a->older_next = 0;
    w->nchunks = 0;
    w->nseen = 0;
    if (frame && t->chunk && t->chunk_top > t->chunk)
        copy_newest_chunk(w, t, a);
    else if (a)
        a->want = 0;
    while (frame) {
        /* Shim frames do not count toward the depth, but do toward the walk:
         * a full stack whose next frame is a shim is not cut yet. */
        if ((n >= max && !is_shim(w, frame)) || steps++ >= 4 * (size_t)WALK_MAX_DEPTH) {
            *depth = n;
            if (n >= max && seen > 0 && recheck_iframes(w, seen, out, n) < 0) {
                w->stats.rechecks_failed++;
                return -EINVAL;
            }
            return n >= max ? 1 : -EINVAL;
        }
        if (frame & 7)
            return -EINVAL;
        int where = -1;
        const unsigned char *f = in_chunks(w, frame, fsize, &where);
        if (f) {
            w->stats.chunk_frames++;
        } else {
            f = ahead_single(w, a, frame);
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
        GROW(w->chain, w->chaincap, seen + 1);
        GROW(w->lastis, w->lasticap, seen + 1);
        GROW(w->codes_seen, w->codescap, seen + 1);
        GROW(w->owners, w->ownerscap, seen + 1);
        GROW(w->entries, w->entriescap, seen + 1);
        GROW(w->where, w->wherecap, seen + 1);
        GROW(w->prevs, w->prevscap, seen + 1);
        w->where[seen] = where;
        w->prevs[seen] = get_u64(f, l->if_previous);
        w->chain[seen] = frame;
        w->codes_seen[seen] = code;
        w->owners[seen] = owner;
        w->entries[seen] = l->if_is_entry >= 0 && f[l->if_is_entry] != 0;
        w->lastis[seen] = (int64_t)get_u64(f, l->if_instr);
        w->nseen = ++seen;
        if (l->code_tagged)
            code &= ~(uint64_t)3;
        if (owner > 4)
            return -EINVAL;
        if ((int)owner != l->owner_cstack) {
            if (!code || (code & 7))
                return -EINVAL;
            uint64_t instr = get_u64(f, l->if_instr);
            out[n].code = code;
            out[n].addrq = (int64_t)(instr - (code + (uint64_t)l->co_code_adaptive));
            n++;
        }
        uint64_t prev = get_u64(f, l->if_previous);
        if (prev == frame || prev == mark)
            return -ELOOP;
        /* A thread's outermost frame is its own (or a C-stack shim): a
         * generator's frame or a frame object's without a caller had
         * returned or been suspended while the walk reached it. */
        if (!prev && (owner == OWNED_BY_GENERATOR || owner == OWNED_BY_FRAME_OBJECT))
            return -EINVAL;
        if (!prev && seen > 0 && recheck_iframes(w, seen, out, n) < 0) {
            w->stats.rechecks_failed++;
            return -EINVAL;
        }
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

int walk_stack(struct walker *w, const struct walk_thread *t, struct rawframe *out, size_t max,
               size_t *depth)
{
    w->walks++;
    struct ahead *a = ahead_of(w, t);
    uint64_t read_at = 0;
    if (a) {
        a->walked = 1;
        read_at = a->frame_at;
        a->frame_at = t->frame_at;
    }
    if (t->frame_at) {
        /* 3.11/3.12: the top frame is read from the thread's current cframe
         * (with the thread list, when the cframe is the one of last time). */
        struct walk_thread top = *t;
        int ret = 0;
        if (a && a->frame_ok && read_at == t->frame_at && t->frame_at != UINT64_MAX) {
            top.frame = a->frame;
            w->stats.ahead_frames++;
        } else {
            ret = mem_read_u64(w->rt->mem, t->frame_at, &top.frame);
        }
        if (a)
            a->frame_ok = 0;
        *depth = 0;
        if (ret < 0)
            return ret;
        /* No frame: a thread state not running Python (one made for a
         * thread about to start has its creator's ids until it does). */
        if (!top.frame)
            return -ENOENT;
        top.frame_at = 0;
        return walk_interpreter_frames(w, &top, out, max, depth);
    }
    if (w->l->frames == FRAME_OBJECTS)
        return walk_frame_objects(w, t, out, max, depth);
    return walk_interpreter_frames(w, t, out, max, depth);
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

/* ---- thread ids ---- */

static int in_set(const pid_t *v, int n, pid_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
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

/*
 * Finds the offset of struct pthread's tid: the first 4-byte field that holds,
 * for every thread, the id of one of the process's tasks (as the process's own
 * PID namespace numbers them) or 0 (a thread that has exited: the kernel
 * clears the field), distinct across threads, one of them the main thread's
 * (the process id).  The tasks are listed after the memory is read, so that
 * only a thread that exited in between can be missing from the list; one
 * such in four is forgiven.
 */
static int find_tid_offset(struct walker *w, const struct walk_thread *threads, size_t n)
{
    pid_t *tasks = NULL;
    size_t k = MIN(n, (size_t)64);
    int found = -1;
    int32_t(*vals)[PTHREAD_SCAN / 4] = xcalloc(k ? k : 1, sizeof(*vals));
    int *ok = xcalloc(k ? k : 1, sizeof(int));
    /* The newest threads and the oldest, which is the main thread (its tid
     * is the pid: what tells the field) in a list longer than the sample. */
    for (size_t i = 0; i < k; i++) {
        const struct walk_thread *t = &threads[i + 1 == k ? n - 1 : i];
        ok[i] = t->thread_id && mem_read(w->rt->mem, t->thread_id, vals[i], sizeof(vals[i])) == 0;
    }
    int ntasks = list_tasks(w, &tasks);
    if (ntasks <= 0) {
        free(tasks);
        free(vals);
        free(ok);
        return ntasks < 0 ? ntasks : -ENOENT;
    }
    for (int off = 0; off < PTHREAD_SCAN / 4 && found < 0; off++) {
        int has_main = 0, good = 1, live = 0, missing = 0;
        for (size_t i = 0; i < k && good; i++) {
            if (!ok[i])
                continue;
            pid_t v = vals[i][off];
            if (v == 0)
                continue;
            if (v < 0) {
                good = 0;
                break;
            }
            if (in_set(tasks, ntasks, v))
                live++;
            else
                missing++;
            for (size_t j = 0; j < i && good; j++)
                if (ok[j] && vals[j][off] == v)
                    good = 0;
            has_main |= v == own_pid(w);
        }
        if (good && has_main && live > 0 && missing * 4 <= live)
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
            /* A search that failed is not tried again for a while: it reads a lot. */
            if (w->tid_search_failed && w->lists - w->tid_search_at < TID_SEARCH_EVERY)
                return -EAGAIN;
            w->tid_search_at = w->lists;
            w->tid_search_failed = (ret = find_tid_offset(w, threads, n)) < 0;
            if (ret < 0)
                return ret;
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
