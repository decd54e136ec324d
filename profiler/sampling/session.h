/*
 * An attached process: its memory, its interpreter, the walker and the
 * symbolizer's caches, and what is known about each of its threads.
 */
#ifndef PYSTROBE_SESSION_H
#define PYSTROBE_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/target/mem.h"
#include "profiler/target/task.h"
#include "profiler/cpython/pyrt.h"
#include "profiler/cpython/walk.h"
#include "symbolizer/codecache.h"
#include "symbolizer/names.h"

/* A thread seen in the target, tracked across samples. */
struct tracked {
    uint64_t tstate, thread_id;
    pid_t tid;        /* 0 when unknown */
    pid_t ns_tid;     /* the same as the target's PID namespace numbers it */
    uint32_t tid_tried; /* the generation of the last look for an unknown tid */
    int tid_soon;     /* the look found not yet where to read it: look again next time */
    int retired;      /* its tid, found late, may be of a thread that took over its thread
                       * state and ident since it was first seen: tracked anew from then on */
    uint64_t first_ns; /* CLOCK_BOOTTIME before the list it was first seen in (0 unknown) */
    struct mem_task *task; /* the thread tid, as the memory source has it; NULL when unknown */
    /* What the kernel said at the last full look, and the thread's schedstat
     * then: a thread not switched in since, and off CPU then, still is. */
    int last_state;   /* state letter, 0 unknown */
    int last_ts;      /* enum thread_state */
    int last_lock;    /* and whether it was blocked on a lock */
    uint64_t last_run_ns, last_switches;
    uint32_t held_gen; /* the sample generation that last held it (native frames), 0 none */
    /* Its stack at its last walk (frame ids, innermost first) while it
     * cannot have changed since: NULL/0 when there is none to trust. */
    uint32_t *stack;
    size_t nstack, stackcap;
    int stack_ok;     /* stack holds a walk's result; stack_status its status (0 or 1) */
    int stack_status;
    int selected;     /* passes the thread filter: 1, 0, or -1 until decided (again, once renamed) */
    int named;        /* the name came from threading */
    int name_tried;   /* threading was asked for its name */
    int want_name;    /* its name is shown or filtered on (else it is not looked up) */
    char *name;       /* owned; NULL when unknown */
    uint32_t seen;    /* the sample generation that last saw it */
    uint32_t agg;     /* its index in the aggregate, UINT32_MAX until used */
};

struct session {
    pid_t pid;
    struct mem *mem;
    struct pyrt rt;
    struct walker *walker;
    struct names *names; /* own_names, or a table shared with other sessions */
    struct names own_names;
    struct codecache *cc;
    struct tracked *threads;
    size_t nthreads, threadcap;
    size_t *pos_hint;  /* per position in the last thread list: its index in threads */
    size_t hintcap;
    uint32_t gen;
    uint64_t list_ns;  /* CLOCK_BOOTTIME before the latest list was read (live processes) */
    int name_all;      /* look up every thread's name, not only the wanted ones */
};

/* Attaches to pid (no stop, no write).  0 or a negative errno with err filled. */
int session_attach(struct session *s, pid_t pid, struct pserr *err);
/* The same, interning names into shared (which must outlive the session). */
int session_attach_shared(struct session *s, pid_t pid, struct names *shared, struct pserr *err);
/*
 * Attaches to a core file (core.h), exe standing for its executable (or NULL),
 * root the file system its process saw (or NULL: core_open_in).  s->pid is
 * then the core's process id, for display only: nothing reads /proc.
 */
int session_attach_core(struct session *s, const char *core, const char *exe, const char *root,
                        struct pserr *err);
void session_release(struct session *s);

/*
 * Finds or starts tracking thread i of the walked list all[0..n): its thread
 * id and task.  Returns its index in s->threads.  New threads are not
 * named yet: see session_name_threads.
 *
 * A tid not found when the thread was first seen (<= 3.10 before the tid's
 * place in struct pthread is known) and found later is that thread's when
 * the task it names started before the thread was first seen (s->list_ns
 * then): that task has had the thread's ident (its struct pthread) all
 * along, so no other thread can have.  Otherwise another thread may have
 * taken over the thread state and the ident in between (both are reused):
 * the entry is retired, with what it holds, and the thread is tracked anew
 * under another index.
 */
size_t session_track(struct session *s, const struct walk_thread *all, size_t n, size_t i);

/*
 * Names tracked threads from the threading module's registry, else from the
 * OS (comm): the threads never tried, or with retry every thread that has no
 * Python name yet; only threads whose name is wanted (want_name, or every
 * one with s->name_all).  Reads nothing when there is no such thread.
 */
void session_name_threads(struct session *s, uint64_t interp, int retry);

/* Stops tracking threads not seen since generation `older_than`. */
void session_forget_threads(struct session *s, uint32_t older_than);

#endif
