/*
 * dump --greenlets: every greenlet (address, type, state, where it runs,
 * its stack), then the greenlets grouped by identical state and stack,
 * largest group first; as text or as JSON keys.
 */
#ifndef PYSTROBE_DUMP_GREENLETS_H
#define PYSTROBE_DUMP_GREENLETS_H

#include "common/util.h"
#include "profiler/cpython/greenlet.h"

struct session;

/* The text after the threads' dump. */
void dump_greenlets_text(struct session *s, const struct greenlet_set *gs, struct strbuf *out);
/* "greenlets", "greenlet_summary" and "greenlet_stats", for the dump's JSON object. */
void dump_greenlets_json(struct session *s, const struct greenlet_set *gs, struct strbuf *out);

#endif
