/*
 * Reading Python objects of the target that are not frames or code: type
 * names, dicts, module and instance attributes, and the threading module's
 * registry of live threads (for thread names).  Every function bounds its
 * work and treats what it reads as untrusted.
 */
#ifndef PYSTROBE_PYOBJ_H
#define PYSTROBE_PYOBJ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/cpython/pyrt.h"

/* Dicts larger than this are not read. */
#define PYDICT_MAX_ENTRIES 65536

struct pydict_entry {
    uint64_t hash; /* the stored hash, 0 where the layout keeps none */
    uint64_t key, value;
};

/* Appends the type name of obj (e.g. "code") to out.  0 or a negative errno. */
int pyobj_type_name(struct pyrt *rt, uint64_t obj, struct strbuf *out);

/*
 * Reads the live (key, value) entries of the dict at addr into a new array
 * *out (caller frees) of *n entries.  0 or a negative errno.
 */
int pydict_entries(struct pyrt *rt, uint64_t dict, struct pydict_entry **out, size_t *n);

/*
 * The same, looking at the first max entry slots only (insertion order on
 * 3.6+, table order on 2.7): a dict's first items at a bounded cost.
 */
int pydict_entries_max(struct pyrt *rt, uint64_t dict, size_t max, struct pydict_entry **out,
                       size_t *n);

/* Finds the value for a str key in the dict at addr.  0, -ENOENT, or a negative errno. */
int pydict_get_str(struct pyrt *rt, uint64_t dict, const char *key, uint64_t *value);

/* The value of a Python 3 int of at most 60 bits.  0, -ERANGE (bigger), or -errno. */
int pyobj_small_int(struct pyrt *rt, uint64_t obj, int64_t *value);

/* The value of attribute name of an ordinary instance obj.  0, -ENOENT or -errno. */
int pyobj_getattr(struct pyrt *rt, uint64_t obj, const char *name, uint64_t *value);

/* Appends str or (2.7) unicode object obj to out as UTF-8.  0 or a negative errno. */
int pyobj_str(struct pyrt *rt, uint64_t obj, struct strbuf *out);

struct pythread_name {
    uint64_t ident; /* threading's ident: the thread state's thread_id */
    pid_t native_id; /* 3.8+: its Linux thread id as the target sees it, 0 unknown */
    char *name;     /* UTF-8, owned */
};

/*
 * Reads threading._active of interpreter interp: the ident and name of each
 * live threading.Thread, or, when idents is not NULL, of those of the
 * nidents idents only (the others cost no read).  *out (caller frees with
 * pythread_names_free) has *n entries.  Returns 0 (with *n = 0 when
 * threading was never imported) or a negative errno.
 */
int pythread_names(struct pyrt *rt, uint64_t interp, const uint64_t *idents, size_t nidents,
                   struct pythread_name **out, size_t *n);
void pythread_names_free(struct pythread_name *v, size_t n);

#endif
