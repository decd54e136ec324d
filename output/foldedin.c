#include "output/foldedin.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read at a time. */
#define FOLDEDIN_CHUNK 65536

/* A frame of the previous line as written, and the state after it. */
struct rawframe {
    const char *s;
    size_t n;
    size_t nf;
    uint32_t last;  /* ids[nf - 1] after it: a later frame (austin's L<line>) may change that slot */
    uint32_t thread;
    int after_pid;
};

struct reader {
    struct profile *p;
    const char *name;
    size_t lineno;
    struct pserr *err;
    int austin;            /* austin's output: P<pid>;T<tid>; roots */
    int single_pid;        /* austin's P<pid> roots all name one process: drop them */
    uint32_t *thread_of;   /* frame id -> thread index + 1, for thread root frames */
    size_t thread_of_cap;
    uint32_t default_thread; /* for stacks without a thread root; UINT32_MAX until needed */
    int unrooted;          /* some stack had no thread root */
    int seen_stack;        /* past the header */
    uint32_t *ids;
    size_t idcap;
    struct strbuf frame;   /* the frame being rewritten */
    struct rawframe *prev; /* the previous line's frames */
    size_t nprev, prevcap;
    struct strbuf prevtext; /* the previous line's stack, which prev points into */
};

static int fail(struct reader *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int fail(struct reader *r, const char *fmt, ...)
{
    struct strbuf what = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vaddf(&what, fmt, ap);
    va_end(ap);
    int ret = pserr_set(r->err, EINVAL, "%.300s:%zu: %s", r->name, r->lineno, sb_str(&what));
    sb_release(&what);
    return ret;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Austin's process root: "P" and a PID. */
static int austin_pid(const char *s, size_t n)
{
    return n >= 2 && s[0] == 'P' && all_digits(s + 1, n - 1);
}

/* A thread id as austin writes it: decimal, hex, or "IID:TID". */
static int tid_chars(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == ':' || c == 'x'))
            return 0;
    }
    return 1;
}

/* Austin's thread root: "T" and a thread id. */
static int austin_tid(const char *s, size_t n)
{
    return n >= 2 && s[0] == 'T' && tid_chars(s + 1, n - 1);
}

/*
 * Austin's header: "# key: value" lines before the first stack.  (A folded
 * file whose first frame reads like that is read as a header: the format
 * has no escape.)
 */
