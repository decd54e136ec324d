#include "profiler/sampling/sampling.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "profiler/commands/cli.h"
#include "profiler/target/launch.h"

/* How long a launched command may take to start its interpreter. */
#define LAUNCH_ATTACH_MS 10000
/* --thread and --tid given at most this many times each. */
#define MAX_FILTERS 64

void sampling_init(struct sampling_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rate = 100;
}

void sampling_release(struct sampling_opts *o)
{
    for (size_t i = 0; i < o->filter.nres; i++)
        regfree(&o->filter.res[i]);
    free(o->filter.res);
    free(o->filter.tids);
    memset(&o->filter, 0, sizeof(o->filter));
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

int sampling_option(struct sampling_opts *o, int c, const char *arg)
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
    case OPT_NATIVE: o->native = 1; return 1;
    case OPT_THREAD: return add_regex(o, arg);
    case OPT_TID: return add_tid(o, arg);
    default: return 0;
    }
}

int sampling_operands(struct sampling_opts *o, const char *cmd, int argc, char **argv)
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

void sampling_snap_opts(const struct sampling_opts *o, struct snap_opts *so)
{
    memset(so, 0, sizeof(*so));
    so->active_only = !o->idle && !o->gil;
    so->gil_only = o->gil;
    /* All threads: each sample says whether its thread ran, waited for the GIL or idled. */
    so->want_state = o->idle || o->gil;
    so->want_wait = o->idle;
    so->by_function = o->function;
    so->filter = &o->filter;
    so->max_depth = WALK_MAX_DEPTH;
}

const char *sampling_mode(const struct sampling_opts *o)
{
    return o->gil ? "gil" : o->idle ? "wall" : "cpu";
}

/* Attaches to a command just started: its interpreter may take a while to load. */
static int attach_launched(struct session *s, pid_t pid, volatile sig_atomic_t *stop,
                           struct pserr *err)
{
    uint64_t deadline = now_ns() + (uint64_t)LAUNCH_ATTACH_MS * 1000000u;
    for (;;) {
        int ret = session_attach(s, pid, err);
        if (ret == 0 || ret == -ENOTSUP || ret == -EPERM || ret == -EACCES)
            return ret;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            struct strbuf d = STRBUF_INIT;
            launch_describe(st, &d);
            pserr_set(err, ECHILD, "the command exited (%s) before a Python interpreter "
                      "could be found in it", d.buf);
            sb_release(&d);
            return -ECHILD;
        }
        if (*stop || now_ns() > deadline)
            return ret;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int sampling_start(struct sampling_opts *o, struct session *s, pid_t *child,
                   volatile sig_atomic_t *stop, struct pserr *err)
{
    *child = 0;
    if (!o->command)
        return session_attach(s, o->pid, err);
    int ret = launch_start(o->command, child, err);
    if (ret < 0)
        return ret;
    o->pid = *child;
    return attach_launched(s, *child, stop, err);
}

void sampling_catch_stop(void (*on_stop)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}
