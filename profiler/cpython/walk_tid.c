/* The stack walker: thread ids (walk_thread_tid, walk_pthread_tid). */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/walk_impl.h"
#include "profiler/target/task.h"

/* Bytes of a struct pthread searched for the tid field, and threads read for it. */
#define PTHREAD_SCAN 2048
#define TID_SAMPLE 64
/* After a search for it failed, the thread lists before the next search:
 * 1, then twice as many after each failure, up to this. */
#define TID_SEARCH_EVERY 64

static int pid_cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* The process's tasks as its own namespace numbers them (allocated): a count or a negative errno. */
static int list_tasks(struct walker *w, pid_t **tasks)
{
    return mem_tasks(w->rt->mem, tasks);
}

/* The thread of a list of n whose struct pthread is read as the ith of k:
 * the newest threads, and last the oldest, which is the main thread (its
 * tid is the pid: what tells the field) in a list longer than k. */
static size_t tid_sampled(size_t i, size_t k, size_t n)
{
    return i + 1 == k ? n - 1 : i;
}

/*
 * Finds the offset of struct pthread's tid: the first 4-byte field that holds,
 * for every thread read, the id of one of the process's tasks (as the
 * process's own PID namespace numbers them) or 0 (a thread that has exited:
 * the kernel clears the field), distinct across threads, one of them the
 * main thread's (the process id).  Thread states that name the same struct
 * pthread are one thread here: before 3.11 a new thread's state is made by
 * the thread that starts it, and holds that one's ident until the new thread
 * runs.  The tasks are listed before the memory is read and after, so that
 * only a thread that started and exited in between can be missing from both;
 * one such in four is forgiven.
 */
static int find_tid_offset(struct walker *w, const struct walk_thread *threads, size_t n)
{
    pid_t *tasks = NULL, *later = NULL;
    size_t k = MIN(n, (size_t)TID_SAMPLE);
    int found = -1;
    int ntasks = list_tasks(w, &tasks);
    if (ntasks <= 0) {
        free(tasks);
        return ntasks < 0 ? ntasks : -ENOENT;
    }
    int32_t(*vals)[PTHREAD_SCAN / 4] = xcalloc(k ? k : 1, sizeof(*vals));
    int *ok = xcalloc(k ? k : 1, sizeof(int));
    for (size_t i = 0; i < k; i++) {
        uint64_t id = threads[tid_sampled(i, k, n)].thread_id;
        ok[i] = id != 0;
        for (size_t j = 0; j < i && ok[i]; j++)
            ok[i] = threads[tid_sampled(j, k, n)].thread_id != id;
        ok[i] = ok[i] && mem_read(w->rt->mem, id, vals[i], sizeof(vals[i])) == 0;
    }
    int nlater = list_tasks(w, &later);
    size_t nt = (size_t)ntasks;
    if (nlater > 0) {
        tasks = xrealloc(tasks, (nt + (size_t)nlater) * sizeof(*tasks));
        memcpy(tasks + nt, later, (size_t)nlater * sizeof(*tasks));
        nt += (size_t)nlater;
    }
    free(later);
    qsort(tasks, nt, sizeof(*tasks), pid_cmp);
    pid_t main_tid = mem_ns_pid(w->rt->mem);
    for (int off = 0; off < PTHREAD_SCAN / 4 && found < 0; off++) {
        int has_main = 0, good = 1, live = 0, missing = 0;
        for (size_t i = 0; i < k && !has_main; i++)
            has_main = ok[i] && vals[i][off] == main_tid;
        for (size_t i = 0; i < k && has_main && good; i++) {
            pid_t v = vals[i][off];
            if (!ok[i] || v == 0)
                continue;
            if (v < 0) {
                good = 0;
                break;
            }
            if (bsearch(&v, tasks, nt, sizeof(*tasks), pid_cmp))
                live++;
            else
                missing++;
            for (size_t j = 0; j < i && good; j++)
                if (ok[j] && vals[j][off] == v)
                    good = 0;
        }
        if (has_main && good && live > 0 && missing * 4 <= live)
            found = off * 4;
    }
    free(vals);
    free(ok);
    free(tasks);
    if (found < 0)
        return -ENOENT;
    w->tid_offset = found;
    return 0;
}

int walk_pthread_tid(struct walker *w, uint64_t thread_id, pid_t *ns_tid)
{
    int32_t v;
    int ret;
    if (w->tid_offset < 0 || w->l->ts_native_thread_id >= 0 || !thread_id)
        return -ENOENT;
    if ((ret = mem_read(w->rt->mem, thread_id + (uint64_t)w->tid_offset, &v, 4)) < 0)
        return ret;
    *ns_tid = v > 0 ? v : 0;
    return 0;
}

int walk_thread_tid(struct walker *w, const struct walk_thread *threads, size_t n, size_t i,
                    pid_t *tid, pid_t *ns_tid_out)
{
    const struct walk_thread *t = &threads[i];
    pid_t ns_tid;
    int ret;
    if (t->native_tid > 0) {
        ns_tid = t->native_tid;
    } else if (w->l->ts_native_thread_id >= 0) {
        return -ENOENT;
    } else {
        int32_t v;
        if (w->tid_offset < 0) {
            /* A search reads a lot: after one failed, the next waits for the
             * next list, then twice as many lists after each failure. */
            if (w->tid_search_wait && w->lists - w->tid_search_at < w->tid_search_wait)
                return -EAGAIN;
            w->tid_search_at = w->lists;
            if (find_tid_offset(w, threads, n) < 0) {
                w->tid_search_wait = w->tid_search_wait
                                         ? MIN(2 * w->tid_search_wait, (uint32_t)TID_SEARCH_EVERY)
                                         : 1;
                return -EAGAIN;
            }
        }
        if ((ret = mem_read(w->rt->mem, t->thread_id + (uint64_t)w->tid_offset, &v, 4)) < 0)
            return ret;
        if (v <= 0)
            return -EINVAL;
        ns_tid = v;
    }
    *ns_tid_out = ns_tid;
    return mem_tid_from_ns(w->rt->mem, ns_tid, tid);
}
