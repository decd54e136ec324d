/*
 * Greenlets from outside: the walk of the collector's lists over a fake
 * image (cycles, garbage, lists that change under the walk, type chains),
 * and the reading of each greenlet's state and parked stack.
 */
#include <errno.h>
#include <string.h>

#include "profiler/sampling/gcensus.h"
#include "profiler/cpython/greenlet.h"
#include "profiler/cpython/greenlet_gc.h"
#include "profiler/cpython/greenlet_layout.h"
#include "profiler/cpython/pyrt.h"
#include "test.h"

/* The fake image: a segment of objects, types and frames at BASE. */
#define BASE 0x100000ull
#define SIZE 0x40000u
#define INTERP (BASE + 0x100)
#define GENS (INTERP + 672)      /* 3.11's interp.gc.generations */
#define COLLECTING (INTERP + 848) /* and interp.gc.collecting */
#define TYPES (BASE + 0x1000)    /* 8 types of 0x200 bytes */
#define NODES (BASE + 0x4000)    /* 64 nodes of 0x80 bytes: PyGC_Head, then the object */
#define IMPLS (BASE + 0x8000)    /* 64 greenlet implementations of 0x100 bytes */
#define CHUNK (BASE + 0x10000)   /* a data-stack chunk */
#define CODE0 (BASE + 0x20000)   /* code objects (never read: only their addresses) */

struct fake {
    struct mem *m;
    const struct pylayout *l;
    const struct greenlet_layout *gl;
    unsigned char img[SIZE];
};

static void put64(struct fake *f, uint64_t addr, uint64_t v)
{
    memcpy(f->img + (addr - BASE), &v, 8);
}

static uint64_t type_at(int k)
{
    return TYPES + (uint64_t)k * 0x200;
}

static uint64_t node_at(int k)
{
    return NODES + (uint64_t)k * 0x80;
}

static uint64_t obj_at(int k)
{
    return node_at(k) + 16;
}

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->l = layout_for(3, 11);
    f->gl = greenlet_layout_for("2.0.2", 3, 11);
    REQUIRE(f->l->is_gc_generations == (int)(GENS - INTERP));
    REQUIRE(f->l->is_gc_collecting == (int)(COLLECTING - INTERP));
    /* type 0: the greenlet type; 1 derives from it, 2 from 1; 3 is another. */
    put64(f, type_at(1) + 256, type_at(0));
    put64(f, type_at(2) + 256, type_at(1));
    for (int g = 0; g < 3; g++) {
        uint64_t head = GENS + (uint64_t)g * 24;
        put64(f, head, head);
        put64(f, head + 8, head);
    }
}

/* Links nodes ks[0..n) into generation g, each object of type types[i]. */
static void fake_list(struct fake *f, int g, const int *ks, const int *types, int n)
{
    uint64_t head = GENS + (uint64_t)g * 24, prev = head;
    for (int i = 0; i < n; i++) {
        uint64_t node = node_at(ks[i]);
        put64(f, prev, node);
        put64(f, node + 8, prev);
        put64(f, node + 16, 1);
        put64(f, node + 24, type_at(types[i]));
        prev = node;
    }
    put64(f, prev, head);
    put64(f, head + 8, prev);
}

static void fake_map(struct fake *f)
{
    f->m = mem_new_buffer();
    REQUIRE(mem_buffer_add(f->m, BASE, f->img, SIZE) == 0);
}

static int fake_walk(struct fake *f, uint64_t **objs, size_t *n, struct greenlet_stats *st)
{
    *objs = NULL;
    *n = 0;
    *st = (struct greenlet_stats){0};
    return greenlet_gc_walk(f->m, f->l, INTERP, type_at(0), objs, n, st);
}

TEST(walk_finds_greenlets_and_subtypes_in_every_generation)
{
    static struct fake f;
    fake_init(&f);
    int k0[] = {0, 1, 2}, t0[] = {3, 0, 3};
    int k1[] = {3, 4}, t1[] = {2, 3};
    int k2[] = {5, 6, 7}, t2[] = {1, 3, 3};
    fake_list(&f, 0, k0, t0, 3);
    fake_list(&f, 1, k1, t1, 2);
    fake_list(&f, 2, k2, t2, 3);
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    CHECK_INT(fake_walk(&f, &objs, &n, &st), 0);
    REQUIRE(n == 3);
    CHECK_U64(objs[0], obj_at(1));
    CHECK_U64(objs[1], obj_at(3));
    CHECK_U64(objs[2], obj_at(5));
    CHECK_U64(st.objects, 8);
    CHECK_U64(st.found, 3);
    /* Types 1, 2 and 3 were looked up once each; type 0 needs no lookup. */
    CHECK_U64(st.types, 3);
    free(objs);
    mem_free(f.m);
}

TEST(walk_of_empty_lists)
{
    static struct fake f;
    fake_init(&f);
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    CHECK_INT(fake_walk(&f, &objs, &n, &st), 0);
    CHECK_INT((int)n, 0);
    CHECK_U64(st.objects, 0);
    /* Each generation: gc.collecting, then its head. */
    CHECK_U64(st.reads, 6);
    free(objs);
    mem_free(f.m);
}

TEST(walk_stops_at_a_cycle_that_misses_the_head)
{
    static struct fake f;
    fake_init(&f);
    int k[] = {0, 1, 2}, t[] = {0, 0, 0};
    fake_list(&f, 0, k, t, 3);
    /* 2 leads back to 1: the walk never returns to the head. */
    put64(&f, node_at(2), node_at(1));
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    CHECK_INT(fake_walk(&f, &objs, &n, &st), -EAGAIN);
    CHECK_U64(st.retries, GREENLET_LIST_ATTEMPTS - 1);
    CHECK(st.objects <= 4 * GREENLET_LIST_ATTEMPTS);
    free(objs);
    mem_free(f.m);
}

TEST(walk_stops_at_a_self_consistent_cycle)
{
    static struct fake f;
    fake_init(&f);
    int k[] = {0, 1}, t[] = {3, 3};
    fake_list(&f, 0, k, t, 2);
    /* 1 -> 0 -> 1 with matching prev links, entered from the head: */
    put64(&f, node_at(1), node_at(0));
    put64(&f, node_at(0) + 8, node_at(1));
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    /* 0's prev is not the head it was reached from. */
    CHECK_INT(fake_walk(&f, &objs, &n, &st), -EAGAIN);
    free(objs);
    mem_free(f.m);
}

TEST(walk_rejects_garbage_links)
{
    static const uint64_t bad[] = {0, 0xdead0000ull, NODES + 4, 0x7};
    static const int want[] = {-EAGAIN, -EFAULT, -EAGAIN, -EAGAIN};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        static struct fake f;
        fake_init(&f);
        int k[] = {0, 1}, t[] = {0, 3};
        fake_list(&f, 0, k, t, 2);
        put64(&f, node_at(1), bad[i]);
        fake_map(&f);
        uint64_t *objs;
        size_t n;
        struct greenlet_stats st;
        /* Low flag bits are masked: NODES + 4 is node 0 again, whose prev is the head. */
        CHECK_INT(fake_walk(&f, &objs, &n, &st), want[i]);
        free(objs);
        mem_free(f.m);
    }
}

TEST(walk_of_a_type_chain_with_a_cycle_is_bounded)
{
    static struct fake f;
    fake_init(&f);
    put64(&f, type_at(4) + 256, type_at(5));
    put64(&f, type_at(5) + 256, type_at(4));
    put64(&f, type_at(6) + 256, 0xdead0000ull);
    int k[] = {0, 1, 2}, t[] = {4, 6, 2};
    fake_list(&f, 0, k, t, 3);
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    CHECK_INT(fake_walk(&f, &objs, &n, &st), 0);
    REQUIRE(n == 1);
    CHECK_U64(objs[0], obj_at(2));
    free(objs);
    mem_free(f.m);
}

/* Unlinks node 2 (properly) after the given number of reads, as a deallocation does. */
struct unlink_at {
    uint64_t after;
    int done;
    int node;   /* the node moved by move_on_read */
};

static void unlink_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct unlink_at *u = ctx;
    if (u->done || calls < u->after)
        return;
    u->done = 1;
    uint64_t n1 = node_at(1), n3 = node_at(3);
    mem_buffer_write(m, n1, &n3, 8);
    mem_buffer_write(m, n3 + 8, &n1, 8);
}

