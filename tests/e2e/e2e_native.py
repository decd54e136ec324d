"""End-to-end tests of native frames (`dump --native`, `record --native`).
Run by run.py: group(ctx, I, rt), where rt is harness.py.

The target is tests/targets/states.py (see e2e_states.py): a sleeper in
time.sleep, a lock waiter, a compressor inside bz2's C code, GIL fighters.
Its native frames must appear in the right place: the libc call a thread
sleeps in above the Python frame that called time.sleep, bz2's C code above
the compressor's Python frame; the eval loop's own frames replaced by the
Python frames they run, so that the Python frames are those the interpreter
itself reports (the target's --oracle, taken while the threads sleep) in the
same order; and every thread running again, untraced, afterwards.
"""
import json
import os
import re
import signal
import time

import e2e_core
import e2e_states

SLEEP_RE = re.compile(r'nanosleep|select')                 # time.sleep in libc (2.7: select)
LOCK_RE = re.compile(r'sem_|futex|pthread_cond|PyThread_acquire_lock')
BZ2_RE = re.compile(r'BZ2_|bz2|libbz2')
ZLIB_RE = re.compile(r'deflate|libz\.so')
EVAL_RE = re.compile(r'^(_PyEval_EvalFrameDefault|PyEval_EvalFrameEx)\b')
# glibc 2.41+ makes a blocking call through these, above the call itself
# (clock_nanosleep's leaf is then __syscall_cancel_arch).
CANCEL_RE = re.compile(r'^(__syscall_cancel_arch|__internal_syscall_cancel|__syscall_cancel)\b')


def call_leaf(names):
    """The innermost of names (innermost first) that is not glibc's cancellation path."""
    for n in names:
        if not CANCEL_RE.match(n):
            return n
    return ''
SLEEPING = ('MainThread', 'sleeper', 'lock-waiter', e2e_states.RAW_OS_NAME)
COMPRESSOR_TRIES = 30


def native_dump(rt, pid, json_=True):
    return rt.run_native_dump([rt.PYSTROBE, 'dump', '--native', '-p', str(pid)]
                              + (['--json'] if json_ else []), rt.T_DUMP)


def threads_of(rt, P, res, what):
    """{tid: thread} from a dump --json."""
    try:
        doc = json.loads(res.out_text)
    except ValueError as e:
        P.expect(False, '%s: not JSON (%s): %s' % (what, e, rt.clip(res.out_text, 800)))
        return {}
    return dict((t['tid'], t) for t in doc.get('threads', []))


def label(f):
    if f.get('native'):
        return f['function']
    return '%s (%s:%d)' % (f['function'], f['file'], f['line'])


def python_frames(t):
    return [label(f) for f in t['frames'] if not f.get('native')]


def first_python(t, func):
    for i, f in enumerate(t['frames']):
        if not f.get('native') and f['function'] == func:
            return i
    return -1


