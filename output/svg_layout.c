/*
 * The flame graph's layout: the call tree of a profile (one node per path,
 * children by label) and the rectangles drawn of it, with the siblings
 * narrower than a pixel merged.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "output/svg_layout.h"

/* ---- the call tree ----------------------------------------------------------- */

static uint32_t tree_add(struct svg_tree *t, uint32_t parent, uint32_t frame)
{
    GROW(t->nodes, t->cap, t->n + 1);
    t->nodes[t->n] = (struct svg_node){frame, parent, 0, 0, 0};
    return (uint32_t)t->n++;
}

static const struct profile *order_ctx; /* for stack_ids_cmp: qsort passes no context */

/* Stacks by their frame ids, so that stacks sharing a prefix are neighbours. */
static int stack_ids_cmp(const void *a, const void *b)
{
    const struct profile *p = order_ctx;
    const struct prof_stack *x = &p->stacks[*(const uint32_t *)a];
    const struct prof_stack *y = &p->stacks[*(const uint32_t *)b];
    uint32_t n = MIN(x->len, y->len);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fx = p->ids[x->off + i], fy = p->ids[y->off + i];
        if (fx != fy)
            return fx < fy ? -1 : 1;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

static int kid_cmp(const void *a, const void *b)
{
    return strcmp(((const struct svg_kid *)a)->label, ((const struct svg_kid *)b)->label);
}

/*
 * Children are listed by label so that the drawing depends on the samples
 * only, never on the order stacks were added in.  A node's index is always
 * larger than its parent's.
 */
static void tree_link(struct svg_tree *t)
{
    for (size_t i = 1; i < t->n; i++)
        t->nodes[t->nodes[i].parent].nkids++;
    uint32_t next = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->nodes[i].kids = next;
        next += t->nodes[i].nkids;
        t->nodes[i].nkids = 0;
    }
    t->kids = xmalloc((t->n + 1) * sizeof(*t->kids));
    for (size_t i = 1; i < t->n; i++) {
        struct svg_node *parent = &t->nodes[t->nodes[i].parent];
        t->kids[parent->kids + parent->nkids++] =
            (struct svg_kid){t->p->frames[t->nodes[i].frame].label, (uint32_t)i};
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].nkids > 1)
            qsort(t->kids + t->nodes[i].kids, t->nodes[i].nkids, sizeof(*t->kids), kid_cmp);
}

/*
 * The stacks are visited in the order of their frame ids: then every node
 * is made while its first stack is visited, and the next stacks reuse the
 * prefix they share with the one before (no lookups).
 */
void svg_tree_build(struct svg_tree *t, const struct profile *p)
{
    memset(t, 0, sizeof(*t));
    t->p = p;
    tree_add(t, SVG_NO_NODE, SVG_NO_FRAME);
    uint32_t *order = xmalloc((p->nstacks + 1) * sizeof(*order));
    for (size_t i = 0; i < p->nstacks; i++)
        order[i] = (uint32_t)i;
    order_ctx = p;
    qsort(order, p->nstacks, sizeof(*order), stack_ids_cmp);
    order_ctx = NULL;
    uint32_t *path = NULL; /* path[j]: the node of frame j of the previous stack */
    size_t pathcap = 0, pathlen = 0;
    const struct prof_stack *prev = NULL;
    for (size_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[order[i]];
        if (s->count == 0)
            continue;
        uint32_t same = 0;
        if (prev)
            while (same < s->len && same < pathlen && p->ids[s->off + same] == p->ids[prev->off + same])
                same++;
        GROW(path, pathcap, (size_t)s->len + 1);
        for (uint32_t j = same; j < s->len; j++)
            path[j] = tree_add(t, j ? path[j - 1] : 0, p->ids[s->off + j]);
        pathlen = s->len;
        prev = s;
        t->nodes[0].count += s->count;
        for (uint32_t j = 0; j < s->len; j++)
            t->nodes[path[j]].count += s->count;
    }
    free(path);
    free(order);
    tree_link(t);
}

