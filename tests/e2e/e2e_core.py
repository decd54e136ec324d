"""End-to-end tests of `dump --core`, on every interpreter.  Run by run.py:
group(ctx, I, rt), where rt is harness.py (its helpers: Target,
Problems, run, frames_diff...).

Per interpreter, one gcore of tests/targets/threads.py (taken right after a
live `dump -p`, the target's threads parked at their marked lines) serves
every check: the core's dump, text and JSON, shows the same threads (ids,
names) with the same stacks as the live one; `--exe` naming another
interpreter is refused (build-id); a truncated copy is refused, saying how
many bytes are missing.  tests/targets/abort.py, started with RLIMIT_CORE
raised, leaves a kernel core whose dump shows the os.abort() line.  Once
per run: a core of `sleep` (not Python), a file that is not a core, and the
usage errors.
"""
import glob
import json
import os
import re
import resource
import shutil
import signal
import struct
import sys
import time

import e2e_states

T_GCORE = 120


def gcore(rt, pid, d, I=None):
    """Writes d/core.PID with gdb's gcore; the path, or Skip when gdb is missing.
    A root interpreter's process is written by the root's own gdb, as in its
    container: an older gdb outside writes zeros for the thread stacks glibc
    2.41+ fences with guard pages (MADV_GUARD_INSTALL)."""
    cmd = shutil.which('gcore')
    if I is not None and I.root and os.path.exists(os.path.join(I.root, 'usr', 'bin', 'gcore')):
        cmd = I.wrap('/usr/bin/gcore')
    if not cmd:
        raise rt.Skip('gcore not found (install gdb)')
    prefix = os.path.join(d, 'core')
    res = rt.run([cmd, '-o', prefix, str(pid)], T_GCORE)
    path = '%s.%d' % (prefix, pid)
    if res.rc != 0 or not os.path.exists(path):
        raise rt.Failure('gcore failed' + res.describe(out_limit=300))
    return path


def dump_core(rt, core, json_=True, exe=None, root=None):
    argv = [rt.PYSTROBE, 'dump', '--core', core] + (['--exe', exe] if exe else []) + \
        (['--root', root] if root else []) + (['--json'] if json_ else [])
    return rt.run(argv, rt.T_DUMP)


def load_json(P, res):
    if not P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc):
        return None
    try:
        return json.loads(res.out.decode('utf-8'))
    except Exception as e:
        P.expect(False, 'stdout is not one UTF-8 JSON object: %s' % e)
        return None


def thread_sections(text):
    """{tid: (header rest, [frame lines])} of a text dump."""
    out, cur = {}, None
    for ln in text.split('\n')[2:]:
        m = re.match(r'^Thread (\d+)(?: "(.*)")? \((.*)\)$', ln)
        if m:
            cur = int(m.group(1))
            out[cur] = (m.group(2), m.group(3), [])
        elif cur is not None and ln.startswith('    '):
            out[cur][2].append(ln.strip())
    return out


def segments_end(path):
    """The byte just past the last PT_LOAD/PT_NOTE contents of an ELF core."""
    with open(path, 'rb') as f:
        eh = f.read(64)
        phoff, = struct.unpack_from('<Q', eh, 32)
        phnum, = struct.unpack_from('<H', eh, 56)
        f.seek(phoff)
        ph = f.read(56 * phnum)
    end = 0
    for i in range(phnum):
        ptype, _, off, _, _, filesz = struct.unpack_from('<IIQQQQ', ph, 56 * i)
        if ptype in (1, 4):
            end = max(end, off + filesz)
    return end


def other_interpreter(exe, rt):
    """An interpreter binary that is not exe (another build), or None."""
    mine = os.path.realpath(exe)
    for c in ['/usr/bin/python3', sys.executable] + \
            sorted(glob.glob(os.path.join(rt.pyenv_root(), 'versions', '*', 'bin', 'python3.*'))):
        if c and os.path.exists(c) and os.path.realpath(c) != mine and \
                not os.path.realpath(c).endswith('-config'):
            return os.path.realpath(c)
    return None


