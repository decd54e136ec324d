/*
 * pprof's profile.proto, gzip-compressed, as `go tool pprof`, Pyroscope,
 * Parca and Grafana read it; encoded by a small protobuf writer of our own.
 */
#ifndef PYSTROBE_PPROF_H
#define PYSTROBE_PPROF_H

#include <stdio.h>

#include "output/profile.h"

/* Writes p to f.  Returns 0 or a negative errno. */
int pprof_write(FILE *f, const struct profile *p);

#endif
