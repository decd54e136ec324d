/*
 * What record and top share: which process (-p PID, or -- COMMAND), how
 * (rate, duration, modes), which threads, and starting on it.
 */
#ifndef PYSTROBE_SAMPLING_H
#define PYSTROBE_SAMPLING_H

#include <getopt.h>
#include <signal.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"

#define MAX_RATE 10000.0

struct sampling_opts {
    pid_t pid;
    char **command;       /* argv after "--", or NULL */
    double rate, duration;
    int idle, gil, function, subprocesses, native;
    struct thread_filter filter;
};

/* getopt codes of the long options without a short one. */
enum {
    OPT_IDLE = 256, OPT_GIL, OPT_FUNCTION, OPT_THREAD, OPT_TID, OPT_SUBPROCESSES, OPT_NATIVE,
    OPT_SAMPLING_END /* a command's own codes start here */
};

/* The long options every sampling command takes (an initializer list). */
#define SAMPLING_LONGOPTS                                          \
    {"pid", required_argument, NULL, 'p'},                         \
    {"rate", required_argument, NULL, 'r'},                        \
    {"duration", required_argument, NULL, 'd'},                    \
    {"idle", no_argument, NULL, OPT_IDLE},                         \
    {"gil", no_argument, NULL, OPT_GIL},                           \
    {"function", no_argument, NULL, OPT_FUNCTION},                 \
    {"thread", required_argument, NULL, OPT_THREAD},               \
    {"tid", required_argument, NULL, OPT_TID},                     \
    {"subprocesses", no_argument, NULL, OPT_SUBPROCESSES},          \
    {"native", no_argument, NULL, OPT_NATIVE}
/* Their short letters, for getopt's option string. */
#define SAMPLING_SHORTOPTS "p:r:d:"

/* Defaults: 100 Hz, no duration, every thread on CPU. */
void sampling_init(struct sampling_opts *o);
void sampling_release(struct sampling_opts *o);

/*
 * Takes getopt's result c if it is one of the sampling options: returns 1,
 * 0 when c is not one, or EXIT_USAGE (message printed) for a bad value.
 */
int sampling_option(struct sampling_opts *o, int c, const char *arg);

/* After getopt: the command after "--", and -p xor a command.  0 or EXIT_USAGE. */
int sampling_operands(struct sampling_opts *o, const char *cmd, int argc, char **argv);

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