void svg_tree_release(struct svg_tree *t)
{
    free(t->nodes);
    free(t->kids);
    memset(t, 0, sizeof(*t));
}

/*
 * For a differential graph: the node of base at the same path of labels as
 * each node of t (SVG_NO_NODE when base never saw that path).  Frame ids differ
 * between profiles, so paths match by label; both child lists are sorted by
 * label, so one merge walk per node finds the pairs.
 */
uint32_t *svg_tree_match(const struct svg_tree *t, const struct svg_tree *base)
{
    uint32_t *match = xmalloc((t->n + 1) * sizeof(*match));
    for (size_t i = 0; i < t->n; i++)
        match[i] = SVG_NO_NODE;
    match[0] = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (match[i] == SVG_NO_NODE)
            continue;
        const struct svg_node *a = &t->nodes[i], *b = &base->nodes[match[i]];
        uint32_t x = 0, y = 0;
        while (x < a->nkids && y < b->nkids) {
            const struct svg_kid *ka = &t->kids[a->kids + x], *kb = &base->kids[b->kids + y];
            int c = strcmp(ka->label, kb->label);
            if (c == 0)
                match[ka->node] = kb->node;
            x += c <= 0;
            y += c >= 0;
        }
    }
    return match;
}

/* ---- what is drawn ----------------------------------------------------------- */

struct pending {
    uint32_t node, depth;
    uint64_t off;
};

static uint64_t base_count(const struct svg_tree *base, const uint32_t *match, uint32_t node)
{
    if (!base || match[node] == SVG_NO_NODE)
        return 0;
    return base->nodes[match[node]].count;
}

static void add_draw(struct svg_layout *l, struct svg_draw d)
{
    GROW(l->draws, l->cap, l->n + 1);
    l->draws[l->n++] = d;
    if (d.depth > l->maxdepth)
        l->maxdepth = d.depth;
}

void svg_layout_build(struct svg_layout *l, const struct svg_tree *t, const struct svg_tree *base,
                         const uint32_t *match, double plotw)
{
    uint64_t total = t->nodes[0].count;
    memset(l, 0, sizeof(*l));
    if (total == 0)
        return;
    struct pending *stack = NULL;
    size_t ns = 0, cap = 0;
    GROW(stack, cap, 1);
    stack[ns++] = (struct pending){0, 0, 0};
    while (ns) {
        struct pending at = stack[--ns];
        const struct svg_node *nd = &t->nodes[at.node];
        add_draw(l, (struct svg_draw){at.node, 1, at.depth, at.off, nd->count, base_count(base, match, at.node)});
        uint64_t wide = 0;
        size_t first = ns;
        struct svg_draw narrow = {SVG_NO_NODE, 0, at.depth + 1, 0, 0, 0};
        for (uint32_t k = 0; k < nd->nkids; k++) {
            uint32_t c = t->kids[nd->kids + k].node;
            uint64_t cnt = t->nodes[c].count;
            /* Drawn with its callees when at least a pixel wide. */
            if ((double)cnt * plotw >= (double)total) {
                GROW(stack, cap, ns + 1);
                stack[ns++] = (struct pending){c, at.depth + 1, at.off + wide};
                wide += cnt;
            } else {
                if (narrow.node == SVG_NO_NODE)
                    narrow.node = c;
                narrow.merged++;
                narrow.count += cnt;
                narrow.base += base_count(base, match, c);
            }
        }
        /* Reverse the children just pushed so that they are drawn left to right. */
        for (size_t a = first, b = ns; a + 1 < b; a++, b--) {
            struct pending tmp = stack[a];
            stack[a] = stack[b - 1];
            stack[b - 1] = tmp;
        }
        /* The narrow ones sit together right of the wide ones. */
        if (narrow.merged) {
            narrow.off = at.off + wide;
            add_draw(l, narrow);
        }
    }
    free(stack);
}
