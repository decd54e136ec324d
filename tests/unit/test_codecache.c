/*
 * The code-object cache: names and lines per version, validation cost, and
 * above all that a code object freed and replaced at the same address is
 * noticed (the bytes change under the cache: a live image read through this
 * process) and never reported under its old name.
 */
#include "symbolizer/codecache.h"

#include <errno.h>

#include "test.h"

#include "image.h"

static const int versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};

/* Lines 11, 13, 14 over bytes [0,4), [4,10), [10,14); first line 10. */
static const struct img_seg segs[] = {{4, 11}, {6, 13}, {4, 14}};

static uint64_t lined_code(struct img *im, const char *file, const char *name, const char *qual)
{
    uint8_t table[64];
    size_t n = img_linetable(img_lt_format(&im->lay), 10, segs, ARRAY_SIZE(segs), table,
                              sizeof(table));
    return img_code(im, file, name, qual, 10, table, n);
}

struct cc_env {
    struct names names;
    struct codecache *cc;
};

static void env_init(struct cc_env *e, struct img *im, uint64_t code_type)
{
    struct code_facts cf;
    names_init(&e->names);
    layout_code_facts(&im->lay, &cf);
    e->cc = codecache_new(im->m, &cf, &e->names, code_type, im->rt.unicode27_width);
}

static void env_release(struct cc_env *e)
{
    codecache_free(e->cc);
    names_release(&e->names);
}

static struct code_entry *resolve1(struct cc_env *e, uint64_t addr)
{
    struct code_entry *out = NULL;
    int ret = codecache_resolve(e->cc, &addr, 1, &out);
    if (ret < 0 || ret > 1)
        TEST_FAILF("codecache_resolve: %d", ret);
    return out;
}

static const char *func_name(struct cc_env *e, const struct code_entry *ce)
{
    return names_str_get(&e->names, names_func_get(&e->names, codecache_func(ce))->name);
}

static const char *func_file(struct cc_env *e, const struct code_entry *ce)
{
    return names_str_get(&e->names, names_func_get(&e->names, codecache_func(ce))->file);
}

static int frame_line(struct cc_env *e, struct code_entry *ce, int64_t addrq, int by_function)
{
    uint32_t id = codecache_frame(e->cc, ce, addrq, by_function);
    const struct names_frame *f = names_frame_get(&e->names, id);
    if (f->func != codecache_func(ce))
        TEST_FAILF("frame %u has func %u, entry has %u", id, f->func, codecache_func(ce));
    return f->line;
}

TEST(resolves_names_and_lines_every_version)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t code = lined_code(&im, "pkg/módulo.py", "meth", "Klass.meth");
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, code);
        if (!ce) {
            TEST_FAILF("%d.%d: not resolved", im.major, im.minor);
            env_release(&e);
            img_release(&im);
            continue;
        }
        int qual = im.lay.co_qualname >= 0;
        CHECK_STR(func_name(&e, ce), qual ? "Klass.meth" : "meth");
        CHECK_STR(func_file(&e, ce), "pkg/módulo.py");
        CHECK_INT(names_func_get(&e.names, codecache_func(ce))->firstlineno, 10);
        static const struct {
            int64_t addrq;
            int line;
        } want[] = {{0, 11}, {3, 11}, {4, 13}, {8, 13}, {10, 14}, {12, 14}, {-1, 10}, {-2, 10}};
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
            int line = frame_line(&e, ce, want[i].addrq, 0);
            if (line != want[i].line)
                TEST_FAILF("%d.%d addrq %" PRId64 ": line %d, expected %d", im.major, im.minor,
                           want[i].addrq, line, want[i].line);
        }
        /* Past the table: lnotab keeps the last line, later tables say "none" (first line). */
        int past = frame_line(&e, ce, 40, 0);
        enum lt_format fmt = img_lt_format(&im.lay);
        CHECK_INT(past, fmt == LT_LNOTAB_27 || fmt == LT_LNOTAB_36 ? 14 : 10);
        /* by_function: the function's first line, whatever the offset. */
        CHECK_INT(frame_line(&e, ce, 8, 1), 10);
        CHECK_INT(frame_line(&e, ce, 0, 1), 10);
        /* The same (code, line) is the same frame id. */
        CHECK_INT(codecache_frame(e.cc, ce, 4, 0), codecache_frame(e.cc, ce, 9, 0));
        CHECK(codecache_frame(e.cc, ce, 4, 0) != codecache_frame(e.cc, ce, 0, 0));
        env_release(&e);
        img_release(&im);
    }
}

TEST(memo_does_not_confuse_offsets)
{
    /* More distinct offsets than the per-entry memo holds, asked twice. */
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t code = lined_code(&im, "f.py", "f", NULL);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *ce = resolve1(&e, code);
    REQUIRE(ce);
    static const int lines[] = {11, 11, 13, 13, 13, 14, 14};
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 7; i++) {
            int64_t q = i * 2;
            int line = frame_line(&e, ce, q, 0);
            if (line != lines[i])
                TEST_FAILF("round %d addrq %" PRId64 ": %d, expected %d", round, q, line, lines[i]);
        }
    env_release(&e);
    img_release(&im);
}

