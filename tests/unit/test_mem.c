/*
 * Memory sources: the buffer backend (segments at chosen addresses), the
 * maps parser, and the live backend reading this very process with
 * process_vm_readv.
 */
#include "profiler/target/mem.h"

#include <errno.h>
#include <sys/mman.h>

#include "test.h"

#include "common/util.h"

/* ---- buffer backend ------------------------------------------------------ */

static struct mem *two_segments(void)
{
    static const char a[16] = "0123456789abcdef";
    static const char b[8] = "ABCDEFGH";
    struct mem *m = mem_new_buffer();
    REQUIRE(mem_buffer_add(m, 0x1000, a, sizeof(a)) == 0);
    REQUIRE(mem_buffer_add(m, 0x2000, b, sizeof(b)) == 0);
    return m;
}

TEST(buffer_reads_inside_a_segment)
{
    struct mem *m = two_segments();
    char buf[17] = {0};
    CHECK_INT(mem_read(m, 0x1000, buf, 16), 0);
    CHECK_STR(buf, "0123456789abcdef");
    memset(buf, 0, sizeof(buf));
    CHECK_INT(mem_read(m, 0x100c, buf, 4), 0);
    CHECK_STR(buf, "cdef");
    memset(buf, 0, sizeof(buf));
    CHECK_INT(mem_read(m, 0x2003, buf, 5), 0);
    CHECK_STR(buf, "DEFGH");
    uint64_t v = 0;
    CHECK_INT(mem_read_u64(m, 0x2000, &v), 0);
    CHECK_U64(v, 0x4847464544434241ull);
    /* A zero-length read succeeds anywhere. */
    CHECK_INT(mem_read(m, 0xdead0000, buf, 0), 0);
    mem_free(m);
}

TEST(buffer_reads_out_of_bounds_fail)
{
    struct mem *m = two_segments();
    char buf[32];
    CHECK_INT(mem_read(m, 0x0fff, buf, 1), -EFAULT);  /* just before */
    CHECK_INT(mem_read(m, 0x1010, buf, 1), -EFAULT);  /* just after */
    CHECK_INT(mem_read(m, 0x100f, buf, 2), -EFAULT);  /* straddles the end */
    CHECK_INT(mem_read(m, 0x1000, buf, 17), -EFAULT); /* one byte too many */
    CHECK_INT(mem_read(m, 0x1008, buf, 0x1000), -EFAULT); /* spans the gap */
    CHECK_INT(mem_read(m, 0, buf, 8), -EFAULT);
    /* Address wrap-around. */
    CHECK_INT(mem_read(m, UINT64_MAX - 3, buf, 8), -EFAULT);
    mem_free(m);
}

TEST(buffer_overlaps_rejected)
{
    struct mem *m = two_segments();
    char x[16] = {0};
    CHECK_INT(mem_buffer_add(m, 0x1000, x, 16), -EINVAL); /* same */
    CHECK_INT(mem_buffer_add(m, 0x0ff8, x, 9), -EINVAL);  /* overlaps the start */
    CHECK_INT(mem_buffer_add(m, 0x100f, x, 1), -EINVAL);  /* overlaps the last byte */
    CHECK_INT(mem_buffer_add(m, 0x1004, x, 4), -EINVAL);  /* inside */
    CHECK_INT(mem_buffer_add(m, 0x0f00, x, 16), 0);       /* before, no overlap */
    CHECK_INT(mem_buffer_add(m, 0x1010, x, 16), 0);       /* adjacent after */
    CHECK_INT(mem_buffer_add(m, 0x3000, x, 0), -EINVAL);  /* empty */
    CHECK_INT(mem_buffer_add(m, UINT64_MAX - 4, x, 16), -EINVAL); /* wraps */
    /* The segments added read back; adjacency does not merge them for a read. */
    char buf[16];
    CHECK_INT(mem_read(m, 0x1010, buf, 16), 0);
    CHECK_INT(mem_read(m, 0x1008, buf, 16), -EFAULT);
    mem_free(m);
}

