"""End-to-end tests of record --greenlets and pystrobe locks.  Run by run.py:
group(ctx, I, rt), where rt is run.py's module.

Greenlet targets need an interpreter whose gevent (or eventlet) imports with
a greenlet release pystrobe reads (see e2e_greenlets); others SKIP.  The
threads part of `locks` runs on every interpreter, against states.py's
lock waiter.
"""
import json
import os
import re

import e2e_greenlets
import e2e_states

TARGET = 'greenlets.py'
LOCKED, WAITING, SLEEPING = e2e_greenlets.LOCKED, e2e_greenlets.WAITING, e2e_greenlets.SLEEPING
CENSUS_RE = re.compile(r'pystrobe: greenlets: (\d+) censuses \(([\d.]+) Hz\), each counting (\d+) '
                       r'samples? a greenlet; ([\d.]+) greenlets on average \(([\d.]+) parked, '
                       r'([\d.]+) running\)')


def parse_folded(text):
    """{stack tuple (root first): count}"""
    out = {}
    for line in text.splitlines():
        stack, _, n = line.rpartition(' ')
        out[tuple(stack.split(';'))] = out.get(tuple(stack.split(';')), 0) + int(n)
    return out


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/'
    path = os.path.join(rt.TARGETS, TARGET)
    states_path = os.path.join(rt.TARGETS, 'states.py')
    state = {}

    def need_gevent():
        if 'release' not in state:
            state['release'] = e2e_greenlets.greenlet_release(I.exe)
        rel = state['release']
        if rel is None:
            raise rt.Skip('gevent is not importable by %s' % I.exe)
        if rel != e2e_greenlets.SUPPORTED_GREENLET or I.ver[:2] != (3, 11):
            raise rt.Skip('greenlet %s on Python %d.%d: only greenlet %s on 3.11 is read yet'
                          % (rel, I.ver[0], I.ver[1], e2e_greenlets.SUPPORTED_GREENLET))

    def start(argv, what, *extra):
        t = e2e_states.Proc(rt, ctx, [I.exe] + argv + ['--max-life', str(rt.TARGET_LIFE)]
                            + list(extra), what)
        info = t.expect_line('READY')
        if info['pid'] != t.pid:
            t.close()
            raise rt.Failure('setup: target reported %r' % info)
        return t

    def lab(fn, marker):
        return rt.label(fn, path, rt.line_of(path, marker))

    def census_line(P, res):
        m = CENSUS_RE.search(res.err_text)
        if not P.expect(m is not None, 'no greenlet census line in the summary'):
            return None
        return [float(x) for x in m.groups()]

    def record(t, *args):
        out = os.path.join(ctx.mkdtemp('glrec-'), 'out.folded')
        res = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '-o', out, '--greenlets']
                     + list(args), rt.T_RECORD)
        if res.rc != 0:
            raise rt.Failure('record --greenlets failed:\n' + res.describe())
        with open(out) as f:
            return res, parse_folded(f.read())

    def check_census(P, res, folded, every, rate):
        """Each census counts every greenlet once, `every` samples each."""
        c = census_line(P, res)
        if c is None:
            return
        n, hz, each = int(c[0]), c[1], int(c[2])
        P.expect(each == every and abs(hz - rate / every) < 1e-6,
                 'census every %d samples at %g Hz, expected %d at %g' % (each, hz, every,
                                                                           rate / every))
        P.expect(c[3] == LOCKED + WAITING + SLEEPING + 2 and c[4] == c[3] - 1 and c[5] == 1,
                 'census averages %r' % c[3:])
        parked = dict((k[1:], v) for k, v in folded.items() if k[0] == 'greenlet parked')
        running = dict((k[1:], v) for k, v in folded.items() if k[0] == 'greenlet running')
        take = (lab('locker', 'locker'), lab('take', 'take'))
        want = {take: LOCKED, (lab('waiter', 'waiter'),): WAITING}
        for stack, k in want.items():
            P.expect(parked.get(stack) == k * n * every, '%s: %r samples, expected %d x %d x %d'
                     % (' <- '.join(stack), parked.get(stack), k, n, every))
        sleeps = [v for s, v in parked.items() if s[0] == lab('sleeper', 'sleeper')]
        P.expect(sleeps == [SLEEPING * n * every], 'sleepers: %r' % sleeps)
        P.expect(sum(parked.values()) == (LOCKED + WAITING + SLEEPING + 1) * n * every,
                 'parked samples %d, expected %d' % (sum(parked.values()),
                                                     (LOCKED + WAITING + SLEEPING + 1) * n * every))
        P.expect(sum(running.values()) == n * every, 'running samples %d, expected %d'
                 % (sum(running.values()), n * every))
        # The hot lock: the widest stack of all is the semaphore's.
        top = max(folded.items(), key=lambda kv: kv[1])
        P.expect(top[0] == ('greenlet parked',) + take, 'widest stack %r' % (top,))

    def record_census():
        need_gevent()
        t = start([path], TARGET)
        try:
            res, folded = record(t, '-d', '2')
            P = rt.Problems()
            check_census(P, res, folded, 1, 100.0)
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def record_rate():
        """A census every 10th sample counts 10 samples for each greenlet."""
        need_gevent()
        t = start([path], TARGET)
        try:
            res, folded = record(t, '-d', '2', '-r', '200', '--greenlet-rate', '20',
                                 '--threads', '--idle')
            P = rt.Problems()
            check_census(P, res, {k[1:]: v for k, v in folded.items()
                                  if len(k) > 1 and k[1].startswith('greenlet ')}, 10, 200.0)
            # With --threads, greenlets are under the thread that runs them
            # (named by the OS: the target does not import threading).
            roots = set(k[0] for k, v in folded.items() if len(k) > 1 and k[1].startswith('greenlet '))
            P.expect(len(roots) == 1 and re.match(r'thread \S+ \(%d\)$' % t.pid, list(roots)[0]),
                     'greenlet roots %r' % roots)
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def record_no_greenlets():
        t = start([path, '--plain'], TARGET)
        try:
            res = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '-d', '0.5', '--idle',
                          '--greenlets', '-o', os.path.join(ctx.mkdtemp('glrec-'), 'o.folded')],
                         rt.T_RECORD)
            P = rt.Problems()
            P.expect(res.rc == 0, 'exit %s' % res.rc)
            if I.ver[:2] >= (3, 11):
                P.expect('greenlets: no census taken (the target never imported greenlet)'
                         in res.err_text, 'no word of a target without greenlet')
            else:
                P.expect(re.search(r'no greenlets for process \d+: .*3\.11', res.err_text),
                         'no word of an unsupported Python')
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def locks_greenlets():
        need_gevent()
        t = start([path], TARGET)
        try:
            res = rt.run([rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '1', '--json'], rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(res.rc == 0, 'exit %s' % res.rc):
                P.fail_if_any(res.describe())
            doc = json.loads(res.out_text)
            gw = doc['greenlet_waits']

            def fr(f):
                return (f['function'], f['file'], f['line'])
            want = [(('take', path, rt.line_of(path, 'take')), None, LOCKED),
                    (('waiter', path, rt.line_of(path, 'waiter')), None, WAITING),
                    (('sleeper', path, rt.line_of(path, 'sleeper')), 'sleep', SLEEPING),
                    (('park', path, rt.line_of(path, 'park')), 'sleep', 1)]
            P.expect(len(gw) == len(want), '%d sites, expected %d' % (len(gw), len(want)))
            for g, (site, call, n) in zip(gw, want):
                P.expect(fr(g['site']) == site, 'site %r, expected %r' % (g['site'], site))
                got_call = g['call'] and g['call']['function']
                P.expect(got_call == call and (call is None or
                                               g['call']['file'].endswith('/gevent/hub.py')),
                         'call %r, expected %r' % (g['call'], call))
                P.expect(abs(g['waiting'] - n) < 1e-9, '%s: %r waiting, expected %d'
                         % (site[0], g['waiting'], n))
            P.expect([fr(f) for f in gw[0]['stack']] ==
                     [('take', path, rt.line_of(path, 'take')),
                      ('locker', path, rt.line_of(path, 'locker'))], 'stack %r' % gw[0]['stack'])
            P.expect(doc['thread_waits'] == [], 'thread waits %r' % doc['thread_waits'])
            P.expect(doc['censuses'] > 0 and doc['greenlets'] == LOCKED + WAITING + SLEEPING + 2,
                     'censuses %r, greenlets %r' % (doc['censuses'], doc['greenlets']))
            # The text form: the same first site, its numbers and its stack.
            res = rt.run([rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '0.5', '-n', '1'],
                         rt.T_RECORD)
            lines = res.out_text.split('\n')
            i = lines.index('Where greenlets wait (parked), by greenlet-time:') + 1
            P.expect(lines[i] == '  1. `take (%s:%d)`' % (path, rt.line_of(path, 'take')),
                     'first site %r' % lines[i])
            P.expect(re.match(r'     [\d.]+ greenlet-s, 60\.0 waiting on average, 59\.4%$',
                              lines[i + 1]), 'first site numbers %r' % lines[i + 1])
            P.expect(lines[i + 2:i + 5] == ['        take (%s:%d)' % (path, rt.line_of(path, 'take')),
                                            '        locker (%s:%d)' % (path, rt.line_of(path, 'locker')),
                                            '  ... 3 more sites'], 'then %r' % lines[i + 2:i + 5])
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    def locks_threads():
        """A thread blocked on a threading.Lock: its site, on every interpreter."""
        t = start([states_path], 'states.py')
        try:
            res = rt.run([rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '1', '--json'], rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(res.rc == 0, 'exit %s' % res.rc):
                P.fail_if_any(res.describe())
            doc = json.loads(res.out_text)
            tw = doc['thread_waits']
            line = rt.line_of(states_path, 'lock-wait')
            P.expect(len(tw) >= 1 and tw[0]['site']['function'] == 'lock_waiter' and
                     tw[0]['site']['file'] == states_path and tw[0]['site']['line'] == line,
                     'first thread site %r, expected lock_waiter:%d' % (tw[:1], line))
            # Blocked all along: in (nearly) every sample.
            P.expect(tw and tw[0]['waiting'] >= 0.9, 'waiting %r' % (tw and tw[0]['waiting']))
            # Sleeping threads are not waiting on a lock.
            P.expect(all(w['site']['function'] not in ('sleeper', 'main') for w in tw),
                     'sleepers among lock waits: %r' % tw)
            P.expect(doc['greenlet_waits'] == [] and doc['censuses'] == 0, 'greenlets %r'
                     % doc['greenlet_waits'])
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    def usage():
        P = rt.Problems()
        for args, words in ((['locks', '-p', '1', '--idle'], ('--idle',)),
                            (['locks', '-p', '1', '-n', '0'], ('--top',)),
                            (['record', '-p', '1', '--greenlet-rate', '10'], ('--greenlets',)),
                            (['record', '-p', '1', '--greenlets', '--greenlet-rate', '200'],
                             ('--greenlet-rate', 'sampling rate')),
                            (['record', '-p', '1', '--greenlets', '--greenlet-rate', 'x'],
                             ('--greenlet-rate',))):
            res = rt.run([rt.PYSTROBE] + args, rt.T_DUMP)
            rt.check_one_line_error(P, res, 2, words=words)
        P.fail_if_any()

    R.case(pfx + 'greenlets-record', record_census)
    R.case(pfx + 'greenlets-record-rate', record_rate)
    R.case(pfx + 'greenlets-record-none', record_no_greenlets)
    R.case(pfx + 'locks-greenlets', locks_greenlets)
    R.case(pfx + 'locks-threads', locks_threads)
    if I.label.startswith('debian'):
        R.case(pfx + 'locks-usage', usage)
