#include "output/profile.h"

#include <stdlib.h>
#include <string.h>

#include "output/label.h"

void profile_init(struct profile *p)
{
    memset(p, 0, sizeof(*p));
}

void profile_release(struct profile *p)
{
    for (size_t i = 0; i < p->nframes; i++) {
        free(p->frames[i].label);
        free(p->frames[i].name);
        free(p->frames[i].file);
    }
    for (size_t i = 0; i < p->nthreads; i++)
        free(p->threads[i].name);
    free(p->frames);
    free(p->threads);
    free(p->stacks);
    free(p->ids);
    free(p->meta.title);
    htab_release(&p->frame_index);
    htab_release(&p->stack_index);
    sb_release(&p->scratch);
    memset(p, 0, sizeof(*p));
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int python_file(const char *file)
{
    size_t n = strlen(file);
    return file[0] == '<' || has_suffix(file, n, ".py") || has_suffix(file, n, ".pyw") ||
           has_suffix(file, n, ".pyx") || has_suffix(file, n, ".pyi");
}

void profile_parse_label(const char *label, struct prof_frame *out)
{
    size_t n = strlen(label);
    memset(out, 0, sizeof(*out));
    out->label = xstrdup(label);
    out->kind = PK_OTHER;
    if (n >= 2 && label[0] == '[' && label[n - 1] == ']') {
        out->kind = PK_MARK;
    } else if (strncmp(label, "thread ", 7) == 0) {
        out->kind = PK_THREAD;
    } else if (strncmp(label, "process ", 8) == 0) {
        out->kind = PK_PROCESS;
    }
    /* "NAME (FILE:LINE)" or "NAME (FILE)": the last " (" whose group ends the label. */
    const char *open = NULL;
    if (out->kind != PK_THREAD && out->kind != PK_PROCESS && n > 3 && label[n - 1] == ')') {
        for (const char *q = label + n - 2; q > label; q--) {
            if (q[0] == '(' && q[-1] == ' ') {
                open = q;
                break;
            }
        }
    }
    if (!open || open + 1 == label + n - 1) {
        out->name = xstrdup(label);
        out->file = xstrdup("");
        return;
    }
    out->name = xstrndup(label, (size_t)(open - 1 - label));
    const char *fstart = open + 1, *fend = label + n - 1;
    const char *colon = NULL;
    if (fend - fstart > 2 && fend[-1] == '?' && fend[-2] == ':') {
        /* A line that could not be told: "FILE:?", line 0. */
        out->file = xstrndup(fstart, (size_t)(fend - 2 - fstart));
        if (out->kind == PK_OTHER)
            out->kind = python_file(out->file) ? PK_PYTHON : PK_NATIVE;
        return;
    }
    for (const char *q = fend - 1; q > fstart; q--) {
        if (*q == ':') {
            colon = q;
            break;
        }
        if (*q < '0' || *q > '9')
            break;
    }
    if (colon && colon + 1 < fend) {
        unsigned long line = strtoul(colon + 1, NULL, 10);
        out->line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
        fend = colon;
    }
    out->file = xstrndup(fstart, (size_t)(fend - fstart));
    if (out->kind == PK_OTHER)
        out->kind = python_file(out->file) ? PK_PYTHON : PK_NATIVE;
}

static int frame_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct profile *p = ctx;
    return strcmp(p->frames[idx].label, key) == 0;
}

uint32_t profile_frame_n(struct profile *p, const char *label, size_t n)
{
    struct strbuf *sb = &p->scratch;
    sb_reset(sb);
    sb_add(sb, label, n);
    for (size_t i = 0; i < sb->len; i++) {
        unsigned char c = (unsigned char)sb->buf[i];
        if (c == ';' || c < 0x20 || c == 0x7f)
            sb->buf[i] = '?';
    }
    uint64_t h = hash_bytes(sb->buf, sb->len, 0);
    uint32_t id = htab_find(&p->frame_index, h, frame_eq, p, sb->buf);
    if (id == HTAB_NONE) {
        GROW(p->frames, p->framecap, p->nframes + 1);
        id = (uint32_t)p->nframes++;
        profile_parse_label(sb->buf, &p->frames[id]);
        htab_insert(&p->frame_index, h, id);
    }
    return id;
}

