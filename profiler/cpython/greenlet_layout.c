/* The greenlet implementation's offsets: see greenlet_layout.h. */
#include "profiler/cpython/greenlet_layout.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

/*
 * Measured by compiling each greenlet release's own sources with their
 * members made public, against each Python version's headers, and printing
 * offsetof() (docs/greenlets.md, "How the table was measured").  One row holds the
 * consecutive releases whose offsets were all the same on that Python.
 */
#define GL(releases_, major_, minor_, pimpl_, self_, start_, stop_, copy_, saved_, top_,   \
           current_, chunk_, chunk_top_, prev_, size_)                                    \
    {.releases = releases_, .major = major_, .minor = minor_, .pimpl = pimpl_,            \
     .self = self_, .stack_start = start_, .stack_stop = stop_, .stack_copy = copy_,      \
     .stack_saved = saved_, .top_frame = top_, .current_frame = current_,                 \
     .datastack_chunk = chunk_, .datastack_top = chunk_top_, .prev_frame = prev_,         \
     .size = size_}
static const struct greenlet_layout layouts[] = {
    /* releases; Python, pimpl, self, stack start/stop/copy/saved, top_frame,
     * current_frame, datastack chunk/top, prev_frame, size */
    GL("2.0.0 2.0.1 2.0.2",
       2, 7, 32, 104, 48, 56, 64, 72, 88, -1, -1, -1, -1, 112),
    GL("2.0.0 2.0.1 2.0.2",
       3, 6, 32, 104, 48, 56, 64, 72, 88, -1, -1, -1, -1, 112),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 7, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 7, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 8, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 8, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 9, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 9, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 10, 32, 144, 64, 72, 80, 88, 112, -1, -1, -1, -1, 152),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 10, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 11, 32, 160, 48, 56, 64, 72, 96, 128, 136, 144, -1, 168),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 11, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.0.0 3.0.1 3.0.2",
       3, 12, 32, 168, 48, 56, 64, 72, 96, 128, 136, 144, 160, 176),
    GL("3.0.3 3.1.0",
       3, 12, 32, 160, 48, 56, 64, 72, 96, 128, 136, 144, -1, 168),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 12, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.1.0",
       3, 13, 32, 152, 48, 56, 64, 72, 96, 120, 128, 136, -1, 160),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2",
       3, 13, 32, 8, 56, 64, 72, 80, 104, 128, 136, 144, -1, 152),
    GL("3.5.3",
       3, 13, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    /* 3.2.0 and 3.2.1 do not compile for 3.14 (Py_C_RECURSION_LIMIT). */
    GL("3.2.2 3.2.3",
       3, 14, 32, 8, 56, 64, 72, 80, 104, 128, 136, 144, -1, 152),
    GL("3.2.4 3.2.5",
       3, 14, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2",
       3, 14, 32, 8, 56, 64, 72, 80, 104, 144, 152, 160, -1, 168),
    GL("3.5.3",
       3, 14, 32, 8, 56, 64, 72, 80, 104, 152, 160, 168, -1, 176),
    /* 3.2.2-3.3.0 compile for 3.15 only with NDEBUG, as setuptools builds them (an
     * assert names FRAME_OWNED_BY_CSTACK, gone from 3.15); 3.2.0 and 3.2.1 not at all. */
    GL("3.2.2 3.2.3",
       3, 15, 32, 8, 56, 64, 72, 80, 104, 128, 136, 144, -1, 152),
    GL("3.2.4 3.2.5",
       3, 15, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2",
       3, 15, 32, 8, 56, 64, 72, 80, 104, 144, 152, 160, -1, 168),
    GL("3.5.3",
       3, 15, 32, 8, 56, 64, 72, 80, 104, 152, 160, 168, -1, 176),
};
#undef GL

/* 1 when the space-separated list has the word w. */
static int has_word(const char *list, const char *w)
{
    size_t len = strlen(w);
    if (strchr(w, ' '))
        return 0;
    for (const char *p = list; len && (p = strstr(p, w)); p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

const struct greenlet_layout *greenlet_layout_for(const char *version, int major, int minor)
{
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
        if (layouts[i].major == major && layouts[i].minor == minor &&
            has_word(layouts[i].releases, version))
            return &layouts[i];
    return NULL;
}

void greenlet_layout_known(int major, int minor, char *buf, size_t size)
{
    size_t len = 0;
    if (!size)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(layouts) && len < size; i++) {
        const struct greenlet_layout *gl = &layouts[i];
        if (gl->major != major || gl->minor != minor)
            continue;
        /* The first and last of the row's consecutive releases. */
        const char *last = strrchr(gl->releases, ' ');
        int first_len = (int)strcspn(gl->releases, " ");
        int w = snprintf(buf + len, size - len, "%s%.*s%s%s", len ? ", " : "", first_len,
                         gl->releases, last ? "-" : "", last ? last + 1 : "");
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}
