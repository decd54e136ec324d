/*
 * asyncio tasks from outside (profiler/cpython/asyncio.c) on fake images:
 * the registry (3.7-3.13 weak set, 3.12+ eager set, 3.14+ thread states'
 * lists), each task's state and await chain (3.11+ interpreter frames
 * inside coroutines, <= 3.10 frame objects), who awaits whom (await,
 * gather, TaskGroup), and hostile memory: cycles, garbage counts, unmapped
 * pointers, lists that never end.
 */
#include "profiler/cpython/asyncio.h"

#include <errno.h>
#include <sys/resource.h>

#include "profiler/cpython/pyobj.h"
#include "test.h"

#include "asyncio_image.h"

/* Index of task obj in ts, or SIZE_MAX. */
static size_t idx(const struct task_set *ts, uint64_t obj)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].obj == obj)
            return i;
    return SIZE_MAX;
}

/* The task of obj in ts (the test stops when it is not there). */
static const struct atask *task_of(const struct task_set *ts, uint64_t obj)
{
    size_t i = idx(ts, obj);
    if (i == SIZE_MAX) {
        TEST_FAILF("task 0x%" PRIx64 " not found", obj);
        exit(1);
    }
    return &ts->v[i];
}

/* Every chain of parents ends (no cycle), and every parent is an index in range. */
static int parents_end(const struct task_set *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        size_t p = ts->v[i].parent, steps = 0;
        while (p != SIZE_MAX) {
            if (p >= ts->n || ++steps > ts->n)
                return 0;
            p = ts->v[p].parent;
        }
    }
    return 1;
}

/* Every task's frames lie inside raw, and raw inside its capacity. */
static int frames_in_range(const struct task_set *ts)
{
    if (ts->nraw > ts->rawcap && ts->nraw)
        return 0;
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].off + ts->v[i].depth > ts->nraw)
            return 0;
    return 1;
}

static int collect(struct aimg *a, struct task_set *ts, struct pserr *err)
{
    img_commit(&a->im);
    memset(ts, 0, sizeof(*ts));
    memset(err, 0, sizeof(*err));
    return asyncio_collect(&a->im.rt, a->interp, ts, err);
}

/* ---- the normal picture ---------------------------------------------------- */

/* three_build (asyncio_image.h) as it must be read. */
static void three_check(struct aimg *a, const struct three *x, const struct task_set *ts)
{
    const struct atask *t1 = task_of(ts, x->t1), *t2 = task_of(ts, x->t2),
                       *t3 = task_of(ts, x->t3);
    CHECK_U64(ts->task_type, a->t_task);
    CHECK_U64(ts->future_type, a->t_future);
    CHECK(ts->registry != NULL);
    CHECK(frames_in_range(ts));
    /* T1: pending, two frames innermost first, waiting on F. */
    CHECK_STR(task_state_name(t1->state), "pending");
    CHECK_INT(t1->status, 0);
    CHECK_U64(t1->coro, x->c1);
    CHECK_U64(t1->fut_waiter, x->f);
    REQUIRE(t1->depth == 2);
    CHECK_U64(ts->raw[t1->off].code, x->code2);
    CHECK_INT(ts->raw[t1->off].addrq, 20);
    CHECK_U64(ts->raw[t1->off + 1].code, x->code1);
    CHECK_INT(ts->raw[t1->off + 1].addrq, 10);
    CHECK_U64(ts->frame_at[t1->off], a_frame_of(a, x->c2));
    CHECK_U64(ts->frame_at[t1->off + 1], a_frame_of(a, x->c1));
    CHECK_U64(t1->coro_frame, a_frame_of(a, x->c1));
    CHECK_U64(t1->awaited, x->f);
    CHECK_U64(t1->awaited_type, 0);
    CHECK_U64(t1->parent, SIZE_MAX);
    /* T2: pending on T3. */
    CHECK_STR(task_state_name(t2->state), "pending");
    CHECK_INT(t2->status, 0);
    REQUIRE(t2->depth == 1);
    CHECK_U64(ts->raw[t2->off].code, x->code3);
    CHECK_INT(ts->raw[t2->off].addrq, 34);
    CHECK_U64(t2->awaited, x->t3);
    CHECK_U64(t2->parent, SIZE_MAX);
    /* T3: not started, no frames, awaited by T2. */
    CHECK_INT(t3->state, TASK_NOT_STARTED);
    CHECK_STR(task_state_name(t3->state), "not started");
    CHECK_INT(t3->depth, 0);
    CHECK_INT(t3->status, 0);
    CHECK_U64(t3->coro_frame, 0);
    CHECK_U64(t3->parent, idx(ts, x->t2));
    CHECK_STR(t3->parent_how, "await");
    CHECK(parents_end(ts));
}

/* The same when the image holds these three tasks only. */
static void three_check_alone(struct aimg *a, const struct three *x, const struct task_set *ts)
{
    three_check(a, x, ts);
    CHECK_INT(ts->n, 3);
    CHECK_INT(ts->stats.coroutines, 3);
    CHECK_INT(ts->stats.cut, 0);
    /* self0: the innermost coroutine's first local. */
    CHECK_U64(task_of(ts, x->t1)->self0, x->self1);
}

