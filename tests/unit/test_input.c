/* The folded-stack reader (convert, diff) and the comparison of two profiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#include "common/util.h"
#include "output/diff.h"
#include "output/folded.h"
#include "output/foldedin.h"
#include "output/profile.h"

static char *folded_of(const struct profile *p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f != NULL);
    CHECK_INT(folded_write(f, p), 0);
    REQUIRE(fclose(f) == 0);
    return text;
}

/* Reads text, which must parse, and returns its folded form. */
static char *reread(const char *text, struct profile *p)
{
    struct pserr err = {0};
    profile_init(p);
    int ret = folded_read(p, text, strlen(text), "in", &err);
    if (ret != 0)
        TEST_FAILF("folded_read failed: %s", err.msg);
    REQUIRE(ret == 0);
    return folded_of(p);
}

/* Reads text, which must fail, and checks the message. */
static void expect_error(const char *text, size_t n, const char *msg)
{
    struct profile p;
    struct pserr err = {0};
    profile_init(&p);
    int ret = folded_read(&p, text, n, "in", &err);
    CHECK(ret < 0);
    if (ret < 0 && strcmp(err.msg, msg) != 0)
        TEST_FAILF("message \"%s\", expected \"%s\"", err.msg, msg);
    profile_release(&p);
}

TEST(folded_read_round_trip)
{
    const char *text = "thread MainThread (42);<module> (a.py:1) 2\n"
                       "thread MainThread (42);<module> (a.py:1);f (a.py:2) 5\n"
                       "thread w;x (43);run (b.py:3) 7\n";
    struct profile p;
    char *out = reread(text, &p);
    /* ';' cannot be in a label: the thread name "w;x" is two frames, and that is what is written. */
    CHECK_STR(out, text);
    CHECK_INT(p.total, 14);
    CHECK_INT(p.nthreads, 2);
    CHECK(p.thread_roots);
    CHECK_STR(p.threads[0].name, "MainThread");
    CHECK_INT(p.threads[0].tid, 42);
    CHECK_STR(p.frames[p.threads[0].frame].label, "thread MainThread (42)");
    size_t n;
    const uint32_t *fr = profile_stack_frames(&p, &p.stacks[1], &n);
    CHECK_INT(n, 2);
    CHECK_STR(p.frames[fr[1]].name, "f");
    CHECK_STR(p.frames[fr[1]].file, "a.py");
    CHECK_INT(p.frames[fr[1]].line, 2);
    CHECK_INT(p.frames[fr[1]].kind, PK_PYTHON);
    free(out);
    profile_release(&p);
}

TEST(folded_read_merges_and_tolerates_whitespace)
{
    struct profile p;
    char *out = reread("\n  \r\na;b 1\r\na;b\t2\na;b   3  \n\na;c 0\nb 4", &p);
    CHECK_STR(out, "a;b 6\nb 4\n");
    CHECK_INT(p.total, 10);
    CHECK(!p.thread_roots);
    CHECK_INT(p.nthreads, 1);
    free(out);
    profile_release(&p);
}

TEST(folded_read_mixed_roots_are_plain_frames)
{
    struct profile p;
    char *out = reread("thread A (1);x 1\ny 2\n", &p);
    CHECK(!p.thread_roots);
    CHECK_STR(out, "thread A (1);x 1\ny 2\n");
    free(out);
    profile_release(&p);
}

/* P and T frames are austin's roots only when every stack has them. */
TEST(folded_read_austin_roots_only_in_austin_output)
{
    struct profile p;
    char *out = reread("P5;T1;f (a.py:1) 1\nP5;g (a.py:2) 2\n", &p);
    CHECK_STR(out, "P5;T1;f (a.py:1) 1\nP5;g (a.py:2) 2\n");
    free(out);
    profile_release(&p);
    out = reread("P5;T1;f (a.py:1) 1\nx 0\nP5;T2;g (a.py:2) 2\n", &p);
    CHECK_STR(out, "thread (1);f (a.py:1) 1\nthread (2);g (a.py:2) 2\n");
    free(out);
    profile_release(&p);
}

