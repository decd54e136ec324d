/*
 * A profile as every writer reads it: distinct stacks of frames with their
 * sample counts, the thread each was taken in, and what was profiled.  It
 * comes from a recording (profile_from_agg) or from folded text (foldedin.h).
 *
 * Frames are interned by label, so equal labels have equal ids.  Labels are
 * "NAME (FILE:LINE)" and never hold ';' or control characters.
 */
#ifndef PYSTROBE_PROFILE_H
#define PYSTROBE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/htab.h"
#include "common/util.h"
#include "output/agg.h"
#include "symbolizer/names.h"

enum prof_kind {
    PK_PYTHON,   /* NAME (FILE:LINE) with a Python source file (.py, <frozen ...>, <string>) */
    PK_NATIVE,   /* a native function: NAME (FILE:LINE) with another file, or NAME (lib.so) */
    PK_MARK,     /* a marker, "[...]": [idle], [gil wait], [truncated] */
    PK_THREAD,   /* "thread NAME (TID)" */
    PK_PROCESS,  /* "process PID (COMMAND)" */
    PK_OTHER,    /* a bare name */
};

struct prof_frame {
    char *label;    /* as shown, owned */
    char *name;     /* NAME, owned */
    char *file;     /* FILE, owned; "" when the label has none */
    uint32_t line;  /* 0 when the label has none */
    uint8_t kind;   /* enum prof_kind */
};

struct prof_thread {
    char *name;     /* the thread's name, owned; NULL when unknown */
    int64_t tid;    /* OS thread id, 0 when unknown */
    uint32_t frame; /* the frame labelled "thread NAME (TID)" */
};

struct prof_stack {
    uint32_t thread; /* index into threads */
    uint32_t off;    /* first frame id in ids[] */
    uint32_t len;    /* frames, root first; includes the thread root when thread_roots */
    uint64_t count;
};

struct prof_meta {
    char *title;         /* what was profiled ("python3 app.py (pid 42)"), owned; NULL if unknown */
    int64_t start_ns;    /* wall-clock start (ns since the epoch), 0 if unknown */
    int64_t duration_ns; /* 0 if unknown */
    double rate;         /* samples per second, 0 if unknown */
    const char *mode;    /* "cpu" (threads on CPU), "wall" (all threads), "gil"; NULL if unknown */
};

struct profile {
    struct prof_frame *frames;
    size_t nframes, framecap;
    struct htab frame_index;
    struct prof_thread *threads; /* at least one once a stack is added */
    size_t nthreads, threadcap;
    struct prof_stack *stacks;
    size_t nstacks, stackcap;
    uint32_t *ids;
    size_t nids, idcap;
    struct htab stack_index;
    uint64_t total;      /* sum of all counts */
    int thread_roots;    /* every stack starts with its thread's frame */
    struct prof_meta meta;
    struct strbuf scratch; /* profile_frame's, reused */
};

void profile_init(struct profile *p);
void profile_release(struct profile *p);

/* Interns a frame by its label (cleaned of ';' and controls) and returns its id. */
uint32_t profile_frame(struct profile *p, const char *label);
/* The same for a label of n bytes, not NUL-terminated. */
uint32_t profile_frame_n(struct profile *p, const char *label, size_t n);
/* Registers a thread (name may be NULL) and returns its index; its frame is interned. */
uint32_t profile_thread(struct profile *p, const char *name, int64_t tid);
/*
 * Adds count samples of frames ids[0..n) (root first) in thread; equal
 * (thread, stack) pairs merge.  When p->thread_roots, ids[0] must be the
 * thread's frame.
 */
void profile_add(struct profile *p, uint32_t thread, const uint32_t *ids, size_t n, uint64_t count);

/* The frames of s without its thread root: what writers with threads of their own show. */
const uint32_t *profile_stack_frames(const struct profile *p, const struct prof_stack *s, size_t *n);

/* Splits a label into NAME, FILE and LINE and tells its kind (the fields are owned). */
void profile_parse_label(const char *label, struct prof_frame *out);

/*
 * The profile of a recording: one stack per aggregated (thread, stack),
 * rooted in the thread's frame when threads is set.  Each of the
 * aggregate's threads is a thread of the profile with a frame no other
 * thread of its process has ("thread NAME (TID #2)" for the second
 * labelled alike): as many thread roots as the aggregate has threads.
 */
void profile_from_agg(struct profile *p, const struct agg *a, const struct names *n, int threads);

/* Stacks sorted by their labels, root first (for writers whose output must not depend on order). */
uint32_t *profile_sorted(const struct profile *p);

#endif
