/*
 * The options that several commands share, parsed in one place: the
 * sampling options of record, top and locks (which process, rate,
 * duration, modes, which threads) and --native (those and dump).
 */
#ifndef PYSTROBE_OPTIONS_H
#define PYSTROBE_OPTIONS_H

#include <getopt.h>

#include "profiler/sampling/sampling.h"

#define MAX_RATE 10000.0

/* getopt codes of the long options without a short one. */
enum {
    OPT_IDLE = 256, OPT_GIL, OPT_FUNCTION, OPT_THREAD, OPT_TID, OPT_SUBPROCESSES, OPT_NATIVE,
    OPT_SAMPLING_END /* a command's own codes start here */
};

/* --native's entry in a getopt_long table. */
#define OPTIONS_NATIVE {"native", no_argument, NULL, OPT_NATIVE}

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
    OPTIONS_NATIVE
/* Their short letters, for getopt's option string. */
#define SAMPLING_SHORTOPTS "p:r:d:"

/*
 * Takes getopt's result c if it is one of the sampling options: returns 1,
 * 0 when c is not one, or EXIT_USAGE (message printed) for a bad value.
 */
int options_sampling(struct sampling_opts *o, int c, const char *arg);

/* After getopt: the command after "--", and -p xor a command.  0 or EXIT_USAGE. */
int options_operands(struct sampling_opts *o, const char *cmd, int argc, char **argv);

/* Takes getopt's result c if it is --native (sets *native): 1, else 0. */
int options_native(int c, int *native);

#endif
