/*
 * Values of the target's objects as short, safe text, and the local
 * variables of its frames (dump --locals).  Built-in types are told by the
 * address of their type object where the interpreter exports it, else by the
 * type's name and subclass flags; everything read is bounded: a value costs
 * at most PYVAL_MAX_READS read calls, strings are cut, containers show their
 * first items and nest PYVAL_MAX_DEPTH deep.  Renderings:
 *
 *   None True False 42 -5 1267650600228229401496703205376 <int of 400 bits>
 *   1.5 1e+100 inf -0.0 'text' b'\x00' 'long text...'... (str, 200 chars)
 *   () (1,) [1, 2, [3, [...]]] {'a': 1} set() frozenset({1})
 *   [0, 1, 2, 3, 4, ...] (list, 1000 items)    5 (MyInt)    <Point at 0x7f..>
 *   <unreadable at 0x10>
 *
 * 2.7 shows its own reprs: 5L for a long, u'x' for unicode, 'x' for str,
 * set([1]).  Reads go through the memory source only (live process or core).
 */
#ifndef PYSTROBE_PYVAL_H
#define PYSTROBE_PYVAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "profiler/cpython/pyrt.h"

#define PYVAL_MAX_READS 16   /* read calls per value (locals: per variable) */
#define PYVAL_MAX_CHARS 80   /* characters of a str or bytes shown */
#define PYVAL_MAX_DIGITS 50  /* decimal digits of an int shown exactly */
#define PYVAL_MAX_ITEMS 5    /* items of a container shown */
#define PYVAL_MAX_DEPTH 2    /* containers nested deeper show as [...] */
#define PYVAL_MAX_LOCALS 1024 /* slots of a frame looked at */

struct pyval;

/* A renderer over rt's process (rt outlives it); it caches type objects. */
struct pyval *pyval_new(struct pyrt *rt);
/* pyval_free(NULL) does nothing. */
void pyval_free(struct pyval *pv);

/* Appends the rendering of the object at obj to out (never fails). */
void pyval_render(struct pyval *pv, uint64_t obj, struct strbuf *out);

enum pylocal_kind {
    PYLOCAL_ARG,    /* a parameter (positional, keyword-only, *args, **kwargs) */
    PYLOCAL_LOCAL,
    PYLOCAL_CELL,   /* a variable inner functions capture: its cell's content */
    PYLOCAL_FREE,   /* a variable captured from an outer function */
};

/* "arg", "local", "cell", "free" */
const char *pylocal_kind_name(enum pylocal_kind k);

struct pylocal {
    char *name;     /* UTF-8, owned */
    enum pylocal_kind kind;
    char *value;    /* the rendering, owned */
};

struct pylocals {
    struct pylocal *v;
    size_t n, cap;
};
#define PYLOCALS_INIT { NULL, 0, 0 }
void pylocals_release(struct pylocals *ls);

/*
 * Appends the bound variables of a frame to out, in the code object's order
 * (parameters first); unbound (NULL) ones are left out.  frame is a
 * PyFrameObject (<= 3.10) or a _PyInterpreterFrame (3.11+); when code is
 * not 0 the frame must still run that code object.  Returns 0, or a negative
 * errno: -EFAULT unreadable, -EINVAL not a frame of a code object (or not of
 * code any more), -E2BIG more slots than PYVAL_MAX_LOCALS.
 */
int pyval_locals(struct pyval *pv, uint64_t frame, uint64_t code, struct pylocals *out);

/* Appends Python's repr() of a float (the shortest digits that read back the same). */
void pyval_float_repr(double v, struct strbuf *out);

#endif
