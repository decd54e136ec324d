/* asyncio tasks seen from outside: see asyncio.h. */
#include "profiler/cpython/asyncio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "profiler/cpython/pyobj.h"
#include "profiler/cpython/pyrt.h"

/* Slots of a set's table read at most (2^20 entries). */
#define SET_MAX_SLOTS (1u << 20)
/* tp_base links followed to tell a subtype. */
#define MAX_BASES 32
/* Types whose kind is remembered (in the cache kept between collections). */
#define KIND_SLOTS 1024
/* Value-stack slots above localsplus a suspended coroutine's awaited object may be at. */
#define MAX_STACK_SLOTS 4096
/* Walks of one list of tasks (3.14+) while it changes under them. */
#define LIST_ATTEMPTS 2
/* Thread states whose lists of tasks are walked (3.14+). */
#define MAX_TSTATES 4096
/* Done callbacks of a task looked at for its TaskGroup. */
#define MAX_CALLBACKS 64
/* Children of a gather read. */
#define MAX_CHILDREN 100000
/* Batched reads by pages (paged_readv): from how many pieces, the page, and
 * how thinly spread pieces may be. */
#define PAGED_MIN_PIECES 32
#define PAGED_PAGE 4096u
#define PAGED_SPREAD 16
#define PAGED_SLACK 65536u
#define PAGED_KEEP (16u << 20)
/* Offset of PyMethodObject.im_self, and of PyWeakReference.wr_object (every 3.x). */
#define METHOD_SELF 24
#define WEAKREF_OBJECT 16

const char *task_state_name(enum task_state st)
{
    switch (st) {
    case TASK_PENDING: return "pending";
    case TASK_RUNNING: return "running";
    case TASK_NOT_STARTED: return "not started";
    case TASK_DONE: return "done";
    case TASK_CANCELLED: return "cancelled";
    default: return "unreadable";
    }
}

void task_set_release(struct task_set *ts)
{
    free(ts->v);
    free(ts->raw);
    free(ts->frame_at);
    *ts = (struct task_set){0};
}

void asyncio_type_name(struct pyrt *rt, uint64_t obj, char *out, size_t size)
{
    struct strbuf sb = STRBUF_INIT;
    out[0] = '\0';
    if (size && obj && !(obj & 7) && pyobj_type_name(rt, obj, &sb) == 0 && sb.len &&
        sb.len < size) {
        for (size_t i = 0; i < sb.len; i++)
            if (sb.buf[i] <= ' ' || sb.buf[i] >= 0x7f) {
                sb_release(&sb);
                return;
            }
        memcpy(out, sb.buf, sb.len + 1);
    }
    sb_release(&sb);
}

/* ---- what an object is, by its type ---- */

enum okind {
    OK_UNREAD = 0,
    OK_TASK,        /* _asyncio.Task or a subclass */
    OK_FUTURE,      /* _asyncio.Future or a subclass (not a task) */
    OK_FUTUREITER,
    OK_CORO,        /* a coroutine or a generator (a generator-based coroutine) */
    OK_WAKEUP,      /* a task's wake-up callback */
    OK_METHOD,      /* a bound method */
    OK_OTHER,
};

struct asyncio_cache {
    uint64_t ktype[KIND_SLOTS];
    uint8_t kind[KIND_SLOTS];
    uint64_t task_type, future_type; /* 0: not looked up */
    int pure;                       /* no C _asyncio: asyncio.tasks.Task, a Python class */
    uint64_t data, eager;           /* <= 3.13: the weak set's set, the eager tasks' set (0 none) */
    uint64_t set_type;              /* data's type when it was found */
    uint64_t since;                 /* when all of it was looked up (ns, monotonic) */
    unsigned char *pages;           /* paged_readv's pages, kept from call to call */
    size_t pages_cap;
    uint64_t *known;                /* 3.14+: the tasks the lists held last time */
    size_t nknown, knowncap;
};

struct asyncio_cache *asyncio_cache_new(void)
{
    return xcalloc(1, sizeof(struct asyncio_cache));
}

void asyncio_cache_free(struct asyncio_cache *cache)
{
    if (cache) {
        free(cache->pages);
        free(cache->known);
    }
    free(cache);
}

struct ctx {
    struct pyrt *rt;
    const struct pylayout *l;
    const struct asyncio_layout *al;
    struct task_set *ts;
    struct asyncio_cache *cache;
    int pure;                       /* pure-Python tasks: their fields are instance attributes */
    /* 3.14+: the tasks the lists held last time, read ahead in one batch:
     * a walk takes a node from there while it still leads on. */
    unsigned char *ahead;
    struct mem_iov *ahead_iov;
    struct htab ahead_index;
    struct htab index;  /* task object -> index in ts->v */
};

static int readv_count(struct ctx *c, struct mem_iov *iov, size_t n)
{
    if (!n)
        return 0;
    c->ts->stats.reads += (n + 1023) / 1024;
    return mem_readv(c->rt->mem, iov, n);
}

/* The slot of page p in an open-addressed table of cap (a power of two) pages. */
static size_t page_slot(const uint64_t *tab, size_t cap, uint64_t p)
{
    size_t h = (size_t)hash_u64(p) & (cap - 1);
    while (tab[h] != UINT64_MAX && tab[h] != p)
        h = (h + 1) & (cap - 1);
    return h;
}

/*
 * mem_readv of many small pieces by the pages they lie in: thousands of
 * tasks and coroutines share a few hundred pages, and each piece costs the
 * kernel about as much as a page.  Each page is read once; a piece whose
 * page (or pages) did not read is read alone after.  Pieces spread too
 * thinly (more page bytes than PAGED_SPREAD times theirs) are read as they are.
 */