/* Moves node u->node to another generation, as a collection does. */
static void move_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct unlink_at *u = ctx;
    if (u->done || calls < u->after)
        return;
    u->done = 1;
    uint64_t head1 = GENS + 24, n2 = node_at(u->node);
    mem_buffer_write(m, n2, &head1, 8);
    mem_buffer_write(m, n2 + 8, &head1, 8);
}

TEST(walk_of_a_list_that_changes_under_it)
{
    static struct fake f;
    fake_init(&f);
    int k[] = {0, 1, 2, 3, 4}, t[] = {0, 0, 0, 0, 0};
    fake_list(&f, 0, k, t, 5);
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    /* Unlinked ahead of the walk: the rest of the list is still consistent. */
    struct unlink_at u = {mem_read_calls(f.m) + 1, 0, 0};
    mem_buffer_on_read(f.m, unlink_on_read, &u);
    CHECK_INT(fake_walk(&f, &objs, &n, &st), 0);
    CHECK_INT((int)n, 4);
    free(objs);
    /* The walk reads whole pages: a list on one page is read at one
     * instant.  This one goes on to the next page (nodes 32 on), and node 33
     * moves once the first page was read: the walk follows node 1's link
     * to it, and its prev no longer names node 1. */
    int k2[] = {0, 1, 33, 34, 35};
    REQUIRE(node_at(32) % 4096 == 0);
    fake_list(&f, 0, k2, t, 5);
    mem_free(f.m);
    fake_map(&f);
    /* Reads: gc.collecting, the head's page, the first nodes' page. */
    u = (struct unlink_at){mem_read_calls(f.m) + 3, 0, 33};
    mem_buffer_on_read(f.m, move_on_read, &u);
    CHECK_INT(fake_walk(&f, &objs, &n, &st), -EAGAIN);
    /* What the broken walks found is dropped. */
    CHECK_INT((int)n, 0);
    free(objs);
    mem_free(f.m);
}

/* Ends the collection after the given number of reads. */
static void collected_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct unlink_at *u = ctx;
    if (u->done || calls < u->after)
        return;
    u->done = 1;
    int32_t zero = 0;
    mem_buffer_write(m, COLLECTING, &zero, sizeof(zero));
}

TEST(walk_waits_for_a_collection_to_end)
{
    static struct fake f;
    fake_init(&f);
    int k[] = {0, 1}, t[] = {0, 3};
    fake_list(&f, 1, k, t, 2);
    int32_t one = 1;
    memcpy(f.img + (COLLECTING - BASE), &one, sizeof(one));
    fake_map(&f);
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    /* Still collecting all along: no list is walked. */
    CHECK_INT(fake_walk(&f, &objs, &n, &st), -EBUSY);
    CHECK_U64(st.collecting, GREENLET_COLLECT_WAITS);
    CHECK_U64(st.objects, 0);
    free(objs);
    /* The collection ends after three looks. */
    struct unlink_at u = {mem_read_calls(f.m) + 3, 0, 0};
    mem_buffer_on_read(f.m, collected_on_read, &u);
    CHECK_INT(fake_walk(&f, &objs, &n, &st), 0);
    CHECK_U64(st.collecting, 3);
    CHECK_INT((int)n, 1);
    free(objs);
    mem_free(f.m);
}

/* A greenlet implementation at IMPLS + k*0x100 for the object obj_at(k). */
static uint64_t fake_impl(struct fake *f, int k, uint64_t start, uint64_t stop, uint64_t top_frame,
                          uint64_t current, uint64_t chunk, uint64_t chunk_top)
{
    uint64_t p = IMPLS + (uint64_t)k * 0x100;
    put64(f, obj_at(k) + (uint64_t)f->gl->pimpl, p);
    put64(f, p + (uint64_t)f->gl->self, obj_at(k));
    put64(f, p + (uint64_t)f->gl->stack_start, start);
    put64(f, p + (uint64_t)f->gl->stack_stop, stop);
    put64(f, p + (uint64_t)f->gl->top_frame, top_frame);
    /* <= 3.10 saves no interpreter frame and no data stack. */
    if (f->gl->current_frame >= 0) {
        put64(f, p + (uint64_t)f->gl->current_frame, current);
        put64(f, p + (uint64_t)f->gl->datastack_chunk, chunk);
        put64(f, p + (uint64_t)f->gl->datastack_top, chunk_top);
    }
    return p;
}

/* A 3.11 interpreter frame at addr: code, instruction (byte offset), caller. */
static void fake_frame(struct fake *f, uint64_t addr, uint64_t code, uint64_t off, uint64_t prev,
                       int owner)
{
    put64(f, addr + (uint64_t)f->l->if_code, code);
    put64(f, addr + (uint64_t)f->l->if_instr, code + (uint64_t)f->l->co_code_adaptive + off);
    put64(f, addr + (uint64_t)f->l->if_previous, prev);
    f->img[addr - BASE + (uint64_t)f->l->if_owner] = (unsigned char)owner;
}

TEST(read_states_and_a_parked_stack)
{
    static struct fake f;
    fake_init(&f);
    /* A parked greenlet: three frames in its chunk, innermost first. */
    uint64_t fr0 = CHUNK + 24, fr1 = fr0 + 80, fr2 = fr1 + 80, top = fr2 + 80;
    fake_frame(&f, fr0, CODE0, 0, 0, 0);
    fake_frame(&f, fr1, CODE0 + 0x100, 20, fr0, 0);
    fake_frame(&f, fr2, CODE0 + 0x200, 42, fr1, 0);
    fake_impl(&f, 0, 0x7000, 0x8000, 0x1234, fr2, CHUNK, top);
    fake_impl(&f, 1, 0, 0, 0, 0, 0, 0);                        /* not started */
    fake_impl(&f, 2, 0, 0x8000, 0, 0, 0, 0);                   /* dead */
    fake_impl(&f, 3, 1, UINT64_MAX, 0, 0, 0, 0);               /* main, running */
    fake_impl(&f, 4, 0x7000, 0x8000, 0x1234, fr2, CHUNK, top);
    put64(&f, IMPLS + 4 * 0x100 + (uint64_t)f.gl->self, obj_at(5)); /* not its own */
    fake_map(&f);
    uint64_t objs[] = {obj_at(0), obj_at(1), obj_at(2), obj_at(3), obj_at(4), 0xdead0000ull};
    struct greenlet_set gs = {0};
    uint64_t calls = mem_read_calls(f.m);
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, objs, ARRAY_SIZE(objs), &gs), 0);
    /* Heads in one batch, implementations in one, then the parked one's chunk. */
    CHECK_U64(mem_read_calls(f.m) - calls, 3);
    REQUIRE(gs.n == ARRAY_SIZE(objs));
    CHECK_INT(gs.v[0].state, GL_PARKED);
    CHECK_INT(gs.v[0].status, 0);
    REQUIRE(gs.v[0].depth == 3);
    CHECK_U64(gs.raw[gs.v[0].off].code, CODE0 + 0x200);
    CHECK_INT((int)gs.raw[gs.v[0].off].addrq, 42);
    CHECK_U64(gs.raw[gs.v[0].off + 2].code, CODE0);
    CHECK_INT((int)gs.raw[gs.v[0].off + 2].addrq, 0);
    CHECK_INT(gs.v[1].state, GL_NOT_STARTED);
    CHECK_INT(gs.v[2].state, GL_DEAD);
    CHECK_INT(gs.v[3].state, GL_RUNNING);
    CHECK_INT(gs.v[3].main, 1);
    CHECK_INT(gs.v[4].state, GL_UNREADABLE);
    CHECK_INT(gs.v[5].state, GL_UNREADABLE);
    CHECK_STR(greenlet_state_name(gs.v[1].state), "not started");
    greenlet_set_release(&gs);
    mem_free(f.m);
}

