/*
 * speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json):
 * frames shared by all profiles, one "sampled" profile per thread.
 */
#ifndef PYSTROBE_SPEEDSCOPE_H
#define PYSTROBE_SPEEDSCOPE_H

#include <stdio.h>

#include "output/profile.h"

/* Writes p to f.  Returns 0 or a negative errno. */
int speedscope_write(FILE *f, const struct profile *p);

#endif
