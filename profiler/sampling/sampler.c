#include "profiler/sampling/sampler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler/target/launch.h"
#include "profiler/target/proc.h"
#include "profiler/target/ptstop.h"

/* Threads unseen for this many ticks are forgotten. */
#define FORGET_AFTER 64
/* Threads threading does not know yet are looked up again this often. */
#define RENAME_EVERY_NS 250000000u
/* How often threads that stopped late are looked for, while there are any. */
#define PENDING_POLL_NS 1000000u
/* How often native stacks look for libraries loaded since. */
#define REFRESH_NATIVE_NS 2000000000u

static const char *const drop_names[DROP_COUNT] = {
    "torn stack", "unreadable memory", "unreadable thread list",
    "behind schedule", "no Python frame",
};

const char *sampler_drop_name(enum drop_reason d)
{
    return (unsigned)d < DROP_COUNT ? drop_names[d] : "?";
}

static enum drop_reason reason_of(int status)
{
    switch (status) {
    case -EFAULT: return DROP_UNREADABLE;
    default: return DROP_TORN;
    }
}

/* A process sampled: the target, or one of its descendants. */
struct sproc {
    struct session *s;   /* NULL while not attached (not Python, or not yet) */
    struct nstack *ns;   /* native frames (with native), NULL when none */
    struct gcensus *gc;  /* the greenlet census (with greenlets), NULL before the first */
    int gc_off;          /* greenlets cannot be read in this process: no census */
    struct tcensus *tc;  /* the task census (with tasks), NULL before the first */
    int tc_off;          /* tasks cannot be read in this process: no census */
    struct snapshot sn;
    pid_t pid;
    uint64_t start_time; /* with pid, which process this is */
    char comm[64];       /* its name when last scanned: a change means exec */
    char *command;       /* its command line, read at attach */
    uint32_t agg;        /* its index in the aggregate's processes */
    uint32_t scan;       /* the last scan that found it */
    int tried;           /* an attach was tried (and failed: not Python) */
    unsigned fails;      /* thread lists unreadable in a row */
};

/* Processes followed at most, and how often the tree is looked at. */
#define MAX_PROCS 256
#define SCAN_EVERY_NS 100000000u
/* A process younger than this may still be about to exec: looked at again later. */
#define MIN_AGE_NS 50000000u
/* Thread lists unreadable in a row before a process is attached again
 * (it exec'd another program, or another Python). */
#define REATTACH_AFTER 8

/* The aggregate's thread for tracked thread tr of p. */
static uint32_t tracked_agg_thread(struct sproc *p, struct agg *a, const struct sampler_opts *o,
                                   struct tracked *tr)
{
    if (tr->agg == UINT32_MAX) {
        if (o->subprocesses && p->agg == AGG_NO_PROC)
            p->agg = agg_process(a, p->pid, p->command);
        tr->agg = agg_thread_in(a, p->agg, tr->tid, tr->thread_id);
    } else if (tr->tid > 0 && a->threads[tr->agg].tid == 0) {
        /* Its tid found since it was registered: the session keeps an entry
         * only for the thread seen all along (session_track), so its samples
         * so far are that tid's too. */
        tr->agg = agg_thread_set_tid(a, tr->agg, tr->tid);
    }
    return tr->agg;
}

