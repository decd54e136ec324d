/*
 * speedscope writer: the golden document, order independence, escaping,
 * invalid UTF-8, units and weights.  The output is read back with a small
 * strict JSON parser so that the checks are about the document, not its text.
 */
#include <errno.h>
#include <math.h> /* NAN only: the test links without libm */

#include "golden.h"
#include "test.h"

#include "common/util.h"
#include "output/profile.h"
#include "output/speedscope.h"

/* ---- a strict JSON reader --------------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    double num;
    char *str;        /* J_STR: the decoded text; J_NUM: the number as written */
    struct jv *items; /* J_ARR, J_OBJ: the values */
    char **keys;      /* J_OBJ: the keys */
    size_t n;
};

struct jparser {
    const char *s, *end;
    const char *err;
};

static void jfree(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static void jws(struct jparser *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r'))
        j->s++;
}

static int jfail(struct jparser *j, const char *why)
{
    if (!j->err)
        j->err = why;
    return -1;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int jstring(struct jparser *j, char **out)
{
    struct strbuf sb = STRBUF_INIT;
    j->s++; /* '"' */
    for (;;) {
        if (j->s >= j->end) {
            sb_release(&sb);
            return jfail(j, "unterminated string");
        }
        unsigned char c = (unsigned char)*j->s;
        if (c == '"') {
            j->s++;
            break;
        }
        if (c < 0x20) {
            sb_release(&sb);
            return jfail(j, "control character in a string");
        }
        if (c != '\\') {
            size_t l = utf8_valid_len((const unsigned char *)j->s, (size_t)(j->end - j->s));
            if (!l) {
                sb_release(&sb);
                return jfail(j, "invalid UTF-8 in a string");
            }
            sb_add(&sb, j->s, l);
            j->s += l;
            continue;
        }
        if (j->end - j->s < 2) {
            sb_release(&sb);
            return jfail(j, "bad escape");
        }
        char e = j->s[1];
        j->s += 2;
        uint32_t cp;
        switch (e) {
        case '"': sb_addc(&sb, '"'); break;
        case '\\': sb_addc(&sb, '\\'); break;
        case '/': sb_addc(&sb, '/'); break;
        case 'b': sb_addc(&sb, '\b'); break;
        case 'f': sb_addc(&sb, '\f'); break;
        case 'n': sb_addc(&sb, '\n'); break;
        case 'r': sb_addc(&sb, '\r'); break;
        case 't': sb_addc(&sb, '\t'); break;
        case 'u':
            if (j->end - j->s < 4 || hex4(j->s, &cp) < 0) {
                sb_release(&sb);
                return jfail(j, "bad \\u escape");
            }
            j->s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (j->end - j->s < 6 || j->s[0] != '\\' || j->s[1] != 'u' || hex4(j->s + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    sb_release(&sb);
                    return jfail(j, "lone surrogate");
                }
                j->s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                sb_release(&sb);
                return jfail(j, "lone surrogate");
            }
            utf8_put(&sb, cp);
            break;
        default:
            sb_release(&sb);
            return jfail(j, "bad escape");
        }
    }
    *out = sb.buf ? sb_detach(&sb) : xstrdup("");
    return 0;
}

static int jdigits(struct jparser *j)
{
    const char *s = j->s;
    while (j->s < j->end && *j->s >= '0' && *j->s <= '9')
        j->s++;
    return j->s > s ? 0 : -1;
}

static int jnumber(struct jparser *j, struct jv *v)
{
    const char *start = j->s;
    if (j->s < j->end && *j->s == '-')
        j->s++;
    if (j->s < j->end && *j->s == '0')
        j->s++;
    else if (jdigits(j) < 0)
        return jfail(j, "bad number");
    if (j->s < j->end && *j->s == '.') {
        j->s++;
        if (jdigits(j) < 0)
            return jfail(j, "bad number");
    }
    if (j->s < j->end && (*j->s == 'e' || *j->s == 'E')) {
        j->s++;
        if (j->s < j->end && (*j->s == '+' || *j->s == '-'))
            j->s++;
        if (jdigits(j) < 0)
            return jfail(j, "bad number");
    }
    v->t = J_NUM;
    v->str = xstrndup(start, (size_t)(j->s - start));
    v->num = strtod(v->str, NULL);
    return 0;
}

static int jvalue(struct jparser *j, struct jv *v, int depth);

static int jlist(struct jparser *j, struct jv *v, int depth, char close)
{
    size_t cap = 0;
    j->s++;
    jws(j);
    if (j->s < j->end && *j->s == close) {
        j->s++;
        return 0;
    }
    for (;;) {
        jws(j);
        char *key = NULL;
        if (close == '}') {
            if (j->s >= j->end || *j->s != '"' || jstring(j, &key) < 0)
                return jfail(j, "expected a key");
            jws(j);
            if (j->s >= j->end || *j->s != ':') {
                free(key);
                return jfail(j, "expected ':'");
            }
            j->s++;
        }
        size_t oldcap = cap;
        GROW(v->items, cap, v->n + 1);
        if (close == '}')
            GROW(v->keys, oldcap, v->n + 1);
        memset(&v->items[v->n], 0, sizeof(v->items[0]));
        if (close == '}')
            v->keys[v->n] = key;
        v->n++;
        if (jvalue(j, &v->items[v->n - 1], depth + 1) < 0)
            return -1;
        jws(j);
        if (j->s < j->end && *j->s == ',') {
            j->s++;
            continue;
        }
        if (j->s < j->end && *j->s == close) {
            j->s++;
            return 0;
        }
        return jfail(j, "expected ',' or a closing bracket");
    }
}

static int jvalue(struct jparser *j, struct jv *v, int depth)
{
    memset(v, 0, sizeof(*v));
    if (depth > 64)
        return jfail(j, "too deep");
    jws(j);
    if (j->s >= j->end)
        return jfail(j, "unexpected end");
    switch (*j->s) {
    case '{': v->t = J_OBJ; return jlist(j, v, depth, '}');
    case '[': v->t = J_ARR; return jlist(j, v, depth, ']');
    case '"': v->t = J_STR; return jstring(j, &v->str);
    }
    static const struct { const char *w; enum jtype t; } lits[] = {
        {"null", J_NULL}, {"true", J_BOOL}, {"false", J_BOOL}};
    for (size_t i = 0; i < ARRAY_SIZE(lits); i++) {
        size_t l = strlen(lits[i].w);
        if ((size_t)(j->end - j->s) >= l && memcmp(j->s, lits[i].w, l) == 0) {
            v->t = lits[i].t;
            j->s += l;
            return 0;
        }
    }
    return jnumber(j, v);
}

/* Parses the whole of buf[0..n) as one JSON document; fails the test if it is not. */
static void jparse(const char *buf, size_t n, struct jv *v)
{
    struct jparser j = {buf, buf + n, NULL};
    int rc = jvalue(&j, v, 0);
    jws(&j);
    if (rc == 0 && j.s != j.end)
        jfail(&j, "text after the document");
    if (j.err) {
        TEST_FAILF("invalid JSON at byte %zu: %s", (size_t)(j.s - buf), j.err);
        exit(1);
    }
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    if (o && o->t == J_OBJ)
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->keys[i], key) == 0)
                return &o->items[i];
    return NULL;
}