TEST(buffer_copies_data_at_add)
{
    char data[8] = "original";
    struct mem *m = mem_new_buffer();
    REQUIRE(mem_buffer_add(m, 0x5000, data, 8) == 0);
    memcpy(data, "changed!", 8);
    char buf[9] = {0};
    CHECK_INT(mem_read(m, 0x5000, buf, 8), 0);
    CHECK_STR(buf, "original");
    mem_free(m);
}

TEST(buffer_readv_marks_pieces)
{
    struct mem *m = two_segments();
    char b0[4], b1[4], b2[4], b3[1];
    struct mem_iov iov[4] = {
        {0x1000, b0, 4, 7},
        {0x1ffe, b1, 4, 7}, /* unmapped */
        {0x2004, b2, 4, 7},
        {0x2000, b3, 0, 7}, /* empty: fine */
    };
    uint64_t before = mem_read_calls(m);
    CHECK_INT(mem_readv(m, iov, 4), 3);
    CHECK_INT(iov[0].ok, 1);
    CHECK_INT(iov[1].ok, 0);
    CHECK_INT(iov[2].ok, 1);
    CHECK_INT(iov[3].ok, 1);
    CHECK(memcmp(b0, "0123", 4) == 0);
    CHECK(memcmp(b2, "EFGH", 4) == 0);
    /* The buffer backend counts a vectored read as one call, as the live one would. */
    CHECK_U64(mem_read_calls(m) - before, 1);
    mem_free(m);
}

TEST(buffer_read_calls_count)
{
    struct mem *m = two_segments();
    char buf[8];
    CHECK_U64(mem_read_calls(m), 0);
    mem_read(m, 0x1000, buf, 8);
    mem_read(m, 0x9000, buf, 8); /* failed reads count too */
    CHECK_U64(mem_read_calls(m), 2);
    mem_free(m);
}

TEST(buffer_maps_and_regions)
{
    struct mem *m = two_segments();
    const struct mem_maps *maps = mem_maps(m);
    REQUIRE(maps != NULL);
    CHECK_INT(maps->n, 2);
    CHECK_U64(maps->v[0].start, 0x1000);
    CHECK_U64(maps->v[0].end, 0x1010);
    CHECK_U64(maps->v[1].start, 0x2000);
    CHECK_INT(maps->v[0].perms, MEM_R | MEM_W);
    CHECK_STR(maps->v[0].path, "");
    const struct mem_region *r = mem_find_region(m, 0x100f);
    REQUIRE(r != NULL);
    CHECK_U64(r->start, 0x1000);
    CHECK(mem_find_region(m, 0x1010) == NULL);
    CHECK(mem_find_region(m, 0xfff) == NULL);
    CHECK(mem_readable(m, 0x1000, 16));
    CHECK(!mem_readable(m, 0x1000, 17));
    CHECK(!mem_readable(m, 0x1008, 0x1000));
    CHECK(!mem_readable(m, UINT64_MAX - 1, 8));
    /* Adding a segment refreshes the maps (lowest first). */
    char x[16] = {0};
    REQUIRE(mem_buffer_add(m, 0x500, x, 16) == 0);
    maps = mem_maps(m);
    CHECK_INT(maps->n, 3);
    CHECK_U64(maps->v[0].start, 0x500);
    CHECK(mem_find_region(m, 0x505) != NULL);
    mem_free(m);
}

TEST(buffer_readable_spans_adjacent_regions)
{
    struct mem *m = mem_new_buffer();
    char x[16] = {0};
    REQUIRE(mem_buffer_add(m, 0x1000, x, 16) == 0);
    REQUIRE(mem_buffer_add(m, 0x1010, x, 16) == 0);
    CHECK(mem_readable(m, 0x1008, 16));
    CHECK(mem_readable(m, 0x1000, 32));
    CHECK(!mem_readable(m, 0x1000, 33));
    mem_free(m);
}

