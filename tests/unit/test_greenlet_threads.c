/*
 * Which thread runs a greenlet: greenlet_thread_of over parsed maps, the
 * main thread's "[stack]", other threads' stacks found by their pthread_t,
 * and addresses or thread ids that must match nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "profiler/greenlet.h"
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
