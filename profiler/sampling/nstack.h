/*
 * Native frames merged with Python frames (record and dump --native).
 *
 * For each thread walked, the snapshot calls the hooks this module gives
 * (struct snap_native): a live thread is held (stopped with ptrace) only
 * while its registers are read, its native stack unwound and its Python
 * stack walked, then let go; a core's threads are not held, their registers
 * come from the core.  Once the Python frames are resolved, the two stacks
 * are merged: every call of the interpreter's eval loop in the native
 * stack is replaced, in place, by the Python frames it runs (one per call
 * on <= 3.10; on 3.11+ a call runs its entry frame and the frames it
 * called without leaving the loop), and C frames (extensions, libc, the
 * interpreter's own C functions) are kept where they are.
 */
#ifndef PYSTROBE_NSTACK_H
#define PYSTROBE_NSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "common/util.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"

struct nstack_stats {
    uint64_t held;         /* threads held (live) */
    uint64_t hold_failed;  /* threads that could not be held: Python frames only */
    uint64_t held_ns;      /* time threads spent held, in all */
    uint64_t held_max_ns;  /* the longest one hold */
    uint64_t unwound;      /* native stacks unwound */
    uint64_t unwind_failed; /* threads whose native stack could not be had */
    uint64_t mismatched;   /* merges where eval-loop calls and Python frames did not pair up */
};

struct nstack;

/*
 * Native stacks for s's process, from its threads' registers as the memory
 * source gives them (task.h: a live thread is held, a core's are saved).
 * NULL with err set when the unwinder cannot be made.
 */
struct nstack *nstack_new(struct session *s, struct pserr *err);
void nstack_free(struct nstack *ns);

/* The hooks to put in snap_opts.native. */
const struct snap_native *nstack_hooks(struct nstack *ns);
const struct nstack_stats *nstack_stats(const struct nstack *ns);

/* Libraries loaded since the start: looks at the mappings again. */
void nstack_refresh(struct nstack *ns);

/*
 * 1 when a native function named func is the eval loop, whose name is name
 * (the version's eval_function: 3.x's one function that runs the bytecode,
 * which PyEval_EvalFrameEx only wraps; 2.7's PyEval_EvalFrameEx), or a part
 * of it gcc split off (name.cold).
 */
int nstack_is_eval(const char *func, const char *name);

/*
 * The merge itself, innermost first: native frames 0..nn (is_eval: which
 * are eval-loop calls) and Python frames 0..np (entry: entered from C).
 * Writes at most max items to order: a Python frame j as j, a native frame
 * i as -(i + 1).  An eval call with no Python frame left stays a native
 * frame; Python frames left when the native stack ends (an unwind cut
 * short) go at the outer end.  *mismatch is set when either happened.
 * Returns the number of items written.
 */
size_t nstack_merge_order(const uint8_t *is_eval, size_t nn, const uint8_t *entry, size_t np,
                          int32_t *order, size_t max, int *mismatch);

#endif