TEST(mem_free_null)
{
    mem_free(NULL);
}

/* ---- maps parsing --------------------------------------------------------- */

static const char sample_maps[] =
    "55d4c0a00000-55d4c0a01000 r--p 00000000 08:01 1311 /usr/bin/python3.11\n"
    "55d4c0a01000-55d4c0c00000 r-xp 00001000 08:01 1311 /usr/bin/python3.11\n"
    "55d4c1e00000-55d4c1e21000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
    "7f1000000000-7f1000001000 r--p 00000000 fd:02 99 /home/a b/my lib.so (deleted)\n"
    "7f1000001000-7f1000002000 ---p 00001000 fd:02 99 /home/a b/my lib.so (deleted)\n"
    "7f2000000000-7f2000004000 r-xs 0000a000 103:05 4294967296   /dev/shm/x y\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(parse_maps_fields)
{
    struct mem_maps maps;
    REQUIRE(mem_parse_maps(sample_maps, &maps) == 0);
    REQUIRE(maps.n == 8);
    CHECK_U64(maps.v[0].start, 0x55d4c0a00000ull);
    CHECK_U64(maps.v[0].end, 0x55d4c0a01000ull);
    CHECK_INT(maps.v[0].perms, MEM_R);
    CHECK_U64(maps.v[0].offset, 0);
    CHECK_INT(maps.v[0].dev_major, 8);
    CHECK_INT(maps.v[0].dev_minor, 1);
    CHECK_U64(maps.v[0].inode, 1311);
    CHECK_STR(maps.v[0].path, "/usr/bin/python3.11");
    CHECK_INT(maps.v[1].perms, MEM_R | MEM_X);
    CHECK_U64(maps.v[1].offset, 0x1000);
    CHECK_STR(maps.v[2].path, "[heap]");
    CHECK_INT(maps.v[2].perms, MEM_R | MEM_W);
    CHECK_INT(maps.v[5].perms, 0);
    CHECK_INT(maps.v[6].perms, MEM_R | MEM_X);
    CHECK_U64(maps.v[6].offset, 0xa000);
    CHECK_INT(maps.v[6].dev_major, 0x103);
    CHECK_INT(maps.v[6].dev_minor, 5);
    CHECK_U64(maps.v[6].inode, 4294967296ull);
    CHECK_U64(maps.v[7].start, 0xffffffffff600000ull);
    CHECK_STR(maps.v[7].path, "[vsyscall]");
    mem_maps_release(&maps);
    CHECK(maps.v == NULL && maps.n == 0);
}

TEST(parse_maps_paths_with_spaces_and_deleted)
{
    struct mem_maps maps;
    REQUIRE(mem_parse_maps(sample_maps, &maps) == 0);
    REQUIRE(maps.n == 8);
    CHECK_STR(maps.v[4].path, "/home/a b/my lib.so (deleted)");
    CHECK_STR(maps.v[5].path, "/home/a b/my lib.so (deleted)");
    CHECK_STR(maps.v[6].path, "/dev/shm/x y");
    mem_maps_release(&maps);
}

/* An anonymous mapping's line ends "0 \n": its path is empty, not the next line. */
TEST(parse_maps_anonymous_has_empty_path)
{
    struct mem_maps maps;
    REQUIRE(mem_parse_maps(sample_maps, &maps) == 0);
    REQUIRE(maps.n == 8);
    CHECK_STR(maps.v[3].path, "");
    mem_maps_release(&maps);

    const char *last = "7f0000000000-7f0000021000 rw-p 00000000 00:00 0\n"
                       "7f0000021000-7f0000022000 rw-p 00000000 00:00 0 ";
    REQUIRE(mem_parse_maps(last, &maps) == 0);
    REQUIRE(maps.n == 2);
    CHECK_STR(maps.v[0].path, "");
    CHECK_STR(maps.v[1].path, "");
    mem_maps_release(&maps);
}

