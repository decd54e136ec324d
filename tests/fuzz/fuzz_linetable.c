/*
 * libFuzzer target for the line-table decoders, built and run by
 * tests/fuzz/run.sh (`make fuzz`) as:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -o fuzz_linetable tests/fuzz/fuzz_linetable.c \
 *       symbolizer/linetable.c
 *   ./fuzz_linetable -max_len=2048 corpus/
 *
 * Seeds (tables from tests/vectors/): tests/fuzz/corpus/linetable/.
 *
 * Input: format selector (1 byte), addrq (8 bytes), firstlineno (4 bytes),
 * then the table.  libFuzzer hands over an exactly-sized buffer, so ASan
 * catches any read past the table.
 */
#include <stdint.h>
#include <string.h>

#include "symbolizer/linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t addrq;
    int32_t first;

    if (size < 13)
        return 0;
    memcpy(&addrq, data + 1, sizeof(addrq));
    memcpy(&first, data + 9, sizeof(first));
    (void)lt_line((enum lt_format)(data[0] % 4), data + 13, size - 13, first, addrq);
    /* Also every small offset, as a sampler would ask for them. */
    for (int64_t q = -1; q < 64; q++)
        (void)lt_line((enum lt_format)(data[0] % 4), data + 13, size - 13, first, q);
    return 0;
}
