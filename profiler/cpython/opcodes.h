/*
 * What the walker knows of each CPython version's bytecode, to tell whether
 * a frame can be calling the frame read above it (versions as data, beside
 * the layouts): the opcodes a frame calls nothing at, the ones that push a
 * Python frame with no C call between (3.11+), and how many cache units
 * follow each opcode (3.11+), to find the instruction a frame is in.
 * tools/opcode-tables.py prints a version's tables from its opcode module.
 */
#ifndef PYSTROBE_OPCODES_H
#define PYSTROBE_OPCODES_H

#include <stdint.h>

struct opcodes {
    /* 3.11+: 256 characters, the cache units after each opcode ('0'-'9',
     * 'a'-'f'), 'x' for an opcode whose size its byte does not tell; NULL
     * for versions without caches */
    const char *caches;
    uint8_t quiet[32];   /* bitmap: a frame at one calls nothing (loads, returns, not started) */
    uint8_t operators[32]; /* bitmap: its Python callee is a special method called from C
                            * (operators, comparisons) */
    int compare_op;      /* < 3.9: COMPARE_OP, an operator only for opargs below 6 (not
                          * `in`, `is`, exception matches); else 0 */
    uint8_t pushes[32];  /* bitmap, 3.11+: may push a Python frame itself (calls, inlined
                          * __getitem__, properties, generators) */
    uint8_t resumes[32]; /* bitmap, 3.11+: those that resume a generator, whose frame is
                          * not on the data stack */
    int calls_at_cache;  /* 3.11, 3.12: while a frame it pushed runs, a frame's instruction
                          * pointer is at the last cache unit of its instruction */
    uint8_t returns[32]; /* bitmap, 3.11+: returns */
    int returns_unlinked; /* 3.12+: a returning frame is unlinked first, then cleared */
};

/* The tables of CPython major.minor, or NULL for an unknown version. */
const struct opcodes *opcodes_for(int major, int minor);

static inline int opcodes_in(const uint8_t *set, uint8_t op)
{
    return (set[op >> 3] >> (op & 7)) & 1;
}

/* Cache units after op, or -1 when its byte does not tell (3.11+). */
int opcodes_caches(const struct opcodes *ops, uint8_t op);

#endif
