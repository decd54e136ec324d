"""End-to-end tests of how a recording ends, and of what it leaves behind:
no target thread left stopped (native frames hold threads with ptrace), the
signals that end `record` (the profile written, no temporary file left),
those it ignores, Ctrl-Z, a duration shorter than a tick, a target that
dies.  Run by run.py: group(ctx, I, rt), where rt is harness.py; the
tests that do not depend on the interpreter (ends/...) run with the first
interpreter whose group starts.

The target is tests/targets/ends.py: a main thread (and --threads N more)
spinning for --seconds, optionally under a CPU quota (--cgroup: a cpu
cgroup the test makes, giving the target 2% of a CPU in slices, so that a
thread interrupted for native frames often stops only after pystrobe gave
up waiting for it: the loaded machine, made certain).

A thread is "left stopped" when it sits in ptrace's stop (state `t` in
/proc/PID/task/TID/stat) without running for longer than STUCK seconds:
a thread pystrobe holds runs to stop, and runs again once let go, so its
CPU time (schedstat) tells one hold from the next.  STUCK is far above
what a hold lasts on a busy machine (milliseconds; pystrobe lets a late
stop go within a millisecond or so), and far below a thread left stopped
for good.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from harness import task_files

STUCK = 2.0            # seconds in `t` without running: left stopped
POLL = 0.01            # seconds between looks at the target's threads
QUOTA_PERIOD_US = 200000
QUOTA_US = 4000        # 2% of a CPU
SPIN = 4.0             # seconds the launched target spins
TSTP_TRIES = 20

_once_lock = threading.Lock()
_once = []             # the interpreter that runs the tests of any interpreter


def task_stops(pid):
    """{tid: (state letter, CPU ns)} of pid's threads (gone ones left out)."""
    out = {}
    for tid, (stat, sched) in (task_files(pid, ('stat', 'schedstat')) or {}).items():
        try:
            out[tid] = (stat[stat.rfind(')') + 2:][:1], int(sched.split()[0]))
        except (ValueError, IndexError):
            continue
    return out


class StopWatch(object):
    """Looks at a process's threads every POLL seconds, in a thread of its
    own, and remembers the longest any sat in `t` without running."""

    def __init__(self, pid):
        self.pid = pid
        self.worst = 0.0          # seconds
        self.worst_tid = None
        self.looks = 0
        self._since = {}          # tid -> (first seen stopped, CPU ns then)
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run)
        self._t.daemon = True
        self._t.start()

    def _run(self):
        while not self._done.is_set():
            self.look()
            time.sleep(POLL)

    def look(self):
        now = time.time()
        seen = task_stops(self.pid)
        self.looks += 1
        for tid, (state, cpu) in seen.items():
            was = self._since.get(tid)
            if state != 't' or (was and was[1] != cpu):
                self._since.pop(tid, None)
                if state != 't':
                    continue
                was = None
            if was is None:
                self._since[tid] = (now, cpu)
                continue
            if now - was[0] > self.worst:
                self.worst, self.worst_tid = now - was[0], tid
        for tid in list(self._since):
            if tid not in seen:
                del self._since[tid]

    def stopped_now(self):
        """Threads in `t` at this moment."""
        return sorted(t for t, (s, _) in task_stops(self.pid).items() if s == 't')

    def stop(self):
        self._done.set()
        self._t.join(10)


class Quota(object):
    """A cpu cgroup with a CPU quota (cgroup v1 or v2); Skip when none can be made."""

    def __init__(self, rt):
        name = 'pystrobe-e2e-%d-%d' % (os.getpid(), id(self))
        v1 = '/sys/fs/cgroup/cpu'
        try:
            if os.path.exists(os.path.join(v1, 'cpu.cfs_quota_us')):
                self.path = os.path.join(v1, name)
                os.mkdir(self.path)
                self._write('cpu.cfs_period_us', QUOTA_PERIOD_US)
                self._write('cpu.cfs_quota_us', QUOTA_US)
            elif os.path.exists('/sys/fs/cgroup/cgroup.controllers'):
                self.path = os.path.join('/sys/fs/cgroup', name)
                os.mkdir(self.path)
                self._write('cpu.max', '%d %d' % (QUOTA_US, QUOTA_PERIOD_US))
            else:
                raise rt.Skip('no cpu cgroup controller here (a CPU quota makes threads stop late)')
        except OSError as e:
            self.close()
            raise rt.Skip('cannot make a cpu cgroup with a quota (%s): needs root and a writable '
                          'cgroup file system' % e)

    def _write(self, name, value):
        with open(os.path.join(self.path, name), 'w') as f:
            f.write('%s\n' % value)

    def close(self):
        p = getattr(self, 'path', None)
        if not p:
            return
        for _ in range(100):        # its processes may take a moment to go
            try:
                os.rmdir(p)
                break
            except OSError:
                time.sleep(0.05)
        self.path = None


