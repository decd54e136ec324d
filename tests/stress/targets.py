# -*- coding: utf-8 -*-
"""Stress targets for pystrobe: Python programs whose stacks never sit still.

    python targets.py SCENARIO [options]

Runs unchanged on CPython 2.7 and 3.6+.  Prints READY on stdout once every
workload has started, then works until killed (or --after says otherwise).

Scenarios:
  threads     threads constantly born and dying (named churn-N; every 7th is
              a raw thread that threading does not know), each recursing a
              little, spinning and napping for a random short life
  recursion   recursion whose depth changes constantly and at random between
              1 and MAX_DEPTH, through three alternating functions and now
              and then through a C call (map) in between
  exec        code objects created and freed: fresh source compiled and
              exec'd in a loop (module, function and class bodies, each under
              its own file name), lambdas from eval, nested functions, all
              called a while and dropped
  exit        all of the above at once, then the process ends by itself
              after a random time (--after, default 0.5:2.0) with a known
              status (--status, default 23)
  mixed       all of the above at once, until killed

Options:
  --seed N          seed of every random choice (default: from the clock;
                    written to stderr as "target: seed N")
  --after LO:HI     end LO..HI seconds (uniform) after READY
  --end HOW         how to end after --after: exit (sys.exit(--status) with
                    every worker still running: the interpreter finalises
                    under them), os_exit (os._exit(--status)) or kill
                    (os.kill(os.getpid(), SIGKILL)); default exit
  --status N        exit status for --end exit/os_exit (default 23 for the
                    exit scenario, else 0)
  --pidfile PATH    write our pid to PATH at start
  --stderr PATH     send our stderr (fd 2) to PATH
  --threadlog PATH  append "TID NAME [INHERITED]" for every thread as it
                    starts (NAME: its threading name, "-" for a raw thread
                    threading does not know; INHERITED: the OS name of the
                    thread that started it, which 3.14+ set to that
                    thread's threading name), after a first line "comm COMM"
                    (the process's OS name): what the runner checks thread
                    labels against
  --max-life S      watchdog: SIGALRM ends the process after S seconds
                    whatever happens (default 900)
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import argparse
import gc
import os
import random
import signal
import threading
import time

try:
    import _thread as rawthread          # 3.x
except ImportError:                      # 2.7
    import thread as rawthread

MAX_DEPTH = 500
CHURN_ALIVE = 6             # threads alive at once in the thread churn
CHURN_LIFE = (0.01, 0.15)   # seconds each churn thread lives
SCENARIOS = ('threads', 'recursion', 'exec', 'exit', 'mixed')
GETTID = {'x86_64': 186, 'aarch64': 178, 'i686': 224, 'i386': 224, 'armv7l': 224}

_log_fd = None
_syscall = None


def native_tid():
    f = getattr(threading, 'get_native_id', None)
    if f is not None:
        return f()
    global _syscall
    if _syscall is None:
        try:
            import ctypes
            _syscall = ctypes.CDLL(None, use_errno=True).syscall
        except Exception:
            _syscall = False
    nr = GETTID.get(os.uname()[4])
    if not _syscall or nr is None:
        return None
    return int(_syscall(nr))


def log_thread(name, inherited=None):
    """Says which OS thread this is, its threading name (None: raw), and the
    OS name it inherited from the thread that started it (3.14+ name each
    threading thread's OS thread after it: a new thread has its starter's
    name until its own is set, a raw thread for good)."""
    if _log_fd is None:
        return
    tid = native_tid()
    if tid:
        line = '%d %s' % (tid, name or '-')
        if inherited:
            line += ' ' + inherited
        os.write(_log_fd, (line + '\n').encode('ascii', 'replace'))


def own_os_name():
    """This thread's OS name (comm), or None where it cannot be read."""
    tid = native_tid()
    try:
        with open('/proc/self/task/%d/comm' % tid) as f:
            return f.read().strip() or None
    except (OSError, TypeError, ValueError):
        return None


class Stop(object):
    """Set once: every workload returns soon after (only used by tests of
    this file; the runner kills the process)."""

    def __init__(self):
        self.flag = False

    def __call__(self):
        return self.flag