static const struct jv *jat(const struct jv *a, size_t i)
{
    return a && a->t == J_ARR && i < a->n ? &a->items[i] : NULL;
}

static const char *jstr(const struct jv *v)
{
    return v && v->t == J_STR ? v->str : NULL;
}

static size_t jlen(const struct jv *v, enum jtype t)
{
    return v && v->t == t ? v->n : 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static int write_cb(FILE *f, void *ctx)
{
    return speedscope_write(f, ctx);
}

static char *render(struct profile *p, size_t *n)
{
    return golden_capture(write_cb, p, n);
}

static double dabs(double x)
{
    return x < 0 ? -x : x;
}

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = utf8_valid_len((const unsigned char *)s + i, n - i);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

/*
 * Checks what every document must satisfy: the fixed header, profiles of
 * sampled stacks whose frame indices exist, as many weights as samples,
 * startValue 0 and endValue the sum of the weights (added in order).
 */
static void check_shape(const struct jv *d)
{
    REQUIRE(d->t == J_OBJ);
    CHECK_STR(jstr(jget(d, "$schema")), "https://www.speedscope.app/file-format-schema.json");
    CHECK_STR(jstr(jget(d, "exporter")), "pystrobe 0.1.0");
    CHECK(jstr(jget(d, "name")) != NULL);
    CHECK(jget(d, "activeProfileIndex") && jget(d, "activeProfileIndex")->num == 0);
    const struct jv *frames = jget(jget(d, "shared"), "frames");
    const struct jv *profiles = jget(d, "profiles");
    REQUIRE(frames && frames->t == J_ARR);
    REQUIRE(profiles && profiles->t == J_ARR && profiles->n >= 1);
    for (size_t i = 0; i < frames->n; i++) {
        const struct jv *fr = &frames->items[i];
        CHECK(jstr(jget(fr, "name")) != NULL);
        CHECK(!jget(fr, "file") || jstr(jget(fr, "file")));
        CHECK(!jget(fr, "line") || jget(fr, "line")->t == J_NUM);
    }
    for (size_t i = 0; i < profiles->n; i++) {
        const struct jv *pr = &profiles->items[i];
        CHECK_STR(jstr(jget(pr, "type")), "sampled");
        CHECK(jstr(jget(pr, "name")) != NULL);
        const char *unit = jstr(jget(pr, "unit"));
        CHECK(unit && (strcmp(unit, "seconds") == 0 || strcmp(unit, "none") == 0));
        const struct jv *samples = jget(pr, "samples"), *weights = jget(pr, "weights");
        REQUIRE(samples && samples->t == J_ARR && weights && weights->t == J_ARR);
        CHECK_INT(samples->n, weights->n);
        CHECK(jget(pr, "startValue") && strcmp(jget(pr, "startValue")->str, "0") == 0);
        double sum = 0;
        for (size_t k = 0; k < weights->n; k++) {
            REQUIRE(weights->items[k].t == J_NUM);
            CHECK(weights->items[k].num > 0);
            sum += weights->items[k].num;
        }
        REQUIRE(jget(pr, "endValue") && jget(pr, "endValue")->t == J_NUM);
        if (jget(pr, "endValue")->num != sum)
            TEST_FAILF("profile %zu: endValue %s, weights add up to %.17g", i, jget(pr, "endValue")->str, sum);
        for (size_t k = 0; k < samples->n; k++) {
            const struct jv *s = &samples->items[k];
            REQUIRE(s->t == J_ARR);
            for (size_t m = 0; m < s->n; m++) {
                REQUIRE(s->items[m].t == J_NUM);
                double x = s->items[m].num;
                CHECK(x >= 0 && x < (double)frames->n && x == (double)(size_t)x);
            }
        }
    }
}

/* Renders p, checks it is valid UTF-8 and well-formed, and parses it into d. */
static char *render_parse(struct profile *p, struct jv *d, size_t *n)
{
    char *buf = render(p, n);
    CHECK(valid_utf8(buf, *n));
    CHECK(*n > 0 && buf[*n - 1] == '\n');
    jparse(buf, *n, d);
    check_shape(d);
    return buf;
}

/* The label-style text of sample k of profile pr: frame names joined by ';'. */
static void sample_text(const struct jv *d, const struct jv *pr, size_t k, struct strbuf *out)
{
    const struct jv *frames = jget(jget(d, "shared"), "frames");
    const struct jv *s = jat(jget(pr, "samples"), k);
    sb_reset(out);
    for (size_t m = 0; s && m < s->n; m++) {
        const struct jv *fr = jat(frames, (size_t)s->items[m].num);
        if (m)
            sb_addc(out, ';');
        sb_adds(out, jstr(jget(fr, "name")));
        if (jget(fr, "line"))
            sb_addf(out, ":%s", jget(fr, "line")->str);
    }
}

/* ---- tests -------------------------------------------------------------------------- */

TEST(golden_fixture_document)
{
    struct profile p;
    golden_fixture(&p);
    size_t n;
    char *buf = render(&p, &n);
    golden_check("fixture.speedscope.json", buf, n);
    free(buf);
    profile_release(&p);
}

TEST(fixture_content)
{
    struct profile p;
    golden_fixture(&p);
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    CHECK_STR(jstr(jget(&d, "name")), "python3 /srv/app.py (pid 4242)");
    const struct jv *frames = jget(jget(&d, "shared"), "frames");
    const struct jv *profiles = jget(&d, "profiles");
    REQUIRE(jlen(profiles, J_ARR) == 2);
    CHECK_STR(jstr(jget(&profiles->items[0], "name")), "thread MainThread (4242)");
    CHECK_STR(jstr(jget(&profiles->items[1], "name")), "thread worker-1 (4250)");
    CHECK_INT(jlen(jget(&profiles->items[0], "samples"), J_ARR), 5);
    CHECK_INT(jlen(jget(&profiles->items[1], "samples"), J_ARR), 4);
    /* 100 samples a second: 63 and 31 samples (endValue is the weights' floating-point sum). */
    CHECK_STR(jstr(jget(&profiles->items[0], "unit")), "seconds");
    CHECK(dabs(jget(&profiles->items[0], "endValue")->num - 0.63) < 1e-12);
    CHECK(dabs(jget(&profiles->items[1], "endValue")->num - 0.31) < 1e-12);

    /* Distinct frames used, no thread roots among them. */
    size_t seen_hostile = 0, seen_idle = 0, seen_deflate = 0, seen_weird = 0;
    for (size_t i = 0; i < frames->n; i++) {
        const struct jv *fr = &frames->items[i];
        const char *name = jstr(jget(fr, "name"));
        CHECK(strncmp(name, "thread ", 7) != 0);
        for (size_t k = 0; k < i; k++) {
            const struct jv *o = &frames->items[k];
            int same = strcmp(name, jstr(jget(o, "name"))) == 0 &&
                       (jget(fr, "file") ? jget(o, "file") && strcmp(jstr(jget(fr, "file")), jstr(jget(o, "file"))) == 0
                                        : !jget(o, "file")) &&
                       (jget(fr, "line") ? jget(o, "line") && jget(fr, "line")->num == jget(o, "line")->num
                                        : !jget(o, "line"));
            CHECK(!same);
        }
        if (strcmp(name, "</svg><script>alert(1)</script>") == 0) {
            seen_hostile++;
            CHECK_STR(jstr(jget(fr, "file")), "/srv/x&y \"q\" 'a'.py");
            CHECK(jget(fr, "line") && jget(fr, "line")->num == 1);
        } else if (strcmp(name, "[idle]") == 0) {
            seen_idle++;
            CHECK(!jget(fr, "file") && !jget(fr, "line"));
        } else if (strcmp(name, "deflate") == 0) {
            seen_deflate++;
            CHECK_STR(jstr(jget(fr, "file")), "libz.so.1");
            CHECK(!jget(fr, "line"));
        } else if (strcmp(name, "w\xc3\xa9ird \xe2\x80\x94 \xf0\x9f\x90\x8d") == 0) {
            seen_weird++;
            CHECK_STR(jstr(jget(fr, "file")), "/srv/\xc3\xbc.py");
        }
    }
    CHECK_INT(seen_hostile, 1);
    CHECK_INT(seen_idle, 1);
    CHECK_INT(seen_deflate, 1);
    CHECK_INT(seen_weird, 1);
    /* 19 distinct frames besides the two thread roots. */
    CHECK_INT(frames->n, 19);

    /* Every stack of the fixture is a sample of its thread, with weight count / rate. */
    static const struct {
        size_t prof;
        const char *text;
        double seconds;
    } want[] = {
        {0, "<module>:30;main:25;busy:5", 0.4},
        {0, "<module>:30;main:25;busy:6", 0.1},
        {0, "<module>:30;main:26;dumps:231;encode:200", 0.07},
        {0, "<module>:30;main:27;fib:12;fib:12;fib:12", 0.05},
        {0, "<module>:30;main:28;</svg><script>alert(1)</script>:1", 0.01},
        {1, "_bootstrap:995;run:9;<lambda>:10", 0.06},
        {1, "_bootstrap:995;run:9;[idle]", 0.2},
        {1, "_bootstrap:995;run:11;compress:300;deflate", 0.03},
        {1, "_bootstrap:995;w\xc3\xa9ird \xe2\x80\x94 \xf0\x9f\x90\x8d:3", 0.02},
    };
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        const struct jv *pr = &profiles->items[want[i].prof];
        size_t found = 0;
        for (size_t k = 0; k < jlen(jget(pr, "samples"), J_ARR); k++) {
            sample_text(&d, pr, k, &sb);
            if (strcmp(sb.buf, want[i].text) == 0) {
                found++;
                CHECK(jat(jget(pr, "weights"), k)->num == want[i].seconds);
            }
        }
        if (found != 1)
            TEST_FAILF("sample %s found %zu times", want[i].text, found);
    }
    sb_release(&sb);
    jfree(&d);
    free(buf);
    profile_release(&p);
}

