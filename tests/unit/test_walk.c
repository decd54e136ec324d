/*
 * The walker on fake images: thread-state lists, PyFrameObject chains
 * (<= 3.10) and _PyInterpreterFrame chains in data-stack chunks (3.11+),
 * with the garbage a torn read produces: dead frames, wrong types, cycles.
 */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test.h"

#include "image.h"

static const int all_versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};
static const int old_versions[][2] = {{2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}};
static const int new_minors[] = {11, 12, 13, 14, 15};

/* n distinct code objects f0..f(n-1). */
static void mkcodes(struct img *im, uint64_t *codes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%zu", i);
        codes[i] = img_code(im, "walk.py", name, NULL, (int)(10 * i + 1), NULL, 0);
    }
}

/*
 * Pushes frames for codes[n-1] (outermost) .. codes[0] (innermost) onto c,
 * each pointing at the one pushed before it (the first at `previous`).
 * Returns the innermost frame; frames[i] (if not NULL) receive addresses.
 */
static uint64_t push_chain(struct img *im, struct img_chunk *c, const uint64_t *codes,
                           const int64_t *offs, size_t n, uint64_t previous, uint64_t *frames)
{
    uint64_t f = previous;
    for (size_t k = n; k-- > 0;) {
        f = img_push(im, c, codes[k], offs[k], 0, f, 16);
        if (frames)
            frames[k] = f;
    }
    return f;
}

/* Walks interp's threads, requiring exactly one, into *t. */
static void only_thread(struct img *im, struct walker *w, uint64_t interp, struct walk_thread *t)
{
    struct walk_thread ts[4];
    size_t n = 0;
    int ret = walk_threads(w, interp, ts, 4, &n);
    if (ret != 0 || n != 1)
        TEST_FAILF("%d.%d: walk_threads %d, n %zu", im->major, im->minor, ret, n);
    REQUIRE(ret == 0 && n == 1);
    *t = ts[0];
}

/* Checks a walk's result against codes[0..n) and addrq[0..n). */
static void check_frames(struct img *im, const struct rawframe *out, size_t depth,
                         const uint64_t *codes, const int64_t *addrq, size_t n)
{
    if (depth != n) {
        TEST_FAILF("%d.%d: depth %zu, expected %zu", im->major, im->minor, depth, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i].code != codes[i] || out[i].addrq != addrq[i])
            TEST_FAILF("%d.%d: frame %zu: code 0x%" PRIx64 " addrq %" PRId64
                       ", expected 0x%" PRIx64 " %" PRId64,
                       im->major, im->minor, i, out[i].code, out[i].addrq, codes[i], addrq[i]);
}

/* Walks the only thread of interp; returns the reads it took, list included. */
static uint64_t walk_once(struct img *im, struct walker *w, uint64_t interp, struct rawframe *out,
                          size_t *depth)
{
    struct walk_thread t;
    uint64_t reads = mem_read_calls(im->m);
    only_thread(im, w, interp, &t);
    int ret = walk_stack(w, &t, out, 64, depth);
    if (ret != 0)
        TEST_FAILF("%d.%d: walk_stack %d (torn: %s)", im->major, im->minor, ret, walk_torn_name(walk_last_torn(w)));
    return mem_read_calls(im->m) - reads;
}

/* ---- thread lists ---------------------------------------------------------- */

TEST(threads_fields_every_version)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im);
        uint64_t code;
        mkcodes(&im, &code, 1);
        uint64_t ts[3], frames[3];
        struct img_chunk chunks[3];
        for (int i = 0; i < 3; i++) {
            ts[i] = img_tstate(&im, interp, 0x7f0000000100ull + (uint64_t)i * 0x1000,
                               (uint32_t)(4000 + i));
            if (im.lay.frames == FRAME_OBJECTS) {
                frames[i] = img_frame(&im, code, 0, 0);
                img_set_frame(&im, ts[i], frames[i], NULL, 0);
            } else {
                img_chunk_new(&im, &chunks[i], 4096, 0);
                frames[i] = img_push(&im, &chunks[i], code, 0, 0, 0, 0);
                /* 3.11/3.12: one cframe inside the thread state, the others outside. */
                img_set_frame(&im, ts[i], frames[i], &chunks[i], i == 1);
            }
        }
        img_link_threads(&im, interp, ts, 3);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[8];
        size_t n = 0;
        int ret = walk_threads(w, interp, out, 8, &n);
        CHECK_INT(ret, 0);
        CHECK_INT(n, 3);
        for (size_t i = 0; i < n && i < 3; i++) {
            CHECK_U64(out[i].tstate, ts[i]);
            CHECK_U64(out[i].thread_id, 0x7f0000000100ull + i * 0x1000);
            /* 3.11/3.12: a cframe outside the thread state is only noted;
             * the walk reads the top frame from it. */
            if (out[i].frame_at) {
                uint64_t top = 0;
                CHECK_U64(out[i].frame, 0);
                CHECK(im.lay.ts_cframe >= 0 && i != 1);
                CHECK_INT(mem_read_u64(im.m, out[i].frame_at, &top), 0);
                CHECK_U64(top, frames[i]);
            } else {
                CHECK_U64(out[i].frame, frames[i]);
            }
            if (im.lay.ts_native_thread_id >= 0)
                CHECK_INT(out[i].native_tid, 4000 + (int)i);
            else
                CHECK_INT(out[i].native_tid, 0);
            if (im.lay.frames == FRAME_INTERPRETER) {
                CHECK_U64(out[i].chunk, chunks[i].addr);
                CHECK_U64(out[i].chunk_top, chunks[i].top);
            } else {
                CHECK_U64(out[i].chunk, 0);
            }
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_empty_and_no_frame)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t empty = img_interp(&im), one = img_interp(&im);
        uint64_t ts = img_tstate(&im, one, 0x1234000, 77);
        img_link_threads(&im, one, &ts, 1);
        if (im.lay.ts_cframe >= 0)
            img_set_frame(&im, ts, 0, NULL, 0); /* a cframe whose current_frame is NULL */
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[2];
        size_t n = 5;
        CHECK_INT(walk_threads(w, empty, out, 2, &n), 0);
        CHECK_INT(n, 0);
        CHECK_INT(walk_threads(w, one, out, 2, &n), 0);
        CHECK_INT(n, 1);
        CHECK_U64(out[0].frame, 0);
        /* A thread with no frame walks to an empty stack.  A cframe outside
         * the thread state (3.11/3.12) is an eval loop's on the C stack,
         * which always has a frame: none was read as a loop began or ended. */
        struct rawframe raw[4];
        size_t depth = 9;
        CHECK_INT(walk_stack(w, &out[0], raw, 4, &depth), out[0].frame_at ? -EINVAL : 0);
        CHECK_INT(depth, 0);
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_cycle_is_eloop)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        uint64_t self = img_interp(&im), ring = img_interp(&im), tail = img_interp(&im);
        uint64_t s0 = img_tstate(&im, self, 1, 1);
        img_link_threads(&im, self, &s0, 1);
        img_f64(&im, s0, l->ts_next, s0);
        uint64_t r[3];
        for (int i = 0; i < 3; i++)
            r[i] = img_tstate(&im, ring, 10 + (uint64_t)i, 1);
        img_link_threads(&im, ring, r, 3);
        img_f64(&im, r[2], l->ts_next, r[0]);
        /* A lasso: t0 -> t1 -> t2 -> t3 -> t4 -> t2 (the head is not on the cycle). */
        uint64_t t[5];
        for (int i = 0; i < 5; i++)
            t[i] = img_tstate(&im, tail, 20 + (uint64_t)i, 1);
        img_link_threads(&im, tail, t, 5);
        img_f64(&im, t[4], l->ts_next, t[2]);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[64];
        size_t n;
        CHECK_INT(walk_threads(w, self, out, 64, &n), -ELOOP);
        CHECK_INT(walk_threads(w, ring, out, 64, &n), -ELOOP);
        CHECK_INT(walk_threads(w, tail, out, 64, &n), -ELOOP);
        CHECK(n <= 64);
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_garbage_is_einval)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        uint64_t foreign = img_interp(&im), other = img_interp(&im), many = img_interp(&im),
                 odd = img_interp(&im), lost = img_interp(&im);
        /* The second thread state belongs to another interpreter. */
        uint64_t f[2] = {img_tstate(&im, foreign, 1, 1), img_tstate(&im, other, 2, 1)};
        img_link_threads(&im, foreign, f, 2);
        uint64_t m[5];
        for (int i = 0; i < 5; i++)
            m[i] = img_tstate(&im, many, 100 + (uint64_t)i, 1);
        img_link_threads(&im, many, m, 5);
        uint64_t o = img_tstate(&im, odd, 1, 1);
        img_link_threads(&im, odd, &o, 1);
        img_f64(&im, o, l->ts_next, o + 4); /* misaligned */
        uint64_t lo = img_tstate(&im, lost, 1, 1);
        img_link_threads(&im, lost, &lo, 1);
        img_f64(&im, lo, l->ts_next, img_hole(&im));
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[8];
        size_t n;
        CHECK_INT(walk_threads(w, foreign, out, 8, &n), -EINVAL);
        CHECK_INT(walk_threads(w, many, out, 3, &n), -EINVAL);
        CHECK(n <= 3);
        CHECK_INT(walk_threads(w, many, out, 5, &n), 0);
        CHECK_INT(n, 5);
        CHECK_INT(walk_threads(w, odd, out, 8, &n), -EINVAL);
        CHECK_INT(walk_threads(w, lost, out, 8, &n), -EFAULT);
        CHECK_INT(walk_threads(w, img_hole(&im), out, 8, &n), -EFAULT);
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_cframe_unreadable_311_312)
{
    for (int minor = 11; minor <= 12; minor++) {
        struct img im;
        img_init(&im, 3, minor, 0);
        uint64_t interp = img_interp(&im);
        uint64_t ts = img_tstate(&im, interp, 1, 1);
        img_link_threads(&im, interp, &ts, 1);
        img_f64(&im, ts, im.lay.ts_cframe, img_hole(&im));
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[2];
        struct rawframe raw[4];
        size_t n, depth = 9;
        /* The cframe is read only when the thread is walked. */
        CHECK_INT(walk_threads(w, interp, out, 2, &n), 0);
        CHECK_INT(n, 1);
        CHECK(walk_has_frames(&out[0]));
        CHECK_INT(walk_stack(w, &out[0], raw, 4, &depth), -EFAULT);
        CHECK_INT(depth, 0);
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_cframe_wrapping_311_312)
{
    /* A garbage cframe near 2**64: "inside the thread state" must not wrap around. */
    static const uint64_t bad[] = {0xfffffffffffffff8ull, 0xfffffffffffffff0ull,
                                   0x8000000000000000ull};
    for (int minor = 11; minor <= 12; minor++) {
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
            struct img im;
            img_init(&im, 3, minor, 0);
            uint64_t interp = img_interp(&im);
            uint64_t ts = img_tstate(&im, interp, 1, 1);
            img_link_threads(&im, interp, &ts, 1);
            img_f64(&im, ts, im.lay.ts_cframe, bad[i]);
            img_commit(&im);
            struct walker *w = walker_new(&im.rt);
            struct walk_thread out[2];
            struct rawframe raw[4];
            size_t n, depth;
            int ret = walk_threads(w, interp, out, 2, &n);
            if (ret == 0 && n == 1)
                ret = walk_stack(w, &out[0], raw, 4, &depth);
            if (ret != -EFAULT)
                TEST_FAILF("3.%d cframe 0x%" PRIx64 ": %d", minor, bad[i], ret);
            walker_free(w);
            img_release(&im);
        }
    }
}

