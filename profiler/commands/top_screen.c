/*
 * pystrobe top's rendering: the full terminal screen (header, the busiest
 * lines or functions, the threads), cut to the terminal's width in
 * columns, or a plain report where stdout is no terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "output/label.h"
#include "profiler/commands/top.h"

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

static const char *const sort_names[] = {"own", "total", "name"};

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

static size_t cols_of(const char *s, size_t n)
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
        if (prefix + cols_of(label.buf, label.len) > sc->cols) {
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
int top_write_all(const struct top *t, const char *buf, size_t n, int insist)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0 && errno == EINTR && (insist || !*t->stop))
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
    int ret = top_write_all(t, sb_str(&sc->out), sc->out.len, 0);
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
void top_draw_screen(struct top *t)
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
void top_print_report(struct top *t)
{
    struct screen sc = {STRBUF_INIT, STRBUF_INIT, SIZE_MAX, SIZE_MAX, 0, 0};
    sb_addf(&sc.line, "pystrobe top: pid %d, Python %s, ", (int)t->pid, t->version);
    put_status(t, &sc.line, ", ");
    screen_emit(&sc);
    put_functions(t, &sc, PLAIN_ROWS);
    sb_addc(&sc.out, '\n');
    flush_screen(t, &sc);
}
