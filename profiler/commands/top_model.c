/*
 * pystrobe top's model: what each line and function counted (own and
 * total, in the window and since the start), the target's threads as last
 * seen, and the windows that turn counts into what is shown.
 */
#include <stdlib.h>
#include <string.h>

#include "profiler/commands/top.h"

/* ---- counts --------------------------------------------------------------- */

static int count_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct counts *c = ctx;
    return c->v[idx].key == *(const uint32_t *)key;
}

static struct count *counts_get(struct counts *c, uint32_t key)
{
    uint64_t h = hash_u64(key);
    uint32_t i = htab_find(&c->index, h, count_eq, c, &key);
    if (i == HTAB_NONE) {
        GROW(c->v, c->cap, c->n + 1);
        i = (uint32_t)c->n++;
        memset(&c->v[i], 0, sizeof(c->v[i]));
        c->v[i].key = key;
        htab_insert(&c->index, h, i);
    }
    return &c->v[i];
}

/* Ends a window: what it counted is shown (unless paused), and it starts again. */
static void counts_roll(struct counts *c, int show)
{
    for (size_t i = 0; i < c->n; i++) {
        struct count *e = &c->v[i];
        if (show) {
            e->shown_own = e->own;
            e->shown_total = e->total;
            e->shown_cum_own = e->cum_own;
            e->shown_cum_total = e->cum_total;
        }
        e->own = e->total = 0;
    }
}

static void counts_clear(struct counts *c)
{
    c->n = 0;
    htab_clear(&c->index);
}

static void counts_release(struct counts *c)
{
    free(c->v);
    htab_release(&c->index);
    memset(c, 0, sizeof(*c));
}

/* The leaf gets one own sample; every line or function on the stack one
 * total sample, once however often it recurses. */
static void tally(struct count *c, uint64_t serial, int leaf)
{
    if (leaf) {
        c->own++;
        c->cum_own++;
    }
    if (c->stamp != serial) {
        c->stamp = serial;
        c->total++;
        c->cum_total++;
    }
}

static void count_stack(struct top *t, const struct names *n, const uint32_t *ids, size_t depth)
{
    uint64_t serial = ++t->serial;
    t->win_samples++;
    t->cum_samples++;
    for (size_t i = 0; i < depth; i++) {
        uint32_t frame = ids[i];
        tally(counts_get(&t->lines, frame), serial, i == 0);
        tally(counts_get(&t->funcs, names_frame_get(n, frame)->func), serial, i == 0);
    }
}

/* ---- threads -------------------------------------------------------------- */

static int trow_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct top *t = ctx;
    const struct trow_key *k = key;
    const struct trow *r = &t->threads[idx];
    return r->pid == k->pid && r->tid == k->tid && r->ident == k->ident;
}

