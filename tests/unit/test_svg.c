/*
 * The SVG flame graph: golden files (plain, icicle, differential), output
 * that depends only on the samples, escaping of hostile names, valid UTF-8,
 * merging of sub-pixel frames, differential colors and write errors.
 */
#include <errno.h>

#include "golden.h"
#include "test.h"

#include "common/util.h"
#include "output/profile.h"
#include "output/svg.h"

struct job {
    const struct profile *p;
    struct svg_opts o;
};

static int write_job(FILE *f, void *ctx)
{
    struct job *j = ctx;
    return svg_write(f, j->p, &j->o);
}

/* The SVG of p (NUL-terminated; free it). */
static char *render(const struct profile *p, const struct svg_opts *o, size_t *n)
{
    struct job j = {p, {0, NULL, 0}};
    if (o)
        j.o = *o;
    size_t len = 0;
    char *buf = golden_capture(write_job, &j, &len);
    if (n)
        *n = len;
    return buf;
}

static size_t count_of(const char *s, const char *needle)
{
    size_t c = 0;
    for (const char *q = s; (q = strstr(q, needle)) != NULL; q += strlen(needle))
        c++;
    return c;
}

/* One drawn frame as parsed back from the output. */
struct gframe {
    uint64_t o, n;
    unsigned d;
    double x, w;
    int y;
    char title[256];
    int r, g, b;
};

/* Parses every frame of the output; returns how many (at most max). */
static size_t parse_frames(const char *svg, struct gframe *out, size_t max)
{
    size_t k = 0;
    for (const char *q = svg; (q = strstr(q, "<g data-o=")) != NULL && k < max; q++) {
        struct gframe *g = &out[k];
        memset(g, 0, sizeof(*g));
        REQUIRE(sscanf(q, "<g data-o=\"%" SCNu64 "\" data-n=\"%" SCNu64 "\" data-d=\"%u\">", &g->o, &g->n,
                       &g->d) == 3);
        const char *t = strstr(q, "<title>") + 7, *te = strstr(t, "</title>");
        size_t tl = (size_t)(te - t) < sizeof(g->title) - 1 ? (size_t)(te - t) : sizeof(g->title) - 1;
        memcpy(g->title, t, tl);
        const char *r = strstr(te, "<rect ");
        REQUIRE(sscanf(r, "<rect x=\"%lf\" y=\"%d\" width=\"%lf\"", &g->x, &g->y, &g->w) == 3);
        const char *fill = strstr(r, "fill=\"rgb(");
        REQUIRE(fill && sscanf(fill, "fill=\"rgb(%d,%d,%d)\"", &g->r, &g->g, &g->b) == 3);
        k++;
    }
    return k;
}

static const struct gframe *find_frame(const struct gframe *fr, size_t n, const char *title_prefix)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(fr[i].title, title_prefix, strlen(title_prefix)) == 0)
            return &fr[i];
    return NULL;
}

/* Adds "a;b;c" (root first) with count samples to thread t (no thread roots). */
static void add_folded(struct profile *p, uint32_t t, const char *stack, uint64_t count)
{
    uint32_t ids[64];
    size_t n = 0;
    char *copy = xstrdup(stack), *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok && n < 64; tok = strtok_r(NULL, ";", &save))
        ids[n++] = profile_frame(p, tok);
    profile_add(p, t, ids, n, count);
    free(copy);
}

/* A copy of p built in reverse: stacks, frames and threads all added in another order. */
static void rebuild_reversed(const struct profile *p, struct profile *q)
{
    profile_init(q);
    q->thread_roots = p->thread_roots;
    for (size_t i = p->nframes; i-- > 0;)
        profile_frame(q, p->frames[i].label);
    uint32_t *tmap = xcalloc(p->nthreads + 1, sizeof(*tmap));
    for (size_t i = p->nthreads; i-- > 0;)
        tmap[i] = profile_thread(q, p->threads[i].name, p->threads[i].tid);
    for (size_t i = p->nstacks; i-- > 0;) {
        const struct prof_stack *s = &p->stacks[i];
        uint32_t ids[64];
        REQUIRE(s->len <= 64);
        for (uint32_t j = 0; j < s->len; j++)
            ids[j] = profile_frame(q, p->frames[p->ids[s->off + j]].label);
        profile_add(q, tmap[s->thread], ids, s->len, s->count);
    }
    free(tmap);
    q->meta = p->meta;
    q->meta.title = p->meta.title ? xstrdup(p->meta.title) : NULL;
}