uint32_t profile_frame(struct profile *p, const char *label)
{
    return profile_frame_n(p, label, strlen(label));
}

/* Registers a thread whose root is frame. */
static uint32_t add_thread(struct profile *p, const char *name, int64_t tid, uint32_t frame)
{
    GROW(p->threads, p->threadcap, p->nthreads + 1);
    struct prof_thread *t = &p->threads[p->nthreads];
    t->name = name ? xstrdup(name) : NULL;
    t->tid = tid;
    t->frame = frame;
    return (uint32_t)p->nthreads++;
}

uint32_t profile_thread(struct profile *p, const char *name, int64_t tid)
{
    struct strbuf sb = STRBUF_INIT;
    sb_adds(&sb, "thread ");
    if (name) {
        label_clean(name, &sb);
        sb_addc(&sb, ' ');
    }
    sb_addf(&sb, "(%lld)", (long long)tid);
    uint32_t idx = add_thread(p, name, tid, profile_frame(p, sb.buf));
    sb_release(&sb);
    return idx;
}

struct stack_key {
    uint32_t thread;
    const uint32_t *ids;
    size_t n;
};

static int stack_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct profile *p = ctx;
    const struct stack_key *k = key;
    const struct prof_stack *s = &p->stacks[idx];
    return s->thread == k->thread && s->len == k->n &&
           memcmp(p->ids + s->off, k->ids, k->n * sizeof(*k->ids)) == 0;
}

void profile_add(struct profile *p, uint32_t thread, const uint32_t *ids, size_t n, uint64_t count)
{
    struct stack_key k = {thread, ids, n};
    uint64_t h = hash_bytes(ids, n * sizeof(*ids), thread);
    uint32_t idx = htab_find(&p->stack_index, h, stack_eq, p, &k);
    p->total += count;
    if (idx != HTAB_NONE) {
        p->stacks[idx].count += count;
        return;
    }
    GROW(p->ids, p->idcap, p->nids + n);
    memcpy(p->ids + p->nids, ids, n * sizeof(*ids));
    GROW(p->stacks, p->stackcap, p->nstacks + 1);
    p->stacks[p->nstacks] = (struct prof_stack){thread, (uint32_t)p->nids, (uint32_t)n, count};
    p->nids += n;
    htab_insert(&p->stack_index, h, (uint32_t)p->nstacks++);
}

const uint32_t *profile_stack_frames(const struct profile *p, const struct prof_stack *s, size_t *n)
{
    size_t skip = p->thread_roots && s->len > 0 ? 1 : 0;
    *n = s->len - skip;
    return p->ids + s->off + skip;
}

/* A thread's frame in its process, as a key of thread_roots' index. */
struct root_key {
    uint32_t proc, frame;
};

struct root_ctx {
    const struct profile *p;
    const struct agg *a;
    uint32_t first; /* the profile's index of the aggregate's first thread */
};

static int root_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct root_ctx *c = ctx;
    const struct root_key *k = key;
    return c->a->threads[idx].proc == k->proc && c->p->threads[c->first + idx].frame == k->frame;
}

static uint64_t root_hash(const struct root_key *k)
{
    return hash_bytes(k, sizeof(*k), 0);
}

/*
 * One profile thread per thread of the aggregate, each with a frame of its
 * own among its process's threads: "thread NAME (TID)", or "(0xIDENT)" when
 * its tid is unknown.  Threads can label alike: glibc gives an ended
 * thread's struct pthread (the ident) to the next thread, a new thread can
 * take an ended one's tid, and names can differ only in what a label cannot
 * show.  Those are still threads of their own: the second labelled alike is
 * "thread NAME (TID #2)", the third "#3"...  So the profile's thread roots
 * are as many as the aggregate's threads, which the summary counts.
 */
