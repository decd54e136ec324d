"""End-to-end checks of the test machine itself, run by run.py:
group(ctx, interps, rt), where rt is harness.py; and of the harnesses'
own verdicts (harness_group(ctx, interps, rt)).

With CI=true in the environment (.ci/run), the machine must be the image
the tests are written for: a missing interpreter, or gevent or eventlet
missing from Debian's python3, would otherwise only drop the tests that
need them (they are registered only where they can run) and the run would
pass with less coverage.  Outside CI nothing is registered: a developer's
machine may hold fewer interpreters.
"""
import os
import re
import sys

import e2e_greenlets
import interps as interps_mod

# What the machine image provides: pyenv builds of these (X.Y) ...
PYENV_VERSIONS = ('2.7', '3.6', '3.7', '3.8', '3.9', '3.10', '3.11', '3.12', '3.13')
# ... Debian's interpreter, and these libraries for it (python3-gevent, python3-eventlet,
# python3-aiohttp, python3-uvloop).
DEBIAN_PYTHON = '/usr/bin/python3'
DEBIAN_LIBS = ('gevent', 'eventlet', 'aiohttp', 'uvloop')
# ... and the Debian unstable root .ci/sid-root makes, with these (X.Y): the
# network or the suite can take them away, so a missing one SKIPs (ci/root-X.Y).
ROOT_VERSIONS = interps_mod.ROOT_VERSIONS


def in_ci():
    return os.environ.get('CI') == 'true'


def missing_interpreters(interps):
    """What the image provides that discovery did not find, as phrases."""
    missing = []
    pyenv = set(I.xy for I in interps if I.kind == 'pyenv')
    for xy in PYENV_VERSIONS:
        if xy not in pyenv:
            missing.append('pyenv Python %s' % xy)
    if not any(os.path.realpath(I.exe) == os.path.realpath(DEBIAN_PYTHON) for I in interps):
        missing.append('Debian\'s %s' % DEBIAN_PYTHON)
    return missing


def root_missing(interps, xy):
    """Why the root's Python xy was not found (a phrase), or None."""
    if any(I.kind == 'root' and I.xy == xy for I in interps):
        return None
    why = interps_mod.root_problem()
    if why:
        return why
    return '%s has no usable /usr/bin/python%s (unstable no longer carries it, or it does ' \
        'not run)' % (interps_mod.test_root(), xy)


def group(ctx, interps, rt):
    if not in_ci():
        return
    R = ctx.runner

    def interpreters():
        missing = missing_interpreters(interps)
        if missing:
            raise rt.Failure('CI=true and the machine image lacks %s (found: %s); install them '
                             '(pyenv install X.Y.Z, apt-get install python3)'
                             % (', '.join(missing), ' '.join(I.label for I in interps) or 'none'))
        # The root's, which may be missing (ci/root-X.Y says why): named here.
        found = [I.label for I in interps if I.kind == 'root']
        lacking = [xy for xy in ROOT_VERSIONS if root_missing(interps, xy)]
        print('ci/interpreters: the root %s gave %s%s' % (
            interps_mod.test_root(), ' '.join(found) or 'none',
            '; missing %s (see ci/root-*)' % ' '.join(lacking) if lacking else ''))
    R.case('ci/interpreters', interpreters, needs_pystrobe=False)

    for xy in ROOT_VERSIONS:
        def root_version(xy=xy):
            why = root_missing(interps, xy)
            if why:
                raise rt.Skip('no Python %s from the Debian root: %s' % (xy, why))
        R.case('ci/root-%s' % xy, root_version, needs_pystrobe=False)

    def root_greenlet():
        """The root's python3-greenlet sources, which the greenlet 3.3.2 tests build from:
        with the root there, they must be there (their SKIPs are allowed for a missing root
        only)."""
        src, whose = e2e_greenlets.greenlet3_sources(rt)
        root = interps_mod.test_root()
        if not os.path.isdir(os.path.join(root, 'usr')):
            raise rt.Skip('no Debian root, so no greenlet %s to build: %s'
                          % (e2e_greenlets.GREENLET3, whose))
        release = e2e_greenlets.sources_release(src)
        if release != e2e_greenlets.GREENLET3 or \
                not os.path.exists(os.path.join(src, 'greenlet.cpp')):
            raise rt.Failure('CI=true and the root %s has no greenlet %s sources in %s (found '
                             'release %s): the greenlets-*-%s tests SKIP; .ci/sid-root installs '
                             'python3-greenlet (a newer one: measure it and move GREENLET3 in '
                             'e2e_greenlets.py)' % (root, e2e_greenlets.GREENLET3, src, release,
                                                    e2e_greenlets.GREENLET3))
    R.case('ci/root-greenlet', root_greenlet, needs_pystrobe=False)

    def debian_libs():
        deb = [I for I in interps if os.path.realpath(I.exe) == os.path.realpath(DEBIAN_PYTHON)]
        if not deb:
            raise rt.Failure('no Debian %s (see ci/interpreters)' % DEBIAN_PYTHON)
        lacking = [lib for lib in DEBIAN_LIBS if not e2e_greenlets.importable(deb[0], lib)]
        if lacking:
            raise rt.Failure('CI=true and %s cannot import %s: their tests are not registered; '
                             'apt-get install %s' % (DEBIAN_PYTHON, ', '.join(lacking),
                                                     ' '.join('python3-' + x for x in lacking)))
    R.case('ci/debian-greenlet-libs', debian_libs, needs_pystrobe=False)


