"""End-to-end tests of dump --greenlets.  Run by run.py: group(ctx, I, rt),
where rt is harness.py (its helpers: Problems, run, line_of...).

Target tests/targets/greenlets.py (gevent: 60 greenlets parked on a
Semaphore, 30 on an Event, 10 asleep, the main greenlet asleep and the Hub
running): its tests are registered for the interpreters that import gevent
(Debian's python3 with python3-gevent and greenlet 2.0.2; the Debian
unstable root's python3.14 and python3.15 with greenlet 3.3.2).

Target tests/targets/raw_greenlets.py (greenlet alone: 50 parked three
frames deep, 10 not started, 5 dead, the main one parked and one running)
runs on every interpreter:
  - raw-2.0.2: with greenlet 2.0.2 on 2.7-3.11: the interpreter's own when it
    has it, else built here from Debian's sources of it (python3-greenlet
    ships greenlet.cpp and its headers) with one g++ per interpreter, cached
    under build/greenlet-2.0.2/; a failed build SKIPs with the reason;
  - raw-3.3.2: with greenlet 3.3.2 on 3.7+: the interpreter's own when it has
    it (the root's 3.14 and 3.15), else built here from the sources Debian
    unstable's python3-greenlet ships in the root .ci/sid-root makes
    ($PYSTROBE_TEST_ROOT), cached under build/greenlet-3.3.2/; SKIP with the
    reason when the root has none;
  - unknown-release (up to 3.11: greenlet 2.0.2), unknown-release-3.3.2 (3.12+):
    that greenlet with its __version__ edited to one the table does not have;
  - raw-dirs: with each package directory named in PYSTROBE_TEST_GREENLET_DIRS
    (dir1:dir2, each holding a built greenlet/ package) whose module was
    built for this interpreter; SKIP when unset or none fits.
Target tests/targets/deep_greenlets.py (greenlets parked 150 and 600 frames
deep, so that on 3.11+ their frames fill several data-stack chunks, beside
greenlets parked one frame deep): every greenlet's whole stack, exactly, in
the JSON and text dumps and in record --greenlets:
  - deep-gevent: under gevent (where gevent imports);
  - deep-2.0.2, deep-3.3.2, deep-dirs: greenlet alone, from the same sources as
    raw-2.0.2, raw-3.3.2 and raw-dirs.
Asserted lines carry "# @name" markers in the targets.
"""
import collections
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import e2e_states

TARGET = 'greenlets.py'
RAW_TARGET = 'raw_greenlets.py'
LOCKED, WAITING, SLEEPING = 60, 30, 10
RAW_PARKED, RAW_NEW, RAW_DEAD = 50, 10, 5
SUPPORTED_GREENLET = '2.0.2'
GREENLET_SOURCES = '/usr/lib/python3/dist-packages/greenlet'
DIRS_VAR = 'PYSTROBE_TEST_GREENLET_DIRS'
# greenlet 3.x: the sources Debian unstable's python3-greenlet ships, in the
# root made by .ci/sid-root (the root's python3.14 and python3.15 import it).
GREENLET3 = '3.3.2'
ROOT_GREENLET = '/usr/lib/python3/dist-packages/greenlet'