TEST(qualname_unreadable_falls_back_to_name)
{
    for (int minor = 11; minor <= 13; minor++) {
        struct img im;
        img_init(&im, 3, minor, 0);
        uint64_t code = lined_code(&im, "f.py", "plain", "Q.plain");
        img_f64(&im, code, im.lay.co_qualname, img_hole(&im));
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, code);
        REQUIRE(ce);
        CHECK_STR(func_name(&e, ce), "plain");
        env_release(&e);
        img_release(&im);
    }
}

TEST(second_resolve_is_one_validation_read)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t code = lined_code(&im, "f.py", "f", NULL);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        REQUIRE(resolve1(&e, code));
        const struct codecache_stats *st = codecache_stats(e.cc);
        CHECK_U64(st->loads, 1);
        uint64_t before = mem_read_calls(im.m);
        /* The same address twice in one call: validated once. */
        uint64_t addrs[2] = {code, code};
        struct code_entry *out[2];
        CHECK_INT(codecache_resolve(e.cc, addrs, 2, out), 0);
        CHECK(out[0] && out[0] == out[1]);
        CHECK_U64(mem_read_calls(im.m) - before, 1);
        CHECK_U64(st->loads, 1);
        CHECK_U64(st->hits, 1);
        CHECK_U64(st->stale, 0);
        CHECK_STR(func_name(&e, out[0]), "f");
        env_release(&e);
        img_release(&im);
    }
}

TEST(validation_is_one_syscall_for_many_codes)
{
    struct img im;
    img_init_ex(&im, 3, 12, 0, 1);
    uint64_t codes[5];
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "g%d", i);
        codes[i] = lined_code(&im, "g.py", name, NULL);
    }
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *out[5];
    CHECK_INT(codecache_resolve(e.cc, codes, 5, out), 0);
    uint64_t before = mem_read_calls(im.m);
    CHECK_INT(codecache_resolve(e.cc, codes, 5, out), 0);
    CHECK_U64(mem_read_calls(im.m) - before, 1);
    CHECK_U64(codecache_stats(e.cc)->hits, 5);
    CHECK_U64(codecache_stats(e.cc)->loads, 5);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "g%d", i);
        CHECK(out[i] && strcmp(func_name(&e, out[i]), name) == 0);
    }
    env_release(&e);
    img_release(&im);
}

/* Copies code object `from`'s header over `to` (as if freed and reallocated there). */
static void reuse_address(struct img *im, uint64_t to, uint64_t from)
{
    size_t len = img_code_size(im);
    memmove(img_at(im, to, len), img_at(im, from, len), len);
}

TEST(reused_address_is_detected)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init_ex(&im, versions[v][0], versions[v][1], 0, 1);
        uint64_t code = lined_code(&im, "old.py", "old_name", "Old.old_name");
        uint64_t other = lined_code(&im, "new.py", "new_name", "New.new_name");
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, code);
        REQUIRE(ce);
        int qual = im.lay.co_qualname >= 0;
        CHECK_STR(func_name(&e, ce), qual ? "Old.old_name" : "old_name");
        uint32_t old_func = codecache_func(ce);
        uint32_t old_frame = codecache_frame(e.cc, ce, 4, 0);
        /* The target frees the code object; another one takes its address. */
        reuse_address(&im, code, other);
        ce = resolve1(&e, code);
        REQUIRE(ce);
        const struct codecache_stats *st = codecache_stats(e.cc);
        CHECK_U64(st->stale, 1);
        CHECK_U64(st->loads, 2);
        CHECK_STR(func_name(&e, ce), qual ? "New.new_name" : "new_name");
        CHECK_STR(func_file(&e, ce), "new.py");
        CHECK(codecache_func(ce) != old_func);
        /* No line memo survives from the old code object. */
        uint32_t frame = codecache_frame(e.cc, ce, 4, 0);
        CHECK(frame != old_frame);
        CHECK_INT(names_frame_get(&e.names, frame)->func, codecache_func(ce));
        CHECK_INT(names_frame_get(&e.names, frame)->line, 13);
        /* And it stays the new one. */
        ce = resolve1(&e, code);
        REQUIRE(ce);
        CHECK_STR(func_name(&e, ce), qual ? "New.new_name" : "new_name");
        CHECK_U64(st->stale, 1);
        env_release(&e);
        img_release(&im);
    }
}

TEST(reused_address_same_names_other_first_line)
{
    /* Interned names are shared: a new function with the same name and file differs by line. */
    struct img im;
    img_init_ex(&im, 3, 11, 0, 1);
    uint64_t code = lined_code(&im, "m.py", "f", NULL);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *ce = resolve1(&e, code);
    REQUIRE(ce);
    CHECK_INT(names_func_get(&e.names, codecache_func(ce))->firstlineno, 10);
    img_f32(&im, code, im.lay.co_firstlineno, 99);
    ce = resolve1(&e, code);
    REQUIRE(ce);
    CHECK_U64(codecache_stats(e.cc)->stale, 1);
    CHECK_INT(names_func_get(&e.names, codecache_func(ce))->firstlineno, 99);
    CHECK_INT(frame_line(&e, ce, 0, 1), 99);
    env_release(&e);
    img_release(&im);
}