TEST(parse_maps_no_trailing_newline_and_blank_lines)
{
    struct mem_maps maps;
    REQUIRE(mem_parse_maps("\n1000-2000 r--p 00000000 00:00 0 /x\n\n3000-4000 rw-p 0 00:00 0 /y",
                           &maps) == 0);
    REQUIRE(maps.n == 2);
    CHECK_STR(maps.v[0].path, "/x");
    CHECK_STR(maps.v[1].path, "/y");
    mem_maps_release(&maps);
    REQUIRE(mem_parse_maps("", &maps) == 0);
    CHECK_INT(maps.n, 0);
    mem_maps_release(&maps);
}

TEST(parse_maps_rejects_junk)
{
    struct mem_maps maps;
    CHECK_INT(mem_parse_maps("hello world\n", &maps), -EINVAL);
    CHECK(maps.v == NULL && maps.n == 0);
    CHECK_INT(mem_parse_maps("1000-2000 r--p 00000000 00:00 0 /x\ngarbage\n", &maps), -EINVAL);
    CHECK(maps.v == NULL && maps.n == 0);
    /* end before start */
    CHECK_INT(mem_parse_maps("2000-1000 r--p 00000000 00:00 0 /x\n", &maps), -EINVAL);
}

/* ---- live backend on this process ----------------------------------------- */

TEST(live_reads_own_memory)
{
    static char local[64] = "the quick brown fox jumps over the lazy dog";
    struct mem *m = mem_new_pid(getpid());
    char buf[64] = {0};
    CHECK_INT(mem_read(m, (uint64_t)(uintptr_t)local, buf, sizeof(local)), 0);
    CHECK_STR(buf, local);
    CHECK_U64(mem_read_calls(m), 1);
    /* A write in this process is seen by the next read. */
    local[0] = 'T';
    CHECK_INT(mem_read(m, (uint64_t)(uintptr_t)local, buf, 4), 0);
    CHECK(memcmp(buf, "The ", 4) == 0);
    mem_free(m);
}

/* A page that is certainly unmapped: mapped, then unmapped. */
static uint64_t unmapped_page(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    REQUIRE(munmap(p, (size_t)pg) == 0);
    return (uint64_t)(uintptr_t)p;
}

TEST(live_unmapped_is_efault)
{
    struct mem *m = mem_new_pid(getpid());
    char buf[16];
    CHECK_INT(mem_read(m, unmapped_page(), buf, 16), -EFAULT);
    CHECK_INT(mem_read(m, 8, buf, 8), -EFAULT);
    mem_free(m);
}

TEST(live_read_straddling_end_of_mapping_fails)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    REQUIRE(p != MAP_FAILED);
    REQUIRE(munmap(p + pg, (size_t)pg) == 0);
    memset(p, 'x', (size_t)pg);
    struct mem *m = mem_new_pid(getpid());
    char buf[32];
    CHECK_INT(mem_read(m, (uint64_t)(uintptr_t)(p + pg - 16), buf, 16), 0);
    CHECK_INT(mem_read(m, (uint64_t)(uintptr_t)(p + pg - 16), buf, 32), -EFAULT);
    mem_free(m);
    munmap(p, (size_t)pg);
}

TEST(live_readv_bad_piece_in_the_middle)
{
    static char a[32] = "first piece", c[32] = "third piece";
    char ba[32] = {0}, bb[32] = {0}, bc[32] = {0};
    struct mem *m = mem_new_pid(getpid());
    struct mem_iov iov[3] = {
        {(uint64_t)(uintptr_t)a, ba, sizeof(a), 0},
        {unmapped_page(), bb, sizeof(bb), 1},
        {(uint64_t)(uintptr_t)c, bc, sizeof(c), 0},
    };
    uint64_t before = mem_read_calls(m);
    CHECK_INT(mem_readv(m, iov, 3), 2);
    CHECK_INT(iov[0].ok, 1);
    CHECK_INT(iov[1].ok, 0);
    CHECK_INT(iov[2].ok, 1);
    CHECK_STR(ba, "first piece");
    CHECK_STR(bc, "third piece");
    /* One call stops at the bad piece, a second reads the rest. */
    CHECK_U64(mem_read_calls(m) - before, 2);
    mem_free(m);
}