/* Adds each walked thread's stack (root first) to the aggregate. */
static void record_tick(struct sproc *p, struct agg *a, const struct sampler_opts *o,
                        struct sampler_result *r, uint32_t **scratch, size_t *scap)
{
    struct session *s = p->s;
    struct snapshot *sn = &p->sn;
    for (size_t k = 0; k < sn->nthreads; k++) {
        struct snap_thread *t = &sn->st[k];
        if (!t->walked)
            continue;
        if (t->status < 0) {
            r->dropped[reason_of(t->status)]++;
            continue;
        }
        if (t->depth == 0 && t->status != 1 && !o->threads) {
            /* Nothing to show without the thread as the root: say so. */
            r->dropped[DROP_NO_FRAMES]++;
            continue;
        }
        r->stacks++;
        struct tracked *tr = &s->threads[t->tracked];
        tr->want_name = 1;
        if (!a)
            continue;
        tracked_agg_thread(p, a, o, tr);
        size_t n = t->depth + 2;
        GROW(*scratch, *scap, n);
        size_t j = 0;
        if (t->status == 1) {
            (*scratch)[j++] = names_label_frame(s->names, "[truncated]");
            r->truncated++;
        }
        size_t plen = 0;
        const uint32_t *pre = NULL;
        size_t at = SIZE_MAX;
        if (p->tc && o->snap.want_info && sn->finfo && !t->native)
            for (size_t i = t->depth; i-- > 0 && !pre;)
                if ((pre = tcensus_prefix(p->tc, sn->finfo[t->off + i].addr, &plen)))
                    at = i;
        if (pre) {
            /* The task this thread runs, under the tasks that await it. */
            GROW(*scratch, *scap, n + plen);
            tcensus_stats(p->tc)->stitched++;
        }
        for (size_t i = t->depth; i-- > 0;) {
            if (i == at) {
                memcpy(*scratch + j, pre, plen * sizeof(**scratch));
                j += plen;
            }
            (*scratch)[j++] = sn->ids[t->off + i];
        }
        /* Where a thread off CPU waits shows as its leaf (--idle's markers:
         * with --gil, a holder caught blocked while it holds the GIL is
         * counted at its stack alone). */
        if (t->ts == TS_IDLE && o->snap.want_wait)
            (*scratch)[j++] = names_label_frame(s->names, "[idle]");
        else if (t->ts == TS_GIL_WAIT && o->snap.want_wait)
            (*scratch)[j++] = names_label_frame(s->names, "[gil wait]");
        agg_add(a, tr->agg, *scratch, j, 1);
    }
}

/* The thread greenlets are counted under: the main thread (greenlets run
 * in one thread in nearly every program), else the first one. */
static size_t census_thread(const struct sproc *p)
{
    const struct snapshot *sn = &p->sn;
    for (size_t k = 0; k < sn->nthreads; k++)
        if (p->s->threads[sn->st[k].tracked].tid == p->pid)
            return k;
    return 0;
}

/*
 * One census of p's greenlets: each parked greenlet's stack and each
 * running one's (its thread's, walked now if this tick did not) under a
 * root that says which, census_every times over.
 */
static void census_tick(struct sproc *p, struct agg *a, const struct sampler_opts *o,
                        struct sampler_result *r, uint32_t **scratch, size_t *scap,
                        uint64_t now)
{
    struct pserr err;
    struct session *s = p->s;
    struct snapshot *sn = &p->sn;
    if (p->gc_off || !sn->nthreads)
        return;
    if (!p->gc)
        p->gc = gcensus_new();
    uint64_t cpu0 = cpu_ns();
    int ret = gcensus_take(p->gc, s, sn->interp, o->snap.by_function, now, &err);
    if (ret == -ENOTSUP) {
        fprintf(stderr, "pystrobe: no greenlets for process %d: %s\n", (int)p->pid, err.msg);
        p->gc_off = 1;
    }
    if (ret == -ENOENT)
        r->census_waits++;
    if (ret < 0 || !a) {
        r->census_ns += cpu_ns() - cpu0;
        return;
    }
    gcensus_threads(p->gc, s, sn);
    /* Greenlets whose thread is not known count under the main thread. */
    size_t main = census_thread(p);
    uint32_t parked = names_label_frame(s->names, "greenlet parked");
    uint32_t running = names_label_frame(s->names, "greenlet running");
    for (size_t i = 0; i < gcensus_count(p->gc); i++) {
        const struct gcensus_entry *e = gcensus_entry(p->gc, i);
        size_t k = e->thread >= 0 && (size_t)e->thread < sn->nthreads ? (size_t)e->thread : main;
        struct snap_thread *t = &sn->st[k];
        const uint32_t *ids;
        size_t depth;
        uint32_t root;
        if (e->state == GL_PARKED && e->status >= 0) {
            root = parked;
            ids = e->ids;
            depth = e->depth;
        } else if (e->state == GL_RUNNING && e->status >= 0 && e->thread >= 0) {
            /* Its frames are its thread's: from this tick's walk, or one now. */
            int st = snapshot_walk_extra(s, sn, k, o->snap.by_function, o->snap.max_depth);
            if (st < 0 && st != -ENOENT) {
                r->running_unknown++;
                continue;
            }
            root = running;
            ids = sn->ids + t->off;
            depth = st < 0 ? 0 : t->depth;
        } else {
            continue;
        }
        struct tracked *tr = &s->threads[t->tracked];
        tr->want_name = 1;
        uint32_t thread = tracked_agg_thread(p, a, o, tr);
        GROW(*scratch, *scap, depth + 1);
        size_t j = 0;
        (*scratch)[j++] = root;
        for (size_t f = depth; f-- > 0;)
            (*scratch)[j++] = ids[f];
        agg_add(a, thread, *scratch, j, o->census_every);
    }
    r->census_ns += cpu_ns() - cpu0;
}

