#include "profiler/ptstop.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/*
 * How the stops go.  PTRACE_SEIZE makes us the thread's tracer without
 * stopping it; PTRACE_INTERRUPT then stops it, and waitpid reports one of:
 *
 * - the interrupt itself (PTRACE_EVENT_STOP, SIGTRAP): the usual case;
 * - a signal-delivery-stop: a signal was on its way in first.  Its number is
 *   kept and handed back by PTRACE_DETACH, so the thread receives it when let
 *   go, as if we had never been there;
 * - a group-stop (PTRACE_EVENT_STOP with SIGSTOP, SIGTSTP, SIGTTIN or
 *   SIGTTOU): someone stopped the whole process.  The registers are read all
 *   the same, and after PTRACE_DETACH the kernel puts the thread back into
 *   the group-stop: a stopped process stays stopped until its SIGCONT.
 * - the thread's exit: -ESRCH.
 *
 * A thread that does not stop within HOLD_WAIT_NS (in uninterruptible sleep:
 * disk or NFS I/O, a vfork parent waiting for its child) cannot be detached
 * yet: PTRACE_DETACH needs a stopped tracee.  It is remembered, and every
 * later ptstop call (and our own exit, which the kernel handles) lets it go
 * once it has stopped.  Between those, it may sit stopped: a caller that
 * has such threads (ptstop_sweep says how many) must call ptstop_sweep
 * often, whether or not it holds other threads meanwhile: a thread that
 * stopped late is stopped, so no longer running, and a sampler of running
 * threads would never hold it again.
 *
 * If pystrobe dies while holding a thread, the kernel detaches it.  We never
 * set PTRACE_O_EXITKILL: the target must outlive us.
 *
 * What the target may notice: a blocking call the stop interrupts is
 * restarted by the kernel, except the few that fail with EINTR after any
 * stop (epoll_wait, semtimedop, sigtimedwait...; see signal(7)), which
 * Python retries by itself (PEP 475) but C code may not.  And we get a
 * SIGCHLD for every stop, ignored unless pystrobe installs a handler.
 *
 * When the target is pystrobe's own child (`-- COMMAND`), a waitpid on it
 * can report one of our stops (WIFSTOPPED) of its main thread, which is
 * not its exit: only a thread that did not stop in time and stopped later
 * is left for such a waitpid to see.
 *
 * State is per process (ptrace is per thread anyway: hold and release from
 * the same thread of pystrobe).
 */

#define HOLD_WAIT_NS (100ull * 1000 * 1000)
#define YIELD_NS (200ull * 1000)
#define REAP_WAIT_NS (50ull * 1000 * 1000)

enum { HELD, PENDING };

struct held {
    pid_t tid;
    int sig;   /* a signal to deliver when it is let go, or 0 */
    int state; /* HELD: stopped by us; PENDING: interrupted, not yet stopped */
};

static struct held *held;
static size_t nheld, heldcap;
static uint64_t late_stops; /* threads let go that had stopped after HOLD_WAIT_NS */

uint64_t ptstop_now_ns(void)
{
    return now_ns();
}

static struct held *find_held(pid_t tid)
{
    for (size_t i = 0; i < nheld; i++)
        if (held[i].tid == tid)
            return &held[i];
    return NULL;
}

static void forget(struct held *h)
{
    *h = held[--nheld];
}

static void pause_ns(uint64_t ns)
{
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

/*
 * 1 when tid leads a process whose parent is us: its exit status belongs
 * to whoever waits for our child (the `-- COMMAND` code), so we must not
 * reap it.  Any other thread we trace must be reaped by us once it died, or
 * it would stay a zombie and hold up its process's exit.
 */
static int own_child_leader(pid_t tid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    long tgid = -1, ppid = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Tgid:", 5) == 0)
            tgid = strtol(line + 5, NULL, 10);
        else if (strncmp(line, "PPid:", 5) == 0)
            ppid = strtol(line + 5, NULL, 10);
    }
    fclose(f);
    return tgid == tid && ppid == getpid();
}

/* Collects a traced thread that died (bounded: it may still be exiting). */
static void reap(pid_t tid)
{
    if (own_child_leader(tid))
        return;
    uint64_t deadline = now_ns() + REAP_WAIT_NS;
    for (uint64_t wait = 10000;; wait = MIN(wait * 2, 1000000ull)) {
        int st;
        pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
        if (r < 0 || (r == tid && !WIFSTOPPED(st)))
            return;
        if (now_ns() > deadline)
            return;
        pause_ns(wait);
    }
}

/*
 * Looks once for what happened to a traced thread: 1 it is stopped (*sig:
 * the signal to deliver later, or 0), 0 nothing yet, -ESRCH it is gone.
 * The exit is looked at with WNOWAIT first, so that our own child's status
 * stays for its waiter.
 */
