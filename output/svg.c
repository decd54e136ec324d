#include "output/svg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/*
 * Geometry.  Labels use a monospace font so that the writer (here) and the
 * viewer (the script, on zoom) agree on how many glyphs fit a rectangle
 * without measuring text: every glyph advances 0.6 em, East Asian wide ones
 * and emoji twice that.
 */
#define DEFAULT_WIDTH 1200
#define MIN_WIDTH 100
#define XPAD 10        /* left and right margins */
#define FRAME_H 16     /* one stack level; rectangles are one pixel less */
#define TOP_PAD 60     /* title, subtitle and the controls */
#define BOTTOM_PAD 36  /* the details line */
#define GLYPH_W 7.2    /* advance of one glyph of the 12 px monospace font */
#define TEXT_DX 3      /* label inset from the rectangle's left edge (and right) */
#define TEXT_DY 11     /* label baseline below the rectangle's top */
#define MIN_CELLS 3    /* two glyphs and the ellipsis, or no label at all */

#define NO_NODE UINT32_MAX
#define NO_FRAME UINT32_MAX
#define FLUSH_AT (64 * 1024)

/* ---- the call tree ----------------------------------------------------------- */

struct node {
    uint32_t frame;  /* frame id in the profile; NO_FRAME for the root "all" */
    uint32_t parent;
    uint32_t kids;   /* first child in tree.kids, children sorted by label */
    uint32_t nkids;
    uint64_t count;  /* samples in this frame and its callees */
};

struct kid {
    const char *label;
    uint32_t node;
};

struct tree {
    const struct profile *p;
    struct node *nodes;
    size_t n, cap;
    struct kid *kids;
};

static uint32_t tree_add(struct tree *t, uint32_t parent, uint32_t frame)
{
    GROW(t->nodes, t->cap, t->n + 1);
    t->nodes[t->n] = (struct node){frame, parent, 0, 0, 0};
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
    return strcmp(((const struct kid *)a)->label, ((const struct kid *)b)->label);
}

/*
 * Children are listed by label so that the drawing depends on the samples
 * only, never on the order stacks were added in.  A node's index is always
 * larger than its parent's.
 */
