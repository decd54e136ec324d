/*
 * Inside the SVG writer: the call tree of a profile and what is drawn of it
 * (svg_layout.c), and the viewer's script and style (svg_script.c).  The
 * writing itself is svg.c.  Not for other modules.
 */
#ifndef PYSTROBE_SVG_LAYOUT_H
#define PYSTROBE_SVG_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "output/profile.h"

#define SVG_NO_NODE UINT32_MAX
#define SVG_NO_FRAME UINT32_MAX

struct svg_node {
    uint32_t frame;  /* frame id in the profile; SVG_NO_FRAME for the root "all" */
    uint32_t parent;
    uint32_t kids;   /* first child in tree.kids, children sorted by label */
    uint32_t nkids;
    uint64_t count;  /* samples in this frame and its callees */
};

struct svg_kid {
    const char *label;
    uint32_t node;
};

struct svg_tree {
    const struct profile *p;
    struct svg_node *nodes;
    size_t n, cap;
    struct svg_kid *kids;
};

/*
 * One rectangle: a node, or the children of a node that are each narrower
 * than a pixel, merged into one (a lone one is drawn as itself), so that the
 * file stays small while the widths of siblings still add up.  Callees of
 * such a rectangle are not drawn.
 */
struct svg_draw {
    uint32_t node;    /* the node drawn, or its first merged child */
    uint32_t merged;  /* how many siblings the rectangle stands for */
    uint32_t depth;
    uint64_t off;     /* samples left of this rectangle, in the whole graph */
    uint64_t count;
    uint64_t base;    /* samples of the same path(s) in the base profile */
};

struct svg_layout {
    struct svg_draw *draws;
    size_t n, cap;
    uint32_t maxdepth;
};

/* The call tree of p: a root "all", children sorted by label. */
void svg_tree_build(struct svg_tree *t, const struct profile *p);
void svg_tree_release(struct svg_tree *t);
/* For each node of t, the node of base at the same path of labels (or SVG_NO_NODE). */
uint32_t *svg_tree_match(const struct svg_tree *t, const struct svg_tree *base);
/* The rectangles of t on a plot plotw pixels wide (base and match for a differential graph). */
void svg_layout_build(struct svg_layout *l, const struct svg_tree *t, const struct svg_tree *base,
                      const uint32_t *match, double plotw);

/* The viewer's CSS and JavaScript, written inline. */
extern const char svg_style[];
extern const char svg_script[];

#endif
