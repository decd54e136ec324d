/*
 * srcfile: source lines under a path prefix, context, cleaning (tabs,
 * control characters, invalid UTF-8, long lines), the cache, and files that
 * are gone, too large or not regular.
 */
#include "profiler/target/srcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
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

/* IN_OPEN events on path while fn(sf, file) runs: 0 when nothing opened it. */
static int opens_during(struct srcfiles *sf, const char *path, const char *file)
{
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(in >= 0);
    REQUIRE(inotify_add_watch(in, path, IN_OPEN) >= 0);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, file, 1, 0, v, &n), -ENOENT);
    char buf[4096];
    ssize_t r = read(in, buf, sizeof(buf));
    close(in);
    return r > 0;
}

/*
 * A FIFO or a device the target names is never opened for reading (a
 * device's open alone can act); a symbolic link is not followed, nor ".."
 * out of the prefix.
 */
TEST(special_files_never_opened_links_never_followed)
{
    make_dir();
    char path[128], link[128];
    snprintf(path, sizeof(path), "%s/fifo.py", dir);
    REQUIRE(mkfifo(path, 0644) == 0);
    struct srcfiles *sf = srcfiles_new(dir, dir);
    CHECK_INT(opens_during(sf, path, "/fifo.py"), 0);
    srcfiles_free(sf);
    sf = srcfiles_new("", "");
    CHECK_INT(opens_during(sf, "/dev/null", "/dev/null"), 0);
    srcfiles_free(sf);
    static const char text[] = "x = 1\n";
    write_file("real.py", text, sizeof(text) - 1);
    snprintf(path, sizeof(path), "%s/real.py", dir);
    snprintf(link, sizeof(link), "%s/link.py", dir);
    REQUIRE(symlink(path, link) == 0);
    snprintf(link, sizeof(link), "%s/d", dir);
    REQUIRE(symlink(dir, link) == 0);
    sf = srcfiles_new(dir, dir);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/real.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/./real.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/link.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/d/real.py", 1, 0, v, &n), -ENOENT);
    /* dir's parent is /tmp: ".." would find dir again from there */
    snprintf(path, sizeof(path), "/../%s/real.py", strrchr(dir, '/') + 1);
    CHECK_INT(srcfiles_lines(sf, path, 1, 0, v, &n), -ENOENT);
    srcfiles_free(sf);
    remove_dir();
}

/*
 * With credentials set, a file is read only where they may read it: by
 * owner, group or others' bits, and through directories they may search.
 */