/* ---- <= 3.10: frame objects ---------------------------------------------------- */

/* Builds a thread running codes[0..n) (innermost first) with f_lasti lasti[i]. */
static uint64_t old_stack(struct img *im, uint64_t interp, const uint64_t *codes,
                          const int32_t *lasti, size_t n, uint64_t *frames)
{
    uint64_t back = 0;
    for (size_t k = n; k-- > 0;) {
        back = img_frame(im, codes[k], back, lasti[k]);
        frames[k] = back;
    }
    uint64_t ts = img_tstate(im, interp, 0xabc000, 0);
    img_link_threads(im, interp, &ts, 1);
    img_set_frame(im, ts, n ? frames[0] : 0, NULL, 0);
    return ts;
}

TEST(frame_objects_exact)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[5], frames[5];
        mkcodes(&im, codes, 5);
        const int32_t lasti[5] = {10, 0, -1, 7, 1000};
        uint64_t interp = img_interp(&im);
        old_stack(&im, interp, codes, lasti, 5, frames);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        CHECK_U64(t.frame, frames[0]);
        struct rawframe out[8];
        size_t depth = 0;
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        /* 3.10 counts f_lasti in 2-byte code units. */
        int m = im.lay.lasti_units ? 2 : 1;
        int64_t addrq[5] = {10 * m, 0, -1, 7 * m, 1000 * m};
        check_frames(&im, out, depth, codes, addrq, 5);
        CHECK_U64(walk_stats(w)->single_reads, 5);
        CHECK_U64(walk_stats(w)->chunk_frames, 0);
        /* Every frame object has an eval call of its own. */
        struct walk_frameinfo info[8];
        CHECK_INT(walk_stack_info(w, &t, out, info, 8, &depth), 0);
        CHECK_INT(depth, 5);
        for (size_t i = 0; i < 5; i++) {
            CHECK_U64(info[i].addr, frames[i]);
            CHECK_INT(info[i].entry, 1);
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(frame_objects_type_by_name)
{
    /* Without an exported PyFrame_Type, the type is confirmed by its name. */
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[2], frames[2];
        mkcodes(&im, codes, 2);
        const int32_t lasti[2] = {4, 2};
        uint64_t good = img_interp(&im), bad = img_interp(&im);
        old_stack(&im, good, codes, lasti, 2, frames);
        uint64_t bframes[2];
        old_stack(&im, bad, codes, lasti, 2, bframes);
        uint64_t t_frames = img_type(&im, "frames");
        img_f64(&im, bframes[1], im.lay.ob_type, t_frames);
        img_commit(&im);
        im.rt.frame_type = 0;
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        struct rawframe out[4];
        size_t depth;
        only_thread(&im, w, good, &t);
        CHECK_INT(walk_stack(w, &t, out, 4, &depth), 0);
        CHECK_INT(depth, 2);
        only_thread(&im, w, bad, &t);
        CHECK_INT(walk_stack(w, &t, out, 4, &depth), -EINVAL);
        walker_free(w);
        img_release(&im);
    }
}

TEST(frame_objects_dead_or_wrong_type)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[3];
        mkcodes(&im, codes, 3);
        const int32_t lasti[3] = {0, 2, 4};
        enum { DEAD, NEGREF, WRONG_TYPE, NO_CODE, ODD_BACK, LOST_BACK, NCASES };
        uint64_t interps[NCASES];
        for (int c = 0; c < NCASES; c++) {
            uint64_t frames[3];
            interps[c] = img_interp(&im);
            old_stack(&im, interps[c], codes, lasti, 3, frames);
            switch (c) {
            case DEAD: img_w64(&im, frames[1], 0); break;
            case NEGREF: img_w64(&im, frames[1], (uint64_t)-1); break;
            case WRONG_TYPE: img_f64(&im, frames[2], im.lay.ob_type, im.t_code); break;
            case NO_CODE: img_f64(&im, frames[1], im.lay.fo_code, 0); break;
            case ODD_BACK: img_f64(&im, frames[0], im.lay.fo_back, frames[1] + 2); break;
            case LOST_BACK: img_f64(&im, frames[1], im.lay.fo_back, img_hole(&im)); break;
            }
        }
        img_commit(&im);
        const int want[NCASES] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EFAULT};
        struct walker *w = walker_new(&im.rt);
        for (int c = 0; c < NCASES; c++) {
            struct walk_thread t;
            struct rawframe out[8];
            size_t depth;
            only_thread(&im, w, interps[c], &t);
            int ret = walk_stack(w, &t, out, 8, &depth);
            if (ret != want[c])
                TEST_FAILF("%d.%d case %d: %d, expected %d", im.major, im.minor, c, ret, want[c]);
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(frame_objects_cycles)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[6];
        mkcodes(&im, codes, 6);
        const int32_t lasti[6] = {0, 2, 4, 6, 8, 10};
        uint64_t self = img_interp(&im), ring = img_interp(&im), lasso = img_interp(&im);
        uint64_t f[6];
        old_stack(&im, self, codes, lasti, 1, f);
        img_f64(&im, f[0], l->fo_back, f[0]);
        old_stack(&im, ring, codes, lasti, 3, f);
        img_f64(&im, f[2], l->fo_back, f[0]);
        old_stack(&im, lasso, codes, lasti, 6, f);
        img_f64(&im, f[5], l->fo_back, f[2]);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        uint64_t interps[3] = {self, ring, lasso};
        for (int c = 0; c < 3; c++) {
            struct walk_thread t;
            struct rawframe out[WALK_MAX_DEPTH];
            size_t depth = 0;
            only_thread(&im, w, interps[c], &t);
            int ret = walk_stack(w, &t, out, WALK_MAX_DEPTH, &depth);
            if (ret != -ELOOP)
                TEST_FAILF("%d.%d cycle %d: %d", im.major, im.minor, c, ret);
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(frame_objects_depth_cap)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        enum { N = 40, MAX = 16 };
        uint64_t codes[N], frames[N];
        int32_t lasti[N];
        int64_t addrq[N];
        mkcodes(&im, codes, N);
        for (int i = 0; i < N; i++) {
            lasti[i] = 2 * i;
            addrq[i] = 2 * i * (im.lay.lasti_units ? 2 : 1);
        }
        uint64_t interp = img_interp(&im);
        old_stack(&im, interp, codes, lasti, N, frames);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        struct rawframe out[N];
        size_t depth = 0;
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, MAX, &depth), 1);
        check_frames(&im, out, depth, codes, addrq, MAX);
        CHECK_INT(walk_stack(w, &t, out, N, &depth), 0);
        check_frames(&im, out, depth, codes, addrq, N);
        CHECK_INT(walk_stack(w, &t, out, N - 1, &depth), 1);
        CHECK_INT(depth, N - 1);
        walker_free(w);
        img_release(&im);
    }
}