static int paged_readv(struct ctx *c, struct mem_iov *iov, size_t n)
{
    size_t want = 0, np = 0, cap = 64;
    if (n < PAGED_MIN_PIECES)
        return readv_count(c, iov, n);
    for (size_t i = 0; i < n; i++) {
        want += iov[i].len;
        if (!iov[i].len || iov[i].len > PAGED_PAGE)
            return readv_count(c, iov, n);
    }
    while (cap < 4 * n)
        cap *= 2;
    uint64_t *tab = xmalloc(cap * sizeof(*tab));
    uint32_t *idx = xmalloc(cap * sizeof(*idx));
    memset(tab, 0xff, cap * sizeof(*tab));
    uint64_t *pg = xmalloc(2 * n * sizeof(*pg));
    for (size_t i = 0; i < n; i++) {
        uint64_t p[2] = {iov[i].addr / PAGED_PAGE, (iov[i].addr + iov[i].len - 1) / PAGED_PAGE};
        for (int k = 0; k < 1 + (p[1] != p[0]); k++) {
            size_t h = page_slot(tab, cap, p[k]);
            if (tab[h] == UINT64_MAX) {
                tab[h] = p[k];
                idx[h] = (uint32_t)np;
                pg[np++] = p[k];
            }
        }
    }
    int ret;
    if ((uint64_t)np * PAGED_PAGE > (uint64_t)PAGED_SPREAD * want + PAGED_SLACK) {
        ret = readv_count(c, iov, n);
        goto out;
    }
    /* Kept from call to call (up to PAGED_KEEP): new memory costs a fault a page. */
    if (c->cache->pages_cap < np * PAGED_PAGE) {
        free(c->cache->pages);
        c->cache->pages_cap = np * PAGED_PAGE;
        c->cache->pages = xmalloc(c->cache->pages_cap);
    }
    unsigned char *pages = c->cache->pages;
    struct mem_iov *piov = xcalloc(np, sizeof(*piov));
    for (size_t i = 0; i < np; i++)
        piov[i] = (struct mem_iov){.addr = pg[i] * PAGED_PAGE, .buf = pages + i * PAGED_PAGE,
                                   .len = PAGED_PAGE};
    ret = readv_count(c, piov, np);
    size_t nfall = 0;
    for (size_t i = 0; ret >= 0 && i < n; i++) {
        uint64_t p0 = iov[i].addr / PAGED_PAGE, p1 = (iov[i].addr + iov[i].len - 1) / PAGED_PAGE;
        uint32_t a = idx[page_slot(tab, cap, p0)], b = idx[page_slot(tab, cap, p1)];
        size_t off = (size_t)(iov[i].addr - p0 * PAGED_PAGE), first = PAGED_PAGE - off;
        iov[i].ok = piov[a].ok && piov[b].ok;
        if (!iov[i].ok) {
            nfall++;
            continue;
        }
        if (p0 == p1) {
            memcpy(iov[i].buf, pages + (size_t)a * PAGED_PAGE + off, iov[i].len);
        } else {
            memcpy(iov[i].buf, pages + (size_t)a * PAGED_PAGE + off, first);
            memcpy((unsigned char *)iov[i].buf + first, pages + (size_t)b * PAGED_PAGE,
                   iov[i].len - first);
        }
    }
    if (ret >= 0 && nfall) {
        /* The rest alone, in one batch. */
        struct mem_iov *rest = xmalloc(nfall * sizeof(*rest));
        size_t *where = xmalloc(nfall * sizeof(*where)), k = 0;
        for (size_t i = 0; i < n; i++)
            if (!iov[i].ok) {
                rest[k] = iov[i];
                where[k++] = i;
            }
        ret = readv_count(c, rest, nfall);
        for (size_t i = 0; ret >= 0 && i < nfall; i++)
            iov[where[i]].ok = rest[i].ok;
        free(rest);
        free(where);
    }
    free(piov);
    if (c->cache->pages_cap > PAGED_KEEP) {
        free(c->cache->pages);
        c->cache->pages = NULL;
        c->cache->pages_cap = 0;
    }
out:
    free(tab);
    free(idx);
    free(pg);
    return ret;
}

/* The last part of a tp_name: "_asyncio.FutureIter" -> "FutureIter". */
static const char *base_name(const char *s)
{
    const char *dot = strrchr(s, '.');
    return dot ? dot + 1 : s;
}

static int read_cstr(struct ctx *c, uint64_t addr, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t n = size; n >= 8; n /= 2) {
        if (mem_read(c->rt->mem, addr, out, n) < 0)
            continue;
        size_t len = strnlen(out, n);
        if (len == n)
            len = n - 1;
        out[len] = '\0';
        return 0;
    }
    return -EFAULT;
}

static enum okind kind_of_type(struct ctx *c, uint64_t type)
{
    if (!type || (type & 7))
        return OK_OTHER;
    size_t h = (size_t)(hash_u64(type) & (KIND_SLOTS - 1));
    if (c->cache->ktype[h] == type && c->cache->kind[h] != OK_UNREAD)
        return (enum okind)c->cache->kind[h];
    enum okind k = OK_OTHER;
    uint64_t t = type, name;
    char buf[64];
    for (int i = 0; t && i < MAX_BASES; i++) {
        if (t == c->ts->task_type) {
            k = OK_TASK;
            break;
        }
        if (t == c->ts->future_type) {
            k = OK_FUTURE;
            break;
        }
        if (mem_read_u64(c->rt->mem, t + (uint64_t)c->l->tp_base, &t) < 0 || (t & 7))
            break;
    }
    if (k == OK_OTHER && mem_read_u64(c->rt->mem, type + (uint64_t)c->l->tp_name, &name) == 0 &&
        name && read_cstr(c, name, buf, sizeof(buf)) == 0) {
        const char *b = base_name(buf);
        if (!strcmp(b, "FutureIter"))
            k = OK_FUTUREITER;
        else if (!strcmp(buf, "coroutine") || !strcmp(buf, "generator"))
            k = OK_CORO;
        else if (!strcmp(b, c->al->wakeup_type))
            k = OK_WAKEUP;
        else if (!strcmp(buf, "method"))
            k = OK_METHOD;
    }
    c->cache->ktype[h] = type;
    c->cache->kind[h] = (uint8_t)k;
    return k;
}

/* ---- the index of tasks by address ---- */

static int task_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct task_set *ts = ctx;
    return ts->v[idx].obj == *(const uint64_t *)key;
}

static size_t task_index(struct ctx *c, uint64_t obj)
{
    uint32_t i = htab_find(&c->index, hash_u64(obj), task_eq, c->ts, &obj);
    return i == HTAB_NONE ? SIZE_MAX : i;
}

/* Adds task object obj (once); its fields are read later. */
static void add_task(struct ctx *c, uint64_t obj)
{
    struct task_set *ts = c->ts;
    if (!obj || (obj & 7) || task_index(c, obj) != SIZE_MAX)
        return;
    ts->stats.found++;
    if (ts->n >= ASYNCIO_MAX_TASKS)
        return;
    GROW(ts->v, ts->cap, ts->n + 1);
    ts->v[ts->n] = (struct atask){.obj = obj, .parent = SIZE_MAX};
    htab_insert(&c->index, hash_u64(obj), (uint32_t)ts->n);
    ts->n++;
}

/* ---- the registry ---- */

/*
 * The keys of set object set (3.x PySetObject), appended to *keys: a
 * deleted entry (hash -1) and empty ones left out.  0 or a negative errno.
 */
static int set_keys(struct ctx *c, uint64_t set, uint64_t **keys, size_t *n, size_t *cap)
{
    const struct pylayout *l = c->l;
    int64_t used, mask;
    uint64_t table;
    int ret;
    if ((ret = mem_read(c->rt->mem, set + (uint64_t)l->set_used, &used, 8)) < 0 ||
        (ret = mem_read(c->rt->mem, set + (uint64_t)l->set_mask, &mask, 8)) < 0 ||
        (ret = mem_read_u64(c->rt->mem, set + (uint64_t)l->set_table, &table)) < 0)
        return ret;
    c->ts->stats.reads += 3;
    if (used < 0 || mask < 0 || mask + 1 > (int64_t)SET_MAX_SLOTS || ((mask + 1) & mask) ||
        used > mask + 1 || !table || (table & 7))
        return -EINVAL;
    size_t slots = (size_t)mask + 1, esz = (size_t)l->setentry_size;
    unsigned char *buf = xmalloc(slots * esz);
    if ((ret = mem_read(c->rt->mem, table, buf, slots * esz)) < 0) {
        free(buf);
        return ret;
    }
    c->ts->stats.reads++;
    for (size_t i = 0; i < slots; i++) {
        uint64_t key = buf_u64(buf + i * esz, l->setentry_key);
        int64_t hash = (int64_t)buf_u64(buf + i * esz, l->setentry_hash);
        if (!key || hash == -1 || (key & 7) || key == c->rt->known[PYK_SET_DUMMY])
            continue;
        GROW(*keys, *cap, *n + 1);
        (*keys)[(*n)++] = key;
    }
    free(buf);
    return 0;
}

