/*
 * Object readers: dicts of every layout, instance attributes (tp_dictoffset,
 * 3.11/3.12/3.13 managed dicts and shared-key values), type names, and
 * threading's registry of thread names, on fake images.
 */
#include "profiler/cpython/pyobj.h"

#include <errno.h>

#include "test.h"

#include "image.h"

static const int versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};

#define FOR_EACH_VERSION(im)                                                    \
    for (size_t vi_ = 0; vi_ < ARRAY_SIZE(versions); vi_++)                    \
        for (int once_ = (img_init(&(im), versions[vi_][0], versions[vi_][1], 0), 1); once_; \
             once_ = 0, img_release(&(im)))

#define VER(im) (im).major, (im).minor

/* Finds the entry with key k in v[0..n); NULL if absent. */
static const struct pydict_entry *by_key(const struct pydict_entry *v, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].key == k)
            return &v[i];
    return NULL;
}

/* ---- dicts ---------------------------------------------------------------- */

TEST(dict_entries_every_layout)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t k[4], val[4];
        struct img_kv kv[4];
        const char *names[4] = {"alpha", "beta", "gone", "delta"};
        for (int i = 0; i < 4; i++) {
            k[i] = img_str(&im, names[i]);
            val[i] = img_object(&im, im.t_int, 32);
            kv[i] = (struct img_kv){0x1000u + (uint64_t)i * 7, k[i], val[i]};
        }
        kv[2].value = 0; /* deleted */
        uint64_t d = img_dict(&im, kv, 4, 0);
        img_commit(&im);
        struct pydict_entry *v = NULL;
        size_t n = 99;
        int ret = pydict_entries(&im.rt, d, &v, &n);
        if (ret != 0 || n != 3) {
            TEST_FAILF("%d.%d: ret %d n %zu", VER(im), ret, n);
            free(v);
            continue;
        }
        for (int i = 0; i < 4; i++) {
            const struct pydict_entry *e = by_key(v, n, k[i]);
            if (i == 2) {
                CHECK(e == NULL);
                continue;
            }
            if (!e || e->value != val[i] || e->hash != kv[i].hash)
                TEST_FAILF("%d.%d: entry %s wrong", VER(im), names[i]);
        }
        /* 3.6+ keep insertion order. */
        if (im.lay.dicts != DICT_27)
            CHECK(v[0].key == k[0] && v[1].key == k[1] && v[2].key == k[3]);
        free(v);
    }
}

TEST(dict_get_str_every_layout)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        const char *names[] = {"_active", "_limbo", "x", "_active_limbo_lock", "deleted"};
        uint64_t vals[] = {0x111110, 0x222220, 0x333330, 0x444440, 0};
        uint64_t d = img_str_dict(&im, names, vals, 5, 0);
        img_commit(&im);
        for (int i = 0; i < 4; i++) {
            uint64_t got = 0;
            int ret = pydict_get_str(&im.rt, d, names[i], &got);
            if (ret != 0 || got != vals[i])
                TEST_FAILF("%d.%d: %s: ret %d got 0x%" PRIx64, VER(im), names[i], ret, got);
        }
        uint64_t got = 0;
        CHECK_INT(pydict_get_str(&im.rt, d, "deleted", &got), -ENOENT);
        CHECK_INT(pydict_get_str(&im.rt, d, "_activ", &got), -ENOENT);
        CHECK_INT(pydict_get_str(&im.rt, d, "_active_", &got), -ENOENT);
        CHECK_INT(pydict_get_str(&im.rt, d, "", &got), -ENOENT);
        CHECK_INT(pydict_get_str(&im.rt, d, "y", &got), -ENOENT);
    }
}

