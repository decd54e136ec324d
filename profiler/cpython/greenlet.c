/* Greenlets seen from outside: see greenlet.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/pyobj.h"
#include "symbolizer/elfsym.h"

/* gc_generations: each a PyGC_Head, then int threshold, count. */
#define GC_GENERATIONS 3
/* Times one list walk reads pages again when they disagree (a quick look's only). */
#define GREENLET_REPAIRS 16
/* The most of a thread's stack taken to be a main greenlet's own, above its stack_start. */
#define MAIN_STACK_MAX (1ull << 30)
/* Types remembered as greenlet types or not (open addressing, no removal). */
#define TYPE_SLOTS 4096
/* Whole walks tried while the lists change under them. */
#define COLLECT_ATTEMPTS 3

/*
 * Measured by compiling each greenlet release's own sources with their
 * members made public, against each Python version's headers, and printing
 * offsetof() (see cpython-internals.md section 5.1).  One row holds the
 * consecutive releases whose offsets were all the same on that Python.
 */
#define GL(releases_, major_, minor_, pimpl_, self_, start_, stop_, copy_, saved_, top_,   \
           current_, chunk_, chunk_top_, prev_, size_)                                    \
    {.releases = releases_, .major = major_, .minor = minor_, .pimpl = pimpl_,            \
     .self = self_, .stack_start = start_, .stack_stop = stop_, .stack_copy = copy_,      \
     .stack_saved = saved_, .top_frame = top_, .current_frame = current_,                 \
     .datastack_chunk = chunk_, .datastack_top = chunk_top_, .prev_frame = prev_,         \
     .size = size_}
static const struct greenlet_layout layouts[] = {
    /* releases; Python, pimpl, self, stack start/stop/copy/saved, top_frame,
     * current_frame, datastack chunk/top, prev_frame, size */
    GL("2.0.0 2.0.1 2.0.2",
       2, 7, 32, 104, 48, 56, 64, 72, 88, -1, -1, -1, -1, 112),
    GL("2.0.0 2.0.1 2.0.2",
       3, 6, 32, 104, 48, 56, 64, 72, 88, -1, -1, -1, -1, 112),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 7, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 7, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 8, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 8, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 9, 32, 128, 64, 72, 80, 88, 112, -1, -1, -1, -1, 136),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2",
       3, 9, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 10, 32, 144, 64, 72, 80, 88, 112, -1, -1, -1, -1, 152),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 10, 32, 8, 72, 80, 88, 96, 120, -1, -1, -1, -1, 128),
    GL("2.0.0 2.0.1 2.0.2 3.0.0 3.0.1 3.0.2 3.0.3 3.1.0",
       3, 11, 32, 160, 48, 56, 64, 72, 96, 128, 136, 144, -1, 168),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 11, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.0.0 3.0.1 3.0.2",
       3, 12, 32, 168, 48, 56, 64, 72, 96, 128, 136, 144, 160, 176),
    GL("3.0.3 3.1.0",
       3, 12, 32, 160, 48, 56, 64, 72, 96, 128, 136, 144, -1, 168),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2 3.5.3",
       3, 12, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
    GL("3.1.0",
       3, 13, 32, 152, 48, 56, 64, 72, 96, 120, 128, 136, -1, 160),
    GL("3.1.1 3.2.0 3.2.1 3.2.2 3.2.3 3.2.4 3.2.5 3.3.0 3.3.1 3.3.2 3.4.0 3.5.0 3.5.1 3.5.2",
       3, 13, 32, 8, 56, 64, 72, 80, 104, 128, 136, 144, -1, 152),
    GL("3.5.3",
       3, 13, 32, 8, 56, 64, 72, 80, 104, 136, 144, 152, -1, 160),
};
#undef GL