TEST(parked_stack_with_a_cycle_or_a_stale_frame)
{
    static struct fake f;
    fake_init(&f);
    uint64_t fr0 = CHUNK + 24, fr1 = fr0 + 80, top = fr1 + 80;
    fake_frame(&f, fr0, CODE0, 0, fr1, 0);
    fake_frame(&f, fr1, CODE0, 0, fr0, 0);
    fake_impl(&f, 0, 0x7000, 0x8000, 0x1234, fr1, CHUNK, top);
    /* Greenlet 1's caller is a thread-owned frame outside its chunk: stale. */
    uint64_t out = CHUNK + 0x1000;
    fake_frame(&f, out, CODE0, 0, 0, 0);
    fake_frame(&f, CHUNK + 0x2000 + 24, CODE0, 0, out, 0);
    put64(&f, CHUNK + 0x2000, 0); /* no older chunk */
    fake_impl(&f, 1, 0x7000, 0x8000, 0x1234, CHUNK + 0x2000 + 24, CHUNK + 0x2000,
              CHUNK + 0x2000 + 24 + 80);
    /* Greenlet 2's caller is a generator's frame, which lives outside the data stack. */
    fake_frame(&f, out + 0x100, CODE0 + 0x300, 6, 0, 1);
    fake_frame(&f, CHUNK + 0x3000 + 24, CODE0, 0, out + 0x100, 0);
    fake_impl(&f, 2, 0x7000, 0x8000, 0x1234, CHUNK + 0x3000 + 24, CHUNK + 0x3000,
              CHUNK + 0x3000 + 24 + 80);
    fake_map(&f);
    uint64_t objs[] = {obj_at(0), obj_at(1), obj_at(2)};
    struct greenlet_set gs = {0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, objs, 3, &gs), 0);
    REQUIRE(gs.n == 3);
    CHECK_INT(gs.v[0].status, -ELOOP);
    CHECK_INT((int)gs.v[0].depth, 0);
    CHECK_INT(gs.v[1].status, -EINVAL);
    CHECK_INT(gs.v[2].status, 0);
    REQUIRE(gs.v[2].depth == 2);
    CHECK_U64(gs.raw[gs.v[2].off + 1].code, CODE0 + 0x300);
    CHECK_INT((int)gs.raw[gs.v[2].off + 1].addrq, 6);
    greenlet_set_release(&gs);
    mem_free(f.m);
}

/*
 * A data-stack chunk at c of size bytes whose previous one is prev, holding n frames of
 * 80 bytes from data[skip] (a root chunk skips one slot), each calling the next (the
 * last calls `calls`).  Frame i runs code CODE0 + (first + i) * 0x100 at offset
 * 2 * (first + i).  Its header's top is the count of slots used, as CPython saves it.
 */
static uint64_t fake_chunk(struct fake *f, uint64_t c, uint64_t size, uint64_t prev, int skip,
                           int first, int n, uint64_t calls)
{
    uint64_t fr0 = c + 24 + 8 * (uint64_t)skip;
    put64(f, c, prev);
    put64(f, c + 8, size);
    put64(f, c + 16, (uint64_t)skip + 10 * (uint64_t)n);
    for (int i = 0; i < n; i++) {
        uint64_t fr = fr0 + 80 * (uint64_t)i, next = i + 1 < n ? fr + 80 : calls;
        fake_frame(f, fr, CODE0 + (uint64_t)(first + i) * 0x100, 2 * (uint64_t)(first + i), next,
                   0);
    }
    return fr0;
}

/*
 * A 3.11 greenlet parked deep: its frames in three data-stack chunks, apart and out of
 * address order.  An older chunk's header gives its top as a count of slots (not an
 * address): each older chunk is copied whole as the chain reaches it, as a thread's are.
 */
TEST(parked_stack_across_three_chunks)
{
    static struct fake f;
    fake_init(&f);
    uint64_t oldest = CHUNK + 0x4000, middle = CHUNK + 0x8000, newest = CHUNK;
    /* Frames 0-2 in the newest chunk, 3-5 in the middle one, 6-8 in the root chunk. */
    uint64_t f6 = fake_chunk(&f, oldest, 0x1000, 0, 1, 6, 3, 0);
    uint64_t f3 = fake_chunk(&f, middle, 0x1000, oldest, 0, 3, 3, f6);
    uint64_t f0 = fake_chunk(&f, newest, 0x1000, middle, 0, 0, 3, f3);
    fake_impl(&f, 0, 0x7000, 0x8000, 0x1234, f0, newest, newest + 24 + 3 * 80);
    fake_map(&f);
    uint64_t obj = obj_at(0);
    struct greenlet_set gs = {0};
    uint64_t calls = mem_read_calls(f.m);
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, &obj, 1, &gs), 0);
    /* Heads, implementations, the newest chunk, then each older one's header and bytes. */
    CHECK_U64(mem_read_calls(f.m) - calls, 7);
    REQUIRE(gs.n == 1);
    CHECK_INT(gs.v[0].status, 0);
    REQUIRE(gs.v[0].depth == 9);
    for (int i = 0; i < 9; i++) {
        CHECK_U64(gs.raw[gs.v[0].off + (size_t)i].code, CODE0 + (uint64_t)i * 0x100);
        CHECK_INT((int)gs.raw[gs.v[0].off + (size_t)i].addrq, 2 * i);
    }
    greenlet_set_release(&gs);
    mem_free(f.m);

    /* Each older chunk read whole up to its top, not beyond: with one slot too few in
     * the root chunk, its outermost frame is past its used part, no frame of the stack. */
    put64(&f, oldest + 16, 1 + 10 * 3 - 1);
    fake_map(&f);
    gs = (struct greenlet_set){0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, &obj, 1, &gs), 0);
    CHECK_INT(gs.v[0].status, -EINVAL);
    CHECK_INT((int)gs.v[0].depth, 0);
    greenlet_set_release(&gs);
    mem_free(f.m);

    /* A header that is no chunk's: a top past its size (the end's address, as if top
     * were one), or a size past any chunk's.  The walk stops there. */
    put64(&f, oldest + 16, 1 + 10 * 3);
    static const uint64_t bad[][2] = {{0x1000, 0x8000 + 24 + 3 * 80}, {0x1000, 0x1000 / 8},
                                      {1ull << 40, 30}, {8, 0}};
    for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
        put64(&f, middle + 8, bad[k][0]);
        put64(&f, middle + 16, k == 0 ? middle + 24 + 3 * 80 : bad[k][1]);
        fake_map(&f);
        gs = (struct greenlet_set){0};
        CHECK_INT(greenlet_read(f.m, f.l, f.gl, &obj, 1, &gs), 0);
        CHECK_INT(gs.v[0].status, -EINVAL);
        CHECK_INT((int)gs.v[0].depth, 0);
        greenlet_set_release(&gs);
        mem_free(f.m);
    }
}

/* Python major.minor with greenlet release: only for greenlet_read (no generation lists). */
static void fake_init_for(struct fake *f, int major, int minor, const char *release)
{
    memset(f, 0, sizeof(*f));
    f->l = layout_for(major, minor);
    f->gl = greenlet_layout_for(release, major, minor);
    REQUIRE(f->l != NULL && f->gl != NULL);
}

#define FRAMES (BASE + 0x30000)  /* <= 3.10 frame objects of 0x100 bytes */
#define FTYPE (BASE + 0x2f000)   /* their type */
#define STACK (BASE + 0x38000)   /* a parked greenlet's C stack: [STACK, STACK + 0x1000) */
#define SPILL (BASE + 0x3c000)   /* its first 0x200 bytes, copied to the heap */

/* A <= 3.10 frame object k: alive, of type FTYPE (named "frame", as PyFrame_Type is), with
 * code, f_lasti and f_back. */
static uint64_t fake_frame_object(struct fake *f, int k, uint64_t code, int32_t lasti, uint64_t back)
{
    uint64_t fo = FRAMES + (uint64_t)k * 0x100;
    put64(f, FTYPE + (uint64_t)f->l->tp_name, FTYPE + 0x80);
    memcpy(f->img + (FTYPE + 0x80 - BASE), "frame", 6);
    put64(f, fo, 1);
    put64(f, fo + (uint64_t)f->l->ob_type, FTYPE);
    put64(f, fo + (uint64_t)f->l->fo_code, code);
    put64(f, fo + (uint64_t)f->l->fo_back, back);
    memcpy(f->img + (fo - BASE) + f->l->fo_lasti, &lasti, 4);
    return fo;
}

