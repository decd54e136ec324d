"""`make bench`: what pystrobe costs, per interpreter, next to austin.

For each interpreter found (pyenv's versions, Debian's /usr/bin/python3;
tests/interps.py finds them for the tests too), one table per
measurement, one row per interpreter:

1. Cost per sample.  bench/workloads/deep.py (a busy leaf under exactly
   DEPTH frames) recorded at BENCH_RATE Hz for BENCH_SECONDS; pystrobe's own
   account of its CPU time and process_vm_readv calls per sample, next to
   one bare 8-byte process_vm_readv measured in the same run against the
   same target (build/bench/readv_cost), so that machines compare, and
   the CPU of the same timer loop sampling nothing (build/bench/tick_cost):
   what is left, "work", is what the sampling itself costs; and the walks
   taken again because they were judged torn, per sample.  Also
   the whole process's CPU time (getrusage: start-up, attach and output
   included) per sample, for pystrobe and for austin at the same interval.
2. Highest sustained rate.  deep.py at depth 50 recorded at 1, 2, 5 and
   10 kHz (record's maximum) for a couple of seconds each, upwards until a
   rate is not sustained twice in a row: sustained means an achieved rate
   of at least 95% of the requested one and "behind schedule" drops of at
   most 1% of the requested ticks, both read from pystrobe's summary.
3. Target slowdown.  bench/workloads/work.py does a fixed amount of work
   (calibrated once to last about BENCH_WORK_SECONDS) and reports its own
   duration; it runs unprofiled, under `pystrobe record` at 100 Hz and
   1 kHz and under austin at the same rates, interleaved, BENCH_RUNS times;
   medians, and each as a ratio to the unprofiled median.
4. Latency.  Against a busy deep.py: "attach" is the wall time of
   `pystrobe record -d 0.01 -r 1000 -p PID` minus the 0.01 s it records
   (process start, attach, the first samples, writing, exit); "dump" the
   wall time of `pystrobe dump -p PID`; austin's is the time from spawning
   `austin -p PID` to its first sample line on stdout (a pseudo-terminal,
   so line-buffered).  Medians of interleaved rounds.
5. Peak memory.  bench/workloads/many.py (nearly every sample a stack not
   seen before) recorded at 1 kHz for BENCH_RSS_SECONDS; the maximum RSS
   of the profiler's process, from getrusage when it is reaped.
6. Consistency.  bench/workloads/fib.py (fast recursion under a known
   stack) recorded at 1 kHz; every sampled stack is checked with
   bench/stackcheck.py: "bad" samples have a shape the program cannot
   have; "torn" are the samples pystrobe itself dropped as torn (after
   taking each walk again up to 8 times), "retries" those walks taken
   again.  The target runs on one CPU and the profiler on another; then
   both on one CPU (the target cannot run while it is read, and nothing
   tears), for the truth that the mean fib depth of the samples kept and
   their depth histogram are set against.
7. Threads.  bench/workloads/threads.py N: N threads, one busy in a
   Python loop and N-1 asleep in time.sleep, each under 10 frames, and
   the main thread asleep too; N is each of BENCH_THREADS (1, 20, 200).
   Each recorded -p at 100 Hz for BENCH_THREAD_SECONDS in the three
   modes: the default (threads on a CPU), --idle (every thread; those
   asleep get their state read from /proc) and --gil; with the most
   threads, --idle at 1 kHz too.  From pystrobe's summary: samples
   (stacks), the achieved rate, "behind schedule" drops, CPU time and
   process_vm_readv calls per tick, CPU per stack sampled, and CPU per
   tick as a ratio to 1 thread's in the same mode (all of them including
   the first tick, which walks every thread's stack); from the profile, the
   share of --idle's samples marked [idle] or [gil wait].  A row without
   samples, or --idle without marks, is noted (a figure, not a failure).
   Then (not in quick mode) the highest rate sustained, as in 2, with
   the most threads and --idle, over 100, 200, 500, 1000 and 2000 Hz.
8. austin next to pystrobe: the figures above as ratios austin/pystrobe,
   where austin (on PATH, or BENCH_AUSTIN) can sample the interpreter; a
   note says why not elsewhere.
9. Native frames (--native, which stops each thread while it unwinds
   it).  Against threads.py 20: the wall time of `pystrobe dump -p PID`,
   of `pystrobe dump --native -p PID` and of gdb's `thread apply all
   py-bt` (where gdb and CPython's python-gdb.py are there; a note says
   why not elsewhere), medians of BENCH_NATIVE_RUNS interleaved rounds,
   as ratios to the plain dump, with the holds dump --native reports;
   `record --native -p` at 100 Hz for BENCH_NATIVE_SECONDS next to plain
   `record` (the default mode and --idle): samples, achieved rate, holds,
   pause and CPU per tick; and work.py's slowdown as in 3, unprofiled, under plain
   `record -r 100` and under `record --native -r 100` (whose summaries
   give the same figures for a CPU-bound target).  Quick mode: one
   round, no gdb.
10. Greenlets (record --greenlets), where the interpreter has gevent (a
   note says why not elsewhere).  bench/workloads/greenlets.py N: N
   greenlets parked on a gevent Semaphore, an Event and in gevent.sleep
   (three stacks), 3 more at work; N is each of BENCH_GREENLETS (100,
   1000, 10000).  `record --greenlets -p -r 100` for BENCH_GREENLET_SECONDS
   next to plain `record`: censuses, achieved rate, CPU and reads per
   census and per tick, the ratio to plain record's per tick; the first
   census alone (the whole walk) from `--greenlet-rate 1` over half a
   second (one census), and from it the censuses after the first; `dump
   --greenlets --json`'s wall and CPU time and its greenlet_stats (reads,
   objects), BENCH_GREENLET_RUNS times each.  Then the target's slowdown:
   greenlets.py N --work ITEMS (items through a gevent Queue, calibrated
   as in 3) unprofiled, under plain `record -p -r 100` and under `record
   --greenlets -p -r 100`, attached before the work, interleaved BENCH_RUNS
   times; medians as ratios to the unprofiled one.  A run of record
   --greenlets that took no census, or a dump that gave up, because the
   collector's lists changed under every walk, is run again (up to 5
   times) and counted in a note.  Quick mode: 100 greenlets, half a
   second each, one run.

11. Shares.  bench/workloads/truth.py: 40 ms slices of Python reached from
   C, a plain loop, generators, deep and fast recursion and C calls that
   let the GIL go, in turn, each timed by the target itself; recorded -p
   at each of BENCH_SHARE_RATES for BENCH_SHARE_SECONDS
   (bench/truthcheck.py): each kind's share of the time as the target
   measured it, next to pystrobe's error in points (its samples in
   slice_KIND over its samples in any slice, less the truth), the worst
   error, walks taken again and ticks dropped as torn.  Quick mode: 1 kHz
   for 1.5 s.
12. Asyncio tasks (record --tasks), on Python 3.7+ (a row says SKIP
   elsewhere).  bench/workloads/tasks.py N: N tasks waiting, half on one
   asyncio.Lock (held for ever by another task) under 8 frames of their
   own coroutines, three in ten on an asyncio.Event under 5, the rest in
   asyncio.sleep under 2 (three stacks), 3 more at work (a little
   arithmetic, then asyncio.sleep(0)); N is each of BENCH_TASKS (100,
   1000, 10000).  `record --tasks -p -r 100` for BENCH_TASK_SECONDS next
   to plain `record`: tasks per census, censuses, their achieved rate and
   how often one was put off (censuses are kept under 10% of a CPU), CPU
   and reads per census, CPU per tick and its ratio to plain record's,
   tasks whose await chain was unreadable; `dump --tasks --json`'s wall
   and CPU time, the tasks in its JSON and its task_stats' reads, and on
   3.14+ the wall time of the interpreter's own `python3.X -m asyncio
   pstree PID` next to it (for a Debian root's interpreter, e.g.
   BENCH_VERSIONS=sid-3.14 as root, run in the target's mount namespace
   and root with nsenter; its failing is a note), BENCH_TASK_RUNS times
   each, interleaved.  Then the target's
   slowdown: tasks.py N --work ITEMS (items through an asyncio.Queue to 4
   consumer tasks, calibrated as in 3) unprofiled, under plain `record -p
   -r 100` and under `record --tasks -p -r 100`, attached before the work,
   interleaved BENCH_RUNS times; medians as ratios to the unprofiled one.
   A run of record --tasks that took no census (every one failed) is run
   again (up to 5 times) and counted in a note.  Quick mode: 100 tasks,
   half a second each, one run.

Sections: `bench/run.py --only threads,rate` (or BENCH_ONLY) runs some:
cost (1), rate (2), slowdown (3), latency (4), rss (5), consistency (6),
threads (7), native (9), greenlets (10), shares (11), tasks (12); austin's
table comes with any of 1 and 3-6.

Knobs: BENCH_VERSIONS (prefixes, e.g. "3.8,3.12,debian"), BENCH_DEPTHS,
BENCH_SECONDS, BENCH_RATE, BENCH_PYSTROBE (another build), BENCH_AUSTIN
(path, or "none"), BENCH_RATE_SECONDS, BENCH_WORK_SECONDS, BENCH_RUNS,
BENCH_LATENCY_RUNS, BENCH_RSS_SECONDS, BENCH_THREADS (e.g. "1,20,200"),
BENCH_THREAD_SECONDS, BENCH_NATIVE_SECONDS, BENCH_NATIVE_RUNS, BENCH_GDB
(path, or "none"), BENCH_GREENLETS (e.g. "100,1000"), BENCH_GREENLET_SECONDS,
BENCH_GREENLET_RUNS, BENCH_SHARE_SECONDS, BENCH_SHARE_RATES (e.g.
"100,1000"), BENCH_TASKS (e.g. "100,1000"), BENCH_TASK_SECONDS,
BENCH_TASK_RUNS; BENCH_JSON=PATH writes everything
measured and the environment (CPU, kernel, load, pystrobe's commit) as JSON.
BENCH_QUICK=1 (for `make check`): 2-3 interpreters, depth 50, about a
second per measurement (half a second per threads row, no rate search
there), a short memory run; it asserts nothing about the timings, only
that every measurement produced them, and (in any mode) that no stack
pystrobe kept of fib.py is one the program cannot have
(bench/stackcheck.py).  The exit status is 1 when any pystrobe measurement
failed (a crash, a timeout, output that does not parse, an impossible
stack kept) and 0 otherwise; austin or gdb failing is a note, not a failure.
"""
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WORKLOADS = os.path.join(BENCH, "workloads")
sys.path.insert(0, BENCH)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import stackcheck  # noqa: E402
import truthcheck  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tests"))
from interps import discover  # noqa: E402  (one discovery for e2e, stress and bench)


def env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "no", "false")


def env_num(name, default, kind=float):
    v = os.environ.get(name, "").strip()
    return kind(v) if v else default


QUICK = env_flag("BENCH_QUICK")
PYSTROBE = os.environ.get("BENCH_PYSTROBE") or os.path.join(ROOT, "pystrobe")
READV_COST = os.path.join(ROOT, "build", "bench", "readv_cost")
TICK_COST = os.path.join(ROOT, "build", "bench", "tick_cost")
DEPTHS = [int(d) for d in os.environ.get("BENCH_DEPTHS", "50" if QUICK else "10,50,200").split(",")]
SECONDS = env_num("BENCH_SECONDS", 1.0 if QUICK else 3.0)
RATE = env_num("BENCH_RATE", 500, int)
RATE_LADDER = [1000, 2000, 5000, 10000]
RATE_SECONDS = env_num("BENCH_RATE_SECONDS", 0.5 if QUICK else 2.0)
WORK_SECONDS = env_num("BENCH_WORK_SECONDS", 0.5 if QUICK else 2.0)
RUNS = env_num("BENCH_RUNS", 1 if QUICK else 5, int)
LATENCY_RUNS = env_num("BENCH_LATENCY_RUNS", 3 if QUICK else 9, int)
RSS_SECONDS = env_num("BENCH_RSS_SECONDS", 1.0 if QUICK else 30.0)
THREAD_COUNTS = [int(n) for n in os.environ.get("BENCH_THREADS", "1,20,200").split(",")]
THREAD_SECONDS = env_num("BENCH_THREAD_SECONDS", 0.5 if QUICK else 3.0)
THREAD_DEPTH = 10
THREAD_RATE = 100
THREAD_FAST_RATE = 1000
THREAD_MODES = [("cpu", []), ("idle", ["--idle"]), ("gil", ["--gil"])]
THREAD_LADDER = [100, 200, 500, 1000, 2000]
NATIVE_THREADS = 20
NATIVE_RATE = 100
NATIVE_SECONDS = env_num("BENCH_NATIVE_SECONDS", 1.0 if QUICK else 3.0)
NATIVE_LATENCY_RUNS = env_num("BENCH_NATIVE_RUNS", 1 if QUICK else 5, int)
# record -p against the threads: each with --native and without, in the
# default mode (the busy thread alone) and with --idle (all 21 stopped per tick).
NATIVE_RECORD_MODES = [("plain", []), ("native", ["--native"]), ("idle", ["--idle"]),
                       ("native_idle", ["--native", "--idle"])]
GREENLET_COUNTS = [int(n) for n in os.environ.get("BENCH_GREENLETS", "100" if QUICK else "100,1000,10000").split(",")]
GREENLET_SECONDS = env_num("BENCH_GREENLET_SECONDS", 0.5 if QUICK else 3.0)
GREENLET_RUNS = env_num("BENCH_GREENLET_RUNS", 1 if QUICK else 3, int)
GREENLET_RATE = 100     # record's default
GREENLET_FIRST_SECONDS = 0.5   # at --greenlet-rate 1: one census, the first (the whole walk)
GREENLET_TRIES = 5   # runs of record --greenlets or dump --greenlets while every walk is given up
GREENLET_SETTLE = 0.25 if QUICK else 0.5   # from record -p to the work: it attaches, takes its first census
TASK_COUNTS = [int(n) for n in os.environ.get("BENCH_TASKS", "100" if QUICK else "100,1000,10000").split(",")]
TASK_SECONDS = env_num("BENCH_TASK_SECONDS", 0.5 if QUICK else 3.0)
TASK_RUNS = env_num("BENCH_TASK_RUNS", 1 if QUICK else 3, int)
TASK_RATE = 100         # record's default
TASK_TRIES = 5          # runs of record --tasks while every census fails
TASK_SETTLE = 0.25 if QUICK else 0.5   # from record -p to the work: it attaches, takes its first census
TASK_SINCE = (3, 7)     # asyncio.run; record --tasks reads 3.7+
TASK_PSTREE_SINCE = (3, 14)   # python3.X -m asyncio pstree PID
SECTIONS = ["cost", "rate", "slowdown", "latency", "rss", "consistency", "threads", "native", "greenlets",
            "shares", "tasks"]
