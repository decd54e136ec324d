#!/usr/bin/env python3
"""Stress tests: pystrobe record at 10 kHz against targets that never sit still.

    python3 tests/stress/run.py [--long] [--seconds S] [--pystrobe PATH]
                                [--versions 2.7,3.12,debian,...|all] [-j N]
                                [--xfail TAG[:N],...|all] [--full] [--seed N]
                                [--keep] [--list] [FILTER...]

Targets (tests/stress/targets.py): threads born and dying, recursion depth
changing constantly, code objects created and freed, all at once; each
recorded in attach mode (-p PID) and launch mode (-- CMD), plus the target
exiting by itself mid-recording and the target killed with SIGKILL
mid-recording (attach: killed from here; launch: it kills itself).

Each case checks that pystrobe exits 0 within a bounded time (a hang is
killed and fails), prints nothing from AddressSanitizer/UBSan (pystrobe runs
with ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 and
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1), prints only its own
summary lines, writes a complete folded profile (every line "frames COUNT",
nothing partial, nothing left next to it), that the summary agrees with the
file (samples = sum of the counts, threads, distinct stacks, the drop
breakdown, the ticks taken and missed against the rate and the time), and in
launch mode that it reports how the command really ended and leaves no
process behind.  It also checks what the profile says against what the
target knows: thread labels against the threads' real names and ids (the
target logs them), generated code's frame names against its file names and
lines, and, in a running target, that every stack starts where a thread
starts.  Those checks are tagged (see XFAIL_TAGS): --xfail TAG:N tolerates
a known pystrobe bug in at most N cases (TAG alone: in any number).  A case
whose only failures are tolerated is reported XFAIL, not PASS; more cases
than N failing with TAG fail the run (the bug got worse).  A tag listed that
no case shows is reported XPASS in the summary and does not fail the run
(these bugs show only under some schedules): lower N or drop the tag once
it stays away.  Crashes, sanitizer reports, hangs, wrong exit statuses,
missing or partial profiles and wrong summaries always fail.

Default (short, what `make check` runs): --seconds 1.5, the interpreters
2.7, 3.10, 3.12, 3.13 (pyenv), the system's /usr/bin/python3 and the
Debian root's 3.14 and 3.15 (tests/interps.py; `--versions sid`: all of
the root's), the mixed
target and the exit and kill cases on each, the single-workload targets
spread over them.  --long (`make stress`): 60 s per case, every interpreter,
every case.  FILTER: only cases whose name contains one of the substrings
(names: LABEL/SCENARIO/MODE, e.g. 3.12.1/recursion/attach, 3.13.0/kill/launch).
A failure prints the pystrobe command, its stderr and the target's seed;
its files are kept (the directory is printed).

Interpreters are found by tests/interps.py, as the e2e tests and the
benchmark find them: pyenv versions ($PYENV_ROOT, else `pyenv root`, else
~/.pyenv) versions/*/bin/pythonX.Y, /usr/bin/python3, other pythonX.Y on
PATH; deduplicated by realpath; then the Debian root's python3.X (.ci/sid-root),
run through a wrapper that keeps the PID.

Prints PASS/XFAIL/FAIL/SKIP lines and `stress: P passed, F failed, S
skipped, X xfailed`; exit status 1 if anything failed or a tag's budget was
exceeded.  Stdlib only, Python 3.6+.
"""
import argparse
import concurrent.futures
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGETS_PY = os.path.join(HERE, 'targets.py')
DEFAULT_PYSTROBE = os.path.join(ROOT, 'build', 'asan', 'pystrobe')
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from interps import discover  # noqa: E402  (one discovery for e2e, stress and bench)

RATE = 10000                 # Hz: record's limit
NATIVE_RATE = 200            # Hz with --native: each sample stops threads (ptrace)
SHORT_SECONDS = 1.5
LONG_SECONDS = 60.0
SHORT_VERSIONS = ('2.7', '3.10', '3.12', '3.13')   # pyenv; plus the system python3
ROOT_SHORT_VERSIONS = ('3.14', '3.15')              # of the Debian unstable root (tests/interps.py)
SINGLES = ('threads', 'recursion', 'exec')
HANG_MARGIN = 30.0           # pystrobe must return within its duration + this
READY_TIMEOUT = 60.0
EXIT_STATUS = 23             # what the exit target ends with
NOTICE_LIMIT = 5.0           # attach: pystrobe stops within this of the target's end
# pystrobe counts the ticks it falls behind after each tick it takes, so the
# lag before the last tick (a late wake-up, the loaded machine preempting
# it) is neither taken nor counted as missed: up to this much short is the
# known failure 'final-stall', more is a plain failure.
FINAL_STALL = 0.5

SAN_ENV = {
    'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=1',
    'UBSAN_OPTIONS': 'halt_on_error=1:print_stacktrace=1',
}
SANITIZER_RE = re.compile(r'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|'
                          r'runtime error:|==\d+==\s*ERROR|^SUMMARY: ', re.M)

SUMMARY_RE = re.compile(
    r'^pystrobe: (\d+) samples from (\d+) threads? in ([0-9.]+) s '
    r'\(([0-9.]+) Hz of ([0-9.]+) Hz\)'
    r'(?:; (\d+) dropped: ([^;]*))?'
    r'(?:; (\d+) stacks truncated at (\d+) frames)?$')
COST_RE = re.compile(r'^pystrobe: cost per sample: [0-9.]+ us CPU, [0-9.]+ reads$')
NATIVE_RE = re.compile(r'^pystrobe: native frames: threads held (\d+) times(, [0-9.]+ us each on average '
                       r'\(longest [0-9.]+ us\))?; pause per sample [0-9.]+ us'
                       r'(; \d+ stacks without native frames \(thread not stopped\))?'
                       r'(; \d+ threads stopped late, let go as they stopped)?'
                       r'(; \d+ stacks without native frames \(not unwound\))?'
                       r'(; \d+ merged with frames left over)?$')