/* 3.7-3.13: asyncio.tasks' weak set of tasks (and 3.12+'s set of eager ones). */
/*
 * Where asyncio.tasks keeps its sets of tasks: the weak set's set, and 3.12+
 * the set of eager tasks (0 when there is none).  Looked up in the module's
 * dict, or taken from the cache while the set found there last still is
 * one.  -ENOENT when asyncio.tasks is not imported.
 */
static int registry_places(struct ctx *c, uint64_t interp, uint64_t *data, uint64_t *eager,
                           struct pserr *err)
{
    struct pyrt *rt = c->rt;
    const struct pylayout *l = c->l;
    struct asyncio_cache *k = c->cache;
    uint64_t modules, mod, dict, ws, type;
    int ret;
    const char *name = c->al->minor >= 12 ? "_scheduled_tasks" : "_all_tasks";
    if (k->data && mem_read_u64(rt->mem, k->data + (uint64_t)l->ob_type, &type) == 0 &&
        type == k->set_type) {
        c->ts->stats.reads++;
        *data = k->data;
        *eager = k->eager;
        return 0;
    }
    k->data = 0;
    if ((ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_modules, &modules)) < 0 ||
        (ret = pydict_get_str(rt, modules, "asyncio.tasks", &mod)) < 0 ||
        (ret = mem_read_u64(rt->mem, mod + (uint64_t)l->md_dict, &dict)) < 0)
        return ret == -ENOENT ? ret : pserr_set(err, -ret, "cannot read sys.modules['asyncio.tasks'] "
                                                "of process %d: %s", (int)rt->pid, strerror(-ret));
    /* The module is there: a registry not found is a change pystrobe does not know. */
    if ((ret = pydict_get_str(rt, dict, name, &ws)) < 0 ||
        (ret = pyobj_getattr(rt, ws, "data", data)) < 0)
        return pserr_set(err, ret == -ENOENT ? EINVAL : -ret, "cannot read asyncio.tasks.%s "
                         "(the weak set of tasks) of process %d: %s", name, (int)rt->pid,
                         ret == -ENOENT ? "not found" : strerror(-ret));
    *eager = 0;
    if (c->al->minor >= 12 && pydict_get_str(rt, dict, "_eager_tasks", eager) < 0)
        *eager = 0;
    if (mem_read_u64(rt->mem, *data + (uint64_t)l->ob_type, &type) == 0) {
        k->data = *data;
        k->eager = *eager;
        k->set_type = type;
    }
    return 0;
}

static int registry_sets(struct ctx *c, uint64_t interp, struct pserr *err)
{
    struct pyrt *rt = c->rt;
    uint64_t data, eager;
    int ret;
    const char *name = c->al->minor >= 12 ? "_scheduled_tasks" : "_all_tasks";
    c->ts->registry = c->al->minor >= 12 ? "asyncio.tasks._scheduled_tasks and _eager_tasks"
                                         : "asyncio.tasks._all_tasks";
    if ((ret = registry_places(c, interp, &data, &eager, err)) < 0)
        return ret;
    uint64_t *keys = NULL;
    size_t n = 0, cap = 0;
    if ((ret = set_keys(c, data, &keys, &n, &cap)) < 0) {
        free(keys);
        return pserr_set(err, -ret, "cannot read asyncio.tasks.%s of process %d: %s%s", name,
                         (int)rt->pid, strerror(-ret), ret == -EINVAL ? " (garbage)" : "");
    }
    /* Weak references: their objects, in one batch. */
    struct mem_iov *iov = xcalloc(n ? n : 1, sizeof(*iov));
    uint64_t *objs = xcalloc(n ? n : 1, sizeof(*objs));
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct mem_iov){.addr = keys[i] + WEAKREF_OBJECT, .buf = &objs[i], .len = 8};
    ret = paged_readv(c, iov, n);
    for (size_t i = 0; ret >= 0 && i < n; i++)
        if (iov[i].ok && objs[i] != rt->known[PYK_NONE])
            add_task(c, objs[i]);
    free(iov);
    free(objs);
    n = 0;
    if (ret >= 0 && eager && set_keys(c, eager, &keys, &n, &cap) == 0)
        for (size_t i = 0; i < n; i++)
            add_task(c, keys[i]);
    free(keys);
    return ret < 0 ? pserr_set(err, -ret, "cannot read process %d: %s", (int)rt->pid,
                               strerror(-ret)) : 0;
}

/* 3.14+: the tasks of the circular list whose head is at head. */
/*
 * 3.14+: the tasks of the circular list whose head is at head, each read
 * whole as the walk reaches it: a node that is not a live task's (the list
 * changed under the walk: a task freed, its memory reused) ends the walk,
 * which is then made once more.  1 when it came back to its head, 0 not.
 */
static int ahead_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct ctx *c = ctx;
    return c->ahead_iov[idx].addr == *(const uint64_t *)key;
}

/* The bytes of task obj read ahead, or NULL. */
static const unsigned char *ahead_task(struct ctx *c, uint64_t obj)
{
    if (!c->ahead)
        return NULL;
    uint32_t i = htab_find(&c->ahead_index, hash_u64(obj), ahead_eq, c, &obj);
    return i == HTAB_NONE || !c->ahead_iov[i].ok ? NULL : c->ahead_iov[i].buf;
}

/* Reads the tasks known from the last collection in one batch (3.14+). */
static void read_ahead(struct ctx *c)
{
    struct asyncio_cache *k = c->cache;
    size_t n = k->nknown, sz = (size_t)c->al->task_size;
    if (!n)
        return;
    c->ahead = xmalloc(n * sz);
    c->ahead_iov = xcalloc(n, sizeof(*c->ahead_iov));
    for (size_t i = 0; i < n; i++) {
        c->ahead_iov[i] = (struct mem_iov){.addr = k->known[i], .buf = c->ahead + i * sz,
                                           .len = sz};
        htab_insert(&c->ahead_index, hash_u64(k->known[i]), (uint32_t)i);
    }
    if (paged_readv(c, c->ahead_iov, n) < 0)
        for (size_t i = 0; i < n; i++)
            c->ahead_iov[i].ok = 0;
}

