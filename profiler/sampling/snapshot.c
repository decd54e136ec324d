#include "profiler/sampling/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "profiler/target/task.h"

/* Snapshots between two looks at the interpreter state's address. */
#define INTERP_RECHECK 64

void snapshot_init(struct snapshot *sn)
{
    memset(sn, 0, sizeof(*sn));
}

void snapshot_release(struct snapshot *sn)
{
    free(sn->threads);
    free(sn->st);
    free(sn->raw);
    free(sn->finfo);
    free(sn->codes);
    free(sn->entries);
    free(sn->ids);
    memset(sn, 0, sizeof(*sn));
}

static void grow_ids(struct snapshot *sn, size_t n)
{
    if (sn->idcap < n + 1) {
        sn->idcap = MAX(n + 1, sn->idcap * 2);
        sn->codes = xrealloc(sn->codes, sn->idcap * sizeof(*sn->codes));
        sn->entries = xrealloc(sn->entries, sn->idcap * sizeof(*sn->entries));
        sn->ids = xrealloc(sn->ids, sn->idcap * sizeof(*sn->ids));
    }
}

/*
 * Looks at a walked stack as its code objects say (cached ones as cached:
 * they are validated once the snapshot's stacks are kept).  Returns why it
 * cannot be a stack at all, or TORN_NONE; a caller that cannot be calling
 * the frame above it cuts the stack there (the outermost such caller: it
 * was the running frame).
 */
/*
 * 3.12+: a frame at a return had left the stack (it is unlinked before it
 * is cleared), unless it may have been running when the frame below was
 * read: it was read after it (the chunk's pages are read from the top,
 * each copied upward, so a frame read later than its caller on the same
 * page may have returned in between) while that caller was calling, for
 * all one can tell, into it (3.13 cannot tell a call of C from one of a
 * frame it pushed: then it had left); or read before it while the caller
 * was still calling it for sure (3.12: then it was returning).
 */
static int kept_at_return(struct session *s, const struct snapshot *sn, size_t i)
{
    const struct walk_frameinfo *fi = &sn->finfo[i];
    const struct code_entry *caller = sn->entries[i + 1];
    int64_t addrq = sn->raw[i + 1].addrq;
    int order = walk_read_order(s->walker, fi->addr, sn->finfo[i + 1].addr);
    if (order < 0)
        return codecache_pushing_sure(s->cc);
    /* An unreadable caller (kept, marked) may have been pushing it. */
    return order > 0 && (fi->entry || (codecache_pushing_sure(s->cc) &&
                                       (!caller || codecache_pushing(s->cc, caller, addrq))));
}

/*
 * The stack moved on between the read of the thread state and those of
 * its frames: while the innermost frame was calling, the frame it called
 * may have been read with the rest (above it on the data stack, 3.11+;
 * among the frame objects read ahead, <= 3.10).  Takes such frames in as
 * they were read, as far as each caller can be calling its callee.  A
 * callee at a return had left (or was about to: every call leaves its
 * frame so), unless it was read before its caller and that caller,
 * calling it for sure, still called then (3.11, 3.12).  On 3.13+ a class's __init__ is called through the
 * interpreter's own frame: that one is looked through.
 */
static void take_callees(struct session *s, struct snapshot *sn, struct snap_thread *t,
                         const struct walk_thread *w, size_t max_depth)
{
    size_t off = t->off;
    struct rawframe f;
    struct walk_frameinfo fi;
    struct code_entry *ce;
    while (t->depth > 0 && t->depth < max_depth) {
        struct code_entry *e = sn->entries[off];
        if (!e)
            return; /* an unreadable code object: what it calls is unknown */
        uint64_t addr = sn->finfo[off].addr;
        int64_t addrq = sn->raw[off].addrq;
        if (walk_callee(s->walker, w, addr, codecache_frame_bytes(e), &f, &fi) < 0 ||
            codecache_peek(s->cc, &f.code, 1, &ce) != 0 || codecache_is_shim(ce))
            return;
        if (codecache_is_init_shim(ce)) {
            /* The shim is pushed with __init__'s frame above it. */
            uint64_t shim = fi.addr;
            if (fi.entry ||
                walk_callee(s->walker, w, shim, codecache_frame_bytes(ce), &f, &fi) < 0 ||
                fi.entry || codecache_peek(s->cc, &f.code, 1, &ce) != 0 ||
                codecache_is_shim(ce) || codecache_is_init_shim(ce))
                return;
        }
        int pushed = !fi.entry;
        if (!codecache_can_call(s->cc, e, addrq, pushed, ce) ||
            (codecache_at_return(s->cc, ce, f.addrq) &&
             !(pushed && codecache_pushing(s->cc, e, addrq) && codecache_pushing_sure(s->cc) &&
               walk_read_order(s->walker, fi.addr, addr) < 0)))
            return;
        memmove(sn->raw + off + 1, sn->raw + off, t->depth * sizeof(*sn->raw));
        memmove(sn->finfo + off + 1, sn->finfo + off, t->depth * sizeof(*sn->finfo));
        memmove(sn->entries + off + 1, sn->entries + off, t->depth * sizeof(*sn->entries));
        sn->raw[off] = f;
        sn->finfo[off] = fi;
        sn->entries[off] = ce;
        t->depth++;
        sn->caught_up++;
    }
}