TEST(folded_read_py_spy)
{
    struct profile p;
    char *out = reread("thread (0x7F3A2B1C0740);<module> (app.py:30);busy (app.py:5) 9\n"
                       "thread (0x7F3A2A000640);run (w.py:9) 1\n", &p);
    CHECK(p.thread_roots);
    CHECK_INT(p.nthreads, 2);
    CHECK_INT(p.threads[0].tid, 0);
    CHECK(p.threads[0].name == NULL);
    CHECK_STR(p.frames[p.threads[0].frame].label, "thread (0x7F3A2B1C0740)");
    free(out);
    profile_release(&p);
    /* py-spy --threads: "thread (TID): NAME", native TIDs in decimal. */
    out = reread("thread (4242): MainThread;<module> (app.py:30) 2\nthread (4250);run (w.py:9) 1\n", &p);
    CHECK(p.thread_roots);
    CHECK_STR(p.threads[0].name, "MainThread");
    CHECK_INT(p.threads[0].tid, 4242);
    CHECK(p.threads[1].name == NULL);
    CHECK_INT(p.threads[1].tid, 4250);
    CHECK_STR(out, "thread (4242): MainThread;<module> (app.py:30) 2\nthread (4250);run (w.py:9) 1\n");
    free(out);
    profile_release(&p);
    out = reread("process 4242:\"python3 app.py\";<module> (app.py:30) 3\n", &p);
    CHECK_INT(p.frames[p.ids[0]].kind, PK_PROCESS);
    CHECK_STR(out, "process 4242:\"python3 app.py\";<module> (app.py:30) 3\n");
    free(out);
    profile_release(&p);
}

TEST(folded_read_austin)
{
    struct profile p;
    /* austin 3: header, P and T roots, FILE:FUNCTION:LINE frames; one process: P dropped. */
    char *out = reread("# austin: 3.6.0\n# interval: 100\n# mode: wall\n\n"
                       "P4242;T0:4243;/srv/app.py:<module>:30;/srv/app.py:main:25 11\n"
                       "P4242;T0:4250;/srv/w.py:run:9 2\n", &p);
    CHECK_STR(out, "thread (4243);<module> (/srv/app.py:30);main (/srv/app.py:25) 11\n"
                   "thread (4250);run (/srv/w.py:9) 2\n");
    CHECK(p.thread_roots);
    CHECK_INT(p.threads[0].tid, 4243);
    CHECK(p.meta.rate > 9999.0 && p.meta.rate < 10001.0);
    CHECK_STR(p.meta.mode, "wall");
    free(out);
    profile_release(&p);
    /* austin -f: "TIME,IDLE,MEMORY" metrics; the time is the weight.  Its markers stay frames. */
    out = reread("P7;T0:8;/a.py:f:1 120,0,-4096\nP7;T0:8;/a.py:f:1;:GC: 30,1,512\n", &p);
    CHECK_STR(out, "thread (8);f (/a.py:1) 120\nthread (8);f (/a.py:1);:GC: 30\n");
    free(out);
    profile_release(&p);
    /* Two processes: the process stays as a frame. */
    out = reread("P1;T0:5;/a.py:f:1 1\nP2;T0:6;/a.py:f:1 1\n", &p);
    CHECK_STR(out, "process 1;thread (5);f (/a.py:1) 1\nprocess 2;thread (6);f (/a.py:1) 1\n");
    CHECK(!p.thread_roots);
    free(out);
    profile_release(&p);
    /* austin 1.0 (Debian's): "Thread HEX;FUNCTION (FILE);L<line>", zero-count lines. */
    out = reread("Thread 7fc9be36fb80;<module> (<frozen importlib._bootstrap>);L689 0\n"
                 "Thread 7fc9be36fb80;<module> (/x/site.py);L62;main (/x/site.py);L518 1075\n", &p);
    CHECK_STR(out, "thread (7fc9be36fb80);<module> (/x/site.py:62);main (/x/site.py:518) 1075\n");
    CHECK(p.thread_roots);
    free(out);
    profile_release(&p);
    /* austin 1: "FUNCTION (FILE);L<line>". */
    out = reread("P9;T7f00aa;<module> (app.py);L30;busy (app.py);L5 4\n", &p);
    CHECK_STR(out, "thread (7f00aa);<module> (app.py:30);busy (app.py:5) 4\n");
    free(out);
    profile_release(&p);
}

