#!/usr/bin/env python3
"""End-to-end tests for pystrobe against every CPython interpreter found.

    python3 tests/e2e/run.py [-j N] [--list] [FILTER...]

Run from anywhere (uses ROOT/pystrobe, ROOT = two levels above this file).
FILTER: only tests whose name contains one of the substrings.  Prints
``PASS name``, ``FAIL name: why``, ``SKIP name: why`` and a summary line;
exit status 1 if anything failed.

Interpreters are discovered at run time: every ``versions/*/bin/pythonX.Y``
under the pyenv root ($PYENV_ROOT, else ``pyenv root``, else ~/.pyenv), any
other ``pythonX.Y`` on PATH (not pyenv shims), and ``/usr/bin/python3``,
deduplicated by realpath.

Targets live in tests/targets/.  Every asserted line carries a marker comment
(``# @name``); line numbers are read from the sources.  Besides those marker
expectations, each target can report what the interpreter itself sees
(``--oracle``: sys._current_frames() with co_qualname/co_name, co_filename,
f_lineno, native tids, thread names), and dumps are compared frame by frame
with that.  ``<interp>/target-selfcheck`` checks the oracle against the
markers, so a broken target is told apart from a broken pystrobe.

Stdlib only; runs on Python 3.6+.
"""
import argparse
import concurrent.futures
import glob
import gzip
import json
import os
import re
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYSTROBE = os.environ.get('PYSTROBE') or os.path.join(ROOT, 'pystrobe')   # override: tests of the driver
TARGETS = os.path.join(ROOT, 'tests', 'targets')
sys.path.insert(0, os.path.join(ROOT, 'bench'))
import stackcheck  # noqa: E402  (which stacks of bench/workloads/fib.py are possible)
sys.path.insert(0, HERE)
import e2e_states  # noqa: E402  (thread states, modes, filters, subprocesses)
import e2e_core  # noqa: E402  (dump --core: gcore and kernel cores)
import e2e_top  # noqa: E402  (pystrobe top under a pseudo-terminal)
import e2e_native  # noqa: E402  (native frames: dump and record --native)
import e2e_nativestack  # noqa: E402  (native stacks, through tools/native-stack)
import e2e_locals  # noqa: E402  (dump --locals and --source)
import e2e_greenlets  # noqa: E402  (dump --greenlets)
import e2e_glrecord  # noqa: E402  (record --greenlets, locks)
import e2e_truth  # noqa: E402  (shares against a target that times itself)
import e2e_outfiles  # noqa: E402  (output files where a user planted links, FIFOs; stdout errors)
import e2e_inputs  # noqa: E402  (hostile input files: convert, diff, dump --core)
import e2e_suite  # noqa: E402  (CI=true: the machine image is complete)
import e2e_ends  # noqa: E402  (how recordings end: signals, held threads, durations)
import e2e_hostile  # noqa: E402  (targets that corrupt their own objects, or lie in names)
THREADS_PY = os.path.join(TARGETS, 'threads.py')

FILES = {
    'threads': THREADS_PY,
    'async': os.path.join(TARGETS, 'async_part.py'),
    'unicode': os.path.join(TARGETS, 'módulo_名前_𠀀.py'),
    'unifile': os.path.join(TARGETS, 'py2_módulo_名前_𠀀.py'),
    'generated_src': os.path.join(TARGETS, 'generated.src'),
}
# what co_filename holds for each source (the generated code's is fixed)
CO_FILENAME = dict(FILES, generated='<generated>')
CO_FILENAME.pop('generated_src')

MAX_DEPTH = 4096          # pystrobe's stack depth limit (contract)
RATE = 200                # record: samples per second
DURATION = 1.5            # record: seconds (attach mode)
LAUNCH_BUSY = 5.0         # record launch: target exits after this many seconds
                          # (long enough that start-up, sampled too, stays a small share)
BUSY_SHARE = 0.80         # busy() must be the leaf of at least this share (launched, stopped)
EXACT_SHARE = 0.99        # attached to a stack that does not change: the share on it
SAMPLES_MIN = 0.9         # attached: samples, of rate x duration
IDLE_TICKS = 0.97         # --idle: each thread's samples on its one stack, of the ticks
FIB_TORN = 0.01           # record-consistency: torn drops, of samples kept
T_DUMP = 60               # timeouts (seconds) for pystrobe invocations
T_RECORD = 30
T_PROMPT = 10             # "fails before sampling": returns within this
TARGET_LIFE = 600         # target watchdog (--max-life)


# ---------------------------------------------------------------------------
# process bookkeeping: nothing we start survives us

_procs_lock = threading.Lock()
_procs = set()          # live Popen objects (each leads its own session)
_extra_pids = set()     # pids learnt from pidfiles (launch-mode children)
_stopping = threading.Event()


class Stopped(Exception):
    pass


def _register(p):
    with _procs_lock:
        _procs.add(p)


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        p.kill()
    except OSError:
        pass
    try:
        p.wait(timeout=10)
    except Exception:
        pass
    with _procs_lock:
        _procs.discard(p)


def _kill_pid(pid, must_contain=None):
    """Kill a pid we learnt from a pidfile, if it is still ours."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmd = f.read()
    except OSError:
        return
    if must_contain is not None and must_contain.encode() not in cmd:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def kill_everything():
    with _procs_lock:
        procs = list(_procs)
        pids = list(_extra_pids)
    for p in procs:
        _kill(p)
    for pid in pids:
        _kill_pid(pid, 'threads.py')


def spawn(argv, **kw):
    if _stopping.is_set():
        raise Stopped()
    kw.setdefault('stdin', subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _register(p)
    return p


class Result(object):
    def __init__(self, argv, rc, out, err, elapsed, timed_out):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    @property
    def err_text(self):
        return self.err.decode('utf-8', 'replace')

    @property
    def out_text(self):
        return self.out.decode('utf-8', 'replace')

    def describe(self, out_limit=1500):
        s = '\n    $ %s\n    exit status: %s%s (%.2fs)' % (
            ' '.join(shq(a) for a in self.argv),
            self.rc, ' (TIMED OUT, killed)' if self.timed_out else '', self.elapsed)
        if self.err:
            s += '\n    stderr: ' + clip(self.err_text, 1500).replace('\n', '\n            ')
        if self.out:
            s += '\n    stdout: ' + clip(self.out_text, out_limit).replace('\n', '\n            ')
        return s


def shq(a):
    if re.match(r'^[\w./=:,@+-]+$', a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def clip(s, n):
    return s if len(s) <= n else s[:n] + '... [%d more chars]' % (len(s) - n)


def finish(p, argv, timeout, t0=None):
    """Waits for p (started with pipes) and kills its group after timeout: its Result."""
    t0 = time.time() if t0 is None else t0
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
    finally:
        _kill(p)
    return Result(argv, p.returncode, out, err, time.time() - t0, timed_out)


def run(argv, timeout, env=None, pass_fds=(), cwd=None):
    t0 = time.time()
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=pass_fds, cwd=cwd)
    return finish(p, argv, timeout, t0)


# ---------------------------------------------------------------------------
# tiny test runner

class Failure(Exception):
    pass


class Skip(Exception):
    pass


class Problems(object):
    """Collect every failed expectation of a test, then fail once."""

    def __init__(self):
        self.items = []

    def expect(self, cond, msg):
        if not cond:
            self.items.append(msg)
        return cond

    def fail_if_any(self, context=''):
        if self.items:
            shown = self.items[:25]
            more = len(self.items) - len(shown)
            msg = '\n  - ' + '\n  - '.join(shown)
            if more > 0:
                msg += '\n  - ... and %d more' % more
            raise Failure(msg + (context or ''))


class Runner(object):
    def __init__(self, filters, list_only=False):
        self.filters = filters
        self.list_only = list_only
        self.lock = threading.Lock()
        self.passed = self.failed = self.skipped = 0

    def selected(self, name):
        return not self.filters or any(f in name for f in self.filters)

    def report(self, status, name, why=''):
        with self.lock:
            if status == 'PASS':
                self.passed += 1
                print('PASS %s' % name)
            elif status == 'SKIP':
                self.skipped += 1
                print('SKIP %s: %s' % (name, why))
            else:
                self.failed += 1
                print('FAIL %s: %s' % (name, why))
            sys.stdout.flush()

    def case(self, name, fn, needs_pystrobe=True):
        if not self.selected(name):
            return
        if _stopping.is_set():
            return
        if self.list_only:
            with self.lock:
                print(name)
            return
        if needs_pystrobe and not os.access(PYSTROBE, os.X_OK):
            self.report('FAIL', name, '%s does not exist or is not executable (run make)' % PYSTROBE)
            return
        try:
            fn()
        except Skip as e:
            self.report('SKIP', name, str(e))
        except Failure as e:
            if not _stopping.is_set():    # interrupted: failures are noise
                self.report('FAIL', name, str(e))
        except Stopped:
            pass
        except Exception:
            if not _stopping.is_set():
                self.report('FAIL', name, 'test error:\n' + traceback.format_exc())
        else:
            self.report('PASS', name)


class Lazy(object):
    """A fixture built on first use; a failure to build it is remembered."""

    def __init__(self, make):
        self.make, self.value, self.error, self.done = make, None, None, False

    def get(self):
        if not self.done:
            self.done = True
            try:
                self.value = self.make()
            except (Skip, Stopped):
                raise
            except Failure as e:
                self.error = e
            except Exception:
                self.error = Failure('fixture error:\n' + traceback.format_exc())
        if self.error is not None:
            raise Failure('setup failed: %s' % self.error)
        return self.value


# ---------------------------------------------------------------------------
# sources and markers

_marker_cache = {}


def markers(fileid):
    """{marker name: line number} of a source: a FILES key, or a path."""
    if fileid not in _marker_cache:
        path = FILES.get('generated_src' if fileid == 'generated' else fileid, fileid)
        found = {}
        with open(path, encoding='utf-8') as f:
            for n, text in enumerate(f, 1):
                m = re.search(r'#\s*@([\w-]+)\s*$', text)
                if m:
                    if m.group(1) in found:
                        raise RuntimeError('marker %s twice in %s' % (m.group(1), path))
                    found[m.group(1)] = n
        _marker_cache[fileid] = found
    return _marker_cache[fileid]


def line_of(fileid, marker):
    try:
        return markers(fileid)[marker]
    except KeyError:
        raise RuntimeError('no marker @%s in %s' % (marker, FILES.get(fileid, fileid)))


def target_constant(name):
    with open(THREADS_PY, encoding='utf-8') as f:
        m = re.search(r'^%s = (\d+)' % name, f.read(), re.M)
    return int(m.group(1))


DEEP_N = target_constant('DEEP_N')
VERY_DEEP_N = target_constant('VERY_DEEP_N')

THREAD_NAMES = {     # key -> threading name ('raw' is not known to threading)
    'busy': 'busy', 'deep': 'deep', 'very-deep': 'very-deep', 'method': 'method',
    'nested': 'nested', 'generator': 'generator', 'generated': 'generated',
    'unifile': 'unifile-é名𠀀', 'coroutine': 'coroutine', 'latin': 'latin-café',
    'cjk': 'cjk-関数', 'astral': 'astral-𠀀', 'sleeper': 'sleeper', 'main': 'MainThread',
}
RAW_OS_NAME = 'raw-os-name'


def expected_keys(ver, only_busy=False):
    if only_busy:
        return {'main', 'busy', 'sleeper'}
    keys = {'main', 'busy', 'deep', 'very-deep', 'method', 'nested', 'generator',
            'generated', 'unifile', 'sleeper', 'raw'}
    if ver[0] >= 3:
        keys |= {'coroutine', 'latin', 'cjk', 'astral'}
    return keys


def fr(ver, qual, plain, fileid, marker):
    return (qual if ver >= (3, 11) else plain, CO_FILENAME[fileid], line_of(fileid, marker))


def marker_spec(key, ver):
    """(top frames expected, whole stack?, extra check) for a thread."""
    F = lambda *a: fr(ver, *a)
    if key == 'busy':
        return [F('busy', 'busy', 'threads', 'busy')], False
    if key == 'deep':
        return ([F('recurse', 'recurse', 'threads', 'recurse-sleep')]
                + [F('recurse', 'recurse', 'threads', 'recurse-call')] * (DEEP_N - 1)), False
    if key == 'very-deep':
        return ([F('very_deep', 'very_deep', 'threads', 'very-deep-sleep')]
                + [F('very_deep', 'very_deep', 'threads', 'very-deep-call')] * (VERY_DEEP_N - 1)), False
    if key == 'method':
        return [F('Worker.nap', 'nap', 'threads', 'method-sleep'),
                F('Worker.run_method', 'run_method', 'threads', 'method-call')], False
    if key == 'nested':
        return [F('outer.<locals>.inner', 'inner', 'threads', 'nested-sleep'),
                F('outer', 'outer', 'threads', 'nested-call')], False
    if key == 'generator':
        return [F('gen_items', 'gen_items', 'threads', 'gen-sleep'),
                F('consume_gen', 'consume_gen', 'threads', 'gen-for')], False
    if key == 'generated':
        return [F('generated', 'generated', 'generated', 'generated-sleep'),
                F('run_generated', 'run_generated', 'threads', 'generated-call')], False
    if key == 'unifile':
        return [F('plain_in_unicode_file', 'plain_in_unicode_file', 'unifile', 'unifile-sleep')], False
    if key == 'coroutine':
        return [F('blocking_in_coro', 'blocking_in_coro', 'async', 'coro-sleep'),
                F('inner_coro', 'inner_coro', 'async', 'coro-inner-call'),
                F('outer_coro', 'outer_coro', 'async', 'coro-await')], False
    if key == 'latin':
        return [F('café', 'café', 'unicode', 'latin-sleep')], False
    if key == 'cjk':
        return [F('関数', '関数', 'unicode', 'cjk-sleep')], False
    if key == 'astral':
        return [F('𠀀', '𠀀', 'unicode', 'astral-sleep')], False
    if key == 'sleeper':
        return [F('sleeper', 'sleeper', 'threads', 'sleeper-sleep')], False
    if key == 'raw':
        return [F('raw_thread', 'raw_thread', 'threads', 'raw-sleep')], True
    if key == 'main':
        return [F('main', 'main', 'threads', 'main-sleep'),
                F('<module>', '<module>', 'threads', 'main-call')], True
    raise KeyError(key)


def fmt_frame(f):
    return '%s (%s:%s)' % f


def frames_diff(exp, got, limit=6):
    """Human description of how two frame lists differ (None if equal)."""
    if exp == got:
        return None
    i = 0
    while i < min(len(exp), len(got)) and exp[i] == got[i]:
        i += 1
    lines = ['%d frames expected, %d reported; first difference at frame #%d (0 = innermost):'
             % (len(exp), len(got), i)]
    lines.append('      expected: ' + ' <- '.join(fmt_frame(f) for f in exp[i:i + limit]) + (' ...' if len(exp) > i + limit else ''))
    lines.append('      reported: ' + ' <- '.join(fmt_frame(f) for f in got[i:i + limit]) + (' ...' if len(got) > i + limit else ''))
    return '\n'.join(lines)


def check_against_markers(P, who, key, ver, frames, truncated_to=None):
    """frames: innermost first, tuples (function, file, line)."""
    top, whole = marker_spec(key, ver)
    if truncated_to is not None:
        top = top[:truncated_to]
    if whole:
        d = frames_diff(top, frames)
        P.expect(d is None, '%s thread %s: whole stack differs from the marked lines: %s' % (who, key, d))
        return
    d = frames_diff(top, frames[:len(top)])
    P.expect(d is None, '%s thread %s: top frames differ from the marked lines: %s' % (who, key, d))
    if key in ('deep', 'very-deep') and truncated_to is None:
        fn = top[0][0]
        n = 0
        while n < len(frames) and frames[n][0] == fn:
            n += 1
        want = DEEP_N if key == 'deep' else VERY_DEEP_N
        P.expect(n == want, '%s thread %s: %d consecutive %s frames, expected exactly %d'
                 % (who, key, n, fn, want))
    if key == 'coroutine':
        runner = fr(ver, 'run_coroutine_thread', 'run_coroutine_thread', 'async', 'coro-run')
        P.expect(runner in frames[3:], '%s thread coroutine: frame %s missing below the coroutine frames'
                 % (who, fmt_frame(runner)))


# ---------------------------------------------------------------------------
# /proc helpers

def task_states(pid):
    out = {}
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return out
    for t in tids:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, t), 'rb') as f:
                s = f.read().decode('latin-1')
            out[int(t)] = s.rsplit(')', 1)[1].split()[0]
        except (OSError, IndexError):
            pass
    return out


SLEEP_SYSCALLS = {'23', '35', '230', '270'}   # x86_64 select nanosleep clock_nanosleep pselect6


def task_syscalls(pid):
    """tid -> system call number (or 'running'); None if /proc does not say."""
    out = {}
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return None
    for t in tids:
        try:
            with open('/proc/%d/task/%s/syscall' % (pid, t), 'rb') as f:
                out[int(t)] = f.read().decode('latin-1').split(' ')[0].strip()
        except OSError:
            return None
    return out


def proc_cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        return [a.decode('utf-8', 'replace') for a in f.read().split(b'\0') if a != b'']


def python_binary_of(pid):
    """What dump's python.binary should be: the mapped libpython, else the executable."""
    with open('/proc/%d/maps' % pid, encoding='utf-8', errors='replace') as f:
        for line in f:
            parts = line.rstrip('\n').split(None, 5)
            if len(parts) == 6 and re.search(r'/libpython\d\.\d+[a-z]*\.so', parts[5]):
                return parts[5]
    return os.readlink('/proc/%d/exe' % pid)