TEST(v311_weak_set_three_tasks)
{
    struct aimg a;
    a_init(&a, 11);
    struct three x;
    three_build(&a, &x, 0);
    /* The weak set: the tasks, a dead reference (None), a reference to an
     * int (an object freed and reused), and an int put there directly. */
    uint64_t notask = img_int(&a.im, 7);
    uint64_t refs[6] = {a_weakref(&a, x.t1), a_weakref(&a, a.im.none), a_weakref(&a, x.t2),
                        a_weakref(&a, notask), a_weakref(&a, x.t3), img_int(&a.im, 9)};
    a_modules(&a, 1, 1, a_tasks_dict(&a, refs, 6, NULL, 0, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    CHECK_INT(ts.stats.found, 4);       /* three tasks and the int behind a weak reference */
    CHECK_INT(ts.stats.unreadable, 1);  /* the int */
    CHECK(idx(&ts, notask) == SIZE_MAX);
    CHECK(idx(&ts, a.im.none) == SIZE_MAX);
    CHECK(ts.stats.reads > 0);
    three_check_alone(&a, &x, &ts);
    CHECK_STR(ts.registry, "asyncio.tasks._all_tasks");
    task_set_release(&ts);
    a_release(&a);
}

TEST(v311_done_cancelled_running_and_subtype)
{
    struct aimg a;
    a_init(&a, 11);
    uint64_t code = a_code(&a, "f");
    uint64_t sub = img_type(&a.im, "MyTask");
    img_f64(&a.im, sub, a.im.lay.tp_base, a.t_task);
    uint64_t run = a_coro(&a, code, 8, CO_RUNNING, 0);
    uint64_t tasks[4] = {
        a_task(&a, 2, 0, 0),                                   /* done */
        a_task(&a, 1, 0, 0),                                   /* cancelled */
        a_task_of(&a, sub, 0, run, 0),                         /* a subtype, running */
        a_task(&a, 7, a_coro(&a, code, 0, CO_CREATED, 0), 0),  /* a state that is none */
    };
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 4);
    CHECK_INT(task_of(&ts, tasks[0])->state, TASK_DONE);
    CHECK_INT(task_of(&ts, tasks[1])->state, TASK_CANCELLED);
    const struct atask *r = task_of(&ts, tasks[2]);
    CHECK_INT(r->state, TASK_RUNNING);
    CHECK_U64(r->type, sub);
    CHECK_U64(r->run_frame, a_frame_of(&a, run));
    CHECK_INT(r->depth, 1);
    CHECK_INT(task_of(&ts, tasks[3])->state, TASK_UNREADABLE);
    CHECK_INT(task_of(&ts, tasks[3])->depth, 0);
    task_set_release(&ts);
    a_release(&a);
}

TEST(v312_scheduled_and_eager_tasks)
{
    for (int minor = 12; minor <= 13; minor++) {
        struct aimg a;
        a_init(&a, minor);
        uint64_t code = a_code(&a, "g");
        uint64_t f = a_future(&a);
        uint64_t t1 = a_task(&a, 0, a_coro(&a, code, 6, CO_AWAITING, a_fiter(&a, f)), f);
        uint64_t t2 = a_task(&a, 0, a_coro(&a, code, 12, CO_AWAITING, a_fiter(&a, f)), f);
        uint64_t refs[1] = {a_weakref(&a, t1)};
        uint64_t eager[2] = {t2, t1}; /* t1 in both: kept once */
        a_modules(&a, 1, 1, a_tasks_dict(&a, refs, 1, eager, 2, NULL));
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), 0);
        CHECK_INT(ts.n, 2);
        CHECK_INT(ts.stats.found, 2);
        CHECK_INT(task_of(&ts, t1)->depth, 1);
        CHECK_INT(ts.raw[task_of(&ts, t1)->off].addrq, 6);
        CHECK_INT(ts.raw[task_of(&ts, t2)->off].addrq, 12);
        CHECK_U64(task_of(&ts, t2)->awaited, f);
        task_set_release(&ts);
        a_release(&a);
    }
}

TEST(no_asyncio_tasks_module_yet)
{
    struct aimg a;
    a_init(&a, 11);
    a_modules(&a, 1, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 0);
    task_set_release(&ts);
    a_release(&a);
}

/* asyncio.tasks imported, but with no weak set of tasks where it should be:
 * an asyncio pystrobe does not know, said so (not "no tasks"). */
TEST(asyncio_tasks_without_its_registry_is_an_error)
{
    for (int minor = 11; minor <= 12; minor++) {
        struct aimg a;
        a_init(&a, minor);
        const char *names[1] = {"something_else"};
        uint64_t vals[1] = {img_int(&a.im, 1)};
        a_modules(&a, 1, 1, img_str_dict(&a.im, names, vals, 1, 0));
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), -EINVAL);
        if (!strstr(err.msg, minor >= 12 ? "_scheduled_tasks" : "_all_tasks") ||
            !strstr(err.msg, "not found"))
            TEST_FAILF("3.%d: message \"%s\"", minor, err.msg);
        task_set_release(&ts);
        a_release(&a);
    }
}

/* ---- frame objects (<= 3.10) and thread-state lists (3.14+) -------------- */

static void three_on(int minor)
{
    struct aimg a;
    a_init(&a, minor);
    struct three x;
    three_build(&a, &x, 0);
    uint64_t tasks[3] = {x.t1, x.t2, x.t3};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 3, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    CHECK_INT(ts.stats.found, 3);
    CHECK_INT(ts.stats.unreadable, 0);
    three_check_alone(&a, &x, &ts);
    task_set_release(&ts);
    a_release(&a);
}

TEST(v38_frame_objects_f_stacktop)
{
    three_on(8);
}

TEST(v310_frame_objects_valuestack_depth_state)
{
    three_on(10);
}

TEST(v37_v39_frame_objects)
{
    three_on(7);
    three_on(9);
}