TEST(reused_by_a_non_code_object)
{
    struct img im;
    img_init_ex(&im, 3, 13, 0, 1);
    uint64_t code = lined_code(&im, "m.py", "f", NULL);
    uint64_t other = lined_code(&im, "n.py", "g", NULL);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    REQUIRE(resolve1(&e, code));
    /* Now an int lives there. */
    memset(img_at(&im, code, img_code_size(&im)), 0, img_code_size(&im));
    img_w64(&im, code, 1);
    img_f64(&im, code, im.lay.ob_type, im.t_int);
    CHECK(resolve1(&e, code) == NULL);
    CHECK(resolve1(&e, code) == NULL);
    CHECK(codecache_stats(e.cc)->stale >= 1);
    /* Then a code object again: loaded afresh. */
    reuse_address(&im, code, other);
    struct code_entry *ce = resolve1(&e, code);
    REQUIRE(ce);
    CHECK_STR(func_name(&e, ce), "g");
    CHECK_STR(func_file(&e, ce), "n.py");
    env_release(&e);
    img_release(&im);
}

/*
 * A cached code object freed, its address found holding no code object by a
 * resolve (the slot kept, marked bad), then a code object again: peek, which
 * sees it first in every later walk, must read it afresh, or every stack
 * through it is judged not code for good.
 */
TEST(peek_reloads_a_slot_found_bad)
{
    struct img im;
    img_init_ex(&im, 3, 7, 0, 1);
    uint64_t code = lined_code(&im, "m.py", "f", NULL);
    uint64_t other = lined_code(&im, "n.py", "g", NULL);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    REQUIRE(resolve1(&e, code));
    memset(img_at(&im, code, img_code_size(&im)), 0, img_code_size(&im));
    img_w64(&im, code, 1);
    img_f64(&im, code, im.lay.ob_type, im.t_int);
    CHECK(resolve1(&e, code) == NULL);
    struct code_entry *out = NULL;
    CHECK_INT(codecache_peek(e.cc, &code, 1, &out), 1);
    reuse_address(&im, code, other);
    CHECK_INT(codecache_peek(e.cc, &code, 1, &out), 0);
    REQUIRE(out);
    CHECK_STR(func_name(&e, out), "g");
    CHECK_STR(func_file(&e, out), "n.py");
    env_release(&e);
    img_release(&im);
}

/*
 * A snapshot holds the entries peek gave it while it peeks at more code
 * objects (the callees it takes in): loading those must not move the
 * entries already given (under ASan a moved one is a use after free).
 */
TEST(peeked_entries_stay_put_while_more_load)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t first = lined_code(&im, "first.py", "first", NULL);
    enum { MORE = 700 };
    uint64_t more[MORE];
    char name[32];
    for (int i = 0; i < MORE; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        more[i] = lined_code(&im, "more.py", name, NULL);
    }
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *held = NULL, *out = NULL;
    CHECK_INT(codecache_peek(e.cc, &first, 1, &held), 0);
    REQUIRE(held);
    for (int i = 0; i < MORE; i++) {
        CHECK_INT(codecache_peek(e.cc, &more[i], 1, &out), 0);
        /* The one held still reads as itself, where it was. */
        CHECK_STR(func_name(&e, held), "first");
    }
    CHECK_INT(codecache_peek(e.cc, &first, 1, &out), 0);
    CHECK(out == held);
    env_release(&e);
    img_release(&im);
}

TEST(not_code_is_null)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t code = lined_code(&im, "f.py", "f", NULL);
        uint64_t i = img_object(&im, im.t_int, img_code_size(&im));
        uint64_t bad_name = lined_code(&im, "f.py", "f", NULL);
        img_f64(&im, bad_name, im.lay.co_name, img_hole(&im));
        if (im.lay.co_qualname >= 0)
            img_f64(&im, bad_name, im.lay.co_qualname, img_hole(&im));
        uint64_t bad_file = lined_code(&im, "f.py", "f", NULL);
        img_f64(&im, bad_file, im.lay.co_filename, 0);
        uint64_t bad_table = lined_code(&im, "f.py", "f", NULL);
        img_f64(&im, bad_table, im.lay.co_linetable, img_hole(&im));
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        uint64_t addrs[] = {i, code + 8, code + 1, 0, img_hole(&im), bad_name, bad_file,
                            bad_table, code};
        struct code_entry *out[ARRAY_SIZE(addrs)];
        CHECK_INT(codecache_resolve(e.cc, addrs, ARRAY_SIZE(addrs), out), ARRAY_SIZE(addrs) - 1);
        for (size_t k = 0; k + 1 < ARRAY_SIZE(addrs); k++)
            if (out[k])
                TEST_FAILF("%d.%d: addrs[%zu] resolved", im.major, im.minor, k);
        CHECK(out[ARRAY_SIZE(addrs) - 1] != NULL);
        CHECK_U64(codecache_stats(e.cc)->bad, ARRAY_SIZE(addrs) - 1);
        env_release(&e);
        img_release(&im);
    }
}