/* The fixture's stacks added in another order, after interning its frames backwards. */
TEST(order_does_not_depend_on_insertion)
{
    struct profile a, b;
    golden_fixture(&a);
    profile_init(&b);
    b.thread_roots = 1;
    for (size_t i = a.nframes; i-- > 0;)
        if (a.frames[i].kind != PK_THREAD)
            profile_frame(&b, a.frames[i].label);
    for (size_t t = 0; t < a.nthreads; t++)
        profile_thread(&b, a.threads[t].name, a.threads[t].tid);
    for (size_t i = a.nstacks; i-- > 0;) {
        const struct prof_stack *s = &a.stacks[i];
        uint32_t ids[16];
        REQUIRE(s->len <= ARRAY_SIZE(ids));
        for (uint32_t j = 0; j < s->len; j++)
            ids[j] = profile_frame(&b, a.frames[a.ids[s->off + j]].label);
        /* Split counts in two adds: merged stacks must weigh the same. */
        profile_add(&b, s->thread, ids, s->len, s->count / 2);
        profile_add(&b, s->thread, ids, s->len, s->count - s->count / 2);
    }
    b.meta.title = xstrdup(a.meta.title);
    b.meta.rate = a.meta.rate;
    size_t na, nb;
    char *ba = render(&a, &na), *bb = render(&b, &nb);
    CHECK(na == nb && memcmp(ba, bb, na) == 0);
    /* And rendering twice gives the same bytes. */
    size_t nc;
    char *bc = render(&a, &nc);
    CHECK(na == nc && memcmp(ba, bc, na) == 0);
    free(ba);
    free(bb);
    free(bc);
    profile_release(&a);
    profile_release(&b);
}

