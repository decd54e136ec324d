/*
 * pystrobe top: a live view of where a process spends its samples.  On a
 * terminal it redraws a full screen each second with plain ANSI sequences
 * (no curses); otherwise it prints a plain report each second.  This file
 * is the command: options, keys, the terminal's modes and the sampling run;
 * top_model.c counts, top_screen.c draws.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "profiler/commands/cli.h"
#include "profiler/commands/options.h"
#include "profiler/commands/top.h"
#include "profiler/target/launch.h"
#include "profiler/target/proc.h"

/* How long a launched command gets to exit by itself once top ends (as record). */
#define LAUNCH_GRACE_MS 2000
/* The window: counts are shown, and start again, this often. */
#define REFRESH_NS 1000000000u
/* The keyboard is looked at no more often than this. */
#define KEY_POLL_NS 50000000u

static volatile sig_atomic_t stop_requested, resized;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

/* ---- keys --------------------------------------------------------------- */

static void on_key(struct top *t, int c, const struct sampler_result *r, uint64_t now)
{
    switch (c) {
    case 'q': case 'Q': case 3: /* Ctrl-C when the terminal does not signal it */
        t->quit = 1;
        return;
    case 'o': case 'O': t->sort = SORT_OWN; break;
    case 't': case 'T': t->sort = SORT_TOTAL; break;
    case 'n': case 'N': t->sort = SORT_NAME; break;
    case 'l': case 'L': t->by_function = !t->by_function; break;
    case 'p': case 'P': case ' ': t->paused = !t->paused; break;
    case 'r': case 'R': top_reset_counts(t, r, now); break;
    default: return;
    }
    t->dirty = 1;
}

/* Reads the keys pressed, skipping the escape sequences of other keys (arrows...). */
static void read_keys(struct top *t, const struct sampler_result *r, uint64_t now)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    unsigned char buf[64];
    for (int rounds = 0; rounds < 4 && poll(&p, 1, 0) > 0; rounds++) {
        if (!(p.revents & POLLIN)) {
            t->keys = 0; /* the terminal is gone */
            return;
        }
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n <= 0) {
            if (n == 0 || (errno != EINTR && errno != EAGAIN))
                t->keys = 0;
            return;
        }
        t->esc = 0;
        for (ssize_t i = 0; i < n && !t->quit; i++) {
            unsigned char c = buf[i];
            if (t->esc == 1) {
                t->esc = (c == '[' || c == 'O') ? 2 : 0;
                continue;
            }
            if (t->esc == 2) {
                if (c >= 0x40 && c <= 0x7e)
                    t->esc = 0;
                continue;
            }
            if (c == 0x1b)
                t->esc = 1;
            else
                on_key(t, c, r, now);
        }
    }
}

static int top_on_tick(void *ctx, const struct sampler_result *r, uint64_t now)
{
    struct top *t = ctx;
    if (t->keys && now - t->last_poll >= KEY_POLL_NS) {
        t->last_poll = now;
        read_keys(t, r, now);
    }
    if (resized) {
        resized = 0;
        t->dirty = 1;
    }
    if (now - t->win_start >= REFRESH_NS) {
        top_roll_window(t, r, now);
        if (!t->paused) {
            t->dirty = 1;
            if (!t->tty_out)
                top_print_report(t);
        }
    }
    if (t->tty_out && (t->dirty || !t->drawn) && !t->quit)
        top_draw_screen(t);
    t->dirty = 0;
    return t->quit || t->write_error;
}

/* ---- the terminal --------------------------------------------------------- */

static const char enter_seq[] = "\033[?1049h\033[?25l\033[?7l\033[H\033[2J";
static const char leave_seq[] = "\033[?7h\033[?25h\033[?1049l";