# ---------------------------------------------------------------------------
# The harnesses' own verdicts, against a pystrobe made wrong on purpose: a
# wrapper runs the real one and then spoils its folded output.  A harness
# that passes such a run is one that can pass by accident.

SPOIL = '''#!%(python)s
# The real pystrobe, then: %(what)s
import os, subprocess, sys
rc = subprocess.call([%(real)r] + sys.argv[1:])
out = sys.argv[sys.argv.index('-o') + 1] if '-o' in sys.argv else None
if out and out.endswith('.folded') and os.path.exists(out):
    with open(out) as f:
        lines = f.read().splitlines()
    # The deepest stack (the first of those): the first line may be a stack
    # with no Python frame, whose spoiling shows nothing wrong.
    depth = [len(line.rsplit(' ', 1)[0].split(';')) for line in lines]
    if depth and max(depth) > %(keep)d:
        i = depth.index(max(depth))
        stack, n = lines[i].rsplit(' ', 1)
        frames = stack.split(';')
        lines[i] = ';'.join(frames[:%(keep)d] + frames[%(keep)d + 1:]) + ' ' + n
    with open(out, 'w') as f:
        f.write('\\n'.join(lines) + '\\n')
sys.exit(rc)
'''


def spoiler(ctx, rt, keep, what):
    """A pystrobe that drops frame `keep` (0: the root) of its deepest stack."""
    path = os.path.join(ctx.mkdtemp('spoil-'), 'pystrobe')
    with open(path, 'w') as f:
        f.write(SPOIL % {'python': sys.executable, 'real': rt.PYSTROBE, 'keep': keep, 'what': what})
    os.chmod(path, 0o755)
    return path


