"""End-to-end tests of the files pystrobe reads that a user names: the
folded profiles of convert and diff, and the core of dump --core.  Run by
run.py: group(ctx, rt), where rt is harness.py.  No interpreter needed.

Hostile inputs: endless ones (/dev/zero on standard input or through a
pipe, a sparse file of 8 GiB, one endless line, endless valid lines) must
end in a one-line error at the first bad line or at the stated limit,
within a bounded memory (the peak resident size, from wait4, under
MEM_MAX); a FIFO, a device or a directory named as the input must be
refused at once rather than opened (a FIFO's open would wait for a writer
for ever).  Standard input stays allowed, whatever it is.

Files a live target names are its to swap: a target in a mount namespace
of its own puts a FIFO over its own executable, and `dump -p` must still
read it (through /proc/PID/map_files) rather than wait on the FIFO.

Nothing here asserts a timing: the budgets only tell a hang from slowness
on a busy machine.
"""
import os
import resource
import shutil
import signal
import subprocess
import time

MEM_MAX = 64 << 10        # KiB: the peak resident size allowed on an endless input
AS_LIMIT = 2 << 30        # bytes of address space given to pystrobe (an unbounded reader fails, not the machine)
T_BUDGET = 120            # seconds before a run counts as hung
SYSTEM_PYTHON = '/usr/bin/python3'
FIFO_TARGET = r"""
import os, subprocess, sys, time
exe = os.path.realpath(sys.executable)
try:
    subprocess.check_call(['mount', '--bind', sys.argv[1], exe], stderr=subprocess.DEVNULL)
except (OSError, subprocess.CalledProcessError) as e:
    print('NOMOUNT %s' % e, flush=True)
    sys.exit(0)
print('READY %s' % exe, flush=True)
def parked():
    time.sleep(600)  # @parked
parked()
"""
T_ENDLESS = 600           # the same for 1 GiB of valid lines on a loaded machine
FORMATS = (('flamegraph', 'svg'), ('folded', 'folded'), ('speedscope', 'json'), ('pprof', 'pb.gz'))
NOT_FILE = 'not a regular file'


class Run(object):
    """One pystrobe run: exit status, stderr, stdout, peak resident KiB, seconds."""

    def __init__(self, argv, rc, out, err, maxrss, elapsed, timed_out):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.maxrss, self.elapsed, self.timed_out = maxrss, elapsed, timed_out

    def describe(self):
        return '\n    $ %s\n    exit status %s%s, %.1f s, peak %d KiB\n    stderr: %s' % (
            ' '.join(self.argv), self.rc, ' (TIMED OUT, killed)' if self.timed_out else '',
            self.elapsed, self.maxrss, self.err.decode('utf-8', 'replace')[:1500])


def _sanitized(path):
    try:
        with open(path, 'rb') as f:
            return b'__asan_init' in f.read()
    except OSError:
        return False


def run_measured(rt, d, args, stdin=None, feeder=None, timeout=T_BUDGET):
    """Runs pystrobe ARGS (stdin: a file object, or feeder: argv whose output is piped in)."""
    argv = [rt.PYSTROBE] + args
    out_path, err_path = os.path.join(d, 'stdout'), os.path.join(d, 'stderr')
    limit = None if _sanitized(rt.PYSTROBE) else AS_LIMIT

    def cap():
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    feed = None
    if feeder:
        feed = rt.spawn(feeder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdin = feed.stdout
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        t0 = time.time()
        p = rt.spawn(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=out,
                     stderr=err, preexec_fn=cap)
    if feed:
        feed.stdout.close()
    status, ru, timed_out = None, None, False
    try:
        while status is None:
            pid, st, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                status, ru = st, usage
                break
            if time.time() - t0 > timeout:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)
                _, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
    finally:
        p.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
        rt._kill(p)
        if feed:
            rt._kill(feed)
    with open(out_path, 'rb') as f:
        o = f.read()
    with open(err_path, 'rb') as f:
        e = f.read()
    return Run(argv, p.returncode, o, e, ru.ru_maxrss if ru else 0, time.time() - t0, timed_out)


def check_error(rt, P, r, words):
    """A one-line error, exit status 1, nothing on stdout, within the memory allowed."""
    P.expect(not r.timed_out, 'no end within %d s (killed)' % T_BUDGET)
    P.expect(r.rc == 1, 'exit status %s, expected 1' % r.rc)
    err = r.err.decode('utf-8', 'replace')
    lines = err.splitlines()
    P.expect(len(lines) == 1 and err.endswith('\n'), 'stderr has %d lines, expected one' % len(lines))
    P.expect(err.startswith('pystrobe: '), 'stderr does not start with "pystrobe: "')
    for w in words:
        P.expect(w in err, 'error does not say %r' % w)
    P.expect(r.maxrss <= MEM_MAX, 'peak resident size %d KiB, more than %d KiB' % (r.maxrss, MEM_MAX))
    P.expect(r.out == b'', 'something on stdout: %r' % r.out[:200])