static void census_off(struct sproc *p, struct sampler_result *r)
{
    if (!p->gc)
        return;
    const struct gcensus_stats *st = gcensus_stats(p->gc);
    struct gcensus_stats *t = &r->greenlets;
    t->censuses += st->censuses;
    t->failed += st->failed;
    t->walks_full += st->walks_full;
    t->walks_young += st->walks_young;
    t->walks_skipped += st->walks_skipped;
    t->walks_failed += st->walks_failed;
    t->walk_ns += st->walk_ns;
    t->counted += st->counted;
    t->parked += st->parked;
    t->running += st->running;
    t->not_started += st->not_started;
    t->dead += st->dead;
    t->unreadable += st->unreadable;
    t->gone += st->gone;
    t->stacks_read += st->stacks_read;
    t->stacks_kept += st->stacks_kept;
    t->most = MAX(t->most, st->most);
    t->reads += st->reads;
    gcensus_free(p->gc);
    p->gc = NULL;
}

/*
 * One census of p's asyncio tasks: each waiting task's stitched stack under
 * the root "task waiting", task_every times over.
 */
static uint64_t task_tick(struct sproc *p, struct agg *a, const struct sampler_opts *o,
                          struct sampler_result *r, uint32_t **scratch, size_t *scap,
                          uint64_t now, uint64_t weight)
{
    struct pserr err;
    struct session *s = p->s;
    struct snapshot *sn = &p->sn;
    if (p->tc_off || !sn->nthreads)
        return 0;
    if (!p->tc)
        p->tc = tcensus_new();
    uint64_t ns0 = tcensus_stats(p->tc)->ns;
    int ret = tcensus_take(p->tc, s, sn->interp, o->snap.by_function, now, &err);
    uint64_t cost = tcensus_stats(p->tc)->ns - ns0;
    if (ret == -ENOTSUP) {
        fprintf(stderr, "pystrobe: no asyncio tasks for process %d: %s\n", (int)p->pid,
                err.msg);
        p->tc_off = 1;
    }
    if (ret == -ENOENT)
        r->task_waits++;
    if (ret < 0 || !a)
        return cost;
    r->task_ticks += weight;
    uint32_t waiting = names_label_frame(s->names, "task waiting");
    struct tracked *tr = &s->threads[sn->st[census_thread(p)].tracked];
    tr->want_name = 1;
    uint32_t thread = tracked_agg_thread(p, a, o, tr);
    for (size_t i = 0; i < tcensus_count(p->tc); i++) {
        const struct tcensus_entry *e = tcensus_entry(p->tc, i);
        GROW(*scratch, *scap, e->depth + 1);
        (*scratch)[0] = waiting;
        memcpy(*scratch + 1, e->ids, e->depth * sizeof(**scratch));
        agg_add(a, thread, *scratch, e->depth + 1, weight);
        r->task_samples += weight;
    }
    return cost;
}