TEST(hostile_names_escaped)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "</script>\"t\\", 7);
    uint32_t ids[3] = {p.threads[t].frame, profile_frame(&p, "</svg><script>alert(1)</script> (/srv/a.py:1)"),
                       profile_frame(&p, "q\"uo\\te\\\" (C:\\dir\\\"x\".py:2)")};
    profile_add(&p, t, ids, 3, 5);
    uint32_t nameless[2] = {p.threads[t].frame, profile_frame(&p, " (/srv/b.py:3)")};
    profile_add(&p, t, nameless, 2, 1);
    p.meta.title = xstrdup("<title> \"x\" \\y");
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    /* No '<' at all in the bytes: nothing can close a script or SVG element. */
    CHECK(memchr(buf, '<', n) == NULL);
    CHECK(strstr(buf, "\"\\u003c/svg>\\u003cscript>alert(1)\\u003c/script>\"") != NULL);
    CHECK(strstr(buf, "\"q\\\"uo\\\\te\\\\\\\"\"") != NULL);
    CHECK_STR(jstr(jget(&d, "name")), "<title> \"x\" \\y");
    const struct jv *frames = jget(jget(&d, "shared"), "frames");
    REQUIRE(jlen(frames, J_ARR) == 3);
    /* Frames in the order the sorted samples use them; one without a NAME shows its label. */
    CHECK_STR(jstr(jget(&frames->items[0], "name")), " (/srv/b.py:3)");
    CHECK(!jget(&frames->items[0], "file"));
    CHECK_STR(jstr(jget(&frames->items[1], "name")), "</svg><script>alert(1)</script>");
    CHECK_STR(jstr(jget(&frames->items[2], "name")), "q\"uo\\te\\\"");
    CHECK_STR(jstr(jget(&frames->items[2], "file")), "C:\\dir\\\"x\".py");
    CHECK(jget(&frames->items[2], "line")->num == 2);
    CHECK_STR(jstr(jget(jat(jget(&d, "profiles"), 0), "name")), "thread </script>\"t\\ (7)");
    jfree(&d);
    free(buf);
    profile_release(&p);
}