TEST(dict_unicode_kind_311)
{
    for (int minor = 11; minor <= 13; minor++) {
        struct img im;
        img_init(&im, 3, minor, 0);
        const char *names[] = {"a", "bb", "ccc"};
        uint64_t vals[] = {0x10, 0x20, 0x30};
        uint64_t d = img_str_dict(&im, names, vals, 3, IMG_DICT_UNICODE);
        img_commit(&im);
        struct pydict_entry *v;
        size_t n;
        REQUIRE(pydict_entries(&im.rt, d, &v, &n) == 0);
        CHECK_INT(n, 3);
        for (size_t i = 0; i < n; i++) {
            CHECK_U64(v[i].hash, 0); /* unicode entries keep no hash */
            CHECK_U64(v[i].value, vals[i]);
        }
        free(v);
        uint64_t got;
        CHECK_INT(pydict_get_str(&im.rt, d, "bb", &got), 0);
        CHECK_U64(got, 0x20);
        img_release(&im);
    }
}

TEST(dict_split_tables)
{
    for (int minor = 6; minor <= 13; minor++) {
        struct img im;
        img_init(&im, 3, minor, 0);
        const char *names[] = {"first", "second", "third"};
        uint64_t vals[] = {0xA0, 0, 0xC0}; /* "second" deleted from this instance */
        uint64_t d = img_str_dict(&im, names, vals, 3, IMG_DICT_SPLIT);
        img_commit(&im);
        struct pydict_entry *v;
        size_t n;
        REQUIRE(pydict_entries(&im.rt, d, &v, &n) == 0);
        if (n != 2 || v[0].value != 0xA0 || v[1].value != 0xC0)
            TEST_FAILF("3.%d: n %zu", minor, n);
        free(v);
        uint64_t got = 0;
        CHECK_INT(pydict_get_str(&im.rt, d, "third", &got), 0);
        CHECK_U64(got, 0xC0);
        CHECK_INT(pydict_get_str(&im.rt, d, "second", &got), -ENOENT);
        img_release(&im);
    }
}

TEST(dict_large_tables)
{
    /* Enough entries for 2-byte indices (3.6+) or an outside table (2.7). */
    struct img im;
    FOR_EACH_VERSION(im)
    {
        enum { N = 200 };
        char *names[N];
        uint64_t vals[N];
        for (int i = 0; i < N; i++) {
            names[i] = xmalloc(16);
            snprintf(names[i], 16, "key%03d", i);
            vals[i] = 0x100000u + (uint64_t)i * 16;
        }
        uint64_t d = img_str_dict(&im, (const char *const *)names, vals, N, 0);
        img_commit(&im);
        struct pydict_entry *v;
        size_t n;
        REQUIRE(pydict_entries(&im.rt, d, &v, &n) == 0);
        CHECK_INT(n, N);
        free(v);
        uint64_t got = 0;
        int ret = pydict_get_str(&im.rt, d, "key137", &got);
        if (ret != 0 || got != vals[137])
            TEST_FAILF("%d.%d: key137: %d 0x%" PRIx64, VER(im), ret, got);
        for (int i = 0; i < N; i++)
            free(names[i]);
    }
}

TEST(dict_27_small_table_inside_object)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    const char *names[] = {"a"};
    uint64_t vals[] = {0x77};
    uint64_t d = img_str_dict(&im, names, vals, 1, 0);
    CHECK_U64(img_r64(&im, d + 40), d + 56); /* ma_table == ma_smalltable */
    img_commit(&im);
    uint64_t got;
    CHECK_INT(pydict_get_str(&im.rt, d, "a", &got), 0);
    CHECK_U64(got, 0x77);
    img_release(&im);
}

