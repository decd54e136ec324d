/*
 * Strings of the target to UTF-8: every PEP 393 form on every 3.x layout,
 * 2.7 str and unicode, the length cut, and garbage headers.
 */
#include "symbolizer/pystr.h"

#include <errno.h>

#include "test.h"

#include "image.h"

static const int minors3[] = {6, 7, 8, 9, 10, 11, 12, 13};

/* Reads the str at addr of a committed image into a static buffer. */
static const char *rd(struct img *im, uint64_t addr, enum pystr_type type, int width, int *ret)
{
    static struct strbuf sb = STRBUF_INIT;
    struct pystr_layout sl;
    sb_reset(&sb);
    layout_str_facts(&im->lay, &sl);
    *ret = pystr_read(im->m, &sl, addr, type, width, &sb);
    return sb_str(&sb);
}

/* Decodes s (a literal) and writes it as a 3.x str of the given kind and form. */
static uint64_t ustr(struct img *im, const char *s, int kind, enum img_str_form form)
{
    uint32_t cps[256];
    size_t n = img_utf8_cps(s, cps, ARRAY_SIZE(cps));
    return img_ustr_cps(im, cps, n, kind, form);
}

struct form_case {
    const char *text;
    int kind;
    enum img_str_form form;
};

static const struct form_case forms[] = {
    {"hello", 1, IMG_STR_ASCII},
    {"", 1, IMG_STR_ASCII},
    {"<module>", 1, IMG_STR_ASCII},
    {"café", 1, IMG_STR_COMPACT},
    {"ÿ\x01", 1, IMG_STR_COMPACT},
    {"関数", 2, IMG_STR_COMPACT},
    {"módulo_名前", 2, IMG_STR_COMPACT},
    {"\xf0\xa0\x80\x80", 4, IMG_STR_COMPACT},           /* U+20000 */
    {"a\xf0\xa0\x80\x80z名", 4, IMG_STR_COMPACT},
    {"\xf4\x8f\xbf\xbf", 4, IMG_STR_COMPACT},           /* U+10FFFF */
    {"plain", 1, IMG_STR_LEGACY},
    {"café", 1, IMG_STR_LEGACY},
    {"関数", 2, IMG_STR_LEGACY},
    {"x\xf0\xa0\x80\x80", 4, IMG_STR_LEGACY},
};

TEST(unicode3_every_form_every_version)
{
    for (size_t v = 0; v < ARRAY_SIZE(minors3); v++) {
        struct img im;
        img_init(&im, 3, minors3[v], 0);
        uint64_t addr[ARRAY_SIZE(forms)];
        for (size_t i = 0; i < ARRAY_SIZE(forms); i++)
            addr[i] = ustr(&im, forms[i].text, forms[i].kind, forms[i].form);
        img_commit(&im);
        for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
            int ret;
            const char *got = rd(&im, addr[i], PYSTR_UNICODE, 4, &ret);
            if (ret != 0 || strcmp(got, forms[i].text) != 0)
                TEST_FAILF("3.%d form %d kind %d \"%s\": ret %d, got \"%s\"", minors3[v],
                           (int)forms[i].form, forms[i].kind, forms[i].text, ret, got);
        }
        img_release(&im);
    }
}

TEST(unicode3_img_str_picks_narrowest_form)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t a = img_str(&im, "abc"), b = img_str(&im, "café"), c = img_str(&im, "関数"),
             d = img_str(&im, "\xf0\xa0\x80\x80");
    img_commit(&im);
    int ret;
    CHECK_STR(rd(&im, a, PYSTR_UNICODE, 4, &ret), "abc");
    CHECK_STR(rd(&im, b, PYSTR_UNICODE, 4, &ret), "café");
    CHECK_STR(rd(&im, c, PYSTR_UNICODE, 4, &ret), "関数");
    CHECK_STR(rd(&im, d, PYSTR_UNICODE, 4, &ret), "\xf0\xa0\x80\x80");
    /* Check the state words: kind 1 ascii, 1, 2, 4 compact. */
    uint32_t st[4];
    uint64_t objs[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        memcpy(&st[i], img_at(&im, objs[i] + 32, 4), 4);
    CHECK_INT((st[0] >> 2) & 7, 1);
    CHECK_INT((st[0] >> 6) & 1, 1);
    CHECK_INT((st[1] >> 2) & 7, 1);
    CHECK_INT((st[1] >> 6) & 1, 0);
    CHECK_INT((st[2] >> 2) & 7, 2);
    CHECK_INT((st[3] >> 2) & 7, 4);
    img_release(&im);
}

