#include "common/htab.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static uint32_t fold(uint64_t hash)
{
    return (uint32_t)(hash ^ (hash >> 32));
}

uint32_t htab_find(const struct htab *t, uint64_t hash, htab_eq_fn eq, const void *ctx,
                   const void *key)
{
    if (!t->cap)
        return HTAB_NONE;
    uint32_t h = fold(hash);
    size_t mask = t->cap - 1;
    for (size_t i = h & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        const struct htab_slot *s = &t->slots[i];
        if (!s->idx1)
            return HTAB_NONE;
        if (s->hash == h && eq(ctx, s->idx1 - 1, key))
            return s->idx1 - 1;
    }
    return HTAB_NONE;
}

static void place(struct htab_slot *slots, size_t cap, uint32_t h, uint32_t idx1)
{
    size_t mask = cap - 1;
    size_t i = h & mask;
    while (slots[i].idx1)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].idx1 = idx1;
}

void htab_insert(struct htab *t, uint64_t hash, uint32_t idx)
{
    if ((t->count + 1) * 4 > t->cap * 3) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct htab_slot *ns = xcalloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].idx1)
                place(ns, ncap, t->slots[i].hash, t->slots[i].idx1);
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    place(t->slots, t->cap, fold(hash), idx + 1);
    t->count++;
}

void htab_clear(struct htab *t)
{
    if (t->slots)
        memset(t->slots, 0, t->cap * sizeof(*t->slots));
    t->count = 0;
}

void htab_release(struct htab *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}
