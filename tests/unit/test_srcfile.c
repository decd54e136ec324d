/*
 * srcfile: source lines under a path prefix, context, cleaning (tabs,
 * control characters, invalid UTF-8, long lines), the cache, and files that
 * are gone, too large or not regular.
 */
#include "profiler/srcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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
