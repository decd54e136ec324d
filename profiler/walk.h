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

#include "profiler/mem.h"
#include "profiler/pyrt.h"

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

struct walk_stats {
    uint64_t chunk_frames;  /* 3.11+: frames found in a data-stack copy */
    uint64_t single_reads;  /* frames read one by one */
    uint64_t hinted_frames; /* <= 3.10: frames read in one batch along the last walk's chain */
    uint64_t hinted_tstates; /* thread states read in one batch along the last list */
    uint64_t rechecks_failed; /* walks whose frames had changed when read again */
    uint64_t ahead_chunks;  /* 3.11+: data-stack chunks taken from the reads with the thread list */
    uint64_t ahead_frames;  /* 3.11/3.12: top frame pointers taken from them */
};

struct walker;

/*
 * Checks folded into the walker's recheck read (see codecache_plan): plan
 * fills iov[0..k) (k <= room, returned) with reads about the walked code
 * objects codes[0..n); done gets the same entries back once read (NULL when
 * the read failed).
 */
struct walk_validator {
    size_t (*plan)(void *ctx, const uint64_t *codes, size_t n, struct mem_iov *iov, size_t room);
    void (*done)(void *ctx, const struct mem_iov *iov);
    void *ctx;
};

/* A walker over rt's process (rt outlives it). */
struct walker *walker_new(struct pyrt *rt);
void walker_free(struct walker *w);
void walker_set_validator(struct walker *w, const struct walk_validator *v);

/*
 * Reads the thread states of interpreter interp into out (at most max).
 * The list's head and the thread states of the previous call are read in
 * one batch, as they rarely change; on 3.11+ so are the top frame and the
 * data stack of each thread walked since the previous call, where they
 * were then (walk_stack uses them when they are still where the thread
 * state says).  Returns 0, or a negative errno (-EINVAL when the list
 * is garbage, -ELOOP when it has a cycle, -EFAULT when it cannot be read,
 * -ESRCH when the process is gone).
 */
int walk_threads(struct walker *w, uint64_t interp, struct walk_thread *out, size_t max,
                 size_t *n);

/* Re-reads one thread state (after a torn walk).  0 or a negative errno. */
int walk_refresh(struct walker *w, uint64_t interp, struct walk_thread *t);

/*
 * Walks a thread's stack from its top frame: out[0] is the innermost frame.
 * On <= 3.10, the frames below the first one found on the thread's previous
 * stack are read in one batch along that stack's chain (each one still
 * checked, and used only where the chain still leads to it).
 * Returns 0, 1 when the stack was cut at max frames (the outermost ones are
 * missing), or a negative errno: -EFAULT unreadable frame, -EINVAL garbage
 * (a frame of the wrong type, a dead frame: a torn read), -ELOOP a cycle,
 * -ENOENT no Python frame after all (3.11/3.12: the thread's current cframe
 * holds none; such a thread is not running Python, as when the top frame in
 * its thread state is NULL).
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
};

/* walk_stack, also filling info[0..*depth) when info is not NULL. */
int walk_stack_info(struct walker *w, const struct walk_thread *t, struct rawframe *out,
                    struct walk_frameinfo *info, size_t max, size_t *depth);

/*
 * The Linux thread id of a thread, from its thread state (3.11+) or from
 * glibc's struct pthread at thread_id (the offset of its tid field is found
 * once, by matching the threads' values against /proc/PID/task, or against
 * the threads of a core file; a failed
 * search is tried again only every so many thread lists).  Returns 0 with
 * *tid set (and *ns_tid: the same as the target's PID namespace numbers it),
 * or a negative errno.
 */
int walk_thread_tid(struct walker *w, const struct walk_thread *threads, size_t n, size_t i,
                    pid_t *tid, pid_t *ns_tid);

/*
 * <= 3.10, once walk_thread_tid found its place: the tid in the struct
 * pthread at thread_id now (0 for a thread that has exited).  0, -ENOENT
 * (not known on this layout or not yet), or a negative errno.
 */
int walk_pthread_tid(struct walker *w, uint64_t thread_id, pid_t *ns_tid);

const struct walk_stats *walk_stats(const struct walker *w);

#endif
