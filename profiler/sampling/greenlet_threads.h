/*
 * Which thread runs a greenlet, or holds its C stack: a greenlet's stack
 * range lies in its thread's stack mapping, found by the thread's
 * pthread_t (or "[stack]" for the main thread).  A running greenlet's
 * frames are its thread's, taken from the snapshot of the same moment.
 */
#ifndef PYSTROBE_GREENLET_THREADS_H
#define PYSTROBE_GREENLET_THREADS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/walk.h"
#include "profiler/target/mem.h"

/*
 * The thread whose C stack holds addr: its index in threads[0..n), or -1
 * when no thread's does, or more than one seem to.  The main thread
 * (native_tid == pid) runs on the "[stack]" mapping; another thread on the
 * anonymous mapping that holds its pthread_t, as glibc places a thread's
 * struct pthread at the top of the stack it allocates for it.
 */
int greenlet_thread_of(const struct mem_maps *maps, pid_t pid, const struct walk_thread *threads,
                       size_t n, uint64_t addr);

struct session;
struct snapshot;

/*
 * Gives each running greenlet of gs the thread of snapshot sn whose C stack
 * holds its own (both ends of its range; a main greenlet's start), and that
 * thread's Python frames as its stack.  Greenlets suspended in C code with
 * no Python frame look running too: of those a thread holds, the one whose
 * saved data stack the thread runs on (or the only one) is; the others
 * become parked, without frames.  A running greenlet that no thread holds,
 * or that cannot be told apart, is left without one (thread 0).
 */
void greenlet_join_threads(struct session *s, const struct snapshot *sn,
                           struct greenlet_set *gs);

/*
 * The index in sn of the thread whose C stack holds g's (a started
 * greenlet's, parked or running: both ends of its range, a main greenlet's
 * start), or -1 when none does or it cannot be told.
 */
int greenlet_owner(struct session *s, const struct snapshot *sn, const struct greenlet *g);

#endif
