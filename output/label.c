#include "output/label.h"

#include <inttypes.h>
#include <string.h>

void label_clean(const char *s, struct strbuf *out)
{
    size_t start = out->len;
    sb_add_clean(out, s, strlen(s));
    for (size_t i = start; i < out->len; i++)
        if (out->buf[i] == ';')
            out->buf[i] = '?';
}

void label_frame(const struct names *n, uint32_t frame, struct strbuf *out)
{
    const struct names_frame *fr = names_frame_get(n, frame);
    const struct names_func *fn = names_func_get(n, fr->func);
    label_clean(names_str_get(n, fn->name), out);
    if (fn->file == NAMES_EMPTY && fr->line == 0)
        return;
    sb_adds(out, " (");
    label_clean(names_str_get(n, fn->file), out);
    label_line(fr->line, out);
    sb_addc(out, ')');
}

void label_line(int line, struct strbuf *out)
{
    if (line >= 0)
        sb_addf(out, ":%d", line);
    else
        sb_adds(out, ":?");
}

void label_thread(const struct agg_thread *t, struct strbuf *out)
{
    label_thread_nth(t, 1, out);
}

void label_thread_nth(const struct agg_thread *t, unsigned nth, struct strbuf *out)
{
    sb_adds(out, "thread ");
    if (t->name) {
        label_clean(t->name, out);
        sb_addc(out, ' ');
    }
    if (t->tid > 0)
        sb_addf(out, "(%d", (int)t->tid);
    else
        sb_addf(out, "(0x%" PRIx64, t->ident);
    if (nth >= 2)
        sb_addf(out, " #%u", nth);
    sb_addc(out, ')');
}

void label_process(pid_t pid, const char *command, struct strbuf *out)
{
    sb_addf(out, "process %d", (int)pid);
    if (command && *command) {
        sb_adds(out, " (");
        label_clean(command, out);
        sb_addc(out, ')');
    }
}
