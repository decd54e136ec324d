/* JSON text: string escaping for writers that emit JSON. */
#ifndef PYSTROBE_JSON_H
#define PYSTROBE_JSON_H

#include "common/util.h"

/* Appends s (UTF-8) as a quoted JSON string, escaping what JSON requires. */
void json_string(struct strbuf *out, const char *s);

#endif