/* 1 when the space-separated list has the word w. */
static int has_word(const char *list, const char *w)
{
    size_t len = strlen(w);
    if (strchr(w, ' '))
        return 0;
    for (const char *p = list; len && (p = strstr(p, w)); p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

const struct greenlet_layout *greenlet_layout_for(const char *version, int major, int minor)
{
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
        if (layouts[i].major == major && layouts[i].minor == minor &&
            has_word(layouts[i].releases, version))
            return &layouts[i];
    return NULL;
}

void greenlet_layout_known(int major, int minor, char *buf, size_t size)
{
    size_t len = 0;
    if (!size)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(layouts) && len < size; i++) {
        const struct greenlet_layout *gl = &layouts[i];
        if (gl->major != major || gl->minor != minor)
            continue;
        /* The first and last of the row's consecutive releases. */
        const char *last = strrchr(gl->releases, ' ');
        int first_len = (int)strcspn(gl->releases, " ");
        int w = snprintf(buf + len, size - len, "%s%.*s%s%s", len ? ", " : "", first_len,
                         gl->releases, last ? "-" : "", last ? last + 1 : "");
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}

const char *greenlet_state_name(enum greenlet_state st)
{
    switch (st) {
    case GL_PARKED: return "parked";
    case GL_RUNNING: return "running";
    case GL_NOT_STARTED: return "not started";
    case GL_DEAD: return "dead";
    default: return "unreadable";
    }
}

void greenlet_set_release(struct greenlet_set *gs)
{
    free(gs->v);
    free(gs->raw);
    walker_free(gs->walker);
    *gs = (struct greenlet_set){0};
}

static uint64_t get_u64(const unsigned char *buf, int off)
{
    uint64_t v;
    memcpy(&v, buf + off, sizeof(v));
    return v;
}

/* ---- the generation lists ---- */

struct type_memo {
    uint64_t key[TYPE_SLOTS];
    uint8_t match[TYPE_SLOTS];
};

/* 1 when type is gtype or derives from it, 0 when not, or a negative errno. */
static int derives(struct mem *m, const struct pylayout *l, uint64_t type, uint64_t gtype)
{
    for (int k = 0; k < GREENLET_MAX_BASES && type; k++) {
        if (type == gtype)
            return 1;
        if (type & 7)
            return 0;
        int ret = mem_read_u64(m, type + (uint64_t)l->tp_base, &type);
        if (ret < 0)
            return ret == -ESRCH ? ret : 0;
    }
    return 0;
}

static int is_greenlet_type(struct mem *m, const struct pylayout *l, struct type_memo *tm,
                            uint64_t type, uint64_t gtype, struct greenlet_stats *st)
{
    if (type == gtype)
        return 1;
    if (!type || (type & 7))
        return 0;
    size_t h = (size_t)((type >> 4) * 0x9E3779B97F4A7C15ull >> 52) % TYPE_SLOTS;
    for (size_t probe = 0; probe < TYPE_SLOTS; probe++, h = (h + 1) % TYPE_SLOTS) {
        if (tm->key[h] == type)
            return tm->match[h];
        if (tm->key[h] == 0)
            break;
    }
    int r = derives(m, l, type, gtype);
    st->types++;
    if (r < 0)
        return r;
    /* h is a free slot unless the table is full: then nothing is remembered. */
    if (tm->key[h] == 0) {
        tm->key[h] = type;
        tm->match[h] = (uint8_t)r;
    }
    return r;
}

/*
 * Pages of the target read whole during one walk of a list: objects that
 * were allocated together sit in the same pool and are often neighbours in
 * the list too, so one read serves many nodes.  Each list walk starts with
 * an empty cache, so no page is older than the walk that uses it.
 */
#define WALK_PAGES 256
#define WALK_PAGE 4096u

struct page_cache {
    uint64_t addr[WALK_PAGES];  /* the page in each slot, 0 when empty */
    unsigned char *data;        /* WALK_PAGES * WALK_PAGE bytes */
};

static int cached_read(struct mem *m, struct page_cache *pc, uint64_t addr, void *buf, size_t len)
{
    uint64_t page = addr & ~(uint64_t)(WALK_PAGE - 1);
    if (!pc || !page || (addr - page) + len > WALK_PAGE)
        return mem_read(m, addr, buf, len);
    size_t slot = (size_t)(page / WALK_PAGE) % WALK_PAGES;
    unsigned char *d = pc->data + slot * WALK_PAGE;
    if (pc->addr[slot] != page) {
        int ret = mem_read(m, page, d, WALK_PAGE);
        /* A page not all readable (a buffer or a core holds parts): read the node alone. */
        if (ret < 0) {
            pc->addr[slot] = 0;
            return ret == -ESRCH ? ret : mem_read(m, addr, buf, len);
        }
        pc->addr[slot] = page;
    }
    memcpy(buf, d + (addr - page), len);
    return 0;
}

/* One list: head is the PyGC_Head of a generation; from the tail back with backward. */
static int walk_list(struct mem *m, const struct pylayout *l, uint64_t head, int backward,
                     uint64_t gtype, struct type_memo *tm, struct page_cache *pc, uint64_t **objs,
                     size_t *n, size_t *cap, struct greenlet_stats *st)
{
    size_t hs = (size_t)l->gc_head_size;
    unsigned char buf[64];
    uint64_t node = head, last = 0, mark = head;
    size_t power = 1, lam = 0;
    int repairs = pc ? GREENLET_REPAIRS : 0;
    if (hs + 16 > sizeof(buf))
        return -EINVAL;
    for (;;) {
        /* The node's links, then the object's refcount and type in one read. */
        int ret = cached_read(m, pc, node, buf, hs + 16);
        if (ret < 0)
            return ret;
        uint64_t next = get_u64(buf, 0) & ~(uint64_t)3;
        uint64_t prev = get_u64(buf, 8) & ~(uint64_t)3;
        if (backward) {
            uint64_t t = next;
            next = prev;
            prev = t;
        }
        if (node != head && prev != last && repairs > 0 && last) {
            /*
             * Pages read at different times disagree: the list changed in
             * between (a neighbour freed).  Read again from the last node,
             * with every page fresh, and follow its link as it is now.  A
             * node moved to another list leads the walk around that one,
             * which ends at the loop check.
             */
            repairs--;
            st->repairs++;
            memset(pc->addr, 0, sizeof(pc->addr));
            if ((ret = cached_read(m, pc, last, buf, hs + 16)) < 0)
                return ret;
            uint64_t fresh = get_u64(buf, backward ? 8 : 0) & ~(uint64_t)3;
            if (!fresh || (fresh & 7) || fresh == last)
                return -EAGAIN;
            node = fresh;
            continue;
        }
        if (node != head) {
            if (prev != last)
                return -EAGAIN;
            int g = is_greenlet_type(m, l, tm, get_u64(buf, (int)hs + 8), gtype, st);
            if (g < 0)
                return g;
            if (g && *n < GREENLET_MAX) {
                GROW(*objs, *cap, *n + 1);
                (*objs)[(*n)++] = node + hs;
            }
            st->found += (uint64_t)g;
        }
        if (!next || (next & 7))
            return -EAGAIN;
        if (next == head)
            return 0;
        if (++st->objects > GREENLET_MAX_OBJECTS)
            return -ELOOP;
        last = node;
        node = next;
        /* Brent: a loop that misses the head is caught within twice its length. */
        if (node == mark)
            return -ELOOP;
        if (++lam == power) {
            mark = node;
            power *= 2;
            lam = 0;
        }
    }
}

/*
 * 1 while a collection runs: it moves whole lists and reuses the prev
 * links for reference counts, so no walk can succeed then.  0 when not, or
 * when the version's layout does not say; a negative errno.
 */
static int collecting(struct mem *m, const struct greenlet_gc_lists *lists)
{
    int32_t v = 0;
    if (!lists->collecting)
        return 0;
    int ret = mem_read(m, lists->collecting, &v, sizeof(v));
    return ret < 0 ? ret : v != 0;
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/*
 * One generation's list, walked again (after a pause) while it changes
 * under the walk.  A quick look (fewer attempts than GREENLET_LIST_ATTEMPTS:
 * a census) walks it once from each end instead, newest objects first, and
 * keeps what it found up to where each walk broke off: -EAGAIN then says
 * the list was not seen whole.
 */
static int walk_generation(struct mem *m, const struct pylayout *l,
                           const struct greenlet_gc_lists *lists, int g, uint64_t gtype,
                           int attempts, struct type_memo *tm, struct page_cache *pc,
                           uint64_t **objs, size_t *n, size_t *cap,
                           struct greenlet_stats *st)
{
    uint64_t head = lists->generations + (uint64_t)g * (uint64_t)l->gc_generation_size;
    size_t n0 = *n;
    int ret = -EBUSY, waits = 0;
    int quick = attempts < GREENLET_LIST_ATTEMPTS;
    /* A quick look does not wait for a collection at all. */
    int max_waits = quick ? 1 : GREENLET_COLLECT_WAITS;
    for (int attempt = 0; attempt < attempts;) {
        int c = collecting(m, lists);
        if (c < 0)
            return c;
        /* Waiting for a collection to end is no failed walk: it has its own bound. */
        if (c) {
            st->collecting++;
            ret = -EBUSY;
            if (++waits >= max_waits)
                break;
            pause_us(GREENLET_COLLECT_PAUSE_US);
            continue;
        }
        if (pc)
            memset(pc->addr, 0, sizeof(pc->addr));
        if (quick) {
            ret = walk_list(m, l, head, 1, gtype, tm, pc, objs, n, cap, st);
            if (ret == -EAGAIN || ret == -ELOOP || ret == -EFAULT) {
                int fwd = walk_list(m, l, head, 0, gtype, tm, pc, objs, n, cap, st);
                if (fwd == 0 || fwd == -ESRCH)
                    ret = fwd;
            }
            /* Partial: what was found stays (each greenlet is checked before use). */
            return ret == -ELOOP || ret == -EFAULT ? -EAGAIN : ret;
        }
        *n = n0;
        ret = walk_list(m, l, head, 0, gtype, tm, pc, objs, n, cap, st);
        if (ret != -EAGAIN && ret != -ELOOP && ret != -EFAULT)
            break;
        if (++attempt < attempts) {
            st->retries++;
            pause_us(GREENLET_RETRY_US);
        }
    }
    if (ret < 0)
        *n = n0;
    return ret;
}

int greenlet_young_mark(struct mem *m, const struct pylayout *l,
                        const struct greenlet_gc_lists *lists, uint64_t mark[GREENLET_YOUNG_MARK])
{
    /* Each generation: its head's two links, then threshold and count (the first 24 bytes). */
    unsigned char buf[GREENLET_YOUNG_GENS * 48];
    size_t gsz = (size_t)l->gc_generation_size;
    if (l->gc_head_size <= 0 || gsz < 24 || gsz > 48 || !lists->generations)
        return -ENOTSUP;
    int ret = mem_read(m, lists->generations, buf, GREENLET_YOUNG_GENS * gsz);
    if (ret < 0)
        return ret;
    for (int g = 0; g < GREENLET_YOUNG_GENS; g++)
        for (int i = 0; i < 3; i++)
            mark[g * 3 + i] = get_u64(buf, (int)(g * gsz) + i * 8);
    return 0;
}

static int walk_lists(struct mem *m, const struct pylayout *l,
                      const struct greenlet_gc_lists *lists, uint64_t gtype, int young_only,
                      int attempts, uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    if (l->gc_head_size <= 0 || l->gc_generation_size < l->gc_head_size || !lists->generations ||
        !gtype)
        return -ENOTSUP;
    struct type_memo *tm = xcalloc(1, sizeof(*tm));
    struct page_cache pc = {.data = xmalloc((size_t)WALK_PAGES * WALK_PAGE)};
    size_t cap = *n;
    uint64_t calls = mem_read_calls(m);
    int ret = 0;
    int quick = attempts < GREENLET_LIST_ATTEMPTS;
    for (int g = 0; g < (young_only ? GREENLET_YOUNG_GENS : GC_GENERATIONS); g++) {
        int r = walk_generation(m, l, lists, g, gtype, attempts, tm, &pc, objs, n, &cap, st);
        if (r < 0 && ret == 0)
            ret = r;
        /* A quick look goes on to the other lists after a partial one. */
        if (r < 0 && (!quick || r == -ESRCH))
            break;
    }
    st->reads += mem_read_calls(m) - calls;
    free(pc.data);
    free(tm);
    return ret;
}

int greenlet_gc_walk_lists(struct mem *m, const struct pylayout *l,
                           const struct greenlet_gc_lists *lists, uint64_t gtype,
                           uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    return walk_lists(m, l, lists, gtype, 0, GREENLET_LIST_ATTEMPTS, objs, n, st);
}

int greenlet_gc_walk_gens(struct mem *m, const struct pylayout *l,
                          const struct greenlet_gc_lists *lists, uint64_t gtype, int young_only,
                          int attempts, uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    return walk_lists(m, l, lists, gtype, young_only, attempts, objs, n, st);
}

int greenlet_gc_walk(struct mem *m, const struct pylayout *l, uint64_t interp, uint64_t gtype,
                     uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    if (l->is_gc_generations < 0)
        return -ENOTSUP;
    struct greenlet_gc_lists lists = {
        .generations = interp + (uint64_t)l->is_gc_generations,
        .collecting = l->is_gc_collecting < 0 ? 0 : interp + (uint64_t)l->is_gc_collecting,
    };
    return walk_lists(m, l, &lists, gtype, 0, GREENLET_LIST_ATTEMPTS, objs, n, st);
}

/* ---- one greenlet's stack ---- */

/* gs's walker of parked stacks over m, made anew for another m or l. */
static struct walker *set_walker(struct greenlet_set *gs, struct mem *m, const struct pylayout *l)
{
    if (gs->walker && (gs->walker_mem != m || gs->walker_layout != l)) {
        walker_free(gs->walker);
        gs->walker = NULL;
    }
    if (!gs->walker) {
        gs->walker = walker_new_parked(m, l);
        gs->walker_mem = m;
        gs->walker_layout = l;
    }
    return gs->walker;
}

/*
 * A parked greenlet's frames, walked as a thread's are (walk_parked): from
 * the frame it saved, through the data-stack chunks it saved (3.11+), with
 * its own C stack where its shims may be: [stack_start, stack_stop), or
 * for a main greenlet (stack_stop -1: its stack is its thread's) up to
 * MAIN_STACK_MAX above stack_start.
 */
static int stack_of(struct mem *m, const struct pylayout *l, struct greenlet_set *gs,
                    struct greenlet *g)
{
    uint64_t stop = g->stack_stop;
    if (stop == UINT64_MAX)
        stop = g->stack_start > UINT64_MAX - MAIN_STACK_MAX ? UINT64_MAX
                                                           : g->stack_start + MAIN_STACK_MAX;
    struct walk_parked p = {
        .frame = l->frames == FRAME_OBJECTS ? g->top_frame : g->current_frame,
        .chunk = g->chunk,
        .chunk_top = g->chunk_top,
        .cut_link = g->prev_frame,
        .cstack_lo = g->stack_start,
        .cstack_hi = stop,
        .spill = g->stack_copy,
        .spill_len = g->stack_saved,
    };
    GROW(gs->raw, gs->rawcap, gs->nraw + GREENLET_MAX_DEPTH);
    g->off = gs->nraw;
    int ret = walk_parked(set_walker(gs, m, l), &p, gs->raw + gs->nraw, GREENLET_MAX_DEPTH,
                          &g->depth);
    if (ret < 0)
        g->depth = 0;
    gs->nraw += g->depth;
    return ret;
}

/* ---- the greenlets ---- */

/* Reads n pieces of len bytes each at addrs[i] + at into bufs; ok[i] says which were read. */
static int read_batch(struct mem *m, const uint64_t *addrs, size_t n, size_t len,
                      unsigned char *bufs, int *ok)
{
    struct mem_iov *iov = xcalloc(n ? n : 1, sizeof(*iov));
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct mem_iov){.addr = addrs[i], .buf = bufs + i * len, .len = len};
    int ret = mem_readv(m, iov, n);
    for (size_t i = 0; i < n; i++)
        ok[i] = ret >= 0 && iov[i].ok && addrs[i] && !(addrs[i] & 7);
    free(iov);
    return ret < 0 ? ret : 0;
}

/* The field at off, or 0 where the layout has none (off < 0). */
static uint64_t opt_u64(const unsigned char *buf, int off)
{
    return off < 0 ? 0 : get_u64(buf, off);
}

static void set_state(const struct greenlet_layout *gl, const unsigned char *p, struct greenlet *g)
{
    uint64_t start = get_u64(p, gl->stack_start), stop = get_u64(p, gl->stack_stop);
    g->main = stop == UINT64_MAX;
    g->stack_start = start;
    g->stack_stop = stop;
    g->stack_copy = get_u64(p, gl->stack_copy);
    g->stack_saved = get_u64(p, gl->stack_saved);
    g->top_frame = get_u64(p, gl->top_frame);
    g->current_frame = opt_u64(p, gl->current_frame);
    g->chunk = opt_u64(p, gl->datastack_chunk);
    g->chunk_top = opt_u64(p, gl->datastack_top);
    g->prev_frame = opt_u64(p, gl->prev_frame);
    if (!stop)
        g->state = GL_NOT_STARTED;
    else if (!start)
        g->state = GL_DEAD;
    /* Resuming takes the saved top frame back: only a parked greenlet has one. */
    else if (!g->top_frame)
        g->state = GL_RUNNING;
    else
        g->state = GL_PARKED;
}

int greenlet_read(struct mem *m, const struct pylayout *l, const struct greenlet_layout *gl,
                  const uint64_t *objs, size_t n, struct greenlet_set *gs)
{
    uint64_t calls = mem_read_calls(m);
    size_t hlen = (size_t)gl->pimpl + 8, plen = (size_t)gl->size;
    unsigned char *heads = xmalloc((n ? n : 1) * hlen), *impls = xmalloc((n ? n : 1) * plen);
    uint64_t *pimpls = xcalloc(n ? n : 1, sizeof(*pimpls));
    int *ok = xcalloc(n ? n : 1, sizeof(*ok));
    int ret = read_batch(m, objs, n, hlen, heads, ok);
    for (size_t i = 0; ret == 0 && i < n; i++)
        pimpls[i] = ok[i] ? get_u64(heads + i * hlen, gl->pimpl) : 0;
    if (ret == 0)
        ret = read_batch(m, pimpls, n, plen, impls, ok);
    GROW(gs->v, gs->cap, gs->n + n);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        struct greenlet *g = &gs->v[gs->n++];
        *g = (struct greenlet){.obj = objs[i], .pimpl = pimpls[i], .state = GL_UNREADABLE,
                               .status = -EFAULT};
        g->type = get_u64(heads + i * hlen, l->ob_type);
        const unsigned char *p = impls + i * plen;
        /* The implementation must point back at its object. */
        if (!ok[i] || get_u64(p, gl->self) != objs[i])
            continue;
        set_state(gl, p, g);
        g->status = 0;
        if (g->state == GL_PARKED) {
            g->status = stack_of(m, l, gs, g);
            if (g->status == -ESRCH)
                ret = -ESRCH;
        }
    }
    free(heads);
    free(impls);
    free(pimpls);
    free(ok);
    gs->stats.reads += mem_read_calls(m) - calls;
    return ret;
}

void greenlet_parse(const struct greenlet_layout *gl, const unsigned char *impl,
                    struct greenlet *g)
{
    set_state(gl, impl, g);
}

int greenlet_parked_stack(struct mem *m, const struct pylayout *l, struct greenlet_set *gs,
                          struct greenlet *g)
{
    return stack_of(m, l, gs, g);
}

void greenlet_type_name(struct mem *m, const struct pylayout *l, uint64_t type,
                        char out[GREENLET_TYPE_NAME_MAX])
{
    unsigned char buf[GREENLET_TYPE_NAME_MAX];
    uint64_t name;
    out[0] = '\0';
    if (!type || (type & 7) || mem_read_u64(m, type + (uint64_t)l->tp_name, &name) < 0 || !name)
        return;
    /* A short name may end a mapping: shrink the read until it works. */
    for (size_t n = sizeof(buf); n >= 1; n /= 2) {
        if (mem_read(m, name, buf, n) < 0)
            continue;
        size_t len = strnlen((const char *)buf, n);
        if (len == 0 || len == n)
            return;
        for (size_t i = 0; i < len; i++)
            if (buf[i] <= ' ' || buf[i] >= 0x7f)
                return;
        memcpy(out, buf, len + 1);
        return;
    }
}

/* ---- the module in the target ---- */

/* 1 when the mapping is greenlet's extension module. */
static int is_greenlet_so(const char *path)
{
    const char *base = path_base(path);
    return !strncmp(base, "_greenlet.", 10) && strstr(base, ".so") != NULL;
}

/*
 * The release from the package's metadata: greenlet-X.Y.Z.{dist,egg}-info
 * in the directory that holds the greenlet package (as the target sees it).
 */
static int release_of(pid_t pid, const char *so, char *version, size_t size)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "/proc/%d/root%s", (int)pid, so);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return -ENOENT;
        *slash = '\0';
    }
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int ret = -ENOENT;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "greenlet-", 9) || !strstr(e->d_name, "-info"))
            continue;
        const char *v = e->d_name + 9;
        size_t len = strcspn(v, "-");
        if (len == 0 || len >= size)
            continue;
        memcpy(version, v, len);
        version[len] = '\0';
        /* "2.0.2.dist-info" has no dash before its suffix: cut at ".dist"/".egg". */
        char *dot = strstr(version, ".dist");
        if (!dot)
            dot = strstr(version, ".egg");
        if (dot)
            *dot = '\0';
        ret = 0;
        break;
    }
    closedir(d);
    return ret;
}