/*
 * The base of the differential golden file: the fixture's stacks with the
 * main thread's busy loop smaller and the worker idle more, plus a stack the
 * new profile no longer has.
 */
static void diff_base(struct profile *b)
{
    golden_fixture(b);
    for (size_t i = 0; i < b->nstacks; i++) {
        struct prof_stack *s = &b->stacks[i];
        const char *leaf = b->frames[b->ids[s->off + s->len - 1]].label;
        uint64_t was = s->count;
        if (strcmp(leaf, "busy (/srv/app.py:5)") == 0)
            s->count = 12;
        else if (strcmp(leaf, "[idle]") == 0)
            s->count = 45;
        b->total += s->count - was;
    }
    uint32_t ids[4] = {b->threads[0].frame, profile_frame(b, "<module> (/srv/app.py:30)"),
                       profile_frame(b, "main (/srv/app.py:25)"), profile_frame(b, "old (/srv/app.py:50)")};
    profile_add(b, 0, ids, 4, 9);
}

/* ---- golden files -------------------------------------------------------------- */

TEST(golden_fixture_svg)
{
    struct profile p;
    golden_fixture(&p);
    size_t n;
    char *svg = render(&p, NULL, &n);
    golden_check("fixture.svg", svg, n);
    free(svg);
    profile_release(&p);
}

TEST(golden_fixture_reverse_svg)
{
    struct profile p;
    golden_fixture(&p);
    struct svg_opts o = {1, NULL, 0};
    size_t n;
    char *svg = render(&p, &o, &n);
    golden_check("fixture-reverse.svg", svg, n);
    free(svg);
    profile_release(&p);
}

TEST(golden_fixture_diff_svg)
{
    struct profile p, b;
    golden_fixture(&p);
    diff_base(&b);
    struct svg_opts o = {0, &b, 0};
    size_t n;
    char *svg = render(&p, &o, &n);
    golden_check("fixture-diff.svg", svg, n);
    free(svg);
    profile_release(&b);
    profile_release(&p);
}

/* ---- structure ----------------------------------------------------------------- */

TEST(deterministic_whatever_the_insertion_order)
{
    struct profile p, q;
    golden_fixture(&p);
    rebuild_reversed(&p, &q);
    CHECK(p.frames[0].label && strcmp(p.frames[0].label, q.frames[0].label) != 0);
    for (int reverse = 0; reverse <= 1; reverse++) {
        struct svg_opts o = {reverse, NULL, 0};
        size_t n1, n2;
        char *a = render(&p, &o, &n1), *b = render(&q, &o, &n2);
        CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
        free(a);
        free(b);
    }
    /* And the differential graph, with either profile as the base. */
    struct svg_opts o1 = {0, &q, 0}, o2 = {0, &p, 0};
    size_t n1, n2;
    char *a = render(&p, &o1, &n1), *b = render(&q, &o2, &n2);
    CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
    profile_release(&q);
    profile_release(&p);
}