TEST(frame_object_chains_on_3_9)
{
    static struct fake f;
    fake_init_for(&f, 3, 9, "2.0.2");
    CHECK_INT(f.gl->self, 128);
    CHECK_INT(f.gl->current_frame, -1);
    /* Greenlet 0: leaf <- mid <- worker, from the top frame it saved. */
    uint64_t w = fake_frame_object(&f, 2, CODE0 + 0x200, 10, 0);
    uint64_t m = fake_frame_object(&f, 1, CODE0 + 0x100, 8, w);
    uint64_t lf = fake_frame_object(&f, 0, CODE0, 6, m);
    fake_impl(&f, 0, 0x7000, 0x8000, lf, 0, 0, 0);
    /* 1: a cycle; 2: a freed frame behind the top one; 3: a frame of another type. */
    uint64_t c1 = fake_frame_object(&f, 4, CODE0, 0, 0);
    uint64_t c0 = fake_frame_object(&f, 3, CODE0, 0, c1);
    put64(&f, c1 + (uint64_t)f.l->fo_back, c0);
    fake_impl(&f, 1, 0x7000, 0x8000, c0, 0, 0, 0);
    uint64_t freed = fake_frame_object(&f, 5, CODE0, 0, 0);
    put64(&f, freed, 0);
    fake_impl(&f, 2, 0x7000, 0x8000, fake_frame_object(&f, 6, CODE0, 0, freed), 0, 0, 0);
    uint64_t other = fake_frame_object(&f, 7, CODE0, 0, 0);
    put64(&f, other + (uint64_t)f.l->ob_type, FTYPE + 0x100);
    fake_impl(&f, 3, 0x7000, 0x8000, fake_frame_object(&f, 8, CODE0, 0, other), 0, 0, 0);
    /* 4: the main greenlet, running; 5: not started, a frame that never ran. */
    fake_impl(&f, 4, 1, UINT64_MAX, 0, 0, 0, 0);
    fake_impl(&f, 5, 0, 0, 0, 0, 0, 0);
    fake_map(&f);
    uint64_t objs[] = {obj_at(0), obj_at(1), obj_at(2), obj_at(3), obj_at(4), obj_at(5)};
    struct greenlet_set gs = {0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, objs, ARRAY_SIZE(objs), &gs), 0);
    REQUIRE(gs.n == ARRAY_SIZE(objs));
    CHECK_INT(gs.v[0].state, GL_PARKED);
    CHECK_INT(gs.v[0].status, 0);
    REQUIRE(gs.v[0].depth == 3);
    CHECK_U64(gs.raw[gs.v[0].off].code, CODE0);
    CHECK_INT((int)gs.raw[gs.v[0].off].addrq, 6);
    CHECK_U64(gs.raw[gs.v[0].off + 1].code, CODE0 + 0x100);
    CHECK_INT((int)gs.raw[gs.v[0].off + 1].addrq, 8);
    CHECK_U64(gs.raw[gs.v[0].off + 2].code, CODE0 + 0x200);
    CHECK_INT((int)gs.raw[gs.v[0].off + 2].addrq, 10);
    CHECK_INT(gs.v[1].status, -ELOOP);
    CHECK_INT(gs.v[2].status, -EINVAL);
    CHECK_INT(gs.v[3].status, -EINVAL);
    CHECK_INT((int)(gs.v[1].depth + gs.v[2].depth + gs.v[3].depth), 0);
    CHECK_INT(gs.v[4].state, GL_RUNNING);
    CHECK_INT(gs.v[4].main, 1);
    CHECK_INT(gs.v[5].state, GL_NOT_STARTED);
    greenlet_set_release(&gs);
    mem_free(f.m);
}

TEST(frame_objects_on_3_10_count_code_units_and_2_7_bytes)
{
    static struct fake f;
    fake_init_for(&f, 3, 10, "2.0.2");
    uint64_t outer = fake_frame_object(&f, 1, CODE0 + 0x100, -1, 0);
    fake_impl(&f, 0, 0x7000, 0x8000, fake_frame_object(&f, 0, CODE0, 7, outer), 0, 0, 0);
    fake_map(&f);
    uint64_t obj = obj_at(0);
    struct greenlet_set gs = {0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, &obj, 1, &gs), 0);
    REQUIRE(gs.n == 1 && gs.v[0].depth == 2);
    CHECK_INT((int)gs.raw[0].addrq, 14);
    CHECK_INT((int)gs.raw[1].addrq, -1);
    greenlet_set_release(&gs);
    mem_free(f.m);

    fake_init_for(&f, 2, 7, "2.0.1");
    CHECK_INT(f.gl->self, 104);
    fake_impl(&f, 0, 0x7000, 0x8000, fake_frame_object(&f, 0, CODE0, 7, 0), 0, 0, 0);
    fake_map(&f);
    gs = (struct greenlet_set){0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, &obj, 1, &gs), 0);
    REQUIRE(gs.n == 1 && gs.v[0].depth == 1);
    CHECK_INT((int)gs.raw[0].addrq, 7);
    greenlet_set_release(&gs);
    mem_free(f.m);
}

/* Links nodes ks[0..n) into the generation at head, each PyGC_Head of hs bytes. */
static void fake_list_old(struct fake *f, uint64_t head, uint64_t hs, const int *ks, int n)
{
    uint64_t prev = head;
    for (int i = 0; i < n; i++) {
        uint64_t node = node_at(ks[i]);
        put64(f, prev, node);
        put64(f, node + 8, prev);
        put64(f, node + hs, 1);
        put64(f, node + hs + 8, type_at(i % 2 ? 3 : 1));
        prev = node;
    }
    put64(f, prev, head);
    put64(f, head + 8, prev);
}

TEST(generation_lists_with_32_byte_heads)
{
    /* 2.7: statics of 40-byte generations; 3.6/3.7: 48 bytes, 3.8: 24 (16-byte heads). */
    static const struct {
        int major, minor, hs, stride;
    } v[] = {{2, 7, 32, 40}, {3, 6, 32, 48}, {3, 7, 32, 48}, {3, 8, 16, 24}};
    static struct fake f;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        memset(&f, 0, sizeof(f));
        f.l = layout_for(v[i].major, v[i].minor);
        REQUIRE(f.l != NULL);
        CHECK_INT(f.l->gc_head_size, v[i].hs);
        CHECK_INT(f.l->gc_generation_size, v[i].stride);
        put64(&f, type_at(1) + 256, type_at(0));
        struct greenlet_gc_lists lists = {.generations = INTERP, .collecting = INTERP + 0x200};
        int ks[3][2] = {{0, 1}, {2, 3}, {4, 5}};
        for (int g = 0; g < 3; g++)
            fake_list_old(&f, INTERP + (uint64_t)(g * v[i].stride), (uint64_t)v[i].hs, ks[g], 2);
        fake_map(&f);
        uint64_t *objs = NULL;
        size_t n = 0;
        struct greenlet_stats st = {0};
        CHECK_INT(greenlet_gc_walk_lists(f.m, f.l, &lists, type_at(0), &objs, &n, &st), 0);
        REQUIRE(n == 3);
        for (int g = 0; g < 3; g++)
            CHECK_U64(objs[g], node_at(2 * g) + (uint64_t)v[i].hs);
        CHECK_U64(st.objects, 6);
        free(objs);
        /* A collection running all along: nothing is walked. */
        int32_t one = 1;
        memcpy(f.img + 0x100 + 0x200, &one, 4);
        mem_free(f.m);
        fake_map(&f);
        objs = NULL;
        n = 0;
        CHECK_INT(greenlet_gc_walk_lists(f.m, f.l, &lists, type_at(0), &objs, &n, &st), -EBUSY);
        free(objs);
        mem_free(f.m);
    }
}

/*
 * 3.13: the generations are where the gc state's generation0 points: 24 bytes into
 * the state in CPython's builds, 20 in Debian's (PyGC_Head aligned to 4, the heads
 * 4-aligned); a generation0 pointing elsewhere leaves the table's place.
 */
TEST(generations_of_3_13_where_generation0_points)
{
    static struct fake f;
    static struct pyrt rt;
    const struct pylayout *l = layout_for(3, 13);
    REQUIRE(l != NULL && l->gc_state_generations == 24 && l->gc_generation_size == 24);
    for (int v = 0; v < 3; v++) {
        memset(&f, 0, sizeof(f));
        f.l = l;
        put64(&f, type_at(1) + 256, type_at(0));
        uint64_t state = BASE + 0x3000, at = v == 1 ? 20 : 24;
        uint64_t interp = state + 24 - (uint64_t)l->is_gc_generations;
        int ks[3][2] = {{0, 1}, {2, 3}, {4, 5}};
        for (int g = 0; g < 3; g++)
            fake_list_old(&f, state + at + (uint64_t)g * 24, 16, ks[g], 2);
        put64(&f, state + 96, v == 2 ? state + 0x1000 : state + at);
        fake_map(&f);
        memset(&rt, 0, sizeof(rt));
        rt.mem = f.m;
        rt.layout = *l;
        rt.major = 3;
        rt.minor = 13;
        struct greenlet_gc_lists lists;
        CHECK_INT(greenlet_gc_lists_of(&rt, interp, &lists), 0);
        CHECK_U64(lists.generations, state + at);
        uint64_t *objs = NULL;
        size_t n = 0;
        struct greenlet_stats st = {0};
        CHECK_INT(greenlet_gc_walk_lists(f.m, f.l, &lists, type_at(0), &objs, &n, &st), 0);
        REQUIRE(n == 3);
        for (int g = 0; g < 3; g++)
            CHECK_U64(objs[g], node_at(2 * g) + 16);
        CHECK_U64(st.objects, 6);
        free(objs);
        mem_free(f.m);
    }
}