static int is_header(const char *s, size_t n)
{
    if (n < 4 || s[0] != '#' || s[1] != ' ')
        return 0;
    size_t i = 2;
    while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                     (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
        i++;
    return i > 2 && i < n && s[i] == ':' && (i + 1 == n || s[i + 1] == ' ');
}

/* Does the line end in a count of zero (a line the output leaves out)? */
static int zero_count(const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t i = len;
    while (i && line[i - 1] == '0')
        i--;
    return i < len && i && (line[i - 1] == ' ' || line[i - 1] == '\t');
}

/*
 * Whether the input is austin's output: every stack starts "P<pid>;T<tid>;".
 * Only then are P and T frames austin's roots (a frame may be called "P5"
 * elsewhere), so this is decided before a line is parsed.  one_pid says
 * whether they all name one process, whose root can then go.
 */
struct scan {
    struct strbuf pid; /* the first stack's "P<pid>" */
    size_t stacks;
    int one_pid;
    int not_austin;
};

#define SCAN_INIT {STRBUF_INIT, 0, 1, 0}

/* Looks at one more line; 0 once the input cannot be austin's. */
static int scan_line(struct scan *sc, const char *line, size_t len)
{
    if (sc->not_austin)
        return 0;
    if (is_header(line, len) || zero_count(line, len))
        return 1;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
        k++;
    if (k == len)
        return 1;
    const char *semi = memchr(line, ';', len);
    const char *t = semi ? semi + 1 : NULL, *end = line + len;
    const char *semi2 = t ? memchr(t, ';', (size_t)(end - t)) : NULL;
    if (!semi2 || !austin_pid(line, (size_t)(semi - line)) || !austin_tid(t, (size_t)(semi2 - t))) {
        sc->not_austin = 1;
        return 0;
    }
    size_t fl = (size_t)(semi - line);
    if (sc->stacks == 0)
        sb_add(&sc->pid, line, fl);
    else if (fl != sc->pid.len || memcmp(sc->pid.buf, line, fl) != 0)
        sc->one_pid = 0;
    sc->stacks++;
    return 1;
}

static int scan_austin(const struct scan *sc)
{
    return !sc->not_austin && sc->stacks > 0;
}

static int plausible(const char *s, size_t n);

/*
 * The dialect of text[0..n): decided by the lines before the first that
 * cannot be a stack in either (as a stream decides it, see struct stream).
 */
static int austin_input(const char *text, size_t n, int *one_pid)
{
    struct scan sc = SCAN_INIT;
    for (size_t i = 0; i < n;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + 1;
        if (memchr(line, '\0', len) || len > FOLDEDIN_MAX_LINE || !scan_line(&sc, line, len) ||
            !plausible(line, len))
            break;
    }
    *one_pid = sc.one_pid;
    sb_release(&sc.pid);
    return scan_austin(&sc);
}

static uint32_t thread_for_frame(struct reader *r, uint32_t frame, const char *label)
{
    struct profile *p = r->p;
    if (frame < r->thread_of_cap && r->thread_of[frame])
        return r->thread_of[frame] - 1;
    /*
     * "thread NAME (TID)" (ours), "thread (TID): NAME" and "thread (0x7F...)"
     * (py-spy), "thread (TID)" (austin).
     */
    const char *rest = label + 7;
    size_t n = strlen(rest);
    const char *open = NULL, *close = NULL;
    int64_t tid = 0;
    char *name = NULL;
    if (rest[0] == '(' && (close = strchr(rest, ')')) && strncmp(close, "): ", 3) == 0) {
        open = rest;
        if (close[3])
            name = xstrdup(close + 3);
    } else if ((open = strrchr(rest, '(')) && n && rest[n - 1] == ')') {
        close = rest + n - 1;
        if (open > rest + 1 && open[-1] == ' ')
            name = xstrndup(rest, (size_t)(open - 1 - rest));
    } else {
        open = NULL;
    }
    if (open) {
        const char *digits = open + 1;
        size_t dn = (size_t)(close - digits);
        /* "(TID #N)": the Nth of a recording's threads labelled alike. */
        const char *hash = memchr(digits, '#', dn);
        if (hash && hash > digits + 1 && hash[-1] == ' ' && all_digits(hash + 1, (size_t)(close - hash - 1)))
            dn = (size_t)(hash - 1 - digits);
        if (all_digits(digits, dn) && dn <= 9)
            tid = strtoll(digits, NULL, 10);
    }
    uint32_t t = profile_thread(p, name, tid);
    free(name);
    p->threads[t].frame = frame; /* keep the label exactly as the input had it */
    if (frame >= r->thread_of_cap) {
        size_t old = r->thread_of_cap;
        GROW(r->thread_of, r->thread_of_cap, (size_t)frame + 1);
        memset(r->thread_of + old, 0, (r->thread_of_cap - old) * sizeof(*r->thread_of));
    }
    r->thread_of[frame] = t + 1;
    return t;
}

/* Austin 3's "FILE:FUNCTION:LINE" as "FUNCTION (FILE:LINE)"; 0 if f is not one. */
static int austin_frame(struct strbuf *out, const char *f, size_t n)
{
    const char *end = f + n;
    const char *c2 = NULL, *c1 = NULL;
    for (const char *q = end - 1; q >= f; q--) {
        if (*q == ':') {
            c2 = q;
            break;
        }
    }
    if (!c2 || !all_digits(c2 + 1, (size_t)(end - c2 - 1)))
        return 0;
    for (const char *q = c2 - 1; q >= f; q--) {
        if (*q == ':') {
            c1 = q;
            break;
        }
    }
    if (!c1 || c1 == f || c1 + 1 == c2)
        return 0;
    sb_reset(out);
    sb_add(out, c1 + 1, (size_t)(c2 - c1 - 1));
    sb_adds(out, " (");
    sb_add(out, f, (size_t)(c1 - f));
    sb_addc(out, ':');
    sb_add(out, c2 + 1, (size_t)(end - c2 - 1));
    sb_addc(out, ')');
    return 1;
}

static int has_paren_group(const char *f, size_t n)
{
    if (n < 4 || f[n - 1] != ')')
        return 0;
    for (size_t i = n - 1; i-- > 1;)
        if (f[i] == '(' && f[i - 1] == ' ')
            return 1;
    return 0;
}

static int parse_stack(struct reader *r, const char *s, size_t n, uint64_t count)
{
    struct profile *p = r->p;
    size_t nf = 0, k = 0;
    uint32_t thread = UINT32_MAX;
    int after_pid = 0;
    int same = 1; /* every raw frame so far equals the previous line's */
    for (size_t i = 0; i <= n; k++) {
        const char *f = s + i;
        const char *semi = memchr(f, ';', n - i);
        size_t fl = semi ? (size_t)(semi - f) : n - i;
        i += fl + 1;
        if (fl == 0)
            return fail(r, "frame %zu is empty", k + 1);
        if (nf >= FOLDEDIN_MAX_FRAMES)
            return fail(r, "more than 65536 frames in one stack");
        /*
         * Stacks share their roots, and sorted input shares long prefixes:
         * while this line repeats the previous one, its state after each
         * frame is the previous line's (r->ids still holds those ids).
         */
        if (same && k < r->nprev && r->prev[k].n == fl && memcmp(r->prev[k].s, f, fl) == 0) {
            nf = r->prev[k].nf;
            if (nf)
                r->ids[nf - 1] = r->prev[k].last;
            thread = r->prev[k].thread;
            after_pid = r->prev[k].after_pid;
            r->prev[k].s = f;
            continue;
        }
        same = 0;
        if (r->austin && k == 0 && austin_pid(f, fl)) {
            after_pid = 1;
            if (r->single_pid)
                goto next;
            sb_reset(&r->frame);
            sb_adds(&r->frame, "process ");
            sb_add(&r->frame, f + 1, fl - 1);
        } else if (r->austin && k == 1 && after_pid && austin_tid(f, fl)) {
            const char *colon = memchr(f, ':', fl);
            const char *tid = colon ? colon + 1 : f + 1;
            sb_reset(&r->frame);
            sb_adds(&r->frame, "thread (");
            sb_add(&r->frame, tid, (size_t)(f + fl - tid));
            sb_addc(&r->frame, ')');
        } else if (k == 0 && fl > 7 && memcmp(f, "Thread ", 7) == 0 && tid_chars(f + 7, fl - 7)) {
            /* Austin 1's "Thread 7f...": the thread root as ours reads. */
            sb_reset(&r->frame);
            sb_adds(&r->frame, "thread (");
            sb_add(&r->frame, f + 7, fl - 7);
            sb_addc(&r->frame, ')');
        } else if (fl >= 2 && f[0] == 'L' && all_digits(f + 1, fl - 1) && nf > 0 &&
                   has_paren_group(p->frames[r->ids[nf - 1]].label,
                                   strlen(p->frames[r->ids[nf - 1]].label)) &&
                   p->frames[r->ids[nf - 1]].line == 0) {
            /* Austin 1's "FUNCTION (FILE);L<line>": the line joins its frame. */
            const char *prev = p->frames[r->ids[nf - 1]].label;
            sb_reset(&r->frame);
            sb_add(&r->frame, prev, strlen(prev) - 1);
            sb_addc(&r->frame, ':');
            sb_add(&r->frame, f + 1, fl - 1);
            sb_addc(&r->frame, ')');
            r->ids[nf - 1] = profile_frame(p, r->frame.buf);
            goto next;
        } else if (memchr(f, '(', fl) || !austin_frame(&r->frame, f, fl)) {
            sb_reset(&r->frame);
            sb_add(&r->frame, f, fl);
        }
        GROW(r->ids, r->idcap, nf + 1);
        uint32_t id = profile_frame_n(p, r->frame.buf, r->frame.len);
        if (nf == 0 && strncmp(p->frames[id].label, "thread ", 7) == 0)
            thread = thread_for_frame(r, id, p->frames[id].label);
        r->ids[nf++] = id;
    next:
        GROW(r->prev, r->prevcap, k + 1);
        r->prev[k] = (struct rawframe){f, fl, nf, nf ? r->ids[nf - 1] : 0, thread, after_pid};
    }
    /* The next line is compared with this one's frames: keep them (a stream reuses its line). */
    sb_reset(&r->prevtext);
    sb_add(&r->prevtext, s, n);
    for (size_t j = 0; j < k; j++)
        r->prev[j].s = r->prevtext.buf + (r->prev[j].s - s);
    r->nprev = k;
    if (nf == 0)
        return fail(r, "no frames before the count");
    if (count == 0)
        return 0;
    if (thread == UINT32_MAX) {
        if (r->default_thread == UINT32_MAX)
            r->default_thread = profile_thread(p, NULL, 0);
        thread = r->default_thread;
        r->unrooted = 1;
    }
    if (p->total + count < p->total)
        return fail(r, "the sample counts add up to more than 2^64");
    profile_add(p, thread, r->ids, nf, count);
    return 0;
}

/* Austin's header lines: "# interval: 100" (microseconds), "# mode: wall". */
static void header_line(struct reader *r, const char *s, size_t n)
{
    struct profile *p = r->p;
    char buf[64];
    if (n >= sizeof(buf))
        return;
    memcpy(buf, s, n);
    buf[n] = '\0';
    long v;
    if (strncmp(buf, "# interval: ", 12) == 0 && parse_long(buf + 12, &v) == 0 && v > 0)
        p->meta.rate = 1e6 / (double)v;
    else if (strcmp(buf, "# mode: wall") == 0)
        p->meta.mode = "wall";
    else if (strcmp(buf, "# mode: cpu") == 0)
        p->meta.mode = "cpu";
}

/* Austin's full metrics, "TIME,IDLE,MEMORY" (memory may be negative). */
static int austin_full_metrics(const char *s, size_t n)
{
    const char *c1 = memchr(s, ',', n);
    const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(s + n - c1 - 1)) : NULL;
    if (!c2)
        return 0;
    const char *m = c2 + 1;
    if (m < s + n && *m == '-')
        m++;
    return all_digits(s, (size_t)(c1 - s)) && all_digits(c1 + 1, (size_t)(c2 - c1 - 1)) &&
           all_digits(m, (size_t)(s + n - m));
}

