"""End-to-end tests against a target that lies, on every interpreter.  Run by
run.py: group(ctx, I, rt), where rt is harness.py.

The target is tests/targets/hostile.py: its main thread sleeps under
<module> -> main -> outer -> victim, and victim's code object is tampered
with through ctypes before it is called (co_filename at unmapped memory or
at an int, the line table at an int), or named with bidi overrides and C1
controls (and a thread so named waits for a lock in a function so named), or
said to come from a file the target itself may not read.  Asserted lines
carry "# @name" markers in its source.

What must hold: dump (text, --json, --native --json) and record keep every
frame that could be read and show the bad one as what it is; text output
never carries a control or bidi character; dump --source as root shows only
what the target could read.
"""
import json
import os
import re
import shutil
import stat
import subprocess

import e2e_core
import e2e_states

TARGET = 'hostile.py'
DUMP_TRIES = 20       # dumps until the main thread is seen in its sleep (it is blocked
                      # there; a loaded machine may take a while to get it there)
# What no text output may hold: C0 and C1 controls but the newline, DEL, bidi marks,
# overrides and isolates, line and paragraph separators.
UNSAFE = re.compile(u'[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]')
BIDI_NAME = u'evil\u202egnp.exe\u2066x\u2069\u0085y\u009bz'
BIDI_THREAD = u'thr\u202eead\u009b31m'
BIDI_LOCKER = u'lock\u2067er\u0085'
BIDI_ARG = u'--tag=\u202etxt.exe'
FUTEX = '202'


