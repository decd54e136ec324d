/* dump --greenlets, printed: see dump_greenlets.h. */
#include "profiler/commands/dump_greenlets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "profiler/commands/dump_print.h"
#include "profiler/sampling/session.h"
#include "symbolizer/names.h"

/* A group of greenlets in the same state with the same stack. */
struct group {
    size_t first, count;
};

struct sort_ctx {
    const struct greenlet_set *gs;
    const uint32_t *ids;
};

static int cmp_stack(const struct sort_ctx *c, size_t a, size_t b)
{
    const struct greenlet *x = &c->gs->v[a], *y = &c->gs->v[b];
    if (x->state != y->state)
        return x->state < y->state ? -1 : 1;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    for (size_t i = 0; i < x->depth; i++) {
        uint32_t p = c->ids[x->off + i], q = c->ids[y->off + i];
        if (p != q)
            return p < q ? -1 : 1;
    }
    return 0;
}

static int cmp_index(const void *a, const void *b, void *ctx)
{
    int c = cmp_stack(ctx, *(const size_t *)a, *(const size_t *)b);
    if (c)
        return c;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : 1;
}

/* Groups of identical stacks, largest first; *ng set.  order: the greenlets sorted. */
static struct group *group_stacks(const struct greenlet_set *gs, const uint32_t *ids,
                                  size_t **order, size_t *ng)
{
    size_t n = gs->n;
    *order = xmalloc((n ? n : 1) * sizeof(**order));
    for (size_t i = 0; i < n; i++)
        (*order)[i] = i;
    struct sort_ctx c = {gs, ids};
    qsort_r(*order, n, sizeof(**order), cmp_index, &c);
    struct group *gv = xmalloc((n ? n : 1) * sizeof(*gv));
    *ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && cmp_stack(&c, (*order)[i - 1], (*order)[i]) == 0) {
            gv[*ng - 1].count++;
            continue;
        }
        gv[(*ng)++] = (struct group){.first = (*order)[i], .count = 1};
    }
    qsort(gv, *ng, sizeof(*gv), cmp_group);
    return gv;
}

/* Type names read once per distinct type (more types are read each time). */
#define TYPE_NAMES 64

struct type_names {
    uint64_t type[TYPE_NAMES + 1];
    char name[TYPE_NAMES + 1][GREENLET_TYPE_NAME_MAX];
    size_t n;
};

/* g's type name, "" when it could not be read. */
static const char *type_name(struct session *s, struct type_names *tn, const struct greenlet *g)
{
    for (size_t i = 0; i < tn->n; i++)
        if (tn->type[i] == g->type)
            return tn->name[i];
    size_t i = tn->n < TYPE_NAMES ? tn->n++ : TYPE_NAMES;
    tn->type[i] = g->type;
    greenlet_type_name(s->mem, &s->rt.layout, g->type, tn->name[i]);
    return tn->name[i];
}

static const char *type_label(const struct greenlet *g)
{
    return g->main ? " main" : "";
}

/* Where a running greenlet runs, after its state in the text dump. */
static void where_text(const struct greenlet *g, struct strbuf *out)
{
    if (g->state != GL_RUNNING)
        return;
    if (g->tid > 0)
        sb_addf(out, " in thread %d", (int)g->tid);
    else if (g->thread)
        sb_adds(out, " in a thread without an id");
    else
        sb_adds(out, ", thread unknown");
}

