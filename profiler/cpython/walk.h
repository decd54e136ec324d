/*
 * Walking the target's thread states and Python stacks into raw frames
 * (code object address, bytecode offset).  Nothing here formats text or looks
 * at code objects beyond their address: that is the symbolizer's job.
 *
 * Everything read is untrusted: lists and stacks are bounded, cycles are
 * detected, and a read that fails or makes no sense ends the walk with an
 * error so that the caller drops the sample.
 */
#ifndef PYSTROBE_WALK_H
#define PYSTROBE_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "profiler/target/mem.h"
#include "profiler/cpython/pyrt.h"

/* Default bound on a stack's depth; deeper stacks keep their innermost frames. */
#define WALK_MAX_DEPTH 4096
/* Bound on the thread states of one interpreter. */
#define WALK_MAX_THREADS 4096

struct walk_thread {
    uint64_t tstate;
    uint64_t thread_id;   /* pthread_t: threading's ident */
    pid_t native_tid;     /* its Linux id as the target numbers it: from the thread
                           * state (3.11+), or from struct pthread when read with
                           * the list (<= 3.10, once its place is known); else 0 */
    uint64_t frame;       /* top frame, 0 when the thread runs no Python */
    uint64_t frame_at;    /* 3.11/3.12: where to read the top frame (the thread's
                           * current cframe, on its C stack), 0 when frame is set */
    uint64_t chunk, chunk_top; /* data stack (3.11+) */
    int spec;             /* its slot among the reads made with the thread list, -1 none */
};

/* 1 when the thread may have Python frames (its top frame is set or still to be read). */
static inline int walk_has_frames(const struct walk_thread *t)
{
    return t->frame != 0 || t->frame_at != 0;
}

struct rawframe {
    uint64_t code;
    int64_t addrq; /* byte offset in the bytecode; < 0: the frame has not started */
};

/*
 * Why a walk was judged torn: read while the thread changed its stack, so
 * that what was read may mix frames of two moments.  The snapshot walks
 * such a thread again at once (see snapshot.h).
 */
enum walk_torn {
    TORN_NONE = 0,
    TORN_DEAD,        /* <= 3.10: a frame freed (it had returned), or not a frame */
    TORN_MOVED,       /* <= 3.10: the outermost frame moved between the two reads of
                       * the frames, or a frame was read apart from them (walk_stack) */
    TORN_ROOT,        /* 3.11+: the outermost frame is not where a thread's stack starts */
    TORN_GARBAGE,     /* a pointer or field that makes no sense */
    TORN_NOT_CODE,    /* a frame's code is not a code object, or a stray shim (snapshot) */
    TORN_GEN_ROOT,    /* <= 3.10: a generator as the outermost frame (snapshot) */
    TORN_CYCLE,       /* a cycle in the frame chain (-ELOOP) */
    TORN_UNREADABLE,  /* memory that could not be read (snapshot) */
    TORN_COUNT
};

/* "a frame freed", "frames not read together", ... */
const char *walk_torn_name(enum walk_torn why);

struct walk_stats {
    uint64_t chunk_frames;  /* 3.11+: frames found in a data-stack copy */
    uint64_t single_reads;  /* frames read one by one */
    uint64_t hinted_tstates; /* thread states read in one batch along the last list */
    uint64_t ahead_chunks;  /* 3.11+: data-stack chunks taken from the reads ahead */
    uint64_t ahead_frames;  /* frames (<= 3.10), frames outside the data stack and top
                             * frame pointers (3.11+) taken from the reads ahead */
    uint64_t dead_tops;     /* <= 3.10: walks from the caller of a top frame freed since */
    uint64_t outer_walks;   /* 3.11/3.12: walks from the calling eval loop's frame, the
                             * current one between frames (walk_stack) */
    uint64_t cleared_tops;  /* 3.14+: innermost frames found cleared (they had returned
                             * since the thread's current frame was read), passed over */
};

struct walker;

/* A walker over rt's process (rt outlives it). */
struct walker *walker_new(struct pyrt *rt);
void walker_free(struct walker *w);