TEST(invalid_utf8_becomes_replacement_characters)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "w\x80rker", 9);
    uint32_t ids[4] = {p.threads[t].frame, profile_frame(&p, "bad\xff\xfe name (/srv/\xc3(.py:4)"),
                       /* truncated sequence, overlong '/', a surrogate, valid é */
                       profile_frame(&p, "x\xe2\x82 \xc0\xaf \xed\xa0\x80 \xc3\xa9"),
                       profile_frame(&p, "[trunc\xf0\x9f\x90]")};
    profile_add(&p, t, ids, 4, 3);
    p.meta.title = xstrdup("title \xf5\x80\x80\x80");
    p.meta.rate = 1000;
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    const struct jv *frames = jget(jget(&d, "shared"), "frames");
    REQUIRE(jlen(frames, J_ARR) == 3);
    CHECK_STR(jstr(jget(&frames->items[0], "name")), "bad\xef\xbf\xbd\xef\xbf\xbd name");
    CHECK_STR(jstr(jget(&frames->items[0], "file")), "/srv/\xef\xbf\xbd(.py");
    CHECK(jget(&frames->items[0], "line")->num == 4);
    CHECK_STR(jstr(jget(&frames->items[1], "name")),
              "x\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xc3\xa9");
    CHECK_STR(jstr(jget(&frames->items[2], "name")), "[trunc\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd]");
    CHECK_STR(jstr(jget(jat(jget(&d, "profiles"), 0), "name")), "thread w\xef\xbf\xbdrker (9)");
    CHECK_STR(jstr(jget(&d, "name")), "title \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_STR(jat(jget(jat(jget(&d, "profiles"), 0), "weights"), 0)->str, "0.003");
    jfree(&d);
    free(buf);
    profile_release(&p);
}

