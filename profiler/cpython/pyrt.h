/*
 * Finding the interpreter in a process: which ELF file holds it, where it is
 * loaded, which CPython version it is, and where its runtime state lives.
 */
#ifndef PYSTROBE_PYRT_H
#define PYSTROBE_PYRT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"

/* How the runtime state was found (the first that worked, in this order). */
enum pyrt_route {
    ROUTE_DYNSYM,   /* _PyRuntime / interp_head in .dynsym */
    ROUTE_SYMTAB,   /* ... in .symtab */
    ROUTE_SECTION,  /* the .PyRuntime section (3.10+) */
    ROUTE_SCAN,     /* a validated scan of .PyRuntime/.data/.bss */
    ROUTE_COUNT
};

struct pyrt {
    pid_t pid;
    struct mem *mem;        /* not owned */
    struct pylayout layout; /* the version's table, or from _Py_DebugOffsets */
    int major, minor;
    char version[32];       /* "3.12.1", or "3.9" when the micro is unknown */
    char *binary;           /* path of the ELF holding the interpreter, as mapped */
    int binary_is_exe;      /* the executable itself (static libpython) */
    uint64_t bias;          /* load bias of that ELF */
    uint64_t runtime;       /* &_PyRuntime (3.7+), 0 before */
    uint64_t interp_head;   /* address of the pointer to the first interpreter */
    uint64_t tstate_current; /* &_PyThreadState_Current (2.7, 3.6), else 0 */
    uint64_t code_type;     /* &PyCode_Type when exported, else 0 */
    uint64_t frame_type;    /* &PyFrame_Type when exported, else 0 */
    uint64_t known[PYK_COUNT]; /* see enum known_object (layout.h) */
    int unicode27_width;    /* 2.7: sizeof(Py_UNICODE), 2 or 4 */
    /* Where GIL waiters block, for versions that keep the GIL in statics:
     * 3.6's condition variables and mutexes ([start, end) each), or 2.7's
     * interpreter_lock, the pointer to its semaphore (gil_lock_ptr). */
    uint64_t gil_statics[GIL_STATIC_SYMBOLS][2];
    int ngil_statics;
    uint64_t gil_lock_ptr;
    enum pyrt_route route;
};

/*
 * Finds the interpreter in process pid, reading through mem.  Returns 0, or a
 * negative errno with err saying what failed:
 *   -ESRCH no such process; -EPERM/-EACCES not allowed;
 *   -ENOEXEC no Python runtime in the process;
 *   -ENOTSUP a Python version pystrobe does not know (the message names it).
 * The environment variable PYSTROBE_ROUTE (dynsym, symtab, section or scan;
 * a comma-separated list) restricts the routes tried, for tests.
 */
int pyrt_attach(struct pyrt *rt, struct mem *mem, pid_t pid, struct pserr *err);
void pyrt_release(struct pyrt *rt);

/* " (not yet tested with pystrobe)" after the version of a newer Python than
 * pystrobe knows (its layout untested), else "". */
const char *pyrt_tested_note(const struct pyrt *rt);

/* Reads the address of the first interpreter state.  0 or a negative errno. */
int pyrt_interp(struct pyrt *rt, uint64_t *interp);

/*
 * The thread state holding the GIL in interpreter interp, 0 when none does;
 * a hint, since the two fields are read separately.  0 or a negative errno.
 */
int pyrt_gil_holder(struct pyrt *rt, uint64_t interp, uint64_t *tstate);

/* An address range a thread waiting for the GIL sleeps in (a futex word). */
struct gil_span {
    uint64_t start, end;
};
#define GIL_SPANS_MAX 4

/*
 * The memory that threads waiting for the GIL block on: its condition
 * variables and mutexes (2.7: the semaphore).  Returns how many spans were
 * filled (at most GIL_SPANS_MAX), or a negative errno.
 */
int pyrt_gil_spans(struct pyrt *rt, uint64_t interp, struct gil_span *out);

/*
 * pyrt_gil_holder in one read, for 3.7+, given the span pyrt_gil_spans
 * found (the GIL's state): -ENOENT when the version keeps it elsewhere.
 */
int pyrt_gil_holder_in(struct pyrt *rt, const struct gil_span *gil, uint64_t *tstate);

/* 1 when obj's type is named exactly name (a short ASCII name), else 0. */
int pyrt_type_is(struct pyrt *rt, uint64_t obj, const char *name);

/* The route's name ("dynsym", ...). */
const char *pyrt_route_name(enum pyrt_route route);

/*
 * Checks that interp looks like a live PyInterpreterState: a non-empty list
 * of thread states pointing back at it.  With need_frame, also that some
 * thread's top frame leads to a code object.  1 when it does, else 0.
 */
int pyrt_validate_interp(struct pyrt *rt, uint64_t interp, int need_frame);

#endif
