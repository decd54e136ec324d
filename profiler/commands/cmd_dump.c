/* pystrobe dump: every thread's stack, once. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "output/label.h"
#include "profiler/commands/cli.h"
#include "profiler/commands/dump_greenlets.h"
#include "profiler/target/core.h"
#include "profiler/cpython/greenlet_find.h"
#include "profiler/sampling/greenlet_threads.h"
#include "profiler/sampling/nstack.h"
#include "profiler/target/proc.h"
#include "profiler/cpython/pyval.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "profiler/target/srcfile.h"

/* Long-only options. */
enum { OPT_CORE = 0x100, OPT_EXE, OPT_GREENLETS };

/* Snapshots retried while some stack was caught changing. */
#define DUMP_ATTEMPTS 8

static int dump_usable(const struct snapshot *sn)
{
    for (size_t i = 0; i < sn->nthreads; i++)
        if (sn->st[i].walked && sn->st[i].status < 0)
            return 0;
    return 1;
}

static const char *walk_error(int status)
{
    switch (status) {
    case -EFAULT: return "unreadable memory";
    case -ELOOP: return "a cycle in the frame chain";
    default: return "it changed while being read";
    }
}

/* What --locals and --source add under each frame. */
struct frame_extras {
    struct pyval *pv;       /* --locals, else NULL */
    struct srcfiles *src;   /* --source, else NULL */
    int context;            /* --source=N */
};

