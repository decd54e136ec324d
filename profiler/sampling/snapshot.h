/*
 * One look at every thread of the target: thread states, their OS state and
 * GIL, and their stacks resolved to frame ids.  The sampler takes one per
 * tick; dump takes one.
 */
#ifndef PYSTROBE_SNAPSHOT_H
#define PYSTROBE_SNAPSHOT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "profiler/sampling/session.h"

/* Which threads are sampled at all: a thread passes when its name matches
 * one of the regexes or its tid is one of the tids.  No regex and no tid:
 * every thread passes. */
struct thread_filter {
    regex_t *res;
    size_t nres;
    pid_t *tids;
    size_t ntids;
};

/* 1 when a thread of this name and tid passes the filter (NULL: all pass). */
int thread_filter_match(const struct thread_filter *f, const char *name, pid_t tid);

/*
 * What a thread is doing, from the kernel's view and the interpreter's:
 *  - running: its state letter is R (on a CPU, or runnable), or its syscall
 *    file says it is running;
 *  - GIL wait: not running, blocked in futex on the GIL's own condition
 *    variable, mutex (or 2.7 semaphore), and not the GIL's holder;
 *  - idle: not running otherwise (sleep, I/O, a lock, a condition...).
 */
enum thread_state {
    TS_UNKNOWN = 0,
    TS_RUNNING,
    TS_IDLE,
    TS_GIL_WAIT,
};

/* "running", "idle", "gil wait", "unknown" */
const char *thread_state_name(enum thread_state st);

/* Walks of a thread per snapshot, at most, before its stack is dropped as torn. */
#define SNAP_TRIES 16

struct snapshot;
struct session;

/*
 * Native stacks (see profiler/sampling/nstack.h): hold runs before a thread's
 * Python stack is walked (a live thread is stopped there, and its native
 * stack unwound), release right after; once frames are resolved, merge
 * gives the thread's stack with native frames (frame ids, innermost first),
 * which replaces the Python one.  k: the thread's index in the snapshot.
 */
struct snap_native {
    int (*hold)(void *ctx, struct session *s, struct snapshot *sn, size_t k);
    void (*release)(void *ctx, struct session *s, struct snapshot *sn, size_t k);
    int (*merge)(void *ctx, struct session *s, struct snapshot *sn, size_t k,
                 const uint32_t **ids, size_t *n);
    void *ctx;
};

struct snap_opts {
    int active_only;   /* walk only threads on CPU (state R) */
    int gil_only;      /* walk only the thread holding the GIL */
    int want_state;    /* read every thread's OS state even when not filtering */
    int want_gil;      /* find the GIL holder even when not filtering */
    int want_wait;     /* tell GIL waits from idle threads (with want_state) */
    int want_cpu;      /* read each thread's CPU time */
    int gil_patient;   /* a one-off look: read a free GIL's holder again for a while */
    int by_function;   /* frames at their function's first line */
    int want_info;     /* fill finfo (frame addresses, entry frames); stacks are not reused */
    const struct snap_native *native; /* NULL: Python frames only */
    const struct thread_filter *filter; /* NULL: every thread */
    size_t max_depth;
};

struct snap_thread {
    size_t tracked;      /* index in session->threads */
    int state;           /* 'R', 'S', ...; 0 when unknown */
    int gil;             /* holds the GIL (a hint) */
    int lock_wait;       /* idle, blocked in a futex other than the GIL's: a lock (with want_wait) */
    enum thread_state ts; /* TS_UNKNOWN unless asked for, or the kernel would not say */
    uint64_t cpu_ticks;  /* utime + stime (clock ticks), with want_cpu */
    uint64_t cpu_ns;     /* time on a CPU (ns, from schedstat), 0 when unknown */
    int excluded;        /* left out by the thread filter: nothing else is set */
    int walked;          /* its stack was walked (or reused) */
    int reused;          /* not walked: the thread has not run since its last walk */
    int still;           /* off CPU, and has not run since the look before this snapshot's
                          * reads: its stack, as read, may be reused */
    int status;          /* walk: 0, 1 truncated, or a negative errno */
    int native;          /* its stack has native frames merged in: off and depth say
                          * where, py_off and py_depth where its Python frames are
                          * (and their finfo), in the same order */
    size_t py_off, py_depth;
    int extra;           /* walked after the snapshot, by snapshot_walk_extra: not one of its samples */
    size_t off, depth;   /* its frame ids: ids[off .. off+depth), innermost first */
};

