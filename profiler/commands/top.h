/*
 * pystrobe top, inside: the view's model (top_model.c: counts per line and
 * function, the threads, windows), its rendering (top_screen.c: a full
 * terminal screen or a plain report), and the command (cmd_top.c: options,
 * keys, the terminal's modes, the sampling run).
 */
#ifndef PYSTROBE_TOP_H
#define PYSTROBE_TOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "common/htab.h"
#include "profiler/sampling/sampler.h"
#include "profiler/sampling/sampling.h"
#include "profiler/sampling/session.h"
#include "symbolizer/names.h"

enum top_sort { SORT_OWN, SORT_TOTAL, SORT_NAME };

/* The samples of one line (keyed by frame id) or one function (by function id). */
struct count {
    uint32_t key;
    uint64_t stamp;                /* the last stack that counted it in total */
    uint64_t own, total;           /* in the current window */
    uint64_t cum_own, cum_total;   /* since the start or the last reset */
    uint64_t shown_own, shown_total, shown_cum_own, shown_cum_total;
};

struct counts {
    struct count *v;
    size_t n, cap;
    struct htab index;
};

/* A thread of the target (or of a descendant), as last seen. */
struct trow {
    pid_t pid, tid;
    uint64_t ident;
    char *name;               /* owned; NULL when unknown */
    enum thread_state ts;
    int gil;
    uint64_t cpu, cpu_mark;   /* CPU time (ns) now, and at the window's start */
    uint64_t samples;         /* in the current window */
    uint64_t seen;            /* the last window that saw it */
    int shown;                /* seen in the window shown */
    enum thread_state shown_ts;
    int shown_gil;
    double shown_cpu;         /* percent of one CPU */
    uint64_t shown_samples;
};

struct trow_key {
    pid_t pid, tid;
    uint64_t ident;
};

/* The header's numbers, as shown. */
struct top_head {
    double elapsed, rate;     /* seconds since the start or reset; Hz in the window */
    uint64_t samples, errors; /* since the start or reset */
    uint64_t window;          /* samples in the window shown */
    uint32_t processes;
};

struct top {
    const struct sampling_opts *so;
    const struct names *names;
    pid_t pid;
    const char *title;        /* the target's command line */
    const char *version;      /* its Python's */
    int tty_out, keys;        /* stdout is a terminal; keys are read from stdin */
    int term_set;
    struct termios saved;
    enum top_sort sort;
    int by_function, paused, quit, dirty, drawn;
    int write_error;          /* errno of a failed write to stdout */
    struct counts lines, funcs;
    struct trow *threads;
    size_t nthreads, threadcap;
    struct htab thread_index;
    uint64_t serial;          /* stacks counted so far */
    uint64_t window;          /* windows completed */
    uint64_t win_samples, cum_samples;
    uint64_t win_start, win_ticks, base_ns, base_errors, last_poll;
    struct top_head head;
    long hz;
    struct snap_opts *snap;   /* the sampler's, read by it each tick */
    int esc;                  /* inside an escape sequence from the keyboard */
    volatile sig_atomic_t *stop; /* set by a signal to stop */
};

/* The sampler's per-sample hook: counts each thread's stack and state. */
void top_on_sample(void *ctx, struct session *s, const struct snapshot *sn);
/* Closes the window: its counts become the ones shown (unless paused). */
void top_roll_window(struct top *t, const struct sampler_result *r, uint64_t now);
/* Forgets every count: the view starts again from now. */
void top_reset_counts(struct top *t, const struct sampler_result *r, uint64_t now);
void top_release(struct top *t);

/* Writes it all to stdout; gives up on a signal to stop unless told to insist. */
int top_write_all(const struct top *t, const char *buf, size_t n, int insist);
/* Redraws the whole terminal screen. */
void top_draw_screen(struct top *t);
/* Prints a plain report: one header line and the top functions. */
void top_print_report(struct top *t);

#endif
