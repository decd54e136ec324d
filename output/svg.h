/*
 * The interactive flame graph: one self-contained SVG (its script and style
 * inline) that a browser opens from disk.  Hover shows a frame's full label,
 * samples and share; a click zooms into a frame and "Reset zoom" returns;
 * "Search" takes a regular expression, highlights the matching frames and
 * shows their share of all samples.
 */
#ifndef PYSTROBE_SVG_H
#define PYSTROBE_SVG_H

#include <stdio.h>

#include "output/profile.h"

struct svg_opts {
    int reverse;                /* icicle: root at the top, leaves below */
    const struct profile *base; /* differential: color frames by their change from base */
    int width;                  /* image width in pixels; 0 for the default (1200) */
};

/* Writes p as an SVG flame graph to f.  Returns 0 or a negative errno. */
int svg_write(FILE *f, const struct profile *p, const struct svg_opts *o);

#endif