TEST(v38_running_coroutine_has_null_stacktop)
{
    struct aimg a;
    a_init(&a, 8);
    uint64_t code = a_code(&a, "r");
    uint64_t c = a_coro(&a, code, 14, CO_RUNNING, 0);
    uint64_t t = a_task(&a, 0, c, 0);
    a_modules(&a, 1, 1, a_weak_registry(&a, &t, 1, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    REQUIRE(ts.n == 1);
    CHECK_INT(ts.v[0].state, TASK_RUNNING);
    CHECK_U64(ts.v[0].run_frame, a_frame_of(&a, c));
    CHECK_INT(ts.v[0].depth, 1);
    CHECK_INT(ts.raw[ts.v[0].off].addrq, 14);
    task_set_release(&ts);
    a_release(&a);
}

static void lists_on(int minor)
{
    struct aimg a;
    a_init(&a, minor);
    struct three x;
    three_build(&a, &x, 1);
    uint64_t mine[2] = {x.t1, x.t2};
    a_thread_tasks(&a, mine, 2);
    /* T3's thread ended: the interpreter's list holds it. */
    a_list(&a, a.interp + (uint64_t)a.al->is_tasks_head, &x.t3, 1);
    a_modules(&a, 1, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    CHECK_INT(ts.stats.found, 3);
    three_check_alone(&a, &x, &ts);
    /* The code references were tagged: the frames hold the codes themselves. */
    CHECK_U64(ts.raw[task_of(&ts, x.t1)->off].code & 1, 0);
    CHECK_STR(ts.registry, "the thread states' lists of tasks");
    task_set_release(&ts);
    a_release(&a);
}

TEST(v314_thread_state_lists_tagged_references)
{
    lists_on(14);
}

TEST(v315_thread_state_lists)
{
    lists_on(15);
}

/* ---- who awaits whom: gather and TaskGroup ------------------------------- */

TEST(gather_children_and_taskgroup_parent)
{
    struct aimg a;
    a_init(&a, 11);
    struct img *im = &a.im;
    uint64_t code = a_code(&a, "w");
    uint64_t f = a_future(&a);
    uint64_t k1 = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, a_fiter(&a, f)), f);
    uint64_t k2 = a_task(&a, 0, a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, f)), f);
    /* A _GatheringFuture (a subclass of Future) listing k1 and k2. */
    uint64_t kids[2] = {k1, k2}, gtype;
    const char *gn[1] = {"_children"};
    uint64_t gv[1] = {img_list(im, kids, 2)};
    uint64_t gather = img_instance(im, "_GatheringFuture", gn, gv, 1, img_inst_default(im), &gtype);
    img_f64(im, gtype, im->lay.tp_base, a.t_future);
    uint64_t g = a_task(&a, 0, a_coro(&a, code, 6, CO_AWAITING, a_fiter(&a, gather)), gather);
    /* A plain Future with _children would not count: only a subclass is a gather. */
    /* A TaskGroup: k3's done callback is the bound method group._on_task_done. */
    uint64_t parent = a_task(&a, 0, a_coro(&a, code, 8, CO_AWAITING, a_fiter(&a, f)), f);
    const char *tn[1] = {"_parent_task"};
    uint64_t group = img_instance(im, "TaskGroup", tn, &parent, 1, img_inst_default(im), NULL);
    uint64_t meth = img_object(im, a.t_method, 48);
    img_w64(im, meth + 24, group);
    uint64_t k3 = a_task(&a, 0, a_coro(&a, code, 10, CO_AWAITING, a_fiter(&a, f)), f);
    img_w64(im, k3 + (uint64_t)a.al->fut_callback0, meth);
    /* k4: the method among the other callbacks, a list of (callback, context). */
    uint64_t k4 = a_task(&a, 0, a_coro(&a, code, 12, CO_AWAITING, a_fiter(&a, f)), f);
    uint64_t pair0[2] = {img_object(im, im->t_object, 32), 0};
    uint64_t pair1[2] = {meth, 0};
    uint64_t items[2] = {img_tuple(im, pair0, 2), img_tuple(im, pair1, 2)};
    img_w64(im, k4 + (uint64_t)a.al->fut_callbacks, img_list(im, items, 2));
    uint64_t tasks[6] = {k1, k2, g, parent, k3, k4};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 6, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 6);
    CHECK_U64(task_of(&ts, k1)->parent, idx(&ts, g));
    CHECK_STR(task_of(&ts, k1)->parent_how, "gather");
    CHECK_U64(task_of(&ts, k2)->parent, idx(&ts, g));
    CHECK_STR(task_of(&ts, k2)->parent_how, "gather");
    CHECK_U64(task_of(&ts, g)->awaited, gather);
    CHECK_U64(task_of(&ts, g)->parent, SIZE_MAX);
    CHECK_U64(task_of(&ts, k3)->parent, idx(&ts, parent));
    CHECK_STR(task_of(&ts, k3)->parent_how, "TaskGroup");
    CHECK_U64(task_of(&ts, k4)->parent, idx(&ts, parent));
    CHECK_STR(task_of(&ts, k4)->parent_how, "TaskGroup");
    CHECK_U64(task_of(&ts, parent)->parent, SIZE_MAX);
    CHECK(parents_end(&ts));
    task_set_release(&ts);
    a_release(&a);
}

TEST(plain_future_children_are_not_a_gather)
{
    struct aimg a;
    a_init(&a, 11);
    struct img *im = &a.im;
    uint64_t code = a_code(&a, "w");
    uint64_t f = a_future(&a);
    uint64_t k1 = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, a_fiter(&a, f)), f);
    /* An instance whose type is Future itself, with a _children attribute. */
    uint64_t ft;
    const char *gn[1] = {"_children"};
    uint64_t gv[1] = {img_list(im, &k1, 1)};
    uint64_t fut = img_instance(im, "PlainFuture", gn, gv, 1, img_inst_default(im), &ft);
    img_w64(im, fut + (uint64_t)im->lay.ob_type, a.t_future); /* same attribute storage */
    img_f64(im, a.t_future, im->lay.tp_flags, img_r64(im, ft + (uint64_t)im->lay.tp_flags));
    img_f64(im, a.t_future, im->lay.tp_dictoffset,
            img_r64(im, ft + (uint64_t)im->lay.tp_dictoffset));
    img_f64(im, a.t_future, im->lay.ht_cached_keys,
            img_r64(im, ft + (uint64_t)im->lay.ht_cached_keys));
    uint64_t g = a_task(&a, 0, a_coro(&a, code, 6, CO_AWAITING, a_fiter(&a, fut)), fut);
    uint64_t tasks[2] = {k1, g};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 2, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 2);
    CHECK_U64(task_of(&ts, k1)->parent, SIZE_MAX);
    task_set_release(&ts);
    a_release(&a);
}

/* ---- hostile memory ------------------------------------------------------- */

