/*
 * Deterministic robustness test of the asyncio task reader: for each
 * version (3.7-3.15) a valid fake image with a varied population of tasks
 * (fuzzasync.h) is collected exactly as built, then damaged at random
 * (fixed seed) thousands of times and collected; only what must hold for
 * any memory is asserted (fa_check: no crash or hang, bounded counts,
 * depths, parents without cycles, frames inside the array, reads bounded).
 * Every seed of tests/fuzz/corpus/asyncio and every saved reproducer of
 * tests/fuzz/crashes/asyncio goes through the same path, as the libFuzzer
 * target tests/fuzz/fuzz_asyncio.c reads it, so `make unit` covers them
 * without clang.
 *
 * FUZZ_ROUNDS, FUZZ_BUDGET_MS (per version) and FUZZ_SEED override the
 * defaults for longer exploratory runs; FUZZ_VERBOSE prints counts.
 */
#include <dirent.h>
#include <errno.h>

#include "test.h"

#include "fuzzasync.h"

#define DEFAULT_ROUNDS 3000
/* Wall-clock budget per version, so that a slow (sanitized) build stays bounded. */
#define BUDGET_MS 2500
#define CORPUS_DIR "tests/fuzz/corpus/asyncio"
#define CRASHES_DIR "tests/fuzz/crashes/asyncio"
/* Longest input read from a file (run.sh's -max_len for this target is 512). */
#define FA_MAX_INPUT 65536

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* An edit list as fa_mutate reads it: mostly pointer-dense places, a few edits. */
static size_t random_edits(uint8_t *buf, size_t cap)
{
    size_t n = 1 + rng() % 6, len = 0;
    for (size_t i = 0; i < n && len + 8 <= cap; i++, len += 8) {
        uint64_t r = rng();
        uint8_t kind = (uint8_t)(r & 3);
        if (r & 0x30)
            kind |= 0x80; /* 3 in 4: a hot range */
        if (r & 0x40)
            kind |= 0x40; /* for kind 3: a small delta */
        buf[len] = kind;
        uint32_t off = (uint32_t)(r >> 8) & 0xffffff;
        memcpy(buf + len + 1, &off, 3);
        uint32_t val = (uint32_t)(r >> 32);
        if ((r >> 7) & 1)
            val = (uint32_t)(int32_t)(int8_t)val; /* small values often */
        memcpy(buf + len + 4, &val, 4);
    }
    return len;
}

static void hexdump(const uint8_t *p, size_t n)
{
    fprintf(stderr, "    ");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", p[i]);
    fputc('\n', stderr);
}

/* The valid image collects to exactly what was built. */
static void check_pristine(struct fa_image *fz)
{
    struct fa_counts c = {0};
    char why[512] = "";
    fa_mutate(fz, NULL, 0);
    if (fa_run(fz, &c, why, sizeof(why)) < 0)
        TEST_FAILF("3.%d valid image: %s", fz->a.al->minor, why);
    struct task_set ts = {0};
    struct pserr err = {0};
    CHECK_INT(asyncio_collect(&fz->a.im.rt, fz->a.interp, &ts, &err), 0);
    CHECK_INT(ts.n, fz->want_tasks);
    CHECK_INT(ts.stats.found, fz->want_tasks);
    CHECK_INT(ts.stats.unreadable, 0);
    CHECK_INT(ts.stats.cut, 0);
    CHECK_INT(ts.stats.retried, 0);
    CHECK_INT(ts.nraw, fz->want_frames);
    size_t parents = 0, running = 0, not_started = 0, done = 0, cancelled = 0, how[3] = {0};
    for (size_t i = 0; i < ts.n; i++) {
        const struct atask *t = &ts.v[i];
        CHECK_INT(t->status, 0);
        running += t->state == TASK_RUNNING;
        not_started += t->state == TASK_NOT_STARTED;
        done += t->state == TASK_DONE;
        cancelled += t->state == TASK_CANCELLED;
        CHECK(t->state != TASK_UNREADABLE);
        if (t->parent != SIZE_MAX) {
            parents++;
            how[0] += !strcmp(t->parent_how, "await");
            how[1] += !strcmp(t->parent_how, "gather");
            how[2] += !strcmp(t->parent_how, "TaskGroup");
        }
    }
    CHECK_INT(parents, fz->want_parents);
    CHECK_INT(how[0], 2);
    CHECK_INT(how[1], 2);
    CHECK_INT(how[2], 2);
    CHECK_INT(running, fz->want_running);
    CHECK_INT(not_started, fz->want_not_started);
    CHECK_INT(done, 1);
    CHECK_INT(cancelled, 1);
    CHECK(ts.stats.reads < 100);
    task_set_release(&ts);
    /* and the image is restored after edits */
    uint8_t e[8] = {0x82, 0, 0, 0, 0, 0, 0, 0};
    fa_mutate(fz, e, sizeof(e));
    fa_mutate(fz, NULL, 0);
    CHECK(memcmp(fz->a.im.buf, fz->pristine, fz->used) == 0);
}