/* A 3.12+ greenlet 3.0.2 chain: the top frame's link cut and kept in _prev_frame,
 * and a C-stack shim frame whose memory another greenlet's stack now holds. */
TEST(greenlet_3_0_2_prev_frame_and_a_shim_in_the_spilled_stack)
{
    static struct fake f;
    fake_init_for(&f, 3, 12, "3.0.2");
    CHECK_INT(f.gl->prev_frame, 160);
    uint64_t leaf = CHUNK + 24, mid = leaf + 80, worker = mid + 80, top = worker + 80;
    uint64_t shim = STACK + 0x40;
    fake_frame(&f, leaf, CODE0, 6, 0, 0);           /* link cut at switch-away */
    fake_frame(&f, mid, CODE0 + 0x100, 8, worker, 0);
    fake_frame(&f, worker, CODE0 + 0x200, 10, shim, 0);
    /* In place: another greenlet's bytes (a thread frame, a wild link). */
    fake_frame(&f, shim, CODE0 + 0x300, 0, 0xdeadbeef0ull, 0);
    /* The copy greenlet keeps of its stack: the real shim, the end of the chain. */
    fake_frame(&f, SPILL + 0x40, CODE0 + 0x300, 0, 0, 3);
    uint64_t p = fake_impl(&f, 0, STACK, STACK + 0x1000, 0x1234, leaf, CHUNK, top);
    put64(&f, p + (uint64_t)f.gl->stack_copy, SPILL);
    put64(&f, p + (uint64_t)f.gl->stack_saved, 0x200);
    put64(&f, p + (uint64_t)f.gl->prev_frame, mid);
    /* Greenlet 1: the same chain, but nothing spilled: the shim read in place is stale. */
    p = fake_impl(&f, 1, STACK, STACK + 0x1000, 0x1234, leaf, CHUNK, top);
    put64(&f, p + (uint64_t)f.gl->prev_frame, mid);
    /* Greenlet 2: a real shim, but on no stack of its own. */
    fake_frame(&f, CHUNK + 0x1000, CODE0 + 0x300, 0, 0, 3);
    fake_frame(&f, CHUNK + 0x2000 + 24, CODE0, 6, CHUNK + 0x1000, 0);
    fake_impl(&f, 2, STACK, STACK + 0x1000, 0x1234, CHUNK + 0x2000 + 24, CHUNK + 0x2000,
              CHUNK + 0x2000 + 24 + 80);
    /* Greenlet 3: a parked main greenlet, whose stack is its thread's: the shim at the
     * bottom is in place, above where it switched away. */
    fake_frame(&f, STACK + 0x800, CODE0 + 0x300, 0, 0, 3);
    fake_frame(&f, CHUNK + 0x3000 + 24, CODE0 + 0x400, 4, 0, 0);
    fake_frame(&f, CHUNK + 0x3000 + 24 + 80, CODE0 + 0x500, 6, STACK + 0x800, 0);
    p = fake_impl(&f, 3, STACK + 0x400, UINT64_MAX, 0x1234, CHUNK + 0x3000 + 24, CHUNK + 0x3000,
                  CHUNK + 0x3000 + 24 + 160);
    put64(&f, p + (uint64_t)f.gl->prev_frame, CHUNK + 0x3000 + 24 + 80);
    /* Greenlet 4: the same, but the shim below where it switched away: stale. */
    p = fake_impl(&f, 4, STACK + 0x900, UINT64_MAX, 0x1234, CHUNK + 0x3000 + 24, CHUNK + 0x3000,
                  CHUNK + 0x3000 + 24 + 160);
    put64(&f, p + (uint64_t)f.gl->prev_frame, CHUNK + 0x3000 + 24 + 80);
    fake_map(&f);
    uint64_t objs[] = {obj_at(0), obj_at(1), obj_at(2), obj_at(3), obj_at(4)};
    struct greenlet_set gs = {0};
    CHECK_INT(greenlet_read(f.m, f.l, f.gl, objs, 5, &gs), 0);
    REQUIRE(gs.n == 5);
    CHECK_INT(gs.v[3].main, 1);
    CHECK_INT(gs.v[3].state, GL_PARKED);
    CHECK_INT(gs.v[3].status, 0);
    REQUIRE(gs.v[3].depth == 2);
    CHECK_U64(gs.raw[gs.v[3].off + 1].code, CODE0 + 0x500);
    CHECK_INT(gs.v[4].status, -EINVAL);
    CHECK_INT(gs.v[0].status, 0);
    REQUIRE(gs.v[0].depth == 3);
    CHECK_U64(gs.raw[gs.v[0].off].code, CODE0);
    CHECK_U64(gs.raw[gs.v[0].off + 1].code, CODE0 + 0x100);
    CHECK_U64(gs.raw[gs.v[0].off + 2].code, CODE0 + 0x200);
    CHECK_INT((int)gs.raw[gs.v[0].off + 2].addrq, 10);
    CHECK_INT(gs.v[1].status, -EINVAL);
    CHECK_INT(gs.v[2].status, -EINVAL);
    greenlet_set_release(&gs);
    mem_free(f.m);
}

/* greenlet 3.1.1+ keeps _self in the base class, and 3.0.3+ shows only whole frames. */
TEST(greenlet_3_5_3_on_3_12_and_3_13)
{
    static struct fake f;
    for (int minor = 12; minor <= 13; minor++) {
        fake_init_for(&f, 3, minor, "3.5.3");
        CHECK_INT(f.gl->self, 8);
        CHECK_INT(f.gl->current_frame, 136);
        uint64_t leaf = CHUNK + 24, worker = leaf + 80, top = worker + 80;
        fake_frame(&f, leaf, CODE0, 6, worker, 0);
        fake_frame(&f, worker, CODE0 + 0x100, 10, 0, 0);
        fake_impl(&f, 0, STACK, STACK + 0x1000, 0x1234, worker, CHUNK, top);
        fake_impl(&f, 1, STACK, STACK + 0x1000, 0x1234, leaf, CHUNK, top);
        fake_impl(&f, 2, 1, UINT64_MAX, 0, 0, 0, 0);
        fake_impl(&f, 3, 0, 0x8000, 0, 0, 0, 0);
        fake_map(&f);
        uint64_t objs[] = {obj_at(0), obj_at(1), obj_at(2), obj_at(3)};
        struct greenlet_set gs = {0};
        CHECK_INT(greenlet_read(f.m, f.l, f.gl, objs, 4, &gs), 0);
        REQUIRE(gs.n == 4);
        CHECK_INT((int)gs.v[0].depth, 1);
        REQUIRE(gs.v[1].depth == 2);
        CHECK_U64(gs.raw[gs.v[1].off + 1].code, CODE0 + 0x100);
        CHECK_INT((int)gs.raw[gs.v[1].off + 1].addrq, 10);
        CHECK_INT(gs.v[2].state, GL_RUNNING);
        CHECK_INT(gs.v[2].main, 1);
        CHECK_INT(gs.v[3].state, GL_DEAD);
        greenlet_set_release(&gs);
        mem_free(f.m);
    }
}