/* ---- 3.11+: interpreter frames -------------------------------------------------- */

TEST(iframes_from_chunk_copy)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[4];
        mkcodes(&im, codes, 4);
        /* Byte offsets in the bytecode; -2 is a frame that has not started (prev_instr). */
        const int64_t offs[4] = {6, 0, 40, -2};
        struct img_chunk c;
        img_chunk_new(&im, &c, 8192, 0);
        uint64_t interp = img_interp(&im);
        uint64_t frames[4];
        uint64_t top = push_chain(&im, &c, codes, offs, 4, img_bottom(&im), frames);
        /* 3.11 marks a C-level eval call's first frame. */
        if (im.lay.if_is_entry >= 0)
            img_w8(&im, frames[1] + (uint64_t)im.lay.if_is_entry, 1);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[8];
        size_t depth;
        uint64_t reads = mem_read_calls(im.m);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 4);
        /* The whole stack came from one copy of the chunk, plus, on
         * 3.11/3.12, the read of the top frame from the cframe, and on
         * 3.12+ of the shim below the outermost frame. */
        CHECK_U64(walk_stats(w)->chunk_frames, 4);
        CHECK_U64(walk_stats(w)->single_reads, im.lay.owner_cstack >= 0);
        CHECK_U64(mem_read_calls(im.m) - reads,
                  1 + (t.frame_at != 0) + (im.lay.owner_cstack >= 0));
        /* A second walk reuses nothing stale: same answer, 4 more chunk frames. */
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 4);
        CHECK_U64(walk_stats(w)->chunk_frames, 8);
        struct walk_frameinfo info[8];
        CHECK_INT(walk_stack_info(w, &t, out, info, 8, &depth), 0);
        CHECK_INT(depth, 4);
        for (size_t i = 0; i < 4; i++) {
            CHECK_U64(info[i].addr, frames[i]);
            /* the outermost frame is always an entry; 3.11's flag marks frames[1] */
            CHECK_INT(info[i].entry, i == 3 || (i == 1 && im.lay.if_is_entry >= 0));
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_without_chunk_read_one_by_one)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[3];
        mkcodes(&im, codes, 3);
        const int64_t offs[3] = {2, 4, 8};
        struct img_chunk c;
        img_chunk_new(&im, &c, 4096, 0);
        uint64_t interp = img_interp(&im);
        uint64_t top = push_chain(&im, &c, codes, offs, 3, img_bottom(&im), NULL);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, NULL, 0); /* no data stack recorded */
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[8];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 3);
        CHECK_U64(walk_stats(w)->chunk_frames, 0);
        CHECK_U64(walk_stats(w)->single_reads, 3 + (im.lay.owner_cstack >= 0));
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_generator_outside_chunk)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[4];
        mkcodes(&im, codes, 4);
        const int64_t offs[4] = {12, 30, 8, 0};
        struct img_chunk c;
        img_chunk_new(&im, &c, 4096, 0);
        uint64_t interp = img_interp(&im);
        /* <module> (3) -> consumer (2) -> gen (1, in the generator) -> leaf (0). */
        uint64_t outer[2];
        uint64_t below = push_chain(&im, &c, codes + 2, offs + 2, 2, img_bottom(&im), outer);
        uint64_t gen = img_object(&im, im.t_gen, 256);
        uint64_t gframe = gen + 64; /* gi_iframe lives inside the generator object */
        img_iframe_at(&im, gframe, codes[1], offs[1], 1, below);
        uint64_t top = img_push(&im, &c, codes[0], offs[0], 0, gframe, 0);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[8];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 4);
        CHECK_U64(walk_stats(w)->chunk_frames, 3);
        CHECK_U64(walk_stats(w)->single_reads, 1 + (im.lay.owner_cstack >= 0));
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_shims_skipped_312_313)
{
    for (int minor = 12; minor <= 13; minor++) {
        struct img im;
        img_init(&im, 3, minor, 0);
        uint64_t codes[3];
        mkcodes(&im, codes, 3);
        const int64_t offs[3] = {4, 16, 2};
        /* 3.12's shim runs a real code object; 3.13's f_executable is None. */
        uint64_t shim_code = minor == 12 ? img_code(&im, "<shim>", "<interpreter trampoline>",
                                                    NULL, 0, NULL, 0)
                                         : im.none;
        struct img_chunk c;
        img_chunk_new(&im, &c, 4096, 0);
        uint64_t interp = img_interp(&im);
        /* bottom shim <- f2 <- shim (C re-entry) <- f1 <- f0 */
        uint64_t bottom = img_loose_iframe(&im, shim_code, 0, 3, 0);
        uint64_t f2 = img_push(&im, &c, codes[2], offs[2], 0, bottom, 0);
        uint64_t mid = img_loose_iframe(&im, shim_code, 0, 3, f2);
        uint64_t f1 = img_push(&im, &c, codes[1], offs[1], 0, mid, 0);
        uint64_t f0 = img_push(&im, &c, codes[0], offs[0], 0, f1, 0);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, f0, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[8];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 3);
        CHECK_U64(walk_stats(w)->chunk_frames, 3);
        CHECK_U64(walk_stats(w)->single_reads, 2);
        /* f1 and f2 were entered from C (a shim below each); f0 was called
         * from f1 inside the same eval call. */
        struct walk_frameinfo info[8];
        CHECK_INT(walk_stack_info(w, &t, out, info, 8, &depth), 0);
        CHECK_INT(depth, 3);
        CHECK_U64(info[0].addr, f0);
        CHECK_U64(info[1].addr, f1);
        CHECK_U64(info[2].addr, f2);
        CHECK_INT(info[0].entry, 0);
        CHECK_INT(info[1].entry, 1);
        CHECK_INT(info[2].entry, 1);
        /* Shims do not count toward the depth cap: 3 frames fit in max 3. */
        CHECK_INT(walk_stack(w, &t, out, 3, &depth), 0);
        CHECK_INT(depth, 3);
        /* ... but a real frame past a shim is cut. */
        CHECK_INT(walk_stack(w, &t, out, 2, &depth), 1);
        check_frames(&im, out, depth, codes, offs, 2);
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_two_chunks)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[6];
        mkcodes(&im, codes, 6);
        const int64_t offs[6] = {2, 4, 6, 8, 10, 12};
        struct img_chunk older, newer;
        img_chunk_new(&im, &older, 2048, 0);
        uint64_t interp = img_interp(&im);
        uint64_t mid = push_chain(&im, &older, codes + 3, offs + 3, 3, img_bottom(&im), NULL);
        /* Something else between the chunks, so that they are not adjacent. */
        img_alloc(&im, 4096);
        img_chunk_new(&im, &newer, 2048, older.addr);
        uint64_t top = push_chain(&im, &newer, codes, offs, 3, mid, NULL);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &newer, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[8];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        check_frames(&im, out, depth, codes, offs, 6);
        /* The first frame of the older chunk is read alone, then that chunk is
         * copied (3.12+: and the shim below the outermost frame read). */
        CHECK_U64(walk_stats(w)->chunk_frames, 5);
        CHECK_U64(walk_stats(w)->single_reads, 1 + (im.lay.owner_cstack >= 0));
        walker_free(w);
        img_release(&im);
    }
}

