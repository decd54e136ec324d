/*
 * The asyncio task reader (profiler/cpython/asyncio.c, asyncio_collect) on
 * a damaged process image, for the randomized unit test
 * (test_fuzz_asyncio.c) and the libFuzzer target (tests/fuzz/fuzz_asyncio.c).
 *
 * fa_build makes, once per version, a valid image (asyncio_image.h) with a
 * varied population of tasks: pending ones through coroutines awaiting
 * coroutines and FutureIters, a gather's children, TaskGroup children
 * (through the first done callback and through the list of the others), a
 * task awaiting a task (directly and down a chain), a running one, done,
 * cancelled and not started ones; registered in the weak set (<= 3.13, with
 * 3.12+'s eager set) or in two thread states' lists and the interpreter's
 * (3.14+, tagged references).  fa_mutate applies a byte-coded list of edits
 * to a fresh copy (the format of fuzzpath.h's fz_mutate, below), and fa_run
 * collects the tasks (asyncio_collect, then twice through one cache as a
 * recording does) and checks only what must hold whatever the memory says
 * (fa_check).
 */
#ifndef PYSTROBE_TEST_FUZZASYNC_H
#define PYSTROBE_TEST_FUZZASYNC_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "asyncio_image.h"

/* Python 3 minor versions of the images (every one with an asyncio layout). */
static const int fa_minors[] = {7, 8, 9, 10, 11, 12, 13, 14, 15};
#define FA_NVERSIONS (sizeof(fa_minors) / sizeof(fa_minors[0]))

#define FA_MAX_HOT 512

/*
 * Reads allowed for one collection of a damaged image: asyncio_stats.reads
 * and the memory source's own count of read calls (mem_read_calls, which
 * also counts the single reads asyncio.c leaves out of its stats).  What a
 * collection of this image may need, the damage anywhere: the modules and
 * the registry (tens); the tasks (one batch); the await chains level by
 * level, at most ASYNCIO_MAX_AWAIT levels in each of two passes and at most
 * 4 batched reads a level (objects, heads, frame objects, slots): 2048;
 * the awaiters, per task a gather's children (3 reads) or up to
 * MAX_CALLBACKS (64) done callbacks, 2 reads each and a dict lookup for a
 * bound method's: a few hundred for a task, and the image has fewer than
 * 30 objects that pass for a task; 3.14+, each thread state's list once
 * (twice when it does not come back to its head), a read a node.  A valid
 * image takes under 100 reads; damaged ones, thousands of random edit sets
 * a version, under 200 unless a loop goes round more than the image
 * holds.  FA_MAX_READS is well above what all that adds up to; more is
 * work that grows with a limit meant for live processes (4096 thread
 * states, 100000 tasks) instead of with what the image holds, i.e. a loop
 * that does not see that it goes round.  The environment variable
 * FUZZ_MAX_READS overrides it (to look past a known failure).
 */
#define FA_MAX_READS 10000

IMG_FN uint64_t fa_max_reads(void)
{
    static uint64_t max;
    if (!max) {
        const char *env = getenv("FUZZ_MAX_READS");
        max = env && strtoull(env, NULL, 0) > 0 ? strtoull(env, NULL, 0) : FA_MAX_READS;
    }
    return max;
}

struct fa_image {
    struct aimg a;
    unsigned char *pristine;    /* the valid image's bytes */
    size_t used;
    uint64_t hot[FA_MAX_HOT][2]; /* pointer-dense ranges, mutated more often */
    size_t nhot;
    /* What the valid image collects to (checked by test_fuzz_asyncio.c). */
    size_t want_tasks, want_frames, want_parents, want_running, want_not_started;
};

IMG_FN void fa_hot(struct fa_image *fz, uint64_t addr, size_t len)
{
    if (fz->nhot < FA_MAX_HOT && len) {
        fz->hot[fz->nhot][0] = addr;
        fz->hot[fz->nhot][1] = len;
        fz->nhot++;
    }
}

/* [from, to) as hot ranges of up to 4 KiB (an edit reaches 4 KiB of one). */
IMG_FN void fa_hot_span(struct fa_image *fz, uint64_t from, uint64_t to)
{
    for (uint64_t a = from; a < to; a += 4096)
        fa_hot(fz, a, (size_t)(to - a < 4096 ? to - a : 4096));
}

