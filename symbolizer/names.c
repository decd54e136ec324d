#include "symbolizer/names.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void names_init(struct names *n)
{
    memset(n, 0, sizeof(*n));
    names_str(n, "", 0);
}

void names_release(struct names *n)
{
    for (size_t i = 0; i < n->nstrs; i++)
        free(n->strs[i]);
    free(n->strs);
    free(n->str_lens);
    free(n->funcs);
    free(n->frames);
    htab_release(&n->str_index);
    htab_release(&n->func_index);
    htab_release(&n->frame_index);
    memset(n, 0, sizeof(*n));
}

struct str_key {
    const char *s;
    size_t len;
};

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct names *n = ctx;
    const struct str_key *k = key;
    return n->str_lens[idx] == k->len && memcmp(n->strs[idx], k->s, k->len) == 0;
}

uint32_t names_str(struct names *n, const char *s, size_t len)
{
    struct str_key k = {s, len};
    uint64_t h = hash_bytes(s, len, 1);
    uint32_t id = htab_find(&n->str_index, h, str_eq, n, &k);
    if (id != HTAB_NONE)
        return id;
    size_t cap = n->strcap;
    GROW(n->strs, n->strcap, n->nstrs + 1);
    if (n->strcap != cap)
        n->str_lens = xrealloc(n->str_lens, n->strcap * sizeof(*n->str_lens));
    id = (uint32_t)n->nstrs++;
    n->strs[id] = xstrndup(s, len);
    n->str_lens[id] = (uint32_t)len;
    htab_insert(&n->str_index, h, id);
    return id;
}

const char *names_str_get(const struct names *n, uint32_t id)
{
    return id < n->nstrs ? n->strs[id] : "";
}

static int func_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct names *n = ctx;
    const struct names_func *a = &n->funcs[idx], *b = key;
    return a->name == b->name && a->file == b->file && a->firstlineno == b->firstlineno;
}

uint32_t names_func(struct names *n, uint32_t name, uint32_t file, int firstlineno)
{
    struct names_func k = {name, file, firstlineno};
    uint64_t h = hash_u64(((uint64_t)name << 32 | file) ^ hash_u64((uint64_t)(uint32_t)firstlineno));
    uint32_t id = htab_find(&n->func_index, h, func_eq, n, &k);
    if (id != HTAB_NONE)
        return id;
    GROW(n->funcs, n->funccap, n->nfuncs + 1);
    id = (uint32_t)n->nfuncs++;
    n->funcs[id] = k;
    htab_insert(&n->func_index, h, id);
    return id;
}

static int frame_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct names *n = ctx;
    const struct names_frame *a = &n->frames[idx], *b = key;
    return a->func == b->func && a->line == b->line;
}

uint32_t names_frame(struct names *n, uint32_t func, int line)
{
    struct names_frame k = {func, line};
    uint64_t h = hash_u64((uint64_t)func << 32 | (uint32_t)line);
    uint32_t id = htab_find(&n->frame_index, h, frame_eq, n, &k);
    if (id != HTAB_NONE)
        return id;
    GROW(n->frames, n->framecap, n->nframes + 1);
    id = (uint32_t)n->nframes++;
    n->frames[id] = k;
    htab_insert(&n->frame_index, h, id);
    return id;
}

uint32_t names_label_frame(struct names *n, const char *label)
{
    uint32_t s = names_str(n, label, strlen(label));
    return names_frame(n, names_func(n, s, NAMES_EMPTY, 0), 0);
}
