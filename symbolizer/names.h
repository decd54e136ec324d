/*
 * Interned names: strings, functions (name, file, first line) and frames
 * (function, line), each given a small dense id.  Samples carry frame ids;
 * only the writers turn them back into text.
 */
#ifndef PYSTROBE_NAMES_H
#define PYSTROBE_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "common/htab.h"

/* String id 0 is always "" (a function with no file: a synthetic frame). */
#define NAMES_EMPTY 0u
/* A frame's line that could not be told (an invalid line table, an unreadable code object). */
#define NAMES_LINE_UNKNOWN (-1)

struct names_func {
    uint32_t name, file; /* string ids */
    int firstlineno;
};

struct names_frame {
    uint32_t func;
    int line;             /* 0 for a frame shown without a line; NAMES_LINE_UNKNOWN */
};

struct names {
    char **strs;
    uint32_t *str_lens;
    size_t nstrs, strcap;
    struct htab str_index;
    struct names_func *funcs;
    size_t nfuncs, funccap;
    struct htab func_index;
    struct names_frame *frames;
    size_t nframes, framecap;
    struct htab frame_index;
};

void names_init(struct names *n);
void names_release(struct names *n);

uint32_t names_str(struct names *n, const char *s, size_t len);
const char *names_str_get(const struct names *n, uint32_t id);
uint32_t names_func(struct names *n, uint32_t name, uint32_t file, int firstlineno);
uint32_t names_frame(struct names *n, uint32_t func, int line);
/* A frame that shows only a label ("thread busy (42)", "[truncated]"). */
uint32_t names_label_frame(struct names *n, const char *label);

static inline const struct names_frame *names_frame_get(const struct names *n, uint32_t id)
{
    return &n->frames[id];
}
static inline const struct names_func *names_func_get(const struct names *n, uint32_t id)
{
    return &n->funcs[id];
}

#endif
