/*
 * pystrobe top: a live view of where a process spends its samples.  On a
 * terminal it redraws a full screen each second with plain ANSI sequences
 * (no curses); otherwise it prints a plain report each second.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/htab.h"
#include "output/label.h"
#include "profiler/commands/cli.h"
#include "profiler/target/launch.h"
#include "profiler/target/proc.h"
#include "profiler/sampling/sampler.h"
#include "profiler/sampling/sampling.h"
#include "profiler/sampling/session.h"
#include "symbolizer/names.h"

/* How long a launched command gets to exit by itself once top ends (as record). */
#define LAUNCH_GRACE_MS 2000
/* The window: counts are shown, and start again, this often. */
#define REFRESH_NS 1000000000u
/* The keyboard is looked at no more often than this. */
#define KEY_POLL_NS 50000000u
/* Functions in each plain report. */
#define PLAIN_ROWS 10
/* Below these widths, columns are dropped. */
#define WIDE_COLS 60
#define MID_COLS 36
/* When the terminal does not say its size. */
#define DEFAULT_COLS 80
#define DEFAULT_ROWS 24
/* Below this height, the threads are left out. */
#define THREADS_MIN_ROWS 10

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

enum top_sort { SORT_OWN, SORT_TOTAL, SORT_NAME };

static const char *const sort_names[] = {"own", "total", "name"};

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
};

/* ---- counts --------------------------------------------------------------- */

static int count_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct counts *c = ctx;
    return c->v[idx].key == *(const uint32_t *)key;
}

static struct count *counts_get(struct counts *c, uint32_t key)
{
    uint64_t h = hash_u64(key);
    uint32_t i = htab_find(&c->index, h, count_eq, c, &key);
    if (i == HTAB_NONE) {
        GROW(c->v, c->cap, c->n + 1);
        i = (uint32_t)c->n++;
        memset(&c->v[i], 0, sizeof(c->v[i]));
        c->v[i].key = key;
        htab_insert(&c->index, h, i);
    }
    return &c->v[i];
}

/* Ends a window: what it counted is shown (unless paused), and it starts again. */
static void counts_roll(struct counts *c, int show)
{
    for (size_t i = 0; i < c->n; i++) {
        struct count *e = &c->v[i];
        if (show) {
            e->shown_own = e->own;
            e->shown_total = e->total;
            e->shown_cum_own = e->cum_own;
            e->shown_cum_total = e->cum_total;
        }
        e->own = e->total = 0;
    }
}

static void counts_clear(struct counts *c)
{
    c->n = 0;
    htab_clear(&c->index);
}

static void counts_release(struct counts *c)
{
    free(c->v);
    htab_release(&c->index);
    memset(c, 0, sizeof(*c));
}

/* The leaf gets one own sample; every line or function on the stack one
 * total sample, once however often it recurses. */
static void tally(struct count *c, uint64_t serial, int leaf)
{
    if (leaf) {
        c->own++;
        c->cum_own++;
    }
    if (c->stamp != serial) {
        c->stamp = serial;
        c->total++;
        c->cum_total++;
    }
}

static void count_stack(struct top *t, const struct names *n, const uint32_t *ids, size_t depth)
{
    uint64_t serial = ++t->serial;
    t->win_samples++;
    t->cum_samples++;
    for (size_t i = 0; i < depth; i++) {
        uint32_t frame = ids[i];
        tally(counts_get(&t->lines, frame), serial, i == 0);
        tally(counts_get(&t->funcs, names_frame_get(n, frame)->func), serial, i == 0);
    }
}

/* ---- threads -------------------------------------------------------------- */

static int trow_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct top *t = ctx;
    const struct trow_key *k = key;
    const struct trow *r = &t->threads[idx];
    return r->pid == k->pid && r->tid == k->tid && r->ident == k->ident;
}

