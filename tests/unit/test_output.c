/*
 * Output side: interned names, the aggregate, labels, folded stacks (exact
 * text), JSON string escaping, and atomic output files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "test.h"

#include "common/util.h"
#include "output/agg.h"
#include "output/folded.h"
#include "output/json.h"
#include "output/label.h"
#include "output/outfile.h"
#include "symbolizer/names.h"

/* ---- names -------------------------------------------------------------------- */

TEST(names_strings_interned)
{
    struct names n;
    names_init(&n);
    CHECK_STR(names_str_get(&n, NAMES_EMPTY), "");
    CHECK_INT(names_str(&n, "", 0), NAMES_EMPTY);
    uint32_t a = names_str(&n, "main", 4), b = names_str(&n, "mainly", 6);
    CHECK(a != b && a != NAMES_EMPTY);
    CHECK_INT(names_str(&n, "mainly", 4), a); /* a prefix of a longer buffer */
    CHECK_INT(names_str(&n, "mainly", 6), b);
    uint32_t z = names_str(&n, "ab\0cd", 5), y = names_str(&n, "ab", 2);
    CHECK(z != y);
    CHECK_INT(names_str(&n, "ab\0cd", 5), z);
    CHECK_STR(names_str_get(&n, a), "main");
    CHECK_STR(names_str_get(&n, 100000), "");
    /* Many strings: ids stay dense and lookups stable across growth. */
    uint32_t ids[2000];
    char buf[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(buf, sizeof(buf), "s%d", i);
        ids[i] = names_str(&n, buf, strlen(buf));
    }
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        snprintf(buf, sizeof(buf), "s%d", i);
        ok &= names_str(&n, buf, strlen(buf)) == ids[i] && strcmp(names_str_get(&n, ids[i]), buf) == 0;
        ok &= i == 0 || ids[i] == ids[i - 1] + 1;
    }
    CHECK(ok);
    names_release(&n);
}

TEST(names_functions_and_frames)
{
    struct names n;
    names_init(&n);
    uint32_t f = names_str(&n, "f", 1), g = names_str(&n, "g", 1), file = names_str(&n, "m.py", 4);
    uint32_t ff = names_func(&n, f, file, 10);
    CHECK_INT(names_func(&n, f, file, 10), ff);
    CHECK(names_func(&n, f, file, 11) != ff);
    CHECK(names_func(&n, g, file, 10) != ff);
    CHECK(names_func(&n, f, NAMES_EMPTY, 10) != ff);
    CHECK_INT(names_func_get(&n, ff)->name, f);
    CHECK_INT(names_func_get(&n, ff)->file, file);
    CHECK_INT(names_func_get(&n, ff)->firstlineno, 10);
    uint32_t fr = names_frame(&n, ff, 12);
    CHECK_INT(names_frame(&n, ff, 12), fr);
    CHECK(names_frame(&n, ff, 13) != fr);
    CHECK(names_frame(&n, ff, -1) != fr);
    CHECK_INT(names_frame_get(&n, fr)->func, ff);
    CHECK_INT(names_frame_get(&n, fr)->line, 12);
    uint32_t lab = names_label_frame(&n, "[truncated]");
    CHECK_INT(names_label_frame(&n, "[truncated]"), lab);
    CHECK_INT(names_frame_get(&n, lab)->line, 0);
    CHECK_INT(names_func_get(&n, names_frame_get(&n, lab)->func)->file, NAMES_EMPTY);
    names_release(&n);
}

/* ---- aggregate ------------------------------------------------------------------ */

