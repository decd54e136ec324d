/* The stack walker: parked stacks (greenlets). */
#include "profiler/cpython/walk.h"

#include <errno.h>
#include <stdlib.h>

#include "profiler/cpython/walk_impl.h"

struct walker *walker_new_parked(struct mem *m, const struct pylayout *l)
{
    struct walker *w = xcalloc(1, sizeof(*w));
    w->own_rt = xcalloc(1, sizeof(*w->own_rt));
    w->own_rt->mem = m;
    w->own_rt->layout = *l;
    w->rt = w->own_rt;
    w->l = &w->own_rt->layout;
    w->tid_offset = -1;
    return w;
}

/*
 * <= 3.10: a parked stack's frame objects through f_back, each alive and
 * a frame (walk_take_frame_object), its code a pointer; nothing read ahead (a
 * parked stack does not move).
 */
static int parked_frame_objects(struct walker *w, uint64_t frame, struct rawframe *out, size_t max,
                                size_t *depth)
{
    const struct pylayout *l = w->l;
    unsigned char buf[160];
    size_t len = walk_frame_len(l), n = 0, power = 1, lam = 0;
    uint64_t mark = frame;
    int ret;
    if (len > sizeof(buf) || l->fo_back < 0)
        return -EINVAL;
    while (frame) {
        if (n >= max) {
            *depth = n;
            return 1;
        }
        if (frame & 7)
            return walk_set_torn(w, TORN_GARBAGE);
        if ((ret = mem_read(w->rt->mem, frame, buf, len)) < 0)
            return ret;
        w->stats.single_reads++;
        if ((ret = walk_take_frame_object(w, buf, &out[n])) < 0)
            return ret;
        if (out[n].code & 7)
            return walk_set_torn(w, TORN_GARBAGE);
        n++;
        frame = buf_u64(buf, l->fo_back);
        if (frame == mark) {
            w->torn = TORN_CYCLE;
            return -ELOOP;
        }
        if (++lam == power) {
            mark = frame;
            power *= 2;
            lam = 0;
        }
    }
    *depth = n;
    return 0;
}

int walk_parked(struct walker *w, const struct walk_parked *p, struct rawframe *out, size_t max,
                size_t *depth)
{
    *depth = 0;
    w->torn = TORN_NONE;
    if (w->l->frames == FRAME_OBJECTS)
        return parked_frame_objects(w, p->frame, out, max, depth);
    struct istack s = {.frame = p->frame, .chunk = p->chunk, .chunk_top = p->chunk_top, .p = p};
    int ret = walk_iframes(w, &s, out, max, depth);
    /* Many stacks are walked one after the other: big buffers go back at once. */
    for (size_t i = 0; i < MAX_CHUNKS; i++) {
        if (w->chunks[i].cap > PARKED_KEEP) {
            free(w->chunks[i].buf);
            w->chunks[i] = (struct chunk_copy){0};
        }
    }
    w->nchunks = 0;
    return ret;
}
