/*
 * libFuzzer target for the core file reader (profiler/target/core.c), built by
 * tests/fuzz/run.sh.  The input is a whole core file: it is written to a
 * memory file and opened by its /proc/self/fd path, as `dump --core` would.
 * Whatever the bytes, core_open fails with a message or succeeds; a core that
 * opens gives its maps, threads and auxv, and reads of every mapping's first
 * and last bytes return 0 or -EFAULT, never reading outside the file.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "profiler/target/core.h"
#include "profiler/target/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("core", 0);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct mem *m;
    struct pserr err;
    if (mem_open_core(path, NULL, &m, &err) < 0) {
        if (!err.msg[0])
            abort();
        close(fd);
        return 0;
    }
    const struct mem_maps *maps = mem_maps(m);
    unsigned char b[64];
    for (size_t i = 0; i < maps->n && i < 64; i++) {
        int r = mem_read(m, maps->v[i].start, b, sizeof(b));
        if (r != 0 && r != -EFAULT)
            abort();
        r = mem_read(m, maps->v[i].end - 1, b, 1);
        if (r != 0 && r != -EFAULT)
            abort();
        int f = mem_open_mapped(m, &maps->v[i]);
        if (f >= 0)
            close(f);
    }
    const struct core_thread *t;
    size_t n, na;
    if (mem_core_threads(m, &t, &n) < 0 || n == 0)
        abort();
    core_auxv(mem_core(m), &na);
    mem_free(m);
    close(fd);
    return 0;
}