SHARE_SECONDS = env_num("BENCH_SHARE_SECONDS", 1.5 if QUICK else 5.0)
SHARE_RATES = [int(r) for r in os.environ.get("BENCH_SHARE_RATES", "1000" if QUICK else "100,1000").split(",")]
SHARE_KINDS = ("implicit", "plain", "gen", "deep", "fib", "ccall")
AUSTIN_SECTIONS = ["cost", "slowdown", "latency", "rss", "consistency"]
LATENCY_RECORD = 0.01   # what the attach measurement records, subtracted
SUSTAINED_RATE = 0.95   # achieved / requested
SUSTAINED_BEHIND = 0.01  # behind-schedule drops / requested ticks
FIB_DEPTH, FIB_N = 20, 18
AUSTIN_T = "1000"       # austin -t: how long it may look for the interpreter (ms)


class Failed(Exception):
    """A measurement could not be made: pystrobe crashed, hung or printed what does not parse."""


class AustinFailed(Exception):
    """austin itself could not sample: a note, not a failure of the benchmark."""


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes
#
# Every process is started in a session of its own (so that a Ctrl-C at
# the terminal reaches only this script), registered in LIVE, then killed
# with its whole process group and reaped, by cleanup() if nothing else (a
# `pystrobe record -- python ...` takes its python along).  A group is
# only signalled while one of its members is still unreaped by us, so its
# id cannot have been reused.

LIVE = {}  # pid -> Proc


class Proc(object):
    """A child of ours: its pid, its process group, a pidfd to wait on."""

    def __init__(self, pid, pgid, popen=None):
        self.pid, self.pgid, self.popen = pid, pgid, popen
        self.returncode = None
        self.fd = None
        if hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(pid)
            except OSError:
                pass
        LIVE[pid] = self


def spawn(cmd, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    return Proc(p.pid, p.pid, p)


SUBREAPER = False


def become_subreaper():
    """Orphans of our children become ours (PR_SET_CHILD_SUBREAPER): see spawn_clean."""
    global SUBREAPER
    try:
        import ctypes
        SUBREAPER = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        SUBREAPER = False


def spawn_clean(cmd, stdout, stderr, pidfile):
    """Starts cmd as an orphan that we adopt, for a max RSS of its own.

    A process forked by this script counts this script's memory in its
    ru_maxrss: the kernel keeps the high-water mark of the memory it had
    before exec (with vfork, this script's very own).  So /bin/sh starts
    cmd in the background and exits at once; cmd, a fresh process forked
    from a small shell, is reparented to us (a child subreaper) and its
    wait4 rusage counts little but its own."""
    sh = spawn(["/bin/sh", "-c", 'f=$1; shift; "$@" & echo $! >"$f"', "sh", pidfile] + cmd,
               stdout=stdout, stderr=stderr)
    try:
        if not exited(sh, 30):
            raise Failed("/bin/sh did not start %s" % short(cmd))
        rc, _ = reap(sh, kill=False)
        with open(pidfile) as f:
            pid = int(f.read())
        os.unlink(pidfile)
        return Proc(pid, sh.pid)
    except BaseException:
        try:
            os.killpg(sh.pid, signal.SIGKILL)
        except OSError:
            pass
        raise


def exited(p, timeout):
    """Waits up to timeout seconds for p to exit, without reaping it: True if it did."""
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        if p.fd is not None:
            left = deadline - time.monotonic()
            if select.select([p.fd], [], [], max(left, 0))[0]:
                return True
        elif os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        else:
            time.sleep(0.002)
        if time.monotonic() >= deadline:
            return False


def reap(p, kill=True):
    """Kills what is left of p's process group (and p), reaps p; returns (exit code, rusage)."""
    if kill:
        for f, target in ((os.killpg, p.pgid), (os.kill, p.pid)):
            try:
                f(target, signal.SIGKILL)
            except OSError:
                pass
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if p.popen is not None:
        p.popen.returncode = p.returncode
    LIVE.pop(p.pid, None)
    if p.fd is not None:
        os.close(p.fd)
        p.fd = None
    return p.returncode, ru


def stop(p):
    if p.pid in LIVE:
        reap(p)


def cleanup():
    for p in list(LIVE.values()):
        try:
            stop(p)
        except Exception:
            pass
    if SUBREAPER:  # orphans adopted after their parent was killed
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


class on_cpu(object):
    """This script, hence what it starts meanwhile, on one CPU (None: anywhere)."""

    def __init__(self, cpu):
        self.cpu, self.old = cpu, None

    def __enter__(self):
        if self.cpu is not None:
            self.old = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc):
        if self.old is not None:
            os.sched_setaffinity(0, self.old)


class Run(object):
    pass


def run(cmd, timeout, interrupt_after=None, clean_rss=False):
    """Runs cmd to its end (or SIGINT after interrupt_after seconds); returns a Run
    with rc, out, err, wall (s) and cpu (s, user+system), and with clean_rss
    its max RSS in KiB (maxrss) or None where it cannot be measured apart
    from ours.  A timeout kills it and raises Failed."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    try:
        t0 = time.monotonic()
        if clean_rss and SUBREAPER:
            p = spawn_clean(cmd, out, err, os.path.join(tempfile.gettempdir(), "pid.%d" % os.getpid()))
        else:
            p = spawn(cmd, stdout=out, stderr=err)
        try:
            if interrupt_after is not None and not exited(p, interrupt_after):
                os.kill(p.pid, signal.SIGINT)
            done = exited(p, timeout)
            t1 = time.monotonic()
        finally:
            rc, ru = reap(p)
        r = Run()
        r.cmd, r.rc, r.wall = cmd, rc, t1 - t0
        r.cpu = ru.ru_utime + ru.ru_stime
        r.maxrss = ru.ru_maxrss if clean_rss and SUBREAPER else None
        out.seek(0)
        err.seek(0)
        r.out = out.read().decode("utf-8", "replace")
        r.err = err.read().decode("utf-8", "replace")
        if not done:
            raise Failed("%s: timed out after %g s" % (short(cmd), timeout))
        return r
    finally:
        out.close()
        err.close()


def short(cmd):
    return " ".join(os.path.basename(c) if os.path.isabs(c) else c for c in cmd[:6])


def tail(text, n=3):
    return " | ".join(text.strip().splitlines()[-n:])


class Target(object):
    """A workload that prints READY when it is where it should be sampled."""

    def __init__(self, exe, script, *args, **kw):
        self.err = tempfile.TemporaryFile()
        self.p = spawn([exe, os.path.join(WORKLOADS, script)] + [str(a) for a in args],
                       stdin=kw.get("stdin", subprocess.DEVNULL), stdout=subprocess.PIPE, stderr=self.err)
        self.pid = self.p.pid
        deadline = time.monotonic() + 30
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.popen.stdout], [], [], left)[0]:
                self.close()
                raise Failed("%s did not start in 30 s" % script)
            c = os.read(self.p.popen.stdout.fileno(), 1)
            if not c:
                break
            line += c
        if line.strip() != b"READY":
            self.err.seek(0)
            msg = tail(self.err.read().decode("utf-8", "replace"))
            self.close()
            raise Failed("%s did not start: %s" % (script, msg or line))

    def close(self):
        stop(self.p)
        self.p.popen.stdout.close()
        if self.p.popen.stdin:
            self.p.popen.stdin.close()
        self.err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- pystrobe

SUMMARY = re.compile(r"pystrobe: (\d+) samples from (\d+) threads? in ([\d.]+) s "
                     r"\(([\d.]+) Hz of ([\d.]+) Hz\)([^\n]*)")
COST = re.compile(r"pystrobe: cost per sample: ([\d.]+) us CPU, ([\d.]+) reads")
MOVED = re.compile(r"pystrobe: stacks that moved while read: (\d+) walks taken again(?: \([^)]*\))?; "
                   r"(\d+) dropped after \d+ tries(?: \([^)]*\))?(?:; (\d+) cut at the frame then running)?")
WROTE = re.compile(r"pystrobe: wrote .* \((\d+) distinct stacks?\)")


def parse_summary(r, need_cost=True):
    """pystrobe's summary lines on stderr, as a dict; Failed if absent."""
    if r.rc != 0:
        raise Failed("%s: exit status %d: %s" % (short(r.cmd), r.rc, tail(r.err) or "nothing on stderr"))
    m = SUMMARY.search(r.err)
    if not m:
        raise Failed("%s: no summary line: %s" % (short(r.cmd), tail(r.err) or "nothing on stderr"))
    s = {"samples": int(m.group(1)), "threads": int(m.group(2)), "seconds": float(m.group(3)),
         "hz": float(m.group(4)), "requested_hz": float(m.group(5)), "drops": {}}
    dm = re.search(r"; (\d+) dropped: ([^;]*)", m.group(6))
    if dm:
        for part in dm.group(2).split(","):
            n, name = part.strip().split(" ", 1)
            s["drops"][name] = int(n)
        if sum(s["drops"].values()) != int(dm.group(1)):
            raise Failed("%s: drops do not add up: %s" % (short(r.cmd), m.group(0)))
    mv = MOVED.search(r.err)
    s["retries"] = int(mv.group(1)) if mv else 0
    s["cut"] = int(mv.group(3) or 0) if mv else 0
    c = COST.search(r.err)
    if c:
        s["us"], s["reads"] = float(c.group(1)), float(c.group(2))
    elif need_cost:
        raise Failed("%s: no cost line: %s" % (short(r.cmd), tail(r.err)))
    w = WROTE.search(r.err)
    if w:
        s["distinct"] = int(w.group(1))
    s["proc_cpu_s"], s["wall_s"] = r.cpu, r.wall
    if r.maxrss is not None:
        s["maxrss_kib"] = r.maxrss
    return s


NATIVE_DUMP = re.compile(r"pystrobe: native stacks: (\d+) threads? stopped one at a time, "
                         r"([\d.]+) us each on average \(longest ([\d.]+) us\)")
NATIVE_DUMP_WITHOUT = re.compile(r"pystrobe: native stacks: (\d+) threads? shown without native frames")
NATIVE_RECORD = re.compile(r"pystrobe: native frames: threads held (\d+) times?"
                           r"(?:, ([\d.]+) us each on average \(longest ([\d.]+) us\))?"
                           r"(?:; pause per sample ([\d.]+) us)?(?:; (\d+) stacks without native frames)?")
NATIVE_FIGURES = ("samples", "hz", "behind", "us", "proc_us", "held", "hold_us", "longest_us", "pause_us",
                  "without")


def native_summary(r, native):
    """parse_summary, with the behind-schedule drops and, for --native, the hold figures."""
    s = parse_summary(r)
    s["behind"] = s["drops"].get("behind schedule", 0)
    if not native:
        return s
    m = NATIVE_RECORD.search(r.err)
    if not m:
        raise Failed("%s: no native frames line: %s" % (short(r.cmd), tail(r.err)))
    num = lambda g: float(m.group(g)) if m.group(g) else None
    s.update(held=int(m.group(1)), hold_us=num(2), longest_us=num(3), pause_us=num(4),
             without=int(m.group(5) or 0))
    return s


GL_CENSUS = re.compile(r"pystrobe: greenlets: (\d+) censuses \(([\d.]+) Hz\)[^;\n]*; ([\d.]+) greenlets on average "
                       r"\(([\d.]+) parked, ([\d.]+) running\), at most (\d+)")
GL_NONE = re.compile(r"pystrobe: greenlets: no census taken$", re.M)
GL_COST = re.compile(r"pystrobe: greenlets: cost per census: ([\d.]+) us CPU, ([\d.]+) reads([^\n]*)")
GL_MORE = (("stacks_read", r"stacks read (\d+)"), ("stacks_kept", r"kept (\d+)"),
           ("walks_full", r"walks of all generations (\d+)"), ("walks_young", r"of the youngest (\d+)"),
           ("walks_failed", r"failed (\d+)"))


def greenlet_summary(r, greenlets):
    """parse_summary, with the behind-schedule drops and, for --greenlets, the census lines."""
    s = parse_summary(r)
    s["behind"] = s["drops"].get("behind schedule", 0)
    if not greenlets:
        return s
    if GL_NONE.search(r.err):   # every census failed (a walk given up): a figure for the caller
        s["censuses"] = 0
        return s
    m, c = GL_CENSUS.search(r.err), GL_COST.search(r.err)
    if not m or not c:
        raise Failed("%s: no greenlets lines: %s" % (short(r.cmd), tail(r.err)))
    s.update(censuses=int(m.group(1)), census_hz=float(m.group(2)), counted=float(m.group(3)),
             parked=float(m.group(4)), running=float(m.group(5)), most=int(m.group(6)),
             census_us=float(c.group(1)), census_reads=float(c.group(2)))
    for key, pattern in GL_MORE:   # the rest of the cost line: figures, not a format to hold on to
        more = re.search(pattern, c.group(3))
        s[key] = int(more.group(1)) if more else (0 if key == "walks_failed" else None)
    return s


TK_CENSUS = re.compile(r"pystrobe: tasks: (\d+) censuses \(([\d.]+) Hz; asked for: ([\d.e+]+) Hz, each counting "
                       r"(\d+) samples? a waiting task\), ([\d.]+) tasks on average \(([\d.]+) waiting, ([\d.]+) "
                       r"running\), at most (\d+); (\d+) samples of waiting tasks counted([^\n]*)")
TK_NONE = re.compile(r"pystrobe: tasks: no census taken(?: \(([^\n]*)\))?$", re.M)
TK_COST = re.compile(r"pystrobe: tasks: cost per census: ([\d.]+) us CPU, ([\d.]+) reads")
TK_MORE = (("put_off", r"; censuses put off (\d+) times?", int),
           ("not_started", r"; not counted: ([\d.]+) not started", float),
           ("done", r"; not counted: [\d.]+ not started, ([\d.]+) done", float),
           ("unreadable", r"; (\d+) unreadable", int), ("failed", r"; (\d+) censuses failed", int),
           ("stitched", r"; (\d+) samples of a running task under its awaiters", int))
TASK_FIGURES = ("hz", "behind", "us", "censuses", "census_hz", "census_us", "census_reads", "counted", "put_off",
                "unreadable", "failed")


def task_summary(r, tasks):
    """parse_summary, with the behind-schedule drops and, for --tasks, the census lines."""
    s = parse_summary(r)
    s["behind"] = s["drops"].get("behind schedule", 0)
    if not tasks:
        return s
    none = TK_NONE.search(r.err)
    if none:   # every census failed, or none was due: a figure for the caller
        s.update(censuses=0, none_why=none.group(1))
        return s
    m, c = TK_CENSUS.search(r.err), TK_COST.search(r.err)
    if not m or not c:
        raise Failed("%s: no tasks lines: %s" % (short(r.cmd), tail(r.err)))
    s.update(censuses=int(m.group(1)), census_hz=float(m.group(2)), census_asked_hz=float(m.group(3)),
             census_every=int(m.group(4)), counted=float(m.group(5)), waiting=float(m.group(6)),
             running=float(m.group(7)), most=int(m.group(8)), task_samples=int(m.group(9)),
             census_us=float(c.group(1)), census_reads=float(c.group(2)))
    for key, pattern, kind in TK_MORE:   # the optional parts: absent means none
        more = re.search(pattern, m.group(10))
        s[key] = kind(more.group(1)) if more else kind(0)
    return s


