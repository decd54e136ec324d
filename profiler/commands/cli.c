#include "profiler/commands/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vreport(const char *fmt, va_list ap)
{
    struct strbuf sb = STRBUF_INIT;
    sb_adds(&sb, "pystrobe: ");
    sb_vaddf(&sb, fmt, ap);
    /* One line, always. */
    for (size_t i = 0; i < sb.len; i++)
        if (sb.buf[i] == '\n')
            sb.buf[i] = ' ';
    sb_addc(&sb, '\n');
    fputs(sb.buf, stderr);
    sb_release(&sb);
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return 1;
}

int cli_write_stdout(const void *buf, size_t len)
{
    errno = 0;
    if (len && fwrite(buf, 1, len, stdout) != len)
        return errno ? errno : EIO;
    /* A write that failed before (its buffer dropped) leaves the error flag, not a failing flush. */
    if (fflush(stdout) != 0 || ferror(stdout))
        return errno ? errno : EIO;
    return 0;
}

void cli_ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

int cli_error(const struct pserr *e)
{
    return cli_fail("%s", e->msg);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    char shortopt[3] = {'-', (char)optopt, '\0'};
    /* Long-only options have values past the characters: shown as typed. */
    if (optopt > 0 && optopt < 128 && (!arg || strncmp(arg, "--", 2) == 0 || !strchr(arg, optopt)))
        arg = shortopt;
    if (c == ':')
        return cli_usage("option '%s' needs a value; see 'pystrobe help %s'", arg, cmd);
    return cli_usage("unknown option '%s' for '%s'; see 'pystrobe help %s'", arg, cmd, cmd);
}

int cli_parse_pid(const char *arg, pid_t *pid)
{
    long v;
    if (parse_long(arg, &v) < 0 || v <= 0 || v > 0x7fffffffL)
        return cli_usage("invalid process id '%s': expected a positive number", arg);
    *pid = (pid_t)v;
    return 0;
}

static const char overview[] =
    "usage: pystrobe <command> [options]\n"
    "\n"
    "Sample and inspect running CPython processes (2.7, 3.6-3.15) without stopping them.\n"
    "\n"
    "commands:\n"
    "  record   sample a process's Python stacks into a profile\n"
    "  dump     print every thread's Python stack, once\n"
    "  top      a live view of the functions taking the most samples\n"
    "  locks    where greenlets, asyncio tasks and threads wait (locks, queues), ranked\n"
    "  convert  turn folded stacks into a flame graph, speedscope or pprof file\n"
    "  diff     compare two profiles: a differential flame graph\n"
    "  help     show the help of a command\n"
    "\n"
    "  pystrobe --version | --help | help COMMAND\n";

static const char record_help[] =
    "usage: pystrobe record [options] (-p PID | -- COMMAND [ARGS...])\n"
    "\n"
    "Samples every thread's Python stack at a fixed rate and writes a profile.\n"
    "The target is never stopped nor written to.\n"
    "\n"
    "  -p, --pid PID         the process to sample\n"
    "  -- COMMAND [ARGS...]  run COMMAND and sample it until it exits\n"
    "  -o, --output FILE     where the profile goes (- for stdout)\n"
    "                        (default pystrobe-PID-YYYYmmddTHHMMSS.EXT)\n"
    "  -f, --format FORMAT   flamegraph (interactive SVG, the default), folded\n"
    "                        (flamegraph.pl, inferno, speedscope read it), speedscope\n"
    "                        (JSON) or pprof (gzipped profile.proto); without -f, taken\n"
    "                        from -o's extension (.svg, .folded/.txt, .json, .pb.gz/.pprof)\n"
    "  -r, --rate HZ         samples per second (default 100)\n"
    "  -d, --duration SECS   stop after SECS seconds, whatever the rate (default: when\n"
    "                        the target exits, or on Ctrl-C / SIGTERM / SIGHUP, which\n"
    "                        write the profile; SIGUSR1 and SIGUSR2 are ignored)\n"
    "      --idle            every thread, not only those running (wall clock);\n"
    "                        samples of threads not running end in [idle] or\n"
    "                        [gil wait]\n"
    "      --gil             only the thread holding the GIL\n"
    "      --threads         root each stack in its thread: 'thread NAME (TID)'\n"
    "      --thread REGEX    only threads whose name matches REGEX (POSIX extended;\n"
    "                        repeatable)\n"
    "      --tid TID         only the thread with this Linux thread id (repeatable;\n"
    "                        with --thread: threads matching either)\n"
    "      --subprocesses    also sample the target's Python child processes, each\n"
    "                        stack rooted in 'process PID (COMMAND)'\n"
    "      --native          add each thread's C frames (threads are stopped one at\n"
    "                        a time while read: the summary says for how long)\n"
    "      --greenlets       also count every greenlet (gevent, eventlet) at each\n"
    "                        sample: its stack under 'greenlet parked' or 'greenlet\n"
    "                        running', so the flame graph shows where they wait\n"
    "      --greenlet-rate HZ  count greenlets this often instead (each census then\n"
    "                        counts as many samples as it stands for)\n"
    "      --tasks           also count every waiting asyncio task (3.7+) at each\n"
    "                        sample, its await stack under 'task waiting' and under\n"
    "                        the tasks that await it; a running task's samples go\n"
    "                        under its awaiters too\n"
    "      --task-rate HZ    count tasks this often instead (censuses are also put off\n"
    "                        to keep them under 10% of a CPU)\n"
    "      --function        aggregate by function (its first line), not by line\n"
    "      --reverse         flame graph as an icicle: roots at the top\n"
    "  -h, --help            this help\n";

