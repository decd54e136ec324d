#include "output/foldedin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest input read from a file: 4 GiB of text is far past any real profile. */
#define FOLDEDIN_MAX_FILE (4ull << 30)

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
};

static int fail(struct reader *r, const char *what, const char *detail)
{
    return pserr_set(r->err, EINVAL, "%s:%zu: %s%s", r->name, r->lineno, what, detail ? detail : "");
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
 * Decides, before parsing, whether this is austin's output: every stack
 * starts "P<pid>;T<tid>;".  Only then are P and T frames austin's roots (a
 * frame may be called "P5" elsewhere).  *one_pid says whether they all name
 * one process, whose root can then go.
 */
static int austin_input(const char *text, size_t n, int *one_pid)
{
    const char *first = NULL;
    size_t firstlen = 0, stacks = 0;
    *one_pid = 1;
    for (size_t i = 0; i < n;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + 1;
        if (is_header(line, len) || zero_count(line, len))
            continue;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
            k++;
        if (k == len)
            continue;
        const char *semi = memchr(line, ';', len);
        if (!semi || !austin_pid(line, (size_t)(semi - line)))
            return 0;
        const char *t = semi + 1, *end = line + len;
        const char *semi2 = memchr(t, ';', (size_t)(end - t));
        if (!semi2 || !austin_tid(t, (size_t)(semi2 - t)))
            return 0;
        size_t fl = (size_t)(semi - line);
        if (!first) {
            first = line;
            firstlen = fl;
        } else if (fl != firstlen || memcmp(first, line, fl) != 0) {
            *one_pid = 0;
        }
        stacks++;
    }
    return stacks > 0;
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
        if (fl == 0) {
            char d[48];
            snprintf(d, sizeof(d), " %zu is empty", k + 1);
            return fail(r, "frame", d);
        }
        if (nf >= FOLDEDIN_MAX_FRAMES)
            return fail(r, "more than 65536 frames in one stack", NULL);
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
    r->nprev = k;
    if (nf == 0)
        return fail(r, "no frames before the count", NULL);
    if (count == 0)
        return 0;
    if (thread == UINT32_MAX) {
        if (r->default_thread == UINT32_MAX)
            r->default_thread = profile_thread(p, NULL, 0);
        thread = r->default_thread;
        r->unrooted = 1;
    }
    if (p->total + count < p->total)
        return fail(r, "the sample counts add up to more than 2^64", NULL);
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
        return fail(r, "a NUL byte: this is not folded text", NULL);
    if (n > FOLDEDIN_MAX_LINE)
        return fail(r, "line longer than 16 MiB", NULL);
    if (!r->seen_stack && is_header(s, n)) {
        header_line(r, s, n);
        return 0;
    }
    r->seen_stack = 1;
    size_t sp = n;
    while (sp > 0 && s[sp - 1] != ' ' && s[sp - 1] != '\t')
        sp--;
    if (sp == 0)
        return fail(r, "no sample count at the end (expected \"frame;frame;... COUNT\")", NULL);
    const char *num = s + sp;
    size_t numlen = n - sp;
    if (r->austin && austin_full_metrics(num, numlen))
        numlen = (size_t)((const char *)memchr(num, ',', numlen) - num); /* the time */
    if (!all_digits(num, numlen) || numlen > 20) {
        char d[64];
        snprintf(d, sizeof(d), "\"%.*s\"%s is not a sample count (a whole number)",
                 (int)(numlen > 24 ? 24 : numlen), num, numlen > 24 ? "..." : "");
        return fail(r, d, NULL);
    }
    errno = 0;
    char buf[24];
    memcpy(buf, num, numlen);
    buf[numlen] = '\0';
    unsigned long long count = strtoull(buf, NULL, 10);
    if (errno == ERANGE)
        return fail(r, "sample count larger than 2^64", NULL);
    size_t end = sp;
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (end == 0)
        return fail(r, "no frames before the count", NULL);
    return parse_stack(r, s, end, (uint64_t)count);
}

int folded_read(struct profile *p, const char *text, size_t n, const char *name, struct pserr *err)
{
    struct reader r = {.p = p, .name = name, .err = err, .default_thread = UINT32_MAX,
                       .frame = STRBUF_INIT};
    int ret = 0;
    size_t before = p->nstacks;
    r.austin = austin_input(text, n, &r.single_pid);
    for (size_t i = 0; i < n && ret == 0;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + 1;
        r.lineno++;
        ret = parse_line(&r, line, len);
    }
    if (ret == 0 && p->nstacks > before)
        p->thread_roots = !r.unrooted && (before == 0 || p->thread_roots);
    free(r.thread_of);
    free(r.ids);
    free(r.prev);
    sb_release(&r.frame);
    return ret;
}

int folded_read_file(struct profile *p, const char *path, struct pserr *err)
{
    int stdin_ = strcmp(path, "-") == 0;
    int fd = stdin_ ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pserr_set(err, errno, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap)
            GROW(buf, cap, len + 65536);
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            if (!stdin_)
                close(fd);
            return pserr_set(err, e, "cannot read %s: %s", path, strerror(e));
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len > FOLDEDIN_MAX_FILE) {
            free(buf);
            if (!stdin_)
                close(fd);
            return pserr_set(err, EFBIG, "%s is larger than 4 GiB: not a profile pystrobe reads", path);
        }
    }
    if (!stdin_)
        close(fd);
    int ret = folded_read(p, buf ? buf : "", len, stdin_ ? "stdin" : path, err);
    free(buf);
    return ret;
}