/*
 * Reads the thread states of interpreter interp into out (at most max).
 * The list's head and the thread states of the previous call are read in
 * one batch, as they rarely change, and with each thread state, for the
 * threads walked since the previous call, where their frames were then
 * (the reads ahead): <= 3.10 the frame objects of the thread's last walk
 * and others it ran lately; 3.11+ its current frame pointer's cframes
 * (3.11/3.12), its data stack's chunks and the frames it had outside them.
 * A walk takes its frames from there when they are still where the thread
 * state leads, so that a stack is read in one instant.  Returns 0, or a
 * negative errno (-EINVAL when the list is garbage, -ELOOP when it has a
 * cycle, -EFAULT when it cannot be read, -ESRCH when the process is gone).
 */
int walk_threads(struct walker *w, uint64_t interp, struct walk_thread *out, size_t max,
                 size_t *n);

/*
 * Re-reads one thread state with its reads ahead (those of its last walk,
 * torn or not), in one read, for walking it again.  0 or a negative errno.
 */
int walk_refresh(struct walker *w, uint64_t interp, struct walk_thread *t);

/*
 * Tells the walker how to know a frame at a return (3.11: a frame that
 * began an eval loop, found so, had returned from it): returned(ctx,
 * code, addrq) is 1 for a frame of code at byte offset addrq at a return.
 */
void walk_set_returned(struct walker *w, int (*returned)(void *ctx, uint64_t code, int64_t addrq),
                       void *ctx);

/*
 * Walks a thread's stack from its top frame: out[0] is the innermost frame.
 * Frames come from the reads ahead made with its thread state (by
 * walk_threads or walk_refresh) where they are there, else are read now:
 * walk_last_open counts those reads.  Returns 0, 1 when the stack was cut
 * at max frames (the outermost ones are missing), or a negative errno:
 * -EFAULT unreadable frame, -ELOOP a cycle, -EINVAL torn (walk_last_torn
 * says why: a frame freed, garbage, an outermost frame that is not a
 * thread's first).
 */
int walk_stack(struct walker *w, const struct walk_thread *t, struct rawframe *out, size_t max,
               size_t *depth);

/* What a walk can say about each frame besides its code (walk_stack_info). */
struct walk_frameinfo {
    uint64_t addr;  /* the frame: PyFrameObject (<= 3.10) or _PyInterpreterFrame (3.11+) */
    uint8_t entry;  /* 1 when the frame was entered from C, so that one call of the
                     * eval loop runs it and the frames above it up to the next
                     * entry frame: always on <= 3.10 (one eval call per frame);
                     * 3.11+: the outermost frame of a thread, a frame whose
                     * caller is a C-stack shim (3.12+) or marked is_entry (3.11) */
    uint8_t unreadable; /* set by the snapshot: its code object could not be read on
                         * any try (the walker leaves it 0) */
};

/* walk_stack, also filling info[0..*depth) when info is not NULL. */
int walk_stack_info(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                    struct walk_frameinfo *info, size_t max, size_t *depth);

/*
 * After a walk of thread t, from what it read with the thread state: the
 * frame that frame (of size bytes, 3.11+) was calling then, as read.  3.11+:
 * the frame right above it on the data stack (as far as that was read),
 * linked to it directly (pushed by its instruction, or entered from C on
 * 3.11) or through the C-stack shim of an eval loop called from C (3.12+),
 * owned by the thread; <= 3.10: the one frame alive among those read that
 * says it is its callee.  0 with out and info set (info->entry: entered
 * from C), or -ENOENT.  Whether it still ran is the caller's to judge.
 */
int walk_callee(struct walker *w, const struct walk_thread *t, uint64_t frame, uint64_t size,
                struct rawframe *out, struct walk_frameinfo *info);

/*
 * 3.11+, after a walk: whether the instruction pointer of frame (above
 * below on the data stack) was read before that of below (-1), after it
 * (1), or not known (0): the newest chunk is read page by page from the
 * top, each page copied upward.
 */