static const char dump_help[] =
    "usage: pystrobe dump [options] (-p PID | --core CORE [--exe PYTHON] [--root DIR])\n"
    "\n"
    "Prints every thread's Python stack, most recent call first, without stopping\n"
    "the process, or as it was in a core file.\n"
    "\n"
    "  -p, --pid PID   the process to inspect\n"
    "      --core CORE a core file (gcore's, or the kernel's) to inspect instead\n"
    "      --exe FILE  the core's executable, when not where the core says; files\n"
    "                  the core names and that are gone are looked for beside it\n"
    "      --root DIR  the file system the core's process saw (a container's, a\n"
    "                  chroot's): the files the core names, their debug files and\n"
    "                  the sources are looked for under DIR first\n"
    "      --json      print JSON instead of text\n"
    "      --native    each thread's C frames too, in place (stops each thread\n"
    "                  briefly; a core's threads are unwound as saved)\n"
    "      --locals    each frame's arguments and local variables, name = value\n"
    "      --source[=N]\n"
    "                  each frame's current line, or N lines of context each side;\n"
    "                  only files the target itself may read (a core: its owner)\n"
    "      --source-root DIR\n"
    "                  read source files under DIR (default: /proc/PID/root, or\n"
    "                  for a core the paths its code objects name, under --root)\n"
    "      --greenlets every greenlet (gevent, eventlet) with its state and stack,\n"
    "                  then identical stacks grouped with counts (3.11, greenlet 2.0.2)\n"
    "      --tasks     every asyncio task (3.7+: every event loop's) with its name,\n"
    "                  state, await stack, what it waits on and who awaits it, the\n"
    "                  await tree, then identical stacks grouped with counts\n"
    "  -h, --help      this help\n";

static const char convert_help[] =
    "usage: pystrobe convert IN [-f FORMAT] [-o OUT]\n"
    "\n"
    "Reads folded stacks (pystrobe's, flamegraph.pl's, py-spy's raw output, austin's\n"
    "collapsed output; '-' for stdin) and writes them in another format.\n"
    "\n"
    "  -o, --output FILE     where the result goes (default: stdout)\n"
    "  -f, --format FORMAT   flamegraph (the default), folded, speedscope or pprof;\n"
    "                        without -f, taken from -o's extension\n"
    "  -r, --rate HZ         the rate IN was sampled at (gives pprof and speedscope\n"
    "                        times, not only counts)\n"
    "      --title TEXT      the title shown (default: IN's file name)\n"
    "      --reverse         flame graph as an icicle: roots at the top\n"
    "  -h, --help            this help\n";

static const char diff_help[] =
    "usage: pystrobe diff BASE NEW [-o OUT.svg] [--top N]\n"
    "\n"
    "Compares two folded profiles (e.g. two benchmark runs).  Writes a flame graph\n"
    "of NEW's stacks colored by how much each frame's share of the samples grew\n"
    "(red) or shrank (blue) from BASE.  Threads and processes are matched by name,\n"
    "not by id.\n"
    "\n"
    "  -o, --output FILE   where the SVG goes (default: stdout, unless --top alone)\n"
    "      --top N         print the N frames whose share changed most (self and\n"
    "                      total, in percent of each profile's samples)\n"
    "      --title TEXT    the title shown (default: 'NEW vs BASE')\n"
    "      --reverse       icicle: roots at the top\n"
    "  -h, --help          this help\n";