TEST(no_rate_uses_unit_none_with_counts)
{
    struct profile p;
    golden_fixture(&p);
    p.meta.rate = 0;
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    const struct jv *profiles = jget(&d, "profiles");
    REQUIRE(jlen(profiles, J_ARR) == 2);
    static const char *const ends[] = {"63", "31"};
    uint64_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        const struct jv *pr = &profiles->items[i];
        CHECK_STR(jstr(jget(pr, "unit")), "none");
        CHECK_STR(jget(pr, "endValue")->str, ends[i]);
        const struct jv *w = jget(pr, "weights");
        for (size_t k = 0; k < jlen(w, J_ARR); k++) {
            /* Integers as written: digits only. */
            CHECK(strspn(w->items[k].str, "0123456789") == strlen(w->items[k].str));
            total += (uint64_t)w->items[k].num;
        }
    }
    CHECK_U64(total, p.total);
    jfree(&d);
    free(buf);
    /* A rate that is not a number also means unit none. */
    p.meta.rate = NAN;
    buf = render_parse(&p, &d, &n);
    CHECK_STR(jstr(jget(jat(jget(&d, "profiles"), 0), "unit")), "none");
    jfree(&d);
    free(buf);
    profile_release(&p);
}

/* Weights add up to endValue exactly, and to the samples' time, whatever the rate. */
TEST(weights_sum_to_end_value)
{
    static const double rates[] = {100, 97, 3, 1e6, 0.7, 19.9};
    for (size_t r = 0; r < ARRAY_SIZE(rates); r++) {
        struct profile p;
        profile_init(&p);
        p.thread_roots = 1;
        uint32_t t = profile_thread(&p, "T", 1);
        uint64_t sum = 0;
        for (uint32_t i = 0; i < 50; i++) {
            uint32_t ids[3] = {p.threads[t].frame, 0, 0};
            char label[64];
            snprintf(label, sizeof(label), "f%u (/m.py:%u)", i % 7, i);
            ids[1] = profile_frame(&p, label);
            snprintf(label, sizeof(label), "g%u (/m.py:%u)", i, i % 5);
            ids[2] = profile_frame(&p, label);
            uint64_t c = 1 + (i * 7919u) % 1000;
            profile_add(&p, t, ids, 3, c);
            sum += c;
        }
        p.meta.rate = rates[r];
        struct jv d;
        size_t n;
        char *buf = render_parse(&p, &d, &n); /* checks endValue == the sum of the weights */
        const struct jv *pr = jat(jget(&d, "profiles"), 0);
        double end = jget(pr, "endValue")->num;
        CHECK(dabs(end * rates[r] - (double)sum) <= 1e-9 * (double)sum);
        /* Every weight reads back as count / rate. */
        const struct jv *w = jget(pr, "weights");
        CHECK_INT(jlen(w, J_ARR), 50);
        for (size_t k = 0; k < jlen(w, J_ARR); k++) {
            double c = w->items[k].num * rates[r];
            CHECK(dabs(c - (double)(uint64_t)(c + 0.5)) < 1e-6);
        }
        jfree(&d);
        free(buf);
        profile_release(&p);
    }
}