static int list_walk(struct ctx *c, uint64_t head)
{
    const struct asyncio_layout *al = c->al;
    unsigned char b[512];
    const unsigned char *t;
    size_t sz = (size_t)al->task_size;
    uint64_t node, mark = 0;
    size_t power = 1, lam = 0;
    if (sz > sizeof(b) || mem_read_u64(c->rt->mem, head, &node) < 0)
        return 0;
    c->ts->stats.reads++;
    for (size_t steps = 0; node && node != head && steps < ASYNCIO_MAX_TASKS; steps++) {
        /* A cycle that misses the head (Brent's check). */
        if ((node & 7) || node < (uint64_t)al->task_node || node == mark)
            return 0;
        if (++lam == power) {
            mark = node;
            power *= 2;
            lam = 0;
        }
        uint64_t obj = node - (uint64_t)al->task_node;
        if (!(t = ahead_task(c, obj))) {
            c->ts->stats.reads++;
            if (mem_read(c->rt->mem, obj, b, sz) < 0)
                return 0;
            t = b;
        }
        if ((int64_t)(uint32_t)buf_u64(t, 0) <= 0 || kind_of_type(c, buf_u64(t, c->l->ob_type)) != OK_TASK)
            return 0;
        add_task(c, obj);
        node = buf_u64(t, al->task_node);
    }
    return node == head;
}

static void list_tasks(struct ctx *c, uint64_t head)
{
    for (int attempt = 0; attempt < LIST_ATTEMPTS; attempt++) {
        if (list_walk(c, head))
            return;
        c->ts->stats.list_retries++;
        /* What was read ahead led astray: read everything now. */
        free(c->ahead);
        c->ahead = NULL;
    }
}

static int registry_lists(struct ctx *c, uint64_t interp)
{
    const struct pylayout *l = c->l;
    const struct asyncio_layout *al = c->al;
    uint64_t ts, mark = 0;
    size_t power = 1, lam = 0;
    c->ts->registry = "the thread states' lists of tasks";
    if (mem_read_u64(c->rt->mem, interp + (uint64_t)l->is_tstate_head, &ts) < 0)
        return -EFAULT;
    read_ahead(c);
    for (size_t i = 0; ts && i < MAX_TSTATES; i++) {
        /* A cycle anywhere in the list (Brent's check), not only back to its head. */
        if (ts & 7 || ts == mark)
            break;
        if (++lam == power) {
            mark = ts;
            power *= 2;
            lam = 0;
        }
        list_tasks(c, ts + (uint64_t)al->ts_tasks_head);
        if (mem_read_u64(c->rt->mem, ts + (uint64_t)l->ts_next, &ts) < 0)
            break;
    }
    list_tasks(c, interp + (uint64_t)al->is_tasks_head);
    /* The tasks found, read ahead next time. */
    struct asyncio_cache *k = c->cache;
    GROW(k->known, k->knowncap, c->ts->n ? c->ts->n : 1);
    for (size_t i = 0; i < c->ts->n; i++)
        k->known[i] = c->ts->v[i].obj;
    k->nknown = c->ts->n;
    free(c->ahead);
    free(c->ahead_iov);
    c->ahead = NULL;
    c->ahead_iov = NULL;
    htab_release(&c->ahead_index);
    return 0;
}

/* ---- reading the tasks ---- */

/* A task's fields from its task_size bytes at b (state TASK_UNREADABLE, type 0: no task). */
static void parse_task(struct ctx *c, struct atask *t, const unsigned char *b)
{
    const struct asyncio_layout *al = c->al;
    t->state = TASK_UNREADABLE;
    t->type = 0;
    if ((int64_t)(uint32_t)buf_u64(b, 0) <= 0)
        return;
    uint64_t type = buf_u64(b, c->l->ob_type);
    if (kind_of_type(c, type) != OK_TASK)
        return;
    t->type = type;
    int32_t st;
    memcpy(&st, b + al->fut_state, 4);
    t->loop = buf_u64(b, al->fut_loop);
    t->coro = buf_u64(b, al->task_coro);
    t->name_obj = al->task_name >= 0 ? buf_u64(b, al->task_name) : 0;
    t->fut_waiter = buf_u64(b, al->task_fut_waiter);
    t->callback0 = buf_u64(b, al->fut_callback0);
    t->callbacks = buf_u64(b, al->fut_callbacks);
    t->state = st == 0 ? TASK_PENDING : st == 1 ? TASK_CANCELLED : st == 2 ? TASK_DONE
                                                                    : TASK_UNREADABLE;
    /* A task freed since the registry was read has its references cleared,
     * one being made has none yet: it is not (or no longer) a task. */
    if (t->state == TASK_PENDING && !t->coro) {
        t->type = 0;
        t->state = TASK_UNREADABLE;
        c->ts->stats.gone++;
        return;
    }
    if (t->state == TASK_PENDING && (!t->coro || (t->coro & 7)))
        t->state = TASK_UNREADABLE;
}

/*
 * A pure-Python task's fields: instance attributes (_state is a class
 * attribute, PENDING, until set), each looked up in its dict.  The same
 * results as parse_task.
 */
static void parse_pure_task(struct ctx *c, struct atask *t)
{
    struct pyrt *rt = c->rt;
    uint64_t hdr[2], st;
    t->state = TASK_UNREADABLE;
    t->type = 0;
    c->ts->stats.reads++;
    if (mem_read(rt->mem, t->obj, hdr, sizeof(hdr)) < 0 || (int64_t)(uint32_t)hdr[0] <= 0 ||
        kind_of_type(c, hdr[1]) != OK_TASK)
        return;
    t->type = hdr[1];
    if (pyobj_getattr(rt, t->obj, "_coro", &t->coro) < 0 || t->coro == rt->known[PYK_NONE])
        t->coro = 0;
    if (pyobj_getattr(rt, t->obj, "_fut_waiter", &t->fut_waiter) < 0 ||
        t->fut_waiter == rt->known[PYK_NONE])
        t->fut_waiter = 0;
    if (pyobj_getattr(rt, t->obj, "_loop", &t->loop) < 0)
        t->loop = 0;
    if (pyobj_getattr(rt, t->obj, "_name", &t->name_obj) < 0)
        t->name_obj = 0;
    if (pyobj_getattr(rt, t->obj, "_callbacks", &t->callbacks) < 0)
        t->callbacks = 0;
    t->callback0 = 0;
    t->state = TASK_PENDING;
    if (pyobj_getattr(rt, t->obj, "_state", &st) == 0) {
        struct strbuf sb = STRBUF_INIT;
        if (pyobj_str(rt, st, &sb) < 0)
            t->state = TASK_UNREADABLE;
        else if (!strcmp(sb.buf ? sb.buf : "", "CANCELLED"))
            t->state = TASK_CANCELLED;
        else if (!strcmp(sb.buf ? sb.buf : "", "FINISHED"))
            t->state = TASK_DONE;
        else if (strcmp(sb.buf ? sb.buf : "", "PENDING"))
            t->state = TASK_UNREADABLE;
        sb_release(&sb);
    }
    if (t->state == TASK_PENDING && !t->coro) {
        t->type = 0;
        t->state = TASK_UNREADABLE;
        c->ts->stats.gone++;
        return;
    }
    if (t->state == TASK_PENDING && (t->coro & 7))
        t->state = TASK_UNREADABLE;
}

