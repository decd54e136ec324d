#include "output/json.h"

#include <string.h>

void json_string(struct strbuf *out, const char *s)
{
    const unsigned char *end = (const unsigned char *)s + strlen(s);
    sb_addc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_adds(out, "\\\""); break;
        case '\\': sb_adds(out, "\\\\"); break;
        case '\n': sb_adds(out, "\\n"); break;
        case '\r': sb_adds(out, "\\r"); break;
        case '\t': sb_adds(out, "\\t"); break;
        default:
            /* '<' too, so that the text is safe inside HTML script blocks. */
            if (*p < 0x20 || *p == 0x7f || *p == '<') {
                sb_addf(out, "\\u%04x", *p);
            } else if (*p >= 0x80) {
                /* Controls and bidi overrides are escaped: JSON shown on a
                 * terminal cannot reorder it.  Bytes that are not UTF-8 pass. */
                size_t len = (size_t)(end - p);
                uint32_t c;
                size_t k = text_char((const char *)p, len, &c);
                if (c == '?') {
                    uint32_t cp = k == 2 ? (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu)
                                         : (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
                    sb_addf(out, "\\u%04x", cp);
                } else {
                    sb_add(out, (const char *)p, k);
                }
                p += k - 1;
            } else {
                sb_addc(out, (char)*p);
            }
        }
    }
    sb_addc(out, '"');
}

void json_line(struct strbuf *out, int line)
{
    if (line >= 0)
        sb_addf(out, "%d", line);
    else
        sb_adds(out, "null");
}