/*
 * keep_bad: a frame whose code object is no code is kept, marked unreadable
 * in its finfo, instead of tearing the walk.  Otherwise *bad is set to the
 * first such code address when one tears it.
 */
static enum walk_torn look_at(struct session *s, struct snapshot *sn, struct snap_thread *t,
                              const struct walk_thread *w, size_t max_depth, int keep_bad,
                              uint64_t *bad)
{
    size_t off = t->off, n = t->depth;
    for (size_t i = 0; i < n; i++)
        sn->codes[off + i] = sn->raw[off + i].code;
    int ret = codecache_peek(s->cc, sn->codes + off, n, sn->entries + off);
    if (ret < 0)
        return TORN_UNREADABLE;
    /* The interpreter's own frames under an __init__ are left out (3.13+). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sn->entries[off + i] && codecache_is_init_shim(sn->entries[off + i]))
            continue;
        sn->raw[off + k] = sn->raw[off + i];
        sn->finfo[off + k] = sn->finfo[off + i];
        sn->entries[off + k] = sn->entries[off + i];
        k++;
    }
    t->depth = n = k;
    size_t cut = 0;
    for (size_t i = 0; i < n; i++) {
        const struct code_entry *e = sn->entries[off + i];
        int64_t addrq = sn->raw[off + i].addrq;
        /* Not a code object, or an entry frame's trampoline without the
         * entry frame's owner: the stack changed while it was read, unless
         * (keep_bad) the same code stayed unreadable through every try. */
        if (!e && keep_bad) {
            sn->finfo[off + i].unreadable = 1;
            continue;
        }
        if (!e || codecache_is_shim(e)) {
            *bad = sn->raw[off + i].code;
            return TORN_NOT_CODE;
        }
        /* The frame above, when not entered from C, was pushed by this
         * frame's own instruction (3.11+).  A frame that cannot be calling
         * it was the running one; one at a return had left (3.12+), unless
         * read before the frame below (take_callees). */
        if (i > 0 && !codecache_can_call(s->cc, e, addrq, !sn->finfo[off + i - 1].entry,
                                         sn->entries[off + i - 1]))
            cut = i;
        if (i + 1 < n && codecache_returned(s->cc, e, addrq) &&
            !kept_at_return(s, sn, off + i))
            cut = i + 1;
    }
    /* A generator's frame has a caller while it runs: one found as a
     * thread's outermost frame had been suspended under the walk (<= 3.10;
     * later versions tell by the frame's owner). */
    if (t->status == 0 && n > 0 && sn->entries[off + n - 1] &&
        codecache_is_generator(sn->entries[off + n - 1]))
        return TORN_GEN_ROOT;
    if (cut > 0) {
        t->off += cut;
        t->depth -= cut;
        sn->cut++;
    }
    take_callees(s, sn, t, w, max_depth);
    return TORN_NONE;
}

/* Whether code address a was lately found unreadable through every try. */
static int known_bad(const struct snapshot *sn, uint64_t a)
{
    for (size_t i = 0; i < SNAP_BAD_CODES; i++)
        if (a && sn->bad_codes[i] == a)
            return 1;
    return 0;
}