/* PyGreenlet_Type in the mapped .so r: its load bias from the mapping at file offset 0. */
static int type_address(struct pyrt *rt, const struct mem_region *r, uint64_t *gtype,
                        struct pserr *err)
{
    const struct mem_maps *maps = mem_maps(rt->mem);
    uint64_t map0 = 0, vaddr0 = 0, value = 0;
    for (size_t i = 0; i < maps->n; i++)
        if (!strcmp(maps->v[i].path, r->path) && maps->v[i].offset == 0) {
            map0 = maps->v[i].start;
            break;
        }
    int fd = mem_open_mapped(rt->mem, r);
    if (fd < 0)
        return pserr_set(err, -fd, "cannot open %s: %s", r->path, strerror(-fd));
    struct elf_file *ef;
    int ret = elf_open_fd(fd, &ef, err);
    if (ret < 0)
        return ret;
    if (!map0 || elf_base_vaddr(ef, &vaddr0) < 0 ||
        elf_symbol(ef, "PyGreenlet_Type", ELF_DYNSYM | ELF_SYMTAB, &value, NULL, NULL) < 0)
        ret = pserr_set(err, ENOENT, "%s has no PyGreenlet_Type symbol", r->path);
    else
        *gtype = map0 - vaddr0 + value;
    elf_close(ef);
    return ret;
}

