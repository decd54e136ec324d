"""End-to-end tests of thread states, sampling modes, thread filters and
--subprocesses, on every interpreter.  Run by run.py: group(ctx, I, rt),
where rt is harness.py (its helpers: Problems, record, parse_folded...).

Targets: tests/targets/states.py (a thread on a CPU that rarely holds the
GIL, a sleeper, a thread blocked on a lock, two threads fighting for the
GIL; or --many N sleeping threads), tests/targets/pool.py (a
multiprocessing pool of 3 busy workers) and tests/targets/kids.py (Python
children started before and during a recording, one exiting during it, a
non-Python child, a Python grandchild under a shell).  Asserted lines carry
"# @name" markers in those sources.

Nothing here asserts a timing or a rate: only which threads and processes
appear, with which stacks and which markers.
"""
import json
import os
import platform
import re
import select
import signal
import subprocess
import threading
import time

IDLE = '[idle]'
GIL_WAIT = '[gil wait]'
MARKERS = (IDLE, GIL_WAIT)

RATE = 200            # samples per second for the mode tests
DURATION = 1.5        # seconds
RAW_OS_NAME = 'raw-os-named'                      # states.py's thread threading does not know
SLEEPING = ('MainThread', 'sleeper', 'lock-waiter', RAW_OS_NAME)
RUNNING = ('compressor', 'fighter-1', 'fighter-2')
FIGHTERS = ('fighter-1', 'fighter-2')
ALL_THREADS = SLEEPING + RUNNING
MANY = 200            # threads of the scale test (besides MainThread)
POOL_WORKERS = 3
FUTEX = '202'                                    # x86_64 system call numbers
SLEEP_CALLS = ('23', '35', '230', '270')         # select nanosleep clock_nanosleep pselect6


