/*
 * dump --tasks: every asyncio task (address, name, state, where it runs or
 * what it waits on, its await stack), the await tree, then the tasks
 * grouped by identical state and stack, largest group first; as text or
 * as JSON keys.
 */
#ifndef PYSTROBE_DUMP_TASKS_H
#define PYSTROBE_DUMP_TASKS_H

#include "common/util.h"
#include "profiler/cpython/asyncio.h"

struct session;
struct snapshot;

/* The text after the threads' dump (and the greenlets'). */
void dump_tasks_text(struct session *s, const struct snapshot *sn, const struct task_set *ts,
                     struct strbuf *out);
/* "tasks", "task_tree", "task_summary" and "task_stats", for the dump's JSON object. */
void dump_tasks_json(struct session *s, const struct snapshot *sn, const struct task_set *ts,
                     struct strbuf *out);

#endif
