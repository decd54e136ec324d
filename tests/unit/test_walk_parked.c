/*
 * The walker on parked stacks (walk_parked: a greenlet's frames as it saved
 * them), over fake images: the same frames as the walk of a thread whose
 * stack is the same, through several data-stack chunks (3.11+) or frame
 * objects (<= 3.10), and what no thread state bounds there: frames outside
 * the stack's chunks, shims off its own C stack or in the part of it
 * spilled to the heap, cycles, and how much is copied.
 */
#include "profiler/cpython/walk.h"

#include <errno.h>

#include "test.h"

#include "image.h"

static const int old_versions[][2] = {{2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}};
static const int new_minors[] = {11, 12, 13};

/* n distinct code objects f0..f(n-1), and offsets 2, 4, ... */
static void mkcodes(struct img *im, uint64_t *codes, int64_t *offs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%zu", i);
        codes[i] = img_code(im, "parked.py", name, NULL, (int)(10 * i + 1), NULL, 0);
        if (offs)
            offs[i] = 2 * (int64_t)i + 2;
    }
}

/*
 * Pushes frames for codes[n-1] (outermost) .. codes[0] (innermost) onto c,
 * each calling the one pushed before it (the first calls `previous`).
 * Returns the innermost frame.
 */
static uint64_t push_chain(struct img *im, struct img_chunk *c, const uint64_t *codes,
                           const int64_t *offs, size_t n, uint64_t previous)
{
    uint64_t f = previous;
    for (size_t k = n; k-- > 0;)
        f = img_push(im, c, codes[k], offs[k], 0, f, 16);
    return f;
}

static void check_frames(struct img *im, const char *what, const struct rawframe *out,
                         size_t depth, const uint64_t *codes, const int64_t *addrq, size_t n)
{
    if (depth != n) {
        TEST_FAILF("%d.%d %s: depth %zu, expected %zu", im->major, im->minor, what, depth, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i].code != codes[i] || out[i].addrq != addrq[i])
            TEST_FAILF("%d.%d %s: frame %zu: code 0x%" PRIx64 " addrq %" PRId64
                       ", expected 0x%" PRIx64 " %" PRId64,
                       im->major, im->minor, what, i, out[i].code, out[i].addrq, codes[i],
                       addrq[i]);
}

/* A thread of interp whose top frame is top, data stack c (may be NULL). */
static void one_thread(struct img *im, uint64_t interp, uint64_t top, const struct img_chunk *c)
{
    uint64_t ts = img_tstate(im, interp, 0x7f00, 42);
    img_link_threads(im, interp, &ts, 1);
    img_set_frame(im, ts, top, c, 0);
}

/* Walks the only thread of interp with a thread walker. */
static int walk_thread_of(struct img *im, uint64_t interp, struct rawframe *out, size_t max,
                          size_t *depth)
{
    struct walker *w = walker_new(&im->rt);
    struct walk_thread t[2];
    size_t n = 0;
    int ret = walk_threads(w, interp, t, 2, &n);
    REQUIRE(ret == 0 && n == 1);
    ret = walk_stack(w, &t[0], out, max, depth);
    walker_free(w);
    return ret;
}

/*
 * A stack in three chunks, apart and out of address order (on 3.12+ over a
 * shim), walked as a thread's and as a parked one's that saved the same
 * frame and chunks: the same frames, every one.  Parked, each older chunk
 * is copied whole up to the top its header keeps (a count of slots).
 */