/* The frame's locals, or -errno; every value is already rendered.  k: its walk index. */
static int frame_locals(const struct frame_extras *x, const struct snapshot *sn, size_t k,
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

static void text_extras(const struct frame_extras *x, const struct session *s,
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

static void json_extras(const struct frame_extras *x, const struct session *s,
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

/* A native frame (--native) has no file: its label says it all. */
static int frame_is_native(const struct names *n, uint32_t id)
{
    return names_func_get(n, names_frame_get(n, id)->func)->file == NAMES_EMPTY;
}

static void text_frame(const struct names *n, uint32_t id, struct strbuf *out)
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
static int core_signal(struct session *s, pid_t tid)
{
    const struct core_thread *ct;
    size_t n;
    if (tid <= 0 || mem_core_threads(s->mem, &ct, &n) < 0 || n == 0)
        return 0;
    return ct[0].tid == tid ? ct[0].signo : 0;
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
static void text_gil(struct session *s, const struct snapshot *sn, struct strbuf *out)
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

static void print_text(struct session *s, const struct snapshot *sn, const struct frame_extras *x,
                       struct strbuf *out)
{
    struct strbuf cmd = STRBUF_INIT, raw = STRBUF_INIT;
    mem_cmdline(s->mem, &raw);
    sb_add_clean(&cmd, raw.buf ? raw.buf : "", raw.len);
    sb_release(&raw);
    if (mem_is_core(s->mem)) {
        sb_addf(out, "Core %s of process %d: %s\n", core_path(mem_core(s->mem)), (int)s->pid,
                sb_str(&cmd));
    } else {
        sb_addf(out, "Process %d: %s\n", (int)s->pid, sb_str(&cmd));
    }
    sb_addf(out, "Python %s (%s)\n", s->rt.version, path_base(s->rt.binary));
    text_gil(s, sn, out);
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
        int sig = core_signal(s, tr->tid);
        if (sig > 0)
            sb_addf(out, ", signal %d", sig);
        sb_adds(out, ")\n");
        if (t->status < 0) {
            sb_addf(out, "    (stack unreadable: %s)\n", walk_error(t->status));
            continue;
        }
        if (!t->walked || t->depth == 0)
            sb_adds(out, "    (no Python frames)\n");
        struct pyframes py = pyframes_of(t);
        for (size_t i = 0; i < t->depth; i++) {
            uint32_t id = sn->ids[t->off + i];
            text_frame(s->names, id, out);
            if (!frame_is_native(s->names, id))
                text_extras(x, s, sn, id, pyframes_next(&py), out);
        }
        if (t->status == 1)
            sb_addf(out, "    ... stack truncated at %zu frames\n", t->depth);
    }
}

static void print_json(struct session *s, const struct snapshot *sn, const struct frame_extras *x,
                       struct strbuf *out)
{
    struct strbuf cmd = STRBUF_INIT;
    mem_cmdline(s->mem, &cmd);
    sb_addf(out, "{\"pid\": %d, \"command\": ", (int)s->pid);
    json_string(out, sb_str(&cmd));
    if (mem_is_core(s->mem)) {
        sb_adds(out, ", \"core\": ");
        json_string(out, core_path(mem_core(s->mem)));
    }
    sb_adds(out, ",\n \"python\": {\"version\": ");
    json_string(out, s->rt.version);
    sb_adds(out, ", \"binary\": ");
    json_string(out, s->rt.binary);
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
        if (mem_is_core(s->mem))
            sb_addf(out, ", \"signal\": %d", core_signal(s, tr->tid));
        if (t->status < 0) {
            sb_adds(out, ", \"error\": ");
            json_string(out, walk_error(t->status));
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
            json_extras(x, s, sn, sn->ids[t->off + i], pyframes_next(&py), out);
            sb_addc(out, '}');
        }
        sb_adds(out, "]}");
    }
    sb_adds(out, "]}\n");
}

/*
 * --greenlets: every greenlet after the threads (JSON: more keys in the same
 * object).  0, or the exit status of a failure already reported.
 */
static int dump_greenlets(struct session *s, const struct snapshot *sn, int json,
                          struct strbuf *out)
{
    struct greenlet_set gs = {0};
    struct pserr err;
    if (greenlet_collect(&s->rt, sn->interp, &gs, &err) < 0) {
        greenlet_set_release(&gs);
        return cli_error(&err);
    }
    greenlet_join_threads(s, sn, &gs);
    if (json) {
        out->len -= 2; /* the closing "}\n" */
        sb_adds(out, ",\n ");
        dump_greenlets_json(s, &gs, out);
        sb_adds(out, "}\n");
    } else {
        dump_greenlets_text(s, &gs, out);
    }
    greenlet_set_release(&gs);
    return 0;
}

/*
 * Source files as the target sees them, or under --source-root; a core's
 * where they are named.  Read with the target's rights (a core's: its
 * owner's), whatever pystrobe's own: a file the target could not read is
 * not shown.  NULL, with a message, when those rights cannot be told.
 */
static struct srcfiles *source_files(struct session *s, pid_t pid, const char *core,
                                     const char *root)
{
    char r[64], cwd[64];
    struct srcfile_creds c;
    int ret;
    if (core) {
        memset(&c, 0, sizeof(c));
        if ((ret = core_owner(mem_core(s->mem), &c.uid, &c.gid)) < 0) {
            fprintf(stderr, "pystrobe: --source: cannot tell who owns core %s: %s; source lines "
                    "left out\n", core, strerror(-ret));
            return NULL;
        }
    } else if (srcfile_creds_of(pid, &c) < 0) {
        fprintf(stderr, "pystrobe: --source: cannot read the credentials of process %d "
                "(/proc/%d/status); source lines left out\n", (int)pid, (int)pid);
        return NULL;
    }
    struct srcfiles *sf;
    if (root) {
        sf = srcfiles_new(root, root);
    } else if (core) {
        sf = srcfiles_new("", "");
    } else {
        snprintf(r, sizeof(r), "/proc/%d/root", (int)pid);
        snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", (int)pid);
        sf = srcfiles_new(r, cwd);
    }
    srcfiles_set_creds(sf, &c);
    return sf;
}

/* How long the threads were stopped for their native stacks (stderr: the dump stays the dump). */
static void native_note(const struct nstack_stats *n)
{
    if (n->held)
        fprintf(stderr, "pystrobe: native stacks: %" PRIu64 " thread%s stopped one at a time, "
                "%.1f us each on average (longest %.1f us)\n", n->held, n->held == 1 ? "" : "s",
                (double)n->held_ns / 1e3 / (double)n->held, (double)n->held_max_ns / 1e3);
    if (n->hold_failed || n->unwind_failed)
        fprintf(stderr, "pystrobe: native stacks: %" PRIu64 " thread%s shown without native "
                "frames (could not be stopped or unwound)\n", n->hold_failed + n->unwind_failed,
                n->hold_failed + n->unwind_failed == 1 ? "" : "s");
}

int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"locals", no_argument, NULL, 'L'},
        {"source", optional_argument, NULL, 'S'},
        {"source-root", required_argument, NULL, 'R'},
        {"native", no_argument, NULL, 'n'},
        {"core", required_argument, NULL, OPT_CORE},
        {"exe", required_argument, NULL, OPT_EXE},
        {"greenlets", no_argument, NULL, OPT_GREENLETS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    pid_t pid = 0;
    const char *core = NULL, *exe = NULL;
    int json = 0, native = 0, c, ret;
    int locals = 0, source = -1, greenlets = 0;
    const char *source_root = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_parse_pid(optarg, &pid))
                return EXIT_USAGE;
            break;
        case 'j':
            json = 1;
            break;
        case 'L':
            locals = 1;
            break;
        case 'S': {
            long v = 0;
            if (optarg && (parse_long(optarg, &v) < 0 || v < 0 || v > SRCFILE_MAX_CONTEXT))
                return cli_usage("--source=N takes a number of lines from 0 to %d, not '%s'",
                                 SRCFILE_MAX_CONTEXT, optarg);
            source = (int)v;
            break;
        }
        case 'R':
            source_root = optarg;
            break;
        case 'n':
            native = 1;
            break;
        case OPT_CORE:
            core = optarg;
            break;
        case OPT_EXE:
            exe = optarg;
            break;
        case OPT_GREENLETS:
            greenlets = 1;
            break;
        case 'h':
            return cmd_help("dump");
        default:
            return cli_bad_option("dump", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage("unexpected argument '%s' for 'dump'", argv[optind]);
    if (pid && core)
        return cli_usage("dump takes a process (-p PID) or a core (--core CORE), not both");
    if (exe && !core)
        return cli_usage("--exe goes with --core: it names the executable of a core's process");
    if (!pid && !core)
        return cli_usage("dump needs a process: -p PID, or a core file: --core CORE");

    cli_ignore_sigpipe();
    struct session s;
    struct pserr err;
    if ((ret = core ? session_attach_core(&s, core, exe, &err) : session_attach(&s, pid, &err)) < 0)
        return cli_error(&err);
    pid = s.pid;
    struct snapshot sn;
    /* A core does not change: one look, and no waiting for a GIL holder. */
    struct snap_opts o = {.want_state = 1, .want_gil = 1, .want_wait = 1, .gil_patient = !core, .max_depth = WALK_MAX_DEPTH};
    struct nstack *ns = NULL;
    if (native) {
        if (!(ns = nstack_new(&s, NULL, NULL, &err))) {
            session_release(&s);
            return cli_error(&err);
        }
        o.native = nstack_hooks(ns);
    }
    o.want_info = locals;
    snapshot_init(&sn);
    for (int attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
        ret = snapshot_take(&s, &sn, &o);
        if (ret == -ESRCH || (ret == 0 && (core || dump_usable(&sn))))
            break;
    }
    int status = 0;
    if (ret == -ESRCH) {
        status = cli_fail("process %d exited while being read", (int)pid);
    } else if (ret < 0) {
        status = core ? cli_fail("cannot read the threads in core %s: %s", core, strerror(-ret))
                      : cli_fail("cannot read the threads of process %d: %s (try again)", (int)pid,
                                 strerror(-ret));
    } else {
        struct strbuf out = STRBUF_INIT;
        s.name_all = 1;
        session_name_threads(&s, sn.interp, 1);
        struct frame_extras x = {.context = MAX(source, 0)};
        if (locals)
            x.pv = pyval_new(&s.rt);
        if (source >= 0)
            x.src = source_files(&s, pid, core, source_root);
        if (json)
            print_json(&s, &sn, &x, &out);
        else
            print_text(&s, &sn, &x, &out);
        if (greenlets && (status = dump_greenlets(&s, &sn, json, &out)) != 0)
            out.len = 0;
        pyval_free(x.pv);
        srcfiles_free(x.src);
        int e = cli_write_stdout(out.buf, out.len);
        sb_release(&out);
        if (e)
            status = cli_fail("cannot write the dump to stdout: %s", strerror(e));
        if (ns)
            native_note(nstack_stats(ns));
    }
    snapshot_release(&sn);
    nstack_free(ns);
    session_release(&s);
    return status;
}