IMG_FN uint64_t fa_mark(const struct fa_image *fz)
{
    return fz->a.im.base + fz->a.im.used;
}

/* A task, and its coroutine's objects, as hot ranges. */
IMG_FN void fa_hot_task(struct fa_image *fz, uint64_t t)
{
    const struct asyncio_layout *al = fz->a.al;
    fa_hot(fz, t, (size_t)al->task_size);
}

IMG_FN void fa_hot_coro(struct fa_image *fz, uint64_t c)
{
    struct aimg *a = &fz->a;
    if (a->al->gen_iframe >= 0) {
        fa_hot(fz, c, a_gen_size(a));
    } else {
        fa_hot(fz, c, 64);
        fa_hot(fz, a_frame_of(a, c), a_frame_size(a));
    }
}

/* A pending task whose coroutine awaits `await f` (a FutureIter over f). */
IMG_FN uint64_t fa_waiting(struct fa_image *fz, uint64_t code, int64_t off, uint64_t f, int tag)
{
    struct aimg *a = &fz->a;
    uint64_t fi = a_fiter(a, f);
    fa_hot(fz, fi, 32);
    uint64_t c = a_coro_ex(a, code, off, CO_AWAITING, fi, 0, tag);
    fa_hot_coro(fz, c);
    uint64_t t = a_task(a, 0, c, f);
    fa_hot_task(fz, t);
    return t;
}

/* A subclass of Future named name (a gather's _GatheringFuture) with one attribute. */
IMG_FN uint64_t fa_future_sub(struct fa_image *fz, const char *name, const char *attr,
                              uint64_t value)
{
    struct img *im = &fz->a.im;
    uint64_t mark = fa_mark(fz), type;
    uint64_t o = img_instance(im, name, &attr, &value, 1, img_inst_default(im), &type);
    img_f64(im, type, im->lay.tp_base, fz->a.t_future);
    fa_hot_span(fz, mark, fa_mark(fz));
    return o;
}

/* 3.14+: a thread state of interp whose list holds tasks[0..n). */
IMG_FN uint64_t fa_tstate(struct fa_image *fz, const uint64_t *tasks, size_t n)
{
    struct aimg *a = &fz->a;
    struct img *im = &a->im;
    size_t size = (size_t)MAX(a->al->ts_tasks_head, im->lay.ts_next) + 64;
    uint64_t ts = img_alloc(im, size);
    img_f64(im, ts, im->lay.ts_interp, a->interp);
    a_list(a, ts + (uint64_t)a->al->ts_tasks_head, tasks, n);
    fa_hot(fz, ts + (uint64_t)a->al->ts_tasks_head, 16);
    fa_hot(fz, ts + (uint64_t)im->lay.ts_next, 8);
    return ts;
}