TEST(agg_merges_and_separates_threads)
{
    struct agg a;
    agg_init(&a);
    uint32_t t1 = agg_thread(&a, 101, 0x7f01), t2 = agg_thread(&a, 102, 0x7f02);
    CHECK_INT(t1, 0);
    CHECK_INT(t2, 1);
    /* The same thread again (another thread state for it): the same index;
     * another ident, or an unknown tid: another thread. */
    CHECK_INT(agg_thread(&a, 101, 0x7f01), t1);
    CHECK_INT(agg_thread(&a, 101, 0x7f03), 2);
    CHECK_INT(agg_thread(&a, 0, 0x7f04), 3);
    CHECK_INT(agg_thread(&a, 0, 0x7f04), 4);
    const uint32_t s1[] = {1, 2, 3}, s2[] = {1, 2}, s3[] = {1, 2, 4};
    agg_add(&a, t1, s1, 3, 1);
    agg_add(&a, t1, s1, 3, 2);
    agg_add(&a, t2, s1, 3, 5);
    agg_add(&a, t1, s2, 2, 1);
    agg_add(&a, t1, s3, 3, 1);
    agg_add(&a, t1, s1, 0, 7);
    CHECK_INT(a.nstacks, 5);
    CHECK_U64(a.total, 17);
    CHECK_INT(a.stacks[0].thread, t1);
    CHECK_U64(a.stacks[0].count, 3);
    CHECK_INT(a.stacks[0].len, 3);
    CHECK(memcmp(a.frames + a.stacks[0].off, s1, sizeof(s1)) == 0);
    CHECK_INT(a.stacks[1].thread, t2);
    CHECK_U64(a.stacks[1].count, 5);
    CHECK_INT(a.stacks[2].len, 2);
    CHECK_INT(a.stacks[4].len, 0);
    CHECK_U64(a.stacks[4].count, 7);
    agg_add(&a, t1, s2, 0, 1);
    CHECK_U64(a.stacks[4].count, 8);
    agg_thread_name(&a, t2, "worker");
    CHECK_STR(a.threads[t2].name, "worker");
    agg_thread_name(&a, t2, "renamed");
    CHECK_STR(a.threads[t2].name, "renamed");
    agg_thread_name(&a, 99, "ignored"); /* no such thread */
    CHECK(a.threads[t1].name == NULL);
    agg_release(&a);
}

/* The sampler's first stack may be empty (a 3.12 thread with only shim frames). */
TEST(agg_first_stack_empty)
{
    struct agg a;
    agg_init(&a);
    uint32_t t = agg_thread(&a, 7, 7);
    uint32_t scratch[1] = {0};
    agg_add(&a, t, scratch, 0, 1);
    agg_add(&a, t, scratch, 0, 2);
    CHECK_INT(a.nstacks, 1);
    CHECK_INT(a.stacks[0].len, 0);
    CHECK_U64(a.stacks[0].count, 3);
    const uint32_t one[] = {4};
    agg_add(&a, t, one, 1, 1);
    CHECK_INT(a.nstacks, 2);
    CHECK_INT(a.frames[a.stacks[1].off], 4);
    agg_release(&a);
}

TEST(agg_many_stacks)
{
    struct agg a;
    agg_init(&a);
    uint32_t t = agg_thread(&a, 1, 1);
    for (uint32_t round = 0; round < 3; round++)
        for (uint32_t i = 0; i < 3000; i++) {
            uint32_t st[3] = {i, i % 7, i * 3};
            agg_add(&a, t, st, 1 + i % 3, 1);
        }
    CHECK_INT(a.nstacks, 3000);
    CHECK_U64(a.total, 9000);
    int ok = 1;
    for (size_t i = 0; i < a.nstacks; i++)
        ok &= a.stacks[i].count == 3;
    CHECK(ok);
    agg_release(&a);
}

/* ---- labels ------------------------------------------------------------------------ */

static uint32_t frame_of(struct names *n, const char *name, const char *file, int first, int line)
{
    uint32_t f = names_func(n, names_str(n, name, strlen(name)), names_str(n, file, strlen(file)),
                            first);
    return names_frame(n, f, line);
}

