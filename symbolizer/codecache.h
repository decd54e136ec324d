/*
 * Code objects of the target turned into interned functions, cached by
 * address.  A cached entry is re-validated (one vectored read for all the
 * code objects of a sample) before each use in a later sample, so a code
 * object freed and another allocated at the same address is noticed and
 * reloaded, never mislabelled.
 */
#ifndef PYSTROBE_CODECACHE_H
#define PYSTROBE_CODECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "profiler/layout.h"
#include "profiler/mem.h"
#include "symbolizer/names.h"

/* Line tables longer than this are not cached (lines show as the first line). */
#define CODECACHE_MAX_TABLE (1u << 20)
/* The cache is emptied when it holds this many code objects. */
#define CODECACHE_MAX_ENTRIES 65536

struct code_entry;

struct codecache_stats {
    uint64_t hits, loads, stale, bad;
    uint64_t moved; /* loads given up: the code object changed while it was read */
};

struct codecache;

/*
 * A cache reading through m with layout l, interning into names (all three
 * outlive the cache).  code_type is &PyCode_Type when known (else 0: types are
 * checked by name); unicode27_width is sizeof(Py_UNICODE) of a 2.7 target.
 */
struct codecache *codecache_new(struct mem *m, const struct pylayout *l, struct names *names,
                                uint64_t code_type, int unicode27_width);
void codecache_free(struct codecache *cc);

/*
 * Resolves the code objects at addrs[0..n) (duplicates welcome): validates
 * the cached ones not yet validated in this call with one vectored read,
 * loads the others, and sets out[i] to the entry, or NULL when addrs[i] is
 * not a readable code object.  Entries stay valid until the next call.
 * Returns the number of NULLs, or a negative errno when the target is gone.
 */
int codecache_resolve(struct codecache *cc, const uint64_t *addrs, size_t n,
                      struct code_entry **out);

/*
 * Validation folded into someone else's read (the stack walker's recheck):
 * codecache_round starts a round that ends at the next codecache_resolve;
 * codecache_plan fills iov[0..k) (k <= room, returned) with the reads that
 * validate the cached entries among addrs[0..n) not yet validated in the
 * round, and codecache_planned takes those entries back once read (iov NULL:
 * the read failed).  Nothing may touch the cache in between.  The entries so
 * validated are not read again by the round's codecache_resolve.
 */
void codecache_round(struct codecache *cc);
size_t codecache_plan(struct codecache *cc, const uint64_t *addrs, size_t n, struct mem_iov *iov,
                      size_t room);
void codecache_planned(struct codecache *cc, const struct mem_iov *iov);

/*
 * The frame id for executing byte offset addrq of the code (addrq < 0: not
 * started).  With by_function, the line is the function's first line.
 */
uint32_t codecache_frame(struct codecache *cc, struct code_entry *e, int64_t addrq,
                         int by_function);

/*
 * 0 when a frame of this code at byte offset addrq cannot be calling another
 * frame: it has not started, or it is at an opcode that calls nothing (see
 * pylayout.not_calling).  A stack showing it as a caller was torn.
 * 1 otherwise, and when the bytecode is unknown.
 */
int codecache_can_call(const struct codecache *cc, const struct code_entry *e, int64_t addrq);

/* 1 for the code of a generator, coroutine or async generator (read on <= 3.10 only). */
int codecache_is_generator(const struct code_entry *e);

/*
 * 1 for 3.12's interpreter trampoline, the code of the entry frames CPython
 * keeps on the C stack.  The walker skips those by their owner: one that
 * reaches the symbolizer was read while its C stack was rewritten.
 */
int codecache_is_shim(const struct code_entry *e);

/* The function id of an entry. */
uint32_t codecache_func(const struct code_entry *e);

const struct codecache_stats *codecache_stats(const struct codecache *cc);

#endif