def record(pid, rate, seconds, out="/dev/null", clean_rss=False, options=()):
    r = run([PYSTROBE, "record", "-p", str(pid), "-d", "%g" % seconds, "-r", str(rate),
             "-f", "folded", "-o", out] + list(options), timeout=seconds + 60, clean_rss=clean_rss)
    return parse_summary(r)


def read_folded(path):
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, sep, count = line.rpartition(" ")
            if not sep or not count.isdigit():
                raise Failed("%s: unparsable folded line %r" % (path, line[:120]))
            stacks.append((stack, int(count)))
    return stacks


# ---------------------------------------------------------------- austin

AUSTIN = os.environ.get("BENCH_AUSTIN", "")
if AUSTIN.lower() in ("none", "0", "no"):
    AUSTIN = None
elif not AUSTIN:
    AUSTIN = shutil.which("austin")


def austin_lines(path):
    """austin's samples: one line per sample, 'Thread ID;FUNC (FILE);L123;... METRIC'."""
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line:
                yield line


def austin_count(path):
    n = 0
    with open(path, "rb") as f:
        for raw in f:
            if raw.startswith(b"Thread "):
                n += 1
            elif raw.strip():
                raise Failed("austin output %s: unexpected line %r" % (path, raw[:120]))
    return n


def austin_frames(line):
    """An austin sample as pystrobe's labels, root first; None if it does not parse."""
    stack, _, metric = line.rpartition(" ")
    parts = stack.split(";")
    if not parts or not parts[0].startswith("Thread ") or len(parts) % 2 != 1:
        return None
    frames = []
    for name, lineno in zip(parts[1::2], parts[2::2]):
        if not (name.endswith(")") and " (" in name and lineno[:1] == "L" and lineno[1:].isdigit()):
            return None
        frames.append("%s:%s)" % (name[:-1], lineno[1:]))
    return frames


def austin_attach(pid, rate, seconds, out, clean_rss=False):
    """austin -p PID at rate for seconds, stopped with SIGINT; its samples, CPU and memory."""
    r = run([AUSTIN, "-t", AUSTIN_T, "-i", str(int(1e6 / rate)), "-o", out, "-p", str(pid)],
            timeout=30, interrupt_after=seconds, clean_rss=clean_rss)
    if r.rc != 0:
        raise AustinFailed("exit status %d: %s" % (r.rc, tail(r.err, 1)))
    n = austin_count(out)
    if n == 0:
        raise AustinFailed("no samples: %s" % tail(r.err, 1))
    err = re.search(r"Error rate : (\d+)/(\d+)", r.err)
    res = {"samples": n, "seconds": r.wall, "hz": n / r.wall, "proc_cpu_s": r.cpu,
           "proc_us": 1e6 * r.cpu / n, "invalid": int(err.group(1)) if err else None}
    if r.maxrss is not None:
        res["maxrss_kib"] = r.maxrss
    return res


def austin_first_sample(pid, script, timeout_ms=AUSTIN_T, wait=10.0):
    """Seconds from spawning `austin -p PID` to its first sample that holds a
    frame of script (stdout a pty, so that austin writes line by line).

    austin 1.0 on an interpreter it does not know may give up ("Interpreter
    state search timed out", "Python binary not found"), search for longer
    than wait seconds, or find something and print samples without frames:
    each is AustinFailed."""
    import pty
    import tty
    master, slave = pty.openpty()
    tty.setraw(slave)
    err = tempfile.TemporaryFile()
    try:
        t0 = time.monotonic()
        p = spawn([AUSTIN, "-t", timeout_ms, "-i", "1000", "-p", str(pid)], stdout=slave, stderr=err)
        os.close(slave)
        slave = None
        first, buf, empty, odd = None, b"", 0, None
        try:
            deadline = t0 + wait
            while first is None and time.monotonic() < deadline:
                if not select.select([master], [], [], max(deadline - time.monotonic(), 0))[0]:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: austin is gone
                    break
                if not chunk:
                    break
                buf += chunk
                while first is None and b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    frames = austin_frames(line.decode("utf-8", "replace").rstrip("\r"))
                    if frames is None:
                        odd = line
                    elif any(script in f for f in frames):
                        first = time.monotonic() - t0
                    else:
                        empty += 1
                if empty >= 500:  # half a second of samples of nothing
                    break
            if not exited(p, 0):
                os.kill(p.pid, signal.SIGINT)
            # Drain the terminal so that austin can finish writing and exit.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not select.select([master], [], [], 0.05)[0]:
                    if exited(p, 0):
                        break
                    continue
                try:
                    if not os.read(master, 65536):
                        break
                except OSError:
                    break
        finally:
            rc, _ = reap(p)
        if odd is not None and first is None and not empty:
            raise Failed("austin's output does not parse: %r" % odd[:120])
        if first is None:
            err.seek(0)
            why = tail(err.read().decode("utf-8", "replace"), 1)
            if empty:
                why = "%d samples without a frame of the target" % empty
            sigint = rc == -signal.SIGINT
            raise AustinFailed("%s (%s)" % (why or ("no sample in %g s" % wait if sigint else "no sample"),
                                            "stopped with SIGINT" if sigint else "exit status %d" % rc))
        return first
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
        err.close()


# ---------------------------------------------------------------- gdb

GDB = os.environ.get("BENCH_GDB", "")
GDB_MISSING = "not installed"
if GDB.lower() in ("none", "0", "no"):
    GDB, GDB_MISSING = None, "left out (BENCH_GDB=%s)" % GDB
elif not GDB:
    GDB = shutil.which("gdb")


class GdbFailed(Exception):
    """gdb cannot show this interpreter's Python stacks: a note, not a failure."""


# A root interpreter's gdb is the root's own (its python-gdb.py is there): exe -> Interp.
ROOTED = {}


def gdb_py_bt(exe, pid):
    """`gdb -p PID -batch -ex "thread apply all py-bt"`: its wall time and Python stacks shown.

    CPython's gdb support is python-gdb.py, auto-loaded for the binary it
    names (Debian: /usr/share/gdb/auto-load/, from pythonX.Y-dbg; a build
    from source: bin/pythonX.Y-gdb.py, which gdb loads only from a safe
    path, hence the directory of the executable is declared safe here).
    A root interpreter's is the root's gdb, run inside the root."""
    gdb, safe = GDB, os.path.dirname(os.path.realpath(exe))
    I = ROOTED.get(exe)
    if I is not None:
        if not os.path.exists(os.path.join(I.root, "usr", "bin", "gdb")):
            raise GdbFailed("no gdb in the root %s" % I.root)
        gdb, safe = I.wrap("/usr/bin/gdb"), os.path.dirname(I.target_exe)
    cmd = [gdb, "-batch", "-iex", "add-auto-load-safe-path " + safe,
           "-p", str(pid), "-ex", "thread apply all py-bt"]
    try:
        r = run(cmd, timeout=120)
    except Failed as e:
        raise GdbFailed(str(e))
    text = r.out + r.err
    if "Undefined command" in text:
        raise GdbFailed("py-bt is not defined (no python-gdb.py loaded for %s)" % os.path.basename(exe))
    if r.rc != 0:
        raise GdbFailed("exit status %d: %s" % (r.rc, tail(text, 1)))
    stacks = text.count("Traceback (most recent call first):")
    if stacks == 0:
        raise GdbFailed("no Python stack in its output: %s" % tail(text, 1))
    return {"wall_s": r.wall, "cpu_s": r.cpu, "stacks": stacks}


