/*
 * Line-table decoders: vectors recorded from real interpreters by
 * tools/gen-linetable-vectors.py, hand-written tables for each format, and a
 * deterministic fuzz loop.  Run from the repository root.
 */
#include "symbolizer/linetable.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>

#include "test.h"

#include "common/util.h"

#define VECTOR_DIR "tests/vectors"

/* The interpreters whose vectors are committed; a missing file fails. */
static const char *const required_vectors[] = {
    "2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.11-debian",
};

static int verbose(void)
{
    return getenv("LT_VERBOSE") != NULL;
}

/* ---- vector files ------------------------------------------------------ */

struct vec_file {
    const char *path;
    enum lt_format fmt;
    int step;
    long codes;
    long offsets;
    long mismatches;
    long lineno;
};

static int fmt_for_version(int major, int minor, enum lt_format *fmt)
{
    if (major == 2 && minor == 7)
        *fmt = LT_LNOTAB_27;
    else if (major == 3 && minor >= 6 && minor <= 9)
        *fmt = LT_LNOTAB_36;
    else if (major == 3 && minor == 10)
        *fmt = LT_LINETABLE_310;
    else if (major == 3 && minor >= 11)
        *fmt = LT_LOCATIONS_311;
    else
        return -1;
    return 0;
}

static const char *fmt_name(enum lt_format fmt)
{
    switch (fmt) {
    case LT_LNOTAB_27:
        return "lnotab27";
    case LT_LNOTAB_36:
        return "lnotab36";
    case LT_LINETABLE_310:
        return "linetable310";
    case LT_LOCATIONS_311:
        return "locations311";
    }
    return "?";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex (or "-" for empty) into a fresh exactly-sized buffer. */
static int unhex(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex);

    if (n % 2)
        return -1;
    *len = n / 2;
    *out = xmalloc(*len);
    for (size_t i = 0; i < *len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* The "X.Y" that follows "linetable-" in a file name. */
static int name_version(const char *base, int *major, int *minor)
{
    return sscanf(base, "linetable-%d.%d", major, minor) == 2 ? 0 : -1;
}

static void mismatch(struct vec_file *vf, const char *code, int64_t off, int want, int got)
{
    if (vf->mismatches++ < 5)
        TEST_FAILF("%s:%ld: %s offset %" PRId64 ": expected line %d, got %d", vf->path,
                   vf->lineno, code, off, want, got);
}

/* Checks one C record (already split into fields) against its L record. */
static void check_code(struct vec_file *vf, int first, long codelen, const char *hex,
                       const char *name, char *ranges)
{
    uint8_t *tab = NULL;
    size_t len = 0;
    long covered = 0;
    char *p = ranges;

    if (unhex(hex, &tab, &len) < 0) {
        TEST_FAILF("%s:%ld: bad hex for %s", vf->path, vf->lineno, name);
        return;
    }
    vf->codes++;
    for (;;) {
        char *e;
        long start = strtol(p, &e, 10);
        if (e == p)
            break;
        long end = strtol(e, &p, 10);
        long line = strtol(p, &e, 10);
        if (e == p || start != covered || end <= start || end > codelen) {
            TEST_FAILF("%s:%ld: bad range list for %s", vf->path, vf->lineno, name);
            break;
        }
        p = e;
        covered = end;
        for (long off = start; off < end; off += vf->step) {
            int got = lt_line(vf->fmt, tab, len, first, off);
            vf->offsets++;
            if (got != line)
                mismatch(vf, name, off, (int)line, got);
        }
    }
    if (covered != codelen)
        TEST_FAILF("%s:%ld: ranges of %s end at %ld, code is %ld bytes", vf->path,
                   vf->lineno, name, covered, codelen);
    if (lt_line(vf->fmt, tab, len, first, -1) != first)
        mismatch(vf, name, -1, first, lt_line(vf->fmt, tab, len, first, -1));
    /* From 3.10 the table covers exactly the code, so the end has no line. */
    if (vf->fmt == LT_LINETABLE_310 || vf->fmt == LT_LOCATIONS_311) {
        int got = lt_line(vf->fmt, tab, len, first, codelen);
        if (got != -1)
            mismatch(vf, name, codelen, -1, got);
    }
    free(tab);
}

/* Parses the V record and checks it against the file name's X.Y. */
static int parse_header(struct vec_file *vf, const char *base, const char *line)
{
    int major, minor, micro, fmajor, fminor;
    char fmtbuf[32];

    if (sscanf(line, "V %d.%d.%d %31s %d", &major, &minor, &micro, fmtbuf, &vf->step) != 5 ||
        (vf->step != 1 && vf->step != 2)) {
        TEST_FAILF("%s:%ld: bad V record", vf->path, vf->lineno);
        return -1;
    }
    if (fmt_for_version(major, minor, &vf->fmt) < 0) {
        TEST_FAILF("%s: no line-table format for Python %d.%d", vf->path, major, minor);
        return -1;
    }
    if (name_version(base, &fmajor, &fminor) < 0 || fmajor != major || fminor != minor) {
        TEST_FAILF("%s: file name does not match its Python %d.%d header", vf->path, major,
                   minor);
        return -1;
    }
    if (strcmp(fmtbuf, fmt_name(vf->fmt)) != 0) {
        TEST_FAILF("%s: header says %s, Python %d.%d uses %s", vf->path, fmtbuf, major, minor,
                   fmt_name(vf->fmt));
        return -1;
    }
    return 0;
}

/* Splits "C <first> <codelen> <hex> <name>" in place. */
static int parse_code(char *rec, int *first, long *codelen, char **hex, char **name)
{
    char *p = rec + 1, *e;
    long v = strtol(p, &e, 10);

    if (e == p || v < INT_MIN || v > INT_MAX || *e != ' ')
        return -1;
    *first = (int)v;
    *codelen = strtol(e, &p, 10);
    if (p == e || *codelen < 0 || *p != ' ')
        return -1;
    *hex = p + 1;
    p = strchr(*hex, ' ');
    if (!p || p == *hex)
        return -1;
    *p = '\0';
    *name = p + 1;
    return **name ? 0 : -1;
}

/* Decodes every code object of one vector file; returns offsets checked. */
static long check_vector_file(const char *base)
{
    struct vec_file vf = {0};
    char path[512];
    char *line = NULL, *pending = NULL;
    size_t cap = 0;
    int have_header = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", VECTOR_DIR, base);
    vf.path = path;
    f = fopen(path, "r");
    if (!f) {
        TEST_FAILF("%s: %s", path, strerror(errno));
        return 0;
    }
    while (getline(&line, &cap, f) >= 0) {
        vf.lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (line[0] == 'V') {
            if (have_header || parse_header(&vf, base, line) < 0)
                break;
            have_header = 1;
        } else if (line[0] == 'C' && have_header && !pending) {
            pending = xstrdup(line);
        } else if (line[0] == 'L' && pending) {
            char *hex, *name;
            int first;
            long codelen;
            if (parse_code(pending, &first, &codelen, &hex, &name) < 0) {
                TEST_FAILF("%s:%ld: bad C record", path, vf.lineno - 1);
                break;
            }
            check_code(&vf, first, codelen, hex, name, line + 1);
            free(pending);
            pending = NULL;
        } else {
            TEST_FAILF("%s:%ld: unexpected record", path, vf.lineno);
            break;
        }
    }
    free(pending);
    free(line);
    fclose(f);
    if (vf.codes == 0 || vf.offsets == 0)
        TEST_FAILF("%s: no code objects checked", path);
    if (vf.mismatches)
        TEST_FAILF("%s: %ld of %ld offsets mismatched", path, vf.mismatches, vf.offsets);
    if (verbose())
        fprintf(stderr, "    %-28s %-13s %5ld code objects %7ld offsets %ld mismatches\n",
                base, fmt_name(vf.fmt), vf.codes, vf.offsets, vf.mismatches);
    return vf.offsets;
}

static int is_vector_name(const char *name)
{
    size_t n = strlen(name);

    return strncmp(name, "linetable-", 10) == 0 && n > 14 && strcmp(name + n - 4, ".txt") == 0;
}

TEST(vectors_present)
{
    int found[ARRAY_SIZE(required_vectors)] = {0};
    DIR *d = opendir(VECTOR_DIR);
    struct dirent *de;

    REQUIRE(d != NULL);
    while ((de = readdir(d)) != NULL) {
        for (size_t i = 0; i < ARRAY_SIZE(required_vectors); i++) {
            char want[64];
            snprintf(want, sizeof(want), "linetable-%s.txt", required_vectors[i]);
            if (strcmp(de->d_name, want) == 0)
                found[i] = 1;
        }
    }
    closedir(d);
    for (size_t i = 0; i < ARRAY_SIZE(required_vectors); i++)
        if (!found[i])
            TEST_FAILF("missing %s/linetable-%s.txt (run tools/gen-linetable-vectors.py)",
                       VECTOR_DIR, required_vectors[i]);
}

TEST(vectors_decode)
{
    DIR *d = opendir(VECTOR_DIR);
    struct dirent *de;
    long files = 0, offsets = 0;

    REQUIRE(d != NULL);
    while ((de = readdir(d)) != NULL) {
        if (!is_vector_name(de->d_name))
            continue;
        files++;
        offsets += check_vector_file(de->d_name);
    }
    closedir(d);
    CHECK(files >= (long)ARRAY_SIZE(required_vectors));
    if (verbose())
        fprintf(stderr, "    %ld files, %ld offsets\n", files, offsets);
}

/* ---- hand-written tables ------------------------------------------------ */

#define LINE(fmt, tab, first, q) lt_line((fmt), (tab), sizeof(tab), (first), (q))

TEST(lnotab27)
{
    /* addr 6: +1; addr 9: +2, +255 (a jump > 255 split in two); 255-byte gap; addr 268: +1 */
    static const uint8_t t[] = {6, 1, 3, 2, 0, 255, 255, 0, 4, 1};
    const enum lt_format f = LT_LNOTAB_27;

    CHECK_INT(LINE(f, t, 10, -1), 10);
    CHECK_INT(LINE(f, t, 10, INT64_MIN), 10);
    CHECK_INT(LINE(f, t, 10, 0), 10);
    CHECK_INT(LINE(f, t, 10, 5), 10);
    CHECK_INT(LINE(f, t, 10, 6), 11);
    CHECK_INT(LINE(f, t, 10, 8), 11);
    CHECK_INT(LINE(f, t, 10, 9), 268);
    CHECK_INT(LINE(f, t, 10, 263), 268);
    CHECK_INT(LINE(f, t, 10, 264), 268);
    CHECK_INT(LINE(f, t, 10, 268), 269);
    /* The table does not know the code length: past it, the last line holds. */
    CHECK_INT(LINE(f, t, 10, 100000), 269);
    CHECK_INT(LINE(f, t, 10, INT64_MAX), 269);
    /* Increments are unsigned in 2.7. */
    static const uint8_t big[] = {2, 200};
    CHECK_INT(LINE(f, big, 1, 2), 201);
    /* Empty table and a trailing odd byte. */
    CHECK_INT(lt_line(f, NULL, 0, 7, 0), 7);
    CHECK_INT(lt_line(f, t, 0, 7, 50), 7);
    static const uint8_t odd[] = {2, 1, 2};
    CHECK_INT(LINE(f, odd, 1, 100), 2);
}

TEST(lnotab36)
{
    /* addr 2: +1; addr 4: -128 (an ordinary delta here); addr 6: -127, +127 */
    static const uint8_t t[] = {2, 1, 2, 0x80, 2, 0x81, 0, 127};
    const enum lt_format f = LT_LNOTAB_36;

    CHECK_INT(LINE(f, t, 500, -1), 500);
    CHECK_INT(LINE(f, t, 500, 0), 500);
    CHECK_INT(LINE(f, t, 500, 1), 500);
    CHECK_INT(LINE(f, t, 500, 2), 501);
    CHECK_INT(LINE(f, t, 500, 4), 373);
    CHECK_INT(LINE(f, t, 500, 5), 373);
    CHECK_INT(LINE(f, t, 500, 6), 373);
    CHECK_INT(LINE(f, t, 500, 1000), 373);
    /* The same bytes read as 2.7's unsigned increments. */
    CHECK_INT(LINE(LT_LNOTAB_27, t, 500, 4), 629);
    /* A first pair with a zero address increment applies at offset 0. */
    static const uint8_t z[] = {0, 3, 4, 0xff};
    CHECK_INT(LINE(f, z, 1, 0), 4);
    CHECK_INT(LINE(f, z, 1, 4), 3);
    CHECK_INT(lt_line(f, NULL, 0, 9, 4), 9);
}

TEST(linetable310)
{
    static const uint8_t t[] = {
        6, 0,      /* [0,6)     200 */
        0, 5,      /* empty     205 (still applies) */
        4, 0x80,   /* [6,10)    no line; 205 kept */
        2, 1,      /* [10,12)   206 */
        0, 2,      /* empty     208 */
        254, 3,    /* [12,266)  211 */
        2, 0x81,   /* [266,268) 84 */
    };
    const enum lt_format f = LT_LINETABLE_310;

    CHECK_INT(LINE(f, t, 200, -1), 200);
    CHECK_INT(LINE(f, t, 200, -1000), 200);
    CHECK_INT(LINE(f, t, 200, 0), 200);
    CHECK_INT(LINE(f, t, 200, 5), 200);
    CHECK_INT(LINE(f, t, 200, 6), -1);
    CHECK_INT(LINE(f, t, 200, 9), -1);
    CHECK_INT(LINE(f, t, 200, 10), 206);
    CHECK_INT(LINE(f, t, 200, 12), 211);
    CHECK_INT(LINE(f, t, 200, 265), 211);
    CHECK_INT(LINE(f, t, 200, 266), 84);
    CHECK_INT(LINE(f, t, 200, 268), -1);
    CHECK_INT(LINE(f, t, 200, (int64_t)1 << 40), -1);
    CHECK_INT(LINE(f, t, 200, INT64_MAX), -1);
    CHECK_INT(lt_line(f, NULL, 0, 3, 0), -1);
    CHECK_INT(lt_line(f, t, 1, 3, 0), -1); /* one byte: no complete pair */
}

/* A 3.11 entry header: bit 7, the code in bits 3-6, length-1 in bits 0-2. */
#define H(code, units) (uint8_t)(0x80 | (code) << 3 | ((units) - 1))

TEST(locations311)
{
    static const uint8_t t[] = {
        H(0, 1), 0x05,                        /* [0,2)   short form: 5000 */
        H(11, 2), 4, 9,                       /* [2,6)   one line, +1: 5001 */
        H(12, 1), 0, 3,                       /* [6,8)   one line, +2: 5003 */
        H(10, 8), 1, 2,                       /* [8,24)  one line, +0: 5003 */
        H(13, 1), 0x50, 0x01,                 /* [24,26) no columns, svarint 80 = +40 */
        H(14, 2), 0x71, 0x5d, 0x01, 2, 5, 9, /* [26,30) long, svarint 6001 = -3000 */
        H(15, 3),                             /* [30,36) no location; line kept */
        H(9, 1), 0x7f,                        /* [36,38) short form: 2043 */
        H(14, 1), 0x03, 0x41, 0x01, 5, 6,    /* [38,40) long, -1, end line varint 65 */
        H(13, 1), 0x00,                       /* [40,42) no columns, +0 */
    };
    const enum lt_format f = LT_LOCATIONS_311;

    CHECK_INT(LINE(f, t, 5000, -1), 5000);
    CHECK_INT(LINE(f, t, 5000, INT64_MIN), 5000);
    CHECK_INT(LINE(f, t, 5000, 0), 5000);
    CHECK_INT(LINE(f, t, 5000, 1), 5000);
    CHECK_INT(LINE(f, t, 5000, 2), 5001);
    CHECK_INT(LINE(f, t, 5000, 5), 5001);
    CHECK_INT(LINE(f, t, 5000, 6), 5003);
    CHECK_INT(LINE(f, t, 5000, 8), 5003);
    CHECK_INT(LINE(f, t, 5000, 23), 5003);
    CHECK_INT(LINE(f, t, 5000, 24), 5043);
    CHECK_INT(LINE(f, t, 5000, 26), 2043);
    CHECK_INT(LINE(f, t, 5000, 29), 2043);
    CHECK_INT(LINE(f, t, 5000, 30), -1);
    CHECK_INT(LINE(f, t, 5000, 35), -1);
    CHECK_INT(LINE(f, t, 5000, 36), 2043);
    CHECK_INT(LINE(f, t, 5000, 38), 2042);
    CHECK_INT(LINE(f, t, 5000, 40), 2042);
    CHECK_INT(LINE(f, t, 5000, 42), -1);
    CHECK_INT(LINE(f, t, 5000, INT64_MAX), -1);
    CHECK_INT(lt_line(f, NULL, 0, 1, 0), -1);

    /* A 3-byte varint: 262143 = 0x3ffff -> svarint -131071. */
    static const uint8_t v3[] = {H(13, 1), 0x7f, 0x7f, 0x3f};
    CHECK_INT(LINE(f, v3, 200000, 0), 200000 - 131071);
    /* A varint cut short by the next entry stops there (malformed table). */
    static const uint8_t cut[] = {H(13, 1), 0x44, H(11, 1), 0, 0};
    CHECK_INT(LINE(f, cut, 10, 0), 12);
    CHECK_INT(LINE(f, cut, 10, 2), 13);
    /* ... and so does a varint at the end of the table. */
    static const uint8_t tail[] = {H(14, 1), 0x44};
    CHECK_INT(LINE(f, tail, 10, 0), 12);
    /* A first byte without bit 7 is still read as a header. */
    static const uint8_t nohead[] = {0x01, 0x02, H(11, 1), 0, 0};
    CHECK_INT(LINE(f, nohead, 10, 0), 10);
    CHECK_INT(LINE(f, nohead, 10, 3), 10);
    CHECK_INT(LINE(f, nohead, 10, 4), 11);
}

TEST(line_clamping)
{
    /* Four long-form entries of +INT_MAX (u = 0xfffffffe) saturate at INT_MAX. */
    static const uint8_t up[] = {
        H(14, 1), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03, H(14, 1), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03,
        H(14, 1), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03, H(14, 1), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03,
    };
    static const uint8_t down[] = {
        H(13, 1), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x03, H(13, 1), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x03,
        H(13, 1), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x03,
    };
    /* More continuation chunks than 32 bits hold: the excess is dropped. */
    static const uint8_t wide[] = {H(13, 1), 0x42, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01};
    const enum lt_format f = LT_LOCATIONS_311;

    CHECK_INT(LINE(f, up, 0, 0), INT_MAX);
    CHECK_INT(LINE(f, up, 0, 2), INT_MAX);
    CHECK_INT(LINE(f, up, 0, 6), INT_MAX);
    CHECK_INT(LINE(f, up, INT_MIN, 0), -1);
    CHECK_INT(LINE(f, up, INT_MIN, 2), INT_MAX - 1);
    CHECK_INT(LINE(f, up, INT_MIN, 4), INT_MAX);
    CHECK_INT(LINE(f, down, 0, 0), -INT_MAX);
    CHECK_INT(LINE(f, down, 0, 2), INT_MIN);
    CHECK_INT(LINE(f, down, 0, 4), INT_MIN);
    CHECK_INT(LINE(f, down, INT_MAX, 2), INT_MIN + 1);
    /* u = 0xffffffc2: bits 32-35 of the sixth chunk are gone. */
    CHECK_INT(LINE(f, wide, 0, 0), 0x7fffffe1);

    static const uint8_t l310[] = {2, 127, 2, 127};
    CHECK_INT(LINE(LT_LINETABLE_310, l310, INT_MAX - 1, 2), INT_MAX);
    static const uint8_t l36[] = {0, 0x80, 0, 0x80};
    CHECK_INT(LINE(LT_LNOTAB_36, l36, INT_MIN + 5, 0), INT_MIN);

    /* 2.7 increments are unsigned: 9 M pairs of +255 pass INT_MAX. */
    size_t n = 2 * (size_t)9000000;
    uint8_t *big = xmalloc(n);
    for (size_t i = 0; i < n; i += 2) {
        big[i] = 0;
        big[i + 1] = 255;
    }
    CHECK_INT(lt_line(LT_LNOTAB_27, big, n, 1, 0), INT_MAX);
    free(big);
}

/* ---- robustness ---------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static int64_t random_addrq(uint64_t *s, size_t len)
{
    uint64_t r = rng_next(s);

    switch (r % 8) {
    case 0:
        return INT64_MIN;
    case 1:
        return INT64_MAX;
    case 2:
        return -(int64_t)(r >> 60) - 1;
    case 3:
        return (int64_t)(r >> 3) & 0xffffff;
    default:
        return (int64_t)((r >> 3) % (len * 256 + 16));
    }
}

static int random_first(uint64_t *s)
{
    uint64_t r = rng_next(s);

    switch (r % 6) {
    case 0:
        return INT_MAX;
    case 1:
        return INT_MIN;
    case 2:
        return (int)(int32_t)(uint32_t)(r >> 32);
    default:
        return (int)((r >> 8) % 5000);
    }
}

/*
 * Random tables of 0..64 bytes placed at the very end of a heap block, so
 * that ASan reports any read past len.  Besides not crashing, check what
 * holds for any bytes: addrq < 0 gives the first line, and addresses past
 * what the table can span give -1 (3.10+).
 */
TEST(fuzz_random_tables)
{
    enum { MAXLEN = 64, ROUNDS = 200000 };
    static const enum lt_format fmts[] = {LT_LNOTAB_27, LT_LNOTAB_36, LT_LINETABLE_310,
                                          LT_LOCATIONS_311};
    uint8_t *block = xmalloc(MAXLEN);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    long checked = 0;

    for (int round = 0; round < ROUNDS; round++) {
        size_t len = rng_next(&seed) % (MAXLEN + 1);
        uint8_t *t = block + MAXLEN - len;
        enum lt_format f = fmts[round % 4];
        int bias = (int)(rng_next(&seed) % 3);

        for (size_t i = 0; i < len; i++) {
            uint8_t b = (uint8_t)rng_next(&seed);
            if (bias == 1 && f == LT_LOCATIONS_311 && i % 3 == 0)
                b |= 0x80; /* more entry headers */
            if (bias == 2)
                b &= 0x7f; /* no headers / no -128 */
            t[i] = b;
        }
        int first = random_first(&seed);
        for (int k = 0; k < 4; k++) {
            int64_t q = random_addrq(&seed, len);
            int got = lt_line(f, len ? t : NULL, len, first, q);
            checked++;
            if (q < 0 && got != first)
                TEST_FAILF("round %d: addrq %" PRId64 " gave %d, not first %d", round, q, got,
                           first);
            if ((f == LT_LINETABLE_310 && q >= (int64_t)len * 128) ||
                (f == LT_LOCATIONS_311 && q >= (int64_t)len * 16))
                if (got != -1)
                    TEST_FAILF("round %d: %s addrq %" PRId64 " past the table gave %d", round,
                               fmt_name(f), q, got);
        }
    }
    free(block);
    CHECK_INT(checked, 4L * ROUNDS);
}

/* Every offset of every prefix of a real-looking table: no over-read when a
 * table is cut anywhere (e.g. a short remote read). */
TEST(truncated_tables)
{
    static const uint8_t loc[] = {
        H(14, 2), 0x71, 0x5d, 0x01, 2, 5, 9, H(0, 1), 0x05, H(13, 1), 0x50, 0x01, H(15, 3),
    };
    static const uint8_t pairs[] = {6, 0, 0, 5, 4, 0x80, 2, 1, 0, 2, 254, 3, 2, 0x81};

    for (size_t n = 0; n <= sizeof(loc); n++) {
        uint8_t *t = xmalloc(n);
        memcpy(t, loc, n);
        for (int64_t q = -2; q < 40; q++)
            (void)lt_line(LT_LOCATIONS_311, t, n, 1, q);
        free(t);
    }
    for (size_t n = 0; n <= sizeof(pairs); n++) {
        uint8_t *t = xmalloc(n);
        memcpy(t, pairs, n);
        for (int64_t q = -2; q < 300; q++) {
            (void)lt_line(LT_LNOTAB_27, t, n, 1, q);
            (void)lt_line(LT_LNOTAB_36, t, n, 1, q);
            (void)lt_line(LT_LINETABLE_310, t, n, 1, q);
        }
        free(t);
    }
}
