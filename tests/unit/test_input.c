/* The folded-stack reader (convert, diff) and the comparison of two profiles. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Ours, with threads labelled alike numbered apart: the tid and name read back. */
TEST(folded_read_numbered_thread_roots)
{
    struct profile p;
    const char *text = "thread churn (301 #2);run (w.py:9) 2\n"
                       "thread churn (301);run (w.py:9) 1\n"
                       "thread (0x7f01 #3);run (w.py:9) 4\n"
                       "thread x (#2);run (w.py:9) 5\n";
    char *out = reread(text, &p);
    CHECK(p.thread_roots);
    CHECK_INT(p.nthreads, 4);
    CHECK_STR(p.threads[0].name, "churn");
    CHECK_INT(p.threads[0].tid, 301);
    CHECK_STR(p.frames[p.threads[0].frame].label, "thread churn (301 #2)");
    CHECK_STR(p.threads[1].name, "churn");
    CHECK_INT(p.threads[1].tid, 301);
    CHECK(p.threads[2].name == NULL);
    CHECK_INT(p.threads[2].tid, 0);
    CHECK_INT(p.threads[3].tid, 0); /* no tid before the number */
    CHECK_STR(out, "thread (0x7f01 #3);run (w.py:9) 4\n"
                   "thread churn (301 #2);run (w.py:9) 2\n"
                   "thread churn (301);run (w.py:9) 1\n"
                   "thread x (#2);run (w.py:9) 5\n");
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

/* ---- reading from a descriptor: streamed, bounded ---- */

/* A child that writes `unit` over and over to fd (after `first`), until killed. */
static pid_t endless_writer(int fd, const char *first, const char *unit, size_t unitlen)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (first && write(fd, first, strlen(first)) < 0)
            _exit(0);
        for (;;)
            if (write(fd, unit, unitlen) < 0)
                _exit(0);
    }
    return pid;
}

static void stop_writer(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Reads a pipe that never ends: the reader must stop by itself with msg. */
static void expect_pipe_error(const char *first, const char *unit, size_t unitlen, uint64_t max,
                              const char *msg)
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t w = endless_writer(fds[1], first, unit, unitlen);
    close(fds[1]);
    struct profile p;
    struct pserr err = {0};
    profile_init(&p);
    CHECK(folded_read_fd(&p, fds[0], "pipe", max, &err) < 0);
    if (strcmp(err.msg, msg) != 0)
        TEST_FAILF("message \"%s\", expected \"%s\"", err.msg, msg);
    profile_release(&p);
    close(fds[0]);
    stop_writer(w);
}

/* An endless input ends at its first bad line, or at the limit: never read to its end. */
TEST(folded_read_fd_stops_at_first_bad_line_or_limit)
{
    static const char zeros[4096];
    expect_pipe_error("a;b 1\n", zeros, sizeof(zeros), FOLDEDIN_MAX_INPUT,
                      "pipe:2: a NUL byte: this is not folded text");
    expect_pipe_error(NULL, zeros, sizeof(zeros), FOLDEDIN_MAX_INPUT,
                      "pipe:1: a NUL byte: this is not folded text");
    expect_pipe_error("a;b 1\n\n", "aaaaaaaa", 8, FOLDEDIN_MAX_INPUT, "pipe:3: line longer than 16 MiB");
    expect_pipe_error("a;b 1\n", "a;b\n", 4, FOLDEDIN_MAX_INPUT,
                      "pipe:2: no sample count at the end (expected \"frame;frame;... COUNT\")");
    /* Lines that look like austin's keep the dialect open: a bad one still ends the reading. */
    expect_pipe_error("P1;T1;f 1\n", "P1;T1;f\n", 8, FOLDEDIN_MAX_INPUT,
                      "pipe:2: no sample count at the end (expected \"frame;frame;... COUNT\")");
    expect_pipe_error(NULL, "a;b 1\n", 6, 1u << 20, "pipe is larger than 1 MiB: more than pystrobe reads as a profile");
    expect_pipe_error(NULL, "P1;T1;f 1\n", 10, 1u << 20,
                      "pipe is larger than 1 MiB: more than pystrobe reads as a profile");
}

/* The folded form of text read from a pipe (written by a child, in small pieces) and from a file. */
static char *stream_of(const char *text, int from_file, int *ret, struct pserr *err)
{
    struct profile p;
    int fd;
    pid_t w = -1;
    char path[] = "/tmp/pystrobe-input-XXXXXX";
    size_t n = strlen(text);
    if (from_file) {
        fd = mkstemp(path);
        REQUIRE(fd >= 0);
        unlink(path);
        /* Something before where the input starts: it is read again from there, not from 0. */
        REQUIRE(write(fd, "junk\0", 5) == 5 && write(fd, text, n) == (ssize_t)n);
        REQUIRE(lseek(fd, 5, SEEK_SET) == 5);
    } else {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        w = fork();
        REQUIRE(w >= 0);
        if (w == 0) {
            close(fds[0]);
            for (size_t i = 0; i < n; i += 3)
                if (write(fds[1], text + i, n - i < 3 ? n - i : 3) < 0)
                    _exit(1);
            _exit(0);
        }
        close(fds[1]);
        fd = fds[0];
    }
    profile_init(&p);
    *ret = folded_read_fd(&p, fd, "in", FOLDEDIN_MAX_INPUT, err);
    char *out = *ret == 0 ? folded_of(&p) : NULL;
    profile_release(&p);
    close(fd);
    if (w > 0)
        waitpid(w, NULL, 0);
    return out;
}