TEST(parked_same_frames_as_a_thread_through_three_chunks)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        enum { N = 12 };
        uint64_t codes[N];
        int64_t offs[N];
        mkcodes(&im, codes, offs, N);
        uint64_t interp = img_interp(&im);
        uint64_t bottom = img_bottom(&im);
        struct img_chunk c[3];
        img_alloc(&im, 8192);
        img_chunk_new(&im, &c[2], 2048, 0);
        uint64_t f8 = push_chain(&im, &c[2], codes + 8, offs + 8, 4, bottom);
        uint64_t gap = img_alloc(&im, 4096);
        img_chunk_new(&im, &c[1], 2048, c[2].addr);
        uint64_t f4 = push_chain(&im, &c[1], codes + 4, offs + 4, 4, f8);
        /* The newest chunk below the others. */
        c[0].addr = gap;
        c[0].size = 1024;
        c[0].top = gap + (uint64_t)im.lay.chunk_data;
        img_f64(&im, gap, im.lay.chunk_previous, c[1].addr);
        img_f64(&im, gap, im.lay.chunk_size, 1024);
        uint64_t f0 = push_chain(&im, &c[0], codes, offs, 4, f4);
        one_thread(&im, interp, f0, &c[0]);
        img_commit(&im);

        struct rawframe out[N + 4];
        size_t depth = 0;
        CHECK_INT(walk_thread_of(&im, interp, out, N + 4, &depth), 0);
        check_frames(&im, "thread", out, depth, codes, offs, N);

        struct walker *w = walker_new_parked(im.m, &im.lay);
        struct walk_parked p = {.frame = f0, .chunk = c[0].addr, .chunk_top = c[0].top,
                                .cstack_lo = bottom, .cstack_hi = bottom + 256};
        uint64_t reads = mem_read_calls(im.m);
        depth = 0;
        CHECK_INT(walk_parked(w, &p, out, N + 4, &depth), 0);
        check_frames(&im, "parked", out, depth, codes, offs, N);
        /* The newest chunk, each older one's header and bytes; 3.12+ the shim alone. */
        int shim = im.lay.owner_cstack >= 0;
        CHECK_U64(mem_read_calls(im.m) - reads, 5 + (uint64_t)shim);
        CHECK_U64(walk_stats(w)->chunk_frames, N);
        CHECK_U64(walk_stats(w)->single_reads, (uint64_t)shim);
        /* Again: the same, from nothing kept of the last walk. */
        depth = 0;
        CHECK_INT(walk_parked(w, &p, out, N + 4, &depth), 0);
        check_frames(&im, "parked again", out, depth, codes, offs, N);
        /* Cut at max frames: the innermost ones. */
        CHECK_INT(walk_parked(w, &p, out, 6, &depth), 1);
        check_frames(&im, "parked, cut", out, depth, codes, offs, 6);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * What bounds a parked stack, which no thread state does: its own chunks
 * (a thread's frame outside them is stale), its own C stack (a shim off it
 * is stale; one in the part spilled to the heap is read from that copy),
 * and the bytes its chunks may take.
 */
TEST(parked_frames_outside_the_chunks)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[4];
        int64_t offs[4];
        mkcodes(&im, codes, offs, 4);
        /* A generator's frame below the chunk, then a thread frame nowhere in a chunk. */
        uint64_t loose = img_loose_iframe(&im, codes[3], offs[3], 0, 0);
        uint64_t gen = img_loose_iframe(&im, codes[2], offs[2], 1, loose);
        struct img_chunk c;
        img_chunk_new(&im, &c, 1024, 0);
        uint64_t top = push_chain(&im, &c, codes, offs, 2, gen);
        /* A C stack of 1 KiB whose first 512 bytes were spilled to a copy elsewhere. */
        uint64_t cstack = img_alloc(&im, 1024), spill = img_alloc(&im, 512);
        img_commit(&im);
        struct walker *w = walker_new_parked(im.m, l);
        struct walk_parked p = {.frame = top, .chunk = c.addr, .chunk_top = c.top};
        struct rawframe out[8];
        size_t depth = 0;
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), -EINVAL);
        CHECK_INT(walk_last_torn(w), TORN_GARBAGE);
        /* The same stack ending at the generator's frame is whole. */
        img_f64(&im, gen, l->if_previous, 0);
        img_commit(&im);
        walker_free(w);
        w = walker_new_parked(im.m, l);
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
        check_frames(&im, "to a generator", out, depth, codes, offs, 3);
        walker_free(w);
        if (l->owner_cstack < 0) {
            img_release(&im);
            continue;
        }
        /* 3.12+: the generator called from a shim at cstack + 0x300, in place. */
        img_iframe_at(&im, cstack + 0x300, codes[3], 0, l->owner_cstack, 0);
        img_f64(&im, gen, l->if_previous, cstack + 0x300);
        /* And a shim at cstack + 0x100, spilled: in place another stack's bytes. */
        img_iframe_at(&im, cstack + 0x100, codes[3], 0, 0, img_hole(&im));
        img_iframe_at(&im, spill + 0x100, codes[3], 0, l->owner_cstack, 0);
        img_commit(&im);
        p.cstack_lo = cstack;
        p.cstack_hi = cstack + 1024;
        p.spill = spill;
        p.spill_len = 512;
        w = walker_new_parked(im.m, l);
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
        check_frames(&im, "to a shim", out, depth, codes, offs, 3);
        /* A shim off the stack's own C stack is stale. */
        p.cstack_hi = cstack + 0x300;
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), -EINVAL);
        p.cstack_hi = cstack + 1024;
        /* Through the spilled shim: read from the copy, not in place. */
        img_f64(&im, gen, l->if_previous, cstack + 0x100);
        img_commit(&im);
        walker_free(w);
        w = walker_new_parked(im.m, l);
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
        check_frames(&im, "to a spilled shim", out, depth, codes, offs, 3);
        /* Nothing spilled: in place, another stack's frame, not this one's. */
        p.spill = 0;
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), -EINVAL);
        /* A frame straddling the end of the spilled part. */
        p.spill = spill;
        img_f64(&im, gen, l->if_previous, cstack + 512 - 8);
        img_commit(&im);
        walker_free(w);
        w = walker_new_parked(im.m, l);
        CHECK_INT(walk_parked(w, &p, out, 8, &depth), -EINVAL);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * greenlet 3.0.0-3.0.2 on 3.12 cut the innermost frame's link and kept it
 * aside (cut_link): the walk goes on there, from that frame only.
 */