class Freezer(object):
    """A cgroup v1 freezer: its processes, once frozen, do not run again (not
    even to stop for ptrace) until thawed.  Skip when none can be made."""

    def __init__(self, rt):
        root = '/sys/fs/cgroup/freezer'
        if not os.path.isdir(root):
            raise rt.Skip('no cgroup v1 freezer here (it holds a thread of the target '
                          'back from stopping)')
        self.path = os.path.join(root, 'pystrobe-e2e-%d-%d' % (os.getpid(), id(self)))
        try:
            os.mkdir(self.path)
        except OSError as e:
            self.path = None
            raise rt.Skip('cannot make a freezer cgroup (%s): needs root and a writable '
                          'cgroup file system' % e)

    def state(self):
        with open(os.path.join(self.path, 'freezer.state')) as f:
            return f.read().strip()

    def set(self, state, timeout):
        with open(os.path.join(self.path, 'freezer.state'), 'w') as f:
            f.write(state + '\n')
        return wait_for(lambda: self.state() == state, timeout)

    def thaw(self):
        try:
            self.set('THAWED', 5)
        except OSError:
            pass

    def close(self):
        if not self.path:
            return
        self.thaw()
        for _ in range(100):        # its processes may take a moment to go
            try:
                os.rmdir(self.path)
                break
            except OSError:
                time.sleep(0.05)
        self.path = None


def spawn_own_pgrp(rt, argv, **kw):
    """Starts argv in a process group of its own in our session: a group
    with a parent outside it in the same session is not orphaned, so the
    default action of SIGTSTP does stop it (as a shell's job is stopped)."""
    if sys.version_info >= (3, 11):
        kw['process_group'] = 0
    else:
        kw['preexec_fn'] = os.setpgrp
    kw.setdefault('stdin', subprocess.DEVNULL)
    p = subprocess.Popen(argv, **kw)
    rt._register(p)
    return p


def proc_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            s = f.read()
        return s[s.rfind(')') + 2:][:1]
    except OSError:
        return None