TEST(label_frame_format_and_sanitising)
{
    struct names n;
    names_init(&n);
    struct strbuf sb = STRBUF_INIT;
    label_frame(&n, frame_of(&n, "<module>", "módulo_名前.py", 1, 7), &sb);
    CHECK_STR(sb_str(&sb), "<module> (módulo_名前.py:7)");
    sb_reset(&sb);
    label_frame(&n, frame_of(&n, "a;b\nc", "x;y\tz.py", 1, 3), &sb);
    CHECK_STR(sb_str(&sb), "a?b?c (x?y?z.py:3)");
    sb_reset(&sb);
    label_frame(&n, frame_of(&n, "del\x7f", "\r.py", 1, 0), &sb);
    CHECK_STR(sb_str(&sb), "del? (?.py:0)");
    sb_reset(&sb);
    label_frame(&n, frame_of(&n, "f", "g.py", 1, NAMES_LINE_UNKNOWN), &sb);
    CHECK_STR(sb_str(&sb), "f (g.py:?)");
    sb_reset(&sb);
    label_frame(&n, names_label_frame(&n, "thread busy (42)"), &sb);
    CHECK_STR(sb_str(&sb), "thread busy (42)");
    sb_reset(&sb);
    /* Appends: what is already in the buffer is kept (and not sanitised). */
    sb_adds(&sb, "x;");
    label_clean("a;b", &sb);
    CHECK_STR(sb_str(&sb), "x;a?b");
    sb_release(&sb);
    names_release(&n);
}

TEST(label_thread_format)
{
    struct strbuf sb = STRBUF_INIT;
    struct agg_thread t = {.proc = AGG_NO_PROC, .tid = 1234, .ident = 0x7f00aa};
    label_thread(&t, &sb);
    CHECK_STR(sb_str(&sb), "thread (1234)");
    sb_reset(&sb);
    t.name = (char *)"Main;Thread\n";
    label_thread(&t, &sb);
    CHECK_STR(sb_str(&sb), "thread Main?Thread? (1234)");
    sb_reset(&sb);
    t.tid = 0;
    t.name = (char *)"名前";
    label_thread(&t, &sb);
    CHECK_STR(sb_str(&sb), "thread 名前 (0x7f00aa)");
    sb_reset(&sb);
    /* The nth thread labelled alike. */
    label_thread_nth(&t, 2, &sb);
    CHECK_STR(sb_str(&sb), "thread 名前 (0x7f00aa #2)");
    sb_reset(&sb);
    t.tid = 1234;
    t.name = NULL;
    label_thread_nth(&t, 12, &sb);
    CHECK_STR(sb_str(&sb), "thread (1234 #12)");
    sb_reset(&sb);
    label_thread_nth(&t, 1, &sb);
    CHECK_STR(sb_str(&sb), "thread (1234)");
    sb_release(&sb);
}

/* ---- folded ---------------------------------------------------------------------------- */

static char *folded_text(const struct agg *a, const struct names *n, int threads)
{
    char *text = NULL;
    size_t len = 0;
    struct profile p;
    profile_init(&p);
    profile_from_agg(&p, a, n, threads);
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f != NULL);
    int ret = folded_write(f, &p);
    fclose(f);
    profile_release(&p);
    CHECK_INT(ret, 0);
    return text;
}

struct folded_fixture {
    struct names n;
    struct agg a;
};

static void fixture(struct folded_fixture *x)
{
    struct names *n = &x->n;
    names_init(n);
    agg_init(&x->a);
    uint32_t m = frame_of(n, "main", "m.py", 1, 5), w = frame_of(n, "work", "m.py", 10, 12);
    uint32_t l21 = frame_of(n, "leaf", "m.py", 20, 21), l22 = frame_of(n, "leaf", "m.py", 20, 22);
    /* Another function that labels the same: same name, file and line. */
    uint32_t l21b = frame_of(n, "leaf", "m.py", 19, 21);
    uint32_t ta = agg_thread(&x->a, 101, 0x1), tb = agg_thread(&x->a, 102, 0x2);
    agg_thread_name(&x->a, ta, "MainThread");
    agg_thread_name(&x->a, tb, "w;1\n");
    const uint32_t s1[] = {m, w, l21}, s2[] = {m, w}, s3[] = {m, w, l22}, s4[] = {m, w, l21b};
    agg_add(&x->a, tb, s1, 3, 2);
    agg_add(&x->a, ta, s1, 3, 3);
    agg_add(&x->a, ta, s2, 2, 1);
    agg_add(&x->a, tb, s3, 3, 1);
    agg_add(&x->a, ta, s4, 3, 4);
    agg_add(&x->a, ta, s1, 0, 6); /* a thread sampled with no Python frames */
}

static void fixture_release(struct folded_fixture *x)
{
    agg_release(&x->a);
    names_release(&x->n);
}