TEST(code_type_by_name)
{
    struct img im;
    img_init(&im, 3, 9, 0);
    uint64_t code = lined_code(&im, "f.py", "f", NULL);
    uint64_t fake = lined_code(&im, "f.py", "f", NULL);
    img_f64(&im, fake, im.lay.ob_type, img_type(&im, "codex"));
    uint64_t fake2 = lined_code(&im, "f.py", "f", NULL);
    img_f64(&im, fake2, im.lay.ob_type, img_type(&im, "cod"));
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, 0);
    CHECK(resolve1(&e, code) != NULL);
    CHECK(resolve1(&e, fake) == NULL);
    CHECK(resolve1(&e, fake2) == NULL);
    CHECK(resolve1(&e, code) != NULL);
    env_release(&e);
    img_release(&im);
}

TEST(huge_line_table_is_not_cached)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t code = lined_code(&im, "f.py", "f", NULL);
    uint64_t table = img_r64(&im, code + (uint64_t)im.lay.co_linetable);
    img_w64(&im, table + (uint64_t)im.lay.bytes_size, CODECACHE_MAX_TABLE + 1);
    uint64_t neg = lined_code(&im, "f.py", "g", NULL);
    table = img_r64(&im, neg + (uint64_t)im.lay.co_linetable);
    img_w64(&im, table + (uint64_t)im.lay.bytes_size, (uint64_t)-1);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *ce = resolve1(&e, code);
    REQUIRE(ce);
    CHECK_INT(frame_line(&e, ce, 4, 0), 10); /* no table: the first line */
    CHECK(resolve1(&e, neg) == NULL);
    env_release(&e);
    img_release(&im);
}

/* ---- past CODECACHE_MAX_ENTRIES ------------------------------------------------ */

/* n code objects sharing their strings and table, in a live image. */
static uint64_t *many_codes(struct img *im, size_t n)
{
    uint64_t *v = xmalloc(n * sizeof(*v));
    uint8_t table[64];
    size_t tl = img_linetable(img_lt_format(&im->lay), 10, segs, ARRAY_SIZE(segs), table,
                               sizeof(table));
    uint64_t file = img_str(im, "many.py"), name = img_str(im, "many");
    uint64_t tab = img_bytes(im, table, tl);
    for (size_t i = 0; i < n; i++)
        v[i] = img_code_objs(im, file, name, name, (int)i + 1, tab);
    return v;
}

static void fill_cache(struct cc_env *e, const uint64_t *codes, size_t n)
{
    struct code_entry **out = xmalloc(4096 * sizeof(*out));
    for (size_t i = 0; i < n; i += 4096) {
        size_t k = MIN((size_t)4096, n - i);
        int ret = codecache_resolve(e->cc, codes + i, k, out);
        if (ret != 0)
            TEST_FAILF("filling at %zu: %d missing", i, ret);
    }
    free(out);
}

TEST(keeps_working_past_max_entries)
{
    enum { N = CODECACHE_MAX_ENTRIES + 8 };
    struct img im;
    img_init_ex(&im, 3, 12, (size_t)N * 272 + (1u << 20), 1);
    uint64_t *codes = many_codes(&im, N);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    fill_cache(&e, codes, CODECACHE_MAX_ENTRIES - 1);
    CHECK_U64(codecache_stats(e.cc)->loads, CODECACHE_MAX_ENTRIES - 1);
    /*
     * A sample that fills the cache: a cached code object, then new ones.  Every
     * one of them is a code object and must resolve, with its own line; the
     * next sample finds the cache over its limit, and still resolves them all.
     */
    uint64_t addrs[4] = {codes[5], codes[CODECACHE_MAX_ENTRIES], codes[7],
                         codes[CODECACHE_MAX_ENTRIES + 1]};
    struct code_entry *out[4];
    CHECK_INT(codecache_resolve(e.cc, addrs, 4, out), 0);
    const int first[4] = {6, CODECACHE_MAX_ENTRIES + 1, 8, CODECACHE_MAX_ENTRIES + 2};
    for (int i = 0; i < 4; i++) {
        if (!out[i]) {
            TEST_FAILF("addrs[%d] not resolved", i);
            continue;
        }
        CHECK_INT(names_func_get(&e.names, codecache_func(out[i]))->firstlineno, first[i]);
    }
    /* And later samples too. */
    CHECK_INT(codecache_resolve(e.cc, addrs, 4, out), 0);
    CHECK_INT(codecache_resolve(e.cc, addrs, 4, out), 0);
    for (int i = 0; i < 4; i++)
        CHECK(out[i] && names_func_get(&e.names, codecache_func(out[i]))->firstlineno == first[i]);
    env_release(&e);
    free(codes);
    img_release(&im);
}

