"""End-to-end tests of asyncio tasks: dump --tasks, record --tasks, locks.
Run by run.py: group(ctx, I, rt), rt being harness.py.

Target tests/targets/tasks.py, on every interpreter from 3.7 (2.7 and 3.6
are not read: unsupported checks the one-line refusal):
  - layout: tools/probe-asyncio.py run by the interpreter measures every
    offset of profiler/cpython/asyncio_layout.c; each must equal the table's
    row for its minor version;
  - dump-json: the crowd (1,002 tasks: 500 on one Lock, 300 on a Queue, 150
    asleep, a tree of 50 three levels deep, the lock's holder and main):
    every group of identical stacks with its exact count, frames (the
    target's own lines exactly, asyncio's by function and file), what they
    wait on, and the tree: 7 mids under tree-root (TaskGroup on 3.11+,
    gather before), 6 leaves under each mid (gather);
  - dump-text: the summary's first line and the tree's shape as printed;
  - running: --running: the task busy runs in the main thread, its stack
    spin <- busy, awaited by main; record --tasks puts the samples running
    it under main's await (stitched);
  - threads: --threads 2: the tasks of three event loops (1,014);
  - record: record --tasks: the widest stack under "task waiting" is the
    lock's, at about 500/1,002 of the task-time; a leaf shows under its mid
    and the root (stitched);
  - locks: locks --json: the first task wait site is take's call into the lock;
  - no-asyncio: a process that never imported asyncio: one line, exit 1;
  - pure-*: dump-json and running again with asyncio's pure-Python Task and
    Future (the target hides the C module _asyncio);
  - uvloop-*: dump-json, running and threads again with every loop uvloop's
    (where the interpreter imports uvloop: Debian's python3-uvloop);
  - aiohttp: tests/targets/aio_web.py, an aiohttp server whose handler takes
    one lock, under a client process keeping 40 requests in flight: locks
    puts the handler's call into the lock first, with about 40 tasks
    waiting there (where the interpreter imports aiohttp);
  - churn (3.9, Debian's 3.11, 3.13, the root's 3.14: each way tasks are
    found): record --tasks for CHURN_SECONDS by pystrobe under ASan and UBSan
    (build/asan/pystrobe) on --churn, a loop that makes and ends tens of
    thousands of tasks a second: exit 0, no sanitizer report, the target
    made at least CHURN_MIN_RATE tasks a second meanwhile, and the counts
    agree: the stacks under "task waiting" in the profile sum to the samples
    of waiting tasks the summary says it counted, the tasks seen per census
    stay near those alive (120-600: the target keeps 360 alive), and few
    tasks (under 5%) or censuses (under 5%) were unreadable;
  - sockets: a task in a StreamReader's read waits on `StreamReader`, one
    in the loop's sock_recv on `socket (sock_recv)`;
  - core: a gcore of a small crowd: dump --core --tasks --json gives the
    same tasks, states, frames and awaiters as the live dump taken just
    before (the target waits on nothing that changes);
  - pstree (3.14+): dump --tasks --json agrees with the interpreter's own
    `python3.X -m asyncio ps PID` (each task's name, stack and awaiter) and
    `pstree PID` (each task's parent), run against the same process (inside
    its mount namespace and root, with nsenter: the tool opens the files
    the target's maps name).
"""
import json
import os
import re
import signal

import e2e_core
import e2e_greenlets
import e2e_states

TARGET = 'tasks.py'
WEB_TARGET = 'aio_web.py'
CHURN_SECONDS = 30
CHURN_MIN_RATE = 10000
CHURN_LABELS = ('3.9.', 'debian-3.11.', '3.13.', 'sid-3.14.')
LOCKED, GETTERS, SLEEPERS, MIDS, LEAVES = 500, 300, 150, 7, 6
TOTAL = LOCKED + GETTERS + SLEEPERS + 1 + MIDS + MIDS * LEAVES + 2
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
LAYOUT_C = os.path.join(REPO, 'profiler', 'cpython', 'asyncio_layout.c')
PROBE = os.path.join(REPO, 'tools', 'probe-asyncio.py')
ASAN_PYSTROBE = os.path.join(REPO, 'build', 'asan', 'pystrobe')


