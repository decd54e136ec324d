/*
 * One look at every thread of the target: thread states, their OS state and
 * GIL, and their stacks resolved to frame ids.  The sampler takes one per
 * tick; dump takes one.
 */
#ifndef PYSTROBE_SNAPSHOT_H
#define PYSTROBE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "profiler/session.h"

struct snap_opts {
    int active_only;   /* walk only threads on CPU (state R) */
    int gil_only;      /* walk only the thread holding the GIL */
    int want_state;    /* read every thread's OS state even when not filtering */
    int want_gil;      /* find the GIL holder even when not filtering */
    int by_function;   /* frames at their function's first line */
    size_t max_depth;
};

struct snap_thread {
    size_t tracked;      /* index in session->threads */
    int state;           /* 'R', 'S', ...; 0 when unknown */
    int gil;             /* holds the GIL (a hint) */
    int walked;          /* its stack was walked */
    int status;          /* walk: 0, 1 truncated, or a negative errno */
    size_t off, depth;   /* its frame ids: ids[off .. off+depth), innermost first */
};

struct snapshot {
    uint64_t interp;     /* the interpreter state (kept across snapshots) */
    uint32_t interp_gen; /* the session generation that last read its address */
    struct walk_thread *threads;
    size_t nthreads, threadcap;
    struct snap_thread *st;
    size_t stcap;
    struct rawframe *raw;
    size_t nraw, rawcap;
    uint64_t *codes;
    struct code_entry **entries;
    uint32_t *ids;
    size_t idcap;
    uint64_t retries;    /* walks repeated after a torn read (a running count) */
    uint64_t torn_callers; /* stacks dropped for a caller that cannot be calling (a running count) */
};

void snapshot_init(struct snapshot *sn);
void snapshot_release(struct snapshot *sn);

/*
 * Takes a snapshot.  Returns 0 (per-thread failures are in each status), or
 * a negative errno when the thread list itself could not be read (-ESRCH:
 * the process is gone; -EINVAL/-EFAULT: a torn or garbage list).
 */
int snapshot_take(struct session *s, struct snapshot *sn, const struct snap_opts *o);

#endif
