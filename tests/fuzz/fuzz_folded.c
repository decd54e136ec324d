/*
 * libFuzzer target for the folded-stack reader (not built by default):
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o fuzz_folded tests/fuzz/fuzz_folded.c output/foldedin.c output/profile.c \
 *       output/folded.c output/diff.c output/label.c symbolizer/names.c common/util.c common/htab.c -lm
 *
 * Whatever the text, the reader either fails with a message or gives a
 * profile whose folded form reads back to the same samples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/diff.h"
#include "output/folded.h"
#include "output/foldedin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct profile p, q, d;
    struct pserr err;
    profile_init(&p);
    if (folded_read(&p, (const char *)data, size, "fuzz", &err) == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        /* (A first line that reads as austin's "# key: value" header is the
         * format's one ambiguity: nothing to compare then.) */
        if (f && folded_write(f, &p) == 0 && fclose(f) == 0 && strncmp(text, "# ", 2) != 0) {
            profile_init(&q);
            if (folded_read(&q, text, len, "again", &err) != 0 || q.total != p.total)
                abort();
            profile_init(&d);
            diff_normalize(&d, &q);
            struct diff_row *rows;
            (void)diff_rows(&d, &p, &rows);
            free(rows);
            profile_release(&d);
            profile_release(&q);
        }
        free(text);
    }
    profile_release(&p);
    return 0;
}
