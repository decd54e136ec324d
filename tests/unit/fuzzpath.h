/*
 * The per-sample path of pystrobe on a damaged process image, for the
 * randomized unit test (test_fuzz_walk.c) and the libFuzzer target
 * (tests/fuzz/fuzz_walk.c).  fz_build makes a valid image of one version
 * (threads, stacks with every kind of frame, code objects, the threading
 * registry), fz_mutate applies a byte-coded list of edits to it, and fz_run
 * runs what a sample runs and checks only what must hold for any input:
 * return codes in the documented sets, bounded depths, valid UTF-8.
 */
#ifndef PYSTROBE_TEST_FUZZPATH_H
#define PYSTROBE_TEST_FUZZPATH_H

#include <errno.h>
#include <stdio.h>

#include "image.h"
#include "profiler/cpython/pyobj.h"
#include "profiler/cpython/walk.h"
#include "symbolizer/codecache.h"
#include "symbolizer/names.h"

#define FZ_MAX_DEPTH 64
#define FZ_MAX_THREADS 16
#define FZ_MAX_HOT 128

static const int fz_versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};
#define FZ_NVERSIONS (sizeof(fz_versions) / sizeof(fz_versions[0]))

struct fz_image {
    struct img im;
    uint64_t interp;
    unsigned char *pristine; /* the valid image's bytes */
    size_t used;
    uint64_t hot[FZ_MAX_HOT][2]; /* pointer-dense ranges, mutated more often */
    size_t nhot;
};

IMG_FN void fz_hot(struct fz_image *fz, uint64_t addr, size_t len)
{
    if (fz->nhot < FZ_MAX_HOT) {
        fz->hot[fz->nhot][0] = addr;
        fz->hot[fz->nhot][1] = len;
        fz->nhot++;
    }
}

/* A <= 3.10 stack of codes[0..n) (innermost first); returns the top frame. */
IMG_FN uint64_t fz_old_stack(struct fz_image *fz, const uint64_t *codes, size_t n)
{
    uint64_t back = 0;
    for (size_t k = n; k-- > 0;) {
        back = img_frame(&fz->im, codes[k], back, (int32_t)(2 * k));
        fz_hot(fz, back, 128);
    }
    return back;
}

/*
 * A 3.11+ stack: an older chunk with two frames, a newer one with the rest,
 * a generator frame in the middle and (3.12+) C-stack shims at the bottom and
 * after the generator.  Sets the thread's frame and data stack.
 */
IMG_FN void fz_new_stack(struct fz_image *fz, uint64_t ts, const uint64_t *codes, size_t n)
{
    struct img *im = &fz->im;
    int shims = im->lay.owner_cstack >= 0;
    uint64_t shim_code = im->minor == 12 ? codes[0] : im->none;
    struct img_chunk older, newer;
    img_chunk_new(im, &older, 1024, 0);
    img_chunk_new(im, &newer, 2048, older.addr);
    fz_hot(fz, older.addr, 1024);
    fz_hot(fz, newer.addr, 2048);
    uint64_t prev = shims ? img_loose_iframe(im, shim_code, 0, 3, 0) : 0;
    if (prev)
        fz_hot(fz, prev, 96);
    for (size_t k = n; k-- > 0;) {
        int64_t off = (int64_t)(2 * k) - 2;
        if (k == n / 2) {
            /* A generator frame, then the shim of the C call that resumed it. */
            uint64_t gen = img_object(im, im->t_gen, 192);
            img_iframe_at(im, gen + 64, codes[k], off, 1, prev);
            fz_hot(fz, gen, 192);
            prev = gen + 64;
            if (shims) {
                prev = img_loose_iframe(im, shim_code, 0, 3, prev);
                fz_hot(fz, prev, 96);
            }
        } else {
            prev = img_push(im, k >= n - 2 ? &older : &newer, codes[k], off, 0, prev, 8);
        }
    }
    img_set_frame(im, ts, prev, &newer, 0);
}