/* The release from `__version__` in the dict of the target's greenlet package. */
static int release_from_module(struct pyrt *rt, char *version, size_t size)
{
    const struct pylayout *l = &rt->layout;
    uint64_t interp, modules, mod, dict, str;
    int ret;
    if ((ret = pyrt_interp(rt, &interp)) < 0 ||
        (ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_modules, &modules)) < 0 ||
        (ret = pydict_get_str(rt, modules, "greenlet", &mod)) < 0 ||
        (ret = mem_read_u64(rt->mem, mod + (uint64_t)l->md_dict, &dict)) < 0 ||
        (ret = pydict_get_str(rt, dict, "__version__", &str)) < 0)
        return ret;
    struct strbuf sb = STRBUF_INIT;
    ret = pyobj_str(rt, str, &sb);
    if (ret == 0 && (sb.len == 0 || sb.len >= size))
        ret = -EINVAL;
    if (ret == 0) {
        memcpy(version, sb.buf, sb.len);
        version[sb.len] = '\0';
    }
    sb_release(&sb);
    return ret;
}

int greenlet_find_module(struct pyrt *rt, uint64_t *gtype, const struct greenlet_layout **gl,
                         struct pserr *err)
{
    const struct mem_maps *maps = mem_maps(rt->mem);
    for (size_t i = 0; i < maps->n; i++) {
        const struct mem_region *r = &maps->v[i];
        if (!is_greenlet_so(r->path))
            continue;
        char version[32];
        if (release_of(rt->pid, r->path, version, sizeof(version)) < 0 &&
            release_from_module(rt, version, sizeof(version)) < 0)
            return pserr_set(err, ENOTSUP, "cannot tell the greenlet release of %s (no "
                             "greenlet-*-info beside its package, no greenlet.__version__)",
                             r->path);
        if (!(*gl = greenlet_layout_for(version, rt->major, rt->minor))) {
            char known[256];
            greenlet_layout_known(rt->major, rt->minor, known, sizeof(known));
            return pserr_set(err, ENOTSUP, "greenlet %s on Python %d.%d is not supported yet "
                             "(known there: %s)", version, rt->major, rt->minor, known);
        }
        return type_address(rt, r, gtype, err);
    }
    return pserr_set(err, ENOENT, "process %d has not loaded greenlet (no _greenlet module "
                     "mapped)", (int)rt->pid);
}

