#include "output/diff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "thread NAME (TID)" -> "thread NAME"; "process PID (CMD)" -> "process (CMD)". */
static void normal_label(const struct prof_frame *f, struct strbuf *out)
{
    const char *l = f->label;
    sb_reset(out);
    if (f->kind == PK_THREAD) {
        const char *close = l[7] == '(' ? strchr(l + 7, ')') : NULL;
        const char *open = strrchr(l, '(');
        if (close && strncmp(close, "): ", 3) == 0) {
            /* py-spy's "thread (TID): NAME" */
            sb_adds(out, "thread ");
            sb_adds(out, close + 3);
            return;
        }
        size_t n = open && open > l + 7 && open[-1] == ' ' ? (size_t)(open - 1 - l) : strlen(l);
        if (open == l + 7)
            n = 6; /* "thread (TID)": no name left */
        sb_add(out, l, n);
    } else if (f->kind == PK_PROCESS) {
        const char *q = l + 8;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q == ':' || *q == ' ')
            q++;
        sb_adds(out, "process");
        if (*q) {
            sb_addc(out, ' ');
            sb_adds(out, q);
        }
    } else {
        sb_adds(out, l);
    }
}

void diff_normalize(struct profile *dst, const struct profile *src)
{
    struct strbuf sb = STRBUF_INIT;
    uint32_t *map = xmalloc((src->nframes + 1) * sizeof(*map));
    uint32_t *thread_of = NULL; /* dst frame id -> dst thread + 1 */
    size_t tcap = 0;
    for (size_t i = 0; i < src->nframes; i++) {
        normal_label(&src->frames[i], &sb);
        map[i] = profile_frame(dst, sb.buf);
    }
    uint32_t *ids = NULL;
    size_t cap = 0;
    uint32_t anon = UINT32_MAX;
    dst->thread_roots = src->thread_roots;
    for (size_t i = 0; i < src->nstacks; i++) {
        const struct prof_stack *s = &src->stacks[i];
        GROW(ids, cap, (size_t)s->len + 1);
        for (uint32_t j = 0; j < s->len; j++)
            ids[j] = map[src->ids[s->off + j]];
        uint32_t t;
        if (src->thread_roots && s->len) {
            uint32_t fr = ids[0];
            if (fr >= tcap) {
                size_t old = tcap;
                GROW(thread_of, tcap, (size_t)fr + 1);
                memset(thread_of + old, 0, (tcap - old) * sizeof(*thread_of));
            }
            if (!thread_of[fr]) {
                const struct prof_thread *st = &src->threads[s->thread];
                t = profile_thread(dst, st->name, 0);
                dst->threads[t].frame = fr;
                thread_of[fr] = t + 1;
            }
            t = thread_of[fr] - 1;
        } else {
            if (anon == UINT32_MAX)
                anon = profile_thread(dst, NULL, 0);
            t = anon;
        }
        profile_add(dst, t, ids, s->len, s->count);
    }
    dst->meta = src->meta;
    dst->meta.title = src->meta.title ? xstrdup(src->meta.title) : NULL;
    free(ids);
    free(thread_of);
    free(map);
    sb_release(&sb);
}

struct acc {
    const char *label;
    uint64_t self[2], total[2];
};

struct acc_set {
    struct acc *v;
    size_t n, cap;
    struct htab index;
};

static int acc_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct acc_set *a = ctx;
    return strcmp(a->v[idx].label, key) == 0;
}

static uint32_t acc_get(struct acc_set *a, const char *label)
{
    uint64_t h = hash_bytes(label, strlen(label), 0);
    uint32_t i = htab_find(&a->index, h, acc_eq, a, label);
    if (i == HTAB_NONE) {
        GROW(a->v, a->cap, a->n + 1);
        memset(&a->v[a->n], 0, sizeof(a->v[a->n]));
        a->v[a->n].label = label;
        i = (uint32_t)a->n++;
        htab_insert(&a->index, h, i);
    }
    return i;
}

/* Adds one profile's self and total counts (a frame counts once per stack, however deep its recursion). */
static void accumulate(struct acc_set *a, const struct profile *p, int side)
{
    uint32_t *slot = xmalloc((p->nframes + 1) * sizeof(*slot));
    uint32_t *seen = xcalloc(p->nframes + 1, sizeof(*seen));
    for (size_t i = 0; i < p->nframes; i++)
        slot[i] = acc_get(a, p->frames[i].label);
    for (size_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[i];
        uint32_t stamp = (uint32_t)i + 1;
        for (uint32_t j = 0; j < s->len; j++) {
            uint32_t fr = p->ids[s->off + j];
            if (seen[fr] == stamp)
                continue;
            seen[fr] = stamp;
            a->v[slot[fr]].total[side] += s->count;
        }
        if (s->len)
            a->v[slot[p->ids[s->off + s->len - 1]]].self[side] += s->count;
    }
    free(seen);
    free(slot);
}

static int row_cmp(const void *x, const void *y)
{
    const struct diff_row *a = x, *b = y;
    double sa = fabs(a->new_self - a->base_self), sb = fabs(b->new_self - b->base_self);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    double ta = fabs(a->new_total - a->base_total), tb = fabs(b->new_total - b->base_total);
    if (ta != tb)
        return ta > tb ? -1 : 1;
    return strcmp(a->label, b->label);
}

static double share(uint64_t n, uint64_t total)
{
    return total ? (double)n / (double)total : 0.0;
}

size_t diff_rows(const struct profile *base, const struct profile *now, struct diff_row **rows)
{
    struct acc_set a = {0};
    accumulate(&a, base, 0);
    accumulate(&a, now, 1);
    struct diff_row *r = xmalloc((a.n + 1) * sizeof(*r));
    size_t n = 0;
    for (size_t i = 0; i < a.n; i++) {
        const struct acc *c = &a.v[i];
        struct diff_row row = {
            c->label,
            share(c->self[0], base->total), share(c->self[1], now->total),
            share(c->total[0], base->total), share(c->total[1], now->total),
        };
        if (row.base_self == row.new_self && row.base_total == row.new_total)
            continue;
        r[n++] = row;
    }
    qsort(r, n, sizeof(*r), row_cmp);
    free(a.v);
    htab_release(&a.index);
    *rows = r;
    return n;
}

void diff_top_text(const struct profile *base, const struct profile *now, size_t n, struct strbuf *out)
{
    struct diff_row *rows;
    size_t nr = diff_rows(base, now, &rows);
    sb_adds(out, "          self %                    total %\n");
    sb_addf(out, "%7s %7s %8s %7s %7s %8s  %s\n", "base", "new", "change", "base", "new", "change",
            "frame");
    for (size_t i = 0; i < nr && i < n; i++) {
        const struct diff_row *r = &rows[i];
        sb_addf(out, "%7.2f %7.2f %+8.2f %7.2f %7.2f %+8.2f  %s\n", 100 * r->base_self,
                100 * r->new_self, 100 * (r->new_self - r->base_self), 100 * r->base_total,
                100 * r->new_total, 100 * (r->new_total - r->base_total), r->label);
    }
    if (nr == 0)
        sb_adds(out, "(no frame's share changed)\n");
    free(rows);
}
