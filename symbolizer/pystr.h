/*
 * Python strings read from the target and turned into UTF-8: 2.7 str and
 * unicode, and every PEP 393 form (compact ASCII, compact 1/2/4-byte kinds,
 * legacy non-compact).  The output is always valid UTF-8: invalid bytes and
 * lone surrogates become U+FFFD.
 */
#ifndef PYSTROBE_PYSTR_H
#define PYSTROBE_PYSTR_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/target/mem.h"

/* Longest string decoded, in characters; longer ones are cut (and flagged). */
#define PYSTR_MAX_CHARS 4096

/* A version's string objects (profiler/cpython fills it: layout_str_facts). */
struct pystr_layout {
    int bytes27;                /* 2.7: str is a PyStringObject (bytes), unicode a type apart */
    int bytes_size, bytes_sval; /* PyBytesObject (2.7 PyStringObject): ob_size, ob_sval */
    int uni_length, uni_state;  /* PEP 393 PyASCIIObject (2.7 unicode: length only) */
    int uni_ascii_size;         /* sizeof(PyASCIIObject): compact ASCII data */
    int uni_compact_size;       /* sizeof(PyCompactUnicodeObject): compact data */
    int uni_data_any;           /* legacy (non-compact) data pointer */
    int uni27_str;              /* 2.7 PyUnicodeObject: Py_UNICODE* (UCS-2 or UCS-4) */
};

enum pystr_type {
    PYSTR_UNICODE,  /* a 3.x str, or a 2.7 unicode */
    PYSTR_BYTES27,  /* a 2.7 str */
};

/*
 * Reads the string object at addr and appends it as UTF-8 to out.  type says
 * which kind of object addr is (the caller knows from context or from its
 * type).  unicode27_width is sizeof(Py_UNICODE) of a 2.7 target (2 or 4).
 * Returns 0 (1 when the string was cut at PYSTR_MAX_CHARS), or a negative
 * errno: -EFAULT unreadable, -EINVAL not a plausible string.
 */
int pystr_read(struct mem *m, const struct pystr_layout *l, uint64_t addr,
               enum pystr_type type, int unicode27_width, struct strbuf *out);

/*
 * Decodes count characters of width bytes each (1 = Latin-1, 2 = UCS-2,
 * 4 = UCS-4) from data and appends UTF-8 to out.
 */
void pystr_decode_ucs(const unsigned char *data, size_t count, int width, struct strbuf *out);
/* Appends bytes that should be UTF-8, replacing invalid sequences with U+FFFD. */
void pystr_decode_utf8(const unsigned char *data, size_t len, struct strbuf *out);

#endif