/*
 * A target's chunks may say they hold up to MAX_CHUNK_BYTES each: what one
 * walk copies of them is bounded in all (MAX_WALK_CHUNK_BYTES), and the
 * frames past that are read one by one, the stack whole all the same.
 */
TEST(iframes_chunk_copies_bounded_in_all)
{
    enum { N = 6, F = 2 * N };
    const size_t big = 7u << 20;
    /* walk_impl.h: 8 MiB a chunk, 32 MiB a walk */
    REQUIRE(big <= (8u << 20) && (N - 1) * big > (32u << 20));
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], (size_t)(N + 1) * big);
        const struct pylayout *l = &im.lay;
        uint64_t codes[F];
        mkcodes(&im, codes, F);
        int64_t offs[F];
        struct img_chunk c[N];
        uint64_t prev_frame = img_bottom(&im), prev_chunk = 0;
        uint64_t interp = img_interp(&im);
        /* Oldest first: chunk k holds frames F-1-2k and F-2-2k, each older
         * chunk saying it is full. */
        for (int k = 0; k < N; k++) {
            img_chunk_new(&im, &c[k], big, prev_chunk);
            for (int f = F - 1 - 2 * k; f >= F - 2 - 2 * k; f--) {
                offs[f] = 2 * f;
                prev_frame = img_push(&im, &c[k], codes[f], offs[f], 0, prev_frame, 16);
            }
            if (k < N - 1)
                img_f64(&im, c[k].addr, l->chunk_top, (big - (size_t)l->chunk_data) / 8);
            prev_chunk = c[k].addr;
        }
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, prev_frame, &c[N - 1], 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[16];
        size_t depth;
        for (int round = 0; round < 2; round++) {
            /* The first frame of each older chunk is read alone, then the
             * chunk copied: four (28 MiB) are, the fifth is not, and its
             * second frame is read alone too (and, 3.12+, the shim below
             * the outermost frame).  Again, with the large buffers let go
             * in between: the same. */
            uint64_t singles = walk_stats(w)->single_reads;
            CHECK_INT(walk_stack(w, &t, out, 16, &depth), 0);
            check_frames(&im, out, depth, codes, offs, F);
            CHECK_U64(walk_stats(w)->single_reads - singles,
                      (N - 1) + 1 + (l->owner_cstack >= 0));
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_addrq_relative_to_code_adaptive)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t code;
        mkcodes(&im, &code, 1);
        struct img_chunk c;
        img_chunk_new(&im, &c, 1024, 0);
        uint64_t interp = img_interp(&im);
        uint64_t f = img_push(&im, &c, code, 0, 0, img_bottom(&im), 0);
        /* instr written raw: code + co_code_adaptive + 26 */
        img_f64(&im, f, im.lay.if_instr, code + (uint64_t)im.lay.co_code_adaptive + 26);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, f, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[2];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, 2, &depth), 0);
        CHECK_INT(depth, 1);
        CHECK_U64(out[0].code, code);
        CHECK_INT(out[0].addrq, 26);
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_cycles)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[5];
        mkcodes(&im, codes, 5);
        const int64_t offs[5] = {0, 2, 4, 6, 8};
        uint64_t interps[3];
        for (int k = 0; k < 3; k++) {
            struct img_chunk c;
            uint64_t fr[5];
            img_chunk_new(&im, &c, 2048, 0);
            interps[k] = img_interp(&im);
            size_t n = k == 0 ? 1 : k == 1 ? 3 : 5;
            uint64_t top = push_chain(&im, &c, codes, offs, n, img_bottom(&im), fr);
            /* self-loop; ring back to the top; a lasso onto fr[1] */
            img_f64(&im, fr[n - 1], l->if_previous, k == 2 ? fr[1] : fr[0]);
            uint64_t ts = img_tstate(&im, interps[k], 0x7f00, 42);
            img_link_threads(&im, interps[k], &ts, 1);
            img_set_frame(&im, ts, top, &c, 0);
        }
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        for (int k = 0; k < 3; k++) {
            struct walk_thread t;
            struct rawframe out[64];
            size_t depth;
            only_thread(&im, w, interps[k], &t);
            int ret = walk_stack(w, &t, out, 64, &depth);
            if (ret != -ELOOP)
                TEST_FAILF("3.%d cycle %d: %d", im.minor, k, ret);
        }
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_shim_cycle_312)
{
    /* A cycle made only of shim frames must end too (they add no depth). */
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t a = img_loose_iframe(&im, im.none, 0, 3, 0);
    uint64_t b = img_loose_iframe(&im, im.none, 0, 3, a);
    uint64_t c3 = img_loose_iframe(&im, im.none, 0, 3, b);
    img_f64(&im, a, im.lay.if_previous, c3);
    uint64_t interp = img_interp(&im);
    uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
    img_link_threads(&im, interp, &ts, 1);
    img_set_frame(&im, ts, c3, NULL, 0);
    img_commit(&im);
    struct walker *w = walker_new(&im.rt);
    struct walk_thread t;
    only_thread(&im, w, interp, &t);
    struct rawframe out[4];
    size_t depth;
    CHECK_INT(walk_stack(w, &t, out, 4, &depth), -ELOOP);
    walker_free(w);
    img_release(&im);
}

TEST(iframes_truncation)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        enum { N = 30, MAX = 7 };
        uint64_t codes[N];
        int64_t offs[N];
        mkcodes(&im, codes, N);
        for (int i = 0; i < N; i++)
            offs[i] = 2 * i;
        struct img_chunk c;
        img_chunk_new(&im, &c, 8192, 0);
        uint64_t interp = img_interp(&im);
        uint64_t top = push_chain(&im, &c, codes, offs, N, img_bottom(&im), NULL);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        struct rawframe out[N];
        size_t depth;
        CHECK_INT(walk_stack(w, &t, out, MAX, &depth), 1);
        check_frames(&im, out, depth, codes, offs, MAX);
        CHECK_INT(walk_stack(w, &t, out, N, &depth), 0);
        CHECK_INT(depth, N);
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_garbage)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[3];
        mkcodes(&im, codes, 3);
        const int64_t offs[3] = {0, 2, 4};
        enum { BAD_OWNER, NO_CODE, ODD_CODE, ODD_PREV, LOST_PREV, HUGE_CHUNK, NCASES };
        uint64_t interps[NCASES];
        for (int k = 0; k < NCASES; k++) {
            struct img_chunk c;
            uint64_t fr[3];
            img_chunk_new(&im, &c, 2048, 0);
            interps[k] = img_interp(&im);
            uint64_t top = push_chain(&im, &c, codes, offs, 3, img_bottom(&im), fr);
            switch (k) {
            case BAD_OWNER: img_w8(&im, fr[1] + (uint64_t)l->if_owner, 9); break;
            case NO_CODE: img_f64(&im, fr[1], l->if_code, 0); break;
            case ODD_CODE: img_f64(&im, fr[2], l->if_code, codes[2] + 3); break;
            case ODD_PREV: img_f64(&im, fr[0], l->if_previous, fr[1] + 1); break;
            case LOST_PREV: img_f64(&im, fr[1], l->if_previous, img_hole(&im)); break;
            case HUGE_CHUNK: break;
            }
            uint64_t ts = img_tstate(&im, interps[k], 0x7f00, 42);
            img_link_threads(&im, interps[k], &ts, 1);
            img_set_frame(&im, ts, top, &c, 0);
            if (k == HUGE_CHUNK) /* a datastack_top far past the chunk: no copy, frames read alone */
                img_f64(&im, ts, l->ts_datastack_top, c.addr + (64u << 20));
        }
        img_commit(&im);
        const int want[NCASES] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EFAULT, 0};
        struct walker *w = walker_new(&im.rt);
        for (int k = 0; k < NCASES; k++) {
            struct walk_thread t;
            struct rawframe out[8];
            size_t depth = 0;
            only_thread(&im, w, interps[k], &t);
            int ret = walk_stack(w, &t, out, 8, &depth);
            if (ret != want[k])
                TEST_FAILF("3.%d case %d: %d, expected %d", im.minor, k, ret, want[k]);
            if (k == HUGE_CHUNK)
                check_frames(&im, out, depth, codes, offs, 3);
        }
        walker_free(w);
        img_release(&im);
    }
}

