"""End-to-end tests of native stacks on every interpreter.  Run by run.py:
group(ctx, I, rt), where rt is harness.py.

build/native-stack (tools/native-stack.c: ptstop to hold each thread in
turn, the libdw unwinder to read its C stack) prints the native stack of
each thread of tests/targets/native.py: a main thread asleep in
time.sleep, and a thread compressing with zlib.  The frames asserted are
named by the interpreter's symbols and libc's and libz's exports, so they
hold with or without separate debug information; an interpreter whose
files lack time_sleep's symbol (Debian's stripped python3) shows it as
[python3.11+0xOFFSET] unless its debug information is installed.
"""
import os
import re
import select
import subprocess
import time

LIBC_SLEEPS = ('clock_nanosleep', '__select', 'select')
LIBC_CANCEL = ('__syscall_cancel_arch', '__internal_syscall_cancel', '__syscall_cancel')  # glibc 2.41+
ENTRIES = ('Py_BytesMain', '_Py_UnixMain', 'Py_Main')   # 3.8+, 3.7, 2.7 and 3.6
TRIES = 5     # the compressor is between two zlib calls now and then: look again


def parse(out):
    """native-stack's output -> {tid: [function or label, leaf first]}."""
    threads, cur = {}, None
    for line in out.splitlines():
        m = re.match(r'^thread (\d+): \d+ frames', line)
        if m:
            cur = threads.setdefault(int(m.group(1)), [])
            continue
        m = re.match(r'^    #\d+ +(.*)$', line)
        if m and cur is not None:
            label = m.group(1)
            cur.append(label if label.startswith('[') else label.split(' (')[0])
    return threads


def group(ctx, I, rt):
    R = ctx.runner
    tool = os.path.join(rt.ROOT, 'build', 'native-stack')
    target = os.path.join(rt.TARGETS, 'native.py')

    def time_sleep_has_symbol():
        paths = [I.host_exe] + [I.host_view(x) for x in [rt.libpython_of(I.exe)] if x]
        for path in paths:
            names = rt.elf_names(path)
            if 'time_sleep' in names['symtab'] | names['dynsym']:
                return True
        return False
    name = I.label + '/native-stacks'

    def test():
        if not os.access(tool, os.X_OK):
            raise rt.Skip('%s is missing (run make build/native-stack)' % tool)
        p = rt.spawn([I.exe, target], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            r, _, _ = select.select([p.stdout], [], [], 30)
            if not r or p.stdout.readline().strip() != b'READY':
                raise rt.Failure('target did not start')
            time.sleep(0.3)
            named = time_sleep_has_symbol()
            P = rt.Problems()
            seen_deflate = False
            for _ in range(TRIES):
                res = rt.run([tool, str(p.pid), '1'], timeout=120)
                out = res.out.decode('utf-8', 'replace')
                if res.rc != 0:
                    raise rt.Failure('native-stack exited %r: %s' % (res.rc, res.err.decode('utf-8', 'replace')))
                threads = parse(out)
                main = threads.get(p.pid, [])
                others = [v for k, v in threads.items() if k != p.pid]
                if len(threads) != 2 or len(main) < 6 or len(others[0]) < 4:
                    raise rt.Failure('expected two threads, got:\n' + out)
                worker = others[0]
                # glibc 2.41+: the sleep's own frames (cancellation) first.
                c = 0
                while c < len(main) - 2 and main[c] in LIBC_CANCEL:
                    c += 1
                P.expect(main[c] in LIBC_SLEEPS, 'main thread leaf %r, not a libc sleep' % main[c])
                if named:
                    P.expect(main[c + 1] == 'time_sleep', 'frame %d %r, not time_sleep' % (c + 1, main[c + 1]))
                else:   # named only if separate debug information is installed
                    P.expect(main[c + 1] == 'time_sleep' or re.match(r'^\[python[\d.]+\+0x[0-9a-f]+\]$', main[c + 1]),
                             'frame %d %r, neither time_sleep nor [pythonN.N+0x...]' % (c + 1, main[c + 1]))
                ev = 'PyEval_EvalFrameEx' if I.ver < (3, 0) else '_PyEval_EvalFrameDefault'
                P.expect(ev in main and ev in worker, '%s missing' % ev)
                P.expect(main[-3:] == ['__libc_start_call_main', '__libc_start_main', '_start'],
                         'main thread roots %r' % main[-3:])
                P.expect(any(f in main for f in ENTRIES), 'none of %s' % '/'.join(ENTRIES))
                P.expect(worker[-2:] == ['start_thread', '__clone3'], 'worker roots %r' % worker[-2:])
                if 'deflate' in worker:
                    seen_deflate = True
                if P.items or seen_deflate:
                    break
            P.expect(seen_deflate, 'deflate never on the worker\'s stack in %d tries' % TRIES)
            P.fail_if_any('\n' + out)
        finally:
            rt._kill(p)

    R.case(name, test, needs_pystrobe=False)
