/* dump --tasks, printed: see dump_tasks.h. */
#include "profiler/commands/dump_tasks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "output/label.h"
#include "profiler/commands/dump_print.h"
#include "profiler/cpython/pyobj.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "symbolizer/names.h"

/* Characters of a task's name kept. */
#define NAME_MAX_CHARS 200
/* Levels of the await tree printed (deeper ones are counted). */
#define TREE_MAX_DEPTH 64

/* What is printed of a task, made once for the text and the JSON alike. */
struct tview {
    uint32_t *ids;      /* its stack, innermost first (UINT32_MAX: unreadable code) */
    size_t depth;
    char *name;         /* NULL: none or unreadable */
    char waits[128];    /* "Lock 0x7f..", "sleep", "" */
    pid_t tid;          /* running: its thread's id (0 unknown) */
    int placed;         /* running: its thread was found */
};

struct tasks_view {
    struct tview *v;
    size_t n;
};

/*
 * A running task's stack: its thread's Python frames from the innermost to
 * the task's coroutine (the frame the thread's walk found at run_frame).
 */
static void place_running(struct session *s, const struct snapshot *sn, const struct atask *t,
                          struct tview *tv)
{
    for (size_t i = 0; i < sn->nthreads && !tv->placed; i++) {
        const struct snap_thread *st = &sn->st[i];
        if (!st->walked || st->status < 0)
            continue;
        size_t off = st->native ? st->py_off : st->off, n = st->native ? st->py_depth : st->depth;
        for (size_t j = 0; j < n; j++) {
            if (sn->finfo[off + j].addr != t->run_frame)
                continue;
            tv->placed = 1;
            tv->tid = s->threads[st->tracked].tid;
            if (!tv->tid)
                tv->tid = sn->threads[i].native_tid;
            free(tv->ids);
            tv->ids = xmalloc((j + 1) * sizeof(*tv->ids));
            memcpy(tv->ids, sn->ids + off, (j + 1) * sizeof(*tv->ids));
            tv->depth = j + 1;
            break;
        }
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/*
 * What a pending task waits on, when it can be told: the object whose
 * method of asyncio's locks, queues or streams it waits in (its type's
 * name, so a subclass shows as itself), a sleep, a socket, the task or
 * gather it awaits, else the future.
 */
static int cmp_addr(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void waits_on(struct session *s, const uint64_t *sorted, size_t n, const struct atask *t,
                     struct tview *tv)
{
    char type[64];
    tv->waits[0] = '\0';
    if (t->state != TASK_PENDING)
        return;
    /* A pure-Python future's __await__ (asyncio without its C module) is
     * the innermost frame: what waits is the frame that awaits it. */
    size_t at = 0;
    uint64_t self = t->self0;
    if (tv->depth > 1 && tv->ids[0] != UINT32_MAX) {
        const struct names_func *fn =
            names_func_get(s->names, names_frame_get(s->names, tv->ids[0])->func);
        if (ends_with(names_str_get(s->names, fn->file), "asyncio/futures.py")) {
            at = 1;
            self = t->self1;
        }
    }
    if (tv->depth > at && tv->ids[at] != UINT32_MAX) {
        const struct names_frame *fr = names_frame_get(s->names, tv->ids[at]);
        const struct names_func *fn = names_func_get(s->names, fr->func);
        const char *file = names_str_get(s->names, fn->file);
        const char *func = names_str_get(s->names, fn->name);
        const char *dot = strrchr(func, '.');
        const char *bare = dot ? dot + 1 : func;
        if (ends_with(file, "asyncio/locks.py") || ends_with(file, "asyncio/queues.py") ||
            ends_with(file, "asyncio/streams.py") || ends_with(file, "asyncio/taskgroups.py")) {
            asyncio_type_name(&s->rt, self, type, sizeof(type));
            if (*type) {
                const char *b = strrchr(type, '.');
                snprintf(tv->waits, sizeof(tv->waits), "%s 0x%" PRIx64, b ? b + 1 : type, self);
                return;
            }
        }
        if (ends_with(file, "asyncio/tasks.py") && !strcmp(bare, "sleep")) {
            snprintf(tv->waits, sizeof(tv->waits), "sleep");
            return;
        }
        if (ends_with(file, "asyncio/selector_events.py") && !strncmp(bare, "sock_", 5)) {
            snprintf(tv->waits, sizeof(tv->waits), "socket (%s)", bare);
            return;
        }
    }
    uint64_t w = t->fut_waiter ? t->fut_waiter : t->awaited;
    if (!w)
        return;
    if (bsearch(&w, sorted, n, sizeof(*sorted), cmp_addr)) {
        snprintf(tv->waits, sizeof(tv->waits), "task 0x%" PRIx64, w);
        return;
    }
    asyncio_type_name(&s->rt, w, type, sizeof(type));
    const char *b = strrchr(type, '.');
    if (!strcmp(*type ? (b ? b + 1 : type) : "", "_GatheringFuture"))
        snprintf(tv->waits, sizeof(tv->waits), "gather 0x%" PRIx64, w);
    else
        snprintf(tv->waits, sizeof(tv->waits), "%s 0x%" PRIx64, *type ? (b ? b + 1 : type) : "?", w);
}

static struct tasks_view make_view(struct session *s, const struct snapshot *sn,
                                   const struct task_set *ts)
{
    struct tasks_view tw = {xcalloc(ts->n ? ts->n : 1, sizeof(struct tview)), ts->n};
    uint32_t *ids = dump_print_frame_ids(s, ts->raw, ts->nraw);
    /* The tasks' addresses, sorted: what a task awaits may be one. */
    uint64_t *sorted = xmalloc((ts->n ? ts->n : 1) * sizeof(*sorted));
    for (size_t i = 0; i < ts->n; i++)
        sorted[i] = ts->v[i].obj;
    qsort(sorted, ts->n, sizeof(*sorted), cmp_addr);
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        struct tview *tv = &tw.v[i];
        tv->depth = t->depth;
        tv->ids = xmalloc((t->depth ? t->depth : 1) * sizeof(*tv->ids));
        memcpy(tv->ids, ids + t->off, t->depth * sizeof(*tv->ids));
        if (t->state == TASK_RUNNING)
            place_running(s, sn, t, tv);
        if (t->name_obj) {
            struct strbuf sb = STRBUF_INIT;
            int64_t num;
            /* 3.12+ keep a default name as its number until asked for it. */
            if (pyobj_str(&s->rt, t->name_obj, &sb) == 0) {
                if (sb.len > NAME_MAX_CHARS)
                    sb.len = NAME_MAX_CHARS;
                tv->name = sb_detach(&sb);
            } else if (pyobj_small_int(&s->rt, t->name_obj, &num) == 0) {
                sb.len = 0;
                sb_addf(&sb, "Task-%" PRId64, num);
                tv->name = sb_detach(&sb);
            }
            sb_release(&sb);
        }
        waits_on(s, sorted, ts->n, t, tv);
    }
    free(sorted);
    free(ids);
    return tw;
}

static void release_view(struct tasks_view *tw)
{
    for (size_t i = 0; i < tw->n; i++) {
        free(tw->v[i].ids);
        free(tw->v[i].name);
    }
    free(tw->v);
}

static void task_label(const struct task_set *ts, const struct tasks_view *tw, size_t i,
                       struct strbuf *out)
{
    sb_addf(out, "Task 0x%" PRIx64, ts->v[i].obj);
    if (tw->v[i].name) {
        sb_adds(out, " \"");
        label_clean(tw->v[i].name, out);
        sb_addc(out, '"');
    }
}

/* The summary's groups: tasks in the same state, waiting on the same kind, with the same stack. */
struct group {
    size_t first, count;
};

struct sort_ctx {
    const struct task_set *ts;
    const struct tasks_view *tw;
};

/* The kind of what a task waits on, without the object's address: "Lock". */
static size_t waits_kind_len(const char *w)
{
    const char *sp = strstr(w, " 0x");
    return sp ? (size_t)(sp - w) : strlen(w);
}

static int cmp_stack(const struct sort_ctx *c, size_t a, size_t b)
{
    const struct atask *x = &c->ts->v[a], *y = &c->ts->v[b];
    const struct tview *p = &c->tw->v[a], *q = &c->tw->v[b];
    if (x->state != y->state)
        return x->state < y->state ? -1 : 1;
    if (p->depth != q->depth)
        return p->depth < q->depth ? -1 : 1;
    for (size_t i = 0; i < p->depth; i++)
        if (p->ids[i] != q->ids[i])
            return p->ids[i] < q->ids[i] ? -1 : 1;
    size_t la = waits_kind_len(p->waits), lb = waits_kind_len(q->waits);
    int r = strncmp(p->waits, q->waits, MIN(la, lb));
    return r ? r : la < lb ? -1 : la > lb ? 1 : 0;
}

static int cmp_index(const void *a, const void *b, void *ctx)
{
    int c = cmp_stack(ctx, *(const size_t *)a, *(const size_t *)b);
    return c ? c : *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : 1;
}

static struct group *group_stacks(const struct task_set *ts, const struct tasks_view *tw,
                                  size_t *ng)
{
    size_t n = ts->n;
    size_t *order = xmalloc((n ? n : 1) * sizeof(*order));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    struct sort_ctx c = {ts, tw};
    qsort_r(order, n, sizeof(*order), cmp_index, &c);
    struct group *gv = xmalloc((n ? n : 1) * sizeof(*gv));
    *ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && cmp_stack(&c, order[i - 1], order[i]) == 0) {
            gv[*ng - 1].count++;
            continue;
        }
        gv[(*ng)++] = (struct group){.first = order[i], .count = 1};
    }
    qsort(gv, *ng, sizeof(*gv), cmp_group);
    free(order);
    return gv;
}