def harness_group(ctx, interps, rt):
    R = ctx.runner
    py3 = [I for I in interps if I.ver >= (3, 11)]

    def stress_xfail():
        """A case failing only with a tolerated tag is XFAIL, not PASS; over its count, the run fails."""
        if not py3:
            raise rt.Failure('no 3.11+ interpreter to stress')
        I = py3[0]
        wrong = spoiler(ctx, rt, 1, 'the first frame under a thread root dropped (a rootless stack)')
        case = '%s/threads/attach' % I.label
        argv = [sys.executable, os.path.join(rt.ROOT, 'tests', 'stress', 'run.py'), '--pystrobe', wrong,
                '--versions', I.label, '--full', '--seconds', '1', '-j', '1', case]
        P = rt.Problems()
        ok = rt.run(argv + ['--xfail', 'rootless:1'], 300)
        P.expect(ok.rc == 0, '--xfail rootless:1: exit status %s, expected 0' % ok.rc)
        P.expect(re.search(r'^XFAIL %s: ' % re.escape(case), ok.out_text, re.M),
                 '--xfail rootless:1: no "XFAIL %s" line' % case)
        P.expect(re.search(r'^stress: 0 passed, 0 failed, 0 skipped, 1 xfailed', ok.out_text, re.M),
                 '--xfail rootless:1: the summary does not count 1 xfailed')
        over = rt.run(argv + ['--xfail', 'rootless:0'], 300)
        P.expect(over.rc == 1, '--xfail rootless:0: exit status %s, expected 1' % over.rc)
        P.expect(re.search(r'^FAIL xfail/rootless: ', over.out_text, re.M),
                 '--xfail rootless:0: no "FAIL xfail/rootless" line')
        strict = rt.run(argv, 300)
        P.expect(strict.rc == 1 and re.search(r'^FAIL %s: ' % re.escape(case), strict.out_text, re.M),
                 'no --xfail: exit status %s, expected 1 and "FAIL %s"' % (strict.rc, case))
        P.fail_if_any(ok.describe(3000) + over.describe(3000))
    R.case('suite/stress-xfail', stress_xfail)

    def bench_impossible():
        """bench/run.py's quick mode fails on a stack of fib.py that cannot be."""
        if not py3:
            raise rt.Failure('no 3.11+ interpreter to bench')
        wrong = spoiler(ctx, rt, 1, 'the first frame under <module> dropped (a stack fib.py cannot have)')
        env = dict(os.environ, BENCH_QUICK='1', BENCH_ONLY='consistency', BENCH_AUSTIN='none',
                   BENCH_VERSIONS=py3[0].label)
        argv = [sys.executable, os.path.join(rt.ROOT, 'bench', 'run.py')]
        P = rt.Problems()
        bad = rt.run(argv, 300, env=dict(env, BENCH_PYSTROBE=wrong))
        P.expect(bad.rc == 1, 'an impossible stack kept: exit status %s, expected 1' % bad.rc)
        P.expect('have a stack the program cannot have' in bad.out_text + bad.err_text,
                 'an impossible stack kept: not said')
        good = rt.run(argv, 300, env=dict(env, BENCH_PYSTROBE=rt.PYSTROBE))
        P.expect(good.rc == 0, 'the real pystrobe: exit status %s, expected 0' % good.rc)
        P.fail_if_any(bad.describe(2000) + good.describe(2000))
    R.case('suite/bench-impossible-stack', bench_impossible)

    def skips_ci():
        """tests/skips.py: with CI=true a skip not allowed fails; allowed ones and no CI pass."""
        d = ctx.mkdtemp('skips-')
        log = os.path.join(d, 'check.log')
        with open(log, 'w') as f:
            f.write('PASS a/b\nSKIP 3.11.7/greenlets-raw-dirs: not set\nSKIP test_x/y\n')
        allowed = os.path.join(d, 'allowed.log')
        with open(allowed, 'w') as f:
            f.write('PASS a/b\nSKIP 3.11.7/greenlets-raw-dirs: not set\n')
        script = os.path.join(rt.ROOT, 'tests', 'skips.py')
        P = rt.Problems()
        base = dict((k, v) for k, v in os.environ.items() if k != 'CI')
        for path, ci, rc in ((log, True, 1), (log, False, 0), (allowed, True, 0)):
            r = rt.run([sys.executable, script, path], 60, env=dict(base, CI='true') if ci else base)
            P.expect(r.rc == rc, '%s%s: exit status %s, expected %d:%s'
                     % ('CI=true ' if ci else '', os.path.basename(path), r.rc, rc, r.describe()))
            if rc:
                P.expect('FAIL test_x/y: ' in r.out_text, 'the skip not allowed is not named')
        P.fail_if_any()
    R.case('suite/skips-ci', skips_ci, needs_pystrobe=False)