static void fuzz_version(size_t v)
{
    static struct fa_image fz;
    fa_build(&fz, v);
    check_pristine(&fz);
    const char *env = getenv("FUZZ_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0;
    rng_state = (0x9E3779B97F4A7C15ull + seed) ^ (v + 1) * 0x5851F42D4C957F2Dull;
    long rounds = DEFAULT_ROUNDS, budget_ms = BUDGET_MS;
    if ((env = getenv("FUZZ_ROUNDS")) && atol(env) > 0)
        rounds = atol(env);
    if ((env = getenv("FUZZ_BUDGET_MS")) && atol(env) > 0)
        budget_ms = atol(env);
    uint64_t budget_ns = (uint64_t)budget_ms * 1000000u;
    struct fa_counts c = {0};
    uint8_t edits[1 + 64];
    uint64_t start = now_ns();
    long r;
    for (r = 0; r < rounds && now_ns() - start < budget_ns; r++) {
        size_t len = random_edits(edits + 1, sizeof(edits) - 1);
        char why[512] = "";
        fa_mutate(&fz, edits + 1, len);
        if (fa_run(&fz, &c, why, sizeof(why)) < 0) {
            /* As a libFuzzer input: the version selector, then the edits. */
            edits[0] = (uint8_t)v;
            TEST_FAILF("3.%d round %ld: %s; input:", fa_minors[v], r, why);
            hexdump(edits, len + 1);
            break;
        }
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr,
                "    3.%d: %ld rounds in %.2f s, %" PRIu64 " ok, %" PRIu64 " errors, %" PRIu64
                " tasks, %" PRIu64 " pending, %" PRIu64 " frames, %" PRIu64 " parents, %" PRIu64
                " cut; at most %" PRIu64 " reads, %" PRIu64 " read calls\n",
                fa_minors[v], r, (double)(now_ns() - start) / 1e9, c.ok, c.errors, c.tasks,
                c.pending, c.frames, c.parents, c.cut, c.max_reads, c.max_calls);
    /* The damage must leave most collections whole, or the test only tests early exits. */
    CHECK(c.ok * 2 > c.runs);
    CHECK(c.tasks > 4 * c.runs);
    CHECK(c.frames > 4 * c.runs);
    CHECK(c.parents > 2 * c.runs);
    fa_release(&fz);
}

TEST(fuzz_37) { fuzz_version(0); }
TEST(fuzz_38) { fuzz_version(1); }
TEST(fuzz_39) { fuzz_version(2); }
TEST(fuzz_310) { fuzz_version(3); }
TEST(fuzz_311) { fuzz_version(4); }
TEST(fuzz_312) { fuzz_version(5); }
TEST(fuzz_313) { fuzz_version(6); }
TEST(fuzz_314) { fuzz_version(7); }
TEST(fuzz_315) { fuzz_version(8); }

/*
 * Runs every file of dir (not its dot files) as fuzz_asyncio would; returns
 * how many, -1 when dir is not there.
 */
static int replay_dir(const char *dir)
{
    static struct fa_image images[FA_NVERSIONS];
    static int built[FA_NVERSIONS];
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    static uint8_t data[FA_MAX_INPUT];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            TEST_FAILF("%s: %s", path, strerror(errno));
            continue;
        }
        size_t size = fread(data, 1, sizeof(data), f);
        fclose(f);
        n++;
        if (size < 1)
            continue;
        size_t v = data[0] % FA_NVERSIONS;
        if (!built[v]) {
            fa_build(&images[v], v);
            built[v] = 1;
        }
        struct fa_counts c = {0};
        char why[512] = "";
        fa_mutate(&images[v], data + 1, size - 1);
        if (fa_run(&images[v], &c, why, sizeof(why)) < 0)
            TEST_FAILF("%s (3.%d): %s", path, fa_minors[v], why);
    }
    closedir(d);
    return n;
}

