#include "output/speedscope.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "common/version.h"

#define DEFAULT_NAME "pystrobe profile"
#define FLUSH_AT (64 * 1024)

/* One profile of the document: a run of stacks[] (indices into p->stacks). */
struct ss_profile {
    const char *name;
    size_t first, n;
};

struct ss_writer {
    FILE *f;
    const struct profile *p;
    struct strbuf out;
    int failed; /* the errno of the first failed write, 0 if none */
    struct strbuf tmp;
};

static void flush(struct ss_writer *w, int force)
{
    if (!w->out.len || (!force && w->out.len < FLUSH_AT))
        return;
    if (fwrite(w->out.buf, 1, w->out.len, w->f) != w->out.len && !w->failed)
        w->failed = errno ? errno : EIO;
    sb_reset(&w->out);
}

/* A JSON string of s, whose invalid UTF-8 bytes become U+FFFD. */
static void add_string(struct ss_writer *w, const char *s)
{
    sb_reset(&w->tmp);
    if (sb_add_utf8(&w->tmp, s, strlen(s)) == 0) {
        json_string(&w->out, s);
        return;
    }
    json_string(&w->out, sb_str(&w->tmp));
}

/* The shortest decimal text that reads back as v (so the bytes are deterministic). */
static void add_double(struct strbuf *sb, double v)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sb_adds(sb, buf);
}

static void add_frame(struct ss_writer *w, const struct prof_frame *fr)
{
    sb_adds(&w->out, "{\"name\":");
    /* NAME, FILE and LINE of a code frame; the whole label of a marker or a bare name. */
    if ((fr->kind == PK_PYTHON || fr->kind == PK_NATIVE) && fr->name[0]) {
        add_string(w, fr->name);
        if (fr->file[0]) {
            sb_adds(&w->out, ",\"file\":");
            add_string(w, fr->file);
        }
        if (fr->line)
            sb_addf(&w->out, ",\"line\":%" PRIu32, fr->line);
    } else {
        add_string(w, fr->label);
    }
    sb_addc(&w->out, '}');
}

/* Whether stacks a and b hold the same frames (after their thread roots). */
static int same_frames(const struct profile *p, uint32_t a, uint32_t b)
{
    size_t na, nb;
    const uint32_t *fa = profile_stack_frames(p, &p->stacks[a], &na);
    const uint32_t *fb = profile_stack_frames(p, &p->stacks[b], &nb);
    return na == nb && memcmp(fa, fb, na * sizeof(*fa)) == 0;
}

static void write_profile(struct ss_writer *w, const struct ss_profile *pr, const uint32_t *stacks,
                          const uint32_t *index, double rate)
{
    const struct profile *p = w->p;
    /* Samples with equal frames (of different threads, when threads are not shown) merge. */
    uint64_t *counts = xmalloc((pr->n + 1) * sizeof(*counts));
    size_t *heads = xmalloc((pr->n + 1) * sizeof(*heads));
    size_t ns = 0;
    for (size_t i = 0; i < pr->n; i++) {
        uint32_t s = stacks[pr->first + i];
        if (ns && same_frames(p, stacks[pr->first + heads[ns - 1]], s)) {
            counts[ns - 1] += p->stacks[s].count;
            continue;
        }
        heads[ns] = i;
        counts[ns++] = p->stacks[s].count;
    }

    sb_adds(&w->out, "{\"type\":\"sampled\",\"name\":");
    add_string(w, pr->name);
    sb_addf(&w->out, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":", rate > 0 ? "seconds" : "none");
    if (rate > 0) {
        double sum = 0;
        for (size_t i = 0; i < ns; i++)
            sum += (double)counts[i] / rate;
        add_double(&w->out, sum);
    } else {
        uint64_t sum = 0;
        for (size_t i = 0; i < ns; i++)
            sum += counts[i];
        sb_addf(&w->out, "%" PRIu64, sum);
    }
    sb_adds(&w->out, ",\n\"samples\":[");
    for (size_t i = 0; i < ns; i++) {
        size_t n;
        const uint32_t *ids = profile_stack_frames(p, &p->stacks[stacks[pr->first + heads[i]]], &n);
        sb_adds(&w->out, i ? ",\n[" : "\n[");
        for (size_t j = 0; j < n; j++)
            sb_addf(&w->out, j ? ",%" PRIu32 : "%" PRIu32, index[ids[j]]);
        sb_addc(&w->out, ']');
        flush(w, 0);
    }
    sb_adds(&w->out, "],\n\"weights\":[");
    for (size_t i = 0; i < ns; i++) {
        sb_adds(&w->out, i ? ",\n" : "\n");
        if (rate > 0)
            add_double(&w->out, (double)counts[i] / rate);
        else
            sb_addf(&w->out, "%" PRIu64, counts[i]);
        flush(w, 0);
    }
    sb_adds(&w->out, "]}");
    free(counts);
    free(heads);
}

