/*
 * Greenlets (gevent, eventlet) seen from outside: every greenlet object of
 * the target, found by walking the collector's generation lists
 * (greenlet_gc.h, from greenlet_find.h's greenlet_collect), its state, and
 * a parked greenlet's Python stack from the frames it saved when it
 * switched away.  No registry of greenlets exists in the target, so the
 * list walk is the only complete view; it races the target's allocations,
 * and is bounded and checked link by link.
 */
#ifndef PYSTROBE_GREENLET_H
#define PYSTROBE_GREENLET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/cpython/greenlet_layout.h"
#include "profiler/cpython/layout.h"
#include "profiler/cpython/walk.h"
#include "profiler/target/mem.h"

/* Greenlets kept; more are counted but not read. */
#define GREENLET_MAX 100000
/* Frames read of one greenlet's stack. */
#define GREENLET_MAX_DEPTH 1024

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

#endif