static int read_tasks(struct ctx *c)
{
    struct task_set *ts = c->ts;
    const struct asyncio_layout *al = c->al;
    size_t n = ts->n, sz = (size_t)al->task_size;
    unsigned char *buf = xmalloc((n ? n : 1) * sz);
    struct mem_iov *iov = xcalloc(n ? n : 1, sizeof(*iov));
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct mem_iov){.addr = ts->v[i].obj, .buf = buf + i * sz, .len = sz};
    int ret = c->pure ? 0 : paged_readv(c, iov, n);
    for (size_t i = 0; ret >= 0 && i < n; i++) {
        struct atask *t = &ts->v[i];
        const unsigned char *b = buf + i * sz;
        if (c->pure)
            parse_pure_task(c, t);
        else if (iov[i].ok)
            parse_task(c, t, b);
        else
            t->state = TASK_UNREADABLE;
    }
    /* What the registry held that is no task (an object freed and reused
     * since, a dead weak reference's None) is left out, and counted. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts->v[i].state == TASK_UNREADABLE && ts->v[i].type == 0) {
            ts->stats.unreadable++;
            continue;
        }
        ts->v[k++] = ts->v[i];
    }
    ts->n = k;
    htab_clear(&c->index);
    for (size_t i = 0; i < k; i++)
        htab_insert(&c->index, hash_u64(ts->v[i].obj), (uint32_t)i);
    free(buf);
    free(iov);
    return ret < 0 ? ret : 0;
}

/* ---- await chains ---- */

/* A frame of a task's chain, in the order read (outermost first per task). */
struct cframe {
    size_t task;
    struct rawframe raw;
    uint64_t at;
};

struct chain {
    size_t task;
    uint64_t cur;       /* the object to look at next */
    uint64_t frame;     /* <= 3.10: the frame object to read next */
    uint64_t slot;      /* the stack slot to read next */
    int steps;
};

/* Bytes of a coroutine read in one piece: its header and (3.11+) its frame, localsplus and some slots. */
static size_t gen_read_len(const struct ctx *c)
{
    const struct asyncio_layout *al = c->al;
    if (al->gen_iframe >= 0)
        return (size_t)(al->gen_iframe + al->if_localsplus) + 16 * 8;
    return (size_t)MAX(MAX(al->gen_frame, al->futureiter_future), c->l->ob_type) + 8;
}

static size_t frame_read_len(const struct ctx *c)
{
    const struct asyncio_layout *al = c->al;
    const struct pylayout *l = c->l;
    int m = MAX(MAX(l->fo_code, l->fo_lasti), MAX(al->fo_stacktop, al->fo_valuestack));
    m = MAX(m, MAX(al->fo_stackdepth, al->fo_state));
    m = MAX(m, l->fo_localsplus);
    return (size_t)m + 8;
}

static void push_frame(struct ctx *c, struct cframe **cf, size_t *ncf, size_t *cfcap, size_t task,
                       uint64_t code, int64_t addrq, uint64_t at)
{
    GROW(*cf, *cfcap, *ncf + 1);
    (*cf)[(*ncf)++] = (struct cframe){task, {code, addrq}, at};
    c->ts->stats.coroutines++;
}

/*
 * What a suspended coroutine's frame says: 1 with ch->slot set (the awaited
 * object's stack slot), 0 the chain ends here (state set when it runs or
 * has not started), or a negative errno.
 */
static int take_iframe(struct ctx *c, struct chain *ch, const unsigned char *g, size_t glen,
                       struct cframe **cf, size_t *ncf, size_t *cfcap, int first)
{
    const struct asyncio_layout *al = c->al;
    const struct pylayout *l = c->l;
    struct atask *t = &c->ts->v[ch->task];
    uint64_t frame = ch->cur + (uint64_t)al->gen_iframe;
    const unsigned char *f = g + al->gen_iframe;
    int8_t state = (int8_t)g[al->gen_frame_state];
    struct rawframe raw;
    if (walk_frame_raw(l, f, &raw) < 0)
        return -EINVAL;
    if (state == al->gen_state_created) {
        if (first)
            t->state = TASK_NOT_STARTED;
        return 0;
    }
    if (first)
        t->coro_frame = frame;
    push_frame(c, cf, ncf, cfcap, ch->task, raw.code, raw.addrq, frame);
    if ((size_t)(al->gen_iframe + al->if_localsplus) + 8 <= glen) {
        uint64_t s0 = buf_u64(f, al->if_localsplus);
        t->self1 = t->self0;
        t->self0 = l->code_tagged ? s0 & ~(uint64_t)1 : s0;
    }
    if (state == al->gen_state_running) {
        if (first) {
            t->state = TASK_RUNNING;
            t->run_frame = frame;
        }
        return 0;
    }
    if (state != al->gen_state_awaiting)
        return 0;
    uint64_t base = frame + (uint64_t)al->if_localsplus, top;
    if (al->if_stacktop >= 0) {
        int32_t k;
        memcpy(&k, f + al->if_stacktop, 4);
        if (k < 0 || k > MAX_STACK_SLOTS)
            return -EINVAL;
        top = base + 8 * (uint64_t)k;
    } else {
        top = buf_u64(f, al->if_stackpointer);
        if (top < base || top > base + 8 * MAX_STACK_SLOTS || (top & 7))
            return -EINVAL;
    }
    /* Too few slots for an awaited object: a generator at a plain yield
     * (asyncio.sleep(0)'s, with no locals) awaits nothing. */
    if (top < base + 8 * (uint64_t)al->yf_below)
        return 0;
    ch->slot = top - 8 * (uint64_t)al->yf_below;
    return 1;
}

/* <= 3.10: the same from a frame object's bytes. */
static int take_frame_object(struct ctx *c, struct chain *ch, const unsigned char *f,
                             struct cframe **cf, size_t *ncf, size_t *cfcap, int first)
{
    const struct asyncio_layout *al = c->al;
    const struct pylayout *l = c->l;
    struct atask *t = &c->ts->v[ch->task];
    struct rawframe raw;
    if ((int64_t)buf_u64(f, 0) <= 0 || walk_frame_raw(l, f, &raw) < 0)
        return -EINVAL;
    int running, created;
    uint64_t top = 0, bottom = 0;
    if (al->fo_state >= 0) {
        int8_t st = (int8_t)f[al->fo_state];
        created = st == al->gen_state_created;
        running = st == al->gen_state_running;
        if (!created && !running && st != al->gen_state_awaiting)
            return 0;
        uint64_t vs = buf_u64(f, al->fo_valuestack);
        int32_t depth;
        memcpy(&depth, f + al->fo_stackdepth, 4);
        if (!created && !running) {
            if (depth < 0 || depth > MAX_STACK_SLOTS || !vs || (vs & 7))
                return -EINVAL;
            top = vs + 8 * (uint64_t)depth;
            bottom = vs;
        }
    } else {
        created = raw.addrq < 0;
        top = buf_u64(f, al->fo_stacktop);
        bottom = buf_u64(f, al->fo_valuestack);
        running = !created && !top;
        if ((top & 7) || (top && (bottom & 7 || top < bottom ||
                                  top - bottom > 8 * (uint64_t)MAX_STACK_SLOTS)))
            return -EINVAL;
    }
    if (created) {
        if (first)
            t->state = TASK_NOT_STARTED;
        return 0;
    }
    if (first)
        t->coro_frame = ch->frame;
    push_frame(c, cf, ncf, cfcap, ch->task, raw.code, raw.addrq, ch->frame);
    t->self1 = t->self0;
    t->self0 = buf_u64(f, l->fo_localsplus);
    if (running) {
        if (first) {
            t->state = TASK_RUNNING;
            t->run_frame = ch->frame;
        }
        return 0;
    }
    /* Too few values for an awaited object: a generator at a plain yield. */
    if (top < bottom + 8 * (uint64_t)al->yf_below)
        return 0;
    ch->slot = top - 8 * (uint64_t)al->yf_below;
    return 1;
}

