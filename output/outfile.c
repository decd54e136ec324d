#include "output/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TRIES 100

/* The descriptor of ours that path names ("-", /dev/stdout...), or -1. */
static int stdio_fd(const char *path)
{
    const char *digits = NULL;
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout"))
        return 1;
    if (!strcmp(path, "/dev/stderr"))
        return 2;
    if (!strncmp(path, "/dev/fd/", 8))
        digits = path + 8;
    else if (!strncmp(path, "/proc/self/fd/", 14))
        digits = path + 14;
    if (!digits || !*digits || strlen(digits) > 9)
        return -1;
    for (const char *p = digits; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return atoi(digits);
}

static const char *kind_of(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file";
    }
}

static int cannot(struct pserr *err, int e, const char *path)
{
    return pserr_set(err, e, "cannot write %s: %s", path, strerror(e));
}

/* Links are followed when their owner could have written where they lead anyway. */
static int trusted_link(const struct stat *st)
{
    return st->st_uid == geteuid() || st->st_uid == 0;
}

/* Replaces the path being walked, from pos on, by the link's text and what followed it. */
static void splice_link(struct strbuf *rest, size_t end, const char *text)
{
    struct strbuf next = STRBUF_INIT;
    sb_adds(&next, text);
    if (rest->buf[end]) {
        sb_addc(&next, '/');
        sb_adds(&next, rest->buf + end);
    }
    sb_release(rest);
    *rest = next;
}

/*
 * Walks path one component at a time, each opened O_PATH|O_NOFOLLOW and
 * judged by fstat, following only the links that trusted_link allows (at
 * most OUTFILE_MAX_LINKS).  Leaves the last folder in o->dirfd, the last
 * name in o->name, and the object found there (O_PATH) in *objfd with its
 * stat, or -1 when there is none.
 */
static int resolve(struct outfile *o, const char *path, int *objfd, struct stat *st, struct pserr *err)
{
    struct strbuf rest = STRBUF_INIT;
    char link[PATH_MAX];
    char *name = NULL;
    size_t pos = 0;
    int links = 0, fd = -1, ret = 0;
    int cur = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return cannot(err, errno, path);
    sb_adds(&rest, path);
    for (;;) {
        while (rest.buf[pos] == '/')
            pos++;
        size_t end = pos;
        while (rest.buf[end] && rest.buf[end] != '/')
            end++;
        size_t after = end;
        while (rest.buf[after] == '/')
            after++;
        int last = !rest.buf[after];
        free(name);
        name = xstrndup(rest.buf + pos, end - pos);
        if (last && (end == pos || rest.buf[end] || !strcmp(name, ".") || !strcmp(name, ".."))) {
            ret = pserr_set(err, EISDIR, "cannot write %s: it is a directory", path);
            break;
        }
        fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (!(last && errno == ENOENT))
                ret = cannot(err, errno, path);
            break;
        }
        if (fstat(fd, st) < 0) {
            ret = cannot(err, errno, path);
            break;
        }
        if (S_ISLNK(st->st_mode)) {
            /* Another user's link could lead anywhere root can write. */
            if (!trusted_link(st)) {
                ret = pserr_set(err, EPERM,
                                "will not write %s: %s is a symbolic link owned by another user (uid %u); "
                                "give the path it points to, or another name",
                                path, last ? "it" : name, (unsigned)st->st_uid);
                break;
            }
            ssize_t n = ++links <= OUTFILE_MAX_LINKS ? readlinkat(fd, "", link, sizeof(link) - 1) : -1;
            int e = links <= OUTFILE_MAX_LINKS ? errno : ELOOP;
            close(fd);
            fd = -1;
            if (n <= 0 || n == (ssize_t)sizeof(link) - 1) {
                ret = cannot(err, n < 0 ? e : n == 0 ? ENOENT : ENAMETOOLONG, path);
                break;
            }
            link[n] = '\0';
            if (link[0] == '/') {
                close(cur);
                if ((cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
                    ret = cannot(err, errno, path);
                    break;
                }
            }
            splice_link(&rest, end, link);
            pos = 0;
            continue;
        }
        if (last)
            break;
        if (!S_ISDIR(st->st_mode)) {
            ret = cannot(err, ENOTDIR, path);
            break;
        }
        close(cur);
        cur = fd;
        fd = -1;
        pos = end;
    }
    sb_release(&rest);
    if (ret < 0) {
        if (fd >= 0)
            close(fd);
        if (cur >= 0)
            close(cur);
        free(name);
        return ret;
    }
    o->dirfd = cur;
    o->have_dir = 1;
    o->name = name;
    *objfd = fd;
    return 0;
}

