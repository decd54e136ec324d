/*
 * dump's text and JSON: the process (or core), its interpreter, who holds
 * the GIL, and each thread's stack, with what --locals and --source add
 * under each Python frame.  dump_greenlets.h adds the greenlets.
 */
#ifndef PYSTROBE_DUMP_PRINT_H
#define PYSTROBE_DUMP_PRINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct pyval;
struct session;
struct snapshot;
struct srcfiles;

/* What --locals and --source add under each frame. */
struct dump_extras {
    struct pyval *pv;       /* --locals, else NULL */
    struct srcfiles *src;   /* --source, else NULL */
    int context;            /* --source=N */
};

/* The dump of snapshot sn as text, appended to out. */
void dump_print_text(struct session *s, const struct snapshot *sn, const struct dump_extras *x,
                     struct strbuf *out);
/* The same as one JSON object (ending in "}\n"). */
void dump_print_json(struct session *s, const struct snapshot *sn, const struct dump_extras *x,
                     struct strbuf *out);

struct names;

/*
 * One frame of a greenlet's or a task's stack, as text: "func (file:line)",
 * or "(unreadable code object)" for id UINT32_MAX.
 */
void dump_print_frame(const struct names *nm, uint32_t id, struct strbuf *out);
/* The frame ids of raw frames raw[0..n) (UINT32_MAX where the code object is unreadable). */
struct session;
struct rawframe;
uint32_t *dump_print_frame_ids(struct session *s, const struct rawframe *raw, size_t n);
/* One frame as a JSON object {"function", "file", "line"} ({"function": null}: unreadable). */
void dump_print_frame_json(const struct names *nm, uint32_t id, struct strbuf *out);
/* The frames ids[0..n) as a JSON array of those objects. */
void dump_print_frames_json(const struct names *nm, const uint32_t *ids, size_t n,
                            struct strbuf *out);

/* Why a stack (status < 0) could not be read: "unreadable memory", ... */
const char *dump_print_stack_error(int status);

#endif
