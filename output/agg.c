#include "output/agg.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void agg_init(struct agg *a)
{
    memset(a, 0, sizeof(*a));
}

void agg_release(struct agg *a)
{
    for (size_t i = 0; i < a->nthreads; i++)
        free(a->threads[i].name);
    for (size_t i = 0; i < a->nprocs; i++)
        free(a->procs[i].command);
    free(a->procs);
    free(a->threads);
    free(a->stacks);
    free(a->frames);
    htab_release(&a->index);
    memset(a, 0, sizeof(*a));
}

uint32_t agg_thread(struct agg *a, pid_t tid, uint64_t ident)
{
    return agg_thread_in(a, AGG_NO_PROC, tid, ident);
}

uint32_t agg_thread_in(struct agg *a, uint32_t proc, pid_t tid, uint64_t ident)
{
    /* Seen before under another thread state (or forgotten and found again):
     * one thread, one root.  Newest first: that is where a match usually is. */
    for (size_t i = a->nthreads; tid > 0 && i-- > 0;)
        if (a->threads[i].tid == tid && a->threads[i].ident == ident &&
            a->threads[i].proc == proc)
            return (uint32_t)i;
    GROW(a->threads, a->threadcap, a->nthreads + 1);
    a->threads[a->nthreads] = (struct agg_thread){proc, tid, ident, NULL};
    return (uint32_t)a->nthreads++;
}

uint32_t agg_thread_set_tid(struct agg *a, uint32_t thread, pid_t tid)
{
    if (thread >= a->nthreads || tid <= 0 || a->threads[thread].tid != 0)
        return thread;
    const struct agg_thread *t = &a->threads[thread];
    for (size_t i = a->nthreads; i-- > 0;)
        if (a->threads[i].tid == tid && a->threads[i].ident == t->ident &&
            a->threads[i].proc == t->proc)
            return (uint32_t)i;
    a->threads[thread].tid = tid;
    return thread;
}

uint32_t agg_process(struct agg *a, pid_t pid, const char *command)
{
    GROW(a->procs, a->proccap, a->nprocs + 1);
    a->procs[a->nprocs] = (struct agg_proc){pid, command && *command ? xstrdup(command) : NULL};
    return (uint32_t)a->nprocs++;
}

void agg_thread_name(struct agg *a, uint32_t thread, const char *name)
{
    if (thread >= a->nthreads)
        return;
    free(a->threads[thread].name);
    a->threads[thread].name = name ? xstrdup(name) : NULL;
}

struct stack_key {
    uint32_t thread;
    const uint32_t *frames;
    size_t n;
};

static int stack_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct agg *a = ctx;
    const struct stack_key *k = key;
    const struct agg_stack *s = &a->stacks[idx];
    return s->thread == k->thread && s->len == k->n &&
           (k->n == 0 || memcmp(a->frames + s->off, k->frames, k->n * sizeof(uint32_t)) == 0);
}

void agg_add(struct agg *a, uint32_t thread, const uint32_t *frames, size_t n, uint64_t count)
{
    struct stack_key k = {thread, frames, n};
    uint64_t h = hash_bytes(frames, n * sizeof(uint32_t), thread);
    uint32_t idx = htab_find(&a->index, h, stack_eq, a, &k);
    a->total += count;
    if (idx != HTAB_NONE) {
        a->stacks[idx].count += count;
        return;
    }
    GROW(a->frames, a->framecap, a->nframes + n);
    if (n) /* an empty first stack leaves a->frames NULL: no memcpy to it */
        memcpy(a->frames + a->nframes, frames, n * sizeof(uint32_t));
    GROW(a->stacks, a->stackcap, a->nstacks + 1);
    a->stacks[a->nstacks] = (struct agg_stack){thread, (uint32_t)a->nframes, (uint32_t)n, count};
    a->nframes += n;
    htab_insert(&a->index, h, (uint32_t)a->nstacks);
    a->nstacks++;
}