/*
 * The interpreter's statics (2.7, 3.6) from its .symtab, else from the
 * pointer it exports to them: 0, or a negative errno.
 */
static int static_gc_lists(struct pyrt *rt, struct greenlet_gc_lists *lists)
{
    const struct mem_maps *maps = mem_maps(rt->mem);
    const struct mem_region *r = NULL;
    for (size_t i = 0; i < maps->n && !r; i++)
        if (rt->binary && !strcmp(maps->v[i].path, rt->binary) && maps->v[i].offset == 0)
            r = &maps->v[i];
    if (!r)
        return -ENOENT;
    int fd = mem_open_mapped(rt->mem, r);
    if (fd < 0)
        return fd;
    struct elf_file *ef;
    struct pserr e;
    int ret = elf_open_fd(fd, &ef, &e);
    if (ret < 0)
        return ret;
    uint64_t v, size;
    const struct pylayout *l = &rt->layout;
    ret = elf_symbol(ef, "generations", ELF_SYMTAB, &v, &size, NULL);
    if (ret == 0 && size != (uint64_t)GC_GENERATIONS * (uint64_t)l->gc_generation_size)
        ret = -EINVAL;
    if (ret == 0) {
        lists->generations = v + rt->bias;
        if (elf_symbol(ef, "collecting", ELF_SYMTAB, &v, &size, NULL) == 0 && size == 4)
            lists->collecting = v + rt->bias;
    } else if (elf_symbol(ef, "_PyGC_generation0", ELF_DYNSYM | ELF_SYMTAB, &v, &size,
                          NULL) == 0 && size == 8) {
        /* A stripped build still exports the pointer to the first generation's head (its
         * start); when the collector's flag is not known, no walk waits for it. */
        uint64_t gen0 = 0;
        ret = mem_read_u64(rt->mem, v + rt->bias, &gen0);
        if (ret == 0 && (!gen0 || (gen0 & 7)))
            ret = -EINVAL;
        if (ret == 0)
            lists->generations = gen0;
    }
    elf_close(ef);
    return ret;
}

