/*
 * Fake process images of asyncio tasks (Python 3.7-3.15) for the unit tests
 * (test_asyncio.c) and the fuzz path of the task reader (fuzzasync.h): on top
 * of image.h's objects, the C module _asyncio's types, tasks, futures,
 * FutureIters, coroutines suspended on an await (3.11+ frames inside them,
 * <= 3.10 frame objects), the registry of tasks (3.7-3.13 asyncio.tasks'
 * weak set and 3.12+ eager set, 3.14+ the thread states' lists) and
 * sys.modules.  Offsets come from asyncio_layout_for (asyncio.h).
 *
 * Self-contained like image.h: static functions only, unused ones allowed;
 * builders abort on misuse (a version without an asyncio layout).
 *
 *     struct aimg a;
 *     a_init(&a, 11);
 *     struct three x;
 *     three_build(&a, &x, 0);
 *     uint64_t tasks[3] = {x.t1, x.t2, x.t3};
 *     a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 3, NULL));
 *     img_commit(&a.im);            // then asyncio_collect(&a.im.rt, a.interp, ...)
 *     a_release(&a);
 */
#ifndef PYSTROBE_TEST_ASYNCIO_IMAGE_H
#define PYSTROBE_TEST_ASYNCIO_IMAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "profiler/cpython/asyncio.h"

/* How a coroutine is: not started, suspended on an await, or running. */
enum co_state { CO_CREATED, CO_AWAITING, CO_RUNNING };

/* Slots a fake coroutine's frame has in use: self, a local, the awaited object. */
#define CO_SLOTS 3

struct aimg {
    struct img im;
    const struct asyncio_layout *al;
    uint64_t interp;
    uint64_t t_task, t_future, t_coro, t_fiter, t_weakref, t_method;
};

IMG_FN void a_init(struct aimg *a, int minor)
{
    memset(a, 0, sizeof(*a));
    img_init(&a->im, 3, minor, 0);
    a->al = asyncio_layout_for(3, minor);
    if (!a->al || a->al->minor != minor)
        img_die("no asyncio layout for that version");
    struct img *im = &a->im;
    const struct pylayout *l = &im->lay;
    int hi = MAX(MAX(l->is_modules, l->is_tstate_head), MAX(a->al->is_tasks_head, 0));
    a->interp = img_alloc(im, (size_t)hi + 64);
    img_w64(im, im->interp_head, a->interp);
    a->t_future = img_type(im, "_asyncio.Future");
    a->t_task = img_type(im, "_asyncio.Task");
    img_f64(im, a->t_task, l->tp_base, a->t_future);
    a->t_coro = img_type(im, "coroutine");
    a->t_fiter = img_type(im, "_asyncio.FutureIter");
    a->t_weakref = img_type(im, "weakref.ReferenceType");
    a->t_method = img_type(im, "method");
}

IMG_FN void a_release(struct aimg *a)
{
    img_release(&a->im);
}

/*
 * sys.modules: "asyncio" (when asyncio), "_asyncio" with Task and Future
 * (when cmod), and "asyncio.tasks" (when tasks_dict, a dict: its md_dict).
 */
IMG_FN void a_modules(struct aimg *a, int asyncio, int cmod, uint64_t tasks_dict)
{
    struct img *im = &a->im;
    const struct pylayout *l = &im->lay;
    const char *names[3];
    uint64_t vals[3];
    size_t n = 0;
    if (asyncio) {
        names[n] = "asyncio";
        vals[n++] = img_object(im, im->t_module, 64);
    }
    if (cmod) {
        const char *cn[2] = {"Task", "Future"};
        uint64_t cv[2] = {a->t_task, a->t_future};
        uint64_t mod = img_object(im, im->t_module, 64);
        img_f64(im, mod, l->md_dict, img_str_dict(im, cn, cv, 2, 0));
        names[n] = "_asyncio";
        vals[n++] = mod;
    }
    if (tasks_dict) {
        uint64_t mod = img_object(im, im->t_module, 64);
        img_f64(im, mod, l->md_dict, tasks_dict);
        names[n] = "asyncio.tasks";
        vals[n++] = mod;
    }
    img_f64(im, a->interp, l->is_modules, img_str_dict(im, names, vals, n, 0));
}

/* A task of type type (0: Task) in fut_state state (0 pending, 1 cancelled, 2 finished). */
IMG_FN uint64_t a_task_of(struct aimg *a, uint64_t type, int32_t state, uint64_t coro,
                          uint64_t waiter)
{
    struct img *im = &a->im;
    const struct asyncio_layout *al = a->al;
    uint64_t t = img_object(im, type ? type : a->t_task, (size_t)al->task_size + 16);
    img_w32(im, t + (uint64_t)al->fut_state, (uint32_t)state);
    img_w64(im, t + (uint64_t)al->task_coro, coro);
    img_w64(im, t + (uint64_t)al->task_fut_waiter, waiter);
    return t;
}

IMG_FN uint64_t a_task(struct aimg *a, int32_t state, uint64_t coro, uint64_t waiter)
{
    return a_task_of(a, 0, state, coro, waiter);
}

