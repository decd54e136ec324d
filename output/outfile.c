#include "output/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_open(struct outfile *o, const char *path, struct pserr *err)
{
    struct stat st;
    memset(o, 0, sizeof(*o));
    if (!*path)
        return pserr_set(err, EINVAL, "the output path is empty");
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode))
        return pserr_set(err, EISDIR, "cannot write %s: it is a directory", path);
    if (exists && !S_ISREG(st.st_mode)) {
        /* A device, pipe or socket (/dev/stdout, a FIFO): written in place, never replaced. */
        int dfd = open(path, O_WRONLY | O_CLOEXEC);
        if (dfd < 0 || !(o->f = fdopen(dfd, "w"))) {
            int e = errno;
            if (dfd >= 0)
                close(dfd);
            return pserr_set(err, e, "cannot write %s: %s", path, strerror(e));
        }
        o->path = xstrdup(path);
        o->direct = 1;
        return 0;
    }
    struct strbuf t = STRBUF_INIT;
    sb_addf(&t, "%s.tmpXXXXXX", path);
    int fd = mkstemp(t.buf);
    if (fd < 0) {
        int e = errno;
        sb_release(&t);
        return pserr_set(err, e, "cannot write %s: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    o->f = fdopen(fd, "w");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(t.buf);
        sb_release(&t);
        return pserr_set(err, e, "cannot write %s: %s", path, strerror(e));
    }
    o->path = xstrdup(path);
    o->tmp = sb_detach(&t);
    return 0;
}

int outfile_commit(struct outfile *o, struct pserr *err)
{
    int e = 0;
    if (!o->f || (!o->tmp && !o->direct))
        return pserr_set(err, EINVAL, "no output file is open");
    if (fflush(o->f) != 0 || ferror(o->f))
        e = errno ? errno : EIO;
    if (fclose(o->f) != 0 && !e)
        e = errno;
    o->f = NULL;
    if (!e && !o->direct && rename(o->tmp, o->path) != 0)
        e = errno;
    if (e) {
        int ret = pserr_set(err, e, "cannot write %s: %s", o->path, strerror(e));
        outfile_abort(o);
        return ret;
    }
    free(o->tmp);
    o->tmp = NULL;
    free(o->path);
    o->path = NULL;
    return 0;
}

void outfile_abort(struct outfile *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    o->direct = 0;
}
