/*
 * The snapshot's judgement of a stack read while its thread ran (snapshot.h),
 * one test per rule, on fake images of every version: a caller that cannot
 * be calling cuts the stack at it; a frame at a return has left (3.12+); a
 * frame pushed above the top the thread state gave is taken in (3.11+); a
 * generator outermost (<= 3.10) or a frame whose code is no code is torn; a
 * torn walk is taken again at once, with the tries and drops counted by why;
 * frames read apart from the thread state are kept, and read ahead after;
 * the cframe of an eval loop left is passed over (3.11, 3.12).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test.h"

#include "image.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"

static const int all_versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};

/* Opcodes as each version numbers them, and the cache units after a call. */
struct ops {
    uint8_t load, call, ret, binop;
    int call_caches, binop_caches;
};

static struct ops ops_of(const struct img *im)
{
    if (im->major == 3 && im->minor >= 15)
        return (struct ops){83, 50, 33, 42, 3, 5};
    if (im->major == 3 && im->minor == 14)
        return (struct ops){84, 52, 35, 44, 3, 5};
    if (im->major == 3 && im->minor == 13)
        return (struct ops){85, 53, 36, 45, 3, 1};
    if (im->major == 3 && im->minor == 12)
        return (struct ops){124, 171, 83, 122, 3, 1};
    if (im->major == 3 && im->minor == 11)
        return (struct ops){124, 171, 83, 122, 4, 1};
    return (struct ops){124, 131, 83, 23, 0, 0};
}

/*
 * Where each kind of instruction sits in the bytecode every test code object
 * has: a load, a call (and its last cache unit: where 3.11 and 3.12 point a
 * frame calling one it pushed), a return, an operator.
 */
struct at {
    int64_t load, call, call_cache, ret, binop;
};

/* A code object named name with that bytecode (and, 3.11+, frames of 96 bytes). */
static uint64_t code_of(struct img *im, const char *name, struct at *at)
{
    struct ops o = ops_of(im);
    uint8_t b[64];
    size_t n = 0;
    at->load = (int64_t)n;
    b[n++] = o.load, b[n++] = 0;
    at->call = (int64_t)n;
    b[n++] = o.call, b[n++] = 1;
    for (int i = 0; i < o.call_caches; i++)
        b[n++] = 0, b[n++] = 0;
    at->call_cache = o.call_caches ? (int64_t)n - 2 : at->call;
    at->ret = (int64_t)n;
    b[n++] = o.ret, b[n++] = 0;
    at->binop = (int64_t)n;
    b[n++] = o.binop, b[n++] = 0;
    for (int i = 0; i < o.binop_caches; i++)
        b[n++] = 0, b[n++] = 0;
    uint64_t c = img_code(im, "snap.py", name, NULL, 1, NULL, 0);
    const struct pylayout *l = &im->lay;
    if (l->co_code_adaptive > 0) {
        img_wmem(im, c + (uint64_t)l->co_code_adaptive, b, n);
        img_f64(im, c, 16, n / 2);
        /* (specials 9 + locals 1 + stack 2) * 8: img_push's frames with 16 bytes of locals */
        img_f32(im, c, l->co_nlocalsplus, 1);
        img_f32(im, c, l->co_stacksize, 2);
    } else {
        img_f64(im, c, l->co_code, img_bytes(im, b, n));
    }
    return c;
}

/* A session on the image, as session_attach makes one on a process. */
static void session_on(struct session *s, struct img *im)
{
    memset(s, 0, sizeof(*s));
    s->mem = im->m; /* the image's: not the session's to free */
    s->rt = im->rt;
    s->walker = walker_new(&s->rt);
    names_init(&s->own_names);
    s->names = &s->own_names;
    struct code_facts cf;
    layout_code_facts(&s->rt.layout, &cf);
    s->cc = codecache_new(im->m, &cf, s->names, s->rt.code_type, 4);
    walk_set_returned(s->walker, codecache_code_at_return, s->cc);
}

static void session_off(struct session *s)
{
    for (size_t i = 0; i < s->nthreads; i++) {
        mem_task_close(s->threads[i].task);
        free(s->threads[i].stack);
        free(s->threads[i].name);
    }
    free(s->threads);
    free(s->pos_hint);
    codecache_free(s->cc);
    walker_free(s->walker);
    names_release(&s->own_names);
}

/* The stack a snapshot kept of its only thread, as function names (innermost first). */
static int stack_names(struct session *s, struct snapshot *sn, const char **names, size_t max)
{
    if (sn->nthreads != 1)
        return -100;
    const struct snap_thread *t = &sn->st[0];
    if (t->status < 0)
        return t->status;
    size_t n = 0;
    for (size_t i = 0; i < t->depth && n < max; i++) {
        const struct names_frame *f = names_frame_get(s->names, sn->ids[t->off + i]);
        names[n++] = names_str_get(s->names, names_func_get(s->names, f->func)->name);
    }
    return (int)n;
}

/* Checks the kept stack's function names against want[0..n) (innermost first). */
static void check_stack(struct session *s, struct snapshot *sn, const struct img *im,
                        const char *const *want, size_t n)
{
    const char *got[16];
    int k = stack_names(s, sn, got, 16);
    if (k != (int)n) {
        TEST_FAILF("%d.%d: %d frames kept, expected %zu", im->major, im->minor, k, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i], want[i]) != 0)
            TEST_FAILF("%d.%d: frame %zu is %s, expected %s", im->major, im->minor, i, got[i],
                       want[i]);
}