TEST(dict_garbage_is_an_error)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        const struct pylayout *l = &im.lay;
        const char *names[] = {"a", "b"};
        uint64_t vals[] = {1, 2};
        uint64_t good = img_str_dict(&im, names, vals, 2, 0);
        uint64_t bad[6] = {0};
        int nbad = 0;
        if (l->dicts == DICT_27) {
            bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
            img_w64(&im, bad[nbad++] + 32, 1ull << 40);      /* mask huge */
            bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
            img_w64(&im, bad[nbad++] + 32, 6);               /* mask not 2^k-1 */
            bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
            img_w64(&im, bad[nbad++] + 32, (uint64_t)-1);    /* negative */
        } else {
            uint64_t keys;
            bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
            keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
            img_w64(&im, keys + (uint64_t)l->dk_nentries, 1ull << 40);
            bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
            keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
            img_w64(&im, keys + (uint64_t)l->dk_nentries, (uint64_t)-3);
            if (l->dicts == DICT_36) {
                bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
                keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
                img_w64(&im, keys + (uint64_t)l->dk_size, 1ull << 30);
                bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
                keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
                img_w64(&im, keys + (uint64_t)l->dk_size, 12);
            } else {
                bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
                keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
                img_w8(&im, keys + (uint64_t)l->dk_log2_index_bytes, 63);
                bad[nbad] = img_str_dict(&im, names, vals, 2, 0);
                keys = img_r64(&im, bad[nbad++] + (uint64_t)l->ma_keys);
                img_w8(&im, keys + (uint64_t)l->dk_kind, 9);
            }
        }
        /* Keys pointing nowhere, and a dict whose entries run off the image. */
        uint64_t nowhere = img_str_dict(&im, names, vals, 2, 0);
        uint64_t offend = img_str_dict(&im, names, vals, 2, 0);
        if (l->dicts == DICT_27) {
            img_w64(&im, nowhere + 40, img_hole(&im));
            img_w64(&im, offend + 40, im.base + IMG_DEFAULT_CAP - 48);
            img_w64(&im, offend + 32, 1023);
        } else {
            img_w64(&im, nowhere + (uint64_t)l->ma_keys, img_hole(&im));
            uint64_t keys = img_r64(&im, offend + (uint64_t)l->ma_keys);
            img_w64(&im, keys + (uint64_t)l->dk_nentries, 60000);
        }
        img_commit(&im);
        struct pydict_entry *v;
        size_t n;
        uint64_t got;
        CHECK_INT(pydict_entries(&im.rt, good, &v, &n), 0);
        free(v);
        for (int i = 0; i < nbad; i++) {
            int ret = pydict_entries(&im.rt, bad[i], &v, &n);
            if (ret != -EINVAL)
                TEST_FAILF("%d.%d: garbage dict %d: %d", VER(im), i, ret);
            CHECK(v == NULL && n == 0);
            CHECK_INT(pydict_get_str(&im.rt, bad[i], "a", &got), -EINVAL);
        }
        CHECK_INT(pydict_entries(&im.rt, nowhere, &v, &n), -EFAULT);
        CHECK_INT(pydict_entries(&im.rt, offend, &v, &n), -EFAULT);
        CHECK_INT(pydict_entries(&im.rt, 0, &v, &n), -EFAULT);
        CHECK_INT(pydict_get_str(&im.rt, img_hole(&im), "a", &got), -EFAULT);
    }
}

/* Keys that are not strs (or unreadable) never match and never crash. */
TEST(dict_non_str_keys)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        struct img_kv kv[3] = {
            {1, img_object(&im, im.t_int, 32), 0x10},
            {2, img_hole(&im), 0x20},
            {3, img_str(&im, "name"), 0x30},
        };
        uint64_t d = img_dict(&im, kv, 3, 0);
        img_commit(&im);
        uint64_t got = 0;
        CHECK_INT(pydict_get_str(&im.rt, d, "name", &got), 0);
        CHECK_U64(got, 0x30);
        CHECK_INT(pydict_get_str(&im.rt, d, "nam", &got), -ENOENT);
    }
}

/* ---- attributes -------------------------------------------------------------- */

static void check_attr(struct img *im, uint64_t obj, const char *name, uint64_t want)
{
    uint64_t got = 0;
    int ret = pyobj_getattr(&im->rt, obj, name, &got);
    if (ret != 0 || got != want)
        TEST_FAILF("%d.%d getattr %s: ret %d got 0x%" PRIx64 " want 0x%" PRIx64, im->major,
                   im->minor, name, ret, got, want);
}