TEST(layouts_by_release_and_python)
{
    for (int minor = 6; minor <= 11; minor++)
        CHECK(greenlet_layout_for("2.0.2", 3, minor) != NULL);
    CHECK(greenlet_layout_for("2.0.2", 2, 7) != NULL);
    CHECK(greenlet_layout_for("2.0.2", 3, 12) == NULL);
    CHECK(greenlet_layout_for("3.0.0", 3, 13) == NULL);
    CHECK_INT(greenlet_layout_for("3.0.1", 3, 12)->prev_frame, 160);
    CHECK_INT(greenlet_layout_for("3.0.3", 3, 12)->prev_frame, -1);
    CHECK_INT(greenlet_layout_for("3.1.1", 3, 13)->current_frame, 128);
    CHECK_INT(greenlet_layout_for("3.5.3", 3, 13)->current_frame, 136);
    CHECK_INT(greenlet_layout_for("3.0.2", 3, 11)->self, 160);
    CHECK(greenlet_layout_for("3.0.0rc1", 3, 12) == NULL);
    /* Only releases measured: none between or after them, no part or run of words. */
    CHECK(greenlet_layout_for("2.0.99", 3, 9) == NULL);
    CHECK(greenlet_layout_for("3.2.6", 3, 12) == NULL);
    CHECK(greenlet_layout_for("2.0", 3, 9) == NULL);
    CHECK(greenlet_layout_for("0.0", 3, 9) == NULL);
    CHECK(greenlet_layout_for("2.0.0 2.0.1", 3, 9) == NULL);
    CHECK(greenlet_layout_for("3.1.0", 3, 9) != NULL);
    CHECK(greenlet_layout_for("3.9.0", 3, 12) == NULL);
    CHECK(greenlet_layout_for("", 3, 11) == NULL);
    CHECK(greenlet_layout_for("2.0.2", 3, 5) == NULL);
    /* 3.14 and 3.15: from 3.2.2 (3.2.0 and 3.2.1 do not compile there); PythonState grew
     * current_executor in 3.2.4, stackpointer in 3.3.0, critical_section in 3.5.3. */
    for (int minor = 14; minor <= 15; minor++) {
        CHECK(greenlet_layout_for("3.2.1", 3, minor) == NULL);
        CHECK(greenlet_layout_for("3.1.1", 3, minor) == NULL);
        CHECK(greenlet_layout_for("2.0.2", 3, minor) == NULL);
        CHECK_INT(greenlet_layout_for("3.2.2", 3, minor)->current_frame, 128);
        CHECK_INT(greenlet_layout_for("3.2.4", 3, minor)->current_frame, 136);
        CHECK_INT(greenlet_layout_for("3.2.5", 3, minor)->current_frame, 136);
        const struct greenlet_layout *gl = greenlet_layout_for("3.3.2", 3, minor);
        REQUIRE(gl != NULL);
        CHECK_INT(gl->self, 8);
        CHECK_INT(gl->stack_start, 56);
        CHECK_INT(gl->top_frame, 104);
        CHECK_INT(gl->current_frame, 144);
        CHECK_INT(gl->datastack_chunk, 152);
        CHECK_INT(gl->datastack_top, 160);
        CHECK_INT(gl->prev_frame, -1);
        CHECK_INT(greenlet_layout_for("3.5.2", 3, minor)->current_frame, 144);
        CHECK_INT(greenlet_layout_for("3.5.3", 3, minor)->current_frame, 152);
        CHECK(greenlet_layout_for("3.5.4", 3, minor) == NULL);
    }
    CHECK(greenlet_layout_for("3.3.2", 3, 16) == NULL);
    char known[256];
    greenlet_layout_known(3, 12, known, sizeof(known));
    CHECK_STR(known, "3.0.0-3.0.2, 3.0.3-3.1.0, 3.1.1-3.5.3");
    greenlet_layout_known(3, 14, known, sizeof(known));
    CHECK_STR(known, "3.2.2-3.2.3, 3.2.4-3.2.5, 3.3.0-3.5.2, 3.5.3");
    greenlet_layout_known(3, 15, known, sizeof(known));
    CHECK_STR(known, "3.2.2-3.2.3, 3.2.4-3.2.5, 3.3.0-3.5.2, 3.5.3");
    greenlet_layout_known(3, 5, known, sizeof(known));
    CHECK_STR(known, "none");
}

/*
 * Every row the table has, for every release: what greenlet_read takes from the
 * implementation lies within the bytes it reads, 8-aligned and apart; 3.11+ rows have
 * the interpreter-frame fields and older ones none; _prev_frame only for 3.12.
 */
TEST(every_layout_is_read_whole)
{
    static const char *const releases[] = {
        "2.0.0", "2.0.1", "2.0.2", "3.0.0", "3.0.1", "3.0.2", "3.0.3", "3.1.0", "3.1.1",
        "3.2.0", "3.2.1", "3.2.2", "3.2.3", "3.2.4", "3.2.5", "3.3.0", "3.3.1", "3.3.2",
        "3.4.0", "3.5.0", "3.5.1", "3.5.2", "3.5.3",
    };
    static const int pythons[][2] = {{2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10},
                                     {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15}};
    int rows = 0;
    for (size_t v = 0; v < ARRAY_SIZE(pythons); v++) {
        int minor = pythons[v][1], new_frames = pythons[v][0] == 3 && minor >= 11;
        int found = 0;
        for (size_t r = 0; r < ARRAY_SIZE(releases); r++) {
            const struct greenlet_layout *gl =
                greenlet_layout_for(releases[r], pythons[v][0], minor);
            if (!gl)
                continue;
            found++;
            rows++;
            CHECK(gl->pimpl >= 16 && gl->pimpl % 8 == 0);
            CHECK(gl->size > 0 && gl->size <= 256 && gl->size % 8 == 0);
            const int offs[] = {gl->self, gl->stack_start, gl->stack_stop, gl->stack_copy,
                                gl->stack_saved, gl->top_frame, gl->current_frame,
                                gl->datastack_chunk, gl->datastack_top, gl->prev_frame};
            for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
                if (offs[i] < 0)
                    continue;
                CHECK(offs[i] % 8 == 0 && offs[i] + 8 <= gl->size);
                for (size_t k = 0; k < i; k++)
                    CHECK(offs[k] != offs[i]);
            }
            CHECK((gl->current_frame >= 0) == new_frames);
            CHECK((gl->datastack_chunk >= 0) == new_frames);
            CHECK((gl->datastack_top >= 0) == new_frames);
            CHECK(gl->prev_frame < 0 || (pythons[v][0] == 3 && minor == 12));
        }
        CHECK(found > 0);
    }
    CHECK(rows > 100);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A random word for a damaged image: often a pointer into it, else anything. */
static uint64_t random_word(void)
{
    uint64_t r = rng();
    switch (r & 3) {
    case 0: return BASE + ((r >> 8) % SIZE & ~7ull);
    case 1: return BASE + ((r >> 8) % SIZE);
    case 2: return (r >> 8) & 0xff;
    default: return r;
    }
}

/* Reads the greenlets of f with k random words written over the ranges in hot. */
static void read_damaged(struct fake *f, const uint64_t (*hot)[2], int nhot, int rounds)
{
    static unsigned char orig[SIZE];
    memcpy(orig, f->img, SIZE);
    uint64_t objs[8];
    for (int k = 0; k < 8; k++)
        objs[k] = obj_at(k);
    for (int round = 0; round < rounds; round++) {
        memcpy(f->img, orig, SIZE);
        for (int e = 0, ne = 1 + (int)(rng() % 6); e < ne; e++) {
            const uint64_t *h = hot[rng() % (uint64_t)nhot];
            uint64_t at = h[0] + (rng() % (h[1] - h[0]) & ~7ull);
            put64(f, at, random_word());
        }
        fake_map(f);
        struct greenlet_set gs = {0};
        CHECK_INT(greenlet_read(f->m, f->l, f->gl, objs, 8, &gs), 0);
        CHECK(gs.n == 8);
        for (size_t i = 0; i < gs.n; i++) {
            const struct greenlet *g = &gs.v[i];
            CHECK(g->depth <= GREENLET_MAX_DEPTH && g->off + g->depth <= gs.nraw);
            CHECK(g->status == 0 || g->status == 1 || g->status == -EFAULT ||
                  g->status == -EINVAL || g->status == -ELOOP);
        }
        greenlet_set_release(&gs);
        mem_free(f->m);
    }
    memcpy(f->img, orig, SIZE);
}