static uint64_t trow_hash(pid_t pid, pid_t tid, uint64_t ident)
{
    return hash_u64(ident ^ hash_u64(((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid));
}

/* A thread's CPU time in ns: schedstat's, else stat's clock ticks. */
static uint64_t cpu_time(const struct top *t, const struct snap_thread *st)
{
    if (st->cpu_ns || t->hz <= 0)
        return st->cpu_ns;
    return st->cpu_ticks * (1000000000u / (uint64_t)t->hz);
}

static struct trow *thread_get(struct top *t, pid_t pid, const struct tracked *tr,
                               const struct snap_thread *st)
{
    struct trow_key k = {pid, tr->tid, tr->thread_id};
    uint64_t h = trow_hash(pid, tr->tid, tr->thread_id);
    uint32_t i = htab_find(&t->thread_index, h, trow_eq, t, &k);
    if (i == HTAB_NONE) {
        GROW(t->threads, t->threadcap, t->nthreads + 1);
        i = (uint32_t)t->nthreads++;
        struct trow *r = &t->threads[i];
        memset(r, 0, sizeof(*r));
        r->pid = pid;
        r->tid = tr->tid;
        r->ident = tr->thread_id;
        r->cpu_mark = cpu_time(t, st);
        htab_insert(&t->thread_index, h, i);
    }
    return &t->threads[i];
}

static void thread_update(const struct top *t, struct trow *r, const struct tracked *tr,
                          const struct snap_thread *st)
{
    if (tr->name && (!r->name || strcmp(r->name, tr->name) != 0)) {
        free(r->name);
        r->name = xstrdup(tr->name);
    }
    r->ts = st->ts;
    r->gil = st->gil;
    r->cpu = cpu_time(t, st);
    r->seen = t->window;
}

/* Ends a window for the threads: those it did not see are gone. */
static void threads_roll(struct top *t, int show, double secs)
{
    size_t k = 0;
    for (size_t i = 0; i < t->nthreads; i++) {
        struct trow *r = &t->threads[i];
        int seen = r->seen == t->window;
        if (show && !seen) {
            free(r->name);
            continue;
        }
        if (show) {
            /* No mark: its CPU time was not known at the window's start. */
            uint64_t used = r->cpu_mark && r->cpu > r->cpu_mark ? r->cpu - r->cpu_mark : 0;
            r->shown = 1;
            r->shown_ts = r->ts;
            r->shown_gil = r->gil;
            r->shown_samples = r->samples;
            r->shown_cpu = secs > 0 ? (double)used / 1e9 / secs * 100 : 0;
        }
        r->cpu_mark = r->cpu;
        r->samples = 0;
        t->threads[k++] = *r;
    }
    if (k == t->nthreads)
        return;
    t->nthreads = k;
    htab_clear(&t->thread_index);
    for (size_t i = 0; i < k; i++) {
        const struct trow *r = &t->threads[i];
        htab_insert(&t->thread_index, trow_hash(r->pid, r->tid, r->ident), (uint32_t)i);
    }
}

/* ---- the sampler's hook --------------------------------------------------- */

static void top_on_sample(void *ctx, struct session *s, const struct snapshot *sn)
{
    struct top *t = ctx;
    for (size_t k = 0; k < sn->nthreads; k++) {
        const struct snap_thread *st = &sn->st[k];
        if (st->excluded)
            continue;
        struct tracked *tr = &s->threads[st->tracked];
        /* Every thread shown is named, not only those sampled. */
        tr->want_name = 1;
        /* A kernel without scheduler statistics: CPU time from stat, read
         * for every thread from the next tick on. */
        if (!st->cpu_ns && st->state && !t->snap->want_cpu)
            t->snap->want_cpu = 1;
        struct trow *r = thread_get(t, s->pid, tr, st);
        thread_update(t, r, tr, st);
        /* Sampled by the mode's rules (on CPU, --idle, --gil), read whole,
         * and in Python. */
        if (!st->walked || st->status < 0 || st->depth == 0)
            continue;
        r->samples++;
        count_stack(t, s->names, sn->ids + st->off, st->depth);
    }
}

static uint64_t errors_of(const struct sampler_result *r)
{
    uint64_t n = 0;
    for (int d = 0; d < DROP_COUNT; d++)
        n += r->dropped[d];
    return n;
}

/* Closes the window: its counts become the ones shown (unless paused). */
static void roll_window(struct top *t, const struct sampler_result *r, uint64_t now)
{
    int show = !t->paused;
    double secs = (double)(now - t->win_start) / 1e9;
    if (show) {
        t->head.elapsed = (double)(now - t->base_ns) / 1e9;
        uint64_t ticks = r->ticks > t->win_ticks ? r->ticks - t->win_ticks : 0;
        t->head.rate = secs > 0 ? (double)ticks / secs : 0;
        t->head.samples = t->cum_samples;
        t->head.errors = errors_of(r) - t->base_errors;
        t->head.window = t->win_samples;
        t->head.processes = r->processes_now;
    }
    counts_roll(&t->lines, show);
    counts_roll(&t->funcs, show);
    threads_roll(t, show, secs);
    t->win_samples = 0;
    t->win_ticks = r->ticks;
    t->win_start = now;
    t->window++;
}

/* Forgets every count: the view starts again from now. */
static void reset_counts(struct top *t, const struct sampler_result *r, uint64_t now)
{
    counts_clear(&t->lines);
    counts_clear(&t->funcs);
    for (size_t i = 0; i < t->nthreads; i++) {
        t->threads[i].samples = t->threads[i].shown_samples = 0;
        t->threads[i].cpu_mark = t->threads[i].cpu;
    }
    t->win_samples = t->cum_samples = 0;
    t->win_ticks = r->ticks;
    t->win_start = t->base_ns = now;
    t->base_errors = errors_of(r);
    memset(&t->head, 0, sizeof(t->head));
    t->head.processes = r->processes_now;
}

/* ---- text that fits --------------------------------------------------------- */

/* Columns a character takes: 2 for East Asian wide ones, else 1. */
static size_t char_cols(uint32_t c)
{
    if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
        (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd))
        return 2;
    return 1;
}

static size_t display_cols(const char *s, size_t n)
{
    size_t cols = 0, len;
    uint32_t c;
    for (size_t i = 0; i < n; i += len) {
        len = text_char(s + i, n - i, &c);
        cols += char_cols(c);
    }
    return cols;
}

/* Appends s[0..n) cleaned (see text_char) and cut to at most cols columns,
 * never inside a character; returns the columns used. */
static size_t put_fit(struct strbuf *out, const char *s, size_t n, size_t cols)
{
    size_t used = 0, len;
    uint32_t c;
    for (size_t i = 0; i < n; i += len) {
        len = text_char(s + i, n - i, &c);
        size_t w = char_cols(c);
        if (used + w > cols)
            break;
        if (c == '?' || c == 0xFFFD)
            utf8_put(out, c);
        else
            sb_add(out, s + i, len);
        used += w;
    }
    return used;
}

/* ---- screens ---------------------------------------------------------------- */

/* A screen (or a plain report) being built, line by line. */
struct screen {
    struct strbuf out;
    struct strbuf line;     /* the line being built */
    size_t cols, rows, n;   /* size; lines emitted */
    int tty;
};

static void screen_emit(struct screen *sc)
{
    if (sc->n < sc->rows) {
        if (sc->tty && sc->n > 0)
            sb_adds(&sc->out, "\r\n");
        size_t used = put_fit(&sc->out, sb_str(&sc->line), sc->line.len, sc->cols);
        /* A full line is left alone: erasing there would take its last column. */
        if (sc->tty && used < sc->cols)
            sb_adds(&sc->out, "\033[K");
        if (!sc->tty)
            sb_addc(&sc->out, '\n');
        sc->n++;
    }
    sb_reset(&sc->line);
}

static void screen_linef(struct screen *sc, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void screen_linef(struct screen *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vaddf(&sc->line, fmt, ap);
    va_end(ap);
    screen_emit(sc);
}

static size_t screen_left(const struct screen *sc)
{
    return sc->rows > sc->n ? sc->rows - sc->n : 0;
}

/* "NAME (FILE:LINE)", with the file's last component alone when asked. */
static void row_label(const struct names *n, uint32_t key, int by_function, int base_only,
                      struct strbuf *out)
{
    uint32_t func = key;
    int line;
    if (by_function) {
        line = names_func_get(n, key)->firstlineno;
    } else {
        const struct names_frame *fr = names_frame_get(n, key);
        func = fr->func;
        line = fr->line;
    }
    const struct names_func *fn = names_func_get(n, func);
    sb_adds(out, names_str_get(n, fn->name));
    if (fn->file == NAMES_EMPTY && line == 0)
        return;
    const char *file = names_str_get(n, fn->file);
    sb_addf(out, " (%s", base_only ? path_base(file) : file);
    label_line(line, out);
    sb_addc(out, ')');
}

struct row {
    uint32_t idx;
    uint64_t k[4];
    size_t label_off;   /* with SORT_NAME: the label's place in the labels */
    const char *label;
};

static int row_cmp_counts(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    for (int i = 0; i < 4; i++)
        if (x->k[i] != y->k[i])
            return x->k[i] > y->k[i] ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int row_cmp_name(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcasecmp(x->label, y->label);
    if (!c)
        c = strcmp(x->label, y->label);
    return c ? c : row_cmp_counts(a, b);
}

/* The rows shown, in the order asked for; *n of them. */
static struct row *sorted_rows(const struct top *t, const struct counts *c, size_t *n,
                               struct strbuf *labels)
{
    struct row *rows = xmalloc((c->n + 1) * sizeof(*rows));
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct count *e = &c->v[i];
        if (!e->shown_cum_total)
            continue;
        struct row *r = &rows[k++];
        r->idx = (uint32_t)i;
        int total = t->sort == SORT_TOTAL;
        r->k[0] = total ? e->shown_total : e->shown_own;
        r->k[1] = total ? e->shown_own : e->shown_total;
        r->k[2] = total ? e->shown_cum_total : e->shown_cum_own;
        r->k[3] = total ? e->shown_cum_own : e->shown_cum_total;
        r->label_off = labels->len;
        r->label = NULL;
        if (t->sort == SORT_NAME) {
            row_label(t->names, e->key, t->by_function, 0, labels);
            sb_addc(labels, '\0');
        }
    }
    if (t->sort == SORT_NAME) {
        for (size_t i = 0; i < k; i++)
            rows[i].label = labels->buf + rows[i].label_off;
        qsort(rows, k, sizeof(*rows), row_cmp_name);
    } else {
        qsort(rows, k, sizeof(*rows), row_cmp_counts);
    }
    *n = k;
    return rows;
}

static double share(uint64_t part, uint64_t whole)
{
    return whole ? (double)part * 100.0 / (double)whole : 0.0;
}

/* The functions (or lines) table: its heading and up to max rows. */
static void put_functions(const struct top *t, struct screen *sc, size_t max)
{
    const struct counts *c = t->by_function ? &t->funcs : &t->lines;
    const char *what = t->by_function ? "FUNCTION" : "LINE";
    struct strbuf labels = STRBUF_INIT, label = STRBUF_INIT;
    size_t n, prefix;
    struct row *rows = sorted_rows(t, c, &n, &labels);
    if (sc->cols >= WIDE_COLS) {
        screen_linef(sc, "  OWN%%  TOTAL%%    OWN(s)  TOTAL(s)  %s", what);
        prefix = 36;
    } else if (sc->cols >= MID_COLS) {
        screen_linef(sc, "  OWN%%  TOTAL%%  %s", what);
        prefix = 16;
    } else {
        screen_linef(sc, "  OWN%%  %s", what);
        prefix = 8;
    }
    if (n == 0 && max > 0)
        screen_linef(sc, "  no samples yet%s", t->so->idle || t->so->gil ? "" :
                     " (only threads on a CPU are sampled; --idle samples all)");
    double rate = t->so->rate;
    for (size_t i = 0; i < n && i < max; i++) {
        const struct count *e = &c->v[rows[i].idx];
        double own = share(e->shown_own, t->head.window);
        double total = share(e->shown_total, t->head.window);
        if (sc->cols >= WIDE_COLS)
            sb_addf(&sc->line, "%6.1f  %6.1f  %8.2f  %8.2f  ", own, total,
                    (double)e->shown_cum_own / rate, (double)e->shown_cum_total / rate);
        else if (sc->cols >= MID_COLS)
            sb_addf(&sc->line, "%6.1f  %6.1f  ", own, total);
        else
            sb_addf(&sc->line, "%6.1f  ", own);
        sb_reset(&label);
        row_label(t->names, e->key, t->by_function, 0, &label);
        /* A path too long for the line gives way to its last component,
         * so that the line number stays in sight. */
        if (prefix + display_cols(label.buf, label.len) > sc->cols) {
            sb_reset(&label);
            row_label(t->names, e->key, t->by_function, 1, &label);
        }
        sb_add(&sc->line, label.buf, label.len);
        screen_emit(sc);
    }
    free(rows);
    sb_release(&labels);
    sb_release(&label);
}

static int trow_cmp(const void *a, const void *b)
{
    const struct trow *x = *(const struct trow *const *)a, *y = *(const struct trow *const *)b;
    if (x->shown_samples != y->shown_samples)
        return x->shown_samples > y->shown_samples ? -1 : 1;
    if (x->shown_cpu != y->shown_cpu)
        return x->shown_cpu > y->shown_cpu ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static void put_state(const struct trow *r, struct strbuf *out)
{
    sb_addf(out, "%s%s", thread_state_name(r->shown_ts), r->shown_gil ? ", gil" : "");
}

/* The threads table: its heading and up to max rows (the last saying how
 * many more there are, when they do not fit). */
static void put_threads(const struct top *t, struct screen *sc, const struct trow **v, size_t n,
                        size_t max)
{
    struct strbuf st = STRBUF_INIT;
    int wide = sc->cols >= WIDE_COLS, pids = t->so->subprocesses;
    screen_linef(sc, "%s    TID  STATE           CPU%%%s  NAME", pids ? "    PID" : "",
                 wide ? "  SHARE" : "");
    for (size_t i = 0; i < n && i < max; i++) {
        const struct trow *r = v[i];
        if (i + 1 == max && n > max && max > 1) {
            screen_linef(sc, "  (%zu more threads)", n - i);
            break;
        }
        if (pids)
            sb_addf(&sc->line, "%7d", (int)r->pid);
        if (r->tid > 0)
            sb_addf(&sc->line, "%7d  ", (int)r->tid);
        else
            sb_adds(&sc->line, "      ?  ");
        sb_reset(&st);
        put_state(r, &st);
        sb_addf(&sc->line, "%-13s  %5.1f", st.buf, r->shown_cpu);
        if (wide)
            sb_addf(&sc->line, "  %5.1f", share(r->shown_samples, t->head.window));
        sb_addf(&sc->line, "  %s", r->name ? r->name : "");
        screen_emit(sc);
    }
    sb_release(&st);
}

/* The header's second line: mode, time, rate, samples, errors. */
static void put_status(const struct top *t, struct strbuf *out, const char *sep)
{
    const struct top_head *h = &t->head;
    sb_addf(out, "%s mode%s%.1f s%s%.1f of %g Hz%s%" PRIu64 " samples%s%" PRIu64 " errors",
            sampling_mode(t->so), sep, h->elapsed, sep, h->rate, t->so->rate, sep, h->samples,
            sep, h->errors);
    if (t->so->subprocesses)
        sb_addf(out, "%s%" PRIu32 " process%s", sep, h->processes, h->processes == 1 ? "" : "es");
}

/* ---- output --------------------------------------------------------------- */

/* Writes it all to stdout; gives up on a signal to stop unless told to insist. */
static int write_all(const char *buf, size_t n, int insist)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0 && errno == EINTR && (insist || !stop_requested))
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void flush_screen(struct top *t, struct screen *sc)
{
    int ret = write_all(sb_str(&sc->out), sc->out.len, 0);
    if (ret < 0 && ret != -EINTR)
        t->write_error = -ret;
    sb_release(&sc->out);
    sb_release(&sc->line);
}

static void term_size(size_t *cols, size_t *rows)
{
    struct winsize ws;
    *cols = DEFAULT_COLS;
    *rows = DEFAULT_ROWS;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

/* The threads shown, busiest first; *n of them. */
static const struct trow **shown_threads(const struct top *t, size_t *n)
{
    const struct trow **v = xmalloc((t->nthreads + 1) * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < t->nthreads; i++)
        if (t->threads[i].shown)
            v[k++] = &t->threads[i];
    qsort(v, k, sizeof(*v), trow_cmp);
    *n = k;
    return v;
}

/* Redraws the whole terminal screen. */
static void draw_screen(struct top *t)
{
    struct screen sc = {STRBUF_INIT, STRBUF_INIT, 0, 0, 0, 1};
    size_t nth;
    term_size(&sc.cols, &sc.rows);
    const struct trow **th = shown_threads(t, &nth);
    sb_adds(&sc.out, "\033[H");
    screen_linef(&sc, "pystrobe top: pid %d, %s", (int)t->pid, t->title);
    sb_addf(&sc.line, "%sPython %s  ", t->paused ? "PAUSED  " : "", t->version);
    put_status(t, &sc.line, "  ");
    screen_emit(&sc);
    if (sc.rows >= THREADS_MIN_ROWS)
        screen_linef(&sc, "sort: %s, by %s; keys: o own, t total, n name, l lines/functions, "
                     "p pause, r reset, q quit", sort_names[t->sort],
                     t->by_function ? "function" : "line");
    screen_linef(&sc, "%s", "");
    /* The threads take up to a third of what is left, the functions the rest;
     * either gives the other what it does not need. */
    size_t left = screen_left(&sc), fn_rows = left > 0 ? left - 1 : 0, th_rows = 0;
    if (sc.rows >= THREADS_MIN_ROWS && nth > 0 && left >= 6) {
        th_rows = MIN(nth, MAX((size_t)1, (left - 3) / 3));
        fn_rows = left - 3 - th_rows;
        const struct counts *c = t->by_function ? &t->funcs : &t->lines;
        size_t used = 0;
        for (size_t i = 0; i < c->n; i++)
            used += c->v[i].shown_cum_total != 0;
        used = MAX(used, (size_t)1);
        if (used < fn_rows) {
            th_rows = MIN(nth, th_rows + fn_rows - used);
            fn_rows = left - 3 - th_rows;
        }
    }
    put_functions(t, &sc, fn_rows);
    if (th_rows) {
        screen_linef(&sc, "%s", "");
        put_threads(t, &sc, th, nth, th_rows);
    }
    if (sc.n < sc.rows)
        sb_adds(&sc.out, "\r\n\033[J");
    free(th);
    flush_screen(t, &sc);
    t->drawn = 1;
}

/* Prints a plain report: one header line and the top functions. */
static void print_report(struct top *t)
{
    struct screen sc = {STRBUF_INIT, STRBUF_INIT, SIZE_MAX, SIZE_MAX, 0, 0};
    sb_addf(&sc.line, "pystrobe top: pid %d, Python %s, ", (int)t->pid, t->version);
    put_status(t, &sc.line, ", ");
    screen_emit(&sc);
    put_functions(t, &sc, PLAIN_ROWS);
    sb_addc(&sc.out, '\n');
    flush_screen(t, &sc);
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
    case 'r': case 'R': reset_counts(t, r, now); break;
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
        roll_window(t, r, now);
        if (!t->paused) {
            t->dirty = 1;
            if (!t->tty_out)
                print_report(t);
        }
    }
    if (t->tty_out && (t->dirty || !t->drawn) && !t->quit)
        draw_screen(t);
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
        write_all(enter_seq, sizeof(enter_seq) - 1, 1);
}

static void term_leave(struct top *t)
{
    if (t->tty_out)
        write_all(leave_seq, sizeof(leave_seq) - 1, 1);
    if (t->term_set)
        tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
    t->term_set = 0;
}

/* ---- the command ---------------------------------------------------------- */

static int parse_top(int argc, char **argv, struct sampling_opts *o)
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
        if ((ret = sampling_option(o, c, optarg)) != 0) {
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
    return sampling_operands(o, "top", argc, argv);
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

static void top_release(struct top *t)
{
    counts_release(&t->lines);
    counts_release(&t->funcs);
    for (size_t i = 0; i < t->nthreads; i++)
        free(t->threads[i].name);
    free(t->threads);
    htab_release(&t->thread_index);
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
        roll_window(t, r, now_ns());
        print_report(t);
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

    if ((ret = parse_top(argc, argv, &o)) != 0) {
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
    t.version = s.rt.version;
    t.tty_out = isatty(STDOUT_FILENO);
    t.keys = isatty(STDIN_FILENO);
    t.by_function = o.function;
    t.hz = sysconf(_SC_CLK_TCK);
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