TEST(folded_merged_across_threads)
{
    struct folded_fixture x;
    fixture(&x);
    char *text = folded_text(&x.a, &x.n, 0);
    CHECK_STR(text, "main (m.py:5);work (m.py:12) 1\n"
                    "main (m.py:5);work (m.py:12);leaf (m.py:21) 9\n"
                    "main (m.py:5);work (m.py:12);leaf (m.py:22) 1\n");
    free(text);
    fixture_release(&x);
}

TEST(folded_with_thread_roots)
{
    struct folded_fixture x;
    fixture(&x);
    char *text = folded_text(&x.a, &x.n, 1);
    CHECK_STR(text, "thread MainThread (101) 6\n"
                    "thread MainThread (101);main (m.py:5);work (m.py:12) 1\n"
                    "thread MainThread (101);main (m.py:5);work (m.py:12);leaf (m.py:21) 7\n"
                    "thread w?1? (102);main (m.py:5);work (m.py:12);leaf (m.py:21) 2\n"
                    "thread w?1? (102);main (m.py:5);work (m.py:12);leaf (m.py:22) 1\n");
    free(text);
    fixture_release(&x);
}

/* How many distinct first frames (thread roots) the lines of folded text have. */
static size_t distinct_roots(const char *text)
{
    const char *root[64];
    size_t len[64], n = 0;
    for (const char *l = text; *l;) {
        const char *end = strchr(l, '\n');
        REQUIRE(end != NULL);
        size_t k = strcspn(l, ";\n");
        if (l + k == end) { /* a root alone: up to the count */
            const char *sp = memrchr(l, ' ', (size_t)(end - l));
            REQUIRE(sp != NULL);
            k = (size_t)(sp - l);
        }
        size_t i = 0;
        while (i < n && !(len[i] == k && memcmp(root[i], l, k) == 0))
            i++;
        if (i == n) {
            REQUIRE(n < 64);
            root[n] = l;
            len[n++] = k;
        }
        l = end + 1;
    }
    return n;
}

/*
 * A thread is one OS thread for its life, however it is labelled: threads
 * whose tid was never told (labelled by their ident, which glibc gives the
 * next thread once one ends), and a tid taken again by a new thread (another
 * ident), are threads of their own with roots of their own, never merged
 * into another thread's root because their labels would read the same.  The
 * summary counts the aggregate's threads: the profile has as many roots.
 */
TEST(folded_one_root_per_thread)
{
    struct names n;
    struct agg a;
    names_init(&n);
    agg_init(&a);
    uint32_t f = frame_of(&n, "work", "w.py", 1, 2);
    /* Three threads in turn behind one struct pthread, none with a known tid. */
    uint32_t r1 = agg_thread(&a, 0, 0x7f01), r2 = agg_thread(&a, 0, 0x7f01);
    uint32_t r3 = agg_thread(&a, 0, 0x7f01);
    /* Two named alike behind another, and one named otherwise. */
    uint32_t w1 = agg_thread(&a, 0, 0x7f02), w2 = agg_thread(&a, 0, 0x7f02);
    uint32_t o1 = agg_thread(&a, 0, 0x7f02);
    agg_thread_name(&a, w1, "churn");
    agg_thread_name(&a, w2, "churn");
    agg_thread_name(&a, o1, "other");
    /* A tid taken again by a new thread of the same name. */
    uint32_t t1 = agg_thread(&a, 301, 0x7f03), t2 = agg_thread(&a, 301, 0x7f04);
    agg_thread_name(&a, t1, "churn");
    agg_thread_name(&a, t2, "churn");
    CHECK_INT(a.nthreads, 8);
    const uint32_t s[] = {f};
    uint32_t all[] = {r1, r2, r3, w1, w2, o1, t1, t2};
    for (size_t i = 0; i < 8; i++)
        agg_add(&a, all[i], s, 1, i + 1);
    char *text = folded_text(&a, &n, 1);
    CHECK_INT(distinct_roots(text), a.nthreads);
    /* The first keeps the plain label, those after it are numbered in order. */
    CHECK_STR(text, "thread (0x7f01 #2);work (w.py:2) 2\n"
                    "thread (0x7f01 #3);work (w.py:2) 3\n"
                    "thread (0x7f01);work (w.py:2) 1\n"
                    "thread churn (0x7f02 #2);work (w.py:2) 5\n"
                    "thread churn (0x7f02);work (w.py:2) 4\n"
                    "thread churn (301 #2);work (w.py:2) 8\n"
                    "thread churn (301);work (w.py:2) 7\n"
                    "thread other (0x7f02);work (w.py:2) 6\n");
    free(text);
    /* Without roots the stacks merge, as threads always do there. */
    text = folded_text(&a, &n, 0);
    CHECK_STR(text, "work (w.py:2) 36\n");
    free(text);
    agg_release(&a);
    names_release(&n);
}