/*
 * Walks one thread's stack into sn->raw (and sn->finfo): again at once
 * when torn, up to SNAP_TRIES times in all (once when its stack cannot
 * move: a thread held still, a core file).  A frame whose code object is
 * no code at the same address on every try (the one try of a still stack)
 * is no sign of a stack that moved: the code object is unreadable, and the
 * stack is kept with that frame marked (finfo's unreadable), counted apart
 * from torn walks.  One found so lately (sn->bad_codes) and no code on two
 * tries in a row is taken so at once: a code object that stays corrupt
 * costs two walks a sample, not SNAP_TRIES.
 */
static void read_stack(struct session *s, struct snapshot *sn, struct snap_thread *t,
                       struct walk_thread *w, size_t max_depth, int still)
{
    size_t off = sn->nraw;
    GROW(sn->raw, sn->rawcap, off + max_depth);
    GROW(sn->finfo, sn->finfocap, off + max_depth);
    grow_ids(sn, off + max_depth);
    int tries = still || mem_is_still(s->mem) ? 1 : SNAP_TRIES;
    uint64_t bad = 0, first_bad = 0, retries = 0, not_code = 0;
    int same_bad = 1, kept_bad = 0;
    t->walked = 1;
    for (int k = 0; k < tries; k++) {
        enum walk_torn why = TORN_NONE;
        t->off = off;
        t->depth = 0;
        if (k > 0) {
            retries++;
            t->status = walk_refresh(s->walker, sn->interp, w);
            if (t->status < 0 || !walk_has_frames(w)) {
                t->status = t->status < 0 ? t->status : -ENOENT;
                break;
            }
        }
        t->status = walk_stack_info(s->walker, w, sn->raw + off, sn->finfo + off, max_depth,
                                    &t->depth);
        if (t->status == -EINVAL)
            why = walk_last_torn(s->walker);
        else if (t->status == -ELOOP)
            why = TORN_CYCLE;
        else if (t->status == -EFAULT)
            why = TORN_UNREADABLE;
        else if (t->status >= 0) {
            if (walk_last_settled(s->walker))
                sn->cut++;
            why = look_at(s, sn, t, w, max_depth, 0, &bad);
        }
        if (why == TORN_NOT_CODE) {
            same_bad &= !first_bad || bad == first_bad;
            first_bad = bad;
        } else if (why != TORN_NONE) {
            same_bad = 0;
        }
        if (why == TORN_NOT_CODE && same_bad &&
            (k + 1 == tries || (k > 0 && known_bad(sn, bad)))) {
            why = look_at(s, sn, t, w, max_depth, 1, &bad);
            kept_bad = why == TORN_NONE;
        }
        if (why == TORN_NONE)
            break;
        if (why == TORN_NOT_CODE)
            not_code++;
        else
            sn->torn_tries[why]++;
        if (k + 1 == tries) {
            sn->torn_drops[why]++;
            if (t->status >= 0)
                t->status = -EINVAL;
        }
    }
    /* The tries a code object that stayed unreadable took are not torn walks. */
    if (kept_bad) {
        if (!known_bad(sn, first_bad))
            sn->bad_codes[sn->bad_next++ % SNAP_BAD_CODES] = first_bad;
        sn->unreadable++;
        sn->unreadable_retries += retries;
    } else {
        sn->torn_tries[TORN_NOT_CODE] += not_code;
        sn->retries += retries;
    }
    if (t->status == -ENOENT)
        t->walked = 0; /* no Python frame: as if its thread state had said so */
    if (t->status < 0) {
        t->off = off;
        t->depth = 0;
    }
    sn->nraw = t->off + t->depth;
}

/*
 * Turns a walked thread's frames into ids, with its code objects
 * validated: one that changed since it was looked at drops the stack (its
 * depth 0: no id of it is set); one found unreadable on every try is
 * named so.
 */
static void thread_ids(struct session *s, struct snapshot *sn, struct snap_thread *t,
                       int by_function)
{
    for (size_t i = t->off; i < t->off + t->depth; i++) {
        if (!sn->entries[i] && sn->finfo[i].unreadable) {
            sn->ids[i] = codecache_unreadable_frame(s->cc, sn->raw[i].code);
            continue;
        }
        if (!sn->entries[i] || codecache_is_shim(sn->entries[i])) {
            t->status = -EINVAL;
            t->depth = 0;
            sn->torn_drops[TORN_NOT_CODE]++;
            return;
        }
        sn->ids[i] = codecache_frame(s->cc, sn->entries[i], sn->raw[i].addrq, by_function);
    }
}