/* Builds the valid image of Python 3.fa_minors[v]. */
IMG_FN void fa_build(struct fa_image *fz, size_t v)
{
    memset(fz, 0, sizeof(*fz));
    struct aimg *a = &fz->a;
    a_init(a, fa_minors[v]);
    struct img *im = &a->im;
    const struct pylayout *l = &im->lay;
    const struct asyncio_layout *al = a->al;
    int tag = al->minor >= 14; /* 3.14+: tagged code, local and stack references */

    /* The types' words that tell what an object is. */
    const uint64_t types[] = {a->t_task, a->t_future, a->t_coro, a->t_fiter, a->t_method};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        fa_hot(fz, types[i] + (uint64_t)l->tp_base, 8);
        fa_hot(fz, types[i] + (uint64_t)l->tp_name, 8);
    }
    uint64_t code[4] = {a_code(a, "worker"), a_code(a, "fetch"), a_code(a, "main"),
                        a_code(a, "busy")};
    uint64_t tasks[24];
    size_t n = 0, frames = 0, parents = 0;

    /* T1: C1 -> C2 -> FutureIter(F); T2 awaits T3 (not started). */
    struct three x;
    three_build(a, &x, tag);
    tasks[n++] = x.t1;
    tasks[n++] = x.t2;
    tasks[n++] = x.t3;
    frames += 3;
    parents += 1;

    /* A task whose chain (two coroutines) ends in a FutureIter over T1: T1 awaited. */
    uint64_t fi = a_fiter(a, x.t1);
    fa_hot(fz, fi, 32);
    uint64_t inner = a_coro_ex(a, code[1], 40, CO_AWAITING, fi, x.self1, tag);
    uint64_t outer = a_coro_ex(a, code[0], 12, CO_AWAITING, inner, 0, tag);
    fa_hot_coro(fz, inner);
    fa_hot_coro(fz, outer);
    tasks[n++] = a_task(a, 0, outer, x.t1);
    frames += 2;
    parents += 1;

    /* gather(K1, K2): G awaits a _GatheringFuture listing them. */
    uint64_t k1 = fa_waiting(fz, code[1], 6, a_future(a), tag);
    uint64_t k2 = fa_waiting(fz, code[1], 8, a_future(a), tag);
    uint64_t kids[2] = {k1, k2};
    uint64_t klist = img_list(im, kids, 2);
    fa_hot(fz, klist, 48);
    fa_hot(fz, img_r64(im, klist + (uint64_t)l->list_item), 24);
    uint64_t gather = fa_future_sub(fz, "_GatheringFuture", "_children", klist);
    tasks[n++] = k1;
    tasks[n++] = k2;
    tasks[n++] = fa_waiting(fz, code[2], 14, gather, tag);
    frames += 3;
    parents += 2;

    /* A TaskGroup: P its parent task; K3's first done callback is the bound
     * method group._on_task_done, K4 has it among the others (a list of
     * (callback, context) pairs). */
    uint64_t p = fa_waiting(fz, code[2], 22, a_future(a), tag);
    uint64_t gmark = fa_mark(fz);
    const char *tn[1] = {"_parent_task"};
    uint64_t group = img_instance(im, "TaskGroup", tn, &p, 1, img_inst_default(im), NULL);
    fa_hot_span(fz, gmark, fa_mark(fz));
    uint64_t meth = img_object(im, a->t_method, 48);
    img_w64(im, meth + 24, group);
    fa_hot(fz, meth, 32);
    uint64_t k3 = fa_waiting(fz, code[0], 16, a_future(a), tag);
    img_w64(im, k3 + (uint64_t)al->fut_callback0, meth);
    uint64_t k4 = fa_waiting(fz, code[0], 18, a_future(a), tag);
    uint64_t pair0[2] = {img_object(im, im->t_object, 32), 0}, pair1[2] = {meth, 0};
    uint64_t items[2] = {img_tuple(im, pair0, 2), img_tuple(im, pair1, 2)};
    fa_hot(fz, items[0], 40);
    fa_hot(fz, items[1], 40);
    uint64_t cbs = img_list(im, items, 2);
    fa_hot(fz, cbs, 48);
    fa_hot(fz, img_r64(im, cbs + (uint64_t)l->list_item), 24);
    img_w64(im, k4 + (uint64_t)al->fut_callbacks, cbs);
    tasks[n++] = p;
    tasks[n++] = k3;
    tasks[n++] = k4;
    frames += 3;
    parents += 2;

    /* Done, cancelled, running (of a subclass of Task), not started. */
    uint64_t sub = img_type(im, "MyTask");
    img_f64(im, sub, l->tp_base, a->t_task);
    fa_hot(fz, sub + (uint64_t)l->tp_base, 8);
    uint64_t run = a_coro_ex(a, code[3], 30, CO_RUNNING, 0, 0, tag);
    fa_hot_coro(fz, run);
    tasks[n++] = a_task(a, 2, 0, 0);
    tasks[n++] = a_task(a, 1, 0, 0);
    tasks[n++] = a_task_of(a, sub, 0, run, 0);
    uint64_t fresh = a_coro_ex(a, code[3], 0, CO_CREATED, 0, 0, tag);
    fa_hot_coro(fz, fresh);
    tasks[n++] = a_task(a, 0, fresh, 0);
    for (size_t i = n - 4; i < n; i++)
        fa_hot_task(fz, tasks[i]);
    frames += 1;
    fa_hot_task(fz, x.t1);
    fa_hot_task(fz, x.t2);
    fa_hot_task(fz, x.t3);
    fa_hot_task(fz, tasks[3]);
    const uint64_t xc[4] = {x.c1, x.c2, x.c3, x.c4};
    for (size_t i = 0; i < 4; i++)
        fa_hot_coro(fz, xc[i]);

    /* The registry. */
    uint64_t rmark = fa_mark(fz);
    uint64_t tasks_dict = 0;
    if (al->task_node >= 0) {
        /* Two threads' lists, and the interpreter's (tasks of ended threads). */
        uint64_t ts[2] = {fa_tstate(fz, tasks, 5), fa_tstate(fz, tasks + 5, 6)};
        img_link_threads(im, a->interp, ts, 2);
        a_list(a, a->interp + (uint64_t)al->is_tasks_head, tasks + 11, n - 11);
        fa_hot(fz, a->interp + (uint64_t)al->is_tasks_head, 16);
        fa_hot(fz, a->interp + (uint64_t)l->is_tstate_head, 8);
    } else {
        /* The weak set (and a dead reference); 3.12+ two tasks in the eager set too. */
        uint64_t refs[25];
        for (size_t i = 0; i < n; i++)
            refs[i] = a_weakref(a, tasks[i]);
        refs[n] = a_weakref(a, im->none);
        uint64_t eager[2] = {tasks[4], tasks[0]};
        tasks_dict = a_tasks_dict(a, refs, n + 1, al->minor >= 12 ? eager : NULL, 2, NULL);
    }
    fa_hot_span(fz, rmark, fa_mark(fz));
    uint64_t mmark = fa_mark(fz);
    a_modules(a, 1, 1, tasks_dict);
    fa_hot_span(fz, mmark, fa_mark(fz));
    fa_hot(fz, a->interp + (uint64_t)l->is_modules, 8);

    fz->want_tasks = n;
    fz->want_frames = frames;
    fz->want_parents = parents;
    fz->want_running = 1;
    fz->want_not_started = 2;
    img_commit(im);
    fz->used = im->used;
    fz->pristine = xmalloc(fz->used);
    memcpy(fz->pristine, im->buf, fz->used);
}

