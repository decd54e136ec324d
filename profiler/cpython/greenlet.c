/* Greenlets seen from outside: see greenlet.h. */
#include "profiler/cpython/greenlet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The most of a thread's stack taken to be a main greenlet's own, above its stack_start. */
#define MAIN_STACK_MAX (1ull << 30)

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
    return off < 0 ? 0 : buf_u64(buf, off);
}

static void set_state(const struct greenlet_layout *gl, const unsigned char *p, struct greenlet *g)
{
    uint64_t start = buf_u64(p, gl->stack_start), stop = buf_u64(p, gl->stack_stop);
    g->main = stop == UINT64_MAX;
    g->stack_start = start;
    g->stack_stop = stop;
    g->stack_copy = buf_u64(p, gl->stack_copy);
    g->stack_saved = buf_u64(p, gl->stack_saved);
    g->top_frame = buf_u64(p, gl->top_frame);
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
        pimpls[i] = ok[i] ? buf_u64(heads + i * hlen, gl->pimpl) : 0;
    if (ret == 0)
        ret = read_batch(m, pimpls, n, plen, impls, ok);
    GROW(gs->v, gs->cap, gs->n + n);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        struct greenlet *g = &gs->v[gs->n++];
        *g = (struct greenlet){.obj = objs[i], .pimpl = pimpls[i], .state = GL_UNREADABLE,
                               .status = -EFAULT};
        g->type = buf_u64(heads + i * hlen, l->ob_type);
        const unsigned char *p = impls + i * plen;
        /* The implementation must point back at its object. */
        if (!ok[i] || buf_u64(p, gl->self) != objs[i])
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