static void tree_link(struct tree *t)
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
        struct node *parent = &t->nodes[t->nodes[i].parent];
        t->kids[parent->kids + parent->nkids++] =
            (struct kid){t->p->frames[t->nodes[i].frame].label, (uint32_t)i};
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
static void tree_build(struct tree *t, const struct profile *p)
{
    memset(t, 0, sizeof(*t));
    t->p = p;
    tree_add(t, NO_NODE, NO_FRAME);
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

static void tree_release(struct tree *t)
{
    free(t->nodes);
    free(t->kids);
    memset(t, 0, sizeof(*t));
}

/*
 * For a differential graph: the node of base at the same path of labels as
 * each node of t (NO_NODE when base never saw that path).  Frame ids differ
 * between profiles, so paths match by label; both child lists are sorted by
 * label, so one merge walk per node finds the pairs.
 */
static uint32_t *tree_match(const struct tree *t, const struct tree *base)
{
    uint32_t *match = xmalloc((t->n + 1) * sizeof(*match));
    for (size_t i = 0; i < t->n; i++)
        match[i] = NO_NODE;
    match[0] = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (match[i] == NO_NODE)
            continue;
        const struct node *a = &t->nodes[i], *b = &base->nodes[match[i]];
        uint32_t x = 0, y = 0;
        while (x < a->nkids && y < b->nkids) {
            const struct kid *ka = &t->kids[a->kids + x], *kb = &base->kids[b->kids + y];
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

/*
 * One rectangle: a node, or the children of a node that are each narrower
 * than a pixel, merged into one (a lone one is drawn as itself), so that the
 * file stays small while the widths of siblings still add up.  Callees of
 * such a rectangle are not drawn.
 */
struct draw {
    uint32_t node;    /* the node drawn, or its first merged child */
    uint32_t merged;  /* how many siblings the rectangle stands for */
    uint32_t depth;
    uint64_t off;     /* samples left of this rectangle, in the whole graph */
    uint64_t count;
    uint64_t base;    /* samples of the same path(s) in the base profile */
};

struct layout {
    struct draw *draws;
    size_t n, cap;
    uint32_t maxdepth;
};

struct pending {
    uint32_t node, depth;
    uint64_t off;
};

static uint64_t base_count(const struct tree *base, const uint32_t *match, uint32_t node)
{
    if (!base || match[node] == NO_NODE)
        return 0;
    return base->nodes[match[node]].count;
}

static void add_draw(struct layout *l, struct draw d)
{
    GROW(l->draws, l->cap, l->n + 1);
    l->draws[l->n++] = d;
    if (d.depth > l->maxdepth)
        l->maxdepth = d.depth;
}

static void build_layout(struct layout *l, const struct tree *t, const struct tree *base,
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
        const struct node *nd = &t->nodes[at.node];
        add_draw(l, (struct draw){at.node, 1, at.depth, at.off, nd->count, base_count(base, match, at.node)});
        uint64_t wide = 0;
        size_t first = ns;
        struct draw narrow = {NO_NODE, 0, at.depth + 1, 0, 0, 0};
        for (uint32_t k = 0; k < nd->nkids; k++) {
            uint32_t c = t->kids[nd->kids + k].node;
            uint64_t cnt = t->nodes[c].count;
            /* Drawn with its callees when at least a pixel wide. */
            if ((double)cnt * plotw >= (double)total) {
                GROW(stack, cap, ns + 1);
                stack[ns++] = (struct pending){c, at.depth + 1, at.off + wide};
                wide += cnt;
            } else {
                if (narrow.node == NO_NODE)
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

/* ---- text -------------------------------------------------------------------- */

/*
 * Valid UTF-8 that XML accepts: invalid sequences and the noncharacters
 * U+FFFE/U+FFFF become U+FFFD, control characters '?'.
 */
static void clean_text(const char *s, struct strbuf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t len = utf8_valid_len(p, n);
        if (len == 0) {
            sb_adds(out, "\xef\xbf\xbd");
            len = 1;
        } else if (len == 1 && (*p < 0x20 || *p == 0x7f)) {
            sb_addc(out, '?');
        } else if (len == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe) {
            sb_adds(out, "\xef\xbf\xbd");
        } else {
            sb_add(out, p, len);
        }
        p += len;
        n -= len;
    }
}

/* Appends clean text with the five XML special characters escaped. */
static void xml_escape(struct strbuf *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        sb_add(out, s + run, i - run);
        sb_adds(out, rep);
        run = i + 1;
    }
    sb_add(out, s + run, n - run);
}

static void xml_text(struct strbuf *out, const char *s)
{
    struct strbuf clean = STRBUF_INIT;
    clean_text(s, &clean);
    xml_escape(out, sb_str(&clean), clean.len);
    sb_release(&clean);
}

/* Glyph cells of a code point: 2 for East Asian wide characters and emoji (the script agrees). */
static int cells(uint32_t cp)
{
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f}, {0x2e80, 0xa4cf}, {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfe30, 0xfe4f},
        {0xff00, 0xff60}, {0xffe0, 0xffe6}, {0x1f300, 0x1faff}, {0x20000, 0x3fffd},
    };
    for (size_t i = 0; i < ARRAY_SIZE(wide); i++)
        if (cp >= wide[i][0] && cp <= wide[i][1])
            return 2;
    return 1;
}

/* Decodes the (valid) UTF-8 character at s, of length len. */
static uint32_t decode(const unsigned char *s, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = s[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (s[i] & 0x3f);
    return cp;
}

/*
 * How many bytes of the clean label s fit a rectangle of width w, with an
 * ellipsis when cut (*cut).  0: no room for a label at all.
 */
static size_t fit_label(const char *s, size_t n, double w, int *cut)
{
    double r = (w - 2 * TEXT_DX) / GLYPH_W;
    int room = r > 0 ? (int)r : 0;
    *cut = 0;
    if (room < MIN_CELLS)
        return 0;
    size_t i = 0, keep = 0;
    int used = 0;
    while (i < n) {
        size_t len = utf8_valid_len((const unsigned char *)s + i, n - i);
        if (len == 0)
            len = 1; /* not reached: the label is clean */
        used += cells(decode((const unsigned char *)s + i, len));
        if (used <= room - 1)
            keep = i + len;
        if (used > room) {
            *cut = 1;
            return keep;
        }
        i += len;
    }
    return n;
}

/* ---- colors ------------------------------------------------------------------ */

/* A number in [0, 1) that depends only on the bytes (and seed). */
static double unit_hash(const char *s, size_t n, uint64_t seed)
{
    return (double)(hash_bytes(s, n, seed) >> 11) * (1.0 / 9007199254740992.0);
}

static double dabs(double x)
{
    return x < 0 ? -x : x;
}

static int to_byte(double v)
{
    int b = (int)(v * 255 + 0.5);
    return b < 0 ? 0 : b > 255 ? 255 : b;
}

/* Hue in degrees, saturation and lightness in [0, 1]. */
static void put_hsl(struct strbuf *out, double h, double s, double l)
{
    double c = (1 - dabs(2 * l - 1)) * s;
    double hp = h / 60;
    double x = c * (1 - dabs(hp - 2 * (int)(hp / 2) - 1));
    double r = 0, g = 0, b = 0;
    switch ((int)hp % 6) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
    }
    double m = l - c / 2;
    sb_addf(out, "rgb(%d,%d,%d)", to_byte(r + m), to_byte(g + m), to_byte(b + m));
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "python3.11", "python2.7", "python3": a standard library directory. */
static int python_dir(const char *s, size_t n)
{
    if (n < 7 || memcmp(s, "python", 6) != 0)
        return 0;
    for (size_t i = 6; i < n; i++)
        if ((s[i] < '0' || s[i] > '9') && s[i] != '.')
            return 0;
    return s[6] >= '0' && s[6] <= '9';
}

/* The module a path component names: "json" of "json/...", "six" of "six.py". */
static void module_of(const char *s, struct strbuf *out)
{
    size_t n = strcspn(s, "/");
    if (s[n] != '/') {
        size_t dot = strcspn(s, ".");
        if (dot > 0)
            n = dot;
    }
    sb_add(out, s, n);
}

/*
 * What a Python frame's hue is chosen by: the installed package (the first
 * directory after site-packages or dist-packages), the standard library's
 * top-level module, or else the file's name.
 */
static void py_package(const char *file, struct strbuf *out)
{
    if (has_prefix(file, "<frozen ")) {
        const char *m = file + 8;
        sb_add(out, m, strcspn(m, ".>"));
        return;
    }
    const char *best = NULL;
    for (const char *q = file; (q = strstr(q, "-packages/")) != NULL; q++) {
        if ((q - file >= 5 && memcmp(q - 5, "/site", 5) == 0) ||
            (q - file >= 5 && memcmp(q - 5, "/dist", 5) == 0))
            best = q + 10;
    }
    if (best && *best) {
        module_of(best, out);
        return;
    }
    const char *q = file;
    while ((q = strstr(q, "/lib")) != NULL) {
        const char *d = q + 4;
        if (has_prefix(d, "64/"))
            d += 3;
        else if (*d == '/')
            d += 1;
        else {
            q++;
            continue;
        }
        size_t n = strcspn(d, "/");
        if (python_dir(d, n) && d[n] == '/' && d[n + 1]) {
            module_of(d + n + 1, out);
            return;
        }
        q++;
    }
    sb_adds(out, path_base(file));
}

#define HUE_SEED 0x7079737472626531ULL
#define TONE_SEED 0x746f6e65u

static void frame_color(struct strbuf *out, const struct prof_frame *f)
{
    struct strbuf pkg = STRBUF_INIT;
    double tone = unit_hash(f->name, strlen(f->name), TONE_SEED);
    double tone2 = unit_hash(f->label, strlen(f->label), TONE_SEED + 1);
    switch (f->kind) {
    case PK_PYTHON:
        py_package(f->file, &pkg);
        /* Warm: red to yellow, one hue per package, shades per function. */
        put_hsl(out, 52 * unit_hash(pkg.buf, pkg.len, HUE_SEED), 0.72 + 0.2 * tone, 0.56 + 0.1 * tone2);
        break;
    case PK_NATIVE:
        sb_adds(&pkg, f->file[0] ? path_base(f->file) : f->name);
        /* Cool: teal to blue. */
        put_hsl(out, 172 + 40 * unit_hash(pkg.buf, pkg.len, HUE_SEED), 0.45 + 0.2 * tone, 0.6 + 0.1 * tone2);
        break;
    case PK_MARK:
        put_hsl(out, 0, 0, 0.68 + 0.08 * tone);
        break;
    case PK_THREAD:
        put_hsl(out, 265, 0.45, 0.76);
        break;
    case PK_PROCESS:
        put_hsl(out, 140, 0.35, 0.68);
        break;
    default:
        /* A bare name: warm, by the name. */
        put_hsl(out, 52 * unit_hash(f->name, strlen(f->name), HUE_SEED), 0.72 + 0.2 * tone,
                0.56 + 0.1 * tone2);
        break;
    }
    sb_release(&pkg);
}

/* Red for growth, blue for shrinkage, near-white for no change. */
static void delta_color(struct strbuf *out, double delta, double maxd)
{
    double t = maxd > 0 ? dabs(delta) / maxd : 0;
    int v = to_byte((250 - 200 * t) / 255);
    if (delta > 0)
        sb_addf(out, "rgb(255,%d,%d)", v, v);
    else if (delta < 0)
        sb_addf(out, "rgb(%d,%d,255)", v, v);
    else
        sb_adds(out, "rgb(250,250,250)");
}

/* ---- writing ----------------------------------------------------------------- */

struct writer {
    FILE *f;
    struct strbuf sb;
    int err; /* the first write error, as an errno */
    const struct profile *p;
    const struct profile *base;
    const struct tree *t;
    int width, height, reverse;
    double plotw;
    uint64_t total, btotal;
    double maxd;
};

static void w_flush(struct writer *w)
{
    if (w->sb.len && !w->err) {
        errno = 0;
        if (fwrite(w->sb.buf, 1, w->sb.len, w->f) != w->sb.len)
            w->err = errno ? errno : EIO;
    }
    sb_reset(&w->sb);
}

static const char style[] =
    "text{font-family:Verdana,'DejaVu Sans',sans-serif;font-size:12px;fill:#000}\n"
    "#title{font-size:17px}\n"
    "#subtitle{fill:#555}\n"
    "#frames text{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;pointer-events:none}\n"
    "#frames>g{cursor:pointer}\n"
    "#frames>g:hover>rect{stroke:#000;stroke-width:0.5}\n"
    "#frames rect{rx:2px;ry:2px}\n"
    ".ctl{cursor:pointer;fill:#1a4f8b}\n"
    ".ctl:hover{text-decoration:underline}\n"
    "#search.active{fill:rgb(230,0,230)}\n"
    ".hide{display:none}\n"
    ".parent{opacity:0.5}\n";

/*
 * The viewer.  It reads everything from the DOM (data-* attributes, <title>
 * text) and writes only attributes and textContent, so no frame name is ever
 * parsed as markup or code.  Its fit() must agree with fit_label() and
 * cells() above.
 */
static const char script[] =
    "(function () {\n"
    "\"use strict\";\n"
    "var svg = document.documentElement, NS = \"http://www.w3.org/2000/svg\";\n"
    "var HIGHLIGHT = \"rgb(230,0,230)\";\n"
    "function num(el, name) { return +el.getAttribute(name); }\n"
    "var xpad = num(svg, \"data-xpad\"), plotw = num(svg, \"data-plotw\");\n"
    "var glyph = num(svg, \"data-glyph\");\n"
    "var tdx = num(svg, \"data-tdx\"), tdy = num(svg, \"data-tdy\"), total = num(svg, \"data-total\");\n"
    "var details = document.getElementById(\"details\"), matched = document.getElementById(\"matched\");\n"
    "var unzoomBtn = document.getElementById(\"unzoom\"), searchBtn = document.getElementById(\"search\");\n"
    "var area = document.getElementById(\"frames\");\n"
    "var frames = [], byEl = new Map(), root = null, searching = false;\n"
    "var WIDE = [[0x1100, 0x115f], [0x2e80, 0xa4cf], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe30, 0xfe4f],\n"
    "            [0xff00, 0xff60], [0xffe0, 0xffe6], [0x1f300, 0x1faff], [0x20000, 0x3fffd]];\n"
    "function cells(ch) {\n"
    "    var cp = ch.codePointAt(0);\n"
    "    for (var i = 0; i < WIDE.length; i++)\n"
    "        if (cp >= WIDE[i][0] && cp <= WIDE[i][1]) return 2;\n"
    "    return 1;\n"
    "}\n"
    "/* The label cut to fit w pixels with an ellipsis, or \"\" when not even a few glyphs fit. */\n"
    "function fit(label, w) {\n"
    "    var room = Math.floor((w - 2 * tdx) / glyph);\n"
    "    if (!(room >= 3)) return \"\";\n"
    "    var chars = Array.from(label), used = 0, keep = 0;\n"
    "    for (var i = 0; i < chars.length; i++) {\n"
    "        used += cells(chars[i]);\n"
    "        if (used <= room - 1) keep = i + 1;\n"
    "        if (used > room) return chars.slice(0, keep).join(\"\") + \"\\u2026\";\n"
    "    }\n"
    "    return label;\n"
    "}\n"
    "function place(f, x, w) {\n"
    "    f.rect.setAttribute(\"x\", x.toFixed(2));\n"
    "    f.rect.setAttribute(\"width\", w.toFixed(2));\n"
    "    var s = fit(f.label, w);\n"
    "    if (s && !f.text) {\n"
    "        f.text = document.createElementNS(NS, \"text\");\n"
    "        f.text.setAttribute(\"y\", String(num(f.rect, \"y\") + tdy));\n"
    "        f.g.appendChild(f.text);\n"
    "    }\n"
    "    if (f.text) {\n"
    "        f.text.setAttribute(\"x\", (x + tdx).toFixed(2));\n"
    "        f.text.textContent = s;\n"
    "    }\n"
    "}\n"
    "function init() {\n"
    "    var gs = area.children;\n"
    "    for (var i = 0; i < gs.length; i++) {\n"
    "        var g = gs[i], rect = g.getElementsByTagName(\"rect\")[0];\n"
    "        var text = g.getElementsByTagName(\"text\")[0] || null;\n"
    "        var info = g.getElementsByTagName(\"title\")[0].textContent;\n"
    "        var f = {g: g, rect: rect, text: text, info: info,\n"
    "                 label: info.replace(/ \\([^()]*\\)$/, \"\"),\n"
    "                 o: num(g, \"data-o\"), n: num(g, \"data-n\"), d: num(g, \"data-d\"),\n"
    "                 fill: rect.getAttribute(\"fill\"), x: rect.getAttribute(\"x\"),\n"
    "                 w: rect.getAttribute(\"width\"), shown: text ? text.textContent : \"\",\n"
    "                 tx: text ? text.getAttribute(\"x\") : null};\n"
    "        frames.push(f);\n"
    "        byEl.set(g, f);\n"
    "        if (f.d === 0) root = f;\n"
    "    }\n"
    "}\n"
    "function unzoom() {\n"
    "    unzoomBtn.classList.add(\"hide\");\n"
    "    frames.forEach(function (f) {\n"
    "        f.g.classList.remove(\"hide\", \"parent\");\n"
    "        f.rect.setAttribute(\"x\", f.x);\n"
    "        f.rect.setAttribute(\"width\", f.w);\n"
    "        if (f.text) {\n"
    "            f.text.textContent = f.shown;\n"
    "            if (f.tx !== null) f.text.setAttribute(\"x\", f.tx);\n"
    "        }\n"
    "    });\n"
    "}\n"
    "/* z fills the width; its callees are laid out again, its callers dimmed, the rest hidden. */\n"
    "function zoom(z) {\n"
    "    if (z === root) { unzoom(); return; }\n"
    "    unzoomBtn.classList.remove(\"hide\");\n"
    "    var end = z.o + z.n;\n"
    "    frames.forEach(function (f) {\n"
    "        var cl = f.g.classList;\n"
    "        if (f.d >= z.d && f.o >= z.o && f.o + f.n <= end) {\n"
    "            cl.remove(\"hide\", \"parent\");\n"
    "            place(f, xpad + (f.o - z.o) / z.n * plotw, f.n / z.n * plotw);\n"
    "        } else if (f.d < z.d && f.o <= z.o && f.o + f.n >= end) {\n"
    "            cl.remove(\"hide\");\n"
    "            cl.add(\"parent\");\n"
    "            place(f, xpad, plotw);\n"
    "        } else {\n"
    "            cl.add(\"hide\");\n"
    "        }\n"
    "    });\n"
    "}\n"
    "function clearSearch() {\n"
    "    searching = false;\n"
    "    searchBtn.classList.remove(\"active\");\n"
    "    frames.forEach(function (f) { f.rect.setAttribute(\"fill\", f.fill); });\n"
    "    matched.textContent = \"\";\n"
    "}\n"
    "/* Highlights the frames whose label matches; counts each sample once, nested matches included. */\n"
    "function search(term) {\n"
    "    if (searching) clearSearch();\n"
    "    if (!term) return;\n"
    "    var re;\n"
    "    try {\n"
    "        re = new RegExp(term);\n"
    "    } catch (e) {\n"
    "        matched.textContent = \"Invalid regular expression\";\n"
    "        return;\n"
    "    }\n"
    "    var hits = frames.filter(function (f) { return re.test(f.label); });\n"
    "    hits.forEach(function (f) { f.rect.setAttribute(\"fill\", HIGHLIGHT); });\n"
    "    hits.sort(function (a, b) { return a.o - b.o || b.n - a.n; });\n"
    "    var covered = 0, end = -1;\n"
    "    hits.forEach(function (f) {\n"
    "        if (f.o >= end) { covered += f.n; end = f.o + f.n; }\n"
    "    });\n"
    "    searching = true;\n"
    "    searchBtn.classList.add(\"active\");\n"
    "    matched.textContent = \"Matched: \" + (total ? 100 * covered / total : 0).toFixed(2) + \"%\";\n"
    "}\n"
    "function frameOf(e) {\n"
    "    var g = e.target && e.target.closest ? e.target.closest(\"#frames > g\") : null;\n"
    "    return g ? byEl.get(g) : null;\n"
    "}\n"
    "area.addEventListener(\"click\", function (e) { var f = frameOf(e); if (f) zoom(f); });\n"
    "area.addEventListener(\"mouseover\", function (e) {\n"
    "    var f = frameOf(e);\n"
    "    details.textContent = f ? f.info : \"\";\n"
    "});\n"
    "area.addEventListener(\"mouseout\", function () { details.textContent = \"\"; });\n"
    "unzoomBtn.addEventListener(\"click\", unzoom);\n"
    "searchBtn.addEventListener(\"click\", function () {\n"
    "    if (searching) { clearSearch(); return; }\n"
    "    search(window.prompt(\"Search frames (JavaScript regular expression):\", \"\"));\n"
    "});\n"
    "window.addEventListener(\"keydown\", function (e) { if (e.key === \"Escape\") unzoom(); });\n"
    "init();\n"
    "try {\n"
    "    var s = new URLSearchParams(window.location.search).get(\"s\");\n"
    "    if (s) search(s);\n"
    "} catch (e) {}\n"
    "})();\n";

static double share(uint64_t count, uint64_t total)
{
    return total ? (double)count / (double)total : 0;
}

static double draw_delta(const struct writer *w, const struct draw *d)
{
    return share(d->count, w->total) - share(d->base, w->btotal);
}

static void put_subtitle(struct writer *w)
{
    const struct prof_meta *m = &w->p->meta;
    struct strbuf *sb = &w->sb;
    size_t start = sb->len;
    const char *sep = " \xc2\xb7 ";
    if (m->start_ns) {
        int64_t sec = m->start_ns / 1000000000;
        if (m->start_ns < 0 && m->start_ns % 1000000000)
            sec--;
        time_t tt = (time_t)sec;
        struct tm tm;
        char buf[64];
        if (gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
            sb_addf(sb, "started %s", buf);
    }
    if (m->duration_ns > 0)
        sb_addf(sb, "%s%.2f s", sb->len > start ? sep : "", (double)m->duration_ns / 1e9);
    if (m->rate > 0)
        sb_addf(sb, "%s%g Hz", sb->len > start ? sep : "", m->rate);
    if (m->mode) {
        sb_adds(sb, sb->len > start ? sep : "");
        sb_adds(sb, "mode ");
        xml_text(sb, m->mode);
    }
    sb_addf(sb, "%s%" PRIu64 " samples", sb->len > start ? sep : "", w->total);
    if (w->base)
        sb_addf(sb, " (base %" PRIu64 ")", w->btotal);
}

static void put_header(struct writer *w)
{
    struct strbuf *sb = &w->sb;
    int mid = w->width / 2, right = w->width - XPAD, bottom = w->height - 12;
    sb_adds(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
    sb_addf(sb,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" data-xpad=\"%d\" data-plotw=\"%d\" data-glyph=\"%g\" "
            "data-tdx=\"%d\" data-tdy=\"%d\" data-total=\"%" PRIu64 "\">\n",
            w->width, w->height, w->width, w->height, XPAD, (int)w->plotw, GLYPH_W, TEXT_DX, TEXT_DY,
            w->total);
    sb_addf(sb, "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n", style);
    sb_adds(sb, "<defs><linearGradient id=\"background\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
                "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%\"/>"
                "</linearGradient></defs>\n");
    sb_addf(sb, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"url(#background)\"/>\n",
            w->width, w->height);
    sb_addf(sb, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", mid);
    if (w->base)
        sb_adds(sb, "Differential flame graph: ");
    xml_text(sb, w->p->meta.title ? w->p->meta.title : "pystrobe flame graph");
    sb_adds(sb, "</text>\n");
    sb_addf(sb, "<text id=\"subtitle\" x=\"%d\" y=\"42\" text-anchor=\"middle\">", mid);
    put_subtitle(w);
    sb_adds(sb, "</text>\n");
    sb_addf(sb, "<text id=\"unzoom\" class=\"ctl hide\" x=\"%d\" y=\"24\">Reset zoom</text>\n", XPAD);
    sb_addf(sb, "<text id=\"search\" class=\"ctl\" x=\"%d\" y=\"24\" text-anchor=\"end\">Search</text>\n",
            right);
    sb_addf(sb, "<text id=\"details\" x=\"%d\" y=\"%d\"></text>\n", XPAD, bottom);
    sb_addf(sb, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"></text>\n", right, bottom);
    if (w->total == 0)
        sb_addf(sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">No samples</text>\n", mid,
                TOP_PAD + FRAME_H);
}

/* The frame's label, clean; a merged rectangle gets a description instead. */
static void draw_label(const struct writer *w, const struct draw *d, struct strbuf *out)
{
    if (d->node == 0) {
        sb_adds(out, "all");
    } else if (d->merged > 1) {
        sb_addf(out, "[%" PRIu32 " frames narrower than a pixel]", d->merged);
    } else {
        const struct prof_frame *f = &w->p->frames[w->t->nodes[d->node].frame];
        clean_text(f->label, out);
    }
}

static void put_stats(struct writer *w, const struct draw *d)
{
    struct strbuf *sb = &w->sb;
    double now = 100 * share(d->count, w->total);
    sb_addf(sb, " (%" PRIu64 " sample%s, ", d->count, d->count == 1 ? "" : "s");
    if (!w->base) {
        sb_addf(sb, "%.2f%%)", now);
        return;
    }
    double was = 100 * share(d->base, w->btotal), pp = now - was;
    /* "+0.00", never "-0.00", for a change too small to show. */
    if (pp > -0.005 && pp < 0.005)
        pp = 0;
    sb_addf(sb, "%.2f%% \xe2\x86\x92 %.2f%%, %+.2f pp)", was, now, pp);
}

static void put_draw(struct writer *w, const struct draw *d, struct strbuf *label)
{
    struct strbuf *sb = &w->sb;
    double x = XPAD + share(d->off, w->total) * w->plotw;
    double width = share(d->count, w->total) * w->plotw;
    int y = w->reverse ? TOP_PAD + (int)d->depth * FRAME_H
                       : w->height - BOTTOM_PAD - ((int)d->depth + 1) * FRAME_H;
    sb_reset(label);
    draw_label(w, d, label);
    sb_addf(sb, "<g data-o=\"%" PRIu64 "\" data-n=\"%" PRIu64 "\" data-d=\"%" PRIu32 "\"><title>", d->off,
            d->count, d->depth);
    xml_escape(sb, sb_str(label), label->len);
    put_stats(w, d);
    sb_addf(sb, "</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"", x, y, width,
            FRAME_H - 1);
    if (w->base)
        delta_color(sb, draw_delta(w, d), w->maxd);
    else if (d->node == 0)
        put_hsl(sb, 45, 0.35, 0.75);
    else if (d->merged > 1)
        put_hsl(sb, 0, 0, 0.86);
    else
        frame_color(sb, &w->p->frames[w->t->nodes[d->node].frame]);
    sb_adds(sb, "\"/>");
    int cut;
    size_t keep = fit_label(sb_str(label), label->len, width, &cut);
    if (keep || cut) {
        sb_addf(sb, "<text x=\"%.2f\" y=\"%d\">", x + TEXT_DX, y + TEXT_DY);
        xml_escape(sb, sb_str(label), keep);
        if (cut)
            sb_adds(sb, "\xe2\x80\xa6");
        sb_adds(sb, "</text>");
    }
    sb_adds(sb, "</g>\n");
}

/* The frames, then the script (last, so that it runs on a complete document). */
static void put_frames(struct writer *w, const struct layout *l)
{
    struct strbuf label = STRBUF_INIT;
    sb_adds(&w->sb, "<g id=\"frames\">\n");
    for (size_t i = 0; i < l->n; i++) {
        put_draw(w, &l->draws[i], &label);
        if (w->sb.len >= FLUSH_AT)
            w_flush(w);
    }
    sb_release(&label);
    sb_addf(&w->sb, "</g>\n<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n</svg>\n", script);
    w_flush(w);
}

int svg_write(FILE *f, const struct profile *p, const struct svg_opts *o)
{
    static const struct svg_opts defaults;
    if (!o)
        o = &defaults;
    struct writer w = {.f = f, .sb = STRBUF_INIT, .p = p, .base = o->base, .reverse = o->reverse};
    w.width = o->width > 0 ? o->width : DEFAULT_WIDTH;
    if (w.width < MIN_WIDTH)
        w.width = MIN_WIDTH;
    w.plotw = w.width - 2 * XPAD;

    struct tree t, bt = {0};
    tree_build(&t, p);
    w.t = &t;
    w.total = t.nodes[0].count;
    uint32_t *match = NULL;
    if (o->base) {
        tree_build(&bt, o->base);
        w.btotal = bt.nodes[0].count;
        match = tree_match(&t, &bt);
    }
    struct layout l;
    build_layout(&l, &t, o->base ? &bt : NULL, match, w.plotw);
    for (size_t i = 0; i < l.n; i++) {
        double d = dabs(draw_delta(&w, &l.draws[i]));
        if (o->base && d > w.maxd)
            w.maxd = d;
    }
    w.height = TOP_PAD + ((int)l.maxdepth + 1) * FRAME_H + BOTTOM_PAD;

    put_header(&w);
    put_frames(&w, &l);

    free(l.draws);
    free(match);
    if (o->base)
        tree_release(&bt);
    tree_release(&t);
    sb_release(&w.sb);
    if (!w.err) {
        errno = 0;
        if (fflush(f) != 0 || ferror(f))
            w.err = errno ? errno : EIO;
    }
    return w.err ? -w.err : 0;
}