/*
 * A thread registered before its tid was found, and known since to have been
 * that tid's all along, is labelled by its tid, the samples it has included;
 * where that tid and ident already have a root, the samples to come go there.
 */
TEST(agg_thread_tid_learned_later)
{
    struct names n;
    struct agg a;
    names_init(&n);
    agg_init(&a);
    uint32_t f = frame_of(&n, "work", "w.py", 1, 2);
    const uint32_t s[] = {f};
    uint32_t r = agg_thread(&a, 0, 0x7f01);
    agg_thread_name(&a, r, "main");
    agg_add(&a, r, s, 1, 3);
    CHECK_INT(agg_thread_set_tid(&a, r, 4242), r);
    agg_add(&a, r, s, 1, 2);
    /* Known already: nothing changes. */
    CHECK_INT(agg_thread_set_tid(&a, r, 4343), r);
    CHECK_INT(a.threads[r].tid, 4242);
    /* Another root had that tid and ident: it takes the samples to come. */
    uint32_t w1 = agg_thread(&a, 77, 0x7f02);
    uint32_t w2 = agg_thread(&a, 0, 0x7f02);
    agg_thread_name(&a, w1, "w");
    agg_thread_name(&a, w2, "w");
    agg_add(&a, w2, s, 1, 1);
    CHECK_INT(agg_thread_set_tid(&a, w2, 77), w1);
    CHECK_INT(a.threads[w2].tid, 0);
    agg_add(&a, w1, s, 1, 4);
    /* Bounds. */
    CHECK_INT(agg_thread_set_tid(&a, 99, 5), 99);
    CHECK_INT(agg_thread_set_tid(&a, w2, 0), w2);
    CHECK_INT(a.threads[w2].tid, 0);
    char *text = folded_text(&a, &n, 1);
    CHECK_STR(text, "thread main (4242);work (w.py:2) 5\n"
                    "thread w (0x7f02);work (w.py:2) 1\n"
                    "thread w (77);work (w.py:2) 4\n");
    free(text);
    agg_release(&a);
    names_release(&n);
}

/* Names that differ only in what a label cannot show still give two roots. */
TEST(folded_threads_named_apart_labelled_alike)
{
    struct names n;
    struct agg a;
    names_init(&n);
    agg_init(&a);
    uint32_t f = frame_of(&n, "work", "w.py", 1, 2);
    uint32_t t1 = agg_thread(&a, 0, 0x7f01), t2 = agg_thread(&a, 0, 0x7f01);
    uint32_t t3 = agg_thread(&a, 7, 0x7f02), t4 = agg_thread(&a, 7, 0x7f03);
    agg_thread_name(&a, t1, "w;1");
    agg_thread_name(&a, t2, "w?1");
    agg_thread_name(&a, t3, "x\n");
    agg_thread_name(&a, t4, "x\t");
    const uint32_t s[] = {f};
    agg_add(&a, t1, s, 1, 1);
    agg_add(&a, t2, s, 1, 2);
    agg_add(&a, t3, s, 1, 3);
    agg_add(&a, t4, s, 1, 4);
    char *text = folded_text(&a, &n, 1);
    CHECK_INT(distinct_roots(text), a.nthreads);
    CHECK_STR(text, "thread w?1 (0x7f01 #2);work (w.py:2) 2\n"
                    "thread w?1 (0x7f01);work (w.py:2) 1\n"
                    "thread x? (7 #2);work (w.py:2) 4\n"
                    "thread x? (7);work (w.py:2) 3\n");
    free(text);
    agg_release(&a);
    names_release(&n);
}

