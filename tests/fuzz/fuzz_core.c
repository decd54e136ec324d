/*
 * libFuzzer target for the core file reader (profiler/target/core.c), built by
 * tests/fuzz/run.sh.  The input is a whole core file: it is written to a
 * memory file and opened by its /proc/self/fd path, as `dump --core` would.
 * Whatever the bytes, core_open_in fails with a message or succeeds; a core that
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
#include "profiler/target/task.h"

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
    size_t n, na;
    core_threads(mem_core(m), &n);
    if (n == 0)
        abort();
    /* Every thread through the task interface, as sampling reads them. */
    pid_t *tids;
    int nt = mem_tasks(m, &tids);
    if (nt != (int)n)
        abort();
    for (int i = 0; i < nt; i++) {
        struct mem_task *k = mem_task_open(m, tids[i]);
        struct user_regs_struct regs;
        long nr;
        uint64_t arg0;
        if (!k) {
            if (tids[i] > 0) /* a thread of the core: it opens */
                abort();
            continue;
        }
        if (mem_task_hold(k, &regs) != 0)
            abort();
        mem_task_state(k, NULL);
        mem_task_syscall(k, &nr, &arg0);
        mem_task_signal(k);
        mem_task_close(k);
    }
    free(tids);
    core_auxv(mem_core(m), &na);
    mem_free(m);
    close(fd);
    return 0;
}