IMG_FN void fa_release(struct fa_image *fz)
{
    free(fz->pristine);
    a_release(&fz->a);
}

/*
 * Restores the valid image, applies the edits coded in data and rebuilds
 * the memory source.  The format of fuzzpath.h's fz_mutate: 8 bytes an
 * edit (kind, a 24-bit offset, a 32-bit value; a shorter tail is ignored),
 * every edit inside the image's bytes:
 *   kind & 3 == 0: a byte = value;  1: a word = a pointer into the image;
 *   2: a word = 0;  3: a word = value (sign-extended), or with kind & 0x40
 *   the word plus value's low 16 bits (signed: a pointer nudged).
 *   kind & 0x80: the offset picks a place in a pointer-dense range (offset
 *   >> 12: which, offset & 0xfff: where in it), else offset % the image's size.
 */
IMG_FN void fa_mutate(struct fa_image *fz, const uint8_t *data, size_t size)
{
    img_apply_edits(&fz->a.im, fz->pristine, fz->used, (const uint64_t(*)[2])fz->hot, fz->nhot,
                    data, size);
    img_commit(&fz->a.im);
}

/* Counts of what the runs reached, to show the fuzzing is not all early exits. */
struct fa_counts {
    uint64_t runs, ok, tasks, frames, parents, pending, cut, errors;
    uint64_t max_reads, max_calls;
};

#define FA_FAIL(...)                                                                   \
    do {                                                                               \
        snprintf(why, whylen, __VA_ARGS__);                                            \
        return -1;                                                                     \
    } while (0)

IMG_FN int fa_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/*
 * What must hold of a collection whatever the memory said: ret 0 or a
 * negative errno with a message; at most ASYNCIO_MAX_TASKS tasks, each a
 * distinct aligned object with a type and a known state, its frames
 * [off, off+depth) inside raw, laid out one task after the other, at most
 * ASYNCIO_MAX_AWAIT deep, with code references that are pointers; a running
 * task has its one frame, a task with frames is pending or running;
 * parents SIZE_MAX or another task's index, with how, and no cycle (every
 * chain of parents ends within n steps); counts that add up; reads bounded
 * (FA_MAX_READS).  0, or -1 with why.
 */
