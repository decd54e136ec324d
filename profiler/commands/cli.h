/* The command layer: the only code that prints errors or exits. */
#ifndef PYSTROBE_CLI_H
#define PYSTROBE_CLI_H

#include <sys/types.h>

#include "common/util.h"

#include "common/version.h"

#define EXIT_USAGE 2

/* Prints "pystrobe: MESSAGE" on stderr and returns EXIT_USAGE. */
int cli_usage(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Prints "pystrobe: MESSAGE" on stderr and returns 1. */
int cli_fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Prints an error's message as above and returns 1. */
int cli_error(const struct pserr *e);
/*
 * Reports getopt_long's '?' or ':' result for argv as a usage error:
 * an unknown option, or one missing its argument.
 */
int cli_bad_option(const char *cmd, int c, char **argv);
/* Writes len bytes to stdout and flushes: 0, or the errno of the write that failed. */
int cli_write_stdout(const void *buf, size_t len);
/*
 * A reader of stdout that goes away (`| head`) makes writes fail with EPIPE,
 * reported as an error like any other, instead of killing pystrobe silently.
 */
void cli_ignore_sigpipe(void);
/* Parses a PID argument; 0 or a usage error (already printed). */
int cli_parse_pid(const char *arg, pid_t *pid);

int cmd_record(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_locks(int argc, char **argv);
/* The help text of a subcommand (NULL for the overview) on stdout; 0, or 2 if unknown. */
int cmd_help(const char *sub);

#endif
