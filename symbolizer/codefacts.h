/*
 * What naming must know of a CPython version to read its code objects: the
 * offsets of their fields, their strings, the kind of their line tables, and
 * what their bytecode tells of the frames running it.  profiler/cpython
 * fills these from its version tables (layout_code_facts); naming includes
 * nothing of it.
 */
#ifndef PYSTROBE_CODEFACTS_H
#define PYSTROBE_CODEFACTS_H

#include <stdint.h>

#include "symbolizer/linetable.h"
#include "symbolizer/pystr.h"

/*
 * A version's bytecode, to tell whether a frame can be calling the frame
 * read above it: the opcodes a frame calls nothing at, the ones that push a
 * Python frame with no C call between (3.11+), and how many cache units
 * follow each opcode (3.11+), to find the instruction a frame is in.
 * tools/opcode-tables.py prints a version's tables from its opcode module.
 */
struct opcode_facts {
    /* 3.11+: 256 characters, the cache units after each opcode ('0'-'9',
     * 'a'-'f'), 'x' for an opcode whose size its byte does not tell; NULL
     * for versions without caches */
    const char *caches;
    uint8_t quiet[32];   /* bitmap: a frame at one calls nothing (loads, returns, not started) */
    uint8_t operators[32]; /* bitmap: its Python callee is a special method called from C
                            * (operators, comparisons) */
    int compare_op;      /* < 3.9: COMPARE_OP, an operator only for opargs below 6 (not
                          * `in`, `is`, exception matches); else 0 */
    int oparg16;         /* 2.7: an opcode's argument is the 16 bits (low byte first)
                          * after it; else the one byte after it (wordcode) */
    uint8_t pushes[32];  /* bitmap, 3.11+: may push a Python frame itself (calls, inlined
                          * __getitem__, properties, generators) */
    uint8_t resumes[32]; /* bitmap, 3.11+: those that resume a generator, whose frame is
                          * not on the data stack */
    int calls_at_cache;  /* 3.11, 3.12: while a frame it pushed runs, a frame's instruction
                          * pointer is at the last cache unit of its instruction */
    uint8_t returns[32]; /* bitmap, 3.11+: returns */
    int returns_unlinked; /* 3.12+: a returning frame is unlinked first, then cleared */
};

static inline int codefacts_has(const uint8_t *set, uint8_t op)
{
    return (set[op >> 3] >> (op & 7)) & 1;
}

/* Cache units after op, or -1 when its byte does not tell (3.11+). */
static inline int codefacts_caches(const struct opcode_facts *ops, uint8_t op)
{
    if (!ops->caches)
        return 0;
    char c = ops->caches[op];
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A version's code objects.  Offsets are bytes; -1 (or 0 where said) when
 * the version has no such field. */
struct code_facts {
    int ob_type, tp_name;       /* of every object, of its type */
    int co_filename, co_name, co_qualname, co_firstlineno, co_linetable;
    int co_code_adaptive;       /* 3.11+: the bytecode, inline (ob_size code units) */
    int ob_size;                /* a variable-size object's item count (PyVarObject) */
    int co_code;                /* <= 3.10: the bytecode, a bytes object (0: none) */
    int co_flags;               /* <= 3.10: read for generator_flags (0: not read) */
    int co_stacksize, co_nlocalsplus; /* 3.11+: what a frame holds on the data stack */
    int frame_size;             /* 3.11+: sizeof(_PyInterpreterFrame), its fixed part */
    uint32_t generator_flags;   /* the co_flags of generators, coroutines, async generators */
    enum lt_format linetable;
    int trampoline;             /* 3.12+: C-stack entry frames run a code object named
                                 * "<interpreter trampoline>" in file "<shim>" */
    int init_shim;              /* 3.13+: a call of a class pushes a frame of the
                                 * interpreter's code "__init__" in "__init__" under its
                                 * __init__ (looked for from 3.12 on, which has none) */
    struct pystr_layout str;    /* names and files; its bytes fields for line tables and
                                 * (<= 3.10) bytecode */
    const struct opcode_facts *ops; /* NULL: frames are not checked */
};

#endif