class Proc(object):
    """A target we start (its own session: killed with everything it started)."""

    def __init__(self, rt, ctx, argv, what):
        self.rt, self.argv, self.what = rt, argv, what
        self.err_path = os.path.join(ctx.mkdtemp('target-'), 'stderr.txt')
        self.errf = open(self.err_path, 'wb')
        self.p = rt.spawn(argv, stdout=subprocess.PIPE, stderr=self.errf)
        self.pid = self.p.pid
        self.buf = b''

    def stderr_text(self):
        try:
            with open(self.err_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def readline(self, timeout=60):
        """The next stdout line (text, no newline); Failure on timeout or exit."""
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while b'\n' not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise self.rt.Failure('%s printed no line within %ds: %s\n    stderr: %s'
                                      % (self.what, timeout, ' '.join(self.argv),
                                         self.rt.clip(self.stderr_text(), 2000)))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise self.rt.Failure('%s exited (status %s) before printing a line: %s\n    stderr: %s'
                                          % (self.what, self.p.poll(), ' '.join(self.argv),
                                             self.rt.clip(self.stderr_text(), 2000)))
                self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode('utf-8', 'replace')

    def expect_line(self, word, timeout=60):
        """The JSON after `word` on the next line."""
        line = self.readline(timeout)
        if not line.startswith(word + ' '):
            raise self.rt.Failure('%s printed %r, expected %s {...}' % (self.what, line, word))
        return json.loads(line[len(word) + 1:])

    def close(self):
        self.rt._kill(self.p)
        try:
            self.p.stdout.close()
        except Exception:
            pass
        self.errf.close()


def wait_syscalls(rt, pid, want, timeout=20):
    """Until each tid in want ({tid: set of system call numbers}) sits in one."""
    if platform.machine() != 'x86_64':    # other system call numbers: give them time
        time.sleep(0.5)
        return
    deadline = time.time() + timeout
    calls = None
    while time.time() < deadline:
        calls = rt.task_syscalls(pid)
        if calls is None:           # /proc does not say: give them time
            time.sleep(0.5)
            return
        if all(calls.get(t) in w for t, w in want.items()):
            return
        time.sleep(0.02)
    raise rt.Failure('target threads never blocked where expected: want %r, system calls %r'
                     % (want, calls))


def process_roots(rt, P, stacks, cmd):
    """{pid: [stack below its root]} of stacks rooted in "process PID (COMMAND)",
    each COMMAND checked against cmd {pid: command line} where known."""
    pids = {}
    for (root,), rests in split_roots(rt, P, stacks, 1).items():
        m = re.match(r'^process (\d+) \((.*)\)$', root)
        if not P.expect(m is not None, 'root %r is not "process PID (COMMAND)"' % root):
            continue
        pid = int(m.group(1))
        pids[pid] = rests
        P.expect(pid not in cmd or m.group(2) == rt.sanitize(cmd[pid]),
                 'process %d: command %r, expected %r' % (pid, m.group(2), cmd.get(pid)))
    return pids


def split_roots(rt, P, stacks, nroots):
    """{(root frames...): {rest of the stack: count}}; every stack must have nroots roots."""
    out = {}
    for st, c in stacks.items():
        if len(st) <= nroots:
            P.expect(False, 'stack with nothing below its roots: %r' % rt.clip(';'.join(st), 300))
            continue
        d = out.setdefault(st[:nroots], {})
        d[st[nroots:]] = d.get(st[nroots:], 0) + c
    return out


def thread_root(rt, name, tid):
    return 'thread %s (%d)' % (rt.sanitize(name), tid)


def show(rt, stacks, n=8):
    return rt.top_stacks(stacks, n)


def run_record(rt, P, out, args, timeout=None):
    res = rt.record(['-f', 'folded', '-o', out] + list(args), timeout=timeout or rt.T_RECORD)
    P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
    return res


def summary(rt, P, res):
    """(samples, ticks, processes or None) from the summary line on stderr."""
    m = re.search(r'pystrobe: (\d+) samples from (\d+) threads?(?: of (\d+) process(?:es)?)? in '
                  r'([0-9.]+) s \(([0-9.]+) Hz of ([0-9.]+) Hz\)', res.err_text)
    if not P.expect(m is not None, 'no summary line "N samples from T threads in S s (X Hz of Y Hz)" on stderr'):
        return None, None, None
    secs, hz = float(m.group(4)), float(m.group(5))
    return int(m.group(1)), secs * hz, (int(m.group(3)) if m.group(3) else None)


_once_lock = threading.Lock()
_once_done = set()


def once(name):
    """True the first time only: for tests that need no interpreter."""
    with _once_lock:
        if name in _once_done:
            return False
        _once_done.add(name)
        return True


def usage_group(ctx, rt):
    """Bad --thread and --tid values: usage errors that name the option."""
    R = ctx.runner

    def bad(name, args, words):
        def fn():
            P = rt.Problems()
            res = rt.record(['-f', 'folded', '-o', os.path.join(ctx.mkdtemp('usage-'), 'out.folded'),
                             '-d', '1', '-p', str(os.getpid())] + args, timeout=rt.T_PROMPT)
            rt.check_one_line_error(P, res, 2, words=words)
            P.fail_if_any(res.describe())
        R.case('errors/states-' + name, fn)
    bad('thread-bad-regex', ['--thread', 'a['], ['--thread', 'a['])
    bad('tid-zero', ['--tid', '0'], ['--tid', '0'])
    bad('tid-not-a-number', ['--tid', 'x1'], ['--tid', 'x1'])


def group(ctx, I, rt):
    if once('usage'):
        usage_group(ctx, rt)
    R = ctx.runner
    pfx = I.label + '/states-'
    TG = rt.TARGETS
    STATES = os.path.join(TG, 'states.py')
    POOL = os.path.join(TG, 'pool.py')
    KIDS = os.path.join(TG, 'kids.py')
    Problems = rt.Problems
    procs = []

    def L(func, path, marker):
        return rt.label(func, path, rt.line_of(path, marker))

    # -- the states.py target, shared by the mode, filter and dump tests

    def make_states():
        t = Proc(rt, ctx, [I.exe, STATES, '--max-life', str(rt.TARGET_LIFE)], 'states.py')
        procs.append(t)
        info = t.expect_line('READY')
        tids = info['threads']
        if sorted(tids) != sorted(ALL_THREADS) or info['pid'] != t.pid:
            raise rt.Failure('setup: target reported %r' % info)
        tasks = set(rt.task_states(t.pid))
        if set(tids.values()) != tasks:
            raise rt.Failure('setup: threads %r but /proc/%d/task holds %r' % (tids, t.pid, sorted(tasks)))
        # The main thread prints READY, then sleeps: wait for that sleep (the
        # target itself waited for the sleeper, the raw thread and the lock
        # waiter's futex).
        sleeps = set(SLEEP_CALLS)
        wait_syscalls(rt, t.pid, {tids['MainThread']: sleeps, tids['sleeper']: sleeps,
                                  tids[RAW_OS_NAME]: sleeps, tids['lock-waiter']: set([FUTEX])})
        t.tids = tids
        t.names = dict((v, k) for k, v in tids.items())
        return t

    states = rt.Lazy(make_states)

    # What each thread's stack ends in (root first), and whether that is its whole stack.
    def leaf_of(name):
        if name == 'MainThread':
            return (L('<module>', STATES, 'main-call'), L('main', STATES, 'main-sleep')), True
        if name == RAW_OS_NAME:
            return (L('raw_sleeper', STATES, 'raw-sleep'),), True
        fn, mk = {'compressor': ('compressor', 'compress'), 'sleeper': ('sleeper', 'sleep'),
                  'lock-waiter': ('lock_waiter', 'lock-wait'),
                  'fighter-1': ('fighter', 'fight'), 'fighter-2': ('fighter', 'fight')}[name]
        return (L(fn, STATES, mk),), False

    def check_thread_stacks(P, name, rests, allowed_markers):
        """Each stack of thread `name` (below its root) is its known one, ending
        in one of allowed_markers (None: no marker)."""
        want, whole = leaf_of(name)
        bad = []
        for rest, c in rests.items():
            mark = rest[-1] if rest[-1] in MARKERS else None
            body = rest[:-1] if mark else rest
            if whole:
                ok = body == want
            else:
                # threading's bootstrap frames, then the thread's function
                ok = body[-len(want):] == want and len(body) > len(want) and \
                    all(re.search(r'/threading\.py:\d+\)$', f) for f in body[:-len(want)])
            if not ok or mark not in allowed_markers:
                bad.append((rest, c))
        P.expect(not bad, 'thread %s: %d stacks other than %s%s ending in %s, e.g.\n      %s'
                 % (name, len(bad), '' if whole else '<threading.py frames>;', ';'.join(want),
                    ' or '.join(m or 'no marker' for m in allowed_markers),
                    show(rt, dict(bad), 4)))

    def per_thread(P, t, stacks):
        """{thread name: {stack below the root: count}}, roots checked against the target's threads."""
        by_root = split_roots(rt, P, stacks, 1)
        out = {}
        for (root,), rests in by_root.items():
            m = re.match(r'^thread (.*) \((\d+)\)$', root)
            name = t.names.get(int(m.group(2))) if m else None
            if not P.expect(name is not None and root == thread_root(rt, name, int(m.group(2))),
                            'root %r is not "thread NAME (TID)" of one of the target\'s threads %r'
                            % (root, sorted(t.tids.items()))):
                continue
            out[name] = rests
        return out

    def rec_states(P, args, d, name='out.folded', rate=RATE, duration=DURATION):
        t = states.get()
        out = os.path.join(d, name)
        res = run_record(rt, P, out, ['-r', str(rate), '-d', str(duration), '-p', str(t.pid)] + list(args))
        return t, res, rt.parse_folded(P, out) or {}

    def counts(threads):
        return dict((n, sum(r.values())) for n, r in threads.items())

    try:
        # -- default mode: only threads on a CPU, no markers
        def cpu_mode():
            P = Problems()
            t, res, stacks = rec_states(P, ['--threads'], ctx.mkdtemp('cpu-'))
            th = per_thread(P, t, stacks)
            extra = sorted(set(th) - set(RUNNING))
            P.expect(not extra, 'threads off CPU sampled without --idle: %r' % extra)
            for n in RUNNING:
                P.expect(n in th, 'thread %s (on a CPU all along) has no samples' % n)
            for n, rests in th.items():
                check_thread_stacks(P, n, rests, (None,))
            P.fail_if_any(res.describe() + '\n    samples per thread: %r\n    top stacks:\n      %s'
                          % (counts(th), show(rt, stacks)))
        R.case(pfx + 'mode-cpu', cpu_mode)

        # -- --idle: every thread, idle ones marked [idle], GIL waiters [gil wait]
        def idle_mode():
            P = Problems()
            t, res, stacks = rec_states(P, ['--idle', '--threads'], ctx.mkdtemp('idle-'))
            th = per_thread(P, t, stacks)
            P.expect(sorted(th) == sorted(ALL_THREADS), 'threads sampled %r, expected every thread %r'
                     % (sorted(th), sorted(ALL_THREADS)))
            for n, rests in th.items():
                if n in SLEEPING:
                    # idle all along: every sample marked [idle], never [gil wait]
                    check_thread_stacks(P, n, rests, (IDLE,))
                else:
                    # blocked on nothing but the GIL: running or [gil wait], never [idle]
                    idle = sum(c for r, c in rests.items() if r[-1] == IDLE)
                    P.expect(idle == 0, 'thread %s, which blocks on nothing but the GIL, has %d samples marked %s'
                             % (n, idle, IDLE))
                    check_thread_stacks(P, n, rests, (None, GIL_WAIT, IDLE))
            waits = sum(c for n in FIGHTERS for r, c in th.get(n, {}).items() if r[-1] == GIL_WAIT)
            P.expect(waits > 0, 'no [gil wait] sample of the two threads fighting for the GIL')
            ticks = summary(rt, P, res)[1]
            # every thread in every tick: the sleeping ones' samples all alike
            c = counts(th)
            sl = [c.get(n, 0) for n in SLEEPING]
            P.expect(len(set(sl)) == 1, 'the sleeping threads have different sample counts: %r'
                     % dict(zip(SLEEPING, sl)))
            P.expect(ticks is None or sum(c.values()) <= len(ALL_THREADS) * ticks + len(ALL_THREADS),
                     'more samples than threads x ticks')
            P.fail_if_any(res.describe() + '\n    samples per thread: %r\n    top stacks:\n      %s'
                          % (c, show(rt, stacks, 12)))
        R.case(pfx + 'mode-idle', idle_mode)

        # -- --gil: only the GIL's holder, at most one sample per tick
        def gil_mode():
            P = Problems()
            t, res, stacks = rec_states(P, ['--gil', '--threads'], ctx.mkdtemp('gil-'))
            th = per_thread(P, t, stacks)
            c = counts(th)
            extra = sorted(set(th) - set(RUNNING))
            P.expect(not extra, 'threads that never hold the GIL sampled with --gil: %r' % extra)
            for n in FIGHTERS:
                P.expect(n in th, 'thread %s (holds the GIL half the time) has no samples' % n)
            for n, rests in th.items():
                check_thread_stacks(P, n, rests, (None,))
            total = sum(c.values())
            n, ticks, _ = summary(rt, P, res)
            if n is not None:
                P.expect(n == total, 'summary says %d samples, the profile holds %d' % (n, total))
                # one holder per tick (the summary's rate is rounded: allow for that)
                P.expect(total <= ticks * 1.01 + 2, '%d samples in about %.0f ticks: more than one GIL holder per tick'
                         % (total, ticks))
            # the compressor lets the GIL go while it compresses: it holds it rarely
            fighters = sum(c.get(x, 0) for x in FIGHTERS)
            P.expect(c.get('compressor', 0) * 3 < fighters,
                     'the compressor (which releases the GIL to compress) has %d samples, the fighters %d'
                     % (c.get('compressor', 0), fighters))
            P.fail_if_any(res.describe() + '\n    samples per thread: %r\n    top stacks:\n      %s'
                          % (c, show(rt, stacks)))
        R.case(pfx + 'mode-gil', gil_mode)

        # -- --threads: roots, and the same stacks without them
        def threads_roots():
            P = Problems()
            d = ctx.mkdtemp('roots-')
            t, res, plain = rec_states(P, ['--idle'], d, name='plain.folded', duration=1)
            t, res2, rooted = rec_states(P, ['--idle', '--threads'], d, name='rooted.folded', duration=1)
            bad = [s for s in plain if s[0].startswith('thread ')]
            P.expect(not bad, 'without --threads, stacks rooted in a thread: %s'
                     % rt.clip(repr([';'.join(s) for s in bad[:2]]), 600))
            th = per_thread(P, t, rooted)
            P.expect(sorted(th) == sorted(ALL_THREADS), '--threads: roots for %r, expected %r'
                     % (sorted(th), sorted(ALL_THREADS)))
            for n in SLEEPING:
                rests = th.get(n, {})
                P.expect(len(rests) == 1, 'thread %s: %d distinct stacks below its root, expected 1: %r'
                         % (n, len(rests), list(rests)[:3]))
                for rest in rests:
                    P.expect(plain.get(rest, 0) > 0, 'thread %s\'s stack %r missing from the run without --threads'
                             % (n, ';'.join(rest)))
            P.expect(sum(plain.values()) > 0 and set(s[-1] for s in plain) <= set(MARKERS) |
                     set(s[-1] for r in th.values() for s in r),
                     'leaves without --threads that no thread has with it')
            P.fail_if_any(res.describe() + res2.describe() + '\n    top stacks (--threads):\n      %s'
                          % show(rt, rooted, 10))
        R.case(pfx + 'threads-roots', threads_roots)

        # -- --thread REGEX: only matching threads; every matching one that runs appears
        def filter_regex():
            P = Problems()
            d = ctx.mkdtemp('fre-')
            # CPU mode: both fighters run, nothing else may appear
            t, res, stacks = rec_states(P, ['--threads', '--thread', '^fighter-'], d, name='cpu.folded', duration=1)
            th = per_thread(P, t, stacks)
            P.expect(sorted(th) == sorted(FIGHTERS), '--thread ^fighter-: threads %r, expected %r'
                     % (sorted(th), sorted(FIGHTERS)))
            # --idle: union of patterns, a match anywhere in the name, the OS
            # name of a thread threading does not know
            args = ['--idle', '--threads', '--thread', 'ter-2$', '--thread', 'mpres', '--thread', 'os-name',
                    '--thread', '^lock']
            t, res2, stacks2 = rec_states(P, args, d, name='idle.folded', duration=1)
            th2 = per_thread(P, t, stacks2)
            want = sorted(['fighter-2', 'compressor', RAW_OS_NAME, 'lock-waiter'])
            P.expect(sorted(th2) == want, '%s: threads %r, expected %r' % (' '.join(args), sorted(th2), want))
            P.fail_if_any(res.describe() + res2.describe() + '\n    top stacks:\n      %s\n      %s'
                          % (show(rt, stacks, 4), show(rt, stacks2, 8)))
        R.case(pfx + 'filter-thread-regex', filter_regex)

        # -- --tid TID: only those threads; with --thread, the union
        def filter_tid():
            P = Problems()
            d = ctx.mkdtemp('ftid-')
            t = states.get()
            args = ['--threads', '--tid', str(t.tids['fighter-1']), '--tid', str(t.tids['compressor'])]
            t, res, stacks = rec_states(P, args, d, name='cpu.folded', duration=1)
            th = per_thread(P, t, stacks)
            P.expect(sorted(th) == ['compressor', 'fighter-1'], '%s: threads %r, expected compressor, fighter-1'
                     % (' '.join(args), sorted(th)))
            args2 = ['--idle', '--threads', '--tid', str(t.tids['sleeper']), '--tid', str(t.tids['MainThread']),
                     '--thread', '^fighter-2$']
            t, res2, stacks2 = rec_states(P, args2, d, name='idle.folded', duration=1)
            th2 = per_thread(P, t, stacks2)
            want = sorted(['sleeper', 'MainThread', 'fighter-2'])
            P.expect(sorted(th2) == want, '%s: threads %r, expected %r' % (' '.join(args2), sorted(th2), want))
            for n in ('sleeper', 'MainThread'):
                if n in th2:
                    check_thread_stacks(P, n, th2[n], (IDLE,))
            P.fail_if_any(res.describe() + res2.describe() + '\n    top stacks:\n      %s\n      %s'
                          % (show(rt, stacks, 4), show(rt, stacks2, 8)))
        R.case(pfx + 'filter-tid', filter_tid)

        # -- dump: each thread's state
        def dump_states():
            t = states.get()
            P = Problems()
            res = rt.dump(t.pid)
            doc = None
            try:
                doc = json.loads(res.out.decode('utf-8'))
            except ValueError as e:
                P.expect(False, 'dump --json: not JSON: %s' % e)
            P.expect(res.rc == 0, 'dump --json: exit status %s' % res.rc)
            if doc:
                got = dict((th.get('tid'), th) for th in doc.get('threads', []))
                P.expect(sorted(got) == sorted(t.tids.values()), 'dump --json: tids %r, expected %r'
                         % (sorted(got), sorted(t.tids.values())))
                holders = [th.get('name') for th in got.values() if th.get('gil')]
                P.expect(len(holders) <= 1, 'dump --json: several GIL holders: %r' % holders)
                for n, tid in t.tids.items():
                    th = got.get(tid)
                    if th is None:
                        continue
                    P.expect(th.get('name') == n, 'dump --json: tid %d named %r, expected %r' % (tid, th.get('name'), n))
                    st = th.get('state')
                    if n in SLEEPING:
                        P.expect(st == 'idle' and th.get('active') is False and th.get('gil') is False,
                                 'dump --json: thread %s: state %r active %r gil %r, expected idle, not active, '
                                 'not holding the GIL' % (n, st, th.get('active'), th.get('gil')))
                    else:
                        P.expect(st in ('running', 'gil_wait'), 'dump --json: thread %s: state %r, expected '
                                 'running or gil_wait' % (n, st))
                        P.expect(th.get('active') is (st == 'running'), 'dump --json: thread %s: state %r but active %r'
                                 % (n, st, th.get('active')))
                    P.expect(not (st == 'gil_wait' and th.get('gil')), 'dump --json: thread %s waits for the GIL it holds' % n)
                    # What it waits for: the lock waiter in a futex that is not the GIL's.
                    wf = 'gil' if st == 'gil_wait' else 'lock' if n == 'lock-waiter' else None
                    P.expect(th.get('waiting_for', 'absent') == wf, 'dump --json: thread %s: waiting_for %r, expected %r'
                             % (n, th.get('waiting_for', 'absent'), wf))
                    fr = th.get('frames') or [{}]
                    want, _ = leaf_of(n)
                    lf = fr[0]
                    P.expect(rt.label(lf.get('function', ''), lf.get('file', ''), lf.get('line', 0)) == want[-1],
                             'dump --json: thread %s: innermost frame %r, expected %s' % (n, lf, want[-1]))
                gh = doc.get('gil_holder', 'absent')
                want_gh = [th.get('tid') for th in got.values() if th.get('gil')]
                P.expect(gh == (want_gh[0] if want_gh else None), 'dump --json: gil_holder %r, but the threads say %r'
                         % (gh, want_gh))
            res2 = rt.dump(t.pid, json_=False)
            P.expect(res2.rc == 0, 'dump: exit status %s' % res2.rc)
            heads = dict((int(m.group(1)), (m.group(2), m.group(3)))
                         for m in re.finditer(r'^Thread (\d+) "(.*)" \((.*)\)$', res2.out_text, re.M))
            P.expect(sorted(heads) == sorted(t.tids.values()), 'dump: headers for tids %r, expected %r'
                     % (sorted(heads), sorted(t.tids.values())))
            for n, tid in t.tids.items():
                if tid not in heads:
                    continue
                name, flags = heads[tid]
                P.expect(name == n, 'dump: tid %d named %r, expected %r' % (tid, name, n))
                if n in SLEEPING:
                    want_flags = 'idle, lock wait' if n == 'lock-waiter' else 'idle'
                    P.expect(flags == want_flags, 'dump: thread %s is (%s), expected (%s)' % (n, flags, want_flags))
                else:
                    P.expect(flags in ('active', 'active, gil', 'gil wait'),
                             'dump: thread %s is (%s), expected (active), (active, gil) or (gil wait)' % (n, flags))
            # Who holds the GIL: the thread marked gil, by tid and name, or nobody.
            gl = re.search(r'^GIL: (.*)$', res2.out_text, re.M)
            held = [(tid, fl[0]) for tid, fl in heads.items() if fl[1].endswith(', gil')]
            want_gl = 'held by thread %d "%s"' % held[0] if held else 'not held'
            P.expect(gl and gl.group(1) == want_gl, 'dump: GIL line %r, expected %r'
                     % (gl and gl.group(0), 'GIL: ' + want_gl))
            P.fail_if_any(res2.describe(out_limit=3000))
        R.case(pfx + 'dump', dump_states)
    finally:
        if states.done and states.value is not None:
            states.value.close()

    try:
        # -- 200 threads: all of them, each with its stack
        def many_threads():
            t = Proc(rt, ctx, [I.exe, STATES, '--many', str(MANY), '--max-life', str(rt.TARGET_LIFE)],
                     'states.py --many')
            procs.append(t)
            try:
                info = t.expect_line('READY')
                tids = info['threads']
                wait_syscalls(rt, t.pid, {tids['MainThread']: set(SLEEP_CALLS)})
                P = Problems()
                d = ctx.mkdtemp('many-')
                out = os.path.join(d, 'out.folded')
                res = run_record(rt, P, out, ['--idle', '--threads', '-r', '100', '-d', '1', '-p', str(t.pid)])
                stacks = rt.parse_folded(P, out) or {}
            finally:
                t.close()
            names = ['idle-%03d' % i for i in range(MANY)]
            P.expect(sorted(tids) == sorted(names + ['MainThread']), 'setup: target reported %d threads' % len(tids))
            want = {}
            for n in names:
                want[thread_root(rt, n, tids[n])] = n
            main_root = thread_root(rt, 'MainThread', tids['MainThread'])
            by_root = split_roots(rt, P, stacks, 1)
            roots = set(r[0] for r in by_root)
            missing = sorted(set(want) - roots)
            P.expect(not missing, '%d of %d threads missing, e.g. %r' % (len(missing), MANY, missing[:5]))
            extra = sorted(roots - set(want) - set([main_root]))
            P.expect(not extra, 'roots of no thread: %r' % extra[:5])
            P.expect(main_root in roots, 'MainThread (%s) missing' % main_root)
            leaf = (L('idle_worker', STATES, 'many-sleep'), IDLE)
            bad = [(r[0], rest) for r, rests in by_root.items() if r[0] in want for rest in rests
                   if rest[-2:] != leaf]
            P.expect(not bad, '%d stacks of the sleeping threads do not end in %s, e.g. %r'
                     % (len(bad), ';'.join(leaf), bad[:2]))
            summary(rt, P, res)
            P.fail_if_any(res.describe() + '\n    %d roots' % len(roots))
        R.case(pfx + 'many-threads', many_threads)

        # -- a sleeping thread's stack is reused only while it has not run:
        #    one that wakes every 20 ms to sleep elsewhere shows both places
        def idle_moves():
            src = ('import sys, time\n'
                   'def first(): time.sleep(0.02)\n'
                   'def second(): time.sleep(0.02)\n'
                   'sys.stdout.write("READY {}\\n"); sys.stdout.flush()\n'
                   'while True: first(); second()\n')
            t = Proc(rt, ctx, [I.exe, '-c', src], 'python -c (two sleeps)')
            procs.append(t)
            try:
                t.expect_line('READY')
                P = Problems()
                out = os.path.join(ctx.mkdtemp('moves-'), 'out.folded')
                res = run_record(rt, P, out, ['--idle', '-r', '200', '-d', '1.5', '-p', str(t.pid)])
                stacks = rt.parse_folded(P, out) or {}
            finally:
                t.close()
            total = sum(stacks.values())
            where = {}
            for st, c in stacks.items():
                if len(st) >= 2 and st[-1] == IDLE:
                    where[st[-2]] = where.get(st[-2], 0) + c
            # Each sleep takes half the time.
            for func, line in (('first', 2), ('second', 3)):
                got = where.get(rt.label(func, '<string>', line), 0)
                P.expect(total and 0.35 * total <= got <= 0.65 * total,
                         '%s: %d of %d samples idle in it, expected 35-65%%; idle leaves: %r'
                         % (func, got, total, where))
            P.fail_if_any(res.describe())
        R.case(pfx + 'idle-moves', idle_moves)

        # -- --subprocesses: a pool of 3 busy workers
        def pool():
            t = Proc(rt, ctx, [I.exe, POOL, '--workers', str(POOL_WORKERS), '--max-life', str(rt.TARGET_LIFE)],
                     'pool.py')
            procs.append(t)
            P = Problems()
            d = ctx.mkdtemp('pool-')
            try:
                info = t.expect_line('READY')
                workers = info['workers']
                wait_syscalls(rt, t.pid, {t.pid: set([FUTEX] + list(SLEEP_CALLS))})
                cmd = dict((p, ' '.join(rt.proc_cmdline(p))) for p in [t.pid] + workers)
                out = os.path.join(d, 'sub.folded')
                res = run_record(rt, P, out, ['--subprocesses', '--idle', '--threads', '-r', '100', '-d', '1.5',
                                              '-p', str(t.pid)])
                out2 = os.path.join(d, 'plain.folded')
                res2 = run_record(rt, P, out2, ['--idle', '-r', '100', '-d', '0.5', '-p', str(t.pid)])
            finally:
                t.close()
            P.expect(len(set(workers)) == POOL_WORKERS and t.pid not in workers,
                     'setup: workers %r' % workers)
            stacks = rt.parse_folded(P, out) or {}
            pids = process_roots(rt, P, stacks, cmd)
            for pid, rests in sorted(pids.items()):
                bad = [r for r in rests if not r[0].startswith('thread ')]
                P.expect(not bad, 'process %d: stacks without a thread below the process: %r'
                         % (pid, [';'.join(b) for b in bad[:2]]))
            P.expect(sorted(pids) == sorted([t.pid] + workers), 'processes %r, expected the parent %d and the workers %r'
                     % (sorted(pids), t.pid, sorted(workers)))
            work = L('busy', POOL, 'work')
            for w in workers:
                P.expect(any(r[-1] == work for r in pids.get(w, {})),
                         'worker %d: no sample ending in %s (busy all along)' % (w, work))
            wait = L('main', POOL, 'parent-wait')
            P.expect(any(wait in r and r[-1] == IDLE for r in pids.get(t.pid, {})),
                     'parent: no idle sample in %s' % wait)
            _, _, nprocs = summary(rt, P, res)
            P.expect(nprocs == POOL_WORKERS + 1, 'summary counts %r processes, expected %d' % (nprocs, POOL_WORKERS + 1))
            # without --subprocesses: the parent alone, no process roots
            plain = rt.parse_folded(P, out2) or {}
            P.expect(not any(s[0].startswith('process ') for s in plain),
                     'without --subprocesses, stacks rooted in a process')
            P.expect(not any(s[-1] == work for s in plain),
                     'without --subprocesses, the workers\' busy frame %s is sampled' % work)
            P.fail_if_any(res.describe() + res2.describe() + '\n    top stacks:\n      %s' % show(rt, stacks, 10))
        R.case(pfx + 'subprocesses-pool', pool)

        # -- --subprocesses: children started during the recording, children
        # that exit during it, a non-Python child, a grandchild under a shell
        def children():
            t = Proc(rt, ctx, [I.exe, KIDS, '--max-life', str(rt.TARGET_LIFE)], 'kids.py')
            procs.append(t)
            P = Problems()
            d = ctx.mkdtemp('kids-')
            out = os.path.join(d, 'out.folded')
            argv = [rt.PYSTROBE, 'record', '-f', 'folded', '-o', out, '--subprocesses', '--idle', '-r', '100',
                    '-d', '3', '-p', str(t.pid)]
            rec = None
            try:
                info = t.expect_line('READY')
                early, grand, shell, sleep_ = info['early'], info['grand'], info['shell'], info['sleep']
                wait_syscalls(rt, t.pid, {t.pid: set(SLEEP_CALLS)})
                t0 = time.time()
                rec = rt.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                # Sampling has begun once pystrobe holds the target's thread
                # files open; then a little longer, so the parent is sampled
                # before it starts the late child.
                started = wait_reading(rec.pid, t.pid, 5)
                time.sleep(0.3 if started else 1.0)
                os.kill(t.pid, signal.SIGUSR1)
                late = t.expect_line('LATE', timeout=20)['late']
                time.sleep(0.6)
                os.kill(early, signal.SIGTERM)
                gone = wait_gone(early, 10)
                try:
                    o, e = rec.communicate(timeout=rt.T_RECORD)
                    res = rt.Result(argv, rec.returncode, o, e, time.time() - t0, False)
                except subprocess.TimeoutExpired:
                    rt._kill(rec)
                    o, e = rec.communicate()
                    res = rt.Result(argv, rec.returncode, o, e, time.time() - t0, True)
                cmd = dict((p, ' '.join(rt.proc_cmdline(p))) for p in (t.pid, grand, late))
            finally:
                if rec is not None:
                    rt._kill(rec)
                t.close()
            P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
            P.expect(gone, 'setup: the early child %d did not exit on SIGTERM' % early)
            errs = [ln for ln in res.err_text.splitlines()
                    if not re.match(r'^pystrobe: (\d+ samples from |cost per sample|wrote |stacks that moved while read: )', ln)]
            P.expect(not errs, 'unexpected lines on stderr: %r' % errs)
            stacks = rt.parse_folded(P, out) or {}
            pids = process_roots(rt, P, stacks, cmd)
            want = {t.pid: 'parent', early: 'early child (exited during the recording)',
                    late: 'late child (started during the recording)', grand: 'grandchild (under sh)'}
            for pid, what in sorted(want.items()):
                P.expect(pid in pids, 'the %s %d has no samples' % (what, pid))
            for pid, what in ((sleep_, 'sleep (not Python)'), (shell, 'sh (not Python)')):
                P.expect(pid not in pids, 'the %s child %d was sampled' % (what, pid))
            P.expect(sorted(pids) == sorted(want), 'processes %r, expected %r' % (sorted(pids), sorted(want)))
            sleep_leaf = (L('child', KIDS, 'child-sleep'), IDLE)
            for pid in (early, late, grand):
                P.expect(any(r[-2:] == sleep_leaf for r in pids.get(pid, {})),
                         'child %d: no sample ending in %s' % (pid, ';'.join(sleep_leaf)))
            a, b = L('main', KIDS, 'phase-a'), L('main', KIDS, 'phase-b')
            P.expect(any(a in r for r in pids.get(t.pid, {})),
                     'the parent was never sampled before it started the late child (in %s)' % a)
            P.expect(any(b in r for r in pids.get(t.pid, {})),
                     'the parent was never sampled after it started the late child (in %s)' % b)
            _, _, nprocs = summary(rt, P, res)
            P.expect(nprocs == 4, 'summary counts %r processes, expected 4' % nprocs)
            P.fail_if_any(res.describe() + '\n    top stacks:\n      %s' % show(rt, stacks, 10))
        R.case(pfx + 'subprocesses-children', children)
    finally:
        for p in procs:
            p.close()


def wait_reading(pid, target, timeout):
    """Until process pid holds a /proc/TARGET/task/... file open (True), or timeout (False)."""
    deadline = time.time() + timeout
    pat = '/proc/%d/task/' % target
    while time.time() < deadline:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    if os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith(pat):
                        return True
                except OSError:
                    pass
        except OSError:
            return False
        time.sleep(0.01)
    return False


def wait_gone(pid, timeout):
    """Until pid no longer exists (reaped by its parent)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not os.path.exists('/proc/%d' % pid):
            return True
        time.sleep(0.01)
    return False
