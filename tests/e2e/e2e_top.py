"""End-to-end tests of `pystrobe top` under a pseudo-terminal.  Run by
run.py: group(ctx, interps, rt), where rt is harness.py.

Each test runs top against tests/targets/threads.py --only-busy (one thread
spinning at the line marked @busy) on the newest interpreter found and on
2.7 when there is one: under a pseudo-terminal of a set size (the screen's
first function row is busy; every line fits the width; `q` and SIGINT end
it with the terminal restored), and with stdout a pipe (plain reports, no
escape sequences).  Usage errors once, on no interpreter.
"""
import fcntl
import os
import re
import select
import signal
import struct
import tempfile
import termios
import time

ANSI = re.compile(rb'\x1b(\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])')
ROW = re.compile(r'^\s*(\d+\.\d)\s+(?:(\d+\.\d)\s+)?(?:(\d+\.\d\d)\s+(\d+\.\d\d)\s+)?(\S.*)$')
T_TOP = 20            # a top run is killed after this many seconds
TOP_SECONDS = '2.5'   # -d for runs that end by themselves: two full windows


class PtyRun(object):
    """The outcome of a command run on a pseudo-terminal."""

    def __init__(self, argv, rc, out, err, timed_out, before, after):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.timed_out, self.before, self.after = timed_out, before, after

    @property
    def err_text(self):
        return self.err.decode('utf-8', 'replace')

    def describe(self, rt):
        return '\n    $ %s\n    exit status: %s%s\n    stderr: %s\n    terminal output (escapes shown): %s' % (
            ' '.join(rt.shq(a) for a in self.argv), self.rc,
            ' (TIMED OUT, killed)' if self.timed_out else '', rt.clip(self.err_text, 800),
            rt.clip(repr(self.out[-2500:]), 3000))


def run_pty(rt, argv, cols, rows, keys=(), signals=(), timeout=T_TOP):
    """Runs argv with stdin and stdout on a new pseudo-terminal of cols x rows.
    keys: (bytes, key) pairs: key is typed once bytes has appeared in the
    output (in order); signals: the same with a signal number."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    before = termios.tcgetattr(slave)
    errf = tempfile.TemporaryFile()
    out = bytearray()
    actions = [(w, 'key', k) for w, k in keys] + [(w, 'sig', s) for w, s in signals]
    timed_out = False
    p = None
    try:
        p = rt.spawn(argv, stdin=slave, stdout=slave, stderr=errf)
        deadline = time.time() + timeout
        while True:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    pass
            while actions and actions[0][0] in out:
                _, kind, what = actions.pop(0)
                if kind == 'key':
                    os.write(master, what)
                else:
                    os.kill(p.pid, what)
            if p.poll() is not None and not r:
                break
            if time.time() > deadline or rt._stopping.is_set():
                timed_out = True
                break
        after = termios.tcgetattr(slave)
    finally:
        if p is not None:
            rt._kill(p)
        os.close(master)
        os.close(slave)
    errf.seek(0)
    err = errf.read()
    errf.close()
    return PtyRun(argv, p.returncode, bytes(out), err, timed_out, before, after)


def screens(out):
    """The screens drawn (each from a cursor-home), as lists of plain lines."""
    shown = []
    for chunk in out.split(b'\x1b[H')[1:]:
        text = ANSI.sub(b'', chunk).decode('utf-8', 'replace')
        lines = text.replace('\r\n', '\n').replace('\r', '').split('\n')
        if lines and lines[-1] == '':
            lines.pop()
        shown.append(lines)
    return shown


def first_row(lines):
    """The first row of the functions table (None without one), parsed."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith('OWN%') and i + 1 < len(lines):
            m = ROW.match(lines[i + 1])
            return m.groups() if m else None
    return None


def busy_labels(rt):
    line = rt.line_of('threads', 'busy')
    return ('busy (%s:%d)' % (rt.THREADS_PY, line), 'busy (threads.py:%d)' % line)


def check_restored(P, res):
    """The terminal as it was: modes, main screen, cursor shown."""
    P.expect(not res.timed_out, 'timed out (killed)')
    P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
    lflag = termios.ICANON | termios.ECHO
    P.expect(res.before[3] & lflag == res.after[3] & lflag,
             'terminal modes not restored: lflag %#x before, %#x after' % (res.before[3], res.after[3]))
    enter = res.out.rfind(b'\x1b[?1049h')
    leave = res.out.rfind(b'\x1b[?1049l')
    P.expect(enter >= 0, 'the alternate screen was never entered')
    P.expect(leave > enter, 'the alternate screen was not left at the end')
    P.expect(res.out.rfind(b'\x1b[?25h') > res.out.rfind(b'\x1b[?25l'), 'the cursor was not shown again')