TEST(stale_entry_when_cache_fills)
{
    /* A cached entry that went stale, validated in the very call that overflows the cache. */
    enum { N = CODECACHE_MAX_ENTRIES + 8 };
    struct img im;
    img_init_ex(&im, 3, 12, (size_t)N * 272 + (1u << 20), 1);
    uint64_t *codes = many_codes(&im, N);
    uint64_t other = lined_code(&im, "other.py", "other", NULL);
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    fill_cache(&e, codes, CODECACHE_MAX_ENTRIES);
    reuse_address(&im, codes[100], other);
    uint64_t addrs[2] = {codes[100], codes[CODECACHE_MAX_ENTRIES]};
    struct code_entry *out[2];
    CHECK_INT(codecache_resolve(e.cc, addrs, 2, out), 0);
    CHECK(out[0] && strcmp(func_name(&e, out[0]), "other") == 0);
    CHECK(out[1] && names_func_get(&e.names, codecache_func(out[1]))->firstlineno ==
                        CODECACHE_MAX_ENTRIES + 1);
    env_release(&e);
    free(codes);
    img_release(&im);
}

/* Opcodes as each version numbers them, for bytecode written by the tests. */
struct ops {
    uint8_t load, call, ret, binop, instr_line;
    int call_caches, binop_caches; /* 2-byte cache units after them (3.11+) */
};

static struct ops ops_of(const struct img *im)
{
    if (im->major == 3 && im->minor >= 15)
        return (struct ops){83, 50, 33, 42, 253, 3, 5};
    if (im->major == 3 && im->minor == 14)
        return (struct ops){84, 52, 35, 44, 254, 3, 5};
    if (im->major == 3 && im->minor == 13)
        return (struct ops){85, 53, 36, 45, 254, 3, 1};
    if (im->major == 3 && im->minor == 12)
        return (struct ops){124, 171, 83, 122, 254, 3, 1};
    if (im->major == 3 && im->minor == 11)
        return (struct ops){124, 171, 83, 122, 0, 4, 1};
    return (struct ops){124, 131, 83, 23, 0, 0, 0}; /* CALL_FUNCTION, BINARY_ADD */
}

/* Writes bytecode into a new code object of im (co_code_adaptive or co_code). */
static uint64_t code_with(struct img *im, const uint8_t *code, size_t len)
{
    uint64_t c = img_code(im, "c.py", "f", NULL, 1, NULL, 0);
    if (im->lay.co_code_adaptive > 0) {
        img_wmem(im, c + (uint64_t)im->lay.co_code_adaptive, code, len);
        img_f64(im, c, 16, len / 2); /* ob_size: code units */
    } else {
        img_f64(im, c, im->lay.co_code, img_bytes(im, code, len));
    }
    return c;
}

/* Appends opcode op and its caches (units of 0xee: what specialisation leaves there). */
static size_t put(uint8_t *b, size_t at, uint8_t op, int caches)
{
    b[at++] = op;
    b[at++] = 1;
    for (int i = 0; i < caches; i++) {
        b[at++] = 0xee;
        b[at++] = 0xee;
    }
    return at;
}

/*
 * The bytecode decides whether a frame can be calling the frame above it:
 * never at a return or a plain load, nor before its first instruction; on
 * 3.11+ a frame it pushed itself only from a call (or the like), and on
 * 3.11 and 3.12 only while its instruction pointer is on the call's last
 * cache unit (while it calls C, it is on the opcode).  Caches hold data,
 * not opcodes: the instruction a unit belongs to is found from the start.
 */