def spin(n):
    t = 0
    for i in range(n):
        t += i ^ (t & 7)
    return t


# ---------------------------------------------------------------------------
# threads born and dying

def churn_leaf(end, rng):
    while time.time() < end:
        spin(rng.randint(50, 400))
        if rng.random() < 0.3:
            # off CPU now and then: active/idle flips, and the GIL goes to
            # the other workloads (2.7's GIL would starve them)
            time.sleep(0.001)


def churn_recurse(depth, end, rng):
    if depth <= 1:
        return churn_leaf(end, rng)
    return churn_recurse(depth - 1, end, rng)


def churn_worker(life, depth, seed, name, inherited=None):
    log_thread(name, inherited)
    rng = random.Random(seed)
    churn_recurse(depth, time.time() + life, rng)


def churn_threads(rng, stop):
    inherited = own_os_name()
    n = 0
    alive = []
    while not stop():
        alive = [t for t in alive if t.is_alive()]
        raw = 0
        while len(alive) + raw < CHURN_ALIVE:
            n += 1
            args = (rng.uniform(*CHURN_LIFE), rng.randint(1, 40), rng.random())
            if n % 7 == 0:
                rawthread.start_new_thread(churn_worker, args + (None, inherited))
                raw += 1
            else:
                name = 'churn-%d' % n
                t = threading.Thread(target=churn_worker, args=args + (name, inherited), name=name)
                t.daemon = True
                t.start()
                alive.append(t)
        if n % 5 == 0 and alive:
            alive[0].join(0.05)         # a join now and then, as real code does
        time.sleep(0.002)


# ---------------------------------------------------------------------------
# recursion depth changing constantly
#
# Three copies of one function, each calling the next: at depth d, go deeper
# while the target is deeper, return while it is shallower, and once there
# spin a little and pick a new target.  Target 0 unwinds everything.

class Depth(object):
    def __init__(self, rng, stop):
        self.rng, self.stop = rng, stop
        self.target = rng.randint(1, MAX_DEPTH)

    def arrive(self):
        spin(self.rng.randint(5, 200))
        self.target = 0 if self.stop() else self.rng.randint(1, MAX_DEPTH)


def dive_a(d, st):
    while st.target:
        if st.target > d:
            if d % 37:
                DIVES[(d + 1) % 3](d + 1, st)
            else:
                through_c(d, st)
        elif st.target < d:
            return
        else:
            st.arrive()


def dive_b(d, st):
    while st.target:
        if st.target > d:
            if d % 37:
                DIVES[(d + 1) % 3](d + 1, st)
            else:
                through_c(d, st)
        elif st.target < d:
            return
        else:
            st.arrive()


def dive_c(d, st):
    while st.target:
        if st.target > d:
            if d % 37:
                DIVES[(d + 1) % 3](d + 1, st)
            else:
                through_c(d, st)
        elif st.target < d:
            return
        else:
            st.arrive()


DIVES = (dive_a, dive_b, dive_c)


def through_c(d, st):
    # a native frame boundary in the middle of the stack
    list(map(lambda _: DIVES[(d + 1) % 3](d + 1, st), (0,)))


def recursion(rng, stop):
    st = Depth(rng, stop)
    while not stop():
        st.target = rng.randint(1, MAX_DEPTH)
        dive_a(1, st)


# ---------------------------------------------------------------------------
# code objects created and freed

def fresh_function_source(n, rng):
    lines = ['\n' * (n % 40) + 'def gen_%d(k):' % n, '    t = 0']
    for i in range(rng.randint(1, 30)):
        lines.append('    t += (k * %d + %d) %% 7' % (i, n))
    lines += ['    for i in range(k):',
              '        t += i %% %d' % (n % 5 + 1),
              '    return t',
              '',
              'RESULT = gen_%d(K)' % n]
    return '\n'.join(lines) + '\n'


def fresh_class_source(n, rng):
    return ('class Fresh%d(object):\n'
            '    def work(self, k):\n'
            '        return sum(i * %d for i in range(k))\n'
            'RESULT = Fresh%d().work(K)\n' % (n, n, n))