def check_same_as_live(P, rt, live, doc, core, tgt, ver, exe):
    """The core's JSON dump against the live one and the interpreter's own
    view; exe: the executable as the target named itself."""
    P.expect(doc.get('pid') == live.get('pid'), 'pid %r, expected %r' % (doc.get('pid'), live.get('pid')))
    P.expect(doc.get('core') == core, 'core %r, expected %r' % (doc.get('core'), core))
    cmd = doc.get('command') or ''
    P.expect(cmd.startswith(exe), 'command %r does not start with the executable %r' % (cmd, exe))
    P.expect(doc.get('python') == live.get('python'), 'python %r, expected %r (live)'
             % (doc.get('python'), live.get('python')))
    by_tid = dict((t.get('tid'), t) for t in live.get('threads') or [])
    got = doc.get('threads') or []
    P.expect(sorted(by_tid) == sorted(t.get('tid') for t in got),
             'threads %r, expected %r (live)' % (sorted(t.get('tid') for t in got), sorted(by_tid)))
    oracle = dict((o['tid'], o) for o in tgt.oracle['threads'])
    for t in got:
        lt = by_tid.get(t.get('tid'))
        if lt is None:
            continue
        who = 'thread %r (tid %s)' % (lt.get('name'), lt.get('tid'))
        for k in ('name', 'thread_id', 'truncated'):
            want = lt.get(k)
            if k == 'name' and not oracle.get(t.get('tid'), {}).get('in_threading', True):
                want = None     # an OS name only: a core does not keep it
            P.expect(t.get(k) == want, '%s: %s %r, expected %r' % (who, k, t.get(k), want))
        fr = [(f.get('function'), f.get('file'), f.get('line')) for f in t.get('frames') or []]
        lfr = [(f.get('function'), f.get('file'), f.get('line')) for f in lt.get('frames') or []]
        d = rt.frames_diff(lfr, fr)
        P.expect(d is None, '%s: stack differs from the live dump: %s' % (who, d))
        o = oracle.get(t.get('tid'))
        if o is not None:
            d = rt.frames_diff(rt.oracle_frames(o)[:rt.MAX_DEPTH], fr)
            P.expect(d is None, '%s: stack differs from what the interpreter reported: %s' % (who, d))
            if o['key'] != 'busy':
                P.expect(t.get('state') == 'idle', '%s: state %r, expected idle (asleep)' % (who, t.get('state')))
        P.expect(t.get('signal') == 0, '%s: signal %r in a gcore, expected 0' % (who, t.get('signal')))


def group(ctx, I, rt):
    if e2e_states.once('core-errors'):
        errors_group(ctx, rt, I)
    R = ctx.runner
    pfx = I.label + '/core-'
    ver = I.ver
    targets = []

    def make():
        t = rt.Target(ctx.tmp, I.exe, ver=ver)
        targets.append(t)
        t.start()
        live_json = rt.dump(t.pid)
        live_text = rt.dump(t.pid, json_=False)
        P = rt.Problems()
        live = load_json(P, live_json)
        P.fail_if_any(live_json.describe(out_limit=300))
        core = gcore(rt, t.pid, ctx.mkdtemp('core-'), I)
        t.close()
        return t, live, live_text, core

    fx = rt.Lazy(make)
    try:
        def core_json():
            t, live, _, core = fx.get()
            res = dump_core(rt, core, root=I.root)
            P = rt.Problems()
            doc = load_json(P, res)
            if doc is not None:
                check_same_as_live(P, rt, live, doc, core, t, ver, I.target_exe)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'json', core_json)

        def core_text():
            t, live, live_text, core = fx.get()
            res = dump_core(rt, core, json_=False, root=I.root)
            P = rt.Problems()
            P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
            text = res.out_text
            first = text.split('\n')[0]
            want = 'Core %s of process %d: %s' % (core, t.pid, I.target_exe)
            P.expect(first.startswith(want), 'first line %r, expected %r...' % (first, want))
            lt = live_text.out_text
            P.expect(text.split('\n')[1] == lt.split('\n')[1], 'second line %r, expected %r (live)'
                     % (text.split('\n')[1], lt.split('\n')[1]))
            got, want_s = thread_sections(text), thread_sections(lt)
            P.expect(sorted(got) == sorted(want_s), 'threads %r, expected %r (live)' % (sorted(got), sorted(want_s)))
            os_named = set(o['tid'] for o in t.oracle['threads'] if not o['in_threading'])
            for tid, (name, flags, frames) in want_s.items():
                g = got.get(tid)
                if g is None:
                    continue
                want_name = None if tid in os_named else name
                P.expect(g[0] == want_name, 'thread %d: name %r, expected %r' % (tid, g[0], want_name))
                P.expect(g[2] == frames, 'thread %d (%s): frames differ from the live dump:\n      %s\n    live:\n      %s'
                         % (tid, name, '\n      '.join(g[2][:6]), '\n      '.join(frames[:6])))
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'text', core_text)

        def exe_mismatch():
            t, _, _, core = fx.get()
            other = other_interpreter(I.host_exe, rt)
            if other is None:
                raise rt.Skip('no other interpreter binary to pass as --exe')
            res = dump_core(rt, core, exe=other, root=I.root)
            P = rt.Problems()
            rt.check_one_line_error(P, res, 1, words=('build-id', other, core))
            P.fail_if_any(res.describe())
        R.case(pfx + 'exe-mismatch', exe_mismatch)

        def exe_same():
            t, live, _, core = fx.get()
            # The binary itself (a root interpreter's I.exe is a wrapper).
            res = dump_core(rt, core, exe=I.host_exe if I.root else I.exe, root=I.root)
            P = rt.Problems()
            doc = load_json(P, res)
            if doc is not None:
                P.expect(len(doc.get('threads') or []) == len(live.get('threads') or []),
                         '%d threads, expected %d' % (len(doc.get('threads') or []), len(live.get('threads') or [])))
            P.fail_if_any(res.describe(out_limit=300))
        R.case(pfx + 'exe-same', exe_same)

        def truncated():
            t, _, _, core = fx.get()
            cut = core + '.cut'
            keep = 1 << 20
            with open(core, 'rb') as src, open(cut, 'wb') as dst:
                dst.write(src.read(keep))
            missing = segments_end(core) - keep
            res = dump_core(rt, cut)
            P = rt.Problems()
            rt.check_one_line_error(P, res, 1, words=('cut short', '%d bytes are missing' % missing, cut))
            os.unlink(cut)
            P.fail_if_any(res.describe())
        R.case(pfx + 'truncated', truncated)

        R.case(pfx + 'abort', lambda: abort_case(ctx, rt, I))
    finally:
        for t in targets:
            t.close()