/*
 * 3.14+ unlink a returning frame, then clear its code to PyStackRef_NULL (1):
 * read between the two, a thread's innermost frames may be cleared ones,
 * whose callers are its stack; they are passed over and counted.  Before
 * 3.14 the code stays (the bytecode tells such a frame), and a frame
 * without code is garbage; below the innermost it is garbage everywhere.
 */
TEST(iframes_cleared_innermost_frames_had_returned)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[4];
        mkcodes(&im, codes, 4);
        const int64_t offs[4] = {0, 2, 4, 6};
        enum { ONE, TWO, MIDDLE, NCASES };
        uint64_t interps[NCASES];
        for (int k = 0; k < NCASES; k++) {
            struct img_chunk c;
            uint64_t fr[4];
            img_chunk_new(&im, &c, 2048, 0);
            interps[k] = img_interp(&im);
            uint64_t top = push_chain(&im, &c, codes, offs, 4, img_bottom(&im), fr);
            img_f64(&im, fr[0], l->if_code, 1);
            if (k == TWO)
                img_f64(&im, fr[1], l->if_code, 1);
            if (k == MIDDLE) {
                img_f64(&im, fr[0], l->if_code, codes[0]);
                img_f64(&im, fr[2], l->if_code, 1);
            }
            uint64_t ts = img_tstate(&im, interps[k], 0x7f00, 42);
            img_link_threads(&im, interps[k], &ts, 1);
            img_set_frame(&im, ts, top, &c, 0);
        }
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        int cleared = l->code_tagged;
        for (int k = 0; k < NCASES; k++) {
            struct walk_thread t;
            struct rawframe out[8];
            size_t depth = 0;
            only_thread(&im, w, interps[k], &t);
            uint64_t before = walk_stats(w)->cleared_tops;
            int ret = walk_stack(w, &t, out, 8, &depth);
            int want = k == MIDDLE || !cleared ? -EINVAL : 0;
            if (ret != want) {
                TEST_FAILF("3.%d case %d: %d, expected %d", im.minor, k, ret, want);
                continue;
            }
            if (ret == 0) {
                size_t skip = k == TWO ? 2 : 1;
                check_frames(&im, out, depth, codes + skip, offs + skip, 4 - skip);
                CHECK_U64(walk_stats(w)->cleared_tops - before, skip);
            }
        }
        walker_free(w);
        img_release(&im);
    }
}

/* ---- reading along the last walk (hints) ----------------------------------------- */

/* Rewrites the thread state's top frame and makes the change visible. */
static void set_top(struct img *im, uint64_t ts, uint64_t frame)
{
    img_set_frame(im, ts, frame, NULL, 0);
    img_commit(im);
}

/*
 * An old-style stack of n frames of codes[0..n) (innermost first), frame i at
 * f_lasti 2i (addrq[i] the byte offset it means), with `extra` more code
 * objects codes[n..n+extra) made for the test; committed.  Returns the thread state.
 */
static uint64_t counted_old_stack(struct img *im, uint64_t interp, int n, int extra,
                                  uint64_t *codes, uint64_t *frames, int64_t *addrq)
{
    int32_t lasti[64];
    int m = im->lay.lasti_units ? 2 : 1;
    REQUIRE(n <= 64);
    mkcodes(im, codes, (size_t)(n + extra));
    for (int i = 0; i < n; i++) {
        lasti[i] = 2 * i;
        addrq[i] = 2 * i * m;
    }
    uint64_t ts = old_stack(im, interp, codes, lasti, (size_t)n, frames);
    img_commit(im);
    return ts;
}

/*
 * <= 3.10: the frames a thread ran lately (its last chain, and frames that
 * left it) are read with its thread state, all in one read: a walk of a
 * stack made of them reads nothing more.  New frames are read alone (the
 * walk says so: walk_last_open) and are read ahead from then on.
 */
TEST(frame_objects_read_with_the_thread_state)
{
    enum { N = 30 };
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[N + 3], frames[N], fresh[3];
        int64_t addrq[N + 3];
        uint64_t interp = img_interp(&im);
        uint64_t ts = counted_old_stack(&im, interp, N, 3, codes, frames, addrq);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[64];
        size_t depth;

        /* First walk: one read per frame, besides the list's two (the head,
         * then the thread state). */
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 2 + N);
        check_frames(&im, out, depth, codes, addrq, N);
        CHECK_U64(walk_stats(w)->single_reads, N);
        CHECK_U64(walk_last_open(w), N);

        /* Again: every frame came with the list, in its one read. */
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, codes, addrq, N);
        CHECK_U64(walk_stats(w)->ahead_frames, N);
        CHECK_U64(walk_last_open(w), 0);

        /* Three new frames on frames[3]: those read alone, the rest with the
         * list (twice); the frames read alone cannot be set against the
         * others: the walk is torn, to be taken again. */
        uint64_t f = frames[3];
        for (int k = 2; k >= 0; k--)
            fresh[k] = f = img_frame(&im, codes[N + k], f, 0);
        set_top(&im, ts, fresh[0]);
        uint64_t want[N];
        int64_t wantq[N];
        for (int i = 0; i < N; i++) {
            want[i] = i < 3 ? codes[N + i] : codes[i];
            wantq[i] = i < 3 ? 0 : addrq[i];
        }
        struct walk_thread wt;
        uint64_t before = mem_read_calls(im.m);
        only_thread(&im, w, interp, &wt);
        CHECK_INT(walk_stack(w, &wt, out, 64, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_MOVED);
        CHECK_U64(mem_read_calls(im.m) - before, 1 + 3);
        CHECK_U64(walk_last_open(w), 3);
        /* ... and with it from then on. */
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, want, wantq, N);
        /* Back to the old top: the frames that left the chain were kept. */
        set_top(&im, ts, frames[0]);
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, codes, addrq, N);

        /* A frame runs another function by the next tick (recycled): read as it is. */
        img_f64(&im, frames[5], im.lay.fo_code, codes[N + 1]);
        img_commit(&im);
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        CHECK_U64(out[5].code, codes[N + 1]);
        walker_free(w);
        img_release(&im);
    }
}

TEST(threads_follow_last_list)
{
    for (size_t v = 0; v < ARRAY_SIZE(all_versions); v++) {
        struct img im;
        img_init(&im, all_versions[v][0], all_versions[v][1], 0);
        uint64_t interp = img_interp(&im), ts[6];
        for (int i = 0; i < 6; i++)
            ts[i] = img_tstate(&im, interp, 0x7f0000001000ull * (uint64_t)(i + 1), (uint32_t)(100 + i));
        img_link_threads(&im, interp, ts + 1, 5);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread out[8];
        size_t n;
        CHECK_INT(walk_threads(w, interp, out, 8, &n), 0);
        CHECK_INT(n, 5);
        CHECK_U64(walk_stats(w)->hinted_tstates, 0);
        /* The same list: the head pointer and every thread state in one read. */
        uint64_t reads = mem_read_calls(im.m);
        CHECK_INT(walk_threads(w, interp, out, 8, &n), 0);
        CHECK_INT(n, 5);
        CHECK_U64(mem_read_calls(im.m) - reads, 1);
        CHECK_U64(walk_stats(w)->hinted_tstates, 5);
        for (int i = 0; i < 5; i++)
            CHECK_U64(out[i].tstate, ts[i + 1]);
        /* A new thread at the head: the batch is not used, the list is right. */
        img_link_threads(&im, interp, ts, 6);
        img_commit(&im);
        CHECK_INT(walk_threads(w, interp, out, 8, &n), 0);
        CHECK_INT(n, 6);
        for (int i = 0; i < 6 && i < (int)n; i++) {
            CHECK_U64(out[i].tstate, ts[i]);
            CHECK_U64(out[i].thread_id, 0x7f0000001000ull * (uint64_t)(i + 1));
        }
        /* A thread gone from the middle: its successor is read afresh. */
        uint64_t keep[5] = {ts[0], ts[1], ts[3], ts[4], ts[5]};
        img_link_threads(&im, interp, keep, 5);
        img_commit(&im);
        CHECK_INT(walk_threads(w, interp, out, 8, &n), 0);
        CHECK_INT(n, 5);
        for (int i = 0; i < 5 && i < (int)n; i++)
            CHECK_U64(out[i].tstate, keep[i]);
        walker_free(w);
        img_release(&im);
    }
}