static int poll_stop(pid_t tid, int *sig)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)tid, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0)
        return -ESRCH;
    if (si.si_pid == 0)
        return 0;
    if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        reap(tid);
        return -ESRCH;
    }
    int st = 0;
    if (waitpid(tid, &st, __WALL | WNOHANG) != tid || !WIFSTOPPED(st))
        return -ESRCH;
    /* (st >> 16) is the ptrace event: none for a signal-delivery-stop. */
    *sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
    return 1;
}

/*
 * A thread usually stops within tens of microseconds, less than one
 * nanosleep takes (timer slack is 50 us): the first polls only yield the
 * CPU, later ones sleep longer and longer.
 */
static int wait_stop(pid_t tid, int *sig)
{
    uint64_t start = now_ns(), deadline = start + HOLD_WAIT_NS;
    for (uint64_t wait = 20000;;) {
        int r = poll_stop(tid, sig);
        if (r != 0)
            return r;
        uint64_t now = now_ns();
        if (now > deadline)
            return -ETIMEDOUT;
        if (now - start < YIELD_NS) {
            sched_yield();
        } else {
            pause_ns(wait);
            wait = MIN(wait * 2, 2000000ull);
        }
    }
}

/* Lets go of the threads that had not stopped in time, where they have now. */
static void sweep_pending(void)
{
    for (size_t i = 0; i < nheld;) {
        struct held *h = &held[i];
        int sig = 0, r = h->state == PENDING ? poll_stop(h->tid, &sig) : 0;
        if (r == 1) {
            ptrace(PTRACE_DETACH, h->tid, NULL, (void *)(long)sig);
            late_stops++;
        }
        if (r != 0)
            forget(h);
        else
            i++;
    }
}

size_t ptstop_sweep(void)
{
    sweep_pending();
    size_t n = 0;
    for (size_t i = 0; i < nheld; i++)
        n += held[i].state == PENDING;
    return n;
}

uint64_t ptstop_late_stops(void)
{
    return late_stops;
}

/* Not bounded: forgetting a thread would leave it stopped for good. */
static void remember(pid_t tid, int sig, int state)
{
    GROW(held, heldcap, nheld + 1);
    held[nheld++] = (struct held){tid, sig, state};
}

int ptstop_hold(pid_t tid, struct user_regs_struct *regs)
{
    sweep_pending();
    if (tid <= 0)
        return -EINVAL;
    struct held *h = find_held(tid);
    if (h)
        return h->state == PENDING ? -ETIMEDOUT : -EBUSY;
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0)
        return -errno; /* EPERM: not allowed, or traced already (a debugger) */
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
        int err = -errno;
        /* Not yet interrupted, so not stopped: a detach may fail; it is still
         * the only way to undo the seize, and an exiting thread needs none. */
        if (ptrace(PTRACE_DETACH, tid, NULL, NULL) < 0)
            reap(tid);
        return err;
    }
    int sig = 0;
    int r = wait_stop(tid, &sig);
    if (r == -ETIMEDOUT) {
        remember(tid, 0, PENDING);
        return r;
    }
    if (r < 0)
        return r;
    if (ptrace(PTRACE_GETREGS, tid, NULL, regs) < 0) {
        int err = -errno;
        if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) < 0)
            reap(tid);
        return err;
    }
    remember(tid, sig, HELD);
    return 0;
}

void ptstop_let_go(uint64_t wait_ns)
{
    uint64_t deadline = now_ns() + wait_ns;
    for (uint64_t wait = 20000;;) {
        for (size_t i = 0; i < nheld;) {
            struct held *h = &held[i];
            int sig = h->sig, r = h->state == PENDING ? poll_stop(h->tid, &sig) : 1;
            if (r == 1 && ptrace(PTRACE_DETACH, h->tid, NULL, (void *)(long)sig) < 0)
                reap(h->tid);
            if (r == 1 && h->state == PENDING)
                late_stops++;
            if (r != 0)
                forget(h);
            else
                i++;
        }
        if (!nheld || now_ns() > deadline)
            return;
        pause_ns(wait);
        wait = MIN(wait * 2, 2000000ull);
    }
}

int ptstop_release(pid_t tid)
{
    struct held *h = find_held(tid);
    if (!h || h->state != HELD) {
        sweep_pending();
        return -ESRCH;
    }
    int sig = h->sig;
    forget(h);
    int ret = 0;
    if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) < 0) {
        /* Only a tracee that died (SIGKILL while held) can fail here. */
        ret = -errno;
        reap(tid);
    }
    sweep_pending();
    return ret;
}