def table_rows():
    """The rows of asyncio_layout.c: {(3, minor): {field: value}}."""
    with open(LAYOUT_C) as f:
        text = f.read()
    rows = {}
    for m in re.finditer(r'\{3, (\d+),(.*?)\}', text, re.S):
        fields = {}
        for k, v in re.findall(r'\.(\w+) = (-?\d+|"[^"]*")', m.group(2)):
            fields[k] = v.strip('"') if v.startswith('"') else int(v)
        rows[int(m.group(1))] = fields
    return rows


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/tasks-'
    path = os.path.join(rt.TARGETS, TARGET)
    xy = I.ver[:2]

    loop = []       # ['--uvloop'] in the uvloop variants

    def start(*extra):
        t = e2e_states.Proc(rt, ctx, [I.exe, path, '--max-life', str(rt.TARGET_LIFE)] +
                            list(extra) + loop, TARGET)
        info = t.expect_line('READY')
        if info['pid'] != t.pid:
            t.close()
            raise rt.Failure('setup: target reported %r' % info)
        return t, info

    def L(marker):
        return rt.line_of(path, marker)

    def dump(t, *args):
        res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--tasks'] + list(args), rt.T_DUMP)
        if res.rc != 0:
            raise rt.Failure('dump --tasks failed:\n' + res.describe(out_limit=2000))
        return res

    def own(frames):
        """The target's own frames of a stack: (function, line)."""
        return tuple((f.get('function'), f.get('line')) for f in frames if f.get('file') == path)

    def asyncio_frame(f, func, fname):
        return (f.get('function', '') or '').split('.')[-1] == func and \
            (f.get('file', '') or '').endswith('asyncio/' + fname)

    def layout():
        res = rt.run([I.exe, PROBE], 60)
        if res.rc != 0:
            raise rt.Failure('probe-asyncio failed:\n' + res.describe(out_limit=2000))
        got = json.loads(res.out_text.strip().split('\n')[-1])
        row = table_rows().get(xy[1])
        P = rt.Problems()
        if not P.expect(row is not None, 'no row for %d.%d in %s' % (xy + (LAYOUT_C,))):
            P.fail_if_any(res.describe())
        for k, v in sorted(got.items()):
            if k in ('python', 'futureiter_type'):
                continue
            P.expect(k in row, 'the table has no field %s (measured %r)' % (k, v))
            P.expect(k not in row or row[k] == v, '%s: the table says %r, measured %r'
                     % (k, row.get(k), v))
        P.fail_if_any(res.describe(out_limit=1500))

    def expected_groups():
        """{own frames: (count, waiting-on kind, check of the first frame)}."""
        root_marker = 'tree-root' if xy >= (3, 11) else 'tree-root-gather'
        return {
            (('take', L('take')), ('locker', L('locker'))):
                (LOCKED, 'Lock', lambda f: asyncio_frame(f, 'acquire', 'locks.py')),
            (('get_one', L('get')), ('getter', L('getter'))):
                (GETTERS, 'Queue', lambda f: asyncio_frame(f, 'get', 'queues.py')),
            (('sleeper', L('sleep')),):
                (SLEEPERS, 'sleep', lambda f: asyncio_frame(f, 'sleep', 'tasks.py')),
            (('leaf', L('leaf')),):
                (MIDS * LEAVES, 'Event', lambda f: asyncio_frame(f, 'wait', 'locks.py')),
            (('tree_mid', L('tree-mid')),):
                (MIDS, 'gather', lambda f: f.get('function') == 'tree_mid'),
            (('tree_root', L(root_marker)),):
                (1, 'TaskGroup' if xy >= (3, 11) else 'gather', lambda f: True),
            (('holder', L('holder')),):
                (1, 'Event', lambda f: asyncio_frame(f, 'wait', 'locks.py')),
            (('crowd', L('main')),):
                (1, 'Event', lambda f: asyncio_frame(f, 'wait', 'locks.py')),
        }

    def dump_json():
        t, info = start()
        try:
            res = dump(t, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            tasks = doc['tasks']
            P.expect(info['tasks'] == TOTAL, 'the target says %d tasks' % info['tasks'])
            P.expect(len(tasks) == TOTAL, '%d tasks, expected %d' % (len(tasks), TOTAL))
            P.expect(all(x['state'] == 'pending' for x in tasks), 'states: %r' % sorted(
                {x['state'] for x in tasks}))
            P.expect(all('error' not in x for x in tasks), 'unreadable: %r'
                     % [x for x in tasks if 'error' in x][:2])
            want = expected_groups()
            got = {}
            for g in doc['task_summary']:
                key = own(g['frames'])
                if key in got:
                    got[key] = (got[key][0] + g['count'],) + got[key][1:]
                else:
                    got[key] = (g['count'], g['waiting_on'], g['frames'])
            for key, (count, kind, first) in sorted(want.items()):
                g = got.get(key)
                if not P.expect(g is not None, 'no group of tasks at %r' % (key,)):
                    continue
                P.expect(g[0] == count, '%r: %d tasks, expected %d' % (key, g[0], count))
                P.expect(g[1] == kind, '%r: waiting on %r, expected %r' % (key, g[1], kind))
                # A pure-Python future's __await__ comes first (--pure): the frame awaiting it.
                fr = g[2][1:] if g[2] and (g[2][0].get('file') or '').endswith(
                    'asyncio/futures.py') and '--pure' in loop else g[2]
                P.expect(bool(fr) and first(fr[0]), '%r: innermost frame %r' % (key, g[2][:2]))
            P.expect(set(got) == set(want), 'groups not expected: %r'
                     % sorted(set(got) - set(want)))
            # The tree: by address, then by name where tasks have names (3.8+).
            by_addr = {x['address']: x for x in tasks}
            kids = {}
            for x in tasks:
                if x['awaited_by']:
                    kids.setdefault(x['awaited_by']['address'], []).append(x)
            mids = [p for p, k in kids.items() if len(k) == LEAVES]
            roots = [p for p, k in kids.items() if len(k) == MIDS]
            P.expect(len(mids) == MIDS and len(roots) == 1, 'parents of %d and %d: %d and %d'
                     % (LEAVES, MIDS, len(mids), len(roots)))
            if roots:
                P.expect(sorted(m['address'] for m in kids[roots[0]]) == sorted(mids),
                         'the root\'s children are not the mids')
                how = 'TaskGroup' if xy >= (3, 11) else 'gather'
                P.expect(all(m['awaited_by']['how'] == how for m in kids[roots[0]]),
                         'mids awaited by %r' % {m['awaited_by']['how'] for m in kids[roots[0]]})
                if xy >= (3, 8):
                    P.expect(by_addr[roots[0]]['name'] == 'tree-root', 'root %r'
                             % by_addr[roots[0]]['name'])
            for m in mids:
                P.expect(all(k['awaited_by']['how'] == 'gather' for k in kids[m]),
                         'leaves awaited by %r' % {k['awaited_by']['how'] for k in kids[m]})
                if xy >= (3, 8):
                    P.expect(all(k['name'].startswith(by_addr[m]['name'].replace('mid', 'leaf'))
                                 for k in kids[m]), 'leaves of %s: %r'
                             % (by_addr[m]['name'], [k['name'] for k in kids[m]]))
            if xy >= (3, 8):
                names = [x['name'] or '' for x in tasks]
                for prefix, n in (('locker-', LOCKED), ('getter-', GETTERS),
                                  ('sleeper-', SLEEPERS), ('tree-leaf-', MIDS * LEAVES)):
                    c = sum(s.startswith(prefix) for s in names)
                    P.expect(c == n, '%d tasks named %s*, expected %d' % (c, prefix, n))
            top = doc['task_tree']
            P.expect(len(top) == TOTAL - MIDS - MIDS * LEAVES, '%d roots in the tree' % len(top))
            P.expect(doc['task_stats']['tasks'] == TOTAL, 'task_stats %r' % doc['task_stats'])
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def dump_text():
        t, _ = start()
        try:
            res = dump(t)
            lines = res.out_text.split('\n')
            P = rt.Problems()
            if not P.expect('Task summary:' in lines and 'Task tree:' in lines,
                            'no "Task summary:" or "Task tree:" line'):
                P.fail_if_any(res.describe(out_limit=3000))
            summ = [s for s in lines[lines.index('Task summary:') + 1:] if s]
            first = re.match(r'  (\d+) tasks waiting on Lock at `(\S+) \((\S+):(\d+)\)` <- .*'
                             r'<- `take \((\S+):(\d+)\)` <- `locker \((\S+):(\d+)\)`$', summ[0])
            P.expect(first is not None and int(first.group(1)) == LOCKED and
                     first.group(2).endswith('acquire') and first.group(5) == path and
                     int(first.group(6)) == L('take') and int(first.group(8)) == L('locker'),
                     'summary starts %r' % summ[:1])
            heads = [s for s in lines if s.startswith('Task 0x')]
            P.expect(len(heads) == TOTAL, '%d tasks listed, expected %d' % (len(heads), TOTAL))
            tree = lines[lines.index('Task tree:') + 1:lines.index('Task summary:')]
            depth = [len(s) - len(s.lstrip(' ')) for s in tree if s.strip()]
            P.expect(depth.count(2) == TOTAL - MIDS - MIDS * LEAVES and depth.count(4) == MIDS
                     and depth.count(6) == MIDS * LEAVES, 'the tree\'s levels: %r'
                     % sorted(set((d, depth.count(d)) for d in depth)))
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def running():
        t, _ = start('--running')
        try:
            res = dump(t, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            run = [x for x in doc['tasks'] if x['state'] == 'running']
            if P.expect(len(run) == 1, '%d running tasks' % len(run)):
                x = run[0]
                P.expect(x.get('thread') == t.pid, 'runs in thread %r, expected %d'
                         % (x.get('thread'), t.pid))
                P.expect(own(x['frames']) == (('spin', L('spin')), ('busy', L('busy'))),
                         'running stack %r' % (x['frames'],))
                if xy >= (3, 8):
                    P.expect(x['name'] == 'busy', 'running task %r' % x['name'])
                main = [m for m in doc['tasks'] if x['awaited_by'] and
                        m['address'] == x['awaited_by']['address']]
                P.expect(len(main) == 1 and own(main[0]['frames']) == (('crowd', L('main-busy')),),
                         'busy awaited by %r' % [m['frames'] for m in main])
            P.expect(len(doc['tasks']) == TOTAL + 1, '%d tasks' % len(doc['tasks']))
            P.fail_if_any(res.describe(out_limit=800))
            # record: the thread's samples running busy go under main's await.
            out = os.path.join(ctx.mkdtemp('tasks-'), 'running.folded')
            rec = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '--tasks', '-d', '1', '-o', out,
                          '-f', 'folded'], rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(rec.rc == 0, 'record exited %d' % rec.rc):
                P.fail_if_any(rec.describe(out_limit=2000))
            stitched = plain = 0
            with open(out) as f:
                for line in f:
                    s_, n = line.rstrip('\n').rsplit(' ', 1)
                    if s_.startswith('task waiting'):
                        continue
                    if ';busy (%s:%d);' % (path, L('busy')) not in s_:
                        continue
                    # (--pure: the pure-Python Task's __await__ between them)
                    if re.search(r';crowd \(%s:%d\);(?:[^;]*/asyncio/[^;]*;)*busy \('
                                 % (re.escape(path), L('main-busy')), s_):
                        stitched += int(n)
                    else:
                        plain += int(n)
            P.expect(stitched > 0 and plain <= stitched // 10, 'samples running busy: %d under '
                     'main\'s await, %d not' % (stitched, plain))
            P.expect('samples of a running task under its awaiters' in rec.err_text,
                     'the summary does not say how many samples were put under awaiters')
            P.fail_if_any(rec.describe(out_limit=1500))
        finally:
            t.close()

    def threads():
        t, info = start('--threads', '2')
        try:
            res = dump(t, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            n = TOTAL + 2 * 6
            P.expect(info['tasks'] == n and len(doc['tasks']) == n, '%d tasks (target: %d), '
                     'expected %d' % (len(doc['tasks']), info['tasks'], n))
            if xy >= (3, 8):
                for i in range(2):
                    c = sum((x['name'] or '').startswith('t%d-sleeper-' % i) for x in doc['tasks'])
                    P.expect(c == 5, '%d tasks t%d-sleeper-*' % (c, i))
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def record():
        t, _ = start()
        try:
            out = os.path.join(ctx.mkdtemp('tasks-'), 'out.folded')
            res = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '--tasks', '-d', '2', '-o', out,
                          '-f', 'folded'], rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(res.rc == 0, 'record exited %d' % res.rc):
                P.fail_if_any(res.describe(out_limit=2000))
            stacks = {}
            with open(out) as f:
                for line in f:
                    s, n = line.rstrip('\n').rsplit(' ', 1)
                    stacks[s] = stacks.get(s, 0) + int(n)
            waiting = {s: n for s, n in stacks.items() if s.startswith('task waiting;')}
            total = sum(waiting.values())
            if P.expect(total > 0, 'no stack under "task waiting"'):
                top = max(waiting, key=waiting.get)
                P.expect('take (%s:%d);' % (path, L('take')) in top and
                         top.startswith('task waiting;locker (%s:%d)' % (path, L('locker'))),
                         'widest: %r' % top)
                share = waiting[top] / float(total)
                P.expect(0.45 < share < 0.55, 'the lock\'s share %.3f, expected ~%.3f'
                         % (share, LOCKED / float(TOTAL)))
                leaf = [s for s in waiting if ';leaf (%s:%d)' % (path, L('leaf')) in s]
                P.expect(len(leaf) == 1 and ';tree_mid (%s:%d);' % (path, L('tree-mid')) in leaf[0]
                         and ';tree_root (' in leaf[0], 'leaves\' stacks %r' % leaf)
            m = re.search(r'tasks: (\d+) censuses .*?([\d.]+) tasks on average', res.err_text)
            P.expect(m is not None and abs(float(m.group(2)) - TOTAL) < 1,
                     'census summary %r' % (m.group(0) if m else None))
            P.fail_if_any(res.describe(out_limit=1500))
        finally:
            t.close()

    def locks():
        t, _ = start()
        try:
            res = rt.run([rt.PYSTROBE, 'locks', '-p', str(t.pid), '-d', '2', '--json'],
                         rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(res.rc == 0, 'locks exited %d' % res.rc):
                P.fail_if_any(res.describe(out_limit=2000))
            doc = json.loads(res.out_text)
            w = doc.get('task_waits') or []
            if P.expect(len(w) >= 3, 'task_waits %r' % w[:3]):
                top = w[0]
                P.expect(top['site']['function'] == 'take' and top['site']['line'] == L('take'),
                         'first site %r' % top['site'])
                P.expect((top['call'] or {}).get('function', '').endswith('__aenter__'),
                         'first call %r' % top['call'])
                P.expect(abs(top['waiting'] - LOCKED) < 1, 'waiting %r' % top['waiting'])
                P.expect(w[1]['site']['function'] == 'get_one', 'second site %r' % w[1]['site'])
            P.fail_if_any(res.describe(out_limit=1500))
        finally:
            t.close()

    def no_asyncio():
        code = ('import json, os, sys, time; print("READY " + json.dumps({"pid": os.getpid()}));'
                'sys.stdout.flush(); time.sleep(300)')
        t = e2e_states.Proc(rt, ctx, [I.exe, '-c', code], 'plain python')
        try:
            t.expect_line('READY')
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--tasks'], rt.T_DUMP)
            P = rt.Problems()
            rt.check_one_line_error(P, res, 1, words=('asyncio', str(t.pid)))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def pstree():
        t, _ = start('--locked', '5', '--getters', '3', '--sleepers', '2', '--tree-mids', '2',
                     '--tree-leaves', '3')
        try:
            res = dump(t, '--json')
            doc = json.loads(res.out_text)
            # Run in the target's own mount namespace and root, where the
            # paths its maps name are the paths the tool opens.
            tool = ['nsenter', '-t', str(t.pid), '-m', '-r', '-w', I.target_exe, '-m', 'asyncio']
            ps = rt.run(tool + ['ps', str(t.pid)], 60)
            tree = rt.run(tool + ['pstree', str(t.pid)], 60)
            P = rt.Problems()
            if not P.expect(ps.rc == 0 and tree.rc == 0, 'asyncio ps/pstree failed'):
                P.fail_if_any(ps.describe(out_limit=1500) + tree.describe(out_limit=1500))
            # ps: one row per task: thread, address, name, ..., the awaiter's address.
            theirs = {}
            for s in ps.out_text.split('\n'):
                m = re.match(r'^(\d+)\s+(0x[0-9a-f]+)\s+(\S+)\s.*\s(0x[0-9a-f]+)\s*$', s)
                if m:
                    theirs[int(m.group(2), 16)] = (m.group(3), int(m.group(4), 16))
            ours = {int(x['address'], 16): (x['name'], int(x['awaited_by']['address'], 16)
                                            if x['awaited_by'] else 0) for x in doc['tasks']}
            P.expect(set(ours) == set(theirs), 'tasks only here: %r, only there: %r'
                     % (sorted(set(ours) - set(theirs))[:5], sorted(set(theirs) - set(ours))[:5]))
            for a in sorted(set(ours) & set(theirs)):
                P.expect(ours[a] == theirs[a], '0x%x: here %r, there %r' % (a, ours[a], theirs[a]))
            # pstree: each task's parent (by the tree's indentation) and its
            # frames, outermost first (the frame lines after its own line).
            parents, frames, stack, cur = {}, {}, [], None
            for s in tree.out_text.split('\n'):
                m = re.match(r'^([ \u2502\u251c\u2514\u2500]*)\(T\) (\S+)$', s)
                if m:
                    level = len(m.group(1))
                    while stack and stack[-1][0] >= level:
                        stack.pop()
                    cur = m.group(2)
                    parents[cur] = stack[-1][1] if stack else None
                    frames[cur] = []
                    stack.append((level, cur))
                    continue
                m = re.match(r'^[ \u2502\u251c\u2514\u2500]*\s(\S+) (\S+):(\d+)$', s)
                if m and cur:
                    frames[cur].append((m.group(1), m.group(2), int(m.group(3))))
            by_addr = {x['address']: x['name'] for x in doc['tasks']}
            mine = {x['name']: (by_addr[x['awaited_by']['address']] if x['awaited_by'] else None)
                    for x in doc['tasks']}
            P.expect(mine == parents, 'parents differ: %r' % sorted(
                set(mine.items()) ^ set(parents.items()))[:6])
            for x in doc['tasks']:
                here = [(f['function'], f['file'], f['line']) for f in reversed(x['frames'])]
                P.expect(here == frames.get(x['name']), '%s: frames here %r, there %r'
                         % (x['name'], here, frames.get(x['name'])))
            P.fail_if_any(res.describe(out_limit=600) + tree.describe(out_limit=1500))
        finally:
            t.close()

    def aiohttp():
        wpath = os.path.join(rt.TARGETS, WEB_TARGET)
        t = e2e_states.Proc(rt, ctx, [I.exe, wpath, '--max-life', str(rt.TARGET_LIFE)],
                            WEB_TARGET)
        try:
            info = t.expect_line('READY')
            res = rt.run([rt.PYSTROBE, 'locks', '-p', str(info['pid']), '-d', '3', '--json'],
                         rt.T_RECORD)
            P = rt.Problems()
            if not P.expect(res.rc == 0, 'locks exited %d' % res.rc):
                P.fail_if_any(res.describe(out_limit=2000))
            w = json.loads(res.out_text).get('task_waits') or []
            if P.expect(w, 'no task wait site'):
                site, call = w[0]['site'], w[0]['call'] or {}
                P.expect(site['function'] == 'handle' and site['file'] == wpath and
                         site['line'] == rt.line_of(wpath, 'handle'), 'first site %r' % site)
                P.expect(call.get('function', '').endswith('__aenter__'), 'first call %r' % call)
                P.expect(w[0]['waiting'] > 20 and w[0]['share'] > 0.7,
                         'waiting %.1f, share %.2f' % (w[0]['waiting'], w[0]['share']))
            P.fail_if_any(res.describe(out_limit=1500))
        finally:
            t.close()

    def churn():
        t, _ = start('--churn')
        try:
            def counts():
                os.kill(t.pid, signal.SIGUSR1)
                return json.loads(t.readline(timeout=30))
            out = os.path.join(ctx.mkdtemp('tasks-'), 'churn.folded')
            c0 = counts()
            env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1:abort_on_error=1',
                       UBSAN_OPTIONS='halt_on_error=1:print_stacktrace=1')
            res = rt.run([ASAN_PYSTROBE, 'record', '-p', str(t.pid), '--tasks', '-d',
                          str(CHURN_SECONDS), '-o', out, '-f', 'folded'], CHURN_SECONDS + 120,
                         env=env)
            c1 = counts()
            P = rt.Problems()
            P.expect(res.rc == 0, 'record exited %d' % res.rc)
            P.expect('Sanitizer' not in res.err_text and 'runtime error' not in res.err_text,
                     'a sanitizer report')
            rate = (c1['created'] - c0['created']) / float(CHURN_SECONDS)
            P.expect(rate >= CHURN_MIN_RATE, 'the target made %.0f tasks a second, expected at '
                     'least %d' % (rate, CHURN_MIN_RATE))
            waiting = 0
            if os.path.exists(out):
                with open(out) as f:
                    for line in f:
                        s_, n = line.rstrip('\n').rsplit(' ', 1)
                        if s_.startswith('task waiting;'):
                            waiting += int(n)
            m = re.search(r'tasks: (\d+) censuses .*?([\d.]+) tasks on average .*? at most (\d+)'
                          r'; (\d+) samples of waiting tasks counted'
                          r'(?:; censuses put off \d+ times[^;]*)?(?:; not counted[^;]*)?'
                          r'(?:; (\d+) unreadable)?(?:; (\d+) censuses failed)?', res.err_text)
            if P.expect(m is not None, 'no census summary'):
                n, avg = int(m.group(1)), float(m.group(2))
                counted, unreadable, failed = int(m.group(4)), int(m.group(5) or 0), \
                    int(m.group(6) or 0)
                P.expect(n > 10 * CHURN_SECONDS, '%d censuses' % n)
                P.expect(120 <= avg <= 600, '%.1f tasks per census' % avg)
                P.expect(counted == waiting, 'the summary counted %d stacks, the profile has %d'
                         % (counted, waiting))
                P.expect(unreadable < 0.05 * avg * n and failed < 0.05 * n,
                         '%d tasks unreadable, %d censuses failed of %d' % (unreadable, failed, n))
            P.fail_if_any(res.describe(out_limit=1500))
        finally:
            t.close()

    def sockets():
        t, _ = start('--locked', '2', '--getters', '1', '--sleepers', '1', '--tree-mids', '0',
                     '--sockets')
        try:
            doc = json.loads(dump(t, '--json').out_text)
            P = rt.Problems()
            kinds = {}
            for x in doc['tasks']:
                own_ = own(x['frames'])
                if own_ and own_[-1][0] in ('stream_reader', 'sock_receiver'):
                    kinds[own_[-1][0]] = (own_[-1][1], (x['waiting_on'] or {}).get('kind'))
            P.expect(kinds.get('stream_reader') == (L('stream'), 'StreamReader'),
                     'stream_reader: %r' % (kinds.get('stream_reader'),))
            P.expect(kinds.get('sock_receiver') == (L('sock'), 'socket (sock_recv)'),
                     'sock_receiver: %r' % (kinds.get('sock_receiver'),))
            P.fail_if_any('')
        finally:
            t.close()

    def core():
        t, _ = start('--locked', '20', '--getters', '10', '--sleepers', '5', '--tree-mids', '2',
                     '--tree-leaves', '3')
        try:
            live = json.loads(dump(t, '--json').out_text)
            path = e2e_core.gcore(rt, t.pid, ctx.mkdtemp('tasks-core-'), I)
        finally:
            t.close()
        res = rt.run([rt.PYSTROBE, 'dump', '--core', path, '--tasks', '--json'] +
                     (['--root', I.root] if I.root else []), rt.T_DUMP)
        P = rt.Problems()
        if not P.expect(res.rc == 0, 'dump --core --tasks exited %d' % res.rc):
            P.fail_if_any(res.describe(out_limit=2000))
        doc = json.loads(res.out_text)

        def brief(d):
            return sorted((x['address'], x['name'], x['state'], json.dumps(x['frames']),
                           json.dumps(x['awaited_by']), json.dumps(x['waiting_on']))
                          for x in d['tasks'])
        a, b = brief(live), brief(doc)
        P.expect(len(b) == len(a) and a == b, 'the core\'s tasks differ from the live ones: %r'
                 % sorted(set(a) ^ set(b))[:4])
        P.fail_if_any(res.describe(out_limit=800))

    def variant(fn, *args):
        def run():
            loop[:] = list(args)
            try:
                fn()
            finally:
                loop[:] = []
        return run

    def unsupported():
        """2.7, 3.6: one line saying which versions are read, exit 1."""
        code = ('import json, os, sys, time; print("READY " + json.dumps({"pid": os.getpid()}));'
                'sys.stdout.flush(); time.sleep(300)')
        t = e2e_states.Proc(rt, ctx, [I.exe, '-c', code], 'plain python')
        try:
            t.expect_line('READY')
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--tasks'], rt.T_DUMP)
            P = rt.Problems()
            rt.check_one_line_error(P, res, 1, words=('3.7-3.15', str(t.pid)))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    if xy < (3, 7):
        R.case(pfx + 'unsupported', unsupported)
        return
    R.case(pfx + 'layout', layout, needs_pystrobe=False)
    R.case(pfx + 'dump-json', dump_json)
    R.case(pfx + 'dump-text', dump_text)
    R.case(pfx + 'running', running)
    R.case(pfx + 'threads', threads)
    R.case(pfx + 'record', record)
    R.case(pfx + 'locks', locks)
    R.case(pfx + 'no-asyncio', no_asyncio)
    R.case(pfx + 'core', core)
    R.case(pfx + 'sockets', sockets)
    R.case(pfx + 'pure-dump-json', variant(dump_json, '--pure'))
    R.case(pfx + 'pure-running', variant(running, '--pure'))
    if xy >= (3, 14):
        R.case(pfx + 'pstree', pstree)
    if any(I.label.startswith(x) for x in CHURN_LABELS):
        R.case(pfx + 'churn', churn)
    if e2e_greenlets.importable(I, 'uvloop'):
        R.case(pfx + 'uvloop-dump-json', variant(dump_json, '--uvloop'))
        R.case(pfx + 'uvloop-running', variant(running, '--uvloop'))
        R.case(pfx + 'uvloop-threads', variant(threads, '--uvloop'))
    if e2e_greenlets.importable(I, 'aiohttp'):
        R.case(pfx + 'aiohttp', aiohttp)