/* ---- reads ahead (3.11+) ---------------------------------------------------- */

/*
 * Makes frame the thread's top frame and c's top its data stack's top,
 * where the thread state (3.13) or its cframe (3.11/3.12, as
 * img_set_frame(..., 0) placed it) keeps them.
 */
static void move_top(struct img *im, uint64_t ts, uint64_t frame, const struct img_chunk *c)
{
    const struct pylayout *l = &im->lay;
    if (l->ts_current_frame >= 0)
        img_f64(im, ts, l->ts_current_frame, frame);
    else
        img_f64(im, img_r64(im, ts + (uint64_t)l->ts_cframe), l->cf_current_frame, frame);
    img_f64(im, ts, l->ts_datastack_chunk, c->addr);
    img_f64(im, ts, l->ts_datastack_top, c->top);
    img_commit(im);
}

TEST(iframes_read_ahead_with_the_list)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        int minor = new_minors[v];
        struct img im;
        img_init(&im, 3, minor, 0);
        uint64_t codes[40];
        int64_t offs[40];
        mkcodes(&im, codes, 40);
        for (int i = 0; i < 40; i++)
            offs[i] = 2 * i;
        struct img_chunk c;
        img_chunk_new(&im, &c, 16384, 0);
        uint64_t interp = img_interp(&im);
        /* 3.12+: the outermost frame is an entry shim on the C stack. */
        uint64_t bottom = 0;
        if (minor >= 12)
            bottom = img_loose_iframe(&im, minor == 12 ? codes[39] : im.none, 0, 3, 0);
        uint64_t frames[40];
        uint64_t top = push_chain(&im, &c, codes + 36, offs + 36, 3, bottom, frames + 36);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[64];
        size_t depth;
        /* First time: the list (the head, then the thread state), then the
         * top frame (3.11/3.12), the chunk and a shim (3.12+), each a read
         * of its own. */
        uint64_t first = walk_once(&im, w, interp, out, &depth);
        check_frames(&im, out, depth, codes + 36, offs + 36, 3);
        CHECK_U64(first, 3 + (minor < 13) + (minor >= 12));
        CHECK_U64(walk_last_open(w), 1 + (minor < 13) + (minor >= 12));
        /* Then: everything with the list, in one read. */
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        CHECK_U64(walk_last_open(w), 0);
        check_frames(&im, out, depth, codes + 36, offs + 36, 3);
        CHECK_U64(walk_stats(w)->ahead_chunks, 1);
        CHECK_U64(walk_stats(w)->ahead_frames, (minor < 13) + (minor >= 12));
        CHECK_U64(walk_stats(w)->single_reads, minor >= 12);
        /* A call: the frame read ahead is within the slack. */
        top = img_push(&im, &c, codes[35], offs[35], 0, top, 16);
        move_top(&im, ts, top, &c);
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, codes + 35, offs + 35, 4);
        /* Many calls past the slack: the chunk is read again, the answer right. */
        for (int i = 34; i >= 5; i--)
            top = img_push(&im, &c, codes[i], offs[i], 0, top, 64);
        move_top(&im, ts, top, &c);
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 2);
        check_frames(&im, out, depth, codes + 5, offs + 5, 34);
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, codes + 5, offs + 5, 34);
        /* The stack moves to a new chunk: nothing read ahead is taken for it. */
        struct img_chunk c2;
        img_chunk_new(&im, &c2, 16384, c.addr);
        uint64_t moved = push_chain(&im, &c2, codes, offs, 5, top, NULL);
        move_top(&im, ts, moved, &c2);
        uint64_t chunks = walk_stats(w)->ahead_chunks;
        walk_once(&im, w, interp, out, &depth);
        check_frames(&im, out, depth, codes, offs, 39);
        CHECK_U64(walk_stats(w)->ahead_chunks, chunks);
        /* The frames change where they were read ahead: the walk sees the new ones. */
        img_iframe_at(&im, frames[36], codes[20], offs[20], 0, frames[37]);
        img_commit(&im);
        walk_once(&im, w, interp, out, &depth);
        CHECK_U64(out[depth - 3].code, codes[20]);
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_read_ahead_only_for_walked_threads)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[2];
        const int64_t offs[2] = {4, 8};
        mkcodes(&im, codes, 2);
        struct img_chunk c;
        img_chunk_new(&im, &c, 8192, 0);
        uint64_t interp = img_interp(&im);
        uint64_t top = push_chain(&im, &c, codes, offs, 2, img_bottom(&im), NULL);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, top, &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[8];
        size_t depth, n;
        struct walk_thread t[2];
        walk_once(&im, w, interp, out, &depth);
        /* A round that walks nothing (an idle thread) ... */
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        /* ... so the next list reads no more than the thread states. */
        uint64_t chunks = walk_stats(w)->ahead_chunks;
        walk_once(&im, w, interp, out, &depth);
        check_frames(&im, out, depth, codes, offs, 2);
        CHECK_U64(walk_stats(w)->ahead_chunks, chunks);
        walker_free(w);
        img_release(&im);
    }
}

TEST(old_threads_tid_read_with_the_list)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init_ex(&im, old_versions[v][0], old_versions[v][1], 0, 1);
        uint64_t interp = img_interp(&im);
        /* A struct pthread whose tid (at 720, as glibc has it) is this process's id. */
        uint64_t pt = img_alloc(&im, 2048);
        img_w32(&im, pt + 720, (uint32_t)getpid());
        uint64_t ts = img_tstate(&im, interp, pt, 0);
        img_link_threads(&im, interp, &ts, 1);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t[2];
        size_t n;
        pid_t tid = 0, ns_tid = 0;
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        CHECK_INT(t[0].native_tid, 0);
        CHECK_INT(walk_thread_tid(w, t, n, 0, &tid, &ns_tid), 0);
        CHECK_INT(tid, getpid());
        CHECK_INT(ns_tid, getpid());
        /* From now on the tid comes with the list, in the same read. */
        uint64_t reads = mem_read_calls(im.m);
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        CHECK_U64(mem_read_calls(im.m) - reads, 1);
        CHECK_INT(t[0].native_tid, getpid());
        /* Another thread took over the thread state and the struct pthread:
         * its tid shows it; an exited thread's (0) is no tid. */
        img_w32(&im, pt + 720, 77777);
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        CHECK_INT(t[0].native_tid, 77777);
        img_w32(&im, pt + 720, 0);
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        CHECK_INT(t[0].native_tid, 0);
        walker_free(w);
        img_release(&im);
    }
}

/* The tid field is found by the main thread's tid: in a list of many
 * threads, the main thread (the oldest) comes last. */
TEST(old_threads_tid_found_among_many)
{
    enum { N = 100 };
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init_ex(&im, old_versions[v][0], old_versions[v][1], 0, 1);
        uint64_t interp = img_interp(&im);
        uint64_t ts[N];
        for (int i = 0; i < N; i++) {
            /* Newest first; the others have exited (tid 0) as far as this test knows. */
            uint64_t pt = img_alloc(&im, 2048);
            if (i == N - 1)
                img_w32(&im, pt + 720, (uint32_t)getpid());
            ts[i] = img_tstate(&im, interp, pt, 0);
        }
        img_link_threads(&im, interp, ts, N);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t[N];
        size_t n;
        pid_t tid = 0, ns_tid = 0;
        CHECK_INT(walk_threads(w, interp, t, N, &n), 0);
        CHECK_INT(n, N);
        CHECK_INT(walk_thread_tid(w, t, n, N - 1, &tid, &ns_tid), 0);
        CHECK_INT(tid, getpid());
        walker_free(w);
        img_release(&im);
    }
}

/* Threads of this process blocked in read() until the pipe closes: tasks
 * whose ids a fake struct pthread can hold. */
struct live_threads {
    pthread_t th[2];
    volatile pid_t tid[2];
    int fds[2];
};

struct live_slot {
    struct live_threads *lt;
    int i;
};

