/*
 * The asyncio task census of record --tasks and locks: every task of the
 * target (asyncio.h's asyncio_collect) with its await stack as frame ids,
 * stitched under the stacks of the tasks that await it (a task started by
 * a gather shows under the gather's caller), taken again and again at a
 * sampling rate.  A task that waits on tasks it awaits or gathers is not
 * counted itself: it shows in their stacks, under which its own is.  It also keeps, for each task that something awaits, the
 * stitched stack of its awaiters, so that a thread's sample running that
 * task shows it under them too (tcensus_prefix).
 */
#ifndef PYSTROBE_TCENSUS_H
#define PYSTROBE_TCENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/asyncio.h"

struct session;

/* The most of a CPU task censuses may take (%): a census that took longer
 * puts the next one off, and the next counts for the ticks since. */
#define TCENSUS_MAX_SHARE 10
/* How often a target that has not imported asyncio is looked at again. */
#define TCENSUS_MODULE_RETRY_NS 1000000000u
/* Frames of one stitched stack kept (its awaiters' and its own); the outermost go first. */
#define TCENSUS_MAX_DEPTH 4096
/* Awaiters followed up from a task. */
#define TCENSUS_MAX_AWAITERS 64

struct tcensus_entry {
    enum task_state state;
    const uint32_t *ids;    /* its stitched stack, root first: its awaiters' frames, then its own */
    size_t depth;
    size_t own;             /* of which its own frames (the last own of them) */
};

struct tcensus_stats {
    uint64_t censuses;      /* censuses taken */
    uint64_t failed;        /* censuses that could not read the tasks */
    uint64_t waiting, running, not_started, done;
    uint64_t unreadable;    /* tasks whose await chain could not be read */
    uint64_t stitched;      /* thread samples whose running task was put under its awaiters */
    uint64_t most;          /* tasks in one census, at most */
    uint64_t reads;         /* read system calls */
    uint64_t ns;            /* CPU time in censuses */
};

struct tcensus;

struct tcensus *tcensus_new(void);
void tcensus_free(struct tcensus *c);

/*
 * Takes a census of s's tasks in interpreter interp at time now (ns,
 * monotonic).  0, -ENOENT when asyncio is not imported (or was looked for
 * less than TCENSUS_MODULE_RETRY_NS ago), or another negative errno with
 * err filled: -ENOTSUP tasks cannot be read in this process (for good).
 */
int tcensus_take(struct tcensus *c, struct session *s, uint64_t interp, int by_function,
                 uint64_t now, struct pserr *err);

size_t tcensus_count(const struct tcensus *c);
const struct tcensus_entry *tcensus_entry(const struct tcensus *c, size_t i);
struct tcensus_stats *tcensus_stats(struct tcensus *c);

/*
 * The stitched stack of the awaiters of the task whose coroutine's frame is
 * frame (root first), as of the last census: NULL when no task of that
 * frame is awaited.
 */
const uint32_t *tcensus_prefix(const struct tcensus *c, uint64_t frame, size_t *len);

#endif
