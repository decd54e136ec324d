/*
 * Which thread runs a greenlet: greenlet_thread_of over parsed maps, the
 * main thread's "[stack]", other threads' stacks found by their pthread_t,
 * and addresses or thread ids that must match nothing; greenlet_join_threads
 * telling the running greenlet from those suspended in C by data stacks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/sampling/greenlet_threads.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "test.h"

#define PID 4000

static const char maps_text[] =
    "00400000-00401000 r-xp 00000000 08:01 1311 /usr/bin/python3.11\n"
    "01000000-01100000 rw-p 00000000 00:00 0                          [heap]\n"
    /* thread 4001's stack: a guard page, then the stack with its struct pthread on top */
    "7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n"
    "7f0000001000-7f0000800000 rw-p 00000000 00:00 0 \n"
    /* thread 4002's */
    "7f0001000000-7f0001001000 ---p 00000000 00:00 0 \n"
    "7f0001001000-7f0001800000 rw-p 00000000 00:00 0 \n"
    /* a read-only anonymous mapping and a writable file mapping */
    "7f0002000000-7f0002100000 r--p 00000000 00:00 0 \n"
    "7f0003000000-7f0003100000 rw-p 00000000 08:01 77 /usr/lib/libx.so\n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                  [stack]\n";

struct fixture {
    struct mem_maps maps;
    struct walk_thread t[3];
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    REQUIRE(mem_parse_maps(maps_text, &f->maps) == 0);
    REQUIRE(f->maps.n == 9);
    /* The interpreter lists the newest thread first. */
    f->t[0] = (struct walk_thread){.thread_id = 0x7f00017ff6c0ull, .native_tid = PID + 2};
    f->t[1] = (struct walk_thread){.thread_id = 0x7f00007ff6c0ull, .native_tid = PID + 1};
    /* The main thread's struct pthread is in the static TLS block, not on its stack. */
    f->t[2] = (struct walk_thread){.thread_id = 0x7f00020002c0ull, .native_tid = PID};
}

TEST(main_thread_runs_on_the_stack_mapping)
{
    struct fixture f;
    fixture_init(&f);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7ffd00000000ull), 2);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7ffd0001f9a0ull), 2);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7ffd00021000ull), -1);
    /* Without the main thread among those walked, no thread holds [stack]. */
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 2, 0x7ffd0001f9a0ull), -1);
    CHECK_INT(greenlet_thread_of(&f.maps, 0, f.t, 3, 0x7ffd0001f9a0ull), -1);
    mem_maps_release(&f.maps);
}

TEST(other_threads_run_on_the_mapping_that_holds_their_pthread)
{
    struct fixture f;
    fixture_init(&f);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f00007fe000ull), 1);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f0000001000ull), 1);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f00017ff000ull), 0);
    /* A guard page is no stack. */
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f0001000800ull), -1);
    mem_maps_release(&f.maps);
}

TEST(addresses_outside_any_thread_stack)
{
    struct fixture f;
    fixture_init(&f);
    uint64_t none[] = {0, 1, 0x400100, 0x1000100, 0x7f0002000100ull, 0x7f0003000100ull,
                       0x7f0004000000ull, UINT64_MAX, UINT64_MAX - 7};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, none[i]), -1);
    mem_maps_release(&f.maps);
}

TEST(garbage_thread_ids_match_nothing_or_are_ambiguous)
{
    struct fixture f;
    fixture_init(&f);
    /* A thread id in the heap or in a file mapping makes neither a stack. */
    f.t[0].thread_id = 0x1000040;
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x1000100), -1);
    f.t[0].thread_id = 0x7f0003000040ull;
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f0003000100ull), -1);
    /* Two threads that claim one stack: neither is trusted. */
    f.t[0].thread_id = 0x7f00007ff000ull;
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7f00007fe000ull), -1);
    /* Two threads that say they are the main one. */
    f.t[0] = (struct walk_thread){.thread_id = 0x7f00017ff6c0ull, .native_tid = PID};
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 3, 0x7ffd0001f9a0ull), -1);
    mem_maps_release(&f.maps);
}

TEST(no_maps_or_no_threads)
{
    struct fixture f;
    fixture_init(&f);
    struct mem_maps empty = {0};
    CHECK_INT(greenlet_thread_of(&empty, PID, f.t, 3, 0x7ffd0001f9a0ull), -1);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, f.t, 0, 0x7f00007fe000ull), -1);
    CHECK_INT(greenlet_thread_of(&f.maps, PID, NULL, 0, 0x7ffd0001f9a0ull), -1);
    mem_maps_release(&f.maps);
}

