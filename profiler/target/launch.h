/* Running the command to profile (record -- COMMAND ARGS...). */
#ifndef PYSTROBE_LAUNCH_H
#define PYSTROBE_LAUNCH_H

#include <sys/types.h>

#include "common/util.h"

/*
 * Starts argv[0] (searched in PATH) with argv as its arguments, and returns
 * once it has been executed: 0 with *pid set, or a negative errno with err
 * filled when it could not be run (no such command, not executable...).
 */
int launch_start(char *const argv[], pid_t *pid, struct pserr *err);

/*
 * Ends a command that is still running after the recording: waits up to
 * grace_ms for it to exit by itself, then sends SIGTERM and, after another
 * grace_ms, SIGKILL.  Returns its wait status; sets *terminated when it had
 * to be signalled.
 */
int launch_finish(pid_t pid, int grace_ms, int *terminated);

/* Describes a wait status: "exit status 0", "killed by signal 15 (Terminated)". */
void launch_describe(int status, struct strbuf *out);

/*
 * Reaps launched command pid if it has ended (*status its wait status):
 * 0, -EAGAIN not ended, -ECHILD not our child (or reaped already).  A
 * ptrace stop is not taken for an end, nor consumed.
 */
int launch_reap(pid_t pid, int *status);

#endif
