/*
 * pystrobe locks: where the target's greenlets, asyncio tasks and threads
 * wait, ranked by the time spent waiting there.  It samples like record
 * --greenlets --tasks with every thread's state read: each census counts
 * every parked greenlet and every waiting task at its wait site, and each
 * sample every thread blocked on a lock (a futex other than the GIL's) at
 * its own.
 *
 * A wait site is the last frame of the program's own code before the wait,
 * with the call it made into the waiting machinery (gevent, eventlet,
 * greenlet, threading, queue...) when there is one: "what waited, on what".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/agg.h"
#include "output/label.h"
#include "profiler/commands/cli.h"
#include "profiler/commands/dump_print.h"
#include "profiler/commands/options.h"
#include "profiler/target/launch.h"
#include "profiler/sampling/sampler.h"
#include "profiler/sampling/sampling.h"
#include "profiler/sampling/session.h"

#define LOCKS_DEFAULT_SECONDS 5.0
#define LOCKS_DEFAULT_TOP 10
/* How long a launched command gets to exit by itself once the report is made. */
#define LOCKS_GRACE_MS 2000

struct locks_opts {
    struct sampling_opts so;
    size_t top;
    int json;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int locks_read_options(int argc, char **argv, struct locks_opts *o)
{
    enum { OPT_JSON = OPT_SAMPLING_END };
    static const struct option longopts[] = {
        SAMPLING_LONGOPTS,
        {"top", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, ret;
    memset(o, 0, sizeof(*o));
    sampling_init(&o->so);
    o->top = LOCKS_DEFAULT_TOP;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:" SAMPLING_SHORTOPTS "n:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_IDLE: case OPT_GIL: case OPT_NATIVE: case OPT_SUBPROCESSES:
            return cli_usage("locks does not take %s: it reads every thread of the target "
                             "alone", argv[optind - 1]);
        case 'n': {
            long v;
            if (parse_long(optarg, &v) < 0 || v <= 0 || v > 100000)
                return cli_usage("invalid --top '%s': expected a number of wait sites, "
                                 "at least 1", optarg);
            o->top = (size_t)v;
            continue;
        }
        case OPT_JSON: o->json = 1; continue;
        case 'h':
            cmd_help("locks");
            return -1;
        default:
            break;
        }
        if ((ret = options_sampling(&o->so, c, optarg)) != 0) {
            if (ret != 1)
                return ret;
            continue;
        }
        return cli_bad_option("locks", c, argv);
    }
    if ((ret = options_operands(&o->so, "locks", argc, argv)) != 0)
        return ret;
    if (!o->so.duration)
        o->so.duration = o->so.command ? 0 : LOCKS_DEFAULT_SECONDS;
    return 0;
}

/* ---- wait sites ---- */

/* Files of the machinery a program waits in, rather than its own code. */
static int is_machinery(const char *file)
{
    static const char *const dirs[] = {"/gevent/", "/eventlet/", "/greenlet/",
                                       "/concurrent/futures/", "/asyncio/"};
    static const char *const files[] = {"/threading.py", "/queue.py", "/Queue.py"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (strstr(file, dirs[i]))
            return 1;
    size_t n = strlen(file);
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        size_t k = strlen(files[i]);
        if (n >= k && !strcmp(file + n - k, files[i]))
            return 1;
    }
    return 0;
}

static int frame_is_machinery(const struct names *nm, uint32_t id)
{
    const struct names_frame *fr = names_frame_get(nm, id);
    return is_machinery(names_str_get(nm, names_func_get(nm, fr->func)->file));
}

struct site {
    uint32_t own, call;    /* the program's frame, and the machinery's frame it called
                            * (UINT32_MAX: none) */
    uint64_t count;
    const uint32_t *best;  /* its most frequent stack (root first) and that stack's count */
    size_t bestlen;
    uint64_t bestcount;
};

struct sites {
    struct site *v;
    size_t n, cap;
    uint64_t total;
};

/*
 * The site of a stack (frames[0..n), root first): from the leaf, the
 * machinery's frames are passed over to the first of the program's own;
 * the outermost machinery frame passed is the call it made.  A stack of
 * machinery alone waits at its leaf.
 */
static void site_of(const struct names *nm, const uint32_t *frames, size_t n, uint32_t *own,
                    uint32_t *call)
{
    *own = frames[n - 1];
    *call = UINT32_MAX;
    for (size_t i = n; i-- > 0;) {
        if (!frame_is_machinery(nm, frames[i])) {
            *own = frames[i];
            *call = i + 1 < n ? frames[i + 1] : UINT32_MAX;
            return;
        }
    }
}

static void sites_add(struct sites *ss, const struct names *nm, const uint32_t *frames, size_t n,
                      uint64_t count)
{
    if (!n)
        return;
    uint32_t own, call;
    site_of(nm, frames, n, &own, &call);
    struct site *st = NULL;
    for (size_t i = 0; i < ss->n && !st; i++)
        if (ss->v[i].own == own && ss->v[i].call == call)
            st = &ss->v[i];
    if (!st) {
        GROW(ss->v, ss->cap, ss->n + 1);
        st = &ss->v[ss->n++];
        *st = (struct site){.own = own, .call = call};
    }
    st->count += count;
    ss->total += count;
    if (count > st->bestcount) {
        st->best = frames;
        st->bestlen = n;
        st->bestcount = count;
    }
}

static int by_count(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->own < y->own ? -1 : x->own > y->own;
}

/* Every stack of agg a that starts with root (root dropped), or every stack when root is UINT32_MAX. */
static void sites_from(struct sites *ss, const struct names *nm, const struct agg *a,
                       uint32_t root)
{
    for (size_t i = 0; i < a->nstacks; i++) {
        const struct agg_stack *s = &a->stacks[i];
        const uint32_t *f = a->frames + s->off;
        size_t n = s->len;
        if (root != UINT32_MAX) {
            if (!n || f[0] != root)
                continue;
            f++;
            n--;
        }
        sites_add(ss, nm, f, n, s->count);
    }
    if (ss->n)
        qsort(ss->v, ss->n, sizeof(*ss->v), by_count);
}

/* ---- threads waiting on locks, from each sample ---- */

struct thread_waits {
    struct agg agg;
    uint32_t thread;
    uint32_t *scratch;
    size_t cap;
    uint64_t samples;       /* thread samples seen (threads with a stack) */
    uint32_t threads_max;   /* threads in one sample, at most */
};

static void on_sample(void *ctx, struct session *s, const struct snapshot *sn)
{
    struct thread_waits *tw = ctx;
    (void)s;
    tw->threads_max = MAX(tw->threads_max, (uint32_t)sn->nselected);
    for (size_t k = 0; k < sn->nthreads; k++) {
        const struct snap_thread *t = &sn->st[k];
        if (!t->walked || t->extra || t->status < 0 || !t->depth)
            continue;
        tw->samples++;
        if (!t->lock_wait)
            continue;
        GROW(tw->scratch, tw->cap, t->depth);
        for (size_t i = 0; i < t->depth; i++)
            tw->scratch[i] = sn->ids[t->off + t->depth - 1 - i];
        agg_add(&tw->agg, tw->thread, tw->scratch, t->depth, 1);
    }
}

/* ---- the report ---- */

static void put_frame_text(const struct names *nm, uint32_t id, struct strbuf *out)
{
    label_frame(nm, id, out);
}

/* "`call` <- `own`", most recent first as everywhere, or "`own`". */
static void put_site_text(const struct names *nm, const struct site *st, struct strbuf *out)
{
    sb_addc(out, '`');
    if (st->call != UINT32_MAX) {
        put_frame_text(nm, st->call, out);
        sb_adds(out, "` <- `");
    }
    put_frame_text(nm, st->own, out);
    sb_addc(out, '`');
}

static void put_table_text(const struct names *nm, const struct sites *ss, const char *what,
                           const char *unit, double looks, double period, size_t top,
                           struct strbuf *out)
{
    sb_addf(out, "%s\n", what);
    if (!ss->n)
        sb_adds(out, "  none\n");
    for (size_t i = 0; i < ss->n && i < top; i++) {
        const struct site *st = &ss->v[i];
        sb_addf(out, "%3zu. ", i + 1);
        put_site_text(nm, st, out);
        sb_addf(out, "\n     %.2f %s, %.1f waiting on average, %.1f%%\n",
                (double)st->count * period, unit, looks > 0 ? (double)st->count / looks : 0.0,
                100.0 * (double)st->count / (double)ss->total);
        /* The stack that leads there most often, most recent call first. */
        for (size_t j = st->bestlen; j-- > 0;) {
            sb_adds(out, "        ");
            put_frame_text(nm, st->best[j], out);
            sb_addc(out, '\n');
        }
    }
    if (ss->n > top)
        sb_addf(out, "  ... %zu more site%s\n", ss->n - top, ss->n - top == 1 ? "" : "s");
}

static void put_table_json(const struct names *nm, const struct sites *ss, const char *key,
                           double looks, double period, size_t top, struct strbuf *out)
{
    sb_addf(out, ",\n\"%s\": [", key);
    for (size_t i = 0; i < ss->n && i < top; i++) {
        const struct site *st = &ss->v[i];
        sb_addf(out, "%s\n  {\"seconds\": %.3f, \"waiting\": %.2f, \"share\": %.4f, \"site\": ",
                i ? "," : "", (double)st->count * period,
                looks > 0 ? (double)st->count / looks : 0.0, (double)st->count / (double)ss->total);
        dump_print_frame_json(nm, st->own, out);
        sb_adds(out, ", \"call\": ");
        if (st->call == UINT32_MAX)
            sb_adds(out, "null");
        else
            dump_print_frame_json(nm, st->call, out);
        sb_adds(out, ", \"stack\": [");
        for (size_t j = st->bestlen; j-- > 0;) {
            dump_print_frame_json(nm, st->best[j], out);
            if (j)
                sb_adds(out, ", ");
        }
        sb_adds(out, "]}");
    }
    sb_adds(out, ss->n ? "\n]" : "]");
}

/*
 * Times are counts over the rate; "waiting on average" is a site's count
 * over the looks taken: censuses for greenlets (each greenlet counts once
 * per census), samples for threads.
 */
static void report(const struct locks_opts *o, const struct session *s,
                   const struct sampler_result *r, const struct sites *gs,
                   const struct sites *ks, const struct sites *ts,
                   const struct thread_waits *tw, struct strbuf *out)
{
    const struct gcensus_stats *g = &r->greenlets;
    const struct tcensus_stats *k = &r->tasks;
    double secs = (double)r->elapsed_ns / 1e9, period = 1.0 / o->so.rate;
    double avg = g->censuses ? (double)g->counted / (double)g->censuses : 0.0;
    /* A task census counts for the samples since the last (put off to keep
     * censuses cheap): task-time is over the samples they count for. */
    double kavg = r->task_ticks ? (double)r->task_samples / (double)r->task_ticks : 0.0;
    if (o->json) {
        sb_addf(out, "{\"pid\": %d, \"seconds\": %.3f, \"samples\": %" PRIu64
                ", \"censuses\": %" PRIu64 ", \"greenlets\": %.2f, \"task_censuses\": %" PRIu64
                ", \"tasks\": %.2f, \"threads\": %u", (int)s->pid, secs, r->ticks, g->censuses,
                avg, k->censuses, kavg, tw->threads_max);
        put_table_json(s->names, gs, "greenlet_waits", (double)g->censuses, period, o->top, out);
        put_table_json(s->names, ks, "task_waits", (double)r->task_ticks, period, o->top, out);
        put_table_json(s->names, ts, "thread_waits", (double)r->ticks, period, o->top, out);
        sb_adds(out, "\n}\n");
        return;
    }
    sb_addf(out, "Process %d: %.2f s, %" PRIu64 " samples of %u thread%s, %" PRIu64
            " greenlet censuses (%.1f greenlets on average), %" PRIu64 " task censuses (%.1f "
            "waiting tasks on average)\n\n", (int)s->pid, secs, r->ticks, tw->threads_max,
            tw->threads_max == 1 ? "" : "s", g->censuses, avg, k->censuses, kavg);
    put_table_text(s->names, gs, "Where greenlets wait (parked), by greenlet-time:", "greenlet-s",
               (double)g->censuses, period, o->top, out);
    sb_addc(out, '\n');
    put_table_text(s->names, ks, "Where asyncio tasks wait, by task-time:", "task-s",
               (double)r->task_ticks, period, o->top, out);
    sb_addc(out, '\n');
    put_table_text(s->names, ts, "Where threads wait on a lock, by thread-time:", "thread-s",
               (double)r->ticks, period, o->top, out);
}

int cmd_locks(int argc, char **argv)
{
    struct locks_opts o;
    struct session s;
    struct pserr err;
    pid_t child = 0;
    int ret, status = 1;
    if ((ret = locks_read_options(argc, argv, &o)) != 0) {
        sampling_release(&o.so);
        return ret < 0 ? 0 : ret;
    }
    sampling_catch_stop(on_stop_signal);
    if ((ret = sampling_start(&o.so, &s, &child, &stop_requested, &err)) < 0) {
        status = cli_error(&err);
        sampling_release(&o.so);
        if (child) {
            int terminated;
            launch_finish(child, 0, &terminated);
        }
        return status;
    }
    struct thread_waits tw = {0};
    agg_init(&tw.agg);
    tw.thread = agg_thread(&tw.agg, 0, 0);
    struct sampler_hook hook = {.on_sample = on_sample, .ctx = &tw};
    struct sampler_opts so = {
        .rate = o.so.rate,
        .duration = o.so.duration,
        .stop = &stop_requested,
        .child = child,
        .status_line = 0,
        .greenlets = 1,
        .census_every = 1,
        .tasks = 1,
        .task_every = 1,
        .hook = &hook,
    };
    /* Every thread, with its state: a lock waiter is idle in a futex. */
    o.so.idle = 1;
    sampling_snap_opts(&o.so, &so.snap);
    so.snap.want_state = so.snap.want_wait = 1;
    struct agg a;
    agg_init(&a);
    struct sampler_result r;
    sampler_run(&s, &so, &a, &r);
    struct sites gs = {0}, ts = {0}, ks = {0};
    sites_from(&gs, s.names, &a, names_label_frame(s.names, "greenlet parked"));
    sites_from(&ks, s.names, &a, names_label_frame(s.names, "task waiting"));
    sites_from(&ts, s.names, &tw.agg, UINT32_MAX);
    struct strbuf out = STRBUF_INIT;
    report(&o, &s, &r, &gs, &ks, &ts, &tw, &out);
    if (fwrite(out.buf, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        status = cli_fail("cannot write the report: %s", strerror(errno));
    else
        status = 0;
    if (!r.greenlets.censuses && !r.tasks.censuses)
        fprintf(stderr, "pystrobe: no greenlets or asyncio tasks counted: %s; %s\n",
                r.census_waits ? "the target has not imported greenlet"
                               : "greenlets could not be read (see above)",
                r.task_waits ? "it has not imported asyncio"
                             : "its tasks could not be read (see above)");
    sb_release(&out);
    free(gs.v);
    free(ks.v);
    free(ts.v);
    free(tw.scratch);
    agg_release(&tw.agg);
    agg_release(&a);
    if (child) {
        int terminated;
        if (!r.child_reaped)
            launch_finish(child, LOCKS_GRACE_MS, &terminated);
    }
    session_release(&s);
    sampling_release(&o.so);
    return status;
}
