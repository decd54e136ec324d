#include "profiler/sampler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler/proc.h"

/* Threads unseen for this many ticks are forgotten. */
#define FORGET_AFTER 64
/* Threads threading does not know yet are looked up again this often. */
#define RENAME_EVERY_NS 250000000u

static const char *const drop_names[DROP_COUNT] = {
    "torn stack", "unreadable memory", "frame cycle", "unreadable thread list",
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
    case -ELOOP: return DROP_CYCLE;
    default: return DROP_TORN;
    }
}

/* Adds each walked thread's stack (root first) to the aggregate. */
static void record_tick(struct session *s, struct snapshot *sn, struct agg *a, int threads,
                        struct sampler_result *r, uint32_t **scratch, size_t *scap)
{
    for (size_t k = 0; k < sn->nthreads; k++) {
        struct snap_thread *t = &sn->st[k];
        if (!t->walked)
            continue;
        if (t->status < 0) {
            r->dropped[reason_of(t->status)]++;
            continue;
        }
        if (t->depth == 0 && t->status != 1 && !threads) {
            /* Nothing to show without the thread as the root: say so. */
            r->dropped[DROP_NO_FRAMES]++;
            continue;
        }
        struct tracked *tr = &s->threads[t->tracked];
        if (tr->agg == UINT32_MAX)
            tr->agg = agg_thread(a, tr->tid, tr->thread_id);
        size_t n = t->depth + 1;
        GROW(*scratch, *scap, n);
        size_t j = 0;
        if (t->status == 1) {
            (*scratch)[j++] = names_label_frame(s->names, "[truncated]");
            r->truncated++;
        }
        for (size_t i = t->depth; i-- > 0;)
            (*scratch)[j++] = sn->ids[t->off + i];
        agg_add(a, tr->agg, *scratch, j, 1);
        r->stacks++;
    }
}

/* Copies thread names into the aggregate. */
static void name_agg_threads(struct session *s, struct agg *a)
{
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct tracked *t = &s->threads[i];
        if (t->agg != UINT32_MAX && t->name)
            agg_thread_name(a, t->agg, t->name);
    }
}

static int child_exited(pid_t child, struct sampler_result *r)
{
    int st;
    if (child <= 0 || r->child_reaped)
        return r->child_reaped;
    if (waitpid(child, &st, WNOHANG) == child) {
        r->child_status = st;
        r->child_reaped = 1;
    }
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

int sampler_run(struct session *s, const struct sampler_opts *o, struct agg *a,
                struct sampler_result *r)
{
    struct snapshot sn;
    uint32_t *scratch = NULL;
    size_t scap = 0;
    uint64_t period = (uint64_t)(1e9 / o->rate);
    uint64_t start = now_ns(), cpu0 = cpu_ns(), reads0 = mem_read_calls(s->mem);
    uint64_t end = o->duration > 0 ? start + (uint64_t)(o->duration * 1e9) : UINT64_MAX;
    uint64_t next = start, last_status = start, last_rename = start;
    memset(r, 0, sizeof(*r));
    if (period == 0)
        period = 1;
    snapshot_init(&sn);
    while (!*o->stop) {
        uint64_t now = now_ns();
        if (now >= end)
            break;
        if (now < next) {
            struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
            int e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            if (e == EINTR || *o->stop)
                continue;
            now = now_ns();
            if (now >= end)
                break;
        }
        int ret = snapshot_take(s, &sn, &o->snap);
        r->ticks++;
        /* A process gone (or a launched command now a zombie) fails the reads. */
        if (ret == -ESRCH ||
            (ret < 0 && (proc_check(s->pid) == -ESRCH || child_exited(o->child, r)))) {
            r->target_exited = 1;
            r->ticks--;
            break;
        }
        if (ret < 0) {
            r->dropped[DROP_THREADS]++;
        } else {
            record_tick(s, &sn, a, o->threads, r, &scratch, &scap);
            /* New threads are named in the tick that brings them; the others
             * again from time to time, as threading registers them late
             * (the main thread only once the module is imported). */
            int retry = now - last_rename >= RENAME_EVERY_NS;
            session_name_threads(s, sn.interp, retry);
            if (retry)
                last_rename = now;
        }
        if (r->ticks % FORGET_AFTER == 0) {
            name_agg_threads(s, a);
            session_forget_threads(s, s->gen - FORGET_AFTER);
        }
        /* Absolute deadlines: a late tick does not shift the ones after it;
         * ticks that could not be taken in time are counted, not hidden. */
        next += period;
        now = now_ns();
        if (now > next + period) {
            uint64_t missed = (now - next) / period;
            r->dropped[DROP_BEHIND] += missed;
            next += missed * period;
        }
        if (o->status_line && now - last_status >= 1000000000u) {
            status_line(r, now - start);
            last_status = now;
        }
    }
    r->stopped = *o->stop != 0;
    /* Woken past the end by a late timer or a preempted loop, the ticks due
     * before the end were neither taken nor counted yet; when the target
     * ended, those due after the deadline of the tick that found it gone,
     * within the time reported. */
    uint64_t fin = now_ns();
    if (!r->stopped && r->target_exited && fin > next)
        r->dropped[DROP_BEHIND] += (fin - next) / period;
    else if (!r->stopped && !r->target_exited && end != UINT64_MAX && next < MIN(fin, end))
        r->dropped[DROP_BEHIND] += (MIN(fin, end) - next + period - 1) / period;
    r->elapsed_ns = fin - start;
    r->cpu_ns = cpu_ns() - cpu0;
    r->reads = mem_read_calls(s->mem) - reads0;
    if (o->status_line)
        fputs("\r\033[K", stderr);
    if (!r->target_exited)
        session_name_threads(s, sn.interp, 1);
    name_agg_threads(s, a);
    snapshot_release(&sn);
    free(scratch);
    return 0;
}