/* Validates every kept frame's code object, in one read, and turns frames into ids. */
static int resolve(struct session *s, struct snapshot *sn, int by_function)
{
    grow_ids(sn, sn->nraw);
    for (size_t i = 0; i < sn->nraw; i++)
        sn->codes[i] = sn->raw[i].code;
    int ret = codecache_resolve(s->cc, sn->codes, sn->nraw, sn->entries);
    if (ret < 0)
        return ret;
    for (size_t k = 0; k < sn->nthreads; k++) {
        struct snap_thread *t = &sn->st[k];
        if (!t->walked || t->reused || t->status < 0)
            continue;
        thread_ids(s, sn, t, by_function);
    }
    return 0;
}

int snapshot_walk_extra(struct session *s, struct snapshot *sn, size_t k, int by_function,
                        size_t max_depth)
{
    struct snap_thread *t = &sn->st[k];
    if (t->walked || t->excluded)
        return t->walked ? t->status : -ENOENT;
    if (!walk_has_frames(&sn->threads[k]))
        return -ENOENT;
    read_stack(s, sn, t, &sn->threads[k], max_depth, 0);
    t->extra = 1;
    if (t->status < 0 || !t->walked)
        return t->walked ? t->status : -ENOENT;
    grow_ids(sn, t->off + t->depth);
    for (size_t i = t->off; i < t->off + t->depth; i++)
        sn->codes[i] = sn->raw[i].code;
    int ret = codecache_resolve(s->cc, sn->codes + t->off, t->depth, sn->entries + t->off);
    if (ret < 0)
        return t->status = ret;
    thread_ids(s, sn, t, by_function);
    return t->status;
}

/* How many more times, and how far apart, a one-off look reads a free GIL's holder. */
#define GIL_REREADS 200
#define GIL_REREAD_GAP_NS 100000L

/* The GIL's holder: in one read where the GIL's state is known. */
static int read_holder(struct session *s, struct snapshot *sn, uint64_t *holder)
{
    if (sn->ngil_spans == 1 && pyrt_gil_holder_in(&s->rt, &sn->gil_spans[0], holder) == 0)
        return 0;
    return pyrt_gil_holder(&s->rt, sn->interp, holder);
}