TEST(can_call_from_the_bytecode_every_version)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        struct ops o = ops_of(&im);
        int new = im.major == 3 && im.minor >= 11, sure = new && im.minor <= 12;
        uint8_t code[64];
        size_t n = 0;
        n = put(code, n, o.load, 0);
        size_t call = n;
        n = put(code, n, o.call, o.call_caches);
        size_t call_last = n - 2;
        size_t ret = n;
        n = put(code, n, o.ret, 0);
        size_t binop = n;
        n = put(code, n, o.binop, o.binop_caches);
        /* A cache unit whose first byte reads as LOAD_FAST is a cache all the same. */
        if (o.call_caches > 1)
            code[call + 2] = o.load;
        uint64_t c = code_with(&im, code, n);
        uint64_t sc = img_code(&im, "n.py", "__add__", im.minor >= 11 ? "Num.__add__" : NULL, 1,
                               NULL, 0);
        uint64_t pc = img_code(&im, "n.py", "add", NULL, 1, NULL, 0);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *special = resolve1(&e, sc), *plain = resolve1(&e, pc);
        struct code_entry *ce = resolve1(&e, c);
        REQUIRE(ce != NULL && special != NULL && plain != NULL);
        for (int pushed = 0; pushed <= 1; pushed++) {
            CHECK_INT(codecache_can_call(e.cc, ce, 0, pushed, NULL), 0);  /* a load */
            CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)ret, pushed, NULL), 0);
            CHECK_INT(codecache_can_call(e.cc, ce, -1, pushed, NULL), 0); /* not started (<= 3.10) */
            CHECK_INT(codecache_can_call(e.cc, ce, -2, pushed, NULL), 0); /* not started (3.11, 3.12) */
            CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)n, pushed, NULL), 1); /* past the copy: unknown */
        }
        /* A call, entered from C or not (<= 3.10 never tells). */
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)call, 0, NULL), 1);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)call, 1, NULL), !sure);
        if (new) {
            CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)call_last, 1, NULL), 1);
            CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)call + 2, 0, NULL), 1);
        }
        /* An operator calls Python through C only, and then a special method. */
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)binop, 0, NULL), 1);
        /* 3.14+: BINARY_OP_SUBSCR_GETITEM pushes a class's __getitem__ itself. */
        int binop_pushes = new && im.minor >= 14;
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)binop, 1, NULL), !new || binop_pushes);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)binop, 0, special), 1);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)binop, 0, plain), 0);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)call, 0, plain), 1);
        /* Calling a frame it pushed: known for sure on 3.11 and 3.12. */
        CHECK_INT(codecache_pushing(e.cc, ce, (int64_t)call_last), new);
        CHECK_INT(codecache_pushing(e.cc, ce, (int64_t)call), new && !sure);
        CHECK_INT(codecache_pushing(e.cc, ce, (int64_t)binop), binop_pushes);
        CHECK_INT(codecache_pushing(e.cc, ce, 0), 0);
        /* At a return: gone from the stack from 3.12 on. */
        CHECK_INT(codecache_returned(e.cc, ce, (int64_t)ret), new && im.minor >= 12);
        CHECK_INT(codecache_returned(e.cc, ce, (int64_t)call), 0);
        /* A frame's size on the data stack: specials, locals and stack. */
        CHECK_INT(codecache_frame_bytes(ce) > 0, new);
        env_release(&e);
        img_release(&im);
    }
}

/*
 * A comparison runs Python only as a special method (__lt__...); before
 * 3.9 COMPARE_OP also does `in`, which may run any generator.
 */
TEST(comparison_calls_special_methods)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        int old = im.major == 2 || im.minor <= 8;
        uint8_t cmp = im.major == 3 && im.minor >= 13
                          ? (im.minor >= 15 ? 54 : im.minor == 14 ? 56 : 58) : 107;
        int caches = im.major == 3 && im.minor >= 11 ? (im.minor == 11 ? 2 : 1) : 0;
        uint8_t code[16];
        size_t n = 0, lt = 0, in = 0;
        n = put(code, n, cmp, caches); /* a <= b */
        if (im.major == 2)
            code[n++] = 0; /* 2.7: a 2-byte argument */
        if (old) {
            in = n;
            n = put(code, n, cmp, 0);
            code[in + 1] = 6; /* in */
            if (im.major == 2)
                code[n++] = 0;
        }
        uint64_t c = code_with(&im, code, n);
        uint64_t sc = img_code(&im, "n.py", "__lt__", NULL, 1, NULL, 0);
        uint64_t gc = img_code(&im, "n.py", "numbers", NULL, 1, NULL, 0);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, c), *special = resolve1(&e, sc), *gen = resolve1(&e, gc);
        REQUIRE(ce && special && gen);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)lt, 0, special), 1);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)lt, 0, gen), 0);
        if (old)
            CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)in, 0, gen), 1);
        env_release(&e);
        img_release(&im);
    }
}

/* An instrumented line (3.12+) hides its instruction: what follows is not known. */
TEST(can_call_after_an_instrumented_line)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        struct ops o = ops_of(&im);
        if (!o.instr_line) {
            img_release(&im);
            continue;
        }
        uint8_t code[32];
        size_t n = put(code, 0, o.load, 0);
        n = put(code, n, o.instr_line, 0);
        size_t load = n;
        n = put(code, n, o.load, 0);
        uint64_t c = code_with(&im, code, n);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, c);
        REQUIRE(ce != NULL);
        CHECK_INT(codecache_can_call(e.cc, ce, 0, 0, NULL), 0);
        CHECK_INT(codecache_can_call(e.cc, ce, 2, 0, NULL), 1);
        CHECK_INT(codecache_can_call(e.cc, ce, (int64_t)load, 0, NULL), 1);
        env_release(&e);
        img_release(&im);
    }
}

/* Without a readable bytecode, nothing is ruled out. */
TEST(can_call_without_bytecode)
{
    struct img im;
    img_init(&im, 3, 10, 0);
    uint64_t c = img_code(&im, "c.py", "f", NULL, 1, NULL, 0);
    img_f64(&im, c, im.lay.co_code, 0x10); /* unreadable */
    img_commit(&im);
    struct cc_env e;
    env_init(&e, &im, im.t_code);
    struct code_entry *ce = resolve1(&e, c);
    REQUIRE(ce != NULL);
    CHECK_INT(codecache_can_call(e.cc, ce, 0, 0, NULL), 1);
    CHECK_INT(codecache_can_call(e.cc, ce, -1, 0, NULL), 0);
    env_release(&e);
    img_release(&im);
}