TEST(hostile_coroutine_awaits_itself)
{
    int minors[] = {8, 10, 11, 14};
    for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
        struct aimg a;
        a_init(&a, minors[v]);
        uint64_t code = a_code(&a, "loop");
        uint64_t c = a_coro(&a, code, 4, CO_AWAITING, 0);
        /* Its awaited slot: itself. */
        uint64_t base = a.al->gen_iframe >= 0
                            ? c + (uint64_t)(a.al->gen_iframe + a.al->if_localsplus)
                            : a_frame_of(&a, c) + (uint64_t)a.im.lay.fo_localsplus;
        img_w64(&a.im, base + 8 * (CO_SLOTS - (uint64_t)a.al->yf_below), c);
        uint64_t t = a_task(&a, 0, c, 0);
        struct three x;
        three_build(&a, &x, 0);
        uint64_t tasks[4] = {t, x.t1, x.t2, x.t3};
        if (a.al->task_node >= 0) {
            a_thread_tasks(&a, tasks, 4);
            a_modules(&a, 1, 1, 0);
        } else {
            a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
        }
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), 0);
        const struct atask *tt = task_of(&ts, t);
        if (tt->status != 1 || ts.stats.cut != 1 || tt->depth == 0 ||
            tt->depth > ASYNCIO_MAX_AWAIT)
            TEST_FAILF("3.%d: status %d cut %" PRIu64 " depth %zu", minors[v], tt->status,
                       ts.stats.cut, tt->depth);
        CHECK(frames_in_range(&ts));
        three_check(&a, &x, &ts);
        task_set_release(&ts);
        a_release(&a);
    }
}

TEST(hostile_stacktop_out_of_range)
{
    int32_t bad[] = {100000, -1, -2147483647 - 1};
    for (size_t b = 0; b < ARRAY_SIZE(bad); b++) {
        int minors[] = {10, 11, 13};
        for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
            struct aimg a;
            a_init(&a, minors[v]);
            uint64_t code = a_code(&a, "deep");
            uint64_t c = a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, a_future(&a)));
            if (a.al->if_stacktop >= 0)
                img_w32(&a.im, a_frame_of(&a, c) + (uint64_t)a.al->if_stacktop, (uint32_t)bad[b]);
            else
                img_w32(&a.im, a_frame_of(&a, c) + (uint64_t)a.al->fo_stackdepth,
                        (uint32_t)bad[b]);
            uint64_t t = a_task(&a, 0, c, 0);
            struct three x;
            three_build(&a, &x, 0);
            uint64_t tasks[4] = {x.t1, t, x.t2, x.t3};
            a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
            struct task_set ts;
            struct pserr err;
            CHECK_INT(collect(&a, &ts, &err), 0);
            const struct atask *tt = task_of(&ts, t);
            if (tt->status != -EINVAL || tt->awaited != 0)
                TEST_FAILF("3.%d stacktop %d: status %d", minors[v], bad[b], tt->status);
            three_check(&a, &x, &ts);
            task_set_release(&ts);
            a_release(&a);
        }
    }
}

/*
 * A coroutine (a generator) whose value stack is empty: at a plain yield
 * (asyncio.sleep(0)'s generator has no locals either), it awaits nothing;
 * the chain ends there, and that is no error (it once was -EINVAL).
 */
TEST(empty_value_stack_awaits_nothing)
{
    int minors[] = {8, 10, 11, 13, 14};
    for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
        struct aimg a;
        a_init(&a, minors[v]);
        uint64_t code = a_code(&a, "sleep0");
        uint64_t c = a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, a_future(&a)));
        uint64_t fr = a_frame_of(&a, c);
        const struct asyncio_layout *al = a.al;
        if (al->if_stacktop >= 0)
            img_w32(&a.im, fr + (uint64_t)al->if_stacktop, 0);
        else if (al->if_stackpointer >= 0)
            img_w64(&a.im, fr + (uint64_t)al->if_stackpointer, fr + (uint64_t)al->if_localsplus);
        else if (al->fo_stackdepth >= 0)
            img_w32(&a.im, fr + (uint64_t)al->fo_stackdepth, 0);
        else
            img_w64(&a.im, fr + (uint64_t)al->fo_stacktop,
                    img_r64(&a.im, fr + (uint64_t)al->fo_valuestack));
        uint64_t t = a_task(&a, 0, c, 0);
        uint64_t tasks[1] = {t};
        if (al->task_node >= 0) {
            a_thread_tasks(&a, tasks, 1);
            a_modules(&a, 1, 1, 0);
        } else {
            a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 1, NULL));
        }
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), 0);
        const struct atask *tt = task_of(&ts, t);
        if (tt->status != 0 || tt->depth != 1 || tt->awaited != 0 || tt->state != TASK_PENDING)
            TEST_FAILF("3.%d: status %d depth %zu awaited 0x%" PRIx64, minors[v], tt->status,
                       tt->depth, tt->awaited);
        task_set_release(&ts);
        a_release(&a);
    }
}

TEST(hostile_stackpointer_out_of_range_314)
{
    struct aimg a;
    a_init(&a, 14);
    uint64_t code = a_code(&a, "deep");
    uint64_t tasks[5];
    /* Below the base, far above it, absurd, unaligned. */
    for (int i = 0; i < 4; i++) {
        uint64_t c = a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, a_future(&a)));
        uint64_t fr = a_frame_of(&a, c), base = fr + (uint64_t)a.al->if_localsplus;
        uint64_t sp = i == 0 ? base - 8 : i == 1 ? base + 8 * 100000 : i == 2 ? 1ull << 62
                                                                           : base + 12;
        img_w64(&a.im, fr + (uint64_t)a.al->if_stackpointer, sp);
        tasks[i] = a_task(&a, 0, c, 0);
    }
    uint64_t ok = a_task(&a, 0, a_coro(&a, code, 6, CO_AWAITING, a_fiter(&a, a_future(&a))), 0);
    tasks[4] = ok;
    a_thread_tasks(&a, tasks, 5);
    a_modules(&a, 1, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 5);
    for (int i = 0; i < 4; i++)
        if (task_of(&ts, tasks[i])->status != -EINVAL)
            TEST_FAILF("stack pointer %d: status %d", i, task_of(&ts, tasks[i])->status);
    CHECK_INT(task_of(&ts, ok)->status, 0);
    CHECK(task_of(&ts, ok)->awaited != 0);
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_unmapped_coroutine_and_frame)
{
    int minors[] = {8, 11, 14};
    for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
        struct aimg a;
        a_init(&a, minors[v]);
        uint64_t hole = img_hole(&a.im);
        uint64_t bad = a_task(&a, 0, hole, 0);
        /* A coroutine mapped whose awaited slot points into the hole. */
        uint64_t code = a_code(&a, "x");
        uint64_t bad2 = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, hole + 64), 0);
        /* An unaligned coroutine pointer: unreadable. */
        uint64_t bad3 = a_task(&a, 0, hole + 3, 0);
        /* <= 3.10: a frame object pointer into the hole. */
        uint64_t bad4 = 0;
        if (a.al->gen_frame >= 0) {
            uint64_t c = a_coro(&a, code, 2, CO_AWAITING, 0);
            img_w64(&a.im, c + (uint64_t)a.al->gen_frame, hole + 256);
            bad4 = a_task(&a, 0, c, 0);
        }
        struct three x;
        three_build(&a, &x, 0);
        uint64_t tasks[7] = {bad, x.t1, bad2, x.t2, bad3, x.t3, bad4};
        size_t n = bad4 ? 7 : 6;
        if (a.al->task_node >= 0) {
            a_thread_tasks(&a, tasks, n);
            a_modules(&a, 1, 1, 0);
        } else {
            a_modules(&a, 1, 1, a_weak_registry(&a, tasks, n, NULL));
        }
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), 0);
        const struct atask *b = task_of(&ts, bad);
        if (!(b->status == -EFAULT || b->state == TASK_UNREADABLE))
            TEST_FAILF("3.%d: unmapped coroutine: status %d state %d", minors[v], b->status,
                       b->state);
        CHECK_INT(b->depth, 0);
        const struct atask *b2 = task_of(&ts, bad2);
        if (b2->status != -EFAULT || b2->depth != 1)
            TEST_FAILF("3.%d: unmapped awaited: status %d depth %zu", minors[v], b2->status,
                       b2->depth);
        CHECK_INT(task_of(&ts, bad3)->state, TASK_UNREADABLE);
        if (bad4) {
            const struct atask *b4 = task_of(&ts, bad4);
            if (b4->status != -EFAULT || b4->depth != 0)
                TEST_FAILF("3.%d: unmapped frame object: status %d", minors[v], b4->status);
        }
        three_check(&a, &x, &ts);
        task_set_release(&ts);
        a_release(&a);
    }
}

