/*
 * Inside the memory source: what mem.c (memory and mappings) and task.c
 * (threads) share.  Not for other modules.
 */
#ifndef PYSTROBE_MEM_IMPL_H
#define PYSTROBE_MEM_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/util.h"
#include "profiler/target/mem.h"

struct buf_seg {
    uint64_t addr;
    size_t len;
    unsigned char *data;
};

struct mem {
    pid_t pid;              /* > 0 for a live process */
    struct core *core;      /* a core file (pid is then 0) */
    struct pserr core_err;  /* why the last mem_open_mapped of a core failed */
    struct buf_seg *segs;   /* buffer backend */
    size_t nsegs, segcap;
    struct mem_maps maps;
    int maps_read;
    uint64_t calls;
    void (*on_read)(void *ctx, struct mem *m, uint64_t calls); /* buffer backend */
    void *on_read_ctx;
    void (*on_piece)(void *ctx, struct mem *m, size_t i, size_t n); /* buffer backend, mem_readv */
    void *on_piece_ctx;
    /* mem_readv's scratch: IOV_MAX local and remote pieces, and their indexes. */
    struct iovec *local, *remote;
    size_t *idx;
    /* Threads (task.c).  A buffer's are made up (mem_buffer_set_task), or a
     * live process's (mem_buffer_tasks_of: tasks_pid). */
    struct mem_fake_task *fake; /* task.h */
    size_t nfake, fakecap;
    pid_t tasks_pid;        /* whose /proc threads these are: the live pid, or 0 */
    pid_t ns_pid;           /* tasks_pid in its own PID namespace, 0 until read */
};

#endif