/* <= 3.10: a generator's code is known as such (a thread's outermost frame never is one). */
TEST(generator_code_from_flags)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        if (im.lay.co_flags <= 0) {
            img_release(&im);
            continue;
        }
        uint64_t plain = img_code(&im, "g.py", "f", NULL, 1, NULL, 0);
        uint64_t gen = img_code(&im, "g.py", "g", NULL, 5, NULL, 0);
        uint64_t coro = img_code(&im, "g.py", "c", NULL, 9, NULL, 0);
        img_f32(&im, plain, im.lay.co_flags, 0x43);     /* OPTIMIZED|NEWLOCALS|NOFREE */
        img_f32(&im, gen, im.lay.co_flags, 0x63);       /* ... |GENERATOR */
        img_f32(&im, coro, im.lay.co_flags, 0x83);      /* ... |COROUTINE */
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *p = resolve1(&e, plain), *g = resolve1(&e, gen), *c = resolve1(&e, coro);
        REQUIRE(p && g && c);
        CHECK_INT(codecache_is_generator(p), 0);
        CHECK_INT(codecache_is_generator(g), 1);
        CHECK_INT(codecache_is_generator(c), im.major == 3 && im.minor >= 5);
        env_release(&e);
        img_release(&im);
    }
}

/*
 * peek takes cached entries as cached, with no read (new code objects are
 * loaded); resolve, which validates, still catches an address reused since.
 */
TEST(peek_reads_only_new_code_objects)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init_ex(&im, versions[v][0], versions[v][1], 0, 1);
        uint64_t code = lined_code(&im, "old.py", "old_name", NULL);
        uint64_t other = lined_code(&im, "new.py", "new_name", NULL);
        uint64_t unknown = lined_code(&im, "u.py", "unknown", NULL);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        REQUIRE(resolve1(&e, code));
        const struct codecache_stats *st = codecache_stats(e.cc);
        uint64_t addrs[4] = {code, code, unknown, code};
        struct code_entry *out[4];
        uint64_t before = mem_read_calls(im.m), loads = st->loads;
        CHECK_INT(codecache_peek(e.cc, addrs, 4, out), 0);
        CHECK_U64(st->loads, loads + 1);
        CHECK(out[0] && out[0] == out[1] && out[1] == out[3]);
        CHECK_STR(func_name(&e, out[2]), "unknown");
        uint64_t load_reads = mem_read_calls(im.m) - before;
        before = mem_read_calls(im.m);
        CHECK_INT(codecache_peek(e.cc, addrs, 4, out), 0);
        CHECK_U64(mem_read_calls(im.m) - before, 0);
        CHECK(load_reads > 0);
        /* The address reused by another code object: peek still says the
         * old one, resolve (one read) the new. */
        reuse_address(&im, code, other);
        CHECK_INT(codecache_peek(e.cc, addrs, 1, out), 0);
        CHECK_STR(func_name(&e, out[0]), "old_name");
        before = mem_read_calls(im.m);
        CHECK_INT(codecache_resolve(e.cc, addrs, 4, out), 0);
        CHECK(out[0] && strcmp(func_name(&e, out[0]), "new_name") == 0);
        CHECK_U64(st->stale, 1);
        CHECK(mem_read_calls(im.m) - before >= 1);
        /* A code object that failed to load is no code to peek either. */
        uint64_t bad = 0x10;
        CHECK_INT(codecache_peek(e.cc, &bad, 1, out), 1);
        CHECK(out[0] == NULL);
        env_release(&e);
        img_release(&im);
    }
}

/* Overwrites one code object's header with another's at the n-th read from now. */
struct swap_at {
    uint64_t at_call, to;
    const unsigned char *from;
    size_t len;
};

static void swap_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct swap_at *sw = ctx;
    if (calls == sw->at_call)
        mem_buffer_write(m, sw->to, sw->from, sw->len);
}

TEST(code_freed_while_loading_is_not_cached_mixed)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t code = lined_code(&im, "old.py", "old_name", NULL);
        uint64_t other = lined_code(&im, "new.py", "new_name", NULL);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        /* The code object is freed and another takes its place right after
         * its header is read (the first read of the load). */
        struct swap_at sw = {mem_read_calls(im.m) + 1, code, img_at(&im, other, img_code_size(&im)),
                             img_code_size(&im)};
        mem_buffer_on_read(im.m, swap_on_read, &sw);
        struct code_entry *out = NULL;
        CHECK_INT(codecache_resolve(e.cc, &code, 1, &out), 1);
        CHECK(out == NULL);
        CHECK_U64(codecache_stats(e.cc)->moved, 1);
        /* Read again in a quiet moment: the new one, whole. */
        out = resolve1(&e, code);
        REQUIRE(out);
        CHECK_STR(func_name(&e, out), "new_name");
        CHECK_STR(func_file(&e, out), "new.py");
        mem_buffer_on_read(im.m, NULL, NULL);
        env_release(&e);
        img_release(&im);
    }
}

