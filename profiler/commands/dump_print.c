/* dump's text and JSON: see dump_print.h. */
#include "profiler/commands/dump_print.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "output/label.h"
#include "profiler/cpython/pyval.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "profiler/target/task.h"
#include "profiler/target/srcfile.h"
#include "symbolizer/codecache.h"

const char *dump_print_stack_error(int status)
{
    switch (status) {
    case -EFAULT: return "unreadable memory";
    case -ELOOP: return "a cycle in the frame chain";
    default: return "it changed while being read";
    }
}

/* The frame's locals, or -errno; every value is already rendered.  k: its walk index. */
static int frame_locals(const struct dump_extras *x, const struct snapshot *sn, size_t k,
                        struct pylocals *ls)
{
    if (!sn->finfo || k == SIZE_MAX || !sn->finfo[k].addr)
        return -ENOENT;
    return pyval_locals(x->pv, sn->finfo[k].addr, sn->raw[k].code, ls);
}

static const char *locals_error(int err)
{
    switch (err) {
    case -EFAULT: return "unreadable memory";
    case -E2BIG: return "too many variables";
    case -ENOENT: return "frame not found";
    case -ESRCH: return "the process exited";
    default: return "the frame changed while being read";
    }
}

/* Leading blanks every non-blank line of the block shares. */
static size_t common_indent(const struct srcline *v, size_t n)
{
    size_t ind = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t k = strspn(v[i].text, " ");
        if (v[i].text[k])
            ind = MIN(ind, k);
    }
    return ind == SIZE_MAX ? 0 : ind;
}

/*
 * The walk index (in raw and finfo) of each Python frame of a thread, in
 * order: with native frames merged in, its Python frames are elsewhere.
 */
struct pyframes {
    size_t next, end;
};

static struct pyframes pyframes_of(const struct snap_thread *t)
{
    size_t off = t->native ? t->py_off : t->off;
    return (struct pyframes){off, off + (t->native ? t->py_depth : t->depth)};
}

/* The walk index of the next Python frame, SIZE_MAX when there is none. */
static size_t pyframes_next(struct pyframes *p)
{
    return p->next < p->end ? p->next++ : SIZE_MAX;
}

static void extras_text(const struct dump_extras *x, const struct session *s,
                        const struct snapshot *sn, uint32_t id, size_t k, struct strbuf *out)
{
    if (x->src) {
        const struct names_frame *fr = names_frame_get(s->names, id);
        const struct names_func *fn = names_func_get(s->names, fr->func);
        struct srcline v[2 * SRCFILE_MAX_CONTEXT + 1];
        size_t n;
        if (srcfiles_lines(x->src, names_str_get(s->names, fn->file), fr->line, x->context, v,
                           &n) == 0) {
            size_t ind = common_indent(v, n);
            int width = snprintf(NULL, 0, "%d", v[n - 1].line);
            for (size_t i = 0; i < n; i++) {
                const char *t = v[i].text;
                t += MIN(ind, strlen(t));
                sb_addf(out, "        %c %*d%s%s\n", v[i].current ? '>' : ' ', width, v[i].line,
                        *t ? "  " : "", t);
            }
            srclines_release(v, n);
        }
    }
    if (x->pv) {
        struct pylocals ls = PYLOCALS_INIT;
        int ret = frame_locals(x, sn, k, &ls);
        if (ret < 0)
            sb_addf(out, "        (locals unreadable: %s)\n", locals_error(ret));
        for (size_t i = 0; i < ls.n; i++) {
            /* Both are printable already: values escape what they hold. */
            sb_addf(out, "        %s = %s\n", ls.v[i].name, ls.v[i].value);
        }
        pylocals_release(&ls);
    }
}

