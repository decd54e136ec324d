#include "output/folded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output/label.h"

struct line {
    char *text;
    uint64_t count;
};

static int line_cmp(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

int folded_write(FILE *f, const struct agg *a, const struct names *n, unsigned flags)
{
    struct line *lines = xcalloc(a->nstacks + 1, sizeof(*lines));
    struct strbuf sb = STRBUF_INIT;
    size_t nl = 0;
    for (size_t i = 0; i < a->nstacks; i++) {
        const struct agg_stack *s = &a->stacks[i];
        sb_reset(&sb);
        if (flags & FOLDED_THREADS)
            label_thread(&a->threads[s->thread], &sb);
        for (uint32_t j = 0; j < s->len; j++) {
            if (sb.len)
                sb_addc(&sb, ';');
            label_frame(n, a->frames[s->off + j], &sb);
        }
        if (!sb.len)
            continue;
        lines[nl].text = xstrdup(sb.buf);
        lines[nl].count = s->count;
        nl++;
    }
    sb_release(&sb);
    qsort(lines, nl, sizeof(*lines), line_cmp);
    /* Stacks of different threads merge when threads are not shown. */
    for (size_t i = 0; i < nl; i++) {
        uint64_t count = lines[i].count;
        while (i + 1 < nl && strcmp(lines[i].text, lines[i + 1].text) == 0)
            count += lines[++i].count;
        fprintf(f, "%s %" PRIu64 "\n", lines[i].text, count);
    }
    for (size_t i = 0; i < nl; i++)
        free(lines[i].text);
    free(lines);
    return ferror(f) ? -EIO : 0;
}
