/*
 * libFuzzer target for the asyncio task reader (asyncio_collect: the
 * registry of tasks, each task, its await chain, who awaits it) on a fake
 * process image of one CPython version damaged by the fuzzer's input.
 * Built and run by tests/fuzz/run.sh (`make fuzz`) as:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -Itests/unit -g -O1 \
 *       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o fuzz_asyncio \
 *       tests/fuzz/fuzz_asyncio.c \
 *       $(find common profiler symbolizer output -name '*.c' ! -name main.c) -ldw -lelf -lz -lm
 *   ./fuzz_asyncio -max_len=512 corpus/
 *
 * Seeds (each version's valid image, a few edits): tests/fuzz/corpus/asyncio/
 * (tests/fuzz/make-seeds.py).
 *
 * Input: a version selector (1 byte, modulo the 9 versions 3.7-3.15 of
 * tests/unit/fuzzasync.h's fa_minors), then edits of 8 bytes each as its
 * fa_mutate reads them (fuzzpath.h's format).  The valid images are built
 * once; each input starts from a fresh copy.  A property of fa_check that
 * does not hold aborts with it on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzzasync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fa_image images[FA_NVERSIONS];
    static int built[FA_NVERSIONS];
    struct fa_counts counts = {0};
    char why[512] = "";

    if (size < 1)
        return 0;
    size_t v = data[0] % FA_NVERSIONS;
    if (!built[v]) {
        fa_build(&images[v], v);
        built[v] = 1;
    }
    fa_mutate(&images[v], data + 1, size - 1);
    if (fa_run(&images[v], &counts, why, sizeof(why)) < 0) {
        fprintf(stderr, "fuzz_asyncio: 3.%d: %s\n", fa_minors[v], why);
        abort();
    }
    return 0;
}