TEST(unicode3_lone_surrogates_become_replacement)
{
    struct img im;
    img_init(&im, 3, 11, 0);
    uint32_t two[] = {'a', 0xD800, 'b', 0xDFFF};
    uint32_t four[] = {0xDBFF, 'x', 0x110000, 0xFFFFFFFF};
    /* A high and a low surrogate next to each other are still two code points in 3.x. */
    uint32_t pair[] = {0xD840, 0xDC00};
    uint64_t s2 = img_ustr_cps(&im, two, 4, 2, IMG_STR_COMPACT);
    uint64_t s4 = img_ustr_cps(&im, four, 4, 4, IMG_STR_COMPACT);
    uint64_t sp = img_ustr_cps(&im, pair, 2, 2, IMG_STR_LEGACY);
    img_commit(&im);
    int ret;
    CHECK_STR(rd(&im, s2, PYSTR_UNICODE, 4, &ret), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    CHECK_INT(ret, 0);
    CHECK_STR(rd(&im, s4, PYSTR_UNICODE, 4, &ret), "\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK_STR(rd(&im, sp, PYSTR_UNICODE, 4, &ret), "\xEF\xBF\xBD\xEF\xBF\xBD");
    img_release(&im);
}

TEST(str27_bytes)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    const char *path = "py2_módulo_名前_\xf0\xa0\x80\x80.py";
    uint64_t a = img_str27(&im, path, strlen(path));
    uint64_t b = img_str27(&im, "caf\xe9", 4);            /* Latin-1, not UTF-8 */
    uint64_t c = img_str27(&im, "\xff" "ab\x80", 4);
    uint64_t d = img_str27(&im, "", 0);
    uint64_t e = img_str27(&im, "nul\0in", 6);
    img_commit(&im);
    int ret;
    CHECK_STR(rd(&im, a, PYSTR_BYTES27, 4, &ret), "py2_módulo_名前_\xf0\xa0\x80\x80.py");
    CHECK_INT(ret, 0);
    CHECK_STR(rd(&im, b, PYSTR_BYTES27, 4, &ret), "caf\xEF\xBF\xBD");
    CHECK_STR(rd(&im, c, PYSTR_BYTES27, 4, &ret), "\xEF\xBF\xBD" "ab\xEF\xBF\xBD");
    CHECK_STR(rd(&im, d, PYSTR_BYTES27, 4, &ret), "");
    CHECK_INT(ret, 0);
    static struct strbuf sb = STRBUF_INIT;
    struct pystr_layout sl;
    layout_str_facts(&im.lay, &sl);
    CHECK_INT(pystr_read(im.m, &sl, e, PYSTR_BYTES27, 4, &sb), 0);
    CHECK_INT(sb.len, 6);
    CHECK(memcmp(sb.buf, "nul\0in", 6) == 0);
    sb_release(&sb);
    img_release(&im);
}

TEST(unicode27_ucs4)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    uint32_t cps[8];
    size_t n = img_utf8_cps("関数_\xf0\xa0\x80\x80é", cps, 8);
    uint64_t s = img_unicode27(&im, cps, n, 4);
    uint32_t bad[] = {0xD800, 'q', 0x110000};
    uint64_t sb = img_unicode27(&im, bad, 3, 4);
    img_commit(&im);
    int ret;
    CHECK_STR(rd(&im, s, PYSTR_UNICODE, 4, &ret), "関数_\xf0\xa0\x80\x80é");
    CHECK_INT(ret, 0);
    CHECK_STR(rd(&im, sb, PYSTR_UNICODE, 4, &ret), "\xEF\xBF\xBDq\xEF\xBF\xBD");
    img_release(&im);
}