/* Keys one at a time, unechoed; the alternate screen without a cursor. */
static void term_enter(struct top *t)
{
    if (t->keys && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
        struct termios raw = t->saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        /* Suspended, top would leave the terminal in this state. */
        raw.c_cc[VSUSP] = _POSIX_VDISABLE;
        t->term_set = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    if (t->tty_out)
        top_write_all(t, enter_seq, sizeof(enter_seq) - 1, 1);
}

static void term_leave(struct top *t)
{
    if (t->tty_out)
        top_write_all(t, leave_seq, sizeof(leave_seq) - 1, 1);
    if (t->term_set)
        tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
    t->term_set = 0;
}

/* ---- the command ---------------------------------------------------------- */

static int top_read_options(int argc, char **argv, struct sampling_opts *o)
{
    static const struct option longopts[] = {
        SAMPLING_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, ret;
    sampling_init(o);
    opterr = 0;
    /* '+': stop at the first non-option, so the command's own options stay its own. */
    while ((c = getopt_long(argc, argv, "+:" SAMPLING_SHORTOPTS "h", longopts, NULL)) != -1) {
        if ((ret = options_sampling(o, c, optarg)) != 0) {
            if (ret != 1)
                return ret;
            continue;
        }
        if (c == 'h') {
            cmd_help("top");
            return -1;
        }
        return cli_bad_option("top", c, argv);
    }
    return options_operands(o, "top", argc, argv);
}

static void catch_signals(void)
{
    struct sigaction sa;
    /* A reader of stdout that goes away ends top through write's EPIPE. */
    sampling_catch_stop(on_stop_signal);
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
}

/* What became of a launched command, on stderr (as record says it). */
static void finish_child(pid_t child, const struct sampler_result *r)
{
    int terminated = 0, st = r->child_status;
    struct strbuf d = STRBUF_INIT;
    if (!r->child_reaped)
        st = launch_finish(child, LAUNCH_GRACE_MS, &terminated);
    launch_describe(st, &d);
    if (terminated)
        fprintf(stderr, "pystrobe: the command was still running: stopped it (%s)\n", d.buf);
    else
        fprintf(stderr, "pystrobe: the command ended with %s\n", d.buf);
    sb_release(&d);
}

/* Samples until a quit, the duration's end or the target's exit; the view meanwhile. */
static void run_top(struct top *t, struct session *s, pid_t child, struct sampler_result *r)
{
    struct sampler_hook hook = {top_on_sample, top_on_tick, t};
    struct sampler_opts so = {
        .rate = t->so->rate,
        .duration = t->so->duration,
        .stop = &stop_requested,
        .child = child,
        .subprocesses = t->so->subprocesses,
        .native = t->so->native,
        .hook = &hook,
    };
    sampling_snap_opts(t->so, &so.snap);
    /* Every selected thread's state and GIL for the threads table; which
     * ones are walked is still the mode's choice.  CPU time comes from
     * schedstat, which lets threads that have not run skip their stat
     * read; want_cpu only where the kernel has no schedstat (see
     * top_on_sample).  Lines are always kept, so that the view can switch
     * between lines and functions. */
    so.snap.want_state = so.snap.want_gil = so.snap.want_wait = 1;
    so.snap.by_function = 0;
    t->snap = &so.snap;
    term_enter(t);
    t->base_ns = t->win_start = now_ns();
    t->win_ticks = 1; /* the tick at the start opens the first window */
    sampler_run(s, &so, NULL, r);
    /* The last part of a window still makes a report where no screen shows it. */
    if (!t->tty_out && !t->paused && !t->write_error && t->win_samples) {
        top_roll_window(t, r, now_ns());
        top_print_report(t);
    }
    term_leave(t);
}

int cmd_top(int argc, char **argv)
{
    struct sampling_opts o;
    struct session s;
    struct pserr err;
    struct sampler_result r;
    struct top t;
    pid_t child = 0;
    int ret, status = 0;

    if ((ret = top_read_options(argc, argv, &o)) != 0) {
        sampling_release(&o);
        return ret < 0 ? 0 : ret;
    }
    catch_signals();
    if (sampling_start(&o, &s, &child, &stop_requested, &err) < 0) {
        status = cli_error(&err);
        if (child) {
            int terminated;
            launch_finish(child, 0, &terminated);
        }
        sampling_release(&o);
        return status;
    }

    struct strbuf title = STRBUF_INIT;
    proc_cmdline(o.pid, &title);
    for (char **c = o.command; !title.len && c && *c; c++)
        sb_addf(&title, "%s%s", c == o.command ? "" : " ", *c);
    memset(&t, 0, sizeof(t));
    t.so = &o;
    t.names = s.names;
    t.pid = o.pid;
    t.title = sb_str(&title);
    /* A newer version than pystrobe knows says so wherever it is named. */
    char version[sizeof(s.rt.version) + 40];
    snprintf(version, sizeof(version), "%s%s", s.rt.version, pyrt_tested_note(&s.rt));
    t.version = version;
    t.tty_out = isatty(STDOUT_FILENO);
    t.keys = isatty(STDIN_FILENO);
    t.by_function = o.function;
    t.hz = sysconf(_SC_CLK_TCK);
    t.stop = &stop_requested;
    run_top(&t, &s, child, &r);

    if (t.write_error && t.write_error != EPIPE)
        status = cli_fail("cannot write to stdout: %s", strerror(t.write_error));
    if (child)
        finish_child(child, &r);
    else if (r.target_exited)
        fprintf(stderr, "pystrobe: process %d exited\n", (int)o.pid);
    top_release(&t);
    sb_release(&title);
    session_release(&s);
    sampling_release(&o);
    return status;
}
