/*
 * Output files where someone else may control the path: links, FIFOs,
 * devices and sockets planted at the destination, other users' files, the
 * umask, stdout by name, the longest names, and no named temporary while
 * writing.  The tests that need another user's files run as root (they
 * chown to nobody's uid) and SKIP otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "test.h"

#include "common/util.h"
#include "output/outfile.h"

#define OTHER_UID 65534   /* nobody */

static char dir[256];

static void make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/test_outfile.XXXXXX", t && *t ? t : "/tmp");
    REQUIRE(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[PATH_MAX];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                if (unlink(p) < 0)
                    rmdir(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static void in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static int entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    REQUIRE(fclose(f) == 0);
}

static int holds(const char *path, const char *text)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* Opens, writes text and commits; returns outfile_commit's or outfile_open's result. */
static int write_out(const char *path, const char *text, struct pserr *err)
{
    struct outfile o;
    int ret = outfile_open(&o, path, err);
    if (ret < 0)
        return ret;
    fputs(text, o.f);
    ret = outfile_commit(&o, err);
    outfile_abort(&o);
    return ret;
}

static int has_tmpfile(void)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

TEST(outfile_new_file_honors_umask)
{
    static const unsigned masks[] = {077, 022, 002, 027};
    make_dir();
    for (size_t i = 0; i < ARRAY_SIZE(masks); i++) {
        char path[PATH_MAX], name[32];
        struct pserr err;
        struct stat st;
        snprintf(name, sizeof(name), "u%03o.svg", masks[i]);
        in_dir(path, sizeof(path), name);
        mode_t old = umask(masks[i]);
        int ret = write_out(path, "x\n", &err);
        umask(old);
        CHECK_INT(ret, 0);
        REQUIRE(stat(path, &st) == 0);
        CHECK_INT(st.st_mode & 0777, 0666 & ~masks[i]);
    }
    remove_dir();
}

TEST(outfile_no_named_temporary_until_commit)
{
    make_dir();
    if (!has_tmpfile()) {
        remove_dir();
        SKIP("this filesystem has no O_TMPFILE");
    }
    char path[PATH_MAX];
    struct outfile o;
    struct pserr err;
    in_dir(path, sizeof(path), "p.folded");
    REQUIRE(outfile_open(&o, path, &err) == 0);
    fputs("a;b 1\n", o.f);
    fflush(o.f);
    CHECK(o.tmp == NULL);
    CHECK_INT(entries(), 0);
    CHECK_INT(outfile_commit(&o, &err), 0);
    CHECK_INT(entries(), 1);
    CHECK(holds(path, "a;b 1\n"));
    remove_dir();
}

TEST(outfile_longest_names)
{
    make_dir();
    long max = pathconf(dir, _PC_NAME_MAX);
    REQUIRE(max > 8 && max < 1024);
    for (long n = max - 1; n <= max; n++) {
        char name[1024], path[PATH_MAX + 1024];
        struct pserr err;
        memset(name, 'p', (size_t)n);
        memcpy(name + n - 4, ".svg", 5);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        CHECK_INT(write_out(path, "x\n", &err), 0);
        CHECK(holds(path, "x\n"));
    }
    CHECK_INT(entries(), 2);
    remove_dir();
}

/* "-" and /dev/stdout are our stdout: written there, no file made by that name. */
TEST(outfile_dash_is_stdout)
{
    static const char *const names[] = {"-", "/dev/stdout", "/dev/fd/1"};
    make_dir();
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        int p[2], saved = dup(1);
        char buf[64];
        struct pserr err;
        REQUIRE(saved >= 0 && pipe(p) == 0);
        REQUIRE(dup2(p[1], 1) == 1);
        close(p[1]);
        REQUIRE(chdir(dir) == 0);
        int ret = write_out(names[i], "to stdout\n", &err);
        REQUIRE(dup2(saved, 1) == 1);
        close(saved);
        CHECK_INT(ret, 0);
        ssize_t n = read(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        buf[n > 0 ? n : 0] = '\0';
        CHECK_STR(buf, "to stdout\n");
        CHECK_INT(entries(), 0);
    }
    remove_dir();
}

TEST(outfile_fifo_without_reader_fails_at_once)
{
    char path[PATH_MAX];
    struct outfile o;
    struct pserr err;
    make_dir();
    in_dir(path, sizeof(path), "f.svg");
    REQUIRE(mkfifo(path, 0600) == 0);
    /* A hang here is the runner's timeout. */
    CHECK_INT(outfile_open(&o, path, &err), -ENXIO);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "reads"));
    /* With a reader it is written in place. */
    int r = open(path, O_RDONLY | O_NONBLOCK);
    REQUIRE(r >= 0);
    REQUIRE(outfile_open(&o, path, &err) == 0);
    CHECK(o.direct);
    fputs("through\n", o.f);
    CHECK_INT(outfile_commit(&o, &err), 0);
    char buf[32] = {0};
    CHECK_INT(read(r, buf, sizeof(buf) - 1), 8);
    CHECK_STR(buf, "through\n");
    close(r);
    struct stat st;
    REQUIRE(lstat(path, &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    remove_dir();
}

TEST(outfile_socket_refused)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct outfile o;
    struct pserr err;
    make_dir();
    if (strlen(dir) + 7 > sizeof(sa.sun_path)) {
        remove_dir();
        SKIP("the temporary folder's name is too long for a socket");
    }
    memcpy(sa.sun_path, dir, strlen(dir));
    memcpy(sa.sun_path + strlen(dir), "/s.svg", 7);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK_INT(outfile_open(&o, sa.sun_path, &err), -EPERM);
    CHECK(strstr(err.msg, "socket") != NULL);
    close(s);
    remove_dir();
}