/* "waiting", "running", ... as the summary says it. */
static const char *summary_state(enum task_state st)
{
    return st == TASK_PENDING ? "waiting" : task_state_name(st);
}

/* Children of each task, in order: first[i] .. through next[]. */
struct tree {
    size_t *first, *next, *last;
};

static struct tree make_tree(const struct task_set *ts)
{
    size_t n = ts->n ? ts->n : 1;
    struct tree t = {xmalloc(n * sizeof(size_t)), xmalloc(n * sizeof(size_t)),
                     xmalloc(n * sizeof(size_t))};
    for (size_t i = 0; i < ts->n; i++)
        t.first[i] = t.next[i] = t.last[i] = SIZE_MAX;
    for (size_t i = 0; i < ts->n; i++) {
        size_t p = ts->v[i].parent;
        if (p == SIZE_MAX)
            continue;
        if (t.last[p] == SIZE_MAX)
            t.first[p] = i;
        else
            t.next[t.last[p]] = i;
        t.last[p] = i;
    }
    return t;
}

static void free_tree(struct tree *t)
{
    free(t->first);
    free(t->next);
    free(t->last);
}

static void tree_text(const struct task_set *ts, const struct tasks_view *tw, const struct tree *tr,
                      size_t i, int depth, struct strbuf *out)
{
    for (int k = 0; k < depth; k++)
        sb_adds(out, "  ");
    sb_adds(out, "  ");
    task_label(ts, tw, i, out);
    sb_addf(out, " (%s", task_state_name(ts->v[i].state));
    if (ts->v[i].parent != SIZE_MAX)
        sb_addf(out, ", by %s", ts->v[i].parent_how);
    sb_adds(out, ")\n");
    if (depth >= TREE_MAX_DEPTH) {
        if (tr->first[i] != SIZE_MAX)
            sb_adds(out, "    ... deeper tasks left out\n");
        return;
    }
    for (size_t c = tr->first[i]; c != SIZE_MAX; c = tr->next[c])
        tree_text(ts, tw, tr, c, depth + 1, out);
}

