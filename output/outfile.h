/*
 * Output files that never appear truncated, and that root can write where
 * an unprivileged user controls the path.
 *
 * A new or regular destination is written to an unnamed temporary file
 * (O_TMPFILE) in the destination's folder, linked in under a short random
 * name and renamed over the destination only when complete; where the
 * filesystem has no O_TMPFILE the temporary is named from the start.  New
 * files take 0666 less the umask; a regular file replaced keeps its mode,
 * and its owner and group when the caller may give them (root).
 *
 * The path is resolved without checking a name and opening it again: each
 * component is opened O_PATH|O_NOFOLLOW from the folder before it and
 * judged by fstat, the last folder kept open for the rename:
 * - "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: that
 *   descriptor of ours, written in place;
 * - a symbolic link, on the way or at the end, is followed (at most
 *   OUTFILE_MAX_LINKS of them) only when the caller's effective user or
 *   root owns it;
 * - a regular file of another user in a sticky folder that others may
 *   write is not replaced (unless it is the folder owner's);
 * - a character device or FIFO is written in place when its owner is the
 *   caller or root, opened O_NONBLOCK (a FIFO with no reader fails at
 *   once) and checked to be the object judged; block devices, sockets
 *   and folders are refused.
 */
#ifndef PYSTROBE_OUTFILE_H
#define PYSTROBE_OUTFILE_H

#include <stdio.h>

#include "common/util.h"

#define OUTFILE_MAX_LINKS 40

struct outfile {
    char *path;    /* the destination as given (messages) */
    FILE *f;       /* where to write; NULL once committed or aborted */
    int direct;    /* writing to the destination itself (stdout, a device, a FIFO) */
    int dirfd;     /* the destination's folder, when have_dir */
    int have_dir;
    char *name;    /* the destination's name in dirfd */
    char *tmp;     /* the temporary's name in dirfd, NULL while it has none */
    int keep;      /* replacing a regular file: give the new one its owner and mode */
    unsigned keep_uid, keep_gid, keep_mode;
};

/*
 * Opens path for writing as described above, so that an unwritable or
 * refused destination fails now, before any work.  Returns 0 or a negative
 * errno with err filled; o owns what it holds until commit or abort.
 */
int outfile_open(struct outfile *o, const char *path, struct pserr *err);
/* Flushes, checks every write, and puts the file in place.  0 or a negative errno with err filled. */
int outfile_commit(struct outfile *o, struct pserr *err);
/* Drops the output (no temporary is left); safe after commit, twice, or on a zeroed outfile. */
void outfile_abort(struct outfile *o);

#endif