IMG_FN int fa_check(const struct fa_image *fz, int ret, const struct task_set *ts,
                    const struct pserr *err, uint64_t calls, char *why, size_t whylen)
{
    (void)fz;
    if (ret > 0 || ret < -4095)
        FA_FAIL("returned %d", ret);
    if (ret < 0 && err->msg[0] == '\0')
        FA_FAIL("returned %d with no message", ret);
    if (ts->n > ASYNCIO_MAX_TASKS)
        FA_FAIL("%zu tasks > ASYNCIO_MAX_TASKS", ts->n);
    if (ts->n && (!ts->v || ts->n > ts->cap))
        FA_FAIL("%zu tasks in an array of %zu", ts->n, ts->cap);
    if (ts->nraw && (!ts->raw || !ts->frame_at || ts->nraw > ts->rawcap))
        FA_FAIL("%zu frames in an array of %zu", ts->nraw, ts->rawcap);
    if (ts->stats.reads > fa_max_reads() || calls > fa_max_reads())
        FA_FAIL("%" PRIu64 " reads counted, %" PRIu64 " read calls (> %" PRIu64 ")",
                ts->stats.reads, calls, fa_max_reads());
    if (ts->stats.cut > ts->n)
        FA_FAIL("%" PRIu64 " chains cut of %zu tasks", ts->stats.cut, ts->n);
    if (ret == 0 && ts->n + ts->stats.unreadable !=
                        (ts->stats.found < ASYNCIO_MAX_TASKS ? ts->stats.found : ASYNCIO_MAX_TASKS))
        FA_FAIL("%zu tasks + %" PRIu64 " unreadable != %" PRIu64 " found", ts->n,
                ts->stats.unreadable, ts->stats.found);
    if (ret == 0 && ts->stats.coroutines < ts->nraw)
        FA_FAIL("%zu frames but %" PRIu64 " coroutines read", ts->nraw, ts->stats.coroutines);
    size_t next = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        if (!t->obj || (t->obj & 7))
            FA_FAIL("task %zu: object 0x%" PRIx64, i, t->obj);
        if ((unsigned)t->state > TASK_UNREADABLE)
            FA_FAIL("task %zu: state %d", i, (int)t->state);
        if (t->depth > ASYNCIO_MAX_AWAIT)
            FA_FAIL("task %zu: depth %zu > ASYNCIO_MAX_AWAIT", i, t->depth);
        if (t->off > ts->nraw || t->depth > ts->nraw - t->off)
            FA_FAIL("task %zu: frames [%zu, %zu+%zu) past %zu", i, t->off, t->off, t->depth,
                    ts->nraw);
        if (ret == 0) {
            if (!t->type)
                FA_FAIL("task %zu: no type", i);
            if (t->off != next)
                FA_FAIL("task %zu: frames at %zu, the previous task's end at %zu", i, t->off,
                        next);
            if (!(t->status == 0 || t->status == 1 || t->status == -EFAULT ||
                  t->status == -EINVAL))
                FA_FAIL("task %zu: status %d", i, t->status);
            if (t->status == 1 && t->depth == 0)
                FA_FAIL("task %zu: cut with no frame", i);
            if (t->depth && t->state != TASK_PENDING && t->state != TASK_RUNNING)
                FA_FAIL("task %zu: %zu frames in state %s", i, t->depth,
                        task_state_name(t->state));
            if (t->state == TASK_RUNNING &&
                (t->depth != 1 || !t->run_frame || ts->frame_at[t->off] != t->run_frame))
                FA_FAIL("task %zu: running with %zu frames, run_frame 0x%" PRIx64, i, t->depth,
                        t->run_frame);
            if (t->depth && t->coro_frame != ts->frame_at[t->off + t->depth - 1])
                FA_FAIL("task %zu: coro_frame 0x%" PRIx64 " is not its outermost frame", i,
                        t->coro_frame);
        }
        next = t->off + t->depth;
        for (size_t k = t->off; k < t->off + t->depth; k++)
            if (!ts->raw[k].code || (ts->raw[k].code & 7) || !ts->frame_at[k])
                FA_FAIL("task %zu: frame %zu: code 0x%" PRIx64 " at 0x%" PRIx64, i, k - t->off,
                        ts->raw[k].code, ts->frame_at[k]);
        if (t->parent != SIZE_MAX) {
            if (t->parent >= ts->n || t->parent == i)
                FA_FAIL("task %zu: parent %zu of %zu", i, t->parent, ts->n);
            if (!t->parent_how || (strcmp(t->parent_how, "await") &&
                                   strcmp(t->parent_how, "gather") &&
                                   strcmp(t->parent_how, "TaskGroup")))
                FA_FAIL("task %zu: parent by \"%s\"", i, t->parent_how ? t->parent_how : "(null)");
        }
        size_t p = t->parent, steps = 0;
        while (p != SIZE_MAX && p < ts->n) {
            if (++steps > ts->n)
                FA_FAIL("task %zu: its parents make a cycle", i);
            p = ts->v[p].parent;
        }
    }
    if (ret == 0 && next != ts->nraw)
        FA_FAIL("the tasks' frames end at %zu of %zu", next, ts->nraw);
    /* Each object once. */
    if (ts->n > 1) {
        uint64_t *objs = xmalloc(ts->n * sizeof(*objs));
        for (size_t i = 0; i < ts->n; i++)
            objs[i] = ts->v[i].obj;
        qsort(objs, ts->n, sizeof(*objs), fa_cmp_u64);
        int dup = 0;
        for (size_t i = 1; i < ts->n; i++)
            dup |= objs[i] == objs[i - 1];
        free(objs);
        if (dup)
            FA_FAIL("a task object listed twice");
    }
    return 0;
}