def not_stopped(rt, P, pid):
    """Every thread of pid runs again and has no tracer."""
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/status' % (pid, tid), errors='replace') as f:
                status = f.read()
        except (IOError, OSError):
            continue
        state = re.search(r'^State:\s+(\S)', status, re.M)
        tracer = re.search(r'^TracerPid:\s+(\d+)', status, re.M)
        P.expect(state and state.group(1) not in 'tT',
                 'thread %s of %d left stopped: %s' % (tid, pid, state and state.group(0)))
        P.expect(tracer and tracer.group(1) == '0',
                 'thread %s of %d still traced: %s' % (tid, pid, tracer and tracer.group(0)))


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/native-'
    STATES = os.path.join(rt.TARGETS, 'states.py')
    procs = []

    def make():
        t = e2e_states.Proc(rt, ctx, [I.exe, STATES, '--oracle', '--max-life', str(rt.TARGET_LIFE)],
                            'states.py')
        procs.append(t)
        info = t.expect_line('READY')
        t.tids = info['threads']
        sleeps = set(e2e_states.SLEEP_CALLS)
        e2e_states.wait_syscalls(rt, t.pid, {t.tids['MainThread']: sleeps, t.tids['sleeper']: sleeps,
                                             t.tids['lock-waiter']: set([e2e_states.FUTEX])})
        return t

    target = rt.Lazy(make)

    def oracle(t):
        """{tid: [label, ...] innermost first}: what the target's interpreter sees, once
        the main thread, which ran the signal handler, is back asleep."""
        os.kill(t.pid, signal.SIGUSR1)
        doc = t.expect_line('ORACLE')
        e2e_states.wait_syscalls(rt, t.pid, {t.tids['MainThread']: set(e2e_states.SLEEP_CALLS)})
        return dict((int(tid), ['%s (%s:%d)' % tuple(f) for f in frames])
                    for tid, frames in doc['threads'].items() if tid != 'None')

    def dump_native():
        P = rt.Problems()
        t = target.get()
        want = oracle(t)
        nat = native_dump(rt, t.pid)
        P.expect(nat.rc == 0, 'exit status %s, expected 0' % nat.rc)
        got = threads_of(rt, P, nat, 'dump --native')
        P.expect(sorted(want) == sorted(got), 'threads %r, the interpreter has %r' % (sorted(got), sorted(want)))
        for name in SLEEPING:
            tid = t.tids[name]
            if not P.expect(tid in got and tid in want, 'thread %s (%d) missing: dump --native has %r, '
                            'the interpreter %r' % (name, tid, sorted(got), sorted(want))):
                continue
            g = got[tid]
            shown = '\n      '.join(label(f) + (' [native]' if f.get('native') else '') for f in g['frames'])
            # The Python frames, in place and in order, as the interpreter itself reports them.
            P.expect(python_frames(g) == want[tid],
                     'thread %s: Python frames with --native differ from what the interpreter reports:'
                     '\n      %s\n    interpreter:\n      %s'
                     % (name, '\n      '.join(python_frames(g)), '\n      '.join(want[tid])))
            natives = [f['function'] for f in g['frames'] if f.get('native')]
            P.expect(natives, 'thread %s: no native frame' % name)
            P.expect(not [n for n in natives if EVAL_RE.match(n)],
                     'thread %s: eval-loop frames left in the stack:\n      %s' % (name, shown))
            # Below the outermost Python frame, the C code that started it.
            P.expect(g['frames'] and g['frames'][-1].get('native'),
                     'thread %s: the outermost frame is not native:\n      %s' % (name, shown))
            py = {'sleeper': 'sleeper', 'lock-waiter': 'lock_waiter', 'MainThread': 'main',
                  e2e_states.RAW_OS_NAME: 'raw_sleeper'}[name]
            k = first_python(g, py)
            above = [f['function'] for f in g['frames'][:max(k, 0)]]
            P.expect(k > 0 and all(f.get('native') for f in g['frames'][:k]),
                     'thread %s: %s is not the first Python frame under native ones:\n      %s'
                     % (name, py, shown))
            pat = LOCK_RE if name == 'lock-waiter' else SLEEP_RE
            P.expect(k > 0 and pat.search(call_leaf(above) if name != 'lock-waiter' else ' '.join(above)),
                     'thread %s: no native frame matching /%s/ %s above %s:\n      %s'
                     % (name, pat.pattern, 'as the leaf' if name != 'lock-waiter' else '', py, shown))
        not_stopped(rt, P, t.pid)
        P.fail_if_any(nat.describe())

    def dump_native_compressor():
        # The compressor is inside bz2's C code most of the time, not always.
        P = rt.Problems()
        t = target.get()
        tid = t.tids['compressor']
        seen = []
        for _ in range(COMPRESSOR_TRIES):
            nat = native_dump(rt, t.pid)
            if not P.expect(nat.rc == 0, 'exit status %s' % nat.rc):
                break
            g = threads_of(rt, P, nat, 'dump --native').get(tid)
            if not g:
                continue
            k = first_python(g, 'compressor')
            above = [f['function'] for f in g['frames'][:max(k, 0)] if f.get('native')]
            seen.append(above)
            if k > 0 and any(BZ2_RE.search(a) for a in above):
                break
        else:
            P.expect(False, 'in %d dumps, never bz2 code above compressor; native frames seen: %r'
                     % (COMPRESSOR_TRIES, seen[-3:]))
        not_stopped(rt, P, t.pid)
        P.fail_if_any()

    def dump_native_text():
        P = rt.Problems()
        t = target.get()
        res = native_dump(rt, t.pid, json_=False)
        P.expect(res.rc == 0, 'exit status %s' % res.rc)
        block = re.search(r'^Thread %d "sleeper".*?\n((?:    .*\n)+)' % t.tids['sleeper'], res.out_text, re.M)
        if P.expect(block, 'no block for the sleeper thread'):
            lines = [l.strip() for l in block.group(1).splitlines()]
            want = rt.label('sleeper', STATES, rt.line_of(STATES, 'sleep'))
            k = lines.index(want) if want in lines else -1
            P.expect(k > 0 and SLEEP_RE.search(call_leaf(lines[:k])),
                     'the sleeper block does not start with a sleep call above %s:\n      %s'
                     % (want, '\n      '.join(lines)))
        P.expect(re.search(r'pystrobe: native stacks: \d+ threads? stopped one at a time', res.err_text),
                 'no note of how long threads were stopped on stderr')
        P.fail_if_any(res.describe())

    def record_native():
        P = rt.Problems()
        t = target.get()
        out = os.path.join(ctx.mkdtemp('native-'), 'out.folded')
        res = e2e_states.run_record(rt, P, out, ['--native', '--idle', '--threads', '-r', '50', '-d', '1.5',
                                                 '-p', str(t.pid)])
        stacks = rt.parse_folded(P, out) or {}
        root = e2e_states.thread_root(rt, 'sleeper', t.tids['sleeper'])
        want = rt.label('sleeper', STATES, rt.line_of(STATES, 'sleep'))
        mine = dict((s, c) for s, c in stacks.items() if s[0] == root)
        good = sum(c for s, c in mine.items()
                   if want in s and s[-1] == e2e_states.IDLE and s.index(want) < len(s) - 2 and
                   SLEEP_RE.search(call_leaf(s[-2:s.index(want):-1])))
        # A thread not stopped within pystrobe's 100 ms (a busy machine) is
        # sampled with its Python frames alone: as many as the summary counts.
        python_only = sum(c for s, c in mine.items()
                          if len(s) > 2 and s[-1] == e2e_states.IDLE and s[-2] == want)
        m = re.search(r'; (\d+) stacks? without native frames \(thread not stopped\)', res.err_text)
        not_held = int(m.group(1)) if m else 0
        total = sum(mine.values())
        P.expect(total > 0 and good + min(python_only, not_held) == total,
                 '%d of %d sleeper samples end in its sleep call below %s, then [idle] (and %d '
                 'in %s, then [idle], of %d the summary says were not stopped); e.g.\n      %s'
                 % (good, total, want, python_only, want, not_held, e2e_states.show(rt, mine, 3)))
        P.expect(re.search(r'pystrobe: native frames: threads held \d+ times, [0-9.]+ us each', res.err_text),
                 'no native summary line on stderr')
        not_stopped(rt, P, t.pid)
        P.fail_if_any(res.describe())

    def core_native():
        # gcore of the same target: the sleeping threads' stacks unwound from
        # the core's saved registers are those a live dump --native shows.
        P = rt.Problems()
        t = target.get()
        live = threads_of(rt, P, native_dump(rt, t.pid), 'dump --native')
        core = e2e_core.gcore(rt, t.pid, ctx.mkdtemp('native-core-'), I)
        res = rt.run([rt.PYSTROBE, 'dump', '--core', core, '--native', '--json'] +
                     (['--root', I.root] if I.root else []), rt.T_DUMP)
        got = threads_of(rt, P, res, 'dump --core --native')
        for name in ('sleeper', 'lock-waiter', 'MainThread'):
            tid = t.tids[name]
            if not P.expect(tid in got and tid in live, 'thread %s missing' % name):
                continue
            g, w = [label(f) for f in got[tid]['frames']], [label(f) for f in live[tid]['frames']]
            P.expect(g == w, 'thread %s: core frames differ from the live ones:\n      %s\n    live:\n      %s'
                     % (name, '\n      '.join(g), '\n      '.join(w)))
        os.unlink(core)
        P.fail_if_any(res.describe(out_limit=600))

    def record_launched():
        # A launched command imports zlib after pystrobe started: its library
        # is found when a stack first runs into it.
        P = rt.Problems()
        src = os.path.join(rt.TARGETS, 'native.py')
        out = os.path.join(ctx.mkdtemp('native-launch-'), 'out.folded')
        res = e2e_states.run_record(rt, P, out, ['--native', '-r', '50', '-d', '3', '--', I.exe, src])
        stacks = rt.parse_folded(P, out) or {}
        comp = dict((s, c) for s, c in stacks.items() if any(f.startswith('compressor (') for f in s))
        inz = sum(c for s, c in comp.items()
                  if any(ZLIB_RE.search(f) for f in s[[i for i, f in enumerate(s) if f.startswith('compressor (')][-1]:]))
        total = sum(comp.values())
        # It is between two calls now and then; most samples are inside one.
        P.expect(total > 0 and inz * 4 >= total * 3,
                 '%d of %d compressor samples show zlib frames above compressor; e.g.\n      %s'
                 % (inz, total, e2e_states.show(rt, comp, 3)))
        # Libraries loaded while it starts are found at once (a few stacks
        # may fall between a load and the next look at the mappings).  A
        # thread that did not stop in time (a loaded machine) is another matter.
        m = re.search(r'; (\d+) stacks without native frames \(not unwound\)', res.err_text)
        samples = sum(stacks.values())
        P.expect(not m or int(m.group(1)) * 50 <= samples, '%s stacks of %d without native frames: %s'
                 % (m and m.group(1), samples, rt.clip(res.err_text, 600)))
        P.fail_if_any(res.describe())

    def top_native():
        # top takes --native too: C functions rank among the busy lines, beside
        # the Python lines of the threads on a CPU.
        P = rt.Problems()
        t = target.get()
        res = rt.run([rt.PYSTROBE, 'top', '--native', '-d', '2.5', '-p', str(t.pid)], rt.T_RECORD)
        P.expect(res.rc == 0, 'exit status %s' % res.rc)
        rows = [l for l in res.out_text.splitlines() if re.match(r'^\s*\d+\.\d\s', l)]
        native = [l for l in rows if not re.search(r'\.py:\d+\)$', l)]
        P.expect(native, 'no native line among top\'s rows:\n      %s' % '\n      '.join(rows[:12]))
        P.expect(any(re.search(r' (fighter|compressor) \(', l) for l in rows),
                 'no Python line of a busy thread among top\'s rows:\n      %s' % '\n      '.join(rows[:12]))
        not_stopped(rt, P, t.pid)
        P.fail_if_any(res.describe())

    try:
        R.case(pfx + 'top', top_native)
        R.case(pfx + 'record-launched', record_launched)
        R.case(pfx + 'core', core_native)
        R.case(pfx + 'dump', dump_native)
        R.case(pfx + 'dump-compressor', dump_native_compressor)
        R.case(pfx + 'dump-text', dump_native_text)
        R.case(pfx + 'record', record_native)
    finally:
        for p in procs:
            p.close()
