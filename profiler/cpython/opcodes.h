/*
 * What the walker knows of each CPython version's bytecode, to tell whether
 * a frame can be calling the frame read above it (versions as data, beside
 * the layouts): struct opcode_facts (symbolizer/codefacts.h) for each
 * version.  tools/opcode-tables.py prints a version's tables from its
 * opcode module.
 */
#ifndef PYSTROBE_OPCODES_H
#define PYSTROBE_OPCODES_H

#include "symbolizer/codefacts.h"

/* The tables of CPython major.minor, or NULL for an unknown version. */
const struct opcode_facts *opcodes_for(int major, int minor);

#endif
