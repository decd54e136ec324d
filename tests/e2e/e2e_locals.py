"""End-to-end tests of dump --locals and dump --source, on every interpreter.
Run by run.py: group(ctx, I, rt), where rt is harness.py.

Target: tests/targets/locals_target.py, parked in park() under inner(),
outer(), main() and <module>; inner() holds one variable of each kind of
value pystrobe renders, outer() a cell variable inner() reads as a free
variable.  Asserted lines carry "# @name" markers in the target.
"""
import json
import os
import re
import shutil
import time

import e2e_core
import e2e_states

TARGET = 'locals_target.py'
PARK_TRIES = 50        # dumps until the main thread is seen in its sleep


def any_addr(name):
    """A value shown as <NAME at 0x...>: its address differs from run to run."""
    return re.compile(r'^<%s at 0x[0-9a-f]+>$' % re.escape(name))


def expected_locals(ver, life):
    """Each frame's variables (name, kind, value), innermost frame first."""
    py2 = ver[0] == 2
    L = 'L' if py2 else ''
    longstr = "'%s'... (str, 100 %s)" % ('x' * 80, 'bytes' if py2 else 'chars')
    inner = [
        ('number', 'arg', '42'), ('text', 'arg', "'arg'"), ('rest', 'arg', '(1, 2)'),
        ('options', 'arg', "{'k': 'v'}"),
        ('zero', 'local', '0'), ('neg', 'local', '-5'),
        ('big', 'local', '1267650600228229401496703205376' + L),
        ('negbig', 'local', '-1180591620717411303424' + L),
        ('half', 'local', '1.5'), ('tenth', 'local', '0.1'), ('negzero', 'local', '-0.0'),
        ('huge', 'local', '1e+100'), ('infinity', 'local', 'inf'), ('nothing', 'local', 'None'),
        ('yes', 'local', 'True'), ('no', 'local', 'False'), ('ascii', 'local', "'hello'"),
        ('nonascii', 'local', u"u'h\\xe9llo w\\xf6rld \\u2603'" if py2 else u"'h\xe9llo w\xf6rld \u2603'"),
        ('longstr', 'local', longstr),
        ('quoted', 'local', "'it\\'s \"q\"\\n'"),
        ('semi', 'local', "'a;b'"),
        ('raw', 'local', ('' if py2 else 'b') + "'\\x00\\x01ab\\xff'"),
        ('empty_tuple', 'local', '()'), ('pair', 'local', "(1, 'two')"),
        ('items', 'local', '[1, 2, 3]'), ('empty_list', 'local', '[]'),
        ('mapping', 'local', "{'a': 1}"), ('empty_dict', 'local', '{}'),
        ('numbers', 'local', 'set([7])' if py2 else '{7}'), ('frozen', 'local', 'frozenset()'),
        ('nested', 'local', '[[1, [...]], 4]'), ('point', 'local', any_addr('Point')),
        ('many', 'local', '[0, 1, 2, 3, 4, ...] (list, 1000 items)'),
        ('copied', 'local', "'from outer'"), ('captured', 'free', "'from outer'"),
    ]
    outer = [('counter', 'local', '7'), ('inner', 'local', any_addr('function')),
             ('captured', 'cell', "'from outer'")]
    return [[], inner, outer, [('life', 'local', str(life))], []]


def expected_frames(rt, ver, path):
    """(function, line) of each frame of the parked main thread, innermost first."""
    inner = 'outer.<locals>.inner' if ver >= (3, 11) else 'inner'
    return [('park', rt.line_of(path, 'park')), (inner, rt.line_of(path, 'inner-park')),
            ('outer', rt.line_of(path, 'outer-call')), ('main', rt.line_of(path, 'main-call')),
            ('<module>', rt.line_of(path, 'module-call'))]


def matches(want, got):
    return want.match(got) is not None if hasattr(want, 'match') else want == got


