"""End-to-end tests of record --greenlets and pystrobe locks.  Run by run.py:
group(ctx, I, rt), where rt is harness.py.

Greenlet targets need an interpreter whose gevent (or eventlet) imports with
a greenlet release pystrobe reads (see e2e_greenlets); others SKIP.  The
threads part of `locks` runs on every interpreter, against states.py's
lock waiter.
"""
import json
import os
import re
import signal

import e2e_greenlets
import e2e_states

TARGET = 'greenlets.py'
LOCKED, WAITING, SLEEPING = e2e_greenlets.LOCKED, e2e_greenlets.WAITING, e2e_greenlets.SLEEPING
CHURN_SECONDS = 30
# Share of the churning target's greenlets counted on average, at least (under ASan, ~40% seen).
CHURN_FOUND = 0.25
UNREAD_RE = re.compile(r'; (\d+) unreadable')
COST_RE = re.compile(r'pystrobe: greenlets: cost per census: ([\d.]+) us CPU')
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

    def need_gevent():
        need('gevent')

    def locks_json(t):
        """`locks --json` for a second: (Problems, Result, document); fails at once on an error."""
        res = rt.run([rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '1', '--json'], rt.T_RECORD)
        P = rt.Problems()
        if not P.expect(res.rc == 0, 'exit %s' % res.rc):
            P.fail_if_any(res.describe())
        return P, res, json.loads(res.out_text)

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
            P.expect('greenlets: no census taken (the target never imported greenlet)'
                     in res.err_text, 'no word of a target without greenlet')
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def locks_greenlets():
        need_gevent()
        t = start([path], TARGET)
        try:
            P, res, doc = locks_json(t)
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

    def locks_deep():
        """locks on greenlets parked 150 and 600 frames deep (on 3.11+ in several data-stack
        chunks) beside greenlets parked one frame deep: every one waits at its site."""
        need_gevent()
        dpath = os.path.join(rt.TARGETS, e2e_greenlets.DEEP)
        t = start([dpath, '--lib', 'gevent'], e2e_greenlets.DEEP)
        try:
            P, res, doc = locks_json(t)
            gw = doc['greenlet_waits']

            def fr(f):
                return f and (f['function'], f['file'], f['line'])

            def D(fn, marker):
                return (fn, dpath, rt.line_of(dpath, marker))
            G = e2e_greenlets
            # Event.wait (Cython) has no frame: the deep waiters wait at dive's last call.
            want = [(D('dive', 'bottom'), None, G.DEEP_WAIT + G.DEEPER),
                    (D('shallow', 'shallow'), None, G.SHALLOW),
                    (D('dive', 'bottom'), 'sleep', G.DEEP_SLEEP),
                    (D('park_gevent', 'park'), 'sleep', 1)]
            got = [(fr(g['site']), g['call'] and g['call']['function'], round(g['waiting'], 6))
                   for g in gw]
            P.expect(got == want, 'sites %r,\n    expected %r' % (got, want))
            P.expect(all(g['call'] is None or g['call']['file'].endswith('/gevent/hub.py')
                         for g in gw), 'calls %r' % [g['call'] for g in gw])
            # The first site's stack is one of its deep stacks, whole.
            depths = (G.DEPTH, G.DEEPER_DEPTH)
            stack = gw[0]['stack'] if gw else []
            P.expect(len(stack) - 1 in depths and
                     [fr(f) for f in stack] == [D('dive', 'bottom')] + [D('dive', 'dive')] *
                     (len(stack) - 2) + [D('deep', 'deep')],
                     'first site stack: %d frames %r' % (len(stack), [fr(f) for f in stack[:3]]))
            P.expect(doc['censuses'] > 0 and doc['greenlets'] == G.DEEP_WAIT + G.DEEP_SLEEP +
                     G.DEEPER + G.SHALLOW + 2,
                     'censuses %r, greenlets %r' % (doc['censuses'], doc['greenlets']))
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    def locks_threads():
        """A thread blocked on a threading.Lock: its site, on every interpreter."""
        t = start([states_path], 'states.py')
        try:
            P, res, doc = locks_json(t)
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

    # -- the 1000-greenlet crowd (gevent and eventlet) and its churning mode

    crowd = os.path.join(rt.TARGETS, e2e_greenlets.CROWD)
    infos = {}

    def need(lib):
        if lib not in infos:
            infos[lib] = e2e_greenlets.lib_info(I.exe, lib)
        info = infos[lib]
        if info is None:
            raise rt.Skip('%s is not importable by %s' % (lib, I.exe))
        return info[1]

    def start_crowd(lib, *extra):
        t = e2e_states.Proc(rt, ctx, [I.exe, crowd, '--lib', lib, '--max-life', str(rt.TARGET_LIFE)]
                            + list(extra), e2e_greenlets.CROWD)
        info = t.expect_line('READY', timeout=120)
        if info['pid'] != t.pid:
            t.close()
            raise rt.Failure('setup: target reported %r' % info)
        return t

    def folded_stack(frames):
        """frames innermost first as (function, file, line), as a folded stack (root first)."""
        return tuple(rt.label(*f) for f in reversed(frames))

    def crowd_record(lib):
        """Every census counts the 1000 parked workers at their exact stacks; the semaphore's is widest."""
        pkg = need(lib)
        t = start_crowd(lib)
        try:
            res, folded = record(t, '-d', '2')
            P = rt.Problems()
            c = census_line(P, res)
            if c is None:
                P.fail_if_any(res.describe())
            n = int(c[0])
            total = sum(e2e_greenlets.CROWD_COUNTS) + 2
            P.expect(c[3] == total and c[4] == total - 1 and c[5] == 1, 'census averages %r' % c[3:])
            want = e2e_greenlets.crowd_expected(rt, lib, pkg, I.root)
            for count, st, frames in want:
                key = ('greenlet ' + st,) + folded_stack(frames)
                got = folded.get(key, 0)
                if st == 'parked':
                    P.expect(got == count * n, '%s: %d samples, expected %d x %d'
                             % (' <- '.join(key), got, count, n))
                else:
                    # The hub's own stack, read from its thread at each census (one
                    # caught mid-switch is left out and counted as such).
                    P.expect(0.8 * n <= got <= n, '%s: %d samples of %d censuses'
                             % (' <- '.join(key), got, n))
            parked = sum(v for k, v in folded.items() if k[0] == 'greenlet parked')
            P.expect(parked == (total - 1) * n, 'parked samples %d, expected %d' % (parked, (total - 1) * n))
            top = max(folded.items(), key=lambda kv: kv[1])
            sem = [fr for cnt, st, fr in want if cnt == e2e_greenlets.CROWD_COUNTS[0]][0]
            P.expect(top[0] == ('greenlet parked',) + folded_stack(sem), 'widest stack %r' % (top,))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def second_hub_record(lib):
        """Greenlets of a second hub thread are counted under that thread (--threads)."""
        need(lib)
        t = start_crowd(lib, '--locked', '6', '--waiting', '3', '--sleeping', '1', '--second-hub')
        try:
            res, folded = record(t, '-d', '1', '--threads')
            P = rt.Problems()
            c = census_line(P, res)
            n = int(c[0]) if c else 0
            by_root = {}
            for k, v in folded.items():
                if len(k) > 1 and k[1].startswith('greenlet '):
                    by_root.setdefault(k[0], {}).setdefault(k[1], 0)
                    by_root[k[0]][k[1]] += v
            second = [r for r in by_root if r.startswith('thread second-hub (')]
            main = [r for r in by_root if r.endswith('(%d)' % t.pid)]
            P.expect(len(second) == 1 and len(main) == 1, 'greenlet roots %r' % sorted(by_root))
            if second and main:
                # Main: 10 workers and the main greenlet parked, its hub running;
                # second-hub: its main greenlet and 5 sleepers parked, its hub running.
                P.expect(by_root[main[0]].get('greenlet parked') == 11 * n,
                         'main thread parked %r of %d censuses' % (by_root[main[0]], n))
                P.expect(by_root[second[0]].get('greenlet parked') == 6 * n,
                         'second-hub parked %r of %d censuses' % (by_root[second[0]], n))
                for r in (main[0], second[0]):
                    P.expect(0.8 * n <= by_root[r].get('greenlet running', 0) <= n,
                             '%s: running %r of %d censuses' % (r, by_root[r], n))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def churn_record(lib):
        """30 s of record --greenlets (under ASan when built) on greenlets spawned and killed
        thousands of times a second: no crash, and counts that add up."""
        pkg = need(lib)
        t = start_crowd(lib, '--churn')
        asan = os.path.join(rt.ROOT, 'build', 'asan', 'pystrobe')
        exe = asan if os.path.exists(asan) and os.path.getmtime(asan) >= os.path.getmtime(rt.PYSTROBE) \
            else rt.PYSTROBE
        try:
            out = os.path.join(ctx.mkdtemp('glchurn-'), 'out.folded')
            env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1', UBSAN_OPTIONS='print_stacktrace=1')
            res = rt.run([exe, 'record', '-p', str(t.pid), '-d', str(CHURN_SECONDS), '--greenlets',
                          '-o', out], CHURN_SECONDS + 120, env=env)
            P = rt.Problems()
            if not P.expect(res.rc == 0 and 'Sanitizer' not in res.err_text and 'runtime error' not in res.err_text,
                            'record failed'):
                P.fail_if_any(res.describe())
            os.kill(t.pid, signal.SIGUSR1)
            counts = json.loads(t.readline())
            with open(out) as f:
                folded = parse_folded(f.read())
            c = census_line(P, res)
            if c is None:
                P.fail_if_any(res.describe())
            n, avg, parked_avg, running_avg = int(c[0]), c[3], c[4], c[5]
            # A census at (nearly) every sample, the whole time.
            P.expect(n >= 0.5 * 100 * CHURN_SECONDS, '%d censuses in %d s' % (n, CHURN_SECONDS))
            # The profile holds what the censuses counted: the averages printed (to 0.1).
            parked = sum(v for k, v in folded.items() if k[0] == 'greenlet parked')
            running = sum(v for k, v in folded.items() if k[0] == 'greenlet running')
            P.expect(abs(parked / n - parked_avg) <= 0.051, 'parked samples %d over %d censuses, '
                     'the summary says %.1f on average' % (parked, n, parked_avg))
            m = re.search(r'; (\d+) running without a stack', res.err_text)
            lost = int(m.group(1)) if m else 0
            P.expect(abs((running + lost) / n - running_avg) <= 0.051,
                     'running samples %d (+%d without a stack) over %d censuses, the summary says %.1f'
                     % (running, lost, n, running_avg))
            P.expect(running_avg <= 1.0, '%.1f running greenlets on average in one thread' % running_avg)
            # Never more than the target keeps alive (it says after: about 250), and a good
            # part of them: those that live a few censuses or more are found by a walk of
            # the young generations while young (or of all of them, once a second); walks
            # broken off by the target's own collections miss some of the briefest.
            P.expect(CHURN_FOUND * counts['alive'] <= avg <= 2 * counts['alive'] + 10,
                     '%.1f greenlets on average; the target says %r' % (avg, counts))
            m = UNREAD_RE.search(res.err_text)
            unread = int(m.group(1)) if m else 0
            P.expect(unread <= 0.3 * avg * n, '%d unreadable of %.0f' % (unread, avg * n))
            # Every frame counted is the target's, its library's or the standard library's.
            bad = set()
            for k in folded:
                if not k[0].startswith('greenlet '):
                    continue
                for fr in k[1:]:
                    fm = re.match(r'^.+ \((.+):(\d+)\)$', fr)
                    if not fm or not (fm.group(1) == crowd or fm.group(1).startswith(pkg + '/') or
                                      fm.group(1).startswith('/usr/lib/python3')):
                        bad.add(fr)
            P.expect(not bad, 'frames from nowhere: %r' % sorted(bad)[:5])
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def crowd_locks(lib):
        """locks on 1000 greenlets: the three wait sites, largest first, with exact numbers."""
        pkg = need(lib)
        t = start_crowd(lib)
        try:
            P, res, doc = locks_json(t)
            gw = doc['greenlet_waits']
            want = e2e_greenlets.crowd_expected(rt, lib, pkg, I.root)
            own = {'take', 'waiter', 'getter', 'sleeper', 'park'}
            sites = []
            for count, st, frames in sorted(want, key=lambda w: -w[0]):
                if st != 'parked':
                    continue
                # The site: the first of the target's own frames, and the call it made.
                k = [i for i, f in enumerate(frames) if f[0] in own][0]
                sites.append((frames[k], frames[k - 1] if k else None, count))

            def fr(f):
                return f and (f['function'], f['file'], f['line'])
            got = [(fr(g['site']), fr(g['call']), round(g['waiting'], 6)) for g in gw]
            P.expect(got == sites, 'sites %r, expected %r' % (got, sites))
            P.expect(gw and [fr(f) for f in gw[0]['stack']] ==
                     [f for cnt, st, f in want if cnt == e2e_greenlets.CROWD_COUNTS[0]][0],
                     'first site stack %r' % (gw and gw[0]['stack']))
            P.fail_if_any(res.describe(out_limit=3000))
        finally:
            t.close()

    # registered only where lib is importable (e2e_greenlets.importable)
    for lib in [x for x in ('gevent', 'eventlet') if e2e_greenlets.importable(I, x)]:
        R.case(pfx + 'locks-%s-crowd' % lib, lambda lib=lib: crowd_locks(lib))
        R.case(pfx + 'greenlets-record-%s-crowd' % lib, lambda lib=lib: crowd_record(lib))
        R.case(pfx + 'greenlets-record-%s-second-hub' % lib, lambda lib=lib: second_hub_record(lib))
        R.case(pfx + 'greenlets-record-%s-churn' % lib, lambda lib=lib: churn_record(lib))
    if e2e_greenlets.importable(I, 'gevent'):
        R.case(pfx + 'greenlets-record', record_census)
        R.case(pfx + 'greenlets-record-rate', record_rate)
        R.case(pfx + 'locks-greenlets', locks_greenlets)
        R.case(pfx + 'locks-greenlets-deep', locks_deep)
    R.case(pfx + 'greenlets-record-none', record_no_greenlets)
    R.case(pfx + 'locks-threads', locks_threads)
    if I.label.startswith('debian'):
        R.case(pfx + 'locks-usage', usage)