static void check_noattr(struct img *im, uint64_t obj, const char *name)
{
    uint64_t got = 0;
    int ret = pyobj_getattr(&im->rt, obj, name, &got);
    if (ret != -ENOENT)
        TEST_FAILF("%d.%d getattr %s: ret %d, expected -ENOENT", im->major, im->minor, name, ret);
}

static const char *const attr_names[] = {"_name", "_ident", "_daemonic", "_gone"};
static const uint64_t attr_vals[] = {0xAAA0, 0xBBB0, 0xCCC0, 0};

TEST(getattr_dictoffset_27_to_310)
{
    for (size_t v = 0; v < 6; v++) {
        struct img im;
        img_init(&im, versions[v][0], versions[v][1], 0);
        uint64_t o = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_DICT, NULL);
        uint64_t t_nodict;
        uint64_t nodict = img_instance(&im, "Slots", attr_names, attr_vals, 1, IMG_INST_DICT,
                                       &t_nodict);
        img_f64(&im, t_nodict, im.lay.tp_dictoffset, 0);
        uint64_t t_nulldict;
        uint64_t nulldict = img_instance(&im, "Empty", attr_names, attr_vals, 1, IMG_INST_DICT,
                                         &t_nulldict);
        img_w64(&im, nulldict + 16, 0);
        img_commit(&im);
        check_attr(&im, o, "_name", 0xAAA0);
        check_attr(&im, o, "_ident", 0xBBB0);
        check_attr(&im, o, "_daemonic", 0xCCC0);
        check_noattr(&im, o, "_gone");
        check_noattr(&im, o, "_nope");
        check_noattr(&im, nodict, "_name");
        check_noattr(&im, nulldict, "_name");
        img_release(&im);
    }
}

TEST(getattr_managed_311)
{
    struct img im;
    img_init(&im, 3, 11, 0);
    uint64_t o = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_VALUES, NULL);
    uint64_t md = img_instance(&im, "Thread", attr_names, attr_vals, 3, IMG_INST_MANAGED, NULL);
    /* Values at obj-32, dict slot at obj-24 empty. */
    CHECK(img_r64(&im, o - 32) != 0);
    CHECK_U64(img_r64(&im, o - 24), 0);
    uint64_t none = img_instance(&im, "Thread", attr_names, attr_vals, 2, IMG_INST_VALUES, NULL);
    img_w64(&im, none - 32, 0);
    img_commit(&im);
    check_attr(&im, o, "_name", 0xAAA0);
    check_attr(&im, o, "_daemonic", 0xCCC0);
    check_noattr(&im, o, "_gone");
    check_noattr(&im, o, "other");
    check_attr(&im, md, "_ident", 0xBBB0);
    check_noattr(&im, md, "_gone");
    check_noattr(&im, none, "_name");
    img_release(&im);
}

TEST(getattr_managed_312_tagged_values)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t o = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_VALUES, NULL);
    CHECK(img_r64(&im, o - 24) & 1); /* values - 1 */
    uint64_t md = img_instance(&im, "Thread", attr_names, attr_vals, 3, IMG_INST_MANAGED, NULL);
    CHECK_U64(img_r64(&im, md - 24) & 1, 0);
    uint64_t none = img_instance(&im, "Thread", attr_names, attr_vals, 2, IMG_INST_VALUES, NULL);
    img_w64(&im, none - 24, 0);
    img_commit(&im);
    check_attr(&im, o, "_name", 0xAAA0);
    check_attr(&im, o, "_ident", 0xBBB0);
    check_noattr(&im, o, "_gone");
    check_attr(&im, md, "_daemonic", 0xCCC0);
    check_noattr(&im, none, "_name");
    img_release(&im);
}