/*
 * A thread running outer -> mid -> leaf, with mid at mid_at and leaf at
 * leaf_at (outer calls mid); 3.11+ frames on one data-stack chunk, leaf
 * pushed by mid itself.  Returns the thread state; frames[] the frames.
 */
static uint64_t stack3(struct img *im, uint64_t interp, const uint64_t *codes,
                       const int64_t *at, uint64_t *frames, struct img_chunk *c)
{
    uint64_t ts = img_tstate(im, interp, 0x7f00, 42);
    img_link_threads(im, interp, &ts, 1);
    if (im->lay.frames == FRAME_OBJECTS) {
        uint64_t back = 0;
        for (int k = 2; k >= 0; k--)
            back = frames[k] = img_frame(im, codes[k], back, (int32_t)(at[k] / (im->lay.lasti_units ? 2 : 1)));
        img_set_frame(im, ts, frames[0], NULL, 0);
    } else {
        img_chunk_new(im, c, 8192, 0);
        uint64_t prev = img_bottom(im);
        for (int k = 2; k >= 0; k--)
            prev = frames[k] = img_push(im, c, codes[k], at[k], 0, prev, 16);
        img_set_frame(im, ts, frames[0], c, 0);
    }
    return ts;
}

static const struct snap_opts walk_all = {.max_depth = WALK_MAX_DEPTH};

/* leaf, mid and outer: three code objects of that bytecode (code_of). */
static void three_codes(struct img *im, uint64_t *codes, struct at *a)
{
    static const char *const names[3] = {"leaf", "mid", "outer"};
    for (int i = 0; i < 3; i++)
        codes[i] = code_of(im, names[i], &a[i]);
}

/* leaf running, called by mid, called by outer: the stack most tests start from. */
struct run3 {
    uint64_t interp, codes[3], frames[3], ts;
    struct at a[3];
    struct img_chunk c;
};

/* The codes of a run3 (three_codes): a test may add objects before the stack. */
static void running3_codes(struct img *im, struct run3 *r)
{
    r->interp = img_interp(im);
    three_codes(im, r->codes, r->a);
}

/* Its frames and thread state (stack3), not committed: a test may change them first. */
static void running3_stack(struct img *im, struct run3 *r)
{
    const int64_t at[3] = {r->a[0].load, r->a[1].call_cache, r->a[2].call_cache};
    r->ts = stack3(im, r->interp, r->codes, at, r->frames, &r->c);
}

static void running3(struct img *im, struct run3 *r)
{
    running3_codes(im, r);
    running3_stack(im, r);
}

/*
 * A session on the image as it is now, and a snapshot of it, in place of
 * those before (first: there were none).  snapshot_take's result.
 */
static int take_anew(struct session *s, struct snapshot *sn, struct img *im, int first)
{
    if (!first) {
        snapshot_release(sn);
        session_off(s);
    }
    session_on(s, im);
    snapshot_init(sn);
    return snapshot_take(s, sn, &walk_all);
}

/* A caller that cannot be calling was the running frame: the stack is kept from it. */
TEST(caller_not_calling_cuts_the_stack)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        three_codes(&im, codes, a);
        /* mid at a plain load: leaf had returned when mid was read */
        const int64_t at[3] = {a[0].binop, a[1].load, a[2].call_cache};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        static const char *const want[] = {"mid", "outer"};
        check_stack(&s, &sn, &im, want, 2);
        CHECK_U64(sn.cut, 1);
        /* mid at a call instead: all three kept, nothing cut. */
        if (im.lay.frames == FRAME_OBJECTS)
            img_f32(&im, frames[1], im.lay.fo_lasti, (uint32_t)(a[1].call / (im.lay.lasti_units ? 2 : 1)));
        else
            img_iframe_at(&im, frames[1], codes[1], a[1].call_cache, 0, frames[2]);
        img_commit(&im);
        CHECK_INT(take_anew(&s, &sn, &im, 0), 0);
        static const char *const all[] = {"leaf", "mid", "outer"};
        check_stack(&s, &sn, &im, all, 3);
        CHECK_U64(sn.cut, 0);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * 3.11+: a frame mid pushed itself (no C between) runs only under a call
 * (or the like); 3.11 and 3.12 put mid's instruction pointer on the call's
 * last cache unit while it runs, on the opcode while mid calls C.
 */
