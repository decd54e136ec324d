#include "symbolizer/linetable.h"

#include <limits.h>

#include "common/util.h"

/*
 * Lines are accumulated in 64 bits and clamped to int after every delta.  A
 * delta is at most 32 bits wide, so the sum cannot overflow, and a hostile
 * table saturates instead of wrapping.
 */
static int64_t line_add(int64_t line, int64_t delta)
{
    line += delta;
    if (line > INT_MAX)
        return INT_MAX;
    if (line < INT_MIN)
        return INT_MIN;
    return line;
}

static int sbyte(uint8_t b)
{
    return b < 128 ? (int)b : (int)b - 256;
}

/*
 * 2.7 and 3.6-3.9 co_lnotab: (address increment, line increment) pairs; a
 * pair applies once its address is <= addrq.  The table does not record the
 * code's length, so offsets past the last pair keep the last line, as
 * PyCode_Addr2Line does.  A trailing odd byte is ignored.
 */
static int lnotab_line(const uint8_t *t, size_t len, int first, int64_t addrq,
                       int is_signed)
{
    int64_t line = first;
    int64_t addr = 0;

    for (size_t i = 0; i + 1 < len; i += 2) {
        addr += t[i];
        if (addr > addrq)
            break;
        line = line_add(line, is_signed ? sbyte(t[i + 1]) : t[i + 1]);
    }
    return (int)line;
}

/*
 * 3.10 co_linetable: (byte length u8, line delta s8) pairs covering the code
 * from offset 0; a delta of -128 marks a range without a line and leaves the
 * running line alone.  Zero-length pairs never match but still apply their
 * delta.
 */
static int linetable310_line(const uint8_t *t, size_t len, int first, int64_t addrq)
{
    int64_t line = first;
    int64_t end = 0;

    for (size_t i = 0; i + 1 < len; i += 2) {
        int64_t start = end;
        int delta = sbyte(t[i + 1]);
        int64_t here = -1;

        end += t[i];
        if (delta != -128) {
            line = line_add(line, delta);
            here = line;
        }
        if (start <= addrq && addrq < end)
            return (int)here;
    }
    return -1;
}

/*
 * A varint of the 3.11 location table: 6-bit chunks, least significant
 * first, bit 6 set on all but the last.  Only the n bytes of the current
 * entry are read; bits beyond 32 are dropped like CPython's unsigned int.
 */
static uint32_t read_varint(const uint8_t *p, size_t n)
{
    uint32_t val = 0;
    unsigned shift = 0;

    for (size_t k = 0; k < n; k++) {
        if (shift < 32) {
            val |= (uint32_t)(p[k] & 63) << shift;
            shift += 6;
        }
        if (!(p[k] & 64))
            break;
    }
    return val;
}

static int64_t read_svarint(const uint8_t *p, size_t n)
{
    uint32_t u = read_varint(p, n);

    return (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
}

enum {
    LOC_ONE_LINE0 = 10,
    LOC_ONE_LINE1 = 11,
    LOC_ONE_LINE2 = 12,
    LOC_NO_COLUMNS = 13,
    LOC_LONG = 14,
    LOC_NONE = 15,
};

/* The line delta of a location entry whose header code is code and whose
 * n payload bytes follow at p. */
static int64_t loc_line_delta(int code, const uint8_t *p, size_t n)
{
    switch (code) {
    case LOC_ONE_LINE1:
        return 1;
    case LOC_ONE_LINE2:
        return 2;
    case LOC_NO_COLUMNS:
    case LOC_LONG:
        return read_svarint(p, n);
    default: /* short forms, ONE_LINE0 and NONE keep the line */
        return 0;
    }
}

/*
 * 3.11+ location table (CPython's Objects/locations.md).  Each entry starts
 * with a byte with bit 7 set: bits 3-6 are the code, bits 0-2 the length in
 * code units minus one.  Payload bytes never have bit 7 set, so the next
 * entry starts at the next byte that does; that also bounds the varints.
 */
static int locations311_line(const uint8_t *t, size_t len, int first, int64_t addrq)
{
    int64_t line = first;
    int64_t end = 0;
    size_t i = 0;

    while (i < len) {
        uint8_t head = t[i];
        int code = (head >> 3) & 15;
        size_t next = i + 1;
        int64_t start = end;

        while (next < len && !(t[next] & 0x80))
            next++;
        line = line_add(line, loc_line_delta(code, t + i + 1, next - i - 1));
        end += ((head & 7) + 1) * 2;
        if (start <= addrq && addrq < end)
            return code == LOC_NONE ? -1 : (int)line;
        i = next;
    }
    return -1;
}

int lt_line(enum lt_format fmt, const uint8_t *table, size_t len, int firstlineno,
            int64_t addrq)
{
    if (addrq < 0)
        return firstlineno;
    if (!table)
        len = 0;
    switch (fmt) {
    case LT_LNOTAB_27:
        return lnotab_line(table, len, firstlineno, addrq, 0);
    case LT_LNOTAB_36:
        return lnotab_line(table, len, firstlineno, addrq, 1);
    case LT_LINETABLE_310:
        return linetable310_line(table, len, firstlineno, addrq);
    case LT_LOCATIONS_311:
        return locations311_line(table, len, firstlineno, addrq);
    }
    return -1;
}