TEST(outfile_block_device_refused)
{
    struct stat st;
    struct outfile o;
    struct pserr err;
    if (stat("/dev/loop0", &st) != 0 || !S_ISBLK(st.st_mode))
        SKIP("no /dev/loop0 block device");
    CHECK_INT(outfile_open(&o, "/dev/loop0", &err), -EPERM);
    CHECK(strstr(err.msg, "block device") != NULL);
}

/* Our own links are followed to the end: the file they point to is replaced, the links stay. */
TEST(outfile_own_links_followed)
{
    char file[PATH_MAX], l1[PATH_MAX], l2[PATH_MAX];
    struct pserr err;
    struct stat st;
    make_dir();
    in_dir(file, sizeof(file), "real.folded");
    in_dir(l1, sizeof(l1), "l1.folded");
    in_dir(l2, sizeof(l2), "l2.folded");
    put(file, "old\n");
    REQUIRE(symlink("real.folded", l1) == 0 && symlink(l1, l2) == 0);
    CHECK_INT(write_out(l2, "new\n", &err), 0);
    CHECK(holds(file, "new\n"));
    REQUIRE(lstat(l1, &st) == 0 && S_ISLNK(st.st_mode));
    REQUIRE(lstat(l2, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK_INT(entries(), 3);
    /* A dangling link of ours makes the file it names. */
    unlink(file);
    CHECK_INT(write_out(l2, "made\n", &err), 0);
    CHECK(holds(file, "made\n"));
    remove_dir();
}

TEST(outfile_link_loop_fails)
{
    char a[PATH_MAX], b[PATH_MAX];
    struct outfile o;
    struct pserr err;
    make_dir();
    in_dir(a, sizeof(a), "a");
    in_dir(b, sizeof(b), "b");
    REQUIRE(symlink("b", a) == 0 && symlink("a", b) == 0);
    CHECK_INT(outfile_open(&o, a, &err), -ELOOP);
    CHECK(strstr(err.msg, a) != NULL);
    CHECK_INT(entries(), 2);
    remove_dir();
}

/* Another user's link is not followed, wherever it points. */
TEST(outfile_others_link_refused)
{
    static const char *const targets[] = {"/dev/null", "mine", "nowhere"};
    char mine[PATH_MAX], link[PATH_MAX];
    struct outfile o;
    struct pserr err;
    if (geteuid() != 0)
        SKIP("needs root to give a link to another user");
    make_dir();
    in_dir(mine, sizeof(mine), "mine");
    in_dir(link, sizeof(link), "link.svg");
    put(mine, "root's\n");
    for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
        REQUIRE(symlink(targets[i], link) == 0);
        REQUIRE(lchown(link, OTHER_UID, OTHER_UID) == 0);
        CHECK_INT(outfile_open(&o, link, &err), -EPERM);
        CHECK(strstr(err.msg, "symbolic link") && strstr(err.msg, link));
        CHECK(holds(mine, "root's\n"));
        REQUIRE(unlink(link) == 0);
    }
    CHECK_INT(entries(), 1);
    remove_dir();
}

/* Another user's FIFO: refused before it is opened (a reader of theirs would get the profile). */
TEST(outfile_others_fifo_refused)
{
    char path[PATH_MAX];
    struct outfile o;
    struct pserr err;
    if (geteuid() != 0)
        SKIP("needs root to give a FIFO to another user");
    make_dir();
    in_dir(path, sizeof(path), "f.svg");
    REQUIRE(mkfifo(path, 0666) == 0 && chown(path, OTHER_UID, OTHER_UID) == 0);
    int r = open(path, O_RDONLY | O_NONBLOCK);
    REQUIRE(r >= 0);
    CHECK_INT(outfile_open(&o, path, &err), -EPERM);
    CHECK(strstr(err.msg, "FIFO") && strstr(err.msg, "another user"));
    close(r);
    remove_dir();
}

/* Replacing another user's file keeps its owner, group and mode; in a shared sticky folder it is refused. */
TEST(outfile_others_file)
{
    char path[PATH_MAX];
    struct pserr err;
    struct stat before, after;
    if (geteuid() != 0)
        SKIP("needs root to give a file to another user");
    make_dir();
    in_dir(path, sizeof(path), "theirs.folded");
    put(path, "theirs\n");
    REQUIRE(chown(path, OTHER_UID, OTHER_UID) == 0 && chmod(path, 0640) == 0);
    REQUIRE(stat(path, &before) == 0);
    CHECK_INT(write_out(path, "profile\n", &err), 0);
    REQUIRE(stat(path, &after) == 0);
    CHECK(holds(path, "profile\n"));
    CHECK(after.st_ino != before.st_ino);
    CHECK_INT(after.st_uid, OTHER_UID);
    CHECK_INT(after.st_gid, OTHER_UID);
    CHECK_INT(after.st_mode & 0777, 0640);
    /* The folder shared and sticky (as /tmp): not replaced. */
    put(path, "theirs\n");
    REQUIRE(chmod(dir, 01777) == 0);
    CHECK_INT(write_out(path, "profile\n", &err), -EPERM);
    CHECK(strstr(err.msg, "another user") && strstr(err.msg, path));
    CHECK(holds(path, "theirs\n"));
    CHECK_INT(entries(), 1);
    /* The folder's owner's file is, as fs.protected_regular allows. */
    REQUIRE(chown(dir, OTHER_UID, OTHER_UID) == 0);
    CHECK_INT(write_out(path, "profile\n", &err), 0);
    CHECK(holds(path, "profile\n"));
    REQUIRE(chown(dir, 0, 0) == 0);
    remove_dir();
}

/* A device named: written in place; the same device through another user's link: refused. */
TEST(outfile_device_named_or_linked)
{
    char link[PATH_MAX];
    struct pserr err;
    struct stat st;
    if (stat("/dev/null", &st) != 0 || !S_ISCHR(st.st_mode))
        SKIP("no /dev/null character device");
    CHECK_INT(write_out("/dev/null", "x\n", &err), 0);
    if (geteuid() != 0)
        SKIP("needs root to give a link to another user");
    make_dir();
    in_dir(link, sizeof(link), "y.svg");
    REQUIRE(symlink("/dev/null", link) == 0 && lchown(link, OTHER_UID, OTHER_UID) == 0);
    CHECK_INT(write_out(link, "x\n", &err), -EPERM);
    /* Our own link to it is followed. */
    REQUIRE(lchown(link, 0, 0) == 0);
    CHECK_INT(write_out(link, "x\n", &err), 0);
    REQUIRE(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    remove_dir();
}

/* A folder on the way that is another user's link is not followed either; ours and root's are. */
TEST(outfile_folder_links)
{
    char real[PATH_MAX], via[PATH_MAX], out[PATH_MAX + 8], made[PATH_MAX + 8];
    struct pserr err;
    make_dir();
    in_dir(real, sizeof(real), "real");
    in_dir(via, sizeof(via), "via");
    REQUIRE(mkdir(real, 0755) == 0 && symlink("real", via) == 0);
    snprintf(out, sizeof(out), "%s/p.svg", via);
    snprintf(made, sizeof(made), "%s/p.svg", real);
    CHECK_INT(write_out(out, "x\n", &err), 0);
    CHECK(holds(made, "x\n"));
    REQUIRE(unlink(made) == 0);
    if (geteuid() != 0) {
        rmdir(real);
        remove_dir();
        SKIP("needs root to give a link to another user");
    }
    REQUIRE(lchown(via, OTHER_UID, OTHER_UID) == 0);
    CHECK_INT(write_out(out, "x\n", &err), -EPERM);
    CHECK(strstr(err.msg, "via") && strstr(err.msg, "another user"));
    CHECK_INT(access(made, F_OK), -1);
    rmdir(real);
    remove_dir();
}

TEST(outfile_path_shapes)
{
    char path[PATH_MAX];
    struct outfile o;
    struct pserr err;
    make_dir();
    snprintf(path, sizeof(path), "%s/x.svg/", dir);
    CHECK_INT(outfile_open(&o, path, &err), -EISDIR);
    snprintf(path, sizeof(path), "%s/.", dir);
    CHECK_INT(outfile_open(&o, path, &err), -EISDIR);
    CHECK_INT(outfile_open(&o, "/", &err), -EISDIR);
    /* Doubled slashes and dots on the way are only that. */
    snprintf(path, sizeof(path), "%s//./x.svg", dir);
    CHECK_INT(write_out(path, "x\n", &err), 0);
    snprintf(path, sizeof(path), "%s/x.svg", dir);
    CHECK(holds(path, "x\n"));
    CHECK_INT(entries(), 1);
    remove_dir();
}