static const char top_help[] =
    "usage: pystrobe top [options] (-p PID | -- COMMAND [ARGS...])\n"
    "\n"
    "A live view, redrawn each second, of the lines (or functions) taking the most\n"
    "samples.  OWN% is the share of the last second's samples in which a line was\n"
    "the one running, TOTAL% the share in which it was on the stack (once however\n"
    "deep it recurses); OWN(s) and TOTAL(s) are the same as seconds since the\n"
    "start (samples / rate).  Below: each thread's state (running, idle or gil\n"
    "wait; 'gil' marks the thread holding it), its CPU use over the last second\n"
    "and its share of the samples; above: the achieved rate and the errors\n"
    "(samples dropped: torn stacks, missed ticks...).  On a terminal the view takes\n"
    "the whole screen and fits its width; otherwise a plain report of the top 10 is\n"
    "printed each second, without escape sequences.  The target is never stopped.\n"
    "\n"
    "  -p, --pid PID         the process to watch\n"
    "  -- COMMAND [ARGS...]  run COMMAND and watch it until it exits\n"
    "  -r, --rate HZ         samples per second (default 100)\n"
    "  -d, --duration SECS   stop after SECS seconds (default: on 'q', Ctrl-C or\n"
    "                        SIGTERM, or when the target exits)\n"
    "      --idle            include threads that are not running (their samples\n"
    "                        count toward the functions they wait in)\n"
    "      --gil             only the thread holding the GIL\n"
    "      --function        start with functions (at their first line), not lines\n"
    "      --thread REGEX    only threads whose name matches (repeatable)\n"
    "      --tid TID         only this thread (repeatable)\n"
    "      --subprocesses    also watch the target's Python descendants\n"
    "      --native          add C frames (threads are stopped briefly while read)\n"
    "  -h, --help            this help\n"
    "\n"
    "keys: o sort by own share (the default), t by total share, n by name;\n"
    "l switch between lines and functions; p or space pause the display (sampling\n"
    "goes on); r reset the counts (and the time, samples and errors); q or Ctrl-C\n"
    "quit.\n";

static const char locks_help[] =
    "usage: pystrobe locks [options] (-p PID | -- COMMAND [ARGS...])\n"
    "\n"
    "Samples for a while, then ranks the places where the target's greenlets\n"
    "(gevent, eventlet) are parked, where its asyncio tasks wait, and where its\n"
    "threads are blocked on a lock, by the time spent waiting there.  A site is\n"
    "the program's own frame with the call it made into the waiting code (gevent,\n"
    "eventlet, asyncio, threading, queue):\n"
    "`Semaphore.acquire (eventlet/semaphore.py:115)` <- `take (app.py:5)`.  Each\n"
    "site shows its total wait (greenlet-, task- or thread-seconds), how many\n"
    "waited there on average, its share, and the stack that most often leads to\n"
    "it.  The target is never stopped.\n"
    "\n"
    "  -p, --pid PID         the process to look at\n"
    "  -- COMMAND [ARGS...]  run COMMAND and look at it until it exits\n"
    "  -d, --duration SECS   how long to sample (default 5 s; with a command: until\n"
    "                        it exits)\n"
    "  -r, --rate HZ         samples (and greenlet and task censuses) per second\n"
    "                        (default 100)\n"
    "  -n, --top N           the N largest sites of each kind (default 10)\n"
    "      --thread REGEX    only threads whose name matches (repeatable)\n"
    "      --tid TID         only this thread (repeatable)\n"
    "      --function        sites by function, not by line\n"
    "      --json            the report as JSON\n"
    "  -h, --help            this help\n";

int cmd_help(const char *sub)
{
    if (!sub) {
        fputs(overview, stdout);
        return 0;
    }
    if (!strcmp(sub, "record")) {
        fputs(record_help, stdout);
        return 0;
    }
    if (!strcmp(sub, "dump")) {
        fputs(dump_help, stdout);
        return 0;
    }
    if (!strcmp(sub, "convert")) {
        fputs(convert_help, stdout);
        return 0;
    }
    if (!strcmp(sub, "diff")) {
        fputs(diff_help, stdout);
        return 0;
    }
    if (!strcmp(sub, "top")) {
        fputs(top_help, stdout);
        return 0;
    }
    if (!strcmp(sub, "locks")) {
        fputs(locks_help, stdout);
        return 0;
    }
    return cli_usage("no help for '%s': unknown command", sub);
}