def runs_as_nobody(I):
    """Whether exe runs as nobody here (a pyenv build under /root does not:
    nobody cannot reach its libpython): the source-rights test, which runs
    the target as nobody, is registered only where it can run."""
    setpriv = shutil.which('setpriv')
    if os.geteuid() != 0 or not setpriv:
        return True  # the test says why it cannot run
    try:
        return subprocess.call(I.argv_as([setpriv, '--reuid=nobody', '--regid=nogroup', '--clear-groups'],
                                         [I.exe, '-c', 'import ctypes']), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30) == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/hostile-'
    path = os.path.join(rt.TARGETS, TARGET)
    line = lambda m: rt.line_of(path, m)  # noqa: E731

    def start(mode, *args, **kw):
        argv = [I.exe, kw.get('script', path), mode] + list(args) + ['--max-life', str(rt.TARGET_LIFE)]
        t = e2e_states.Proc(rt, ctx, I.argv_as(kw.get('prefix', []), argv), TARGET)
        info = t.expect_line('READY')
        if info['pid'] != t.pid and not kw.get('prefix'):
            raise rt.Failure('setup: target reported %r' % info)
        t.info = info
        e2e_states.wait_syscalls(rt, t.pid, {t.pid: rt.SLEEP_SYSCALLS})
        return t

    def run_ok(P, argv, what):
        res = rt.run(argv, rt.T_DUMP)
        P.expect(res.rc == 0, '%s: exit status %s, expected 0%s' % (what, res.rc, res.describe()))
        return res

    def main_frames(doc, pid):
        th = [t for t in doc.get('threads', []) if t['tid'] == pid]
        return th[0] if th else None

    def check_outer(P, frames, what, k=1):
        """frames[k:] start outer -> main -> <module> at their marked lines."""
        want = [('outer', line('outer_call')), ('main', line('module_call'))]
        got = [(f.get('function'), f.get('line')) for f in frames[k:k + 2]]
        P.expect(got == want, '%s: frames after the victim %r, expected %r' % (what, got, want))

    def unreadable_code(t):
        return '<unreadable code object at %s>' % t.info['code']

    def case_unreadable():
        P = rt.Problems()
        t = start('unmapped-filename')
        try:
            bad = unreadable_code(t)
            res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid)], 'dump')
            want = '    %s (<unknown>:?)\n    outer (%s:%d)\n' % (bad, path, line('outer_call'))
            P.expect(want in res.out_text and '(stack unreadable' not in res.out_text,
                     'dump does not show %r%s' % (want, res.describe()))
            for args in (['--json'], ['--native', '--json']):
                if '--native' in args and os.geteuid() != 0:
                    continue
                res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid)] + args, 'dump ' + ' '.join(args))
                try:
                    doc = json.loads(res.out_text)
                except ValueError as e:
                    P.expect(False, 'dump %s: not JSON (%s)%s' % (' '.join(args), e, res.describe()))
                    continue
                th = main_frames(doc, t.pid)
                if not P.expect(th is not None and 'error' not in th,
                                'dump %s: main thread missing or unreadable: %r' % (' '.join(args), th)):
                    continue
                frames = [f for f in th['frames'] if not f.get('native')]
                P.expect(frames and frames[0] == {'function': bad, 'file': '<unknown>', 'line': None},
                         'dump %s: innermost Python frame %r, expected %s' % (' '.join(args), frames[:1], bad))
                check_outer(P, frames, 'dump ' + ' '.join(args))
            out = os.path.join(ctx.mkdtemp('hostile-'), 'p.folded')
            res = run_ok(P, [rt.PYSTROBE, 'record', '-p', str(t.pid), '-d', '1', '--idle', '-f', 'folded',
                             '-o', out], 'record')
            stacks = rt.parse_folded(P, out) if os.path.exists(out) else {}
            leaf = '%s (<unknown>:?)' % bad
            caller = rt.label('outer', path, line('outer_call'))
            P.expect(any(len(s) >= 2 and leaf in s and s[s.index(leaf) - 1] == caller for s in stacks),
                     'record: no stack with %r under %r: %r' % (leaf, caller, list(stacks)[:3]))
            err = res.err_text
            P.expect('unreadable on every try' in err and 'dropped after' not in err,
                     'record: the summary does not count an unreadable code object apart:\n' + err)
        finally:
            t.close()
        P.fail_if_any()

    def case_invalid(mode, text_want, json_want):
        def fn():
            P = rt.Problems()
            t = start(mode)
            try:
                res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid)], 'dump')
                P.expect('    %s\n' % text_want in res.out_text,
                         'dump does not show %r%s' % (text_want, res.describe()))
                res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid), '--json'], 'dump --json')
                th = main_frames(json.loads(res.out_text), t.pid) if res.rc == 0 else None
                frames = th['frames'] if th else []
                P.expect(frames[:1] == [json_want], 'dump --json: innermost frame %r, expected %r'
                         % (frames[:1], json_want))
                check_outer(P, frames, 'dump --json')
            finally:
                t.close()
            P.fail_if_any()
        return fn

    def case_bidi():
        P = rt.Problems()
        t = start('bidi', BIDI_ARG)
        try:
            tids = [int(x) for x in os.listdir('/proc/%d/task' % t.pid)]
            e2e_states.wait_syscalls(rt, t.pid, dict((x, {FUTEX} if x != t.pid else rt.SLEEP_SYSCALLS)
                                                     for x in tids))
            res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid)], 'dump')
            text = res.out_text
            for want in ('    evil?gnp.exe?x??y?z (%s:%d)\n' % (path, line('victim_sleep')),
                         '"thr?ead?31m" (', '    lock?er? (%s:%d)\n' % (path, line('locker_wait')),
                         ' --tag=?txt.exe'):
                P.expect(want in text, 'dump: %r not found%s' % (want, res.describe(3000)))
            bad = UNSAFE.findall(text)
            P.expect(not bad, 'dump prints raw %r%s' % (sorted(set(bad)), res.describe(3000)))
            res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(t.pid), '--json'], 'dump --json')
            P.expect(not UNSAFE.findall(res.out_text), 'dump --json prints raw controls or bidi'
                     + res.describe(3000))
            doc = json.loads(res.out_text) if res.rc == 0 else {}
            names = [th.get('name') for th in doc.get('threads', [])]
            funcs = [f['function'] for th in doc.get('threads', []) for f in th['frames']]
            P.expect(BIDI_THREAD in names and BIDI_NAME in funcs and BIDI_LOCKER in funcs
                     and BIDI_ARG in doc.get('command', ''),
                     'dump --json does not keep the names as they are: %r, %r' % (names, funcs[:3]))
            res = run_ok(P, [rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '1'], 'locks')
            P.expect('lock?er? (%s:%d)' % (path, line('locker_wait')) in res.out_text,
                     'locks does not name the waiting site' + res.describe(3000))
            bad = UNSAFE.findall(res.out_text + res.err_text)
            P.expect(not bad, 'locks prints raw %r%s' % (sorted(set(bad)), res.describe(3000)))
        finally:
            t.close()
        P.fail_if_any()

    def case_source_rights():
        if os.geteuid() != 0:
            raise rt.Skip('needs root (the target runs as nobody, pystrobe as root)')
        setpriv = shutil.which('setpriv')
        if not setpriv:
            raise rt.Skip('no setpriv to run the target as nobody')
        prefix = [setpriv, '--reuid=nobody', '--regid=nogroup', '--clear-groups']
        probe = rt.run(I.argv_as(prefix, [I.exe, '-c', 'import ctypes']), 30)
        if probe.rc != 0:
            raise rt.Skip('%s cannot run as nobody (%s)' % (I.exe, probe.err_text.strip()[:200]))
        P = rt.Problems()
        d = ctx.mkdtemp('hostile-src-')
        with open(path, 'rb') as f:
            src = f.read()
        # The target runs from a copy nobody can read, wherever the checkout is.
        script = os.path.join(d, TARGET)
        with open(script, 'wb') as f:
            f.write(src)
        os.chmod(script, 0o644)
        if subprocess.call(prefix + ['test', '-r', script]) != 0:
            raise rt.Skip('nobody cannot read %s' % script)
        for name, mode in (('secret.py', 0o600), ('open.py', 0o644)):
            with open(os.path.join(d, name), 'wb') as f:
                f.write(src)
            os.chmod(os.path.join(d, name), mode)
        sleep = line('victim_sleep')
        for name, shown in (('secret.py', False), ('open.py', True)):
            t = start('source', os.path.join(d, name), prefix=prefix, script=script)
            try:
                pid = t.info['pid']
                e2e_states.wait_syscalls(rt, pid, {pid: rt.SLEEP_SYSCALLS})
                res = run_ok(P, [rt.PYSTROBE, 'dump', '-p', str(pid), '--source'], 'dump --source')
                head = '    victim (%s:%d)\n' % (os.path.join(d, name), sleep)
                got = head + '        > %d  time.sleep(100000)  # @victim_sleep\n' % sleep in res.out_text
                P.expect(head in res.out_text and got == shown,
                         '%s (mode %o, root\'s; the target runs as nobody): source %s, expected %s%s'
                         % (name, stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode),
                            'shown' if got else 'not shown', 'shown' if shown else 'not shown',
                            res.describe(2000)))
            finally:
                t.close()
        P.fail_if_any()

    def case_core_source_rights():
        """A core's sources are read with its owner's rights (the core file as opened)."""
        if os.geteuid() != 0:
            raise rt.Skip('needs root (to give the core to nobody)')
        P = rt.Problems()
        d = ctx.mkdtemp('hostile-core-')
        secret = os.path.join(d, 'secret.py')
        shutil.copyfile(path, secret)
        os.chmod(secret, 0o600)
        t = start('source', secret)
        try:
            core = e2e_core.gcore(rt, t.pid, d, I)
        finally:
            t.close()
        sleep = line('victim_sleep')
        head = '    victim (%s:%d)\n' % (secret, sleep)
        src = head + '        > %d  time.sleep(100000)  # @victim_sleep\n' % sleep
        for owner, shown in ((0, True), (65534, False)):
            os.chown(core, owner, -1)
            res = run_ok(P, [rt.PYSTROBE, 'dump', '--core', core, '--source'] +
                         (['--root', I.root] if I.root else []), 'dump --core --source')
            P.expect(head in res.out_text and (src in res.out_text) == shown,
                     'core owned by uid %d, %s mode 0600 root\'s: source %s, expected %s%s'
                     % (owner, secret, 'shown' if src in res.out_text else 'not shown',
                        'shown' if shown else 'not shown', res.describe(2000)))
        P.fail_if_any()

    R.case(pfx + 'unreadable-code', case_unreadable)
    R.case(pfx + 'core-source-rights', case_core_source_rights)
    R.case(pfx + 'invalid-filename', case_invalid(
        'int-filename', 'victim (<invalid filename>:%d)' % line('victim_sleep'),
        {'function': 'victim', 'file': '<invalid filename>', 'line': line('victim_sleep')}))
    R.case(pfx + 'invalid-linetable', case_invalid(
        'int-linetable', 'victim (%s:?)' % path, {'function': 'victim', 'file': path, 'line': None}))
    R.case(pfx + 'bidi', case_bidi)
    if runs_as_nobody(I):
        R.case(pfx + 'source-rights', case_source_rights)