/* Read from a pipe or a file, any text gives what it gives from memory (austin's dialect included). */
TEST(folded_read_fd_same_as_memory)
{
    static const char *const texts[] = {
        "P5;T1;f (a.py:1) 1\nP5;g (a.py:2) 2\n",
        "P5;T1;f (a.py:1) 1\nx 0\nP5;T2;g (a.py:2) 2\n",
        "# austin: 3.6.0\n# interval: 100\n# mode: wall\n\n"
        "P4242;T0:4243;/srv/app.py:<module>:30;/srv/app.py:main:25 11\nP4242;T0:4250;/srv/w.py:run:9 2\n",
        "P7;T0:8;/a.py:f:1 120,0,-4096\nP7;T0:8;/a.py:f:1;:GC: 30,1,512\n",
        "P1;T0:5;/a.py:f:1 1\nP2;T0:6;/a.py:f:1 1\n",
        "P1;T0:5;/a.py:f:1 1,0,0\nx 1\n",
        "Thread 7fc9be36fb80;<module> (/x/site.py);L62;main (/x/site.py);L518 1075\n",
        "a;b;c 1\n\n  \na;b;d 2\n# x: y\na;b 3\na 1\nb;c;d;e 1",
        "\xEF\xBB\xBF" "a;b 1\n",
        "\xEF\xBB\xBF" "P1;T0:2;f 1\n",
        "a;b 1\nP1;T2;\0;x 1\n",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *t = texts[i];
        size_t n = strlen(t);
        if (i == sizeof(texts) / sizeof(texts[0]) - 1)
            n = 18;
        struct profile p;
        struct pserr err = {0}, e2 = {0};
        profile_init(&p);
        int want_ret = folded_read(&p, t, n, "in", &err);
        char *want = want_ret == 0 ? folded_of(&p) : NULL;
        profile_release(&p);
        for (int from_file = 0; from_file < 2; from_file++) {
            int ret;
            char *got;
            if (n != strlen(t)) {
                /* (the text holds a NUL: written whole, not as a string) */
                char path[] = "/tmp/pystrobe-input-XXXXXX";
                int fd = mkstemp(path);
                REQUIRE(fd >= 0);
                unlink(path);
                REQUIRE(write(fd, t, n) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0);
                profile_init(&p);
                ret = folded_read_fd(&p, fd, "in", FOLDEDIN_MAX_INPUT, &e2);
                got = ret == 0 ? folded_of(&p) : NULL;
                profile_release(&p);
                close(fd);
            } else {
                got = stream_of(t, from_file, &ret, &e2);
            }
            if ((ret == 0) != (want_ret == 0) || (want && strcmp(want, got) != 0) ||
                (!want && strcmp(err.msg, e2.msg) != 0))
                TEST_FAILF("text %zu from a %s: \"%s\" / \"%s\", from memory \"%s\" / \"%s\"", i,
                           from_file ? "file" : "pipe", got ? got : "", e2.msg, want ? want : "", err.msg);
            free(got);
        }
        free(want);
    }
}

TEST(folded_read_skips_a_byte_order_mark)
{
    struct profile p;
    char *out = reread("\xEF\xBB\xBF" "a (x.py:1);b (x.py:2) 3\n", &p);
    CHECK_STR(out, "a (x.py:1);b (x.py:2) 3\n");
    CHECK_STR(p.frames[p.ids[0]].name, "a");
    free(out);
    profile_release(&p);
    /* Only at the start: elsewhere it is part of a frame. */
    out = reread("a 1\n\xEF\xBB\xBF" "b 1\n", &p);
    CHECK_STR(out, "a 1\n\xEF\xBB\xBF" "b 1\n");
    free(out);
    profile_release(&p);
}

TEST(folded_read_messages_are_whole)
{
    expect_error("a;b 123456789012345678901234567890\n", 35,
                 "in:1: \"123456789012345678901234\"... is not a sample count (a whole number)");
    expect_error("a;b 12345678901234567890123x\n", 29,
                 "in:1: \"12345678901234567890123x\" is not a sample count (a whole number)");
}

/* Anything but a regular file is refused by name, and never opened (a FIFO's open would block). */
TEST(folded_read_file_refuses_what_is_not_a_file)
{
    char dir[] = "/tmp/pystrobe-input-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char fifo[128], link[128], msg[512];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    REQUIRE(symlink(fifo, link) == 0);
    struct {
        const char *path, *kind;
    } cases[] = {{fifo, "a FIFO"}, {link, "a FIFO"}, {"/dev/zero", "a character device"}, {dir, "a directory"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct profile p;
        struct pserr err = {0};
        profile_init(&p);
        CHECK(folded_read_file(&p, cases[i].path, &err) < 0);
        snprintf(msg, sizeof(msg), "%s is %s, not a regular file: give a folded file, or - with the "
                 "text on standard input", cases[i].path, cases[i].kind);
        CHECK_STR(err.msg, msg);
        profile_release(&p);
    }
    unlink(link);
    unlink(fifo);
    rmdir(dir);
}
