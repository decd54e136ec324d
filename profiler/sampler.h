/*
 * The sampling loop: one snapshot per tick at absolute deadlines, stacks
 * into the aggregate, until the duration ends, the target exits or a stop is
 * requested.
 */
#ifndef PYSTROBE_SAMPLER_H
#define PYSTROBE_SAMPLER_H

#include <signal.h>
#include <stdint.h>

#include "output/agg.h"
#include "profiler/session.h"
#include "profiler/snapshot.h"

enum drop_reason {
    DROP_TORN,        /* the stack changed while it was read (a garbage or dead frame) */
    DROP_UNREADABLE,  /* memory that could not be read */
    DROP_CYCLE,       /* a cycle in the frame chain */
    DROP_THREADS,     /* the thread list itself could not be read: the whole tick */
    DROP_BEHIND,      /* ticks skipped because sampling fell behind schedule */
    DROP_NO_FRAMES,   /* a thread on CPU with no Python frame (kept as its thread alone with --threads) */
    DROP_COUNT
};

struct sampler_opts {
    struct snap_opts snap;
    double rate;          /* Hz */
    double duration;      /* seconds, 0 = until the target exits or a stop */
    int threads;          /* aggregate per thread (for writers that show threads) */
    volatile sig_atomic_t *stop; /* set asynchronously to stop */
    pid_t child;          /* a launched command: reaped when it exits (0: attached) */
    int status_line;      /* print a status line on stderr once a second */
};

struct sampler_result {
    uint64_t ticks;       /* ticks sampled */
    uint64_t stacks;      /* stacks recorded (one per thread per tick) */
    uint64_t truncated;   /* stacks cut at the depth bound */
    uint64_t dropped[DROP_COUNT];
    uint64_t elapsed_ns;
    uint64_t cpu_ns;      /* the profiler's own CPU time while sampling */
    uint64_t reads;       /* process_vm_readv calls while sampling */
    int target_exited;
    int child_status;     /* wait status of the launched command, when reaped */
    int child_reaped;
    int stopped;          /* a stop was requested */
};

/* Runs the loop.  0, or a negative errno when sampling could not start. */
int sampler_run(struct session *s, const struct sampler_opts *o, struct agg *a,
                struct sampler_result *r);

/* Human name of a drop reason ("torn stack", ...). */
const char *sampler_drop_name(enum drop_reason d);

#endif