static void task_census_off(struct sproc *p, struct sampler_result *r)
{
    if (!p->tc)
        return;
    const struct tcensus_stats *st = tcensus_stats(p->tc);
    struct tcensus_stats *t = &r->tasks;
    t->censuses += st->censuses;
    t->failed += st->failed;
    t->waiting += st->waiting;
    t->running += st->running;
    t->not_started += st->not_started;
    t->done += st->done;
    t->unreadable += st->unreadable;
    t->stitched += st->stitched;
    t->most = MAX(t->most, st->most);
    t->reads += st->reads;
    t->ns += st->ns;
    tcensus_free(p->tc);
    p->tc = NULL;
}

/* Copies thread names into the aggregate. */
static void name_agg_threads(struct session *s, struct agg *a)
{
    if (!a || !s)
        return;
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct tracked *t = &s->threads[i];
        if (t->agg != UINT32_MAX && t->name)
            agg_thread_name(a, t->agg, t->name);
    }
}

/* Native frames for p's process, when asked for and to be had. */
static void natives_begin(struct sproc *p, const struct sampler_opts *o)
{
    struct pserr err;
    if (!o->native || p->ns)
        return;
    p->ns = nstack_new(p->s, &err);
    if (!p->ns)
        fprintf(stderr, "pystrobe: no native frames for process %d: %s\n", (int)p->pid, err.msg);
}

static void natives_end(struct sproc *p, struct sampler_result *r)
{
    if (!p->ns)
        return;
    const struct nstack_stats *st = nstack_stats(p->ns);
    struct nstack_stats *t = &r->native;
    t->held += st->held;
    t->hold_failed += st->hold_failed;
    t->held_ns += st->held_ns;
    t->held_max_ns = MAX(t->held_max_ns, st->held_max_ns);
    t->unwound += st->unwound;
    t->unwind_failed += st->unwind_failed;
    t->mismatched += st->mismatched;
    nstack_free(p->ns);
    p->ns = NULL;
}

/* Adds what a process's snapshots counted of torn walks. */
static void add_torn(struct sampler_result *r, const struct snapshot *sn)
{
    r->retries += sn->retries;
    r->cut += sn->cut;
    r->unreadable += sn->unreadable;
    r->unreadable_retries += sn->unreadable_retries;
    for (int i = 0; i < TORN_COUNT; i++) {
        r->torn_tries[i] += sn->torn_tries[i];
        r->torn_drops[i] += sn->torn_drops[i];
    }
}

/* Lets go of a descendant's session (names stay in the aggregate). */
static void detach(struct sproc *p, struct agg *a, struct sampler_result *r)
{
    if (!p->s)
        return;
    natives_end(p, r);
    census_off(p, r);
    task_census_off(p, r);
    r->reads += mem_read_calls(p->s->mem);
    name_agg_threads(p->s, a);
    add_torn(r, &p->sn);
    snapshot_release(&p->sn);
    session_release(p->s);
    free(p->s);
    p->s = NULL;
}

static void release_proc(struct sproc *p, struct agg *a, struct sampler_result *r)
{
    detach(p, a, r);
    free(p->command);
    p->command = NULL;
}

/* Tries to attach to descendant p: quietly nothing when it is not Python. */
static void attach_child(struct sproc *p, struct session *root, const struct sampler_opts *o,
                         struct sampler_result *r)
{
    struct pserr err;
    struct session *s = xmalloc(sizeof(*s));
    p->tried = 1;
    if (session_attach_shared(s, p->pid, root->names, &err) < 0) {
        free(s);
        return;
    }
    p->s = s;
    p->fails = 0;
    snapshot_init(&p->sn);
    natives_begin(p, o);
    if (!p->command) {
        struct strbuf cmd = STRBUF_INIT;
        proc_cmdline(p->pid, &cmd);
        p->command = cmd.len ? sb_detach(&cmd) : xstrdup(p->comm);
        sb_release(&cmd);
    }
    r->processes++;
}

/*
 * Looks at the target's process tree: new descendants are attached (once
 * old enough not to be between fork and exec), gone ones let go, and ones
 * that exec'd (a new name) attached again.
 */