/* ---- greenlet_join_threads over a buffer image: two thread stacks and data-stack chunks ---- */

#define STACK_A 0x7f0000000000ull /* thread 4001's stack (64 KiB), its pthread_t near the top */
#define STACK_B 0x7f0001000000ull /* thread 4002's */
#define STACK_LEN 0x10000u
#define CHUNKS 0x200000ull        /* data-stack chunks of 0x100 bytes */

static uint64_t chunk_at(int k)
{
    return CHUNKS + (uint64_t)k * 0x100;
}

struct join_fixture {
    struct session s;
    struct snapshot sn;
    struct tracked tracked[2];
    struct walk_thread threads[2];
    struct snap_thread st[2];
    struct rawframe raw[3];
    struct greenlet_set gs;
};

/*
 * Thread 0 (4001) runs on chunk 1, which grew from chunk 0; it was walked
 * with 2 frames.  Thread 1 (4002) runs on chunk 3, with 1 frame.
 */
static void join_init(struct join_fixture *f)
{
    static unsigned char zero[STACK_LEN];
    unsigned char chunks[0x400] = {0};
    memset(f, 0, sizeof(*f));
    f->s.mem = mem_new_buffer();
    f->s.pid = PID;
    f->s.rt.layout = *layout_for(3, 11);
    REQUIRE(mem_buffer_add(f->s.mem, STACK_A, zero, STACK_LEN) == 0);
    REQUIRE(mem_buffer_add(f->s.mem, STACK_B, zero, STACK_LEN) == 0);
    uint64_t prev = chunk_at(0);
    memcpy(chunks + 0x100 + (size_t)f->s.rt.layout.chunk_previous, &prev, 8);
    REQUIRE(mem_buffer_add(f->s.mem, CHUNKS, chunks, sizeof(chunks)) == 0);
    f->tracked[0].tid = PID + 1;
    f->tracked[1].tid = PID + 2;
    f->s.threads = f->tracked;
    f->s.nthreads = 2;
    f->threads[0] = (struct walk_thread){.thread_id = STACK_A + 0xf6c0, .native_tid = PID + 1,
                                         .chunk = chunk_at(1)};
    f->threads[1] = (struct walk_thread){.thread_id = STACK_B + 0xf6c0, .native_tid = PID + 2,
                                         .chunk = chunk_at(3)};
    f->st[0] = (struct snap_thread){.tracked = 0, .walked = 1, .off = 0, .depth = 2};
    f->st[1] = (struct snap_thread){.tracked = 1, .walked = 1, .off = 2, .depth = 1};
    f->raw[0] = (struct rawframe){0xc0de0, 10};
    f->raw[1] = (struct rawframe){0xc0de1, 20};
    f->raw[2] = (struct rawframe){0xc0de2, 30};
    f->sn.threads = f->threads;
    f->sn.st = f->st;
    f->sn.nthreads = 2;
    f->sn.raw = f->raw;
    f->sn.nraw = 3;
}

static struct greenlet *add_running(struct join_fixture *f, uint64_t start, uint64_t stop,
                                    uint64_t chunk)
{
    GROW(f->gs.v, f->gs.cap, f->gs.n + 1);
    struct greenlet *g = &f->gs.v[f->gs.n++];
    *g = (struct greenlet){.obj = 0x1000 + f->gs.n * 0x100, .state = GL_RUNNING,
                           .stack_start = start, .stack_stop = stop, .chunk = chunk,
                           .main = stop == UINT64_MAX};
    return g;
}

static void join_release(struct join_fixture *f)
{
    greenlet_set_release(&f->gs);
    mem_free(f->s.mem);
}