/* asyncio_type_name gives printable ASCII that fits. */
IMG_FN int fa_check_name(struct pyrt *rt, uint64_t obj, char *why, size_t whylen)
{
    char name[16];
    memset(name, 'x', sizeof(name));
    asyncio_type_name(rt, obj, name, sizeof(name));
    size_t len = strnlen(name, sizeof(name));
    if (len == sizeof(name))
        FA_FAIL("asyncio_type_name(0x%" PRIx64 "): not terminated", obj);
    for (size_t i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] >= 0x7f)
            FA_FAIL("asyncio_type_name(0x%" PRIx64 "): byte 0x%02x", obj, (unsigned char)name[i]);
    return 0;
}

IMG_FN void fa_count(struct fa_counts *c, int ret, const struct task_set *ts, uint64_t calls)
{
    c->ok += ret == 0;
    c->errors += ret < 0;
    c->tasks += ts->n;
    c->frames += ts->nraw;
    c->cut += ts->stats.cut;
    for (size_t i = 0; i < ts->n; i++) {
        c->parents += ts->v[i].parent != SIZE_MAX;
        c->pending += ts->v[i].state == TASK_PENDING;
    }
    if (ts->stats.reads > c->max_reads)
        c->max_reads = ts->stats.reads;
    if (calls > c->max_calls)
        c->max_calls = calls;
}

/*
 * Collects the tasks of the (damaged) image: asyncio_collect, then twice
 * through one cache (the second run takes the types, the registry's place
 * and the kinds of types from the first, as a recording's next sample
 * does), each checked by fa_check; the type names of each task and of what
 * it awaits.  0, or -1 with why.  Counts the first collection in c.
 */
IMG_FN int fa_run(struct fa_image *fz, struct fa_counts *c, char *why, size_t whylen)
{
    struct img *im = &fz->a.im;
    struct asyncio_cache *cache = NULL;
    int status = -1;
    c->runs++;
    for (int round = 0; round < 3; round++) {
        struct task_set ts = {0};
        struct pserr err = {0};
        uint64_t calls0 = mem_read_calls(im->m);
        int ret;
        if (round == 0) {
            ret = asyncio_collect(&im->rt, fz->a.interp, &ts, &err);
        } else {
            if (!cache)
                cache = asyncio_cache_new();
            ret = asyncio_collect_cached(&im->rt, fz->a.interp, cache, (uint64_t)round, &ts,
                                         &err);
        }
        uint64_t calls = mem_read_calls(im->m) - calls0;
        int bad = fa_check(fz, ret, &ts, &err, calls, why, whylen);
        if (!bad && round == 0) {
            fa_count(c, ret, &ts, calls);
            for (size_t i = 0; !bad && i < ts.n && i < 64; i++)
                bad = fa_check_name(&im->rt, ts.v[i].obj, why, whylen) ||
                      fa_check_name(&im->rt, ts.v[i].awaited, why, whylen);
        }
        if (bad) {
            size_t len = strlen(why);
            if (len + 32 < whylen)
                snprintf(why + len, whylen - len, " (%s, ret %d)",
                         round == 0 ? "asyncio_collect" : "cached", ret);
        }
        task_set_release(&ts);
        if (bad)
            goto out;
    }
    status = 0;
out:
    asyncio_cache_free(cache);
    return status;
}

#endif