TEST(unicode27_ucs2)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    uint32_t bmp[] = {0x95A2, 0x6570, 'x', 0xE9};
    uint64_t s = img_unicode27(&im, bmp, 4, 2);
    /* A narrow build stores U+20000 as a surrogate pair: it is one character. */
    uint32_t pair[] = {'a', 0xD840, 0xDC00, 'b'};
    uint64_t p = img_unicode27(&im, pair, 4, 2);
    /* Lone halves stay replacement characters. */
    uint32_t lone[] = {0xDC00, 'c', 0xD840};
    uint64_t q = img_unicode27(&im, lone, 3, 2);
    img_commit(&im);
    int ret;
    CHECK_STR(rd(&im, s, PYSTR_UNICODE, 2, &ret), "関数xé");
    CHECK_INT(ret, 0);
    CHECK_STR(rd(&im, p, PYSTR_UNICODE, 2, &ret), "a\xf0\xa0\x80\x80" "b");
    CHECK_STR(rd(&im, q, PYSTR_UNICODE, 2, &ret), "\xEF\xBF\xBD" "c\xEF\xBF\xBD");
    /* Py_UNICODE is 2 or 4 bytes, nothing else. */
    rd(&im, s, PYSTR_UNICODE, 3, &ret);
    CHECK_INT(ret, -EINVAL);
    img_release(&im);
}

TEST(cut_at_max_chars)
{
    static char text[PYSTR_MAX_CHARS + 101];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t longer = img_str(&im, text);
    text[PYSTR_MAX_CHARS] = '\0';
    uint64_t exact = img_str(&im, text);
    uint32_t *cps = xmalloc((PYSTR_MAX_CHARS + 10) * sizeof(*cps));
    for (int i = 0; i < PYSTR_MAX_CHARS + 10; i++)
        cps[i] = 0x540D; /* 名 */
    uint64_t wide = img_ustr_cps(&im, cps, PYSTR_MAX_CHARS + 10, 2, IMG_STR_COMPACT);
    uint64_t legacy = img_ustr_cps(&im, cps, PYSTR_MAX_CHARS + 1, 2, IMG_STR_LEGACY);
    free(cps);
    img_commit(&im);
    int ret;
    CHECK_INT(strlen(rd(&im, longer, PYSTR_UNICODE, 4, &ret)), PYSTR_MAX_CHARS);
    CHECK_INT(ret, 1);
    CHECK_INT(strlen(rd(&im, exact, PYSTR_UNICODE, 4, &ret)), PYSTR_MAX_CHARS);
    CHECK_INT(ret, 0);
    CHECK_INT(strlen(rd(&im, wide, PYSTR_UNICODE, 4, &ret)), 3 * PYSTR_MAX_CHARS);
    CHECK_INT(ret, 1);
    CHECK_INT(strlen(rd(&im, legacy, PYSTR_UNICODE, 4, &ret)), 3 * PYSTR_MAX_CHARS);
    CHECK_INT(ret, 1);
    img_release(&im);
}

TEST(cut_at_max_chars_27)
{
    static char text[PYSTR_MAX_CHARS + 1];
    memset(text, 'b', sizeof(text));
    struct img im;
    img_init(&im, 2, 7, 0);
    uint64_t s = img_str27(&im, text, sizeof(text));
    uint32_t *units = xcalloc(PYSTR_MAX_CHARS + 5, sizeof(*units));
    for (int i = 0; i < PYSTR_MAX_CHARS + 5; i++)
        units[i] = 'u';
    uint64_t u = img_unicode27(&im, units, PYSTR_MAX_CHARS + 5, 4);
    free(units);
    img_commit(&im);
    int ret;
    CHECK_INT(strlen(rd(&im, s, PYSTR_BYTES27, 4, &ret)), PYSTR_MAX_CHARS);
    CHECK_INT(ret, 1);
    CHECK_INT(strlen(rd(&im, u, PYSTR_UNICODE, 4, &ret)), PYSTR_MAX_CHARS);
    CHECK_INT(ret, 1);
    img_release(&im);
}