/*
 * Follows every pending task's await chain, all tasks a level at a time:
 * the objects at one level in one batched read, then (<= 3.10) their
 * frame objects, then the stack slots not read with them.
 */
static void chains_pass(struct ctx *c, const size_t *idx, size_t n, struct cframe **cfp,
                        size_t *ncfp, size_t *cfcapp)
{
    struct task_set *ts = c->ts;
    const struct asyncio_layout *al = c->al;
    const struct pylayout *l = c->l;
    size_t nch = 0, glen = gen_read_len(c), flen = frame_read_len(c);
    struct chain *ch = xcalloc(n ? n : 1, sizeof(*ch));
    for (size_t k = 0; k < n; k++)
        if (ts->v[idx[k]].state == TASK_PENDING)
            ch[nch++] = (struct chain){.task = idx[k], .cur = ts->v[idx[k]].coro};
    struct cframe *cf = *cfp;
    size_t ncf = *ncfp, cfcap = *cfcapp;
    unsigned char *buf = xmalloc((nch ? nch : 1) * MAX(glen, flen));
    struct mem_iov *iov = xcalloc(nch ? nch : 1, sizeof(*iov));
    struct mem_iov *shorts = xcalloc(nch ? nch : 1, sizeof(*shorts));
    uint64_t *slots = xcalloc(nch ? nch : 1, sizeof(*slots));
    while (nch) {
        /* The objects of this level. */
        for (size_t i = 0; i < nch; i++)
            iov[i] = (struct mem_iov){.addr = ch[i].cur, .buf = buf + i * glen, .len = glen};
        if (paged_readv(c, iov, nch) < 0)
            break;
        /* An awaited object smaller than a coroutine may end a mapping:
         * what did not read whole is read again for its head alone. */
        size_t nshort = 0, hlen = (size_t)MAX(l->ob_type, al->futureiter_future) + 8;
        for (size_t i = 0; i < nch; i++)
            if (!iov[i].ok && ch[i].steps > 0)
                shorts[nshort++] = (struct mem_iov){.addr = ch[i].cur, .buf = buf + i * glen,
                                                    .len = hlen};
        if (nshort && readv_count(c, shorts, nshort) < 0)
            break;
        for (size_t i = 0, k = 0; k < nshort; i++)
            if (!iov[i].ok && ch[i].steps > 0)
                iov[i].ok = shorts[k++].ok ? 2 : 0;
        size_t nf = 0;
        for (size_t i = 0; i < nch; i++) {
            struct chain *x = &ch[i];
            struct atask *t = &ts->v[x->task];
            const unsigned char *g = buf + i * glen;
            int first = x->steps == 0;
            x->slot = x->frame = 0;
            if (!iov[i].ok) {
                t->status = -EFAULT;
                continue;
            }
            uint64_t type = buf_u64(g, l->ob_type);
            enum okind k = kind_of_type(c, type);
            if (k == OK_CORO && iov[i].ok == 2) {     /* only its head was readable */
                t->status = -EFAULT;
                continue;
            }
            if (k != OK_CORO) {
                if (first) {        /* a task's coroutine that is not one */
                    t->status = -EINVAL;
                    continue;
                }
                t->awaited = k == OK_FUTUREITER ? buf_u64(g, al->futureiter_future) : x->cur;
                t->awaited_type = k == OK_FUTUREITER ? 0 : type;
                continue;
            }
            if (al->gen_iframe >= 0) {
                int r = take_iframe(c, x, g, glen, &cf, &ncf, &cfcap, first);
                if (r < 0)
                    t->status = r;
            } else {
                x->frame = buf_u64(g, al->gen_frame);
                if (x->frame & 7)
                    t->status = -EINVAL;
                else if (x->frame)
                    nf++;
            }
        }
        /* <= 3.10: the frame objects. */
        if (nf) {
            size_t k = 0;
            for (size_t i = 0; i < nch; i++)
                if (ch[i].frame)
                    iov[k++] = (struct mem_iov){.addr = ch[i].frame, .buf = buf + i * flen,
                                                .len = flen};
            /* buf is reused: the coroutines' bytes are no longer needed */
            if (paged_readv(c, iov, k) < 0)
                break;
            k = 0;
            for (size_t i = 0; i < nch; i++) {
                if (!ch[i].frame)
                    continue;
                struct atask *t = &ts->v[ch[i].task];
                if (!iov[k++].ok) {
                    t->status = -EFAULT;
                    continue;
                }
                int r = take_frame_object(c, &ch[i], buf + i * flen, &cf, &ncf, &cfcap,
                                          ch[i].steps == 0);
                if (r < 0)
                    t->status = r;
            }
        }
        /* The awaited objects' slots. */
        size_t ns = 0;
        for (size_t i = 0; i < nch; i++)
            if (ch[i].slot)
                iov[ns++] = (struct mem_iov){.addr = ch[i].slot, .buf = &slots[i], .len = 8};
        if (ns && paged_readv(c, iov, ns) < 0)
            break;
        size_t k = 0, next = 0;
        for (size_t i = 0; i < nch; i++) {
            if (!ch[i].slot)
                continue;
            struct atask *t = &ts->v[ch[i].task];
            if (!iov[k++].ok) {
                t->status = -EFAULT;
                continue;
            }
            uint64_t v = slots[i];
            if (l->code_tagged)
                v &= ~(uint64_t)1;
            /* <= 3.10 a generator at a plain yield (asyncio.sleep(0)) may
             * have nothing there: it awaits nothing. */
            if (!v)
                continue;
            if (v & 7) {
                t->status = -EINVAL;
                continue;
            }
            if (++ch[i].steps >= ASYNCIO_MAX_AWAIT) {
                t->status = 1;
                ts->stats.cut++;
                continue;
            }
            ch[i].cur = v;
            ch[next++] = ch[i];
        }
        nch = next;
    }
    free(buf);
    free(iov);
    free(shorts);
    free(slots);
    free(ch);
    *cfp = cf;
    *ncfp = ncf;
    *cfcapp = cfcap;
}

/*
 * Every pending task's chain (chains_pass), then once more for those found
 * torn or unreadable (a coroutine that ended, a frame freed and reused
 * while read: a task that moved on), each read anew from its task object;
 * then each task's frames laid out in ts->raw, innermost first.
 */