def pick(interps):
    """The newest interpreter, and a 2.7 if there is one."""
    if not interps:
        return []
    chosen = [max(interps, key=lambda I: I.ver)]
    old = [I for I in interps if I.ver[:2] == (2, 7) and I is not chosen[0]]
    return chosen + old[:1]


def interp_tests(ctx, I, rt, targets, first):
    R = ctx.runner
    pfx = 'top/%s/' % I.label
    top = [rt.PYSTROBE, 'top']
    labels = busy_labels(rt)

    def busy_target():
        t = rt.Target(ctx.tmp, I.exe, ver=I.ver, only_busy=True)
        targets.append(t)
        t.wait_ready()
        t.settle()
        return t
    busy_fx = rt.Lazy(busy_target)

    def screen_busy_first():
        t = busy_fx.get()
        res = run_pty(rt, top + ['-p', str(t.pid), '-d', TOP_SECONDS], 120, 40)
        P = rt.Problems()
        check_restored(P, res)
        P.expect(res.err == b'', 'stderr not empty')
        full = [s for s in screens(res.out) if first_row(s)]
        if P.expect(full, 'no screen with a function row'):
            row = first_row(full[-1])
            P.expect(row[4] in labels, 'first row of the last screen is %r, expected one of %r'
                     % (row[4], labels))
            P.expect(all(g is not None for g in row), 'columns missing at 120 columns: %r' % (row,))
            P.expect(all(len(s) <= 40 for s in full), 'a screen of more than 40 lines')
            P.expect(any(re.match(r'^\s*\d+\s+running(, gil)?\s+\d+\.\d\s+\d+\.\d\s+busy$', l)
                         for s in full for l in s),
                     'no screen shows the thread busy running')
            # Threads not sampled (off CPU) are shown, with their names.
            P.expect(any(re.match(r'^\s*\d+\s+idle\s+\d+\.\d\s+\d+\.\d\s+sleeper$', l)
                         for s in full for l in s),
                     'no screen shows the thread sleeper idle')
            P.expect(any('Python %d.%d' % I.ver[:2] in l for l in full[-1][:3]),
                     'the header does not name Python %d.%d' % I.ver[:2])
        P.fail_if_any(res.describe(rt))
    R.case(pfx + 'screen-busy-first', screen_busy_first)

    def quit_key():
        t = busy_fx.get()
        res = run_pty(rt, top + ['-p', str(t.pid), '-d', '60'], 100, 30, keys=[(b'busy (', b'q')])
        P = rt.Problems()
        check_restored(P, res)
        P.expect(res.err == b'', 'stderr not empty')
        P.fail_if_any(res.describe(rt))
    R.case(pfx + 'quit-key', quit_key)

    def keys_sort_and_pause():
        # t sorts by total: the outermost frames (on every stack) come first;
        # l shows functions; p pauses.  Then q.
        t = busy_fx.get()
        res = run_pty(rt, top + ['-p', str(t.pid), '-d', '60'], 120, 40,
                      keys=[(b'busy (', b't'), (b'sort: total', b'l'), (b'by function', b'p'),
                            (b'PAUSED', b'q')])
        P = rt.Problems()
        check_restored(P, res)
        sc = screens(res.out)
        paused = [s for s in sc if any(l.startswith('PAUSED') for l in s[:3])]
        if P.expect(paused, 'no screen says PAUSED'):
            s = paused[-1]
            P.expect(any(l.lstrip().startswith('OWN%') and l.endswith('FUNCTION') for l in s),
                     'the paused screen does not show functions')
            row = first_row(s)
            P.expect(row is not None and row[1] == '100.0',
                     'sorted by total, the first row is at %r%%, expected 100.0' % (row and row[1],))
        P.fail_if_any(res.describe(rt))
    R.case(pfx + 'keys-sort-pause', keys_sort_and_pause)

    def interrupt():
        t = busy_fx.get()
        res = run_pty(rt, top + ['-p', str(t.pid), '-d', '60'], 100, 30,
                      signals=[(b'busy (', signal.SIGINT)])
        P = rt.Problems()
        check_restored(P, res)
        P.fail_if_any(res.describe(rt))
    R.case(pfx + 'interrupt-restores', interrupt)

    def narrow(cols):
        def fn():
            t = busy_fx.get()
            res = run_pty(rt, top + ['-p', str(t.pid), '-d', TOP_SECONDS], cols, 20)
            P = rt.Problems()
            check_restored(P, res)
            sc = screens(res.out)
            wide = [l for s in sc for l in s if len(l) > cols]
            P.expect(not wide, '%d lines wider than %d columns, e.g. %r' % (len(wide), cols, wide[:3]))
            P.expect(all(len(s) <= 20 for s in sc), 'a screen of more than 20 lines')
            full = [s for s in sc if first_row(s)]
            if P.expect(full, 'no screen with a function row'):
                label = first_row(full[-1])[4]
                P.expect(label.startswith('busy'), 'first row %r, expected busy' % label)
            P.fail_if_any(res.describe(rt))
        return fn
    R.case(pfx + 'narrow-30', narrow(30))
    if first:
        R.case(pfx + 'narrow-20', narrow(20))

    def pipe():
        t = busy_fx.get()
        res = rt.run(top + ['-p', str(t.pid), '-d', TOP_SECONDS], T_TOP)
        P = rt.Problems()
        P.expect(not res.timed_out and res.rc == 0, 'exit status %s, expected 0' % res.rc)
        P.expect(b'\x1b' not in res.out, 'escape bytes in the output')
        P.expect(res.err == b'', 'stderr not empty')
        reports = [r.split('\n') for r in res.out_text.split('\n\n') if r.strip()]
        if P.expect(reports, 'no report'):
            for r in reports:
                P.expect(r[0].startswith('pystrobe top: pid %d, Python ' % t.pid),
                         'report header %r' % r[0])
                P.expect(len(r) > 1 and r[1].lstrip().startswith('OWN%'), 'no table heading: %r' % r[:2])
            rows = [first_row(r) for r in reports]
            P.expect(all(row and row[4] == labels[0] for row in rows),
                     'first rows %r, expected %r in every report' % ([row and row[4] for row in rows], labels[0]))
        P.fail_if_any(res.describe())
    R.case(pfx + 'pipe-plain', pipe)

    def launch():
        cmd = [I.exe, rt.THREADS_PY, '--only-busy', '--exit-after', '1.5', '--max-life', '60']
        res = rt.run(top + ['-d', '30', '--'] + cmd, T_TOP + 10)
        P = rt.Problems()
        P.expect(not res.timed_out and res.rc == 0, 'exit status %s, expected 0' % res.rc)
        lines = res.err_text.strip('\n').split('\n')
        P.expect(lines == ['pystrobe: the command ended with exit status 0'],
                 'stderr %r, expected the command\'s end' % lines)
        reports = [r.split('\n') for r in res.out_text.split('\n\n') if 'OWN%' in r]
        rows = [first_row(r) for r in reports]
        P.expect(any(row and row[4] == labels[0] for row in rows),
                 'no report with busy first: %r' % ([row and row[4] for row in rows],))
        P.fail_if_any(res.describe())
    R.case(pfx + 'launch', launch)


