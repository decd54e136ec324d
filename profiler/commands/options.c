#include "profiler/commands/options.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/commands/cli.h"

/* --thread and --tid given at most this many times each. */
#define MAX_FILTERS 64

int options_native(int c, int *native)
{
    if (c != OPT_NATIVE)
        return 0;
    *native = 1;
    return 1;
}

static int add_regex(struct sampling_opts *o, const char *arg)
{
    struct thread_filter *f = &o->filter;
    if (f->nres >= MAX_FILTERS)
        return cli_usage("too many --thread options (at most %d)", MAX_FILTERS);
    f->res = xrealloc(f->res, (f->nres + 1) * sizeof(*f->res));
    int e = regcomp(&f->res[f->nres], arg, REG_EXTENDED | REG_NOSUB);
    if (e != 0) {
        char msg[128];
        regerror(e, &f->res[f->nres], msg, sizeof(msg));
        return cli_usage("invalid --thread pattern '%s': %s (a POSIX extended regular "
                         "expression)", arg, msg);
    }
    f->nres++;
    return 1;
}

static int add_tid(struct sampling_opts *o, const char *arg)
{
    struct thread_filter *f = &o->filter;
    pid_t tid;
    if (f->ntids >= MAX_FILTERS)
        return cli_usage("too many --tid options (at most %d)", MAX_FILTERS);
    long v;
    if (parse_long(arg, &v) < 0 || v <= 0 || v > 0x7fffffffL)
        return cli_usage("invalid --tid '%s': expected a thread id, a positive number", arg);
    tid = (pid_t)v;
    f->tids = xrealloc(f->tids, (f->ntids + 1) * sizeof(*f->tids));
    f->tids[f->ntids++] = tid;
    return 1;
}

int options_sampling(struct sampling_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'p':
        return cli_parse_pid(arg, &o->pid) ? EXIT_USAGE : 1;
    case 'r':
        if (parse_seconds(arg, &o->rate) < 0 || !(o->rate > 0) || o->rate > MAX_RATE)
            return cli_usage("invalid rate '%s': expected samples per second, "
                             "more than 0 and at most %.0f", arg, MAX_RATE);
        return 1;
    case 'd':
        if (parse_seconds(arg, &o->duration) < 0 || !(o->duration > 0) || o->duration > 1e7)
            return cli_usage("invalid duration '%s': expected a number of seconds "
                             "more than 0", arg);
        return 1;
    case OPT_IDLE: o->idle = 1; return 1;
    case OPT_GIL: o->gil = 1; return 1;
    case OPT_FUNCTION: o->function = 1; return 1;
    case OPT_SUBPROCESSES: o->subprocesses = 1; return 1;
    case OPT_NATIVE: return options_native(c, &o->native);
    case OPT_THREAD: return add_regex(o, arg);
    case OPT_TID: return add_tid(o, arg);
    default: return 0;
    }
}

int options_operands(struct sampling_opts *o, const char *cmd, int argc, char **argv)
{
    int dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    if (optind < argc && !dashdash)
        return cli_usage("unexpected argument '%s'; to run a command, put it after '--'",
                         argv[optind]);
    if (dashdash && optind == argc)
        return cli_usage("no command after '--'");
    if (optind < argc)
        o->command = argv + optind;
    if (o->pid && o->command)
        return cli_usage("give either -p PID or -- COMMAND, not both");
    if (!o->pid && !o->command)
        return cli_usage("%s needs a process: -p PID, or -- COMMAND [ARGS...]", cmd);
    if (o->idle && o->gil)
        return cli_usage("--idle and --gil do not go together: --gil samples only the "
                         "thread holding the GIL");
    return 0;
}
