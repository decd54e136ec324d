/*
 * libFuzzer target for the string decoder (symbolizer/pystr.c), built by
 * tests/fuzz/run.sh:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -o fuzz_pystr tests/fuzz/fuzz_pystr.c \
 *       symbolizer/pystr.c profiler/target/mem.c profiler/cpython/layout.c common/util.c
 *   ./fuzz_pystr -max_len=18432 corpus/
 *
 * Input (tests/fuzz/make-seeds.py writes valid ones):
 *   byte 0    bits 0-3: the layout, modulo 10: 0 = 2.7, 1-8 = 3.6-3.13, 9 = 3.13
 *                       read from a _Py_DebugOffsets whose string offsets are
 *                       the four u16 after the address (sizeof(PyUnicodeObject),
 *                       state, length, sizeof(PyASCIIObject))
 *             bit 4:    ask for a 2.7 str (PYSTR_BYTES27) rather than a unicode
 *             bits 5-6: the 2.7 Py_UNICODE width: 4, 2, 0, 3
 *             bit 7:    map the image in two halves with a 4 KiB hole between
 *   bytes 1-2 the object's offset from FZ_BASE (u16, little-endian; may lie
 *             outside the image)
 *   [8 bytes  layout 9 only: the debug offsets above]
 *   the rest  the image: bytes mapped at FZ_BASE; the second half at
 *             FZ_BASE + half + 4096 when bit 7 is set.  Pointers in it
 *             (legacy data, 2.7 unicode str) are absolute addresses.
 *
 * Whatever the bytes, pystr_read returns 0, 1, -EFAULT or -EINVAL, appends
 * (never rewrites) valid UTF-8 of at most PYSTR_MAX_CHARS characters, and
 * says 1 only when it cut a string of PYSTR_MAX_CHARS units.  The image's
 * first 256 bytes also go through pystr_decode_ucs (1, 2 and 4 bytes wide,
 * checked against an encoder written here) and pystr_decode_utf8 (valid
 * input comes out unchanged, output decodes to itself), and utf8_valid_len
 * is checked against the well-formed byte sequences of the Unicode standard.
 * A broken property abort()s with a line on stderr.  With FUZZ_VERBOSE set
 * in the environment, each input's result is printed (to triage a reproducer
 * or check a seed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"
#include "symbolizer/pystr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BASE 0x10000ull
#define FZ_HOLE 4096u
#define FZ_PREFIX "prefix\xC3\xA9:" /* what out holds before the call */

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz_pystr: %s (%ld, %ld)\n", what, a, b);
    abort();
}

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode 15, table 3-7),
 * or 0; written apart from utf8_valid_len so that each checks the other.
 */
static size_t wellformed(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c <= 0x7F)
        return 1;
    else if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0)
        len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        len = 3;
    else if (c == 0xED)
        len = 3, hi = 0x9F;
    else if (c == 0xF0)
        len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4)
        len = 4, hi = 0x8F;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Number of characters in s[0..n), or (size_t)-1 when it is not UTF-8. */
static size_t utf8_chars(const unsigned char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; chars++) {
        size_t k = utf8_valid_len(s + i, n - i);
        if (k == 0)
            return (size_t)-1;
        i += k;
    }
    return chars;
}

/* The strbuf's promise: NUL-terminated, and the prefix left alone. */
static void check_buffer(const struct strbuf *sb, size_t prefix_len, const char *who)
{
    if (sb->len < prefix_len || memcmp(sb->buf, FZ_PREFIX, prefix_len) != 0)
        fail(who, (long)sb->len, (long)prefix_len);
    if (sb->buf && sb->buf[sb->len] != '\0')
        fail("output not NUL-terminated", (long)sb->len, 0);
}

/* UCS code units to UTF-8, the way pystr_decode_ucs must do it. */
static void reference_ucs(const unsigned char *p, size_t count, int width, struct strbuf *out)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t cp = 0;
        for (int b = width - 1; b >= 0; b--) /* little-endian */
            cp = cp << 8 | p[i * (size_t)width + (size_t)b];
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            cp = 0xFFFD;
        unsigned char e[4];
        size_t k;
        if (cp < 0x80) {
            e[0] = (unsigned char)cp, k = 1;
        } else if (cp < 0x800) {
            e[0] = (unsigned char)(0xC0 | cp >> 6), k = 2;
        } else if (cp < 0x10000) {
            e[0] = (unsigned char)(0xE0 | cp >> 12), k = 3;
        } else {
            e[0] = (unsigned char)(0xF0 | cp >> 18), k = 4;
        }
        for (size_t j = 1; j < k; j++)
            e[j] = (unsigned char)(0x80 | ((cp >> (6 * (k - 1 - j))) & 0x3F));
        sb_add(out, e, k);
    }
}

