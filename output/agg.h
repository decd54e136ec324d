/*
 * Aggregated samples: each distinct (thread, stack) with its count.  Stacks
 * are frame ids (symbolizer/names.h), root first.  Threads are registered
 * once and may be named at any time before writing.
 */
#ifndef PYSTROBE_AGG_H
#define PYSTROBE_AGG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/htab.h"

/* A process, when samples come from several (a process tree). */
struct agg_proc {
    pid_t pid;
    char *command;    /* its command line as given, owned; NULL when none (label_process) */
};

struct agg_thread {
    uint32_t proc;    /* index into procs, AGG_NO_PROC when there are none */
    pid_t tid;        /* 0 when unknown */
    uint64_t ident;   /* threading's ident (pthread_t) */
    char *name;       /* UTF-8, owned; NULL until named */
};

struct agg_stack {
    uint32_t thread;  /* index into threads */
    uint32_t off;     /* first frame id in frames[] */
    uint32_t len;
    uint64_t count;
};

#define AGG_NO_PROC UINT32_MAX

struct agg {
    struct agg_proc *procs;
    size_t nprocs, proccap;
    struct agg_thread *threads;
    size_t nthreads, threadcap;
    struct agg_stack *stacks;
    size_t nstacks, stackcap;
    uint32_t *frames;
    size_t nframes, framecap;
    struct htab index;
    uint64_t total;   /* sum of all counts */
};

void agg_init(struct agg *a);
void agg_release(struct agg *a);

/* Registers a thread and returns its index: the index it already has when
 * a thread of the same tid (> 0) and ident is registered. */
uint32_t agg_thread(struct agg *a, pid_t tid, uint64_t ident);
/* The same for a thread of process proc (an agg_process index). */
uint32_t agg_thread_in(struct agg *a, uint32_t proc, pid_t tid, uint64_t ident);
/*
 * Gives thread (registered with tid 0) its tid, found since, for the samples
 * it has and those to come: only for a thread that is known to have been
 * that tid's all along.  Returns thread, or the index of a thread of the same
 * process already registered with that tid and ident (one thread, one
 * root: the samples to come go there, those before stay where they are).
 */
uint32_t agg_thread_set_tid(struct agg *a, uint32_t thread, pid_t tid);
/* Registers a process (each call a new one) and returns its index; command may be NULL. */
uint32_t agg_process(struct agg *a, pid_t pid, const char *command);
/* Sets (or replaces) a thread's name. */
void agg_thread_name(struct agg *a, uint32_t thread, const char *name);

/* Adds count samples of the stack frames[0..n) (root first) in thread. */
void agg_add(struct agg *a, uint32_t thread, const uint32_t *frames, size_t n, uint64_t count);

#endif
