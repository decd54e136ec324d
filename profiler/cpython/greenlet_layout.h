/*
 * Where the C++ greenlet implementation keeps what pystrobe reads, per
 * greenlet release and Python version: offsets measured from each
 * release's own sources (docs/greenlets.md says how).
 */
#ifndef PYSTROBE_GREENLET_LAYOUT_H
#define PYSTROBE_GREENLET_LAYOUT_H

#include <stddef.h>

/*
 * Offsets in the C++ greenlet implementation (the PyGreenlet's pimpl), for
 * the greenlet releases built for Python major.minor: they depend on both
 * (PythonState saves different members per Python version).
 */
struct greenlet_layout {
    const char *releases;           /* "2.0.0 2.0.1 2.0.2": each one measured */
    int major, minor;               /* the Python version */
    int pimpl;                      /* in the PyGreenlet */
    int self;                       /* Greenlet::_self, back to the PyGreenlet */
    int stack_start, stack_stop, stack_copy, stack_saved;
    int top_frame;                  /* PythonState, saved at switch-away: a PyFrameObject */
    int current_frame;              /* 3.11+: the _PyInterpreterFrame, else -1 */
    int datastack_chunk, datastack_top; /* 3.11+, else -1 */
    int prev_frame;                 /* 3.0.0-3.0.2 on 3.12: the top frame's cut link, else -1 */
    int size;                       /* bytes to read to cover them all */
};

/*
 * The table for greenlet `version` ("2.0.2") built for Python major.minor,
 * or NULL when not known.
 */
const struct greenlet_layout *greenlet_layout_for(const char *version, int major, int minor);

/*
 * "2.0.0-3.1.0, 3.1.1-3.3.2": the first and last release of each row for
 * Python major.minor, or "none", for messages.
 */
void greenlet_layout_known(int major, int minor, char *buf, size_t size);

#endif