static void extras_json(const struct dump_extras *x, const struct session *s,
                        const struct snapshot *sn, uint32_t id, size_t k, struct strbuf *out)
{
    if (x->src) {
        const struct names_frame *fr = names_frame_get(s->names, id);
        const struct names_func *fn = names_func_get(s->names, fr->func);
        struct srcline v[2 * SRCFILE_MAX_CONTEXT + 1];
        size_t n = 0;
        srcfiles_lines(x->src, names_str_get(s->names, fn->file), fr->line, x->context, v, &n);
        sb_adds(out, ", \"source\": [");
        for (size_t i = 0; i < n; i++) {
            sb_addf(out, "%s{\"line\": %d, \"text\": ", i ? ", " : "", v[i].line);
            json_string(out, v[i].text);
            sb_addf(out, ", \"current\": %s}", v[i].current ? "true" : "false");
        }
        sb_addc(out, ']');
        srclines_release(v, n);
    }
    if (x->pv) {
        struct pylocals ls = PYLOCALS_INIT;
        int ret = frame_locals(x, sn, k, &ls);
        if (ret < 0) {
            sb_adds(out, ", \"locals_error\": ");
            json_string(out, locals_error(ret));
        }
        sb_adds(out, ", \"locals\": [");
        for (size_t i = 0; i < ls.n; i++) {
            sb_adds(out, i ? ",\n      {\"name\": " : "\n      {\"name\": ");
            json_string(out, ls.v[i].name);
            sb_addf(out, ", \"kind\": \"%s\", \"value\": ", pylocal_kind_name(ls.v[i].kind));
            json_string(out, ls.v[i].value);
            sb_addc(out, '}');
        }
        sb_addc(out, ']');
        pylocals_release(&ls);
    }
}

void dump_print_frame(const struct names *nm, uint32_t id, struct strbuf *out)
{
    if (id == UINT32_MAX) {
        sb_adds(out, "(unreadable code object)");
        return;
    }
    const struct names_frame *fr = names_frame_get(nm, id);
    const struct names_func *fn = names_func_get(nm, fr->func);
    label_clean(names_str_get(nm, fn->name), out);
    sb_adds(out, " (");
    label_clean(names_str_get(nm, fn->file), out);
    label_line(fr->line, out);
    sb_addc(out, ')');
}

void dump_print_frame_json(const struct names *nm, uint32_t id, struct strbuf *out)
{
    if (id == UINT32_MAX) {
        sb_adds(out, "{\"function\": null}");
        return;
    }
    const struct names_frame *fr = names_frame_get(nm, id);
    const struct names_func *fn = names_func_get(nm, fr->func);
    sb_adds(out, "{\"function\": ");
    json_string(out, names_str_get(nm, fn->name));
    sb_adds(out, ", \"file\": ");
    json_string(out, names_str_get(nm, fn->file));
    sb_adds(out, ", \"line\": ");
    json_line(out, fr->line);
    sb_addc(out, '}');
}

void dump_print_frames_json(const struct names *nm, const uint32_t *ids, size_t n,
                            struct strbuf *out)
{
    sb_addc(out, '[');
    for (size_t k = 0; k < n; k++) {
        sb_adds(out, k ? ", " : "");
        dump_print_frame_json(nm, ids[k], out);
    }
    sb_addc(out, ']');
}

uint32_t *dump_print_frame_ids(struct session *s, const struct rawframe *raw, size_t n)
{
    uint32_t *ids = xcalloc(n ? n : 1, sizeof(*ids));
    uint64_t *codes = xmalloc((n ? n : 1) * sizeof(*codes));
    struct code_entry **e = xcalloc(n ? n : 1, sizeof(*e));
    for (size_t i = 0; i < n; i++)
        codes[i] = raw[i].code;
    if (n && codecache_resolve(s->cc, codes, n, e) >= 0)
        for (size_t i = 0; i < n; i++)
            ids[i] = e[i] ? codecache_frame(s->cc, e[i], raw[i].addrq, 0) : UINT32_MAX;
    else
        for (size_t i = 0; i < n; i++)
            ids[i] = UINT32_MAX;
    free(codes);
    free(e);
    return ids;
}

/* A native frame (--native) has no file: its label says it all. */
static int frame_is_native(const struct names *n, uint32_t id)
{
    return names_func_get(n, names_frame_get(n, id)->func)->file == NAMES_EMPTY;
}

static void frame_text(const struct names *n, uint32_t id, struct strbuf *out)
{
    const struct names_frame *fr = names_frame_get(n, id);
    const struct names_func *fn = names_func_get(n, fr->func);
    sb_adds(out, "    ");
    if (fn->file == NAMES_EMPTY) {
        /* A native frame: its label says it all. */
        label_clean(names_str_get(n, fn->name), out);
        sb_addc(out, '\n');
        return;
    }
    label_clean(names_str_get(n, fn->name), out);
    sb_adds(out, " (");
    label_clean(names_str_get(n, fn->file), out);
    label_line(fr->line, out);
    sb_adds(out, ")\n");
}

