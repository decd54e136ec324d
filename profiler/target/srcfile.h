/*
 * Source lines of the target's Python files (dump --source), read through
 * a path prefix: /proc/PID/root for a live process (its own view of the file
 * system, containers included), or a directory holding a copy of the
 * target's files for a core.  Files are read once and kept; a file larger
 * than SRCFILE_MAX_BYTES, not a regular file, gone or unreadable shows
 * nothing.
 *
 * A path is the target's word, and pystrobe may run as root: it is opened
 * one component at a time from the prefix, never through a symbolic link
 * or "..", and nothing but a regular file is ever opened for reading (the
 * others are looked at with O_PATH, which opens no device or FIFO).  With
 * credentials set, every directory on the way must be searchable and the
 * file readable by them, as its owner, group and mode say (ACLs and
 * capabilities are not looked at: they can only refuse more).
 */
#ifndef PYSTROBE_SRCFILE_H
#define PYSTROBE_SRCFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

#define SRCFILE_MAX_BYTES (16u << 20)
#define SRCFILE_MAX_LINE 200   /* characters of a line shown; longer ones end in "..." */
#define SRCFILE_MAX_CONTEXT 50 /* lines of context each side at most */

struct srcfiles;

/* Whose rights files are read with: a process's file-system ids and groups. */
#define SRCFILE_MAX_GROUPS 64
struct srcfile_creds {
    uid_t uid;
    gid_t gid;
    gid_t groups[SRCFILE_MAX_GROUPS];
    size_t ngroups;
};

/* The credentials of process pid (/proc/PID/status: FS uid and gid, Groups).  0 or -errno. */
int srcfile_creds_of(pid_t pid, struct srcfile_creds *c);

/*
 * Files under root (absolute paths) and cwd (relative ones); both are
 * prefixes ("" for none) copied by the call.
 */
struct srcfiles *srcfiles_new(const char *root, const char *cwd);
/*
 * An absolute path that is not under root (no such file there: not one
 * refused) is read under also ("": as named) by the same rules: a core's
 * --root, where a gcore taken from outside names the files as seen outside.
 */
void srcfiles_set_fallback(struct srcfiles *sf, const char *also);
/* From now on files are read only where c may read them (copied; NULL: no check). */
void srcfiles_set_creds(struct srcfiles *sf, const struct srcfile_creds *c);
/* srcfiles_free(NULL) does nothing. */
void srcfiles_free(struct srcfiles *sf);

struct srcline {
    int line;
    int current;    /* the line asked for */
    char *text;     /* printable UTF-8, tabs expanded, cut; owned */
};

/*
 * Fills out[0..*n) with lines line-context .. line+context of file (those
 * that exist; out has room for 2 * context + 1).  Returns 0, or -ENOENT
 * when the file cannot be read or has no such line.
 */
int srcfiles_lines(struct srcfiles *sf, const char *file, int line, int context,
                   struct srcline *out, size_t *n);
void srclines_release(struct srcline *v, size_t n);

#endif