TEST(files_read_with_the_targets_rights)
{
    make_dir();
    static const char text[] = "secret = 1\n";
    write_file("mine.py", text, sizeof(text) - 1);
    write_file("theirs.py", text, sizeof(text) - 1);
    write_file("group.py", text, sizeof(text) - 1);
    char path[128];
    snprintf(path, sizeof(path), "%s/closed", dir);
    REQUIRE(mkdir(path, 0700) == 0);
    write_file("closed/open.py", text, sizeof(text) - 1);
    snprintf(path, sizeof(path), "%s/closed/open.py", dir);
    CHECK(chmod(path, 0644) == 0);
    CHECK(chmod(dir, 0755) == 0);
    snprintf(path, sizeof(path), "%s/mine.py", dir);
    CHECK(chmod(path, 0600) == 0);
    snprintf(path, sizeof(path), "%s/theirs.py", dir);
    CHECK(chmod(path, 0604) == 0);
    snprintf(path, sizeof(path), "%s/group.py", dir);
    CHECK(chmod(path, 0640) == 0);
    /* A target that is neither this file's owner nor in its group. */
    struct srcfile_creds other = {.uid = getuid() + 4242, .gid = getgid() + 4242};
    struct srcfile_creds member = other;
    member.groups[member.ngroups++] = getgid();
    struct srcfile_creds owner = {.uid = getuid(), .gid = getgid()};
    struct srcfiles *sf = srcfiles_new(dir, dir);
    srcfiles_set_creds(sf, &other);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/mine.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/group.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/closed/open.py", 1, 0, v, &n), -ENOENT);
    CHECK_INT(srcfiles_lines(sf, "/theirs.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    srcfiles_free(sf);
    sf = srcfiles_new(dir, dir);
    srcfiles_set_creds(sf, &member);
    CHECK_INT(srcfiles_lines(sf, "/group.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/mine.py", 1, 0, v, &n), -ENOENT);
    srcfiles_free(sf);
    sf = srcfiles_new(dir, dir);
    srcfiles_set_creds(sf, &owner);
    CHECK_INT(srcfiles_lines(sf, "/mine.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/closed/open.py", 1, 0, v, &n), 0);
    srclines_release(v, n);
    srcfiles_free(sf);
    /* Our own credentials, as /proc says them. */
    struct srcfile_creds self;
    CHECK_INT(srcfile_creds_of(getpid(), &self), 0);
    CHECK_INT((int)self.uid, (int)geteuid());
    CHECK_INT((int)self.gid, (int)getegid());
    remove_dir();
}

/* open_regular_in: links and ".." resolve inside the root given, never around it. */
TEST(open_regular_in_stays_in_root)
{
    make_dir();
    char root[128], path[192], outside[128];
    snprintf(root, sizeof(root), "%s/root", dir);
    REQUIRE(mkdir(root, 0755) == 0);
    snprintf(path, sizeof(path), "%s/etc", root);
    REQUIRE(mkdir(path, 0755) == 0);
    write_file("root/etc/inside", "inside\n", 7);
    write_file("outside", "outside\n", 8);
    snprintf(outside, sizeof(outside), "%s/outside", dir);
    /* An absolute link, a link climbing out, a path climbing out, a FIFO, a directory. */
    snprintf(path, sizeof(path), "%s/abs", root);
    REQUIRE(symlink("/etc/inside", path) == 0);
    snprintf(path, sizeof(path), "%s/up", root);
    REQUIRE(symlink("../../outside", path) == 0);
    snprintf(path, sizeof(path), "%s/outside", root);
    REQUIRE(symlink(outside, path) == 0);
    snprintf(path, sizeof(path), "%s/fifo", root);
    REQUIRE(mkfifo(path, 0644) == 0);
    struct stat st;
    char buf[16];
    int fd = open_regular_in(root, "/abs", &st);
    if (fd == -ENOSYS) {
        remove_dir();
        return; /* no openat2 on this kernel */
    }
    REQUIRE(fd >= 0);
    CHECK_INT((int)read(fd, buf, sizeof(buf)), 7);
    close(fd);
    /* "/up" is root/up -> ../../outside: climbs no higher than the root, to root/outside,
     * a link to the real outside file by its absolute name, which resolves in root. */
    CHECK_INT(open_regular_in(root, "/up", &st), -ENOENT);
    CHECK_INT(open_regular_in(root, "/../../outside", &st), -ENOENT);
    fd = open_regular_in(root, "etc/../etc/inside", &st);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_INT(open_regular_in(root, "/fifo", &st), -EINVAL);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_INT(open_regular_in(root, "/etc", &st), -EINVAL);
    CHECK_INT(open_regular_in(root, "/proc/self/exe", &st), -ENOENT);
    remove_dir();
}

/* A fallback base: only for files not under the root, never for ones refused there. */
TEST(fallback_only_for_missing_files)
{
    make_dir();
    char root[128], path[192];
    snprintf(root, sizeof(root), "%s/root", dir);
    REQUIRE(mkdir(root, 0755) == 0);
    write_file("root/here.py", "in root\n", 8);
    write_file("gone.py", "outside\n", 8);
    write_file("both.py", "outside\n", 8);
    write_file("root/both.py", "in root\n", 8);
    snprintf(path, sizeof(path), "%s/link.py", root);
    REQUIRE(symlink("both.py", path) == 0);
    write_file("link.py", "outside\n", 8);
    struct srcfiles *sf = srcfiles_new(root, root);
    srcfiles_set_fallback(sf, dir);
    struct srcline v[1];
    size_t n;
    CHECK_INT(srcfiles_lines(sf, "/here.py", 1, 0, v, &n), 0);
    CHECK_STR(v[0].text, "in root");
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/gone.py", 1, 0, v, &n), 0);
    CHECK_STR(v[0].text, "outside");
    srclines_release(v, n);
    CHECK_INT(srcfiles_lines(sf, "/both.py", 1, 0, v, &n), 0);
    CHECK_STR(v[0].text, "in root");
    srclines_release(v, n);
    /* A link under the root is refused there, and not looked for elsewhere. */
    CHECK_INT(srcfiles_lines(sf, "/link.py", 1, 0, v, &n), -ENOENT);
    srcfiles_free(sf);
    remove_dir();
}