TEST(freed_code_object_is_not_taken)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init_ex(&im, versions[v][0], versions[v][1], 0, 1);
        uint64_t code = lined_code(&im, "f.py", "f", NULL);
        uint64_t code2 = lined_code(&im, "g.py", "g", NULL);
        /* Freed: the allocator's free-list link over the reference count,
         * the rest of the header as it was. */
        img_w64(&im, code2, 0x7f1234560000ull);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        CHECK(resolve1(&e, code2) == NULL);
        REQUIRE(resolve1(&e, code));
        /* A cached one freed later (the end of a free list): validation says
         * so, and nothing is taken. */
        img_w64(&im, code, 0);
        CHECK(resolve1(&e, code) == NULL);
        CHECK_U64(codecache_stats(e.cc)->stale, 1);
        env_release(&e);
        img_release(&im);
    }
}

/*
 * An immortal code object's reference count word: 3.12's 0xffffffff, 3.13's
 * 0xc0000000, and 3.14's with flags above (a static one, as _Py_InitCleanup,
 * the frame a call of a class pushes under its __init__): each is alive.
 */
TEST(immortal_code_objects_are_alive)
{
    static const uint64_t words[] = {0xffffffffull, 0xc0000000ull, 0x50000c0000000ull,
                                     0x10000c0000000ull};
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        for (size_t k = 0; k < ARRAY_SIZE(words); k++) {
            struct img im;
            img_init(&im, versions[v][0], versions[v][1], 0);
            uint64_t code = lined_code(&im, "f.py", "f", NULL);
            img_w64(&im, code, words[k]);
            img_commit(&im);
            struct cc_env e;
            env_init(&e, &im, im.t_code);
            if (!resolve1(&e, code))
                TEST_FAILF("%d.%d: refcount word %#" PRIx64 ": not taken", im.major, im.minor,
                           words[k]);
            env_release(&e);
            img_release(&im);
        }
    }
}

TEST(trampoline_code_is_known_on_312_up)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t tramp = img_code(&im, "<shim>", "<interpreter trampoline>", NULL, 0, NULL, 0);
        uint64_t plain = lined_code(&im, "<shim>", "trampoline", NULL);
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, tramp);
        REQUIRE(ce);
        CHECK_INT(codecache_is_shim(ce), im.lay.owner_cstack >= 0);
        ce = resolve1(&e, plain);
        REQUIRE(ce);
        CHECK_INT(codecache_is_shim(ce), 0);
        env_release(&e);
        img_release(&im);
    }
}

/*
 * A code object whose co_filename is no str shows "<invalid filename>", one
 * whose line table is no bytes object line 0 (unknown), rather than either
 * decoded as garbage; one whose co_filename cannot be read is no code.
 */
TEST(wrong_types_shown_as_invalid)
{
    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        static const uint8_t t[] = {2, 1, 4, 2};
        uint64_t bad_file = img_code(&im, "a.py", "f", NULL, 10, t, sizeof(t));
        uint64_t bad_table = img_code(&im, "b.py", "g", NULL, 20, t, sizeof(t));
        uint64_t gone = img_code(&im, "c.py", "h", NULL, 30, t, sizeof(t));
        img_f64(&im, bad_file, im.lay.co_filename, img_smallint(&im, 12345));
        img_f64(&im, bad_table, im.lay.co_linetable, img_smallint(&im, 6789));
        img_f64(&im, gone, im.lay.co_filename, 0x7e0000001000ull); /* mapped nowhere */
        img_commit(&im);
        struct cc_env e;
        env_init(&e, &im, im.t_code);
        struct code_entry *ce = resolve1(&e, bad_file);
        if (ce) {
            CHECK_STR(func_file(&e, ce), CODECACHE_INVALID_FILE);
            CHECK_STR(func_name(&e, ce), "f");
            CHECK_INT(frame_line(&e, ce, -1, 0), 10);
        } else {
            TEST_FAILF("%d.%d: a code object with an int as co_filename not resolved",
                       im.major, im.minor);
        }
        ce = resolve1(&e, bad_table);
        if (ce) {
            CHECK_STR(func_file(&e, ce), "b.py");
            CHECK_INT(frame_line(&e, ce, 0, 0), NAMES_LINE_UNKNOWN);
            CHECK_INT(frame_line(&e, ce, 0, 1), 20); /* by function: its first line */
        } else {
            TEST_FAILF("%d.%d: a code object with an int as line table not resolved",
                       im.major, im.minor);
        }
        CHECK(resolve1(&e, gone) == NULL);
        uint32_t id = codecache_unreadable_frame(e.cc, gone);
        const struct names_frame *fr = names_frame_get(&e.names, id);
        const struct names_func *fn = names_func_get(&e.names, fr->func);
        char want[64];
        snprintf(want, sizeof(want), "<unreadable code object at 0x%" PRIx64 ">", gone);
        CHECK_STR(names_str_get(&e.names, fn->name), want);
        CHECK_STR(names_str_get(&e.names, fn->file), CODECACHE_UNKNOWN_FILE);
        CHECK_INT(fr->line, NAMES_LINE_UNKNOWN);
        env_release(&e);
        img_release(&im);
    }
}