static int parse_line(struct reader *r, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
        lead++;
    if (lead == n)
        return 0;
    if (memchr(s, '\0', n))
        return fail(r, "a NUL byte: this is not folded text");
    if (n > FOLDEDIN_MAX_LINE)
        return fail(r, "line longer than 16 MiB");
    if (!r->seen_stack && is_header(s, n)) {
        header_line(r, s, n);
        return 0;
    }
    r->seen_stack = 1;
    size_t sp = n;
    while (sp > 0 && s[sp - 1] != ' ' && s[sp - 1] != '\t')
        sp--;
    if (sp == 0)
        return fail(r, "no sample count at the end (expected \"frame;frame;... COUNT\")");
    const char *num = s + sp;
    size_t numlen = n - sp;
    if (r->austin && austin_full_metrics(num, numlen))
        numlen = (size_t)((const char *)memchr(num, ',', numlen) - num); /* the time */
    if (!all_digits(num, numlen) || numlen > 20)
        return fail(r, "\"%.*s\"%s is not a sample count (a whole number)",
                    (int)(numlen > 24 ? 24 : numlen), num, numlen > 24 ? "..." : "");
    errno = 0;
    char buf[24];
    memcpy(buf, num, numlen);
    buf[numlen] = '\0';
    unsigned long long count = strtoull(buf, NULL, 10);
    if (errno == ERANGE)
        return fail(r, "sample count larger than 2^64");
    size_t end = sp;
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (end == 0)
        return fail(r, "no frames before the count");
    return parse_stack(r, s, end, (uint64_t)count);
}