#define SNAP_BAD_CODES 8

struct snapshot {
    uint64_t interp;     /* the interpreter state (kept across snapshots) */
    uint32_t interp_gen; /* the session generation that last read its address */
    struct walk_thread *threads;
    size_t nthreads, threadcap;
    struct snap_thread *st;
    size_t stcap;
    struct rawframe *raw;
    size_t nraw, rawcap;
    struct walk_frameinfo *finfo; /* parallel to raw and ids */
    size_t finfocap;
    uint64_t *codes;
    struct code_entry **entries;
    uint32_t *ids;
    size_t idcap;
    struct gil_span gil_spans[GIL_SPANS_MAX];
    int ngil_spans;      /* -1: not looked up since the interpreter state was */
    uint64_t gil_holder; /* of the last snapshot, 0 when none or unknown */
    int holder_reread;   /* gil_holder was read again in this snapshot */
    size_t nselected;    /* threads that passed the filter */
    uint64_t stacks_reused; /* stacks of threads that had not run since (a running count) */
    uint64_t states_kept; /* thread states known without reading stat (a running count) */
    uint64_t woken_by_hold; /* idle threads runnable only because the last hold woke them (a running count) */
    /* Running counts of torn walks (see snapshot_take): */
    uint64_t retries;    /* walks taken again at once */
    uint64_t torn_tries[TORN_COUNT]; /* walks judged torn, by why */
    uint64_t torn_drops[TORN_COUNT]; /* of which the last try of their stack, by why */
    uint64_t cut;        /* stacks read as a frame returned: kept from the frame then running */
    uint64_t unreadable; /* stacks kept with a code object unreadable through every try */
    uint64_t unreadable_retries; /* walks taken again for those (not in retries) */
    /* Code addresses lately found unreadable through every try: met again
     * no code on two tries in a row, a stack is kept so at once. */
    uint64_t bad_codes[SNAP_BAD_CODES];
    unsigned bad_next;
    uint64_t caught_up;  /* frames taken in above the top the thread state gave */
};

void snapshot_init(struct snapshot *sn);
void snapshot_release(struct snapshot *sn);

/*
 * Takes a snapshot.  Returns 0 (per-thread failures are in each status), or
 * a negative errno when the thread list itself could not be read (-ESRCH:
 * the process is gone; -EINVAL/-EFAULT: a torn or garbage list).
 *
 * A thread's stack is read while the thread runs, so a walk can mix frames
 * of two moments (torn).  Each thread's frames are read with its thread
 * state where they were last time (see walk_threads), innermost first.  A
 * walk is judged torn when a frame had returned or is garbage, or when no
 * stack could look as read (a frame's code that is no code; <= 3.10, a
 * generator outermost, the outermost frame moving between the two reads of
 * the frames, or a frame read apart from them).  A torn walk is taken again
 * at once, with a read of its own, up to SNAP_TRIES times: a few
 * microseconds later is the same instant for the statistics, so that the
 * samples kept are not biased against code whose stack moves fast.  3.11+:
 * frames that had to be read apart (a first look) are kept: taking them
 * again would favour stacks already read ahead.  <= 3.10: the stack is kept
 * from the innermost caller that did not move between the two reads (cut).  A
 * caller that cannot be calling the frame above it (it is at a load, a
 * return, not started, or at an instruction that cannot push that frame)
 * was the running frame when it was read, and the frames above it had
 * returned: the stack is kept from that frame down (cut); one that was
 * calling may have called since: the frame it called, read with the rest,
 * is taken in (caught up).
 */
int snapshot_take(struct session *s, struct snapshot *sn, const struct snap_opts *o);

/*
 * Walks thread k of a snapshot just taken when the snapshot did not (a
 * thread its mode leaves out), and resolves its frames: t->extra says so.
 * Its stack's status (0, 1 cut, or a negative errno: -ENOENT no Python
 * frame or a thread left out by the filter).
 */
int snapshot_walk_extra(struct session *s, struct snapshot *sn, size_t k, int by_function,
                        size_t max_depth);

#endif
