#include "profiler/sampling/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/pyobj.h"

int session_attach(struct session *s, pid_t pid, struct pserr *err)
{
    return session_attach_shared(s, pid, NULL, err);
}

/* Attaches to the process behind mem (taking it over). */
static int attach_mem(struct session *s, struct mem *mem, pid_t pid, struct names *shared,
                      struct pserr *err)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->mem = mem;
    int ret = pyrt_attach(&s->rt, s->mem, pid, err);
    if (ret < 0) {
        mem_free(s->mem);
        s->mem = NULL;
        return ret;
    }
    if (shared) {
        s->names = shared;
    } else {
        names_init(&s->own_names);
        s->names = &s->own_names;
    }
    s->walker = walker_new(&s->rt);
    struct code_facts cf;
    layout_code_facts(&s->rt.layout, &cf);
    s->cc = codecache_new(s->mem, &cf, s->names, s->rt.code_type, s->rt.unicode27_width);
    walk_set_returned(s->walker, codecache_code_at_return, s->cc);
    return 0;
}

int session_attach_shared(struct session *s, pid_t pid, struct names *shared, struct pserr *err)
{
    return attach_mem(s, mem_new_pid(pid), pid, shared, err);
}

int session_attach_core(struct session *s, const char *core, const char *exe, const char *root,
                        struct pserr *err)
{
    struct mem *mem;
    int ret = mem_open_core_in(core, exe, root, &mem, err);
    if (ret < 0) {
        memset(s, 0, sizeof(*s));
        return ret;
    }
    return attach_mem(s, mem, mem_pid(mem), NULL, err);
}

static void untrack(struct tracked *t)
{
    mem_task_close(t->task);
    free(t->stack);
    free(t->name);
}

void session_release(struct session *s)
{
    for (size_t i = 0; i < s->nthreads; i++)
        untrack(&s->threads[i]);
    free(s->threads);
    free(s->pos_hint);
    codecache_free(s->cc);
    walker_free(s->walker);
    if (s->mem) {
        if (s->names == &s->own_names)
            names_release(&s->own_names);
        pyrt_release(&s->rt);
    }
    mem_free(s->mem);
    memset(s, 0, sizeof(*s));
}

/* Ticks between looks for a tracked thread's unknown tid. */
#define TID_RETRY 64

/* Looks up the tid of tracked thread t, thread i of the list. */
static void find_tid(struct session *s, struct tracked *t, const struct walk_thread *all, size_t n,
                     size_t i)
{
    pid_t tid, ns_tid;
    t->tid_tried = s->gen;
    int ret = walk_thread_tid(s->walker, all, n, i, &tid, &ns_tid);
    /* <= 3.10 before the tid's place in struct pthread is found: the walker
     * searches again soon, and says when (it costs nothing meanwhile). */
    t->tid_soon = ret == -EAGAIN;
    if (ret < 0)
        return;
    /* A tid that is not one of the process's threads came from garbage, or
     * from a thread that has just exited: either way ns_tid is kept only to
     * tell this thread from the next one in its place. */
    t->ns_tid = ns_tid;
    if ((t->task = mem_task_open(s->mem, tid)))
        t->tid = tid;
}

/* 1 when tracked thread t is thread w of the list. */
static int same_thread(const struct tracked *t, const struct walk_thread *w)
{
    if (t->tstate != w->tstate || t->thread_id != w->thread_id || t->retired)
        return 0;
    /* Same thread state and ident, but a new thread behind them: its
     * Linux id tells (from the thread state on 3.11+, else from glibc's
     * struct pthread, read with the list). */
    return !(w->native_tid > 0 && t->ns_tid > 0 && w->native_tid != t->ns_tid);
}

/* A new entry for thread w of the list, first seen in this list; no tid yet. */
static size_t track_new(struct session *s, const struct walk_thread *w)
{
    GROW(s->threads, s->threadcap, s->nthreads + 1);
    struct tracked *t = &s->threads[s->nthreads++];
    memset(t, 0, sizeof(*t));
    t->tstate = w->tstate;
    t->thread_id = w->thread_id;
    t->selected = -1;
    t->seen = s->gen;
    t->agg = UINT32_MAX;
    t->first_ns = s->list_ns;
    return s->nthreads - 1;
}

/* Looks again for the unknown tid of tracked thread k, thread i of the list
 * (session_track says when the entry is retired).  The index to use. */
static size_t find_tid_late(struct session *s, size_t k, const struct walk_thread *all, size_t n,
                            size_t i)
{
    struct tracked *t = &s->threads[k];
    find_tid(s, t, all, n, i);
    if (t->tid == 0 || mem_task_started_before(t->task, t->first_ns))
        return k;
    pid_t tid = t->tid, ns_tid = t->ns_tid;
    struct mem_task *task = t->task;
    t->tid = 0;
    t->task = NULL;
    t->retired = 1;
    size_t j = track_new(s, &all[i]);
    t = &s->threads[j];
    t->tid = tid;
    t->ns_tid = ns_tid;
    t->task = task;
    t->tid_tried = s->gen;
    return j;
}

