/* Folded stacks: "root;...;leaf COUNT" per line, as flamegraph.pl reads them. */
#ifndef PYSTROBE_FOLDED_H
#define PYSTROBE_FOLDED_H

#include <stdio.h>

#include "output/agg.h"
#include "symbolizer/names.h"

/* Root each stack in its thread ("thread NAME (TID)"). */
#define FOLDED_THREADS 1u

/*
 * Writes the aggregate to f, one line per distinct stack, sorted so that the
 * output depends only on the samples.  Returns 0 or a negative errno.
 */
int folded_write(FILE *f, const struct agg *a, const struct names *n, unsigned flags);

#endif