IMG_FN uint64_t a_future(struct aimg *a)
{
    return img_object(&a->im, a->t_future, (size_t)a->al->future_size + 16);
}

/* A FutureIter over future f (what `await f` leaves on the awaiting frame's stack). */
IMG_FN uint64_t a_fiter(struct aimg *a, uint64_t f)
{
    /* Big enough for the coroutine-sized read of one level of a chain. */
    uint64_t o = img_object(&a->im, a->t_fiter, 512);
    img_w64(&a->im, o + (uint64_t)a->al->futureiter_future, f);
    return o;
}

IMG_FN uint64_t a_code(struct aimg *a, const char *name)
{
    return img_code(&a->im, "t.py", name, NULL, 1, NULL, 0);
}

/* Bytes of a fake 3.11+ coroutine: its header, frame, localsplus and more. */
IMG_FN size_t a_gen_size(const struct aimg *a)
{
    return (size_t)(a->al->gen_iframe + a->al->if_localsplus) + 16 * 8 + 64;
}

/* <= 3.10: bytes of a fake frame object (through f_localsplus and some slots). */
IMG_FN size_t a_frame_size(const struct aimg *a)
{
    return (size_t)a->im.lay.fo_localsplus + 16 * 8 + 64;
}

/*
 * A coroutine running code at byte offset off (even), in state st; its
 * first local is self0 and, awaiting, its top stack slot holds awaited.
 * On 3.14+ the code reference, the first local and the awaited slot are
 * tagged (low bit set) when tag.
 */
IMG_FN uint64_t a_coro_ex(struct aimg *a, uint64_t code, int64_t off, enum co_state st,
                          uint64_t awaited, uint64_t self0, int tag)
{
    struct img *im = &a->im;
    const struct pylayout *l = &im->lay;
    const struct asyncio_layout *al = a->al;
    uint64_t base;
    if (al->gen_iframe >= 0) {
        uint64_t c = img_object(im, a->t_coro, a_gen_size(a));
        uint64_t f = c + (uint64_t)al->gen_iframe;
        int s = st == CO_CREATED ? al->gen_state_created
                : st == CO_RUNNING ? al->gen_state_running : al->gen_state_awaiting;
        img_w8(im, c + (uint64_t)al->gen_frame_state, (uint8_t)(int8_t)s);
        img_w64(im, f + (uint64_t)l->if_code, code | (uint64_t)(tag ? 1 : 0));
        img_w64(im, f + (uint64_t)l->if_instr, img_instr(im, code, off));
        base = f + (uint64_t)al->if_localsplus;
        if (al->if_stacktop >= 0)
            img_w32(im, f + (uint64_t)al->if_stacktop, CO_SLOTS);
        else
            img_w64(im, f + (uint64_t)al->if_stackpointer, base + 8 * CO_SLOTS);
        img_w64(im, base, self0 | (uint64_t)(tag && self0 ? 1 : 0));
        img_w64(im, base + 8 * (CO_SLOTS - (uint64_t)al->yf_below),
                awaited | (uint64_t)(tag && awaited ? 1 : 0));
        return c;
    }
    /* <= 3.10: the coroutine's frame object. */
    uint64_t c = img_object(im, a->t_coro, 64);
    uint64_t fo = img_object(im, im->t_frame, a_frame_size(a));
    img_w64(im, c + (uint64_t)al->gen_frame, fo);
    img_f64(im, fo, l->fo_code, code);
    int32_t lasti = st == CO_CREATED ? -1 : (int32_t)(l->lasti_units ? off / 2 : off);
    img_f32(im, fo, l->fo_lasti, (uint32_t)lasti);
    base = fo + (uint64_t)l->fo_localsplus;
    img_w64(im, base, self0);
    img_w64(im, base + 8 * (CO_SLOTS - (uint64_t)al->yf_below), awaited);
    if (al->fo_state >= 0) {
        int s = st == CO_CREATED ? al->gen_state_created
                : st == CO_RUNNING ? al->gen_state_running : al->gen_state_awaiting;
        img_w8(im, fo + (uint64_t)al->fo_state, (uint8_t)(int8_t)s);
        img_w64(im, fo + (uint64_t)al->fo_valuestack, base);
        img_w32(im, fo + (uint64_t)al->fo_stackdepth, st == CO_AWAITING ? CO_SLOTS : 0);
    } else {
        /* f_stacktop: NULL while running; at creation the empty stack's base. */
        img_w64(im, fo + (uint64_t)al->fo_valuestack, base);
        img_w64(im, fo + (uint64_t)al->fo_stacktop,
                st == CO_RUNNING ? 0 : st == CO_CREATED ? base : base + 8 * CO_SLOTS);
    }
    return c;
}

IMG_FN uint64_t a_coro(struct aimg *a, uint64_t code, int64_t off, enum co_state st,
                       uint64_t awaited)
{
    return a_coro_ex(a, code, off, st, awaited, 0, 0);
}

