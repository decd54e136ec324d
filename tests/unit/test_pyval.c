/*
 * pyval: values rendered from fake process images of every version, with
 * and without the interpreter's symbols, hostile objects (huge sizes,
 * cycles, wrong types, unreadable pointers), the read bound, and the
 * variables of frames (<= 3.10 frame objects, 3.11+ interpreter frames).
 */
#include "profiler/cpython/pyval.h"

#include <errno.h>
#include <math.h>

#include "image.h"
#include "test.h"

static const int versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};

#define EACH_VERSION(im)                                                          \
    for (size_t vi_ = 0; vi_ < ARRAY_SIZE(versions); vi_++)                      \
        for (int once_ = (img_init(&(im), versions[vi_][0], versions[vi_][1], 0), 1); once_; \
             once_ = 0, img_release(&(im)))

/* The rendering of obj (caller frees). */
static char *render(struct img *im, uint64_t obj)
{
    struct pyval *pv = pyval_new(&im->rt);
    struct strbuf sb = STRBUF_INIT;
    pyval_render(pv, obj, &sb);
    pyval_free(pv);
    return sb_detach(&sb);
}

#define CHECK_RENDER(im, obj, want)                                               \
    do {                                                                          \
        char *got_ = render(&(im), (obj));                                        \
        if (strcmp(got_, (want)) != 0)                                            \
            TEST_FAILF("%d.%d: rendered %s, expected %s", (im).major, (im).minor, \
                       got_, (want));                                             \
        free(got_);                                                               \
    } while (0)

/* Expected text that differs on 2.7. */
static const char *v2(const struct img *im, const char *py2, const char *py3)
{
    return im->major == 2 ? py2 : py3;
}

