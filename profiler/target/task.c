/* The threads of the process behind a memory source (task.h). */
#include "profiler/target/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "profiler/target/core.h"
#include "profiler/target/mem_impl.h"
#include "profiler/target/proc.h"
#include "profiler/target/ptstop.h"

struct mem_task {
    struct mem *m;
    pid_t tid;
    int stat_fd;    /* a live thread's /proc/PID/task/TID/stat; -1 for the others */
    int syscall_fd; /* ... its syscall file, opened on first use: -1 not yet, -2 failed */
    int sched_fd;   /* ... its schedstat, the same way */
    int held;       /* stopped by mem_task_hold */
};

/* Where a source's threads come from. */
enum origin { LIVE, CORE, FAKE };

static enum origin origin_of(const struct mem *m)
{
    return m->core ? CORE : m->tasks_pid > 0 ? LIVE : FAKE;
}

static const struct core_thread *core_thread_of(struct mem *m, pid_t tid)
{
    size_t n;
    const struct core_thread *ct = core_threads(m->core, &n);
    for (size_t i = 0; i < n; i++)
        if (ct[i].tid == tid)
            return &ct[i];
    return NULL;
}

static struct mem_fake_task *fake_of(struct mem *m, pid_t tid)
{
    for (size_t i = 0; i < m->nfake; i++)
        if (m->fake[i].tid == tid)
            return &m->fake[i];
    return NULL;
}

pid_t mem_ns_pid(struct mem *m)
{
    switch (origin_of(m)) {
    case CORE:
        return mem_pid(m);
    case LIVE:
        if (!m->ns_pid)
            m->ns_pid = proc_ns_pid(m->tasks_pid);
        return m->ns_pid;
    case FAKE:
        break;
    }
    /* The main thread's id is the process's: the lowest. */
    pid_t low = 0;
    for (size_t i = 0; i < m->nfake; i++)
        if (!low || m->fake[i].tid < low)
            low = m->fake[i].tid;
    return low;
}

int mem_tasks(struct mem *m, pid_t **ns_tids)
{
    size_t n = 0;
    switch (origin_of(m)) {
    case CORE: {
        const struct core_thread *ct = core_threads(m->core, &n);
        *ns_tids = xmalloc((n ? n : 1) * sizeof(**ns_tids));
        for (size_t i = 0; i < n; i++)
            (*ns_tids)[i] = ct[i].tid;
        return (int)n;
    }
    case FAKE:
        *ns_tids = xmalloc((m->nfake ? m->nfake : 1) * sizeof(**ns_tids));
        for (size_t i = 0; i < m->nfake; i++)
            (*ns_tids)[i] = m->fake[i].tid;
        return (int)m->nfake;
    case LIVE:
        break;
    }
    int ntasks = proc_tasks(m->tasks_pid, ns_tids);
    if (ntasks > 0 && mem_ns_pid(m) != m->tasks_pid)
        for (int i = 0; i < ntasks; i++)
            (*ns_tids)[i] = proc_task_ns_tid(m->tasks_pid, (*ns_tids)[i]);
    return ntasks;
}

int mem_tid_from_ns(struct mem *m, pid_t ns_tid, pid_t *tid)
{
    /* A process in another PID namespace numbers its threads its own way. */
    if (origin_of(m) == LIVE && mem_ns_pid(m) != m->tasks_pid)
        return proc_tid_from_ns(m->tasks_pid, ns_tid, tid);
    *tid = ns_tid;
    return 0;
}

uint64_t mem_boot_ns(struct mem *m)
{
    return origin_of(m) == LIVE ? proc_boot_ns() : 0;
}

int mem_is_still(const struct mem *m)
{
    return m->core != NULL;
}

int mem_check(struct mem *m)
{
    /* A core is no process: its file was checked when it was opened. */
    return m->pid > 0 ? proc_check(m->pid) : 0;
}

const char *mem_core_path(struct mem *m)
{
    return m->core ? core_path(m->core) : NULL;
}

struct mem_task *mem_task_open(struct mem *m, pid_t tid)
{
    if (tid <= 0)
        return NULL;
    int fd = -1;
    switch (origin_of(m)) {
    case CORE:
        if (!core_thread_of(m, tid))
            return NULL;
        break;
    case FAKE:
        if (!fake_of(m, tid))
            return NULL;
        break;
    case LIVE:
        /* A tid that is not one of the process's tasks came from garbage,
         * or from a thread that has just exited. */
        if ((fd = proc_open_stat(m->tasks_pid, tid)) < 0)
            return NULL;
        break;
    }
    struct mem_task *t = xcalloc(1, sizeof(*t));
    t->m = m;
    t->tid = tid;
    t->stat_fd = fd;
    t->syscall_fd = t->sched_fd = -1;
    return t;
}

void mem_task_close(struct mem_task *t)
{
    if (!t)
        return;
    if (t->held)
        mem_task_release(t);
    if (t->stat_fd >= 0)
        close(t->stat_fd);
    if (t->syscall_fd >= 0)
        close(t->syscall_fd);
    if (t->sched_fd >= 0)
        close(t->sched_fd);
    free(t);
}

pid_t mem_task_tid(const struct mem_task *t)
{
    return t->tid;
}

int mem_task_started_before(struct mem_task *t, uint64_t boot_ns)
{
    return t->stat_fd >= 0 ? proc_stat_started_before(t->stat_fd, boot_ns) : 1;
}

