/*
 * srcfile: source lines under a path prefix, context, cleaning (tabs,
 * control characters, invalid UTF-8, long lines), the cache, and files that
 * are gone, too large or not regular (a FIFO never opened).
 */
#include "profiler/srcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/pystrobe-srcfile-XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
}

static void write_file(const char *name, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(text, 1, len, f) == len);
    fclose(f);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

TEST(lines_and_context)
{
    make_dir();
    static const char text[] = "one\r\n\ttab\n  two\x01\n" "bad \xff byte\nlast";
    write_file("a.py", text, sizeof(text) - 1);
    struct srcfiles *sf = srcfiles_new(dir, dir);
    struct srcline v[2 * SRCFILE_MAX_CONTEXT + 1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/a.py", 2, 0, v, &n), 0);
    REQUIRE(n == 1);
    CHECK_INT(v[0].line, 2);
    CHECK_INT(v[0].current, 1);
    CHECK_STR(v[0].text, "        tab");
    srclines_release(v, n);
    /* Relative paths are taken under cwd; context stops at the file's ends. */
    CHECK_INT(srcfiles_lines(sf, "a.py", 1, 2, v, &n), 0);
    REQUIRE(n == 3);
    CHECK_STR(v[0].text, "one");
    CHECK_STR(v[2].text, "  two?");
    CHECK_INT(v[0].current + v[1].current + v[2].current, 1);
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/a.py", 5, 1, v, &n), 0);
    REQUIRE(n == 2);
    CHECK_STR(v[0].text, "bad \xef\xbf\xbd byte");
    CHECK_STR(v[1].text, "last");
    CHECK_INT(v[1].line, 5);
    srclines_release(v, n);
    /* Past the end, line 0, a missing file: nothing. */
    CHECK_INT(srcfiles_lines(sf, "/a.py", 6, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/a.py", 0, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/missing.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "<string>", 1, 0, v, &n), -ENOENT);
    CHECK_INT((int)n, 0);
    /* Read once: a file deleted since still shows. */
    char path[128];
    snprintf(path, sizeof(path), "%s/a.py", dir);
    CHECK(unlink(path) == 0);
    CHECK_INT(srcfiles_lines(sf, "/a.py", 5, 0, v, &n), 0);
    srclines_release(v, n);
    srcfiles_free(sf);
    srcfiles_free(NULL);
    remove_dir();
}

TEST(long_lines_are_cut)
{
    make_dir();
    char text[1000];
    memset(text, 'z', sizeof(text));
    memcpy(text + SRCFILE_MAX_LINE - 1, "\xc3\xa9", 2); /* an é across the cut */
    write_file("long.py", text, sizeof(text));
    struct srcfiles *sf = srcfiles_new(dir, "");
    struct srcline v[1];
    size_t n;
    REQUIRE(srcfiles_lines(sf, "/long.py", 1, 0, v, &n) == 0);
    CHECK_INT((int)strlen(v[0].text), SRCFILE_MAX_LINE + 1 + 3);
    CHECK(strcmp(v[0].text + strlen(v[0].text) - 5, "\xc3\xa9...") == 0);
    srclines_release(v, n);
    srcfiles_free(sf);
    remove_dir();
}

TEST(large_and_special_files_show_nothing)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/big.py", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    CHECK(ftruncate(fd, (off_t)SRCFILE_MAX_BYTES + 1) == 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/sub.py", dir);
    CHECK(mkdir(path, 0700) == 0);
    struct srcfiles *sf = srcfiles_new(dir, dir);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/big.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/sub.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/dev/zero", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/a.py", 1, SRCFILE_MAX_CONTEXT + 1, v, &n), -ENOENT);
    srcfiles_free(sf);
    remove_dir();
}

/*
 * A FIFO the target names as its source is not opened: a writer waiting in
 * its open stays waiting (opening it would let the writer go, and opening
 * a device can have effects of its own).
 */
TEST(fifo_is_never_opened)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/app.py", dir);
    REQUIRE(mkfifo(path, 0600) == 0);
    pid_t w = fork();
    REQUIRE(w >= 0);
    if (w == 0) {
        int fd = open(path, O_WRONLY); /* returns once a reader opens it */
        _exit(fd >= 0 ? 0 : 1);
    }
    /* The writer is in its open (openat, 257 on x86_64) before the file is looked at. */
    char sys[64], buf[64];
    snprintf(sys, sizeof(sys), "/proc/%d/syscall", (int)w);
    int in_open = 0;
    for (int i = 0; i < 600 && !in_open; i++) {
        FILE *f = fopen(sys, "r");
        in_open = f && fgets(buf, sizeof(buf), f) && strncmp(buf, "257 ", 4) == 0;
        if (f)
            fclose(f);
        if (!in_open)
            usleep(10000);
    }
    if (!in_open) {
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        remove_dir();
        SKIP("cannot see the writer wait in open (%s)", sys);
    }
    struct srcfiles *sf = srcfiles_new(dir, dir);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/app.py", 1, 0, v, &n), -ENOENT);
    srcfiles_free(sf);
    /* Give a writer let go plenty of time to end. */
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 30 && done == 0; i++) {
        done = waitpid(w, &status, WNOHANG);
        if (done == 0)
            usleep(100000);
    }
    CHECK(done == 0);
    if (done == 0) {
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
    }
    remove_dir();
}