static void scan_tree(struct sproc **procs, size_t *nprocs, size_t *cap, uint32_t scan,
                      struct agg *a, const struct sampler_opts *o, struct sampler_result *r)
{
    pid_t *pids = NULL;
    size_t n = 0, pcap = 0;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t now_boot = proc_boot_ns();
    GROW(pids, pcap, 1);
    pids[n++] = (*procs)[0].pid;
    /* Breadth first; a pid met twice (reused while scanning) is not expanded twice. */
    for (size_t i = 0; i < n && n < MAX_PROCS; i++) {
        size_t before = n;
        if (proc_children(pids[i], &pids, &n, &pcap, MAX_PROCS) < 0)
            continue;
        for (size_t j = before; j < n; j++) {
            for (size_t k = 0; k < j; k++) {
                if (pids[k] == pids[j]) {
                    pids[j--] = pids[--n];
                    break;
                }
            }
        }
    }
    (*procs)[0].scan = scan;
    for (size_t i = 1; i < n; i++) {
        uint64_t start;
        char comm[64];
        if (proc_identity(pids[i], &start, comm, sizeof(comm)) < 0)
            continue;
        struct sproc *p = NULL;
        for (size_t k = 1; k < *nprocs; k++)
            if ((*procs)[k].pid == pids[i])
                p = &(*procs)[k];
        if (p && p->start_time != start) {
            release_proc(p, a, r); /* the pid of a process gone, reused */
            p->tried = 0;
        } else if (p && strcmp(p->comm, comm) != 0) {
            detach(p, a, r); /* exec'd: another program now */
            p->tried = 0;
            free(p->command);
            p->command = NULL;
        }
        if (!p) {
            GROW(*procs, *cap, *nprocs + 1);
            p = &(*procs)[(*nprocs)++];
            memset(p, 0, sizeof(*p));
            p->agg = AGG_NO_PROC;
        }
        if (p->start_time != start || strcmp(p->comm, comm) != 0)
            p->agg = AGG_NO_PROC; /* a new process in the profile */
        p->pid = pids[i];
        p->start_time = start;
        snprintf(p->comm, sizeof(p->comm), "%s", comm);
        p->scan = scan;
        uint64_t started = hz > 0 ? start * (1000000000u / (uint64_t)hz) : 0;
        if (!p->s && !p->tried && now_boot >= started + MIN_AGE_NS)
            attach_child(p, (*procs)[0].s, o, r);
    }
    /* Descendants no longer in the tree have exited. */
    size_t k = 1;
    for (size_t i = 1; i < *nprocs; i++) {
        if ((*procs)[i].scan != scan)
            release_proc(&(*procs)[i], a, r);
        else
            (*procs)[k++] = (*procs)[i];
    }
    *nprocs = k;
    free(pids);
}

static int child_exited(pid_t child, struct sampler_result *r)
{
    if (child <= 0 || r->child_reaped)
        return r->child_reaped;
    r->child_reaped = launch_reap(child, &r->child_status) == 0;
    return r->child_reaped;
}

static void status_line(const struct sampler_result *r, uint64_t elapsed)
{
    uint64_t dropped = 0;
    for (int d = 0; d < DROP_COUNT; d++)
        dropped += r->dropped[d];
    double secs = (double)elapsed / 1e9;
    fprintf(stderr, "\rpystrobe: %.1f s, %llu samples, %.1f Hz, %llu dropped   ", secs,
            (unsigned long long)r->stacks, secs > 0 ? (double)r->ticks / secs : 0.0,
            (unsigned long long)dropped);
    fflush(stderr);
}

/* The state of one sampler_run. */
struct loop {
    struct session *s;
    const struct sampler_opts *o;
    struct agg *a;
    struct sampler_result *r;
    struct sproc *procs;        /* the target first: it is never let go */
    size_t nprocs, pcap;
    uint32_t *scratch;
    size_t scap;
    uint64_t period, start, end, next;
    uint64_t last_status, last_rename, last_scan, last_refresh;
    uint64_t cpu0, reads0, late0, susp_seen;
    uint32_t scan;
    uint64_t tc_ticks;          /* ticks since the last task census (its weight) */
    uint64_t tc_next;           /* no task census before this (its CPU share) */
    uint64_t tc_cost;           /* CPU time of this tick's task censuses */
};

