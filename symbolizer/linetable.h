/*
 * Line-number tables of CPython code objects, decoded from a local copy of
 * the table's bytes.  Pure functions: no process access, no allocation, work
 * bounded by the table's length, safe on any byte sequence.
 */
#ifndef PYSTROBE_LINETABLE_H
#define PYSTROBE_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum lt_format {
    LT_LNOTAB_27,    /* 2.7 co_lnotab: (addr u8, line u8) pairs */
    LT_LNOTAB_36,    /* 3.6-3.9 co_lnotab: (addr u8, line s8) pairs */
    LT_LINETABLE_310, /* 3.10 co_linetable: (start delta u8, line delta s8; -128 = none) */
    LT_LOCATIONS_311, /* 3.11+ co_linetable: the location table of Objects/locations.md */
};

/*
 * The source line executing at byte offset addrq of the code object's
 * bytecode.  addrq < 0 (a frame that has not started) gives firstlineno.
 * Returns -1 when the table says the instruction has no line, or (3.10+)
 * when addrq lies past the end of the table; an lnotab (<= 3.9) does not
 * know the bytecode's length and keeps the last line.
 */
int lt_line(enum lt_format fmt, const uint8_t *table, size_t len, int firstlineno,
            int64_t addrq);

#endif