static void read_chains(struct ctx *c)
{
    struct task_set *ts = c->ts;
    struct cframe *cf = NULL;
    size_t ncf = 0, cfcap = 0, nretry = 0;
    size_t *idx = xmalloc((ts->n ? ts->n : 1) * sizeof(*idx));
    for (size_t i = 0; i < ts->n; i++)
        idx[i] = i;
    chains_pass(c, idx, ts->n, &cf, &ncf, &cfcap);
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].status < 0 && ts->v[i].state == TASK_PENDING)
            idx[nretry++] = i;
    if (nretry) {
        unsigned char *b = xmalloc((size_t)c->al->task_size);
        uint8_t *again = xcalloc(ts->n, 1);
        for (size_t k = 0; k < nretry; k++) {
            struct atask *t = &ts->v[idx[k]];
            again[idx[k]] = 1;
            t->status = 0;
            t->coro_frame = t->run_frame = t->awaited = t->awaited_type = t->self0 = t->self1 = 0;
            if (c->pure)
                parse_pure_task(c, t);
            else if (mem_read(c->rt->mem, t->obj, b, (size_t)c->al->task_size) < 0)
                t->state = TASK_UNREADABLE;
            else
                parse_task(c, t, b);
            if (!t->type)
                t->state = TASK_UNREADABLE;
            ts->stats.reads++;
            ts->stats.retried++;
        }
        size_t k = 0;
        for (size_t i = 0; i < ncf; i++)
            if (!again[cf[i].task])
                cf[k++] = cf[i];
        ncf = k;
        chains_pass(c, idx, nretry, &cf, &ncf, &cfcap);
        /* Tasks freed meanwhile are gone: left out, the others renumbered. */
        size_t *to = xmalloc(ts->n * sizeof(*to)), n = 0;
        for (size_t i = 0; i < ts->n; i++) {
            to[i] = ts->v[i].type ? n : SIZE_MAX;
            if (ts->v[i].type)
                ts->v[n++] = ts->v[i];
            else
                ts->stats.unreadable++;
        }
        if (n != ts->n) {
            size_t kept = 0;
            for (size_t i = 0; i < ncf; i++)
                if (to[cf[i].task] != SIZE_MAX) {
                    cf[kept] = cf[i];
                    cf[kept++].task = to[cf[i].task];
                }
            ncf = kept;
            ts->n = n;
            htab_clear(&c->index);
            for (size_t i = 0; i < n; i++)
                htab_insert(&c->index, hash_u64(ts->v[i].obj), (uint32_t)i);
        }
        free(to);
        free(again);
        free(b);
    }
    free(idx);
    /* Each task's frames, innermost first: read outermost first, level by level. */
    size_t *count = xcalloc(ts->n ? ts->n : 1, sizeof(*count));
    for (size_t i = 0; i < ncf; i++)
        count[cf[i].task]++;
    ts->nraw = 0;
    GROW(ts->raw, ts->rawcap, ncf ? ncf : 1);
    ts->frame_at = xrealloc(ts->frame_at, ts->rawcap * sizeof(*ts->frame_at));
    for (size_t i = 0; i < ts->n; i++) {
        ts->v[i].off = ts->nraw;
        ts->v[i].depth = 0;
        ts->nraw += count[i];
    }
    for (size_t i = 0; i < ncf; i++) {
        struct atask *t = &ts->v[cf[i].task];
        size_t at = t->off + count[cf[i].task] - 1 - t->depth++;
        ts->raw[at] = cf[i].raw;
        ts->frame_at[at] = cf[i].at;
    }
    free(count);
    free(cf);
}

/* ---- who awaits whom ---- */

static void set_parent(struct ctx *c, uint64_t child, size_t parent, const char *how)
{
    size_t i = task_index(c, child);
    if (i == SIZE_MAX || i == parent || c->ts->v[i].parent != SIZE_MAX)
        return;
    c->ts->v[i].parent = parent;
    c->ts->v[i].parent_how = how;
}

/* Task index i waits on task child (through await or a gather). */
static void set_awaited(struct ctx *c, uint64_t child, size_t i, const char *how)
{
    size_t k = task_index(c, child);
    if (k == SIZE_MAX || k == i)
        return;
    c->ts->v[i].awaits_tasks = 1;
    set_parent(c, child, i, how);
}

/* The items of list object list (at most max), appended to *out. */
static int list_items(struct ctx *c, uint64_t list, size_t max, uint64_t **out, size_t *n)
{
    const struct pylayout *l = c->l;
    int64_t size;
    uint64_t items;
    if (mem_read(c->rt->mem, list + (uint64_t)l->var_ob_size, &size, 8) < 0 ||
        mem_read_u64(c->rt->mem, list + (uint64_t)l->list_item, &items) < 0)
        return -EFAULT;
    c->ts->stats.reads += 2;
    if (size < 0 || (uint64_t)size > max || (size && (!items || (items & 7))))
        return -EINVAL;
    *out = xcalloc(size ? (size_t)size : 1, sizeof(**out));
    *n = (size_t)size;
    if (size && mem_read(c->rt->mem, items, *out, (size_t)size * 8) < 0)
        return -EFAULT;
    c->ts->stats.reads++;
    return 0;
}

/*
 * Parents: a pending task awaits the task it waits on, or the children of
 * the gather future it waits on; a task made in a TaskGroup has the
 * group's _on_task_done among its callbacks, the group its parent task.
 */
static void find_parents(struct ctx *c)
{
    struct task_set *ts = c->ts;
    /* What each pending task waits on: a task, or a future whose type is
     * read for all of them in one batch. */
    uint64_t *wtype = xcalloc(ts->n ? ts->n : 1, sizeof(*wtype));
    struct mem_iov *iov = xcalloc(ts->n ? ts->n : 1, sizeof(*iov));
    size_t *who = xcalloc(ts->n ? ts->n : 1, sizeof(*who));
    size_t nw = 0;
    for (size_t i = 0; i < ts->n; i++) {
        struct atask *t = &ts->v[i];
        if (t->state != TASK_PENDING)
            continue;
        uint64_t w = t->fut_waiter ? t->fut_waiter : t->awaited;
        if (!w || (w & 7))
            continue;
        if (task_index(c, w) != SIZE_MAX) {
            set_awaited(c, w, i, "await");
            continue;
        }
        who[nw] = i;
        iov[nw] = (struct mem_iov){.addr = w + (uint64_t)c->l->ob_type, .buf = &wtype[nw],
                                   .len = 8};
        nw++;
    }
    if (paged_readv(c, iov, nw) < 0)
        nw = 0;
    for (size_t k = 0; k < nw; k++) {
        size_t i = who[k];
        struct atask *t = &ts->v[i];
        uint64_t w = t->fut_waiter ? t->fut_waiter : t->awaited, type = wtype[k], kids, *v = NULL;
        size_t n = 0;
        /* A gather's future is a subclass of Future: a plain one has no children. */
        if (!iov[k].ok || type == ts->future_type || kind_of_type(c, type) != OK_FUTURE ||
            pyobj_getattr(c->rt, w, "_children", &kids) < 0)
            continue;
        if (list_items(c, kids, MAX_CHILDREN, &v, &n) == 0)
            for (size_t j = 0; j < n; j++)
                set_awaited(c, v[j], i, "gather");
        free(v);
    }
    free(wtype);
    free(iov);
    free(who);
    for (size_t i = 0; i < ts->n; i++) {
        struct atask *t = &ts->v[i];
        if (t->parent != SIZE_MAX || t->state == TASK_UNREADABLE)
            continue;
        uint64_t cbs[2] = {t->callback0, t->callbacks};
        if (!cbs[0] && !cbs[1])
            continue;
        uint64_t *items = NULL, *cand = NULL;
        size_t n = 0, nc = 0;
        cand = xcalloc(MAX_CALLBACKS + 1, sizeof(*cand));
        if (cbs[0])
            cand[nc++] = cbs[0];
        if (cbs[1] && list_items(c, cbs[1], MAX_CALLBACKS, &items, &n) == 0)
            for (size_t k = 0; k < n; k++) {
                uint64_t cb; /* (callback, context) */
                if (mem_read_u64(c->rt->mem, items[k] + (uint64_t)c->l->tuple_item, &cb) == 0)
                    cand[nc++] = cb;
            }
        for (size_t k = 0; k < nc && t->parent == SIZE_MAX; k++) {
            uint64_t type, self, parent;
            if (!cand[k] || (cand[k] & 7) ||
                mem_read_u64(c->rt->mem, cand[k] + (uint64_t)c->l->ob_type, &type) < 0 ||
                kind_of_type(c, type) != OK_METHOD ||
                mem_read_u64(c->rt->mem, cand[k] + METHOD_SELF, &self) < 0 ||
                pyobj_getattr(c->rt, self, "_parent_task", &parent) < 0)
                continue;
            size_t p = task_index(c, parent);
            if (p != SIZE_MAX && p != i) {
                t->parent = p;
                t->parent_how = "TaskGroup";
            }
        }
        free(items);
        free(cand);
    }
    /* A cycle of parents (a garbage read) is cut where it closes. */
    for (size_t i = 0; i < ts->n; i++) {
        size_t p = ts->v[i].parent;
        for (size_t steps = 0; p != SIZE_MAX && steps <= ts->n; steps++) {
            if (p == i) {
                ts->v[i].parent = SIZE_MAX;
                break;
            }
            p = ts->v[p].parent;
        }
    }
}

