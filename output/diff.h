/*
 * Comparing two profiles: the frames whose share of the samples changed
 * most, and profiles made comparable across runs (thread and process ids
 * differ from run to run; their names do not).
 */
#ifndef PYSTROBE_DIFF_H
#define PYSTROBE_DIFF_H

#include <stddef.h>

#include "common/util.h"
#include "output/profile.h"

struct diff_row {
    const char *label;              /* points into one of the profiles */
    double base_self, new_self;     /* share (0..1) of samples with the frame as leaf */
    double base_total, new_total;   /* share of samples with the frame anywhere on the stack */
};

/*
 * Copies src into dst (initialised by the caller) with thread roots
 * relabelled "thread NAME" and process roots without their PID.
 */
void diff_normalize(struct profile *dst, const struct profile *src);

/*
 * One row per frame label found in either profile whose share changed,
 * ordered by the change in self share, then in total share (largest first),
 * then by label.  Returns how many; *rows is allocated (free it).
 */
size_t diff_rows(const struct profile *base, const struct profile *now, struct diff_row **rows);

/* Appends the first n rows as a text table. */
void diff_top_text(const struct profile *base, const struct profile *now, size_t n, struct strbuf *out);

#endif