TEST(join_picks_the_greenlet_on_the_thread_data_stack)
{
    struct join_fixture f;
    join_init(&f);
    /* Both in thread 0's stack: one resumed chunk 0 (the thread's grew from it),
     * one suspended in C on its own chunk. */
    add_running(&f, STACK_A + 0x8000, STACK_A + 0x9000, chunk_at(2));
    add_running(&f, STACK_A + 0x8800, STACK_A + 0x9000, chunk_at(0));
    /* Thread 1's: started and not switched away since (start 1, no chunk saved). */
    add_running(&f, 1, STACK_B + 0x9000, 0);
    greenlet_join_threads(&f.s, &f.sn, &f.gs);
    struct greenlet *v = f.gs.v;
    CHECK_INT(v[0].state, GL_PARKED);
    CHECK_INT(v[0].thread, 0);
    CHECK_INT((int)v[0].depth, 0);
    CHECK_INT(v[1].state, GL_RUNNING);
    CHECK_INT(v[1].thread, 1);
    CHECK_INT(v[1].tid, PID + 1);
    REQUIRE(v[1].depth == 2);
    CHECK_U64(f.gs.raw[v[1].off].code, 0xc0de0);
    CHECK_U64(f.gs.raw[v[1].off + 1].code, 0xc0de1);
    CHECK_INT(v[2].state, GL_RUNNING);
    CHECK_INT(v[2].thread, 2);
    CHECK_INT(v[2].tid, PID + 2);
    REQUIRE(v[2].depth == 1);
    CHECK_U64(f.gs.raw[v[2].off].code, 0xc0de2);
    join_release(&f);
}

TEST(join_leaves_what_it_cannot_place)
{
    struct join_fixture f;
    join_init(&f);
    /* Ends in two threads' stacks; outside any; a range upside down. */
    add_running(&f, STACK_A + 0x8000, STACK_B + 0x9000, chunk_at(0));
    add_running(&f, 0x5000000, 0x5001000, chunk_at(0));
    add_running(&f, STACK_B + 0x9000, STACK_B + 0x8000, chunk_at(3));
    /* A main greenlet that never switched away has no stack address. */
    add_running(&f, 1, UINT64_MAX, 0);
    /* Two in thread 1 that neither runs on its data stack: which runs cannot be told. */
    add_running(&f, STACK_B + 0x100, STACK_B + 0x9000, chunk_at(1));
    add_running(&f, STACK_B + 0x200, STACK_B + 0x9000, chunk_at(2));
    greenlet_join_threads(&f.s, &f.sn, &f.gs);
    for (size_t i = 0; i < f.gs.n; i++) {
        CHECK_INT(f.gs.v[i].state, GL_RUNNING);
        CHECK_INT(f.gs.v[i].thread, 0);
        CHECK_INT((int)f.gs.v[i].depth, 0);
    }
    CHECK_INT((int)f.gs.nraw, 0);
    join_release(&f);
}

/*
 * The greenlet running in a thread walked with no Python frame (it runs C
 * code), the first stack taken: nothing is copied (a copy of no frames to
 * the set's stack buffer, still NULL, was undefined: UBSan stopped record
 * --greenlets on a churning 3.14 target).
 */
TEST(join_takes_a_thread_walked_with_no_frames)
{
    struct join_fixture f;
    join_init(&f);
    f.st[1].off = 3;
    f.st[1].depth = 0;
    add_running(&f, 1, STACK_B + 0x9000, 0);
    greenlet_join_threads(&f.s, &f.sn, &f.gs);
    CHECK_INT(f.gs.v[0].thread, 2);
    CHECK_INT(f.gs.v[0].status, 0);
    CHECK_INT((int)f.gs.v[0].depth, 0);
    CHECK_INT((int)f.gs.nraw, 0);
    join_release(&f);
}

TEST(join_takes_no_stack_walked_on_another_greenlet)
{
    struct join_fixture f;
    join_init(&f);
    /* The only one in thread 1, but the thread was walked on chunk 3, not its chunk 2:
     * it switched between the walk and the read. */
    add_running(&f, STACK_B + 0x100, STACK_B + 0x9000, chunk_at(2));
    /* Thread 0 could not be walked: its greenlet gets the thread, and says why no stack. */
    f.st[0].status = -EFAULT;
    add_running(&f, STACK_A + 0x100, STACK_A + 0x9000, chunk_at(1));
    greenlet_join_threads(&f.s, &f.sn, &f.gs);
    CHECK_INT(f.gs.v[0].thread, 2);
    CHECK_INT(f.gs.v[0].status, -EAGAIN);
    CHECK_INT((int)f.gs.v[0].depth, 0);
    CHECK_INT(f.gs.v[1].thread, 1);
    CHECK_INT(f.gs.v[1].status, -EFAULT);
    CHECK_INT((int)f.gs.v[1].depth, 0);
    join_release(&f);
}
