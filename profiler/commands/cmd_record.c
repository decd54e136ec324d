/* pystrobe record: sample a process into a profile. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "output/agg.h"
#include "output/profile.h"
#include "output/outfile.h"
#include "output/writers.h"
#include "profiler/commands/cli.h"
#include "profiler/commands/options.h"
#include "profiler/target/launch.h"
#include "profiler/target/proc.h"
#include "profiler/sampling/sampler.h"
#include "profiler/sampling/sampling.h"
#include "profiler/sampling/session.h"

/* How long a launched command gets to exit by itself once the recording ends. */
#define LAUNCH_GRACE_MS 2000

struct record_opts {
    struct sampling_opts so;
    const char *output;
    const char *format;
    int threads, reverse, greenlets, tasks;
    double greenlet_rate;   /* censuses per second asked for, 0: the sampling rate */
    double task_rate;       /* task censuses per second asked for, 0: the sampling rate */
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The format: -f, else -o's extension, else a flame graph. */
static int choose_format(const struct record_opts *o, enum out_format *fmt)
{
    *fmt = OUT_FLAMEGRAPH;
    if (o->format) {
        if (out_format_by_name(o->format, fmt) < 0)
            return cli_usage("unknown format '%s': use one of %s", o->format, out_format_list());
    } else if (o->output) {
        out_format_by_path(o->output, fmt);
    }
    return 0;
}

static int parse_record(int argc, char **argv, struct record_opts *o)
{
    enum { OPT_THREADS = OPT_SAMPLING_END, OPT_REVERSE, OPT_GREENLETS, OPT_GREENLET_RATE,
           OPT_TASKS, OPT_TASK_RATE };
    static const struct option longopts[] = {
        SAMPLING_LONGOPTS,
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"greenlets", no_argument, NULL, OPT_GREENLETS},
        {"greenlet-rate", required_argument, NULL, OPT_GREENLET_RATE},
        {"tasks", no_argument, NULL, OPT_TASKS},
        {"task-rate", required_argument, NULL, OPT_TASK_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, ret;
    memset(o, 0, sizeof(*o));
    sampling_init(&o->so);
    opterr = 0;
    /* '+': stop at the first non-option, so the command's own options stay its own. */
    while ((c = getopt_long(argc, argv, "+:" SAMPLING_SHORTOPTS "o:f:h", longopts, NULL)) != -1) {
        if ((ret = options_sampling(&o->so, c, optarg)) != 0) {
            if (ret != 1)
                return ret;
            continue;
        }
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case OPT_THREADS: o->threads = 1; break;
        case OPT_REVERSE: o->reverse = 1; break;
        case OPT_GREENLETS: o->greenlets = 1; break;
        case OPT_GREENLET_RATE: {
            char *end;
            o->greenlet_rate = strtod(optarg, &end);
            if (end == optarg || *end || !(o->greenlet_rate > 0) || o->greenlet_rate > MAX_RATE)
                return cli_usage("invalid --greenlet-rate '%s': expected censuses per second, "
                                 "above 0 and at most the sampling rate", optarg);
            break;
        }
        case OPT_TASKS: o->tasks = 1; break;
        case OPT_TASK_RATE: {
            char *end;
            o->task_rate = strtod(optarg, &end);
            if (end == optarg || *end || !(o->task_rate > 0) || o->task_rate > MAX_RATE)
                return cli_usage("invalid --task-rate '%s': expected censuses per second, "
                                 "above 0 and at most the sampling rate", optarg);
            break;
        }
        case 'h':
            cmd_help("record");
            return -1;
        default:
            return cli_bad_option("record", c, argv);
        }
    }
    if ((ret = options_operands(&o->so, "record", argc, argv)) != 0)
        return ret;
    if (o->greenlet_rate && !o->greenlets)
        return cli_usage("--greenlet-rate needs --greenlets");
    if (o->greenlet_rate > o->so.rate)
        return cli_usage("--greenlet-rate %g is above the sampling rate %g: a census comes "
                         "with a sample", o->greenlet_rate, o->so.rate);
    if (o->task_rate && !o->tasks)
        return cli_usage("--task-rate needs --tasks");
    if (o->task_rate > o->so.rate)
        return cli_usage("--task-rate %g is above the sampling rate %g: a census comes "
                         "with a sample", o->task_rate, o->so.rate);
    if (o->tasks && o->so.native)
        return cli_usage("--tasks does not go with --native yet: a running task's samples "
                         "are put under its awaiters by their Python frames alone");
    return 0;
}

/* Samples per census: the census runs with every Nth sample and counts N for each greenlet
 * (or task), N the sampling rate over the census rate (0: every sample). */
static unsigned every_nth(const struct record_opts *o, double census_rate)
{
    if (!census_rate)
        return 1;
    double n = floor(o->so.rate / census_rate + 0.5);
    return n < 1 ? 1 : (unsigned)n;
}

static unsigned census_every(const struct record_opts *o)
{
    return every_nth(o, o->greenlet_rate);
}

static void default_output(pid_t pid, enum out_format fmt, struct strbuf *out)
{
    time_t t = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
    sb_addf(out, "pystrobe-%d-%s%s", (int)pid, stamp, out_format_ext(fmt));
}

/* What native frames cost the target: how long its threads were held. */
static void summarize_native(const struct sampler_result *r)
{
    const struct nstack_stats *n = &r->native;
    struct strbuf sb = STRBUF_INIT;
    sb_addf(&sb, "pystrobe: native frames: threads held %" PRIu64 " times", n->held);
    if (n->held)
        sb_addf(&sb, ", %.1f us each on average (longest %.1f us)",
                (double)n->held_ns / 1e3 / (double)n->held, (double)n->held_max_ns / 1e3);
    if (r->ticks)
        sb_addf(&sb, "; pause per sample %.1f us", (double)n->held_ns / 1e3 / (double)r->ticks);
    if (n->hold_failed)
        sb_addf(&sb, "; %" PRIu64 " stacks without native frames (thread not stopped)",
                n->hold_failed);
    if (r->late_stops)
        sb_addf(&sb, "; %" PRIu64 " threads stopped late, let go as they stopped", r->late_stops);
    if (n->unwind_failed)
        sb_addf(&sb, "; %" PRIu64 " stacks without native frames (not unwound)", n->unwind_failed);
    if (n->mismatched)
        sb_addf(&sb, "; %" PRIu64 " merged with frames left over", n->mismatched);
    fprintf(stderr, "%s\n", sb.buf);
    sb_release(&sb);
}

/* What the greenlet census found, and what it cost. */
static void summarize_greenlets(const struct record_opts *o, const struct sampler_result *r)
{
    const struct gcensus_stats *g = &r->greenlets;
    struct strbuf sb = STRBUF_INIT;
    unsigned every = census_every(o);
    if (!g->censuses) {
        fprintf(stderr, "pystrobe: greenlets: no census taken%s\n",
                r->census_waits ? " (the target never imported greenlet)" : "");
        return;
    }
    double n = (double)g->censuses;
    sb_addf(&sb, "pystrobe: greenlets: %" PRIu64 " censuses (%g Hz), each counting %u sample%s "
            "a greenlet; %.1f greenlets on average (%.1f parked, %.1f running), at most %" PRIu64,
            g->censuses, o->so.rate / every, every, every == 1 ? "" : "s",
            (double)g->counted / n, (double)g->parked / n, (double)g->running / n, g->most);
    if (g->not_started || g->dead)
        sb_addf(&sb, "; not counted: %.1f not started, %.1f dead", (double)g->not_started / n,
                (double)g->dead / n);
    if (g->unreadable)
        sb_addf(&sb, "; %" PRIu64 " unreadable", g->unreadable);
    if (r->running_unknown)
        sb_addf(&sb, "; %" PRIu64 " running without a stack", r->running_unknown);
    if (g->failed)
        sb_addf(&sb, "; %" PRIu64 " censuses failed", g->failed);
    fprintf(stderr, "%s\n", sb.buf);
    sb_reset(&sb);
    sb_addf(&sb, "pystrobe: greenlets: cost per census: %.1f us CPU, %.1f reads; stacks read "
            "%" PRIu64 ", kept %" PRIu64 "; walks of all generations %" PRIu64 ", of the "
            "young ones %" PRIu64 " (%" PRIu64 " more not needed)", (double)r->census_ns / 1e3 / n,
            (double)g->reads / n, g->stacks_read, g->stacks_kept, g->walks_full, g->walks_young,
            g->walks_skipped);
    if (g->walks_failed)
        sb_addf(&sb, ", broken off %" PRIu64 " (what they found is kept)", g->walks_failed);
    fprintf(stderr, "%s\n", sb.buf);
    sb_release(&sb);
}

/* What the task census found, and what it cost. */
static void summarize_tasks(const struct record_opts *o, const struct sampler_result *r)
{
    const struct tcensus_stats *t = &r->tasks;
    unsigned every = every_nth(o, o->task_rate);
    if (!t->censuses) {
        fprintf(stderr, "pystrobe: tasks: no census taken%s\n",
                r->task_waits ? " (the target never imported asyncio)" : "");
        return;
    }
    double n = (double)t->censuses;
    struct strbuf sb = STRBUF_INIT;
    double secs = (double)r->elapsed_ns / 1e9;
    sb_addf(&sb, "pystrobe: tasks: %" PRIu64 " censuses (%.1f Hz; asked for: %g Hz, each "
            "counting %u sample%s a waiting task), %.1f tasks on average (%.1f waiting, %.1f "
            "running), at most %" PRIu64 "; %" PRIu64 " samples of waiting tasks counted",
            t->censuses, secs > 0 ? (double)t->censuses / secs : 0.0, o->so.rate / every,
            every, every == 1 ? "" : "s", (double)(t->waiting + t->running) / n,
            (double)t->waiting / n, (double)t->running / n, t->most, r->task_samples);
    if (r->task_put_off)
        sb_addf(&sb, "; censuses put off %" PRIu64 " times to keep them under %d%% of a CPU "
                "(each then counts for the samples since the last)", r->task_put_off,
                TCENSUS_MAX_SHARE);
    if (t->not_started || t->done)
        sb_addf(&sb, "; not counted: %.1f not started, %.1f done", (double)t->not_started / n,
                (double)t->done / n);
    if (t->unreadable)
        sb_addf(&sb, "; %" PRIu64 " unreadable", t->unreadable);
    if (t->failed)
        sb_addf(&sb, "; %" PRIu64 " censuses failed", t->failed);
    if (t->stitched)
        sb_addf(&sb, "; %" PRIu64 " samples of a running task under its awaiters", t->stitched);
    fprintf(stderr, "%s\n", sb.buf);
    fprintf(stderr, "pystrobe: tasks: cost per census: %.1f us CPU, %.1f reads\n",
            (double)t->ns / 1e3 / n, (double)t->reads / n);
    sb_release(&sb);
}

/* Appends " (why n, why n...)" for the nonzero counts of v. */
static void add_causes(struct strbuf *sb, const uint64_t *v)
{
    const char *sep = " (";
    for (int i = 1; i < TORN_COUNT; i++) {
        if (!v[i])
            continue;
        sb_addf(sb, "%s%s %" PRIu64, sep, walk_torn_name((enum walk_torn)i), v[i]);
        sep = ", ";
    }
    if (*sep == ',')
        sb_addf(sb, ")");
}

/* How often stacks were read while they moved, and what became of them. */
static void torn_summary(const struct sampler_result *r)
{
    uint64_t drops = 0;
    for (int i = 0; i < TORN_COUNT; i++)
        drops += r->torn_drops[i];
    if (!r->retries && !drops && !r->cut)
        return;
    struct strbuf sb = STRBUF_INIT;
    sb_addf(&sb, "pystrobe: stacks that moved while read: %" PRIu64 " walks taken again",
            r->retries);
    add_causes(&sb, r->torn_tries);
    sb_addf(&sb, "; %" PRIu64 " dropped after %d tries", drops, SNAP_TRIES);
    add_causes(&sb, r->torn_drops);
    if (r->cut)
        sb_addf(&sb, "; %" PRIu64 " cut at the frame then running", r->cut);
    fprintf(stderr, "%s\n", sb.buf);
    sb_release(&sb);
}

/* Stacks kept with a frame whose code object could not be read on any try. */
static void unreadable_summary(const struct sampler_result *r)
{
    if (!r->unreadable)
        return;
    fprintf(stderr, "pystrobe: %" PRIu64 " stack read%s found a code object unreadable on every "
            "try: kept, that frame shown as <unreadable code object at 0x...> (%" PRIu64
            " walks taken again before it was judged so)\n", r->unreadable,
            r->unreadable == 1 ? "" : "s", r->unreadable_retries);
}

static void print_summary(const struct record_opts *o, const struct sampler_result *r,
                          const struct agg *a, const struct pyrt *rt)
{
    struct strbuf sb = STRBUF_INIT;
    double secs = (double)r->elapsed_ns / 1e9;
    uint64_t dropped = 0;
    for (int d = 0; d < DROP_COUNT; d++)
        dropped += r->dropped[d];
    if (r->target_exited && !o->so.command)
        fprintf(stderr, "pystrobe: process %d ended after %.2f s\n", (int)o->so.pid, secs);
    sb_addf(&sb, "pystrobe: %" PRIu64 " samples from %zu thread%s", r->stacks, a->nthreads,
            a->nthreads == 1 ? "" : "s");
    if (o->so.subprocesses)
        sb_addf(&sb, " of %zu process%s", a->nprocs, a->nprocs == 1 ? "" : "es");
    sb_addf(&sb, " in %.2f s (%.1f Hz of %g Hz)", secs,
            secs > 0 ? (double)r->ticks / secs : 0.0, o->so.rate);
    if (dropped) {
        sb_addf(&sb, "; %" PRIu64 " dropped:", dropped);
        const char *sep = " ";
        for (int d = 0; d < DROP_COUNT; d++) {
            if (!r->dropped[d])
                continue;
            sb_addf(&sb, "%s%" PRIu64 " %s", sep, r->dropped[d], sampler_drop_name(d));
            sep = ", ";
        }
    }
    if (r->truncated)
        sb_addf(&sb, "; %" PRIu64 " stacks truncated at %d frames", r->truncated,
                WALK_MAX_DEPTH);
    fprintf(stderr, "%s\n", sb.buf);
    if (rt->layout.untested)
        fprintf(stderr, "pystrobe: Python %s%s: read through its "
                "_Py_DebugOffsets and %d.%d's tables; no bytecode table for %d.%d, so the %" PRIu64
                " stacks were checked for tearing by their frame links only\n",
                rt->version, pyrt_tested_note(rt), rt->layout.major, layout_newest_minor(),
                rt->layout.major,
                rt->layout.minor, r->stacks);
    torn_summary(r);
    unreadable_summary(r);
    if (r->ticks)
        fprintf(stderr, "pystrobe: cost per sample: %.1f us CPU, %.1f reads\n",
                (double)r->cpu_ns / 1e3 / (double)r->ticks, (double)r->reads / (double)r->ticks);
    if (o->so.native)
        summarize_native(r);
    if (o->greenlets)
        summarize_greenlets(o, r);
    if (o->tasks)
        summarize_tasks(o, r);
    if (r->stacks == 0 && ((o->greenlets && r->greenlets.censuses) ||
                           (o->tasks && r->tasks.censuses)))
        ; /* the censuses are the samples */
    else if (r->stacks == 0 && (o->so.filter.nres || o->so.filter.ntids))
        fprintf(stderr, "pystrobe: no samples: no thread selected by --thread/--tid ran "
                "Python%s\n", o->so.idle ? "" : " on a CPU");
    else if (r->stacks == 0 && o->so.gil)
        fprintf(stderr, "pystrobe: no samples: no thread held the GIL while running Python\n");
    else if (r->stacks == 0)
        fprintf(stderr, "pystrobe: no samples: no thread ran Python on a CPU%s\n",
                o->so.idle ? "" : " (add --idle to sample waiting threads too)");
    sb_release(&sb);
}

/* What was profiled, as the profile's title: read at the start, while the target is alive. */
static char *target_title(const struct record_opts *o, pid_t pid)
{
    struct strbuf sb = STRBUF_INIT, raw = STRBUF_INIT;
    proc_cmdline(pid, &raw);
    /* The title is shown: nothing in it may reorder or hide the rest. */
    sb_add_clean(&sb, raw.buf ? raw.buf : "", raw.len);
    sb_release(&raw);
    if (!sb.len && o->so.command) {
        for (char **c = o->so.command; *c; c++) {
            sb_adds(&sb, c == o->so.command ? "" : " ");
            sb_add_clean(&sb, *c, strlen(*c));
        }
    }
    sb_addf(&sb, "%s(pid %d)", sb.len ? " " : "", (int)pid);
    return sb_detach(&sb);
}

/* What the profile says about itself: the target, when, how long, how often. */
static void describe(struct profile *p, const struct record_opts *o, const char *title,
                     int64_t start_ns, const struct sampler_result *r)
{
    p->meta.title = xstrdup(title);
    p->meta.start_ns = start_ns;
    p->meta.duration_ns = (int64_t)r->elapsed_ns;
    p->meta.rate = o->so.rate;
    p->meta.mode = sampling_mode(&o->so);
}

static int write_profile(struct outfile *out, const struct agg *a, const struct names *n,
                         const struct pyrt *rt, const struct record_opts *o,
                         const struct sampler_result *r,
                         enum out_format fmt, const char *title, int64_t start_ns)
{
    struct pserr err;
    struct profile p;
    profile_init(&p);
    profile_from_agg(&p, a, n, o->threads);
    describe(&p, o, title, start_ns, r);
    struct out_opts oo = {.reverse = o->reverse};
    int wret = out_write(out->f, &p, fmt, &oo);
    profile_release(&p);
    if (wret < 0) {
        int e = -wret;
        return cli_fail("cannot write %s: %s", out->path, strerror(e));
    }
    size_t stacks = a->nstacks;
    char *path = xstrdup(out->path);
    int ret = outfile_commit(out, &err);
    print_summary(o, r, a, rt);
    if (ret == 0)
        fprintf(stderr, "pystrobe: wrote %s (%zu distinct stacks)\n", path, stacks);
    free(path);
    return ret < 0 ? cli_error(&err) : 0;
}

int cmd_record(int argc, char **argv)
{
    struct record_opts o;
    struct outfile out = {0};
    struct session s;
    struct pserr err;
    struct agg a;
    enum out_format fmt;
    pid_t child = 0;
    int ret, status = 1;

    if ((ret = parse_record(argc, argv, &o)) != 0 || (ret = choose_format(&o, &fmt)) != 0) {
        sampling_release(&o.so);
        return ret < 0 ? 0 : ret;
    }
    /* An unwritable destination fails now, before anything is started. */
    if (o.output && outfile_open(&out, o.output, &err) < 0) {
        sampling_release(&o.so);
        return cli_error(&err);
    }

    sampling_catch_stop(on_stop_signal);

    if ((ret = sampling_start(&o.so, &s, &child, &stop_requested, &err)) < 0) {
        status = cli_error(&err);
        goto out_nosession;
    }
    if (!o.output) {
        struct strbuf path = STRBUF_INIT;
        default_output(o.so.pid, fmt, &path);
        ret = outfile_open(&out, path.buf, &err);
        sb_release(&path);
        if (ret < 0) {
            status = cli_error(&err);
            goto out;
        }
    }

    struct sampler_opts so = {
        .rate = o.so.rate,
        .duration = o.so.duration,
        .threads = o.threads,
        .stop = &stop_requested,
        .child = child,
        .status_line = isatty(2),
        .subprocesses = o.so.subprocesses,
        .native = o.so.native,
        .greenlets = o.greenlets,
        .census_every = census_every(&o),
        .tasks = o.tasks,
        .task_every = every_nth(&o, o.task_rate),
    };
    sampling_snap_opts(&o.so, &so.snap);
    /* A running task's samples are put under its awaiters by its frames' addresses. */
    if (o.tasks)
        so.snap.want_info = 1;
    struct sampler_result r;
    agg_init(&a);
    char *title = target_title(&o, o.so.pid);
    int64_t start_ns = (int64_t)wall_ns();
    sampler_run(&s, &so, &a, &r);
    /* The profile first: a closed stderr must not cost the profile. */
    status = write_profile(&out, &a, s.names, &s.rt, &o, &r, fmt, title, start_ns);
    free(title);
    agg_release(&a);
    if (child) {
        int terminated = 0, st = r.child_status;
        struct strbuf d = STRBUF_INIT;
        if (!r.child_reaped)
            st = launch_finish(child, LAUNCH_GRACE_MS, &terminated);
        child = 0;
        launch_describe(st, &d);
        if (terminated)
            fprintf(stderr, "pystrobe: the command was still running: stopped it (%s)\n",
                    d.buf);
        else
            fprintf(stderr, "pystrobe: the command ended with %s\n", d.buf);
        sb_release(&d);
    }
out:
    session_release(&s);
out_nosession:
    outfile_abort(&out);
    if (child) {
        int terminated;
        launch_finish(child, 0, &terminated);
    }
    sampling_release(&o.so);
    return status;
}