def gdb_version():
    if not GDB:
        return None
    try:
        r = subprocess.run([GDB, "--version"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------- interpreters

INTERPS = {}   # exe -> Interp (tests/interps.py), of every interpreter measured: its version, kind, root


def interpreters():
    """(label, executable) of each interpreter measured: tests/interps.py's
    pyenv versions, the system's /usr/bin/python3 and the Debian root's (not
    PATH's others), by version; BENCH_VERSIONS keeps the labels that start
    with one of its prefixes (sid: the root's); quick mode without it keeps
    the oldest, the newest pyenv one, the system's and the newest root one."""
    found = [I for I in discover() if I.kind in ("pyenv", "system", "root")]
    ROOTED.update((I.exe, I) for I in found if I.kind == "root")
    INTERPS.update((I.exe, I) for I in found)
    only = os.environ.get("BENCH_VERSIONS")
    if only:
        found = [I for I in found if any(I.label.startswith(v) for v in only.split(","))]
    found.sort(key=lambda I: (I.ver, I.kind == "system"))
    if QUICK and not only and len(found) > 3:
        # The oldest, the newest, Debian's and the root's newest (another
        # distribution's build, in its own root): the layouts furthest apart.
        plain = [I for I in found if I.kind == "pyenv"]
        rooted = [I for I in found if I.kind == "root"]
        pick = plain[:1] + plain[-1:] + [I for I in found if I.kind == "system"][:1] + rooted[-1:]
        found = [I for I in found if I in pick]
    return [(I.label, I.exe) for I in found]


def readable_address(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[1].startswith("r"):
                return parts[0].split("-")[0]
    raise Failed("no readable mapping in %d" % pid)


# ---------------------------------------------------------------- measurements

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


class Version(object):
    def __init__(self, name, exe, tmp):
        self.name, self.exe, self.tmp = name, exe, tmp
        self.austin = AUSTIN is not None
        self.austin_note = None if AUSTIN else "austin not installed"
        self.rec = {"name": name, "exe": exe, "austin": None, "errors": [], "austin_notes": []}
        self.gdb = GDB is not None
        self.gdb_note = None if GDB else GDB_MISSING

    def path(self, name):
        return os.path.join(self.tmp, name)

    def austin_failed(self, section, e):
        """austin could not sample: the first time, it is taken as unsupported here."""
        note = "%s: %s" % (section, e)
        self.rec["austin_notes"].append(note)
        log("%s: austin %s" % (self.name, note))
        if self.austin_note is None:
            self.austin_note = ("austin cannot sample it: %s" % e if section == "probe"
                                else "austin failed (%s): %s" % (section, e))
        self.austin = False

    # 1 ------------------------------------------------------------------
    def cost(self, depth):
        log("%s: cost per sample, depth %d" % (self.name, depth))
        row = {"depth": depth, "rate": RATE, "seconds": SECONDS}
        with Target(self.exe, "deep.py", depth) as t:
            b = run([READV_COST, str(t.pid), readable_address(t.pid)], timeout=60)
            if b.rc != 0:
                raise Failed("readv_cost: %s" % tail(b.err))
            try:
                row["baseline_us"] = float(b.out)
            except ValueError:
                raise Failed("readv_cost printed %r" % b.out[:80])
            # The same loop with nothing to sample, as long as the recording.
            b = run([TICK_COST, str(RATE), str(max(100, int(RATE * SECONDS)))], timeout=SECONDS + 60)
            try:
                row["tick_us"] = float(b.out) if b.rc == 0 else None
            except ValueError:
                row["tick_us"] = None
            if row["tick_us"] is None:
                raise Failed("tick_cost: %s" % tail(b.err or b.out))
            out = self.path("cost.folded")
            s = record(t.pid, RATE, SECONDS, out)
            stacks = read_folded(out)
            total = sum(c for _, c in stacks) or 1
            full = sum(c for st, c in stacks if st.count(";") + 1 == depth)
            s["full_stacks_pct"] = 100.0 * full / total
            s["proc_us"] = 1e6 * s["proc_cpu_s"] / s["samples"] if s["samples"] else None
            row["pystrobe"] = s
            os.unlink(out)
            if self.austin:
                out = self.path("cost.austin")
                try:
                    row["austin"] = austin_attach(t.pid, RATE, SECONDS, out)
                except AustinFailed as e:
                    self.austin_failed("cost", e)
                finally:
                    if os.path.exists(out):
                        os.unlink(out)
        return row

    # 2 ------------------------------------------------------------------
    def max_rate(self):
        log("%s: highest sustained rate" % self.name)
        res = {"seconds": RATE_SECONDS, "depth": 50, "tries": [], "max_sustained_hz": None}
        with Target(self.exe, "deep.py", 50) as t:
            for rate in RATE_LADDER:
                ok = False
                for _ in range(2):
                    s = record(t.pid, rate, RATE_SECONDS)
                    behind = s["drops"].get("behind schedule", 0)
                    ok = (s["hz"] >= SUSTAINED_RATE * rate and
                          behind <= SUSTAINED_BEHIND * rate * RATE_SECONDS)
                    res["tries"].append({"rate": rate, "hz": s["hz"], "behind": behind,
                                         "samples": s["samples"], "us": s["us"], "sustained": ok})
                    if ok:
                        break
                if not ok:
                    break
                res["max_sustained_hz"] = rate
        return res

    # 3 ------------------------------------------------------------------
    def work(self, cmd):
        r = run(cmd, timeout=120 + 20 * WORK_SECONDS)
        m = re.search(r"WORK wall=([\d.]+) cpu=([\d.]+) iterations=(\d+)", r.out)
        return r, m

    def calibrate(self):
        """work.py's iterations for about WORK_SECONDS of work on this interpreter."""
        r, m = self.work([self.exe, os.path.join(WORKLOADS, "work.py"), "5000", "0"])   # 0.1 to 0.3 s
        if r.rc != 0 or not m:
            raise Failed("work.py: exit status %d: %s" % (r.rc, tail(r.err)))
        return max(1000, int(5000 * WORK_SECONDS / max(float(m.group(1)), 1e-3)))

    def slowdown(self):
        log("%s: target slowdown" % self.name)
        script = os.path.join(WORKLOADS, "work.py")
        iters = self.calibrate()
        modes = [("none", None, None), ("pystrobe", "pystrobe", 100), ("pystrobe", "pystrobe", 1000)]
        if self.austin:
            modes += [("austin", "austin", 100), ("austin", "austin", 1000)]
        res = {"iterations": iters, "runs": RUNS, "wall": {}, "cpu": {}, "samples": {}}
        for rnd in range(RUNS):
            k = rnd % len(modes)
            for label, prof, hz in modes[k:] + modes[:k]:   # rotated: no mode always first
                key = label if hz is None else "%s_%d" % (label, hz)
                if prof == "austin" and not self.austin:
                    continue
                cmd = [self.exe, script, str(iters)]
                out = None
                if prof == "pystrobe":
                    cmd = [PYSTROBE, "record", "-r", str(hz), "-f", "folded", "-o", "/dev/null", "--"] + cmd
                elif prof == "austin":
                    out = self.path("work.austin")
                    cmd = [AUSTIN, "-t", AUSTIN_T, "-i", str(int(1e6 / hz)), "-o", out] + cmd
                r, m = self.work(cmd)
                if prof == "pystrobe":
                    s = parse_summary(r)
                    res["samples"].setdefault(key, []).append(s["samples"])
                elif prof == "austin":
                    try:
                        if r.rc != 0:
                            raise AustinFailed("exit status %d: %s" % (r.rc, tail(r.err, 1)))
                        n = austin_count(out)
                        if n == 0:
                            raise AustinFailed("no samples: %s" % tail(r.err, 1))
                        res["samples"].setdefault(key, []).append(n)
                    except AustinFailed as e:
                        self.austin_failed("slowdown", e)
                        continue
                    finally:
                        if os.path.exists(out):
                            os.unlink(out)
                if r.rc != 0 or not m:
                    raise Failed("%s: exit status %d, no WORK line: %s" % (short(cmd), r.rc, tail(r.out + r.err)))
                res["wall"].setdefault(key, []).append(float(m.group(1)))
                res["cpu"].setdefault(key, []).append(float(m.group(2)))
        if not self.austin:  # austin failed on the way: no half series
            for d in (res["wall"], res["cpu"], res["samples"]):
                for k in [k for k in d if k.startswith("austin")]:
                    del d[k]
        base = median(res["wall"]["none"])
        res["median_wall"] = {k: median(v) for k, v in res["wall"].items()}
        res["ratio"] = {k: ratio(v, base) for k, v in res["median_wall"].items()}
        # The target's own CPU time, too (os.times: 10 ms steps on 2.7).
        res["median_cpu"] = {k: median(v) for k, v in res["cpu"].items()}
        res["cpu_ratio"] = {k: ratio(v, res["median_cpu"]["none"]) for k, v in res["median_cpu"].items()}
        return res

    # 4 ------------------------------------------------------------------
    def latency(self):
        log("%s: attach and dump latency" % self.name)
        res = {"record_seconds": LATENCY_RECORD, "attach_s": [], "dump_s": [], "austin_first_sample_s": []}
        with Target(self.exe, "deep.py", 50) as t:
            for _ in range(LATENCY_RUNS):
                r = run([PYSTROBE, "record", "-p", str(t.pid), "-d", "%g" % LATENCY_RECORD, "-r", "1000",
                         "-f", "folded", "-o", "/dev/null"], timeout=60)
                parse_summary(r, need_cost=False)
                res["attach_s"].append(r.wall - LATENCY_RECORD)
                r = run([PYSTROBE, "dump", "-p", str(t.pid)], timeout=60)
                if r.rc != 0 or "Thread %d" % t.pid not in r.out:
                    raise Failed("pystrobe dump: exit status %d: %s" % (r.rc, tail(r.out + r.err)))
                res["dump_s"].append(r.wall)
                if self.austin:
                    try:
                        res["austin_first_sample_s"].append(
                            austin_first_sample(t.pid, os.path.join(WORKLOADS, "deep.py")))
                    except AustinFailed as e:
                        self.austin_failed("latency", e)
        for k in ("attach_s", "dump_s", "austin_first_sample_s"):
            res["median_" + k] = median(res[k])
        return res

    # 5 ------------------------------------------------------------------
    def rss(self):
        log("%s: peak memory, %g s" % (self.name, RSS_SECONDS))
        res = {"seconds": RSS_SECONDS, "rate": 1000}
        if not SUBREAPER:
            raise Failed("cannot tell a child's max RSS from ours: PR_SET_CHILD_SUBREAPER failed")
        with Target(self.exe, "many.py") as t:
            s = record(t.pid, 1000, RSS_SECONDS, clean_rss=True)
            if "distinct" not in s:
                raise Failed("pystrobe record: no 'wrote' line")
            s["proc_us"] = 1e6 * s["proc_cpu_s"] / s["samples"] if s["samples"] else None
            res["pystrobe"] = s
            if self.austin:
                out = self.path("rss.austin")
                try:
                    res["austin"] = austin_attach(t.pid, 1000, RSS_SECONDS, out, clean_rss=True)
                except AustinFailed as e:
                    self.austin_failed("rss", e)
                finally:
                    if os.path.exists(out):
                        os.unlink(out)
        return res

    # 6 ------------------------------------------------------------------
    def consistency(self):
        log("%s: consistency (fib.py)" % self.name)
        script = os.path.join(WORKLOADS, "fib.py")
        marks = stackcheck.markers(script)
        res = {"seconds": SECONDS, "rate": 1000, "depth": FIB_DEPTH, "n": FIB_N, "cpus": None}
        with Target(self.exe, "fib.py", FIB_DEPTH, 3600, FIB_N) as t:
            # On one CPU the target cannot run while it is read; on two, as
            # on any server, it can: the target on one CPU, the profiler on another.
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
            if len(cpus) >= 2:
                os.sched_setaffinity(t.pid, {cpus[0]})
                res["cpus"] = {"target": cpus[0], "profiler": cpus[1]}
            with on_cpu(cpus[1] if len(cpus) >= 2 else None):
                out = self.path("fib.folded")
                s = record(t.pid, 1000, SECONDS, out)
                total, bad, why, hist = 0, 0, {}, {}
                for stack, count in read_folded(out):
                    total += count
                    w = stackcheck.check(stack.split(";"), script, FIB_DEPTH, FIB_N, marks)
                    if w:
                        bad += count
                        why[w] = why.get(w, 0) + count
                    hist[tuple(stack.split(";"))] = hist.get(tuple(stack.split(";")), 0) + count
                os.unlink(out)
                if total != s["samples"]:
                    raise Failed("fib.folded holds %d samples, pystrobe reported %d" % (total, s["samples"]))
                other = sum(n for k, n in s["drops"].items() if k not in ("torn stack", "behind schedule"))
                res["pystrobe"] = {"samples": total, "bad": bad, "torn": s["drops"].get("torn stack", 0),
                                   "other_dropped": other, "drops": s["drops"], "hz": s["hz"],
                                   "retries": s["retries"], "cut": s["cut"],
                                   "depths": stackcheck.depths(hist),
                                   "bad_examples": sorted(why.items(), key=lambda x: -x[1])[:5]}
                self.impossible("fib.py, profiler on its own CPU", bad, total, why)
                if self.austin:
                    out = self.path("fib.austin")
                    try:
                        a = austin_attach(t.pid, 1000, SECONDS, out)
                        abad, why = 0, {}
                        for line in austin_lines(out):
                            fr = austin_frames(line)
                            w = "unparsable" if fr is None else stackcheck.check(fr, script, FIB_DEPTH, FIB_N, marks)
                            if w:
                                abad += 1
                                why[w] = why.get(w, 0) + 1
                        a["bad"] = abad
                        a["bad_examples"] = sorted(why.items(), key=lambda x: -x[1])[:5]
                        res["austin"] = a
                    except AustinFailed as e:
                        self.austin_failed("consistency", e)
                    finally:
                        if os.path.exists(out):
                            os.unlink(out)
            # The truth: target and profiler on one CPU (nothing moves while it is read).
            if len(cpus) >= 2:
                with on_cpu(cpus[0]):
                    out = self.path("fib1.folded")
                    record(t.pid, 1000, SECONDS, out)
                    hist, bad, why = {}, 0, {}
                    for stack, count in read_folded(out):
                        key = tuple(stack.split(";"))
                        hist[key] = hist.get(key, 0) + count
                        w = stackcheck.check(list(key), script, FIB_DEPTH, FIB_N, marks)
                        if w:
                            bad += count
                            why[w] = why.get(w, 0) + count
                    os.unlink(out)
                    res["truth_depths"] = stackcheck.depths(hist)
                    self.impossible("fib.py, target and profiler on one CPU", bad, sum(hist.values()), why)
        return res

    # 11 -----------------------------------------------------------------
    def shares(self):
        """truth.py's slices recorded -p, each kind's share against the time it measured."""
        res = {"seconds": SHARE_SECONDS, "kinds": SHARE_KINDS, "rows": []}
        for rate in SHARE_RATES:
            log("%s: shares (truth.py) at %d Hz" % (self.name, rate))
            try:
                r = truthcheck.attach(PYSTROBE, self.exe, rate, kinds=SHARE_KINDS, seconds=SHARE_SECONDS,
                                      timeout=int(SHARE_SECONDS) + 60, tmp=self.tmp)
            except RuntimeError as e:
                raise Failed("truth.py at %d Hz: %s" % (rate, e))
            if r.rc != 0 or not r.counts:
                raise Failed("record of truth.py at %d Hz: exit status %s: %s" % (rate, r.rc, tail(r.err)))
            mv = MOVED.search(r.err)
            res["rows"].append({
                "rate": rate, "samples": r.samples, "hz": r.hz, "torn": r.torn,
                "retries": int(mv.group(1)) if mv else 0,
                "shares": [{"kind": k, "truth": t, "got": g, "samples": n}
                           for _, _, k, t, g, n in r.shares()],
                "worst": r.worst()[0]})
        return res

    # 7 ------------------------------------------------------------------
    def thread_row(self, pid, n, mode, options, rate):
        out = self.path("threads.folded")
        s = record(pid, rate, THREAD_SECONDS, out, options=options)
        stacks = read_folded(out)
        os.unlink(out)
        if sum(c for _, c in stacks) != s["samples"]:
            raise Failed("threads.folded holds %d samples, pystrobe reported %d"
                         % (sum(c for _, c in stacks), s["samples"]))
        ticks = s["hz"] * s["seconds"]
        behind = s["drops"].get("behind schedule", 0)
        row = {"threads": n, "mode": mode, "rate": rate, "samples": s["samples"], "seen": s["threads"],
               "hz": s["hz"], "ticks": ticks, "behind": behind,
               "behind_pct": 100.0 * behind / (rate * THREAD_SECONDS),
               "us_tick": s["us"], "reads_tick": s["reads"],
               "us_stack": s["us"] * ticks / s["samples"] if s["samples"] else None,
               "proc_us_tick": 1e6 * s["proc_cpu_s"] / ticks if ticks else None,
               "marked": sum(c for st, c in stacks if st.endswith(";[idle]") or st.endswith(";[gil wait]")),
               "drops": s["drops"], "note": ""}
        # One thread is always busy, and all but it asleep: a figure, not a failure of the bench.
        if s["samples"] == 0:
            row["note"] = "no samples"
        elif mode == "idle" and row["marked"] == 0:
            row["note"] = "no state marks"
        if row["note"]:
            log("%s: %d threads, %s at %d Hz: %s" % (self.name, n, mode, rate, row["note"]))
        return row

    def threads(self):
        res = {"seconds": THREAD_SECONDS, "depth": THREAD_DEPTH, "rows": [], "search": None}
        most = max(THREAD_COUNTS)
        for n in THREAD_COUNTS:
            log("%s: %d threads" % (self.name, n))
            with Target(self.exe, "threads.py", n, THREAD_DEPTH) as t:
                for mode, options in THREAD_MODES:
                    res["rows"].append(self.thread_row(t.pid, n, mode, options, THREAD_RATE))
                if n != most:
                    continue
                res["rows"].append(self.thread_row(t.pid, n, "idle", ["--idle"], THREAD_FAST_RATE))
                if QUICK:
                    continue
                log("%s: highest sustained rate, %d threads, --idle" % (self.name, n))
                search = res["search"] = {"threads": n, "seconds": RATE_SECONDS, "tries": [],
                                          "max_sustained_hz": None}
                for rate in THREAD_LADDER:
                    ok = False
                    for _ in range(2):
                        s = record(t.pid, rate, RATE_SECONDS, options=["--idle"])
                        behind = s["drops"].get("behind schedule", 0)
                        ok = (s["hz"] >= SUSTAINED_RATE * rate and
                              behind <= SUSTAINED_BEHIND * rate * RATE_SECONDS)
                        search["tries"].append({"rate": rate, "hz": s["hz"], "behind": behind,
                                                "samples": s["samples"], "us": s["us"], "sustained": ok})
                        if ok:
                            break
                    if not ok:
                        break
                    search["max_sustained_hz"] = rate
        return res

    # 9 ------------------------------------------------------------------
    def native_dump(self, pid, native):
        """One `pystrobe dump [--native] -p PID`: its wall and CPU time, and the holds it reports."""
        r = run([PYSTROBE, "dump"] + (["--native"] if native else []) + ["-p", str(pid)], timeout=120)
        blocks = len(re.findall(r"^Thread \d+ ", r.out, re.M))
        if r.rc != 0 or "Thread %d " % pid not in r.out:
            raise Failed("pystrobe dump%s: exit status %d: %s"
                         % (" --native" if native else "", r.rc, tail(r.out + r.err)))
        row = {"wall_s": r.wall, "cpu_s": r.cpu, "threads": blocks}
        if native:
            m = NATIVE_DUMP_WITHOUT.search(r.err)
            row["without"] = int(m.group(1)) if m else 0
            m = NATIVE_DUMP.search(r.err)
            if m:
                row.update(held=int(m.group(1)), hold_us=float(m.group(2)), longest_us=float(m.group(3)))
            elif row["without"]:   # not one thread could be stopped: a figure, in the note
                row.update(held=0, hold_us=None, longest_us=None)
            else:
                raise Failed("pystrobe dump --native: no native stacks line: %s" % tail(r.err))
        return row

    def native_latency(self, t, res):
        """Interleaved rounds of dump, dump --native and gdb's py-bt against the same target."""
        kinds = ["dump", "native"] + (["gdb"] if self.gdb else [])
        for rnd in range(NATIVE_LATENCY_RUNS):
            k = rnd % len(kinds)
            for kind in kinds[k:] + kinds[:k]:
                if kind == "gdb":
                    if not self.gdb:
                        continue
                    try:
                        res["gdb"].append(gdb_py_bt(self.exe, t.pid))
                    except GdbFailed as e:
                        self.gdb, self.gdb_note = False, str(e)
                        log("%s: gdb %s" % (self.name, e))
                else:
                    res[kind].append(self.native_dump(t.pid, kind == "native"))
        if not self.gdb:
            res["gdb"] = []
        res["gdb_note"] = self.gdb_note
        for kind in ("dump", "native", "gdb"):
            res["median_" + kind + "_s"] = median([x["wall_s"] for x in res[kind]])
        for key in ("hold_us", "longest_us", "held", "without", "cpu_s"):
            res["median_native_" + key] = median([x[key] for x in res["native"]])
        res["median_gdb_stacks"] = median([x["stacks"] for x in res["gdb"]])

    def native_record(self, pid, options):
        """`pystrobe record -p PID OPTIONS` at NATIVE_RATE for NATIVE_SECONDS, as a row."""
        r = run([PYSTROBE, "record", "-p", str(pid), "-d", "%g" % NATIVE_SECONDS, "-r", str(NATIVE_RATE),
                 "-f", "folded", "-o", "/dev/null"] + options, timeout=NATIVE_SECONDS + 120)
        s = native_summary(r, "--native" in options)
        ticks = s["hz"] * s["seconds"]
        s["proc_us"] = 1e6 * s["proc_cpu_s"] / ticks if ticks else None
        return s

    def native_slowdown(self, res):
        """work.py unprofiled, under plain `record` and under `record --native`, as in 3."""
        script = os.path.join(WORKLOADS, "work.py")
        iters = res["iterations"] = self.calibrate()
        modes = [("none", []), ("plain", []), ("native", ["--native"])]
        wall, summaries = res["wall"], res["summaries"]
        for rnd in range(RUNS):
            k = rnd % len(modes)
            for key, options in modes[k:] + modes[:k]:
                cmd = [self.exe, script, str(iters)]
                if key != "none":
                    cmd = [PYSTROBE, "record", "-r", str(NATIVE_RATE), "-f", "folded", "-o", "/dev/null"] + \
                        options + ["--"] + cmd
                r, m = self.work(cmd)
                if key != "none":
                    s = native_summary(r, key == "native")
                    s["proc_us"] = None   # the process's CPU holds the target's too
                    summaries.setdefault(key, []).append(s)
                if r.rc != 0 or not m:
                    raise Failed("%s: exit status %d, no WORK line: %s" % (short(cmd), r.rc, tail(r.out + r.err)))
                wall.setdefault(key, []).append(float(m.group(1)))
        res["median_wall"] = {k: median(v) for k, v in wall.items()}
        res["ratio"] = {k: ratio(v, res["median_wall"]["none"]) for k, v in res["median_wall"].items()}

    def native(self):
        res = {"threads": NATIVE_THREADS, "rate": NATIVE_RATE, "seconds": NATIVE_SECONDS,
               "latency": {"runs": NATIVE_LATENCY_RUNS, "dump": [], "native": [], "gdb": []},
               "record": {}, "slowdown": {"runs": RUNS, "wall": {}, "summaries": {}}}
        if QUICK:
            self.gdb, self.gdb_note = False, "not in quick mode"
        log("%s: native frames: dump latency, %d threads" % (self.name, NATIVE_THREADS))
        with Target(self.exe, "threads.py", NATIVE_THREADS, THREAD_DEPTH) as t:
            self.native_latency(t, res["latency"])
            log("%s: native frames: record at %d Hz, %d threads" % (self.name, NATIVE_RATE, NATIVE_THREADS))
            for key, options in NATIVE_RECORD_MODES:
                res["record"][key] = self.native_record(t.pid, options)
        log("%s: native frames: target slowdown" % self.name)
        self.native_slowdown(res["slowdown"])
        # record --native against work.py: the median of each figure over the runs above.
        for key, rows in res["slowdown"]["summaries"].items():
            res["record"]["work_" + key] = dict((f, median([r.get(f) for r in rows])) for f in NATIVE_FIGURES)
        return res

    # 10 -----------------------------------------------------------------
    def gevent_missing(self):
        """Why greenlets.py cannot run on this interpreter, or None."""
        r = run([self.exe, "-c", "import gevent, gevent.lock, gevent.event, gevent.queue"], timeout=60)
        return None if r.rc == 0 else "no gevent: %s" % (tail(r.err, 1) or "exit status %d" % r.rc)

    def greenlet_record(self, pid, options, seconds):
        """`pystrobe record -p PID -r 100 OPTIONS` for seconds, as a row."""
        r = run([PYSTROBE, "record", "-p", str(pid), "-d", "%g" % seconds, "-r", str(GREENLET_RATE),
                 "-f", "folded", "-o", "/dev/null"] + options, timeout=seconds + 120)
        s = greenlet_summary(r, "--greenlets" in options)
        ticks = s["hz"] * s["seconds"]
        s["proc_us"] = 1e6 * s["proc_cpu_s"] / ticks if ticks else None
        return s

    def greenlet_census(self, pid, options, seconds):
        """greenlet_record with --greenlets, again while it took no census at all (every walk given
        up: the lists changed under it); the row and the runs without a census."""
        for missed in range(GREENLET_TRIES):
            s = self.greenlet_record(pid, ["--greenlets"] + options, seconds)
            if s["censuses"]:
                return s, missed
        raise Failed("record --greenlets %s-d %g took no census in %d tries"
                     % (" ".join(options) + " " if options else "", seconds, GREENLET_TRIES))

    def greenlet_dump(self, pid, n):
        """`pystrobe dump --greenlets --json -p PID`: wall and CPU time, greenlets shown, its reads."""
        for missed in range(GREENLET_TRIES):
            r = run([PYSTROBE, "dump", "--greenlets", "--json", "-p", str(pid)], timeout=120)
            # The lists changed under every walk it made (greenlets at work): what it says to do.
            if r.rc == 0 or "changed under" not in r.err:
                break
        if r.rc != 0:
            raise Failed("pystrobe dump --greenlets: exit status %d: %s" % (r.rc, tail(r.err)))
        try:
            d = json.loads(r.out)
            shown, stats = len(d["greenlets"]), d["greenlet_stats"]
            reads, objects = int(stats["reads"]), int(stats["objects"])
        except (ValueError, KeyError, TypeError) as e:
            raise Failed("pystrobe dump --greenlets --json: %s: %r" % (e, r.out[:120]))
        if shown < n:
            raise Failed("pystrobe dump --greenlets showed %d greenlets of at least %d" % (shown, n))
        return {"wall_s": r.wall, "cpu_s": r.cpu, "shown": shown, "reads": reads, "objects": objects,
                "missed": missed}

    def greenlet_cost(self, n):
        """Against greenlets.py N (parked, 3 at work): plain record, record --greenlets, the first
        census alone (--greenlet-rate 1 over half a second) and dump --greenlets."""
        log("%s: greenlet census, %d greenlets" % (self.name, n))
        row = {"greenlets": n, "first": [], "dump": []}
        with Target(self.exe, "greenlets.py", n) as t:
            row["plain"] = self.greenlet_record(t.pid, [], GREENLET_SECONDS)
            row["census"], row["missed"] = self.greenlet_census(t.pid, [], GREENLET_SECONDS)
            row["first_missed"] = 0
            for _ in range(GREENLET_RUNS):
                first, missed = self.greenlet_census(t.pid, ["--greenlet-rate", "1"], GREENLET_FIRST_SECONDS)
                if first["censuses"] != 1:
                    raise Failed("--greenlet-rate 1 for %g s took %d censuses, not 1"
                                 % (GREENLET_FIRST_SECONDS, first["censuses"]))
                row["first_missed"] += missed
                row["first"].append(first)
                row["dump"].append(self.greenlet_dump(t.pid, n))
        c = row["census"]
        row["first_us"] = median([f["census_us"] for f in row["first"]])
        row["first_reads"] = median([f["census_reads"] for f in row["first"]])
        k = c["censuses"]
        # The censuses after the first: the run's total less a first census (another run's median).
        if k > 1:
            row["later_us"] = max(0.0, (k * c["census_us"] - row["first_us"]) / (k - 1))
            row["later_reads"] = max(0.0, (k * c["census_reads"] - row["first_reads"]) / (k - 1))
        else:
            row["later_us"] = row["later_reads"] = None
        row["x_plain"] = ratio(c["us"], row["plain"]["us"])
        for key in ("wall_s", "cpu_s", "reads", "objects", "shown"):
            row["dump_" + key] = median([d[key] for d in row["dump"]])
        return row

    def greenlet_work(self, n, items, options):
        """One run of greenlets.py N --work ITEMS (parked_work)."""
        return self.parked_work("greenlets.py", n, items, options, GREENLET_RATE, GREENLET_SETTLE,
                                lambda r: greenlet_summary(r, "--greenlets" in options))

    def parked_work(self, script, n, items, options, rate, settle, summarize):
        """One run of SCRIPT N --work ITEMS (greenlets.py, tasks.py): unprofiled (options None) or with
        `pystrobe record -p -r RATE` and options attached settle s before the work until the target's
        exit; the WORK line and the summary (summarize(run))."""
        res = {}
        with Target(self.exe, script, n, "--work", items, stdin=subprocess.PIPE) as t:
            rec = rout = rerr = None
            try:
                if options is not None:
                    rout, rerr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
                    cmd = [PYSTROBE, "record", "-p", str(t.pid), "-d", "3600", "-r", str(rate),
                           "-f", "folded", "-o", "/dev/null"] + options
                    t0 = time.monotonic()
                    rec = spawn(cmd, stdout=rout, stderr=rerr)
                time.sleep(settle)
                t.p.popen.stdin.write(b"go\n")
                t.p.popen.stdin.flush()
                if not exited(t.p, 120 + 20 * WORK_SECONDS):
                    raise Failed("%s %d --work %d: timed out" % (script, n, items))
                out = t.p.popen.stdout.read().decode("utf-8", "replace")
                m = re.search(r"WORK wall=([\d.]+) cpu=([\d.]+) items=(\d+)", out)
                if not m:
                    t.err.seek(0)
                    raise Failed("%s %d --work %d: no WORK line: %s"
                                 % (script, n, items, tail(out + t.err.read().decode("utf-8", "replace"))))
                res.update(wall=float(m.group(1)), cpu=float(m.group(2)))
                res["items_s"] = items / res["wall"] if res["wall"] else None
                if rec is not None:
                    done = exited(rec, 60)   # record -p ends with its target
                    r = Run()
                    r.cmd, r.wall, r.maxrss = cmd, time.monotonic() - t0, None
                    r.rc, ru = reap(rec)
                    r.cpu = ru.ru_utime + ru.ru_stime
                    rout.seek(0)
                    rerr.seek(0)
                    r.out = rout.read().decode("utf-8", "replace")
                    r.err = rerr.read().decode("utf-8", "replace")
                    if not done:
                        raise Failed("%s: still running 60 s after its target exited" % short(cmd))
                    res["summary"] = summarize(r)
            finally:
                if rec is not None:
                    stop(rec)
                for f in (rout, rerr):
                    if f is not None:
                        f.close()
        return res

    def parked_slowdown(self, work, n, items, modes, figures):
        """work(n, items, options) for each of modes ((key, options); "none": unprofiled, options None),
        interleaved, RUNS times: medians and ratios to the unprofiled median, as in 3; and the medians
        of the record summaries' figures, per mode."""
        res = {"items": items, "runs": RUNS, "wall": {}, "cpu": {}, "summaries": {}}
        for rnd in range(RUNS):
            k = rnd % len(modes)
            for key, options in modes[k:] + modes[:k]:
                w = work(n, items, options)
                res["wall"].setdefault(key, []).append(w["wall"])
                res["cpu"].setdefault(key, []).append(w["cpu"])
                if "summary" in w:
                    res["summaries"].setdefault(key, []).append(w["summary"])
        res["median_wall"] = {k: median(v) for k, v in res["wall"].items()}
        res["ratio"] = {k: ratio(v, res["median_wall"]["none"]) for k, v in res["median_wall"].items()}
        res["median_cpu"] = {k: median(v) for k, v in res["cpu"].items()}
        res["cpu_ratio"] = {k: ratio(v, res["median_cpu"]["none"]) for k, v in res["median_cpu"].items()}
        res["items_s"] = {k: ratio(items, v) for k, v in res["median_wall"].items()}
        res["record"] = dict((key, dict((f, median([r.get(f) for r in rows])) for f in figures))
                             for key, rows in res["summaries"].items())
        return res

    def greenlet_slowdown(self, n, items):
        """greenlets.py N --work ITEMS unprofiled, under record and record --greenlets at 100 Hz,
        interleaved, RUNS times: medians and ratios to the unprofiled median, as in 3."""
        log("%s: greenlet census, target slowdown, %d greenlets" % (self.name, n))
        modes = [("none", None), ("plain", []), ("greenlets", ["--greenlets"])]
        res = {"greenlets": n}
        res.update(self.parked_slowdown(self.greenlet_work, n, items, modes,
                                        ("hz", "behind", "us", "censuses", "census_hz", "census_us",
                                         "census_reads", "counted")))
        return res

    def greenlets(self):
        why = self.gevent_missing()
        if why:
            log("%s: greenlet census: SKIP (%s)" % (self.name, why))
            return {"skip": why}
        res = {"seconds": GREENLET_SECONDS, "rate": GREENLET_RATE, "rows": [], "slowdown": []}
        for n in GREENLET_COUNTS:
            res["rows"].append(self.greenlet_cost(n))
        # The work for about WORK_SECONDS unprofiled, the same for every count.
        w = self.greenlet_work(min(GREENLET_COUNTS), 5000, None)
        items = res["items"] = max(1000, int(5000 * WORK_SECONDS / max(w["wall"], 1e-3)))
        for n in GREENLET_COUNTS:
            res["slowdown"].append(self.greenlet_slowdown(n, items))
        return res

    # 12 -----------------------------------------------------------------
    def tasks_missing(self):
        """Why tasks.py cannot run on this interpreter (asyncio.run, record --tasks: 3.7+), or None."""
        I = INTERPS.get(self.exe)
        if I is None:
            return "version unknown"
        if tuple(I.ver[:2]) < TASK_SINCE:
            return "Python %s: asyncio.run and record --tasks need %d.%d+" % (I.xy, TASK_SINCE[0], TASK_SINCE[1])
        return None

    def task_record(self, pid, options, seconds):
        """`pystrobe record -p PID -r 100 OPTIONS` for seconds, as a row."""
        r = run([PYSTROBE, "record", "-p", str(pid), "-d", "%g" % seconds, "-r", str(TASK_RATE),
                 "-f", "folded", "-o", "/dev/null"] + options, timeout=seconds + 120)
        s = task_summary(r, "--tasks" in options)
        ticks = s["hz"] * s["seconds"]
        s["proc_us"] = 1e6 * s["proc_cpu_s"] / ticks if ticks else None
        return s

    def task_census(self, pid, seconds):
        """task_record with --tasks, again while it took no census at all (every one failed); the row
        and the runs without a census."""
        for missed in range(TASK_TRIES):
            s = self.task_record(pid, ["--tasks"], seconds)
            if s["censuses"]:
                return s, missed
            why = s.get("none_why")
            if why:   # not a census that failed: it found no asyncio at all
                raise Failed("record --tasks -d %g took no census (%s)" % (seconds, why))
        raise Failed("record --tasks -d %g took no census in %d tries" % (seconds, TASK_TRIES))

    def task_dump(self, pid, n):
        """`pystrobe dump --tasks --json -p PID`: wall and CPU time, tasks shown, its task_stats."""
        r = run([PYSTROBE, "dump", "--tasks", "--json", "-p", str(pid)], timeout=120)
        if r.rc != 0:
            raise Failed("pystrobe dump --tasks: exit status %d: %s" % (r.rc, tail(r.err)))
        try:
            d = json.loads(r.out)
            shown, stats = len(d["tasks"]), d["task_stats"]
            reads, unreadable = int(stats["reads"]), int(stats.get("unreadable") or 0)
        except (ValueError, KeyError, TypeError) as e:
            raise Failed("pystrobe dump --tasks --json: %s: %r" % (e, r.out[:120]))
        if shown < n:
            raise Failed("pystrobe dump --tasks showed %d tasks of at least %d" % (shown, n))
        return {"wall_s": r.wall, "cpu_s": r.cpu, "shown": shown, "reads": reads, "unreadable": unreadable}

    def task_pstree(self, pid):
        """The interpreter's own `python3.X -m asyncio pstree PID` (3.14+): its wall and CPU time and
        output lines, or why it failed (a note: not pystrobe's).  A Debian root's interpreter runs in
        the target's mount namespace and root (nsenter), where its files are."""
        I = INTERPS.get(self.exe)
        if I is not None and I.kind == "root":
            cmd = ["nsenter", "-t", str(pid), "-m", "-r", "-w", I.target_exe]
        else:
            cmd = [self.exe]
        cmd += ["-m", "asyncio", "pstree", str(pid)]
        try:
            r = run(cmd, timeout=120)
        except Failed as e:
            return {"error": str(e)}
        if r.rc != 0:
            return {"error": "%s: exit status %d: %s" % (short(cmd), r.rc, tail(r.err, 1) or "nothing on stderr")}
        return {"wall_s": r.wall, "cpu_s": r.cpu, "lines": len(r.out.splitlines())}

    def task_cost(self, n, pstree):
        """Against tasks.py N (waiting, 3 at work): plain record, record --tasks, dump --tasks and
        (pstree) python -m asyncio pstree, those two interleaved TASK_RUNS times."""
        log("%s: task census, %d tasks" % (self.name, n))
        row = {"tasks": n, "dump": [], "pstree": []}
        with Target(self.exe, "tasks.py", n) as t:
            row["plain"] = self.task_record(t.pid, [], TASK_SECONDS)
            row["census"], row["missed"] = self.task_census(t.pid, TASK_SECONDS)
            for rnd in range(TASK_RUNS):
                steps = [lambda: row["dump"].append(self.task_dump(t.pid, n))]
                if pstree:
                    steps.append(lambda: row["pstree"].append(self.task_pstree(t.pid)))
                for step in steps[rnd % len(steps):] + steps[:rnd % len(steps)]:
                    step()
        row["x_plain"] = ratio(row["census"]["us"], row["plain"]["us"])
        for key in ("wall_s", "cpu_s", "reads", "shown", "unreadable"):
            row["dump_" + key] = median([d[key] for d in row["dump"]])
        ok = [p for p in row["pstree"] if "error" not in p]
        row["pstree_errors"] = [p["error"] for p in row["pstree"] if "error" in p]
        for key in ("wall_s", "cpu_s", "lines"):
            row["pstree_" + key] = median([p[key] for p in ok])
        row["pstree_x_dump"] = ratio(row["pstree_wall_s"], row["dump_wall_s"])
        return row

    def task_work(self, n, items, options):
        """One run of tasks.py N --work ITEMS (parked_work)."""
        return self.parked_work("tasks.py", n, items, options, TASK_RATE, TASK_SETTLE,
                                lambda r: task_summary(r, "--tasks" in options))

    def task_slowdown(self, n, items):
        """tasks.py N --work ITEMS unprofiled, under record and record --tasks at 100 Hz,
        interleaved, RUNS times: medians and ratios to the unprofiled median, as in 3."""
        log("%s: task census, target slowdown, %d tasks" % (self.name, n))
        modes = [("none", None), ("plain", []), ("tasks", ["--tasks"])]
        res = {"tasks": n}
        res.update(self.parked_slowdown(self.task_work, n, items, modes, TASK_FIGURES))
        return res

    def tasks(self):
        why = self.tasks_missing()
        if why:
            log("%s: task census: SKIP (%s)" % (self.name, why))
            return {"skip": why}
        I = INTERPS[self.exe]
        pstree = tuple(I.ver[:2]) >= TASK_PSTREE_SINCE
        res = {"seconds": TASK_SECONDS, "rate": TASK_RATE, "runs": TASK_RUNS, "pstree": pstree,
               "rows": [], "slowdown": []}
        for n in TASK_COUNTS:
            res["rows"].append(self.task_cost(n, pstree))
        # The work for about WORK_SECONDS unprofiled, the same for every count.
        w = self.task_work(min(TASK_COUNTS), 5000, None)
        items = res["items"] = max(1000, int(5000 * WORK_SECONDS / max(w["wall"], 1e-3)))
        for n in TASK_COUNTS:
            res["slowdown"].append(self.task_slowdown(n, items))
        return res

    def measure(self, section, fn, *args):
        try:
            return fn(*args)
        except Failed as e:
            msg = "%s: %s" % (section, e)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # the harness's own fault: still a failure, with its trace
            traceback.print_exc()
            msg = "%s: %s: %s" % (section, type(e).__name__, e)
        self.rec["errors"].append(msg)
        log("%s: FAILED %s" % (self.name, msg))
        return None

    def impossible(self, what, bad, total, why):
        """A stack kept that the program cannot have is a failure, whatever the
        mode (quick included): the figures are still reported."""
        if bad:
            msg = "consistency: %d of %d samples kept (%s) have a stack the program cannot have: %s" % (
                bad, total, what, "; ".join("%s (%d)" % kv for kv in sorted(why.items(), key=lambda x: -x[1])[:3]))
            self.rec["errors"].append(msg)
            log("%s: FAILED %s" % (self.name, msg))

    def probe_austin(self):
        """Whether austin can sample this interpreter at all: its first sample, or why not."""
        if not self.austin:
            return
        log("%s: can austin sample it?" % self.name)
        with Target(self.exe, "deep.py", 10) as t:
            try:
                austin_first_sample(t.pid, os.path.join(WORKLOADS, "deep.py"), timeout_ms="100", wait=5)
            except AustinFailed as e:
                self.austin_failed("probe", e)

    def all(self, sections):
        rec = self.rec
        if any(k in sections for k in AUSTIN_SECTIONS):
            self.measure("austin probe", self.probe_austin)
        if "cost" in sections:
            rec["cost"] = [c for c in (self.measure("cost depth %d" % d, self.cost, d) for d in DEPTHS) if c]
        if "rate" in sections:
            rec["max_rate"] = self.measure("max rate", self.max_rate)
        if "slowdown" in sections:
            rec["slowdown"] = self.measure("slowdown", self.slowdown)
        if "latency" in sections:
            rec["latency"] = self.measure("latency", self.latency)
        if "rss" in sections:
            rec["rss"] = self.measure("rss", self.rss)
        if "consistency" in sections:
            rec["consistency"] = self.measure("consistency", self.consistency)
        if "threads" in sections:
            rec["threads"] = self.measure("threads", self.threads)
        if "native" in sections:
            rec["native"] = self.measure("native", self.native)
            rec["gdb"] = {"used": self.gdb, "note": self.gdb_note}
        if "greenlets" in sections:
            rec["greenlets"] = self.measure("greenlets", self.greenlets)
        if "shares" in sections:
            rec["shares"] = self.measure("shares", self.shares)
        if "tasks" in sections:
            rec["tasks"] = self.measure("tasks", self.tasks)
        rec["austin"] = {"used": self.austin, "note": self.austin_note}
        return rec


# ---------------------------------------------------------------- output

def fmt(v, spec="%.1f", none="-"):
    return none if v is None else spec % v


def table(title, notes, headers, rows):
    print()
    print(title)
    for n in notes:
        print("  " + n)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join((c.ljust(w) if i == 0 or headers[i] == "note" else c.rjust(w))
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def report(records, sections):
    failed = "FAILED"
    if "cost" in sections:
        rows = []
        for v in records:
            if not v["cost"] and any(e.startswith("cost") for e in v["errors"]):
                rows.append([v["name"], failed] + [""] * 13)
            for c in v["cost"]:
                p, a = c["pystrobe"], c.get("austin")
                work = p["us"] - c["tick_us"] if c.get("tick_us") is not None else None
                rows.append([v["name"], str(c["depth"]), fmt(p["us"]), fmt(c.get("tick_us")), fmt(work),
                             fmt(p["reads"]), fmt(ratio(p["retries"], p["samples"]), "%.3f"),
                             fmt(c["baseline_us"], "%.2f"),
                             fmt(p["us"] / c["baseline_us"] if c["baseline_us"] else None), fmt(p["hz"]),
                             fmt(p["full_stacks_pct"], "%.1f%%"), fmt(p["proc_us"]),
                             fmt(get(a, "proc_us")), fmt(get(a, "hz")),
                             fmt(ratio(get(a, "proc_us"), p["proc_us"]), "%.2fx")])
        table("1. Cost per sample: pystrobe record -p at %d Hz for %g s on deep.py (a busy leaf under DEPTH frames)"
              % (RATE, SECONDS),
              ["us/sample, reads/sample: pystrobe's own account (its sampling loop); tick us: the CPU of the same "
               "loop with nothing to sample (build/bench/tick_cost: the timer's wake-ups), same run; work us: "
               "the difference; retries: walks taken again (judged torn) per sample; baseline: one bare 8-byte "
              "process_vm_readv, same run, same target",
               "proc us: the whole process's CPU (getrusage: start-up, attach, output) / samples; "
               "austin: the same at the same interval (-i %d), stopped with SIGINT" % int(1e6 / RATE)],
              ["python", "depth", "us/sample", "tick us", "work us", "reads/sample", "retries", "baseline us",
               "x baseline",
               "rate Hz", "full stacks",
               "proc us", "austin proc us", "austin Hz", "austin/pystrobe"], rows)

    if "rate" in sections:
        rows = []
        for v in records:
            m = v["max_rate"]
            if m is None:
                rows.append([v["name"]] + [failed] + [""] * len(RATE_LADDER))
                continue
            cells = []
            for rate in RATE_LADDER:
                tries = [t for t in m["tries"] if t["rate"] == rate]
                cells.append(" / ".join("%.0f (%d)" % (t["hz"], t["behind"]) for t in tries) or "-")
            best = m["max_sustained_hz"]
            rows.append([v["name"]] + cells + ["%d Hz" % best if best else "< %d Hz" % RATE_LADDER[0]])
        table("2. Highest sustained rate: deep.py depth 50, %g s per rate, upwards until a rate fails twice"
              % RATE_SECONDS,
              ["cells: achieved Hz (behind-schedule drops), a second try after a miss; sustained: achieved >= %d%% "
               "of requested and behind-schedule drops <= %g%% of requested ticks"
               % (SUSTAINED_RATE * 100, SUSTAINED_BEHIND * 100)],
              ["python"] + ["%d Hz" % r for r in RATE_LADDER] + ["max sustained"], rows)

    if "slowdown" in sections:
        rows = []
        for v in records:
            s = v["slowdown"]
            if s is None:
                rows.append([v["name"], failed] + [""] * 6)
                continue
            mw, rt, ct = s["median_wall"], s["ratio"], s["cpu_ratio"]
            cell = lambda k: "-" if mw.get(k) is None else "%.3f  %.3fx  %.2fx" % (mw[k], rt[k], ct[k])
            none = s["wall"]["none"]
            rows.append([v["name"], str(s["iterations"]), str(len(none)),
                         "%.3f (%.3f-%.3f)" % (mw["none"], min(none), max(none)),
                         cell("pystrobe_100"), cell("pystrobe_1000"), cell("austin_100"), cell("austin_1000")])
        table("3. Target slowdown: work.py (fixed work, about %g s unprofiled) launched under each profiler"
              % WORK_SECONDS,
              ["cells: the work's own wall time in s, median of %d interleaved runs; its ratio to the unprofiled "
               "median; the same ratio for the work's CPU time" % RUNS,
               "unprofiled: median (min-max), a measure of this machine's noise",
               "pystrobe record -r HZ -f folded -o /dev/null -- python work.py N; "
               "austin -i US -o FILE python work.py N"],
              ["python", "iterations", "runs", "unprofiled s", "pystrobe 100 Hz", "pystrobe 1 kHz", "austin 100 Hz",
               "austin 1 kHz"], rows)

    if "latency" in sections:
        rows = []
        for v in records:
            lt = v["latency"]
            if lt is None:
                rows.append([v["name"], failed, "", "", ""])
                continue
            a, p = lt["median_austin_first_sample_s"], lt["median_attach_s"]
            rows.append([v["name"], fmt(p and p * 1e3), fmt(lt["median_dump_s"] * 1e3), fmt(a and a * 1e3),
                         fmt(ratio(a, p), "%.2fx")])
        table("4. Latency against a busy deep.py (depth 50), median of %d interleaved rounds" % LATENCY_RUNS,
              ["attach: wall time of `pystrobe record -d %g -r 1000 -f folded -o /dev/null -p PID` minus %g s "
               "(start, attach, first samples, output, exit)" % (LATENCY_RECORD, LATENCY_RECORD),
               "dump: wall time of `pystrobe dump -p PID`; austin: from spawning `austin -i 1000 -p PID` to its "
               "first sample line (stdout a pty)"],
              ["python", "attach ms", "dump ms", "austin first sample ms", "austin/pystrobe"], rows)

    if "rss" in sections:
        rows = []
        for v in records:
            r = v["rss"]
            if r is None:
                rows.append([v["name"], failed] + [""] * 7)
                continue
            p, a = r["pystrobe"], r.get("austin")
            rows.append([v["name"], str(p["samples"]), str(p["distinct"]), fmt(p["maxrss_kib"] / 1024.0),
                         fmt(p["proc_us"]), fmt(get(a, "maxrss_kib") and a["maxrss_kib"] / 1024.0),
                         str(get(a, "samples") or "-"), fmt(get(a, "proc_us")),
                         fmt(ratio(get(a, "maxrss_kib"), p["maxrss_kib"]), "%.2fx")])
        table("5. Peak memory: many.py (nearly every sample a new stack) recorded -p at 1 kHz for %g s" % RSS_SECONDS,
              ["max RSS of the profiler's process (getrusage of the reaped child); proc us: its CPU / samples"],
              ["python", "samples", "distinct", "pystrobe MB", "proc us", "austin MB", "austin samples",
               "austin proc us", "austin/pystrobe"], rows)

    if "consistency" in sections:
        rows = []
        for v in records:
            c = v["consistency"]
            if c is None:
                rows.append([v["name"], failed] + [""] * 10)
                continue
            p, a = c["pystrobe"], c.get("austin")
            share = lambda n, d: fmt(ratio(100.0 * n, d), "%.2f%%")
            taken = p["samples"] + p["torn"] + p["other_dropped"]
            truth = c.get("truth_depths")
            rows.append([v["name"], str(p["samples"]), "%d (%s)" % (p["bad"], share(p["bad"], p["samples"])),
                         "%d (%s)" % (p["torn"], share(p["torn"], taken)),
                         "%d (%s)" % (p["other_dropped"], share(p["other_dropped"], taken)),
                         fmt(ratio(p["retries"], taken), "%.2f"),
                         fmt(stackcheck.mean_depth(p["depths"]), "%.2f"),
                         fmt(stackcheck.mean_depth(truth) if truth else None, "%.2f"),
                         fmt(stackcheck.tvd(p["depths"], truth) if truth else None, "%.2f"),
                         str(get(a, "samples") or "-"),
                         "%d (%s)" % (a["bad"], share(a["bad"], a["samples"])) if a else "-",
                         fmt(get(a, "invalid"), "%d")])
        cpus = [v["consistency"]["cpus"] for v in records if v["consistency"] and v["consistency"]["cpus"]]
        table("6. Consistency: fib.py (fib(%d) under %d frames) recorded -p at 1 kHz for %g s%s"
              % (FIB_N, FIB_DEPTH, SECONDS, ", target on CPU %(target)d, profiler on CPU %(profiler)d" % cpus[0]
                 if cpus else ""),
              ["bad: samples kept whose stack the program cannot have (bench/stackcheck.py), share of those kept",
               "torn, other: ticks pystrobe dropped as torn stacks (after its tries), or as unreadable memory, "
               "share of ticks taken; retries: walks taken again, per tick",
               "depth: the mean number of fib frames in the samples kept; truth: the same with target and "
               "profiler on one CPU (nothing moves while it is read); TV: total variation between the two "
               "depth histograms; austin invalid: its own count"],
              ["python", "samples", "bad", "torn dropped", "other dropped", "retries", "depth", "truth depth",
               "TV", "austin samples", "austin bad", "austin invalid"], rows)

    if "threads" in sections:
        fewest = min(THREAD_COUNTS)
        fewest_label = "%d thread%s" % (fewest, "" if fewest == 1 else "s")
        rows = []
        for v in records:
            th = v["threads"]
            if th is None:
                rows.append([v["name"], failed] + [""] * 13)
                continue
            one = dict((r["mode"], r["us_tick"]) for r in th["rows"]
                       if r["threads"] == fewest and r["rate"] == THREAD_RATE)
            for r in th["rows"]:
                marked = ("%.1f%%" % (100.0 * r["marked"] / r["samples"]) if r["mode"] == "idle" and r["samples"]
                          else "-")
                rows.append([v["name"], str(r["threads"]), r["mode"], str(r["rate"]), str(r["samples"]),
                             str(r["seen"]), marked, fmt(r["hz"]), "%d (%.1f%%)" % (r["behind"], r["behind_pct"]),
                             fmt(r["us_tick"]), fmt(r["us_stack"]), fmt(r["reads_tick"]),
                             fmt(r["proc_us_tick"]), fmt(ratio(r["us_tick"], one.get(r["mode"])), "%.2fx"),
                             r["note"]])
        table("7. Threads: threads.py N (one thread busy, N-1 asleep in time.sleep, each under %d frames; the "
              "main thread asleep too) recorded -p for %g s per row" % (THREAD_DEPTH, THREAD_SECONDS),
              ["mode: cpu = the default (threads on a CPU), idle = --idle (every thread, state read from /proc "
               "for those asleep), gil = --gil; samples: stacks written; seen: threads in the profile; idle "
               "marked: share of the samples ending in [idle] or [gil wait] (all but the busy thread's: N/(N+1))",
               "behind: ticks dropped behind schedule (share of the ticks requested); us/tick, reads/tick: "
               "pystrobe's own account (its CPU and process_vm_readv calls / ticks); us/stack: the same CPU / "
               "samples; proc us/tick: the whole process's CPU (getrusage) / ticks; all include the first tick, "
               "which walks every thread (at 200 threads, tens of ms), so they fall as ticks add up",
               "x %s: us/tick / that of %s in the same mode at %d Hz, same run"
               % (fewest_label, fewest_label, THREAD_RATE)],
              ["python", "threads", "mode", "rate", "samples", "seen", "idle marked", "Hz", "behind", "us/tick",
               "us/stack", "reads/tick", "proc us/tick", "x " + fewest_label, "note"], rows)
        if not QUICK:
            rows = []
            for v in records:
                m = get(v, "threads", "search")
                if m is None:
                    rows.append([v["name"], failed if v["threads"] is None else "-"] + [""] * len(THREAD_LADDER))
                    continue
                cells = []
                for rate in THREAD_LADDER:
                    tries = [t for t in m["tries"] if t["rate"] == rate]
                    cells.append(" / ".join("%.0f (%d)" % (t["hz"], t["behind"]) for t in tries) or "-")
                best = m["max_sustained_hz"]
                rows.append([v["name"]] + cells + ["%d Hz" % best if best else "< %d Hz" % THREAD_LADDER[0]])
            table("7b. Highest sustained rate: threads.py %d, --idle, %g s per rate, upwards until a rate fails twice"
                  % (max(THREAD_COUNTS), RATE_SECONDS),
                  ["cells: achieved Hz (behind-schedule drops), a second try after a miss; sustained as in 2"],
                  ["python"] + ["%d Hz" % r for r in THREAD_LADDER] + ["max sustained"], rows)

    if any(k in sections for k in AUSTIN_SECTIONS):
        rows = []
        for v in records:
            note = v["austin"]["note"] if v["austin"] else None
            cost = [c for c in v.get("cost") or [] if c.get("austin")]
            c50 = ([c for c in cost if c["depth"] == 50] or cost or [None])[0]
            s, lt, r = v.get("slowdown"), v.get("latency"), v.get("rss")
            cells = [fmt(ratio(get(c50, "austin", "proc_us"), get(c50, "pystrobe", "proc_us")), "%.2fx"),
                     fmt(ratio(get(s, "ratio", "austin_100"), get(s, "ratio", "pystrobe_100")), "%.3fx"),
                     fmt(ratio(get(s, "ratio", "austin_1000"), get(s, "ratio", "pystrobe_1000")), "%.3fx"),
                     fmt(ratio(get(lt, "median_austin_first_sample_s"), get(lt, "median_attach_s")), "%.2fx"),
                     fmt(ratio(get(r, "austin", "maxrss_kib"), get(r, "pystrobe", "maxrss_kib")), "%.2fx")]
            rows.append([v["name"]] + cells + [note or ""])
        table("8. %s next to pystrobe: austin's figure / pystrobe's (above 1: austin costs more)"
              % (AUSTIN_VERSION or "austin (not installed)"),
              ["cpu/sample: proc us at depth 50 (table 1); slowdown: ratio of the slowdown ratios (table 3); "
               "attach: first sample / pystrobe's attach (table 4); RSS: table 5"],
              ["python", "cpu/sample", "slowdown 100 Hz", "slowdown 1 kHz", "attach", "peak RSS", "note"], rows)

    if "native" in sections:
        native_report(records)

    if "greenlets" in sections:
        greenlet_report(records)
    if "shares" in sections:
        report_shares(records)
    if "tasks" in sections:
        task_report(records)


def native_report(records):
    rows = []
    for v in records:
        lt = get(v, "native", "latency")
        if lt is None:
            rows.append([v["name"], "FAILED"] + [""] * 10)
            continue
        d, n, g = lt["median_dump_s"], lt["median_native_s"], lt["median_gdb_s"]
        notes = []
        if lt["median_native_without"]:
            notes.append("%g threads without native frames" % lt["median_native_without"])
        if lt["gdb_note"]:
            notes.append("gdb: " + lt["gdb_note"])
        rows.append([v["name"], fmt(d * 1e3), fmt(n * 1e3), fmt(ratio(n, d), "%.1fx"),
                     fmt(lt["median_native_cpu_s"] * 1e3), fmt(lt["median_native_held"], "%g"),
                     fmt(lt["median_native_hold_us"]), fmt(lt["median_native_longest_us"]),
                     fmt(g and g * 1e3), fmt(ratio(g, d), "%.1fx"), fmt(lt["median_gdb_stacks"], "%g"),
                     "; ".join(notes)])
    table("9a. Native frames, latency: threads.py %d (one thread busy, the others and the main thread asleep, "
          "each under %d frames), median of %d interleaved rounds"
          % (NATIVE_THREADS, THREAD_DEPTH, NATIVE_LATENCY_RUNS),
          ["dump, native: wall time of `pystrobe dump -p PID` and of `pystrobe dump --native -p PID`; x dump: "
           "its ratio to the plain dump; native CPU: that process's CPU time",
           "held, hold us, longest us: from dump --native's stderr (threads stopped one at a time, how long each "
           "was held on average, the longest)",
           "gdb: wall time of `gdb -batch -iex 'add-auto-load-safe-path BINDIR' -p PID -ex 'thread apply all "
           "py-bt'` (%s; it stops the whole process throughout); stacks: the Python tracebacks it printed"
           % (GDB_VERSION or "gdb " + GDB_MISSING)],
          ["python", "dump ms", "native ms", "x dump", "native CPU ms", "held", "hold us", "longest us", "gdb ms",
           "x dump", "gdb stacks", "note"], rows)

    rows = []
    threads = "threads.py %d, -p" % NATIVE_THREADS
    targets = [(key, threads, " ".join(options) or "plain") for key, options in NATIVE_RECORD_MODES]
    targets += [("work_plain", "work.py, launched", "plain"), ("work_native", "work.py, launched", "--native")]
    base = {"native": "plain", "native_idle": "idle", "work_native": "work_plain"}
    for v in records:
        rec = get(v, "native", "record")
        if rec is None:
            rows.append([v["name"], "FAILED"] + [""] * 12)
            continue
        for key, target, mode in targets:
            r = rec.get(key)
            if r is None:
                continue
            native = key in base
            rows.append([v["name"], target, mode, fmt(r["samples"], "%d"),
                         fmt(r["hz"]), fmt(r["behind"], "%d"), fmt(r.get("held"), "%d"),
                         fmt(r.get("hold_us")), fmt(r.get("longest_us")), fmt(r.get("pause_us")), fmt(r["us"]),
                         fmt(ratio(r["us"], get(rec, base.get(key), "us")), "%.1fx") if native else "",
                         fmt(r["proc_us"]),
                         "%d without native frames" % r["without"] if r.get("without") else ""])
    table("9b. Native frames, record: `pystrobe record [--native] -r %d` against threads.py %d (-p, %g s) and "
          "work.py (launched, medians of %d runs from 9c)" % (NATIVE_RATE, NATIVE_THREADS, NATIVE_SECONDS, RUNS),
          ["samples, Hz (of %d), behind: from the summary (behind: ticks dropped behind schedule); held, hold us, "
           "longest us, pause us: its native frames line (threads stopped, how long each on average, the longest, "
           "and the pause per tick, which it calls per sample)" % NATIVE_RATE,
           "us/tick: pystrobe's own CPU per tick (its cost line), the first tick's loading of debug information "
           "included (see 9a's native CPU); x plain: its ratio to the same mode without --native, same target, "
           "same run; proc us/tick: the whole process's CPU / ticks (-p only: launched, it counts the target's)",
           "modes: plain = the default (threads on a CPU: the busy one); --idle: every thread (all %d stopped "
           "one at a time per tick with --native)" % (NATIVE_THREADS + 1)],
          ["python", "target", "mode", "samples", "Hz", "behind", "held", "hold us", "longest us", "pause us",
           "us/tick", "x plain", "proc us/tick", "note"], rows)

    rows = []
    for v in records:
        s = get(v, "native", "slowdown")
        if s is None or "ratio" not in s:
            rows.append([v["name"], "FAILED"] + [""] * 5)
            continue
        mw, rt = s["median_wall"], s["ratio"]
        cell = lambda k: "%.3f  %.3fx" % (mw[k], rt[k])
        none = s["wall"]["none"]
        rows.append([v["name"], str(s["iterations"]), str(len(none)),
                     "%.3f (%.3f-%.3f)" % (mw["none"], min(none), max(none)), cell("plain"), cell("native"),
                     fmt(ratio(mw["native"], mw["plain"]), "%.3fx")])
    table("9c. Native frames, target slowdown: work.py (fixed work, about %g s unprofiled) launched under "
          "`pystrobe record -r %d`, as in 3" % (WORK_SECONDS, NATIVE_RATE),
          ["cells: the work's own wall time in s, median of %d interleaved runs, and its ratio to the unprofiled "
           "median; native/plain: --native's median over plain record's, same run" % RUNS],
          ["python", "iterations", "runs", "unprofiled s", "plain 100 Hz", "--native 100 Hz", "native/plain"], rows)


def greenlet_report(records):
    rows = []
    for v in records:
        g = v.get("greenlets")
        if g is None or g.get("skip"):
            rows.append([v["name"], "FAILED" if g is None else "SKIP"] + [""] * 14 + [g["skip"] if g else ""])
            continue
        for r in g["rows"]:
            c, p = r["census"], r["plain"]
            notes = []
            if c["censuses"] and c["counted"] < r["greenlets"]:
                notes.append("fewer counted than parked")
            if c["walks_failed"]:
                notes.append("%d walks given up" % c["walks_failed"])
            if r["missed"] or r["first_missed"]:
                notes.append("%d runs without a census" % (r["missed"] + r["first_missed"]))
            missed = sum(d["missed"] for d in r["dump"])
            if missed:
                notes.append("%d dumps given up (10b)" % missed)
            rows.append([v["name"], str(r["greenlets"]), fmt(c["counted"]), fmt(c["censuses"], "%d"), fmt(c["hz"]),
                         fmt(c["behind"], "%d"), fmt(c["census_us"]), fmt(c["census_reads"]),
                         fmt(r["first_us"]), fmt(r["first_reads"]), fmt(r["later_us"]), fmt(r["later_reads"]),
                         fmt(c["us"]), fmt(p["us"]), fmt(p["reads"]), fmt(r["x_plain"], "%.1fx"),
                         "; ".join(notes)])
    table("10a. Greenlet census: greenlets.py N (N parked: half on a gevent Semaphore under 8 frames, 3/10 on an "
          "Event under 5, the rest in gevent.sleep; 3 more at work), `pystrobe record [--greenlets] -p PID -r %d "
          "-d %g`" % (GREENLET_RATE, GREENLET_SECONDS),
          ["counted: greenlets per census (parked + running); censuses, Hz, behind: achieved, and ticks dropped "
           "behind schedule; census us, reads: its cost per census (CPU, read calls), all censuses",
           "first: the first census alone (the whole walk: every collector generation, every stack), from "
           "`--greenlet-rate 1 -d %g` (one census), median of %d; later: the censuses after it, "
           "(censuses x census - first) / (censuses - 1)" % (GREENLET_FIRST_SECONDS, GREENLET_RUNS),
           "us/tick: record --greenlets' cost per sample (CPU, the census included); plain: plain record's on the "
           "same target (one thread's stack), reads/tick too; x plain: the ratio of the two"],
          ["python", "N", "counted", "censuses", "Hz", "behind", "census us", "census reads", "first us",
           "first reads", "later us", "later reads", "us/tick", "plain us/tick", "plain reads", "x plain", "note"],
          rows)

    rows = []
    for v in records:
        g = v.get("greenlets")
        if g is None or g.get("skip"):
            continue
        for r in g["rows"]:
            rows.append([v["name"], str(r["greenlets"]), fmt(r["dump_shown"], "%d"), fmt(r["dump_wall_s"] * 1e3),
                         fmt(r["dump_cpu_s"] * 1e3), fmt(r["dump_reads"], "%d"), fmt(r["dump_objects"], "%d"),
                         fmt(r["first_us"] / 1e3, "%.2f"), fmt(r["first_reads"], "%d")])
    if rows:
        table("10b. dump --greenlets against the same targets, median of %d" % GREENLET_RUNS,
              ["dump ms, CPU ms: wall and CPU time of `pystrobe dump --greenlets --json -p PID` (start-up, attach, "
               "every greenlet's stack, output); shown: greenlets in its JSON; reads, objects: its greenlet_stats "
               "(read calls, collector objects looked at); first census: 10a's first, for comparison; a dump that "
               "gave up (the lists changed under each of its walks) is run again, counted in 10a's note"],
              ["python", "N", "shown", "dump ms", "CPU ms", "reads", "objects", "first census ms", "first reads"],
              rows)

    rows = []
    for v in records:
        g = v.get("greenlets")
        if g is None or g.get("skip"):
            continue
        for s in g["slowdown"]:
            mw, rt, cr, rec = s["median_wall"], s["ratio"], s["cpu_ratio"], s["record"]
            none = s["wall"]["none"]
            cell = lambda k: "%.3f  %.3fx" % (mw[k], rt[k])
            gr = rec.get("greenlets", {})
            rows.append([v["name"], str(s["greenlets"]), str(s["items"]), str(len(none)),
                         "%.3f (%.3f-%.3f)" % (mw["none"], min(none), max(none)), fmt(s["items_s"]["none"], "%.0f"),
                         cell("plain"), cell("greenlets"), fmt(ratio(mw["greenlets"], mw["plain"]), "%.3fx"),
                         fmt(cr["plain"], "%.3fx"), fmt(cr["greenlets"], "%.3fx"), fmt(gr.get("censuses"), "%g"),
                         fmt(gr.get("census_us")), fmt(gr.get("hz"))])
    if rows:
        table("10c. Greenlet census, target slowdown: greenlets.py N --work ITEMS (a producer passing ITEMS items "
              "through a gevent Queue to 4 consumers, a little computation each, next to the N parked), "
              "`pystrobe record [--greenlets] -p PID -r %d` attached %g s before the work until the target exits"
              % (GREENLET_RATE, GREENLET_SETTLE),
              ["cells: the work's own wall time in s, median of %d interleaved runs, and its ratio to the "
               "unprofiled median; items/s unprofiled; census/plain: --greenlets' median over plain record's; "
               "cpu x: the target's own CPU time, as a ratio; censuses, census us, Hz: record --greenlets' medians"
               % RUNS],
              ["python", "N", "items", "runs", "unprofiled s", "items/s", "plain 100 Hz", "--greenlets 100 Hz",
               "census/plain", "cpu x plain", "cpu x greenlets", "censuses", "census us", "Hz"], rows)


def task_report(records):
    rows = []
    for v in records:
        g = v.get("tasks")
        if g is None or g.get("skip"):
            rows.append([v["name"], "FAILED" if g is None else "SKIP"] + [""] * 11 + [g["skip"] if g else ""])
            continue
        for r in g["rows"]:
            c, p = r["census"], r["plain"]
            notes = []
            if c["counted"] < r["tasks"]:
                notes.append("fewer counted than waiting")
            if c["failed"]:
                notes.append("%d censuses failed" % c["failed"])
            if r["missed"]:
                notes.append("%d runs without a census" % r["missed"])
            if r["dump_unreadable"]:
                notes.append("dump: %d unreadable (12b)" % r["dump_unreadable"])
            rows.append([v["name"], str(r["tasks"]), fmt(c["counted"]), fmt(c["censuses"], "%d"),
                         fmt(c["census_hz"]), fmt(c["put_off"], "%d"), fmt(c["census_us"]), fmt(c["census_reads"]),
                         fmt(c["us"]), fmt(p["us"]), fmt(r["x_plain"], "%.1fx"), fmt(c["unreadable"], "%d"),
                         fmt(c["hz"]), "; ".join(notes)])
    table("12a. Task census: tasks.py N (N waiting: half on an asyncio.Lock under 8 frames, 3/10 on an Event "
          "under 5, the rest in asyncio.sleep; 3 more at work), `pystrobe record [--tasks] -p PID -r %d -d %g`"
          % (TASK_RATE, TASK_SECONDS),
          ["counted: tasks per census (waiting + running; the lock's holder, the main task and the workers "
           "too); censuses, census Hz: taken, their achieved rate; put off: censuses due but put off to keep "
           "them under 10% of a CPU (each then counts for the ticks since the last)",
           "census us, reads: the cost per census (CPU, read calls); us/tick: record --tasks' cost per sample "
           "(CPU, the censuses included); plain: plain record's on the same target (the loop's thread alone); "
           "x plain: the ratio; unreadable: tasks whose await chain could not be read (all censuses); Hz: "
           "record --tasks' achieved sampling rate"],
          ["python", "N", "counted", "censuses", "census Hz", "put off", "census us", "census reads", "us/tick",
           "plain us/tick", "x plain", "unreadable", "Hz", "note"], rows)

    rows = []
    for v in records:
        g = v.get("tasks")
        if g is None or g.get("skip"):
            continue
        for r in g["rows"]:
            if not g["pstree"]:
                note = "pstree: Python 3.14+"
            elif r["pstree_errors"]:
                note = "pstree failed %d of %d: %s" % (len(r["pstree_errors"]), len(r["pstree"]),
                                                       r["pstree_errors"][-1])
            else:
                note = ""
            ms = lambda x: fmt(x and x * 1e3)
            rows.append([v["name"], str(r["tasks"]), fmt(r["dump_shown"], "%d"), ms(r["dump_wall_s"]),
                         ms(r["dump_cpu_s"]), fmt(r["dump_reads"], "%d"), ms(r["pstree_wall_s"]),
                         ms(r["pstree_cpu_s"]), fmt(r["pstree_lines"], "%d"), fmt(r["pstree_x_dump"], "%.1fx"),
                         note])
    if rows:
        table("12b. dump --tasks against the same targets, next to the interpreter's own `python3.X -m asyncio "
              "pstree PID` (3.14+), median of %d interleaved rounds" % TASK_RUNS,
              ["dump ms, CPU ms: wall and CPU time of `pystrobe dump --tasks --json -p PID` (start-up, attach, "
               "every task's await stack, output); shown: tasks in its JSON; reads: its task_stats' read calls",
               "pstree ms, CPU ms, lines: the same of `python3.X -m asyncio pstree PID` (a Debian root's: under "
               "`nsenter -t PID -m -r -w`, in the target's root); pstree/dump: the ratio of the wall times; its "
               "failing is a note"],
              ["python", "N", "shown", "dump ms", "CPU ms", "reads", "pstree ms", "pstree CPU ms", "lines",
               "pstree/dump", "note"], rows)

    rows = []
    for v in records:
        g = v.get("tasks")
        if g is None or g.get("skip"):
            continue
        for s in g["slowdown"]:
            mw, rt, cr, rec = s["median_wall"], s["ratio"], s["cpu_ratio"], s["record"]
            none = s["wall"]["none"]
            cell = lambda k: "%.3f  %.3fx" % (mw[k], rt[k])
            tr = rec.get("tasks", {})
            rows.append([v["name"], str(s["tasks"]), str(s["items"]), str(len(none)),
                         "%.3f (%.3f-%.3f)" % (mw["none"], min(none), max(none)), fmt(s["items_s"]["none"], "%.0f"),
                         cell("plain"), cell("tasks"), fmt(ratio(mw["tasks"], mw["plain"]), "%.3fx"),
                         fmt(cr["plain"], "%.3fx"), fmt(cr["tasks"], "%.3fx"), fmt(tr.get("censuses"), "%g"),
                         fmt(tr.get("census_us")), fmt(tr.get("census_hz")), fmt(tr.get("put_off"), "%g")])
    if rows:
        table("12c. Task census, target slowdown: tasks.py N --work ITEMS (a producer passing ITEMS items through "
              "an asyncio.Queue to 4 consumer tasks, a little computation each, next to the N waiting), "
              "`pystrobe record [--tasks] -p PID -r %d` attached %g s before the work until the target exits"
              % (TASK_RATE, TASK_SETTLE),
              ["cells: the work's own wall time in s, median of %d interleaved runs, and its ratio to the "
               "unprofiled median; items/s unprofiled; tasks/plain: --tasks' median over plain record's; "
               "cpu x: the target's own CPU time, as a ratio; censuses, census us, census Hz, put off: record "
               "--tasks' medians" % RUNS],
              ["python", "N", "items", "runs", "unprofiled s", "items/s", "plain 100 Hz", "--tasks 100 Hz",
               "tasks/plain", "cpu x plain", "cpu x tasks", "censuses", "census us", "census Hz", "put off"],
              rows)


# ---------------------------------------------------------------- environment

def environment():
    e = {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine(),
         "loadavg_start": os.getloadavg(), "harness_python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            e["cpu_model"] = m.group(1).strip() if m else None
    except OSError:
        e["cpu_model"] = None
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        e["pystrobe_commit"] = r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        e["pystrobe_commit"] = None
    e["pystrobe"] = PYSTROBE
    try:
        with open(PYSTROBE, "rb") as f:
            e["pystrobe_sha256"] = hashlib.sha256(f.read()).hexdigest()
        e["pystrobe_mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(PYSTROBE)))
    except OSError:
        pass
    e["gdb"] = GDB
    e["gdb_version"] = GDB_VERSION
    e["austin"] = AUSTIN
    e["austin_version"] = AUSTIN_VERSION
    return e


def austin_version():
    if not AUSTIN:
        return None
    try:
        r = subprocess.run([AUSTIN, "-V"], capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


AUSTIN_VERSION = austin_version()
GDB_VERSION = gdb_version()


def report_shares(records):
    rows = []
    for v in records:
        sh = v.get("shares")
        if sh is None:
            rows.append([v["name"], "FAILED"] + [""] * (5 + len(SHARE_KINDS)))
            continue
        for r in sh["rows"]:
            by = dict((x["kind"], x) for x in r["shares"])
            cells = []
            for k in SHARE_KINDS:
                x = by.get(k)
                cells.append("%.1f%% %+.2f" % (100 * x["truth"], 100 * (x["got"] - x["truth"])) if x else "-")
            rows.append([v["name"], str(r["rate"]), str(r["samples"]), fmt(r["hz"]),
                         fmt(ratio(r["retries"], r["samples"] + r["torn"]), "%.2f"), str(r["torn"]),
                         fmt(r["worst"], "%.2f")] + cells)
    table("11. Shares: truth.py (40 ms slices of each kind, timed by the target itself) recorded -p for %g s"
          % SHARE_SECONDS,
          ["each kind: the share of the time the target measured in it, and pystrobe's error in points (its "
           "samples in slice_KIND over its samples in any slice, less the truth)",
           "retries: walks taken again per tick; torn: ticks dropped after every try; worst: the largest error"],
          ["python", "rate", "samples", "Hz", "retries", "torn", "worst"] + list(SHARE_KINDS), rows)


def settings(sections):
    return {"quick": QUICK, "sections": sections, "depths": DEPTHS, "seconds": SECONDS, "rate": RATE,
            "rate_ladder": RATE_LADDER,
            "rate_seconds": RATE_SECONDS, "work_seconds": WORK_SECONDS, "runs": RUNS,
            "latency_runs": LATENCY_RUNS, "rss_seconds": RSS_SECONDS,
            "sustained_rate": SUSTAINED_RATE, "sustained_behind": SUSTAINED_BEHIND,
            "thread_counts": THREAD_COUNTS, "thread_seconds": THREAD_SECONDS, "thread_rate": THREAD_RATE,
            "thread_fast_rate": THREAD_FAST_RATE, "thread_ladder": THREAD_LADDER,
            "native_threads": NATIVE_THREADS, "native_rate": NATIVE_RATE, "native_seconds": NATIVE_SECONDS,
            "native_latency_runs": NATIVE_LATENCY_RUNS,
            "greenlet_counts": GREENLET_COUNTS, "greenlet_seconds": GREENLET_SECONDS,
            "greenlet_runs": GREENLET_RUNS, "greenlet_rate": GREENLET_RATE,
            "task_counts": TASK_COUNTS, "task_seconds": TASK_SECONDS, "task_runs": TASK_RUNS,
            "task_rate": TASK_RATE,
            "share_seconds": SHARE_SECONDS, "share_rates": SHARE_RATES, "share_kinds": SHARE_KINDS,
            "versions": os.environ.get("BENCH_VERSIONS")}


def wanted_sections():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""), metavar="SECTION,...",
                    help="run only these sections: " + ", ".join(SECTIONS) + " (default: all; or BENCH_ONLY)")
    args = ap.parse_args()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in SECTIONS]
    if unknown:
        ap.error("unknown section%s %s: choose among %s"
                 % ("" if len(unknown) == 1 else "s", ", ".join(unknown), ", ".join(SECTIONS)))
    return [x for x in SECTIONS if x in only] if only else list(SECTIONS)


def main():
    sections = wanted_sections()
    for tool in [PYSTROBE] + ([READV_COST, TICK_COST] if "cost" in sections else []):
        if not os.path.exists(tool):
            sys.exit("bench: %s is missing: build it first (make pystrobe %s %s)"
                     % (tool, os.path.relpath(READV_COST, ROOT), os.path.relpath(TICK_COST, ROOT)))

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    become_subreaper()

    t0 = time.time()
    doc = {"schema": 1, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings(sections),
           "environment": environment(), "versions": []}
    records = doc["versions"]
    status = 0
    try:
        with tempfile.TemporaryDirectory(prefix="pystrobe-bench-") as tmp:
            tempfile.tempdir = tmp   # the TemporaryFiles, too
            versions = interpreters()
            if not versions:
                log("no interpreter found")
                status = 1
            for name, exe in versions:
                d = os.path.join(tmp, re.sub(r"[^\w.-]", "_", name))
                os.mkdir(d)
                records.append(Version(name, exe, d).all(sections))
                shutil.rmtree(d, ignore_errors=True)
            tempfile.tempdir = None
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except SystemExit as e:
        log("stopped by a signal")
        status = e.code if isinstance(e.code, int) else 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # let nothing stop the cleanup
            signal.signal(sig, signal.SIG_IGN)
        cleanup()
        tempfile.tempdir = None
        doc["environment"]["loadavg_end"] = os.getloadavg()
        try:
            with open(PYSTROBE, "rb") as f:
                changed = hashlib.sha256(f.read()).hexdigest() != doc["environment"].get("pystrobe_sha256")
        except OSError:
            changed = True
        doc["environment"]["pystrobe_changed"] = changed
        if changed:
            log("%s changed during the run: its figures mix two builds" % PYSTROBE)
        doc["elapsed_s"] = time.time() - t0
        errors = ["%s: %s" % (v["name"], e) for v in records for e in v["errors"]]
        doc["errors"] = errors
        if records:
            env = doc["environment"]
            part = "" if len(sections) == len(SECTIONS) else " " + ",".join(sections)
            print("pystrobe bench%s%s: %s, %s CPUs, Linux %s, load %.1f; pystrobe %s%s"
                  % (part, " (quick)" if QUICK else "", env.get("cpu_model"), env["cpus"], env["kernel"],
                     env["loadavg_start"][0], (env.get("pystrobe_commit") or "?")[:12],
                     "" if PYSTROBE == os.path.join(ROOT, "pystrobe") else " (" + PYSTROBE + ")"))
            if changed:
                print("  (%s changed during the run: its figures mix two builds)" % PYSTROBE)
            report(records, sections)
        path = os.environ.get("BENCH_JSON")
        if path:
            with open(path, "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")
        if errors:
            print("\n%d measurement%s failed:" % (len(errors), "" if len(errors) == 1 else "s"))
            for e in errors:
                print("  " + e)
            status = status or 1
        log("%s in %.0f s" % ("done" if not status else "exit status %d" % status, time.time() - t0))
    sys.exit(status)


if __name__ == "__main__":
    main()