def show(want):
    return want.pattern if hasattr(want, 'pattern') else want


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/locals-'
    path = os.path.join(rt.TARGETS, TARGET)
    ver = I.ver

    def start(script):
        t = e2e_states.Proc(rt, ctx, [I.exe, script, '--max-life', str(rt.TARGET_LIFE)], TARGET)
        info = t.expect_line('READY')
        if info['pid'] != t.pid:
            raise rt.Failure('setup: target reported %r' % info)
        return t

    def parked_dump(t, script, args):
        """A JSON dump (with args) once the main thread is seen in its sleep."""
        park = rt.line_of(path, 'park')
        for _ in range(PARK_TRIES):
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--json'] + args, rt.T_DUMP)
            if res.rc != 0:
                raise rt.Failure('dump failed:\n' + res.describe(out_limit=2000))
            doc = json.loads(res.out_text)
            main = [th for th in doc['threads'] if th['tid'] == t.pid]
            frames = main[0]['frames'] if main else []
            if frames and frames[0]['function'] == 'park' and frames[0]['line'] == park:
                return doc, main[0], res
            time.sleep(0.1)
        raise rt.Failure('the target never parked in its sleep:\n' + res.describe(out_limit=2000))

    def check_frames(P, thread, script):
        want = expected_frames(rt, ver, path)
        got = [(f['function'], f['line']) for f in thread['frames']]
        P.expect(got == want, 'frames %r, expected %r' % (got, want))
        for f in thread['frames']:
            P.expect(f['file'].endswith(script), 'frame file %r' % f['file'])

    def locals_json():
        t = start(path)
        try:
            doc, th, res = parked_dump(t, path, ['--locals'])
            P = rt.Problems()
            check_frames(P, th, TARGET)
            for f, want in zip(th['frames'], expected_locals(ver, rt.TARGET_LIFE)):
                got = [(v['name'], v['kind'], v['value']) for v in f.get('locals', [])]
                P.expect('locals_error' not in f, '%s: %s' % (f['function'], f.get('locals_error')))
                P.expect([g[:2] for g in got] == [w[:2] for w in want],
                         '%s: variables %r, expected %r' % (f['function'], [g[:2] for g in got],
                                                            [w[:2] for w in want]))
                for g, w in zip(got, want):
                    P.expect(g[0] != w[0] or matches(w[2], g[2]),
                             '%s: %s = %s, expected %s' % (f['function'], g[0], g[2], show(w[2])))
            P.fail_if_any(res.describe(out_limit=600))
        finally:
            t.close()

    def locals_text():
        t = start(path)
        try:
            parked_dump(t, path, [])
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--locals'], rt.T_DUMP)
            P = rt.Problems()
            P.expect(res.rc == 0, 'exit status %s' % res.rc)
            lines = res.out_text.split('\n')
            head = [i for i, l in enumerate(lines) if l.startswith('Thread %d ' % t.pid)]
            P.expect(len(head) == 1, 'no section for thread %d' % t.pid)
            body = []
            for l in lines[head[0] + 1 if head else len(lines):]:
                if not l.startswith('    '):
                    break
                body.append(l)
            want = []
            for (fn, line), vars_ in zip(expected_frames(rt, ver, path), expected_locals(ver, rt.TARGET_LIFE)):
                want.append('    %s (%s:%d)' % (fn, None, line))
                want += [('        %s = ' % n, v) for n, _, v in vars_]
            P.expect(len(body) == len(want), '%d lines under the thread, expected %d:\n%s'
                     % (len(body), len(want), '\n'.join(body)))
            for g, w in zip(body, want):
                if isinstance(w, tuple):
                    ok = g.startswith(w[0]) and matches(w[1], g[len(w[0]):])
                    P.expect(ok, 'line %r, expected %r%s' % (g, w[0], show(w[1])))
                else:
                    m = re.match(r'^    (.*) \((.*):(\d+)\)$', g)
                    fn, line = w[4:].split(' (')[0], int(w.rsplit(':', 1)[1][:-1])
                    P.expect(m is not None and m.group(1) == fn and int(m.group(3)) == line
                             and m.group(2).endswith(TARGET), 'frame line %r, expected %s:%d' % (g, fn, line))
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    def source_lines():
        with open(path) as f:
            text = f.read().split('\n')
        nlines = len(text) - (text[-1] == '')
        t = start(path)
        try:
            P = rt.Problems()
            # --source: the current line of each frame, exactly as in the file.
            doc, th, res = parked_dump(t, path, ['--source'])
            for f in th['frames']:
                want = [{'line': f['line'], 'text': text[f['line'] - 1], 'current': True}]
                P.expect(f.get('source') == want, '%s: source %r, expected %r'
                         % (f['function'], f.get('source'), want))
            # --source=2 in text: two lines each side, the current one marked, dedented.
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--source=2'], rt.T_DUMP)
            out = res.out_text
            for fn, line in expected_frames(rt, ver, path):
                shown = range(max(1, line - 2), min(nlines, line + 2) + 1)
                ind = min(len(text[n - 1]) - len(text[n - 1].lstrip(' '))
                          for n in shown if text[n - 1].strip())
                width = len(str(shown[-1]))
                want = '\n'.join(('        %s %*d  %s' % ('>' if n == line else ' ', width, n,
                                                        text[n - 1][ind:])).rstrip(' ')
                                 for n in shown)
                P.expect(('(%s:%d)\n' % (path, line) + want + '\n') in out
                         or (':%d)\n' % line + want + '\n') in out,
                         '%s: no block\n%s' % (fn, want))
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    def source_deleted():
        d = ctx.mkdtemp('locals-')
        copy = os.path.join(d, TARGET)
        shutil.copy(path, copy)
        t = start(copy)
        try:
            os.unlink(copy)
            doc, th, res = parked_dump(t, copy, ['--source', '--locals'])
            P = rt.Problems()
            check_frames(P, th, TARGET)
            for f in th['frames']:
                P.expect(f.get('source') == [], '%s: source %r of a deleted file'
                         % (f['function'], f.get('source')))
            # Its variables still show.
            inner = th['frames'][1].get('locals', []) if len(th['frames']) > 1 else []
            P.expect(('zero', '0') in [(v['name'], v['value']) for v in inner],
                     'no variables in inner: %r' % inner)
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--source=3'], rt.T_DUMP)
            P.expect(res.rc == 0 and not re.search(r'^        [> ] +\d+  ', res.out_text, re.M),
                     'source lines shown for a deleted file:\n' + res.out_text)
            P.fail_if_any(res.describe(out_limit=1000))
        finally:
            t.close()

    def locals_core():
        """A gcore of the parked target shows the same variables, and its source from the paths."""
        t = start(path)
        try:
            doc, th, res = parked_dump(t, path, ['--locals'])
            core = e2e_core.gcore(rt, t.pid, ctx.mkdtemp('locals-core-'), I)
        finally:
            t.close()
        res = rt.run([rt.PYSTROBE, 'dump', '--core', core, '--json', '--locals', '--source'] +
                     (['--root', I.root] if I.root else []), rt.T_DUMP)
        P = rt.Problems()
        P.expect(res.rc == 0, 'exit status %s' % res.rc)
        cth = [x for x in json.loads(res.out_text)['threads'] if x['tid'] == t.pid] if res.rc == 0 else []
        P.expect(len(cth) == 1, 'no thread %d in the core' % t.pid)
        with open(path) as f:
            text = f.read().split('\n')
        for live, dead in zip(th['frames'], cth[0]['frames'] if cth else []):
            P.expect(live.get('locals') == dead.get('locals'), '%s: live %r, core %r'
                     % (live['function'], live.get('locals'), dead.get('locals')))
            want = [{'line': live['line'], 'text': text[live['line'] - 1], 'current': True}]
            P.expect(dead.get('source') == want, '%s: source %r' % (live['function'], dead.get('source')))
        P.fail_if_any(res.describe(out_limit=1000))

    def locals_native():
        """With --native, each Python frame keeps its own variables among the C frames."""
        t = start(path)
        try:
            doc, th, res = parked_dump(t, path, ['--locals'])
            res = rt.run_native_dump([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--json', '--locals',
                                      '--native'], rt.T_DUMP)
        finally:
            t.close()
        P = rt.Problems()
        P.expect(res.rc == 0, 'exit status %s' % res.rc)
        nth = [x for x in json.loads(res.out_text)['threads'] if x['tid'] == t.pid] if res.rc == 0 else []
        py = [f for f in (nth[0]['frames'] if nth else []) if not f.get('native')]
        P.expect(nth and len(py) < len(nth[0]['frames']), 'no native frames')
        P.expect([f.get('locals') for f in py] == [f.get('locals') for f in th['frames']],
                 'variables differ with --native')
        P.expect(all('locals' not in f for f in (nth[0]['frames'] if nth else []) if f.get('native')),
                 'a native frame has variables')
        P.fail_if_any(res.describe(out_limit=1000))

    R.case(pfx + 'json', locals_json)
    R.case(pfx + 'native', locals_native)
    R.case(pfx + 'core', locals_core)
    R.case(pfx + 'text', locals_text)
    R.case(pfx + 'source', source_lines)
    R.case(pfx + 'source-deleted', source_deleted)

    def source_in_root():
        """A root interpreter's own files (its threading.py) are read in its root,
        where this machine has none or other ones."""
        t = rt.Target(ctx.tmp, I.exe, ver=I.ver)
        try:
            t.start()
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--json', '--source'], rt.T_DUMP)
        finally:
            t.close()
        P = rt.Problems()
        if not P.expect(res.rc == 0, 'exit status %s' % res.rc):
            P.fail_if_any(res.describe(out_limit=600))
        lib = '/usr/lib/python%s/' % I.xy
        frames = [f for th in json.loads(res.out_text)['threads'] for f in th['frames']
                  if f['file'].startswith(lib)]
        P.expect(frames, 'no frame in %s' % lib)
        for f in frames[:5]:
            with open(I.root + f['file'], encoding='utf-8', errors='replace') as src:
                text = src.read().split('\n')[f['line'] - 1]
            want = [{'line': f['line'], 'text': text.expandtabs(8).rstrip('\r'), 'current': True}]
            P.expect(f.get('source') == want, '%s:%d: source %r, expected %r (the root\'s file)'
                     % (f['file'], f['line'], f.get('source'), want))
        P.fail_if_any(res.describe(out_limit=600))
    if I.root:
        R.case(pfx + 'source-in-root', source_in_root)