def usage_tests(ctx, rt):
    R = ctx.runner

    def nonexistent_pid():
        pid = 4194305
        while os.path.exists('/proc/%d' % pid):
            pid += 1
        return pid

    def usage(name, argv, rc=2, words=()):
        def fn():
            res = rt.run([rt.PYSTROBE] + argv, rt.T_PROMPT)
            P = rt.Problems()
            rt.check_one_line_error(P, res, rc, words=words)
            P.expect(res.out == b'', 'stdout not empty')
            P.fail_if_any(res.describe())
        R.case('top/usage-' + name, fn)

    me = str(os.getpid())
    usage('no-process', ['top'], words=['-p PID'])
    usage('rate-zero', ['top', '--rate', '0', '-p', me], words=['rate'])
    usage('unknown-option', ['top', '--bogus', '-p', me], words=['--bogus'])
    usage('pid-malformed', ['top', '-p', 'abc'])
    usage('pid-and-command', ['top', '-p', me, '--', 'sleep', '1'])
    usage('no-such-pid', ['top', '-p', str(nonexistent_pid())], rc=1)

    def help_():
        P = rt.Problems()
        for argv in (['help', 'top'], ['top', '--help']):
            res = rt.run([rt.PYSTROBE] + argv, rt.T_PROMPT)
            P.expect(res.rc == 0, '%s: exit status %s' % (' '.join(argv), res.rc))
            P.expect(res.out_text.startswith('usage: pystrobe top'), '%s: no usage line' % ' '.join(argv))
        res = rt.run([rt.PYSTROBE, '--help'], rt.T_PROMPT)
        P.expect(re.search(r'^\s+top\s', res.out_text, re.M), 'the overview does not list top')
        P.fail_if_any()
    R.case('top/help', help_)


def group(ctx, interps, rt):
    usage_tests(ctx, rt)
    chosen = pick(interps)
    if not chosen:
        def none():
            raise rt.Skip('no Python interpreter found')
        ctx.runner.case('top/screen-busy-first', none)
        return
    targets = []
    try:
        for i, I in enumerate(chosen):
            interp_tests(ctx, I, rt, targets, i == 0)
    finally:
        for t in targets:
            t.close()