TEST(getattr_managed_313_inline_values)
{
    struct img im;
    img_init(&im, 3, 13, 0);
    uint64_t o = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_VALUES, NULL);
    uint64_t invalid = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_VALUES, NULL);
    img_w8(&im, invalid + IMG_INST_SIZE + 3, 0); /* values no longer valid */
    /* Materialised: a dict in the managed slot wins over the inline values. */
    uint64_t both = img_instance(&im, "Thread", attr_names, attr_vals, 4, IMG_INST_VALUES, NULL);
    const char *dnames[] = {"_name"};
    uint64_t dvals[] = {0xD1C70};
    img_w64(&im, both - 24, img_str_dict(&im, dnames, dvals, 1, 0));
    uint64_t md = img_instance(&im, "Thread", attr_names, attr_vals, 2, IMG_INST_MANAGED, NULL);
    /* Without Py_TPFLAGS_INLINE_VALUES there are no inline values to read. */
    uint64_t t_flat;
    uint64_t flat = img_instance(&im, "Thread", attr_names, attr_vals, 2, IMG_INST_VALUES, &t_flat);
    img_f64(&im, t_flat, im.lay.tp_flags, IMG_TPFLAGS_MANAGED_DICT | IMG_TPFLAGS_HEAPTYPE);
    uint64_t t_big;
    uint64_t big = img_instance(&im, "Thread", attr_names, attr_vals, 2, IMG_INST_VALUES, &t_big);
    img_f64(&im, t_big, im.lay.tp_basicsize, 1ull << 40);
    img_commit(&im);
    check_attr(&im, o, "_name", 0xAAA0);
    check_attr(&im, o, "_daemonic", 0xCCC0);
    check_noattr(&im, o, "_gone");
    check_noattr(&im, invalid, "_name");
    check_attr(&im, both, "_name", 0xD1C70);
    check_noattr(&im, both, "_ident");
    check_attr(&im, md, "_ident", 0xBBB0);
    check_noattr(&im, flat, "_name");
    check_noattr(&im, big, "_name");
    img_release(&im);
}

TEST(getattr_garbage)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t o = img_instance(&im, "T", attr_names, attr_vals, 2, img_inst_default(&im), NULL);
        /* An instance whose dict slot points back at itself. */
        uint64_t t_self;
        uint64_t self = img_instance(&im, "T", attr_names, attr_vals, 2, IMG_INST_DICT, &t_self);
        img_w64(&im, self + 16, self);
        uint64_t t_hole;
        uint64_t typeless = img_instance(&im, "T", attr_names, attr_vals, 2, IMG_INST_DICT, &t_hole);
        img_w64(&im, typeless + 8, img_hole(&im));
        img_commit(&im);
        uint64_t got;
        check_attr(&im, o, "_name", 0xAAA0);
        CHECK(pyobj_getattr(&im.rt, self, "_name", &got) < 0);
        CHECK_INT(pyobj_getattr(&im.rt, typeless, "_name", &got), -EFAULT);
        CHECK_INT(pyobj_getattr(&im.rt, 0, "_name", &got), -EFAULT);
        CHECK_INT(pyobj_getattr(&im.rt, img_hole(&im), "_name", &got), -EFAULT);
    }
}

/* ---- type names and str ---------------------------------------------------- */

