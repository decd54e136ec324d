/*
 * What record, top and locks share: which process (-p PID, or -- COMMAND),
 * how (rate, duration, modes), which threads, and starting on it.  The
 * parsing of their options is profiler/commands/options.c.
 */
#ifndef PYSTROBE_SAMPLING_H
#define PYSTROBE_SAMPLING_H

#include <signal.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"

struct sampling_opts {
    pid_t pid;
    char **command;       /* argv after "--", or NULL */
    double rate, duration;
    int idle, gil, function, subprocesses, native;
    struct thread_filter filter;
};

/* Defaults: 100 Hz, no duration, every thread on CPU. */
void sampling_init(struct sampling_opts *o);
void sampling_release(struct sampling_opts *o);

/* The snapshot options of the mode chosen (with depth max_depth). */
void sampling_snap_opts(const struct sampling_opts *o, struct snap_opts *so);

/*
 * SIGINT, SIGTERM and SIGHUP (a terminal or an SSH connection gone) call
 * on_stop (which sets the command's stop flag): the work ends as asked,
 * its results written.  SIGPIPE is ignored: a reader of the output or of
 * stderr that goes away must not end the sampling (writes fail with EPIPE
 * instead); so are SIGUSR1 and SIGUSR2, whose default would end pystrobe
 * with nothing written, and SIGXFSZ (a file size limit), so that writing
 * past the limit fails with EFBIG and the temporary file is removed.
 */
void sampling_catch_stop(void (*on_stop)(int));

/* "cpu", "wall" or "gil" */
const char *sampling_mode(const struct sampling_opts *o);

/*
 * Starts the command (then *child is its pid) or attaches to -p's process:
 * 0, or a negative errno with err filled.  o->pid is the process's pid after.
 */
int sampling_start(struct sampling_opts *o, struct session *s, pid_t *child,
                   volatile sig_atomic_t *stop, struct pserr *err);

#endif