int greenlet_gc_lists_of(struct pyrt *rt, uint64_t interp, struct greenlet_gc_lists *lists)
{
    const struct pylayout *l = &rt->layout;
    *lists = (struct greenlet_gc_lists){0};
    if (l->gc_head_size <= 0)
        return -ENOTSUP;
    if (l->is_gc_generations >= 0) {
        lists->generations = interp + (uint64_t)l->is_gc_generations;
        if (l->is_gc_collecting >= 0)
            lists->collecting = interp + (uint64_t)l->is_gc_collecting;
        return 0;
    }
    if (l->rt_gc_generations >= 0) {
        if (!rt->runtime)
            return -ENOENT;
        lists->generations = rt->runtime + (uint64_t)l->rt_gc_generations;
        if (l->rt_gc_collecting >= 0)
            lists->collecting = rt->runtime + (uint64_t)l->rt_gc_collecting;
        return 0;
    }
    return static_gc_lists(rt, lists);
}

int greenlet_collect(struct pyrt *rt, uint64_t interp, struct greenlet_set *gs,
                     struct pserr *err)
{
    const struct pylayout *l = &rt->layout;
    const struct greenlet_layout *gl;
    uint64_t gtype;
    int ret;
    struct greenlet_gc_lists lists;
    if ((ret = greenlet_find_module(rt, &gtype, &gl, err)) < 0)
        return ret;
    if ((ret = greenlet_gc_lists_of(rt, interp, &lists)) < 0)
        return pserr_set(err, -ret, "cannot find the collector's object lists of Python %s "
                         "(on 2.7 and 3.6 they are found by the symbols generations or "
                         "_PyGC_generation0): %s", rt->version, strerror(-ret));
    uint64_t *objs = NULL;
    size_t n = 0;
    for (int attempt = 0; attempt < COLLECT_ATTEMPTS; attempt++) {
        n = 0;
        gs->stats = (struct greenlet_stats){0};
        ret = greenlet_gc_walk_lists(rt->mem, l, &lists, gtype, &objs, &n, &gs->stats);
        if (ret != -EAGAIN && ret != -EFAULT && ret != -ELOOP && ret != -EBUSY)
            break;
    }
    if (ret == 0)
        ret = greenlet_read(rt->mem, l, gl, objs, n, gs);
    free(objs);
    if (ret == -ESRCH)
        return pserr_set(err, ESRCH, "process %d exited while being read", (int)rt->pid);
    if (ret == -EAGAIN || ret == -ELOOP || ret == -EFAULT || ret == -EBUSY)
        return pserr_set(err, -ret, "the object lists of process %d changed under each of %d "
                         "walks (try again)", (int)rt->pid, COLLECT_ATTEMPTS);
    if (ret < 0)
        return pserr_set(err, -ret, "cannot walk the object lists of process %d: %s",
                         (int)rt->pid, strerror(-ret));
    return 0;
}