/* Builds the valid image of fz_versions[v]. */
IMG_FN void fz_build(struct fz_image *fz, size_t v)
{
    memset(fz, 0, sizeof(*fz));
    struct img *im = &fz->im;
    img_init(im, fz_versions[v][0], fz_versions[v][1], 256 * 1024);
    const struct pylayout *l = &im->lay;
    fz_hot(fz, im->runtime, 2048);
    fz->interp = img_interp(im);
    fz_hot(fz, fz->interp + (uint64_t)l->is_tstate_head, 8);
    fz_hot(fz, fz->interp + (uint64_t)l->is_modules, 8);

    /* Code objects with line tables and non-ASCII names. */
    static const struct img_seg segs[] = {{4, 3}, {6, 5}, {2, 5}, {8, 9}};
    static const char *const fnames[] = {"leaf", "名前", "mid", "gen", "outer", "<module>"};
    uint64_t codes[6];
    for (size_t i = 0; i < 6; i++) {
        uint8_t table[64];
        size_t tl = img_linetable(img_lt_format(l), 2, segs, 4, table, sizeof(table));
        codes[i] = img_code(im, i % 2 ? "módulo_名前.py" : "/app/main.py", fnames[i], NULL, 2,
                            table, tl);
        fz_hot(fz, codes[i], img_code_size(im));
    }

    /* Three threads: a deep stack, a short one, none. */
    uint64_t ts[3];
    const uint64_t idents[3] = {0x7f1000000700ull, 0x7f2000000700ull, 0x7f3000000700ull};
    for (int i = 0; i < 3; i++) {
        ts[i] = img_tstate(im, fz->interp, idents[i], (uint32_t)(100 + i));
        fz_hot(fz, ts[i], (size_t)l->ts_size);
    }
    img_link_threads(im, fz->interp, ts, 3);
    if (l->frames == FRAME_OBJECTS) {
        img_set_frame(im, ts[0], fz_old_stack(fz, codes, 6), NULL, 0);
        img_set_frame(im, ts[1], fz_old_stack(fz, codes + 3, 2), NULL, 0);
    } else {
        fz_new_stack(fz, ts[0], codes, 6);
        fz_new_stack(fz, ts[1], codes + 2, 3);
        img_set_frame(im, ts[2], 0, NULL, 1); /* no frame: the thread state's own cframe */
    }

    /* The GIL, held by the first thread. */
    if (l->gil == GIL_TSTATE_CURRENT) {
        img_w64(im, im->runtime + 1024, ts[0]);
    } else if (l->gil == GIL_RUNTIME) {
        img_w32(im, im->runtime + (uint64_t)l->rt_gil_locked, 1);
        img_w64(im, im->runtime + (uint64_t)l->rt_gil_last_holder, ts[0]);
    } else {
        uint64_t gil = img_alloc(im, 64);
        img_f64(im, fz->interp, l->is_ceval_gil, gil);
        img_w32(im, gil + (uint64_t)l->gil_locked, 1);
        img_w64(im, gil + (uint64_t)l->gil_last_holder, ts[0]);
        fz_hot(fz, gil, 32);
    }

    /* threading._active for the three threads. */
    static const char *const tnames[3] = {"MainThread", "worker-名前", "Thread-3"};
    uint64_t mark = im->base + im->used;
    img_threading(im, fz->interp, idents, tnames, 3);
    fz_hot(fz, mark, (size_t)(im->base + im->used - mark));

    img_commit(im);
    if (l->gil == GIL_TSTATE_CURRENT)
        im->rt.tstate_current = im->runtime + 1024;
    fz->used = im->used;
    fz->pristine = xmalloc(fz->used);
    memcpy(fz->pristine, im->buf, fz->used);
}

IMG_FN void fz_release(struct fz_image *fz)
{
    free(fz->pristine);
    img_release(&fz->im);
}

/*
 * Restores the valid image, applies the edits coded in data (8 bytes each:
 * kind, a 24-bit offset, a 32-bit value) and rebuilds the memory source.
 *   kind & 3 == 0: a byte = value;  1: a word = a pointer into the image;
 *   2: a word = 0;  3: a word = value (sign-extended, or a pointer nearby).
 *   kind & 0x80: the offset picks a place in a pointer-dense range.
 */
IMG_FN void fz_mutate(struct fz_image *fz, const uint8_t *data, size_t size)
{
    struct img *im = &fz->im;
    uint64_t pristine_tc = im->rt.tstate_current;
    int width = im->rt.unicode27_width;
    img_apply_edits(im, fz->pristine, fz->used, (const uint64_t(*)[2])fz->hot, fz->nhot, data,
                    size);
    img_commit(im);
    im->rt.tstate_current = pristine_tc;
    im->rt.unicode27_width = width;
}