NOSAMPLES_RE = re.compile(r'^pystrobe: no samples: ')
WROTE_RE = re.compile(r'^pystrobe: wrote (.+) \((\d+) distinct stacks\)$')
ENDED_RE = re.compile(r'^pystrobe: the command ended with (.+)$')
STOPPED_RE = re.compile(r'^pystrobe: the command was still running: stopped it \((.+)\)$')
GONE_RE = re.compile(r'^pystrobe: process \d+ ended after [0-9.]+ s$')
DROP_NAMES = ('torn stack', 'unreadable memory', 'unreadable thread list',
              'behind schedule', 'no Python frame')
TORN_CAUSES = ('a frame freed', 'frames moved', 'a frame returning', 'outermost frame', 'garbage', 'not code',
               'generator outermost', 'frame cycle', 'unreadable')
_CAUSES = r'( \((?:(?:%s) \d+(?:, |(?=\))))+\))?' % '|'.join(re.escape(c) for c in TORN_CAUSES)
MOVED_RE = re.compile(r'^pystrobe: stacks that moved while read: \d+ walks taken again' + _CAUSES +
                      r'; \d+ dropped after \d+ tries' + _CAUSES + r'(; \d+ cut at the frame then running)?$')
UNREADABLE_RE = re.compile(r'^pystrobe: \d+ stack reads? found a code object unreadable on every try: '
                           r'kept, that frame shown as <unreadable code object at 0x\.\.\.> '
                           r'\(\d+ walks taken again before it was judged so\)$')


# ---------------------------------------------------------------------------
# processes: each in its own session, all killed at the end

_lock = threading.Lock()
_procs = set()
_stopping = threading.Event()