TEST(parked_cut_link_of_the_innermost_frame)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    const struct pylayout *l = &im.lay;
    uint64_t codes[4];
    int64_t offs[4];
    mkcodes(&im, codes, offs, 4);
    struct img_chunk c;
    img_chunk_new(&im, &c, 1024, 0);
    uint64_t bottom = img_bottom(&im);
    uint64_t mid = push_chain(&im, &c, codes + 1, offs + 1, 3, bottom);
    uint64_t leaf = img_push(&im, &c, codes[0], offs[0], 0, 0, 16);
    img_commit(&im);
    struct walker *w = walker_new_parked(im.m, l);
    struct walk_parked p = {.frame = leaf, .chunk = c.addr, .chunk_top = c.top, .cut_link = mid,
                            .cstack_lo = bottom, .cstack_hi = bottom + 256};
    struct rawframe out[8];
    size_t depth = 0;
    CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
    check_frames(&im, "cut link", out, depth, codes, offs, 4);
    /* Not for a frame further out: the outermost one ends the stack. */
    p.frame = mid;
    p.cut_link = leaf;
    CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
    check_frames(&im, "outer", out, depth, codes + 1, offs + 1, 3);
    /* A cut link back to the frame itself is a cycle. */
    p.frame = leaf;
    p.cut_link = leaf;
    CHECK_INT(walk_parked(w, &p, out, 8, &depth), -ELOOP);
    walker_free(w);
    img_release(&im);
}

