/*
 * Inside the stack walker: what walk.c (the walker, the thread list, the
 * reads ahead), walk_frameobj.c (<= 3.10: frame objects), walk_iframe.c
 * (3.11+: interpreter frames in data-stack chunks), walk_parked.c (parked
 * stacks) and walk_tid.c (thread ids) share.  Not for other modules.
 * Included after walk.h, whose types it uses.
 */
#ifndef PYSTROBE_WALK_IMPL_H
#define PYSTROBE_WALK_IMPL_H

#ifndef PYSTROBE_WALK_H
#error "include profiler/cpython/walk.h before walk_impl.h"
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/htab.h"
#include "common/util.h"

/* Data-stack chunks copied per walk, bytes copied of one, and of all of
 * them in one walk (frames past that are read one by one: a walk stops at
 * WALK_MAX_DEPTH frames anyway).  An older chunk's buffer larger than
 * CHUNK_KEEP is let go before the next walk. */
#define MAX_CHUNKS 256
#define MAX_CHUNK_BYTES (8u << 20)
#define MAX_WALK_CHUNK_BYTES (32u << 20)
#define CHUNK_KEEP (1u << 20)
/* A parked stack's chunks copied before another is (what a walk copies is
 * then at most this and one chunk more), and a chunk buffer's size kept
 * after its walk. */
#define PARKED_CHUNK_BYTES (8u << 20)
#define PARKED_KEEP (64u << 10)

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

/* Notes why a walk is judged torn; returns -EINVAL. */
static inline int walk_set_torn(struct walker *w, enum walk_torn why)
{
    w->torn = why;
    return -EINVAL;
}

/* Bytes of a PyFrameObject the walk reads. */
static inline size_t walk_frame_len(const struct pylayout *l)
{
    return (size_t)MAX(MAX(l->fo_back, l->fo_code) + 8, l->fo_lasti + 4);
}

/* walk.c: the reads ahead of thread t, or NULL. */
struct ahead *walk_ahead_of(struct walker *w, const struct walk_thread *t);

/* walk_frameobj.c, <= 3.10: each thread's chain hint (its frames of late,
 * read ahead as spans), and the walk of its frame objects. */
void walk_hint_release(struct chain_hint *h);
uint32_t walk_hint_lookup(struct walker *w, uint64_t tstate);
size_t walk_plan_spans(struct walker *w, struct chain_hint *h, size_t k, size_t *budget);
int walk_take_frame_object(struct walker *w, const unsigned char *buf, struct rawframe *out);
uint64_t walk_old_callee(struct walker *w, struct chain_hint *h, uint64_t frame,
                         const unsigned char **bytes);
int walk_frame_objects(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                       size_t max, size_t *depth);

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

/* walk_iframe.c, 3.11+: the walks of interpreter frames. */
int walk_iframes(struct walker *w, const struct istack *s, struct rawframe *out, size_t max,
                 size_t *depth);
int walk_interpreter_frames(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                            size_t max, size_t *depth);
int walk_cframes(struct walker *w, const struct walk_thread *t, struct rawframe *out, size_t max,
                 size_t *depth);

#endif