/* The decode helpers and utf8_valid_len on the raw bytes. */
static void check_helpers(const unsigned char *p, size_t n)
{
    struct strbuf got = STRBUF_INIT, want = STRBUF_INIT, again = STRBUF_INIT;

    for (size_t i = 0; i < n; i++) {
        size_t a = utf8_valid_len(p + i, n - i), b = wellformed(p + i, n - i);
        if (a != b)
            fail("utf8_valid_len disagrees with the standard at offset", (long)i, (long)a);
    }

    static const int widths[] = {1, 2, 4};
    for (size_t w = 0; w < ARRAY_SIZE(widths); w++) {
        size_t count = n / (size_t)widths[w];
        sb_reset(&got);
        sb_reset(&want);
        sb_adds(&got, FZ_PREFIX);
        sb_adds(&want, FZ_PREFIX);
        pystr_decode_ucs(p, count, widths[w], &got);
        reference_ucs(p, count, widths[w], &want);
        check_buffer(&got, strlen(FZ_PREFIX), "pystr_decode_ucs rewrote the prefix");
        if (got.len != want.len || memcmp(got.buf, want.buf, got.len) != 0)
            fail("pystr_decode_ucs differs from the reference, width", widths[w], (long)count);
    }

    sb_reset(&got);
    pystr_decode_utf8(p, n, &got);
    size_t chars = utf8_chars((const unsigned char *)got.buf, got.len);
    if (chars == (size_t)-1 || chars > n || got.len > 3 * n)
        fail("pystr_decode_utf8: not UTF-8 or too long", (long)got.len, (long)n);
    if (utf8_chars(p, n) != (size_t)-1 && (got.len != n || memcmp(got.buf, p, n) != 0))
        fail("pystr_decode_utf8 changed valid UTF-8", (long)got.len, (long)n);
    pystr_decode_utf8((const unsigned char *)got.buf, got.len, &again);
    if (again.len != got.len || memcmp(again.buf, got.buf, got.len) != 0)
        fail("pystr_decode_utf8 is not idempotent", (long)again.len, (long)got.len);

    sb_release(&got);
    sb_release(&want);
    sb_release(&again);
}

/* Slots of 3.13's _Py_DebugOffsets (uint64 each), as CPython 3.13 lays them out. */
enum {
    S_VERSION = 1, S_FREE_THREADED = 2, S_RT_SIZE = 3,
    S_IS_SIZE = 6, S_IS_GIL_STATE = 15, S_IS_GIL_LOCKED = 17, S_IS_GIL_HOLDER = 18,
    S_TS_SIZE = 19, S_IF_SIZE = 28, S_CO_SIZE = 34, S_CO_CODE_ADAPTIVE = 43,
    S_OB_SIZE = 44, S_TP_SIZE = 46, S_DICT_SIZE = 56,
    S_BYTES_SIZE = 64, S_BYTES_OB_SIZE = 65, S_BYTES_SVAL = 66,
    S_UNI_SIZE = 67, S_UNI_STATE = 68, S_UNI_LENGTH = 69, S_UNI_ASCII_SIZE = 70,
    S_SLOTS = 73,
};

/*
 * A 3.13 layout as pystrobe derives it from a target's _Py_DebugOffsets,
 * with the string offsets taken from p (four u16).  0, or -1 when
 * layout_from_debug_offsets refuses them.
 */