TEST(hostile_unmapped_task_in_registry)
{
    struct aimg a;
    a_init(&a, 11);
    struct three x;
    three_build(&a, &x, 0);
    uint64_t hole = img_hole(&a.im);
    uint64_t tasks[4] = {x.t1, hole, x.t2, x.t3};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    CHECK_INT(ts.stats.unreadable, 1);
    three_check(&a, &x, &ts);
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_weak_set_garbage_mask)
{
    struct {
        int64_t used, mask;
        int table; /* 0 keep, 1 null, 2 unaligned, 3 unmapped */
    } bad[] = {
        {1, 5, 0},                   /* not a power of two minus one */
        {1, (1ll << 40) - 1, 0},     /* huge */
        {1, INT64_MAX, 0},           /* mask + 1 overflows */
        {1, -1, 0},
        {-1, 7, 0},                  /* negative used */
        {100, 7, 0},                 /* more used than slots */
        {1, 7, 1},
        {1, 7, 2},
        {1, (1 << 20) - 1, 3},       /* a table of 2^20 slots that is not there
                                      * (its message: see below) */
    };
    for (size_t b = 0; b < ARRAY_SIZE(bad); b++) {
        struct aimg a;
        a_init(&a, 11);
        struct three x;
        three_build(&a, &x, 0);
        uint64_t tasks[3] = {x.t1, x.t2, x.t3}, data;
        a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 3, &data));
        const struct pylayout *l = &a.im.lay;
        img_w64(&a.im, data + (uint64_t)l->set_used, (uint64_t)bad[b].used);
        img_w64(&a.im, data + (uint64_t)l->set_mask, (uint64_t)bad[b].mask);
        if (bad[b].table)
            img_w64(&a.im, data + (uint64_t)l->set_table,
                    bad[b].table == 1 ? 0 : bad[b].table == 2
                                            ? img_r64(&a.im, data + (uint64_t)l->set_table) + 4
                                            : img_hole(&a.im));
        struct task_set ts;
        struct pserr err;
        int ret = collect(&a, &ts, &err);
        if (ret >= 0 || err.msg[0] == '\0' || ts.n != 0)
            TEST_FAILF("case %zu: ret %d n %zu msg \"%s\"", b, ret, ts.n, err.msg);
        else if (bad[b].table != 3 && !strstr(err.msg, "_all_tasks"))
            TEST_FAILF("case %zu: msg \"%s\"", b, err.msg);
        task_set_release(&ts);
        a_release(&a);
    }
}

/*
 * An unreadable weak set (3.7-3.13): the message names the weak set (it
 * once said "cannot read the thread states", the 3.14+ message).
 */
TEST(unreadable_weak_set_message_names_the_weak_set)
{
    struct aimg a;
    a_init(&a, 11);
    struct three x;
    three_build(&a, &x, 0);
    uint64_t tasks[3] = {x.t1, x.t2, x.t3}, data;
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 3, &data));
    img_w64(&a.im, data + (uint64_t)a.im.lay.set_table, img_hole(&a.im));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), -EFAULT);
    if (!strstr(err.msg, "_all_tasks"))
        TEST_FAILF("message \"%s\" does not name asyncio.tasks._all_tasks", err.msg);
    task_set_release(&ts);
    a_release(&a);
}

/*
 * A task awaiting a small object (a FutureIter of 32 bytes) that ends right
 * before unmapped memory.  Each level of a chain is read with a coroutine's
 * length (3.11+: gen_iframe + if_localsplus + 128 = 280 bytes on 3.11); a
 * piece that fails is read again for its head alone, so the future it
 * waits on is found (it was once lost: status -EFAULT).
 */
