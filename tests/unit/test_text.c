/*
 * Text shown to people: one rule for what cannot be shown as it is
 * (controls, C1 controls, bidi marks, overrides and isolates; bytes that are
 * not UTF-8 become U+FFFD), used by labels, dump's text, top, and escaped in JSON.
 */
#include "test.h"

#include "common/util.h"
#include "output/json.h"
#include "output/label.h"

/* Every code point text_unsafe refuses, as UTF-8, one per string. */
static const char *const unsafe[] = {
    "\x01", "\x1b", "\x7f",
    "\xc2\x80", "\xc2\x85", "\xc2\x9b", "\xc2\x9f",  /* C1: U+0080, NEL, CSI, U+009F */
    "\xd8\x9c",                                      /* U+061C arabic letter mark */
    "\xe2\x80\x8e", "\xe2\x80\x8f",                  /* LRM, RLM */
    "\xe2\x80\xa8", "\xe2\x80\xa9",                  /* line, paragraph separators */
    "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae", /* LRE..RLO */
    "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* LRI, RLI, FSI, PDI */
};

TEST(text_char_refuses_controls_and_bidi)
{
    for (size_t i = 0; i < ARRAY_SIZE(unsafe); i++) {
        uint32_t c = 0;
        size_t len = text_char(unsafe[i], strlen(unsafe[i]), &c);
        CHECK_INT((int)len, (int)strlen(unsafe[i]));
        if (c != '?')
            TEST_FAILF("string %zu: code point U+%04X let through", i, (unsigned)c);
    }
    /* Neighbours that are fine: NBSP, ZWJ, Hebrew, a wide character, an emoji. */
    static const struct { const char *s; uint32_t cp; } fine[] = {
        {"\xc2\xa0", 0xa0}, {"\xe2\x80\x8d", 0x200d}, {"\xd7\x90", 0x5d0},
        {"\xe5\x90\x8d", 0x540d}, {"\xf0\x9f\x98\x80", 0x1f600}, {"a", 'a'},
    };
    for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
        uint32_t c = 0;
        CHECK_INT((int)text_char(fine[i].s, strlen(fine[i].s), &c), (int)strlen(fine[i].s));
        CHECK_U64(c, fine[i].cp);
    }
    /* Not UTF-8: one byte at a time, each shown as U+FFFD. */
    uint32_t c = 0;
    CHECK_INT((int)text_char("\xe2\x80", 2, &c), 1);
    CHECK_U64(c, 0xFFFD);
    CHECK_INT((int)text_char("\xff", 1, &c), 1);
    CHECK_U64(c, 0xFFFD);
}

TEST(clean_text_replaces_each_refused_character_once)
{
    struct strbuf sb = STRBUF_INIT;
    const char *s = "evil\xe2\x80\xaegnp.exe\xe2\x81\xa6x\xe2\x81\xa9\xc2\x85y\xc2\x9b" "31m\xff;ok";
    sb_add_clean(&sb, s, strlen(s));
    CHECK_STR(sb_str(&sb), "evil?gnp.exe?x??y?31m\xef\xbf\xbd;ok");
    sb_reset(&sb);
    /* Labels also replace ';' (the folded format's separator). */
    label_clean(s, &sb);
    CHECK_STR(sb_str(&sb), "evil?gnp.exe?x??y?31m\xef\xbf\xbd?ok");
    sb_reset(&sb);
    label_clean("\xe5\x90\x8d\xe5\x89\x8d <module>", &sb);
    CHECK_STR(sb_str(&sb), "\xe5\x90\x8d\xe5\x89\x8d <module>");
    sb_release(&sb);
}

TEST(json_escapes_controls_and_bidi)
{
    struct strbuf sb = STRBUF_INIT;
    json_string(&sb, "a\xe2\x80\xae" "b\xc2\x9b" "c\xe2\x81\xa6\xd8\x9c\xe5\x90\x8d\x1b\xff");
    CHECK_STR(sb_str(&sb), "\"a\\u202eb\\u009bc\\u2066\\u061c\xe5\x90\x8d\\u001b\xff\"");
    sb_release(&sb);
}