TEST(garbage_headers_are_einval)
{
    for (size_t v = 0; v < ARRAY_SIZE(minors3); v++) {
        struct img im;
        img_init(&im, 3, minors3[v], 0);
        size_t big = 128;
        struct {
            const char *what;
            uint64_t addr;
        } cases[] = {
            {"kind 3", img_ustr_raw(&im, 2, img_ustate(&im, 3, 1, 0), big)},
            {"kind 0", img_ustr_raw(&im, 2, img_ustate(&im, 0, 1, 0), big)},
            {"kind 5", img_ustr_raw(&im, 2, img_ustate(&im, 5, 1, 0), big)},
            {"kind 0 legacy", img_ustr_raw(&im, 2, img_ustate(&im, 0, 0, 0), big)},
            {"negative length", img_ustr_raw(&im, -1, img_ustate(&im, 1, 1, 1), big)},
            {"very negative length", img_ustr_raw(&im, INT64_MIN, img_ustate(&im, 1, 1, 1), big)},
            {"huge length", img_ustr_raw(&im, 1ll << 40, img_ustate(&im, 1, 1, 1), big)},
            {"ascii with kind 2", img_ustr_raw(&im, 2, img_ustate(&im, 2, 1, 1), big)},
            {"ascii with kind 4", img_ustr_raw(&im, 2, img_ustate(&im, 4, 1, 1), big)},
            {"ascii, not compact", img_ustr_raw(&im, 2, img_ustate(&im, 1, 0, 1), big)},
            {"legacy, NULL data", img_ustr_raw(&im, 2, img_ustate(&im, 2, 0, 0), big)},
            {"NULL object", 0},
        };
        img_commit(&im);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
            int ret;
            rd(&im, cases[i].addr, PYSTR_UNICODE, 4, &ret);
            if (ret != -EINVAL)
                TEST_FAILF("3.%d %s: got %d, expected -EINVAL", minors3[v], cases[i].what, ret);
        }
        /* A 2.7 kind of object asked of a 3.x layout. */
        int ret;
        rd(&im, img_str(&im, "x"), PYSTR_BYTES27, 4, &ret);
        CHECK_INT(ret, -EINVAL);
        img_release(&im);
    }
}

TEST(garbage_headers_27)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    uint64_t neg = img_str27(&im, "abc", 3);
    img_w64(&im, neg + 16, (uint64_t)-5);
    uint64_t huge = img_str27(&im, "abc", 3);
    img_w64(&im, huge + 16, 1ull << 30);
    uint32_t u[] = {'a'};
    uint64_t uneg = img_unicode27(&im, u, 1, 4);
    img_w64(&im, uneg + 16, (uint64_t)-1);
    uint64_t ok = img_unicode27(&im, u, 1, 4);
    img_commit(&im);
    int ret;
    rd(&im, neg, PYSTR_BYTES27, 4, &ret);
    CHECK_INT(ret, -EINVAL);
    rd(&im, huge, PYSTR_BYTES27, 4, &ret);
    CHECK_INT(ret, -EINVAL);
    rd(&im, uneg, PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, -EINVAL);
    rd(&im, ok, PYSTR_UNICODE, 3, &ret); /* no such Py_UNICODE width */
    CHECK_INT(ret, -EINVAL);
    rd(&im, ok, PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, 0);
    img_release(&im);
}