static void reader_init(struct reader *r, struct profile *p, const char *name, struct pserr *err)
{
    *r = (struct reader){.p = p, .name = name, .err = err, .default_thread = UINT32_MAX,
                         .frame = STRBUF_INIT, .prevtext = STRBUF_INIT};
}

/* Ends the reading of stacks added after the profile held `before`. */
static void reader_release(struct reader *r, size_t before, int ret)
{
    struct profile *p = r->p;
    if (ret == 0 && p->nstacks > before)
        p->thread_roots = !r->unrooted && (before == 0 || p->thread_roots);
    free(r->thread_of);
    free(r->ids);
    free(r->prev);
    sb_release(&r->frame);
    sb_release(&r->prevtext);
}

/* The UTF-8 byte order mark some editors put first: not part of the first frame. */
static const char BOM[] = "\xEF\xBB\xBF";

static size_t bom_len(const char *s, size_t n)
{
    return n >= 3 && memcmp(s, BOM, 3) == 0 ? 3 : 0;
}

int folded_read(struct profile *p, const char *text, size_t n, const char *name, struct pserr *err)
{
    struct reader r;
    int ret = 0;
    size_t before = p->nstacks, skip = bom_len(text, n);
    text += skip;
    n -= skip;
    reader_init(&r, p, name, err);
    r.austin = austin_input(text, n, &r.single_pid);
    for (size_t i = 0; i < n && ret == 0;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + 1;
        r.lineno++;
        ret = parse_line(&r, line, len);
    }
    reader_release(&r, before, ret);
    return ret;
}