TEST(fixture_frames_and_widths)
{
    struct profile p;
    golden_fixture(&p);
    char *svg = render(&p, NULL, NULL);
    struct gframe fr[64];
    size_t n = parse_frames(svg, fr, 64);
    /* all, 2 threads, and every distinct path: 24 nodes in the fixture's tree. */
    CHECK_INT(n, 24);
    CHECK_INT(count_of(svg, "<rect"), n + 1); /* and the background */
    const struct gframe *all = find_frame(fr, n, "all (94 samples, 100.00%)");
    REQUIRE(all);
    CHECK(all->x == 10 && all->w == 1180 && all->d == 0);
    const struct gframe *busy = find_frame(fr, n, "busy (/srv/app.py:5) (40 samples, 42.55%)");
    REQUIRE(busy);
    CHECK(busy->w > 502.1 && busy->w < 502.2); /* 40 / 94 * 1180 */
    CHECK_INT(busy->d, 4);
    /* Bottom-up: deeper frames are higher up. */
    CHECK(busy->y < all->y);
    CHECK(strstr(svg, "<text id=\"title\" x=\"600\" y=\"24\" text-anchor=\"middle\">"
                      "python3 /srv/app.py (pid 4242)</text>"));
    /* 1795000000 s after the epoch (golden.h's comment says 08:26:40Z, which is off). */
    CHECK(strstr(svg, "started 2026-11-18T11:06:40Z \xc2\xb7 0.94 s \xc2\xb7 100 Hz \xc2\xb7 mode cpu "
                      "\xc2\xb7 94 samples"));
    /* Children by label: "thread MainThread" left of "thread worker-1". */
    const struct gframe *t0 = find_frame(fr, n, "thread MainThread (4242)");
    const struct gframe *t1 = find_frame(fr, n, "thread worker-1 (4250)");
    REQUIRE(t0 && t1);
    CHECK(t0->x < t1->x && t0->o == 0 && t1->o == 63);
    free(svg);

    struct svg_opts o = {1, NULL, 600};
    svg = render(&p, &o, NULL);
    n = parse_frames(svg, fr, 64);
    all = find_frame(fr, n, "all ");
    busy = find_frame(fr, n, "busy (/srv/app.py:5)");
    REQUIRE(all && busy);
    CHECK(all->w == 580 && strstr(svg, "width=\"600\""));
    CHECK(busy->y > all->y); /* icicle */
    free(svg);
    profile_release(&p);
}

TEST(labels_cut_to_fit)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 1);
    add_folded(&p, t, "a_rather_long_function_name_that_cannot_fit (/srv/m.py:1)", 2);
    add_folded(&p, t, "tiny (/srv/m.py:2)", 1);
    add_folded(&p, t, "rest (/srv/m.py:3)", 97);
    struct svg_opts o = {0, NULL, 0};
    char *svg = render(&p, &o, NULL);
    /* 2 / 100 * 1180 = 23.6 px: room for 2 glyphs only, so no label at all. */
    CHECK(!strstr(svg, "\">a_r"));
    CHECK(!strstr(svg, "\">ti"));
    free(svg);
    o.width = 20000; /* 2% is 399.6 px: 54 glyphs, 53 and an ellipsis */
    svg = render(&p, &o, NULL);
    CHECK(strstr(svg, ">a_rather_long_function_name_that_cannot_fit (/srv/m.p\xe2\x80\xa6</text>"));
    CHECK(strstr(svg, ">tiny (/srv/m.py:2)</text>"));
    free(svg);
    profile_release(&p);
}

TEST(wide_glyphs_take_two_cells)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 1);
    /* 80 of 1180 samples: 80 px, room for 10 cells; each of these glyphs takes 2. */
    add_folded(&p, t, "\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d\xe5\x89\x8d", 80);
    add_folded(&p, t, "z", 1100);
    char *svg = render(&p, NULL, NULL);
    CHECK(strstr(svg, "\">\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d\xe5\x89\x8d\xe2\x80\xa6</text>"));
    free(svg);
    profile_release(&p);
}

TEST(no_samples_and_no_metadata)
{
    struct profile p;
    profile_init(&p);
    size_t n;
    char *svg = render(&p, NULL, &n);
    CHECK(strstr(svg, "No samples"));
    CHECK(strstr(svg, ">pystrobe flame graph</text>"));
    CHECK(strstr(svg, "\">0 samples</text>"));
    CHECK(strstr(svg, "</svg>\n"));
    free(svg);
    add_folded(&p, profile_thread(&p, NULL, 1), "f (/srv/m.py:1)", 3);
    svg = render(&p, NULL, &n);
    CHECK(strstr(svg, "<text id=\"subtitle\" x=\"600\" y=\"42\" text-anchor=\"middle\">3 samples</text>"));
    free(svg);
    profile_release(&p);
}