def wait_for(cond, timeout, step=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def temporaries(d):
    return sorted(f for f in os.listdir(d) if '.tmp' in f)


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/ends-'
    ENDS = os.path.join(rt.TARGETS, 'ends.py')

    def start_target(*args):
        t = rt.spawn([I.exe, ENDS] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = t.stdout.readline().decode('utf-8', 'replace')
        if not line.startswith('READY'):
            rt._kill(t)
            raise rt.Failure('tests/targets/ends.py did not start: %r' % line)
        return t

    def late_stops_launch():
        """record --native of a launched command whose thread stops late."""
        P = rt.Problems()
        q = Quota(rt)
        d = ctx.mkdtemp('ends-late-')
        out = os.path.join(d, 'out.folded')
        argv = [rt.PYSTROBE, 'record', '--native', '-o', out, '--', I.exe, ENDS,
                '--cgroup', q.path, '--seconds', str(SPIN)]
        try:
            p = rt.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            line = p.stdout.readline().decode('utf-8', 'replace').split()
            if len(line) != 2 or line[0] != 'READY':
                res = rt.finish(p, argv, 5)
                rc, err = res.rc, res.err_text
                raise rt.Failure('the command printed no READY line' + res.describe())
            w = StopWatch(int(line[1]))
            deadline = time.time() + SPIN + rt.T_RECORD
            while p.poll() is None and w.worst <= STUCK and time.time() < deadline:
                time.sleep(0.1)
            w.stop()
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
        finally:
            q.close()
        P.expect(w.worst <= STUCK, 'thread %s of the command sat stopped without running for '
                 '%.1f s (at most %.1f)' % (w.worst_tid, w.worst, STUCK))
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect('the command ended with exit status 0' in err, 'the command did not end by itself')
        P.expect('stopped late' in err, 'no thread stopped late: the quota did not make the case')
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    def late_stops_attach():
        """record --native -d of a process whose thread stops late: it runs,
        and is sampled, again at once."""
        P = rt.Problems()
        q = Quota(rt)
        d = ctx.mkdtemp('ends-late-')
        out = os.path.join(d, 'out.folded')
        try:
            t = start_target('--cgroup', q.path, '--seconds', '60')
            argv = [rt.PYSTROBE, 'record', '--native', '-d', '3', '-o', out, '-p', str(t.pid)]
            w = StopWatch(t.pid)
            p = rt.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
            w.look()
            w.stop()
            rt._kill(t)
        finally:
            q.close()
        P.expect(w.worst <= STUCK, 'thread %s of the target sat stopped without running for '
                 '%.1f s (at most %.1f)' % (w.worst_tid, w.worst, STUCK))
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect('stopped late' in err, 'no thread stopped late: the quota did not make the case')
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    def attached_record(t, d, extra=()):
        out = os.path.join(d, 'out.folded')
        argv = [rt.PYSTROBE, 'record', '-o', out] + list(extra) + ['-p', str(t.pid)]
        return argv, out, rt.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def signal_ends(sig):
        """A signal that ends a recording as Ctrl-C does: profile written, nothing left."""
        def fn():
            P = rt.Problems()
            d = ctx.mkdtemp('ends-sig-')
            t = start_target('--seconds', '120')
            try:
                argv, out, p = attached_record(t, d)
                # Until it sampled: its temporary file exists from the start.
                time.sleep(1.5)
                P.expect(p.poll() is None, 'pystrobe ended by itself')
                p.send_signal(sig)
                res = rt.finish(p, argv, rt.T_RECORD)
                rc, err = res.rc, res.err_text
            finally:
                rt._kill(t)
            P.expect(rc == 0, 'exit status %s after %s, expected 0' % (rc, signal.Signals(sig).name))
            P.expect(os.path.exists(out), 'no profile written')
            P.expect(not temporaries(d), 'temporary files left: %r' % temporaries(d))
            P.expect(' samples from 1 thread' in err, 'no summary')
            P.fail_if_any(res.describe())
        return fn

    def signal_ignored(sig):
        """SIGUSR1 and SIGUSR2 neither end nor disturb a recording."""
        def fn():
            P = rt.Problems()
            d = ctx.mkdtemp('ends-sig-')
            t = start_target('--seconds', '120')
            try:
                argv, out, p = attached_record(t, d)
                time.sleep(1.0)
                for _ in range(3):
                    p.send_signal(sig)
                    time.sleep(0.2)
                alive = p.poll() is None
                p.send_signal(signal.SIGINT)
                res = rt.finish(p, argv, rt.T_RECORD)
                rc, err = res.rc, res.err_text
            finally:
                rt._kill(t)
            P.expect(alive, '%s ended pystrobe' % signal.Signals(sig).name)
            P.expect(rc == 0, 'exit status %s, expected 0' % rc)
            P.expect(os.path.exists(out), 'no profile written')
            P.expect(not temporaries(d), 'temporary files left: %r' % temporaries(d))
            P.fail_if_any(res.describe())
        return fn

    def file_size_limit():
        """A file size limit (ulimit -f) too small for the profile: one line, exit 1,
        no temporary file left (SIGXFSZ's default killed pystrobe mid-write)."""
        import resource
        P = rt.Problems()
        d = ctx.mkdtemp('ends-fsize-')
        t = start_target('--seconds', '120')
        out = os.path.join(d, 'out.svg')
        argv = [rt.PYSTROBE, 'record', '-d', '0.5', '-o', out, '-p', str(t.pid)]

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
        try:
            p = rt.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
        finally:
            rt._kill(t)
        lines = [l for l in err.splitlines() if l.startswith('pystrobe: cannot write')]
        P.expect(rc == 1, 'exit status %s, expected 1' % rc)
        P.expect(len(lines) == 1, 'no line "pystrobe: cannot write ..."')
        P.expect(os.listdir(d) == [], 'files left: %r' % os.listdir(d))
        P.fail_if_any(res.describe())

    def duration_low_rate():
        """-d bounds the run whatever the rate: -r 0.1 -d 1 lasts 1 s, not one 10 s tick."""
        P = rt.Problems()
        d = ctx.mkdtemp('ends-dur-')
        t = start_target('--seconds', '120')
        try:
            t0 = time.time()
            argv, out, p = attached_record(t, d, ['-r', '0.1', '-d', '1'])
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
            took = time.time() - t0
        finally:
            rt._kill(t)
        # 1 s and the start; a tick of the rate asked would be 10 s.
        P.expect(took < 6.0, 'ran %.1f s' % took)
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect(' in 1.00 s ' in err, 'the summary does not say 1.00 s')
        P.fail_if_any(res.describe())

    def target_dies():
        """-p: a target that ends during the recording is named in the summary."""
        P = rt.Problems()
        d = ctx.mkdtemp('ends-dies-')
        t = start_target('--seconds', '2')
        try:
            argv, out, p = attached_record(t, d)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
        finally:
            rt._kill(t)
        ended = [l for l in err.splitlines() if l.startswith('pystrobe: process %d ended after ' % t.pid)]
        P.expect(len(ended) == 1, 'no line "pystrobe: process %d ended after ... s"' % t.pid)
        for l in ended:
            secs = l.split()[-2]
            P.expect(l.endswith(' s') and secs.replace('.', '', 1).isdigit() and float(secs) > 0,
                     'not a number of seconds: %r' % l)
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    R.case(pfx + 'native-late-stop-launch', late_stops_launch)
    R.case(pfx + 'native-late-stop-attach', late_stops_attach)
    def ctrl_z_native():
        """Ctrl-Z (SIGTSTP) of record --native: pystrobe stops, no thread of the target with it."""
        P = rt.Problems()
        d = ctx.mkdtemp('ends-tstp-')
        out = os.path.join(d, 'out.folded')
        t = start_target('--threads', '3', '--seconds', '300')
        argv = [rt.PYSTROBE, 'record', '--native', '-r', '200', '-o', out, '-p', str(t.pid)]
        try:
            p = spawn_own_pgrp(rt, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            w = StopWatch(t.pid)
            w.stop()
            time.sleep(1.5)
            left = []
            for i in range(TSTP_TRIES):
                p.send_signal(signal.SIGTSTP)
                if not wait_for(lambda: proc_state(p.pid) in ('T', None), rt.T_PROMPT):
                    P.expect(False, 'try %d: pystrobe did not stop on SIGTSTP within %ds'
                             % (i + 1, rt.T_PROMPT))
                    break
                time.sleep(0.1)
                stopped = w.stopped_now()
                if stopped:
                    left.append('try %d: threads %s' % (i + 1, stopped))
                p.send_signal(signal.SIGCONT)
                wait_for(lambda: proc_state(p.pid) != 'T', rt.T_PROMPT)
                time.sleep(0.2)
            p.send_signal(signal.SIGINT)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc, err = res.rc, res.err_text
        finally:
            rt._kill(t)
        P.expect(not left, 'target threads stopped while pystrobe was: %s' % '; '.join(left))
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    def ctrl_z_launched():
        """Ctrl-Z of record --native -- COMMAND, as a terminal sends it: SIGTSTP to
        pystrobe and the command together.  Both stop; no thread of the command
        stays in ptrace's stop (it is in the group stop, `T`, as a job's are)."""
        P = rt.Problems()
        d = ctx.mkdtemp('ends-tstp-')
        out = os.path.join(d, 'out.folded')
        argv = [rt.PYSTROBE, 'record', '--native', '-r', '200', '-o', out, '--', I.exe, ENDS,
                '--threads', '3', '--seconds', '300']
        p = spawn_own_pgrp(rt, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline().decode('utf-8', 'replace').split()
        if len(line) != 2 or line[0] != 'READY':
            res = rt.finish(p, argv, 5)
            rc, err = res.rc, res.err_text
            raise rt.Failure('the command printed no READY line' + res.describe())
        w = StopWatch(int(line[1]))
        w.stop()
        time.sleep(1.0)
        left = []
        for i in range(TSTP_TRIES):
            os.killpg(p.pid, signal.SIGTSTP)
            if not wait_for(lambda: proc_state(p.pid) in ('T', None), rt.T_PROMPT):
                P.expect(False, 'try %d: pystrobe did not stop on SIGTSTP within %ds'
                         % (i + 1, rt.T_PROMPT))
                break
            time.sleep(0.1)
            stopped = w.stopped_now()
            if stopped:
                left.append('try %d: threads %s' % (i + 1, stopped))
            os.killpg(p.pid, signal.SIGCONT)
            wait_for(lambda: proc_state(p.pid) != 'T', rt.T_PROMPT)
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        res = rt.finish(p, argv, rt.T_RECORD)
        rc, err = res.rc, res.err_text
        P.expect(not left, 'command threads in ptrace stop while pystrobe was stopped: %s'
                 % '; '.join(left))
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    def ctrl_z_frozen():
        """Ctrl-Z of record --native while a thread it interrupted cannot stop
        (frozen): pystrobe stops only once that thread has stopped and been
        let go, however long that takes, so none stays stopped while it is."""
        P = rt.Problems()
        fz = Freezer(rt)
        d = ctx.mkdtemp('ends-tstp-')
        out = os.path.join(d, 'out.folded')
        t = None
        try:
            t = start_target('--cgroup', fz.path, '--threads', '3', '--seconds', '300')
            argv = [rt.PYSTROBE, 'record', '--native', '--idle', '-r', '200', '-o', out,
                    '-p', str(t.pid)]
            p = spawn_own_pgrp(rt, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(1.0)
            if not fz.set('FROZEN', rt.T_PROMPT):
                raise rt.Skip('the target did not freeze within %ds' % rt.T_PROMPT)
            # Every hold from now on times out: the threads stay interrupted,
            # to stop when thawed.
            time.sleep(1.0)
            p.send_signal(signal.SIGTSTP)
            # Longer than any wait for late stops before suspending.
            time.sleep(3.0)
            P.expect(fz.set('THAWED', rt.T_PROMPT), 'the target did not thaw')
            if not wait_for(lambda: proc_state(p.pid) in ('T', None), rt.T_PROMPT):
                P.expect(False, 'pystrobe did not stop within %ds of the threads it '
                         'waited for stopping' % rt.T_PROMPT)
            time.sleep(0.2)
            stopped = sorted(tid for tid, (s, _) in task_stops(t.pid).items() if s == 't')
            P.expect(not stopped, 'target threads stopped while pystrobe was: %s' % stopped)
            p.send_signal(signal.SIGCONT)
            wait_for(lambda: proc_state(p.pid) != 'T', rt.T_PROMPT)
            p.send_signal(signal.SIGINT)
            res = rt.finish(p, argv, rt.T_RECORD)
            rc = res.rc
        finally:
            fz.thaw()               # a frozen process would not die
            if t:
                rt._kill(t)
            fz.close()
        P.expect(rc == 0, 'exit status %s, expected 0' % rc)
        P.expect(os.path.exists(out), 'no profile written')
        P.fail_if_any(res.describe())

    R.case(pfx + 'target-dies', target_dies)
    R.case(pfx + 'native-ctrl-z', ctrl_z_native)
    R.case(pfx + 'native-ctrl-z-launched', ctrl_z_launched)
    # What does not depend on the interpreter runs with the first one only.
    with _once_lock:
        if _once:
            return
        _once.append(I.label)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        R.case('ends/signal-%s' % sig.name, signal_ends(sig))
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        R.case('ends/signal-%s-ignored' % sig.name, signal_ignored(sig))
    R.case('ends/duration-low-rate', duration_low_rate)
    R.case('ends/native-ctrl-z-frozen', ctrl_z_frozen)
    R.case('ends/file-size-limit', file_size_limit)
