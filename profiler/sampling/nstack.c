/* Native frames merged with Python frames: see nstack.h. */
#include "profiler/sampling/nstack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/target/core.h"
#include "profiler/target/ptstop.h"
#include "profiler/target/task.h"
#include "symbolizer/native.h"

/* One thread's native stack, from its hold to the merge. */
struct slot {
    uint64_t *pcs;
    size_t npcs;
    int have;      /* pcs hold this snapshot's unwind */
    uint64_t held_at;
};

/* A pc named once: its frame id, and whether it is in the eval loop. */
struct pcname {
    uint64_t pc;
    uint32_t frame;
    uint8_t leaf, is_eval;
};

struct nstack {
    struct session *s;
    struct unwinder *u;
    struct snap_native hooks;
    struct nstack_stats stats;
    struct slot *slots;
    size_t nslots;
    struct pcname *pcn;
    size_t npcn, pcncap;
    struct htab pc_index;
    uint8_t *is_eval, *entry;
    size_t evalcap, entrycap;
    int32_t *order;
    size_t ordercap;
    uint64_t refreshed_at; /* when the mappings were last read again */
    int stale;            /* a stack ended early: libraries may be missing */
    uint32_t *out;
    size_t outcap;
    struct strbuf label;
};

int nstack_is_eval(const char *func, const char *name)
{
    if (!func || !name)
        return 0;
    /* gcc may split off a ".cold" part. */
    size_t n = strlen(name);
    return strncmp(func, name, n) == 0 && (func[n] == '\0' || func[n] == '.');
}

size_t nstack_merge_order(const uint8_t *is_eval, size_t nn, const uint8_t *entry, size_t np,
                          int32_t *order, size_t max, int *mismatch)
{
    size_t k = 0, j = 0;
    *mismatch = 0;
    for (size_t i = 0; i < nn && k < max; i++) {
        if (!is_eval[i] || j >= np) {
            if (is_eval[i])
                *mismatch = 1;
            order[k++] = -(int32_t)(i + 1);
            continue;
        }
        /* This call runs Python frames from j up to its entry frame. */
        while (j < np && k < max) {
            int last = entry[j];
            order[k++] = (int32_t)j++;
            if (last)
                break;
        }
    }
    if (j < np)
        *mismatch = 1;
    while (j < np && k < max)
        order[k++] = (int32_t)j++;
    return k;
}

static int open_mapped(void *ctx, const struct mem_region *r)
{
    struct session *s = ctx;
    return mem_open_mapped(s->mem, r);
}

static struct slot *slot_for(struct nstack *ns, size_t k)
{
    if (k >= ns->nslots) {
        size_t n = MAX(k + 1, ns->nslots * 2);
        ns->slots = xrealloc(ns->slots, n * sizeof(*ns->slots));
        memset(ns->slots + ns->nslots, 0, (n - ns->nslots) * sizeof(*ns->slots));
        ns->nslots = n;
    }
    return &ns->slots[k];
}

/* At most this often, a stack that ended early makes the mappings read
 * again; sooner when the thread stopped in code outside every mapping known. */
#define REFRESH_GAP_NS 100000000u
#define REFRESH_SOON_NS 5000000u

static void unwind_into(struct nstack *ns, struct slot *sl, const struct user_regs_struct *regs)
{
    if (!sl->pcs)
        sl->pcs = xmalloc(NATIVE_MAX_FRAMES * sizeof(*sl->pcs));
    int ret = unwinder_unwind(ns->u, regs, sl->pcs, NATIVE_MAX_FRAMES, &sl->npcs);
    /* A library loaded since the mappings were read (a module imported
     * after the start) ends a stack at its first frame there: read them
     * again, and unwind again while the thread is still held. */
    uint64_t now = ptstop_now_ns();
    int unknown_pc = (ret < 0 || sl->npcs == 0) && !mem_find_region(ns->s->mem, regs->rip);
    if (!mem_is_still(ns->s->mem) && ((unknown_pc && now - ns->refreshed_at >= REFRESH_SOON_NS) ||
                      ((ret < 0 || sl->npcs == 0 || ns->stale) &&
                       now - ns->refreshed_at >= REFRESH_GAP_NS))) {
        nstack_refresh(ns);
        ret = unwinder_unwind(ns->u, regs, sl->pcs, NATIVE_MAX_FRAMES, &sl->npcs);
    }
    if (ret == 0 && sl->npcs) {
        sl->have = 1;
        ns->stats.unwound++;
    } else {
        ns->stats.unwind_failed++;
    }
}