static void loop_begin(struct loop *l, struct session *s, const struct sampler_opts *o,
                       struct agg *a, struct sampler_result *r)
{
    memset(l, 0, sizeof(*l));
    l->s = s;
    l->o = o;
    l->a = a;
    l->r = r;
    l->period = (uint64_t)(1e9 / o->rate);
    l->start = now_ns();
    l->cpu0 = cpu_ns();
    l->reads0 = mem_read_calls(s->mem);
    l->end = o->duration > 0 ? l->start + (uint64_t)(o->duration * 1e9) : UINT64_MAX;
    l->next = l->last_status = l->last_rename = l->start;
    l->last_refresh = l->start;
    l->late0 = ptstop_late_stops();
    l->susp_seen = ptstop_suspended_ns();
    memset(r, 0, sizeof(*r));
    if (l->period == 0)
        l->period = 1;
    GROW(l->procs, l->pcap, 1);
    struct sproc *p = &l->procs[0];
    memset(p, 0, sizeof(*p));
    l->nprocs = 1;
    p->s = s;
    p->pid = s->pid;
    p->agg = AGG_NO_PROC;
    snapshot_init(&p->sn);
    natives_begin(p, o);
    if (o->subprocesses) {
        struct strbuf cmd = STRBUF_INIT;
        proc_cmdline(s->pid, &cmd);
        p->command = sb_detach(&cmd);
        proc_identity(s->pid, &p->start_time, p->comm, sizeof(p->comm));
    }
    r->processes = 1;
}

/* Time spent suspended (Ctrl-Z) is not part of the recording: the ticks
 * due then are neither taken nor missed, the duration waits. */
static void loop_skip_suspended(struct loop *l)
{
    uint64_t susp = ptstop_suspended_ns();
    if (susp == l->susp_seen)
        return;
    l->start += susp - l->susp_seen;
    l->next += susp - l->susp_seen;
    if (l->end != UINT64_MAX)
        l->end += susp - l->susp_seen;
    l->susp_seen = susp;
}

enum loop_wake { WAKE_TICK, WAKE_AGAIN, WAKE_END };

/* Sleeps until the next tick (or, with threads pending, a poll): WAKE_TICK
 * with the time in *now, WAKE_AGAIN to look again, WAKE_END past the end. */
static enum loop_wake loop_wait(const struct loop *l, size_t pending, uint64_t *now)
{
    uint64_t t = now_ns();
    if (t >= l->end)
        return WAKE_END;
    if (t < l->next) {
        /* Woken at the end of the duration, not at the first tick after it. */
        uint64_t until = MIN(l->next, l->end);
        if (pending)
            until = MIN(until, t + PENDING_POLL_NS);
        struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
        int e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (e == EINTR || *l->o->stop || now_ns() < l->next)
            return WAKE_AGAIN;
        t = now_ns();
        if (t >= l->end)
            return WAKE_END;
    }
    *now = t;
    return WAKE_TICK;
}

/* A snapshot of a process that failed: counted, and a descendant that is
 * gone (or stays unreadable) let go. */
static void loop_failed(struct loop *l, size_t i, int ret)
{
    struct sproc *p = &l->procs[i];
    if (i == 0) {
        l->r->dropped[DROP_THREADS]++;
        return;
    }
    /* A descendant exiting (its memory going as it is read) is let go
     * without a word; one whose list stays unreadable may run another
     * program by now: looked at again at the next scan. */
    int st = ret == -ESRCH ? -ESRCH : proc_state(p->pid);
    if (st == -ESRCH || st == 'Z' || st == 'X') {
        detach(p, l->a, l->r);
        p->tried = 1;
        return;
    }
    l->r->dropped[DROP_THREADS]++;
    if (++p->fails >= REATTACH_AFTER) {
        detach(p, l->a, l->r);
        p->tried = 0;
    }
}