TEST(folded_order_does_not_depend_on_insertion)
{
    struct names n;
    names_init(&n);
    uint32_t fr[4];
    const char *nm[4] = {"d", "b", "c", "a"};
    for (int i = 0; i < 4; i++)
        fr[i] = frame_of(&n, nm[i], "z.py", 1, 1);
    struct agg a1, a2;
    agg_init(&a1);
    agg_init(&a2);
    uint32_t t1 = agg_thread(&a1, 1, 1), t2 = agg_thread(&a2, 1, 1);
    for (int i = 0; i < 4; i++)
        agg_add(&a1, t1, &fr[i], 1, (uint64_t)i + 1);
    for (int i = 3; i >= 0; i--)
        agg_add(&a2, t2, &fr[i], 1, (uint64_t)i + 1);
    char *x = folded_text(&a1, &n, 0), *y = folded_text(&a2, &n, 0);
    CHECK_STR(x, y);
    CHECK_STR(x, "a (z.py:1) 4\nb (z.py:1) 2\nc (z.py:1) 3\nd (z.py:1) 1\n");
    free(x);
    free(y);
    agg_release(&a1);
    agg_release(&a2);
    names_release(&n);
}

TEST(folded_empty)
{
    struct names n;
    struct agg a;
    names_init(&n);
    agg_init(&a);
    char *text = folded_text(&a, &n, 1);
    CHECK_STR(text, "");
    free(text);
    agg_release(&a);
    names_release(&n);
}

/* ---- json ------------------------------------------------------------------------------ */

static void check_json(const char *in, const char *want)
{
    struct strbuf sb = STRBUF_INIT;
    json_string(&sb, in);
    if (strcmp(sb_str(&sb), want) != 0)
        TEST_FAILF("json_string: got %s, expected %s", sb_str(&sb), want);
    sb_release(&sb);
}

TEST(json_escaping)
{
    check_json("", "\"\"");
    check_json("plain", "\"plain\"");
    check_json("a\"b", "\"a\\\"b\"");
    check_json("back\\slash", "\"back\\\\slash\"");
    check_json("\n\r\t", "\"\\n\\r\\t\"");
    check_json("\x01\x1f", "\"\\u0001\\u001f\"");
    check_json("\x7f", "\"\\u007f\"");
    check_json("<module>", "\"\\u003cmodule>\"");
    check_json("</script>", "\"\\u003c/script>\"");
    check_json("名前 \xf0\xa0\x80\x80 é", "\"名前 \xf0\xa0\x80\x80 é\"");
    /* Appends to what is there. */
    struct strbuf sb = STRBUF_INIT;
    sb_adds(&sb, "{\"k\":");
    json_string(&sb, "v");
    CHECK_STR(sb_str(&sb), "{\"k\":\"v\"");
    sb_release(&sb);
}