TEST(live_readv_all_good_is_one_call)
{
    static uint64_t words[48];
    uint64_t out[48];
    struct mem_iov iov[48];
    for (int i = 0; i < 48; i++) {
        words[i] = 0x1111111111111111ull * (uint64_t)(i % 15 + 1);
        iov[i] = (struct mem_iov){(uint64_t)(uintptr_t)&words[i], &out[i], 8, 0};
    }
    struct mem *m = mem_new_pid(getpid());
    CHECK_INT(mem_readv(m, iov, 48), 48);
    CHECK_U64(mem_read_calls(m), 1);
    int all = 1;
    for (int i = 0; i < 48; i++)
        all &= iov[i].ok && out[i] == words[i];
    CHECK(all);
    mem_free(m);
}

TEST(live_readv_first_and_last_bad)
{
    static char mid[16] = "middle";
    char b0[8], b1[16] = {0}, b2[8];
    uint64_t bad = unmapped_page();
    struct mem_iov iov[3] = {
        {bad, b0, 8, 1},
        {(uint64_t)(uintptr_t)mid, b1, 16, 0},
        {bad + 64, b2, 8, 1},
    };
    struct mem *m = mem_new_pid(getpid());
    CHECK_INT(mem_readv(m, iov, 3), 1);
    CHECK_INT(iov[0].ok, 0);
    CHECK_INT(iov[1].ok, 1);
    CHECK_INT(iov[2].ok, 0);
    CHECK_STR(b1, "middle");
    mem_free(m);
}

TEST(live_maps_of_self)
{
    static char here[16];
    struct mem *m = mem_new_pid(getpid());
    const struct mem_maps *maps = NULL;
    REQUIRE(mem_refresh_maps(m, &maps) == 0);
    REQUIRE(maps && maps->n > 3);
    /* Sorted, non-overlapping, and our static buffer is in a readable mapping. */
    int sorted = 1;
    for (size_t i = 1; i < maps->n; i++)
        sorted &= maps->v[i].start >= maps->v[i - 1].end;
    CHECK(sorted);
    const struct mem_region *r = mem_find_region(m, (uint64_t)(uintptr_t)here);
    REQUIRE(r != NULL);
    CHECK(r->perms & MEM_R);
    CHECK(r->perms & MEM_W);
    CHECK(mem_readable(m, (uint64_t)(uintptr_t)here, sizeof(here)));
    CHECK(!mem_readable(m, unmapped_page(), 8));
    /* Anonymous mappings have an empty path, file mappings an absolute one. */
    int paths_ok = 1;
    for (size_t i = 0; i < maps->n; i++) {
        const char *p = maps->v[i].path;
        if (maps->v[i].inode)
            paths_ok &= p[0] == '/';
        else
            paths_ok &= p[0] == '\0' || p[0] == '[';
    }
    CHECK(paths_ok);
    mem_free(m);
}

TEST(live_gone_process_is_esrch)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(0);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    struct mem *m = mem_new_pid(pid);
    char buf[8];
    static char x[8];
    CHECK_INT(mem_read(m, (uint64_t)(uintptr_t)x, buf, 8), -ESRCH);
    struct mem_iov iov = {(uint64_t)(uintptr_t)x, buf, 8, 0};
    CHECK_INT(mem_readv(m, &iov, 1), -ESRCH);
    const struct mem_maps *maps;
    CHECK(mem_refresh_maps(m, &maps) < 0);
    mem_free(m);
}