def spawn(argv, **kw):
    if _stopping.is_set():
        raise Stopped()
    kw.setdefault('stdin', subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    with _lock:
        _procs.add(p)
    return p


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def reap(p):
    kill_group(p)
    try:
        p.kill()
    except OSError:
        pass
    try:
        p.wait(timeout=10)
    except Exception:
        pass
    with _lock:
        _procs.discard(p)


def kill_everything():
    with _lock:
        procs = list(_procs)
    for p in procs:
        reap(p)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            state = f.read().rsplit(b')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b'Z', b'X')


def pid_cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


class Stopped(Exception):
    pass


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------
# interpreters (discover(): tests/interps.py, shared with the e2e tests and the bench)

def select_interps(interps, versions, long_mode):
    """versions: None (the mode's default), 'all', or a comma-separated list of
    X.Y, labels or label prefixes ('debian', '3.12.1', 'path-')."""
    if versions is None:
        if long_mode:
            return list(interps)
        return [I for I in interps
                if (I.kind == 'pyenv' and I.xy in SHORT_VERSIONS) or I.kind == 'system' or
                (I.kind == 'root' and I.xy in ROOT_SHORT_VERSIONS)]
    if versions.strip() == 'all':
        return list(interps)
    toks = [t.strip() for t in versions.split(',') if t.strip()]
    return [I for I in interps
            if any(t == I.xy or t == I.label or I.label.startswith(t) for t in toks)]


# ---------------------------------------------------------------------------
# cases

class Case(object):
    """scenario: a targets.py scenario; end: 'run' (until the duration ends),
    'exit' (the target exits by itself), 'kill' (SIGKILL mid-recording)."""

    def __init__(self, interp, scenario, mode, end, threads, idle=False, native=False):
        self.interp, self.scenario, self.mode, self.end = interp, scenario, mode, end
        self.threads, self.idle, self.native = threads, idle, native
        self.rate = NATIVE_RATE if native else RATE
        kind = scenario if end == 'run' else end
        self.name = '%s/%s/%s%s' % (interp.label, kind, mode, '-native' if native else '')


def make_cases(interps, long_mode, full):
    cases = []
    for i, I in enumerate(interps):
        if full or long_mode:
            singles = [(s, m) for s in SINGLES for m in ('attach', 'launch')]
        else:   # spread the single workloads over the interpreters
            singles = [(SINGLES[i % 3], 'attach'), (SINGLES[(i + 1) % 3], 'launch')]
        for k, (s, m) in enumerate([('mixed', 'attach'), ('mixed', 'launch')] + singles):
            # attach mode roots stacks in threads (--threads); launch mode merges them
            # and samples every thread (--idle: sleeping threads' stacks reused,
            # state files read as threads come and go); so do some single workloads
            cases.append(Case(I, s, m, 'run', threads=(m == 'attach'),
                              idle=(m == 'launch' or (k >= 2 and (i + k) % 2 == 1))))
        for end in ('exit', 'kill'):
            for m in ('attach', 'launch'):
                cases.append(Case(I, 'exit' if end == 'exit' else 'mixed', m, end,
                                  threads=(m == 'attach'), idle=(m == 'launch')))
        # --native: threads stopped and unwound while they come and go and
        # exit; every thread of a churning target (--idle)
        cases.append(Case(I, 'mixed', 'attach', 'run', threads=True, idle=True, native=True))
    return cases


class Ctx(object):
    def __init__(self, pystrobe, seconds, long_mode, tmp, seed):
        self.pystrobe, self.seconds, self.long = pystrobe, seconds, long_mode
        self.tmp, self.seed = tmp, seed

    def end_window(self):
        """(lo, hi): when a target ends by itself or is killed, in seconds
        after it is ready (attach) or after READY (launch)."""
        if self.seconds >= 10:
            return 5.0, self.seconds * 0.8
        return 0.6, max(1.0, self.seconds * 1.3)


# Seconds a target that ends by itself lives at least after READY when attached to.
ATTACH_MARGIN = 2.0


class Outcome(object):
    def __init__(self):
        self.argv = None
        self.rc = None
        self.out = b''
        self.err = b''
        self.elapsed = 0.0
        self.timed_out = False
        self.target_err = ''


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def shq(a):
    if re.match(r'^[\w./=:,@+-]+$', a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def clip(s, n):
    return s if len(s) <= n else s[:n] + '... [%d more chars]' % (len(s) - n)


def wait_ready(p, timeout, what):
    deadline = time.time() + timeout
    buf = b''
    fd = p.stdout.fileno()
    while b'\n' not in buf:
        left = deadline - time.time()
        if left <= 0 or _stopping.is_set():
            raise Failure('%s printed no READY within %.0f s' % (what, timeout))
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise Failure('%s exited (status %s) before READY' % (what, p.poll()))
            buf += chunk
    if buf.split(b'\n')[0] != b'READY':
        raise Failure('%s printed %r instead of READY' % (what, buf))


def run_case(ctx, case, rng):
    """Runs one case; returns (Outcome, facts) or raises Failure."""
    I = case.interp
    d = tempfile.mkdtemp(prefix=re.sub(r'[^\w.-]', '_', case.name) + '-', dir=ctx.tmp)
    outdir = os.path.join(d, 'out')
    os.mkdir(outdir)
    out = os.path.join(outdir, 'profile.folded')
    pidfile = os.path.join(d, 'target.pid')
    terr = os.path.join(d, 'target.stderr')
    tlog = os.path.join(d, 'threads.log')
    S = ctx.seconds
    lo, hi = ctx.end_window()
    seed = rng.randrange(1 << 30)
    tgt = [I.exe, TARGETS_PY, case.scenario, '--seed', str(seed), '--pidfile', pidfile,
           '--stderr', terr, '--threadlog', tlog]
    if case.end == 'run':
        duration = S
    else:
        duration = max(S, hi + 10)
    tgt += ['--max-life', str(int(duration + HANG_MARGIN + 60))]
    if case.mode == 'launch' and case.end != 'run':
        tgt += ['--after', '%g:%g' % (lo, hi), '--end', case.end]
    if case.mode == 'attach' and case.end == 'exit':
        # The target must still be there when pystrobe attaches: under ASan on a
        # loaded machine that took 1.28 s once (the exit window starts at READY).
        tgt += ['--after', '%g:%g' % (max(lo, ATTACH_MARGIN), max(hi, ATTACH_MARGIN + 0.5))]
    rec = [ctx.pystrobe, 'record', '-r', str(case.rate), '-d', '%g' % duration, '-f', 'folded',
           '-o', out] + (['--threads'] if case.threads else []) + (['--idle'] if case.idle else []) + \
        (['--native'] if case.native else [])
    env = dict(os.environ, **SAN_ENV)
    timeout = duration + HANG_MARGIN + (5 if case.mode == 'launch' else 0)
    o = Outcome()
    facts = {'tlog': tlog, 'dir': d, 'out': out, 'outdir': outdir, 'duration': duration, 'seed': seed,
             'target_argv': tgt, 'target_end_time': None, 'target_status': None}

    target = None
    waiter = None
    ps = None
    try:
        if case.mode == 'attach':
            target = spawn(tgt, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            wait_ready(target, READY_TIMEOUT, 'the target')

            def wait_target():
                st = target.wait()
                facts['target_end_time'] = time.time()
                facts['target_status'] = st
            waiter = threading.Thread(target=wait_target, daemon=True)
            waiter.start()
            o.argv = rec + ['-p', str(target.pid)]
        else:
            o.argv = rec + ['--'] + tgt
        errf = open(os.path.join(d, 'pystrobe.stderr'), 'w+b')
        t0 = time.time()
        ps = spawn(o.argv, stdout=subprocess.PIPE, stderr=errf, env=env)
        if case.mode == 'attach' and case.end == 'kill':
            delay = rng.uniform(lo, hi)
            facts['kill_after'] = delay
            try:
                ps.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
            facts['target_was_running'] = target.poll() is None
            facts['kill_time'] = time.time()
            try:
                os.kill(target.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            o.out, _ = ps.communicate(timeout=max(1.0, timeout - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            o.timed_out = True
            kill_group(ps)
            o.out, _ = ps.communicate()
        o.elapsed = time.time() - t0
        facts['end_time'] = time.time()
        o.rc = ps.returncode
        errf.seek(0)
        o.err = errf.read()
        errf.close()
        if case.mode == 'launch':
            try:
                with open(pidfile) as f:
                    facts['launched_pid'] = int(f.read())
            except (OSError, ValueError):
                facts['launched_pid'] = None
            lp = facts['launched_pid']
            facts['left_running'] = bool(lp and pid_alive(lp) and 'targets.py' in pid_cmdline(lp))
        if waiter is not None and case.end != 'run':
            waiter.join(5)
    finally:
        if ps is not None:
            reap(ps)
        if target is not None:
            reap(target)
        lp = facts.get('launched_pid')
        if lp and pid_alive(lp) and 'targets.py' in pid_cmdline(lp):
            try:
                os.kill(lp, signal.SIGKILL)
            except OSError:
                pass
        if target is not None:
            try:
                target.stdout.close()
            except Exception:
                pass
    o.target_err = read_text(terr)
    return o, facts


# ---------------------------------------------------------------------------
# checks

# Kinds of failure a check can be tagged with, so that --xfail can tolerate
# a known pystrobe bug (reported as a note) while every other check stays hard.
XFAIL_TAGS = {
    'thread-labels': 'a thread labelled with another thread\'s name',
    'thread-count': 'the summary counts a thread more than once',
    'frame-labels': 'a frame labelled with garbage or with another code object\'s name/file/line',
    'rootless': 'a stack cut short (not starting where a thread starts)',
    'shim-frames': 'CPython 3.12\'s C-stack entry frame "<interpreter trampoline> (<shim>:1)" shown',
    'empty-stacks': 'samples counted in the summary but absent from a folded file without --threads',
    'lost-threads': 'a thread busy on a CPU all along with no sample at all',
    'final-stall': 'ticks neither taken nor counted as missed at the end',
}


def parse_xfail(text):
    """'TAG:N,TAG,...' or 'all' -> {tag: at most N cases, or None for any number}."""
    budgets = {}
    for item in (t.strip() for t in text.split(',')):
        if not item:
            continue
        tag, _, n = item.partition(':')
        tags = sorted(XFAIL_TAGS) if tag == 'all' else [tag]
        if tag != 'all' and tag not in XFAIL_TAGS:
            raise ValueError('unknown --xfail tag %r (known: %s)' % (tag, ', '.join(sorted(XFAIL_TAGS))))
        if n and not n.isdigit():
            raise ValueError('--xfail %s: the count after the colon must be a number of cases' % item)
        for t in tags:
            budgets[t] = int(n) if n else None
    return budgets


class Problems(object):
    xfail = frozenset()

    def __init__(self):
        self.items = []
        self.known = []

    def expect(self, cond, msg, tag=None):
        if not cond:
            if tag is not None and tag in self.xfail:
                self.known.append('[%s] %s' % (tag, msg))
            else:
                self.items.append(msg + (' [%s]' % tag if tag else ''))
        return cond


def python_file(label):
    """The frame is Python's (or a root or marker): what the checks know."""
    m = re.match(r'^.* \((.*?)(?::\d+)?\)$', label)
    if label.startswith(('thread ', 'process ', '[')) and not re.match(r'^\[.*\+0x[0-9a-f]+\]$', label):
        return True
    return bool(m) and (m.group(1).startswith('<') or m.group(1).endswith(('.py', '.pyw')))


def python_only(stacks):
    """--native stacks with their C frames taken out: the Python stacks they merged."""
    out = {}
    for s, c in stacks.items():
        k = tuple(f for f in s if python_file(f))
        out[k] = out.get(k, 0) + c
    return out


def parse_folded(P, path):
    """{stack tuple: count}, or None.  Every line must be complete."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        P.expect(False, 'no profile: %s' % e)
        return None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        P.expect(False, 'profile is not UTF-8: %s' % e)
        return None
    if not P.expect(text == '' or text.endswith('\n'),
                    'profile does not end with a newline (partial last line %r)'
                    % clip(text.rsplit('\n', 1)[-1], 200)):
        return None
    stacks = {}
    bad = []
    for n, ln in enumerate(text[:-1].split('\n') if text else [], 1):
        m = re.match(r'^(.+) ([1-9][0-9]*)$', ln)
        frames = tuple(m.group(1).split(';')) if m else ()
        if not m or any(f == '' for f in frames):
            bad.append('line %d: %r' % (n, clip(ln, 200)))
            continue
        P.expect(frames not in stacks, 'line %d: stack listed twice: %r' % (n, clip(m.group(1), 200)))
        stacks[frames] = stacks.get(frames, 0) + int(m.group(2))
    P.expect(not bad, '%d malformed lines, first %s' % (len(bad), bad[0] if bad else ''))
    return stacks


def parse_stderr(P, o):
    """The summary's numbers, from pystrobe's stderr; every line must be one of its own."""
    text = o.err.decode('utf-8', 'replace')
    sm = SANITIZER_RE.search(text)
    P.expect(sm is None, 'sanitizer output on stderr: %r' % clip(text[sm.start():] if sm else '', 3000))
    info = {}
    odd = []
    for ln in text.split('\n'):
        if ln == '':
            continue
        m = SUMMARY_RE.match(ln)
        if m:
            if 'samples' in info:
                odd.append(ln)
            info.update(samples=int(m.group(1)), threads=int(m.group(2)), secs=float(m.group(3)),
                        hz=float(m.group(4)), of_hz=float(m.group(5)),
                        dropped=int(m.group(6) or 0), drops={},
                        truncated=int(m.group(8) or 0))
            if m.group(7):
                for part in m.group(7).split(', '):
                    pm = re.match(r'^(\d+) (.+)$', part.strip())
                    if not pm or pm.group(2) not in DROP_NAMES or pm.group(2) in info['drops']:
                        odd.append('bad drop part %r in: %s' % (part, ln))
                        continue
                    info['drops'][pm.group(2)] = int(pm.group(1))
            continue
        m = WROTE_RE.match(ln)
        if m:
            info['wrote'], info['distinct'] = m.group(1), int(m.group(2))
            continue
        m = ENDED_RE.match(ln)
        if m:
            info['ended'] = m.group(1)
            continue
        m = STOPPED_RE.match(ln)
        if m:
            info['stopped'] = m.group(1)
            continue
        if GONE_RE.match(ln):
            info['gone'] = True
            continue
        if COST_RE.match(ln) or NOSAMPLES_RE.match(ln) or MOVED_RE.match(ln) or \
                UNREADABLE_RE.match(ln):
            continue
        m = NATIVE_RE.match(ln)
        if m:
            info['held'] = int(m.group(1))
            continue
        odd.append(ln)
    P.expect(not odd, 'unexpected lines on stderr: %r' % clip('\n'.join(odd), 2000))
    return info


def check_case(ctx, case, o, facts):
    P = Problems()
    if not P.expect(not o.timed_out, 'HANG: pystrobe still running after %.0f s (duration %g s): killed'
                    % (o.elapsed, facts['duration'])):
        return P
    P.expect(o.rc is not None and o.rc >= 0,
             'pystrobe died of signal %s' % (-o.rc if o.rc is not None else '?'))
    P.expect(o.rc == 0, 'exit status %s, expected 0' % o.rc)
    info = parse_stderr(P, o)
    out = facts['out']
    left = sorted(os.listdir(facts['outdir']))
    P.expect(left == ['profile.folded'], 'files next to the output: %r' % left)
    stacks = parse_folded(P, out)
    if stacks is not None and case.native:
        stacks = python_only(stacks)
    if case.native:
        info.pop('distinct', None)   # counts the stacks with their C frames
    have_summary = P.expect('samples' in info, 'no summary line on stderr')
    P.expect('wrote' in info, 'no "wrote" line on stderr')
    if 'wrote' in info:
        P.expect(info['wrote'] == out, 'wrote %r, expected %r' % (info['wrote'], out))

    ended_early = case.end != 'run'
    D = facts['duration']
    target_end = facts.get('target_end_time')

    # the target: did it do what the case needs?
    if case.mode == 'attach' and case.end == 'exit':
        st = facts.get('target_status')
        P.expect(st == EXIT_STATUS, 'target ended with status %s, expected %d' % (st, EXIT_STATUS))
    if case.mode == 'attach' and case.end == 'kill':
        P.expect(facts.get('target_was_running'), 'target ended before it was killed (status %s)'
                 % facts.get('target_status'))
    if case.end == 'run' and 'Traceback' in o.target_err:
        P.expect(False, 'the target failed: %s' % clip(o.target_err, 1500))

    if have_summary:
        n, secs = info['samples'], info['secs']
        RATE_ = case.rate
        P.expect(info['of_hz'] == RATE_, 'summary says "of %g Hz", expected %d' % (info['of_hz'], RATE_))
        P.expect(n > 0, 'no samples, though the target ran Python')
        P.expect(info['hz'] <= RATE_ * 1.02, 'achieved %.1f Hz, above the %d Hz asked' % (info['hz'], RATE_))
        P.expect(sum(info['drops'].values()) == info['dropped'],
                 'dropped %d, but the reasons add up to %d' % (info['dropped'], sum(info['drops'].values())))
        P.expect(info['truncated'] == 0, '%d stacks truncated (no target goes that deep)' % info['truncated'])
        # Every tick is either taken or counted as missed: taken + behind = time x rate
        # (give or take the rounding of the rate and the time, and the last stall).
        ticks = info['hz'] * secs
        behind = info['drops'].get('behind schedule', 0)
        expect_ticks = RATE_ * secs
        slack = 0.02 * expect_ticks + 150
        what = ('ticks taken (%.0f = %.1f Hz x %.2f s) + missed (%d) = %.0f, expected about %.0f '
                '(%d Hz x %.2f s)' % (ticks, info['hz'], secs, behind, ticks + behind,
                                      expect_ticks, RATE_, secs))
        off = ticks + behind - expect_ticks
        P.expect(-slack - RATE_ * FINAL_STALL <= off <= slack, what)
        P.expect(off >= -slack or off < -slack - RATE_ * FINAL_STALL, what + ' (the lag before the '
                 'last tick is not counted)', 'final-stall')
        if ended_early:
            P.expect(secs < D - 1, 'sampled %.2f s: did not stop when the target ended (duration %g s)'
                     % (secs, D))
            P.expect(o.elapsed < D, 'pystrobe returned after %.2f s, duration %g s' % (o.elapsed, D))
        else:
            # (a last slow tick on a loaded machine can end it a little late)
            P.expect(D - 0.1 <= secs <= D + 1.5, 'sampled %.2f s, duration %g s' % (secs, D))
        if case.mode == 'attach' and ended_early and target_end is not None:
            late = facts['end_time'] - max(target_end, facts.get('kill_time') or 0)
            P.expect(late <= NOTICE_LIMIT, 'pystrobe returned %.2f s after the target ended' % late)
            facts['late'] = late

    if stacks is not None and have_summary:
        total = sum(stacks.values())
        n = info['samples']
        lines = len(stacks)
        P.expect(stacks, 'the profile is empty')
        roots = set(s[0] for s in stacks)
        # a thread's root alone, or with only the state --idle gives it ([idle], [gil wait])
        empties = sum(c for s, c in stacks.items()
                      if s[0].startswith('thread ') and all(MARK_RE.match(f) for f in s[1:]))
        facts['empties'] = empties
        if case.threads:
            P.expect(total == n, 'summary says %d samples, the profile holds %d' % (n, total))
            P.expect(all(r.startswith('thread ') for r in roots),
                     'stacks not rooted in a thread: %r' % clip(repr(sorted(r for r in roots if not r.startswith('thread '))[:5]), 400))
            P.expect(len(roots) == info['threads'],
                     'summary says %d threads, the profile has %d thread roots'
                     % (info['threads'], len(roots)), 'thread-count')
            check_thread_labels(P, roots, facts['tlog'])
            if 'distinct' in info:
                P.expect(lines == info['distinct'] or len(roots) != info['threads'],
                         'summary says %d distinct stacks, the profile has %d' % (info['distinct'], lines))
                P.expect(lines == info['distinct'] or len(roots) == info['threads'],
                         'summary says %d distinct stacks, the profile has %d (threads counted twice '
                         'hold stacks of their own)' % (info['distinct'], lines), 'thread-count')
        else:
            P.expect(total <= n, 'summary says %d samples, the profile holds more: %d' % (n, total))
            P.expect(total >= n, 'summary says %d samples, the profile holds %d: %d samples (threads '
                     'on a CPU with no Python frame) are counted but not written'
                     % (n, total, n - total), 'empty-stacks')
            facts['missing'] = n - total
            P.expect(not any(r.startswith('thread ') for r in roots), 'thread roots without --threads')
            if 'distinct' in info:
                P.expect(lines <= info['distinct'], 'summary says %d distinct stacks, the profile has more: %d'
                         % (info['distinct'], lines))
        check_content(P, case, stacks, info, facts)

    if case.mode == 'launch':
        P.expect(not facts.get('left_running'), 'the command (pid %s) was left running'
                 % facts.get('launched_pid'))
        if case.end == 'run':
            P.expect(re.match(r'^killed by signal 15\b', info.get('stopped', '')),
                     'expected "the command was still running: stopped it (killed by signal 15 ...)", '
                     'got %r' % (info.get('stopped') or info.get('ended')))
        elif case.end == 'exit':
            P.expect(info.get('ended') == 'exit status %d' % EXIT_STATUS,
                     'expected "the command ended with exit status %d", got %r'
                     % (EXIT_STATUS, info.get('ended') or info.get('stopped')))
        else:
            P.expect(re.match(r'^killed by signal 9\b', info.get('ended', '')),
                     'expected "the command ended with killed by signal 9 ...", got %r'
                     % (info.get('ended') or info.get('stopped')))
    else:
        P.expect('ended' not in info and 'stopped' not in info, 'attach mode reports a command\'s end')
        if case.end in ('exit', 'kill') and have_summary:
            P.expect(info.get('gone'), 'attached to a target that ended mid-recording, and the summary '
                     'does not say "process N ended after S s"')
    return P


def read_thread_log(path):
    """(comm, {tid: threading name or None for a raw thread}, {tid: the OS
    name it inherited from the thread that started it}) from the target's log."""
    comm, names, inherited = None, {}, {}
    for ln in read_text(path).split('\n'):
        if ln.startswith('comm '):
            comm = ln[5:]
            continue
        parts = ln.split(' ', 2)
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        names[int(parts[0])] = None if parts[1] == '-' else parts[1]
        if len(parts) == 3:
            inherited[int(parts[0])] = parts[2]
    return comm, names, inherited


def check_thread_labels(P, roots, tlog):
    """Each thread root "thread NAME (TID)" names that thread: its threading name,
    or its OS name (before threading knows it, or for a raw thread: the
    process's, or from 3.14 the name of the thread that started it, which
    its OS thread inherits), never another thread's name."""
    comm, truth, inherited = read_thread_log(tlog)
    if comm is None:
        return
    wrong = []
    for r in roots:
        m = re.match(r'^thread (?:(.*) )?\((\d+)\)$', r)
        if not m:
            continue
        name, tid = m.group(1), int(m.group(2))
        if tid not in truth:
            continue
        real = truth[tid]
        if name is not None and name not in (comm, real, inherited.get(tid)):
            wrong.append('%s: thread %d is %s' % (r, tid, repr(real) if real else
                                                  'a raw thread (OS name %r)' % comm))
    P.expect(not wrong, '%d threads labelled with another thread\'s name: %s'
             % (len(wrong), clip('; '.join(sorted(wrong)), 1200)), 'thread-labels')


FRAME_RE = re.compile(r'^(.*) \((.*):(\d+)\)$')
# What a code object's name can be: identifiers (any script), dotted with
# <locals> and the like on 3.11+ (co_qualname).
PY_NAME_RE = re.compile(r'^(?:[^\W\d]\w*|<[a-z]+>)(?:\.(?:[^\W\d]\w*|<[a-z]+>))*$')
# Where a stack starts in a target that is running (attached, not starting
# nor finalising): the script, a threading thread, a raw thread.
# what --idle ends a sample with when its thread is not running
MARK_RE = re.compile(r'^\[(?:idle|gil wait)\]$')
ROOT_RE = re.compile(r'^(?:<module> \(.*targets\.py:\d+\)|(?:Thread\.)?_?_bootstrap \(.*threading\.py:\d+\)|'
                     r'churn_worker \(.*targets\.py:\d+\))$')


def generated_label_ok(name, path, line):
    """Whether a frame of the code targets.py compiles at run time is labelled
    as that code: the name, the file and the line belong together (a code
    object freed and another made at its address must not keep the old
    labels).  None when the frame is not of generated code."""
    m = re.match(r'^<stress-(exec|lambda)-(\d+)>$', path)
    nm = re.match(r'^(?:gen_|Fresh)(\d+)\b', name)
    if not m:
        return None if not nm else False
    n = int(m.group(2))
    # 3.11+ puts a module's first instruction (RESUME) on line 0
    if name == '<module>' and line == 0:
        return True
    if m.group(1) == 'lambda':     # compile(..., 'eval'): a <module> making a lambda
        return name in ('<module>', '<lambda>', '<genexpr>', '<lambda>.<locals>.<genexpr>') and line == 1
    if nm and int(nm.group(1)) != n:
        return False
    ok_names = ('<module>', 'gen_%d' % n, 'Fresh%d' % n, 'Fresh%d.work' % n, 'work',
                'Fresh%d.work.<locals>.<genexpr>' % n, '<genexpr>')
    return name in ok_names and 1 <= line <= n % 40 + 40


def check_frames(P, case, stacks, facts):
    """Every frame a Python frame with a Python name; in a running target,
    every stack starting where a thread starts.  A frame named with garbage,
    or a stack cut short, is a stack read while it changed and kept anyway."""
    frames = (lambda s: s[1:]) if case.threads else (lambda s: s)
    bad_names = {}
    shims = 0
    for s, c in stacks.items():
        for f in frames(s):
            if f.startswith('[') and f.endswith(']'):
                continue
            if f == '<interpreter trampoline> (<shim>:1)':
                shims += c
                continue
            m = FRAME_RE.match(f)
            if not m or not PY_NAME_RE.match(m.group(1)) or \
                    generated_label_ok(m.group(1), m.group(2), int(m.group(3))) is False:
                bad_names[f] = bad_names.get(f, 0) + c
    facts['bad_names'] = sum(bad_names.values())
    facts['shims'] = shims
    P.expect(not shims, '%d samples hold the C-stack entry frame "<interpreter trampoline> (<shim>:1)"'
             % shims, 'shim-frames')
    P.expect(not bad_names, '%d samples hold frames that are not "NAME (FILE:LINE)" with a Python '
             'name, or name the generated code wrong: %s' % (sum(bad_names.values()), clip('; '.join(repr(f) for f in sorted(bad_names)[:5]), 800)),
             'frame-labels')
    if case.mode != 'attach' or case.end != 'run':
        return      # starting up and finalising, stacks start in many places
    rootless = {}
    for s, c in stacks.items():
        fs = frames(s)
        # without a Python frame (only --idle's state marker): nothing to start anywhere
        if fs and not ROOT_RE.match(fs[0]) and not all(MARK_RE.match(f) for f in fs):
            rootless[s] = c
    facts['rootless'] = sum(rootless.values())
    P.expect(not rootless, '%d samples (of %d) in %d stacks that do not start where a thread starts, e.g. %s'
             % (sum(rootless.values()), sum(stacks.values()), len(rootless),
                clip(' | '.join(';'.join(s) for s in sorted(rootless, key=lambda k: -rootless[k])[:3]), 1200)),
             'rootless')


def check_content(P, case, stacks, info, facts):
    """The target did stress what it should, and pystrobe saw it."""
    frames = lambda s: s[1:] if case.threads else s
    labels = set(f for s in stacks for f in s)
    P.expect(any('targets.py:' in f for f in labels), 'no frame from targets.py')
    check_frames(P, case, stacks, facts)
    if info.get('samples', 0) < 1000:
        return      # too few to say what the workloads did
    sc = case.scenario
    busy = {'mixed': ('MainThread', 'recursion', 'exec'), 'recursion': ('recursion',),
            'exec': ('exec',)}.get(sc, ())
    lost = []
    if case.threads and case.end == 'run' and busy:
        # The workloads' threads run Python on a CPU the whole time (sharing
        # the GIL): each must have samples, under its own thread id.
        _, truth, _ = read_thread_log(facts['tlog'])
        tids = set(int(m.group(1)) for m in (re.search(r'\((\d+)\)$', s[0]) for s in stacks) if m)
        lost = ['%s (%d)' % (name, tid) for tid, name in sorted(truth.items())
                if name in busy and tid not in tids]
        P.expect(not lost, 'no sample at all of %s, busy all along' % ', '.join(lost), 'lost-threads')
    # what the workloads did can only be seen in the threads that were sampled
    tag = 'lost-threads' if lost else None
    if sc in ('recursion', 'mixed') and case.end == 'run':
        deepest = max(len(frames(s)) for s in stacks)
        facts['deepest'] = deepest
        P.expect(deepest >= 100, 'deepest stack %d frames; the recursion target goes to 500' % deepest, tag)
    if sc in ('exec', 'mixed') and case.end == 'run':
        gen = set(re.sub(r'^.*\((<stress-\w+-\d+>):\d+\)$', r'\1', f) for f in labels if '(<stress-' in f)
        facts['fresh_code'] = len(gen)
        P.expect(len(gen) >= 2, '%d distinct generated code objects seen, expected several' % len(gen), tag)
    if sc in ('threads', 'mixed') and case.end == 'run':
        if case.threads:
            churn = [r for r in set(s[0] for s in stacks)
                     if not re.match(r'^thread (MainThread|threads|recursion|exec) \(', r)]
            facts['churn_threads'] = len(churn)
            P.expect(len(churn) >= 5, 'only %d short-lived threads seen' % len(churn))
        else:
            P.expect(any(f.startswith('churn_worker ') for f in labels), 'no churn_worker frame')


# ---------------------------------------------------------------------------

class Runner(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.passed = self.failed = self.skipped = self.xfailed = 0
        self.tolerated = {}     # tag -> cases

    def report(self, status, name, why=''):
        with self.lock:
            if status == 'PASS':
                self.passed += 1
            elif status == 'XFAIL':
                self.xfailed += 1
            elif status == 'SKIP':
                self.skipped += 1
            else:
                self.failed += 1
            print('%s %s%s' % (status, name, (': ' + why) if why else ''))
            sys.stdout.flush()


def describe(o, facts, P=None):
    s = ''
    if P is not None:
        s += '\n  - ' + '\n  - '.join(P.items + ['(known, --xfail) ' + k for k in P.known])
    s += '\n    $ %s\n    exit status: %s%s (%.2f s)' % (
        ' '.join(shq(a) for a in o.argv or []), o.rc,
        ' (TIMED OUT, killed)' if o.timed_out else '', o.elapsed)
    s += '\n    env: %s' % ' '.join('%s=%s' % kv for kv in sorted(SAN_ENV.items()))
    err = o.err.decode('utf-8', 'replace')
    if err:
        s += '\n    stderr: ' + clip(err, 6000).replace('\n', '\n            ')
    if o.target_err.strip():
        s += '\n    target stderr: ' + clip(o.target_err.strip(), 1500).replace('\n', '\n            ')
    if facts.get('kill_after') is not None:
        s += '\n    target SIGKILLed %.2f s after pystrobe started' % facts['kill_after']
    return s


def summary_of(info_err, facts):
    m = SUMMARY_RE.search(info_err)
    bits = []
    if m:
        bits.append('%s samples, %s threads, %s s, %s Hz' % (m.group(1), m.group(2), m.group(3), m.group(4)))
        if m.group(6):
            bits.append('%s dropped' % m.group(6))
    for k, fmt in (('deepest', 'deepest %d'), ('fresh_code', '%d fresh code objects'),
                   ('churn_threads', '%d churn threads'), ('late', 'stopped %.2f s after the end'),
                   ('missing', '%d samples without a Python frame not in the file'),
                   ('rootless', '%d rootless samples'), ('bad_names', '%d garbage frame names'),
                   ('shims', '%d shim frames'),
                   ('empties', '%d samples without a Python frame')):
        if facts.get(k):
            bits.append(fmt % facts[k])
    return ', '.join(bits)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--long', action='store_true',
                    help='60 s per case, every interpreter, every case (make stress)')
    ap.add_argument('--seconds', type=float, help='recording length per case (default %g, --long %g)'
                    % (SHORT_SECONDS, LONG_SECONDS))
    ap.add_argument('--pystrobe', default=os.environ.get('PYSTROBE') or DEFAULT_PYSTROBE,
                    help='the binary (default build/asan/pystrobe)')
    ap.add_argument('--versions', help='X.Y, labels or label prefixes, comma-separated, or all')
    ap.add_argument('--full', action='store_true', help='every case on every interpreter')
    ap.add_argument('-j', type=int, default=2, help='cases at once (default 2)')
    ap.add_argument('--seed', type=int, help='seed of the random choices (default: the clock)')
    ap.add_argument('--xfail', default='',
                    help='known pystrobe bugs to tolerate (reported XFAIL, not failed): comma-separated '
                    'TAG:N (in at most N cases) or TAG (in any number), tags from %s; or all'
                    % ', '.join(sorted(XFAIL_TAGS)))
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--list', action='store_true', help='list the cases, run nothing')
    ap.add_argument('filters', nargs='*', help='only cases whose name contains one of these')
    args = ap.parse_args()

    try:
        budgets = parse_xfail(args.xfail)
    except ValueError as e:
        ap.error(str(e))
    Problems.xfail = frozenset(budgets)
    seconds = args.seconds if args.seconds is not None else (LONG_SECONDS if args.long else SHORT_SECONDS)
    if seconds <= 0:
        ap.error('--seconds must be positive')
    seed = args.seed if args.seed is not None else int(time.time()) % 1000000
    pystrobe = os.path.abspath(args.pystrobe)
    interps = select_interps(discover(), args.versions, args.long)
    cases = [c for c in make_cases(interps, args.long, args.full)
             if not args.filters or any(f in c.name for f in args.filters)]
    if args.list:
        for c in cases:
            print(c.name)
        return
    runner = Runner()
    print('stress: %s, %g s per case at %d Hz, seed %d, %d cases on %s'
          % (pystrobe, seconds, RATE, seed, len(cases), ' '.join(I.label for I in interps) or 'nothing'))
    sys.stdout.flush()
    if not os.access(pystrobe, os.X_OK):
        runner.report('FAIL', 'pystrobe', '%s does not exist or is not executable '
                      '(make build/asan/pystrobe)' % pystrobe)
        print('stress: 0 passed, 1 failed, 0 skipped')
        sys.exit(1)
    if not interps:
        runner.report('SKIP', 'interpreters', 'no Python interpreter found')

    tmp = tempfile.mkdtemp(prefix='pystrobe-stress-')
    ctx = Ctx(pystrobe, seconds, args.long, tmp, seed)
    t_start = time.time()

    def one(i, case):
        rng = random.Random('%d/%s' % (seed, case.name))
        if _stopping.is_set():
            return
        try:
            o, facts = run_case(ctx, case, rng)
            P = check_case(ctx, case, o, facts)
        except Stopped:
            return
        except Failure as e:
            runner.report('FAIL', case.name, str(e))
            return
        except Exception:
            if not _stopping.is_set():
                runner.report('FAIL', case.name, 'test error:\n' + traceback.format_exc())
            return
        if _stopping.is_set():
            return
        if P.known:     # counted against the tags' budgets, whether the case fails or not
            tags = sorted(set(k[1:k.index(']')] for k in P.known))
            with runner.lock:
                for t in tags:
                    runner.tolerated[t] = runner.tolerated.get(t, 0) + 1
        if P.items:
            runner.report('FAIL', case.name, 'seed %d%s' % (facts['seed'], describe(o, facts, P)))
        else:
            why = '%.1f s: %s' % (o.elapsed, summary_of(o.err.decode('utf-8', 'replace'), facts))
            if P.known:
                why += '\n    known bugs tolerated (--xfail), seed %d:\n      ' % facts['seed'] + \
                    '\n      '.join(clip(k, 400) for k in P.known)
            runner.report('XFAIL' if P.known else 'PASS', case.name, why)
            if not args.keep:
                shutil.rmtree(facts['dir'], ignore_errors=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    interrupted = False
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j))
    futs = []
    try:
        futs = [pool.submit(one, i, c) for i, c in enumerate(cases)]
        for f in concurrent.futures.as_completed(futs):
            exc = f.exception()
            if exc is not None:
                runner.report('FAIL', 'driver', ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except KeyboardInterrupt:
        interrupted = True
        _stopping.set()
        for f in futs:
            f.cancel()
        kill_everything()
    finally:
        _stopping.set()
        kill_everything()
        if not interrupted:
            pool.shutdown(wait=True)
        kill_everything()
        if args.keep or (runner.failed and not interrupted):
            print('stress: files kept in %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    over = []
    if not interrupted:
        for t, n in sorted(budgets.items()):
            seen = runner.tolerated.get(t, 0)
            if n is not None and seen > n:
                over.append(t)
                runner.report('FAIL', 'xfail/' + t, '%s in %d cases, more than the %d tolerated (--xfail %s:%d): '
                              'the known bug got worse' % (XFAIL_TAGS[t], seen, n, t, n))
            elif not seen and cases:
                print('XPASS xfail/%s: listed in --xfail, seen in no case (not a failure: the bug shows '
                      'only under some schedules; drop the tag or lower its count once it stays away)' % t)
    line = 'stress: %d passed, %d failed, %d skipped, %d xfailed (%.0f s; seed %d)' % (
        runner.passed, runner.failed, runner.skipped, runner.xfailed, time.time() - t_start, seed)
    if runner.tolerated:
        line += '; known bugs tolerated: %s' % ', '.join(
            '%s in %d case%s%s' % (t, n, '' if n == 1 else 's',
                                   '' if budgets.get(t) is None else ' of at most %d' % budgets[t])
            for t, n in sorted(runner.tolerated.items()))
    if interrupted:
        line += ' (INTERRUPTED)'
    print(line)
    sys.stdout.flush()
    if interrupted:
        os._exit(130)
    sys.exit(1 if runner.failed else 0)


if __name__ == '__main__':
    main()
