/*
 * Deterministic robustness test of the per-sample path: for each version, a
 * valid fake image is damaged at random (fixed seed) thousands of times and
 * walked, resolved and named; only "no crash, no hang, documented return
 * codes, bounded depth, valid UTF-8" is asserted (fuzzpath.h).  The same
 * path runs from libFuzzer input in tests/fuzz/fuzz_walk.c.
 *
 * FUZZ_ROUNDS, FUZZ_BUDGET_MS (per version) and FUZZ_SEED override the
 * defaults for longer exploratory runs; FUZZ_VERBOSE prints counts.
 */
#include <errno.h>

#include "test.h"

#include "fuzzpath.h"

#define DEFAULT_ROUNDS 10000
/* Wall-clock budget per version, so that a slow (sanitized) build stays bounded. */
#define BUDGET_MS 1100

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* An edit list as fz_mutate reads it: mostly pointer-dense places, a few edits. */
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
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", p[i]);
    fputc('\n', stderr);
}

/* The valid image walks to exactly what was built. */
static void check_pristine(struct fz_image *fz)
{
    struct fz_counts c = {0};
    char why[256] = "";
    fz_mutate(fz, NULL, 0);
    if (fz_run(fz, &c, why, sizeof(why)) < 0)
        TEST_FAILF("%d.%d valid image: %s", fz->im.major, fz->im.minor, why);
    CHECK_U64(c.threads_ok, 1);
    CHECK_U64(c.stacks_ok, 3);
    CHECK_U64(c.frames, 6 + (fz->im.lay.frames == FRAME_OBJECTS ? 2 : 3));
    CHECK_U64(c.resolved, c.frames);
    CHECK_U64(c.named, 3);
}

static void fuzz_version(size_t v)
{
    static struct fz_image fz;
    fz_build(&fz, v);
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
    struct fz_counts c = {0};
    uint8_t edits[64];
    uint64_t start = now_ns();
    long r;
    for (r = 0; r < rounds && now_ns() - start < budget_ns; r++) {
        size_t len = random_edits(edits, sizeof(edits));
        char why[256] = "";
        fz_mutate(&fz, edits, len);
        if (fz_run(&fz, &c, why, sizeof(why)) < 0) {
            TEST_FAILF("%d.%d round %ld: %s; edits:", fz.im.major, fz.im.minor, r, why);
            hexdump(edits, len);
            break;
        }
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr,
                "    %d.%d: %ld rounds, %" PRIu64 " thread lists, %" PRIu64 " stacks, %" PRIu64
                " frames, %" PRIu64 " resolved, %" PRIu64 " names\n",
                fz.im.major, fz.im.minor, r, c.threads_ok, c.stacks_ok, c.frames, c.resolved,
                c.named);
    /* The damage must leave most samples walkable, or the test only tests early exits. */
    CHECK(c.threads_ok * 2 > (uint64_t)r);
    CHECK(c.resolved * 4 > c.frames);
    CHECK(c.named > (uint64_t)r);
    fz_release(&fz);
}

TEST(fuzz_27) { fuzz_version(0); }
TEST(fuzz_36) { fuzz_version(1); }
TEST(fuzz_37) { fuzz_version(2); }
TEST(fuzz_38) { fuzz_version(3); }
TEST(fuzz_39) { fuzz_version(4); }
TEST(fuzz_310) { fuzz_version(5); }
TEST(fuzz_311) { fuzz_version(6); }
TEST(fuzz_312) { fuzz_version(7); }
TEST(fuzz_313) { fuzz_version(8); }

/* The edit decoder itself: each kind does what it says. */
TEST(mutate_edits)
{
    static struct fz_image fz;
    fz_build(&fz, 7);
    struct img *im = &fz.im;
    uint8_t e[32] = {0};
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
    memset(im->buf + 2000, 0xAB, 8);
    fz.pristine[2000] = 0xAB;
    fz_mutate(&fz, e, sizeof(e));
    CHECK_INT(im->buf[1000], 0x34);
    CHECK_U64(img_r64(im, im->base + 2000), 0);
    CHECK_U64(img_r64(im, im->base + 3000), im->base + 5000);
    CHECK_U64(img_r64(im, im->base + 4000), (uint64_t)-2);
    /* and the memory source sees the edits */
    uint64_t word = 1;
    CHECK_INT(mem_read_u64(im->m, im->base + 3000, &word), 0);
    CHECK_U64(word, im->base + 5000);
    /* An empty list restores the valid image. */
    fz_mutate(&fz, NULL, 0);
    CHECK(memcmp(im->buf, fz.pristine, fz.used) == 0);
    fz_release(&fz);
}
