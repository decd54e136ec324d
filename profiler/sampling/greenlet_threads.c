/* Which thread runs a greenlet, or holds its C stack: see greenlet_threads.h. */
#include "profiler/sampling/greenlet_threads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"

static const struct mem_region *region_of(const struct mem_maps *maps, uint64_t addr)
{
    for (size_t i = 0; i < maps->n; i++)
        if (addr >= maps->v[i].start && addr < maps->v[i].end)
            return &maps->v[i];
    return NULL;
}

int greenlet_thread_of(const struct mem_maps *maps, pid_t pid, const struct walk_thread *threads,
                       size_t n, uint64_t addr)
{
    const struct mem_region *r = region_of(maps, addr);
    int found = -1;
    if (!r || !(r->perms & MEM_W))
        return -1;
    int main_stack = !strcmp(r->path, "[stack]");
    /* Thread stacks are anonymous: a file, the heap or vdso pages are not one. */
    if (!main_stack && r->path[0])
        return -1;
    for (size_t k = 0; k < n; k++) {
        const struct walk_thread *t = &threads[k];
        int holds = main_stack ? pid > 0 && t->native_tid == pid
                               : t->thread_id >= r->start && t->thread_id < r->end;
        if (!holds)
            continue;
        if (found >= 0)
            return -1;
        found = (int)k;
    }
    return found;
}

/*
 * The thread that runs g: index in sn, or -1.  Both ends of its range must
 * lie in that thread's stack.  Its start is 1 while it has not switched
 * away since it started (greenlet marks it active so): then its end alone
 * says; a main greenlet's range has no end (-1).
 */
static int running_thread(const struct mem_maps *maps, pid_t pid, const struct walk_thread *wt,
                          size_t n, const struct greenlet *g)
{
    int k = -1;
    if (g->stack_start > 1)
        k = greenlet_thread_of(maps, pid, wt, n, g->stack_start);
    if (g->main || (g->stack_start > 1 && k < 0))
        return k;
    if (g->stack_stop <= g->stack_start)
        return -1;
    int end = greenlet_thread_of(maps, pid, wt, n, g->stack_stop - 1);
    return g->stack_start > 1 && end != k ? -1 : end;
}

/*
 * The snapshot's threads, each with its Linux id: <= 3.10 thread states do
 * not hold it, and the walker finds it only once it knows where glibc keeps
 * it; the session's tracking may know it already.
 */
static struct walk_thread *threads_with_tids(const struct session *s, const struct snapshot *sn)
{
    struct walk_thread *wt = xmalloc((sn->nthreads ? sn->nthreads : 1) * sizeof(*wt));
    for (size_t k = 0; k < sn->nthreads; k++) {
        wt[k] = sn->threads[k];
        if (!wt[k].native_tid)
            wt[k].native_tid = s->threads[sn->st[k].tracked].tid;
    }
    return wt;
}

/* The main thread's id as the target numbers it (thread states say it so in a PID namespace). */
static pid_t tid_of_main(const struct session *s, const struct snapshot *sn)
{
    for (size_t k = 0; k < sn->nthreads; k++)
        if (s->threads[sn->st[k].tracked].tid == s->pid && sn->threads[k].native_tid > 0)
            return sn->threads[k].native_tid;
    return s->pid;
}

/* Data-stack chunks followed back from a thread's newest to find a greenlet's. */
#define THREAD_CHUNK_LINKS 8

/* 1 when chunk is thread t's data-stack chunk, or one its newest grew from. */
static int in_thread_chunks(struct mem *m, const struct pylayout *l, const struct walk_thread *t,
                            uint64_t chunk)
{
    uint64_t c = t->chunk;
    for (int k = 0; k < THREAD_CHUNK_LINKS && c && !(c & 7); k++) {
        if (c == chunk)
            return 1;
        if (mem_read_u64(m, c + (uint64_t)l->chunk_previous, &c) < 0)
            return 0;
    }
    return 0;
}