/* Damaged images of each stack family: nothing crashes or runs away, codes as documented. */
TEST(damaged_images_of_each_layout_family)
{
    static struct fake f;
    static const uint64_t hot[][2] = {
        {NODES, NODES + 8 * 0x80}, {IMPLS, IMPLS + 8 * 0x100}, {CHUNK, CHUNK + 0x4000},
        {FRAMES, FRAMES + 8 * 0x100}, {STACK, STACK + 0x200}, {SPILL, SPILL + 0x200},
    };
    /* 2.0.2 on 3.9: frame-object chains. */
    fake_init_for(&f, 3, 9, "2.0.2");
    for (int k = 0; k < 8; k++) {
        uint64_t back = k ? FRAMES + (uint64_t)(k - 1) * 0x100 : 0;
        fake_impl(&f, k, STACK, STACK + 0x1000, fake_frame_object(&f, k, CODE0, 2 * k, back), 0,
                  0, 0);
    }
    read_damaged(&f, hot, (int)ARRAY_SIZE(hot), 1500);
    /* 3.0.2 on 3.12 and 3.5.3 on 3.13: interpreter frames, a spilled shim, _prev_frame. */
    for (int v = 0; v < 2; v++) {
        fake_init_for(&f, 3, v ? 13 : 12, v ? "3.5.3" : "3.0.2");
        uint64_t fr[4], top = CHUNK + 24 + 4 * 80;
        for (int i = 0; i < 4; i++)
            fr[i] = CHUNK + 24 + (uint64_t)i * 80;
        for (int i = 0; i < 4; i++)
            fake_frame(&f, fr[i], CODE0 + (uint64_t)i * 0x100, 2, i < 3 ? fr[i + 1] : STACK + 0x40,
                       0);
        fake_frame(&f, SPILL + 0x40, CODE0, 0, 0, 3);
        for (int k = 0; k < 8; k++) {
            uint64_t p = fake_impl(&f, k, STACK, STACK + 0x1000, 0x1234, fr[k % 4], CHUNK, top);
            put64(&f, p + (uint64_t)f.gl->stack_copy, SPILL);
            put64(&f, p + (uint64_t)f.gl->stack_saved, 0x200);
            if (f.gl->prev_frame >= 0)
                put64(&f, p + (uint64_t)f.gl->prev_frame, fr[1]);
        }
        read_damaged(&f, hot, (int)ARRAY_SIZE(hot), 1500);
    }
}

/* ---- the census of record --greenlets ---- */

/* Frame ids for the census: code object number * 1000 + offset; CODE0 + 0xf00 is not code. */
static int fake_resolve(void *ctx, const struct rawframe *raw, size_t n, uint32_t *ids)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        if (raw[i].code == CODE0 + 0xf00)
            return -EINVAL;
        ids[i] = (uint32_t)((raw[i].code - CODE0) / 0x100 * 1000 + (uint64_t)raw[i].addrq);
    }
    return 0;
}

static struct gcensus_source fake_source(struct fake *f)
{
    return (struct gcensus_source){.m = f->m, .l = f->l, .gl = f->gl, .gtype = type_at(0),
                                   .lists = {.generations = GENS, .collecting = COLLECTING},
                                   .resolve = fake_resolve};
}

/* Entry of the census for obj_at(k), or NULL. */
static const struct gcensus_entry *census_of(const struct gcensus *c, int k)
{
    for (size_t i = 0; i < gcensus_count(c); i++)
        if (gcensus_entry(c, i)->obj == obj_at(k))
            return gcensus_entry(c, i);
    return NULL;
}

/*
 * Greenlets 0 and 1 parked (2 and 1 frames), 2 the running main one, 3 not
 * started, among other objects: 0 and 2 in the oldest generation, the
 * others in the youngest.
 */
static void census_image(struct fake *f, uint64_t *frames)
{
    fake_init(f);
    int k0[] = {1, 5, 3}, t0[] = {1, 3, 0};
    int k2[] = {0, 6, 2}, t2[] = {0, 3, 2};
    fake_list(f, 0, k0, t0, 3);
    fake_list(f, 2, k2, t2, 3);
    uint64_t fr0 = CHUNK + 24, fr1 = fr0 + 80, top0 = fr1 + 80;
    fake_frame(f, fr0, CODE0 + 0x100, 10, 0, 0);
    fake_frame(f, fr1, CODE0 + 0x200, 20, fr0, 0);
    fake_impl(f, 0, 0x7000, 0x8000, 0x1234, fr1, CHUNK, top0);
    uint64_t c1 = CHUNK + 0x1000, fr2 = c1 + 24;
    put64(f, c1, 0);
    fake_frame(f, fr2, CODE0 + 0x300, 30, 0, 0);
    fake_impl(f, 1, 0x7000, 0x8000, 0x1234, fr2, c1, fr2 + 80);
    fake_impl(f, 2, 1, UINT64_MAX, 0, 0, 0, 0);
    fake_impl(f, 3, 0, 0, 0, 0, 0, 0);
    frames[0] = fr1;
    frames[1] = fr2;
}

TEST(census_counts_every_greenlet_and_keeps_unchanged_stacks)
{
    static struct fake f;
    uint64_t frames[2];
    census_image(&f, frames);
    fake_map(&f);
    struct gcensus *c = gcensus_new();
    struct gcensus_source src = fake_source(&f);
    CHECK_INT(gcensus_run(c, &src, 1), 0);
    REQUIRE(gcensus_count(c) == 4);
    const struct gcensus_entry *e = census_of(c, 0);
    REQUIRE(e && e->state == GL_PARKED && e->depth == 2);
    CHECK_INT((int)e->ids[0], 2020);
    CHECK_INT((int)e->ids[1], 1010);
    e = census_of(c, 1);
    REQUIRE(e && e->state == GL_PARKED && e->depth == 1);
    CHECK_INT((int)e->ids[0], 3030);
    e = census_of(c, 2);
    REQUIRE(e && e->state == GL_RUNNING);
    CHECK_INT(e->main, 1);
    CHECK_INT(census_of(c, 3)->state, GL_NOT_STARTED);
    const struct gcensus_stats *st = gcensus_stats(c);
    CHECK_U64(st->walks_full, 1);
    CHECK_U64(st->counted, 3);
    CHECK_U64(st->stacks_read, 2);
    /* The next census: the youngest generation unchanged, nothing saved
     * changed: its mark, then the implementations in one batch. */
    uint64_t calls = mem_read_calls(f.m);
    CHECK_INT(gcensus_run(c, &src, 2), 0);
    CHECK_U64(mem_read_calls(f.m) - calls, 2);
    CHECK_U64(st->walks_skipped, 1);
    CHECK_U64(st->stacks_kept, 2);
    CHECK_U64(st->stacks_read, 2);
    CHECK_U64(st->counted, 6);
    CHECK_U64(st->censuses, 2);
    CHECK_INT((int)census_of(c, 0)->ids[0], 2020);
    /* Greenlet 1 switched in and parked again elsewhere: read again. */
    uint64_t fr = frames[1];
    uint64_t instr = CODE0 + 0x400 + (uint64_t)f.l->co_code_adaptive + 44, code = CODE0 + 0x400;
    REQUIRE(mem_buffer_write(f.m, fr + (uint64_t)f.l->if_code, &code, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, fr + (uint64_t)f.l->if_instr, &instr, 8) == 0);
    uint64_t saved = 0x99;
    REQUIRE(mem_buffer_write(f.m, IMPLS + 0x100 + (uint64_t)f.gl->stack_saved, &saved, 8) == 0);
    CHECK_INT(gcensus_run(c, &src, 3), 0);
    CHECK_U64(st->stacks_read, 3);
    CHECK_INT((int)census_of(c, 1)->ids[0], 4044);
    CHECK_INT((int)census_of(c, 0)->ids[0], 2020);
    gcensus_free(c);
    mem_free(f.m);
}