def group(ctx, rt):
    R = ctx.runner
    pfx = 'inputs/'

    def case(name, fn):
        def wrapped():
            d = ctx.mkdtemp('inputs-')
            P = rt.Problems()
            r = fn(d, P)
            if r is not None:
                left = sorted(set(os.listdir(d)) - {'stdout', 'stderr', 'in.folded', 'fifo', 'base.folded', 'target.py'})
                P.expect(not left, 'files left behind: %r' % left)
            P.fail_if_any(r.describe() if r is not None else '')
        R.case(pfx + name, wrapped)

    def write(d, name, data):
        path = os.path.join(d, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    # -- endless or huge input: the first bad line, or the limit, ends it
    for fmt, ext in FORMATS:
        def dev_zero_stdin(d, P, ext=ext):
            with open('/dev/zero', 'rb') as z:
                r = run_measured(rt, d, ['convert', '-', '-o', os.path.join(d, 'out.' + ext)], stdin=z)
            check_error(rt, P, r, ['stdin:1:', 'NUL'])
            return r
        case('convert-dev-zero-stdin-' + fmt, dev_zero_stdin)

    def dev_zero_pipe(d, P):
        r = run_measured(rt, d, ['convert', '-', '-f', 'folded'], feeder=['cat', '/dev/zero'])
        check_error(rt, P, r, ['stdin:1:', 'NUL'])
        return r
    case('convert-dev-zero-pipe', dev_zero_pipe)

    def dev_zero_named(d, P):
        r = run_measured(rt, d, ['convert', '/dev/zero', '-o', os.path.join(d, 'out.svg')])
        check_error(rt, P, r, ['/dev/zero is a character device', NOT_FILE])
        return r
    case('convert-dev-zero-named', dev_zero_named)

    def zeros_after_lines(d, P):
        r = run_measured(rt, d, ['convert', '-', '-f', 'pprof', '-o', os.path.join(d, 'out.pb.gz')],
                         feeder=['sh', '-c', 'printf "a;b 1\\n\\na;c 2\\n"; exec cat /dev/zero'])
        check_error(rt, P, r, ['stdin:4:', 'NUL'])
        return r
    case('convert-zeros-after-lines', zeros_after_lines)

    def sparse_file(d, P):
        src = os.path.join(d, 'in.folded')
        with open(src, 'wb') as f:
            f.write(b'a;b 1\n')
            f.truncate(8 << 30)
        r = run_measured(rt, d, ['convert', src, '-o', os.path.join(d, 'out.json')])
        check_error(rt, P, r, ['in.folded:2:', 'NUL'])
        os.unlink(src)
        return r
    case('convert-sparse-8gib', sparse_file)

    def endless_line(d, P):
        r = run_measured(rt, d, ['convert', '-', '-f', 'folded'],
                         feeder=['sh', '-c', 'yes aaaaaaaaaaaaaaaaaaaaaaa | tr -d "\\n"'])
        check_error(rt, P, r, ['stdin:1:', 'longer than 16 MiB'])
        return r
    case('convert-endless-line', endless_line)

    def no_count_after_lines(d, P):
        r = run_measured(rt, d, ['convert', '-', '-f', 'folded'],
                         feeder=['sh', '-c', 'printf "a;b 1\\n"; exec yes "a;b"'])
        check_error(rt, P, r, ['stdin:2:', 'no sample count'])
        return r
    case('convert-endless-lines-without-count', no_count_after_lines)

    def endless_valid(d, P):
        r = run_measured(rt, d, ['convert', '-', '-f', 'folded'],
                         feeder=['yes', 'main (app.py:1);work (app.py:2) 1'], timeout=T_ENDLESS)
        check_error(rt, P, r, ['stdin is larger than 1 GiB'])
        return r
    case('convert-endless-valid-lines', endless_valid)

    def diff_dev_zero(d, P):
        base = write(d, 'base.folded', b'a;b 1\n')
        with open('/dev/zero', 'rb') as z:
            r = run_measured(rt, d, ['diff', base, '-', '-o', os.path.join(d, 'out.svg')], stdin=z)
        check_error(rt, P, r, ['stdin:1:', 'NUL'])
        return r
    case('diff-dev-zero-stdin', diff_dev_zero)

    # -- named inputs that are not files: refused, never opened
    def fifo_of(d):
        path = os.path.join(d, 'fifo')
        os.mkfifo(path, 0o600)
        return path

    def convert_fifo(d, P):
        r = run_measured(rt, d, ['convert', fifo_of(d), '-o', os.path.join(d, 'out.svg')])
        check_error(rt, P, r, ['fifo is a FIFO', NOT_FILE, 'standard input'])
        return r
    case('convert-fifo', convert_fifo)

    def diff_fifo(d, P):
        base = write(d, 'base.folded', b'a;b 1\n')
        r = run_measured(rt, d, ['diff', base, fifo_of(d), '-o', os.path.join(d, 'out.svg')])
        check_error(rt, P, r, ['fifo is a FIFO', NOT_FILE])
        return r
    case('diff-fifo', diff_fifo)

    def convert_dir(d, P):
        r = run_measured(rt, d, ['convert', d, '-f', 'folded'])
        check_error(rt, P, r, ['is a directory', NOT_FILE])
        return r
    case('convert-directory', convert_dir)

    def core_fifo(d, P):
        r = run_measured(rt, d, ['dump', '--core', fifo_of(d)])
        check_error(rt, P, r, ['fifo is not a core file (a FIFO, not a regular file)'])
        return r
    case('dump-core-fifo', core_fifo)

    def core_device(d, P):
        r = run_measured(rt, d, ['dump', '--core', '/dev/zero'])
        check_error(rt, P, r, ['not a core file (a character device'])
        return r
    case('dump-core-device', core_device)

    def stdin_fifo_allowed(d, P):
        """A FIFO on standard input is read: - is the way to read one."""
        path = fifo_of(d)
        writer = rt.spawn(['sh', '-c', 'printf "a;b 2\\na;c 1\\n" > "$1"', 'sh', path])
        with open(path, 'rb') as f:
            r = run_measured(rt, d, ['convert', '-', '-f', 'folded'], stdin=f)
        rt._kill(writer)
        P.expect(r.rc == 0, 'exit status %s, expected 0' % r.rc)
        P.expect(r.out == b'a;b 2\na;c 1\n', 'stdout %r' % r.out)
        return r
    case('convert-stdin-fifo', stdin_fifo_allowed)

    # -- what a file holds
    def bom(d, P):
        src = write(d, 'in.folded', b'\xef\xbb\xbfmain (app.py:1);work (app.py:2) 3\n')
        r = run_measured(rt, d, ['convert', src, '-f', 'folded'])
        P.expect(r.rc == 0, 'exit status %s, expected 0' % r.rc)
        P.expect(r.out == b'main (app.py:1);work (app.py:2) 3\n', 'stdout %r' % r.out)
        return r
    case('convert-byte-order-mark', bom)

    def long_count(d, P):
        src = write(d, 'in.folded', b'a;b 1\na;b 123456789012345678901234567890\n')
        r = run_measured(rt, d, ['convert', src, '-f', 'folded'])
        check_error(rt, P, r, ['in.folded:2: "123456789012345678901234"... is not a sample count '
                               '(a whole number)\n'])
        return r
    case('convert-message-whole', long_count)

    # -- what a live target names
    def target_fifo_over_exe(d, P):
        if os.geteuid() != 0 or not shutil.which('unshare') or not os.path.exists(SYSTEM_PYTHON):
            raise rt.Skip('needs root, unshare and %s (a mount namespace for the target)' % SYSTEM_PYTHON)
        script = write(d, 'target.py', FIFO_TARGET.encode())
        fifo = fifo_of(d)
        t = rt.spawn(['unshare', '-m', '--propagation', 'private', SYSTEM_PYTHON, script, fifo],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = t.stdout.readline().decode('utf-8', 'replace').strip()
            if line.startswith('NOMOUNT') or not line:
                raise rt.Skip('the target cannot bind-mount in its namespace: %s' % (line or 'no output'))
            r = run_measured(rt, d, ['dump', '-p', str(t.pid)])
        finally:
            rt._kill(t)
        out = r.out.decode('utf-8', 'replace')
        P.expect(not r.timed_out, 'no end within %d s (killed): waiting on the FIFO?' % T_BUDGET)
        P.expect(r.rc == 0, 'exit status %s, expected 0' % r.rc)
        P.expect('parked (%s:' % script in out, 'the target\'s stack is not in the dump:\n%s' % out[:1500])
        os.unlink(script)
        return r
    case('dump-target-fifo-over-executable', target_fifo_over_exe)
