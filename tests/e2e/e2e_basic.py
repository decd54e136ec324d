"""End-to-end tests of the basics on every interpreter: the target against its
own markers, dump (JSON, text), record's modes attached (default, --idle,
--threads, --function, --gil, every thread), a stack read while it moves
(record-consistency), ends (target exit, SIGINT, SIGTERM), launch mode and
its exit status, a venv, a deleted binary, each route to the runtime state,
a target in its own namespaces.  Run by run.py: group(ctx, I).
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

from harness import (
    check_all_threads_in_profile, check_busy_share, check_dump_json, check_dump_text,
    check_one_line_error, check_oracle_selfcheck, clip, dump, DURATION, elf_names, EXACT_SHARE,
    Failure, FIB_TORN, frames_diff, IDLE_MARK, IDLE_TICKS, _kill, _kill_pid, label, LAUNCH_BUSY,
    LaunchedTarget, Lazy, libpython_of, line_of, MAX_DEPTH, NamespacedTarget, nspid_map, only_file,
    oracle_frames, oracle_labels, oracle_name, parse_folded, Problems, PYSTROBE, python_binary_of,
    RATE, record, Result, run, SAMPLES_MIN, shq, Skip, spawn, strip_deleted, summary_samples,
    T_DUMP, T_RECORD, Target, THREADS_PY, top_stacks)
import stackcheck  # bench/ (the harness puts it on sys.path): which stacks of fib.py are possible


def group(ctx, I):
    R = ctx.runner
    ver = I.ver
    pfx = I.label + '/'
    targets = []

    def new_target(*a, **kw):
        t = Target(ctx.tmp, *a, **kw)
        targets.append(t)
        return t

    full = Lazy(lambda: new_target(I.exe, ver=ver).start())
    busyonly = Lazy(lambda: new_target(I.exe, ver=ver, only_busy=True).start())

    try:
        # -- the target itself, before pystrobe is involved
        def selfcheck():
            P = Problems()
            for fx in (full, busyonly):
                check_oracle_selfcheck(P, fx.get(), ver)
            P.fail_if_any()
        R.case(pfx + 'target-selfcheck', selfcheck, needs_pystrobe=False)

        # -- dump
        def dump_json():
            t = full.get()
            res = dump(t.pid)
            P = Problems()
            check_dump_json(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'dump-json', dump_json)

        def dump_text():
            t = full.get()
            res = dump(t.pid, json_=False)
            P = Problems()
            check_dump_text(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'dump-text', dump_text)

        # -- record, attach mode
        busy_leaf = label('busy', THREADS_PY, line_of('threads', 'busy'))
        busy_def = label('busy', THREADS_PY, line_of('threads', 'busy-def'))

        def rec_attach(name, extra, check):
            def fn():
                t = busyonly.get()
                d = ctx.mkdtemp('rec-')
                out = os.path.join(d, 'out.folded')
                res = record(['-f', 'folded', '-o', out, '-r', str(RATE), '-d', str(DURATION)]
                             + extra + ['-p', str(t.pid)])
                P = Problems()
                P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res, RATE, DURATION)
                stacks = parse_folded(P, out)
                if stacks:
                    check(P, t, stacks, res)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)

        def exact_busy_stack(P, t, stacks, prefix=(), function_mode=False, share=None):
            """The busy thread's stack is the most frequent; with share, it
            is that share of the samples at least."""
            want = tuple(prefix) + oracle_labels(t.by_key()['busy'], function_mode)
            best = max(stacks.items(), key=lambda kv: kv[1])[0] if stacks else None
            P.expect(best == want, 'most frequent stack %r, expected the busy thread\'s %r'
                     % (best and ';'.join(best), ';'.join(want)))
            total = sum(stacks.values())
            if share is not None and total:
                got = float(stacks.get(want, 0)) / total
                P.expect(got >= share, 'the busy thread\'s stack has %d of %d samples (%.1f%%), expected >= %g%%; top stacks:\n      %s'
                         % (stacks.get(want, 0), total, 100 * got, 100 * share, top_stacks(stacks)))

        def chk_default(P, t, stacks, res):
            check_busy_share(P, stacks, busy_leaf)
            exact_busy_stack(P, t, stacks, share=EXACT_SHARE)
            sleeper = oracle_labels(t.by_key()['sleeper'])
            P.expect(sleeper not in stacks, 'the sleeping thread\'s stack is in the profile without --idle')
        rec_attach('record-attach', [], chk_default)

        def chk_idle(P, t, stacks, res):
            # Every thread is sampled at every tick, on its one stack.
            m = re.search(r'in ([0-9.]+) s \(([0-9.]+) Hz of', res.err_text)
            ticks = float(m.group(1)) * float(m.group(2)) if m else 0
            P.expect(m is not None, 'no "in S s (H Hz of R Hz)" in the summary')
            for key in ('busy', 'sleeper', 'main'):
                want = oracle_labels(t.by_key()[key]) + (() if key == 'busy' else (IDLE_MARK,))
                got = stacks.get(want, 0)
                P.expect(IDLE_TICKS * ticks <= got <= ticks + 1,
                         'with --idle, %d samples of the %s thread\'s stack %r in %.0f ticks, expected %d%% of them at least; top stacks:\n      %s'
                         % (got, key, ';'.join(want), ticks, IDLE_TICKS * 100, top_stacks(stacks)))
        rec_attach('record-idle', ['--idle'], chk_idle)

        def chk_threads(P, t, stacks, res):
            o = t.by_key()['busy']
            root = 'thread busy (%d)' % o['tid']
            bad = [s for s in stacks if not s[0].startswith('thread ')]
            P.expect(not bad, '%d stacks not rooted in "thread NAME (TID)", e.g. %r'
                     % (len(bad), bad and ';'.join(bad[0])))
            check_busy_share(P, stacks, busy_leaf, thread_root=root)
            exact_busy_stack(P, t, stacks, prefix=(root,), share=EXACT_SHARE)
        rec_attach('record-threads', ['--threads'], chk_threads)

        def chk_function(P, t, stacks, res):
            check_busy_share(P, stacks, busy_def)
            exact_busy_stack(P, t, stacks, function_mode=True, share=EXACT_SHARE)
        rec_attach('record-function', ['--function'], chk_function)

        def chk_gil(P, t, stacks, res):
            check_busy_share(P, stacks, busy_leaf)
            exact_busy_stack(P, t, stacks, share=EXACT_SHARE)
        rec_attach('record-gil', ['--gil'], chk_gil)

        # -- fast recursion under a known stack: every stack kept possible,
        #    next to nothing dropped, and the depths as a run with target and
        #    profiler on one CPU gives them (nothing moves while it is read)
        def fib_run(pin, depth, n):
            pre = ['taskset', '-c', pin] if pin else []
            p = spawn(pre + [I.exe, stackcheck.WORKLOAD, str(depth), '120', str(n)],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            r, _, _ = select.select([p.stdout], [], [], 60)
            if not r or p.stdout.readline() != b'READY\n':
                _kill(p)
                raise Failure('fib workload did not start')
            out = os.path.join(ctx.mkdtemp('fib-'), 'out.folded')
            try:
                res = run(pre + [PYSTROBE, 'record', '-f', 'folded', '-o', out, '-r', '1000', '-d', '3',
                                 '-p', str(p.pid)], T_RECORD)
            finally:
                _kill(p)
            return res, out

        def consistency():
            depth, n = 20, 18
            res, out = fib_run(None, depth, n)
            P = Problems()
            P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
            stacks = parse_folded(P, out) or {}
            marks = stackcheck.markers()
            bad = [(st, c, stackcheck.check(list(st), stackcheck.WORKLOAD, depth, n, marks))
                   for st, c in stacks.items()]
            bad = [b for b in bad if b[2]]
            total = sum(stacks.values())
            # (ticks the sampler missed on a busy machine are not its to keep)
            m = re.search(r'(\d+) behind schedule', res.err_text)
            due = 3000 - (int(m.group(1)) if m else 0)
            P.expect(total >= SAMPLES_MIN * due, 'only %d samples kept of the %d ticks taken in 3 s at 1 kHz'
                     % (total, due))
            m = re.search(r'(\d+) torn stack', res.err_text)
            torn = int(m.group(1)) if m else 0
            P.expect(torn <= FIB_TORN * max(total, 1), '%d samples dropped as torn, of %d (at most %g%%)'
                     % (torn, total, FIB_TORN * 100))
            P.expect(not bad, '%d of %d samples are impossible stacks (torn), e.g. %s: %s' % (
                sum(c for _, c, _ in bad), total, bad[0][2] if bad else '',
                clip(';'.join(bad[0][0]), 400) if bad else ''))
            # The truth: the same on one CPU.  (<= 3.10 keeps a stack only
            # from the innermost caller that did not move between two reads
            # of the frame objects: fast recursion comes out shallower
            # there, within wider tolerances; README, "Torn stacks".)
            res1, out1 = fib_run('0', depth, n)
            P.expect(res1.rc == 0, 'on one CPU: exit status %s, expected 0' % res1.rc)
            truth = parse_folded(P, out1) or {}
            got, want = stackcheck.depths(stacks), stackcheck.depths(truth)
            why = stackcheck.compare_depths(got, want, I.ver)
            P.expect(not why, 'fib depths %s; on one CPU %s: %s'
                     % (stackcheck.describe_depths(got), stackcheck.describe_depths(want), why))
            P.fail_if_any(res.describe() + res1.describe())
        R.case(pfx + 'record-consistency', consistency)

        def rec_all_threads():
            t = full.get()
            d = ctx.mkdtemp('rec-')
            out = os.path.join(d, 'out.folded')
            res = record(['-f', 'folded', '-o', out, '-r', '50', '-d', str(DURATION), '--idle', '--threads',
                          '-p', str(t.pid)])
            P = Problems()
            P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
            summary_samples(P, res)
            stacks = parse_folded(P, out)
            if stacks:
                check_all_threads_in_profile(P, t.oracle, stacks, strict_roots=True)
            only_file(P, d, 'out.folded')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-idle-threads-all', rec_all_threads)

        # -- record stops cleanly, and still writes the profile, when the
        # target exits or when pystrobe gets SIGINT or SIGTERM
        def rec_stop(how):
            def fn():
                d = ctx.mkdtemp('stop-')
                out = os.path.join(d, 'out.folded')
                args = ['--only-busy'] + (['--exit-after', '2'] if how == 'target-exit' else [])
                t = new_target(I.exe, args=args, ver=ver, only_busy=True)
                t.wait_ready()
                t.take_oracle()
                p = spawn([PYSTROBE, 'record', '-f', 'folded', '-o', out, '-r', '100', '-p', str(t.pid)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                t0 = time.time()
                if how != 'target-exit':
                    time.sleep(1.5)
                    p.send_signal(signal.SIGINT if how == 'sigint' else signal.SIGTERM)
                try:
                    outs, errs = p.communicate(timeout=15)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    _kill(p)
                    outs, errs = p.communicate()
                    timed_out = True
                res = Result(p.args, p.returncode, outs, errs, time.time() - t0, timed_out)
                P = Problems()
                P.expect(not timed_out, 'pystrobe did not stop within 15 s')
                P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res)
                stacks = parse_folded(P, out)
                if stacks:
                    check_busy_share(P, stacks, busy_leaf)
                    exact_busy_stack(P, t, stacks)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            return fn
        for how in ('target-exit', 'sigint', 'sigterm'):
            R.case(pfx + 'record-stop-' + how, rec_stop(how))

        # -- record, launch mode
        def rec_launch_all():
            d = ctx.mkdtemp('launch-')
            out = os.path.join(d, 'out.folded')
            lt = LaunchedTarget(ctx.tmp, ['-f', 'folded', '-o', out, '-r', '50', '-d', '60', '--idle', '--threads'],
                                I.exe, ['--exit-after', str(LAUNCH_BUSY)], ver=ver, timeout=T_RECORD + LAUNCH_BUSY)
            try:
                lt.wait_ready()
                lt.take_oracle()
                res = lt.finish()
            finally:
                lt.close()
            P = Problems()
            P.expect(not res.timed_out, 'did not return when the command exited')
            P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
            summary_samples(P, res)
            stacks = parse_folded(P, out)
            if stacks:
                check_all_threads_in_profile(P, lt.oracle, stacks, strict_roots=False)
            only_file(P, d, 'out.folded')
            P.fail_if_any(res.describe(out_limit=300))
        R.case(pfx + 'record-launch-idle-threads-all', rec_launch_all)

        def rec_launch(name, code):
            def fn():
                d = ctx.mkdtemp('launch-')
                out = os.path.join(d, 'out.folded')
                pidfile = os.path.join(ctx.tmp, 'launch-%s-%s.pid' % (I.label, name))
                cmd = [I.exe, THREADS_PY, '--only-busy', '--exit-after', str(LAUNCH_BUSY),
                       '--exit-code', str(code), '--pidfile', pidfile, '--max-life', '120']
                try:
                    res = record(['-f', 'folded', '-o', out, '-r', str(RATE), '-d', '60', '--'] + cmd,
                                 timeout=T_RECORD + LAUNCH_BUSY)
                finally:
                    try:
                        with open(pidfile) as f:
                            pid = int(f.read())
                        _kill_pid(pid, 'threads.py')
                    except (OSError, ValueError):
                        pass
                P = Problems()
                P.expect(not res.timed_out, 'did not return when the command exited (killed after %ds)'
                         % (T_RECORD + LAUNCH_BUSY))
                if code == 0:
                    P.expect(res.rc == 0, 'exit status %s, expected 0' % res.rc)
                summary_samples(P, res)
                P.expect(re.search(r'\bexit', res.err_text, re.I) and re.search(r'\b%d\b' % code, res.err_text),
                         'summary does not report the command\'s exit status %d' % code)
                stacks = parse_folded(P, out)
                if stacks:
                    check_busy_share(P, stacks, busy_leaf)
                    if code == 0 and busyonly.done and busyonly.error is None:
                        exact_busy_stack(P, busyonly.get(), stacks)
                only_file(P, d, 'out.folded')
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)
        rec_launch('record-launch', 0)
        rec_launch('record-launch-exit-status', 7)

        # -- venv
        def venv_dump():
            if ver[0] < 3:
                raise Skip('no venv module in Python %d.%d' % ver[:2])
            d = ctx.mkdtemp('venv-')
            vdir = os.path.join(d, 'venv')
            r = run([I.exe, '-m', 'venv', '--without-pip', vdir], timeout=120)
            vpy = os.path.join(vdir, 'bin', 'python')
            # A root interpreter's venv links to the root's binary: it runs in the root.
            if r.rc != 0 or not os.path.lexists(vpy):
                raise Skip('python -m venv failed: %s' % r.describe())
            t = new_target(I.wrap(vpy), ver=ver).start()
            P = Problems()
            P.expect(t.oracle['executable'] == vpy, 'setup: sys.executable %r, not the venv\'s' % t.oracle['executable'])
            res = dump(t.pid)
            check_dump_json(P, t, ver, res)
            P.fail_if_any(res.describe(out_limit=600))
        if ver >= (3, 3):   # venv is in the standard library from 3.3
            R.case(pfx + 'venv-dump', venv_dump)

        # -- deleted binary: the libpython copy (shared builds) or the executable copy (static)
        def deleted_dump():
            lib = libpython_of(I.exe)
            d = ctx.mkdtemp('deleted-')
            if lib:
                copy = os.path.join(d, os.path.basename(lib))
                shutil.copy2(lib, copy)
                env = dict(os.environ, LD_LIBRARY_PATH=d)
                exe = I.exe
            else:
                copy = os.path.join(d, 'python3')
                shutil.copy2(I.host_exe, copy)
                env = None
                exe = I.wrap(copy)
            t = new_target(exe, ver=ver, env=env)
            t.wait_ready()
            P = Problems()
            mapped = python_binary_of(t.pid) if lib else os.readlink('/proc/%d/exe' % t.pid)
            if mapped != I.host_view(copy):
                raise Failure('setup: the target runs %r, not the copy %r' % (mapped, copy))
            os.unlink(copy)
            t.take_oracle()
            res = dump(t.pid)
            check_dump_json(P, t, ver, res, deleted_ok=True)
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'deleted-binary-dump', deleted_dump)

        # -- each route to the runtime state on its own (PYSTROBE_ROUTE): the
        # symbol tables, the .PyRuntime section and the scan of .data/.bss
        def routes_dump():
            t = full.get()
            info = elf_names(strip_deleted(python_binary_of(t.pid)))
            sym = '_PyRuntime' if ver >= (3, 7) else 'interp_head'
            works = {'dynsym': sym in info['dynsym'], 'symtab': sym in info['symtab'],
                     'section': ver >= (3, 7) and '.PyRuntime' in info['sections'], 'scan': True}
            P = Problems()
            for route in ('dynsym', 'symtab', 'section', 'scan'):
                res = run([PYSTROBE, 'dump', '-p', str(t.pid), '--json'], T_DUMP,
                          env=dict(os.environ, PYSTROBE_ROUTE=route))
                sub = Problems()
                if works[route]:
                    check_dump_json(sub, t, ver, res)
                else:
                    check_one_line_error(sub, res, 1, words=['not a Python process'])
                for item in sub.items:
                    P.expect(False, 'route %s (%s): %s%s' % (route, 'usable' if works[route] else 'absent',
                                                             item, res.describe(out_limit=300)))
            P.fail_if_any()
        R.case(pfx + 'routes-dump', routes_dump)

        # -- a container: the interpreter only exists in the target's own mount
        # namespace, and the target is pid 1 of its own PID namespace
        def namespace_dump():
            if os.geteuid() != 0 or not shutil.which('unshare'):
                raise Skip('needs root and unshare(1) to make namespaces')
            lib = libpython_of(I.exe)
            d = ctx.mkdtemp('ns-')
            inner = os.path.join(d, 'only-inside')
            os.mkdir(inner)
            src = lib or I.host_exe
            copy = os.path.join(inner, os.path.basename(src))
            script = 'mount -t tmpfs none "$1" && cp "$2" "$3" && shift 3 && '
            if lib:
                script += 'LD_LIBRARY_PATH=%s exec "$@"' % shq(inner)
                argv0 = I.exe
            else:
                script += 'exec "$@"'
                argv0 = I.wrap(copy)
            wrapper = os.path.join(d, 'in-namespaces.sh')
            with open(wrapper, 'w') as f:
                f.write('#!/bin/sh\nexec unshare --mount --pid --fork --mount-proc sh -c %s sh %s %s %s "$@"\n'
                        % (shq(script), shq(inner), shq(src), shq(copy)))
            os.chmod(wrapper, 0o755)
            t = NamespacedTarget(ctx.tmp, wrapper, argv0, ver)
            targets.append(t)
            t.wait_ready()
            P = Problems()
            P.expect(not os.listdir(inner), 'setup: %s is not empty outside the namespace' % inner)
            P.expect(python_binary_of(t.pid) == I.host_view(copy), 'setup: the target maps %r, not %r'
                     % (python_binary_of(t.pid), I.host_view(copy)))
            t.take_oracle()
            ns = nspid_map(t.pid)
            res = dump(t.pid)
            if P.expect(res.rc == 0, 'dump failed'):
                doc = json.loads(res.out.decode('utf-8'))
                got = dict((th.get('name'), th) for th in doc['threads'])
                for o in t.oracle['threads']:
                    name = oracle_name(o)
                    th = got.get(name)
                    if not P.expect(th is not None, 'thread %r missing: got %r' % (name, sorted(got))):
                        continue
                    P.expect(th['tid'] == ns.get(o['tid']), 'thread %r: tid %r, expected %r (%r inside)'
                             % (name, th['tid'], ns.get(o['tid']), o['tid']))
                    want = oracle_frames(o)[:MAX_DEPTH]
                    have = [(f['function'], f['file'], f['line']) for f in th['frames']]
                    dfr = frames_diff(want, have)
                    P.expect(dfr is None, 'thread %r: %s' % (name, dfr))
            P.fail_if_any(res.describe(out_limit=600))
        R.case(pfx + 'namespace-dump', namespace_dump)
    finally:
        for t in targets:
            t.close()
