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
#include "profiler/sampling/gcensus.h"
#include "profiler/sampling/nstack.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "profiler/sampling/tcensus.h"

enum drop_reason {
    DROP_TORN,        /* the stack changed while it was read, however often it was read again */
    DROP_UNREADABLE,  /* memory that could not be read */
    DROP_THREADS,     /* the thread list itself could not be read: the whole tick */
    DROP_BEHIND,      /* ticks skipped because sampling fell behind schedule */
    DROP_NO_FRAMES,   /* a thread on CPU with no Python frame (kept as its thread alone with --threads) */
    DROP_COUNT
};

struct sampler_result;

/* What a caller sees of each tick, besides the aggregate (pystrobe top). */
struct sampler_hook {
    /* After each process's snapshot (not for one whose thread list could
     * not be read); s->pid tells the process. */
    void (*on_sample)(void *ctx, struct session *s, const struct snapshot *sn);
    /* After each tick, with the counts so far: nonzero stops the loop. */
    int (*on_tick)(void *ctx, const struct sampler_result *r, uint64_t now);
    void *ctx;
};

struct sampler_opts {
    struct snap_opts snap;
    double rate;          /* Hz */
    double duration;      /* seconds, 0 = until the target exits or a stop */
    int threads;          /* aggregate per thread (for writers that show threads) */
    volatile sig_atomic_t *stop; /* set asynchronously to stop */
    pid_t child;          /* a launched command: reaped when it exits (0: attached) */
    int status_line;      /* print a status line on stderr once a second */
    int subprocesses;     /* follow the target's Python descendants too */
    int native;           /* merge native frames in (threads are held while read) */
    int greenlets;        /* a greenlet census every census_every ticks (>= 1), each
                           * greenlet's stack counted census_every times */
    unsigned census_every;
    int tasks;            /* an asyncio task census every task_every ticks (>= 1), each
                           * waiting task's stack counted task_every times, and a running
                           * task's samples under its awaiters (needs snap.want_info) */
    unsigned task_every;
    const struct sampler_hook *hook; /* NULL: none */
};

struct sampler_result {
    uint64_t ticks;       /* ticks sampled */
    uint32_t processes;   /* processes sampled, the target's included */
    uint32_t processes_now; /* of which still sampled at the end (or now) */
    uint64_t stacks;      /* stacks recorded (one per thread per tick) */
    uint64_t truncated;   /* stacks cut at the depth bound */
    uint64_t dropped[DROP_COUNT];
    uint64_t retries;     /* walks taken again after a torn one */
    uint64_t torn_tries[TORN_COUNT]; /* walks judged torn, by why */
    uint64_t torn_drops[TORN_COUNT]; /* of which the last of their stack's tries */
    uint64_t cut;         /* stacks cut at the frame running when read (see snapshot.h) */
    uint64_t unreadable;  /* stacks kept with an unreadable code object (see snapshot.h) */
    uint64_t unreadable_retries; /* walks taken again for those (not in retries) */
    uint64_t elapsed_ns;
    uint64_t cpu_ns;      /* the profiler's own CPU time while sampling */
    uint64_t reads;       /* process_vm_readv calls while sampling */
    struct nstack_stats native; /* with native: holds, unwinds, merges */
    uint64_t late_stops;  /* with native: threads that stopped after their hold gave up */
    struct gcensus_stats greenlets; /* with greenlets: the censuses, over all processes */
    uint64_t census_ns;   /* the profiler's CPU time in censuses */
    uint64_t census_waits; /* censuses due while the target had no greenlet module */
    uint64_t running_unknown; /* running greenlets whose thread's stack could not be had */
    struct tcensus_stats tasks; /* with tasks: the task censuses, over all processes */
    uint64_t task_waits;  /* task censuses due while the target had not imported asyncio */
    uint64_t task_put_off; /* ticks a task census was due but put off (TCENSUS_MAX_SHARE) */
    uint64_t task_samples; /* waiting tasks' samples counted (each census's weighted) */
    uint64_t task_ticks;  /* the ticks the task censuses taken count for (their weights) */
    int target_exited;
    int child_status;     /* wait status of the launched command, when reaped */
    int child_reaped;
    int stopped;          /* a stop was requested */
};

/*
 * Runs the loop on s's process (and, with subprocesses, on its descendants
 * that run Python, attached as they are found, with names shared with s).
 * a may be NULL: the hook alone sees the samples.  Returns 0.
 */
int sampler_run(struct session *s, const struct sampler_opts *o, struct agg *a,
                struct sampler_result *r);

/* Human name of a drop reason ("torn stack", ...). */
const char *sampler_drop_name(enum drop_reason d);

#endif