TEST(type_name_and_str)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t code = img_code(&im, "f.py", "f", NULL, 1, NULL, 0);
        uint64_t s = img_str(&im, "名前");
        uint64_t i = img_object(&im, im.t_int, 32);
        /* A type whose name is not NUL-terminated within 64 bytes. */
        uint64_t t_long = img_type(&im, "x");
        char longname[80];
        memset(longname, 'n', sizeof(longname));
        longname[79] = '\0';
        img_f64(&im, t_long, im.lay.tp_name, img_cstr(&im, longname));
        uint64_t weird = img_object(&im, t_long, 32);
        /* A short name right at the end of a mapping. */
        uint64_t t_edge = img_type(&im, "y");
        uint64_t edge_name = img_alloc(&im, 16);
        img_wmem(&im, edge_name, "edge", 5);
        img_gap_at(&im, edge_name + 8, 4096);
        img_f64(&im, t_edge, im.lay.tp_name, edge_name);
        uint64_t edge = img_object(&im, t_edge, 32);
        img_commit(&im);
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(pyobj_type_name(&im.rt, code, &sb), 0);
        CHECK_STR(sb_str(&sb), "code");
        sb_reset(&sb);
        CHECK_INT(pyobj_type_name(&im.rt, edge, &sb), 0);
        CHECK_STR(sb_str(&sb), "edge");
        sb_reset(&sb);
        CHECK_INT(pyobj_type_name(&im.rt, weird, &sb), -EINVAL);
        sb_reset(&sb);
        CHECK_INT(pyobj_str(&im.rt, s, &sb), 0);
        CHECK_STR(sb_str(&sb), "名前");
        sb_reset(&sb);
        CHECK_INT(pyobj_str(&im.rt, i, &sb), -EINVAL);
        CHECK_INT(pyobj_str(&im.rt, img_hole(&im), &sb), -EFAULT);
        sb_release(&sb);
    }
}

TEST(str_27_unicode_object)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    uint32_t cps[8];
    size_t n = img_utf8_cps("Thread-名", cps, 8);
    uint64_t u = img_unicode27(&im, cps, n, 4);
    img_commit(&im);
    struct strbuf sb = STRBUF_INIT;
    CHECK_INT(pyobj_str(&im.rt, u, &sb), 0);
    CHECK_STR(sb_str(&sb), "Thread-名");
    sb_release(&sb);
    img_release(&im);
}

/* ---- thread names ------------------------------------------------------------ */

static int ident_cmp(const void *a, const void *b)
{
    const struct pythread_name *x = a, *y = b;
    return x->ident < y->ident ? -1 : x->ident > y->ident;
}

TEST(thread_names_end_to_end)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t interp = img_interp(&im);
        const uint64_t idents[] = {0x7f1234567700ull, 0x7f0000001000ull, 0x7f00aa002000ull};
        const char *names[] = {"MainThread", "worker-名前", "Thread-3 \xf0\xa0\x80\x80"};
        img_threading(&im, interp, idents, names, 3);
        img_commit(&im);
        struct pythread_name *v = NULL;
        size_t n = 0;
        int ret = pythread_names(&im.rt, interp, NULL, 0, &v, &n);
        if (ret != 0 || n != 3) {
            TEST_FAILF("%d.%d: ret %d n %zu", VER(im), ret, n);
            pythread_names_free(v, n);
            continue;
        }
        qsort(v, n, sizeof(*v), ident_cmp);
        CHECK_U64(v[0].ident, idents[1]);
        CHECK_STR(v[0].name, names[1]);
        CHECK_U64(v[1].ident, idents[2]);
        CHECK_STR(v[1].name, names[2]);
        CHECK_U64(v[2].ident, idents[0]);
        CHECK_STR(v[2].name, names[0]);
        pythread_names_free(v, n);
        /* Only the threads asked for are read, and an unknown ident is no error. */
        const uint64_t want[] = {idents[2], 0x5555};
        uint64_t before = mem_read_calls(im.rt.mem);
        CHECK_INT(pythread_names(&im.rt, interp, want, 2, &v, &n), 0);
        uint64_t some = mem_read_calls(im.rt.mem) - before;
        CHECK_INT(n, 1);
        if (n == 1) {
            CHECK_U64(v[0].ident, idents[2]);
            CHECK_STR(v[0].name, names[2]);
        }
        pythread_names_free(v, n);
        before = mem_read_calls(im.rt.mem);
        CHECK_INT(pythread_names(&im.rt, interp, NULL, 0, &v, &n), 0);
        CHECK(mem_read_calls(im.rt.mem) - before > some);
        pythread_names_free(v, n);
    }
}

