#!/usr/bin/env python3
"""End-to-end tests for pystrobe against every CPython interpreter found.

    python3 tests/e2e/run.py [-j N] [--list] [FILTER...]

Run from anywhere (uses ROOT/pystrobe, ROOT = two levels above this file).
FILTER: only tests whose name contains one of the substrings.  Prints
``PASS name``, ``FAIL name: why``, ``SKIP name: why`` and a summary line;
exit status 1 if anything failed.

Interpreters are discovered at run time: every ``versions/*/bin/pythonX.Y``
under the pyenv root ($PYENV_ROOT, else ``pyenv root``, else ~/.pyenv), any
other ``pythonX.Y`` on PATH (not pyenv shims), and ``/usr/bin/python3``,
deduplicated by realpath; then those of the Debian root .ci/sid-root makes
(tests/interps.py).

Targets live in tests/targets/.  Every asserted line carries a marker comment
(``# @name``); line numbers are read from the sources.  Besides those marker
expectations, each target can report what the interpreter itself sees
(``--oracle``: sys._current_frames() with co_qualname/co_name, co_filename,
f_lineno, native tids, thread names), and dumps are compared frame by frame
with that.  ``<interp>/target-selfcheck`` checks the oracle against the
markers, so a broken target is told apart from a broken pystrobe.

The harness (processes, the runner, targets, the oracle and the markers,
the common checks) is harness.py; the tests are in groups, one file each
(e2e_*.py; tests/README.md maps features to files).  This file only finds
the interpreters and runs the groups.

Stdlib only; runs on Python 3.6+.
"""
import argparse
import concurrent.futures
import os
import shutil
import signal
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import harness  # noqa: E402  (processes, runner, targets, oracle, checks)
from harness import Ctx, discover, kill_everything, Runner, _stopping  # noqa: E402
import e2e_basic  # noqa: E402  (the target's self-check, dump, record's modes, launch, venv, routes)
import e2e_errors  # noqa: E402  (how pystrobe fails: no process, not Python, usage errors)
import e2e_formats  # noqa: E402  (output formats, convert, diff)
import e2e_states  # noqa: E402  (thread states, modes, filters, subprocesses)
import e2e_core  # noqa: E402  (dump --core: gcore and kernel cores)
import e2e_top  # noqa: E402  (pystrobe top under a pseudo-terminal)
import e2e_native  # noqa: E402  (native frames: dump and record --native)
import e2e_nativestack  # noqa: E402  (native stacks, through tools/native-stack)
import e2e_locals  # noqa: E402  (dump --locals and --source)
import e2e_greenlets  # noqa: E402  (dump --greenlets)
import e2e_glrecord  # noqa: E402  (record --greenlets, locks)
import e2e_tasks  # noqa: E402  (asyncio tasks: dump --tasks, record --tasks, locks)
import e2e_truth  # noqa: E402  (shares against a target that times itself)
import e2e_outfiles  # noqa: E402  (output files where a user planted links, FIFOs; stdout errors)
import e2e_inputs  # noqa: E402  (hostile input files: convert, diff, dump --core)
import e2e_suite  # noqa: E402  (CI=true: the machine image is complete)
import e2e_ends  # noqa: E402  (how recordings end: signals, held threads, durations)
import e2e_hostile  # noqa: E402  (targets that corrupt their own objects, or lie in names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-j', type=int, default=2, help='parallel groups (default 2)')
    ap.add_argument('--list', action='store_true', help='list the test names, run nothing')
    ap.add_argument('filters', nargs='*', help='only tests whose name contains one of these')
    args = ap.parse_args()

    runner = Runner(args.filters, args.list)
    interps = discover()
    tmp = tempfile.mkdtemp(prefix='pystrobe-e2e-')
    os.chmod(tmp, 0o755)
    ctx = Ctx(runner, tmp)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    here = harness   # what the groups receive as rt
    groups = [lambda I=I: e2e_basic.group(ctx, I) for I in interps]
    groups += [lambda I=I: e2e_states.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_native.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_core.group(ctx, I, here) for I in interps]
    groups.append(lambda: e2e_top.group(ctx, interps, here))
    groups += [lambda I=I: e2e_locals.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_nativestack.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_greenlets.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_glrecord.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_tasks.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_truth.group(ctx, I, here) for I in interps]
    groups.append(lambda: e2e_outfiles.group(ctx, interps, here))
    groups += [lambda I=I: e2e_ends.group(ctx, I, here) for I in interps]
    groups += [lambda I=I: e2e_hostile.group(ctx, I, here) for I in interps]
    groups.insert(0, lambda: e2e_errors.group(ctx, interps))
    groups.insert(1, lambda: e2e_formats.group(ctx, interps))
    groups.insert(2, lambda: e2e_inputs.group(ctx, here))
    groups.insert(3, lambda: e2e_suite.group(ctx, interps, here))
    groups.append(lambda: e2e_suite.harness_group(ctx, interps, here))
    if not interps:
        runner.report('SKIP', 'interpreters', 'no Python interpreter found')
    interrupted = False
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j))
    try:
        futs = [pool.submit(g) for g in groups]
        for f in concurrent.futures.as_completed(futs):
            exc = f.exception()
            if exc is not None:
                runner.report('FAIL', 'driver', ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except KeyboardInterrupt:
        interrupted = True
        _stopping.set()
        for f in futs:
            f.cancel()
        kill_everything()
    finally:
        _stopping.set()
        kill_everything()
        if not interrupted:
            pool.shutdown(wait=True)
        kill_everything()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.list:
        return
    line = 'e2e: %d passed, %d failed, %d skipped; interpreters: %s' % (
        runner.passed, runner.failed, runner.skipped, ' '.join(I.label for I in interps))
    if interrupted:
        line += ' (INTERRUPTED)'
    print(line)
    sys.stdout.flush()
    if interrupted:
        os._exit(130)
    sys.exit(1 if runner.failed else 0)


if __name__ == '__main__':
    main()
