/*
 * The threads (tasks) of the process behind a memory source, and what is
 * known of each: a live process's from /proc (and ptrace, for registers),
 * a core's from its notes, a buffer's as a test made them up.  Walking and
 * sampling ask here, never /proc or the core themselves, so they run the
 * same on all three.
 *
 * A task handle keeps what reading the thread again needs (a live thread's
 * open /proc files): open it once, read it every sample.
 */
#ifndef PYSTROBE_TASK_H
#define PYSTROBE_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "profiler/target/mem.h"

/* The process's id in its own PID namespace (a live process in a container); else its id. */
pid_t mem_ns_pid(struct mem *m);
/*
 * The process's threads, as its own PID namespace numbers them, into *ns_tids
 * (allocated, caller frees): their number, or a negative errno.
 */
int mem_tasks(struct mem *m, pid_t **ns_tids);
/* A thread id as the process's namespace numbers it, as ours: 0 with *tid set, or -ENOENT. */
int mem_tid_from_ns(struct mem *m, pid_t ns_tid, pid_t *tid);
/*
 * The clock of mem_task_started_before (CLOCK_BOOTTIME, ns) now, for a
 * process whose threads start and end; 0 for a core or made-up threads.
 */
uint64_t mem_boot_ns(struct mem *m);
/* 1 when nothing in the image changes while it is read (a core). */
int mem_is_still(const struct mem *m);
/* 0 while the process is there (a core and a buffer always are), -ESRCH once gone, or a negative errno. */
int mem_check(struct mem *m);
/* The core file's path, or NULL for another source. */
const char *mem_core_path(struct mem *m);

struct mem_task;

/* Thread tid of the process (our numbering), or NULL when it has no such thread. */
struct mem_task *mem_task_open(struct mem *m, pid_t tid);
/* mem_task_close(NULL) does nothing. */
void mem_task_close(struct mem_task *t);
pid_t mem_task_tid(const struct mem_task *t);
/*
 * 1 when the thread started before boot_ns (mem_boot_ns), 0 when later,
 * within a clock tick before, or unknown.  A core's and a made-up thread: 1.
 */
int mem_task_started_before(struct mem_task *t, uint64_t boot_ns);
/*
 * Its state letter ('R' on a CPU or runnable, 'S', 'D', ...), or a negative
 * errno (-ESRCH once it is gone).  *cpu_ticks, if not NULL, receives its
 * CPU time in clock ticks (0 where unknown).  A core's thread is 'R' when it
 * was stopped outside a system call, else 'S'.
 */
int mem_task_state(struct mem_task *t, uint64_t *cpu_ticks);
/* Its time on a CPU (ns) and how often it was switched in: 0, or -ENOTSUP where unknown. */
int mem_task_schedstat(struct mem_task *t, uint64_t *run_ns, uint64_t *switches);
/*
 * The system call it is blocked in: 0 with *nr and its first argument set
 * (*nr -1: blocked outside one), 1 when it runs, or a negative errno.
 */
int mem_task_syscall(struct mem_task *t, long *nr, uint64_t *arg0);
/* Its OS name (comm) into buf: 0, or a negative errno (-ENOTSUP: a core keeps none). */
int mem_task_comm(struct mem_task *t, char *buf, size_t len);
/* The signal that made the core, for the thread that took it; else 0. */
int mem_task_signal(struct mem_task *t);
/*
 * Its registers.  A live thread is stopped for them (ptstop.h): 1, and
 * mem_task_release must follow as soon as its stacks are read; a core's
 * and a made-up thread's are read as they are: 0.  Or a negative errno.
 */
int mem_task_hold(struct mem_task *t, struct user_regs_struct *regs);
/* Lets go of a thread mem_task_hold stopped. */
void mem_task_release(struct mem_task *t);

/* A made-up thread of a buffer (tests). */
struct mem_fake_task {
    pid_t tid;                    /* > 0; the same in the process's namespace */
    int state;                    /* 'R', 'S', ...; 0: unreadable */
    uint64_t cpu_ticks;
    long syscall_nr;              /* what it is blocked in (state not 'R'); -1 outside a call */
    uint64_t syscall_arg0;
    int has_sched;                /* run_ns and switches are known */
    uint64_t run_ns, switches;
    char comm[16];                /* "" unknown */
    int signo;
    int has_regs;
    struct user_regs_struct regs;
};

/* Adds thread f->tid to a buffer, or changes it.  0, or -EINVAL for another source. */
int mem_buffer_set_task(struct mem *m, const struct mem_fake_task *f);
/* Removes a made-up thread (it exited). */
void mem_buffer_drop_task(struct mem *m, pid_t tid);
/* A buffer whose threads are those of live process pid (tests: real threads beside an image). */
void mem_buffer_tasks_of(struct mem *m, pid_t pid);

#endif