TEST(unreadable_is_efault)
{
    struct img im;
    img_init(&im, 3, 12, 0);
    uint64_t legacy = ustr(&im, "abc", 1, IMG_STR_LEGACY);
    img_w64(&im, legacy + (uint64_t)im.lay.uni_data_any, img_hole(&im));
    /* Length larger than what is mapped: the data runs into a gap. */
    uint64_t runs_off = ustr(&im, "abcd", 2, IMG_STR_COMPACT);
    img_w64(&im, runs_off + (uint64_t)im.lay.uni_length, 100);
    img_gap(&im, 4096);
    /* A one-character string that ends exactly where its mapping ends. */
    uint64_t at_end = ustr(&im, "z", 1, IMG_STR_ASCII);
    img_gap_at(&im, at_end + (uint64_t)im.lay.uni_ascii_size + 1, 4096);
    img_commit(&im);
    int ret;
    rd(&im, img_hole(&im), PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    rd(&im, legacy, PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    rd(&im, runs_off, PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    CHECK_STR(rd(&im, at_end, PYSTR_UNICODE, 4, &ret), "z");
    CHECK_INT(ret, 0);
    img_release(&im);
}

TEST(unreadable_is_efault_27)
{
    struct img im;
    img_init(&im, 2, 7, 0);
    uint32_t u[] = {'a', 'b'};
    uint64_t s = img_unicode27(&im, u, 2, 4);
    img_w64(&im, s + 24, img_hole(&im));
    uint64_t b = img_str27(&im, "abc", 3);
    img_w64(&im, b + 16, 4000); /* runs past the image */
    img_commit(&im);
    int ret;
    rd(&im, s, PYSTR_UNICODE, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    rd(&im, b, PYSTR_BYTES27, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    rd(&im, img_hole(&im), PYSTR_BYTES27, 4, &ret);
    CHECK_INT(ret, -EFAULT);
    img_release(&im);
}

TEST(decode_helpers)
{
    struct strbuf sb = STRBUF_INIT;
    const unsigned char latin[] = {'c', 'a', 'f', 0xE9};
    pystr_decode_ucs(latin, 4, 1, &sb);
    CHECK_STR(sb_str(&sb), "café");
    sb_reset(&sb);
    const uint16_t ucs2[] = {0x95A2, 0x6570};
    pystr_decode_ucs((const unsigned char *)ucs2, 2, 2, &sb);
    CHECK_STR(sb_str(&sb), "関数");
    sb_reset(&sb);
    const uint32_t ucs4[] = {0x20000, 0x41};
    pystr_decode_ucs((const unsigned char *)ucs4, 2, 4, &sb);
    CHECK_STR(sb_str(&sb), "\xf0\xa0\x80\x80" "A");
    sb_reset(&sb);
    /* Overlong, surrogate (CESU) and truncated sequences never pass through. */
    const unsigned char bad[] = {0xC0, 0xAF, 'x', 0xED, 0xA0, 0x80, 'y', 0xE6, 0x97};
    pystr_decode_utf8(bad, sizeof(bad), &sb);
    CHECK(strstr(sb_str(&sb), "\xEF\xBF\xBD") != NULL);
    CHECK(strchr(sb_str(&sb), 'x') && strchr(sb_str(&sb), 'y'));
    for (size_t i = 0; i < sb.len;) {
        size_t n = utf8_valid_len((const unsigned char *)sb.buf + i, sb.len - i);
        REQUIRE(n > 0);
        i += n;
    }
    sb_release(&sb);
}

/* An empty string read into a fresh strbuf is "", terminated (util.h's promise). */
TEST(empty_string_into_fresh_buffer)
{
    for (int major = 2; major <= 3; major++) {
        struct img im;
        img_init(&im, major, major == 2 ? 7 : 12, 0);
        uint64_t s = img_str(&im, "");
        uint32_t none[1] = {0};
        uint64_t w = major == 2 ? img_unicode27(&im, none, 0, 4)
                                : img_ustr_cps(&im, none, 0, 2, IMG_STR_COMPACT);
        img_commit(&im);
        uint64_t objs[2] = {s, w};
        for (int i = 0; i < 2; i++) {
            /* Leave non-zero bytes where the next small allocation will come from. */
            for (int k = 0; k < 8; k++) {
                char *junk = xmalloc(8 << (k % 4));
                memset(junk, 'J', 8u << (k % 4));
                free(junk);
            }
            struct strbuf sb = STRBUF_INIT;
            enum pystr_type t = major == 2 && i == 0 ? PYSTR_BYTES27 : PYSTR_UNICODE;
            struct pystr_layout sl;
            layout_str_facts(&im.lay, &sl);
            CHECK_INT(pystr_read(im.m, &sl, objs[i], t, 4, &sb), 0);
            CHECK_INT(sb.len, 0);
            CHECK_STR(sb_str(&sb), "");
            char *d = sb_detach(&sb);
            CHECK_STR(d, "");
            free(d);
        }
        img_release(&im);
    }
}
