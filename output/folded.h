/* Folded stacks: "root;...;leaf COUNT" per line, as flamegraph.pl reads them. */
#ifndef PYSTROBE_FOLDED_H
#define PYSTROBE_FOLDED_H

#include <stdio.h>

#include "output/profile.h"

/*
 * Writes the profile to f, one line per distinct stack (stacks of different
 * threads merge unless rooted in their threads), sorted so that the output
 * depends only on the samples.  Returns 0 or a negative errno.
 */
int folded_write(FILE *f, const struct profile *p);

#endif
