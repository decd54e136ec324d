#include "profiler/sampling/sampling.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "profiler/target/launch.h"

/* How long a launched command may take to start its interpreter. */
#define LAUNCH_ATTACH_MS 10000

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
