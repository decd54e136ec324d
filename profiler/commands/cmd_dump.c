/*
 * pystrobe dump: every thread's stack, once: the options, the snapshot
 * (taken again while a stack was caught changing) and, with --greenlets,
 * the greenlets, with --tasks the asyncio tasks; dump_print.c,
 * dump_greenlets.c and dump_tasks.c print them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/commands/cli.h"
#include "profiler/commands/dump_greenlets.h"
#include "profiler/commands/dump_print.h"
#include "profiler/commands/dump_tasks.h"
#include "profiler/commands/options.h"
#include "profiler/cpython/asyncio.h"
#include "profiler/cpython/greenlet_find.h"
#include "profiler/cpython/pyval.h"
#include "profiler/sampling/greenlet_threads.h"
#include "profiler/sampling/nstack.h"
#include "profiler/sampling/session.h"
#include "profiler/sampling/snapshot.h"
#include "profiler/target/core.h"
#include "profiler/target/srcfile.h"

/* Long-only options (after the shared ones: --native). */
enum { OPT_CORE = OPT_SAMPLING_END, OPT_EXE, OPT_ROOT, OPT_GREENLETS, OPT_TASKS };

/* Snapshots retried while some stack was caught changing. */
#define DUMP_ATTEMPTS 8

static int stacks_usable(const struct snapshot *sn)
{
    for (size_t i = 0; i < sn->nthreads; i++)
        if (sn->st[i].walked && sn->st[i].status < 0)
            return 0;
    return 1;
}

/*
 * --greenlets: every greenlet after the threads (JSON: more keys in the same
 * object).  0, or the exit status of a failure already reported.
 */
static int add_greenlets(struct session *s, const struct snapshot *sn, int json,
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
 * --tasks: every asyncio task after the threads (JSON: more keys in the
 * same object).  0, or the exit status of a failure already reported.
 */
static int add_tasks(struct session *s, const struct snapshot *sn, int json, struct strbuf *out)
{
    struct task_set ts = {0};
    struct pserr err;
    if (asyncio_collect(&s->rt, sn->interp, &ts, &err) < 0) {
        task_set_release(&ts);
        return cli_error(&err);
    }
    if (json) {
        out->len -= 2; /* the closing "}\n" */
        sb_adds(out, ",\n ");
        dump_tasks_json(s, sn, &ts, out);
        sb_adds(out, "}\n");
    } else {
        dump_tasks_text(s, sn, &ts, out);
    }
    task_set_release(&ts);
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
        /* --root: absolute paths as the process saw them. */
        const char *croot = core_root(mem_core(s->mem));
        sf = srcfiles_new(croot ? croot : "", "");
        if (croot)
            srcfiles_set_fallback(sf, "");
    } else {
        snprintf(r, sizeof(r), "/proc/%d/root", (int)pid);
        snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", (int)pid);
        sf = srcfiles_new(r, cwd);
    }
    srcfiles_set_creds(sf, &c);
    return sf;
}

/* How long the threads were stopped for their native stacks (stderr: the dump stays the dump). */
static void note_native_stacks(const struct nstack_stats *n)
{
    if (n->held)
        fprintf(stderr, "pystrobe: native stacks: %" PRIu64 " thread%s stopped one at a time, "
                "%.1f us each on average (longest %.1f us)\n", n->held, n->held == 1 ? "" : "s",
                (double)n->held_ns / 1e3 / (double)n->held, (double)n->held_max_ns / 1e3);
    if (n->hold_failed)
        fprintf(stderr, "pystrobe: native stacks: %" PRIu64 " thread%s shown without native "
                "frames: not stopped (within 100 ms, or traced by a debugger)\n", n->hold_failed,
                n->hold_failed == 1 ? "" : "s");
    if (n->unwind_failed)
        fprintf(stderr, "pystrobe: native stacks: %" PRIu64 " thread%s shown without native "
                "frames: not unwound\n", n->unwind_failed, n->unwind_failed == 1 ? "" : "s");
}

/* What the command line asks for. */
struct dump_opts {
    pid_t pid;
    const char *core, *exe, *root;
    int json, native, locals, greenlets, tasks;
    int source;                 /* --source=N, -1 without --source */
    const char *source_root;
};