/*
 * Of the greenlets cand[0..n) that look running in thread t (started, no
 * saved top frame), the one that is: a greenlet suspended in C code with no
 * Python frame looks the same.  The running one resumed its saved data
 * stack, so the thread's data stack is (or grew from) the chunk it saved;
 * one never switched away saved none.  Its index in cand, or -1; *stale set
 * when the thread ran on another greenlet's data stack when it was walked
 * (it switched since): its frames are not this greenlet's.
 */
static int current_of(struct mem *m, const struct pylayout *l, const struct walk_thread *t,
                      struct greenlet *const *cand, size_t n, int *stale)
{
    int resumed = -1, fresh = -1, nresumed = 0, nfresh = 0;
    *stale = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cand[i]->chunk) {
            fresh = (int)i;
            nfresh++;
        } else if (in_thread_chunks(m, l, t, cand[i]->chunk)) {
            resumed = (int)i;
            nresumed++;
        }
    }
    if (nresumed == 1)
        return resumed;
    if (nresumed == 0 && nfresh == 1)
        return fresh;
    if (n != 1)
        return -1;
    *stale = t->chunk != 0;
    return 0;
}

/* g runs in thread k of sn: its thread's id and Python frames (unless stale). */
static void take_thread(struct session *s, const struct snapshot *sn, size_t k, int stale,
                        struct greenlet_set *gs, struct greenlet *g)
{
    const struct snap_thread *t = &sn->st[k];
    g->thread = (int)k + 1;
    g->tid = s->threads[t->tracked].tid;
    if (!g->tid)
        g->tid = sn->threads[k].native_tid;
    g->status = stale ? -EAGAIN : t->status < 0 ? t->status : 0;
    if (stale || t->excluded || !t->walked || t->status < 0)
        return;
    /* The thread's Python frames (with native ones merged in, they stay at py_off). */
    size_t off = t->native ? t->py_off : t->off, depth = t->native ? t->py_depth : t->depth;
    if (off > sn->nraw || depth > sn->nraw - off)
        return;
    GROW(gs->raw, gs->rawcap, gs->nraw + depth);
    if (depth)  /* (gs->raw may still be NULL) */
        memcpy(gs->raw + gs->nraw, sn->raw + off, depth * sizeof(*gs->raw));
    g->off = gs->nraw;
    g->depth = depth;
    g->status = t->status;
    gs->nraw += depth;
}

int greenlet_owner(struct session *s, const struct snapshot *sn, const struct greenlet *g)
{
    struct walk_thread *wt = threads_with_tids(s, sn);
    int k = running_thread(mem_maps(s->mem), tid_of_main(s, sn), wt, sn->nthreads, g);
    free(wt);
    return k;
}

void greenlet_join_threads(struct session *s, const struct snapshot *sn, struct greenlet_set *gs)
{
    const struct mem_maps *maps = mem_maps(s->mem);
    pid_t pid = tid_of_main(s, sn);
    int *at = xmalloc((gs->n ? gs->n : 1) * sizeof(*at));
    struct greenlet **cand = xmalloc((gs->n ? gs->n : 1) * sizeof(*cand));
    struct walk_thread *wt = threads_with_tids(s, sn);
    for (size_t i = 0; i < gs->n; i++)
        at[i] = gs->v[i].state == GL_RUNNING ? running_thread(maps, pid, wt, sn->nthreads,
                                                              &gs->v[i]) : -1;
    free(wt);
    for (size_t k = 0; k < sn->nthreads; k++) {
        size_t n = 0;
        for (size_t i = 0; i < gs->n; i++)
            if (at[i] == (int)k)
                cand[n++] = &gs->v[i];
        if (n == 0)
            continue;
        int stale;
        int c = current_of(s->mem, &s->rt.layout, &sn->threads[k], cand, n, &stale);
        if (c < 0)
            continue;
        take_thread(s, sn, k, stale, gs, cand[c]);
        /* The others were suspended in C code, with no Python frame to save. */
        for (size_t i = 0; i < n; i++)
            if (i != (size_t)c)
                cand[i]->state = GL_PARKED;
    }
    free(at);
    free(cand);
}
