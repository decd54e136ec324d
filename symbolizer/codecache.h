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

#include "profiler/target/mem.h"
#include "symbolizer/codefacts.h"
#include "symbolizer/names.h"

/* The file of a code object whose co_filename is no str. */
#define CODECACHE_INVALID_FILE "<invalid filename>"
/* The file of a frame whose code object cannot be read (codecache_unreadable_frame). */
#define CODECACHE_UNKNOWN_FILE "<unknown>"

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
 * A cache reading through m the code objects that cf describes (copied),
 * interning into names (m and names outlive the cache).  code_type is
 * &PyCode_Type when known (else 0: types are checked by name);
 * unicode27_width is sizeof(Py_UNICODE) of a 2.7 target.
 */
struct codecache *codecache_new(struct mem *m, const struct code_facts *cf, struct names *names,
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
 * codecache_resolve without reading cached entries again: what the cache
 * holds is taken as it is (new code objects are loaded).  For looking at a
 * stack before it is kept; codecache_resolve validates what is kept.
 */
int codecache_peek(struct codecache *cc, const uint64_t *addrs, size_t n,
                   struct code_entry **out);

/*
 * The frame id for executing byte offset addrq of the code (addrq < 0: not
 * started).  With by_function, the line is the function's first line.  The
 * line is NAMES_LINE_UNKNOWN when the line table is no bytes object or
 * gives a negative line; an instruction the table gives no line, or one
 * past its end, is at the first line.
 */
uint32_t codecache_frame(struct codecache *cc, struct code_entry *e, int64_t addrq,
                         int by_function);

/*
 * 0 when a frame of this code at byte offset addrq cannot be calling the
 * frame above it, of code callee (NULL: unknown): it has not started, or
 * its instruction calls nothing (a load, a return), or it is an operator
 * (a + b, a < b...) and callee no special method (__add__, __lt__...), or,
 * when that frame was pushed by this one's own instruction with no C call
 * between (pushed; 3.11+), the instruction is not one that pushes frames
 * (a call, an inlined __getitem__ or property, a generator).  A stack
 * that shows it so was read while it changed.  1 otherwise, and whenever
 * the bytecode is unknown.
 */
int codecache_can_call(const struct codecache *cc, const struct code_entry *e, int64_t addrq,
                       int pushed, const struct code_entry *callee);

/*
 * 3.11+: 1 when a frame of this code at byte offset addrq may be calling a
 * frame it pushed onto the data stack itself (a call, an inlined
 * __getitem__ or property), which then runs codecache_frame_bytes after
 * it.  3.11 and 3.12 tell for sure (the instruction pointer is on the
 * instruction's last cache unit while that frame runs); on 3.13 the
 * instruction is one that does, and the frame found there tells (one at
 * a return had returned).  0 otherwise, or unknown.
 */
int codecache_pushing(const struct codecache *cc, const struct code_entry *e, int64_t addrq);

/* 1 when codecache_pushing says so for sure (3.11, 3.12). */
int codecache_pushing_sure(const struct codecache *cc);

/*
 * 3.12+: 1 when a frame of this code at byte offset addrq is at a return:
 * such a frame is unlinked from the stack before it is cleared, so one read
 * there had left the stack (or was about to, in the instant before).
 */
int codecache_returned(const struct codecache *cc, const struct code_entry *e, int64_t addrq);

/*
 * 1 when a frame of this code at byte offset addrq is at a return (3.11+:
 * also RETURN_GENERATOR; <= 3.10: also a yield, which leaves the caller).
 */
int codecache_at_return(const struct codecache *cc, const struct code_entry *e, int64_t addrq);

/* The same for the code object at code (cc: a struct codecache), as the walker asks it. */
int codecache_code_at_return(void *cc, uint64_t code, int64_t addrq);

/* 3.11+: the bytes a frame of this code takes on the data stack (0: unknown). */
uint32_t codecache_frame_bytes(const struct code_entry *e);

/* 1 for the code of a generator, coroutine or async generator (read on <= 3.10 only). */
int codecache_is_generator(const struct code_entry *e);

/*
 * 1 for 3.12's interpreter trampoline, the code of the entry frames CPython
 * keeps on the C stack.  The walker skips those by their owner: one that
 * reaches the symbolizer was read while its C stack was rewritten.
 */
int codecache_is_shim(const struct code_entry *e);

/*
 * 3.13+: 1 for the interpreter's own code of the frame that a call of a
 * class pushes under the class's __init__ (it checks that __init__ returned
 * None): no frame of the program's, left out of stacks.
 */
int codecache_is_init_shim(const struct code_entry *e);

/*
 * The frame id of a frame whose code object at addr cannot be read (no code
 * object, or one whose name or file cannot be read): named "<unreadable code
 * object at 0xADDR>", in file CODECACHE_UNKNOWN_FILE, line NAMES_LINE_UNKNOWN.
 */
uint32_t codecache_unreadable_frame(struct codecache *cc, uint64_t addr);

/* The function id of an entry. */
uint32_t codecache_func(const struct code_entry *e);

const struct codecache_stats *codecache_stats(const struct codecache *cc);

#endif
