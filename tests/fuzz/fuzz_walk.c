/*
 * libFuzzer target for the per-sample path: thread list, stack walk,
 * code-object resolution, lines and thread names, on a fake process image of
 * one CPython version damaged by the fuzzer's input.  Built and run by
 * tests/fuzz/run.sh (`make fuzz`) as:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -Itests/unit -g -O1 \
 *       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o fuzz_walk \
 *       tests/fuzz/fuzz_walk.c \
 *       $(find common profiler symbolizer output -name '*.c' ! -name main.c) -lelf -lz -lm
 *   ./fuzz_walk -max_len=512 corpus/
 *
 * Seeds (each version's valid image, a few edits): tests/fuzz/corpus/walk/.
 *
 * Input: a version selector (1 byte, modulo the 9 versions), then edits of
 * 8 bytes each as tests/unit/fuzzpath.h's fz_mutate reads them.  The valid
 * images are built once; each input starts from a fresh copy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzzpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz_image images[FZ_NVERSIONS];
    static int built[FZ_NVERSIONS];
    struct fz_counts counts = {0};
    char why[256] = "";

    if (size < 1)
        return 0;
    size_t v = data[0] % FZ_NVERSIONS;
    if (!built[v]) {
        fz_build(&images[v], v);
        built[v] = 1;
    }
    fz_mutate(&images[v], data + 1, size - 1);
    if (fz_run(&images[v], &counts, why, sizeof(why)) < 0) {
        fprintf(stderr, "fuzz_walk: %d.%d: %s\n", fz_versions[v][0], fz_versions[v][1], why);
        abort();
    }
    return 0;
}