/*
 * Reading from a descriptor, a line at a time: nothing but the line being
 * read is kept, except lines read before the dialect is known (austin's or
 * not, see struct scan), which an input that cannot be read again (a pipe)
 * keeps until then.  An input that can (a file) is read again from where
 * it started.  A line that cannot be a stack in either dialect decides at
 * once, so the reading stops at the first bad line.
 */
struct stream {
    struct reader r;
    struct scan sc;
    int fd;
    int seekable;
    off_t start;
    int decided;
    int again;             /* read the input again from start */
    uint64_t max, used;
    size_t lineno;         /* lines delivered */
    size_t got;            /* lines read from the input, since start */
    struct strbuf line;    /* the line being read */
    int line_bad;          /* it is bad already: the rest of it is not kept */
    struct strbuf spool;   /* lines read before the dialect is known (no start to go back to) */
};

/* Could the line be a stack, or skipped, in either dialect?  (0: bad in both.) */
static int plausible(const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
        lead++;
    if (lead == n || is_header(s, n))
        return 1;
    size_t sp = n;
    while (sp > 0 && s[sp - 1] != ' ' && s[sp - 1] != '\t')
        sp--;
    if (sp <= lead)
        return 0;
    const char *num = s + sp;
    size_t numlen = n - sp;
    return (all_digits(num, numlen) && numlen <= 20) || austin_full_metrics(num, numlen);
}

static int deliver(struct stream *s, const char *line, size_t len, const char *bad);

/* The dialect is known: the lines kept are parsed, then the one that decided. */
static int decide(struct stream *s, const char *line, size_t len, const char *bad)
{
    s->decided = 1;
    s->r.austin = scan_austin(&s->sc);
    s->r.single_pid = s->sc.one_pid;
    if (s->seekable) {
        s->again = 1;
        return 0;
    }
    struct strbuf kept = s->spool;
    int ret = 0;
    s->spool = (struct strbuf)STRBUF_INIT;
    s->lineno = 0;
    for (size_t i = 0; i < kept.len && ret == 0;) {
        const char *l = kept.buf + i;
        size_t ll = (size_t)((const char *)memchr(l, '\n', kept.len - i) - l);
        i += ll + 1;
        ret = deliver(s, l, ll, NULL);
    }
    sb_release(&kept);
    if (ret == 0 && (line || bad))
        ret = deliver(s, line, len, bad);
    return ret;
}

/* One line of the input (bad: why it is not a line at all, else NULL). */
static int deliver(struct stream *s, const char *line, size_t len, const char *bad)
{
    s->lineno++;
    if (!s->decided) {
        if (!bad && scan_line(&s->sc, line, len) && plausible(line, len)) {
            if (!s->seekable) {
                sb_add(&s->spool, line, len);
                sb_addc(&s->spool, '\n');
            }
            return 0;
        }
        s->lineno--;
        return decide(s, line, len, bad);
    }
    s->r.lineno = s->lineno;
    if (bad)
        return fail(&s->r, "%s", bad);
    return parse_line(&s->r, line, len);
}

/* The line read whole: to deliver, without a first line's byte order mark. */
static int line_done(struct stream *s)
{
    const char *l = s->line.buf ? s->line.buf : "";
    size_t n = s->line.len, skip = s->got++ == 0 ? bom_len(l, n) : 0;
    int ret = deliver(s, l + skip, n - skip, NULL);
    sb_reset(&s->line);
    return ret;
}