TEST(folded_read_errors_name_the_line)
{
    expect_error("a;b 1\nno-count\n", 15, "in:2: no sample count at the end (expected \"frame;frame;... COUNT\")");
    expect_error("a;b 1x\n", 7, "in:1: \"1x\" is not a sample count (a whole number)");
    expect_error("a;b -1\n", 7, "in:1: \"-1\" is not a sample count (a whole number)");
    expect_error("a;b 99999999999999999999\n", 25, "in:1: sample count larger than 2^64");
    expect_error("a;;b 1\n", 7, "in:1: frame 2 is empty");
    expect_error(";a 1\n", 5, "in:1: frame 1 is empty");
    expect_error("a; 1\n", 5, "in:1: frame 2 is empty");
    expect_error("x 1\n 5\n", 7, "in:2: no frames before the count");
    expect_error("a\0b 1\n", 6, "in:1: a NUL byte: this is not folded text");
    expect_error("a 18446744073709551615\nb 1\n", 26, "in:2: the sample counts add up to more than 2^64");
}

TEST(folded_read_too_many_frames)
{
    struct strbuf sb = STRBUF_INIT;
    for (unsigned i = 0; i <= FOLDEDIN_MAX_FRAMES; i++)
        sb_adds(&sb, i ? ";f" : "f");
    sb_adds(&sb, " 1\n");
    expect_error(sb.buf, sb.len, "in:1: more than 65536 frames in one stack");
    sb_release(&sb);
}

TEST(folded_read_file_missing_and_stdin_name)
{
    struct profile p;
    struct pserr err = {0};
    profile_init(&p);
    CHECK(folded_read_file(&p, "/nonexistent/x.folded", &err) < 0);
    CHECK_STR(err.msg, "cannot open /nonexistent/x.folded: No such file or directory");
    profile_release(&p);
}

/* The lines of buf[0..n) in reverse order, each ending in a newline (n + 1 bytes, NUL-terminated). */
static char *reversed_lines(const char *buf, size_t n)
{
    char *out = xmalloc(n + 2);
    size_t o = 0, end = n;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        memcpy(out + o, buf + start, end - start);
        o += end - start;
        out[o++] = '\n';
        end = start ? start - 1 : 0;
        if (start == 0)
            break;
    }
    while (o < n + 1)
        out[o++] = '\n';
    out[o] = '\0';
    return out;
}

/* Random edits of a valid input never crash the reader, and what it accepts reads back the same. */
TEST(folded_read_mutations)
{
    static const char *const seeds[] = {
        "Thread 7f;f (a.py);L3;g (b.py);L4 5\nThread 7f;f (a.py);L9;g (b.py);L4 2\n"
        "thread A (1);f (a.py:1);g (a.py:2) 7\nx;y;z 3\nx;y;w 1\n",
        "# interval: 100\nP1;T0:2;/a.py:f:1;L3;g (b.py) 5\nP1;T0:2;/a.py:f:1;h (c.py);L7 1\n",
    };
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char *buf = xmalloc(256);
    for (int iter = 0; iter < 40000; iter++) {
        const char *seed = seeds[iter % 2];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        size_t len = n;
        int edits = 1 + (int)(rng % 4);
        for (int e = 0; e < edits; e++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 33) % len;
            static const char alphabet[] = ";: ()\n\t\r0123456789LPT#x\xff\xc3";
            buf[at] = alphabet[(rng >> 20) % (sizeof(alphabet) - 1)];
        }
        struct profile p, q;
        struct pserr err;
        profile_init(&p);
        if (folded_read(&p, buf, len, "m", &err) == 0) {
            char *text = folded_of(&p);
            /* The one ambiguity of the format: a first line that reads as austin's header. */
            if (strncmp(text, "# ", 2) == 0) {
                free(text);
                profile_release(&p);
                continue;
            }
            /* The stacks do not depend on the order of the lines (the reader
             * reuses the previous line's prefix). */
            if (!memchr(buf, '#', len)) {
                char *rev = reversed_lines(buf, len);
                profile_init(&q);
                if (folded_read(&q, rev, len + 1, "reversed", &err) == 0) {
                    char *text2 = folded_of(&q);
                    if (strcmp(text, text2) != 0)
                        TEST_FAILF("line order changed the stacks:\n%.*s\n  ->\n%s\n  reversed ->\n%s",
                                   (int)len, buf, text, text2);
                    free(text2);
                } else {
                    TEST_FAILF("the reversed lines do not read: %s", err.msg);
                }
                profile_release(&q);
                free(rev);
            }
            profile_init(&q);
            CHECK_INT(folded_read(&q, text, strlen(text), "again", &err), 0);
            if (q.total != p.total)
                TEST_FAILF("%.*s\n  ->\n%s", (int)len, buf, text);
            profile_release(&q);
            free(text);
        }
        profile_release(&p);
    }
    free(buf);
}