/* A device or FIFO, written in place: opened without waiting, checked to be what was judged. */
static int open_in_place(struct outfile *o, const struct stat *st, struct pserr *err)
{
    const char *path = o->path;
    if (S_ISBLK(st->st_mode) || S_ISSOCK(st->st_mode) || (!S_ISCHR(st->st_mode) && !S_ISFIFO(st->st_mode)))
        return pserr_set(err, EPERM, "will not write %s: it is %s; give another name", path,
                         kind_of(st->st_mode));
    /* Nobody else may plant one for us: a FIFO another user reads takes the profile. */
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return pserr_set(err, EPERM, "will not write %s: it is %s owned by another user (uid %u); give another name",
                         path, kind_of(st->st_mode), (unsigned)st->st_uid);
    int fd = openat(o->dirfd, o->name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO && S_ISFIFO(st->st_mode))
        return pserr_set(err, ENXIO, "cannot write %s: no process reads the FIFO; start its reader first", path);
    if (fd < 0)
        return cannot(err, errno, path);
    struct stat now;
    int e = 0;
    if (fstat(fd, &now) < 0)
        e = errno;
    else if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT))
        e = EAGAIN;
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        e = errno;
    if (!e && !(o->f = fdopen(fd, "w")))
        e = errno;
    if (e) {
        close(fd);
        return e == EAGAIN ? pserr_set(err, e, "cannot write %s: it changed while it was opened; try again", path)
                           : cannot(err, e, path);
    }
    o->direct = 1;
    return 0;
}

/* A regular file is replaced, keeping its owner and mode, unless another user planted it in a shared folder. */
static int judge_regular(struct outfile *o, const struct stat *st, struct pserr *err)
{
    struct stat ds;
    if (st->st_uid != geteuid()) {
        if (fstat(o->dirfd, &ds) < 0)
            return cannot(err, errno, o->path);
        if ((ds.st_mode & S_ISVTX) && (ds.st_mode & (S_IWOTH | S_IWGRP)) && st->st_uid != ds.st_uid)
            return pserr_set(err, EPERM,
                             "will not replace %s: it belongs to another user (uid %u) in a folder others may "
                             "write; give another name",
                             o->path, (unsigned)st->st_uid);
    }
    o->keep = 1;
    o->keep_uid = st->st_uid;
    o->keep_gid = st->st_gid;
    o->keep_mode = st->st_mode & 0777;
    return 0;
}

/* A short random name for the temporary, whatever the length of the destination's. */
static void tmp_name(char *buf, size_t size)
{
    static uint64_t counter;
    uint64_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = hash_u64(now_ns() ^ ((uint64_t)getpid() << 32) ^ ++counter);
    snprintf(buf, size, ".pystrobe-%012llx", (unsigned long long)(r & 0xffffffffffffULL));
}