static uint64_t trow_hash(pid_t pid, pid_t tid, uint64_t ident)
{
    return hash_u64(ident ^ hash_u64(((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid));
}

/* A thread's CPU time in ns: schedstat's, else stat's clock ticks. */
static uint64_t trow_cpu(const struct top *t, const struct snap_thread *st)
{
    if (st->cpu_ns || t->hz <= 0)
        return st->cpu_ns;
    return st->cpu_ticks * (1000000000u / (uint64_t)t->hz);
}

static struct trow *trow_get(struct top *t, pid_t pid, const struct tracked *tr,
                               const struct snap_thread *st)
{
    struct trow_key k = {pid, tr->tid, tr->thread_id};
    uint64_t h = trow_hash(pid, tr->tid, tr->thread_id);
    uint32_t i = htab_find(&t->thread_index, h, trow_eq, t, &k);
    if (i == HTAB_NONE) {
        GROW(t->threads, t->threadcap, t->nthreads + 1);
        i = (uint32_t)t->nthreads++;
        struct trow *r = &t->threads[i];
        memset(r, 0, sizeof(*r));
        r->pid = pid;
        r->tid = tr->tid;
        r->ident = tr->thread_id;
        r->cpu_mark = trow_cpu(t, st);
        htab_insert(&t->thread_index, h, i);
    }
    return &t->threads[i];
}

static void trow_update(const struct top *t, struct trow *r, const struct tracked *tr,
                          const struct snap_thread *st)
{
    if (tr->name && (!r->name || strcmp(r->name, tr->name) != 0)) {
        free(r->name);
        r->name = xstrdup(tr->name);
    }
    r->ts = st->ts;
    r->gil = st->gil;
    r->cpu = trow_cpu(t, st);
    r->seen = t->window;
}

/* Ends a window for the threads: those it did not see are gone. */
static void threads_roll(struct top *t, int show, double secs)
{
    size_t k = 0;
    for (size_t i = 0; i < t->nthreads; i++) {
        struct trow *r = &t->threads[i];
        int seen = r->seen == t->window;
        if (show && !seen) {
            free(r->name);
            continue;
        }
        if (show) {
            /* No mark: its CPU time was not known at the window's start. */
            uint64_t used = r->cpu_mark && r->cpu > r->cpu_mark ? r->cpu - r->cpu_mark : 0;
            r->shown = 1;
            r->shown_ts = r->ts;
            r->shown_gil = r->gil;
            r->shown_samples = r->samples;
            r->shown_cpu = secs > 0 ? (double)used / 1e9 / secs * 100 : 0;
        }
        r->cpu_mark = r->cpu;
        r->samples = 0;
        t->threads[k++] = *r;
    }
    if (k == t->nthreads)
        return;
    t->nthreads = k;
    htab_clear(&t->thread_index);
    for (size_t i = 0; i < k; i++) {
        const struct trow *r = &t->threads[i];
        htab_insert(&t->thread_index, trow_hash(r->pid, r->tid, r->ident), (uint32_t)i);
    }
}

/* ---- the sampler's hook and the windows --------------------------------- */

void top_on_sample(void *ctx, struct session *s, const struct snapshot *sn)
{
    struct top *t = ctx;
    for (size_t k = 0; k < sn->nthreads; k++) {
        const struct snap_thread *st = &sn->st[k];
        if (st->excluded)
            continue;
        struct tracked *tr = &s->threads[st->tracked];
        /* Every thread shown is named, not only those sampled. */
        tr->want_name = 1;
        /* A kernel without scheduler statistics: CPU time from stat, read
         * for every thread from the next tick on. */
        if (!st->cpu_ns && st->state && !t->snap->want_cpu)
            t->snap->want_cpu = 1;
        struct trow *r = trow_get(t, s->pid, tr, st);
        trow_update(t, r, tr, st);
        /* Sampled by the mode's rules (on CPU, --idle, --gil), read whole,
         * and in Python. */
        if (!st->walked || st->status < 0 || st->depth == 0)
            continue;
        r->samples++;
        count_stack(t, s->names, sn->ids + st->off, st->depth);
    }
}

static uint64_t errors_of(const struct sampler_result *r)
{
    uint64_t n = 0;
    for (int d = 0; d < DROP_COUNT; d++)
        n += r->dropped[d];
    return n;
}

/* Closes the window: its counts become the ones shown (unless paused). */
void top_roll_window(struct top *t, const struct sampler_result *r, uint64_t now)
{
    int show = !t->paused;
    double secs = (double)(now - t->win_start) / 1e9;
    if (show) {
        t->head.elapsed = (double)(now - t->base_ns) / 1e9;
        uint64_t ticks = r->ticks > t->win_ticks ? r->ticks - t->win_ticks : 0;
        t->head.rate = secs > 0 ? (double)ticks / secs : 0;
        t->head.samples = t->cum_samples;
        t->head.errors = errors_of(r) - t->base_errors;
        t->head.window = t->win_samples;
        t->head.processes = r->processes_now;
    }
    counts_roll(&t->lines, show);
    counts_roll(&t->funcs, show);
    threads_roll(t, show, secs);
    t->win_samples = 0;
    t->win_ticks = r->ticks;
    t->win_start = now;
    t->window++;
}

/* Forgets every count: the view starts again from now. */
void top_reset_counts(struct top *t, const struct sampler_result *r, uint64_t now)
{
    counts_clear(&t->lines);
    counts_clear(&t->funcs);
    for (size_t i = 0; i < t->nthreads; i++) {
        t->threads[i].samples = t->threads[i].shown_samples = 0;
        t->threads[i].cpu_mark = t->threads[i].cpu;
    }
    t->win_samples = t->cum_samples = 0;
    t->win_ticks = r->ticks;
    t->win_start = t->base_ns = now;
    t->base_errors = errors_of(r);
    memset(&t->head, 0, sizeof(t->head));
    t->head.processes = r->processes_now;
}

void top_release(struct top *t)
{
    counts_release(&t->lines);
    counts_release(&t->funcs);
    for (size_t i = 0; i < t->nthreads; i++)
        free(t->threads[i].name);
    free(t->threads);
    htab_release(&t->thread_index);
}
