/* Frame and thread labels as every writer shows them: "NAME (FILE:LINE)". */
#ifndef PYSTROBE_LABEL_H
#define PYSTROBE_LABEL_H

#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "output/agg.h"
#include "symbolizer/names.h"

/*
 * Appends the label of frame id to out: "NAME (FILE:LINE)", or NAME alone
 * for a synthetic frame; LINE is '?' when it could not be told
 * (NAMES_LINE_UNKNOWN: an invalid line table, an unreadable code object).  Characters that would break a line-based format
 * or fool a terminal (';', bytes that are not UTF-8, and what text_unsafe
 * refuses: controls, bidi overrides...) are replaced by '?'.
 */
void label_frame(const struct names *n, uint32_t frame, struct strbuf *out);

/* Appends ":LINE", or ":?" for a line that could not be told (< 0: NAMES_LINE_UNKNOWN). */
void label_line(int line, struct strbuf *out);

/* Appends "thread NAME (TID)" for a thread of the aggregate ("(0xIDENT)"
 * when its tid is unknown, no NAME when it has none). */
void label_thread(const struct agg_thread *t, struct strbuf *out);
/* The same for the nth thread of a process labelled alike (nth >= 2):
 * "thread NAME (TID #N)"; nth < 2 is label_thread's. */
void label_thread_nth(const struct agg_thread *t, unsigned nth, struct strbuf *out);

/* Appends "process PID (COMMAND)", or "process PID" when command is NULL or empty. */
void label_process(pid_t pid, const char *command, struct strbuf *out);

/* Appends s with ';' and what label_frame replaces so replaced by '?'. */
void label_clean(const char *s, struct strbuf *out);

#endif