TEST(float_repr_is_pythons)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {1.5, "1.5"}, {3.0, "3.0"}, {0.1, "0.1"}, {-0.0, "-0.0"}, {0.0, "0.0"}, {1e100, "1e+100"},
        {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {123456789.125, "123456789.125"},
        {0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"}, {-2.5, "-2.5"},
        {1.0 / 3, "0.3333333333333333"}, {2.0 / 3, "0.6666666666666666"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {12345678901234567890.0, "1.2345678901234567e+19"}, {100.0, "100.0"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct strbuf sb = STRBUF_INIT;
        pyval_float_repr(cases[i].v, &sb);
        CHECK_STR(sb_str(&sb), cases[i].s);
        sb_release(&sb);
    }
    struct strbuf sb = STRBUF_INIT;
    pyval_float_repr(INFINITY, &sb);
    sb_adds(&sb, " ");
    pyval_float_repr(-INFINITY, &sb);
    sb_adds(&sb, " ");
    pyval_float_repr(NAN, &sb);
    CHECK_STR(sb_str(&sb), "inf -inf nan");
    sb_release(&sb);
}

TEST(scalars_on_every_version)
{
    struct img im;
    EACH_VERSION(im) {
        uint32_t big[] = {0, 0, 0, 1u << 10};          /* 2**100 */
        uint32_t negbig[] = {0, 0, 1u << 10};          /* 2**70 */
        uint32_t huge[8] = {1, 2, 3, 4, 5, 6, 7, 1};   /* 211 bits: 64 digits */
        uint64_t o[12];
        o[0] = img_smallint(&im, 0);
        o[1] = img_smallint(&im, -5);
        o[2] = img_long_digits(&im, 0, big, 4);
        o[3] = img_long_digits(&im, 1, negbig, 3);
        o[4] = img_long_digits(&im, 0, huge, 8);
        o[5] = img_float(&im, 1.5);
        o[6] = img_float(&im, 1e100);
        o[7] = img_long_digits(&im, 0, NULL, 0);
        uint32_t many[1] = {3};
        o[8] = img_long_digits(&im, 0, many, 1);
        img_commit(&im);
        CHECK_RENDER(im, im.none, "None");
        CHECK_RENDER(im, im.true_, "True");
        CHECK_RENDER(im, im.false_, "False");
        CHECK_RENDER(im, o[0], "0");
        CHECK_RENDER(im, o[1], "-5");
        CHECK_RENDER(im, o[2], v2(&im, "1267650600228229401496703205376L",
                                  "1267650600228229401496703205376"));
        CHECK_RENDER(im, o[3], v2(&im, "-1180591620717411303424L", "-1180591620717411303424"));
        CHECK_RENDER(im, o[4], "<int of 211 bits>");
        CHECK_RENDER(im, o[5], "1.5");
        CHECK_RENDER(im, o[6], "1e+100");
        CHECK_RENDER(im, o[7], v2(&im, "0L", "0"));
        CHECK_RENDER(im, o[8], v2(&im, "3L", "3"));
    }
}

TEST(strings_on_every_version)
{
    struct img im;
    EACH_VERSION(im) {
        char longer[101];
        memset(longer, 'x', 100);
        longer[100] = 0;
        uint64_t s[8];
        s[0] = img_str(&im, "hello");
        s[1] = img_str(&im, "it's \"q\"\n");
        s[2] = img_str(&im, longer);
        s[3] = img_bytes(&im, "\x00\x01" "ab\xff", 5);
        s[4] = img_str(&im, "tab\there\\");
        s[5] = img_str(&im, "it's");
        uint32_t cps[3] = {0xe9, 0x2603, 0x1f600};
        s[6] = im.major == 2 ? img_unicode27(&im, cps, 2, 4) : img_ustr_cps(&im, cps, 3, 4, IMG_STR_COMPACT);
        s[7] = im.major == 2 ? img_unicode27(&im, cps, 1, 4) : img_ustr_cps(&im, cps, 2, 2, IMG_STR_LEGACY);
        img_commit(&im);
        CHECK_RENDER(im, s[0], "'hello'");
        CHECK_RENDER(im, s[1], "'it\\'s \"q\"\\n'");
        char want[200];
        snprintf(want, sizeof(want), "'%.80s'... (%s, 100 %s)", longer, "str",
                 im.major == 2 ? "bytes" : "chars");
        CHECK_RENDER(im, s[2], want);
        CHECK_RENDER(im, s[3], v2(&im, "'\\x00\\x01ab\\xff'", "b'\\x00\\x01ab\\xff'"));
        CHECK_RENDER(im, s[4], "'tab\\there\\\\'");
        CHECK_RENDER(im, s[5], "\"it's\"");
        CHECK_RENDER(im, s[6], v2(&im, "u'\\xe9\\u2603'", "'é☃😀'"));
        CHECK_RENDER(im, s[7], v2(&im, "u'\\xe9'", "'é☃'"));
    }
}

TEST(containers_on_every_version)
{
    struct img im;
    EACH_VERSION(im) {
        uint64_t one = img_smallint(&im, 1), two = img_str(&im, "two");
        uint64_t pair[2] = {one, two};
        uint64_t c[10];
        c[0] = img_tuple(&im, NULL, 0);
        c[1] = img_tuple(&im, pair, 1);
        c[2] = img_tuple(&im, pair, 2);
        c[3] = img_list(&im, pair, 2);
        uint64_t ten[10];
        for (int i = 0; i < 10; i++)
            ten[i] = img_smallint(&im, i);
        c[4] = img_list(&im, ten, 10);
        uint64_t inner3 = img_list(&im, &one, 1);
        uint64_t inner2 = img_list(&im, &inner3, 1);
        uint64_t n2[2] = {inner2, one};
        c[5] = img_list(&im, n2, 2);
        const char *keys[] = {"a", "b"};
        uint64_t vals[] = {one, im.none};
        c[6] = img_str_dict(&im, keys, vals, 2, 0);
        c[7] = img_set(&im, &one, 1, 0);
        c[8] = img_set(&im, NULL, 0, 1);
        c[9] = img_set(&im, pair, 2, 1);
        img_commit(&im);
        CHECK_RENDER(im, c[0], "()");
        CHECK_RENDER(im, c[1], "(1,)");
        CHECK_RENDER(im, c[2], "(1, 'two')");
        CHECK_RENDER(im, c[3], "[1, 'two']");
        CHECK_RENDER(im, c[4], "[0, 1, 2, 3, 4, ...] (list, 10 items)");
        CHECK_RENDER(im, c[5], "[[[...]], 1]");
        CHECK_RENDER(im, c[6], "{'a': 1, 'b': None}");
        CHECK_RENDER(im, c[7], v2(&im, "set([1])", "{1}"));
        CHECK_RENDER(im, c[8], "frozenset()");
        CHECK_RENDER(im, c[9], v2(&im, "frozenset([1, 'two'])", "frozenset({1, 'two'})"));
    }
}

TEST(other_objects_and_subclasses)
{
    struct img im;
    EACH_VERSION(im) {
        const char *names[] = {"x"};
        uint64_t one = img_smallint(&im, 1);
        uint64_t point = img_instance(&im, "Point", names, &one, 1, img_inst_default(&im), NULL);
        uint64_t myint_t = img_type(&im, "MyInt");
        img_f64(&im, myint_t, im.lay.tp_flags,
                IMG_TPFLAGS_HEAPTYPE | (im.major == 2 ? IMG_TPFLAGS_INT_SUBCLASS : IMG_TPFLAGS_LONG_SUBCLASS));
        uint64_t myint = img_smallint(&im, 5);
        img_w64(&im, myint + 8, myint_t);
        uint64_t mylist_t = img_type(&im, "MyList");
        img_f64(&im, mylist_t, im.lay.tp_flags, IMG_TPFLAGS_HEAPTYPE | IMG_TPFLAGS_LIST_SUBCLASS);
        uint64_t items[7] = {one, one, one, one, one, one, one};
        uint64_t mylist = img_list(&im, items, 7), small = img_list(&im, items, 1);
        img_w64(&im, mylist + 8, mylist_t);
        img_w64(&im, small + 8, mylist_t);
        uint64_t myfloat_t = img_type(&im, "MyFloat");
        img_f64(&im, myfloat_t, im.lay.tp_base, im.t_float);
        uint64_t myfloat = img_float(&im, 2.5);
        img_w64(&im, myfloat + 8, myfloat_t);
        img_commit(&im);
        char want[64];
        snprintf(want, sizeof(want), "<Point at 0x%" PRIx64 ">", point);
        CHECK_RENDER(im, point, want);
        CHECK_RENDER(im, myint, "5 (MyInt)");
        CHECK_RENDER(im, mylist, "[1, 1, 1, 1, 1, ...] (MyList, 7 items)");
        CHECK_RENDER(im, small, "[1] (MyList)");
        CHECK_RENDER(im, myfloat, "2.5 (MyFloat)");
    }
}

TEST(without_symbols_types_come_from_names_and_flags)
{
    struct img im;
    EACH_VERSION(im) {
        uint32_t big[] = {0, 0, 0, 1u << 10};
        uint64_t one = img_smallint(&im, 1);
        uint64_t pair[2] = {one, img_float(&im, 0.1)};
        uint64_t t = img_tuple(&im, pair, 2);
        uint64_t l = img_list(&im, pair, 2);
        uint64_t b = img_long_digits(&im, 0, big, 4);
        uint64_t s = img_set(&im, &one, 1, 0);
        uint64_t str = img_str(&im, "x");
        img_forget_known(&im);
        CHECK_RENDER(im, im.none, "None");
        CHECK_RENDER(im, im.true_, "True");
        CHECK_RENDER(im, im.false_, "False");
        CHECK_RENDER(im, t, "(1, 0.1)");
        CHECK_RENDER(im, l, "[1, 0.1]");
        CHECK_RENDER(im, b, v2(&im, "1267650600228229401496703205376L",
                               "1267650600228229401496703205376"));
        CHECK_RENDER(im, s, v2(&im, "set([1])", "{1}"));
        CHECK_RENDER(im, str, "'x'");
    }
}

TEST(hostile_values)
{
    struct img im;
    EACH_VERSION(im) {
        uint64_t hole = img_hole(&im);
        uint64_t one = img_smallint(&im, 1);
        /* A list claiming 2**50 items, its array unreadable. */
        uint64_t huge = img_list(&im, &one, 1);
        img_w64(&im, huge + 16, 1ull << 50);
        img_w64(&im, huge + (uint64_t)im.lay.list_item, hole);
        /* A tuple with a negative size. */
        uint64_t neg = img_tuple(&im, &one, 1);
        img_w64(&im, neg + 16, (uint64_t)-3);
        /* An int with a digit past 30 bits. */
        uint32_t bad[2] = {1u << 31, 1};
        uint64_t badint = img_long_digits(&im, 0, bad, 2);
        /* A str of kind 3. */
        uint64_t badstr = im.major == 2 ? img_str27(&im, "x", 1) : img_ustr_raw(&im, 1, 3u << 2 | 1u << 5, 64);
        if (im.major == 2)
            img_w64(&im, badstr + 16, (uint64_t)-1);
        /* A list holding itself, and one whose item is unreadable. */
        uint64_t self = img_list(&im, &one, 1);
        img_w64(&im, img_r64(&im, self + (uint64_t)im.lay.list_item), self);
        uint64_t bad_item = img_list(&im, &hole, 1);
        /* An object whose type is unreadable. */
        uint64_t lost = img_object(&im, hole, 32);
        /* A set whose mask is not a power of two less one. */
        uint64_t badset = img_set(&im, &one, 1, 0);
        img_w64(&im, badset + (uint64_t)im.lay.set_mask, 6);
        img_commit(&im);
        char want[96];
        snprintf(want, sizeof(want), "<list at 0x%" PRIx64 ">", huge);
        CHECK_RENDER(im, huge, want);
        snprintf(want, sizeof(want), "<tuple at 0x%" PRIx64 ">", neg);
        CHECK_RENDER(im, neg, want);
        snprintf(want, sizeof(want), "<%s at 0x%" PRIx64 ">", v2(&im, "long", "int"), badint);
        CHECK_RENDER(im, badint, want);
        snprintf(want, sizeof(want), "<str at 0x%" PRIx64 ">", badstr);
        CHECK_RENDER(im, badstr, want);
        CHECK_RENDER(im, self, "[[[...]]]");
        snprintf(want, sizeof(want), "[<unreadable at 0x%" PRIx64 ">]", hole);
        CHECK_RENDER(im, bad_item, want);
        snprintf(want, sizeof(want), "<unreadable at 0x%" PRIx64 ">", hole);
        CHECK_RENDER(im, hole, want);
        snprintf(want, sizeof(want), "<unreadable at 0x%" PRIx64 ">", lost);
        CHECK_RENDER(im, lost, want);
        snprintf(want, sizeof(want), "<set at 0x%" PRIx64 ">", badset);
        CHECK_RENDER(im, badset, want);
        CHECK_RENDER(im, 0, "<NULL>");
    }
}

TEST(reads_per_value_are_bounded)
{
    struct img im;
    img_init(&im, 3, 12, 4u << 20);
    /* 5 lists of 5 lists of 5 long strings: far more than the bound allows. */
    char text[200];
    memset(text, 'y', sizeof(text) - 1);
    text[sizeof(text) - 1] = 0;
    uint64_t outer[5];
    for (int i = 0; i < 5; i++) {
        uint64_t mid[5];
        for (int j = 0; j < 5; j++) {
            uint64_t leaf[5];
            for (int k = 0; k < 5; k++)
                leaf[k] = img_str(&im, text);
            mid[j] = img_list(&im, leaf, 5);
        }
        outer[i] = img_list(&im, mid, 5);
    }
    uint64_t top = img_list(&im, outer, 5);
    /* And dicts of dicts of unknown objects, each type read apart. */
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
    uint64_t douter[5];
    for (int i = 0; i < 5; i++) {
        uint64_t dmid[5];
        for (int j = 0; j < 5; j++) {
            uint64_t odd[5];
            for (int k = 0; k < 5; k++)
                odd[k] = img_object(&im, img_type(&im, "Odd"), 32);
            dmid[j] = img_str_dict(&im, keys, odd, 5, 0);
        }
        douter[i] = img_str_dict(&im, keys, dmid, 5, 0);
    }
    uint64_t dtop = img_str_dict(&im, keys, douter, 5, 0);
    img_commit(&im);
    struct pyval *pv = pyval_new(&im.rt);
    uint64_t tops[2] = {top, dtop};
    for (int i = 0; i < 2; i++) {
        struct strbuf sb = STRBUF_INIT;
        uint64_t before = mem_read_calls(im.m);
        pyval_render(pv, tops[i], &sb);
        uint64_t used = mem_read_calls(im.m) - before;
        if (used > PYVAL_MAX_READS)
            TEST_FAILF("%" PRIu64 " reads for one value", used);
        CHECK(strncmp(sb_str(&sb), i ? "{'k0': {" : "[[", i ? 8 : 2) == 0);
        CHECK(strstr(sb_str(&sb), "...") != NULL);
        CHECK(strstr(sb_str(&sb), "<list at") == NULL && strstr(sb_str(&sb), "<dict at") == NULL);
        sb_release(&sb);
    }
    pyval_free(pv);
    img_release(&im);
}

/* Finds a variable by name in ls; NULL when absent. */
static const struct pylocal *find_var(const struct pylocals *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0)
            return &ls->v[i];
    return NULL;
}

#define CHECK_VAR(ls, nm, kind_, value_)                                             \
    do {                                                                             \
        const struct pylocal *v_ = find_var((ls), (nm));                             \
        if (!v_)                                                                     \
            TEST_FAILF("%d.%d: no variable %s", im.major, im.minor, (nm));           \
        else if (v_->kind != (kind_) || strcmp(v_->value, (value_)) != 0)            \
            TEST_FAILF("%d.%d: %s is %s %s, expected %s %s", im.major, im.minor, (nm), \
                       pylocal_kind_name(v_->kind), v_->value,                      \
                       pylocal_kind_name(kind_), (value_));                          \
    } while (0)

TEST(frame_variables_on_every_version)
{
    struct img im;
    EACH_VERSION(im) {
        int old = im.lay.frames == FRAME_OBJECTS;
        uint64_t one = img_smallint(&im, 1);
        uint64_t cell_x = img_cell(&im, img_str(&im, "captured"));
        uint64_t cell_y = img_cell(&im, img_float(&im, 0.5));
        uint64_t empty_cell = img_cell(&im, 0);
        uint64_t rest = img_tuple(&im, &one, 1);
        struct img_var vars[] = {
            {"a", IMG_VAR_LOCAL, one},
            {"args", IMG_VAR_LOCAL, rest},
            {"unbound", IMG_VAR_LOCAL, 0},
            {"s", IMG_VAR_LOCAL, img_str(&im, "text")},
            {"x", IMG_VAR_CELL, cell_x},
            {"e", IMG_VAR_CELL, empty_cell},
            {"y", IMG_VAR_FREE, cell_y},
        };
        uint64_t code;
        uint64_t f = img_frame_vars(&im, "f", vars, ARRAY_SIZE(vars), 1, 0x04, &code);
        /* 3.11+: a cell slot before MAKE_CELL holds the raw value; hidden slots are skipped. */
        struct img_var raw[] = {
            {"p", IMG_VAR_LOCAL | IMG_VAR_CELL, img_str(&im, "raw")},
            {"q", IMG_VAR_LOCAL | IMG_VAR_HIDDEN, one},
        };
        uint64_t g = old ? 0 : img_frame_vars(&im, "g", raw, 2, 1, 0, NULL);
        uint64_t none_code;
        uint64_t none = img_frame_vars(&im, "none", NULL, 0, 0, 0, &none_code);
        img_commit(&im);

        struct pyval *pv = pyval_new(&im.rt);
        struct pylocals ls = PYLOCALS_INIT;
        int ret = pyval_locals(pv, f, code, &ls);
        if (ret)
            TEST_FAILF("%d.%d: pyval_locals: %d", im.major, im.minor, ret);
        CHECK_INT((int)ls.n, 5);
        if (ls.n == 5) {
            /* Slot order: parameters first, then locals, cells, free variables. */
            CHECK_STR(ls.v[0].name, "a");
            CHECK_STR(ls.v[1].name, "args");
            CHECK_STR(ls.v[4].name, "y");
        }
        CHECK_VAR(&ls, "a", PYLOCAL_ARG, "1");
        CHECK_VAR(&ls, "args", PYLOCAL_ARG, "(1,)");
        CHECK_VAR(&ls, "s", PYLOCAL_LOCAL, "'text'");
        CHECK_VAR(&ls, "x", PYLOCAL_CELL, "'captured'");
        CHECK_VAR(&ls, "y", PYLOCAL_FREE, "0.5");
        CHECK(find_var(&ls, "unbound") == NULL && find_var(&ls, "e") == NULL);
        pylocals_release(&ls);
        /* The frame runs another code object now. */
        CHECK_INT(pyval_locals(pv, f, code + 8, &ls), -EINVAL);
        CHECK_INT(pyval_locals(pv, img_hole(&im), 0, &ls), -EFAULT);
        CHECK_INT(pyval_locals(pv, img_hole(&im), code, &ls), -EFAULT);
        /* No variables at all (a module's frame): nothing, with or without the code known. */
        CHECK_INT(pyval_locals(pv, none, none_code, &ls), 0);
        CHECK_INT(pyval_locals(pv, none, 0, &ls), 0);
        CHECK_INT(pyval_locals(pv, none, code, &ls), -EINVAL);
        CHECK_INT((int)ls.n, 0);
        if (g) {
            CHECK_INT(pyval_locals(pv, g, 0, &ls), 0);
            CHECK_INT((int)ls.n, 1);
            CHECK_VAR(&ls, "p", PYLOCAL_ARG, "'raw'");
            pylocals_release(&ls);
        }
        pyval_free(pv);
    }
}

TEST(hostile_frames)
{
    struct img im;
    EACH_VERSION(im) {
        const struct pylayout *l = &im.lay;
        struct img_var vars[] = {{"a", IMG_VAR_LOCAL, im.none}};
        uint64_t code, code2, code3;
        uint64_t f = img_frame_vars(&im, "f", vars, 1, 0, 0, &code);
        img_f32(&im, code, l->frames == FRAME_OBJECTS ? l->co_nlocals : l->co_nlocalsplus,
                1u << 30);
        /* A name count that disagrees with the name tuple. */
        uint64_t f2 = img_frame_vars(&im, "f2", vars, 1, 0, 0, &code2);
        img_f32(&im, code2, l->frames == FRAME_OBJECTS ? l->co_nlocals : l->co_nlocalsplus, 2);
        /* A "code object" of another type. */
        uint64_t f3 = img_frame_vars(&im, "f3", vars, 1, 0, 0, &code3);
        img_w64(&im, code3 + 8, im.t_str);
        img_commit(&im);
        struct pyval *pv = pyval_new(&im.rt);
        struct pylocals ls = PYLOCALS_INIT;
        CHECK_INT(pyval_locals(pv, f, 0, &ls), -E2BIG);
        int r2 = pyval_locals(pv, f2, 0, &ls);
        CHECK(r2 == -EINVAL || r2 == -EFAULT);
        CHECK_INT(pyval_locals(pv, f3, 0, &ls), -EINVAL);
        CHECK_INT((int)ls.n, 0);
        pylocals_release(&ls);
        pyval_free(pv);
    }
}

/* A frame holding one value of each kind, for the mutation test. */
static uint64_t busy_frame(struct img *im)
{
    uint32_t big[] = {0, 0, 0, 1u << 10};
    uint64_t one = img_smallint(im, 1), s = img_str(im, "text");
    uint64_t pair[2] = {one, s};
    const char *keys[] = {"a", "b"};
    uint64_t nested = img_list(im, pair, 2);
    uint64_t vals[2] = {nested, img_tuple(im, pair, 2)};
    uint32_t cps[2] = {0xe9, 0x2603};
    struct img_var vars[] = {
        {"i", IMG_VAR_LOCAL, one},
        {"b", IMG_VAR_LOCAL, img_long_digits(im, 1, big, 4)},
        {"f", IMG_VAR_LOCAL, img_float(im, 0.1)},
        {"s", IMG_VAR_LOCAL, s},
        {"u", IMG_VAR_LOCAL, im->major == 2 ? img_unicode27(im, cps, 2, 4)
                                            : img_ustr_cps(im, cps, 2, 2, IMG_STR_COMPACT)},
        {"by", IMG_VAR_LOCAL, img_bytes(im, "\x01z", 2)},
        {"l", IMG_VAR_LOCAL, img_list(im, vals, 2)},
        {"d", IMG_VAR_LOCAL, img_str_dict(im, keys, vals, 2, 0)},
        {"st", IMG_VAR_LOCAL, img_set(im, pair, 2, 0)},
        {"c", IMG_VAR_CELL, img_cell(im, nested)},
        {"n", IMG_VAR_FREE, img_cell(im, im->none)},
    };
    return img_frame_vars(im, "busy", vars, ARRAY_SIZE(vars), 2, 0, NULL);
}

TEST(mutated_images_never_crash)
{
    struct img im;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    EACH_VERSION(im) {
        uint64_t f = busy_frame(&im);
        img_commit(&im);
        size_t used = im.used;
        unsigned char *orig = xmalloc(used);
        memcpy(orig, im.buf, used);
        for (int round = 0; round < 400; round++) {
            memcpy(im.buf, orig, used);
            for (int k = 0; k < 8; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = 64 + (size_t)(seed >> 33) % (used - 64);
                im.buf[at] = (unsigned char)(seed >> 13);
            }
            img_commit(&im);
            struct pyval *pv = pyval_new(&im.rt);
            struct pylocals ls = PYLOCALS_INIT;
            if (pyval_locals(pv, f, 0, &ls) == 0)
                for (size_t i = 0; i < ls.n; i++)
                    CHECK(ls.v[i].name && ls.v[i].value && strlen(ls.v[i].value) < 4096);
            pylocals_release(&ls);
            pyval_free(pv);
        }
        free(orig);
    }
}