/* One process's snapshot, recorded; 1 when the target is gone. */
static int loop_sample(struct loop *l, size_t i, int census, uint64_t tcensus, int retry,
                       int refresh, uint64_t now)
{
    const struct sampler_opts *o = l->o;
    struct sampler_result *r = l->r;
    struct sproc *p = &l->procs[i];
    if (!p->s)
        return 0;
    struct snap_opts so = o->snap;
    if (p->ns) {
        so.native = nstack_hooks(p->ns);
        /* Libraries loaded since: looked for now and then. */
        if (refresh)
            nstack_refresh(p->ns);
    }
    int ret = snapshot_take(p->s, &p->sn, &so);
    /* A process gone (or a launched command now a zombie) fails the reads. */
    if (i == 0 && (ret == -ESRCH || (ret < 0 && (proc_check(l->s->pid) == -ESRCH ||
                                                 child_exited(o->child, r))))) {
        r->target_exited = 1;
        return 1;
    }
    if (ret < 0) {
        loop_failed(l, i, ret);
        return 0;
    }
    p->fails = 0;
    /* The tasks first: a running task's samples go under its awaiters as they are now. */
    if (tcensus)
        l->tc_cost += task_tick(p, l->a, o, r, &l->scratch, &l->scap, now, tcensus);
    record_tick(p, l->a, o, r, &l->scratch, &l->scap);
    if (census)
        census_tick(p, l->a, o, r, &l->scratch, &l->scap, now);
    if (o->hook && o->hook->on_sample)
        o->hook->on_sample(o->hook->ctx, p->s, &p->sn);
    /* New threads are named in the tick that brings them; the others
     * again from time to time, as threading registers them late
     * (the main thread only once the module is imported). */
    session_name_threads(p->s, p->sn.interp, retry);
    if (r->ticks % FORGET_AFTER == 0) {
        name_agg_threads(p->s, l->a);
        session_forget_threads(p->s, p->s->gen - FORGET_AFTER);
    }
    return 0;
}

/* One tick: new descendants looked for, every process followed sampled;
 * 1 when the target is gone (the tick is not counted). */
static int loop_tick(struct loop *l, uint64_t now)
{
    const struct sampler_opts *o = l->o;
    struct sampler_result *r = l->r;
    if (o->subprocesses && now - l->last_scan >= SCAN_EVERY_NS) {
        scan_tree(&l->procs, &l->nprocs, &l->pcap, ++l->scan, l->a, o, r);
        l->last_scan = now;
    }
    int retry = now - l->last_rename >= RENAME_EVERY_NS;
    int refresh = o->native && now - l->last_refresh >= REFRESH_NATIVE_NS;
    if (refresh)
        l->last_refresh = now;
    r->ticks++;
    int census = o->greenlets && (r->ticks - 1) % MAX(o->census_every, 1u) == 0;
    /* A task census every task_every ticks, counting for the ticks since the
     * last, unless the censuses would take more than TCENSUS_MAX_SHARE of a CPU. */
    uint64_t tcensus = 0;
    if (o->tasks && ++l->tc_ticks >= MAX(o->task_every, 1u)) {
        if (now >= l->tc_next)
            tcensus = l->tc_ticks;
        else
            r->task_put_off++;
    }
    l->tc_cost = 0;
    for (size_t i = 0; i < l->nprocs; i++)
        if (loop_sample(l, i, census, tcensus, retry, refresh, now))
            break;
    if (tcensus) {
        l->tc_ticks = 0;
        l->tc_next = now + l->tc_cost * 100 / TCENSUS_MAX_SHARE;
    }
    if (r->target_exited) {
        r->ticks--;
        return 1;
    }
    if (retry)
        l->last_rename = now;
    return 0;
}

/* Absolute deadlines: a late tick does not shift the ones after it; ticks
 * that could not be taken in time are counted, not hidden.  Returns now. */
static uint64_t loop_next(struct loop *l)
{
    l->next += l->period;
    uint64_t now = now_ns();
    /* Ticks due after the end of the duration are not due at all. */
    uint64_t upto = MIN(now, l->end);
    if (upto > l->next + l->period) {
        uint64_t missed = (upto - l->next) / l->period;
        l->r->dropped[DROP_BEHIND] += missed;
        l->next += missed * l->period;
    }
    return now;
}

