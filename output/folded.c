#include "output/folded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"


struct line {
    char *text;
    uint64_t count;
};

static int line_cmp(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

int folded_write(FILE *f, const struct profile *p)
{
    struct line *lines = xcalloc(p->nstacks + 1, sizeof(*lines));
    struct strbuf sb = STRBUF_INIT;
    size_t nl = 0;
    for (size_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[i];
        sb_reset(&sb);
        for (uint32_t j = 0; j < s->len; j++) {
            if (j)
                sb_addc(&sb, ';');
            sb_adds(&sb, p->frames[p->ids[s->off + j]].label);
        }
        if (!sb.len || !s->count)
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
    if (fflush(f) != 0 || ferror(f))
        return errno ? -errno : -EIO;
    return 0;
}