/* Bytes read: split into lines, each checked for what no dialect allows as it comes. */
static int take(struct stream *s, const char *b, size_t n)
{
    while (n > 0 && !s->again) {
        const char *nl = memchr(b, '\n', n);
        size_t seg = nl ? (size_t)(nl - b) : n;
        const char *bad = NULL;
        if (memchr(b, '\0', seg))
            bad = "a NUL byte: this is not folded text";
        else if (s->line.len + seg > FOLDEDIN_MAX_LINE)
            bad = "line longer than 16 MiB";
        if (bad) {
            s->got++;
            return deliver(s, NULL, 0, bad);
        }
        sb_add(&s->line, b, seg);
        b += seg;
        n -= seg;
        if (nl) {
            b++;
            n--;
            int ret = line_done(s);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

/* The end of the input: the last line, and the dialect if still unknown. */
static int take_end(struct stream *s)
{
    int ret = s->line.len ? line_done(s) : 0;
    if (ret == 0 && !s->decided && !s->again)
        ret = decide(s, NULL, 0, NULL);
    return ret;
}

static void size_text(char *out, size_t n, uint64_t bytes)
{
    if (bytes % (1u << 30) == 0)
        snprintf(out, n, "%" PRIu64 " GiB", bytes >> 30);
    else if (bytes % (1u << 20) == 0)
        snprintf(out, n, "%" PRIu64 " MiB", bytes >> 20);
    else
        snprintf(out, n, "%" PRIu64 " bytes", bytes);
}

/* Goes back to where the input started, to read it again now that its dialect is known. */
static int rewind_input(struct stream *s)
{
    if (lseek(s->fd, s->start, SEEK_SET) < 0)
        return pserr_set(s->r.err, errno, "cannot read %.300s again: %s", s->r.name, strerror(errno));
    s->again = 0;
    s->used = 0;
    s->got = 0;
    s->lineno = 0;
    sb_reset(&s->line);
    return 0;
}

int folded_read_fd(struct profile *p, int fd, const char *name, uint64_t max_input, struct pserr *err)
{
    struct stream s = {.sc = SCAN_INIT, .fd = fd, .max = max_input, .line = STRBUF_INIT,
                       .spool = STRBUF_INIT};
    struct stat st;
    size_t before = p->nstacks;
    int ret = 0;
    reader_init(&s.r, p, name, err);
    s.seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                 (s.start = lseek(fd, 0, SEEK_CUR)) >= 0;
    char *buf = xmalloc(FOLDEDIN_CHUNK);
    for (;;) {
        ssize_t got = read(fd, buf, FOLDEDIN_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ret = pserr_set(err, errno, "cannot read %.300s: %s", name, strerror(errno));
            break;
        }
        if ((uint64_t)got > s.max - s.used) {
            char lim[32];
            size_text(lim, sizeof(lim), s.max);
            ret = pserr_set(err, EFBIG, "%.300s is larger than %s: more than pystrobe reads as "
                            "a profile", name, lim);
            break;
        }
        s.used += (uint64_t)got;
        ret = got ? take(&s, buf, (size_t)got) : take_end(&s);
        if (ret == 0 && s.again)
            ret = rewind_input(&s); /* and read on from the start */
        else if (got == 0)
            break;
        if (ret < 0)
            break;
    }
    free(buf);
    sb_release(&s.line);
    sb_release(&s.spool);
    sb_release(&s.sc.pid);
    reader_release(&s.r, before, ret);
    return ret;
}

int folded_read_file(struct profile *p, const char *path, struct pserr *err)
{
    if (strcmp(path, "-") == 0)
        return folded_read_fd(p, STDIN_FILENO, "stdin", FOLDEDIN_MAX_INPUT, err);
    struct stat st;
    int fd = open_regular(path, &st);
    if (fd == -EINVAL)
        return pserr_set(err, EINVAL, "%.300s is %s, not a regular file: give a folded file, or - "
                         "with the text on standard input", path, file_kind(st.st_mode));
    if (fd < 0)
        return pserr_set(err, -fd, "cannot open %.300s: %s", path, strerror(-fd));
    int ret = folded_read_fd(p, fd, path, FOLDEDIN_MAX_INPUT, err);
    close(fd);
    return ret;
}
