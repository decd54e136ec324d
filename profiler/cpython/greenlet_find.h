/*
 * The greenlet module in a target (the address of its greenlet type and
 * its release, hence its layout), and from there all of the target's
 * greenlets: the collector's lists walked (greenlet_gc.h), each greenlet
 * found read (greenlet.h).
 */
#ifndef PYSTROBE_GREENLET_FIND_H
#define PYSTROBE_GREENLET_FIND_H

#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/greenlet_layout.h"

struct pyrt;

/*
 * Finds the greenlet module in rt's target (its memory, maps and pid): the
 * address of PyGreenlet_Type (from its .so's .dynsym) and the greenlet
 * release: from the package's metadata beside it (greenlet-X.Y.Z.*-info),
 * else from `__version__` in the dict of the target's `greenlet` module (a
 * package built by hand has no metadata).  0, or a negative errno with err
 * filled: -ENOENT greenlet not loaded, -ENOTSUP a release whose layout is
 * not known.
 */
int greenlet_find_module(struct pyrt *rt, uint64_t *gtype,
                         const struct greenlet_layout **gl, struct pserr *err);

/*
 * All greenlets of interpreter interp, with their states and stacks.
 * Tries the list walk again a few times when it changed under it.
 * 0, or a negative errno with err filled.
 */
int greenlet_collect(struct pyrt *rt, uint64_t interp, struct greenlet_set *gs,
                     struct pserr *err);

#endif
