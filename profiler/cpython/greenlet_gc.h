/*
 * The collector's generation lists of the target, walked for the objects of
 * a type and its subtypes (the greenlets): where the lists are for each
 * Python version, and a walk that is bounded, checked link by link, and
 * tried again while the lists change under it.
 */
#ifndef PYSTROBE_GREENLET_GC_H
#define PYSTROBE_GREENLET_GC_H

#include <stddef.h>
#include <stdint.h>

#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"

/* Objects walked over all generations before the walk gives up. */
#define GREENLET_MAX_OBJECTS (1u << 24)
/* Walks of one generation's list while it changes under them, and the pause before each retry. */
#define GREENLET_LIST_ATTEMPTS 16
#define GREENLET_RETRY_US 500
/*
 * Looks, and the pause between them, while a collection runs: a full one of
 * a large heap that finalizes greenlets can last over 100 ms (eventlet, 120 000 objects).
 */
#define GREENLET_COLLECT_WAITS 400
#define GREENLET_COLLECT_PAUSE_US 1000
/* tp_base links followed to match a subtype. */
#define GREENLET_MAX_BASES 32

/* Where an interpreter's generation lists are. */
struct greenlet_gc_lists {
    uint64_t generations;   /* the first gc_generation (3 of l->gc_generation_size bytes) */
    uint64_t collecting;    /* the int set while a collection runs, 0 when not known */
};

struct pyrt;

/*
 * Where interpreter interp's generation lists are: in it (3.9+), in
 * _PyRuntime (3.7, 3.8), or statics (2.7, 3.6: the symbol `generations`,
 * else the exported `_PyGC_generation0`, then with no collecting flag).
 * 0, or a negative errno: -ENOTSUP a version without a known layout,
 * -ENOENT no symbol.
 */
int greenlet_gc_lists_of(struct pyrt *rt, uint64_t interp, struct greenlet_gc_lists *lists);

/*
 * Walks the generation lists at lists (PyGC_Head of l->gc_head_size) and
 * appends to *objs every object whose type is gtype or a subtype of it.
 * Each list must lead back to its head, every link must be mirrored by the
 * next node's prev, and the walk is bounded by GREENLET_MAX_OBJECTS.  A
 * list is not walked while the interpreter says a collection runs
 * (GREENLET_COLLECT_WAITS looks at most); one
 * that fails is walked again, up to GREENLET_LIST_ATTEMPTS times in all.
 * Returns 0, or a negative errno: -EFAULT an unreadable node, -EAGAIN a
 * list that changed under the walk (a broken link), -ELOOP a list that does
 * not lead back to its head, -EBUSY a collection ran all along.
 */
int greenlet_gc_walk_lists(struct mem *m, const struct pylayout *l,
                           const struct greenlet_gc_lists *lists, uint64_t gtype,
                           uint64_t **objs, size_t *n, struct greenlet_stats *st);

/* The same for the lists inside interpreter interp (3.9+); -ENOTSUP before. */
int greenlet_gc_walk(struct mem *m, const struct pylayout *l, uint64_t interp, uint64_t gtype,
                     uint64_t **objs, size_t *n, struct greenlet_stats *st);

/*
 * greenlet_gc_walk over the young generations alone when young_only is
 * set, with attempts walks of a list at most (instead of
 * GREENLET_LIST_ATTEMPTS).  With fewer it is a quick look: a running
 * collection is not waited for (-EBUSY at once), and each list is walked
 * once from its tail and, if that breaks off, once from its head, keeping
 * what both found: -EAGAIN then says some list was not seen whole (*objs
 * still holds what was found; it may hold an object twice).
 */
int greenlet_gc_walk_gens(struct mem *m, const struct pylayout *l,
                          const struct greenlet_gc_lists *lists, uint64_t gtype, int young_only,
                          int attempts, uint64_t **objs, size_t *n, struct greenlet_stats *st);

/*
 * The young generations (0 and 1: a greenlet that lives a few collections
 * of generation 0 is in 1), and what tells whether they changed: each
 * head's links, threshold and count.  An object tracked since is linked in
 * at the tail, and one freed or collected changes a count, so an unchanged
 * mark nearly always means unchanged lists (not always: a walk of every
 * generation now and then finds what this misses).  0 or a negative errno.
 */
#define GREENLET_YOUNG_GENS 2
#define GREENLET_YOUNG_MARK (GREENLET_YOUNG_GENS * 3)
int greenlet_young_mark(struct mem *m, const struct pylayout *l,
                        const struct greenlet_gc_lists *lists, uint64_t mark[GREENLET_YOUNG_MARK]);

#endif