def make_nested(n):
    def nested(k):
        return spin(k) + n
    return nested


def exec_churn(rng, stop):
    n = 0
    while not stop():
        n += 1
        kind = n % 4
        k = rng.randint(50, 1500)
        if kind == 0 or kind == 1:
            src = fresh_function_source(n, rng) if kind == 0 else fresh_class_source(n, rng)
            code = compile(src, '<stress-exec-%d>' % n, 'exec')
            ns = {'K': k}
            exec(code, ns)
            if rng.random() < 0.7:
                ns.clear()              # freed now; else left to the collector
            del code, ns
        elif kind == 2:
            f = eval(compile('lambda k: sum(i * %d for i in range(k))' % n,
                             '<stress-lambda-%d>' % n, 'eval'))
            f(k)
            del f
        else:
            f = make_nested(n)
            f(k)
            g = lambda k, n=n: spin(k) - n
            g(k)
            del f, g
        if n % 50 == 0:
            gc.collect()


# ---------------------------------------------------------------------------

WORKLOADS = {'threads': churn_threads, 'recursion': recursion, 'exec': exec_churn}


def run_workload(name, rng, stop):
    log_thread(name)
    WORKLOADS[name](rng, stop)


def start_workload(name, rng, stop):
    t = threading.Thread(target=run_workload, args=(name, random.Random(rng.random()), stop),
                         name=name)
    t.daemon = True
    t.start()
    return t


def parse_range(s):
    lo, _, hi = s.partition(':')
    lo = float(lo)
    return lo, float(hi) if hi else lo


def main():
    global _log_fd
    p = argparse.ArgumentParser()
    p.add_argument('scenario', choices=SCENARIOS)
    p.add_argument('--seed', type=int)
    p.add_argument('--after', type=parse_range)
    p.add_argument('--end', choices=('exit', 'os_exit', 'kill'), default='exit')
    p.add_argument('--status', type=int)
    p.add_argument('--pidfile')
    p.add_argument('--stderr')
    p.add_argument('--threadlog')
    p.add_argument('--max-life', type=float, default=900.0)
    opts = p.parse_args()

    if opts.stderr:
        fd = os.open(opts.stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    signal.alarm(max(1, int(opts.max_life)))
    if opts.pidfile:
        with open(opts.pidfile + '.tmp', 'w') as f:
            f.write('%d\n' % os.getpid())
        os.rename(opts.pidfile + '.tmp', opts.pidfile)
    if opts.threadlog:
        _log_fd = os.open(opts.threadlog, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with open('/proc/self/comm') as f:
            os.write(_log_fd, ('comm %s\n' % f.read().strip()).encode('ascii'))
        log_thread('MainThread')
    seed = opts.seed if opts.seed is not None else int(time.time() * 1000) % 1000000007
    sys.stderr.write('target: seed %d\n' % seed)
    sys.stderr.flush()
    rng = random.Random(seed)
    sys.setrecursionlimit(MAX_DEPTH * 3 + 500)
    if hasattr(sys, 'setswitchinterval'):
        sys.setswitchinterval(0.001)    # the GIL changes hands often
    else:
        sys.setcheckinterval(50)

    scenario = opts.scenario
    after = opts.after
    status = opts.status
    if scenario == 'exit':
        after = after or (0.5, 2.0)
        status = 23 if status is None else status
    status = status or 0
    stop = Stop()
    names = ['threads', 'recursion', 'exec'] if scenario in ('mixed', 'exit') else [scenario]
    for name in names:
        start_workload(name, rng, stop)
    end = time.time() + rng.uniform(*after) if after else None
    print('READY')
    sys.stdout.flush()

    busy = scenario in ('mixed', 'exit')
    while end is None or time.time() < end:
        if busy:
            spin(rng.randint(100, 2000))
        else:
            time.sleep(0.01)
    if opts.end == 'kill':
        os.kill(os.getpid(), signal.SIGKILL)
    elif opts.end == 'os_exit':
        os._exit(status)
    sys.exit(status)


if __name__ == '__main__':
    main()
