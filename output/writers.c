#include "output/writers.h"

#include <string.h>

#include "common/util.h"
#include "output/folded.h"
#include "output/pprof.h"
#include "output/speedscope.h"
#include "output/svg.h"

static const struct {
    const char *name;
    enum out_format fmt;
    const char *ext;
} formats[] = {
    {"flamegraph", OUT_FLAMEGRAPH, ".svg"},
    {"folded", OUT_FOLDED, ".folded"},
    {"speedscope", OUT_SPEEDSCOPE, ".json"},
    {"pprof", OUT_PPROF, ".pb.gz"},
};

/* Other extensions people give these files. */
static const struct {
    const char *ext;
    enum out_format fmt;
} more_exts[] = {
    {".txt", OUT_FOLDED},
    {".collapsed", OUT_FOLDED},
    {".pprof", OUT_PPROF},
    {".pb", OUT_PPROF},
    {".speedscope.json", OUT_SPEEDSCOPE},
};

int out_format_by_name(const char *name, enum out_format *fmt)
{
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        if (strcmp(formats[i].name, name) == 0) {
            *fmt = formats[i].fmt;
            return 0;
        }
    }
    return -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

int out_format_by_path(const char *path, enum out_format *fmt)
{
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        if (ends_with(path, formats[i].ext)) {
            *fmt = formats[i].fmt;
            return 0;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(more_exts); i++) {
        if (ends_with(path, more_exts[i].ext)) {
            *fmt = more_exts[i].fmt;
            return 0;
        }
    }
    return -1;
}

const char *out_format_ext(enum out_format fmt)
{
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
        if (formats[i].fmt == fmt)
            return formats[i].ext;
    return "";
}

const char *out_format_list(void)
{
    return "flamegraph, folded, speedscope, pprof";
}

int out_write(FILE *f, const struct profile *p, enum out_format fmt, const struct out_opts *o)
{
    static const struct out_opts none;
    if (!o)
        o = &none;
    switch (fmt) {
    case OUT_FLAMEGRAPH: {
        struct svg_opts so = {.reverse = o->reverse, .base = o->base};
        return svg_write(f, p, &so);
    }
    case OUT_FOLDED:
        return folded_write(f, p);
    case OUT_SPEEDSCOPE:
        return speedscope_write(f, p);
    case OUT_PPROF:
        return pprof_write(f, p);
    }
    return -1;
}
