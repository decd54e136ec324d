#include "symbolizer/callsite.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/htab.h"
#include "common/util.h"

/* DWARF comes from files, not the target, but bounds cost nothing. */
#define DEPTH_MAX 32
#define RANGES_MAX (1u << 20)

struct cs_range {
    uint64_t lo, hi; /* [lo, hi), as the file numbers addresses */
    const char *file;
    int line;
};

struct cs_unit {
    Dwfl_Module *mod;
    Dwarf_Off cu;
    struct cs_range *v;
    size_t n, cap;
};

struct callsite {
    struct cs_unit *units;
    size_t n, cap;
    struct htab index;
};

struct unit_key {
    Dwfl_Module *mod;
    Dwarf_Off cu;
};

static uint64_t unit_hash(const struct unit_key *k)
{
    return hash_u64((uint64_t)(uintptr_t)k->mod ^ hash_u64(k->cu));
}

static int unit_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct callsite *cs = ctx;
    const struct unit_key *k = key;
    return cs->units[idx].mod == k->mod && cs->units[idx].cu == k->cu;
}

struct callsite *callsite_new(void)
{
    return xcalloc(1, sizeof(struct callsite));
}

void callsite_clear(struct callsite *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        free(cs->units[i].v);
    cs->n = 0;
    htab_clear(&cs->index);
}

void callsite_free(struct callsite *cs)
{
    if (!cs)
        return;
    callsite_clear(cs);
    free(cs->units);
    htab_release(&cs->index);
    free(cs);
}

/* Adds each address range of an inlined call, with its call site. */
static void add_inline(struct cs_unit *u, Dwarf_Die *die, Dwarf_Files *files, size_t nfiles)
{
    Dwarf_Attribute attr;
    Dwarf_Word fidx = 0, line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &fidx) != 0 ||
        dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &line) != 0 || line == 0 ||
        line > INT32_MAX || fidx >= nfiles)
        return;
    const char *file = dwarf_filesrc(files, fidx, NULL, NULL);
    if (!file)
        return;
    Dwarf_Addr base, lo, hi;
    ptrdiff_t off = 0;
    while (u->n < RANGES_MAX && (off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
        if (lo >= hi)
            continue;
        GROW(u->v, u->cap, u->n + 1);
        u->v[u->n++] = (struct cs_range){lo, hi, file, (int)line};
    }
}

/* The outermost inlined calls of a function (inside lexical blocks too). */
static void visit_function(struct cs_unit *u, Dwarf_Die *parent, Dwarf_Files *files,
                           size_t nfiles, int depth)
{
    Dwarf_Die child;
    if (depth > DEPTH_MAX || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_inlined_subroutine)
            add_inline(u, &child, files, nfiles);
        else if (tag == DW_TAG_lexical_block)
            visit_function(u, &child, files, nfiles, depth + 1);
    } while (dwarf_siblingof(&child, &child) == 0);
}

/* Every function of a unit (inside namespaces and classes too). */
static void visit_unit(struct cs_unit *u, Dwarf_Die *parent, Dwarf_Files *files, size_t nfiles,
                       int depth)
{
    Dwarf_Die child;
    if (depth > DEPTH_MAX || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_subprogram)
            visit_function(u, &child, files, nfiles, 0);
        else if (tag == DW_TAG_namespace || tag == DW_TAG_structure_type ||
                 tag == DW_TAG_class_type)
            visit_unit(u, &child, files, nfiles, depth + 1);
    } while (dwarf_siblingof(&child, &child) == 0);
}

static int range_cmp(const void *a, const void *b)
{
    const struct cs_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static struct cs_unit *unit_of(struct callsite *cs, Dwfl_Module *mod, Dwarf_Die *cudie)
{
    struct unit_key k = {mod, dwarf_dieoffset(cudie)};
    uint64_t h = unit_hash(&k);
    uint32_t i = htab_find(&cs->index, h, unit_eq, cs, &k);
    if (i != HTAB_NONE)
        return &cs->units[i];
    GROW(cs->units, cs->cap, cs->n + 1);
    struct cs_unit *u = &cs->units[cs->n];
    *u = (struct cs_unit){mod, k.cu, NULL, 0, 0};
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) == 0)
        visit_unit(u, cudie, files, nfiles, 0);
    if (u->n > 1)
        qsort(u->v, u->n, sizeof(*u->v), range_cmp);
    htab_insert(&cs->index, h, (uint32_t)cs->n);
    return &cs->units[cs->n++];
}

const char *callsite_find(struct callsite *cs, Dwfl_Module *mod, Dwarf_Addr at, int *line)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, at, &bias);
    if (!cudie)
        return NULL;
    struct cs_unit *u = unit_of(cs, mod, cudie);
    uint64_t pc = at - bias;
    /* The last range starting at or before pc: the outermost calls do not overlap. */
    size_t lo = 0, hi = u->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->v[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || pc >= u->v[lo - 1].hi)
        return NULL;
    *line = u->v[lo - 1].line;
    return u->v[lo - 1].file;
}