/* ---- hostile input -------------------------------------------------------------- */

TEST(hostile_names_only_escaped)
{
    struct profile p;
    golden_fixture(&p);
    free(p.meta.title);
    p.meta.title = xstrdup("<script>alert(2)</script> & \"t\"");
    char *svg = render(&p, NULL, NULL);
    CHECK_INT(count_of(svg, "<script"), 1);
    CHECK_INT(count_of(svg, "</script>"), 1);
    CHECK_INT(count_of(svg, "</svg>"), 1);
    CHECK_INT(count_of(svg, "alert("), 2 + 0);
    CHECK(!strstr(svg, "<lambda>") && !strstr(svg, "<module>"));
    CHECK(strstr(svg, "&lt;lambda&gt;") && strstr(svg, "&lt;module&gt;"));
    CHECK(strstr(svg, "&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt; "
                      "(/srv/x&amp;y &quot;q&quot; &#39;a&#39;.py:1)"));
    CHECK(strstr(svg, ">&lt;script&gt;alert(2)&lt;/script&gt; &amp; &quot;t&quot;</text>"));
    /* Every '&' before the script starts an entity. */
    const char *script = strstr(svg, "<script");
    REQUIRE(script);
    for (const char *q = svg; (q = strchr(q, '&')) != NULL && q < script; q++)
        CHECK(strncmp(q, "&amp;", 5) == 0 || strncmp(q, "&lt;", 4) == 0 || strncmp(q, "&gt;", 4) == 0 ||
              strncmp(q, "&quot;", 6) == 0 || strncmp(q, "&#39;", 5) == 0);
    /* Frame data stays out of the script. */
    CHECK(!strstr(script, "srv") && !strstr(script, "data-o=\""));
    free(svg);
    profile_release(&p);
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n) {
        size_t len = utf8_valid_len(p, n);
        if (len == 0)
            return 0;
        p += len;
        n -= len;
    }
    return 1;
}

TEST(invalid_utf8_becomes_replacement_characters)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, "bad\xff", 1);
    add_folded(&p, t, "bad\xc3\x28name\xed\xa0\x80 (/srv/\xff\xfe.py:1)", 5);
    add_folded(&p, t, "cut\xe2\x82 (/srv/a.py:2)", 5);
    free(p.meta.title);
    p.meta.title = xstrdup("title \xf8\x88\x80\x80\x80 \x01 \xef\xbf\xbf");
    size_t n;
    char *svg = render(&p, NULL, &n);
    CHECK(valid_utf8(svg, n));
    CHECK_INT(strlen(svg), n);
#define FFFD "\xef\xbf\xbd"
    CHECK(strstr(svg, "bad" FFFD "(name" FFFD FFFD FFFD " (/srv/" FFFD FFFD ".py:1)"));
    CHECK(strstr(svg, ">title " FFFD FFFD FFFD FFFD FFFD " ? " FFFD "</text>"));
    free(svg);
    profile_release(&p);
}

/* ---- size ------------------------------------------------------------------------ */