int speedscope_write(FILE *f, const struct profile *p)
{
    struct ss_writer w = {f, p, STRBUF_INIT, 0, STRBUF_INIT};
    const char *title = p->meta.title && p->meta.title[0] ? p->meta.title : DEFAULT_NAME;
    /* Seconds only when every weight (and their sum) is a finite number. */
    double rate = p->meta.rate;
    if (!(rate > 0) || !isfinite(rate) || !isfinite((double)p->total / rate))
        rate = 0;

    /*
     * The stacks in output order: by thread when threads are shown (one
     * profile each), else all in one profile; in profile_sorted() order
     * within a profile.  Stacks without samples are left out.
     */
    uint32_t *sorted = profile_sorted(p);
    uint32_t *stacks = xmalloc((p->nstacks + 1) * sizeof(*stacks));
    struct ss_profile *profs = xcalloc(p->nthreads + 1, sizeof(*profs));
    size_t nprofs = 0, nst = 0;
    if (p->thread_roots) {
        size_t *start = xcalloc(p->nthreads + 1, sizeof(*start));
        for (size_t i = 0; i < p->nstacks; i++)
            if (p->stacks[i].count)
                start[p->stacks[i].thread + 1]++;
        for (size_t t = 0; t < p->nthreads; t++)
            start[t + 1] += start[t];
        nst = start[p->nthreads];
        for (size_t t = 0; t < p->nthreads; t++) {
            if (start[t + 1] == start[t])
                continue;
            const struct prof_thread *th = &p->threads[t];
            int unnamed = p->nthreads == 1 && !th->name && th->tid == 0;
            profs[nprofs++] = (struct ss_profile){unnamed ? title : p->frames[th->frame].label, start[t],
                                                  start[t + 1] - start[t]};
        }
        for (size_t i = 0; i < p->nstacks; i++) {
            const struct prof_stack *s = &p->stacks[sorted[i]];
            if (s->count)
                stacks[start[s->thread]++] = sorted[i];
        }
        free(start);
    } else {
        for (size_t i = 0; i < p->nstacks; i++)
            if (p->stacks[sorted[i]].count)
                stacks[nst++] = sorted[i];
        if (nst)
            profs[nprofs++] = (struct ss_profile){title, 0, nst};
    }
    /* A profile without samples still shows as one empty profile: viewers expect one. */
    if (!nprofs)
        profs[nprofs++] = (struct ss_profile){title, 0, 0};
    free(sorted);

    /* Frames are numbered in the order the samples first use them. */
    uint32_t *index = xmalloc((p->nframes + 1) * sizeof(*index));
    uint32_t *used = xmalloc((p->nframes + 1) * sizeof(*used));
    uint32_t nused = 0;
    for (size_t i = 0; i < p->nframes; i++)
        index[i] = UINT32_MAX;
    for (size_t i = 0; i < nst; i++) {
        size_t n;
        const uint32_t *ids = profile_stack_frames(p, &p->stacks[stacks[i]], &n);
        for (size_t j = 0; j < n; j++) {
            if (index[ids[j]] == UINT32_MAX) {
                index[ids[j]] = nused;
                used[nused++] = ids[j];
            }
        }
    }

    sb_adds(&w.out, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\n");
    sb_adds(&w.out, "\"exporter\":\"pystrobe " PYSTROBE_VERSION "\",\n\"name\":");
    add_string(&w, title);
    sb_adds(&w.out, ",\n\"activeProfileIndex\":0,\n\"shared\":{\"frames\":[");
    for (uint32_t i = 0; i < nused; i++) {
        sb_adds(&w.out, i ? ",\n" : "\n");
        add_frame(&w, &p->frames[used[i]]);
        flush(&w, 0);
    }
    sb_adds(&w.out, "]},\n\"profiles\":[");
    for (size_t i = 0; i < nprofs; i++) {
        sb_adds(&w.out, i ? ",\n" : "\n");
        write_profile(&w, &profs[i], stacks, index, rate);
    }
    sb_adds(&w.out, "]}\n");
    flush(&w, 1);

    free(index);
    free(used);
    free(stacks);
    free(profs);
    sb_release(&w.out);
    sb_release(&w.tmp);
    if (!w.failed && (fflush(f) != 0 || ferror(f)))
        w.failed = errno ? errno : EIO;
    return -w.failed;
}