static int hook_hold(void *ctx, struct session *s, struct snapshot *sn, size_t k)
{
    struct nstack *ns = ctx;
    struct slot *sl = slot_for(ns, k);
    struct user_regs_struct regs;
    struct tracked *tr = &s->threads[sn->st[k].tracked];
    sl->have = 0;
    sl->held_at = 0;
    if (!tr->task) {
        ns->stats.hold_failed++;
        return -ENOENT;
    }
    uint64_t t0 = ptstop_now_ns();
    int r = mem_task_hold(tr->task, &regs);
    if (r < 0) {
        /* A core's thread is never held: without registers, it has no native stack. */
        if (mem_is_still(s->mem))
            ns->stats.unwind_failed++;
        else
            ns->stats.hold_failed++;
        return r;
    }
    if (r == 1) {
        sl->held_at = t0;
        ns->stats.held++;
    }
    unwind_into(ns, sl, &regs);
    return 0;
}

static void hook_release(void *ctx, struct session *s, struct snapshot *sn, size_t k)
{
    struct nstack *ns = ctx;
    struct slot *sl = slot_for(ns, k);
    if (!sl->held_at)
        return;
    mem_task_release(s->threads[sn->st[k].tracked].task);
    uint64_t held = ptstop_now_ns() - sl->held_at;
    ns->stats.held_ns += held;
    ns->stats.held_max_ns = MAX(ns->stats.held_max_ns, held);
    sl->held_at = 0;
}

static int pcname_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct nstack *ns = ctx;
    const struct pcname *k = key;
    return ns->pcn[idx].pc == k->pc && ns->pcn[idx].leaf == k->leaf;
}

/* The label of a native frame: `func (file:line)`, `func (libfoo.so)`, `[libfoo.so+0x1234]`. */
static void frame_label_of(const struct native_sym *sym, uint64_t pc, struct strbuf *out)
{
    const char *mod = sym->module && sym->module[0] ? path_base(sym->module) : NULL;
    if (sym->func && sym->file && sym->line > 0)
        sb_addf(out, "%s (%s:%d)", sym->func, sym->file, sym->line);
    else if (sym->func && mod)
        sb_addf(out, "%s (%s)", sym->func, mod);
    else if (sym->func)
        sb_adds(out, sym->func);
    else if (mod)
        sb_addf(out, "[%s+0x%" PRIx64 "]", mod, sym->module_off);
    else
        sb_addf(out, "[unknown 0x%" PRIx64 "]", pc);
}

/* The index of pc's name in ns->pcn (which may move as it grows). */
static uint32_t name_pc(struct nstack *ns, uint64_t pc, int leaf)
{
    struct pcname key = {.pc = pc, .leaf = (uint8_t)leaf};
    uint64_t h = hash_bytes(&pc, sizeof(pc), (uint64_t)leaf);
    uint32_t idx = htab_find(&ns->pc_index, h, pcname_eq, ns, &key);
    if (idx != HTAB_NONE)
        return idx;
    struct native_sym sym;
    memset(&sym, 0, sizeof(sym));
    unwinder_symbolize(ns->u, pc, leaf, &sym);
    sb_reset(&ns->label);
    frame_label_of(&sym, pc, &ns->label);
    GROW(ns->pcn, ns->pcncap, ns->npcn + 1);
    struct pcname *p = &ns->pcn[ns->npcn];
    *p = key;
    p->frame = names_label_frame(ns->s->names, sb_str(&ns->label));
    p->is_eval = (uint8_t)nstack_is_eval(sym.func, ns->s->rt.layout.eval_function);
    htab_insert(&ns->pc_index, h, (uint32_t)ns->npcn);
    return (uint32_t)ns->npcn++;
}

