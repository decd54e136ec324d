/*
 * Each writer's own cost, apart from reading the input: reads one folded
 * file into a profile (timed), then writes it in every format to /dev/null,
 * best of several runs.  Prints "NAME CPU_US" lines for bench/writers.py.
 *
 *   build/bench/writers_cost FILE.folded [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "output/foldedin.h"
#include "output/profile.h"
#include "output/writers.h"

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        enum out_format fmt;
    } formats[] = {
        {"folded", OUT_FOLDED},
        {"flamegraph", OUT_FLAMEGRAPH},
        {"speedscope", OUT_SPEEDSCOPE},
        {"pprof", OUT_PPROF},
    };
    if (argc < 2) {
        fprintf(stderr, "usage: writers_cost FILE.folded [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    struct profile p;
    struct pserr err;
    profile_init(&p);
    uint64_t t0 = cpu_ns();
    if (folded_read_file(&p, argv[1], &err) < 0) {
        fprintf(stderr, "writers_cost: %s\n", err.msg);
        return 1;
    }
    printf("read %.0f\n", (double)(cpu_ns() - t0) / 1e3);
    FILE *null = fopen("/dev/null", "w");
    if (!null)
        return 1;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        uint64_t best = UINT64_MAX;
        for (int r = 0; r < runs; r++) {
            uint64_t t = cpu_ns();
            if (out_write(null, &p, formats[i].fmt, NULL) < 0)
                return 1;
            t = cpu_ns() - t;
            best = t < best ? t : best;
        }
        printf("%s %.0f\n", formats[i].name, (double)best / 1e3);
    }
    fclose(null);
    profile_release(&p);
    return 0;
}