void dump_tasks_text(struct session *s, const struct snapshot *sn, const struct task_set *ts,
                     struct strbuf *out)
{
    struct tasks_view tw = make_view(s, sn, ts);
    sb_addf(out, "\nTasks: %zu (from %s; %" PRIu64 " reads)\n", ts->n, ts->registry,
            ts->stats.reads);
    if (ts->stats.found > ts->n + ts->stats.unreadable)
        sb_addf(out, "(%" PRIu64 " more tasks not read: at most %d are)\n",
                ts->stats.found - ts->n - ts->stats.unreadable, ASYNCIO_MAX_TASKS);
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        const struct tview *tv = &tw.v[i];
        task_label(ts, &tw, i, out);
        sb_addf(out, " (%s", task_state_name(t->state));
        if (t->state == TASK_RUNNING && tv->placed && tv->tid > 0)
            sb_addf(out, " in thread %d", (int)tv->tid);
        else if (t->state == TASK_RUNNING)
            sb_adds(out, ", thread unknown");
        if (tv->waits[0])
            sb_addf(out, ", waiting on %s", tv->waits);
        sb_adds(out, ")\n");
        if (t->status < 0)
            sb_addf(out, "    (await chain unreadable: %s)\n", dump_print_stack_error(t->status));
        for (size_t k = 0; k < tv->depth; k++) {
            sb_adds(out, "    ");
            dump_print_frame(s->names, tv->ids[k], out);
            sb_addc(out, '\n');
        }
        if (t->status == 1)
            sb_addf(out, "    ... await chain cut at %d coroutines\n", ASYNCIO_MAX_AWAIT);
        if (t->parent != SIZE_MAX) {
            sb_addf(out, "    awaited by (%s) ", t->parent_how);
            task_label(ts, &tw, t->parent, out);
            sb_addc(out, '\n');
        }
    }
    struct tree tr = make_tree(ts);
    sb_adds(out, "\nTask tree:\n");
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].parent == SIZE_MAX)
            tree_text(ts, &tw, &tr, i, 0, out);
    free_tree(&tr);
    size_t ng;
    struct group *gv = group_stacks(ts, &tw, &ng);
    sb_adds(out, "\nTask summary:\n");
    for (size_t i = 0; i < ng; i++) {
        const struct tview *tv = &tw.v[gv[i].first];
        sb_addf(out, "  %zu task%s %s", gv[i].count, gv[i].count == 1 ? "" : "s",
                summary_state(ts->v[gv[i].first].state));
        if (tv->waits[0])
            sb_addf(out, " on %.*s", (int)waits_kind_len(tv->waits), tv->waits);
        for (size_t k = 0; k < tv->depth; k++) {
            sb_adds(out, k ? " <- `" : " at `");
            dump_print_frame(s->names, tv->ids[k], out);
            sb_addc(out, '`');
        }
        sb_addc(out, '\n');
    }
    free(gv);
    release_view(&tw);
}

