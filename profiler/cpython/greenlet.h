/*
 * Greenlets (gevent, eventlet) seen from outside: every greenlet object of
 * the target, found by walking the collector's generation lists, its state,
 * and a parked greenlet's Python stack from the frames it saved when it
 * switched away.  No registry of greenlets exists in the target, so the
 * list walk is the only complete view; it races the target's allocations,
 * and is bounded and checked link by link.
 */
#ifndef PYSTROBE_GREENLET_H
#define PYSTROBE_GREENLET_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"
#include "profiler/cpython/walk.h"

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
/* Greenlets kept; more are counted but not read. */
#define GREENLET_MAX 100000
/* tp_base links followed to match a subtype. */
#define GREENLET_MAX_BASES 32
/* Frames read of one greenlet's stack. */
#define GREENLET_MAX_DEPTH 1024

/*
 * Offsets in the C++ greenlet implementation (the PyGreenlet's pimpl), for
 * the greenlet releases built for Python major.minor: they depend on both
 * (PythonState saves different members per Python version).
 */
struct greenlet_layout {
    const char *releases;           /* "2.0.0 2.0.1 2.0.2": each one measured */
    int major, minor;               /* the Python version */
    int pimpl;                      /* in the PyGreenlet */
    int self;                       /* Greenlet::_self, back to the PyGreenlet */
    int stack_start, stack_stop, stack_copy, stack_saved;
    int top_frame;                  /* PythonState, saved at switch-away: a PyFrameObject */
    int current_frame;              /* 3.11+: the _PyInterpreterFrame, else -1 */
    int datastack_chunk, datastack_top; /* 3.11+, else -1 */
    int prev_frame;                 /* 3.0.0-3.0.2 on 3.12: the top frame's cut link, else -1 */
    int size;                       /* bytes to read to cover them all */
};

/*
 * The table for greenlet `version` ("2.0.2") built for Python major.minor,
 * or NULL when not known.
 */
const struct greenlet_layout *greenlet_layout_for(const char *version, int major, int minor);

/*
 * "2.0.0-3.1.0, 3.1.1-3.3.2": the first and last release of each row for
 * Python major.minor, or "none", for messages.
 */
void greenlet_layout_known(int major, int minor, char *buf, size_t size);

enum greenlet_state {
    GL_PARKED,       /* switched away: its frames are saved */
    GL_RUNNING,      /* the current greenlet of its thread: its frames are the thread's */
    GL_NOT_STARTED,
    GL_DEAD,
    GL_UNREADABLE,   /* the object or its implementation could not be read or made no sense */
};

/* "parked", "running", "not started", "dead", "unreadable" */
const char *greenlet_state_name(enum greenlet_state st);

struct greenlet {
    uint64_t obj, type, pimpl;
    enum greenlet_state state;
    int main;               /* the thread's main greenlet */
    int status;             /* stack: 0, 1 cut at GREENLET_MAX_DEPTH, or a negative errno */
    size_t off, depth;      /* its frames: raw[off .. off+depth), innermost first */
    uint64_t current_frame, chunk, chunk_top;
    uint64_t stack_start, stack_copy, stack_saved;
    uint64_t stack_stop;    /* the far end of its C stack; UINT64_MAX for main */
    uint64_t top_frame;     /* the PyFrameObject it saved (<= 3.10: its stack) */
    uint64_t prev_frame;    /* greenlet 3.0.0-3.0.2 on 3.12: where current_frame went on */
    int thread;             /* running: 1 + the index of the thread that runs it (see
                             * greenlet_join_threads), 0 when not known */
    pid_t tid;              /* that thread's id, 0 when not known */
};

struct greenlet_stats {
    uint64_t objects;       /* GC-tracked objects walked */
    uint64_t types;         /* distinct types checked for being a greenlet type */
    uint64_t found;         /* greenlet objects found (also those past GREENLET_MAX) */
    uint64_t retries;       /* lists walked again after they changed under the walk */
    uint64_t collecting;    /* walks put off because a collection was running */
    uint64_t repairs;       /* links read again where pages read at different times disagreed */
    uint64_t reads;         /* read system calls made */
};

struct greenlet_set {
    struct greenlet *v;
    size_t n, cap;
    struct rawframe *raw;
    size_t nraw, rawcap;
    struct greenlet_stats stats;
    /* The walker of the parked stacks (walk_parked), owned, made on first
     * use over the memory and layout it was made for. */
    struct walker *walker;
    struct mem *walker_mem;
    const struct pylayout *walker_layout;
};

void greenlet_set_release(struct greenlet_set *gs);

/* Where an interpreter's generation lists are. */
struct greenlet_gc_lists {
    uint64_t generations;   /* the first gc_generation (3 of l->gc_generation_size bytes) */
    uint64_t collecting;    /* the int set while a collection runs, 0 when not known */
};

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

/*
 * The pieces of greenlet_read: a greenlet's state from its implementation's
 * gl->size bytes at impl (obj and pimpl already set, status untouched), and
 * a parked greenlet's frames appended to gs->raw (g->off, g->depth): 0, 1
 * cut, or a negative errno.
 */
void greenlet_parse(const struct greenlet_layout *gl, const unsigned char *impl,
                    struct greenlet *g);
int greenlet_parked_stack(struct mem *m, const struct pylayout *l, struct greenlet_set *gs,
                          struct greenlet *g);

/*
 * Reads the greenlets objs[0..n) (in batches) into gs: the state of each
 * and the stack of each parked one.  A greenlet that cannot be read is kept
 * as GL_UNREADABLE.  Returns 0, or -ESRCH when the process is gone.
 */
int greenlet_read(struct mem *m, const struct pylayout *l, const struct greenlet_layout *gl,
                  const uint64_t *objs, size_t n, struct greenlet_set *gs);

/* Bytes of a type name kept, its ending NUL included. */
#define GREENLET_TYPE_NAME_MAX 64

/*
 * The tp_name of type (a greenlet's ob_type) into out: printable ASCII ended
 * within GREENLET_TYPE_NAME_MAX bytes, else "" (unreadable or not a name).
 */
void greenlet_type_name(struct mem *m, const struct pylayout *l, uint64_t type,
                        char out[GREENLET_TYPE_NAME_MAX]);

struct pyrt;

/*
 * Finds the greenlet module in rt's target (its memory, maps and pid): the
 * address of PyGreenlet_Type (from its .so's .dynsym) and the greenlet
 * release: from the package's metadata beside it (greenlet-X.Y.Z.*-info),
 * else from `__version__` in the dict of the target's `greenlet` module (a
 * package built by hand has no metadata).  0, or a negative errno with err filled: -ENOENT greenlet
 * not loaded, -ENOTSUP a release whose layout is not known.
 */
int greenlet_find_module(struct pyrt *rt, uint64_t *gtype,
                         const struct greenlet_layout **gl, struct pserr *err);

/*
 * Where interpreter interp's generation lists are: in it (3.9+), in
 * _PyRuntime (3.7, 3.8), or statics (2.7, 3.6: the symbol `generations`,
 * else the exported `_PyGC_generation0`, then with no collecting flag).
 * 0, or a negative errno: -ENOTSUP a version without a known layout,
 * -ENOENT no symbol.
 */
int greenlet_gc_lists_of(struct pyrt *rt, uint64_t interp, struct greenlet_gc_lists *lists);

/*
 * All greenlets of interpreter interp, with their states and stacks.
 * Tries the list walk again a few times when it changed under it.
 * 0, or a negative errno with err filled.
 */
int greenlet_collect(struct pyrt *rt, uint64_t interp, struct greenlet_set *gs,
                     struct pserr *err);

#endif