/* ---- outfile ------------------------------------------------------------------------------ */

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_output.XXXXXX", t && *t ? t : "/tmp");
    REQUIRE(mkdtemp(tmpdir) != NULL);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char p[512];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
                if (unlink(p) < 0)
                    rmdir(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = xcalloc(4096, 1);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

TEST(outfile_commit_renames_atomically)
{
    make_tmpdir();
    char dest[512];
    snprintf(dest, sizeof(dest), "%s/out.folded", tmpdir);
    write_file(dest, "old\n");
    struct outfile o;
    struct pserr err = {0};
    REQUIRE(chmod(dest, 0640) == 0);
    struct stat old_st;
    REQUIRE(stat(dest, &old_st) == 0);
    REQUIRE(outfile_open(&o, dest, &err) == 0);
    /* The destination, and the temporary file only where it cannot be unnamed. */
    CHECK_INT(count_entries(tmpdir), o.tmp ? 2 : 1);
    fputs("new contents\n", o.f);
    fflush(o.f);
    /* Until the commit, the destination keeps its old contents. */
    char *before = slurp(dest);
    CHECK_STR(before, "old\n");
    free(before);
    CHECK_INT(outfile_commit(&o, &err), 0);
    char *after = slurp(dest);
    CHECK_STR(after, "new contents\n");
    free(after);
    CHECK_INT(count_entries(tmpdir), 1);
    /* Replaced (a new inode), keeping the replaced file's mode. */
    struct stat st;
    REQUIRE(stat(dest, &st) == 0);
    CHECK(st.st_ino != old_st.st_ino);
    CHECK_INT(st.st_mode & 0777, 0640);
    /* A second commit has nothing to commit; abort after commit is harmless. */
    CHECK_INT(outfile_commit(&o, &err), -EINVAL);
    outfile_abort(&o);
    CHECK_INT(count_entries(tmpdir), 1);
    remove_tmpdir();
}

TEST(outfile_abort_removes_temp)
{
    make_tmpdir();
    char dest[512];
    snprintf(dest, sizeof(dest), "%s/out.svg", tmpdir);
    struct outfile o;
    struct pserr err = {0};
    REQUIRE(outfile_open(&o, dest, &err) == 0);
    fputs("partial", o.f);
    CHECK_INT(count_entries(tmpdir), o.tmp ? 1 : 0);
    outfile_abort(&o);
    CHECK_INT(count_entries(tmpdir), 0);
    CHECK_INT(access(dest, F_OK), -1);
    CHECK(o.f == NULL && o.tmp == NULL && o.path == NULL);
    outfile_abort(&o); /* twice */
    struct outfile zero;
    memset(&zero, 0, sizeof(zero));
    outfile_abort(&zero);
    remove_tmpdir();
}

TEST(outfile_unwritable_directory_fails_at_open)
{
    make_tmpdir();
    char dest[512];
    struct outfile o;
    struct pserr err = {0};
    /* A folder that does not exist. */
    snprintf(dest, sizeof(dest), "%s/no/such/dir/out.txt", tmpdir);
    CHECK_INT(outfile_open(&o, dest, &err), -ENOENT);
    CHECK_INT(err.code, ENOENT);
    CHECK(strstr(err.msg, dest) != NULL);
    /* A folder we may not write: as root, permission bits do not stop us, so use sysfs. */
    if (geteuid() != 0) {
        char ro[300];
        snprintf(ro, sizeof(ro), "%s/ro", tmpdir);
        REQUIRE(mkdir(ro, 0555) == 0);
        snprintf(dest, sizeof(dest), "%s/out.txt", ro);
    } else {
        snprintf(dest, sizeof(dest), "/sys/pystrobe-test-out.txt");
    }
    memset(&err, 0, sizeof(err));
    int ret = outfile_open(&o, dest, &err);
    CHECK(ret == -EACCES || ret == -EPERM || ret == -EROFS);
    CHECK(strstr(err.msg, dest) != NULL);
    CHECK(strstr(err.msg, "cannot write") != NULL);
    CHECK_INT(access(dest, F_OK), -1);
    remove_tmpdir();
}

TEST(outfile_directory_destination_fails)
{
    make_tmpdir();
    struct outfile o;
    struct pserr err = {0};
    CHECK_INT(outfile_open(&o, tmpdir, &err), -EISDIR);
    CHECK(strstr(err.msg, "directory") != NULL);
    CHECK_INT(count_entries(tmpdir), 0);
    CHECK_INT(outfile_open(&o, "", &err), -EINVAL);
    remove_tmpdir();
}

/* A device is written in place: never replaced by a regular file. */
TEST(outfile_device_written_in_place)
{
    struct outfile o;
    struct pserr err;
    struct stat st;
    if (stat("/dev/null", &st) != 0 || !S_ISCHR(st.st_mode))
        SKIP("no /dev/null character device");
    REQUIRE(outfile_open(&o, "/dev/null", &err) == 0);
    CHECK(o.tmp == NULL);
    fputs("profile\n", o.f);
    CHECK_INT(outfile_commit(&o, &err), 0);
    outfile_abort(&o);
    REQUIRE(stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode))
        SKIP("no /dev/full character device");
    REQUIRE(outfile_open(&o, "/dev/full", &err) == 0);
    for (int i = 0; i < 10000; i++)
        fputs("profile line that fills the buffer\n", o.f);
    CHECK_INT(outfile_commit(&o, &err), -ENOSPC);
    CHECK_STR(err.msg, "cannot write /dev/full: No space left on device");
    outfile_abort(&o);
    REQUIRE(stat("/dev/full", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
}