TEST(single_unnamed_thread_named_by_title)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, NULL, 0);
    uint32_t ids[2] = {p.threads[t].frame, profile_frame(&p, "main (/a.py:1)")};
    profile_add(&p, t, ids, 2, 4);
    profile_add(&p, t, ids, 1, 2); /* only the thread's frame: an empty stack */
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    CHECK_STR(jstr(jget(&d, "name")), "pystrobe profile");
    const struct jv *pr = jat(jget(&d, "profiles"), 0);
    CHECK_STR(jstr(jget(pr, "name")), "pystrobe profile");
    CHECK_INT(jlen(jget(pr, "samples"), J_ARR), 2);
    CHECK_STR(jget(pr, "endValue")->str, "6");
    jfree(&d);
    free(buf);
    profile_release(&p);
}

/* Without thread roots, one profile named by the title; equal stacks of different threads merge. */
TEST(no_thread_roots_one_merged_profile)
{
    struct profile p;
    profile_init(&p);
    uint32_t t0 = profile_thread(&p, "a", 1), t1 = profile_thread(&p, "b", 2);
    uint32_t ids[2] = {profile_frame(&p, "main (/a.py:1)"), profile_frame(&p, "f (/a.py:2)")};
    profile_add(&p, t0, ids, 2, 4);
    profile_add(&p, t1, ids, 2, 5);
    profile_add(&p, t1, ids, 1, 1);
    p.meta.title = xstrdup("prog");
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    const struct jv *profiles = jget(&d, "profiles");
    REQUIRE(jlen(profiles, J_ARR) == 1);
    CHECK_STR(jstr(jget(&profiles->items[0], "name")), "prog");
    const struct jv *w = jget(&profiles->items[0], "weights");
    REQUIRE(jlen(w, J_ARR) == 2);
    CHECK_STR(w->items[0].str, "1"); /* main */
    CHECK_STR(w->items[1].str, "9"); /* main;f */
    CHECK_INT(jlen(jget(jget(&d, "shared"), "frames"), J_ARR), 2);
    jfree(&d);
    free(buf);
    profile_release(&p);
}