int mem_task_state(struct mem_task *t, uint64_t *cpu_ticks)
{
    if (cpu_ticks)
        *cpu_ticks = 0;
    switch (origin_of(t->m)) {
    case LIVE:
        return proc_stat_state(t->stat_fd, cpu_ticks);
    case CORE: {
        const struct core_thread *ct = core_thread_of(t->m, t->tid);
        if (!ct)
            return -ESRCH;
        return (long)ct->regs.orig_rax < 0 ? 'R' : 'S';
    }
    case FAKE:
        break;
    }
    const struct mem_fake_task *f = fake_of(t->m, t->tid);
    if (!f)
        return -ESRCH;
    if (cpu_ticks)
        *cpu_ticks = f->cpu_ticks;
    return f->state > 0 ? f->state : -EIO;
}

/* A live thread's /proc file, opened on first use (*fd -1), never again after it failed (-2). */
static int lazy_open(struct mem_task *t, int *fd, int (*open_fn)(pid_t, pid_t))
{
    if (*fd == -1) {
        int r = open_fn(t->m->tasks_pid, t->tid);
        *fd = r >= 0 ? r : -2;
    }
    return *fd;
}

int mem_task_schedstat(struct mem_task *t, uint64_t *run_ns, uint64_t *switches)
{
    switch (origin_of(t->m)) {
    case LIVE:
        if (lazy_open(t, &t->sched_fd, proc_open_schedstat) < 0)
            return -ENOTSUP;
        return proc_schedstat_read(t->sched_fd, run_ns, switches);
    case CORE:
        return -ENOTSUP;
    case FAKE:
        break;
    }
    const struct mem_fake_task *f = fake_of(t->m, t->tid);
    if (!f)
        return -ESRCH;
    if (!f->has_sched)
        return -ENOTSUP;
    *run_ns = f->run_ns;
    *switches = f->switches;
    return 0;
}

int mem_task_syscall(struct mem_task *t, long *nr, uint64_t *arg0)
{
    switch (origin_of(t->m)) {
    case LIVE:
        if (lazy_open(t, &t->syscall_fd, proc_open_syscall) < 0)
            return -ENOTSUP;
        return proc_syscall_read(t->syscall_fd, nr, arg0);
    case CORE: {
        /* Stopped in a system call: orig_rax is its number, rdi its first argument. */
        const struct core_thread *ct = core_thread_of(t->m, t->tid);
        if (!ct)
            return -ESRCH;
        if ((long)ct->regs.orig_rax < 0)
            return 1;
        *nr = (long)ct->regs.orig_rax;
        *arg0 = ct->regs.rdi;
        return 0;
    }
    case FAKE:
        break;
    }
    const struct mem_fake_task *f = fake_of(t->m, t->tid);
    if (!f)
        return -ESRCH;
    if (f->state == 'R')
        return 1;
    *nr = f->syscall_nr;
    *arg0 = f->syscall_arg0;
    return 0;
}

int mem_task_comm(struct mem_task *t, char *buf, size_t len)
{
    switch (origin_of(t->m)) {
    case LIVE:
        return proc_comm(t->m->tasks_pid, t->tid, buf, len);
    case CORE:
        return -ENOTSUP;
    case FAKE:
        break;
    }
    const struct mem_fake_task *f = fake_of(t->m, t->tid);
    if (!f || !f->comm[0] || len == 0)
        return f ? -ENOTSUP : -ESRCH;
    snprintf(buf, len, "%.*s", (int)sizeof(f->comm), f->comm);
    return 0;
}

int mem_task_signal(struct mem_task *t)
{
    if (origin_of(t->m) == FAKE) {
        const struct mem_fake_task *f = fake_of(t->m, t->tid);
        return f ? f->signo : 0;
    }
    if (origin_of(t->m) != CORE)
        return 0;
    /* The thread that took the signal is the core's first. */
    size_t n;
    const struct core_thread *ct = core_threads(t->m->core, &n);
    return n && ct[0].tid == t->tid ? ct[0].signo : 0;
}

int mem_task_hold(struct mem_task *t, struct user_regs_struct *regs)
{
    switch (origin_of(t->m)) {
    case LIVE: {
        if (t->m->pid <= 0)
            return -ENOTSUP; /* a buffer's threads are another process's */
        int r = ptstop_hold(t->tid, regs);
        if (r < 0)
            return r;
        t->held = 1;
        return 1;
    }
    case CORE: {
        const struct core_thread *ct = core_thread_of(t->m, t->tid);
        if (!ct)
            return -ENOENT;
        *regs = ct->regs;
        return 0;
    }
    case FAKE:
        break;
    }
    const struct mem_fake_task *f = fake_of(t->m, t->tid);
    if (!f || !f->has_regs)
        return -ENOENT;
    *regs = f->regs;
    return 0;
}

void mem_task_release(struct mem_task *t)
{
    if (!t->held)
        return;
    t->held = 0;
    ptstop_release(t->tid);
}

int mem_buffer_set_task(struct mem *m, const struct mem_fake_task *f)
{
    if (m->pid > 0 || m->core || f->tid <= 0)
        return -EINVAL;
    struct mem_fake_task *have = fake_of(m, f->tid);
    if (!have) {
        GROW(m->fake, m->fakecap, m->nfake + 1);
        have = &m->fake[m->nfake++];
    }
    *have = *f;
    return 0;
}

void mem_buffer_drop_task(struct mem *m, pid_t tid)
{
    struct mem_fake_task *f = fake_of(m, tid);
    if (f)
        *f = m->fake[--m->nfake];
}

void mem_buffer_tasks_of(struct mem *m, pid_t pid)
{
    if (m->pid > 0 || m->core)
        return;
    m->tasks_pid = pid;
    m->ns_pid = 0;
}