/* 0, or -1 when --help was printed, or the exit status of a usage error already reported. */
static int read_options(int argc, char **argv, struct dump_opts *o)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"locals", no_argument, NULL, 'L'},
        {"source", optional_argument, NULL, 'S'},
        {"source-root", required_argument, NULL, 'R'},
        OPTIONS_NATIVE,
        {"core", required_argument, NULL, OPT_CORE},
        {"exe", required_argument, NULL, OPT_EXE},
        {"root", required_argument, NULL, OPT_ROOT},
        {"greenlets", no_argument, NULL, OPT_GREENLETS},
        {"tasks", no_argument, NULL, OPT_TASKS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *o = (struct dump_opts){.source = -1};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:h", longopts, NULL)) != -1) {
        if (options_native(c, &o->native))
            continue;
        switch (c) {
        case 'p':
            if (cli_parse_pid(optarg, &o->pid))
                return EXIT_USAGE;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'L':
            o->locals = 1;
            break;
        case 'S': {
            long v = 0;
            if (optarg && (parse_long(optarg, &v) < 0 || v < 0 || v > SRCFILE_MAX_CONTEXT))
                return cli_usage("--source=N takes a number of lines from 0 to %d, not '%s'",
                                 SRCFILE_MAX_CONTEXT, optarg);
            o->source = (int)v;
            break;
        }
        case 'R':
            o->source_root = optarg;
            break;
        case OPT_CORE:
            o->core = optarg;
            break;
        case OPT_EXE:
            o->exe = optarg;
            break;
        case OPT_ROOT:
            o->root = optarg;
            break;
        case OPT_GREENLETS:
            o->greenlets = 1;
            break;
        case OPT_TASKS:
            o->tasks = 1;
            break;
        case 'h':
            cmd_help("dump");
            return -1;
        default:
            return cli_bad_option("dump", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage("unexpected argument '%s' for 'dump'", argv[optind]);
    if (o->pid && o->core)
        return cli_usage("dump takes a process (-p PID) or a core (--core CORE), not both");
    if (o->exe && !o->core)
        return cli_usage("--exe goes with --core: it names the executable of a core's process");
    if (o->root && !o->core)
        return cli_usage("--root goes with --core: it names the file system a core's process "
                         "saw (a live process's is read through /proc/PID/root)");
    if (!o->pid && !o->core)
        return cli_usage("dump needs a process: -p PID, or a core file: --core CORE");
    return 0;
}

/*
 * The dump of snapshot sn, printed and written to stdout: 0, or the exit
 * status of a failure already reported.
 */
static int write_dump(struct session *s, const struct snapshot *sn, const struct dump_opts *o)
{
    struct strbuf out = STRBUF_INIT;
    int status = 0;
    s->name_all = 1;
    session_name_threads(s, sn->interp, 1);
    struct dump_extras x = {.context = MAX(o->source, 0)};
    if (o->locals)
        x.pv = pyval_new(&s->rt);
    if (o->source >= 0)
        x.src = source_files(s, s->pid, o->core, o->source_root);
    if (o->json)
        dump_print_json(s, sn, &x, &out);
    else
        dump_print_text(s, sn, &x, &out);
    if (o->greenlets && (status = add_greenlets(s, sn, o->json, &out)) != 0)
        out.len = 0;
    if (!status && o->tasks && (status = add_tasks(s, sn, o->json, &out)) != 0)
        out.len = 0;
    pyval_free(x.pv);
    srcfiles_free(x.src);
    int e = cli_write_stdout(out.buf, out.len);
    sb_release(&out);
    if (e)
        status = cli_fail("cannot write the dump to stdout: %s", strerror(e));
    return status;
}

int cmd_dump(int argc, char **argv)
{
    struct dump_opts d;
    int ret = read_options(argc, argv, &d);
    if (ret)
        return ret < 0 ? 0 : ret;

    cli_ignore_sigpipe();
    struct session s;
    struct pserr err;
    if ((ret = d.core ? session_attach_core(&s, d.core, d.exe, d.root, &err)
                      : session_attach(&s, d.pid, &err)) < 0)
        return cli_error(&err);
    struct snapshot sn;
    /* A core does not change: one look, and no waiting for a GIL holder. */
    struct snap_opts o = {.want_state = 1, .want_gil = 1, .want_wait = 1, .gil_patient = !d.core,
                          .max_depth = WALK_MAX_DEPTH, .want_info = d.locals || d.tasks};
    struct nstack *ns = NULL;
    if (d.native) {
        if (!(ns = nstack_new(&s, &err))) {
            session_release(&s);
            return cli_error(&err);
        }
        o.native = nstack_hooks(ns);
    }
    snapshot_init(&sn);
    for (int attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
        ret = snapshot_take(&s, &sn, &o);
        if (ret == -ESRCH || (ret == 0 && (d.core || stacks_usable(&sn))))
            break;
    }
    int status = 0;
    if (ret == -ESRCH) {
        status = cli_fail("process %d exited while being read", (int)s.pid);
    } else if (ret < 0) {
        status = d.core ? cli_fail("cannot read the threads in core %s: %s", d.core,
                                   strerror(-ret))
                        : cli_fail("cannot read the threads of process %d: %s (try again)",
                                   (int)s.pid, strerror(-ret));
    } else {
        status = write_dump(&s, &sn, &d);
        if (ns)
            note_native_stacks(nstack_stats(ns));
    }
    snapshot_release(&sn);
    nstack_free(ns);
    session_release(&s);
    return status;
}