TEST(thread_names_without_threading)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t in1 = img_interp(&im), in2 = img_interp(&im), in3 = img_interp(&im);
        /* in1: no modules dict; in2: modules without "threading";
         * in3: threading without _active. */
        const char *mn[] = {"sys"};
        uint64_t mv[] = {img_object(&im, im.t_module, 64)};
        img_f64(&im, in2, im.lay.is_modules, img_str_dict(&im, mn, mv, 1, 0));
        uint64_t mod = img_object(&im, im.t_module, 64);
        img_f64(&im, mod, im.lay.md_dict, img_str_dict(&im, mn, mv, 1, 0));
        const char *tn[] = {"threading"};
        uint64_t tv[] = {mod};
        img_f64(&im, in3, im.lay.is_modules, img_str_dict(&im, tn, tv, 1, 0));
        img_commit(&im);
        uint64_t interps[] = {in1, in2, in3};
        for (int i = 0; i < 3; i++) {
            struct pythread_name *v = (void *)1;
            size_t n = 9;
            int ret = pythread_names(&im.rt, interps[i], NULL, 0, &v, &n);
            if (ret != 0 || n != 0)
                TEST_FAILF("%d.%d case %d: ret %d n %zu", VER(im), i, ret, n);
            pythread_names_free(v, n);
        }
    }
}

TEST(thread_names_skip_bad_threads)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t interp = img_interp(&im);
        const uint64_t idents[] = {0x1000, 0x2000};
        const char *names[] = {"good", "bad"};
        uint64_t active = img_threading(&im, interp, idents, names, 2);
        /* Make the second thread's value point at the _active dict itself (a cycle). */
        struct pydict_entry *v;
        size_t n;
        img_commit(&im);
        REQUIRE(pydict_entries(&im.rt, active, &v, &n) == 0 && n == 2);
        size_t bad = v[0].hash == 0x2000 ? 0 : 1;
        uint64_t bad_value = v[bad].value;
        free(v);
        /* Rewrite the entry's value in the staging image. */
        for (uint64_t a = active; a < im.base + im.used; a += 8)
            if (img_r64(&im, a) == bad_value) {
                img_w64(&im, a, active);
                break;
            }
        img_commit(&im);
        struct pythread_name *names_out;
        size_t k;
        CHECK_INT(pythread_names(&im.rt, interp, NULL, 0, &names_out, &k), 0);
        CHECK_INT(k, 1);
        if (k == 1) {
            CHECK_U64(names_out[0].ident, 0x1000);
            CHECK_STR(names_out[0].name, "good");
        }
        pythread_names_free(names_out, k);
    }
}

TEST(thread_names_garbage)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        uint64_t in_hole = img_interp(&im), in_cycle = img_interp(&im), in_bad = img_interp(&im);
        img_f64(&im, in_hole, im.lay.is_modules, img_hole(&im));
        /* threading.__dict__ is sys.modules itself: no _active there. */
        uint64_t mod = img_object(&im, im.t_module, 64);
        const char *tn[] = {"threading"};
        uint64_t tv[] = {mod};
        uint64_t modules = img_str_dict(&im, tn, tv, 1, 0);
        img_f64(&im, mod, im.lay.md_dict, modules);
        img_f64(&im, in_cycle, im.lay.is_modules, modules);
        /* modules dict with a garbage keys object */
        uint64_t garbage = img_str_dict(&im, tn, tv, 1, 0);
        if (im.lay.dicts == DICT_27)
            img_w64(&im, garbage + 32, 5);
        else
            img_w64(&im, img_r64(&im, garbage + (uint64_t)im.lay.ma_keys) +
                             (uint64_t)im.lay.dk_nentries, (uint64_t)-1);
        img_f64(&im, in_bad, im.lay.is_modules, garbage);
        img_commit(&im);
        struct pythread_name *v;
        size_t n;
        CHECK_INT(pythread_names(&im.rt, in_hole, NULL, 0, &v, &n), -EFAULT);
        CHECK(v == NULL && n == 0);
        CHECK_INT(pythread_names(&im.rt, in_cycle, NULL, 0, &v, &n), 0);
        CHECK_INT(n, 0);
        pythread_names_free(v, n);
        CHECK_INT(pythread_names(&im.rt, in_bad, NULL, 0, &v, &n), -EINVAL);
        CHECK_INT(pythread_names(&im.rt, img_hole(&im), NULL, 0, &v, &n), -EFAULT);
    }
}

