/* The collector's generation lists, walked for greenlets: see greenlet_gc.h. */
#include "profiler/cpython/greenlet_gc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profiler/cpython/pyrt.h"
#include "symbolizer/elfsym.h"

/* gc_generations: each a PyGC_Head, then int threshold, count. */
#define GC_GENERATIONS 3
/* Times one list walk reads pages again when they disagree (a quick look's only). */
#define GREENLET_REPAIRS 16
/* Types remembered as greenlet types or not (open addressing, no removal). */
#define TYPE_SLOTS 4096

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
static int follow_list(struct mem *m, const struct pylayout *l, uint64_t head, int backward,
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
        uint64_t next = buf_u64(buf, 0) & ~(uint64_t)3;
        uint64_t prev = buf_u64(buf, 8) & ~(uint64_t)3;
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
            uint64_t fresh = buf_u64(buf, backward ? 8 : 0) & ~(uint64_t)3;
            if (!fresh || ((fresh & 7) && fresh != head) || fresh == last)
                return -EAGAIN;
            node = fresh;
            continue;
        }
        if (node != head) {
            if (prev != last)
                return -EAGAIN;
            int g = is_greenlet_type(m, l, tm, buf_u64(buf, (int)hs + 8), gtype, st);
            if (g < 0)
                return g;
            if (g && *n < GREENLET_MAX) {
                GROW(*objs, *cap, *n + 1);
                (*objs)[(*n)++] = node + hs;
            }
            st->found += (uint64_t)g;
        }
        /* The head may be 4-aligned (Debian's 3.13: see generations_at); nodes are not. */
        if (next == head)
            return 0;
        if (!next || (next & 7))
            return -EAGAIN;
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
static int follow_generation(struct mem *m, const struct pylayout *l,
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
            ret = follow_list(m, l, head, 1, gtype, tm, pc, objs, n, cap, st);
            if (ret == -EAGAIN || ret == -ELOOP || ret == -EFAULT) {
                int fwd = follow_list(m, l, head, 0, gtype, tm, pc, objs, n, cap, st);
                if (fwd == 0 || fwd == -ESRCH)
                    ret = fwd;
            }
            /* Partial: what was found stays (each greenlet is checked before use). */
            return ret == -ELOOP || ret == -EFAULT ? -EAGAIN : ret;
        }
        *n = n0;
        ret = follow_list(m, l, head, 0, gtype, tm, pc, objs, n, cap, st);
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
            mark[g * 3 + i] = buf_u64(buf, (int)(g * gsz) + i * 8);
    return 0;
}

static int addr_order(const void *a, const void *b, void *ctx)
{
    const uint64_t *v = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (v[i] != v[j])
        return v[i] < v[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/*
 * Keeps the first of each object found more than once, in the order found:
 * a collection between the walks of two generations moves the survivors of
 * one into the next, and both walks see them.
 */
static void drop_repeats(uint64_t *objs, size_t *n)
{
    if (*n < 2)
        return;
    size_t *order = xmalloc(*n * sizeof(*order));
    unsigned char *drop = xcalloc(*n, 1);
    for (size_t i = 0; i < *n; i++)
        order[i] = i;
    /* Equal addresses sort by where they were found: the first stays. */
    qsort_r(order, *n, sizeof(*order), addr_order, objs);
    for (size_t k = 1; k < *n; k++)
        drop[order[k]] = objs[order[k]] == objs[order[k - 1]];
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++)
        if (!drop[i])
            objs[kept++] = objs[i];
    *n = kept;
    free(drop);
    free(order);
}

static int follow_lists(struct mem *m, const struct pylayout *l,
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
        int r = follow_generation(m, l, lists, g, gtype, attempts, tm, &pc, objs, n, &cap, st);
        if (r < 0 && ret == 0)
            ret = r;
        /* A quick look goes on to the other lists after a partial one. */
        if (r < 0 && (!quick || r == -ESRCH))
            break;
    }
    /* A quick look (a census) keeps its greenlets in an index that meets repeats anyway. */
    if (!quick)
        drop_repeats(*objs, n);
    st->reads += mem_read_calls(m) - calls;
    free(pc.data);
    free(tm);
    return ret;
}

int greenlet_gc_walk_lists(struct mem *m, const struct pylayout *l,
                           const struct greenlet_gc_lists *lists, uint64_t gtype,
                           uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    return follow_lists(m, l, lists, gtype, 0, GREENLET_LIST_ATTEMPTS, objs, n, st);
}

int greenlet_gc_walk_gens(struct mem *m, const struct pylayout *l,
                          const struct greenlet_gc_lists *lists, uint64_t gtype, int young_only,
                          int attempts, uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    return follow_lists(m, l, lists, gtype, young_only, attempts, objs, n, st);
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
    return follow_lists(m, l, &lists, gtype, 0, GREENLET_LIST_ATTEMPTS, objs, n, st);
}

/* ---- where they are ---- */

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

/*
 * Where the generations are, from the gc state's `generation0` (3.13: its
 * pointer to the first generation's head, after the three generations, at
 * the table's gc_state_generation0).  Debian's python3.13 (3.13.5 on, its
 * gchead-alignment patch) declares PyGC_Head aligned to 4, which on x86-64
 * lowers its alignment from 8: the generations then begin 20 bytes into the
 * state, not the 24 of the table (and of CPython's own builds).  The table's
 * place stays when generation0 points anywhere else.
 */
static uint64_t generations_at(struct pyrt *rt, uint64_t table_place)
{
    const struct pylayout *l = &rt->layout;
    if (l->gc_state_generation0 < 0 || l->gc_state_generations < 0 ||
        table_place < (uint64_t)l->gc_state_generations)
        return table_place;
    uint64_t state = table_place - (uint64_t)l->gc_state_generations, gen0 = 0;
    uint64_t ptr = (uint64_t)l->gc_state_generation0;
    uint64_t end = ptr - GC_GENERATIONS * (uint64_t)l->gc_generation_size;
    if (ptr < GC_GENERATIONS * (uint64_t)l->gc_generation_size ||
        mem_read_u64(rt->mem, state + ptr, &gen0) < 0 || (gen0 & 3) || gen0 < state + 8 ||
        gen0 > state + end)
        return table_place;
    return gen0;
}

int greenlet_gc_lists_of(struct pyrt *rt, uint64_t interp, struct greenlet_gc_lists *lists)
{
    const struct pylayout *l = &rt->layout;
    *lists = (struct greenlet_gc_lists){0};
    if (l->gc_head_size <= 0)
        return -ENOTSUP;
    if (l->is_gc_generations >= 0) {
        lists->generations = generations_at(rt, interp + (uint64_t)l->is_gc_generations);
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