IMG_FN int fz_valid_utf8(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_valid_len((const unsigned char *)s + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

IMG_FN int fz_one_of(int ret, const int *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ret == set[i])
            return 1;
    return 0;
}

#define FZ_ONE_OF(ret, ...)                                                             \
    fz_one_of((ret), (const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

#define FZ_FAIL(...)                                                                   \
    do {                                                                               \
        snprintf(why, whylen, __VA_ARGS__);                                            \
        goto out;                                                                      \
    } while (0)

/* Counts of what the runs reached, to show the fuzzing is not all early exits. */
struct fz_counts {
    uint64_t runs, threads_ok, stacks_ok, frames, resolved, named;
};

/*
 * Runs a sample's reads on the (damaged) image.  Returns 0, or -1 with why
 * saying which property broke.
 */
IMG_FN int fz_run(struct fz_image *fz, struct fz_counts *c, char *why, size_t whylen)
{
    struct img *im = &fz->im;
    struct pyrt *rt = &im->rt;
    struct walker *w = walker_new(rt), *pw = walker_new_parked(im->m, &im->lay);
    struct names names;
    names_init(&names);
    struct code_facts cf;
    layout_code_facts(&im->lay, &cf);
    struct codecache *cc = codecache_new(im->m, &cf, &names, rt->code_type, rt->unicode27_width);
    struct walk_thread threads[FZ_MAX_THREADS];
    static struct rawframe raw[FZ_MAX_THREADS * FZ_MAX_DEPTH];
    static uint64_t codes[FZ_MAX_THREADS * FZ_MAX_DEPTH];
    static struct code_entry *entries[FZ_MAX_THREADS * FZ_MAX_DEPTH];
    struct pythread_name *tn = NULL;
    size_t ntn = 0, nraw = 0, nthreads = 0;
    uint64_t interp = 0, holder;
    int ret, status = -1;
    c->runs++;

    ret = pyrt_interp(rt, &interp);
    if (!FZ_ONE_OF(ret, 0, -EFAULT))
        FZ_FAIL("pyrt_interp: %d", ret);
    if (ret < 0 || !interp) {
        status = 0;
        goto out;
    }
    /* Two rounds, as a recording takes them: the second (the one counted)
     * uses what the first read ahead, and walks each thread again after a
     * read of its own, as a torn walk is. */
    for (int round = 0; round < 2; round++) {
        nraw = 0;
        int tret = walk_threads(w, interp, threads, FZ_MAX_THREADS, &nthreads);
        if (!FZ_ONE_OF(tret, 0, -EINVAL, -EFAULT, -ELOOP))
            FZ_FAIL("walk_threads: %d", tret);
        if (nthreads > FZ_MAX_THREADS)
            FZ_FAIL("walk_threads: n %zu", nthreads);
        ret = pyrt_gil_holder(rt, interp, &holder);
        if (!FZ_ONE_OF(ret, 0, -EFAULT, -ENOENT))
            FZ_FAIL("pyrt_gil_holder: %d", ret);
        if (tret == 0) {
            c->threads_ok += round == 1;
            for (size_t i = 0; i < nthreads; i++) {
                size_t depth = 0;
                ret = walk_stack(w, &threads[i], raw + nraw, FZ_MAX_DEPTH, &depth);
                if (round == 1 && FZ_ONE_OF(walk_refresh(w, interp, &threads[i]), 0) &&
                    walk_has_frames(&threads[i]))
                    ret = walk_stack(w, &threads[i], raw + nraw, FZ_MAX_DEPTH, &depth);
                if (!FZ_ONE_OF(ret, 0, 1, -EFAULT, -EINVAL, -ELOOP, -ENOENT))
                    FZ_FAIL("walk_stack: %d", ret);
                if (ret == -EINVAL && (walk_last_torn(w) <= TORN_NONE ||
                                       walk_last_torn(w) >= TORN_COUNT))
                    FZ_FAIL("walk_stack: torn for no reason (%d)", (int)walk_last_torn(w));
                if (depth > FZ_MAX_DEPTH)
                    FZ_FAIL("walk_stack: depth %zu > %d", depth, FZ_MAX_DEPTH);
                if (ret == 1 && depth != FZ_MAX_DEPTH)
                    FZ_FAIL("walk_stack: truncated at depth %zu", depth);
                /* -ENOENT: no Python frame after all, a right answer too. */
                if (ret >= 0 || ret == -ENOENT) {
                    c->stacks_ok += round == 1;
                    nraw += depth;
                }
                /* The same frames as a parked greenlet's, its C stack anywhere. */
                struct walk_parked p = {.frame = threads[i].frame, .chunk = threads[i].chunk,
                                        .chunk_top = threads[i].chunk_top,
                                        .cstack_hi = UINT64_MAX};
                static struct rawframe praw[FZ_MAX_DEPTH];
                if (round == 1 && p.frame) {
                    depth = 0;
                    ret = walk_parked(pw, &p, praw, FZ_MAX_DEPTH, &depth);
                    if (!FZ_ONE_OF(ret, 0, 1, -EFAULT, -EINVAL, -ELOOP))
                        FZ_FAIL("walk_parked: %d", ret);
                    if (ret == -EINVAL && (walk_last_torn(pw) <= TORN_NONE ||
                                           walk_last_torn(pw) >= TORN_COUNT))
                        FZ_FAIL("walk_parked: torn for no reason (%d)", (int)walk_last_torn(pw));
                    if (depth > FZ_MAX_DEPTH || (ret == 1 && depth != FZ_MAX_DEPTH))
                        FZ_FAIL("walk_parked: depth %zu (%d)", depth, ret);
                }
            }
        }
    }
    c->frames += nraw;
    /* What the snapshot asks of the frames before it keeps a stack. */
    ret = codecache_peek(cc, codes, 0, entries);
    for (size_t i = 0; i < nraw; i++)
        codes[i] = raw[i].code;
    ret = codecache_peek(cc, codes, nraw, entries);
    if (ret < 0 || (size_t)ret > nraw)
        FZ_FAIL("codecache_peek: %d of %zu", ret, nraw);
    for (size_t i = 0; i < nraw; i++) {
        if (!entries[i])
            continue;
        const struct code_entry *callee = i > 0 ? entries[i - 1] : NULL;
        int a = codecache_can_call(cc, entries[i], raw[i].addrq, 0, callee);
        int b = codecache_can_call(cc, entries[i], raw[i].addrq, 1, callee);
        int p = codecache_pushing(cc, entries[i], raw[i].addrq);
        int r = codecache_returned(cc, entries[i], raw[i].addrq);
        if ((a | b | p | r) & ~1)
            FZ_FAIL("codecache_can_call/pushing/returned: not 0 or 1");
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nraw; i++)
            codes[i] = raw[i].code;
        ret = codecache_resolve(cc, codes, nraw, entries);
        if (ret < 0 || (size_t)ret > nraw)
            FZ_FAIL("codecache_resolve: %d of %zu", ret, nraw);
        for (size_t i = 0; i < nraw; i++) {
            if (!entries[i])
                continue;
            c->resolved += pass == 0;
            uint32_t f1 = codecache_frame(cc, entries[i], raw[i].addrq, 0);
            uint32_t f2 = codecache_frame(cc, entries[i], raw[i].addrq, 1);
            if (f1 >= names.nframes || f2 >= names.nframes)
                FZ_FAIL("codecache_frame: id out of range");
            const struct names_func *fn =
                names_func_get(&names, names_frame_get(&names, f1)->func);
            if (!fz_valid_utf8(names_str_get(&names, fn->name)) ||
                !fz_valid_utf8(names_str_get(&names, fn->file)))
                FZ_FAIL("function name is not UTF-8");
        }
    }
    ret = pythread_names(rt, interp, NULL, 0, &tn, &ntn);
    if (!FZ_ONE_OF(ret, 0, -EFAULT, -EINVAL))
        FZ_FAIL("pythread_names: %d", ret);
    if (ret < 0 && (tn || ntn))
        FZ_FAIL("pythread_names failed with results");
    for (size_t i = 0; i < ntn; i++)
        if (!tn[i].name || !fz_valid_utf8(tn[i].name))
            FZ_FAIL("thread name is not UTF-8");
    c->named += ntn;
    status = 0;
out:
    pythread_names_free(tn, ntn);
    codecache_free(cc);
    names_release(&names);
    walker_free(w);
    walker_free(pw);
    return status;
}

#endif