/* Cycles inside a chunk and across two chunks end the walk, as a thread's. */
TEST(parked_cycles)
{
    for (size_t v = 0; v < ARRAY_SIZE(new_minors); v++) {
        struct img im;
        img_init(&im, 3, new_minors[v], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[6];
        int64_t offs[6];
        mkcodes(&im, codes, offs, 6);
        struct img_chunk older, newer;
        img_chunk_new(&im, &older, 1024, 0);
        uint64_t outer = img_push(&im, &older, codes[5], offs[5], 0, 0, 16);
        uint64_t f3 = push_chain(&im, &older, codes + 3, offs + 3, 2, outer);
        img_chunk_new(&im, &newer, 1024, older.addr);
        uint64_t f0 = push_chain(&im, &newer, codes, offs, 3, f3);
        /* The outermost frame calls back into the newest chunk. */
        img_f64(&im, outer, l->if_previous, f0);
        uint64_t interp = img_interp(&im);
        one_thread(&im, interp, f0, &newer);
        img_commit(&im);
        struct rawframe out[WALK_MAX_DEPTH];
        size_t depth = 0;
        CHECK_INT(walk_thread_of(&im, interp, out, WALK_MAX_DEPTH, &depth), -ELOOP);
        struct walker *w = walker_new_parked(im.m, l);
        struct walk_parked p = {.frame = f0, .chunk = newer.addr, .chunk_top = newer.top};
        CHECK_INT(walk_parked(w, &p, out, WALK_MAX_DEPTH, &depth), -ELOOP);
        CHECK_INT(walk_last_torn(w), TORN_CYCLE);
        /* A frame that calls itself. */
        p.frame = outer;
        img_f64(&im, outer, l->if_previous, outer);
        img_commit(&im);
        walker_free(w);
        w = walker_new_parked(im.m, l);
        CHECK_INT(walk_parked(w, &p, out, WALK_MAX_DEPTH, &depth), -ELOOP);
        walker_free(w);
        img_release(&im);
    }
}

/*
 * Older chunks are copied while those copied take less than
 * PARKED_CHUNK_BYTES (8 MiB) in all: in a chain of 3 MiB chunks, a frame
 * in the fourth older one is past the bound, one in the third is not.
 */
TEST(parked_chunk_bytes_bounded)
{
    struct img im;
    img_init(&im, 3, 11, 14u << 20);
    const struct pylayout *l = &im.lay;
    uint64_t codes[5];
    int64_t offs[5];
    mkcodes(&im, codes, offs, 5);
    struct img_chunk c[5];
    uint64_t prev_chunk = 0, fr[5], below = 0;
    for (int k = 4; k >= 0; k--) {
        size_t size = k == 0 ? 4096 : (3u << 20);
        img_chunk_new(&im, &c[k], size, prev_chunk);
        below = fr[k] = img_push(&im, &c[k], codes[k], offs[k], 0, below, 16);
        /* An older chunk used to its end, as a deep recursion leaves it. */
        if (k)
            img_f64(&im, c[k].addr, l->chunk_top, (size - (size_t)l->chunk_data) / 8);
        prev_chunk = c[k].addr;
    }
    img_commit(&im);
    struct walker *w = walker_new_parked(im.m, l);
    struct walk_parked p = {.frame = fr[0], .chunk = c[0].addr, .chunk_top = c[0].top};
    struct rawframe out[8];
    size_t depth = 0;
    CHECK_INT(walk_parked(w, &p, out, 8, &depth), -EINVAL);
    CHECK_INT(walk_last_torn(w), TORN_GARBAGE);
    /* The stack ending in the third older chunk: 9 MiB copied, the last chunk begun under 8. */
    img_f64(&im, fr[3], l->if_previous, 0);
    img_commit(&im);
    walker_free(w);
    w = walker_new_parked(im.m, l);
    CHECK_INT(walk_parked(w, &p, out, 8, &depth), 0);
    check_frames(&im, "9 MiB", out, depth, codes, offs, 4);
    walker_free(w);
    img_release(&im);
}

/* <= 3.10: a parked stack's frame objects, judged frame by frame as a thread's are. */
TEST(parked_frame_objects_as_a_thread)
{
    for (size_t v = 0; v < ARRAY_SIZE(old_versions); v++) {
        struct img im;
        img_init(&im, old_versions[v][0], old_versions[v][1], 0);
        const struct pylayout *l = &im.lay;
        uint64_t codes[4];
        mkcodes(&im, codes, NULL, 4);
        enum { GOOD, DEAD, NEGREF, WRONG_TYPE, NO_CODE, ODD_BACK, LOST_BACK, SELF, RING, NCASES };
        uint64_t interps[NCASES], tops[NCASES];
        const int32_t lasti[4] = {10, 0, -1, 7};
        for (int k = 0; k < NCASES; k++) {
            uint64_t f[4], back = 0;
            for (int i = 3; i >= 0; i--)
                back = f[i] = img_frame(&im, codes[i], back, lasti[i]);
            switch (k) {
            case DEAD: img_w64(&im, f[1], 0); break;
            case NEGREF: img_w64(&im, f[1], (uint64_t)-1); break;
            case WRONG_TYPE: img_f64(&im, f[2], l->ob_type, im.t_code); break;
            case NO_CODE: img_f64(&im, f[1], l->fo_code, 0); break;
            case ODD_BACK: img_f64(&im, f[0], l->fo_back, f[1] + 2); break;
            case LOST_BACK: img_f64(&im, f[1], l->fo_back, img_hole(&im)); break;
            case SELF: img_f64(&im, f[2], l->fo_back, f[2]); break;
            case RING: img_f64(&im, f[3], l->fo_back, f[1]); break;
            }
            interps[k] = img_interp(&im);
            tops[k] = f[0];
            one_thread(&im, interps[k], f[0], NULL);
        }
        img_commit(&im);
        /* Without PyFrame_Type known, the type is confirmed by its name, as for threads. */
        im.rt.frame_type = 0;
        const int want[NCASES] = {0, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EFAULT,
                                  -ELOOP, -ELOOP};
        struct walker *w = walker_new_parked(im.m, l);
        int m = l->lasti_units ? 2 : 1;
        const int64_t addrq[4] = {10 * m, 0, -1, 7 * m};
        for (int k = 0; k < NCASES; k++) {
            struct rawframe out[8], tout[8];
            size_t depth = 0, tdepth = 0;
            struct walk_parked p = {.frame = tops[k]};
            int ret = walk_parked(w, &p, out, 8, &depth);
            int tret = walk_thread_of(&im, interps[k], tout, 8, &tdepth);
            if (ret != want[k] || tret != want[k])
                TEST_FAILF("%d.%d case %d: parked %d, thread %d, expected %d", im.major, im.minor,
                           k, ret, tret, want[k]);
            if (k == GOOD) {
                check_frames(&im, "parked", out, depth, codes, addrq, 4);
                check_frames(&im, "thread", tout, tdepth, codes, addrq, 4);
                CHECK_INT(walk_parked(w, &p, out, 2, &depth), 1);
                check_frames(&im, "parked, cut", out, depth, codes, addrq, 2);
            }
        }
        walker_free(w);
        img_release(&im);
    }
}