TEST(small_ints_every_version)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        if (im.major < 3)
            continue;
        const int64_t vals[] = {0, 1, 7, 0x3fffffff, 0x40000000, 123456789, -5, -(1ll << 40),
                                (1ll << 60) - 1};
        uint64_t objs[ARRAY_SIZE(vals)];
        for (size_t i = 0; i < ARRAY_SIZE(vals); i++)
            objs[i] = img_int(&im, vals[i]);
        uint64_t big = img_int(&im, INT64_MAX);
        uint64_t str = img_str(&im, "12");
        img_commit(&im);
        for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
            int64_t got = -1;
            int ret = pyobj_small_int(&im.rt, objs[i], &got);
            if (ret != 0 || got != vals[i])
                TEST_FAILF("%d.%d: %lld read as %lld (ret %d)", VER(im), (long long)vals[i],
                           (long long)got, ret);
        }
        int64_t got;
        CHECK_INT(pyobj_small_int(&im.rt, big, &got), -ERANGE);
        CHECK_INT(pyobj_small_int(&im.rt, str, &got), -EINVAL);
        CHECK_INT(pyobj_small_int(&im.rt, img_hole(&im), &got), -EINVAL);
    }
}

TEST(thread_names_carry_native_ids_from_38)
{
    struct img im;
    FOR_EACH_VERSION(im)
    {
        if (im.major < 3)
            continue;
        uint64_t interp = img_interp(&im);
        const uint64_t idents[] = {0x7f0000001000ull, 0x7f0000002000ull};
        /* A third thread with its _native_id (threading sets it from 3.8). */
        const char *attr[3] = {"_name", "_ident", "_native_id"};
        uint64_t vals[3] = {img_str(&im, "c"), img_int(&im, 0x7f0000003000ll), img_int(&im, 4242)};
        uint64_t th = img_instance(&im, "Thread", attr, vals, 3, img_inst_default(&im), NULL);
        struct img_kv kv[3];
        for (int i = 0; i < 2; i++)
            kv[i] = (struct img_kv){idents[i], img_int(&im, (int64_t)idents[i]),
                                    img_instance(&im, "Thread", attr, (uint64_t[]){
                                        img_str(&im, i ? "b" : "a"), 0, im.none}, 1,
                                        img_inst_default(&im), NULL)};
        kv[2] = (struct img_kv){0x7f0000003000ull, vals[1], th};
        const char *mnames[3] = {"_shutdown", "_active", "_limbo"};
        uint64_t mvals[3] = {im.none, img_dict(&im, kv, 3, 0), img_dict(&im, NULL, 0, 0)};
        uint64_t mod = img_object(&im, im.t_module, 64);
        img_f64(&im, mod, im.lay.md_dict, img_str_dict(&im, mnames, mvals, 3, 0));
        const char *snames[1] = {"threading"};
        img_f64(&im, interp, im.lay.is_modules, img_str_dict(&im, snames, &mod, 1, 0));
        img_commit(&im);
        struct pythread_name *v = NULL;
        size_t n = 0;
        CHECK_INT(pythread_names(&im.rt, interp, NULL, 0, &v, &n), 0);
        CHECK_INT(n, 3);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i].name, "c") == 0)
                CHECK_INT(v[i].native_id, im.minor >= 8 ? 4242 : 0);
            else
                CHECK_INT(v[i].native_id, 0);
        }
        pythread_names_free(v, n);
    }
}
