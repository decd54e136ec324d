#include "output/json.h"

#include <string.h>

void json_string(struct strbuf *out, const char *s)
{
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
            if (*p < 0x20 || *p == 0x7f || *p == '<')
                sb_addf(out, "\\u%04x", *p);
            else
                sb_addc(out, (char)*p);
        }
    }
    sb_addc(out, '"');
}