def strip_deleted(path):
    return path[:-len(' (deleted)')] if path.endswith(' (deleted)') else path


# ---------------------------------------------------------------------------
# targets

class Target(object):
    """A running tests/targets/threads.py (killed in close(), always)."""

    def __init__(self, tmp, exe, args=(), env=None, ver=None, only_busy=False, argv0=None):
        self.tmp, self.exe, self.ver, self.only_busy = tmp, exe, ver, only_busy
        self.oracle_path = os.path.join(tmp, 'oracle-%d.json' % id(self))
        self.err_path = os.path.join(tmp, 'target-stderr-%d.txt' % id(self))
        self.argv = [exe, THREADS_PY] + list(args) + ['--oracle', self.oracle_path,
                                                      '--max-life', str(TARGET_LIFE)]
        if only_busy:
            self.argv.append('--only-busy')
        self.errf = open(self.err_path, 'wb')
        self.p = spawn(self.argv, stdout=subprocess.PIPE, stderr=self.errf, env=env)
        self.pid = self.p.pid
        self.stdout_fd = self.p.stdout.fileno()
        self.oracle = None

    def poll(self):
        return self.p.poll()

    def stderr_text(self):
        try:
            with open(self.err_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        buf = b''
        fd = self.stdout_fd
        while b'\n' not in buf:
            left = deadline - time.time()
            if left <= 0 or _stopping.is_set():
                raise Failure('target never printed READY within %ds: %s\n    stderr: %s'
                              % (timeout, ' '.join(self.argv), clip(self.stderr_text(), 2000)))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise Failure('target exited (status %s) before READY: %s\n    stderr: %s'
                                  % (self.poll(), ' '.join(self.argv), clip(self.stderr_text(), 2000)))
                buf += chunk
        if buf.split(b'\n')[0] != b'READY':
            raise Failure('target printed %r instead of READY' % buf)

    def settle(self, timeout=10):
        """Wait until every thread but one (busy) blocks in its sleep.

        State S alone is not enough: a thread waiting for the GIL is in S
        too, but not yet at its marked line.  So look at the system call
        each task is in (select, pselect6, nanosleep, clock_nanosleep: what
        time.sleep uses), and fall back to S held for 0.3 s."""
        deadline = time.time() + timeout
        stable_since = None
        while time.time() < deadline:
            calls = task_syscalls(self.pid)
            if calls is not None:
                others = [t for t, c in calls.items() if c not in SLEEP_SYSCALLS]
                # ... and busy is running Python again, not waiting for the GIL
                # it gave up (e.g. to the main thread for a signal handler).
                if calls.get(self.pid) in SLEEP_SYSCALLS and len(others) <= 1 and \
                        all(calls[t] == 'running' for t in others):
                    return
            else:
                st = task_states(self.pid)
                running = [t for t, s in st.items() if s not in ('S', 'D')]
                if st.get(self.pid) == 'S' and len(running) <= 1:
                    if stable_since is None:
                        stable_since = time.time()
                    elif time.time() - stable_since >= 0.3:
                        return
                else:
                    stable_since = None
            time.sleep(0.02)
        raise Failure('target threads did not settle (task states: %r, system calls: %r)'
                      % (task_states(self.pid), task_syscalls(self.pid)))

    def take_oracle(self, timeout=30):
        try:
            os.unlink(self.oracle_path)
        except OSError:
            pass
        self.settle()
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.time() + timeout
        while not os.path.exists(self.oracle_path):
            if time.time() > deadline or self.poll() is not None:
                raise Failure('target wrote no oracle after SIGUSR1 (status %s)\n    stderr: %s'
                              % (self.poll(), clip(self.stderr_text(), 2000)))
            time.sleep(0.02)
        with open(self.oracle_path, encoding='utf-8') as f:
            self.oracle = json.load(f)
        self.settle()
        return self.oracle

    def start(self):
        self.wait_ready()
        self.take_oracle()
        return self

    def by_key(self):
        return dict((t['key'], t) for t in self.oracle['threads'])

    def close(self):
        _kill(self.p)
        try:
            self.p.stdout.close()
        except Exception:
            pass
        self.errf.close()


class LaunchedTarget(Target):
    """threads.py started by `pystrobe record -- ...`: READY arrives on
    pystrobe's stdout, the pid through --pidfile."""

    def __init__(self, tmp, pystrobe_args, exe, args, ver=None, timeout=T_RECORD):
        self.tmp, self.exe, self.ver, self.only_busy = tmp, exe, ver, '--only-busy' in args
        self.oracle_path = os.path.join(tmp, 'oracle-%d.json' % id(self))
        self.err_path = os.path.join(tmp, 'pystrobe-stderr-%d.txt' % id(self))
        self.pidfile = os.path.join(tmp, 'pid-%d' % id(self))
        self.cmd = [exe, THREADS_PY] + list(args) + ['--oracle', self.oracle_path,
                                                     '--pidfile', self.pidfile, '--max-life', '120']
        self.argv = [PYSTROBE, 'record'] + list(pystrobe_args) + ['--'] + self.cmd
        self.timeout = timeout
        self.errf = open(self.err_path, 'wb')
        self.t0 = time.time()
        self.p = spawn(self.argv, stdout=subprocess.PIPE, stderr=self.errf)
        self.stdout_fd = self.p.stdout.fileno()
        self.pid = None
        self.oracle = None

    def poll(self):
        if self.pid is None or not os.path.exists('/proc/%d' % self.pid):
            return 'gone'
        return None

    def wait_ready(self, timeout=90):
        Target.wait_ready(self, timeout)
        with open(self.pidfile) as f:
            self.pid = int(f.read())
        with _procs_lock:
            _extra_pids.add(self.pid)

    def finish(self):
        """Wait for pystrobe to return; a Result."""
        timed_out = False
        try:
            out, _ = self.p.communicate(timeout=max(1, self.timeout - (time.time() - self.t0)))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.close()
            out = b''
        self.errf.flush()
        with open(self.err_path, 'rb') as f:
            err = f.read()
        return Result(self.argv, self.p.returncode, out, err, time.time() - self.t0, timed_out)

    def close(self):
        Target.close(self)
        if self.pid is not None:
            _kill_pid(self.pid, 'threads.py')
        else:
            try:
                with open(self.pidfile) as f:
                    _kill_pid(int(f.read()), 'threads.py')
            except (OSError, ValueError):
                pass


class NamespacedTarget(Target):
    """threads.py under a wrapper that makes new mount and PID namespaces: the
    interpreter is a child of unshare(1), found through /proc."""

    def __init__(self, tmp, wrapper, exe, ver):
        self.tmp, self.exe, self.ver, self.only_busy = tmp, exe, ver, False
        self.oracle_path = os.path.join(tmp, 'oracle-%d.json' % id(self))
        self.err_path = os.path.join(tmp, 'target-stderr-%d.txt' % id(self))
        self.argv = [wrapper, exe, THREADS_PY, '--oracle', self.oracle_path,
                     '--max-life', str(TARGET_LIFE)]
        self.errf = open(self.err_path, 'wb')
        self.p = spawn(self.argv, stdout=subprocess.PIPE, stderr=self.errf)
        self.stdout_fd = self.p.stdout.fileno()
        self.pid = None
        self.oracle = None

    def wait_ready(self, timeout=90):
        Target.wait_ready(self, timeout)
        with open('/proc/%d/task/%d/children' % (self.p.pid, self.p.pid)) as f:
            self.pid = int(f.read().split()[0])
        with _procs_lock:
            _extra_pids.add(self.pid)

    def close(self):
        Target.close(self)
        if self.pid is not None:
            _kill_pid(self.pid, 'threads.py')


def oracle_frames(t):
    return [(f['function'], f['file'], f['line']) for f in t['frames']]


def oracle_name(t):
    return t['name'] if t['in_threading'] else t['os_name']


# ---------------------------------------------------------------------------
# checks

def check_oracle_selfcheck(P, tgt, ver):
    """The target is right: what the interpreter reports matches the markers."""
    o = tgt.oracle
    keys = [t['key'] for t in o['threads']]
    want = expected_keys(ver, tgt.only_busy)
    P.expect(sorted(k for k in keys if k) == sorted(want),
             'oracle threads %r, expected %r' % (sorted(map(str, keys)), sorted(want)))
    P.expect(None not in keys, 'oracle has a thread that never called ready(): %r' % keys)
    P.expect(o['version'] == '.'.join(map(str, ver)), 'oracle version %s' % o['version'])
    tasks = set(task_states(tgt.pid))
    for t in o['threads']:
        k = t['key']
        if k is None:
            continue
        P.expect(t['tid'] in tasks, 'thread %s: tid %r not in /proc/%d/task %r' % (k, t['tid'], tgt.pid, sorted(tasks)))
        if k == 'raw':
            P.expect(not t['in_threading'], 'raw thread is known to threading')
            P.expect(t['os_name'] == RAW_OS_NAME, 'raw thread OS name %r' % t['os_name'])
        else:
            P.expect(t['name'] == THREAD_NAMES[k], 'thread %s named %r' % (k, t['name']))
        check_against_markers(P, 'oracle', k, ver, oracle_frames(t))
    P.expect(len(tasks) == len(o['threads']),
             '%d tasks in /proc but %d Python threads' % (len(tasks), len(o['threads'])))


def expected_label_version(ver, s):
    return s == '%d.%d.%d' % ver or s == '%d.%d' % ver[:2]


def check_dump_json(P, tgt, ver, res, deleted_ok=False):
    """Check `dump --json` output against the oracle and the markers."""
    if not P.expect(res.rc == 0 and not res.timed_out, 'dump failed (exit status %s)' % res.rc):
        return None
    try:
        doc = json.loads(res.out.decode('utf-8'))
    except Exception as e:
        P.expect(False, 'stdout is not one UTF-8 JSON object: %s' % e)
        return None
    if not P.expect(isinstance(doc, dict), 'JSON is not an object'):
        return None
    pid = tgt.pid
    P.expect(doc.get('pid') == pid, 'pid %r, expected %d' % (doc.get('pid'), pid))
    cmd = ' '.join(proc_cmdline(pid))
    P.expect(doc.get('command') == cmd, 'command %r, expected %r' % (doc.get('command'), cmd))
    py = doc.get('python') or {}
    P.expect(isinstance(py.get('version'), str) and expected_label_version(ver, py.get('version')),
             'python.version %r, expected %r (or %r)' % (py.get('version'), '%d.%d.%d' % ver, '%d.%d' % ver[:2]))
    want_bin = python_binary_of(pid)
    got_bin = py.get('binary')
    if deleted_ok:
        ok = isinstance(got_bin, str) and strip_deleted(got_bin) == strip_deleted(want_bin)
    else:
        ok = got_bin == want_bin
    P.expect(ok, 'python.binary %r, expected %r' % (got_bin, want_bin))

    threads = doc.get('threads')
    if not P.expect(isinstance(threads, list), 'no "threads" list'):
        return doc
    tasks = set(task_states(pid))
    by_tid = {}
    for t in threads:
        tid = t.get('tid')
        P.expect(tid in tasks, 'thread %r (%r): tid not in /proc/%d/task' % (t.get('name'), tid, pid))
        P.expect(tid not in by_tid, 'tid %r reported twice' % tid)
        by_tid[tid] = t
    oracle = [t for t in tgt.oracle['threads']]
    P.expect(len(threads) == len(oracle),
             '%d threads reported, expected %d: reported %r, expected %r'
             % (len(threads), len(oracle), sorted(str(t.get('name')) for t in threads),
                sorted(str(oracle_name(t)) for t in oracle)))
    for o in oracle:
        key = o['key']
        want_name = oracle_name(o)
        t = by_tid.get(o['tid'])
        if not P.expect(t is not None, 'thread %r (tid %s) missing' % (want_name, o['tid'])):
            continue
        who = 'thread %r (tid %s)' % (want_name, o['tid'])
        P.expect(t.get('name') == want_name, '%s: name %r, expected %r' % (who, t.get('name'), want_name))
        tident = t.get('thread_id')
        try:
            tident_ok = isinstance(tident, str) and tident.startswith('0x') and int(tident, 16) == o['ident']
        except ValueError:
            tident_ok = False
        P.expect(tident_ok, '%s: thread_id %r, expected %s (threading ident)' % (who, tident, hex(o['ident'])))
        busy = key == 'busy'
        P.expect(t.get('active') is busy, '%s: active=%r, expected %r' % (who, t.get('active'), busy))
        P.expect(t.get('gil') is busy, '%s: gil=%r, expected %r' % (who, t.get('gil'), busy))
        frames_raw = t.get('frames')
        if not P.expect(isinstance(frames_raw, list), '%s: no frames list' % who):
            continue
        got = [(f.get('function'), f.get('file'), f.get('line')) for f in frames_raw]
        want = oracle_frames(o)
        if len(want) > MAX_DEPTH:
            P.expect(t.get('truncated') is True, '%s: truncated=%r with %d frames on the stack, expected true'
                     % (who, t.get('truncated'), len(want)))
            P.expect(len(got) == MAX_DEPTH, '%s: %d frames, expected exactly %d (the innermost)'
                     % (who, len(got), MAX_DEPTH))
            want = want[:MAX_DEPTH]
            check_against_markers(P, 'dump', key, ver, got, truncated_to=MAX_DEPTH)
        else:
            P.expect(t.get('truncated') is False, '%s: truncated=%r, expected false' % (who, t.get('truncated')))
            check_against_markers(P, 'dump', key, ver, got)
        d = frames_diff(want, got)
        P.expect(d is None, '%s: stack differs from what the interpreter reports: %s' % (who, d))
    return doc


def check_dump_text(P, tgt, ver, res):
    if not P.expect(res.rc == 0 and not res.timed_out, 'dump failed (exit status %s)' % res.rc):
        return
    try:
        text = res.out.decode('utf-8')
    except UnicodeDecodeError as e:
        P.expect(False, 'stdout is not UTF-8: %s' % e)
        return
    lines = text.split('\n')
    P.expect(lines[0].startswith('Process %d:' % tgt.pid), 'first line %r, expected "Process %d: ..."' % (lines[0], tgt.pid))
    P.expect(len(lines) > 1 and re.match(r'Python %d\.%d(\.%d)?\b' % ver, lines[1]) is not None,
             'second line %r, expected "Python %d.%d.%d ..."' % ((lines[1] if len(lines) > 1 else None,) + ver))
    sections = {}
    cur = None
    for ln in lines[2:]:
        m = re.match(r'^Thread (\d+) "(.*)"(.*)$', ln)
        if m:
            cur = int(m.group(1))
            P.expect(cur not in sections, 'thread %d listed twice' % cur)
            sections[cur] = {'name': m.group(2), 'flags': m.group(3), 'frames': []}
        elif cur is not None and re.match(r'^\s+\S.* \(.*:\d+\)$', ln):
            sections[cur]['frames'].append(ln.strip())
    oracle = tgt.oracle['threads']
    P.expect(len(sections) == len(oracle), '%d "Thread" headers, expected %d' % (len(sections), len(oracle)))
    for o in oracle:
        want_name = oracle_name(o)
        s = sections.get(o['tid'])
        if not P.expect(s is not None, 'no "Thread %s" header (%r)' % (o['tid'], want_name)):
            continue
        who = 'thread %r (tid %s)' % (want_name, o['tid'])
        P.expect(s['name'] == want_name, '%s: header name %r' % (who, s['name']))
        if o['key'] == 'busy':
            P.expect('active' in s['flags'], '%s: header %r lacks "active"' % (who, s['flags']))
        else:
            P.expect('idle' in s['flags'], '%s: header %r lacks "idle"' % (who, s['flags']))
        want = [fmt_frame(f) for f in oracle_frames(o)][:MAX_DEPTH]
        got = s['frames']
        if want != got:
            i = 0
            while i < min(len(want), len(got)) and want[i] == got[i]:
                i += 1
            P.expect(False, '%s: %d frame lines, expected %d; first difference at #%d: expected %r, got %r'
                     % (who, len(got), len(want), i, want[i] if i < len(want) else None,
                        got[i] if i < len(got) else None))


def check_one_line_error(P, res, rc, words=(), any_words=()):
    P.expect(not res.timed_out, 'timed out (killed after the timeout)')
    P.expect(res.rc == rc, 'exit status %s, expected %d' % (res.rc, rc))
    err = res.err_text
    lines = err.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    P.expect(len(lines) == 1, 'stderr has %d lines, expected exactly one' % len(lines))
    P.expect(err.startswith('pystrobe: '), 'stderr does not start with "pystrobe: "')
    for w in words:
        P.expect(w.lower() in err.lower(), 'error does not mention %r' % w)
    if any_words:
        P.expect(any(w.lower() in err.lower() for w in any_words),
                 'error mentions none of %r' % (list(any_words),))


# --- folded -----------------------------------------------------------------

def sanitize(s):
    return ''.join('?' if (c == ';' or ord(c) < 32 or 127 <= ord(c) < 160 or
                           c in u'\u061c\u200e\u200f' or u'\u2028' <= c <= u'\u202e' or
                           u'\u2066' <= c <= u'\u2069') else c for c in s)


def label(func, file, line):
    return '%s (%s:%d)' % (sanitize(func), sanitize(file), line)


def parse_folded(P, path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        P.expect(False, 'no output file %s: %s' % (path, e))
        return None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        P.expect(False, 'output is not UTF-8: %s' % e)
        return None
    stacks = {}
    bad = []
    for ln in text.split('\n'):
        if ln == '':
            continue
        m = re.match(r'^(.+) ([0-9]+)$', ln)
        if not m or m.group(1).endswith(' '):
            bad.append(ln)
            continue
        frames = tuple(m.group(1).split(';'))
        if any(f == '' for f in frames):
            bad.append(ln)
            continue
        P.expect(frames not in stacks, 'stack listed twice: %r' % clip(m.group(1), 300))
        stacks[frames] = stacks.get(frames, 0) + int(m.group(2))
    P.expect(not bad, '%d malformed folded lines, e.g. %r' % (len(bad), clip(bad[0], 300) if bad else ''))
    P.expect(text == '' or text.endswith('\n'), 'output does not end with a newline')
    P.expect(stacks, 'output has no stacks')
    return stacks


def top_stacks(stacks, n=5):
    items = sorted(stacks.items(), key=lambda kv: -kv[1])[:n]
    return '\n      '.join('%6d  %s' % (c, clip(';'.join(s), 400)) for s, c in items)


def check_busy_share(P, stacks, leaf, thread_root=None):
    total = sum(stacks.values())
    hits = sum(c for s, c in stacks.items() if s[-1] == leaf and (thread_root is None or s[0] == thread_root))
    share = float(hits) / total if total else 0.0
    P.expect(share >= BUSY_SHARE,
             '%s is the leaf of %d of %d samples (%.1f%%), expected >= %d%%; top stacks:\n      %s'
             % (leaf, hits, total, 100 * share, 100 * BUSY_SHARE, top_stacks(stacks)))


IDLE_MARK = '[idle]'          # the leaf --idle adds to a sleeping thread's samples


def check_all_threads_in_profile(P, oracle, stacks, strict_roots):
    """--idle --threads: every thread's exact stack, rooted in `thread NAME (TID)`,
    the sleeping ones (all but busy) ending in the [idle] marker."""
    roots = {}
    for t in oracle['threads']:
        name = oracle_name(t)
        root = 'thread %s (%d)' % (sanitize(name), t['tid'])
        roots[root] = t
        want = oracle_labels(t)
        mark = () if t['key'] == 'busy' else (IDLE_MARK,)
        if len(want) > MAX_DEPTH:
            tail = want[-MAX_DEPTH:] + mark
            ok = any(s[0] == root and s[-len(tail):] == tail for s in stacks)
            desc = 'ending in its %d innermost frames (... %s)' % (MAX_DEPTH, ';'.join(tail[-2:]))
        else:
            ok = stacks.get((root,) + want + mark, 0) > 0
            desc = '%s' % ';'.join((root,) + want + mark)
        if not ok:
            mine = dict((s, c) for s, c in stacks.items() if s[0] == root)
            same_tid = {}
            for s_, c in stacks.items():
                if s_[0].endswith(' (%d)' % t['tid']):
                    same_tid[s_[0]] = same_tid.get(s_[0], 0) + c
            P.expect(False, 'no samples of thread %r with its stack %s; stacks rooted in %r:\n      %s\n'
                     '    samples per root frame with this tid: %r'
                     % (name, clip(desc, 600), root, top_stacks(mine, 3) if mine else '(none)', same_tid))
    if strict_roots:
        extra = sorted(set(s[0] for s in stacks) - set(roots))
        P.expect(not extra, 'stacks rooted in threads that do not exist: %r (threads: %r)'
                 % (extra, sorted(roots)))


def summary_samples(P, res, rate=None, seconds=None):
    """The summary's sample count: above 0, and with rate and seconds at
    least SAMPLES_MIN of the ticks asked for."""
    m = re.search(r'(\d+) samples', res.err_text)
    P.expect(m is not None and int(m.group(1)) > 0,
             'no "N samples" (N > 0) in the summary on stderr')
    if m and rate:
        # Ticks a busy machine kept pystrobe from taking are counted as
        # dropped "behind schedule": the samples are held against the ticks
        # taken, and every tick asked for must be accounted for.
        d = re.search(r'; (\d+) dropped: [^;\n]*?(\d+) behind schedule', res.err_text)
        behind = int(d.group(2)) if d else 0
        dropped = re.search(r'; (\d+) dropped: ', res.err_text)
        accounted = int(m.group(1)) + (int(dropped.group(1)) if dropped else 0)
        asked = rate * seconds
        want = SAMPLES_MIN * (asked - behind)
        P.expect(int(m.group(1)) >= want, '%s samples, expected at least %d (%d%% of %g Hz x %g s, less %d ticks '
                 'missed behind schedule)' % (m.group(1), want, SAMPLES_MIN * 100, rate, seconds, behind))
        P.expect(accounted >= SAMPLES_MIN * asked, '%d samples and drops, expected at least %d (%d%% of %g Hz x %g s)'
                 % (accounted, SAMPLES_MIN * asked, SAMPLES_MIN * 100, rate, seconds))
    return int(m.group(1)) if m else None


def oracle_labels(t, function_mode=False):
    """Root-first folded labels for an oracle thread."""
    out = []
    for f in reversed(t['frames']):
        out.append(label(f['function'], f['file'], f['first_line'] if function_mode else f['line']))
    return tuple(out)


# ---------------------------------------------------------------------------
# interpreters

class Interp(object):
    def __init__(self, label_, exe, ver):
        self.label, self.exe, self.ver = label_, exe, ver

    def __repr__(self):
        return 'Interp(%s, %s)' % (self.label, self.exe)


def pyenv_root():
    r = os.environ.get('PYENV_ROOT')
    if r:
        return r
    if shutil.which('pyenv'):
        try:
            out = subprocess.run(['pyenv', 'root'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 timeout=20).stdout.decode().strip()
            if out:
                return out
        except Exception:
            pass
    return os.path.expanduser('~/.pyenv')


def is_elf(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'\x7fELF'
    except OSError:
        return False


def discover():
    cands = []
    root = pyenv_root()
    for exe in sorted(glob.glob(os.path.join(root, 'versions', '*', 'bin', 'python*'))):
        if re.match(r'^python\d\.\d+$', os.path.basename(exe)):
            cands.append(('pyenv', exe))
    if os.path.exists('/usr/bin/python3'):
        cands.append(('system', '/usr/bin/python3'))
    shims = os.path.realpath(os.path.join(root, 'shims'))
    for d in os.environ.get('PATH', '').split(os.pathsep):
        if not d or os.path.realpath(d) == shims:
            continue
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if re.match(r'^python\d\.\d+$', n):
                cands.append(('path', os.path.join(d, n)))
    seen = set()
    out = []
    labels = set()
    for kind, exe in cands:
        real = os.path.realpath(exe)
        if real in seen or not os.access(real, os.X_OK) or not is_elf(real):
            continue
        seen.add(real)
        try:
            r = subprocess.run([exe, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
            ver = tuple(int(x) for x in r.stdout.decode().strip().split('.'))
        except Exception:
            continue
        if len(ver) != 3:
            continue
        v = '%d.%d.%d' % ver
        if kind == 'pyenv':
            lab = v
        elif kind == 'system':
            lab = ('debian-' if os.path.exists('/etc/debian_version') else 'system-') + v
        else:
            lab = 'path-' + v
        base = lab
        n = 2
        while lab in labels:
            lab = '%s-%d' % (base, n)
            n += 1
        labels.add(lab)
        out.append((0 if kind == 'pyenv' else 1 if kind == 'system' else 2, ver, Interp(lab, exe, ver)))
    out.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in out]


def libpython_of(exe, env=None):
    """Path of the libpython the interpreter maps, or None (static)."""
    r = subprocess.run([exe, '-c', 'import sys\nfor l in open("/proc/self/maps"):\n'
                        '  p = l.split()\n  if len(p) >= 6 and "/libpython" in p[5]: print(p[5]); break'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, env=env)
    out = r.stdout.decode().strip()
    return out or None


# ---------------------------------------------------------------------------
# ELF: file offset of a dynamic symbol (to patch Py_Version)

def elf_symbol_offset(path, symname):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise RuntimeError('%s: not a 64-bit little-endian ELF file' % path)
    e_phoff, e_shoff = struct.unpack_from('<QQ', data, 0x20)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from('<HHHH', data, 0x36)
    secs = [struct.unpack_from('<IIQQQQIIQQ', data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    value = None
    for s in secs:
        if s[1] not in (2, 11):           # SHT_SYMTAB, SHT_DYNSYM
            continue
        stroff = secs[s[6]][4]
        for off in range(s[4], s[4] + s[5], 24):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from('<IBBHQQ', data, off)
            end = data.index(b'\0', stroff + st_name)
            if data[stroff + st_name:end] == symname.encode() and st_shndx != 0:
                value = st_value
                break
        if value is not None:
            break
    if value is None:
        return None
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = \
            struct.unpack_from('<IIQQQQQQ', data, e_phoff + i * e_phentsize)
        if p_type == 1 and p_vaddr <= value < p_vaddr + p_filesz:
            return value - p_vaddr + p_offset
    return None


def elf_names(path):
    """The defined symbol names of .dynsym and .symtab, and the section names."""
    with open(path, 'rb') as f:
        data = f.read()
    e_shoff, = struct.unpack_from('<Q', data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from('<HHH', data, 0x3a)
    secs = [struct.unpack_from('<IIQQQQIIQQ', data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    shstr = secs[e_shstrndx][4]

    def cstr(off):
        return data[off:data.index(b'\0', off)].decode('utf-8', 'replace')
    out = {'dynsym': set(), 'symtab': set(), 'sections': set()}
    for s in secs:
        out['sections'].add(cstr(shstr + s[0]))
        if s[1] not in (2, 11):           # SHT_SYMTAB, SHT_DYNSYM
            continue
        stroff = secs[s[6]][4]
        names = out['symtab' if s[1] == 2 else 'dynsym']
        for off in range(s[4], s[4] + s[5], 24):
            st_name, st_info, st_other, st_shndx = struct.unpack_from('<IBBH', data, off)
            if st_shndx != 0:
                names.add(cstr(stroff + st_name).split('@')[0])
    return out


def nspid_map(pid):
    """{tid as the process's own PID namespace numbers it: our tid}."""
    m = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            for line in f:
                if line.startswith('NSpid:'):
                    m[int(line.split()[-1])] = int(tid)
    return m


# ---------------------------------------------------------------------------
# the tests

class Ctx(object):
    def __init__(self, runner, tmp):
        self.runner, self.tmp = runner, tmp

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix, dir=self.tmp)
        os.chmod(d, 0o755)
        return d


def dump(pid, json_=True, timeout=T_DUMP):
    argv = [PYSTROBE, 'dump', '-p', str(pid)] + (['--json'] if json_ else [])
    return run(argv, timeout)


def record(args, timeout=T_RECORD):
    return run([PYSTROBE, 'record'] + list(args), timeout)


def only_file(P, d, name):
    left = sorted(os.listdir(d))
    P.expect(left == [name], 'files left in the output folder: %r, expected only %r' % (left, name))


def interp_group(ctx, I):
    R = ctx.runner
    ver = I.ver
    pfx = I.label + '/'
    targets = []

    def new_target(*a, **kw):
        t = Target(ctx.tmp, *a, **kw)
        targets.append(t)
        return t

    full = Lazy(lambda: new_target(I.exe, ver=ver).start())
    busyonly = Lazy(lambda: new_target(I.exe, ver=ver, only_busy=True).start())

    try:
        # -- the target itself, before pystrobe is involved
        def selfcheck():
            P = Problems()
            for fx in (full, busyonly):
                check_oracle_selfcheck(P, fx.get(), ver)
            P.fail_if_any()
        R.case(pfx + 'target-selfcheck', selfcheck, needs_pystrobe=False)

        # -- dump
        def dump_json():
            t = full.get()
            res = dump(t.pid)
            P = Problems()
            check_dump_json(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'dump-json', dump_json)

        def dump_text():
            t = full.get()
            res = dump(t.pid, json_=False)
            P = Problems()
            check_dump_text(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'dump-text', dump_text)

        # -- record, attach mode
        busy_leaf = label('busy', THREADS_PY, line_of('threads', 'busy'))
        busy_def = label('busy', THREADS_PY, line_of('threads', 'busy-def'))

        def rec_attach(name, extra, check):
            def fn():
                t = busyonly.get()
                d = ctx.mkdtemp('rec-')
                out = os.path.join(d, 'out.folded')
                res = record(['-f', 'folded', '-o', out, '-r', str(RATE), '-d', str(DURATION)]
                             + extra + ['-p', str(t.pid)])
                P = Problems()
                P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res, RATE, DURATION)
                stacks = parse_folded(P, out)
                if stacks:
                    check(P, t, stacks, res)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)

        def exact_busy_stack(P, t, stacks, prefix=(), function_mode=False, share=None):
            """The busy thread's stack is the most frequent; with share, it
            is that share of the samples at least."""
            want = tuple(prefix) + oracle_labels(t.by_key()['busy'], function_mode)
            best = max(stacks.items(), key=lambda kv: kv[1])[0] if stacks else None
            P.expect(best == want, 'most frequent stack %r, expected the busy thread\'s %r'
                     % (best and ';'.join(best), ';'.join(want)))
            total = sum(stacks.values())
            if share is not None and total:
                got = float(stacks.get(want, 0)) / total
                P.expect(got >= share, 'the busy thread\'s stack has %d of %d samples (%.1f%%), expected >= %g%%; top stacks:\n      %s'
                         % (stacks.get(want, 0), total, 100 * got, 100 * share, top_stacks(stacks)))

        def chk_default(P, t, stacks, res):
            check_busy_share(P, stacks, busy_leaf)
            exact_busy_stack(P, t, stacks, share=EXACT_SHARE)
            sleeper = oracle_labels(t.by_key()['sleeper'])
            P.expect(sleeper not in stacks, 'the sleeping thread\'s stack is in the profile without --idle')
        rec_attach('record-attach', [], chk_default)

        def chk_idle(P, t, stacks, res):
            # Every thread is sampled at every tick, on its one stack.
            m = re.search(r'in ([0-9.]+) s \(([0-9.]+) Hz of', res.err_text)
            ticks = float(m.group(1)) * float(m.group(2)) if m else 0
            P.expect(m is not None, 'no "in S s (H Hz of R Hz)" in the summary')
            for key in ('busy', 'sleeper', 'main'):
                want = oracle_labels(t.by_key()[key]) + (() if key == 'busy' else (IDLE_MARK,))
                got = stacks.get(want, 0)
                P.expect(IDLE_TICKS * ticks <= got <= ticks + 1,
                         'with --idle, %d samples of the %s thread\'s stack %r in %.0f ticks, expected %d%% of them at least; top stacks:\n      %s'
                         % (got, key, ';'.join(want), ticks, IDLE_TICKS * 100, top_stacks(stacks)))
        rec_attach('record-idle', ['--idle'], chk_idle)

        def chk_threads(P, t, stacks, res):
            o = t.by_key()['busy']
            root = 'thread busy (%d)' % o['tid']
            bad = [s for s in stacks if not s[0].startswith('thread ')]
            P.expect(not bad, '%d stacks not rooted in "thread NAME (TID)", e.g. %r'
                     % (len(bad), bad and ';'.join(bad[0])))
            check_busy_share(P, stacks, busy_leaf, thread_root=root)
            exact_busy_stack(P, t, stacks, prefix=(root,), share=EXACT_SHARE)
        rec_attach('record-threads', ['--threads'], chk_threads)

        def chk_function(P, t, stacks, res):
            check_busy_share(P, stacks, busy_def)
            exact_busy_stack(P, t, stacks, function_mode=True, share=EXACT_SHARE)
        rec_attach('record-function', ['--function'], chk_function)

        def chk_gil(P, t, stacks, res):
            check_busy_share(P, stacks, busy_leaf)
            exact_busy_stack(P, t, stacks, share=EXACT_SHARE)
        rec_attach('record-gil', ['--gil'], chk_gil)

        # -- fast recursion under a known stack: every stack kept possible,
        #    next to nothing dropped, and the depths as a run with target and
        #    profiler on one CPU gives them (nothing moves while it is read)
        def fib_run(pin, depth, n):
            pre = ['taskset', '-c', pin] if pin else []
            p = spawn(pre + [I.exe, stackcheck.WORKLOAD, str(depth), '120', str(n)],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            r, _, _ = select.select([p.stdout], [], [], 60)
            if not r or p.stdout.readline() != b'READY\n':
                _kill(p)
                raise Failure('fib workload did not start')
            out = os.path.join(ctx.mkdtemp('fib-'), 'out.folded')
            try:
                res = run(pre + [PYSTROBE, 'record', '-f', 'folded', '-o', out, '-r', '1000', '-d', '3',
                                 '-p', str(p.pid)], T_RECORD)
            finally:
                _kill(p)
            return res, out

        def consistency():
            depth, n = 20, 18
            res, out = fib_run(None, depth, n)
            P = Problems()
            P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
            stacks = parse_folded(P, out) or {}
            marks = stackcheck.markers()
            bad = [(st, c, stackcheck.check(list(st), stackcheck.WORKLOAD, depth, n, marks))
                   for st, c in stacks.items()]
            bad = [b for b in bad if b[2]]
            total = sum(stacks.values())
            # (ticks the sampler missed on a busy machine are not its to keep)
            m = re.search(r'(\d+) behind schedule', res.err_text)
            due = 3000 - (int(m.group(1)) if m else 0)
            P.expect(total >= SAMPLES_MIN * due, 'only %d samples kept of the %d ticks taken in 3 s at 1 kHz'
                     % (total, due))
            m = re.search(r'(\d+) torn stack', res.err_text)
            torn = int(m.group(1)) if m else 0
            P.expect(torn <= FIB_TORN * max(total, 1), '%d samples dropped as torn, of %d (at most %g%%)'
                     % (torn, total, FIB_TORN * 100))
            P.expect(not bad, '%d of %d samples are impossible stacks (torn), e.g. %s: %s' % (
                sum(c for _, c, _ in bad), total, bad[0][2] if bad else '',
                clip(';'.join(bad[0][0]), 400) if bad else ''))
            # The truth: the same on one CPU.  (<= 3.10 keeps a stack only
            # from the innermost caller that did not move between two reads
            # of the frame objects: fast recursion comes out shallower
            # there, within wider tolerances; README, "Torn stacks".)
            res1, out1 = fib_run('0', depth, n)
            P.expect(res1.rc == 0, 'on one CPU: exit status %s, expected 0' % res1.rc)
            truth = parse_folded(P, out1) or {}
            got, want = stackcheck.depths(stacks), stackcheck.depths(truth)
            why = stackcheck.compare_depths(got, want, I.ver)
            P.expect(not why, 'fib depths %s; on one CPU %s: %s'
                     % (stackcheck.describe_depths(got), stackcheck.describe_depths(want), why))
            P.fail_if_any(res.describe() + res1.describe())
        R.case(pfx + 'record-consistency', consistency)

        def rec_all_threads():
            t = full.get()
            d = ctx.mkdtemp('rec-')
            out = os.path.join(d, 'out.folded')
            res = record(['-f', 'folded', '-o', out, '-r', '50', '-d', str(DURATION), '--idle', '--threads',
                          '-p', str(t.pid)])
            P = Problems()
            P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
            summary_samples(P, res)
            stacks = parse_folded(P, out)
            if stacks:
                check_all_threads_in_profile(P, t.oracle, stacks, strict_roots=True)
            only_file(P, d, 'out.folded')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-idle-threads-all', rec_all_threads)

        # -- record stops cleanly, and still writes the profile, when the
        # target exits or when pystrobe gets SIGINT or SIGTERM
        def rec_stop(how):
            def fn():
                d = ctx.mkdtemp('stop-')
                out = os.path.join(d, 'out.folded')
                args = ['--only-busy'] + (['--exit-after', '2'] if how == 'target-exit' else [])
                t = new_target(I.exe, args=args, ver=ver, only_busy=True)
                t.wait_ready()
                t.take_oracle()
                p = spawn([PYSTROBE, 'record', '-f', 'folded', '-o', out, '-r', '100', '-p', str(t.pid)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                t0 = time.time()
                if how != 'target-exit':
                    time.sleep(1.5)
                    p.send_signal(signal.SIGINT if how == 'sigint' else signal.SIGTERM)
                try:
                    outs, errs = p.communicate(timeout=15)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    _kill(p)
                    outs, errs = p.communicate()
                    timed_out = True
                res = Result(p.args, p.returncode, outs, errs, time.time() - t0, timed_out)
                P = Problems()
                P.expect(not timed_out, 'pystrobe did not stop within 15 s')
                P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res)
                stacks = parse_folded(P, out)
                if stacks:
                    check_busy_share(P, stacks, busy_leaf)
                    exact_busy_stack(P, t, stacks)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            return fn
        for how in ('target-exit', 'sigint', 'sigterm'):
            R.case(pfx + 'record-stop-' + how, rec_stop(how))

        # -- record, launch mode
        def rec_launch_all():
            d = ctx.mkdtemp('launch-')
            out = os.path.join(d, 'out.folded')
            lt = LaunchedTarget(ctx.tmp, ['-f', 'folded', '-o', out, '-r', '50', '-d', '60', '--idle', '--threads'],
                                I.exe, ['--exit-after', str(LAUNCH_BUSY)], ver=ver, timeout=T_RECORD + LAUNCH_BUSY)
            try:
                lt.wait_ready()
                lt.take_oracle()
                res = lt.finish()
            finally:
                lt.close()
            P = Problems()
            P.expect(not res.timed_out, 'did not return when the command exited')
            P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
            summary_samples(P, res)
            stacks = parse_folded(P, out)
            if stacks:
                check_all_threads_in_profile(P, lt.oracle, stacks, strict_roots=False)
            only_file(P, d, 'out.folded')
            P.fail_if_any(res.describe(out_limit=300))
        R.case(pfx + 'record-launch-idle-threads-all', rec_launch_all)

        def rec_launch(name, code):
            def fn():
                d = ctx.mkdtemp('launch-')
                out = os.path.join(d, 'out.folded')
                pidfile = os.path.join(ctx.tmp, 'launch-%s-%s.pid' % (I.label, name))
                cmd = [I.exe, THREADS_PY, '--only-busy', '--exit-after', str(LAUNCH_BUSY),
                       '--exit-code', str(code), '--pidfile', pidfile, '--max-life', '120']
                try:
                    res = record(['-f', 'folded', '-o', out, '-r', str(RATE), '-d', '60', '--'] + cmd,
                                 timeout=T_RECORD + LAUNCH_BUSY)
                finally:
                    try:
                        with open(pidfile) as f:
                            pid = int(f.read())
                        _kill_pid(pid, 'threads.py')
                    except (OSError, ValueError):
                        pass
                P = Problems()
                P.expect(not res.timed_out, 'did not return when the command exited (killed after %ds)'
                         % (T_RECORD + LAUNCH_BUSY))
                if code == 0:
                    P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res)
                P.expect(re.search(r'\bexit', res.err_text, re.I) and re.search(r'\b%d\b' % code, res.err_text),
                         'summary does not report the command\'s exit status %d' % code)
                stacks = parse_folded(P, out)
                if stacks:
                    check_busy_share(P, stacks, busy_leaf)
                    if code == 0 and busyonly.done and busyonly.error is None:
                        exact_busy_stack(P, busyonly.get(), stacks)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)
        rec_launch('record-launch', 0)
        rec_launch('record-launch-exit-status', 7)

        # -- venv
        def venv_dump():
            if ver[0] < 3:
                raise Skip('no venv module in Python %d.%d' % ver[:2])
            d = ctx.mkdtemp('venv-')
            vdir = os.path.join(d, 'venv')
            r = run([I.exe, '-m', 'venv', '--without-pip', vdir], timeout=120)
            vpy = os.path.join(vdir, 'bin', 'python')
            if r.rc != 0 or not os.path.exists(vpy):
                raise Skip('python -m venv failed: %s' % r.describe())
            t = new_target(vpy, ver=ver).start()
            P = Problems()
            P.expect(t.oracle['executable'] == vpy, 'setup: sys.executable %r, not the venv\'s' % t.oracle['executable'])
            res = dump(t.pid)
            check_dump_json(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        if ver >= (3, 3):   # venv is in the standard library from 3.3
            R.case(pfx + 'venv-dump', venv_dump)

        # -- deleted binary: the libpython copy (shared builds) or the executable copy (static)
        def deleted_dump():
            lib = libpython_of(I.exe)
            d = ctx.mkdtemp('deleted-')
            if lib:
                copy = os.path.join(d, os.path.basename(lib))
                shutil.copy2(lib, copy)
                env = dict(os.environ, LD_LIBRARY_PATH=d)
                exe = I.exe
            else:
                copy = os.path.join(d, 'python3')
                shutil.copy2(os.path.realpath(I.exe), copy)
                env = None
                exe = copy
            t = new_target(exe, ver=ver, env=env)
            t.wait_ready()
            P = Problems()
            mapped = python_binary_of(t.pid) if lib else os.readlink('/proc/%d/exe' % t.pid)
            if mapped != copy:
                raise Failure('setup: the target runs %r, not the copy %r' % (mapped, copy))
            os.unlink(copy)
            t.take_oracle()
            res = dump(t.pid)
            check_dump_json(P, t, ver, res, deleted_ok=True)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'deleted-binary-dump', deleted_dump)

        # -- each route to the runtime state on its own (PYSTROBE_ROUTE): the
        # symbol tables, the .PyRuntime section and the scan of .data/.bss
        def routes_dump():
            t = full.get()
            info = elf_names(strip_deleted(python_binary_of(t.pid)))
            sym = '_PyRuntime' if ver >= (3, 7) else 'interp_head'
            works = {'dynsym': sym in info['dynsym'], 'symtab': sym in info['symtab'],
                     'section': ver >= (3, 7) and '.PyRuntime' in info['sections'], 'scan': True}
            P = Problems()
            for route in ('dynsym', 'symtab', 'section', 'scan'):
                res = run([PYSTROBE, 'dump', '-p', str(t.pid), '--json'], T_DUMP,
                          env=dict(os.environ, PYSTROBE_ROUTE=route))
                sub = Problems()
                if works[route]:
                    check_dump_json(sub, t, ver, res)
                else:
                    check_one_line_error(sub, res, 1, words=['not a Python process'])
                for item in sub.items:
                    P.expect(False, 'route %s (%s): %s%s' % (route, 'usable' if works[route] else 'absent',
                                                             item, res.describe(out_limit=300)))
            P.fail_if_any()
        R.case(pfx + 'routes-dump', routes_dump)

        # -- a container: the interpreter only exists in the target's own mount
        # namespace, and the target is pid 1 of its own PID namespace
        def namespace_dump():
            if os.geteuid() != 0 or not shutil.which('unshare'):
                raise Skip('needs root and unshare(1) to make namespaces')
            lib = libpython_of(I.exe)
            d = ctx.mkdtemp('ns-')
            inner = os.path.join(d, 'only-inside')
            os.mkdir(inner)
            src = lib or os.path.realpath(I.exe)
            copy = os.path.join(inner, os.path.basename(src))
            script = 'mount -t tmpfs none "$1" && cp "$2" "$3" && shift 3 && '
            if lib:
                script += 'LD_LIBRARY_PATH=%s exec "$@"' % shq(inner)
                argv0 = I.exe
            else:
                script += 'exec "$@"'
                argv0 = copy
            wrapper = os.path.join(d, 'in-namespaces.sh')
            with open(wrapper, 'w') as f:
                f.write('#!/bin/sh\nexec unshare --mount --pid --fork --mount-proc sh -c %s sh %s %s %s "$@"\n'
                        % (shq(script), shq(inner), shq(src), shq(copy)))
            os.chmod(wrapper, 0o755)
            t = NamespacedTarget(ctx.tmp, wrapper, argv0, ver)
            targets.append(t)
            t.wait_ready()
            P = Problems()
            P.expect(not os.listdir(inner), 'setup: %s is not empty outside the namespace' % inner)
            P.expect(python_binary_of(t.pid) == copy, 'setup: the target maps %r, not %r'
                     % (python_binary_of(t.pid), copy))
            t.take_oracle()
            ns = nspid_map(t.pid)
            res = dump(t.pid)
            if P.expect(res.rc == 0, 'dump failed'):
                doc = json.loads(res.out.decode('utf-8'))
                got = dict((th.get('name'), th) for th in doc['threads'])
                for o in t.oracle['threads']:
                    name = oracle_name(o)
                    th = got.get(name)
                    if not P.expect(th is not None, 'thread %r missing: got %r' % (name, sorted(got))):
                        continue
                    P.expect(th['tid'] == ns.get(o['tid']), 'thread %r: tid %r, expected %r (%r inside)'
                             % (name, th['tid'], ns.get(o['tid']), o['tid']))
                    want = oracle_frames(o)[:MAX_DEPTH]
                    have = [(f['function'], f['file'], f['line']) for f in th['frames']]
                    dfr = frames_diff(want, have)
                    P.expect(dfr is None, 'thread %r: %s' % (name, dfr))
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'namespace-dump', namespace_dump)
    finally:
        for t in targets:
            t.close()


def errors_group(ctx, interps):
    R = ctx.runner
    pfx = 'errors/'
    procs = []
    targets = []

    def sleeper_pid():
        p = spawn(['sleep', '600'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        return p.pid
    sleep_fx = Lazy(sleeper_pid)

    def pick_interp():
        if not interps:
            raise Skip('no Python interpreter found')
        for I in interps:
            if I.label.startswith(('debian-', 'system-')):
                return I
        return interps[-1]

    def py_target():
        I = pick_interp()
        t = Target(ctx.tmp, I.exe, ver=I.ver, only_busy=True)
        targets.append(t)
        t.wait_ready()
        t.settle()
        return t
    py_fx = Lazy(py_target)

    def nonexistent_pid():
        try:
            with open('/proc/sys/kernel/pid_max') as f:
                pid = int(f.read()) + 1
        except (OSError, ValueError):
            pid = 4194305
        while os.path.exists('/proc/%d' % pid):
            pid += 1
        return pid

    try:
        # -- no such process
        def no_such_pid(sub):
            def fn():
                pid = nonexistent_pid()
                d = ctx.mkdtemp('nopid-')
                if sub == 'dump':
                    res = dump(pid, timeout=T_PROMPT)
                else:
                    res = record(['-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '30', '-p', str(pid)],
                                 timeout=T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 1, any_words=(str(pid), 'no such process'))
                P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            return fn
        R.case(pfx + 'no-such-pid-dump', no_such_pid('dump'))
        R.case(pfx + 'no-such-pid-record', no_such_pid('record'))

        # -- not Python
        def not_python(sub):
            def fn():
                pid = sleep_fx.get()
                d = ctx.mkdtemp('notpy-')
                if sub == 'dump':
                    res = dump(pid, timeout=T_PROMPT)
                else:
                    res = record(['-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '30', '-p', str(pid)],
                                 timeout=T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 1, any_words=(str(pid), 'sleep'))
                P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            return fn
        R.case(pfx + 'not-python-dump', not_python('dump'))
        R.case(pfx + 'not-python-record', not_python('record'))

        # -- permission denied

        def permission(sub):
            def fn():
                if os.geteuid() != 0:
                    raise Skip('needs root (to start a root-owned target and drop to uid 65534)')
                setpriv = shutil.which('setpriv')
                if not setpriv:
                    raise Skip('setpriv not installed')
                t = py_fx.get()
                d = ctx.mkdtemp('perm-')
                os.chmod(d, 0o777)
                exe = os.path.join(d, 'pystrobe')
                shutil.copy(PYSTROBE, exe)
                os.chmod(exe, 0o755)
                # every folder above must be traversable by uid 65534
                x = d
                while x != '/':
                    x = os.path.dirname(x)
                    if not os.stat(x).st_mode & stat.S_IXOTH:
                        raise Skip('%s is not traversable by other users' % x)
                cmd = [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', exe]
                if sub == 'dump':
                    cmd += ['dump', '-p', str(t.pid)]
                else:
                    cmd += ['record', '-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '30',
                            '-p', str(t.pid)]
                res = run(cmd, T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 1, words=['CAP_SYS_PTRACE', 'ptrace_scope', 'container'])
                left = [n for n in os.listdir(d) if n != 'pystrobe']
                P.expect(left == [], 'files left behind: %r' % left)
                P.fail_if_any(res.describe())
            return fn
        R.case(pfx + 'permission-denied-dump', permission('dump'))
        R.case(pfx + 'permission-denied-record', permission('record'))

        # -- unknown interpreter version (Py_Version patched to 3.14)
        unknown_fx = Lazy(lambda: unknown_version_target(ctx, interps, targets))

        def unknown(sub):
            def fn():
                t = unknown_fx.get()
                d = ctx.mkdtemp('unk-')
                if sub == 'dump':
                    res = dump(t.pid, timeout=T_PROMPT)
                else:
                    res = record(['-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '30', '-p', str(t.pid)],
                                 timeout=T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 1, words=['3.14'])
                P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            return fn
        R.case(pfx + 'unknown-version-dump', unknown('dump'))
        R.case(pfx + 'unknown-version-record', unknown('record'))

        # -- output that cannot be written: fail before sampling
        def unwritable(kind):
            def fn():
                t = py_fx.get()
                d = ctx.mkdtemp('unw-')
                before = None
                if kind == 'no-such-dir':
                    out = os.path.join(d, 'no-such-dir', 'x.folded')
                elif kind == 'parent-is-file':
                    open(os.path.join(d, 'file'), 'w').close()
                    out = os.path.join(d, 'file', 'x.folded')
                else:  # is-dir
                    os.mkdir(os.path.join(d, 'adir'))
                    out = os.path.join(d, 'adir')
                before = sorted(os.listdir(d))
                res = record(['-f', 'folded', '-o', out, '-r', str(RATE), '-d', '30', '-p', str(t.pid)],
                             timeout=T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 1)
                P.expect(sorted(os.listdir(d)) == before, 'folder changed: %r -> %r' % (before, sorted(os.listdir(d))))
                if kind == 'is-dir':
                    P.expect(os.listdir(out) == [], 'files created in the directory: %r' % os.listdir(out))
                P.fail_if_any(res.describe())
            return fn
        R.case(pfx + 'unwritable-output-no-such-dir', unwritable('no-such-dir'))
        R.case(pfx + 'unwritable-output-parent-is-file', unwritable('parent-is-file'))
        R.case(pfx + 'unwritable-output-is-dir', unwritable('is-dir'))

        def unwritable_launch():
            I = pick_interp()
            d = ctx.mkdtemp('unwl-')
            marker = os.path.join(d, 'command-ran')
            res = record(['-f', 'folded', '-o', os.path.join(d, 'no-such-dir', 'x.folded'), '-d', '30', '--',
                          I.exe, '-c', 'open(%r, "w").close(); import time; time.sleep(30)' % marker],
                         timeout=T_PROMPT)
            P = Problems()
            check_one_line_error(P, res, 1)
            P.expect(not os.path.exists(marker), 'the command was started although the output cannot be written')
            P.fail_if_any(res.describe())
        R.case(pfx + 'unwritable-output-launch', unwritable_launch)

        # -- command not found
        def cmd_not_found():
            d = ctx.mkdtemp('nocmd-')
            res = record(['-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '5', '--',
                          '/nonexistent/cmd', 'arg'], timeout=T_PROMPT)
            P = Problems()
            check_one_line_error(P, res, 1, words=['/nonexistent/cmd'])
            P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
            P.fail_if_any(res.describe())
        R.case(pfx + 'command-not-found', cmd_not_found)

        def cmd_not_found_path():
            d = ctx.mkdtemp('nocmd-')
            res = record(['-f', 'folded', '-o', os.path.join(d, 'x.folded'), '-d', '5', '--',
                          'no-such-command-pystrobe-e2e'], timeout=T_PROMPT)
            P = Problems()
            check_one_line_error(P, res, 1, words=['no-such-command-pystrobe-e2e'])
            P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
            P.fail_if_any(res.describe())
        R.case(pfx + 'command-not-found-in-path', cmd_not_found_path)

        # -- usage errors: exit status 2, one line
        def usage(name, argv_fn):
            def fn():
                d = ctx.mkdtemp('usage-')
                out = os.path.join(d, 'x.folded')
                argv = argv_fn(out)
                res = run([PYSTROBE] + argv, T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, 2)
                P.expect(os.listdir(d) == [], 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            R.case(pfx + 'usage-' + name, fn)

        sp = lambda: str(sleep_fx.get())
        usage('unknown-option-record', lambda o: ['record', '--bogus', '-o', o, '-p', sp()])
        usage('unknown-option-dump', lambda o: ['dump', '--bogus', '-p', sp()])
        usage('unknown-short-option', lambda o: ['record', '-Z', '-o', o, '-p', sp()])
        usage('unknown-subcommand', lambda o: ['frobnicate', '-p', sp()])
        usage('rate-abc', lambda o: ['record', '-r', 'abc', '-d', '1', '-o', o, '-p', sp()])
        usage('rate-zero', lambda o: ['record', '-r', '0', '-d', '1', '-o', o, '-p', sp()])
        usage('rate-negative', lambda o: ['record', '-r', '-5', '-d', '1', '-o', o, '-p', sp()])
        usage('rate-trailing-garbage', lambda o: ['record', '-r', '100x', '-d', '1', '-o', o, '-p', sp()])
        usage('duration-negative', lambda o: ['record', '-d', '-1', '-o', o, '-p', sp()])
        usage('duration-abc', lambda o: ['record', '-d', 'abc', '-o', o, '-p', sp()])
        usage('format-unknown', lambda o: ['record', '-f', 'bogus', '-d', '1', '-o', o, '-p', sp()])
        usage('pid-missing-argument-dump', lambda o: ['dump', '-p'])
        usage('pid-missing-argument-record', lambda o: ['record', '-o', o, '-p'])
        usage('pid-malformed', lambda o: ['dump', '-p', 'abc'])
        usage('pid-trailing-garbage', lambda o: ['dump', '-p', sp() + 'x'])
        usage('pid-and-command', lambda o: ['record', '-d', '1', '-o', o, '-p', sp(), '--', 'sleep', '1'])
        usage('neither-pid-nor-command-record', lambda o: ['record', '-d', '1', '-o', o])
        usage('neither-pid-nor-command-dump', lambda o: ['dump'])
        usage('empty-command', lambda o: ['record', '-d', '1', '-o', o, '--'])
    finally:
        for t in targets:
            t.close()
        for p in procs:
            _kill(p)

def formats_group(ctx, interps):
    """Every output format from a real recording, and convert/diff on the command line."""
    R = ctx.runner
    pfx = 'formats/'
    targets = []

    def py_target():
        if not interps:
            raise Skip('no Python interpreter found')
        I = interps[-1]
        t = Target(ctx.tmp, I.exe, ver=I.ver, only_busy=True)
        targets.append(t)
        t.wait_ready()
        t.settle()
        return t
    py_fx = Lazy(py_target)
    busy_leaf = label('busy', THREADS_PY, line_of('threads', 'busy'))

    def rec(P, d, args, t):
        res = record(['-r', str(RATE), '-d', '1'] + args + ['-p', str(t.pid)])
        P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
        return res

    try:
        def flamegraph(name, args, expect_file):
            def fn():
                t = py_fx.get()
                d = ctx.mkdtemp('svg-')
                P = Problems()
                res = run([PYSTROBE, 'record', '-r', str(RATE), '-d', '1'] + args + ['-p', str(t.pid)],
                          T_RECORD, cwd=d)
                P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
                files = os.listdir(d)
                got = [f for f in files if re.match(expect_file, f)]
                P.expect(len(got) == 1 and len(files) == 1,
                         'files in the folder: %r, expected one matching %r' % (files, expect_file))
                if got:
                    import xml.etree.ElementTree as ET
                    try:
                        root = ET.parse(os.path.join(d, got[0])).getroot()
                    except ET.ParseError as e:
                        P.expect(False, 'not well-formed XML: %s' % e)
                        root = None
                    if root is not None:
                        P.expect(root.tag == '{http://www.w3.org/2000/svg}svg', 'root element %r' % root.tag)
                        titles = [e.text or '' for e in root.iter('{http://www.w3.org/2000/svg}title')]
                        P.expect(any(x.startswith(busy_leaf) for x in titles),
                                 'no frame titled %r among %d titles' % (busy_leaf, len(titles)))
                        texts = {e.get('id'): e.text or '' for e in root.iter('{http://www.w3.org/2000/svg}text')
                                 if e.get('id')}
                        want = ' '.join(proc_cmdline(t.pid)) + ' (pid %d)' % t.pid
                        P.expect(texts.get('title') == want, 'title %r, expected %r' % (texts.get('title'), want))
                        sub = texts.get('subtitle', '')
                        P.expect(re.search(r'started 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ', sub) and
                                 '%d Hz' % RATE in sub and re.search(r'\b\d+ samples$', sub),
                                 'subtitle %r lacks the start, the rate or the sample count' % sub)
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)
        flamegraph('record-flamegraph-by-default', [], r'^pystrobe-[0-9]+-[0-9]{8}T[0-9]{6}\.svg$')
        flamegraph('record-flamegraph-from-extension', ['-o', 'out.svg'], r'^out\.svg$')
        flamegraph('record-flamegraph-reverse', ['-f', 'flamegraph', '--reverse', '-o', 'x.out'], r'^x\.out$')

        def speedscope():
            t = py_fx.get()
            d = ctx.mkdtemp('ss-')
            out = os.path.join(d, 'out.json')
            P = Problems()
            res = rec(P, d, ['-o', out], t)
            try:
                with open(out, encoding='utf-8') as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                P.expect(False, 'cannot read the JSON: %s' % e)
                doc = None
            if doc is not None:
                frames = doc.get('shared', {}).get('frames', [])
                idx = [i for i, fr in enumerate(frames)
                       if (fr.get('name'), fr.get('file'), fr.get('line')) ==
                       ('busy', THREADS_PY, line_of('threads', 'busy'))]
                P.expect(len(idx) == 1, 'busy\'s frame listed %d times' % len(idx))
                profs = doc.get('profiles', [])
                P.expect(len(profs) >= 1 and all(p.get('type') == 'sampled' for p in profs),
                         'profiles: %r' % [p.get('type') for p in profs])
                leaves = sum(w for p in profs for s, w in zip(p.get('samples', []), p.get('weights', []))
                             if s and idx and s[-1] == idx[0])
                P.expect(leaves > 0, 'no sample has busy as its leaf')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-speedscope', speedscope)

        def pprof():
            t = py_fx.get()
            d = ctx.mkdtemp('pp-')
            out = os.path.join(d, 'out.pb.gz')
            P = Problems()
            res = rec(P, d, ['-o', out], t)
            try:
                with gzip.open(out, 'rb') as f:
                    data = f.read()
            except (OSError, EOFError) as e:
                P.expect(False, 'not gzip: %s' % e)
                data = b''
            P.expect(b'busy' in data and THREADS_PY.encode() in data, 'function or file name missing')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-pprof', pprof)

        def convert_round_trip():
            t = py_fx.get()
            d = ctx.mkdtemp('conv-')
            out = os.path.join(d, 'out.folded')
            P = Problems()
            res = rec(P, d, ['--threads', '-o', out], t)
            stacks = parse_folded(P, out)
            again = os.path.join(d, 'again.folded')
            r2 = run([PYSTROBE, 'convert', out, '-o', again], T_PROMPT)
            P.expect(r2.rc == 0, 'convert to folded: exit status %s' % r2.rc)
            if stacks is not None:
                with open(out, 'rb') as f1, open(again, 'rb') as f2:
                    P.expect(f1.read() == f2.read(), 'convert IN -o OUT.folded changed the stacks')
            for fmt, ext in (('flamegraph', 'svg'), ('speedscope', 'json'), ('pprof', 'pb.gz')):
                r3 = run([PYSTROBE, 'convert', out, '-f', fmt, '-o', os.path.join(d, 'c.' + ext)], T_PROMPT)
                P.expect(r3.rc == 0 and os.path.getsize(os.path.join(d, 'c.' + ext)) > 0,
                         'convert -f %s: exit status %s' % (fmt, r3.rc))
            r4 = run([PYSTROBE, 'convert', out, '-f', 'folded'], T_PROMPT)
            with open(out, 'rb') as f1:
                P.expect(r4.rc == 0 and r4.out == f1.read(), 'convert to stdout differs')
            P.fail_if_any(res.describe())
        R.case(pfx + 'convert-round-trip', convert_round_trip)

        def diff_top():
            d = ctx.mkdtemp('diff-')
            base, new = os.path.join(d, 'base.folded'), os.path.join(d, 'new.folded')
            with open(base, 'w') as f:
                f.write('thread Main (10);main (a.py:1);slow (a.py:5) 30\nthread Main (10);main (a.py:1);fast (a.py:9) 70\n')
            with open(new, 'w') as f:
                f.write('thread Main (99);main (a.py:1);slow (a.py:5) 120\nthread Main (99);main (a.py:1);fast (a.py:9) 80\n')
            res = run([PYSTROBE, 'diff', base, new, '--top', '2', '-o', os.path.join(d, 'd.svg')], T_PROMPT)
            P = Problems()
            P.expect(res.rc == 0, 'exit status %s' % res.rc)
            lines = res.out_text.strip('\n').split('\n')
            P.expect(len(lines) == 4, '%d lines, expected 2 header lines and 2 frames' % len(lines))
            if len(lines) == 4:
                P.expect(lines[2].split() == ['30.00', '60.00', '+30.00', '30.00', '60.00', '+30.00', 'slow', '(a.py:5)'],
                         'first row %r' % lines[2])
                P.expect(lines[3].split() == ['70.00', '40.00', '-30.00', '70.00', '40.00', '-30.00', 'fast', '(a.py:9)'],
                         'second row %r' % lines[3])
            # The colors: slow grew (red), fast shrank (blue) by as much, main did not change.
            import xml.etree.ElementTree as ET
            ns = '{http://www.w3.org/2000/svg}'
            fills = {}
            try:
                for g in ET.parse(os.path.join(d, 'd.svg')).getroot().iter(ns + 'g'):
                    title, rect = g.find(ns + 'title'), g.find(ns + 'rect')
                    if title is not None and rect is not None:
                        fills[title.text.split(' (')[0]] = rect.get('fill')
            except (OSError, ET.ParseError) as e:
                P.expect(False, 'cannot read the SVG: %s' % e)

            def rgb(name):
                m = re.match(r'^rgb\((\d+),(\d+),(\d+)\)$', fills.get(name) or '')
                return tuple(int(x) for x in m.groups()) if m else None
            slow, fast, main_ = rgb('slow'), rgb('fast'), rgb('main')
            P.expect(slow is not None and slow[0] > slow[2] + 100, 'slow (grew) is not red: %r' % (slow,))
            P.expect(fast is not None and fast[2] > fast[0] + 100, 'fast (shrank) is not blue: %r' % (fast,))
            P.expect(main_ is not None and abs(main_[0] - main_[2]) < 10, 'main (unchanged) is colored: %r' % (main_,))
            P.expect('thread Main' in fills, 'threads not matched by name across runs: %r' % sorted(fills))
            P.fail_if_any(res.describe())
        R.case(pfx + 'diff-top', diff_top)

        def austin_output():
            """Real austin output (Debian's austin 1.0.1) read by convert."""
            austin = shutil.which('austin')
            if not austin:
                raise Skip('austin is not installed (apt-get install austin)')
            old = [I for I in interps if (3, 6) <= I.ver <= (3, 8)]
            if not old:
                raise Skip('no interpreter from 3.6 to 3.8, the newest austin 1.0 reads')
            I = old[-1]
            d = ctx.mkdtemp('austin-')
            script = os.path.join(d, 'spin.py')
            with open(script, 'w') as f:
                f.write('import time\n'
                        'def spin(t):\n'
                        '    while time.time() < t:\n'
                        '        pass\n'
                        'spin(time.time() + 1.5)\n')
            raw = os.path.join(d, 'austin.out')
            # austin gives up when it does not find the interpreter's state within
            # -t ms, which a loaded machine can make it miss: tried three times,
            # with a generous limit, then a failure (austin is there to be read).
            for _ in range(3):
                res = run([austin, '-t', '10000', '-i', '1000', '-o', raw, I.exe, script], 120)
                if res.rc == 0 and os.path.exists(raw) and os.path.getsize(raw) > 0:
                    break
            else:
                raise Failure('austin could not sample %s in 3 tries:%s' % (I.label, res.describe()))
            P = Problems()
            out = os.path.join(d, 'out.folded')
            r2 = run([PYSTROBE, 'convert', raw, '-f', 'folded', '-o', out], T_PROMPT)
            P.expect(r2.rc == 0, 'convert exit status %s: %s' % (r2.rc, r2.err_text.strip()))
            stacks = parse_folded(P, out) or {}
            spin = label('spin', script, 3)
            total = sum(stacks.values())
            on_spin = sum(c for st, c in stacks.items() if st[-1] in (spin, label('spin', script, 4)))
            P.expect(all(re.match(r'^thread \([0-9a-f]+\)$', st[0]) for st in stacks),
                     'stacks not rooted in austin\'s threads: %r' % clip(repr(list(stacks)[:3]), 300))
            P.expect(any(st[-2:] == (label('<module>', script, 5), spin) for st in stacks),
                     'no stack <module> (%s:5);%s' % (script, spin))
            P.expect(total and on_spin > 0.5 * total, 'spin is the leaf of %d of %d' % (on_spin, total))
            r3 = run([PYSTROBE, 'convert', raw, '-o', os.path.join(d, 'out.svg')], T_PROMPT)
            P.expect(r3.rc == 0, 'convert to SVG: exit status %s' % r3.rc)
            P.fail_if_any(r2.describe())
        R.case(pfx + 'convert-austin-output', austin_output)

        # -- bad input to convert and diff
        def bad(name, text, argv_fn, rc, words):
            def fn():
                d = ctx.mkdtemp('bad-')
                src = os.path.join(d, 'in.folded')
                if text is not None:
                    with open(src, 'wb') as f:
                        f.write(text)
                before = sorted(os.listdir(d))
                res = run([PYSTROBE] + argv_fn(src, os.path.join(d, 'out.svg')), T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, rc, words=words)
                P.expect(sorted(os.listdir(d)) == before, 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            R.case('errors/' + name, fn)
        conv = lambda s, o: ['convert', s, '-o', o]
        bad('convert-malformed-count', b'a;b 1\na;b 2\na;b two\n', conv, 1, ['in.folded:3:', 'count'])
        bad('convert-empty-frame', b'a;;b 1\n', conv, 1, ['in.folded:1:', 'empty'])
        bad('convert-binary', b'\x00\x01\x02 1\n', conv, 1, ['in.folded:1:', 'NUL'])
        bad('convert-no-samples', b'\n\n', conv, 1, ['no samples'])
        bad('convert-missing-file', None, conv, 1, ['in.folded'])
        bad('convert-unwritable', b'a 1\n', lambda s, o: ['convert', s, '-o', os.path.join(o, 'x.svg')], 1, [])
        def device_full():
            if not os.path.exists('/dev/full') or not stat.S_ISCHR(os.stat('/dev/full').st_mode):
                raise Skip('no /dev/full character device')
            d = ctx.mkdtemp('full-')
            src = os.path.join(d, 'in.folded')
            with open(src, 'w') as f:
                f.write(''.join('a;b%d 1\n' % i for i in range(5000)))
            P = Problems()
            for fmt in ('flamegraph', 'folded', 'speedscope', 'pprof'):
                res = run([PYSTROBE, 'convert', src, '-f', fmt, '-o', '/dev/full'], T_PROMPT)
                check_one_line_error(P, res, 1, words=['/dev/full', 'no space left'])
                st = os.stat('/dev/full')
                P.expect(stat.S_ISCHR(st.st_mode), '-f %s: /dev/full was replaced by a regular file' % fmt)
                if not stat.S_ISCHR(st.st_mode):
                    break
            P.fail_if_any(res.describe())
        R.case('errors/convert-output-device-full', device_full)
        bad('usage-convert-no-input', b'a 1\n', lambda s, o: ['convert', '-o', o], 2, [])
        bad('usage-convert-two-inputs', b'a 1\n', lambda s, o: ['convert', s, s, '-o', o], 2, [])
        bad('usage-convert-unknown-format', b'a 1\n', lambda s, o: ['convert', s, '-f', 'png', '-o', o], 2, ['png'])
        bad('usage-diff-one-input', b'a 1\n', lambda s, o: ['diff', s, '-o', o], 2, [])
        bad('usage-diff-not-svg', b'a 1\n', lambda s, o: ['diff', s, s, '-o', o + '.json'], 2, ['.svg'])
        bad('usage-diff-top-zero', b'a 1\n', lambda s, o: ['diff', s, s, '--top', '0'], 2, ['--top'])
    finally:
        for t in targets:
            t.close()


def unknown_version_target(ctx, interps, targets):
    """A 3.11+ interpreter whose Py_Version says 3.14.0 final."""
    tried = []
    cands = sorted([I for I in interps if I.ver >= (3, 11)],
                   key=lambda I: 0 if I.label.startswith(('debian-', 'system-')) else 1)
    for I in cands:
        lib = libpython_of(I.exe)
        src = lib or os.path.realpath(I.exe)
        off = elf_symbol_offset(src, 'Py_Version')
        if off is None:
            tried.append('%s: no Py_Version symbol' % src)
            continue
        with open(src, 'rb') as f:
            f.seek(off)
            orig = struct.unpack('<I', f.read(4))[0]
        if orig >> 16 != (I.ver[0] << 8 | I.ver[1]):
            tried.append('%s: Py_Version at file offset %#x holds %#x' % (src, off, orig))
            continue
        d = ctx.mkdtemp('unknown-')
        copy = os.path.join(d, os.path.basename(lib) if lib else 'python3')
        shutil.copy2(src, copy)
        with open(copy, 'r+b') as f:
            f.seek(off)
            f.write(struct.pack('<I', 0x030e00f0))
        env = dict(os.environ, LD_LIBRARY_PATH=d) if lib else None
        t = Target(ctx.tmp, I.exe if lib else copy, ver=I.ver, only_busy=True, env=env)
        targets.append(t)
        t.wait_ready()
        mapped = python_binary_of(t.pid)
        if mapped != copy:
            raise Failure('setup: target runs %r, not the patched %r' % (mapped, copy))
        t.settle()
        return t
    raise Skip('no 3.11+ interpreter with a patchable Py_Version: %s' % '; '.join(tried))


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-j', type=int, default=2, help='parallel groups (default 2)')
    ap.add_argument('--list', action='store_true', help='list the test names, run nothing')
    ap.add_argument('filters', nargs='*', help='only tests whose name contains one of these')
    args = ap.parse_args()

    runner = Runner(args.filters, args.list)
    interps = discover()
    tmp = tempfile.mkdtemp(prefix='pystrobe-e2e-')
    os.chmod(tmp, 0o755)
    ctx = Ctx(runner, tmp)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    here = sys.modules[__name__]
    groups = [lambda I=I: interp_group(ctx, I) for I in interps]
    groups += [lambda I=I: e2e_states.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_native.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_core.group(ctx, I, here) for I in interps]
    groups.append(lambda: e2e_top.group(ctx, interps, here))
    groups += [lambda I=I: e2e_locals.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_nativestack.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_greenlets.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_glrecord.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_truth.group(ctx, I, here) for I in interps]
    groups.append(lambda: e2e_outfiles.group(ctx, interps, here))
    groups += [lambda I=I: e2e_ends.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_hostile.group(ctx, I, here) for I in interps]
    groups.insert(0, lambda: errors_group(ctx, interps))
    groups.insert(1, lambda: formats_group(ctx, interps))
    groups.insert(2, lambda: e2e_inputs.group(ctx, here))
    groups.insert(3, lambda: e2e_suite.group(ctx, interps, here))
    groups.append(lambda: e2e_suite.harness_group(ctx, interps, here))
    if not interps:
        runner.report('SKIP', 'interpreters', 'no Python interpreter found')
    interrupted = False
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j))
    try:
        futs = [pool.submit(g) for g in groups]
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
        shutil.rmtree(tmp, ignore_errors=True)
    if args.list:
        return
    line = 'e2e: %d passed, %d failed, %d skipped; interpreters: %s' % (
        runner.passed, runner.failed, runner.skipped, ' '.join(I.label for I in interps))
    if interrupted:
        line += ' (INTERRUPTED)'
    print(line)
    sys.stdout.flush()
    if interrupted:
        os._exit(130)
    sys.exit(1 if runner.failed else 0)


if __name__ == '__main__':
    main()