TEST(small_awaited_object_at_end_of_mapping)
{
    int minors[] = {8, 11, 14};
    for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
        struct aimg a;
        a_init(&a, minors[v]);
        uint64_t code = a_code(&a, "edge");
        uint64_t f = a_future(&a);
        struct three x;
        three_build(&a, &x, 0);
        uint64_t c = a_coro(&a, code, 4, CO_AWAITING, 0);
        uint64_t t = a_task(&a, 0, c, f);
        uint64_t tasks[4] = {t, x.t1, x.t2, x.t3};
        if (a.al->task_node >= 0) {
            a_thread_tasks(&a, tasks, 4);
            a_modules(&a, 1, 1, 0);
        } else {
            a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
        }
        /* The FutureIter: the last 32 bytes of the image (nothing mapped after). */
        uint64_t fi = img_object(&a.im, a.t_fiter, 32);
        REQUIRE(fi + 32 == a.im.base + a.im.used);
        img_w64(&a.im, fi + (uint64_t)a.al->futureiter_future, f);
        uint64_t base = a.al->gen_iframe >= 0
                            ? c + (uint64_t)(a.al->gen_iframe + a.al->if_localsplus)
                            : a_frame_of(&a, c) + (uint64_t)a.im.lay.fo_localsplus;
        img_w64(&a.im, base + 8 * (CO_SLOTS - (uint64_t)a.al->yf_below), fi);
        struct task_set ts;
        struct pserr err;
        CHECK_INT(collect(&a, &ts, &err), 0);
        const struct atask *tt = task_of(&ts, t);
        if (tt->status != 0 || tt->awaited != f || tt->depth != 1)
            TEST_FAILF("3.%d: status %d awaited 0x%" PRIx64 " (the future: 0x%" PRIx64
                       ") depth %zu", minors[v], tt->status, tt->awaited, f, tt->depth);
        three_check(&a, &x, &ts);
        task_set_release(&ts);
        a_release(&a);
    }
}

TEST(hostile_eager_set_garbage_is_ignored)
{
    struct aimg a;
    a_init(&a, 12);
    uint64_t code = a_code(&a, "g");
    uint64_t f = a_future(&a);
    uint64_t t1 = a_task(&a, 0, a_coro(&a, code, 6, CO_AWAITING, a_fiter(&a, f)), f);
    uint64_t refs[1] = {a_weakref(&a, t1)};
    uint64_t eager[1] = {t1};
    uint64_t d = a_tasks_dict(&a, refs, 1, eager, 1, NULL);
    a_modules(&a, 1, 1, d);
    /* _eager_tasks' mask: garbage. */
    uint64_t es;
    img_commit(&a.im);
    REQUIRE(pydict_get_str(&a.im.rt, d, "_eager_tasks", &es) == 0);
    img_w64(&a.im, es + (uint64_t)a.im.lay.set_mask, 12345);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 1);
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_tasks_waiting_on_each_other)
{
    struct aimg a;
    a_init(&a, 11);
    uint64_t code = a_code(&a, "w");
    /* Two tasks each the other's fut_waiter, and three in a ring, and one
     * waiting on itself. */
    uint64_t t[6];
    for (int i = 0; i < 6; i++)
        t[i] = a_task(&a, 0, a_coro(&a, code, 2 * i, CO_AWAITING, a_fiter(&a, a_future(&a))), 0);
    const struct asyncio_layout *al = a.al;
    img_w64(&a.im, t[0] + (uint64_t)al->task_fut_waiter, t[1]);
    img_w64(&a.im, t[1] + (uint64_t)al->task_fut_waiter, t[0]);
    img_w64(&a.im, t[2] + (uint64_t)al->task_fut_waiter, t[3]);
    img_w64(&a.im, t[3] + (uint64_t)al->task_fut_waiter, t[4]);
    img_w64(&a.im, t[4] + (uint64_t)al->task_fut_waiter, t[2]);
    img_w64(&a.im, t[5] + (uint64_t)al->task_fut_waiter, t[5]);
    a_modules(&a, 1, 1, a_weak_registry(&a, t, 6, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 6);
    CHECK(parents_end(&ts));
    /* Each cycle cut at one place only: one of the pair keeps its parent,
     * two of the ring keep theirs. */
    int kept = 0;
    for (int i = 0; i < 2; i++)
        kept += task_of(&ts, t[i])->parent != SIZE_MAX;
    CHECK_INT(kept, 1);
    kept = 0;
    for (int i = 2; i < 5; i++)
        kept += task_of(&ts, t[i])->parent != SIZE_MAX;
    CHECK_INT(kept, 2);
    CHECK_U64(task_of(&ts, t[5])->parent, SIZE_MAX);
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_taskgroup_and_gather_cycle)
{
    /* A TaskGroup whose parent task is the child itself, and a gather
     * future that lists the task that awaits it: no parent cycle. */
    struct aimg a;
    a_init(&a, 11);
    struct img *im = &a.im;
    uint64_t code = a_code(&a, "w");
    uint64_t f = a_future(&a);
    uint64_t k = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, a_fiter(&a, f)), f);
    const char *tn[1] = {"_parent_task"};
    uint64_t group = img_instance(im, "TaskGroup", tn, &k, 1, img_inst_default(im), NULL);
    uint64_t meth = img_object(im, a.t_method, 48);
    img_w64(im, meth + 24, group);
    img_w64(im, k + (uint64_t)a.al->fut_callback0, meth);
    uint64_t gtype;
    const char *gn[1] = {"_children"};
    uint64_t kids[1] = {0};
    uint64_t gv[1] = {img_list(im, kids, 1)};
    uint64_t gather = img_instance(im, "_GatheringFuture", gn, gv, 1, img_inst_default(im), &gtype);
    img_f64(im, gtype, im->lay.tp_base, a.t_future);
    uint64_t g = a_task(&a, 0, a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, gather)), gather);
    img_w64(im, img_r64(im, gv[0] + (uint64_t)im->lay.list_item), g); /* g among its children */
    uint64_t tasks[2] = {k, g};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 2, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 2);
    CHECK_U64(task_of(&ts, k)->parent, SIZE_MAX);
    CHECK_U64(task_of(&ts, g)->parent, SIZE_MAX);
    CHECK(parents_end(&ts));
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_task_list_never_returns_to_head)
{
    struct aimg a;
    a_init(&a, 14);
    struct three x;
    three_build(&a, &x, 1);
    uint64_t tasks[3] = {x.t1, x.t2, x.t3};
    a_thread_tasks(&a, tasks, 3);
    /* T2's node points to itself: the list never comes back to the head. */
    uint64_t n2 = x.t2 + (uint64_t)a.al->task_node;
    img_w64(&a.im, n2, n2);
    /* The interpreter's list: its first node in the hole (no task there:
     * the walk ends, nothing is counted). */
    img_w64(&a.im, a.interp + (uint64_t)a.al->is_tasks_head, img_hole(&a.im));
    a_modules(&a, 1, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 2);
    CHECK(idx(&ts, x.t1) != SIZE_MAX);
    CHECK(idx(&ts, x.t2) != SIZE_MAX);
    CHECK_INT(ts.stats.found, 2);
    CHECK_INT(ts.stats.unreadable, 0);
    /* Each list broken walked twice; the self-linked node is a cycle met at
     * once (not ASYNCIO_MAX_TASKS reads around it). */
    CHECK_INT(ts.stats.list_retries, 4);
    CHECK(ts.stats.reads < 100);
    CHECK(frames_in_range(&ts));
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_thread_states_in_a_cycle_314)
{
    struct aimg a;
    a_init(&a, 14);
    struct three x;
    three_build(&a, &x, 1);
    uint64_t tasks[3] = {x.t1, x.t2, x.t3};
    uint64_t ts1 = a_thread_tasks(&a, tasks, 3);
    /* A second thread state that is its own next, with an empty list. */
    uint64_t ts2 = img_alloc(&a.im, (size_t)a.al->ts_tasks_head + 64);
    a_list(&a, ts2 + (uint64_t)a.al->ts_tasks_head, NULL, 0);
    img_f64(&a.im, ts1, a.im.lay.ts_next, ts2);
    img_f64(&a.im, ts2, a.im.lay.ts_next, ts2);
    a_modules(&a, 1, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    three_check_alone(&a, &x, &ts);
    /* The cycle past the first thread state is met within a few steps (it
     * was walked MAX_TSTATES times, each walk of its list again: 8 000+ reads). */
    CHECK(ts.stats.reads < 100);
    task_set_release(&ts);
    /* The first thread state its own next: seen as the list's end at once. */
    img_f64(&a.im, ts1, a.im.lay.ts_next, ts1);
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 3);
    CHECK(ts.stats.reads < 100);
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_gather_children_claims_a_billion)
{
    struct aimg a;
    a_init(&a, 11);
    struct img *im = &a.im;
    uint64_t code = a_code(&a, "w");
    uint64_t f = a_future(&a);
    uint64_t k1 = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, a_fiter(&a, f)), f);
    uint64_t gtype;
    const char *gn[1] = {"_children"};
    uint64_t list = img_list(im, &k1, 1);
    img_w64(im, list + 16, 1000000000); /* ob_size */
    uint64_t gather = img_instance(im, "_GatheringFuture", gn, &list, 1, img_inst_default(im),
                                   &gtype);
    img_f64(im, gtype, im->lay.tp_base, a.t_future);
    uint64_t g = a_task(&a, 0, a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, gather)), gather);
    /* The same on a callbacks list: a billion (callback, context) pairs. */
    uint64_t cbs = img_list(im, &k1, 1);
    img_w64(im, cbs + 16, 1000000000);
    img_w64(im, k1 + (uint64_t)a.al->fut_callbacks, cbs);
    /* And a list within the bound whose items are not there. */
    uint64_t list2 = img_list(im, &k1, 1);
    img_w64(im, list2 + 16, 100000);
    img_w64(im, list2 + (uint64_t)im->lay.list_item, img_hole(im));
    uint64_t gather2 = img_instance(im, "_GatheringFuture2", gn, &list2, 1, img_inst_default(im),
                                    &gtype);
    img_f64(im, gtype, im->lay.tp_base, a.t_future);
    uint64_t g2 = a_task(&a, 0, a_coro(&a, code, 4, CO_AWAITING, a_fiter(&a, gather2)), gather2);
    /* Callbacks: 20 readable pairs, more than are read (8): refused, not overrun. */
    uint64_t pairs[20], pair[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        pair[0] = img_object(im, a.t_method, 48);
        pairs[i] = img_tuple(im, pair, 2);
    }
    uint64_t k2 = a_task(&a, 0, a_coro(&a, code, 2, CO_AWAITING, a_fiter(&a, f)), f);
    img_w64(im, k2 + (uint64_t)a.al->fut_callbacks, img_list(im, pairs, 20));
    uint64_t tasks[4] = {k1, g, g2, k2};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 4, NULL));
