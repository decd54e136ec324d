/*
 * Stopping one thread of another process for as short as possible, to read
 * its registers (native stacks only: nothing else in pystrobe stops the
 * target).  PTRACE_SEIZE + PTRACE_INTERRUPT, never PTRACE_ATTACH's SIGSTOP,
 * so no signal is ever sent to the target; a signal that arrives while the
 * thread is held is delivered when it is let go.
 */
#ifndef PYSTROBE_PTSTOP_H
#define PYSTROBE_PTSTOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/*
 * Stops thread tid and reads its registers.  Returns 0 (the thread is held:
 * call ptstop_release), or a negative errno: -ESRCH the thread is gone,
 * -EPERM not allowed (ptrace_scope, no CAP_SYS_PTRACE, or traced already by
 * a debugger), -ETIMEDOUT it did not stop within a bounded wait (it is let
 * go as soon as it has stopped: at the next ptstop call, or when pystrobe
 * exits), -EAGAIN pystrobe is suspending (below) and holds no new thread.
 */
int ptstop_hold(pid_t tid, struct user_regs_struct *regs);

/* Lets a held thread go.  0 or a negative errno. */
int ptstop_release(pid_t tid);

/*
 * Lets go of every thread still held, and of those interrupted that had not
 * stopped in time as they stop, waiting up to wait_ns for them: a thread
 * interrupted stops sooner or later, and then stays stopped until its
 * tracer lets it go or exits.  What is still pending after wait_ns is let
 * go by the kernel when pystrobe exits.
 */
void ptstop_let_go(uint64_t wait_ns);

/*
 * Lets go of the threads interrupted that had not stopped in time and have
 * stopped since; returns how many are still to stop.  While that is not 0,
 * call it again within a few milliseconds: each of them sits stopped from
 * the moment it stops until a ptstop call lets it go.
 */
size_t ptstop_sweep(void);

/*
 * Suspension: the first ptstop_hold installs handlers for SIGTSTP, SIGTTIN
 * and SIGTTOU (Ctrl-Z, and a background job touching its terminal), which
 * stop pystrobe only once every held thread is let go, and every thread
 * interrupted that had not stopped in time has stopped and been let go, so
 * that no thread of the target is stopped while pystrobe is.  The handler
 * waits a little for those; if some are still to stop, pystrobe goes on,
 * holding no new thread, and the ptstop calls that follow (ptstop_sweep,
 * which a caller makes every few milliseconds while threads are still to
 * stop) stop it once they have, however long that takes.  SIGSTOP cannot
 * be caught: sent while a thread is held (one at a time, for as long as
 * one thread's stacks take to read), it leaves that thread stopped until
 * pystrobe's SIGCONT.  Returns the time pystrobe spent suspended that way,
 * in all.
 */
uint64_t ptstop_suspended_ns(void);

/* Threads let go that had stopped only after the wait of ptstop_hold. */
uint64_t ptstop_late_stops(void);

/* Nanoseconds of CLOCK_MONOTONIC, for measuring how long threads are held. */
uint64_t ptstop_now_ns(void);

#endif