/*
 * The signal that made the core, on the thread that took it (the core's
 * first); 0 for other threads, for a core written without a signal (gcore)
 * and for a live process.
 */
static int signal_of(const struct tracked *tr)
{
    return tr->task ? mem_task_signal(tr->task) : 0;
}

/* The thread holding the GIL, as the snapshot found it: its index in sn->st, or -1. */
static long gil_holder(const struct snapshot *sn)
{
    for (size_t k = 0; k < sn->nthreads; k++)
        if (sn->st[k].gil)
            return (long)k;
    return -1;
}

/* Who holds the GIL, for a hung process: "thread 4250 "worker-1"", or that nobody does. */
static void gil_text(struct session *s, const struct snapshot *sn, struct strbuf *out)
{
    long h = gil_holder(sn);
    if (h < 0) {
        sb_adds(out, "GIL: not held\n");
        return;
    }
    const struct tracked *tr = &s->threads[sn->st[h].tracked];
    if (tr->tid > 0)
        sb_addf(out, "GIL: held by thread %d", (int)tr->tid);
    else
        sb_addf(out, "GIL: held by thread 0x%" PRIx64, tr->thread_id);
    if (tr->name) {
        sb_adds(out, " \"");
        label_clean(tr->name, out);
        sb_addc(out, '"');
    }
    sb_addc(out, '\n');
}

void dump_print_text(struct session *s, const struct snapshot *sn, const struct dump_extras *x,
                       struct strbuf *out)
{
    struct strbuf cmd = STRBUF_INIT, raw = STRBUF_INIT;
    mem_cmdline(s->mem, &raw);
    sb_add_clean(&cmd, raw.buf ? raw.buf : "", raw.len);
    sb_release(&raw);
    const char *core = mem_core_path(s->mem);
    if (core) {
        sb_addf(out, "Core %s of process %d: %s\n", core, (int)s->pid, sb_str(&cmd));
    } else {
        sb_addf(out, "Process %d: %s\n", (int)s->pid, sb_str(&cmd));
    }
    sb_addf(out, "Python %s%s (%s)\n", s->rt.version, pyrt_tested_note(&s->rt),
            path_base(s->rt.binary));
    if (s->rt.layout.untested)
        sb_addf(out, "Read through its _Py_DebugOffsets and %d.%d's tables; no bytecode table "
                "for %d.%d, so stacks are checked for tearing by their frame links only.\n",
                s->rt.layout.major, layout_newest_minor(), s->rt.layout.major,
                s->rt.layout.minor);
    gil_text(s, sn, out);
    sb_release(&cmd);
    sb_addc(out, '\n');
    /* The interpreter lists the newest thread first: print the oldest first. */
    for (size_t k = sn->nthreads; k-- > 0;) {
        const struct snap_thread *t = &sn->st[k];
        const struct tracked *tr = &s->threads[t->tracked];
        if (tr->tid > 0)
            sb_addf(out, "Thread %d", (int)tr->tid);
        else
            sb_addf(out, "Thread 0x%" PRIx64, tr->thread_id);
        if (tr->name) {
            sb_adds(out, " \"");
            label_clean(tr->name, out);
            sb_addc(out, '"');
        }
        sb_adds(out, t->ts == TS_RUNNING ? " (active" : t->ts == TS_GIL_WAIT ? " (gil wait"
                     : t->ts == TS_IDLE ? " (idle" : " (unknown");
        if (t->lock_wait)
            sb_adds(out, ", lock wait");
        if (t->gil)
            sb_adds(out, ", gil");
        int sig = signal_of(tr);
        if (sig > 0)
            sb_addf(out, ", signal %d", sig);
        sb_adds(out, ")\n");
        if (t->status < 0) {
            sb_addf(out, "    (stack unreadable: %s)\n", dump_print_stack_error(t->status));
            continue;
        }
        if (!t->walked || t->depth == 0)
            sb_adds(out, "    (no Python frames)\n");
        struct pyframes py = pyframes_of(t);
        for (size_t i = 0; i < t->depth; i++) {
            uint32_t id = sn->ids[t->off + i];
            frame_text(s->names, id, out);
            if (!frame_is_native(s->names, id))
                extras_text(x, s, sn, id, pyframes_next(&py), out);
        }
        if (t->status == 1)
            sb_addf(out, "    ... stack truncated at %zu frames\n", t->depth);
    }
}