#ifndef __SANITIZE_ADDRESS__
    /* A billion 8-byte items would not fit: an attempt to allocate them aborts. */
    struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30};
    REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0);
#endif
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(ts.n, 4);
    CHECK_U64(task_of(&ts, k1)->parent, SIZE_MAX);
    CHECK(parents_end(&ts));
    task_set_release(&ts);
    a_release(&a);
}

TEST(hostile_coroutine_is_not_a_coroutine)
{
    struct aimg a;
    a_init(&a, 11);
    struct three x;
    three_build(&a, &x, 0);
    /* Its coro: an int; a coroutine whose code pointer is null. */
    uint64_t bad = a_task(&a, 0, img_int(&a.im, 5), 0);
    uint64_t c = a_coro(&a, a_code(&a, "z"), 2, CO_AWAITING, 0);
    img_w64(&a.im, a_frame_of(&a, c) + (uint64_t)a.im.lay.if_code, 0);
    uint64_t bad2 = a_task(&a, 0, c, 0);
    uint64_t tasks[5] = {bad, x.t1, x.t2, bad2, x.t3};
    a_modules(&a, 1, 1, a_weak_registry(&a, tasks, 5, NULL));
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), 0);
    CHECK_INT(task_of(&ts, bad)->status, -EINVAL);
    CHECK_INT(task_of(&ts, bad2)->status, -EINVAL);
    CHECK_INT(task_of(&ts, bad2)->depth, 0);
    three_check(&a, &x, &ts);
    task_set_release(&ts);
    a_release(&a);
}

/* ---- asyncio or its C module missing ------------------------------------- */

/*
 * asyncio without its C module (sys.modules['_asyncio'] missing or None):
 * the pure-Python Task and Future of asyncio.tasks and asyncio.futures,
 * each task's fields its instance attributes (_state a class attribute,
 * PENDING, until set).
 */
