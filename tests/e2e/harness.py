"""The end-to-end tests' harness: everything tests/e2e/run.py's test groups share.

- processes: spawn() (each in its own session), run() and finish() (a
  Result: exit status, output, time, timed out), kill_everything() on the
  way out; nothing started here survives the run;
- the runner: Runner.case(name, fn) (PASS, FAIL, SKIP lines; a filter on
  names; --list), Failure, Skip, Problems (every failed expectation of a
  test, then one failure), Lazy (a fixture built on first use);
- targets: Target (tests/targets/threads.py, attached to), LaunchedTarget
  (started by `pystrobe record -- ...`), NamespacedTarget (in its own mount
  and PID namespaces); the oracle (what the interpreter itself reports,
  --oracle) and the markers (`# @name` comments: line_of, marker_spec);
- checks: dump's JSON and text against the oracle and the markers, one-line
  errors, folded output (parse_folded, label, shares, every thread's stack),
  the summary's sample count;
- interpreters (discover(): tests/interps.py's, shared with the stress
  tests and the benchmark), ELF and /proc helpers.

The groups (e2e_*.py) receive this module as `rt` (group(ctx, I, rt)) or
import the names they use from it.  Stdlib only; runs on Python 3.6+.
"""
import json
import os
import re
import select
import signal
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
sys.path.insert(0, os.path.join(ROOT, 'bench'))   # stackcheck, truthcheck
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from interps import discover, pyenv_root  # noqa: E402,F401  (one discovery for e2e, stress and bench)
from interps import root_problem, test_root  # noqa: E402,F401  (the Debian root: where, or why none)
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


NOT_STOPPED = 'frames: not stopped'   # dump --native's note of threads it could not stop in time
NATIVE_DUMP_TRIES = 3


def run_native_dump(argv, timeout):
    """A `dump --native` (argv): pystrobe waits 100 ms for each thread to
    stop and says so when one did not; on a busy machine a thread may not
    get a CPU that soon, and the dump is taken again (up to
    NATIVE_DUMP_TRIES in all).  The last result."""
    for _ in range(NATIVE_DUMP_TRIES):
        res = run(argv, timeout)
        if res.rc != 0 or NOT_STOPPED not in res.err_text:
            break
    return res


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

def task_files(pid, names, strict=False):
    """{tid: [the text of /proc/PID/task/TID/NAME for each of names]}; a task
    whose files cannot be read is left out (strict: the answer is None); None
    when the task list cannot be read."""
    out = {}
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return None
    for t in tids:
        try:
            texts = []
            for name in names:
                with open('/proc/%d/task/%s/%s' % (pid, t, name), 'rb') as f:
                    texts.append(f.read().decode('latin-1'))
        except OSError:
            if strict:
                return None
            continue
        out[int(t)] = texts
    return out


def task_states(pid):
    out = {}
    for tid, (s,) in (task_files(pid, ('stat',)) or {}).items():
        try:
            out[tid] = s.rsplit(')', 1)[1].split()[0]
        except IndexError:
            pass
    return out


SLEEP_SYSCALLS = {'23', '35', '230', '270'}   # x86_64 select nanosleep clock_nanosleep pselect6


def task_syscalls(pid):
    """tid -> system call number (or 'running'); None if /proc does not say."""
    files = task_files(pid, ('syscall',), strict=True)
    if files is None:
        return None
    return dict((tid, s.split(' ')[0].strip()) for tid, (s,) in files.items())


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
# interpreters (discover() and pyenv_root() are tests/interps.py's)

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
        # Name: is the thread's OS name, cut at 15 bytes (3.14+ sets it from threading's
        # name): not always UTF-8.
        with open('/proc/%d/task/%s/status' % (pid, tid), errors='replace') as f:
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
