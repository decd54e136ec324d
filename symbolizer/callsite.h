/*
 * Where inlined code was called from.  A pc in code that the compiler
 * inlined into a function belongs, by the line table, to the inlined
 * function's source ("pycore_call.h:92" inside "map_next"); a frame label
 * wants the line in the function the symbol names: the call site of the
 * outermost inlined call.  Finding it in DWARF means walking a compilation
 * unit's DIEs, which is slow for big units, so each unit is walked once
 * and its outermost inlined calls kept sorted by address.
 */
#ifndef PYSTROBE_CALLSITE_H
#define PYSTROBE_CALLSITE_H

#include <elfutils/libdwfl.h>

struct callsite;

struct callsite *callsite_new(void);
/* Forgets every unit: call when modules may have been removed.  NULL-tolerant free. */
void callsite_clear(struct callsite *cs);
void callsite_free(struct callsite *cs);

/*
 * The call site of the outermost inlined call holding at (an address in
 * mod), with *line set; the file name is libdw's, valid while mod is.  NULL
 * when at is not in inlined code or mod has no debug information.
 */
const char *callsite_find(struct callsite *cs, Dwfl_Module *mod, Dwarf_Addr at, int *line);

#endif