/* An O_TMPFILE can be linked in through /proc without privileges: only if /proc shows it. */
static int linkable(int fd)
{
    char proc[64];
    struct stat a, b;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return fstat(fd, &a) == 0 && stat(proc, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The temporary, unnamed when the filesystem allows, else named; 0666 less the umask. */
static int open_temp(struct outfile *o, struct pserr *err)
{
    int fd = openat(o->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0 && linkable(fd))
        return fd;
    if (fd >= 0)
        close(fd);
    else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return cannot(err, errno, o->path);
    for (int i = 0; i < TMP_TRIES; i++) {
        char name[32];
        tmp_name(name, sizeof(name));
        fd = openat(o->dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) {
            o->tmp = xstrdup(name);
            return fd;
        }
        if (errno != EEXIST)
            return cannot(err, errno, o->path);
    }
    return cannot(err, EEXIST, o->path);
}

static int open_std(struct outfile *o, int which, struct pserr *err)
{
    int fd = fcntl(which, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return pserr_set(err, errno, "cannot write %s: descriptor %d is not open", o->path, which);
    if (!(o->f = fdopen(fd, "w"))) {
        int e = errno;
        close(fd);
        return cannot(err, e, o->path);
    }
    o->direct = 1;
    return 0;
}

int outfile_open(struct outfile *o, const char *path, struct pserr *err)
{
    struct stat st;
    int objfd = -1, ret, fd;
    memset(o, 0, sizeof(*o));
    if (!*path)
        return pserr_set(err, EINVAL, "the output path is empty");
    o->path = xstrdup(path);
    if ((fd = stdio_fd(path)) >= 0) {
        ret = open_std(o, fd, err);
        goto out;
    }
    if ((ret = resolve(o, path, &objfd, &st, err)) < 0)
        goto out;
    if (objfd >= 0 && S_ISDIR(st.st_mode)) {
        ret = pserr_set(err, EISDIR, "cannot write %s: it is a directory", path);
        goto out;
    }
    if (objfd >= 0 && !S_ISREG(st.st_mode)) {
        ret = open_in_place(o, &st, err);
        goto out;
    }
    if (objfd >= 0 && (ret = judge_regular(o, &st, err)) < 0)
        goto out;
    if ((fd = ret = open_temp(o, err)) < 0)
        goto out;
    if (!(o->f = fdopen(fd, "w"))) {
        ret = cannot(err, errno, path);
        close(fd);
        goto out;
    }
    ret = 0;
out:
    if (objfd >= 0)
        close(objfd);
    if (ret < 0)
        outfile_abort(o);
    return ret < 0 ? ret : 0;
}

/* Gives the finished temporary the replaced file's owner and mode, and a name. */
static int name_temp(struct outfile *o)
{
    int fd = fileno(o->f);
    if (o->keep) {
        if ((o->keep_uid != geteuid() || o->keep_gid != getegid()) &&
            fchown(fd, o->keep_uid, o->keep_gid) < 0 && errno != EPERM)
            return errno;
        if (fchmod(fd, o->keep_mode) < 0)
            return errno;
    }
    if (o->tmp)
        return 0;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    for (int i = 0; i < TMP_TRIES; i++) {
        char name[32];
        tmp_name(name, sizeof(name));
        if (linkat(AT_FDCWD, proc, o->dirfd, name, AT_SYMLINK_FOLLOW) == 0) {
            o->tmp = xstrdup(name);
            return 0;
        }
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

int outfile_commit(struct outfile *o, struct pserr *err)
{
    int e = 0;
    if (!o->f)
        return pserr_set(err, EINVAL, "no output file is open");
    errno = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        e = errno ? errno : EIO;
    if (!e && !o->direct)
        e = name_temp(o);
    if (fclose(o->f) != 0 && !e)
        e = errno;
    o->f = NULL;
    if (!e && !o->direct && renameat(o->dirfd, o->tmp, o->dirfd, o->name) != 0)
        e = errno;
    if (e) {
        int ret = cannot(err, e, o->path);
        outfile_abort(o);
        return ret;
    }
    free(o->tmp);
    o->tmp = NULL;
    outfile_abort(o);
    return 0;
}

void outfile_abort(struct outfile *o)
{
    if (o->f)
        fclose(o->f);
    if (o->tmp && o->have_dir)
        unlinkat(o->dirfd, o->tmp, 0);
    if (o->have_dir)
        close(o->dirfd);
    free(o->tmp);
    free(o->path);
    free(o->name);
    memset(o, 0, sizeof(*o));
}