TEST(sub_pixel_frames_merge)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 1);
    char buf[128];
    for (int i = 0; i < 10000; i++) {
        snprintf(buf, sizeof(buf), "main (/srv/m.py:1);leaf_%05d (/srv/m.py:%d);deeper (/srv/m.py:9)", i,
                 i + 10);
        add_folded(&p, t, buf, 1);
    }
    add_folded(&p, t, "main (/srv/m.py:1);big (/srv/m.py:2)", 30000);
    add_folded(&p, t, "other (/srv/m.py:3)", 60000);
    size_t n;
    char *svg = render(&p, NULL, &n);
    struct gframe fr[32];
    size_t nf = parse_frames(svg, fr, 32);
    CHECK(nf < 10);
    CHECK_INT(count_of(svg, "<rect"), nf + 1);
    CHECK(n < 20000);
    const struct gframe *main_ = find_frame(fr, nf, "main (/srv/m.py:1)");
    const struct gframe *big = find_frame(fr, nf, "big (/srv/m.py:2)");
    const struct gframe *merged =
        find_frame(fr, nf, "[10000 frames narrower than a pixel] (10000 samples, 10.00%)");
    REQUIRE(main_ && big && merged);
    CHECK(merged->d == 2 && big->d == 2);
    CHECK(merged->o == big->o + big->n && merged->n == 10000);
    double sum = big->w + merged->w;
    CHECK(sum > main_->w - 0.02 && sum < main_->w + 0.02);
    CHECK(merged->x > big->x + big->w - 0.02 && merged->x < big->x + big->w + 0.02);
    free(svg);
    profile_release(&p);
}

TEST(lone_narrow_frame_drawn_as_itself)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 1);
    add_folded(&p, t, "main (/srv/m.py:1);rare (/srv/m.py:2);rarer (/srv/m.py:3)", 1);
    add_folded(&p, t, "main (/srv/m.py:1);common (/srv/m.py:4)", 9999);
    char *svg = render(&p, NULL, NULL);
    CHECK(strstr(svg, "<title>rare (/srv/m.py:2) (1 sample, 0.01%)</title>"));
    CHECK(!strstr(svg, "rarer"));
    CHECK(!strstr(svg, "narrower than a pixel"));
    free(svg);
    profile_release(&p);
}

TEST(deep_stack)
{
    struct profile p;
    profile_init(&p);
    uint32_t t = profile_thread(&p, NULL, 1);
    enum { DEPTH = 5000 };
    uint32_t *ids = xmalloc(DEPTH * sizeof(*ids));
    char buf[64];
    for (int i = 0; i < DEPTH; i++) {
        snprintf(buf, sizeof(buf), "f%d (/srv/m.py:%d)", i % 7, i % 7);
        ids[i] = profile_frame(&p, buf);
    }
    profile_add(&p, t, ids, DEPTH, 3);
    size_t n;
    char *svg = render(&p, NULL, &n);
    CHECK_INT(count_of(svg, "<g data-o="), DEPTH + 1);
    free(svg);
    free(ids);
    profile_release(&p);
}

/* ---- colors ---------------------------------------------------------------------- */

static double hue(const struct gframe *g)
{
    double r = g->r / 255.0, gg = g->g / 255.0, b = g->b / 255.0;
    double mx = MAX(r, MAX(gg, b)), mn = MIN(r, MIN(gg, b)), c = mx - mn, h;
    if (c == 0)
        return -1;
    if (mx == r)
        h = (gg - b) / c;
    else if (mx == gg)
        h = (b - r) / c + 2;
    else
        h = (r - gg) / c + 4;
    h *= 60;
    return h < 0 ? h + 360 : h;
}