def abort_case(ctx, rt, I):
    """A kernel core of abort.py: the aborting thread's stack, with the os.abort line."""
    with open('/proc/sys/kernel/core_pattern') as f:
        pattern = f.read().strip()
    if pattern.startswith('|'):
        raise rt.Skip('kernel.core_pattern pipes cores to a program (%s): no core file to read' % pattern)
    if '/' in pattern:
        raise rt.Skip('kernel.core_pattern writes cores elsewhere (%s)' % pattern)
    d = ctx.mkdtemp('abort-')
    src = os.path.join(rt.TARGETS, 'abort.py')

    def raise_core_limit():
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    p = rt.spawn([I.exe, src], cwd=d, preexec_fn=raise_core_limit,
                 stdout=rt.subprocess.DEVNULL, stderr=rt.subprocess.DEVNULL)
    try:
        rc = p.wait(timeout=60)
    except rt.subprocess.TimeoutExpired:
        raise rt.Failure('abort.py did not abort within 60 s')
    if rc != -signal.SIGABRT:
        raise rt.Failure('abort.py ended with status %s, expected SIGABRT' % rc)
    cores = [c for c in glob.glob(os.path.join(d, 'core*'))]
    if not cores:
        raise rt.Skip('the kernel wrote no core (core_pattern %r, RLIMIT_CORE hard limit %r)'
                      % (pattern, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    core = cores[0]
    P = rt.Problems()
    if I.root:
        # The kernel names the files as the process saw them, in its root:
        # not found here without --root (or another build: the build-ids differ).
        bare = dump_core(rt, core)
        rt.check_one_line_error(P, bare, 1, words=('--root',))
    res = dump_core(rt, core, root=I.root)
    doc = load_json(P, res)
    L = lambda m: rt.line_of(src, m)
    if doc is not None:
        P.expect(doc.get('command', '').startswith(I.target_exe), 'command %r' % doc.get('command'))
        by_name = dict((t.get('name'), t) for t in doc.get('threads') or [])
        P.expect(sorted(by_name) == ['MainThread', 'core-sleeper'], 'threads %r' % sorted(by_name))
        main = by_name.get('MainThread') or {}
        fr = [(f.get('function'), f.get('file'), f.get('line')) for f in main.get('frames') or []]
        want = [('crash', src, L('core-abort')), ('main', src, L('core-crash')),
                ('<module>', src, L('core-main'))]
        d_ = rt.frames_diff(want, fr)
        P.expect(d_ is None, 'MainThread: %s' % d_)
        P.expect(main.get('signal') == signal.SIGABRT, 'MainThread: signal %r, expected %d'
                 % (main.get('signal'), signal.SIGABRT))
        P.expect(main.get('tid') == doc.get('pid'), 'MainThread: tid %r, pid %r' % (main.get('tid'), doc.get('pid')))
        sl = by_name.get('core-sleeper') or {}
        top = (sl.get('frames') or [{}])[0]
        P.expect((top.get('function'), top.get('file'), top.get('line')) == ('sleeper', src, L('core-sleep')),
                 'core-sleeper: innermost frame %r' % top)
        P.expect(sl.get('state') == 'idle' and sl.get('signal') == 0,
                 'core-sleeper: state %r signal %r, expected idle and 0' % (sl.get('state'), sl.get('signal')))
    # With native frames: libc's abort above the Python line that called it,
    # unwound from the registers the kernel saved.
    nat = rt.run([rt.PYSTROBE, 'dump', '--core', core, '--native', '--json'] +
                 (['--root', I.root] if I.root else []), rt.T_DUMP)
    ndoc = load_json(P, nat)
    if ndoc is not None:
        main = dict((t.get('name'), t) for t in ndoc.get('threads') or []).get('MainThread') or {}
        frames = main.get('frames') or []
        k = [i for i, f in enumerate(frames) if not f.get('native') and f.get('function') == 'crash']
        above = [f.get('function') for f in frames[:k[0]]] if k else []
        P.expect(k and above and all(f.get('native') for f in frames[:k[0]]) and
                 any(re.match(r'(abort|raise|__pthread_kill|pthread_kill|os_abort)', a) for a in above),
                 'MainThread with --native: no abort call above crash (%s:%d):\n      %s'
                 % (src, L('core-abort'), '\n      '.join(f.get('function', '?') for f in frames)))
        P.expect(frames and frames[-1].get('native'), 'MainThread with --native: outermost frame not native')
    text = dump_core(rt, core, json_=False, root=I.root)
    P.expect('    crash (%s:%d)\n' % (src, L('core-abort')) in text.out_text, 'text dump lacks the os.abort line')
    P.expect(re.search(r'^Thread \d+ "MainThread" \(idle, (gil, )?signal 6\)$', text.out_text, re.M) is not None,
             'text dump: no MainThread header with "signal 6"')
    P.fail_if_any(res.describe(out_limit=800))


def errors_group(ctx, rt, I):
    R = ctx.runner
    pfx = 'errors/core-'

    def not_python():
        d = ctx.mkdtemp('core-sleep-')
        p = rt.spawn(['sleep', '100'])
        try:
            time.sleep(0.1)
            core = gcore(rt, p.pid, d)
        finally:
            rt._kill(p)
        res = dump_core(rt, core)
        P = rt.Problems()
        rt.check_one_line_error(P, res, 1, words=('not a Python process', 'sleep', str(p.pid)))
        P.fail_if_any(res.describe())
    R.case(pfx + 'not-python', not_python)

    def not_core():
        P = rt.Problems()
        res = dump_core(rt, rt.THREADS_PY)
        rt.check_one_line_error(P, res, 1, words=('not a core file', rt.THREADS_PY))
        res2 = dump_core(rt, I.exe)
        rt.check_one_line_error(P, res2, 1, words=('not a core', I.exe))
        res3 = dump_core(rt, '/nonexistent/core')
        rt.check_one_line_error(P, res3, 1, words=('cannot open core', 'No such file'))
        # --root must be a directory (checked before the core is read).
        res4 = dump_core(rt, rt.THREADS_PY, root=rt.THREADS_PY)
        rt.check_one_line_error(P, res4, 1, words=('--root', rt.THREADS_PY, 'not a directory'))
        res5 = dump_core(rt, rt.THREADS_PY, root='/nonexistent/root')
        rt.check_one_line_error(P, res5, 1, words=('--root', '/nonexistent/root', 'No such file'))
        P.fail_if_any(res.describe() + res2.describe() + res3.describe() + res4.describe() +
                      res5.describe())
    R.case(pfx + 'not-a-core', not_core)

    def usage():
        P = rt.Problems()
        cases = [(['-p', '1', '--core', 'x'], 'not both'),
                 (['--exe', I.exe, '-p', '1'], '--exe goes with --core'),
                 (['--exe', I.exe], '--exe goes with --core'),
                 (['--root', '/', '-p', '1'], '--root goes with --core'),
                 (['--core'], "option '--core' needs a value")]
        out = ''
        for args, word in cases:
            res = rt.run([rt.PYSTROBE, 'dump'] + args, rt.T_DUMP)
            rt.check_one_line_error(P, res, 2, words=(word,))
            out += res.describe()
        P.fail_if_any(out)
    R.case(pfx + 'usage', usage)