int walk_read_order(const struct walker *w, uint64_t frame, uint64_t below);

/*
 * The Linux thread id of a thread, from its thread state (3.11+) or from
 * glibc's struct pthread at thread_id (the offset of its tid field is found
 * once, by matching the threads' values against /proc/PID/task, or against
 * the threads of a core file, with the first list it is asked for).  Returns
 * 0 with *tid set (and *ns_tid: the same as the target's PID namespace
 * numbers it), -EAGAIN while the offset is not known (a search found
 * nothing: the next is made with the next list, then after 2, 4, ... up to
 * 64 lists, a call per list), or another negative errno.
 */
int walk_thread_tid(struct walker *w, const struct walk_thread *threads, size_t n, size_t i,
                    pid_t *tid, pid_t *ns_tid);

/*
 * <= 3.10, once walk_thread_tid found its place: the tid in the struct
 * pthread at thread_id now (0 for a thread that has exited).  0, -ENOENT
 * (not known on this layout or not yet), or a negative errno.
 */
int walk_pthread_tid(struct walker *w, uint64_t thread_id, pid_t *ns_tid);

/*
 * A stack that no thread runs: a parked greenlet's, as it was saved when it
 * switched away.  Its C stack may be elsewhere: the part greenlet spilled
 * to the heap is read from that copy.
 */
struct walk_parked {
    uint64_t frame;             /* its innermost frame: a _PyInterpreterFrame (3.11+),
                                 * a PyFrameObject (<= 3.10) */
    uint64_t chunk, chunk_top;  /* 3.11+: its newest data-stack chunk, and the top in use there */
    uint64_t cut_link;          /* 3.11+: where the chain goes on when the innermost frame
                                 * links to none (greenlet 3.0.0-3.0.2 on 3.12), else 0 */
    uint64_t cstack_lo, cstack_hi; /* 3.12+: its own C stack, [lo, hi), where its shims lie */
    uint64_t spill, spill_len;  /* [cstack_lo, cstack_lo + spill_len) is read at spill (0: none) */
};

/*
 * A walker of parked stacks alone (walk_parked): no thread list, nothing
 * read ahead.  m and l outlive it.
 */
struct walker *walker_new_parked(struct mem *m, const struct pylayout *l);

/*
 * Walks parked stack p, innermost frame first, with the walk threads have:
 * 3.11+ through its data-stack chunks, each copied whole (the newest from
 * p->chunk to p->chunk_top, older ones as the chain reaches them, up to
 * the size their headers give), C-stack shims skipped; a frame outside
 * them must be a generator's or a frame object's, or a shim on p's own C
 * stack, as no thread state bounds it.  <= 3.10: its frame objects through
 * f_back, each alive and a frame.  Returns 0, 1 when cut at max frames, or
 * a negative errno: -EFAULT unreadable, -ELOOP a cycle, -EINVAL garbage or
 * stale (walk_last_torn says which).
 */
int walk_parked(struct walker *w, const struct walk_parked *p, struct rawframe *out, size_t max,
                size_t *depth);

/*
 * The code object and byte offset of one frame from its bytes, as every
 * walk reads them (threads', greenlets', asyncio tasks' coroutines): 3.11+
 * a _PyInterpreterFrame (its code reference untagged), <= 3.10 a
 * PyFrameObject (f_lasti, counted in code units on 3.10; < 0 before it
 * starts).  0, or -EINVAL when it names no code object (NULL or misaligned).
 */
int walk_frame_raw(const struct pylayout *l, const unsigned char *f, struct rawframe *out);

const struct walk_stats *walk_stats(const struct walker *w);

/* 1 when the last walk kept only some of its frames, the rest having moved
 * while they were read (<= 3.10; the snapshot counts it as cut). */
int walk_last_settled(const struct walker *w);

/* Why the last walk that returned -EINVAL was torn. */
enum walk_torn walk_last_torn(const struct walker *w);

/* The reads the last walk made besides its reads ahead (0: it read its frames in one instant). */
unsigned walk_last_open(const struct walker *w);

#endif