TEST(empty_profile_still_has_one_profile)
{
    struct profile p;
    profile_init(&p);
    p.meta.title = xstrdup("idle app");
    p.meta.rate = 100;
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    const struct jv *profiles = jget(&d, "profiles");
    REQUIRE(jlen(profiles, J_ARR) == 1);
    CHECK_STR(jstr(jget(&profiles->items[0], "name")), "idle app");
    CHECK_INT(jlen(jget(&profiles->items[0], "samples"), J_ARR), 0);
    CHECK_STR(jget(&profiles->items[0], "endValue")->str, "0");
    CHECK_INT(jlen(jget(jget(&d, "shared"), "frames"), J_ARR), 0);
    jfree(&d);
    free(buf);
    profile_release(&p);
}

/* Thread without samples (counts of 0) get no profile. */
TEST(threads_without_samples_left_out)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t0 = profile_thread(&p, "idle", 1), t1 = profile_thread(&p, "busy", 2);
    uint32_t a[2] = {p.threads[t0].frame, profile_frame(&p, "sleep (/a.py:1)")};
    uint32_t b[2] = {p.threads[t1].frame, profile_frame(&p, "work (/a.py:2)")};
    profile_add(&p, t0, a, 2, 0);
    profile_add(&p, t1, b, 2, 3);
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    const struct jv *profiles = jget(&d, "profiles");
    REQUIRE(jlen(profiles, J_ARR) == 1);
    CHECK_STR(jstr(jget(&profiles->items[0], "name")), "thread busy (2)");
    CHECK_INT(jlen(jget(jget(&d, "shared"), "frames"), J_ARR), 1);
    jfree(&d);
    free(buf);
    profile_release(&p);
}

TEST(many_stacks_one_per_line)
{
    struct profile p;
    profile_init(&p);
    p.thread_roots = 1;
    uint32_t t = profile_thread(&p, "MainThread", 1);
    for (uint32_t i = 0; i < 20000; i++) {
        char label[64];
        uint32_t ids[3] = {p.threads[t].frame, profile_frame(&p, "root (/r.py:1)"), 0};
        snprintf(label, sizeof(label), "leaf%u (/l.py:%u)", i, i % 100 + 1);
        ids[2] = profile_frame(&p, label);
        profile_add(&p, t, ids, 3, i % 3 + 1);
    }
    p.meta.rate = 250;
    struct jv d;
    size_t n;
    char *buf = render_parse(&p, &d, &n);
    CHECK_INT(jlen(jget(jat(jget(&d, "profiles"), 0), "samples"), J_ARR), 20000);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    CHECK(lines > 3 * 20000);
    jfree(&d);
    free(buf);
    profile_release(&p);
}

TEST(write_error_reported)
{
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        SKIP("no /dev/full");
    setvbuf(f, NULL, _IONBF, 0);
    struct profile p;
    golden_fixture(&p);
    CHECK_INT(speedscope_write(f, &p), -ENOSPC);
    fclose(f);
    profile_release(&p);
}