static int hook_merge(void *ctx, struct session *s, struct snapshot *sn, size_t k,
                      const uint32_t **ids, size_t *n)
{
    struct nstack *ns = ctx;
    (void)s;
    struct slot *sl = slot_for(ns, k);
    if (!sl->have)
        return -ENOENT;
    sl->have = 0;
    const struct snap_thread *t = &sn->st[k];
    size_t nn = sl->npcs, np = t->depth;
    GROW(ns->is_eval, ns->evalcap, nn + 1);
    GROW(ns->entry, ns->entrycap, np + 1);
    GROW(ns->order, ns->ordercap, nn + np + 1);
    GROW(ns->out, ns->outcap, nn + np + 1);
    uint32_t *frames = ns->out; /* native frame ids first, then the merged stack over them */
    uint32_t *names = xmalloc((nn + 1) * sizeof(*names));
    for (size_t i = 0; i < nn; i++) {
        names[i] = name_pc(ns, sl->pcs[i], i == 0);
        ns->is_eval[i] = ns->pcn[names[i]].is_eval;
    }
    for (size_t j = 0; j < np; j++)
        ns->entry[j] = sn->finfo ? sn->finfo[t->off + j].entry : 1;
    int mismatch;
    size_t m = nstack_merge_order(ns->is_eval, nn, ns->entry, np, ns->order, nn + np, &mismatch);
    for (size_t i = 0; i < m; i++) {
        int32_t o = ns->order[i];
        frames[i] = o >= 0 ? sn->ids[t->off + (size_t)o] : ns->pcn[names[-o - 1]].frame;
    }
    free(names);
    ns->stats.mismatched += (uint64_t)mismatch;
    ns->stale |= mismatch;
    *ids = frames;
    *n = m;
    return 0;
}

struct nstack *nstack_new(struct session *s, struct pserr *err)
{
    struct nstack *ns = xcalloc(1, sizeof(*ns));
    ns->s = s;
    ns->u = unwinder_new(s->mem, open_mapped, s, err);
    if (!ns->u) {
        free(ns);
        return NULL;
    }
    /* Debug files the target's own file system holds (a container's, a chroot's). */
    struct core *c = mem_core(s->mem);
    if (c) {
        unwinder_set_root(ns->u, core_root(c));
    } else {
        char root[64];
        snprintf(root, sizeof(root), "/proc/%d/root", (int)s->pid);
        unwinder_set_root(ns->u, root);
    }
    ns->hooks = (struct snap_native){hook_hold, hook_release, hook_merge, ns};
    ns->refreshed_at = ptstop_now_ns();
    ns->label = (struct strbuf)STRBUF_INIT;
    return ns;
}

/* How long nstack_free waits for threads interrupted that had not stopped yet. */
#define NSTACK_LET_GO_NS 1000000000u

void nstack_free(struct nstack *ns)
{
    if (!ns)
        return;
    /* A thread interrupted that had not stopped in time must not stay stopped. */
    ptstop_let_go(NSTACK_LET_GO_NS);
    unwinder_free(ns->u);
    for (size_t i = 0; i < ns->nslots; i++)
        free(ns->slots[i].pcs);
    free(ns->slots);
    free(ns->pcn);
    htab_release(&ns->pc_index);
    free(ns->is_eval);
    free(ns->entry);
    free(ns->order);
    free(ns->out);
    sb_release(&ns->label);
    free(ns);
}

const struct snap_native *nstack_hooks(struct nstack *ns)
{
    return &ns->hooks;
}

const struct nstack_stats *nstack_stats(const struct nstack *ns)
{
    return &ns->stats;
}

void nstack_refresh(struct nstack *ns)
{
    ns->refreshed_at = ptstop_now_ns();
    ns->stale = 0;
    unwinder_refresh(ns->u);
    /* An address may name another library's code now. */
    htab_clear(&ns->pc_index);
    ns->npcn = 0;
}