size_t session_track(struct session *s, const struct walk_thread *all, size_t n, size_t i)
{
    const struct walk_thread *w = &all[i];
    if (i >= s->hintcap) {
        size_t old = s->hintcap;
        GROW(s->pos_hint, s->hintcap, i + 1);
        for (size_t k = old; k < s->hintcap; k++)
            s->pos_hint[k] = SIZE_MAX;
    }
    /* The list keeps its order from tick to tick: the thread found at this
     * position last time is tried first, and the search is for newcomers. */
    size_t hint = s->pos_hint[i];
    for (size_t j = 0; j <= s->nthreads; j++) {
        size_t k = j == 0 ? hint : j - 1;
        if (k >= s->nthreads || (j > 0 && k == hint))
            continue;
        struct tracked *t = &s->threads[k];
        if (!same_thread(t, w))
            continue;
        if (t->tstate != w->tstate || t->thread_id != w->thread_id)
            continue;
        t->seen = s->gen;
        s->pos_hint[i] = k;
        /* A tid not found at first is looked up again: without it, the
         * thread's state is unknown and an on-CPU recording never samples it.
         * With each list while where to read it is not known yet, else now
         * and then (a thread that had exited, or garbage). */
        if (t->tid == 0 && (t->tid_soon || s->gen - t->tid_tried >= TID_RETRY))
            s->pos_hint[i] = k = find_tid_late(s, k, all, n, i);
        return k;
    }
    size_t k = track_new(s, w);
    find_tid(s, &s->threads[k], all, n, i);
    s->pos_hint[i] = k;
    return k;
}

/*
 * 1 when the struct pthread at t's ident now belongs to another thread (or
 * none): threading's registry, read after the thread list, may then show the
 * new thread under that ident.  Without a tid in the Thread object (before
 * 3.8) this is how a gone thread is kept from taking a newcomer's name.
 */
static int ident_moved(struct session *s, const struct tracked *t)
{
    pid_t now;
    if (t->ns_tid <= 0 || walk_pthread_tid(s->walker, t->thread_id, &now) < 0)
        return 0;
    return now != t->ns_tid;
}

/* 1 when tracked thread t is to be named now. */
static int to_name(const struct session *s, const struct tracked *t, int retry)
{
    return !t->named && t->seen == s->gen && (s->name_all || t->want_name) &&
           (retry || !t->name_tried);
}

void session_name_threads(struct session *s, uint64_t interp, int retry)
{
    struct pythread_name *names = NULL;
    size_t nn = 0, nwant = 0;
    /* Only threads in the latest list: threading may know a gone thread's
     * ident as another thread's by now. */
    for (size_t k = 0; k < s->nthreads; k++)
        nwant += to_name(s, &s->threads[k], retry);
    if (!nwant || !interp)
        return;
    /* Only their entries of the registry are read: a process of many
     * threads costs one thread's reads per newcomer, not all of them. */
    uint64_t *idents = xmalloc(nwant * sizeof(*idents));
    size_t j = 0;
    for (size_t k = 0; k < s->nthreads; k++)
        if (to_name(s, &s->threads[k], retry))
            idents[j++] = s->threads[k].thread_id;
    pythread_names(&s->rt, interp, idents, nwant, &names, &nn);
    free(idents);
    for (size_t k = 0; k < s->nthreads; k++) {
        struct tracked *t = &s->threads[k];
        if (!to_name(s, t, retry))
            continue;
        t->name_tried = 1;
        for (size_t i = 0; i < nn && !t->named; i++) {
            /* 3.8+: a Thread whose Linux id is not this thread's (or of a
             * thread whose id is unknown) may be another thread that has
             * the ident now. */
            if (names[i].ident == t->thread_id &&
                (names[i].native_id == 0 || names[i].native_id == t->ns_tid) &&
                (names[i].native_id > 0 || !ident_moved(s, t))) {
                free(t->name);
                t->name = xstrdup(names[i].name);
                t->named = 1;
                t->selected = -1;
            }
        }
        /* Not (yet) a threading.Thread: its OS name, which may change too. */
        char comm[64];
        if (!t->named && t->task && mem_task_comm(t->task, comm, sizeof(comm)) == 0) {
            free(t->name);
            t->name = xstrdup(comm);
            t->selected = -1;
        }
    }
    pythread_names_free(names, nn);
}

void session_forget_threads(struct session *s, uint32_t older_than)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nthreads; i++) {
        struct tracked *t = &s->threads[i];
        if ((int32_t)(t->seen - older_than) < 0)
            untrack(t);
        else
            s->threads[k++] = *t;
    }
    s->nthreads = k;
}