void dump_greenlets_text(struct session *s, const struct greenlet_set *gs, struct strbuf *out)
{
    uint32_t *ids = dump_print_frame_ids(s, gs->raw, gs->nraw);
    struct type_names *tn = xcalloc(1, sizeof(*tn));
    sb_addf(out, "\nGreenlets: %zu (%" PRIu64 " objects walked, %" PRIu64 " reads)\n", gs->n,
            gs->stats.objects, gs->stats.reads);
    for (size_t i = 0; i < gs->n; i++) {
        const struct greenlet *g = &gs->v[i];
        const char *tname = type_name(s, tn, g);
        sb_addf(out, "Greenlet 0x%" PRIx64 " %s%s (%s", g->obj, *tname ? tname : "?",
                type_label(g), greenlet_state_name(g->state));
        where_text(g, out);
        sb_adds(out, ")\n");
        int stacked = g->state == GL_PARKED || (g->state == GL_RUNNING && g->thread);
        if (stacked && g->status < 0)
            sb_addf(out, "    (stack unreadable: %s)\n", dump_print_stack_error(g->status));
        else if (stacked && g->depth == 0)
            sb_adds(out, "    (no Python frames)\n");
        for (size_t k = 0; k < g->depth; k++) {
            sb_adds(out, "    ");
            dump_print_frame(s->names, ids[g->off + k], out);
            sb_addc(out, '\n');
        }
        if (g->status == 1)
            sb_addf(out, "    ... stack truncated at %zu frames\n", g->depth);
    }
    size_t *order, ng;
    struct group *gv = group_stacks(gs, ids, &order, &ng);
    sb_adds(out, "\nGreenlet summary:\n");
    for (size_t i = 0; i < ng; i++) {
        const struct greenlet *g = &gs->v[gv[i].first];
        sb_addf(out, "  %zu greenlet%s %s", gv[i].count, gv[i].count == 1 ? "" : "s",
                greenlet_state_name(g->state));
        for (size_t k = 0; k < g->depth; k++) {
            sb_adds(out, k ? " <- `" : " at `");
            dump_print_frame(s->names, ids[g->off + k], out);
            sb_addc(out, '`');
        }
        if (g->state == GL_PARKED && g->status == 0 && g->depth == 0)
            sb_adds(out, " (no Python frames)");
        sb_addc(out, '\n');
    }
    free(gv);
    free(order);
    free(ids);
    free(tn);
}

void dump_greenlets_json(struct session *s, const struct greenlet_set *gs, struct strbuf *out)
{
    uint32_t *ids = dump_print_frame_ids(s, gs->raw, gs->nraw);
    struct type_names *tn = xcalloc(1, sizeof(*tn));
    sb_adds(out, "\"greenlets\": [");
    for (size_t i = 0; i < gs->n; i++) {
        const struct greenlet *g = &gs->v[i];
        const char *tname = type_name(s, tn, g);
        sb_addf(out, "%s\n  {\"address\": \"0x%" PRIx64 "\", \"type\": ", i ? "," : "", g->obj);
        if (*tname)
            json_string(out, tname);
        else
            sb_adds(out, "null");
        sb_addf(out, ", \"main\": %s, \"state\": \"%s\"", g->main ? "true" : "false",
                greenlet_state_name(g->state));
        if (g->state == GL_RUNNING && g->tid > 0)
            sb_addf(out, ", \"thread\": %d", (int)g->tid);
        else if (g->state == GL_RUNNING)
            sb_adds(out, ", \"thread\": null");
        if ((g->state == GL_PARKED || (g->state == GL_RUNNING && g->thread)) && g->status < 0) {
            sb_adds(out, ", \"error\": ");
            json_string(out, dump_print_stack_error(g->status));
        }
        sb_addf(out, ", \"truncated\": %s, \"frames\": ", g->status == 1 ? "true" : "false");
        dump_print_frames_json(s->names, ids + g->off, g->depth, out);
        sb_addc(out, '}');
    }
    size_t *order, ng;
    struct group *gv = group_stacks(gs, ids, &order, &ng);
    sb_adds(out, "],\n \"greenlet_summary\": [");
    for (size_t i = 0; i < ng; i++) {
        const struct greenlet *g = &gs->v[gv[i].first];
        sb_addf(out, "%s\n  {\"count\": %zu, \"state\": \"%s\", \"frames\": ", i ? "," : "",
                gv[i].count, greenlet_state_name(g->state));
        dump_print_frames_json(s->names, ids + g->off, g->depth, out);
        sb_addc(out, '}');
    }
    sb_addf(out, "],\n \"greenlet_stats\": {\"objects\": %" PRIu64 ", \"reads\": %" PRIu64
            ", \"retries\": %" PRIu64 ", \"collecting\": %" PRIu64 "}", gs->stats.objects,
            gs->stats.reads, gs->stats.retries, gs->stats.collecting);
    free(gv);
    free(order);
    free(ids);
    free(tn);
}