/* The status line and the caller's hook after a tick; 1 when the hook ends the run. */
static int loop_report(struct loop *l, uint64_t now)
{
    const struct sampler_opts *o = l->o;
    struct sampler_result *r = l->r;
    if (o->status_line && now - l->last_status >= 1000000000u) {
        status_line(r, now - l->start);
        l->last_status = now;
    }
    if (o->hook && o->hook->on_tick) {
        r->processes_now = 0;
        for (size_t i = 0; i < l->nprocs; i++)
            r->processes_now += l->procs[i].s != NULL;
        if (o->hook->on_tick(o->hook->ctx, r, now))
            return 1;
    }
    return 0;
}

/* The time the recording lasted, and the ticks due in it that were not taken. */
static void loop_account(struct loop *l)
{
    struct sampler_result *r = l->r;
    uint64_t period = l->period, next = l->next, end = l->end;
    r->stopped = *l->o->stop != 0;
    /* Woken past the end by a late timer or a preempted loop, the ticks due
     * before the end were neither taken nor counted yet; when the target
     * ended, those due after the deadline of the tick that found it gone,
     * within the time reported. */
    uint64_t fin = now_ns();
    if (!r->stopped && r->target_exited && fin > next)
        r->dropped[DROP_BEHIND] += (fin - next) / period;
    else if (!r->stopped && !r->target_exited && end != UINT64_MAX && next < MIN(fin, end))
        r->dropped[DROP_BEHIND] += (MIN(fin, end) - next + period - 1) / period;
    /* A recording ended by its duration lasted that long, however late the
     * last wake-up came (a loaded machine can hold the loop well past it):
     * the ticks due within it are all counted, taken or missed, above. */
    if (!r->stopped && !r->target_exited && end != UINT64_MAX && fin > end)
        fin = end;
    r->elapsed_ns = fin - l->start;
    r->cpu_ns = cpu_ns() - l->cpu0;
    r->reads += mem_read_calls(l->s->mem) - l->reads0;
}

/* Every process let go, what they held added to the result. */
static void loop_end(struct loop *l)
{
    struct sampler_result *r = l->r;
    struct sproc *procs = l->procs;
    if (l->o->status_line)
        fputs("\r\033[K", stderr);
    if (!r->target_exited)
        session_name_threads(l->s, procs[0].sn.interp, 1);
    r->processes_now = 0;
    for (size_t i = 0; i < l->nprocs; i++) {
        r->processes_now += procs[i].s != NULL;
        if (i > 0) {
            if (procs[i].s)
                session_name_threads(procs[i].s, procs[i].sn.interp, 1);
            release_proc(&procs[i], l->a, r);
        }
    }
    name_agg_threads(l->s, l->a);
    natives_end(&procs[0], r);
    r->late_stops = ptstop_late_stops() - l->late0;
    census_off(&procs[0], r);
    task_census_off(&procs[0], r);
    add_torn(r, &procs[0].sn);
    snapshot_release(&procs[0].sn);
    free(procs[0].command);
    free(procs);
    free(l->scratch);
}

int sampler_run(struct session *s, const struct sampler_opts *o, struct agg *a,
                struct sampler_result *r)
{
    struct loop l;
    loop_begin(&l, s, o, a, r);
    while (!*o->stop) {
        /* A thread held for native frames that stopped only after its hold
         * gave up waiting sits stopped until let go: here, within
         * PENDING_POLL_NS, whatever the rate and whether or not it runs. */
        size_t pending = o->native ? ptstop_sweep() : 0;
        loop_skip_suspended(&l);
        uint64_t now;
        enum loop_wake w = loop_wait(&l, pending, &now);
        if (w == WAKE_END)
            break;
        if (w == WAKE_AGAIN)
            continue;
        if (loop_tick(&l, now))
            break;
        now = loop_next(&l);
        if (loop_report(&l, now))
            break;
    }
    loop_account(&l);
    loop_end(&l);
    return 0;
}