static uint64_t pure_task(struct aimg *a, uint64_t *t_task, uint64_t t_future, uint64_t coro,
                          uint64_t waiter, const char *state, const char *name)
{
    struct img *im = &a->im;
    const char *names[6] = {"_coro", "_fut_waiter", "_loop", "_name", "_callbacks", "_state"};
    uint64_t vals[6] = {coro, waiter ? waiter : im->none, img_object(im, im->t_object, 16),
                        img_str(im, name), im->none, state ? img_str(im, state) : 0};
    uint64_t type;
    uint64_t t = img_instance(im, "Task", names, vals, state ? 6 : 5, IMG_INST_DICT, &type);
    if (!*t_task) {
        *t_task = type;
        img_f64(im, type, im->lay.tp_base, t_future);
    }
    img_f64(im, t, im->lay.ob_type, *t_task);   /* one Task class for all */
    return t;
}

TEST(pure_python_tasks)
{
    int minors[] = {8, 11, 13, 14};
    for (size_t v = 0; v < ARRAY_SIZE(minors); v++) {
        for (int hidden = 0; hidden <= 1; hidden++) {  /* _asyncio absent, or None */
            struct aimg a;
            a_init(&a, minors[v]);
            struct img *im = &a.im;
            const struct pylayout *l = &im->lay;
            uint64_t t_task = 0, t_future = img_type(im, "Future");
            uint64_t code = a_code(&a, "pure");
            uint64_t f = img_object(im, t_future, 64), g = img_object(im, t_future, 64);
            /* A awaits future f through its coroutine; B is done; C waits on A. */
            uint64_t ta = pure_task(&a, &t_task, t_future, a_coro(&a, code, 6, CO_AWAITING, f), f,
                                    NULL, "A");
            uint64_t tb = pure_task(&a, &t_task, t_future, a_coro(&a, code, 6, CO_AWAITING, f), 0,
                                    "FINISHED", "B");
            uint64_t tc = pure_task(&a, &t_task, t_future, a_coro(&a, code, 8, CO_AWAITING, g),
                                    ta, "PENDING", "C");
            uint64_t refs[3] = {a_weakref(&a, ta), a_weakref(&a, tb), a_weakref(&a, tc)};
            uint64_t data = img_set(im, refs, 3, 0);
            const char *dn[1] = {"data"};
            uint64_t ws = img_instance(im, "WeakSet", dn, &data, 1, img_inst_default(im), NULL);
            const char *tn[2] = {minors[v] >= 12 ? "_scheduled_tasks" : "_all_tasks", "Task"};
            uint64_t tv[2] = {ws, t_task};
            const char *fn[1] = {"Future"};
            uint64_t tmod = img_object(im, im->t_module, 64), fmod = img_object(im, im->t_module, 64);
            img_f64(im, tmod, l->md_dict, img_str_dict(im, tn, tv, 2, 0));
            img_f64(im, fmod, l->md_dict, img_str_dict(im, fn, &t_future, 1, 0));
            const char *mn[4] = {"asyncio", "asyncio.tasks", "asyncio.futures", "_asyncio"};
            uint64_t mv[4] = {img_object(im, im->t_module, 64), tmod, fmod, im->none};
            img_f64(im, a.interp, l->is_modules, img_str_dict(im, mn, mv, hidden ? 4 : 3, 0));
            struct task_set ts;
            struct pserr err;
            int ret = collect(&a, &ts, &err);
            if (ret != 0 || ts.n != 3) {
                TEST_FAILF("3.%d%s: ret %d n %zu: %s", minors[v], hidden ? " (None)" : "", ret,
                           ts.n, err.msg);
            } else {
                const struct atask *xa = task_of(&ts, ta), *xb = task_of(&ts, tb),
                                   *xc = task_of(&ts, tc);
                CHECK_U64(ts.task_type, t_task);
                CHECK_INT(xa->state, TASK_PENDING);
                CHECK_INT(xa->depth, 1);
                CHECK_U64(xa->awaited, f);
                CHECK_INT(xb->state, TASK_DONE);
                CHECK_INT(xc->state, TASK_PENDING);
                CHECK_U64(xa->parent, idx(&ts, tc));
                CHECK(xa->parent_how && !strcmp(xa->parent_how, "await"));
            }
            task_set_release(&ts);
            a_release(&a);
        }
    }
}

/* No _asyncio, and no pure-Python Task where it should be: said so. */
TEST(no_c_module_nor_python_task)
{
    struct aimg a;
    a_init(&a, 11);
    a_modules(&a, 1, 0, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), -EINVAL);
    CHECK(strstr(err.msg, "pure-Python") != NULL && strstr(err.msg, "_asyncio") != NULL);
    CHECK_INT(ts.n, 0);
    task_set_release(&ts);
    a_release(&a);
}

TEST(no_asyncio_is_enoent)
{
    struct aimg a;
    a_init(&a, 11);
    a_modules(&a, 0, 1, 0);
    struct task_set ts;
    struct pserr err;
    CHECK_INT(collect(&a, &ts, &err), -ENOENT);
    CHECK(strstr(err.msg, "asyncio") != NULL);
    CHECK_INT(ts.n, 0);
    task_set_release(&ts);
    a_release(&a);
}

TEST(c_module_without_task_type)
{
    struct aimg a;
    a_init(&a, 11);
    a_modules(&a, 1, 1, 0);
    /* _asyncio's dict without Task: an error, not a crash. */
    struct img *im = &a.im;
    const char *cn[1] = {"Future"};
    uint64_t cv[1] = {a.t_future};
    img_commit(im);
    uint64_t modules, mod;
    REQUIRE(mem_read_u64(im->m, a.interp + (uint64_t)im->lay.is_modules, &modules) == 0);
    REQUIRE(pydict_get_str(&im->rt, modules, "_asyncio", &mod) == 0);
    img_f64(im, mod, im->lay.md_dict, img_str_dict(im, cn, cv, 1, 0));
    struct task_set ts;
    struct pserr err;
    int ret = collect(&a, &ts, &err);
    CHECK(ret < 0);
    CHECK(err.msg[0] != '\0');
    task_set_release(&ts);
    a_release(&a);
}

TEST(unknown_version_is_enotsup)
{
    struct aimg a;
    a_init(&a, 11);
    a_modules(&a, 1, 1, 0);
    img_commit(&a.im);
    a.im.rt.minor = 6;
    struct task_set ts = {0};
    struct pserr err = {0};
    CHECK_INT(asyncio_collect(&a.im.rt, a.interp, &ts, &err), -ENOTSUP);
    CHECK(err.msg[0] != '\0');
    task_set_release(&ts);
    a_release(&a);
}