static void thread_roots(struct profile *p, const struct agg *a, struct strbuf *sb)
{
    struct root_ctx ctx = {p, a, (uint32_t)p->nthreads};
    struct htab index = HTAB_INIT;
    /* Per thread that holds a plain label: the number last given to a
     * thread labelled alike (0 while none was). */
    unsigned *last = xcalloc(a->nthreads + 1, sizeof(*last));
    for (size_t i = 0; i < a->nthreads; i++) {
        const struct agg_thread *t = &a->threads[i];
        sb_reset(sb);
        label_thread(t, sb);
        struct root_key k = {t->proc, profile_frame(p, sb->buf)};
        uint32_t first = htab_find(&index, root_hash(&k), root_eq, &ctx, &k);
        if (first != HTAB_NONE) {
            /* Numbered after the first thread labelled alike (and past a
             * number a name made its own, if one could). */
            do {
                last[first] = MAX(last[first], 1u) + 1;
                sb_reset(sb);
                label_thread_nth(t, last[first], sb);
                k.frame = profile_frame(p, sb->buf);
            } while (htab_find(&index, root_hash(&k), root_eq, &ctx, &k) != HTAB_NONE);
        }
        add_thread(p, t->name, t->tid > 0 ? t->tid : 0, k.frame);
        htab_insert(&index, root_hash(&k), (uint32_t)i);
    }
    free(last);
    htab_release(&index);
}

void profile_from_agg(struct profile *p, const struct agg *a, const struct names *n, int threads)
{
    struct strbuf sb = STRBUF_INIT;
    uint32_t *ids = NULL;
    size_t cap = 0;
    /* In a process tree, each stack starts with its process: the thread
     * frame, if shown, comes second and is an ordinary frame. */
    p->thread_roots = threads && !a->nprocs;
    uint32_t first = (uint32_t)p->nthreads;
    uint32_t *proc_frame = xmalloc((a->nprocs + 1) * sizeof(*proc_frame));
    for (size_t i = 0; i < a->nprocs; i++) {
        sb_reset(&sb);
        label_process(a->procs[i].pid, a->procs[i].command, &sb);
        proc_frame[i] = profile_frame(p, sb_str(&sb));
    }
    thread_roots(p, a, &sb);
    /* Each of the recording's frames is labelled once, however many stacks hold it. */
    uint32_t *memo = NULL;
    size_t memocap = 0;
    for (size_t i = 0; i < a->nstacks; i++) {
        const struct agg_stack *s = &a->stacks[i];
        GROW(ids, cap, (size_t)s->len + 2);
        size_t k = 0;
        uint32_t proc = a->threads[s->thread].proc;
        if (proc < a->nprocs)
            ids[k++] = proc_frame[proc];
        if (threads)
            ids[k++] = p->threads[first + s->thread].frame;
        for (uint32_t j = 0; j < s->len; j++) {
            uint32_t nf = a->frames[s->off + j];
            if (nf >= memocap) {
                size_t old = memocap;
                GROW(memo, memocap, (size_t)nf + 1);
                memset(memo + old, 0, (memocap - old) * sizeof(*memo));
            }
            if (!memo[nf]) {
                sb_reset(&sb);
                label_frame(n, nf, &sb);
                memo[nf] = profile_frame(p, sb.buf) + 1;
            }
            ids[k++] = memo[nf] - 1;
        }
        if (k)
            profile_add(p, first + s->thread, ids, k, s->count);
    }
    free(memo);
    free(ids);
    free(proc_frame);
    sb_release(&sb);
}

static const struct profile *sort_ctx;

static int stack_cmp(const void *a, const void *b)
{
    const struct profile *p = sort_ctx;
    const struct prof_stack *x = &p->stacks[*(const uint32_t *)a];
    const struct prof_stack *y = &p->stacks[*(const uint32_t *)b];
    for (uint32_t i = 0; i < x->len && i < y->len; i++) {
        uint32_t fx = p->ids[x->off + i], fy = p->ids[y->off + i];
        if (fx == fy)
            continue;
        return strcmp(p->frames[fx].label, p->frames[fy].label);
    }
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->thread < y->thread ? -1 : x->thread > y->thread;
}

uint32_t *profile_sorted(const struct profile *p)
{
    uint32_t *order = xmalloc((p->nstacks + 1) * sizeof(*order));
    for (size_t i = 0; i < p->nstacks; i++)
        order[i] = (uint32_t)i;
    sort_ctx = p;
    qsort(order, p->nstacks, sizeof(*order), stack_cmp);
    sort_ctx = NULL;
    return order;
}
