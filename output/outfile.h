/*
 * Output files that never appear truncated: written to a temporary file in
 * the destination's folder, renamed over the destination when complete.
 * A destination that exists and is not a regular file (a device such as
 * /dev/stdout, a FIFO) is written in place instead.
 */
#ifndef PYSTROBE_OUTFILE_H
#define PYSTROBE_OUTFILE_H

#include <stdio.h>

#include "common/util.h"

struct outfile {
    char *path;  /* destination */
    char *tmp;   /* the temporary file, NULL once committed or aborted */
    FILE *f;
    int direct;  /* writing to the destination itself (not a regular file) */
};

/*
 * Creates the temporary file for path, so that an unwritable destination
 * fails now, before any work.  Returns 0 or a negative errno with err filled.
 */
int outfile_open(struct outfile *o, const char *path, struct pserr *err);
/* Flushes, closes and renames into place.  0 or a negative errno with err filled. */
int outfile_commit(struct outfile *o, struct pserr *err);
/* Removes the temporary file; safe to call after commit, or on a zeroed outfile. */
void outfile_abort(struct outfile *o);

#endif
