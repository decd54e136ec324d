/*
 * Prints the native stack of every thread of a process, holding each one
 * in turn, and what it cost: a check of the unwinder on real programs and
 * its measurements (first unwind, warm unwinds, read calls, time held).
 *
 *     make build/native-stack && build/native-stack PID [REPEAT]
 *
 * REPEAT (20) warm unwinds of each thread follow the first; the medians
 * are printed.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "profiler/target/mem.h"
#include "profiler/target/proc.h"
#include "profiler/target/ptstop.h"
#include "symbolizer/native.h"

static int open_mapped(void *ctx, const struct mem_region *r)
{
    pid_t pid = *(pid_t *)ctx;
    return proc_open_mapped(pid, r, proc_is_exe(pid, r->path));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Holds tid, unwinds it, lets it go: 0 with the cost, or a negative errno. */
static int one(struct unwinder *u, struct mem *m, pid_t tid, uint64_t *pcs, size_t *n,
               uint64_t *held_ns, uint64_t *unwind_ns, uint64_t *reads)
{
    struct user_regs_struct regs;
    uint64_t t0 = ptstop_now_ns();
    int r = ptstop_hold(tid, &regs);
    if (r < 0)
        return r;
    uint64_t t1 = ptstop_now_ns(), c0 = mem_read_calls(m);
    r = unwinder_unwind(u, &regs, pcs, NATIVE_MAX_FRAMES, n);
    uint64_t t2 = ptstop_now_ns(), c1 = mem_read_calls(m);
    ptstop_release(tid);
    uint64_t t3 = ptstop_now_ns();
    *held_ns = t3 - t0;
    *unwind_ns = t2 - t1;
    *reads = c1 - c0;
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: native-stack PID [REPEAT]\n");
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    int repeat = argc > 2 ? atoi(argv[2]) : 20;
    if (repeat < 1)
        repeat = 1;
    struct mem *m = mem_new_pid(pid);
    struct pserr err = {0, ""};
    uint64_t t0 = ptstop_now_ns();
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, &err);
    uint64_t t_new = ptstop_now_ns() - t0;
    if (!u) {
        fprintf(stderr, "native-stack: %s\n", err.msg);
        return 1;
    }
    printf("unwinder_new: %.1f us\n", t_new / 1e3);
    char dir[64];
    /* Debug files in the target's own file system, as pystrobe looks for them. */
    snprintf(dir, sizeof(dir), "/proc/%d/root", (int)pid);
    unwinder_set_root(u, dir);
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    static uint64_t pcs[NATIVE_MAX_FRAMES];
    uint64_t *held = xcalloc((size_t)repeat, 8), *unw = xcalloc((size_t)repeat, 8);
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0)
            continue;
        size_t n = 0;
        uint64_t h, w, reads, reads_warm = 0;
        int r = one(u, m, tid, pcs, &n, &h, &w, &reads);
        if (r < 0) {
            printf("thread %d: %s\n", (int)tid, strerror(-r));
            continue;
        }
        uint64_t t1 = ptstop_now_ns();
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < n; i++) {
            struct native_sym s;
            unwinder_symbolize(u, pcs[i], i == 0, &s);
            sb_addf(&sb, "    #%-2zu ", i);
            native_label(&s, &sb);
            sb_addc(&sb, '\n');
        }
        uint64_t t_sym = ptstop_now_ns() - t1;
        printf("thread %d: %zu frames; first: held %.1f us, unwind %.1f us, %" PRIu64
               " reads; symbolize %.1f us\n%s",
               (int)tid, n, h / 1e3, w / 1e3, reads, t_sym / 1e3, sb_str(&sb));
        sb_release(&sb);
        for (int k = 0; k < repeat; k++) {
            size_t n2;
            if (one(u, m, tid, pcs, &n2, &held[k], &unw[k], &reads) < 0)
                held[k] = unw[k] = 0;
            reads_warm = reads;
        }
        qsort(held, (size_t)repeat, 8, cmp_u64);
        qsort(unw, (size_t)repeat, 8, cmp_u64);
        printf("  warm (median of %d): held %.1f us, unwind %.1f us, %" PRIu64 " reads\n",
               repeat, held[repeat / 2] / 1e3, unw[repeat / 2] / 1e3, reads_warm);
    }
    closedir(d);
    free(held);
    free(unw);
    unwinder_free(u);
    mem_free(m);
    return 0;
}