static void *live_thread(void *arg)
{
    struct live_slot *s = arg;
    char c;
    s->lt->tid[s->i] = (pid_t)syscall(SYS_gettid);
    while (read(s->lt->fds[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void live_start(struct live_threads *lt, struct live_slot slots[2])
{
    memset(lt, 0, sizeof(*lt));
    REQUIRE(pipe(lt->fds) == 0);
    for (int i = 0; i < 2; i++) {
        slots[i] = (struct live_slot){lt, i};
        REQUIRE(pthread_create(&lt->th[i], NULL, live_thread, &slots[i]) == 0);
    }
    for (int k = 0; k < 2000 && !(lt->tid[0] && lt->tid[1]); k++)
        usleep(1000);
    REQUIRE(lt->tid[0] > 0 && lt->tid[1] > 0);
}

static void live_stop(struct live_threads *lt)
{
    close(lt->fds[1]);
    for (int i = 0; i < 2; i++)
        pthread_join(lt->th[i], NULL);
    close(lt->fds[0]);
}

/* A struct pthread whose tid (at 720, as glibc has it) is tid. */
static uint64_t fake_pthread(struct img *im, pid_t tid)
{
    uint64_t pt = img_alloc(im, 2048);
    img_w32(im, pt + 720, (uint32_t)tid);
    return pt;
}

/*
 * Before 3.11 a thread state is made by the thread that starts the new
 * thread, and holds that thread's ident until the new one runs (CPython's
 * new_threadstate, then t_bootstrap): two thread states of the list then
 * name one struct pthread.  That is no reason to miss the tid's place: it
 * is found on the first list, and each thread gets its tid (the one not
 * started yet its starter's, as its ident says).
 */
TEST(old_threads_tid_found_with_a_thread_not_started)
{
    struct live_threads lt;
    struct live_slot slots[2];
    live_start(&lt, slots);
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init_ex(&im, old_versions[v][0], old_versions[v][1], 0, 1);
        uint64_t interp = img_interp(&im);
        uint64_t pm = fake_pthread(&im, getpid()), pa = fake_pthread(&im, lt.tid[0]);
        uint64_t pb = fake_pthread(&im, lt.tid[1]);
        /* Newest first: A's new thread (not started), B, A, the main thread. */
        uint64_t ts[4] = {img_tstate(&im, interp, pa, 0), img_tstate(&im, interp, pb, 0),
                          img_tstate(&im, interp, pa, 0), img_tstate(&im, interp, pm, 0)};
        const pid_t want[4] = {lt.tid[0], lt.tid[1], lt.tid[0], getpid()};
        img_link_threads(&im, interp, ts, 4);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t[4];
        size_t n;
        CHECK_INT(walk_threads(w, interp, t, 4, &n), 0);
        CHECK_INT(n, 4);
        for (size_t i = 0; i < n; i++) {
            pid_t tid = 0, ns_tid = 0;
            CHECK_INT(walk_thread_tid(w, t, n, i, &tid, &ns_tid), 0);
            CHECK_INT(tid, want[i]);
        }
        /* From the next list on, with the list. */
        CHECK_INT(walk_threads(w, interp, t, 4, &n), 0);
        for (size_t i = 0; i < n; i++)
            CHECK_INT(t[i].native_tid, want[i]);
        walker_free(w);
        img_release(&im);
    }
    live_stop(&lt);
}

/* Reads made by one call of walk_thread_tid for thread i: a search reads. */
static uint64_t tid_call_reads(struct img *im, struct walker *w, struct walk_thread *t, size_t n,
                               size_t i, int *ret)
{
    pid_t tid, ns_tid;
    uint64_t before = mem_read_calls(im->m);
    *ret = walk_thread_tid(w, t, n, i, &tid, &ns_tid);
    return mem_read_calls(im->m) - before;
}

/*
 * A search that finds nothing (here: the main thread's tid is not there
 * yet) is tried again on the next list, then after 2, 4, ... lists, up to
 * every 64: soon when the list was caught changing, and at a bounded cost
 * when it never can succeed.  A thread's tid is "not yet" (-EAGAIN) meanwhile.
 */
TEST(old_threads_tid_search_tried_again_soon)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init_ex(&im, old_versions[v][0], old_versions[v][1], 0, 1);
        uint64_t interp = img_interp(&im);
        uint64_t pm = fake_pthread(&im, 0);
        uint64_t ts = img_tstate(&im, interp, pm, 0);
        img_link_threads(&im, interp, &ts, 1);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct walk_thread t[2];
        size_t n;
        int ret;
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        CHECK(tid_call_reads(&im, w, t, n, 0, &ret) > 0);
        CHECK_INT(ret, -EAGAIN);
        /* Not twice in one list. */
        CHECK_U64(tid_call_reads(&im, w, t, n, 0, &ret), 0);
        CHECK_INT(ret, -EAGAIN);
        /* Found on the next list. */
        img_w32(&im, pm + 720, (uint32_t)getpid());
        CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
        pid_t tid = 0, ns_tid = 0;
        CHECK_INT(walk_thread_tid(w, t, n, 0, &tid, &ns_tid), 0);
        CHECK_INT(tid, getpid());
        walker_free(w);
        /* Never there: searched on lists 1, 2, 4, 8, ..., 64, then every 64. */
        img_w32(&im, pm + 720, 0);
        w = walker_new(&im.rt);
        int searched[200] = {0}, nsearch = 0;
        for (int list = 1; list < 200; list++) {
            CHECK_INT(walk_threads(w, interp, t, 2, &n), 0);
            searched[list] = tid_call_reads(&im, w, t, n, 0, &ret) > 0;
            CHECK_INT(ret, -EAGAIN);
            nsearch += searched[list];
        }
        CHECK_INT(nsearch, 9);
        const int at[] = {1, 2, 4, 8, 16, 32, 64, 128, 192};
        for (size_t k = 0; k < ARRAY_SIZE(at); k++)
            CHECK_INT(searched[at[k]], 1);
        walker_free(w);
        img_release(&im);
    }
}

/* Writes 4 bytes at addr once the first of the two passes over the frames is read. */
struct between_passes {
    uint64_t addr[2];
    uint32_t val[2];
    int n, done;
};

static void write_between_passes(void *ctx, struct mem *m, size_t i, size_t n)
{
    struct between_passes *b = ctx;
    /* The list's head and the thread state, then the frames' spans twice. */
    size_t spans = (n - 2) / 2;
    if (!b->done && i == 1 + spans) {
        for (int k = 0; k < b->n; k++)
            mem_buffer_write(m, b->addr[k], &b->val[k], 4);
        b->done = 1;
    }
}

/*
 * <= 3.10: the frames are read twice, in one read.  A caller that moved
 * between the two (its callee returned, it went on) keeps the stack from
 * it down, as read between the reads of the caller below it; one that moved
 * not keeps it whole; the outermost frame moving tears the walk.
 */
TEST(frame_objects_callers_that_moved_are_cut)
{
    for (size_t v = 0; v < 3 * ARRAY_SIZE(old_versions); v++) {
        /* Three times: the frames side by side (one span, read from its low
         * end: the outermost first, in both passes); the outermost far from
         * the others (a span of its own, read before theirs in the first
         * pass and after them in the second); side by side the other way
         * round (the innermost first, in both passes). */
        int apart = v / ARRAY_SIZE(old_versions) == 1, downward = v / ARRAY_SIZE(old_versions) == 2;
        struct img im;
        img_init(&im, old_versions[v % ARRAY_SIZE(old_versions)][0],
                 old_versions[v % ARRAY_SIZE(old_versions)][1], 0);
        uint64_t codes[3], frames[3];
        mkcodes(&im, codes, 3);
        uint64_t interp = img_interp(&im);
        if (downward) {
            frames[0] = img_frame(&im, codes[0], 0, 2);
            frames[1] = img_frame(&im, codes[1], 0, 4);
            frames[2] = img_frame(&im, codes[2], 0, 6);
            img_f64(&im, frames[0], im.lay.fo_back, frames[1]);
            img_f64(&im, frames[1], im.lay.fo_back, frames[2]);
        } else {
            frames[2] = img_frame(&im, codes[2], 0, 6);
            if (apart)
                img_alloc(&im, 3 * 4096);
            frames[1] = img_frame(&im, codes[1], frames[2], 4);
            frames[0] = img_frame(&im, codes[0], frames[1], 2);
        }
        uint64_t ts = img_tstate(&im, interp, 0xabc000, 0);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, frames[0], NULL, 0);
        img_commit(&im);
        const struct pylayout *l = &im.lay;
        int unit = l->lasti_units ? 2 : 1;
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[8];
        size_t depth;
        walk_once(&im, w, interp, out, &depth); /* the frames are read ahead from now on */
        /* Nothing moves: whole. */
        walk_once(&im, w, interp, out, &depth);
        CHECK_INT(depth, 3);
        CHECK_INT(walk_last_settled(w), 0);
        /* The top returned (freed) and its caller went on, between the passes. */
        struct between_passes b = {{frames[0], frames[1] + (uint64_t)l->fo_lasti}, {0, 9}, 2, 0};
        mem_buffer_on_piece(im.m, write_between_passes, &b);
        walk_once(&im, w, interp, out, &depth);
        mem_buffer_on_piece(im.m, NULL, NULL);
        CHECK(b.done);
        CHECK_INT(depth, 2);
        CHECK_U64(out[0].code, codes[1]);
        /* As read between the reads of the frame below: in the first pass,
         * before it went on, when read after that frame there; else in the
         * second, where it went. */
        CHECK_INT(out[0].addrq, (downward ? 9 : 4) * unit);
        CHECK_INT(walk_last_settled(w), 1);
        /* The outermost frame moves: torn. */
        struct walk_thread t;
        img_f32(&im, frames[0], 0, 1);
        img_f32(&im, frames[1], l->fo_lasti, 4);
        img_commit(&im);
        walk_once(&im, w, interp, out, &depth);
        CHECK_INT(depth, 3);
        struct between_passes o = {{frames[2] + (uint64_t)l->fo_lasti}, {8}, 1, 0};
        mem_buffer_on_piece(im.m, write_between_passes, &o);
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_MOVED);
        mem_buffer_on_piece(im.m, NULL, NULL);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * <= 3.10: a top frame freed when read had returned since the thread state
 * said it ran.  Kept as its code's zombie, it still names its caller: the
 * walk goes on from there.  Else (on the free list, it names another freed
 * frame) the walk is torn (a frame freed), and walked again after
 * walk_refresh (one read: the thread state and its frames) it is whole.
 */
TEST(frame_objects_freed_frame_is_torn)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[3], frames[3];
        mkcodes(&im, codes, 3);
        const int32_t lasti[3] = {2, 4, 6};
        uint64_t interp = img_interp(&im);
        uint64_t ts = old_stack(&im, interp, codes, lasti, 3, frames);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[8];
        size_t depth;
        walk_once(&im, w, interp, out, &depth);
        /* The top frame returned (freed) but the thread state still names it. */
        img_w64(&im, frames[0], 0);
        img_commit(&im);
        struct walk_thread t;
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        CHECK_INT(depth, 2);
        CHECK_U64(out[0].code, codes[1]);
        CHECK_U64(walk_stats(w)->dead_tops, 1);
        /* On the free list: it names no frame of the thread's. */
        img_w64(&im, frames[0] + (uint64_t)im.lay.fo_back, frames[0] + 4096);
        img_commit(&im);
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_DEAD);
        /* Its caller is the top now. */
        set_top(&im, ts, frames[1]);
        uint64_t reads = mem_read_calls(im.m);
        CHECK_INT(walk_refresh(w, interp, &t), 0);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        CHECK_U64(mem_read_calls(im.m) - reads, 1);
        CHECK_INT(depth, 2);
        CHECK_U64(out[0].code, codes[1]);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * 3.11+: a thread's outermost frame is the first of an eval loop called
 * from C: marked is_entry (3.11), or linked to the C-stack shim that loop
 * pushed (3.12+).  An outermost frame that is neither, or a generator's,
 * was read as it returned, was suspended, or was pushed from C and not yet
 * linked to its caller: the walk is torn.
 */