/* The frame a_coro_ex made for coroutine c: 3.11+ inside it, <= 3.10 its frame object. */
IMG_FN uint64_t a_frame_of(struct aimg *a, uint64_t c)
{
    if (a->al->gen_iframe >= 0)
        return c + (uint64_t)a->al->gen_iframe;
    return img_r64(&a->im, c + (uint64_t)a->al->gen_frame);
}

IMG_FN uint64_t a_weakref(struct aimg *a, uint64_t obj)
{
    uint64_t w = img_object(&a->im, a->t_weakref, 48);
    img_w64(&a->im, w + 16, obj);
    return w;
}

/*
 * <= 3.13: asyncio.tasks' dict with the weak set (_all_tasks, 3.12+
 * _scheduled_tasks) of weak references refs[0..n), and on 3.12+ the set
 * _eager_tasks of eager[0..ne) when eager.  *data_out: the weak set's set.
 */
IMG_FN uint64_t a_tasks_dict(struct aimg *a, const uint64_t *refs, size_t n,
                             const uint64_t *eager, size_t ne, uint64_t *data_out)
{
    struct img *im = &a->im;
    uint64_t data = img_set(im, refs, n, 0);
    const char *dn[1] = {"data"};
    uint64_t ws = img_instance(im, "WeakSet", dn, &data, 1, img_inst_default(im), NULL);
    const char *names[2] = {a->al->minor >= 12 ? "_scheduled_tasks" : "_all_tasks",
                            "_eager_tasks"};
    uint64_t vals[2] = {ws, eager ? img_set(im, eager, ne, 0) : 0};
    if (data_out)
        *data_out = data;
    return img_str_dict(im, names, vals, eager ? 2 : 1, 0);
}

/* The same with a weak reference to each of tasks[0..n). */
IMG_FN uint64_t a_weak_registry(struct aimg *a, const uint64_t *tasks, size_t n,
                                uint64_t *data_out)
{
    uint64_t *refs = xcalloc(n + 1, sizeof(*refs));
    for (size_t i = 0; i < n; i++)
        refs[i] = a_weakref(a, tasks[i]);
    uint64_t d = a_tasks_dict(a, refs, n, NULL, 0, data_out);
    free(refs);
    return d;
}

/* 3.14+: makes the list headed at head hold tasks[0..n), circular, both ways. */
IMG_FN void a_list(struct aimg *a, uint64_t head, const uint64_t *tasks, size_t n)
{
    struct img *im = &a->im;
    uint64_t prev = head;
    for (size_t i = 0; i < n; i++) {
        uint64_t node = tasks[i] + (uint64_t)a->al->task_node;
        img_w64(im, prev, node);
        img_w64(im, node + 8, prev);
        prev = node;
    }
    img_w64(im, prev, head);
    img_w64(im, head + 8, prev);
}

/* 3.14+: a thread state (linked as interp's only one) whose list holds tasks[0..n). */
IMG_FN uint64_t a_thread_tasks(struct aimg *a, const uint64_t *tasks, size_t n)
{
    struct img *im = &a->im;
    uint64_t ts = img_alloc(im, (size_t)a->al->ts_tasks_head + 64);
    img_f64(im, ts, im->lay.ts_interp, a->interp);
    img_link_threads(im, a->interp, &ts, 1);
    a_list(a, ts + (uint64_t)a->al->ts_tasks_head, tasks, n);
    /* The interpreter's own list: empty. */
    a_list(a, a->interp + (uint64_t)a->al->is_tasks_head, NULL, 0);
    return ts;
}

/*
 * The three tasks of the brief on any version, registered by reg (the weak
 * set, 3.14+ a thread's list): T1 awaits C1 -> C2 -> FutureIter(F);
 * T2 waits on task T3 (fut_waiter and the FutureIter over T3 on its
 * coroutine's stack); T3 has not started.  tag: 3.14+ tagged references.
 */
struct three {
    uint64_t t1, t2, t3, c1, c2, c3, c4, code1, code2, code3, code4, f, self1;
};

IMG_FN void three_build(struct aimg *a, struct three *x, int tag)
{
    x->code1 = a_code(a, "outer");
    x->code2 = a_code(a, "inner");
    x->code3 = a_code(a, "waits_t3");
    x->code4 = a_code(a, "t3_body");
    x->f = a_future(a);
    x->self1 = img_object(&a->im, a->im.t_object, 32);
    x->c2 = a_coro_ex(a, x->code2, 20, CO_AWAITING, a_fiter(a, x->f), x->self1, tag);
    x->c1 = a_coro_ex(a, x->code1, 10, CO_AWAITING, x->c2, 0, tag);
    x->t1 = a_task(a, 0, x->c1, x->f);
    x->c4 = a_coro_ex(a, x->code4, 0, CO_CREATED, 0, 0, tag);
    x->t3 = a_task(a, 0, x->c4, 0);
    x->c3 = a_coro_ex(a, x->code3, 34, CO_AWAITING, a_fiter(a, x->t3), 0, tag);
    x->t2 = a_task(a, 0, x->c3, x->t3);
}

#endif
