/*
 * Golden-file checks for the writers: a writer's output on a fixed profile
 * must equal tests/golden/NAME byte for byte.  `make golden-update`
 * (PYSTROBE_UPDATE_GOLDEN=1) rewrites the files instead: then review the diff
 * before committing.  `make check` fails if they changed while it ran.
 * Unit tests run from the repository's root.
 */
#ifndef PYSTROBE_GOLDEN_H
#define PYSTROBE_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/profile.h"
#include "test.h"

/*
 * Whether this run rewrites the golden files (PYSTROBE_UPDATE_GOLDEN=1, which
 * `make golden-update` sets).  Refused, and the test failed, when CI=true: CI
 * compares against the files committed, it never writes them.
 */
static inline int golden_updating(void)
{
    const char *upd = getenv("PYSTROBE_UPDATE_GOLDEN");
    const char *ci = getenv("CI");
    if (!upd || strcmp(upd, "1") != 0)
        return 0;
    if (ci && strcmp(ci, "true") == 0) {
        TEST_FAILF("PYSTROBE_UPDATE_GOLDEN=1 with CI=true: golden files are not rewritten in CI");
        return -1;
    }
    return 1;
}

/* Compares buf[0..n) with tests/golden/name; reports the first difference. */
static inline void golden_check(const char *name, const void *buf, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "tests/golden/%s", name);
    int upd = golden_updating();
    if (upd < 0)
        return;
    if (upd) {
        FILE *f = fopen(path, "wb");
        REQUIRE(f != NULL);
        REQUIRE(fwrite(buf, 1, n, f) == n);
        REQUIRE(fclose(f) == 0);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_FAILF("no golden file %s (PYSTROBE_UPDATE_GOLDEN=1 writes it)", path);
        return;
    }
    size_t cap = n + 2, got = 0;
    unsigned char *want = malloc(cap);
    REQUIRE(want != NULL);
    got = fread(want, 1, cap, f);
    fclose(f);
    size_t i = 0;
    const unsigned char *b = buf;
    while (i < n && i < got && b[i] == want[i])
        i++;
    if (i != n || got != n)
        TEST_FAILF("%s: output differs from the golden file at byte %zu (output %zu bytes, golden %zu%s)",
                   path, i, n, got, got == cap ? "+" : "");
    free(want);
}

/* Writes with fn(f, ctx) into memory and returns the bytes (free them). */
static inline char *golden_capture(int (*fn)(FILE *f, void *ctx), void *ctx, size_t *n)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    REQUIRE(f != NULL);
    CHECK_INT(fn(f, ctx), 0);
    REQUIRE(fclose(f) == 0);
    return buf;
}

/*
 * The fixed profile every writer's golden file is made from: two named
 * threads rooted in their frames, Python, native and marker frames, a
 * recursion, and names that must be escaped (including one that tries to
 * close an SVG and run a script).  Metadata is fixed: no clock in the bytes.
 */
static inline void golden_fixture(struct profile *p)
{
    static const char *const stacks[][6] = {
        {"<module> (/srv/app.py:30)", "main (/srv/app.py:25)", "busy (/srv/app.py:5)", NULL},
        {"<module> (/srv/app.py:30)", "main (/srv/app.py:25)", "busy (/srv/app.py:6)", NULL},
        {"<module> (/srv/app.py:30)", "main (/srv/app.py:26)", "dumps (/usr/lib/python3.11/json/__init__.py:231)",
         "encode (/usr/lib/python3.11/json/encoder.py:200)", NULL},
        {"<module> (/srv/app.py:30)", "main (/srv/app.py:27)", "fib (/srv/app.py:12)", "fib (/srv/app.py:12)",
         "fib (/srv/app.py:12)", NULL},
        {"<module> (/srv/app.py:30)", "main (/srv/app.py:28)", "</svg><script>alert(1)</script> (/srv/x&y \"q\" 'a'.py:1)", NULL},
        {"_bootstrap (/usr/lib/python3.11/threading.py:995)", "run (/srv/worker.py:9)", "<lambda> (/srv/worker.py:10)", NULL},
        {"_bootstrap (/usr/lib/python3.11/threading.py:995)", "run (/srv/worker.py:9)", "[idle]", NULL},
        {"_bootstrap (/usr/lib/python3.11/threading.py:995)", "run (/srv/worker.py:11)", "compress (zlibmodule.c:300)",
         "deflate (libz.so.1)", NULL},
        {"_bootstrap (/usr/lib/python3.11/threading.py:995)", "w\xc3\xa9ird \xe2\x80\x94 \xf0\x9f\x90\x8d (/srv/\xc3\xbc.py:3)", NULL},
    };
    static const uint64_t counts[] = {40, 10, 7, 5, 1, 6, 20, 3, 2};
    profile_init(p);
    p->thread_roots = 1;
    uint32_t t0 = profile_thread(p, "MainThread", 4242);
    uint32_t t1 = profile_thread(p, "worker-1", 4250);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint32_t ids[8];
        size_t n = 0;
        uint32_t t = i < 5 ? t0 : t1;
        ids[n++] = p->threads[t].frame;
        for (size_t j = 0; stacks[i][j]; j++)
            ids[n++] = profile_frame(p, stacks[i][j]);
        profile_add(p, t, ids, n, counts[i]);
    }
    p->meta.title = strdup("python3 /srv/app.py (pid 4242)");
    p->meta.start_ns = 1795000000000000000LL; /* 2026-11-18T11:06:40Z */
    p->meta.duration_ns = 940000000LL;
    p->meta.rate = 100;
    p->meta.mode = "cpu";
}

#endif
