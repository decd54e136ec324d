/* pystrobe convert and pystrobe diff: profiles from folded text into any format. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/diff.h"
#include "output/foldedin.h"
#include "output/outfile.h"
#include "output/profile.h"
#include "output/writers.h"
#include "profiler/commands/cli.h"

#define MAX_RATE 10000.0
#define MAX_TOP 100000L

struct conv_opts {
    const char *output, *format, *title;
    double rate;
    int reverse;
    long top;        /* diff --top N; -1 when not asked */
    char **inputs;
    int ninputs;
};

static int parse(const char *cmd, int argc, char **argv, struct conv_opts *o)
{
    enum { OPT_REVERSE = 256, OPT_TITLE, OPT_TOP };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"rate", required_argument, NULL, 'r'},
        {"title", required_argument, NULL, OPT_TITLE},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"top", required_argument, NULL, OPT_TOP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int is_diff = strcmp(cmd, "diff") == 0;
    int c;
    memset(o, 0, sizeof(*o));
    o->top = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, is_diff ? ":o:h" : ":o:f:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 'f':
            if (is_diff)
                return cli_bad_option(cmd, '?', argv);
            o->format = optarg;
            break;
        case 'r':
            if (is_diff)
                return cli_bad_option(cmd, '?', argv);
            if (parse_seconds(optarg, &o->rate) < 0 || !(o->rate > 0) || o->rate > MAX_RATE)
                return cli_usage("invalid rate '%s': expected the samples per second the input "
                                 "was recorded at, more than 0 and at most %.0f", optarg, MAX_RATE);
            break;
        case OPT_TITLE:
            o->title = optarg;
            break;
        case OPT_REVERSE:
            o->reverse = 1;
            break;
        case OPT_TOP: {
            long v;
            if (!is_diff)
                return cli_bad_option(cmd, '?', argv);
            if (parse_long(optarg, &v) < 0 || v < 1 || v > MAX_TOP)
                return cli_usage("invalid --top '%s': expected a number of frames from 1 to %ld",
                                 optarg, MAX_TOP);
            o->top = v;
            break;
        }
        case 'h':
            cmd_help(cmd);
            return -1;
        default:
            return cli_bad_option(cmd, c, argv);
        }
    }
    o->inputs = argv + optind;
    o->ninputs = argc - optind;
    if (is_diff && o->ninputs != 2)
        return cli_usage("diff needs two folded profiles: pystrobe diff BASE NEW [-o OUT.svg]");
    if (!is_diff && o->ninputs != 1)
        return cli_usage("convert needs one folded profile: pystrobe convert IN [-f FORMAT] [-o OUT]");
    return 0;
}

static int read_input(struct profile *p, const char *path)
{
    struct pserr err;
    profile_init(p);
    if (folded_read_file(p, path, &err) < 0)
        return cli_error(&err);
    if (p->total == 0)
        return cli_fail("%s holds no samples: nothing to draw", strcmp(path, "-") ? path : "stdin");
    return 0;
}

/* Writes p to -o (through a temporary file) or to stdout. */
static int emit(const struct conv_opts *o, const struct profile *p, enum out_format fmt,
                const struct out_opts *oo)
{
    struct pserr err;
    if (!o->output) {
        errno = 0;
        int ret = out_write(stdout, p, fmt, oo);
        if (ret == 0 && (fflush(stdout) != 0 || ferror(stdout)))
            ret = errno ? -errno : -EIO;
        if (ret < 0)
            return cli_fail("cannot write to stdout: %s", strerror(-ret));
        return 0;
    }
    struct outfile out = {0};
    if (outfile_open(&out, o->output, &err) < 0)
        return cli_error(&err);
    int ret = out_write(out.f, p, fmt, oo);
    if (ret < 0) {
        outfile_abort(&out);
        return cli_fail("cannot write %s: %s", o->output, strerror(-ret));
    }
    if (outfile_commit(&out, &err) < 0) {
        outfile_abort(&out);
        return cli_error(&err);
    }
    outfile_abort(&out);
    return 0;
}

static void set_title(struct profile *p, const char *title)
{
    free(p->meta.title);
    p->meta.title = xstrdup(title);
}

int cmd_convert(int argc, char **argv)
{
    struct conv_opts o;
    enum out_format fmt = OUT_FLAMEGRAPH;
    int ret = parse("convert", argc, argv, &o);
    if (ret != 0)
        return ret < 0 ? 0 : ret;
    cli_ignore_sigpipe();
    if (o.format) {
        if (out_format_by_name(o.format, &fmt) < 0)
            return cli_usage("unknown format '%s': use one of %s", o.format, out_format_list());
    } else if (o.output) {
        out_format_by_path(o.output, &fmt);
    }
    struct profile p;
    if ((ret = read_input(&p, o.inputs[0])) != 0) {
        profile_release(&p);
        return ret;
    }
    if (o.rate > 0)
        p.meta.rate = o.rate;
    set_title(&p, o.title ? o.title : strcmp(o.inputs[0], "-") ? path_base(o.inputs[0]) : "stdin");
    struct out_opts oo = {.reverse = o.reverse};
    ret = emit(&o, &p, fmt, &oo);
    profile_release(&p);
    return ret;
}

int cmd_diff(int argc, char **argv)
{
    struct conv_opts o;
    int ret = parse("diff", argc, argv, &o);
    if (ret != 0)
        return ret < 0 ? 0 : ret;
    cli_ignore_sigpipe();
    if (o.output) {
        enum out_format fmt;
        if (out_format_by_path(o.output, &fmt) == 0 && fmt != OUT_FLAMEGRAPH)
            return cli_usage("diff writes a flame graph (SVG): give -o a name ending in .svg");
    }
    struct profile raw[2], p[2];
    int nread = 0;
    for (; nread < 2; nread++)
        if ((ret = read_input(&raw[nread], o.inputs[nread])) != 0)
            break;
    if (ret != 0) {
        for (int i = 0; i <= nread && i < 2; i++)
            profile_release(&raw[i]);
        return ret;
    }
    for (int i = 0; i < 2; i++) {
        profile_init(&p[i]);
        diff_normalize(&p[i], &raw[i]);
        profile_release(&raw[i]);
    }
    if (o.top > 0) {
        struct strbuf sb = STRBUF_INIT;
        diff_top_text(&p[0], &p[1], (size_t)o.top, &sb);
        int e = cli_write_stdout(sb.buf, sb.len);
        sb_release(&sb);
        if (e)
            ret = cli_fail("cannot write to stdout: %s", strerror(e));
    }
    if (ret == 0 && (o.top < 0 || o.output)) {
        struct strbuf t = STRBUF_INIT;
        if (o.title)
            sb_adds(&t, o.title);
        else
            sb_addf(&t, "%s vs %s", path_base(o.inputs[1]), path_base(o.inputs[0]));
        set_title(&p[1], t.buf);
        sb_release(&t);
        struct out_opts oo = {.reverse = o.reverse, .base = &p[0]};
        ret = emit(&o, &p[1], OUT_FLAMEGRAPH, &oo);
    }
    profile_release(&p[0]);
    profile_release(&p[1]);
    return ret;
}