def greenlet_release(exe):
    """greenlet's release as exe imports it with gevent, or None."""
    try:
        out = subprocess.run([exe, '-c', 'import gevent, greenlet; print(greenlet.__version__)'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().strip() if out.returncode == 0 else None


def interp_facts(exe):
    """(include dir, extension suffix, own greenlet release or None) of exe, or None."""
    code = ('import sysconfig\n'
            'print(sysconfig.get_paths()["include"])\n'
            'print(sysconfig.get_config_var("EXT_SUFFIX") or sysconfig.get_config_var("SO"))\n'
            'try:\n    import greenlet; print(greenlet.__version__)\n'
            'except Exception:\n    print("")\n')
    try:
        out = subprocess.run([exe, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.decode().split('\n')
    if out.returncode != 0 or len(lines) < 3:
        return None
    return lines[0], lines[1], lines[2] or None


def sources_release(src):
    """__version__ in the greenlet sources' __init__.py, or None."""
    try:
        with open(os.path.join(src, '__init__.py')) as f:
            for line in f:
                if line.startswith('__version__'):
                    return line.split('=')[1].strip().strip('\'"')
    except OSError:
        pass
    return None


def ldd_lines(exe):
    """ldd's lines for exe, or [] when it cannot tell."""
    try:
        out = subprocess.run(['ldd', exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.decode('utf-8', 'replace').split('\n') if out.returncode == 0 else []


def greenlet3_sources(rt):
    """The directory of greenlet 3.x's sources in the test root (Debian unstable's
    python3-greenlet), and the phrase that says where they come from (or why there
    is no root)."""
    root = rt.test_root()
    whose = 'Debian unstable\'s python3-greenlet, in the root .ci/sid-root makes; ' \
        '$PYSTROBE_TEST_ROOT says where'
    if not os.path.isdir(os.path.join(root, 'usr')):
        whose = rt.root_problem(root) or whose
    return root.rstrip('/') + ROOT_GREENLET, whose


def build_greenlet(rt, I, facts, release=SUPPORTED_GREENLET, src=GREENLET_SOURCES,
                   whose='Debian python3-greenlet'):
    """The directory of greenlet `release` built for I from the sources in src (cached
    under build/greenlet-RELEASE/), or rt.Skip saying why not.  facts: include directory
    (as this machine sees it), extension suffix.  An interpreter of a root (I.root) is
    built for against the root's headers, into a directory the root sees at the same
    path (the repository)."""
    inc, suffix = facts[0], facts[1]
    if sources_release(src) != release or not os.path.exists(os.path.join(src, 'greenlet.cpp')):
        raise rt.Skip('no greenlet %s sources in %s (%s)' % (release, src, whose))
    gxx = shutil.which('g++')
    if not gxx:
        raise rt.Skip('no g++ to build greenlet %s for %s' % (release, I.exe))
    # A root's pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h>: found in the
    # root after this machine's own C library headers.
    incs = ['-I' + inc] + (['-idirafter', os.path.join(I.root, 'usr', 'include')] if I.root
                           else [])
    key = hashlib.sha1(os.path.realpath(I.exe).encode()).hexdigest()[:10]
    base = os.path.join(rt.ROOT, 'build', 'greenlet-' + release)
    final = os.path.join(base, '%d.%d-%s' % (I.ver[0], I.ver[1], key))
    so = os.path.join(final, 'greenlet', '_greenlet' + suffix)
    if os.path.exists(so):
        return final
    tmp = final + '.tmp%d' % os.getpid()
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, 'greenlet'))
    shutil.copy(os.path.join(src, '__init__.py'), os.path.join(tmp, 'greenlet'))
    argv = [gxx, '-O1', '-shared', '-fPIC', '-fno-strict-aliasing', '-w'] + incs + [
            os.path.join(src, 'greenlet.cpp'),
            '-o', os.path.join(tmp, 'greenlet', '_greenlet' + suffix)]
    t0 = time.time()
    try:
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise rt.Skip('building greenlet %s for %s failed: %s' % (release, I.exe, e))
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        first = [ln for ln in res.stdout.decode('utf-8', 'replace').split('\n') if 'error' in ln]
        raise rt.Skip('building greenlet %s for %s failed: %s' % (
            release, I.exe, (first or ['g++ exit %d' % res.returncode])[0][:300]))
    with open(os.path.join(tmp, 'build-seconds'), 'w') as f:
        f.write('%.2f\n' % (time.time() - t0))
    try:
        os.rename(tmp, final)
    except OSError:     # built meanwhile by another run
        shutil.rmtree(tmp, ignore_errors=True)
    return final


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
            (1, 'running', [('Hub.run', 'gevent/hub.py', None)]),
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
            P.expect(len(summ) == 5 and summ[-1].startswith('  1 greenlet running at `Hub.run ('),
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
            words = ('greenlet', str(t.pid))
            rt.check_one_line_error(P, res, 1, words=words)
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def raw_check(pkgdir, release, env=()):
        """The raw target with greenlet from pkgdir (None: the interpreter's own)."""
        rpath = os.path.join(rt.TARGETS, RAW_TARGET)
        argv = [I.exe, rpath, '--max-life', str(rt.TARGET_LIFE)]
        env = list(env) + (['PYTHONPATH=' + pkgdir] if pkgdir else [])
        if env:
            argv = ['env'] + env + argv
        t = e2e_states.Proc(rt, ctx, argv, RAW_TARGET)
        try:
            info = t.expect_line('READY')
            P = rt.Problems()
            P.expect(info['pid'] == t.pid, 'target reported pid %r, not %d' % (info['pid'], t.pid))
            P.expect(info['greenlet'] == release, 'target runs greenlet %r, expected %r'
                     % (info['greenlet'], release))
            where = ' (greenlet %s%s)' % (release, ' from ' + pkgdir if pkgdir else '')
            frames = [(fn, rpath, rt.line_of(rpath, fn)) for fn in ('leaf', 'mid', 'worker')]
            main_frames = [('main', rpath, rt.line_of(rpath, 'main')),
                           ('<module>', rpath, rt.line_of(rpath, 'module'))]
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets', '--json'],
                         rt.T_DUMP)
            if res.rc != 0:
                raise rt.Failure('dump --greenlets --json failed%s:\n%s'
                                 % (where, res.describe(out_limit=2000)))
            doc = json.loads(res.out_text)
            got = [(g['count'], g['state'],
                    [(fr.get('function'), fr.get('file'), fr.get('line')) for fr in g['frames']])
                   for g in doc['greenlet_summary']]
            # The two groups of one come in the order the greenlets were found.
            want = [(RAW_PARKED, 'parked', frames), (RAW_NEW, 'not started', []),
                    (RAW_DEAD, 'dead', [])]
            # The running one's frames are its thread's (it sleeps in park).
            run_frames = [(fn, rpath, rt.line_of(rpath, fn)) for fn in ('park', 'run')]
            ones = sorted([(1, 'parked', main_frames), (1, 'running', run_frames)])
            P.expect(got[:3] == want and sorted(got[3:]) == ones,
                     'summary%s %r, expected %r then %r' % (where, got, want, ones))
            gl = doc['greenlets']
            P.expect(len(gl) == RAW_PARKED + RAW_NEW + RAW_DEAD + 2,
                     '%d greenlets%s' % (len(gl), where))
            mains = [g['state'] for g in gl if g['main']]
            P.expect(mains == ['parked'], 'main greenlets%s: %r' % (where, mains))
            P.expect(all('error' not in g for g in gl), 'unreadable stacks%s' % where)
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets'], rt.T_DUMP)
            lines = res.out_text.split('\n')
            def chain(frs):
                return ' <- '.join('`%s (%s:%d)`' % fr for fr in frs)
            text = ['  %d greenlets parked at %s' % (RAW_PARKED, chain(frames)),
                    '  %d greenlets not started' % RAW_NEW, '  %d greenlets dead' % RAW_DEAD]
            text_ones = sorted(['  1 greenlet parked at ' + chain(main_frames),
                                '  1 greenlet running at ' + chain(run_frames)])
            if P.expect(res.rc == 0 and 'Greenlet summary:' in lines,
                        'text dump%s: no summary' % where):
                summ = [ln for ln in lines[lines.index('Greenlet summary:') + 1:] if ln]
                P.expect(summ[:3] == text and sorted(summ[3:]) == text_ones,
                         'text summary%s %r, expected %r then %r'
                         % (where, summ, text, text_ones))
                main = [ln for ln in lines if ln.startswith('Greenlet 0x') and ' main ' in ln]
                P.expect(len(main) == 1 and main[0].endswith(' main (parked)'),
                         'main greenlet lines%s: %r' % (where, main))
            P.fail_if_any(res.describe(out_limit=800))
            # record --greenlets: every census counts each greenlet at its stack.
            out = os.path.join(ctx.mkdtemp('rawrec-'), 'out.folded')
            res = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '-d', '1', '--greenlets',
                          '-o', out], rt.T_RECORD)
            m = re.search(r'greenlets: (\d+) censuses .* ([\d.]+) greenlets on average '
                          r'\(([\d.]+) parked, ([\d.]+) running\), at most \d+; not counted: '
                          r'([\d.]+) not started, ([\d.]+) dead', res.err_text)
            if not P.expect(res.rc == 0 and m, 'record --greenlets%s: no census line' % where):
                P.fail_if_any(res.describe())
            n = int(m.group(1))
            P.expect([float(x) for x in m.groups()[1:]] ==
                     [RAW_PARKED + 2, RAW_PARKED + 1, 1, RAW_NEW, RAW_DEAD],
                     'census%s: %r' % (where, m.groups()))
            folded = {}
            with open(out) as f:
                for ln in f.read().splitlines():
                    stack, _, k = ln.rpartition(' ')
                    folded[stack] = int(k)
            lab = [rt.label(*fr) for fr in frames]
            mlab = [rt.label(*fr) for fr in main_frames]
            park = [rt.label(fn, rpath, rt.line_of(rpath, fn)) for fn in ('park', 'run')]
            want = {';'.join(['greenlet parked'] + lab[::-1]): RAW_PARKED * n,
                    ';'.join(['greenlet parked'] + mlab[::-1]): n,
                    ';'.join(['greenlet running'] + park[::-1]): n}
            got = dict((k, v) for k, v in folded.items() if k.startswith('greenlet '))
            P.expect(got == want, 'record --greenlets%s: %r, expected %r' % (where, got, want))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def facts():
        if 'facts' not in state:
            state['facts'] = interp_facts(I.exe)
            if state['facts'] and I.root:   # a root interpreter's headers are in its root
                state['facts'] = (I.host_view(state['facts'][0]),) + state['facts'][1:]
        if state['facts'] is None:
            raise rt.Skip('cannot ask %s for its include directory' % I.exe)
        return state['facts']

    def raw_202():
        """greenlet 2.0.2, the interpreter's own or built here from Debian's sources."""
        if I.ver[:2] >= (3, 12):
            raise rt.Skip('greenlet %s does not support Python %d.%d (see greenlets-raw-dirs)'
                          % (SUPPORTED_GREENLET, I.ver[0], I.ver[1]))
        f = facts()
        if f[2] == SUPPORTED_GREENLET:
            raw_check(None, SUPPORTED_GREENLET)
        else:
            raw_check(build_greenlet(rt, I, f), SUPPORTED_GREENLET)

    def greenlet3():
        """The package directory of greenlet 3.3.2 for I: None for the interpreter's own
        (the root's 3.14 and 3.15), else built here from the root's sources of it."""
        f = facts()
        if f[2] == GREENLET3:
            return None
        src, whose = greenlet3_sources(rt)
        try:
            return build_greenlet(rt, I, f, GREENLET3, src, whose)
        except rt.Skip as e:
            # Under CI the sources are there whenever the root is (ci/root-greenlet):
            # a build that fails then is lost coverage of greenlet 3.x, not a skip.
            if os.environ.get('CI') == 'true' and \
                    os.path.exists(os.path.join(src, 'greenlet.cpp')):
                raise rt.Failure('greenlet %s did not build for %s: %s' % (GREENLET3, I.exe, e))
            raise

    def raw_3():
        """greenlet 3.3.2 (3.7+), the interpreter's own or built from the root's sources."""
        raw_check(greenlet3(), GREENLET3)

    def raw_stripped():
        """2.7 and 3.6 keep the generation lists in statics: with the interpreter's library
        stripped of .symtab, found from the pointer it exports to them."""
        if I.ver[:2] not in ((2, 7), (3, 6)):
            raise rt.Skip('only 2.7 and 3.6 keep the collector lists in statics')
        # "libpython2.7.so.1.0 => /path/libpython2.7.so.1.0 (0x...)"
        lib = [ln.split('=>')[1].split()[0] for ln in ldd_lines(I.exe)
               if 'libpython' in ln and '=> /' in ln]
        if not lib:
            raise rt.Skip('%s has no shared libpython' % I.exe)
        strip = shutil.which('strip')
        if not strip:
            raise rt.Skip('no strip(1) to strip %s' % lib[0])
        libdir = ctx.mkdtemp('stripped-')
        copy = os.path.join(libdir, os.path.basename(lib[0]))
        shutil.copy(lib[0], copy)
        subprocess.run([strip, '--strip-all', copy], check=True, timeout=120)
        raw_check(build_greenlet(rt, I, facts()), SUPPORTED_GREENLET,
                  env=['LD_LIBRARY_PATH=' + libdir])

    def unknown_release():
        """A greenlet whose __version__ the table does not know: one line saying so, exit 1.
        Up to 3.11 greenlet 2.0.2 made 2.0.99, from 3.12 3.3.2 made 3.3.99."""
        f = facts()
        if I.ver[:2] < (3, 12):
            release, fake, first = SUPPORTED_GREENLET, '2.0.99', '2.0.0'
            src = GREENLET_SOURCES if f[2] == SUPPORTED_GREENLET else \
                os.path.join(build_greenlet(rt, I, f), 'greenlet')
        else:
            release, fake = GREENLET3, '3.3.99'
            built = greenlet3()
            src = os.path.join(built, 'greenlet') if built else greenlet_package_dir()
            # The first release the table has for this Python.
            first = {(3, 12): '3.0.0', (3, 13): '3.1.0'}.get(I.ver[:2], '3.2.2')
        pkgdir = ctx.mkdtemp('greenlet-')
        dst = os.path.join(pkgdir, 'greenlet')
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns('tests', '__pycache__', '*.cpp',
                                                                '*.hpp', '*.h', 'platform'))
        init = os.path.join(dst, '__init__.py')
        with open(init) as fi:
            text = fi.read()
        edited = re.sub(r'^__version__ = [\'"]%s[\'"]$' % re.escape(release),
                        "__version__ = '%s'" % fake, text, count=1, flags=re.M)
        if edited == text:
            raise rt.Failure('%s has no __version__ %s to edit' % (init, release))
        with open(init, 'w') as fo:
            fo.write(edited)
        argv = ['env', 'PYTHONPATH=' + pkgdir, I.exe, os.path.join(rt.TARGETS, RAW_TARGET),
                '--max-life', str(rt.TARGET_LIFE)]
        t = e2e_states.Proc(rt, ctx, argv, RAW_TARGET)
        try:
            info = t.expect_line('READY')
            P = rt.Problems()
            P.expect(info['greenlet'] == fake, 'target runs greenlet %r' % info['greenlet'])
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets'], rt.T_DUMP)
            rt.check_one_line_error(P, res, 1, words=('greenlet %s on Python %d.%d is not '
                                                      'supported' % (fake, I.ver[0], I.ver[1]),
                                                      '(known there: %s' % first))
            P.fail_if_any(res.describe())
        finally:
            t.close()

    def raw_dirs():
        """Every package directory of PYSTROBE_TEST_GREENLET_DIRS built for this interpreter."""
        for d, release in greenlet_dirs():
            raw_check(d, release)

    def deep_check(lib, pkgdir=None, release=None):
        """deep_greenlets.py under lib ('gevent' or 'greenlet', greenlet from pkgdir, None:
        the interpreter's own): every greenlet with its whole stack, in the JSON and text
        dumps and in record --greenlets."""
        dpath = os.path.join(rt.TARGETS, DEEP)
        argv = [I.exe, dpath, '--lib', lib, '--max-life', str(rt.TARGET_LIFE)]
        if pkgdir:
            argv = ['env', 'PYTHONPATH=' + pkgdir] + argv
        pkg = lib_info(I.exe, 'gevent')[1] if lib == 'gevent' else None
        want = deep_expected(rt, lib, pkg, I.root)
        t = e2e_states.Proc(rt, ctx, argv, DEEP)
        try:
            info = t.expect_line('READY')
            # The running greenlet's stack is its thread's: wait until it is back in its wait
            # (the main greenlet in time.sleep; gevent's hub in epoll_wait, after the callback
            # that said READY).
            e2e_states.wait_syscalls(rt, t.pid, {t.pid: rt.SLEEP_SYSCALLS if lib == 'greenlet'
                                                 else EPOLL_WAITS})
            P = rt.Problems()
            where = ' (%s, greenlet %s%s)' % (lib, info['greenlet'],
                                              ' from ' + pkgdir if pkgdir else '')
            P.expect(info['pid'] == t.pid and info['lib'] == lib, 'target reported %r' % info)
            P.expect(release is None or info['greenlet'] == release,
                     'target runs greenlet %r, expected %r' % (info['greenlet'], release))
            total = sum(n for n, st, fr in want)
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets', '--json'],
                         rt.T_DUMP)
            if res.rc != 0:
                raise rt.Failure('dump --greenlets --json failed%s:\n%s'
                                 % (where, res.describe(out_limit=2000)))
            doc = json.loads(res.out_text)
            got = sorted(((g['count'], g['state'], frames_of(g['frames']))
                          for g in doc['greenlet_summary']), key=repr)
            P.expect(got == want, 'summary%s:\n      %s\n    expected:\n      %s'
                     % (where, brief_groups(got), brief_groups(want)))
            gl = doc['greenlets']
            P.expect(len(gl) == total, '%d greenlets%s, expected %d' % (len(gl), where, total))
            bad = [(g['address'], g['state'], g.get('error')) for g in gl
                   if 'error' in g or g['truncated']]
            P.expect(not bad, '%d greenlets%s without their whole stack: %r'
                     % (len(bad), where, bad[:10]))
            # Every greenlet's own entry has its group's stack.
            each = sorted(repr((g['state'], frames_of(g['frames']))) for g in gl)
            from_summary = sorted(repr((st, fr)) for n, st, fr in want for _ in range(n))
            P.expect(each == from_summary, 'the greenlets\' own stacks%s differ from the summary'
                     % where)
            mains = [g['state'] for g in gl if g['main']]
            P.expect(mains == ['parked' if lib == 'gevent' else 'running'],
                     'main greenlets%s: %r' % (where, mains))
            # The text dump: the same groups, no stack unreadable.
            res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets'], rt.T_DUMP)
            lines = res.out_text.split('\n')
            if P.expect(res.rc == 0 and 'Greenlet summary:' in lines,
                        'text dump%s: no summary' % where):
                summ = sorted(ln for ln in lines[lines.index('Greenlet summary:') + 1:] if ln)
                text = sorted('  %d greenlet%s %s at %s' % (
                    n, '' if n == 1 else 's', st, ' <- '.join('`%s (%s:%d)`' % f for f in fr))
                    for n, st, fr in want)
                P.expect(summ == text, 'text summary%s differs: %d lines, expected %d; first '
                         'differing: %r' % (where, len(summ), len(text),
                                            [a[:300] for a in summ if a not in text][:3]))
                heads = [ln for ln in lines if ln.startswith('Greenlet 0x')]
                P.expect(len(heads) == total, '%d greenlets listed%s, expected %d'
                         % (len(heads), where, total))
                P.expect(not [ln for ln in lines if 'stack unreadable' in ln],
                         'text dump%s: %d stacks unreadable' % (
                             where, len([ln for ln in lines if 'stack unreadable' in ln])))
            text_res = res
            # record --greenlets: every census counts each greenlet at its whole stack.
            out = os.path.join(ctx.mkdtemp('deeprec-'), 'out.folded')
            res = rt.run([rt.PYSTROBE, 'record', '-p', str(t.pid), '-d', '1', '--greenlets',
                          '-o', out], rt.T_RECORD)
            m = DEEP_CENSUS_RE.search(res.err_text)
            if not P.expect(res.rc == 0 and m, 'record --greenlets%s: no census line' % where):
                P.fail_if_any(text_res.describe(out_limit=800) + res.describe())
            n = int(m.group(1))
            parked = sum(c for c, st, fr in want if st == 'parked')
            P.expect([float(x) for x in m.groups()[1:]] == [total, parked, 1],
                     'census%s: %r, expected %d greenlets, %d parked, 1 running'
                     % (where, m.groups(), total, parked))
            folded = {}
            with open(out) as f:
                for ln in f.read().splitlines():
                    stack, _, k = ln.rpartition(' ')
                    if stack.startswith('greenlet '):
                        folded[stack] = folded.get(stack, 0) + int(k)
            want_folded = {}
            for c, st, fr in want:
                key = ';'.join(['greenlet ' + st] + [rt.label(*x) for x in fr[::-1]])
                want_folded[key] = want_folded.get(key, 0) + c * n
            P.expect(folded == want_folded, 'record --greenlets%s: %d stacks, expected %d:\n'
                     '      %s\n    expected:\n      %s'
                     % (where, len(folded), len(want_folded), brief_folded(folded),
                        brief_folded(want_folded)))
            P.fail_if_any(text_res.describe(out_limit=800) + res.describe())
        finally:
            t.close()

    def deep_gevent():
        """Greenlets parked deep under gevent."""
        need_gevent()
        deep_check('gevent')

    def deep_202():
        """Greenlets parked deep, greenlet 2.0.2 alone (the interpreter's own or built)."""
        if I.ver[:2] >= (3, 12):
            raise rt.Skip('greenlet %s does not support Python %d.%d (see greenlets-deep-dirs)'
                          % (SUPPORTED_GREENLET, I.ver[0], I.ver[1]))
        f = facts()
        if f[2] == SUPPORTED_GREENLET:
            deep_check('greenlet', None, SUPPORTED_GREENLET)
        else:
            deep_check('greenlet', build_greenlet(rt, I, f), SUPPORTED_GREENLET)

    def deep_3():
        """Greenlets parked deep, greenlet 3.3.2 alone (the interpreter's own or built)."""
        deep_check('greenlet', greenlet3(), GREENLET3)

    def greenlet_package_dir():
        """The directory of the greenlet package the interpreter imports, as this machine
        sees it (a root interpreter's inside its root)."""
        try:
            out = subprocess.run([I.exe, '-c', 'import os, greenlet; '
                                  'print(os.path.dirname(greenlet.__file__))'],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise rt.Failure('cannot ask %s where greenlet is: %s' % (I.exe, e))
        d = out.stdout.decode().strip()
        if out.returncode != 0 or not d:
            raise rt.Failure('%s does not say where greenlet is' % I.exe)
        return I.host_view(d)

    def deep_dirs():
        """Greenlets parked deep, with each greenlet of PYSTROBE_TEST_GREENLET_DIRS built
        for this interpreter."""
        for d, release in greenlet_dirs():
            deep_check('greenlet', d, release)

    def greenlet_dirs():
        """(directory, release) of each PYSTROBE_TEST_GREENLET_DIRS entry built for I, or
        rt.Skip."""
        dirs = [d for d in os.environ.get(DIRS_VAR, '').split(':') if d]
        if not dirs:
            raise rt.Skip('%s is not set (package directories of greenlet builds)' % DIRS_VAR)
        suffix = facts()[1]
        fits = [d for d in dirs
                if os.path.exists(os.path.join(d, 'greenlet', '_greenlet' + suffix))]
        if not fits:
            raise rt.Skip('no directory in %s holds a greenlet built for Python %d.%d'
                          % (DIRS_VAR, I.ver[0], I.ver[1]))
        out = []
        for d in fits:
            release = sources_release(os.path.join(d, 'greenlet'))
            if release is None:
                raise rt.Failure('%s/greenlet/__init__.py has no __version__' % d)
            out.append((d, release))
        return out

    # Each test is registered only where it can run: a test skipped for good
    # on most interpreters would hide a new skip among its own.
    if I.ver[:2] < (3, 12):     # greenlet 2.0.2 builds up to 3.11
        R.case(pfx + 'raw-2.0.2', raw_202)
        R.case(pfx + 'deep-2.0.2', deep_202)
    if I.ver[:2] >= (3, 7):     # greenlet 3.3.2 builds from 3.7
        R.case(pfx + 'raw-' + GREENLET3, raw_3)
        R.case(pfx + 'deep-' + GREENLET3, deep_3)
    # Named by the release it edits: from 3.12 the root's sources are needed.
    R.case(pfx + 'unknown-release' + ('-' + GREENLET3 if I.ver[:2] >= (3, 12) else ''),
           unknown_release)
    R.case(pfx + 'raw-dirs', raw_dirs)
    R.case(pfx + 'deep-dirs', deep_dirs)
    if I.ver[:2] in ((2, 7), (3, 6)):
        R.case(pfx + 'raw-stripped', raw_stripped)
    if importable(I, 'gevent'):
        R.case(pfx + 'summary-json', summary_json)
        R.case(pfx + 'summary-text', summary_text)
        R.case(pfx + 'deep-gevent', deep_gevent)
    R.case(pfx + 'no-greenlets', no_greenlets)
    crowd_group(ctx, I, rt)


# ---------------------------------------------------------------------------
# tests/targets/deep_greenlets.py: greenlets parked deep (on 3.11+ their frames
# fill several data-stack chunks) beside greenlets parked one frame deep.

DEEP = 'deep_greenlets.py'
# As in the target.
DEEP_WAIT, DEEP_SLEEP, DEEPER, SHALLOW = 4, 3, 2, 5
DEPTH, DEEPER_DEPTH = 150, 600
EPOLL_WAITS = {'232', '281'}   # x86_64 epoll_wait, epoll_pwait
DEEP_CENSUS_RE = re.compile(r'greenlets: (\d+) censuses .* ([\d.]+) greenlets on average '
                            r'\(([\d.]+) parked, ([\d.]+) running\)')


def frames_of(frames):
    return [(f.get('function'), f.get('file'), f.get('line')) for f in frames]


def deep_expected(rt, lib, pkg=None, root=None):
    """deep_greenlets.py's summary under lib ('gevent', its package directory in pkg;
    or 'greenlet') as sorted (count, state, frames), frames innermost first as
    (function, file, line)."""
    path = os.path.join(rt.TARGETS, DEEP)

    def line(p, func, pattern):
        return source_line(p, func, pattern, root)

    def L(fn, marker):
        return (fn, path, rt.line_of(path, marker))

    def chain(n):
        """dive n times, then the function that began it."""
        return [L('dive', 'bottom')] + [L('dive', 'dive')] * (n - 1) + [L('deep', 'deep')]
    shallow = [L('shallow', 'shallow')]
    if lib == 'gevent':
        hub = os.path.join(pkg, 'hub.py')
        sleep = ('sleep', hub, line(hub, 'sleep', r'hub\.wait\(t\)'))
        groups = [
            (DEEP_WAIT, 'parked', chain(DEPTH)),
            (DEEP_SLEEP, 'parked', [sleep] + chain(DEPTH)),
            (DEEPER, 'parked', chain(DEEPER_DEPTH)),
            (SHALLOW, 'parked', shallow),
            (1, 'parked', [sleep, L('park_gevent', 'park'), L('with_gevent', 'with-gevent'),
                           L('main', 'main-gevent'), L('<module>', 'module')]),
            (1, 'running', [('Hub.run', hub, line(hub, 'run', r'loop\.run\(\)'))]),
        ]
    else:
        # The main greenlet runs (asleep in time.sleep): its frames are its thread's.
        groups = [
            (DEEP_WAIT + DEEP_SLEEP, 'parked', chain(DEPTH)),
            (DEEPER, 'parked', chain(DEEPER_DEPTH)),
            (SHALLOW, 'parked', shallow),
            (1, 'running', [L('with_greenlet', 'with-greenlet'), L('main', 'main-greenlet'),
                            L('<module>', 'module')]),
        ]
    return sorted(groups, key=repr)


def brief_frames(frames):
    """Frames (function, file, line) innermost first, runs of one frame as one:
    'dive:37 <- dive:36 x149 <- deep:41'."""
    out = []
    for fr in frames:
        key = '%s:%s' % (fr[0], fr[2])
        if out and out[-1][0] == key:
            out[-1][1] += 1
        else:
            out.append([key, 1])
    return ' <- '.join(k + (' x%d' % c if c > 1 else '') for k, c in out) or '(no frames)'


def brief_groups(groups):
    return '\n      '.join('%d %s: %d frames: %s' % (n, st, len(fr), brief_frames(fr))
                          for n, st, fr in groups)


def brief_folded(folded):
    """Folded stacks (root first) as counts and brief frames, innermost first."""
    def frames(stack):
        parts = stack.split(';')
        out = [parts[0]]
        for p in parts[1:][::-1]:
            m = re.match(r'^(.*) \((.*):(\d+)\)$', p)
            out.append((m.group(1), m.group(2), m.group(3)) if m else (p, '', '?'))
        return out
    return '\n      '.join('%d %s: %d frames: %s' % (k, f[0], len(f) - 1, brief_frames(f[1:]))
                          for k, f in sorted((v, frames(s)) for s, v in folded.items()))


# ---------------------------------------------------------------------------
# tests/targets/greenlet_crowd.py: 1000 greenlets with gevent or eventlet, a
# second hub thread, and greenlets spawned and killed at a high rate.

CROWD = 'greenlet_crowd.py'
CROWD_COUNTS = (600, 300, 100)   # locked, waiting, sleeping
# Type names (tp_name) of the workers, of the main greenlet and of the hub.
TYPES = {'gevent': ('gevent._gevent_cgreenlet.Greenlet', 'greenlet.greenlet', 'Hub'),
         'eventlet': ('GreenThread', 'greenlet.greenlet', 'greenlet.greenlet')}
CHURN_DUMPS = 30


_importable = {}
_importable_lock = threading.Lock()


def importable(I, lib):
    """Whether I imports lib (gevent, eventlet) with greenlet: the tests of lib are
    registered for I only then (Debian's python3 with python3-gevent and
    python3-eventlet; CI checks that it does, see e2e_suite)."""
    key = (os.path.realpath(I.exe), lib)
    with _importable_lock:
        if key not in _importable:
            _importable[key] = lib_info(I.exe, lib) is not None
        return _importable[key]


def lib_info(exe, lib):
    """(greenlet release, the library's package directory) as exe imports them, or None."""
    code = 'import os, greenlet, %s as m; print(greenlet.__version__); print(os.path.dirname(m.__file__))' % lib
    try:
        out = subprocess.run([exe, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.decode().split()
    return tuple(lines) if out.returncode == 0 and len(lines) == 2 else None


def source_line(path, func, pattern, root=None):
    """The line (1-based) of the first line matching regex pattern inside `def func(` in path
    (as the target names it: inside root, for an interpreter of a root)."""
    with open((root or '') + path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    for i, text in enumerate(lines):
        m = re.match(r'^(\s*)def %s\(' % re.escape(func), text)
        if not m:
            continue
        indent = len(m.group(1))
        for k in range(i + 1, len(lines)):
            body = lines[k]
            if body.strip() and len(body) - len(body.lstrip()) <= indent:
                break
            if re.search(pattern, body):
                return k + 1
    raise RuntimeError('no line %r in def %s in %s' % (pattern, func, path))


def crowd_expected(rt, lib, pkg, root=None):
    """greenlet_crowd.py's summary for lib (its package in pkg, inside root for an
    interpreter of a root) as sorted (count, state, frames), frames innermost first as
    (function, file, line)."""
    path = os.path.join(rt.TARGETS, CROWD)

    def line(p, func, pattern):
        return source_line(p, func, pattern, root)

    def L(fn, marker):
        return (fn, path, rt.line_of(path, marker))

    head = [L('park', 'park'), L('crowd', 'main'), L('main', 'crowd'), L('<module>', 'module')]
    if lib == 'gevent':
        hub = os.path.join(pkg, 'hub.py')
        sleep = ('sleep', hub, line(hub, 'sleep', r'hub\.wait\(t\)'))
        groups = [
            (CROWD_COUNTS[0], 'parked', [L('take', 'take'), L('locker', 'locker')]),
            (CROWD_COUNTS[1], 'parked', [L('waiter', 'waiter')]),
            (CROWD_COUNTS[2], 'parked', [sleep, L('sleeper', 'sleeper')]),
            (1, 'parked', [sleep] + head),
            (1, 'running', [('Hub.run', hub, line(hub, 'run', r'loop\.run\(\)'))]),
        ]
    else:
        hub, sem, queue, gt, poll = (os.path.join(pkg, f) for f in (
            'hubs/hub.py', 'semaphore.py', 'queue.py', 'greenthread.py', 'hubs/poll.py'))
        switch = ('BaseHub.switch', hub, line(hub, 'switch', r'return self\.greenlet\.switch\(\)'))
        gmain = ('GreenThread.main', gt, line(gt, 'main', r'result = function\('))
        sleep = ('sleep', gt, line(gt, 'sleep', r'^\s*hub\.switch\(\)'))
        # Semaphore.acquire without a timeout parks in its `while True:` loop.
        acquire = line(sem, 'acquire', r'^\s*while True:') + 1
        with open((root or '') + sem, encoding='utf-8') as f:
            if 'hubs.get_hub().switch()' not in f.read().split('\n')[acquire - 1]:
                raise RuntimeError('%s:%d is not the switch of acquire' % (sem, acquire))
        groups = [
            (CROWD_COUNTS[0], 'parked', [switch, ('Semaphore.acquire', sem, acquire), L('take', 'take'),
                                L('locker', 'locker'), gmain]),
            (CROWD_COUNTS[1], 'parked', [switch, ('Waiter.wait', queue,
                                          line(queue, 'wait', r'return get_hub\(\)\.switch\(\)')),
                                 ('LightQueue.get', queue,
                                  line(queue, 'get', r'return waiter\.wait\(\)')),
                                 L('getter', 'getter'), gmain]),
            (CROWD_COUNTS[2], 'parked', [switch, sleep, L('sleeper', 'sleeper'), gmain]),
            (1, 'parked', [switch, sleep] + head),
            # No descriptor is watched: the hub sleeps in time.sleep for the next timer.
            (1, 'running', [('Hub.wait', poll, line(poll, 'wait', r'time\.sleep\(seconds\)')),
                            ('BaseHub.run', hub, line(hub, 'run', r'self\.wait\(sleep_time\)'))]),
        ]
    return sorted(groups, key=repr)


def crowd_group(ctx, I, rt):
    R = ctx.runner
    path = os.path.join(rt.TARGETS, CROWD)
    infos = {}

    def need(lib):
        if lib not in infos:
            infos[lib] = lib_info(I.exe, lib)
        info = infos[lib]
        if info is None:
            raise rt.Skip('%s is not importable by %s' % (lib, I.exe))
        return info[1]

    def start(lib, *extra):
        t = e2e_states.Proc(rt, ctx, [I.exe, path, '--lib', lib, '--max-life', str(rt.TARGET_LIFE)]
                            + list(extra), CROWD)
        info = t.expect_line('READY', timeout=120)
        if info['pid'] != t.pid or info['lib'] != lib:
            t.close()
            raise rt.Failure('setup: target reported %r' % info)
        return t

    def L(fn, marker):
        return (fn, path, rt.line_of(path, marker))

    def expected(lib, pkg):
        return crowd_expected(rt, lib, pkg, I.root)

    def dump(pid, *args):
        res = rt.run([rt.PYSTROBE, 'dump', '-p', str(pid), '--greenlets'] + list(args), rt.T_DUMP)
        if res.rc != 0:
            raise rt.Failure('dump --greenlets failed:\n' + res.describe(out_limit=2000))
        return res

    def frames_of(frames):
        return [(f.get('function'), f.get('file'), f.get('line')) for f in frames]

    def thread_frames(doc, tid):
        th = [t for t in doc['threads'] if t['tid'] == tid]
        return frames_of(th[0]['frames']) if len(th) == 1 else None

    def crowd_json(lib):
        pkg = need(lib)
        t = start(lib)
        try:
            res = dump(t.pid, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            want = expected(lib, pkg)
            got = sorted(((g['count'], g['state'], frames_of(g['frames']))
                          for g in doc['greenlet_summary']), key=repr)
            P.expect(got == want, 'summary %r,\n    expected %r' % (got, want))
            gl = doc['greenlets']
            total = sum(CROWD_COUNTS) + 2
            P.expect(len(gl) == total, '%d greenlets, expected %d' % (len(gl), total))
            P.expect(sum(g['count'] for g in doc['greenlet_summary']) == len(gl),
                     'summary counts add up to %d' % sum(g['count'] for g in doc['greenlet_summary']))
            # Every greenlet's own entry has its group's stack.
            each = sorted(repr((g['state'], frames_of(g['frames']))) for g in gl)
            from_summary = sorted(repr((st, fr)) for n, st, fr in want for _ in range(n))
            P.expect(each == from_summary, 'the greenlets\' own stacks differ from the summary')
            states = collections.Counter(g['state'] for g in gl)
            P.expect(states == {'parked': total - 1, 'running': 1}, 'states %r' % dict(states))
            worker, main_t, hub_t = TYPES[lib]
            types = collections.Counter((g['type'], g['main'], g['state']) for g in gl)
            want_types = {(worker, False, 'parked'): total - 2, (main_t, True, 'parked'): 1,
                          (hub_t, False, 'running'): 1}
            P.expect(types == want_types, 'types %r, expected %r' % (dict(types), want_types))
            running = [g for g in gl if g['state'] == 'running']
            P.expect(len(running) == 1 and running[0].get('thread') == t.pid,
                     'the running greenlet\'s thread: %r' % [g.get('thread') for g in running])
            P.expect(running and frames_of(running[0]['frames']) == thread_frames(doc, t.pid),
                     'the running greenlet\'s stack is not its thread\'s')
            P.expect(all('error' not in g and not g['truncated'] for g in gl),
                     'unreadable stacks: %r' % [g for g in gl if 'error' in g][:3])
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def text_frame(f):
        return '`%s (%s:%d)`' % f

    def crowd_text(lib):
        pkg = need(lib)
        t = start(lib)
        try:
            res = dump(t.pid)
            lines = res.out_text.split('\n')
            P = rt.Problems()
            if not P.expect('Greenlet summary:' in lines, 'no "Greenlet summary:" line'):
                P.fail_if_any(res.describe(out_limit=3000))
            summ = [x for x in lines[lines.index('Greenlet summary:') + 1:] if x]
            want = sorted('  %d greenlet%s %s at %s' % (n, '' if n == 1 else 's', st,
                                                      ' <- '.join(text_frame(f) for f in fr))
                          for n, st, fr in expected(lib, pkg))
            P.expect(sorted(summ) == want, 'summary %r,\n    expected %r' % (summ, want))
            P.expect(summ and summ[0].startswith('  %d greenlets parked at ' % CROWD_COUNTS[0]),
                     'the largest group is not first: %r' % summ[:1])
            heads = [x for x in lines if x.startswith('Greenlet 0x')]
            total = sum(CROWD_COUNTS) + 2
            P.expect(len(heads) == total, '%d greenlets listed, expected %d' % (len(heads), total))
            P.expect('Greenlets: %d (' % total in res.out_text, 'no "Greenlets: %d" line' % total)
            worker, main_t, hub_t = TYPES[lib]
            kinds = collections.Counter(re.sub(r'^Greenlet 0x[0-9a-f]+ ', '', x) for x in heads)
            want_kinds = {'%s (parked)' % worker: total - 2, '%s main (parked)' % main_t: 1,
                          '%s (running in thread %d)' % (hub_t, t.pid): 1}
            P.expect(kinds == want_kinds, 'greenlet lines %r, expected %r' % (dict(kinds), want_kinds))
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def second_hub(lib):
        """Two hubs, each running in its own thread: each is matched to it and shows its stack.
        Greenlets suspended in C with no Python frame look running too: they are parked."""
        need(lib)
        t = start(lib, '--locked', '2', '--waiting', '1', '--sleeping', '1', '--second-hub',
                  '--c-parked', '3')
        try:
            res = dump(t.pid, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            other = [x['tid'] for x in doc['threads'] if x['name'] == 'second-hub']
            if not P.expect(len(other) == 1, 'threads %r' % doc['threads']):
                P.fail_if_any(res.describe(out_limit=3000))
            running = [g for g in doc['greenlets'] if g['state'] == 'running']
            P.expect(sorted(g.get('thread') for g in running) == sorted([t.pid, other[0]]),
                     'running greenlets in threads %r, expected %r'
                     % ([g.get('thread') for g in running], [t.pid, other[0]]))
            for g in running:
                P.expect(frames_of(g['frames']) == thread_frames(doc, g.get('thread')),
                         'greenlet %s: stack %r is not its thread\'s' % (g['address'], g['frames']))
                P.expect(g['type'] == TYPES[lib][2], 'hub type %r' % g['type'])
            mains = [g for g in doc['greenlets'] if g['main']]
            P.expect(len(mains) == 2 and all(g['state'] == 'parked' for g in mains),
                     'main greenlets %r' % mains)
            # The second thread's main greenlet sleeps in second_hub (under threading's frames).
            sec = [g for g in doc['greenlets']
                   if ('second_hub', path, rt.line_of(path, 'second')) in frames_of(g['frames'])]
            P.expect(len(sec) == 1 and sec[0]['main'], 'the second thread\'s main greenlet: %r' % sec)
            bare = [g for g in doc['greenlets'] if not g['frames']]
            P.expect(len(bare) == 3 and all(g['state'] == 'parked' and not g['main'] and
                                            g['type'] == 'greenlet.greenlet' for g in bare),
                     'greenlets without frames: %r' % bare)
            P.expect({'count': 3, 'state': 'parked', 'frames': []} in doc['greenlet_summary'],
                     'no group of 3 parked without frames in %r' % doc['greenlet_summary'])
            # 4 workers, 3 suspended in C, 5 in the second thread, 2 main greenlets, 2 hubs.
            P.expect(len(doc['greenlets']) == 4 + 3 + 5 + 2 + 2,
                     '%d greenlets, expected 16' % len(doc['greenlets']))
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def busy(lib):
        """A worker that spins without yielding is the running greenlet, in the main thread;
        the hub that switched to it is parked."""
        pkg = need(lib)
        root = I.root
        t = start(lib, '--locked', '1', '--waiting', '0', '--sleeping', '0', '--busy')
        try:
            res = dump(t.pid, '--json')
            doc = json.loads(res.out_text)
            P = rt.Problems()
            gl = doc['greenlets']
            running = [g for g in gl if g['state'] == 'running']
            spin = [L('spin', 'spin')]
            if lib == 'gevent':
                hub = os.path.join(pkg, 'hub.py')
                hub_frames = [('Hub.run', hub, source_line(hub, 'run', r'loop\.run\(\)', root))]
            else:
                hub, timer, gt = (os.path.join(pkg, f) for f in ('hubs/hub.py', 'hubs/timer.py',
                                                                'greenthread.py'))
                spin.append(('GreenThread.main', gt, source_line(gt, 'main', r'result = function\(', root)))
                hub_frames = [('Timer.__call__', timer, source_line(timer, '__call__', r'cb\(\*args', root)),
                              ('BaseHub.fire_timers', hub, source_line(hub, 'fire_timers', r'^\s*timer\(\)', root)),
                              ('BaseHub.run', hub, source_line(hub, 'run', r'self\.fire_timers\(', root))]
            P.expect(len(running) == 1 and running[0]['type'] == TYPES[lib][0] and
                     running[0].get('thread') == t.pid and frames_of(running[0]['frames']) == spin,
                     'running greenlets %r, expected one %s in thread %d at %r'
                     % (running, TYPES[lib][0], t.pid, spin))
            P.expect(thread_frames(doc, t.pid) == spin, 'the thread\'s stack is not %r' % spin)
            hubs = [g for g in gl if g['type'] == TYPES[lib][2] and not g['main']]
            P.expect(len(hubs) == 1 and hubs[0]['state'] == 'parked' and
                     frames_of(hubs[0]['frames']) == hub_frames,
                     'hub %r, expected parked at %r' % (hubs, hub_frames))
            P.expect(len(gl) == 4, '%d greenlets, expected 4' % len(gl))
            P.fail_if_any(res.describe(out_limit=800))
        finally:
            t.close()

    def churn_dumps(lib):
        """Dumps in a row on a target that spawns and kills greenlets: each succeeds and adds up."""
        need(lib)
        t = start(lib, '--churn')
        try:
            P = rt.Problems()
            for k in range(CHURN_DUMPS):
                as_json = k % 2 == 1
                res = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid), '--greenlets']
                             + (['--json'] if as_json else []), rt.T_DUMP)
                if not P.expect(res.rc == 0, 'dump %d failed:%s' % (k, res.describe(out_limit=300))):
                    continue
                if as_json:
                    doc = json.loads(res.out_text)
                    gl, summ = doc['greenlets'], doc['greenlet_summary']
                    n = sum(g['count'] for g in summ)
                    P.expect(n == len(gl), 'dump %d: summary counts %d, %d greenlets' % (k, n, len(gl)))
                    by_state = collections.Counter(g['state'] for g in gl)
                    summ_states = collections.Counter()
                    for g in summ:
                        summ_states[g['state']] += g['count']
                    P.expect(by_state == summ_states, 'dump %d: states %r, summary %r'
                             % (k, dict(by_state), dict(summ_states)))
                    P.expect(sum(g['main'] for g in gl) == 1, 'dump %d: %d main greenlets'
                             % (k, sum(g['main'] for g in gl)))
                    P.expect(doc['greenlet_stats']['objects'] >= len(gl), 'dump %d: stats %r'
                             % (k, doc['greenlet_stats']))
                    continue
                lines = res.out_text.split('\n')
                heads = [x for x in lines if x.startswith('Greenlet 0x')]
                m = re.search(r'^Greenlets: (\d+) ', res.out_text, re.M)
                summ = lines[lines.index('Greenlet summary:') + 1:] if 'Greenlet summary:' in lines else []
                n = sum(int(x.split()[0]) for x in summ if x)
                P.expect(m and int(m.group(1)) == len(heads) == n,
                         'dump %d: "Greenlets: %s", %d listed, summary adds up to %d'
                         % (k, m and m.group(1), len(heads), n))
            os.kill(t.pid, signal.SIGUSR1)
            counts = json.loads(t.readline())
            P.expect(counts['spawned'] > 1000 and 0 < counts['alive'] <= 400,
                     'the target says %r' % counts)
            P.fail_if_any()
        finally:
            t.close()

    for lib in [x for x in ('gevent', 'eventlet') if importable(I, x)]:
        pfx = '%s/greenlets-%s-' % (I.label, lib)
        R.case(pfx + 'crowd-json', lambda lib=lib: crowd_json(lib))
        R.case(pfx + 'crowd-text', lambda lib=lib: crowd_text(lib))
        R.case(pfx + 'second-hub', lambda lib=lib: second_hub(lib))
        R.case(pfx + 'busy', lambda lib=lib: busy(lib))
        R.case(pfx + 'churn-dumps', lambda lib=lib: churn_dumps(lib))
