/*
 * asyncio tasks seen from outside: every task of the target's event loops,
 * found through asyncio's own registry of tasks (3.7-3.13: the weak set
 * `_all_tasks`, or `_scheduled_tasks` and the set `_eager_tasks`, of the
 * module asyncio.tasks; 3.14+: the list of tasks each thread state heads,
 * and the interpreter's for tasks of threads that ended), each task read
 * from the C _asyncio module's objects, and its await chain followed
 * coroutine by coroutine (cr_await, read from the value stack of each
 * suspended coroutine's frame) to the future it waits on.  Who awaits a
 * task is told by what it was made for: the task waiting on it (its
 * fut_waiter), a gather's future that lists it among its children, a
 * TaskGroup's parent task.  Everything read is bounded and checked: a
 * task that makes no sense is kept as unreadable.
 */
#ifndef PYSTROBE_ASYNCIO_H
#define PYSTROBE_ASYNCIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/walk.h"

/*
 * Where the C _asyncio module, coroutines and their frames keep what is
 * read, per Python minor version, measured by tools/probe-asyncio.py in
 * each interpreter (the asyncio-layout check compares).  -1: not there.
 */
struct asyncio_layout {
    int major, minor;
    int future_size, task_size;     /* bytes of a FutureObj and a TaskObj */
    int fut_loop, fut_callback0, fut_callbacks, fut_result, fut_state;
    int task_fut_waiter, task_coro, task_name;
    int task_node;                  /* 3.14+: the task's node in its thread's list */
    int futureiter_future;          /* _asyncio.FutureIter: the future it iterates */
    int wakeup_task;                /* the task in its wake-up callback (wakeup_type) */
    const char *wakeup_type;        /* that callback's type name */
    int gen_frame;                  /* <= 3.10: the coroutine's frame object */
    int gen_iframe, gen_frame_state; /* 3.11+: its frame, inside it, and its state (int8) */
    int gen_state_created, gen_state_awaiting, gen_state_running;
    int fo_stacktop;                /* 3.7-3.9: PyFrameObject.f_stacktop (NULL: running) */
    int fo_valuestack;              /* the value stack's bottom */
    int fo_stackdepth, fo_state;    /* 3.10 */
    int if_localsplus;              /* 3.11+: _PyInterpreterFrame.localsplus */
    int if_stacktop;                /* 3.11-3.13: slots in use above localsplus (int) */
    int if_stackpointer;            /* 3.14+: pointer past the top slot */
    int yf_below;                   /* the awaited object: the top slot (1) or the one below (2) */
    int ts_running_task, ts_tasks_head; /* 3.14+: in _PyThreadStateImpl */
    int is_tasks_head;              /* 3.14+: in PyInterpreterState (tasks of ended threads) */
};

/* The layout for Python major.minor (a newer 3.x than known: the newest), or NULL. */
const struct asyncio_layout *asyncio_layout_for(int major, int minor);

/* Tasks kept; more are counted but not read. */
#define ASYNCIO_MAX_TASKS 100000
/* Coroutines followed down one task's await chain. */
#define ASYNCIO_MAX_AWAIT 256
/* Frames kept of a running task's stack (from its thread's). */
#define ASYNCIO_MAX_DEPTH 1024

enum task_state {
    TASK_PENDING,       /* waiting (suspended) */
    TASK_RUNNING,       /* its coroutine runs: its frames are on a thread's stack */
    TASK_NOT_STARTED,   /* pending, its coroutine not yet started */
    TASK_DONE,
    TASK_CANCELLED,
    TASK_UNREADABLE,
};

/* "pending", "running", "not started", "done", "cancelled", "unreadable" */
const char *task_state_name(enum task_state st);

struct atask {
    uint64_t obj, type;
    enum task_state state;
    uint64_t coro, name_obj, loop, fut_waiter;
    uint64_t callback0, callbacks; /* its done callbacks: the first, and the list of the others */
    uint64_t coro_frame;    /* its coroutine's frame, 0 not known (not started, unreadable) */
    int status;             /* its await chain: 0, 1 cut, or a negative errno */
    size_t off, depth;      /* its coroutines' frames: raw[off .. off+depth), innermost first */
    uint64_t run_frame;     /* running: its coroutine's frame (the thread's stack holds it) */
    uint64_t awaited;       /* the object its innermost coroutine awaits (a future, a task,
                             * another awaitable), 0 none or not known */
    uint64_t awaited_type;
    uint64_t self0;         /* the innermost coroutine frame's first local (a method's self) */
    uint64_t self1;         /* the same of the frame that awaits it (the innermost but one) */
    size_t parent;          /* the task that awaits it (index), SIZE_MAX none known */
    const char *parent_how; /* "await", "gather", "TaskGroup" */
    int awaits_tasks;       /* it waits on tasks of the set: one it awaits, or a gather's */
    int thread;             /* running: 1 + the snapshot's thread index, 0 unknown (set later) */
};

struct asyncio_stats {
    uint64_t found;         /* task objects found in the registry (also those past the max) */
    uint64_t unreadable;    /* of those read, unreadable or not tasks */
    uint64_t coroutines;    /* coroutine frames read */
    uint64_t reads;         /* read system calls */
    uint64_t cut;           /* await chains cut at ASYNCIO_MAX_AWAIT */
    uint64_t retried;       /* tasks read again: their chain was torn or unreadable */
    uint64_t gone;          /* of the unreadable, tasks freed since the registry was read */
    uint64_t list_retries;  /* 3.14+: lists of tasks walked again: they changed under the walk */
};

struct task_set {
    struct atask *v;
    size_t n, cap;
    struct rawframe *raw;
    uint64_t *frame_at;     /* parallel to raw: each frame's address */
    size_t nraw, rawcap;
    struct asyncio_stats stats;
    uint64_t task_type, future_type;
    const char *registry;   /* where the tasks were found, for messages */
};

void task_set_release(struct task_set *ts);

struct pyrt;
struct pserr;

/*
 * Every task of interpreter interp with its state, await chain and awaiter.
 * 0, or a negative errno with err filled: -ENOENT asyncio not imported,
 * -ENOTSUP a Python or build whose tasks are not known, -ESRCH gone.
 */
int asyncio_collect(struct pyrt *rt, uint64_t interp, struct task_set *ts, struct pserr *err);

/*
 * What asyncio_collect_cached keeps from one collection to the next: the
 * C module's types, where asyncio.tasks keeps its sets of tasks (used
 * while the set found there is still a set), what each type met is; all
 * looked up anew every ASYNCIO_CACHE_NS.
 */
#define ASYNCIO_CACHE_NS 1000000000u
struct asyncio_cache;
struct asyncio_cache *asyncio_cache_new(void);
void asyncio_cache_free(struct asyncio_cache *cache);

/* asyncio_collect through cache, at time now (ns, monotonic). */
int asyncio_collect_cached(struct pyrt *rt, uint64_t interp, struct asyncio_cache *cache,
                           uint64_t now, struct task_set *ts, struct pserr *err);

/* The type name of obj's type into out (printable ASCII, "" when unreadable). */
void asyncio_type_name(struct pyrt *rt, uint64_t obj, char *out, size_t size);

#endif