TEST(census_finds_new_greenlets_and_forgets_freed_ones)
{
    static struct fake f;
    uint64_t frames[2];
    census_image(&f, frames);
    /* Greenlet 4, parked, not linked yet. */
    uint64_t c4 = CHUNK + 0x2000, fr4 = c4 + 24;
    put64(&f, c4, 0);
    fake_frame(&f, fr4, CODE0 + 0x500, 50, 0, 0);
    fake_impl(&f, 4, 0x7000, 0x8000, 0x1234, fr4, c4, fr4 + 80);
    fake_map(&f);
    struct gcensus *c = gcensus_new();
    struct gcensus_source src = fake_source(&f);
    CHECK_INT(gcensus_run(c, &src, 1), 0);
    CHECK_INT((int)gcensus_count(c), 4);
    /* Linked at the tail of the youngest generation (after node 3): its mark changes. */
    uint64_t head = GENS, n3 = node_at(3), n4 = node_at(4), type = type_at(2), one = 1;
    REQUIRE(mem_buffer_write(f.m, n4, &head, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n4 + 8, &n3, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n4 + 16, &one, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n4 + 24, &type, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n3, &n4, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, head + 8, &n4, 8) == 0);
    CHECK_INT(gcensus_run(c, &src, 2), 0);
    const struct gcensus_stats *st = gcensus_stats(c);
    CHECK_U64(st->walks_young, 1);
    REQUIRE(gcensus_count(c) == 5);
    const struct gcensus_entry *e = census_of(c, 4);
    REQUIRE(e && e->state == GL_PARKED && e->depth == 1);
    CHECK_INT((int)e->ids[0], 5050);
    /* Greenlet 1 freed: out of its list, and its implementation no longer names it. */
    uint64_t other = 0xabc0, n5 = node_at(5);
    REQUIRE(mem_buffer_write(f.m, IMPLS + 0x100 + (uint64_t)f.gl->self, &other, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, head, &n5, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n5 + 8, &head, 8) == 0);
    CHECK_INT(gcensus_run(c, &src, 3), 0);
    CHECK(census_of(c, 1) == NULL);
    CHECK_U64(st->gone, 1);
    /* Greenlet 0 unlinked from the oldest generation, its implementation
     * intact: the next walk of every generation forgets it. */
    uint64_t head2 = GENS + 48, n6 = node_at(6);
    REQUIRE(mem_buffer_write(f.m, head2, &n6, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, n6 + 8, &head2, 8) == 0);
    CHECK_INT(gcensus_run(c, &src, 4), 0);
    CHECK(census_of(c, 0) != NULL);
    CHECK_INT(gcensus_run(c, &src, 4 + GCENSUS_FULL_WALK_NS), 0);
    CHECK(census_of(c, 0) == NULL);
    CHECK_U64(st->walks_full, 2);
    CHECK_U64(st->gone, 2);
    CHECK_INT((int)gcensus_count(c), 3);
    gcensus_free(c);
    mem_free(f.m);
}

TEST(census_of_bad_stacks_and_broken_lists)
{
    static struct fake f;
    uint64_t frames[2];
    census_image(&f, frames);
    /* Greenlet 1's frame is not code: its stack is not counted. */
    put64(&f, frames[1] + (uint64_t)f.l->if_code, CODE0 + 0xf00);
    fake_map(&f);
    struct gcensus *c = gcensus_new();
    struct gcensus_source src = fake_source(&f);
    CHECK_INT(gcensus_run(c, &src, 1), 0);
    const struct gcensus_stats *st = gcensus_stats(c);
    CHECK_U64(st->counted, 2);
    CHECK_U64(st->unreadable, 1);
    CHECK(census_of(c, 1)->status < 0);
    /* Read again at the next census, though nothing changed. */
    CHECK_INT(gcensus_run(c, &src, 2), 0);
    CHECK_U64(st->stacks_read, 3);
    gcensus_free(c);
    /* A first walk that fails gives no census at all. */
    uint64_t bad = 0x10;
    REQUIRE(mem_buffer_write(f.m, node_at(1), &bad, 8) == 0);
    c = gcensus_new();
    CHECK_INT(gcensus_run(c, &src, 1), -EAGAIN);
    CHECK_U64(gcensus_stats(c)->failed, 1);
    CHECK_U64(gcensus_stats(c)->censuses, 0);
    gcensus_free(c);
    mem_free(f.m);
}

TEST(census_reads_implementations_sharing_a_page_as_one_piece)
{
    static struct fake f;
    uint64_t frames[2];
    census_image(&f, frames);
    fake_map(&f);
    /* Greenlets 0 and 1 have their implementations on one page, with a hole
     * between them: the piece fails and each is read alone. */
    size_t plen = (size_t)f.gl->size;
    static unsigned char a[512], b[512];
    memcpy(a, f.img + (IMPLS - BASE), plen);
    memcpy(b, f.img + (IMPLS + 0x100 - BASE), plen);
    uint64_t pa = 0x900000, pb = 0x900200;
    REQUIRE(mem_buffer_add(f.m, pa, a, plen) == 0);
    REQUIRE(mem_buffer_add(f.m, pb, b, plen) == 0);
    REQUIRE(mem_buffer_write(f.m, obj_at(0) + (uint64_t)f.gl->pimpl, &pa, 8) == 0);
    REQUIRE(mem_buffer_write(f.m, obj_at(1) + (uint64_t)f.gl->pimpl, &pb, 8) == 0);
    struct gcensus *c = gcensus_new();
    struct gcensus_source src = fake_source(&f);
    CHECK_INT(gcensus_run(c, &src, 1), 0);
    const struct gcensus_entry *e = census_of(c, 0);
    REQUIRE(e && e->state == GL_PARKED && e->depth == 2);
    CHECK_INT((int)e->ids[0], 2020);
    e = census_of(c, 1);
    REQUIRE(e && e->state == GL_PARKED && e->depth == 1);
    CHECK_U64(gcensus_stats(c)->counted, 3);
    /* Mapped whole, the page is one piece: states as before, in one read call. */
    static unsigned char page[4096];
    memcpy(page, a, plen);
    memcpy(page + 0x200, b, plen);
    struct mem *m2 = mem_new_buffer();
    REQUIRE(mem_buffer_add(m2, BASE, f.img, SIZE) == 0);
    REQUIRE(mem_buffer_add(m2, pa, page, sizeof(page)) == 0);
    REQUIRE(mem_buffer_write(m2, obj_at(0) + (uint64_t)f.gl->pimpl, &pa, 8) == 0);
    REQUIRE(mem_buffer_write(m2, obj_at(1) + (uint64_t)f.gl->pimpl, &pb, 8) == 0);
    gcensus_free(c);
    c = gcensus_new();
    src.m = m2;
    CHECK_INT(gcensus_run(c, &src, 1), 0);
    CHECK_U64(gcensus_stats(c)->counted, 3);
    uint64_t calls = mem_read_calls(m2);
    CHECK_INT(gcensus_run(c, &src, 2), 0);
    CHECK_U64(mem_read_calls(m2) - calls, 2);
    CHECK_U64(gcensus_stats(c)->counted, 6);
    gcensus_free(c);
    mem_free(m2);
    mem_free(f.m);
}

/* Moves node mv->node from generation 0 to the end of 1, whole, as a collection does. */
struct move_gen {
    uint64_t after;
    int node, done;
};

static void move_gen_on_read(void *ctx, struct mem *m, uint64_t calls)
{
    struct move_gen *mv = ctx;
    if (mv->done || calls < mv->after)
        return;
    mv->done = 1;
    uint64_t x = node_at(mv->node), next, prev, head1 = GENS + 24, tail;
    REQUIRE(mem_read(m, x, &next, 8) == 0 && mem_read(m, x + 8, &prev, 8) == 0);
    mem_buffer_write(m, prev, &next, 8);
    mem_buffer_write(m, next + 8, &prev, 8);
    REQUIRE(mem_read(m, head1 + 8, &tail, 8) == 0);
    mem_buffer_write(m, tail, &x, 8);
    mem_buffer_write(m, x + 8, &tail, 8);
    mem_buffer_write(m, x, &head1, 8);
    mem_buffer_write(m, head1 + 8, &x, 8);
}

static void moving_lists(struct fake *f)
{
    int k0[] = {0, 1, 2}, t0[] = {0, 0, 0};
    int k1[] = {3}, t1[] = {0};
    fake_init(f);
    fake_list(f, 0, k0, t0, 3);
    fake_list(f, 1, k1, t1, 1);
    fake_map(f);
}

/*
 * A collection moves a greenlet from generation 0 to 1 while the lists are
 * walked one after the other: at whatever read it happens, a walk that
 * succeeds finds every greenlet once (a dump listed one twice: "2 main
 * greenlets").
 */
TEST(walk_finds_a_greenlet_moved_between_generations_once)
{
    static struct fake f;
    uint64_t *objs;
    size_t n;
    struct greenlet_stats st;
    moving_lists(&f);
    uint64_t before = mem_read_calls(f.m);
    REQUIRE(fake_walk(&f, &objs, &n, &st) == 0 && n == 4);
    uint64_t reads = mem_read_calls(f.m) - before;
    free(objs);
    mem_free(f.m);
    int moved = 0;
    for (uint64_t at = 1; at <= reads + 1; at++) {
        moving_lists(&f);
        struct move_gen mv = {mem_read_calls(f.m) + at, 1, 0};
        mem_buffer_on_read(f.m, move_gen_on_read, &mv);
        int r = fake_walk(&f, &objs, &n, &st);
        if (r == 0) {
            CHECK_INT((int)n, 4);
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                    if (objs[i] == objs[j])
                        TEST_FAILF("move at read %d: 0x%llx found twice", (int)at,
                                   (unsigned long long)objs[i]);
            moved += mv.done;
        }
        free(objs);
        mem_free(f.m);
    }
    CHECK(moved > 0);
}