/* The kind of what a task waits on as a JSON string, or null. */
static void waits_kind_json(const struct tview *tv, struct strbuf *out)
{
    char kind[sizeof(tv->waits)];
    size_t kl = waits_kind_len(tv->waits);
    if (!kl) {
        sb_adds(out, "null");
        return;
    }
    memcpy(kind, tv->waits, kl);
    kind[kl] = '\0';
    json_string(out, kind);
}

static void tree_json(const struct task_set *ts, const struct tree *tr, size_t i, int depth,
                      struct strbuf *out)
{
    sb_addf(out, "{\"address\": \"0x%" PRIx64 "\", \"children\": [", ts->v[i].obj);
    size_t k = 0;
    if (depth < TREE_MAX_DEPTH)
        for (size_t c = tr->first[i]; c != SIZE_MAX; c = tr->next[c]) {
            sb_adds(out, k++ ? ", " : "");
            tree_json(ts, tr, c, depth + 1, out);
        }
    sb_adds(out, "]}");
}

void dump_tasks_json(struct session *s, const struct snapshot *sn, const struct task_set *ts,
                     struct strbuf *out)
{
    struct tasks_view tw = make_view(s, sn, ts);
    sb_adds(out, "\"tasks\": [");
    for (size_t i = 0; i < ts->n; i++) {
        const struct atask *t = &ts->v[i];
        const struct tview *tv = &tw.v[i];
        sb_addf(out, "%s\n  {\"address\": \"0x%" PRIx64 "\", \"name\": ", i ? "," : "", t->obj);
        if (tv->name)
            json_string(out, tv->name);
        else
            sb_adds(out, "null");
        sb_addf(out, ", \"state\": \"%s\"", task_state_name(t->state));
        if (t->state == TASK_RUNNING && tv->placed && tv->tid > 0)
            sb_addf(out, ", \"thread\": %d", (int)tv->tid);
        else if (t->state == TASK_RUNNING)
            sb_adds(out, ", \"thread\": null");
        sb_adds(out, ", \"waiting_on\": ");
        if (tv->waits[0]) {
            sb_adds(out, "{\"kind\": ");
            waits_kind_json(tv, out);
            const char *a = strstr(tv->waits, " 0x");
            if (a)
                sb_addf(out, ", \"address\": \"%s\"", a + 1);
            sb_addc(out, '}');
        } else {
            sb_adds(out, "null");
        }
        if (t->parent != SIZE_MAX)
            sb_addf(out, ", \"awaited_by\": {\"address\": \"0x%" PRIx64 "\", \"how\": \"%s\"}",
                    ts->v[t->parent].obj, t->parent_how);
        else
            sb_adds(out, ", \"awaited_by\": null");
        if (t->status < 0) {
            sb_adds(out, ", \"error\": ");
            json_string(out, dump_print_stack_error(t->status));
        }
        sb_addf(out, ", \"truncated\": %s, \"frames\": ", t->status == 1 ? "true" : "false");
        dump_print_frames_json(s->names, tv->ids, tv->depth, out);
        sb_addc(out, '}');
    }
    struct tree tr = make_tree(ts);
    sb_adds(out, "],\n \"task_tree\": [");
    size_t k = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].parent == SIZE_MAX) {
            sb_adds(out, k++ ? ",\n  " : "\n  ");
            tree_json(ts, &tr, i, 0, out);
        }
    free_tree(&tr);
    size_t ng;
    struct group *gv = group_stacks(ts, &tw, &ng);
    sb_adds(out, "],\n \"task_summary\": [");
    for (size_t i = 0; i < ng; i++) {
        const struct tview *tv = &tw.v[gv[i].first];
        sb_addf(out, "%s\n  {\"count\": %zu, \"state\": \"%s\", \"waiting_on\": ", i ? "," : "",
                gv[i].count, task_state_name(ts->v[gv[i].first].state));
        waits_kind_json(tv, out);
        sb_adds(out, ", \"frames\": ");
        dump_print_frames_json(s->names, tv->ids, tv->depth, out);
        sb_addc(out, '}');
    }
    sb_addf(out, "],\n \"task_stats\": {\"tasks\": %zu, \"found\": %" PRIu64 ", \"unreadable\": %"
            PRIu64 ", \"coroutines\": %" PRIu64 ", \"reads\": %" PRIu64 "}", ts->n,
            ts->stats.found, ts->stats.unreadable, ts->stats.coroutines, ts->stats.reads);
    free(gv);
    release_view(&tw);
}
