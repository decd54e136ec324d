/* The output formats, by name and by file extension, and one call to write any of them. */
#ifndef PYSTROBE_WRITERS_H
#define PYSTROBE_WRITERS_H

#include <stdio.h>

#include "output/profile.h"

enum out_format { OUT_FLAMEGRAPH, OUT_FOLDED, OUT_SPEEDSCOPE, OUT_PPROF };

struct out_opts {
    int reverse;                /* flame graph drawn as an icicle */
    const struct profile *base; /* flame graph colored by the change from base */
};

/* The format called name; 0, or -1 if there is none. */
int out_format_by_name(const char *name, enum out_format *fmt);
/* The format a file name's extension implies; 0, or -1 for an unknown extension. */
int out_format_by_path(const char *path, enum out_format *fmt);
/* The extension a file of the format gets by default (".svg", ...). */
const char *out_format_ext(enum out_format fmt);
/* "flamegraph, folded, speedscope, pprof", for error messages. */
const char *out_format_list(void);

/* Writes p to f in fmt.  Returns 0 or a negative errno. */
int out_write(FILE *f, const struct profile *p, enum out_format fmt, const struct out_opts *o);

#endif
