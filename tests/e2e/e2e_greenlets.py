"""End-to-end tests of dump --greenlets.  Run by run.py: group(ctx, I, rt),
where rt is run.py's module (its helpers: Problems, run, line_of...).

Target: tests/targets/greenlets.py (gevent: 60 greenlets parked on a
Semaphore, 30 on an Event, 10 asleep, the main greenlet asleep and the Hub
running).  The tests need an interpreter that imports gevent with greenlet
2.0.2 (Debian's python3 with python3-gevent); others SKIP.  Asserted lines
carry "# @name" markers in the target.
"""
import json
import os
import subprocess

import e2e_states

TARGET = 'greenlets.py'
LOCKED, WAITING, SLEEPING = 60, 30, 10
SUPPORTED_GREENLET = '2.0.2'


def greenlet_release(exe):
    """greenlet's release as exe imports it with gevent, or None."""
    try:
        out = subprocess.run([exe, '-c', 'import gevent, greenlet; print(greenlet.__version__)'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().strip() if out.returncode == 0 else None


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/greenlets-'
    path = os.path.join(rt.TARGETS, TARGET)
    state = {}

    def need_gevent():
        if 'release' not in state:
            state['release'] = greenlet_release(I.exe)
        rel = state['release']
        if rel is None:
            raise rt.Skip('gevent is not importable by %s' % I.exe)
        if rel != SUPPORTED_GREENLET or I.ver[:2] != (3, 11):
            raise rt.Skip('greenlet %s on Python %d.%d: only greenlet %s on 3.11 is read yet'
                          % (rel, I.ver[0], I.ver[1], SUPPORTED_GREENLET))

    def start(*extra):
        t = e2e_states.Proc(rt, ctx, [I.exe, path, '--max-life', str(rt.TARGET_LIFE)] + list(extra),
                            TARGET)
        info = t.expect_line('READY')
        if info['pid'] != t.pid:
            t.close()
            raise rt.Failure('setup: target reported %r' % info)
        return t

    def L(fn, marker):
        return (fn, path, rt.line_of(path, marker))

    # The summary as (count, state, frames), frames as (function, file, line).
    def expected_summary():
        return [
            (LOCKED, 'parked', [L('take', 'take'), L('locker', 'locker')]),
            (WAITING, 'parked', [L('waiter', 'waiter')]),
            (SLEEPING, 'parked', [('sleep', 'gevent/hub.py', None), L('sleeper', 'sleeper')]),
            (1, 'parked', [('sleep', 'gevent/hub.py', None), L('park', 'park'), L('main', 'main'),
                           L('<module>', 'module')]),
            (1, 'running', []),
        ]

    def frame_ok(got, want):
        fn, f, line = want
        if got.get('function') != fn:
            return False
        if line is None:    # gevent's own: its line depends on gevent's release
            return got.get('file', '').endswith('/' + f) and got.get('line', 0) > 0
        return got.get('file') == f and got.get('line') == line

    def dump(t, *args):
        res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets'] + list(args), rt.T_DUMP)
        if res.rc != 0:
            raise rt.Failure('dump --greenlets failed:\n' + res.describe(out_limit=2000))
        return res

    def summary_json():
        need_gevent()
        t = start()
        try:
            res = dump(t, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            got = doc['greenlet_summary']
            want = expected_summary()
            P.expect(len(got) == len(want), '%d groups, expected %d' % (len(got), len(want)))
            for g, (count, st, frames) in zip(got, want):
                P.expect(g['count'] == count and g['state'] == st,
                         'group %d %s, expected %d %s' % (g['count'], g['state'], count, st))
                P.expect(len(g['frames']) == len(frames) and
                         all(frame_ok(a, b) for a, b in zip(g['frames'], frames)),
                         '%d %s: frames %r, expected %r' % (count, st, g['frames'], frames))
            gl = doc['greenlets']
            total = LOCKED + WAITING + SLEEPING + 2
            P.expect(len(gl) == total, '%d greenlets, expected %d' % (len(gl), total))
            mains = [g for g in gl if g['main']]
            P.expect(len(mains) == 1 and mains[0]['state'] == 'parked',
                     'main greenlets: %r' % mains)
            P.expect(all('error' not in g for g in gl), 'unreadable stacks: %r'
                     % [g for g in gl if 'error' in g][:3])
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def summary_text():
        need_gevent()
        t = start()
        try:
            res = dump(t)
            lines = res.out_text.split('\n')
            P = rt.Problems()
            if not P.expect('Greenlet summary:' in lines, 'no "Greenlet summary:" line'):
                P.fail_if_any(res.describe(out_limit=3000))
            summ = lines[lines.index('Greenlet summary:') + 1:]
            summ = [s for s in summ if s]
            want0 = '  %d greenlets parked at `take (%s:%d)` <- `locker (%s:%d)`' % (
                LOCKED, path, rt.line_of(path, 'take'), path, rt.line_of(path, 'locker'))
            want1 = '  %d greenlets parked at `waiter (%s:%d)`' % (WAITING, path,
                                                                 rt.line_of(path, 'waiter'))
            P.expect(summ[:2] == [want0, want1], 'summary starts %r, expected %r'
                     % (summ[:2], [want0, want1]))
            P.expect(len(summ) == 5 and summ[-1] == '  1 greenlet running',
                     'summary %r' % summ)
            heads = [s for s in lines if s.startswith('Greenlet 0x')]
            P.expect(len(heads) == LOCKED + WAITING + SLEEPING + 2, '%d greenlets listed' % len(heads))
            P.expect(sum(s.endswith(' main (parked)') for s in heads) == 1, 'no parked main greenlet')
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def no_greenlets():
        """A process without greenlets (any version): one line saying why, exit 1."""
        t = start('--plain')
        try:
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets'], rt.T_DUMP)
            P = rt.Problems()
            words = ('greenlet', str(t.pid)) if I.ver[:2] >= (3, 11) else ('greenlets', '3.11')
            rt.check_one_line_error(P, res, 1, words=words)
            P.fail_if_any(res.describe())
        finally:
            t.close()

    R.case(pfx + 'summary-json', summary_json)
    R.case(pfx + 'summary-text', summary_text)
    R.case(pfx + 'no-greenlets', no_greenlets)