/* The committed seeds: at least each version's valid image. */
TEST(corpus_replay)
{
    int n = replay_dir(CORPUS_DIR);
    if (n < (int)FA_NVERSIONS)
        TEST_FAILF("%s: %d seeds, want at least %zu (tests/fuzz/make-seeds.py writes them)",
                   CORPUS_DIR, n, FA_NVERSIONS);
}

/* Every input the fuzzer found failing (none, or until asyncio.c is fixed). */
TEST(crashes_replay)
{
    int n = replay_dir(CRASHES_DIR);
    if (n < 0)
        TEST_FAILF("%s is missing", CRASHES_DIR);
}

/* The edit decoder itself: each kind does what it says, inside the image. */
TEST(mutate_edits)
{
    static struct fa_image fz;
    fa_build(&fz, 4);
    struct img *im = &fz.a.im;
    uint8_t e[48] = {0};
    uint32_t off = 1000, val = 0x1234;
    /* kind 0: a byte */
    e[0] = 0;
    memcpy(e + 1, &off, 3);
    memcpy(e + 4, &val, 4);
    /* kind 2: a zero word at 2000 */
    e[8] = 2;
    off = 2003;
    memcpy(e + 9, &off, 3);
    /* kind 1: a pointer into the image at 3000 */
    e[16] = 1;
    off = 3000;
    val = 5000;
    memcpy(e + 17, &off, 3);
    memcpy(e + 20, &val, 4);
    /* kind 3: -2 at 4000 */
    e[24] = 3;
    off = 4000;
    val = (uint32_t)-2;
    memcpy(e + 25, &off, 3);
    memcpy(e + 28, &val, 4);
    /* kind 0x80|3|0x40: the first hot range's first word nudged by -8 */
    e[32] = 0xC3;
    val = (uint32_t)-8;
    memcpy(e + 36, &val, 4);
    /* kind 2 at an offset past the image: wraps into it */
    e[40] = 2;
    off = (uint32_t)fz.used + 3000;
    memcpy(e + 41, &off, 3);
    uint64_t hot0 = fz.hot[0][0] & ~(uint64_t)7;
    uint64_t was = img_r64(im, hot0);
    memset(im->buf + 2000, 0xAB, 8);
    fz.pristine[2000] = 0xAB;
    fa_mutate(&fz, e, sizeof(e));
    CHECK_INT(im->buf[1000], 0x34);
    CHECK_U64(img_r64(im, im->base + 2000), 0);
    CHECK_U64(img_r64(im, im->base + 3000), 0); /* the last edit */
    CHECK_U64(img_r64(im, im->base + 4000), (uint64_t)-2);
    CHECK_U64(img_r64(im, hot0), was - 8);
    /* and the memory source sees the edits */
    uint64_t word = 1;
    CHECK_INT(mem_read_u64(im->m, im->base + 4000, &word), 0);
    CHECK_U64(word, (uint64_t)-2);
    /* An empty list restores the valid image. */
    fa_mutate(&fz, NULL, 0);
    CHECK(memcmp(im->buf, fz.pristine, fz.used) == 0);
    fa_release(&fz);
}
