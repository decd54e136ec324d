/*
 * An index for items the caller stores in its own array: open addressing
 * over (32-bit hash, item index) slots.  The caller hashes keys and says
 * whether item i equals a key; the table never sees the items themselves.
 */
#ifndef PYSTROBE_HTAB_H
#define PYSTROBE_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define HTAB_NONE UINT32_MAX

struct htab_slot {
    uint32_t hash;
    uint32_t idx1; /* item index + 1; 0 = empty */
};

struct htab {
    struct htab_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
};
#define HTAB_INIT { NULL, 0, 0 }

/* Equality test: does item idx equal key? */
typedef int (*htab_eq_fn)(const void *ctx, uint32_t idx, const void *key);

/* The index of the item equal to key, or HTAB_NONE. */
uint32_t htab_find(const struct htab *t, uint64_t hash, htab_eq_fn eq, const void *ctx,
                   const void *key);
/* Adds item idx under hash (the caller made sure no equal item is present). */
void htab_insert(struct htab *t, uint64_t hash, uint32_t idx);
/* Empties the table, keeping its memory. */
void htab_clear(struct htab *t);
void htab_release(struct htab *t);

#endif