void dump_print_json(struct session *s, const struct snapshot *sn, const struct dump_extras *x,
                       struct strbuf *out)
{
    struct strbuf cmd = STRBUF_INIT;
    mem_cmdline(s->mem, &cmd);
    sb_addf(out, "{\"pid\": %d, \"command\": ", (int)s->pid);
    json_string(out, sb_str(&cmd));
    const char *core = mem_core_path(s->mem);
    if (core) {
        sb_adds(out, ", \"core\": ");
        json_string(out, core);
    }
    sb_adds(out, ",\n \"python\": {\"version\": ");
    json_string(out, s->rt.version);
    sb_adds(out, ", \"binary\": ");
    json_string(out, s->rt.binary);
    sb_addf(out, ", \"tested\": %s", s->rt.layout.untested ? "false" : "true");
    sb_adds(out, "},\n \"gil_holder\": ");
    long h = gil_holder(sn);
    if (h >= 0 && s->threads[sn->st[h].tracked].tid > 0)
        sb_addf(out, "%d", (int)s->threads[sn->st[h].tracked].tid);
    else if (h >= 0)
        sb_addf(out, "\"0x%" PRIx64 "\"", s->threads[sn->st[h].tracked].thread_id);
    else
        sb_adds(out, "null");
    sb_adds(out, ",\n \"threads\": [");
    sb_release(&cmd);
    int first = 1;
    for (size_t k = sn->nthreads; k-- > 0;) {
        const struct snap_thread *t = &sn->st[k];
        const struct tracked *tr = &s->threads[t->tracked];
        sb_adds(out, first ? "\n  " : ",\n  ");
        first = 0;
        sb_addf(out, "{\"tid\": %d, \"thread_id\": \"0x%" PRIx64 "\", \"name\": ", (int)tr->tid,
                tr->thread_id);
        if (tr->name)
            json_string(out, tr->name);
        else
            sb_adds(out, "null");
        sb_addf(out, ", \"state\": \"%s\", \"active\": %s, \"gil\": %s, \"truncated\": %s",
                t->ts == TS_GIL_WAIT ? "gil_wait" : thread_state_name(t->ts),
                t->ts == TS_RUNNING ? "true" : "false", t->gil ? "true" : "false",
                t->status == 1 ? "true" : "false");
        sb_addf(out, ", \"waiting_for\": %s", t->ts == TS_GIL_WAIT ? "\"gil\""
                                              : t->lock_wait ? "\"lock\"" : "null");
        if (core)
            sb_addf(out, ", \"signal\": %d", signal_of(tr));
        if (t->status < 0) {
            sb_adds(out, ", \"error\": ");
            json_string(out, dump_print_stack_error(t->status));
        }
        sb_adds(out, ",\n   \"frames\": [");
        struct pyframes py = pyframes_of(t);
        /* A stack that could not be read has no frame ids, as in the text. */
        size_t depth = t->status < 0 ? 0 : t->depth;
        for (size_t i = 0; i < depth; i++) {
            const struct names_frame *fr = names_frame_get(s->names, sn->ids[t->off + i]);
            const struct names_func *fn = names_func_get(s->names, fr->func);
            sb_adds(out, i ? ",\n    {\"function\": " : "\n    {\"function\": ");
            json_string(out, names_str_get(s->names, fn->name));
            if (fn->file == NAMES_EMPTY) {
                sb_adds(out, ", \"native\": true}");
                continue;
            }
            sb_adds(out, ", \"file\": ");
            json_string(out, names_str_get(s->names, fn->file));
            sb_adds(out, ", \"line\": ");
            json_line(out, fr->line);
            extras_json(x, s, sn, sn->ids[t->off + i], pyframes_next(&py), out);
            sb_addc(out, '}');
        }
        sb_adds(out, "]}");
    }
    sb_adds(out, "]}\n");
}