int thread_filter_match(const struct thread_filter *f, const char *name, pid_t tid)
{
    if (!f || (f->nres == 0 && f->ntids == 0))
        return 1;
    for (size_t i = 0; i < f->ntids; i++)
        if (tid > 0 && f->tids[i] == tid)
            return 1;
    for (size_t i = 0; i < f->nres && name; i++)
        if (regexec(&f->res[i], name, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

const char *thread_state_name(enum thread_state st)
{
    switch (st) {
    case TS_RUNNING: return "running";
    case TS_IDLE: return "idle";
    case TS_GIL_WAIT: return "gil wait";
    default: return "unknown";
    }
}

/* Whether tracked thread tr passes the filter: decided again only once renamed. */
static int selected(struct tracked *tr, const struct thread_filter *f)
{
    if (!f || (f->nres == 0 && f->ntids == 0))
        return 1;
    if (tr->selected < 0)
        tr->selected = thread_filter_match(f, tr->name, tr->tid);
    return tr->selected;
}

/* 1 when addr lies in one of the GIL's spans. */
static int in_gil(const struct snapshot *sn, uint64_t addr)
{
    for (int i = 0; i < sn->ngil_spans; i++)
        if (addr >= sn->gil_spans[i].start && addr < sn->gil_spans[i].end)
            return 1;
    return 0;
}

/*
 * What a thread not on CPU is doing, from what it is blocked in: a futex
 * in the GIL is a GIL wait, anything else idle.  Where that cannot be
 * told, the thread is idle.
 */
static enum thread_state blocked_state(struct snapshot *sn, struct tracked *tr, int *lock_wait)
{
    long nr;
    uint64_t arg0;
    if (!tr->task)
        return TS_IDLE;
    int ret = mem_task_syscall(tr->task, &nr, &arg0);
    if (ret == 1)
        return TS_RUNNING; /* woken since its state was read */
    if (ret == 0 && nr == SYS_futex && in_gil(sn, arg0))
        return TS_GIL_WAIT;
    /* Any other futex: a lock, a condition, a semaphore (threading's
     * locks, events, queues and conditions all wait in one). */
    *lock_wait = ret == 0 && nr == SYS_futex;
    return TS_IDLE;
}

/* A thread's CPU time, at most, for waking from a hold and being let go. */
#define HOLD_WAKE_RUN_NS 200000u

/*
 * 1 when thread tr, idle at the last sample, is runnable now only because
 * that sample held it (native frames): the hold interrupts its wait, and
 * once let go it must run to go back to it.  On a busy machine it may not
 * have had a CPU since: it has run no more than handling the stop takes.
 */
static int woken_by_hold(const struct session *s, const struct tracked *tr,
                         const struct snap_thread *t, int sched, uint64_t run)
{
    return t->state == 'R' && sched && tr->held_gen && tr->held_gen + 1 == s->gen &&
           tr->last_state && tr->last_state != 'R' &&
           (tr->last_ts == TS_IDLE || tr->last_ts == TS_GIL_WAIT) &&
           run - tr->last_run_ns < HOLD_WAKE_RUN_NS;
}

/*
 * The kernel's view of thread tr into t: its state letter and, with
 * want_wait, what it waits for.  Its state (and what it is blocked in) are
 * read again only for a thread that was on a CPU at the last look, or has
 * been switched in since (its scheduler statistics, cheaper to read): one
 * that has not cannot have changed what it waits for.
 */
static int kernel_state(struct session *s, struct snapshot *sn, struct tracked *tr,
                        uint64_t tstate, struct snap_thread *t, const struct snap_opts *o)
{
    if (!tr->task)
        return 0;
    uint64_t run = 0, switches = 0;
    /* A kernel without scheduler statistics says 0 for every thread. */
    int sched = mem_task_schedstat(tr->task, &run, &switches) == 0 && switches > 0;
    if (sched)
        t->cpu_ns = run;
    if (sched && !o->want_cpu && tr->last_state && tr->last_state != 'R' &&
        (tr->last_ts == TS_IDLE || tr->last_ts == TS_GIL_WAIT) && run == tr->last_run_ns &&
        switches == tr->last_switches) {
        t->state = tr->last_state;
        t->ts = (enum thread_state)tr->last_ts;
        t->lock_wait = tr->last_lock;
        sn->states_kept++;
        return 1;
    }
    uint64_t ticks = 0;
    int st = mem_task_state(tr->task, o->want_cpu ? &ticks : NULL);
    t->state = st > 0 ? st : 0;
    t->cpu_ticks = ticks;
    if (woken_by_hold(s, tr, t, sched, run)) {
        /* Not yet back in the wait the last sample's hold interrupted. */
        t->state = tr->last_state;
        t->ts = (enum thread_state)tr->last_ts;
        t->lock_wait = tr->last_lock;
        sn->woken_by_hold++;
    } else {
        if (t->state && t->state != 'R' && t->gil) {
            /* The holder was read before this thread's state: off CPU, it may
             * have let the GIL go since.  Asked again, once per snapshot. */
            if (!sn->holder_reread) {
                uint64_t h = 0;
                sn->holder_reread = 1;
                if (read_holder(s, sn, &h) < 0)
                    h = 0;
                sn->gil_holder = h;
            }
            t->gil = sn->gil_holder == tstate;
        }
        if (t->state == 'R') {
            t->ts = TS_RUNNING;
        } else if (t->state && o->want_wait) {
            /* Blocked on the GIL itself is waiting for it, whatever an earlier
             * read of its holder said; blocked elsewhere while holding it is idle. */
            t->ts = blocked_state(sn, tr, &t->lock_wait);
            if (t->ts == TS_GIL_WAIT)
                t->gil = 0;
        } else if (t->state) {
            t->ts = TS_IDLE;
        }
    }
    tr->last_state = sched ? t->state : 0;
    tr->last_ts = t->ts;
    tr->last_lock = t->lock_wait;
    tr->last_run_ns = run;
    tr->last_switches = switches;
    return 0;
}

/*
 * After resolve: each walked stack is kept with its thread, for the ticks
 * it does not run; the stacks reused are copied into sn->ids.
 */
static void keep_stacks(struct session *s, struct snapshot *sn)
{
    size_t extra = 0;
    for (size_t k = 0; k < sn->nthreads; k++)
        if (sn->st[k].reused)
            extra += sn->st[k].depth;
    if (sn->idcap < sn->nraw + extra + 1) {
        sn->idcap = sn->nraw + extra + 1;
        sn->codes = xrealloc(sn->codes, sn->idcap * sizeof(*sn->codes));
        sn->entries = xrealloc(sn->entries, sn->idcap * sizeof(*sn->entries));
        sn->ids = xrealloc(sn->ids, sn->idcap * sizeof(*sn->ids));
    }
    size_t end = sn->nraw;
    for (size_t k = 0; k < sn->nthreads; k++) {
        struct snap_thread *t = &sn->st[k];
        if (t->excluded || !t->walked)
            continue;
        struct tracked *tr = &s->threads[t->tracked];
        if (t->reused) {
            t->off = end;
            memcpy(sn->ids + end, tr->stack, t->depth * sizeof(*sn->ids));
            end += t->depth;
            continue;
        }
        /* Kept for reuse only when the thread had not run since the look
         * before this snapshot's reads: its thread state and frames are
         * read before its kernel state, and one that ran up to a long wait
         * in between would have a stack from before the wait reused for
         * all of it. */
        tr->stack_ok = t->status >= 0 && t->still;
        if (!tr->stack_ok)
            continue;
        GROW(tr->stack, tr->stackcap, t->depth + 1);
        memcpy(tr->stack, sn->ids + t->off, t->depth * sizeof(*tr->stack));
        tr->nstack = t->depth;
        tr->stack_status = t->status;
    }
}

/* Each walked thread's stack with its native frames, at the end of ids. */
static void merge_native(struct session *s, struct snapshot *sn, const struct snap_native *nat)
{
    size_t end = sn->nraw; /* no stack is reused with native frames */
    for (size_t k = 0; k < sn->nthreads; k++) {
        struct snap_thread *t = &sn->st[k];
        const uint32_t *ids;
        size_t n;
        if (t->excluded || !t->walked || t->status < 0 ||
            nat->merge(nat->ctx, s, sn, k, &ids, &n) < 0)
            continue;
        if (sn->idcap < end + n + 1) {
            sn->idcap = end + n + 1;
            sn->codes = xrealloc(sn->codes, sn->idcap * sizeof(*sn->codes));
            sn->entries = xrealloc(sn->entries, sn->idcap * sizeof(*sn->entries));
            sn->ids = xrealloc(sn->ids, sn->idcap * sizeof(*sn->ids));
        }
        memcpy(sn->ids + end, ids, n * sizeof(*ids));
        t->py_off = t->off;
        t->py_depth = t->depth;
        t->off = end;
        t->depth = n;
        t->native = 1;
        end += n;
    }
}

/*
 * The interpreter state (looked up again only now and then, or when its
 * thread list cannot be read: at exit, it is freed) and its thread list,
 * into sn->threads.  0 (sn->interp 0: no interpreter yet, or any more), or
 * a negative errno.
 */
static int read_thread_list(struct session *s, struct snapshot *sn)
{
    int ret;
    int fresh = !sn->interp || s->gen - sn->interp_gen >= INTERP_RECHECK;
    for (;;) {
        if (fresh) {
            if ((ret = pyrt_interp(&s->rt, &sn->interp)) < 0)
                return ret;
            sn->interp_gen = s->gen;
            sn->ngil_spans = -1;
            if (!sn->interp)
                return 0; /* not initialised yet, or finalised */
        }
        GROW(sn->threads, sn->threadcap, (size_t)WALK_MAX_THREADS);
        ret = walk_threads(s->walker, sn->interp, sn->threads, sn->threadcap, &sn->nthreads);
        if (ret == 0 || fresh)
            break;
        fresh = 1;
    }
    if (ret < 0)
        sn->interp = 0;
    return ret;
}

/* Which thread state holds the GIL, when o asks (sn->gil_holder, 0 none or unknown). */
static void read_gil(struct session *s, struct snapshot *sn, const struct snap_opts *o)
{
    uint64_t holder = 0;
    int want_gil = o->gil_only || o->want_gil || o->want_wait;
    if (want_gil && sn->ngil_spans < 0) {
        int n = pyrt_gil_spans(&s->rt, sn->interp, sn->gil_spans);
        sn->ngil_spans = n > 0 ? n : -1;
    }
    if (want_gil && read_holder(s, sn, &holder) < 0)
        holder = 0;
    /* A one-off look (dump) asks again while nobody holds the GIL, for up
     * to 20 ms: Python 2 hands it back and forth every 100 instructions even
     * with no other thread waiting, and a read can fall in that instant, or
     * in a longer one when the holder is preempted just then. */
    for (int k = 0; o->gil_patient && !holder && k < GIL_REREADS; k++) {
        if (k >= 8) {
            struct timespec gap = {0, GIL_REREAD_GAP_NS};
            nanosleep(&gap, NULL);
        }
        if (read_holder(s, sn, &holder) < 0)
            holder = 0;
    }
    sn->gil_holder = holder;
    sn->holder_reread = 0;
}

/* Every thread is tracked first, so that a name filter sees the names of
 * threads new in this snapshot. */
static void track_threads(struct session *s, struct snapshot *sn, const struct snap_opts *o)
{
    GROW(sn->st, sn->stcap, sn->nthreads + 1);
    int unnamed = 0;
    for (size_t i = 0; i < sn->nthreads; i++) {
        struct snap_thread *t = &sn->st[i];
        memset(t, 0, sizeof(*t));
        t->tracked = session_track(s, sn->threads, sn->nthreads, i);
        struct tracked *tr = &s->threads[t->tracked];
        if (o->filter && o->filter->nres)
            tr->want_name = 1;
        unnamed |= !tr->name_tried;
    }
    if (o->filter && o->filter->nres && unnamed)
        session_name_threads(s, sn->interp, 0);
}

/* Thread i: selected or not, its state when o wants it, and its stack when o wants that. */
static void sample_thread(struct session *s, struct snapshot *sn, const struct snap_opts *o,
                          size_t i)
{
    struct snap_thread *t = &sn->st[i];
    struct tracked *tr = &s->threads[t->tracked];
    int want_state = o->active_only || o->want_state;
    if (!selected(tr, o->filter)) {
        t->excluded = 1;
        return;
    }
    sn->nselected++;
    t->gil = sn->gil_holder && sn->gil_holder == sn->threads[i].tstate;
    /* Only the holder counts with gil_only: the others' states are not read. */
    if (o->gil_only && !t->gil && !o->want_cpu)
        return;
    int kept = (want_state || o->want_cpu) && kernel_state(s, sn, tr, sn->threads[i].tstate, t, o);
    t->still = kept;
    if (o->active_only && t->ts != TS_RUNNING)
        return;
    if (o->gil_only && !t->gil)
        return;
    if (!walk_has_frames(&sn->threads[i]))
        return;
    /* Off CPU and not switched in since its last walk: its stack is the
     * same, and costs no read. */
    if (kept && tr->stack_ok && !o->want_info && !o->native) {
        t->walked = t->reused = 1;
        t->status = tr->stack_status;
        t->depth = tr->nstack;
        sn->stacks_reused++;
        return;
    }
    tr->stack_ok = 0;
    if (o->native && o->native->hold(o->native->ctx, s, sn, i) == 0) {
        tr->held_gen = s->gen;
        /* Held: its stack as it is now, not as the list said before. */
        walk_refresh(s->walker, sn->interp, &sn->threads[i]);
        read_stack(s, sn, t, &sn->threads[i], o->max_depth, 1);
        o->native->release(o->native->ctx, s, sn, i);
    } else {
        read_stack(s, sn, t, &sn->threads[i], o->max_depth, 0);
    }
}

int snapshot_take(struct session *s, struct snapshot *sn, const struct snap_opts *o)
{
    int ret;
    sn->nthreads = sn->nraw = sn->nselected = 0;
    s->gen++;
    /* When the threads new in this list were first seen, at the latest
     * (session_track: whether a tid found later is theirs). */
    s->list_ns = mem_boot_ns(s->mem);
    if ((ret = read_thread_list(s, sn)) < 0 || !sn->interp)
        return ret;
    read_gil(s, sn, o);
    track_threads(s, sn, o);
    for (size_t i = 0; i < sn->nthreads; i++)
        sample_thread(s, sn, o, i);
    if ((ret = resolve(s, sn, o->by_function)) < 0)
        return ret;
    keep_stacks(s, sn);
    if (o->native)
        merge_native(s, sn, o->native);
    return 0;
}