TEST(iframes_outermost_frame_is_a_threads_first)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[3], frames[3];
        const int64_t offs[3] = {2, 4, 6};
        mkcodes(&im, codes, 3);
        struct img_chunk c;
        img_chunk_new(&im, &c, 8192, 0);
        uint64_t interp = img_interp(&im);
        push_chain(&im, &c, codes, offs, 3, img_bottom(&im), frames);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, frames[0], &c, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[8];
        size_t depth;
        walk_once(&im, w, interp, out, &depth);
        check_frames(&im, out, depth, codes, offs, 3);
        struct walk_thread t;
        /* frames[2] pushed from C, not linked yet: a frame with no caller that
         * is not where a thread's stack starts. */
        img_iframe_at(&im, frames[2], codes[2], -2, 0, 0);
        if (im.lay.if_is_entry >= 0)
            img_w8(&im, frames[2] + (uint64_t)im.lay.if_is_entry, 0);
        img_commit(&im);
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_ROOT);
        /* A generator's frame with no caller: suspended under the walk. */
        img_iframe_at(&im, frames[2], codes[2], 6, 1, 0);
        img_commit(&im);
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_ROOT);
        /* Linked as a thread's first again: whole. */
        img_iframe_at(&im, frames[2], codes[2], 6, 0, img_bottom(&im));
        img_commit(&im);
        only_thread(&im, w, interp, &t);
        CHECK_INT(walk_stack(w, &t, out, 8, &depth), 0);
        CHECK_INT(depth, 3);
        walker_free(w);
        img_release(&im);
    }
}

TEST(iframes_older_chunks_read_ahead)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        uint64_t codes[9];
        int64_t offs[9];
        mkcodes(&im, codes, 9);
        for (int i = 0; i < 9; i++)
            offs[i] = 2 * i + 2;
        struct img_chunk c1, c2, c3;
        img_chunk_new(&im, &c1, 2048, 0);
        uint64_t interp = img_interp(&im), bottom = img_bottom(&im);
        uint64_t f = push_chain(&im, &c1, codes + 6, offs + 6, 3, bottom, NULL);
        img_alloc(&im, 4096);
        img_chunk_new(&im, &c2, 2048, c1.addr);
        f = push_chain(&im, &c2, codes + 3, offs + 3, 3, f, NULL);
        img_alloc(&im, 4096);
        img_chunk_new(&im, &c3, 2048, c2.addr);
        f = push_chain(&im, &c3, codes, offs, 3, f, NULL);
        uint64_t ts = img_tstate(&im, interp, 0x7f00, 42);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, f, &c3, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[16];
        size_t depth;
        walk_once(&im, w, interp, out, &depth);
        check_frames(&im, out, depth, codes, offs, 9);
        /* Again: all three chunks (and the top frame) came with the list. */
        uint64_t chunks = walk_stats(w)->ahead_chunks;
        CHECK_U64(walk_once(&im, w, interp, out, &depth), 1);
        check_frames(&im, out, depth, codes, offs, 9);
        CHECK_U64(walk_stats(w)->ahead_chunks - chunks, 3);
        /* A frame of the oldest chunk changes between ticks: seen as it is now. */
        img_iframe_at(&im, f = c1.addr + (uint64_t)im.lay.chunk_data, codes[0], 40, 0, bottom);
        img_commit(&im);
        walk_once(&im, w, interp, out, &depth);
        CHECK_INT(depth, 9);
        CHECK_U64(out[8].code, codes[0]);
        CHECK(out[8].addrq == 40);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * <= 3.10: a frame read ahead from the ring (one that left the stack) next
 * to the outermost frame puts that frame's span first in the order the
 * spans are read, before the top frame's in the second pass: neither read
 * of the top frame falls between its caller's two.  Still, a top frame the
 * same in both its reads, under a caller the same in both, is the stack
 * (both were as read between the passes): kept whole, not cut.
 */
TEST(frame_objects_still_top_read_out_of_order_is_kept)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        uint64_t codes[3];
        mkcodes(&im, codes, 3);
        uint64_t interp = img_interp(&im);
        uint64_t outer = img_frame(&im, codes[2], 0, 6);
        uint64_t gone = img_frame(&im, codes[0], 0, 2); /* beside outer */
        img_alloc(&im, 3 * 4096);
        uint64_t top = img_frame(&im, codes[1], outer, 4);
        img_f64(&im, gone, im.lay.fo_back, top);
        uint64_t ts = img_tstate(&im, interp, 0xabc000, 0);
        img_link_threads(&im, interp, &ts, 1);
        img_set_frame(&im, ts, gone, NULL, 0);
        img_commit(&im);
        struct walker *w = walker_new(&im.rt);
        struct rawframe out[8];
        size_t depth;
        walk_once(&im, w, interp, out, &depth);
        walk_once(&im, w, interp, out, &depth);
        CHECK_INT(depth, 3);
        /* gone returned: it goes to the ring, read ahead beside outer. */
        mem_buffer_write(im.m, ts + (uint64_t)im.lay.ts_frame, &top, 8);
        for (int k = 0; k < 3; k++) {
            walk_once(&im, w, interp, out, &depth);
            CHECK_INT(depth, 2);
            CHECK_U64(out[0].code, codes[1]);
            CHECK_INT(walk_last_settled(w), 0);
        }
        walker_free(w);
        img_release(&im);
    }
}
