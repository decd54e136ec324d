"""End-to-end tests of how pystrobe fails: no such process, not Python,
permission denied, an interpreter version it does not know (Py_Version
patched to 3.14), output it cannot write, a command not found, usage errors;
each one line on stderr, the right exit status, no file left behind.  Run by
run.py: group(ctx, interps).
"""
import os
import shutil
import stat
import struct
import subprocess

from harness import (
    check_one_line_error, dump, elf_symbol_offset, Failure, _kill, Lazy, libpython_of, Problems,
    PYSTROBE, python_binary_of, RATE, record, run, Skip, spawn, T_PROMPT, Target)


def group(ctx, interps):
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

        # -- a newer interpreter version than pystrobe knows, without the debug offsets
        # that would let it be read (a 3.11+ Py_Version patched to 3.16)
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
                check_one_line_error(P, res, 1, words=['3.16.0', 'newer than pystrobe knows',
                                                      '_Py_DebugOffsets'])
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


def unknown_version_target(ctx, interps, targets):
    """A 3.11+ interpreter whose Py_Version says 3.16.0 final."""
    tried = []
    cands = sorted([I for I in interps if I.ver >= (3, 11)],
                   key=lambda I: 0 if I.label.startswith(('debian-', 'system-')) else 1)
    for I in cands:
        lib = libpython_of(I.exe)
        src = lib or I.host_exe
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
            f.write(struct.pack('<I', 0x031000f0))
        env = dict(os.environ, LD_LIBRARY_PATH=d) if lib else None
        t = Target(ctx.tmp, I.exe if lib else I.wrap(copy), ver=I.ver, only_busy=True, env=env)
        targets.append(t)
        t.wait_ready()
        mapped = python_binary_of(t.pid)
        if mapped != I.host_view(copy):
            raise Failure('setup: target runs %r, not the patched %r' % (mapped, copy))
        t.settle()
        return t
    raise Skip('no 3.11+ interpreter with a patchable Py_Version: %s' % '; '.join(tried))