static void read_text(struct profile *p, const char *text)
{
    struct pserr err;
    profile_init(p);
    REQUIRE(folded_read(p, text, strlen(text), "in", &err) == 0);
}

TEST(diff_rows_known_changes)
{
    struct profile b, n;
    read_text(&b, "m;f 50\nm;g 50\n");
    read_text(&n, "m;f 20\nm;g 60\nm;h 20\n");
    struct diff_row *rows;
    size_t nr = diff_rows(&b, &n, &rows);
    CHECK_INT(nr, 3); /* m is 100% in both: unchanged */
    CHECK_STR(rows[0].label, "f");
    CHECK(rows[0].base_self == 0.5 && rows[0].new_self == 0.2);
    CHECK_STR(rows[1].label, "h");
    CHECK(rows[1].base_total == 0.0 && rows[1].new_total == 0.2);
    CHECK_STR(rows[2].label, "g");
    free(rows);
    struct strbuf sb = STRBUF_INIT;
    diff_top_text(&b, &n, 2, &sb);
    CHECK_STR(sb.buf, "          self %                    total %\n"
                      "   base     new   change    base     new   change  frame\n"
                      "  50.00   20.00   -30.00   50.00   20.00   -30.00  f\n"
                      "   0.00   20.00   +20.00    0.00   20.00   +20.00  h\n");
    sb_release(&sb);
    profile_release(&b);
    profile_release(&n);
}

TEST(diff_counts_recursion_once)
{
    struct profile b, n;
    read_text(&b, "r;r;r 10\nx 10\n");
    read_text(&n, "r;r 10\nx 30\n");
    struct diff_row *rows;
    size_t nr = diff_rows(&b, &n, &rows);
    CHECK_INT(nr, 2);
    for (size_t i = 0; i < nr; i++) {
        if (!strcmp(rows[i].label, "r")) {
            CHECK(rows[i].base_total == 0.5);
            CHECK(rows[i].new_total == 0.25);
        }
    }
    free(rows);
    profile_release(&b);
    profile_release(&n);
}

TEST(diff_normalize_drops_ids)
{
    struct profile a, d;
    read_text(&a, "thread Main (42);f 1\nthread Main (43);f 2\nthread (0x7f);g 3\n"
                  "thread (44): Main;f 4\n");
    profile_init(&d);
    diff_normalize(&d, &a);
    char *out = folded_of(&d);
    CHECK_STR(out, "thread Main;f 7\nthread;g 3\n");
    CHECK(d.thread_roots);
    CHECK_INT(d.nthreads, 2);
    free(out);
    profile_release(&d);
    profile_release(&a);
    read_text(&a, "process 12 (python3 a.py);f 1\nprocess 13:\"python3 a.py\";f 1\n");
    profile_init(&d);
    diff_normalize(&d, &a);
    out = folded_of(&d);
    CHECK_STR(out, "process \"python3 a.py\";f 1\nprocess (python3 a.py);f 1\n");
    free(out);
    profile_release(&d);
    profile_release(&a);
}

TEST(profile_label_parsing)
{
    struct prof_frame f;
    profile_parse_label("fn (/x/y.py:12)", &f);
    CHECK_STR(f.name, "fn");
    CHECK_STR(f.file, "/x/y.py");
    CHECK_INT(f.line, 12);
    CHECK_INT(f.kind, PK_PYTHON);
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("a (b) (<frozen importlib._bootstrap>:1)", &f);
    CHECK_STR(f.name, "a (b)");
    CHECK_STR(f.file, "<frozen importlib._bootstrap>");
    CHECK_INT(f.kind, PK_PYTHON);
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("deflate (libz.so.1)", &f);
    CHECK_STR(f.name, "deflate");
    CHECK_STR(f.file, "libz.so.1");
    CHECK_INT(f.line, 0);
    CHECK_INT(f.kind, PK_NATIVE);
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("[idle]", &f);
    CHECK_INT(f.kind, PK_MARK);
    CHECK_STR(f.file, "");
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("thread MainThread (42)", &f);
    CHECK_INT(f.kind, PK_THREAD);
    CHECK_STR(f.name, "thread MainThread (42)");
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("lonely", &f);
    CHECK_INT(f.kind, PK_OTHER);
    free(f.label); free(f.name); free(f.file);
    profile_parse_label("x ()", &f);
    CHECK_STR(f.name, "x ()");
    free(f.label); free(f.name); free(f.file);
}
