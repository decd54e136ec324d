/* JSON text: string escaping for writers that emit JSON. */
#ifndef PYSTROBE_JSON_H
#define PYSTROBE_JSON_H

#include "common/util.h"

/* Appends s (UTF-8) as a quoted JSON string, escaping what JSON requires. */
void json_string(struct strbuf *out, const char *s);

/* Appends a frame's line: the number, or null when it could not be told (< 0). */
void json_line(struct strbuf *out, int line);

#endif
