/*
 * The greenlet census of record --greenlets: every greenlet of the target
 * and its stack, taken again and again at a sampling rate.  A census does
 * not walk all the collector's lists each time: it keeps the greenlets it
 * knows, checks each one again with a read batched with all the others,
 * reads a parked greenlet's frames again only when its saved state changed,
 * and looks for new greenlets in the two young generations every time and in
 * all of them now and then.
 */
#ifndef PYSTROBE_GCENSUS_H
#define PYSTROBE_GCENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/greenlet_gc.h"

struct session;

/* Time between walks of every generation (new greenlets that got old
 * between two are found at the next), and the share of the time they may
 * take at most: a walk that took longer puts the next one off. */
#define GCENSUS_FULL_WALK_NS 1000000000u
#define GCENSUS_FULL_WALK_SHARE 20
/* Walks of a list that changes under them, per census (a census does not wait long). */
#define GCENSUS_LIST_ATTEMPTS 2
/* Batched reads again of the greenlets that looked running, while more than one did. */
#define GCENSUS_RUNNING_REREADS 3
/* How often a target without greenlet (not imported yet) is looked at again. */
#define GCENSUS_MODULE_RETRY_NS 1000000000u
/* Greenlets known at most. */
#define GCENSUS_MAX GREENLET_MAX

struct gcensus_entry {
    uint64_t obj;
    enum greenlet_state state;
    int main;
    int status;           /* its stack: 0, 1 cut, or a negative errno (the stack is not known) */
    int thread;           /* after gcensus_threads: the snapshot's index of the thread
                           * that runs it (running) or holds its C stack (parked), -1 unknown */
    const uint32_t *ids;  /* a parked greenlet's frames, innermost first */
    size_t depth;
};

struct gcensus_stats {
    uint64_t censuses;      /* censuses taken */
    uint64_t failed;        /* censuses that found no greenlet module or could not walk */
    uint64_t walks_full;    /* walks of every generation */
    uint64_t walks_young;   /* walks of the young generations alone */
    uint64_t walks_skipped; /* of those, not done: the generation had not changed */
    uint64_t walks_failed;  /* walks given up (lists changing, a collection running) */
    uint64_t walk_ns;       /* wall time in the walks */
    uint64_t counted;       /* greenlets counted, over all censuses (parked + running) */
    uint64_t parked, running, not_started, dead;
    uint64_t unreadable;    /* greenlets whose object or stack could not be read in a census */
    uint64_t gone;          /* greenlets known once and no longer there */
    uint64_t rereads;       /* reads again of greenlets that looked running together */
    uint64_t stacks_read;   /* parked stacks read */
    uint64_t stacks_kept;   /* parked stacks taken from the previous census: state unchanged */
    uint64_t most;          /* greenlets known at once, at most */
    uint64_t reads;         /* read system calls */
};

struct gcensus;

struct gcensus *gcensus_new(void);
void gcensus_free(struct gcensus *c);

/*
 * Takes a census of s's greenlets in interpreter interp at time now (ns,
 * monotonic).  Returns 0 (the entries say what was found), -ENOENT when
 * the target has no greenlet module (yet), or another negative errno with
 * err filled: -ENOTSUP a greenlet release or Python that cannot be read
 * (for good), -ESRCH the process is gone, else this census failed.
 */
int gcensus_take(struct gcensus *c, struct session *s, uint64_t interp, int by_function,
                 uint64_t now, struct pserr *err);

/*
 * What a census reads, without a session (unit tests): the memory, the
 * layouts, the greenlet type and interpreter, and how a parked stack's
 * frames (innermost first) become frame ids: 0, or a negative errno when
 * the stack is not right (a frame that is not a code object, a caller not
 * at a call).
 */
struct gcensus_source {
    struct mem *m;
    const struct pylayout *l;
    const struct greenlet_layout *gl;
    uint64_t gtype;
    struct greenlet_gc_lists lists;
    int (*resolve)(void *ctx, const struct rawframe *raw, size_t n, uint32_t *ids);
    void *ctx;
};

/* gcensus_take's census once the greenlet module is known: 0, or a negative errno. */
int gcensus_run(struct gcensus *c, const struct gcensus_source *src, uint64_t now);

struct snapshot;

/*
 * After a census, with the snapshot of the same tick: each greenlet's
 * thread (cached while its saved state does not change).  Greenlets
 * suspended in C code with no Python frame look running too: of those on
 * one thread, the one the thread runs is told apart by its data stack
 * (greenlet_join_threads); the others become parked, with no frames.
 */
void gcensus_threads(struct gcensus *c, struct session *s, const struct snapshot *sn);

/* The greenlets of the last census (parked, running, not started, dead or unreadable). */
size_t gcensus_count(const struct gcensus *c);
const struct gcensus_entry *gcensus_entry(const struct gcensus *c, size_t i);
const struct gcensus_stats *gcensus_stats(const struct gcensus *c);

#endif