TEST(colors_by_kind_and_package)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "T", 1);
    const char *stacks[] = {
        "thread T (1);a (/v/lib/python3.12/site-packages/requests/api.py:1);"
        "b (/v/lib/python3.12/site-packages/requests/sessions.py:2)",
        "thread T (1);c (/usr/lib/python3.12/json/decoder.py:3);d (/usr/lib/python3.12/json/scanner.py:4)",
        "thread T (1);e (/srv/app.py:1);zlib_compress (zlibmodule.c:3);deflate (libz.so.1)",
        "thread T (1);[idle]",
    };
    for (size_t i = 0; i < ARRAY_SIZE(stacks); i++)
        add_folded(&p, t, stacks[i], 10);
    char *svg = render(&p, NULL, NULL);
    struct gframe fr[32];
    size_t n = parse_frames(svg, fr, 32);
    const struct gframe *a = find_frame(fr, n, "a "), *b = find_frame(fr, n, "b ");
    const struct gframe *c = find_frame(fr, n, "c "), *d = find_frame(fr, n, "d ");
    const struct gframe *e = find_frame(fr, n, "e "), *z = find_frame(fr, n, "zlib_");
    const struct gframe *idle = find_frame(fr, n, "[idle]"), *th = find_frame(fr, n, "thread T");
    REQUIRE(a && b && c && d && e && z && idle && th);
    /* One hue per package, warm for Python. */
    CHECK(hue(a) - hue(b) < 2.5 && hue(b) - hue(a) < 2.5);
    CHECK(hue(c) - hue(d) < 2.5 && hue(d) - hue(c) < 2.5);
    CHECK(hue(a) >= 0 && hue(a) <= 60 && hue(c) >= 0 && hue(c) <= 60 && hue(e) >= 0 && hue(e) <= 60);
    /* Native: blue/teal.  Markers: grey.  Thread roots: their own. */
    CHECK(hue(z) >= 160 && hue(z) <= 220);
    CHECK(idle->r == idle->g && idle->g == idle->b);
    CHECK(hue(th) > 240 && hue(th) < 300);
    free(svg);
    profile_release(&p);
}

TEST(diff_colors_and_tooltips)
{
    struct profile p, b;
    golden_fixture(&p);
    diff_base(&b);
    struct svg_opts o = {0, &b, 0};
    char *svg = render(&p, &o, NULL);
    CHECK(strstr(svg, ">Differential flame graph: python3 /srv/app.py (pid 4242)</text>"));
    struct gframe fr[64];
    size_t n = parse_frames(svg, fr, 64);
    const struct gframe *busy = find_frame(fr, n, "busy (/srv/app.py:5) ");
    const struct gframe *idle = find_frame(fr, n, "[idle] ");
    const struct gframe *all = find_frame(fr, n, "all ");
    const struct gframe *lambda = find_frame(fr, n, "&lt;lambda&gt; (/srv/worker.py:10) ");
    REQUIRE(busy && idle && all && lambda);
    /* busy: 12/100 -> 40/94 = 42.55%, the largest change: full red. */
    CHECK_STR(busy->title, "busy (/srv/app.py:5) (40 samples, 12.00% \xe2\x86\x92 42.55%, +30.55 pp)");
    CHECK(busy->r == 255 && busy->g == 50 && busy->b == 50);
    /* [idle]: 45/100 -> 20/94 = 21.28%: blue. */
    CHECK(idle->b == 255 && idle->r < 120 && idle->r == idle->g);
    CHECK(strstr(idle->title, "45.00% \xe2\x86\x92 21.28%, -23.72 pp"));
    CHECK(all->r == 250 && all->g == 250 && all->b == 250);
    /* Unchanged count, smaller base total: a little growth, pale red. */
    CHECK(lambda->r == 255 && lambda->g > 200 && lambda->g == lambda->b);
    free(svg);
    profile_release(&b);
    profile_release(&p);
}

/* ---- errors ----------------------------------------------------------------------- */

static ssize_t failing_write(void *cookie, const char *buf, size_t size)
{
    (void)cookie;
    (void)buf;
    (void)size;
    errno = ENOSPC;
    return 0; /* fopencookie: 0 is an error, a negative count is not allowed */
}

TEST(write_error_reported)
{
    struct profile p;
    golden_fixture(&p);
    cookie_io_functions_t io = {NULL, failing_write, NULL, NULL};
    FILE *f = fopencookie(NULL, "w", io);
    REQUIRE(f);
    struct svg_opts o = {0, NULL, 0};
    int rc = svg_write(f, &p, &o);
    CHECK(rc < 0);
    CHECK_INT(rc, -ENOSPC);
    fclose(f);
    f = fopen("/dev/full", "w");
    if (f) {
        CHECK_INT(svg_write(f, &p, &o), -ENOSPC);
        fclose(f);
    }
    profile_release(&p);
}
