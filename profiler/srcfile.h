/*
 * Source lines of the target's Python files (dump --source), read through
 * a path prefix: /proc/PID/root for a live process (its own view of the file
 * system, containers included), or a directory holding a copy of the
 * target's files for a core.  Files are read once and kept; a file larger
 * than SRCFILE_MAX_BYTES, not a regular file, gone or unreadable shows
 * nothing.
 */
#ifndef PYSTROBE_SRCFILE_H
#define PYSTROBE_SRCFILE_H

#include <stddef.h>

#include "common/util.h"

#define SRCFILE_MAX_BYTES (16u << 20)
#define SRCFILE_MAX_LINE 200   /* characters of a line shown; longer ones end in "..." */
#define SRCFILE_MAX_CONTEXT 50 /* lines of context each side at most */

struct srcfiles;

/*
 * Files under root (absolute paths) and cwd (relative ones); both are
 * prefixes ("" for none) copied by the call.
 */
struct srcfiles *srcfiles_new(const char *root, const char *cwd);
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