static int debug_layout(const uint8_t *p, struct pylayout *out)
{
    uint64_t d[S_SLOTS];
    uint16_t uni[4];
    struct pserr err;
    memcpy(uni, p, sizeof(uni));
    /* Every structure 4 KiB with its fields at 16, then the real values
     * of what must be consistent. */
    for (size_t i = 0; i < S_SLOTS; i++)
        d[i] = 16;
    memcpy(d, DEBUG_OFFSETS_COOKIE, 8);
    d[S_VERSION] = 0x030d00f0;
    d[S_FREE_THREADED] = 0;
    static const int sizes[] = {S_RT_SIZE, S_IS_SIZE, S_TS_SIZE, S_IF_SIZE, S_CO_SIZE,
                                S_OB_SIZE, S_TP_SIZE, S_DICT_SIZE, S_BYTES_SIZE};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
        d[sizes[i]] = 4096;
    d[S_IS_GIL_STATE] = 16, d[S_IS_GIL_LOCKED] = 32, d[S_IS_GIL_HOLDER] = 24;
    d[S_CO_CODE_ADAPTIVE] = 200;
    d[S_BYTES_OB_SIZE] = 16, d[S_BYTES_SVAL] = 32;
    d[S_UNI_SIZE] = uni[0];
    d[S_UNI_STATE] = uni[1];
    d[S_UNI_LENGTH] = uni[2];
    d[S_UNI_ASCII_SIZE] = uni[3];
    return layout_from_debug_offsets(out, d, sizeof(d), &err) == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int minors[] = {7, 6, 7, 8, 9, 10, 11, 12, 13};
    static const int widths27[] = {4, 2, 0, 3};
    struct pylayout dl;
    const struct pylayout *l;

    if (size < 3)
        return 0;
    unsigned sel = (data[0] & 0x0f) % 10;
    enum pystr_type type = data[0] & 0x10 ? PYSTR_BYTES27 : PYSTR_UNICODE;
    int width27 = widths27[(data[0] >> 5) & 3];
    int hole = data[0] >> 7;
    uint64_t addr = FZ_BASE + (uint64_t)(data[1] | data[2] << 8);
    size_t pos = 3;
    if (sel == 9) {
        if (size < pos + 8)
            return 0;
        l = debug_layout(data + pos, &dl) == 0 ? &dl : NULL;
        pos += 8;
    } else {
        l = layout_for(sel == 0 ? 2 : 3, minors[sel]);
        if (!l)
            fail("no built-in layout for selector", (long)sel, 0);
    }
    const unsigned char *img = data + pos;
    size_t n = size - pos;

    /* The helpers work character by character: 256 bytes reach all their
     * paths, and more would only slow the fuzzing of long strings. */
    check_helpers(img, MIN(n, 256));
    if (!l)
        return 0;

    struct mem *m = mem_new_buffer();
    if (n > 0) {
        size_t half = hole ? n / 2 : n;
        if (half > 0 && mem_buffer_add(m, FZ_BASE, img, half) != 0)
            fail("mem_buffer_add", 0, (long)half);
        if (n > half && mem_buffer_add(m, FZ_BASE + half + FZ_HOLE, img + half, n - half) != 0)
            fail("mem_buffer_add", 1, (long)(n - half));
    }

    struct strbuf out = STRBUF_INIT;
    sb_adds(&out, FZ_PREFIX);
    size_t before = out.len;
    struct pystr_layout sl;
    layout_str_facts(l, &sl);
    int ret = pystr_read(m, &sl, addr, type, width27, &out);
    if (ret != 0 && ret != 1 && ret != -EFAULT && ret != -EINVAL)
        fail("pystr_read: unexpected return", ret, 0);
    check_buffer(&out, before, "pystr_read rewrote what out held");
    const unsigned char *got = (const unsigned char *)out.buf + before;
    size_t len = out.len - before;
    size_t chars = utf8_chars(got, len);
    if (chars == (size_t)-1)
        fail("pystr_read: output is not UTF-8, bytes", (long)len, ret);
    /* At most PYSTR_MAX_CHARS units, each at most one 4-byte character
     * (a 2.7 str's invalid byte is one U+FFFD, 3 bytes). */
    if (chars > PYSTR_MAX_CHARS || len > 4 * (size_t)PYSTR_MAX_CHARS)
        fail("pystr_read: output too long, chars/bytes", (long)chars, (long)len);
    /* A cut string decoded PYSTR_MAX_CHARS units, each at least one byte. */
    if (ret == 1 && len < PYSTR_MAX_CHARS)
        fail("pystr_read: cut, yet short", (long)len, ret);
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "fuzz_pystr: layout %u type %d width %d addr %#llx: %d \"%.*s\"\n", sel,
                (int)type, width27, (unsigned long long)addr, ret, (int)MIN(len, 200), got);
    /* Nothing read, nothing appended. */
    if (ret < 0 && len != 0)
        fail("pystr_read: failed but appended bytes", ret, (long)len);

    sb_release(&out);
    mem_free(m);
    return 0;
}