/* ---- all of it ---- */

/* The C _asyncio module's Task and Future types, from its dict in sys.modules. */
static int asyncio_types(struct ctx *c, uint64_t interp, struct pserr *err)
{
    struct pyrt *rt = c->rt;
    const struct pylayout *l = c->l;
    uint64_t modules, mod, dict, at;
    int ret;
    if (c->cache->task_type) {
        c->ts->task_type = c->cache->task_type;
        c->ts->future_type = c->cache->future_type;
        c->pure = c->cache->pure;
        return 0;
    }
    if ((ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_modules, &modules)) < 0)
        return pserr_set(err, -ret, "cannot read sys.modules of process %d: %s", (int)rt->pid,
                         strerror(-ret));
    if ((ret = pydict_get_str(rt, modules, "asyncio", &at)) == -ENOENT)
        return pserr_set(err, ENOENT, "process %d has not imported asyncio: it has no tasks",
                         (int)rt->pid);
    if (ret < 0)
        return pserr_set(err, -ret, "cannot read sys.modules of process %d: %s", (int)rt->pid,
                         strerror(-ret));
    /* Without the C module (not built, or sys.modules['_asyncio'] = None):
     * the pure-Python Task and Future of asyncio.tasks and asyncio.futures. */
    char tname[16] = "";
    if ((ret = pydict_get_str(rt, modules, "_asyncio", &mod)) == 0)
        asyncio_type_name(rt, mod, tname, sizeof(tname));
    if (ret == -ENOENT || (ret == 0 && !strcmp(tname, "NoneType"))) {
        uint64_t tmod, fmod, tdict, fdict;
        if ((ret = pydict_get_str(rt, modules, "asyncio.tasks", &tmod)) < 0 ||
            (ret = pydict_get_str(rt, modules, "asyncio.futures", &fmod)) < 0 ||
            (ret = mem_read_u64(rt->mem, tmod + (uint64_t)l->md_dict, &tdict)) < 0 ||
            (ret = mem_read_u64(rt->mem, fmod + (uint64_t)l->md_dict, &fdict)) < 0 ||
            (ret = pydict_get_str(rt, tdict, "Task", &c->ts->task_type)) < 0 ||
            (ret = pydict_get_str(rt, fdict, "Future", &c->ts->future_type)) < 0)
            return pserr_set(err, ret == -ENOENT ? EINVAL : -ret, "cannot read asyncio's "
                             "pure-Python Task and Future (process %d has no _asyncio): %s",
                             (int)rt->pid, ret == -ENOENT ? "not found" : strerror(-ret));
        c->pure = 1;
    } else if (ret < 0 || (ret = mem_read_u64(rt->mem, mod + (uint64_t)l->md_dict, &dict)) < 0 ||
               (ret = pydict_get_str(rt, dict, "Task", &c->ts->task_type)) < 0 ||
               (ret = pydict_get_str(rt, dict, "Future", &c->ts->future_type)) < 0) {
        return pserr_set(err, -ret, "cannot read the _asyncio module of process %d: %s",
                         (int)rt->pid, strerror(-ret));
    }
    c->cache->task_type = c->ts->task_type;
    c->cache->future_type = c->ts->future_type;
    c->cache->pure = c->pure;
    return 0;
}

int asyncio_collect(struct pyrt *rt, uint64_t interp, struct task_set *ts, struct pserr *err)
{
    struct asyncio_cache *cache = asyncio_cache_new();
    int ret = asyncio_collect_cached(rt, interp, cache, 0, ts, err);
    asyncio_cache_free(cache);
    return ret;
}

int asyncio_collect_cached(struct pyrt *rt, uint64_t interp, struct asyncio_cache *cache,
                           uint64_t now, struct task_set *ts, struct pserr *err)
{
    const struct asyncio_layout *al = asyncio_layout_for(rt->major, rt->minor);
    if (!al)
        return pserr_set(err, ENOTSUP, "asyncio tasks are read on Python 3.7-3.15; process %d "
                         "runs Python %s", (int)rt->pid, rt->version);
    /* What is kept is looked up anew now and then: types can be freed. */
    if (now - cache->since >= ASYNCIO_CACHE_NS || now < cache->since) {
        unsigned char *pages = cache->pages;
        uint64_t *known = cache->known;
        size_t cap = cache->pages_cap, nknown = cache->nknown, knowncap = cache->knowncap;
        memset(cache, 0, sizeof(*cache));
        cache->pages = pages;
        cache->pages_cap = cap;
        cache->known = known;
        cache->nknown = nknown;
        cache->knowncap = knowncap;
        cache->since = now;
    }
    struct ctx *c = xcalloc(1, sizeof(*c));
    c->rt = rt;
    c->l = &rt->layout;
    c->al = al;
    c->ts = ts;
    c->cache = cache;
    int ret = asyncio_types(c, interp, err);
    if (ret == 0 && al->task_node >= 0 && !c->pure) {
        if ((ret = registry_lists(c, interp)) < 0)
            ret = pserr_set(err, -ret, "cannot read the thread states of process %d",
                            (int)rt->pid);
    } else if (ret == 0 && (ret = registry_sets(c, interp, err)) == -ENOENT) {
        ret = 0;     /* asyncio.tasks not imported yet: no task */
    }
    if (ret == 0 && (ret = read_tasks(c)) < 0)
        ret = pserr_set(err, -ret, "cannot read the tasks of process %d: %s", (int)rt->pid,
                        strerror(-ret));
    if (ret == 0) {
        read_chains(c);
        find_parents(c);
    }
    htab_release(&c->index);
    free(c);
    return ret;
}
