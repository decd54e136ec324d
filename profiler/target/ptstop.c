#include "profiler/target/ptstop.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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
/* How long Ctrl-Z waits in its handler for interrupted threads to stop;
 * those still to stop then are waited for by the ptstop calls that follow. */
#define SUSPEND_WAIT_NS (100ull * 1000 * 1000)

enum { HELD, PENDING };

struct held {
    pid_t tid;
    int sig;   /* a signal to deliver when it is let go, or 0 */
    int state; /* HELD: stopped by us; PENDING: interrupted, not yet stopped */
};

static struct held *held;
static size_t nheld, heldcap;
static uint64_t late_stops; /* threads let go that had stopped after HOLD_WAIT_NS */

/*
 * Suspension (Ctrl-Z).  A terminal stop signal that stopped pystrobe at
 * once would leave the thread it holds stopped until pystrobe's SIGCONT,
 * and so would a thread interrupted that stops only later.  The signal is
 * kept in suspend_sig until pystrobe can stop with no thread held and none
 * still to stop: the handler lets go of them when no ptstop call is under
 * way (then nothing it touches can be half changed) and no thread is held;
 * otherwise, or while an interrupted thread has yet to stop, the ptstop
 * calls that follow do (the release of the held thread, the sweeps a
 * caller makes while threads are still to stop), and no new thread is
 * held meanwhile.  However long a thread takes to stop (frozen, in
 * uninterruptible sleep), pystrobe does not stop before it has.
 */
static volatile sig_atomic_t suspend_sig; /* a stop signal not yet acted on */
static volatile sig_atomic_t busy;        /* a ptstop call under way */
static volatile sig_atomic_t nstopped;    /* threads HELD */
static volatile sig_atomic_t caught;      /* the handlers are installed */
static uint64_t suspended_ns;             /* time spent stopped that way */

static void suspend_if_asked(void);
static void sweep_pending(void);

/* busy brackets every change to held[]: the compiler must not move one out. */
static void enter(void)
{
    busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
}

static void leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    busy = 0;
}

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
    if (h->state == HELD)
        nstopped--;
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
            /* Others that stop late meanwhile are not kept waiting for this one. */
            sweep_pending();
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

static size_t count_pending(void)
{
    size_t n = 0;
    for (size_t i = 0; i < nheld; i++)
        n += held[i].state == PENDING;
    return n;
}

size_t ptstop_sweep(void)
{
    enter();
    sweep_pending();
    leave();
    suspend_if_asked();
    enter();
    size_t n = count_pending();
    leave();
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
    if (state == HELD)
        nstopped++;
}

/*
 * Lets go of every held thread, and of interrupted ones that stop within
 * wait_ns; returns how many are still to stop.  Async-signal-safe (a
 * thread that died is not reaped here, which reads /proc with stdio: the
 * next ptstop call reaps it).
 */
static size_t let_go_for_suspend(uint64_t wait_ns)
{
    uint64_t deadline = now_ns() + wait_ns;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < nheld;) {
            struct held *h = &held[i];
            int sig = h->sig, r = 1; /* 1 stopped, 0 not yet, -1 not ours, 2 died */
            if (h->state == PENDING) {
                siginfo_t si;
                memset(&si, 0, sizeof(si));
                r = 0;
                if (waitid(P_PID, (id_t)h->tid, &si,
                           WSTOPPED | WEXITED | WNOHANG | WNOWAIT | __WALL) < 0) {
                    r = -1;
                } else if (si.si_pid == h->tid &&
                           (si.si_code == CLD_TRAPPED || si.si_code == CLD_STOPPED)) {
                    int st = 0;
                    r = -1;
                    if (waitpid(h->tid, &st, __WALL | WNOHANG) == h->tid && WIFSTOPPED(st)) {
                        sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
                        r = 1;
                    }
                } else if (si.si_pid == h->tid) {
                    r = 2;
                }
            }
            if (r == 1 && ptrace(PTRACE_DETACH, h->tid, NULL, (void *)(long)sig) < 0 &&
                h->state == HELD) {
                /* It died while held: left for the next sweep to reap. */
                h->state = PENDING;
                nstopped--;
                i++;
                continue;
            }
            if (r == 1)
                late_stops += h->state == PENDING;
            if (r == 1 || r == -1) {
                if (h->state == HELD)
                    nstopped--;
                *h = held[--nheld];
                continue;
            }
            waiting += r == 0;
            i++;
        }
        if (!waiting || now_ns() > deadline)
            return waiting;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Stops pystrobe as sig would have; returns once continued. */
static void stop_self(int sig)
{
    int saved = errno;
    uint64_t t0 = now_ns();
    /* The signal's own default: it stops us, or, in an orphaned process
     * group (nobody left to continue it), is discarded by the kernel. */
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, &old);
    sigset_t set, prev;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, &prev);
    kill(getpid(), sig);
    sigprocmask(SIG_SETMASK, &prev, NULL);
    sigaction(sig, &old, NULL);
    suspended_ns += now_ns() - t0;
    errno = saved;
}

/*
 * Stops pystrobe for the stop signal kept, if every thread is let go and
 * none is still to stop within wait_ns.  Called with no ptstop call under
 * way and no thread held.
 */
static void try_suspend(uint64_t wait_ns)
{
    enter();
    size_t left = let_go_for_suspend(wait_ns);
    leave();
    int sig = suspend_sig;
    if (left || !sig)
        return;
    suspend_sig = 0;
    stop_self(sig);
}

static void on_suspend(int sig)
{
    int saved = errno;
    suspend_sig = sig;
    if (!busy && !nstopped)
        try_suspend(SUSPEND_WAIT_NS);
    errno = saved;
}

/* Acts on a stop signal kept for later, once no thread is held. */
static void suspend_if_asked(void)
{
    if (suspend_sig && !nstopped)
        try_suspend(0);
}

/* Installs on_suspend for the terminal's stop signals, once. */
static void catch_suspend(void)
{
    if (caught)
        return;
    caught = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTSTP);
    sigaddset(&sa.sa_mask, SIGTTIN);
    sigaddset(&sa.sa_mask, SIGTTOU);
    sa.sa_handler = on_suspend;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTSTP, &sa, NULL);
    sigaction(SIGTTIN, &sa, NULL);
    sigaction(SIGTTOU, &sa, NULL);
}

uint64_t ptstop_suspended_ns(void)
{
    return suspended_ns;
}

static int hold(pid_t tid, struct user_regs_struct *regs);

int ptstop_hold(pid_t tid, struct user_regs_struct *regs)
{
    catch_suspend();
    enter();
    int r = hold(tid, regs);
    leave();
    suspend_if_asked();
    return r;
}

static int hold(pid_t tid, struct user_regs_struct *regs)
{
    sweep_pending();
    if (tid <= 0)
        return -EINVAL;
    if (suspend_sig)
        return -EAGAIN; /* suspending once the threads still to stop have */
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
    enter();
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
            break;
        pause_ns(wait);
        wait = MIN(wait * 2, 2000000ull);
    }
    leave();
    suspend_if_asked();
}

static int release(pid_t tid);

int ptstop_release(pid_t tid)
{
    enter();
    int r = release(tid);
    leave();
    suspend_if_asked();
    return r;
}

static int release(pid_t tid)
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