TEST(pushed_frame_needs_a_call_under_it)
{
    for (size_t v = 6; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        three_codes(&im, codes, a);
        /* mid at an operator: it may call Python through C, not push leaf
         * itself; from 3.14 BINARY_OP may (a class's __getitem__), so mid
         * is at a load there, which pushes nothing either. */
        const int64_t at[3] = {a[0].load, im.minor >= 14 ? a[1].load : a[1].binop,
                               a[2].call_cache};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        static const char *const want[] = {"mid", "outer"};
        check_stack(&s, &sn, &im, want, 2);
        /* mid on its call's opcode: calling C on 3.11 and 3.12 (cut), maybe
         * leaf on 3.13 (kept). */
        img_iframe_at(&im, frames[1], codes[1], a[1].call, 0, frames[2]);
        img_commit(&im);
        CHECK_INT(take_anew(&s, &sn, &im, 0), 0);
        static const char *const all[] = {"leaf", "mid", "outer"};
        if (im.minor >= 13)
            check_stack(&s, &sn, &im, all, 3);
        else
            check_stack(&s, &sn, &im, want, 2);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/* 3.12+: a frame at a return is unlinked before it is cleared: it had left. */
TEST(frame_at_a_return_had_left)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        three_codes(&im, codes, a);
        const int64_t at[3] = {a[0].ret, a[1].call_cache, a[2].call_cache};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        static const char *const gone[] = {"mid", "outer"};
        static const char *const all[] = {"leaf", "mid", "outer"};
        if (im.major == 3 && im.minor >= 12)
            check_stack(&s, &sn, &im, gone, 2);
        else
            check_stack(&s, &sn, &im, all, 3);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * 3.11+: the thread state names mid, which was calling a frame it pushed:
 * that frame, right above mid on the data stack, ran when the stack was
 * read, and is taken in.  One not linked to mid, or at a return, is not.
 */
TEST(frame_pushed_since_is_taken_in)
{
    for (size_t v = 6; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        struct run3 r;
        running3(&im, &r);
        img_set_frame(&im, r.ts, r.frames[1], &r.c, 0); /* the thread state a moment behind */
        img_commit(&im);
        struct session s;
        session_on(&s, &im);
        struct snapshot sn;
        snapshot_init(&sn);
        static const char *const all[] = {"leaf", "mid", "outer"};
        static const char *const two[] = {"mid", "outer"};
        /* Twice: the first time frames read alone are read again with the
         * thread state (read apart), and the frame above was read too. */
        for (int k = 0; k < 2; k++) {
            CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
            check_stack(&s, &sn, &im, all, 3);
        }
        CHECK(sn.caught_up >= 2);
        /* The frame above links elsewhere: not mid's. */
        img_f64(&im, r.frames[0], im.lay.if_previous, r.frames[2]);
        img_commit(&im);
        CHECK_INT(take_anew(&s, &sn, &im, 0), 0);
        check_stack(&s, &sn, &im, two, 2);
        /* Linked to mid, at a return: had returned, as every call leaves
         * its frame (3.11 clears it before it unlinks it, but a frame the
         * thread state did not name is not the one being cleared). */
        img_iframe_at(&im, r.frames[0], r.codes[0], r.a[0].ret, 0, r.frames[1]);
        img_commit(&im);
        CHECK_INT(take_anew(&s, &sn, &im, 0), 0);
        check_stack(&s, &sn, &im, two, 2);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * A stack no reading could make whole (<= 3.10: a generator's frame as the
 * thread's outermost) is walked SNAP_TRIES times, counted, then dropped.
 */
TEST(torn_stack_tried_then_dropped)
{
    for (size_t v = 0; v < 6; v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        codes[0] = code_of(&im, "leaf", &a[0]);
        codes[1] = code_of(&im, "mid", &a[1]);
        codes[2] = code_of(&im, "gen", &a[2]);
        img_f32(&im, codes[2], im.lay.co_flags, 0x63); /* a generator */
        const int64_t at[3] = {a[0].load, a[1].call, a[2].call};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        CHECK_INT(sn.st[0].status, -EINVAL);
        CHECK_U64(sn.retries, SNAP_TRIES - 1);
        CHECK_U64(sn.torn_tries[TORN_GEN_ROOT], SNAP_TRIES);
        CHECK_U64(sn.torn_drops[TORN_GEN_ROOT], 1);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/* Points a frame's code at another object that is no code on every read. */
struct code_churn {
    uint64_t field;     /* the frame's code field */
    uint64_t objs[61];  /* not code */
};

static void churn_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct code_churn *ch = ctx;
    mem_buffer_write(m, ch->field, &ch->objs[calls % ARRAY_SIZE(ch->objs)], 8);
}

/* The address of frame f's code field. */
static uint64_t code_field(const struct img *im, uint64_t f)
{
    return f + (uint64_t)(im->lay.frames == FRAME_OBJECTS ? im->lay.fo_code : im->lay.if_code);
}

/* A frame whose code is no code object, another on each try: torn, tried again, dropped. */
TEST(not_code_is_torn)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        struct code_churn ch;
        for (size_t i = 0; i < ARRAY_SIZE(ch.objs); i++)
            ch.objs[i] = img_object(&im, im.t_str, 64); /* not code */
        codes[0] = code_of(&im, "leaf", &a[0]);
        codes[1] = ch.objs[0];
        codes[2] = code_of(&im, "outer", &a[2]);
        const int64_t at[3] = {a[0].load, 0, a[2].call_cache};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        ch.field = code_field(&im, frames[1]);
        mem_buffer_on_read(im.m, churn_on_read, &ch);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        mem_buffer_on_read(im.m, NULL, NULL);
        CHECK_INT(sn.st[0].status, -EINVAL);
        CHECK_INT((int)sn.st[0].depth, 0);
        CHECK_U64(sn.torn_tries[TORN_NOT_CODE], SNAP_TRIES);
        CHECK_U64(sn.torn_drops[TORN_NOT_CODE], 1);
        CHECK_U64(sn.unreadable, 0);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/* The name a kept frame was given, innermost first (k < depth). */
static const char *frame_name(struct session *s, const struct snapshot *sn, size_t k)
{
    const struct names_frame *f = names_frame_get(s->names, sn->ids[sn->st[0].off + k]);
    return names_str_get(s->names, names_func_get(s->names, f->func)->name);
}

/*
 * A frame whose code is the same object that is no code on every try is
 * no stack that moved: it is kept, named as an unreadable code object,
 * with the frames around it, and counted apart from torn walks.
 */
TEST(code_unreadable_on_every_try_is_kept)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        for (int pos = 0; pos < 3; pos++) {
            struct img im;
            img_init(&im, all_versions[v][0], all_versions[v][1], 0);
            uint64_t interp = img_interp(&im), codes[3], frames[3];
            struct at a[3];
            three_codes(&im, codes, a);
            codes[pos] = img_object(&im, im.t_str, 64); /* not code */
            int64_t at[3] = {a[0].load, a[1].call_cache, a[2].call_cache};
            at[pos] = 0;
            struct img_chunk c;
            stack3(&im, interp, codes, at, frames, &c);
            img_commit(&im);
            struct session s;
            struct snapshot sn;
            CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
            CHECK_INT(sn.st[0].status, 0);
            static const char *const names[3] = {"leaf", "mid", "outer"};
            char bad[64];
            snprintf(bad, sizeof(bad), "<unreadable code object at 0x%" PRIx64 ">", codes[pos]);
            if (sn.st[0].status == 0 && sn.st[0].depth == 3) {
                for (size_t k = 0; k < 3; k++)
                    CHECK_STR(frame_name(&s, &sn, k), (int)k == pos ? bad : names[k]);
            } else {
                TEST_FAILF("%d.%d, no code at %d: %zu frames kept, expected 3", im.major,
                           im.minor, pos, sn.st[0].depth);
            }
            for (int k = 0; k < TORN_COUNT; k++) {
                CHECK_U64(sn.torn_tries[k], 0);
                CHECK_U64(sn.torn_drops[k], 0);
            }
            CHECK_U64(sn.retries, 0);
            CHECK_U64(sn.unreadable, 1);
            CHECK_U64(sn.unreadable_retries, SNAP_TRIES - 1);
            /* Met again, it is known after two tries, not every one. */
            CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
            CHECK_INT(sn.st[0].status, 0);
            CHECK_INT((int)sn.st[0].depth, 3);
            if (sn.st[0].depth == 3)
                CHECK_STR(frame_name(&s, &sn, (size_t)pos), bad);
            CHECK_U64(sn.retries, 0);
            CHECK_U64(sn.unreadable, 2);
            CHECK_U64(sn.unreadable_retries, SNAP_TRIES);
            snapshot_release(&sn);
            session_off(&s);
            img_release(&im);
        }
    }
}

/*
 * A code object cached by an earlier snapshot, taken as cached when the
 * stack is looked at and found gone when it is resolved: the stack is
 * dropped as torn, with no frame left (no frame id of it was set).
 */
TEST(code_gone_at_resolve_drops_every_frame)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        struct run3 r;
        running3(&im, &r);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        CHECK_INT(sn.st[0].status, 0);
        CHECK_INT((int)sn.st[0].depth, 3);
        /* mid's code object freed: its reference count is a free-list link now */
        uint64_t zero = 0;
        mem_buffer_write(im.m, r.codes[1], &zero, 8);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        CHECK_INT(sn.st[0].status, -EINVAL);
        CHECK_INT((int)sn.st[0].depth, 0);
        CHECK_U64(sn.torn_drops[TORN_NOT_CODE], 1);
        CHECK_U64(sn.unreadable, 0);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/* Makes the thread's top frame (3.11+: and data stack top) frame at the n-th read. */
struct move_at {
    uint64_t at_call, ts, frame;
    int off;
};

static void move_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct move_at *mv = ctx;
    if (calls == mv->at_call)
        mem_buffer_write(m, mv->ts + (uint64_t)mv->off, &mv->frame, 8);
}

/*
 * A stack caught changing (<= 3.10: its top frame freed, 3.11+: a garbage
 * top) is walked again at once, after a read of the thread state (and its
 * frames) of its own, and kept: one retry, no drop.
 */
TEST(torn_walk_taken_again_at_once)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        if (im.lay.ts_cframe >= 0) { /* 3.11/3.12 keep the top in a cframe: see below */
            img_release(&im);
            continue;
        }
        struct run3 r;
        running3(&im, &r);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0); /* reads ahead from now on */
        /* The thread state names a garbage frame; by the next read, mid. */
        int off = im.lay.ts_frame >= 0 ? im.lay.ts_frame : im.lay.ts_current_frame;
        uint64_t bad = im.lay.frames == FRAME_OBJECTS ? r.frames[0] + 8 : r.frames[0] + 4;
        mem_buffer_write(im.m, r.ts + (uint64_t)off, &bad, 8);
        struct move_at mv = {mem_read_calls(im.m) + 1, r.ts, r.frames[1], off};
        mem_buffer_on_read(im.m, move_on_read, &mv);
        struct snapshot before = sn;
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        /* mid has the top now (3.13 keeps frames a thread pushed above it
         * too: it cannot tell them from its call's). */
        static const char *const want[] = {"mid", "outer"};
        static const char *const all[] = {"leaf", "mid", "outer"};
        if (im.lay.frames == FRAME_INTERPRETER)
            check_stack(&s, &sn, &im, all, 3);
        else
            check_stack(&s, &sn, &im, want, 2);
        CHECK_U64(sn.retries - before.retries, 1);
        /* a frame object that is none (<= 3.10), a frame misaligned (3.11+) */
        enum walk_torn why = im.lay.frames == FRAME_OBJECTS ? TORN_DEAD : TORN_GARBAGE;
        for (int k = 0; k < TORN_COUNT; k++) {
            CHECK_U64(sn.torn_tries[k] - before.torn_tries[k], k == (int)why);
            CHECK_U64(sn.torn_drops[k], 0);
        }
        mem_buffer_on_read(im.m, NULL, NULL);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * A first look: frames never read ahead are read alone, a moment after the
 * thread state.  The walk is kept as it is (taking it again would favour
 * stacks the reads ahead already cover), and from then on those frames are
 * read with the thread state.
 */
TEST(frames_read_apart_are_kept_then_read_ahead)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        struct run3 r;
        running3(&im, &r);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        static const char *const all[] = {"leaf", "mid", "outer"};
        check_stack(&s, &sn, &im, all, 3);
        CHECK_U64(sn.retries, 0);
        CHECK(walk_last_open(s.walker) > 0);
        /* From then on, no read of its own. */
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        check_stack(&s, &sn, &im, all, 3);
        CHECK_U64(sn.retries, 0);
        CHECK_U64(walk_last_open(s.walker), 0);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * 3.11/3.12: the thread state names the cframe of an eval loop that mid
 * called from C, running leaf; the cframes are read a moment later.  A
 * loop left by then (3.12: its frame is its own shim; 3.11: its first frame
 * at a return) or whose cframe is left over on the C stack is passed over
 * for the cframe that called it, running mid: no walk is taken again.
 */
TEST(cframe_of_a_loop_left_is_passed_over)
{
    for (size_t v = 6; v < 8; v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        three_codes(&im, codes, a);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        struct img_chunk c;
        img_chunk_new(&im, &c, 8192, 0);
        frames[2] = img_push(&im, &c, codes[2], a[2].call_cache, 0, img_bottom(&im), 16);
        frames[1] = img_push(&im, &c, codes[1], a[1].call, 0, frames[2], 16);
        /* leaf, entered from C: through a shim (3.12), marked so (3.11) */
        uint64_t shim = im.minor == 12 ? img_loose_iframe(&im, img_r64(&im, img_bottom(&im) + (uint64_t)l->if_code), 0, l->owner_cstack, frames[1]) : 0;
        frames[0] = img_push(&im, &c, codes[0], a[0].load, 0, shim ? shim : frames[1], 16);
        if (l->if_is_entry >= 0)
            img_w8(&im, frames[0] + (uint64_t)l->if_is_entry, 1);
        img_alloc(&im, 4096); /* the C stack: away from the thread state */
        uint64_t x = img_alloc(&im, 32);
        uint64_t own = img_loose_iframe(&im, im.minor == 12 ? img_r64(&im, shim + (uint64_t)l->if_code) : 0, 0, l->owner_cstack, frames[1]);
        uint64_t y = img_alloc(&im, 32);
        uint64_t root = ts + (uint64_t)(l->ts_size - 48);
        img_f64(&im, y, l->cf_current_frame, frames[1]);
        img_f64(&im, y, l->cf_current_frame + 8, root);
        img_f64(&im, x, l->cf_current_frame, frames[0]);
        img_f64(&im, x, l->cf_current_frame + 8, y);
        img_f64(&im, ts, l->ts_cframe, x);
        img_f64(&im, ts, l->ts_datastack_chunk, c.addr);
        img_f64(&im, ts, l->ts_datastack_top, c.top);
        img_commit(&im);
        struct session s;
        session_on(&s, &im);
        struct snapshot sn;
        snapshot_init(&sn);
        static const char *const all[] = {"leaf", "mid", "outer"};
        static const char *const two[] = {"mid", "outer"};
        /* Running: twice, the second time with everything read ahead. */
        for (int k = 0; k < 2; k++) {
            CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
            check_stack(&s, &sn, &im, all, 3);
        }
        CHECK_U64(walk_last_open(s.walker), 0);
        CHECK_U64(walk_stats(s.walker)->outer_walks, 0);
        /* Left: 3.12 makes its own shim the loop's frame; 3.11 leaves leaf
         * there, at its return. */
        uint64_t ret = img_instr(&im, codes[0], a[0].ret);
        mem_buffer_write(im.m, frames[0] + (uint64_t)l->if_instr, &ret, 8);
        if (im.minor == 12)
            mem_buffer_write(im.m, x + (uint64_t)l->cf_current_frame, &own, 8);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        check_stack(&s, &sn, &im, two, 2);
        CHECK_U64(walk_stats(s.walker)->outer_walks, 1);
        /* Left over: the place holds something else. */
        const uint64_t junk[2] = {0x5008, 4};
        mem_buffer_write(im.m, x + (uint64_t)l->cf_current_frame, junk, 16);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        check_stack(&s, &sn, &im, two, 2);
        CHECK_U64(walk_stats(s.walker)->outer_walks, 2);
        CHECK_U64(sn.retries, 0);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/*
 * A frame taken in whose code object is new to the cache, loaded when the
 * cache is full: the cache grows (and moves) while the caller's entry is
 * still in use.  Whatever the number of code objects cached before (one of
 * them puts the load on a growth), the stack is kept whole (ASan: no read
 * of the entries the growth freed).
 */
TEST(frame_taken_in_while_the_cache_grows)
{
    for (size_t v = 6; v < ARRAY_SIZE(all_versions); v++) {
        for (size_t pre = 0; pre <= 16; pre++) {
            struct img im;
            img_init(&im, all_versions[v][0], all_versions[v][1], 0);
            struct run3 r;
            uint64_t others[16];
            struct at other_at;
            running3_codes(&im, &r);
            for (size_t i = 0; i < pre; i++)
                others[i] = code_of(&im, "other", &other_at);
            running3_stack(&im, &r);
            img_set_frame(&im, r.ts, r.frames[1], &r.c, 0); /* leaf is found above mid */
            img_commit(&im);
            struct session s;
            session_on(&s, &im);
            struct code_entry *out[16];
            CHECK_INT(codecache_peek(s.cc, others, pre, out), 0);
            struct snapshot sn;
            snapshot_init(&sn);
            static const char *const all[] = {"leaf", "mid", "outer"};
            CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
            check_stack(&s, &sn, &im, all, 3);
            snapshot_release(&sn);
            session_off(&s);
            img_release(&im);
        }
    }
}

/* 3.12+: a frame at a return under a caller whose code is unreadable is judged without it. */
TEST(frame_at_a_return_over_an_unreadable_caller)
{
    for (size_t v = 7; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), codes[3], frames[3];
        struct at a[3];
        three_codes(&im, codes, a);
        codes[1] = img_object(&im, im.t_str, 64); /* not code */
        const int64_t at[3] = {a[0].ret, 0, a[2].call_cache};
        struct img_chunk c;
        stack3(&im, interp, codes, at, frames, &c);
        img_commit(&im);
        struct session s;
        struct snapshot sn;
        CHECK_INT(take_anew(&s, &sn, &im, 1), 0);
        CHECK_INT(sn.st[0].status, 0);
        CHECK_U64(sn.unreadable, 1);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

/* A thread of this process blocked in read() until told to end. */
struct sleeper {
    pthread_t th;
    int fds[2];
    volatile pid_t tid;
};

static void *sleep_in_read(void *arg)
{
    struct sleeper *z = arg;
    char c;
    z->tid = (pid_t)syscall(SYS_gettid);
    while (read(z->fds[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/*
 * A thread's frames are read before its kernel state: one that ran up to a
 * long wait in between was read as it ran.  That stack is its stack of
 * that snapshot, but reused for the ticks after (the thread has not run
 * since its kernel state was read) it would stand for the whole wait.  It
 * is reused only as read once the thread was seen off CPU before the read.
 * (The kernel state is this process's own blocked thread; 3.11+, whose
 * thread state holds the tid.)
 */
TEST(stack_read_before_a_wait_is_not_reused_for_it)
{
    struct sleeper z = {.tid = 0};
    REQUIRE(pipe(z.fds) == 0);
    REQUIRE(pthread_create(&z.th, NULL, sleep_in_read, &z) == 0);
    for (int k = 0; k < 2000 && !z.tid; k++)
        usleep(1000);
    REQUIRE(z.tid > 0);
    /* Blocked in read() for good: its state letter is no longer R. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)z.tid);
    unsigned long long run = 0, wait = 0, switches = 0;
    FILE *f = fopen(path, "r");
    int sched = f && fscanf(f, "%llu %llu %llu", &run, &wait, &switches) == 3 && switches > 0;
    if (f)
        fclose(f);
    usleep(20000);
    for (size_t v = 0; sched && v < ARRAY_SIZE(all_versions); v++) {
        if (all_versions[v][0] < 3 || (all_versions[v][0] == 3 && all_versions[v][1] < 11))
            continue;
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        struct run3 r;
        running3(&im, &r);
        img_f64(&im, r.ts, l->ts_native_thread_id, (uint64_t)z.tid);
        img_commit(&im);
        struct session s;
        session_on(&s, &im);
        s.pid = s.rt.pid = getpid();
        mem_buffer_tasks_of(im.m, getpid()); /* real threads beside the image */
        struct snapshot sn;
        snapshot_init(&sn);
        const struct snap_opts o = {.max_depth = WALK_MAX_DEPTH, .want_state = 1};
        static const char *const all[] = {"leaf", "mid", "outer"};
        static const char *const two[] = {"mid", "outer"};
        /* Read running in leaf; the kernel state, read after, says off CPU. */
        CHECK_INT(snapshot_take(&s, &sn, &o), 0);
        check_stack(&s, &sn, &im, all, 3);
        CHECK_INT(sn.st[0].state != 'R', 1);
        /* It had gone back to mid to wait there: the thread state says so
         * from the next read, while the kernel state stays as it was. */
        uint64_t at_mid = img_instr(&im, r.codes[1], r.a[1].load);
        mem_buffer_write(im.m, r.frames[1] + (uint64_t)l->if_instr, &at_mid, 8);
        uint64_t top = r.frames[1];
        if (l->ts_current_frame >= 0)
            mem_buffer_write(im.m, r.ts + (uint64_t)l->ts_current_frame, &top, 8);
        else
            mem_buffer_write(im.m, img_r64(&im, r.ts + (uint64_t)l->ts_cframe) + (uint64_t)l->cf_current_frame,
                             &top, 8);
        CHECK_INT(snapshot_take(&s, &sn, &o), 0);
        CHECK_U64(sn.stacks_reused, 0);
        check_stack(&s, &sn, &im, two, 2);
        /* Still since: reused from now on, as read then. */
        CHECK_INT(snapshot_take(&s, &sn, &o), 0);
        CHECK_U64(sn.stacks_reused, 1);
        check_stack(&s, &sn, &im, two, 2);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
    REQUIRE(write(z.fds[1], "x", 1) == 1);
    pthread_join(z.th, NULL);
    close(z.fds[0]);
    close(z.fds[1]);
    if (!sched)
        SKIP("no scheduler statistics in /proc (schedstat): nothing tells a thread that has not run");
}

/* <= 3.10: a live image of one thread (no Python frames) whose struct pthread
 * holds tid at glibc's offset; *pt receives the struct's address. */
static uint64_t old_thread_image(struct img *im, int minor, pid_t tid, uint64_t *pt)
{
    img_init_ex(im, minor ? 3 : 2, minor ? minor : 7, 0, 1);
    uint64_t interp = img_interp(im);
    *pt = img_alloc(im, 2048);
    img_w32(im, *pt + 720, (uint32_t)tid);
    uint64_t ts = img_tstate(im, interp, *pt, 0);
    img_link_threads(im, interp, &ts, 1);
    img_commit(im);
    return interp;
}

static const int old_minors[] = {0, 6, 7, 8, 9, 10}; /* 0: 2.7 */

/*
 * <= 3.10: a thread seen while the tid's place in struct pthread is not
 * known yet (the search found nothing: here the main thread's tid is not
 * there yet) has its tid from the next list on, once it is found, not
 * 64 lists later: until then an on-CPU recording cannot sample it.
 */
TEST(old_threads_tid_looked_up_again_with_the_next_list)
{
    /* This process (forked for the test) started more than a clock tick
     * before it is first seen: the tid found later is its own all along. */
    usleep(30000);
    for (size_t v = 0; v < ARRAY_SIZE(old_minors); v++) {
        struct img im;
        uint64_t pt;
        old_thread_image(&im, old_minors[v], 0, &pt);
        struct session s;
        session_on(&s, &im);
        s.pid = s.rt.pid = getpid();
        mem_buffer_tasks_of(im.m, getpid()); /* real threads beside the image */
        struct snapshot sn;
        snapshot_init(&sn);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        REQUIRE(s.nthreads == 1);
        CHECK_INT(s.threads[0].tid, 0);
        img_w32(&im, pt + 720, (uint32_t)getpid());
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        REQUIRE(s.nthreads == 1);
        CHECK_INT(s.threads[0].tid, getpid());
        CHECK_INT(s.threads[0].ns_tid, getpid());
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
}

static void sleeper_start(struct sleeper *z)
{
    z->tid = 0;
    REQUIRE(pipe(z->fds) == 0);
    REQUIRE(pthread_create(&z->th, NULL, sleep_in_read, z) == 0);
    for (int k = 0; k < 2000 && !z->tid; k++)
        usleep(1000);
    REQUIRE(z->tid > 0);
}

static void sleeper_stop(struct sleeper *z)
{
    REQUIRE(write(z->fds[1], "x", 1) == 1);
    pthread_join(z->th, NULL);
    close(z->fds[0]);
    close(z->fds[1]);
}

/*
 * <= 3.10: threads seen before the tid's place in struct pthread was found.
 * Once it is, a thread whose tid names a task that started before the
 * thread was first seen keeps its entry (its samples so far are that
 * task's: it has had the ident all along); one whose task started since
 * may be another thread that took over the thread state and the ident, and
 * is tracked anew, the old entry retired with what it holds.
 */
TEST(old_threads_tid_found_late_is_theirs_only_if_there_all_along)
{
    struct sleeper before, after;
    sleeper_start(&before);
    /* It and this process started more than a clock tick before first seen. */
    usleep(30000);
    for (size_t v = 0; v < ARRAY_SIZE(old_minors); v++) {
        struct img im;
        img_init_ex(&im, old_minors[v] ? 3 : 2, old_minors[v] ? old_minors[v] : 7, 0, 1);
        uint64_t interp = img_interp(&im);
        uint64_t pm = img_alloc(&im, 2048), pa = img_alloc(&im, 2048), pb = img_alloc(&im, 2048);
        /* Newest first: B, A, the main thread; no tid anywhere yet. */
        uint64_t ts[3] = {img_tstate(&im, interp, pb, 0), img_tstate(&im, interp, pa, 0),
                          img_tstate(&im, interp, pm, 0)};
        img_link_threads(&im, interp, ts, 3);
        img_commit(&im);
        struct session s;
        session_on(&s, &im);
        s.pid = s.rt.pid = getpid();
        mem_buffer_tasks_of(im.m, getpid()); /* real threads beside the image */
        struct snapshot sn;
        snapshot_init(&sn);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        REQUIRE(sn.nthreads == 3 && s.nthreads == 3);
        size_t first[3];
        for (int i = 0; i < 3; i++) {
            first[i] = sn.st[i].tracked;
            CHECK_INT(s.threads[first[i]].tid, 0);
        }
        /* B's struct pthread is another thread's by the time the tids are found. */
        sleeper_start(&after);
        img_w32(&im, pm + 720, (uint32_t)getpid());
        img_w32(&im, pa + 720, (uint32_t)before.tid);
        img_w32(&im, pb + 720, (uint32_t)after.tid);
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        REQUIRE(sn.nthreads == 3 && s.nthreads == 4);
        CHECK_INT(sn.st[2].tracked, first[2]);
        CHECK_INT(s.threads[first[2]].tid, getpid());
        CHECK_INT(sn.st[1].tracked, first[1]);
        CHECK_INT(s.threads[first[1]].tid, before.tid);
        size_t nb = sn.st[0].tracked;
        CHECK(nb != first[0]);
        CHECK_INT(s.threads[nb].tid, after.tid);
        CHECK_INT(s.threads[nb].retired, 0);
        CHECK_INT(s.threads[first[0]].tid, 0);
        CHECK_INT(s.threads[first[0]].retired, 1);
        /* The retired entry is never taken for the thread again. */
        CHECK_INT(snapshot_take(&s, &sn, &walk_all), 0);
        CHECK_INT(s.nthreads, 4);
        CHECK_INT(sn.st[0].tracked, nb);
        sleeper_stop(&after);
        snapshot_release(&sn);
        session_off(&s);
        img_release(&im);
    }
    sleeper_stop(&before);
}

/*
 * Thread states come from the memory source (task.h), so a buffer's
 * made-up thread gives them as a live thread's /proc files would: running,
 * waiting for the GIL (blocked in a futex on it), blocked on a lock (a
 * futex elsewhere), idle in another call; a thread not switched in since
 * its last look keeps what it was then without a read; its OS name names
 * a thread that threading does not know; and a thread gone has no state.
 */
TEST(thread_states_of_made_up_threads)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    const struct pylayout *l = &im.lay;
    REQUIRE(l->gil == GIL_INTERP);
    struct run3 r;
    running3(&im, &r);
    img_f64(&im, r.ts, l->ts_native_thread_id, 4242);
    uint64_t gil = img_alloc(&im, 256);
    img_f64(&im, r.interp, l->is_ceval_gil, gil);
    img_commit(&im);
    struct mem_fake_task f = {.tid = 4242, .state = 'R', .comm = "worker"};
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    struct session s;
    session_on(&s, &im);
    s.name_all = 1;
    struct snapshot sn;
    snapshot_init(&sn);
    const struct snap_opts o = {.max_depth = WALK_MAX_DEPTH, .want_state = 1, .want_wait = 1};
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    REQUIRE(sn.nthreads == 1);
    const struct tracked *tr = &s.threads[sn.st[0].tracked];
    CHECK_INT(tr->tid, 4242);
    CHECK_INT(sn.st[0].state, 'R');
    CHECK_INT(sn.st[0].ts, TS_RUNNING);
    session_name_threads(&s, r.interp, 1);
    CHECK_STR(s.threads[sn.st[0].tracked].name, "worker");
    f.state = 'S';
    f.syscall_nr = SYS_futex;
    f.syscall_arg0 = gil + 8;
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_INT(sn.st[0].ts, TS_GIL_WAIT);
    CHECK_INT(sn.st[0].lock_wait, 0);
    f.syscall_arg0 = 0x1000;
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_INT(sn.st[0].ts, TS_IDLE);
    CHECK_INT(sn.st[0].lock_wait, 1);
    f.syscall_nr = SYS_read;
    f.has_sched = 1;
    f.run_ns = 5000;
    f.switches = 3;
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_INT(sn.st[0].ts, TS_IDLE);
    CHECK_INT(sn.st[0].lock_wait, 0);
    CHECK_U64(sn.states_kept, 0);
    /* Not switched in since: what it was, unread (a new state would show). */
    f.state = 'R';
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_U64(sn.states_kept, 1);
    CHECK_INT(sn.st[0].state, 'S');
    f.switches = 4;
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_INT(sn.st[0].state, 'R');
    CHECK_INT(sn.st[0].ts, TS_RUNNING);
    /* Gone: no state to tell. */
    mem_buffer_drop_task(im.m, 4242);
    CHECK_INT(snapshot_take(&s, &sn, &o), 0);
    CHECK_INT(sn.st[0].state, 0);
    snapshot_release(&sn);
    session_off(&s);
    img_release(&im);
}

static int fake_hold(void *ctx, struct session *s, struct snapshot *sn, size_t k)
{
    (void)ctx, (void)s, (void)sn, (void)k;
    return 0;
}

static void fake_release(void *ctx, struct session *s, struct snapshot *sn, size_t k)
{
    (void)ctx, (void)s, (void)sn, (void)k;
}

static int fake_merge(void *ctx, struct session *s, struct snapshot *sn, size_t k,
                      const uint32_t **ids, size_t *n)
{
    (void)ctx, (void)s, (void)sn, (void)k, (void)ids, (void)n;
    return -ENOENT;
}

/* The thread's state after a snapshot with made-up thread f as it is now (-1: none taken). */
static int state_with(struct session *s, struct snapshot *sn, const struct snap_opts *o,
                      const struct mem_fake_task *f)
{
    if (mem_buffer_set_task(s->mem, f) < 0 || snapshot_take(s, sn, o) < 0 || sn->nthreads != 1)
        return -1;
    return (int)sn->st[0].ts;
}

/*
 * --native holds an idle thread to read its registers: that interrupts its
 * wait, and once let go it must run again to go back to it.  On a busy
 * machine it may still be runnable, not yet having run, at the next
 * sample: it is idle there, not running.  Once it has run its own code
 * since (CPU time), or when it was not held, runnable is running.
 */
TEST(idle_thread_woken_by_a_hold_is_still_idle)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    const struct pylayout *l = &im.lay;
    struct run3 r;
    running3(&im, &r);
    img_f64(&im, r.ts, l->ts_native_thread_id, 4242);
    img_commit(&im);
    struct mem_fake_task f = {.tid = 4242, .state = 'S', .syscall_nr = SYS_clock_nanosleep,
                              .has_sched = 1, .run_ns = 100000, .switches = 10};
    REQUIRE(mem_buffer_set_task(im.m, &f) == 0);
    struct session s;
    session_on(&s, &im);
    struct snapshot sn;
    snapshot_init(&sn);
    const struct snap_native hooks = {fake_hold, fake_release, fake_merge, NULL};
    struct snap_opts o = {.max_depth = WALK_MAX_DEPTH, .want_state = 1, .want_wait = 1,
                          .native = &hooks};
    CHECK_INT(state_with(&s, &sn, &o, &f), TS_IDLE);
    /* Woken by the hold: switched in to stop, runnable again since, a few us run. */
    f.state = 'R';
    f.run_ns += 8000;
    f.switches += 2;
    CHECK_INT(state_with(&s, &sn, &o, &f), TS_IDLE);
    /* It ran its own code since (5 ms): running. */
    f.run_ns += 5000000;
    f.switches += 1;
    CHECK_INT(state_with(&s, &sn, &o, &f), TS_RUNNING);
    /* Without a hold, a thread off CPU that is runnable now is running. */
    o.native = NULL;
    f.state = 'S';
    CHECK_INT(state_with(&s, &sn, &o, &f), TS_IDLE);
    f.state = 'R';
    f.run_ns += 8000;
    f.switches += 2;
    CHECK_INT(state_with(&s, &sn, &o, &f), TS_RUNNING);
    snapshot_release(&sn);
    session_off(&s);
    img_release(&im);
}
