"""End-to-end tests of where pystrobe writes its output when root runs it on
ground an unprivileged user controls.  Run by run.py: group(ctx, interps,
rt), where rt is harness.py.

Each test runs pystrobe as root with its output in a sticky, world-writable
folder owned by `nobody`, in which `nobody` (through setpriv) planted
symbolic links to devices and to root's files, FIFOs and files of its own.
pystrobe must refuse what it did not create or was not named explicitly,
never hang, never write into a file of root's through a link, and leave no
temporary file behind.  New files honor the umask; `-o -` is stdout; every
write to stdout is checked (a full disk, a reader gone).  Most tests use
`convert` (no target needed); those of `record` and `dump` run the newest
interpreter found.  Without root or the `nobody` user they SKIP.
"""
import ctypes
import os
import pwd
import select
import signal
import stat
import subprocess
import threading
import time

FOLDED = b'main;work;leaf 30\nmain;work;other 20\nmain;idle 10\n'
RACE_RUNS = 200       # pystrobe runs while the links are swapped
SWAP_SECONDS = 600    # the swapper's own limit, should the test die
KILL_WAIT = 30        # seconds for a launched record to start its command


def nobody():
    try:
        pw = pwd.getpwnam('nobody')
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def as_nobody(rt, argv):
    """Runs argv as nobody (setpriv, no supplementary groups); fails on error."""
    ids = nobody()
    res = rt.run(['setpriv', '--reuid=%d' % ids[0], '--regid=%d' % ids[1], '--clear-groups'] + argv,
                 rt.T_PROMPT)
    if res.rc != 0:
        raise rt.Failure('setup as nobody failed:%s' % res.describe())
    return res


def shared_dir(ctx, rt):
    """A sticky world-writable folder owned by nobody, as users make in /tmp."""
    if os.geteuid() != 0:
        raise rt.Skip('needs root (the tests are about root writing where a user planted things)')
    if nobody() is None:
        raise rt.Skip('no user "nobody" to plant links')
    if not os.path.exists('/usr/bin/setpriv') and not os.path.exists('/bin/setpriv'):
        raise rt.Skip('no setpriv to act as nobody')
    base = ctx.mkdtemp('outfiles-')
    d = os.path.join(base, 'ww')
    os.mkdir(d)
    os.chown(d, *nobody())
    os.chmod(d, 0o1777)
    return base, d


def folded_input(base):
    src = os.path.join(base, 'in.folded')
    with open(src, 'wb') as f:
        f.write(FOLDED)
    os.chmod(src, 0o644)
    return src


def convert(rt, src, out, extra=(), env_umask=None, cwd=None):
    argv = [rt.PYSTROBE, 'convert', src, '-f', 'folded'] + list(extra) + (['-o', out] if out else [])
    if env_umask is not None:
        argv = ['sh', '-c', 'umask %s && exec "$@"' % env_umask, 'sh'] + argv
    return rt.run(argv, rt.T_PROMPT, cwd=cwd)


def is_profile(data):
    """The folded profile of FOLDED, in whatever order pystrobe writes its lines."""
    return sorted(data.splitlines()) == sorted(FOLDED.splitlines())


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def newest(interps, rt):
    if not interps:
        raise rt.Skip('no Python interpreter found')
    return interps[-1]


def group(ctx, interps, rt):
    R = ctx.runner
    pfx = 'outfiles/'

    # -- a link that nobody planted, to a device: refused, nothing written
    def link_to_device(cmd):
        def fn():
            base, d = shared_dir(ctx, rt)
            src = folded_input(base)
            P = rt.Problems()
            desc = ''
            for dev in ('/dev/null', '/dev/full', '/dev/zero'):
                if not os.path.exists(dev):
                    continue
                link = os.path.join(d, 'y-%s.svg' % os.path.basename(dev))
                as_nobody(rt, ['ln', '-s', dev, link])
                if cmd == 'convert':
                    res = convert(rt, src, link)
                elif cmd == 'diff':
                    res = rt.run([rt.PYSTROBE, 'diff', src, src, '-o', link], rt.T_PROMPT)
                else:
                    I = newest(interps, rt)
                    res = rt.record(['-d', '0.5', '-o', link, '--', I.exe, '-c', 'import time; time.sleep(0.5)'])
                rt.check_one_line_error(P, res, 1, words=[link], any_words=['symbolic link', 'another user'])
                P.expect(os.readlink(link) == dev, '%s: the link was changed' % link)
                desc += res.describe()
            left = sorted(n for n in os.listdir(d) if not n.startswith('y-'))
            P.expect(left == [], 'files left in the folder: %r' % left)
            P.fail_if_any(desc)
        return fn
    R.case(pfx + 'link-to-device-convert', link_to_device('convert'))
    R.case(pfx + 'link-to-device-diff', link_to_device('diff'))
    R.case(pfx + 'link-to-device-record', link_to_device('record'))

    # -- a FIFO that nobody planted: refused at once, no hang
    def planted_fifo(cmd):
        def fn():
            base, d = shared_dir(ctx, rt)
            src = folded_input(base)
            fifo = os.path.join(d, 'f.svg')
            as_nobody(rt, ['mkfifo', '-m', '666', fifo])
            if cmd == 'convert':
                res = convert(rt, src, fifo)
            elif cmd == 'diff':
                res = rt.run([rt.PYSTROBE, 'diff', src, src, '-o', fifo], rt.T_PROMPT)
            else:
                I = newest(interps, rt)
                res = rt.record(['-d', '0.5', '-o', fifo, '--', I.exe, '-c', 'import time; time.sleep(0.5)'],
                                timeout=rt.T_PROMPT)
            P = rt.Problems()
            rt.check_one_line_error(P, res, 1, words=[fifo, 'fifo'])
            P.expect(stat.S_ISFIFO(os.lstat(fifo).st_mode), 'the FIFO was replaced')
            P.fail_if_any(res.describe())
        return fn
    R.case(pfx + 'planted-fifo-convert', planted_fifo('convert'))
    R.case(pfx + 'planted-fifo-diff', planted_fifo('diff'))
    R.case(pfx + 'planted-fifo-record', planted_fifo('record'))

    # -- root's own FIFO, named: written when a reader is there, refused at once when not
    def own_fifo():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        fifo = os.path.join(base, 'mine.folded')
        os.mkfifo(fifo, 0o600)
        P = rt.Problems()
        res = convert(rt, src, fifo)
        rt.check_one_line_error(P, res, 1, words=[fifo], any_words=['reads', 'reader'])
        got = []

        def reader():
            fd = os.open(fifo, os.O_RDONLY)
            data = b''
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                data += b
            os.close(fd)
            got.append(data)
        th = threading.Thread(target=reader)
        th.daemon = True
        th.start()
        # The reader opens first: a writer finding none fails.
        res2 = None
        deadline = time.time() + rt.T_PROMPT
        while time.time() < deadline:
            res2 = convert(rt, src, fifo)
            if res2.rc == 0 or 'read' not in res2.err_text:
                break
            time.sleep(0.05)
        th.join(rt.T_PROMPT)
        P.expect(res2 is not None and res2.rc == 0, 'with a reader: exit status %s' % (res2 and res2.rc))
        P.expect(len(got) == 1 and is_profile(got[0]), 'the reader got %r' % (got[:1],))
        P.fail_if_any(res.describe() + (res2.describe() if res2 else ''))
    R.case(pfx + 'own-fifo', own_fifo)

    def replant(a, b, secret):
        """Puts back nobody's two links where a run replaced one by a file."""
        for _ in range(100):
            links = {}
            for n in (a, b):
                try:
                    links[n] = os.readlink(n)
                except OSError:
                    try:
                        os.unlink(n)
                    except OSError:
                        pass
            if len(links) == 2:
                return
            want = [t for t in ('/dev/null', secret) if t not in links.values()]
            for n in (a, b):
                if n not in links and want:
                    try:
                        os.symlink(want.pop(), n)
                        os.lchown(n, *nobody())
                    except OSError:
                        pass
        raise rt.Failure('could not put the links back')

    # -- swapping two links (to /dev/null, to root's 0600 file) under pystrobe's feet
    def race_exchange():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        secret = os.path.join(base, 'secret')
        body = b'root only\n' * 100
        with open(secret, 'wb') as f:
            f.write(body)
        os.chmod(secret, 0o600)
        a, b = os.path.join(d, 'a.folded'), os.path.join(d, 'b.folded')
        as_nobody(rt, ['ln', '-s', '/dev/null', a])
        as_nobody(rt, ['ln', '-s', secret, b])
        ids = nobody()
        swapper = (
            'import ctypes, os, sys, time\n'
            'libc = ctypes.CDLL(None, use_errno=True)\n'
            'end = time.time() + %d\n'
            'a, b = sys.argv[1].encode(), sys.argv[2].encode()\n'
            'print("go", flush=True)\n'
            'while time.time() < end:\n'
            '    for _ in range(1000):\n'
            '        libc.syscall(316, -100, a, -100, b, 2)\n' % SWAP_SECONDS)
        import sys
        sw = rt.spawn(['setpriv', '--reuid=%d' % ids[0], '--regid=%d' % ids[1], '--clear-groups',
                       sys.executable, '-c', swapper, a, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        P = rt.Problems()
        desc = ''
        outcomes = {}
        try:
            r, _, _ = select.select([sw.stdout], [], [], rt.T_PROMPT)
            if not r or sw.stdout.readline().strip() != b'go':
                raise rt.Failure('the swapper did not start: %r' % sw.stderr.read())
            for i in range(RACE_RUNS):
                res = convert(rt, src, a)
                outcomes[res.rc] = outcomes.get(res.rc, 0) + 1
                if res.timed_out or res.rc not in (0, 1) or read(secret) != body:
                    desc = res.describe()
                    break
                replant(a, b, secret)
            P.expect(sw.poll() is None, 'the swapper stopped: %r' % (sw.stderr.read() if sw.poll() is not None else ''))
        finally:
            rt._kill(sw)
        st = os.stat(secret)
        P.expect(read(secret) == body, 'root\'s 0600 file was written through the links (after %s)' % outcomes)
        P.expect(stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0, 'root\'s file changed owner or mode')
        P.expect(set(outcomes) == {1}, 'exit statuses %r: the links are nobody\'s, expected every run refused' % outcomes)
        P.fail_if_any(desc)
    R.case(pfx + 'race-exchange', race_exchange)

    # -- a link of nobody's to a file of its own in the shared folder: refused
    def others_link_to_file():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        target, link = os.path.join(d, 't.folded'), os.path.join(d, 'l.folded')
        as_nobody(rt, ['sh', '-c', 'echo theirs > %s && ln -s %s %s' % (target, target, link)])
        res = convert(rt, src, link)
        P = rt.Problems()
        rt.check_one_line_error(P, res, 1, words=[link], any_words=['symbolic link', 'another user'])
        P.expect(read(target) == b'theirs\n', 'their file was written')
        P.expect(os.path.islink(link), 'the link was replaced')
        P.fail_if_any(res.describe())
    R.case(pfx + 'others-link-to-file', others_link_to_file)

    # -- a folder on the way that is nobody's link to root's folder: refused, nothing made there
    def others_link_on_the_way():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        rootdir = os.path.join(base, 'rootonly')
        os.mkdir(rootdir, 0o700)
        via = os.path.join(d, 'sub')
        as_nobody(rt, ['ln', '-s', rootdir, via])
        out = os.path.join(via, 'p.folded')
        res = convert(rt, src, out)
        P = rt.Problems()
        rt.check_one_line_error(P, res, 1, words=[out], any_words=['symbolic link', 'another user'])
        P.expect(os.listdir(rootdir) == [], 'files made in root\'s folder: %r' % os.listdir(rootdir))
        P.fail_if_any(res.describe())
    R.case(pfx + 'others-link-on-the-way', others_link_on_the_way)

    # -- root's own links are followed: the file they point to is replaced, the link stays
    def own_link():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        target = os.path.join(base, 'real.folded')
        with open(target, 'wb') as f:
            f.write(b'old\n')
        os.chmod(target, 0o640)
        link = os.path.join(base, 'link.folded')
        os.symlink('real.folded', link)
        link2 = os.path.join(base, 'link2.folded')
        os.symlink(link, link2)
        res = convert(rt, src, link2)
        P = rt.Problems()
        P.expect(res.rc == 0, 'exit status %s' % res.rc)
        P.expect(is_profile(read(target)), 'the file the links point to does not hold the profile')
        P.expect(os.path.islink(link) and os.path.islink(link2), 'a link was replaced')
        P.expect(stat.S_IMODE(os.stat(target).st_mode) == 0o640, 'the file lost its mode')
        left = sorted(os.listdir(base))
        P.expect(left == ['in.folded', 'link.folded', 'link2.folded', 'real.folded', 'ww'], 'files: %r' % left)
        P.fail_if_any(res.describe())
    R.case(pfx + 'own-link-followed', own_link)

    # -- new files honor the umask
    def umask():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        P = rt.Problems()
        desc = ''
        for m, want in (('077', 0o600), ('022', 0o644), ('002', 0o664), ('027', 0o640)):
            out = os.path.join(base, 'u%s.folded' % m)
            res = convert(rt, src, out, env_umask=m)
            desc += res.describe()
            P.expect(res.rc == 0, 'umask %s: exit status %s' % (m, res.rc))
            if os.path.exists(out):
                got = stat.S_IMODE(os.stat(out).st_mode)
                P.expect(got == want, 'umask %s: mode %o, expected %o' % (m, got, want))
        P.fail_if_any(desc)
    R.case(pfx + 'umask', umask)

    # -- replacing a user's file: its owner and mode stay; in a shared sticky folder, refused
    def replace_others():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        ids = nobody()
        P = rt.Problems()
        home = os.path.join(base, 'home')
        os.mkdir(home, 0o755)
        os.chown(home, *ids)
        theirs = os.path.join(home, 'p.folded')
        as_nobody(rt, ['sh', '-c', 'echo old > %s && chmod 640 %s' % (theirs, theirs)])
        ino = os.stat(theirs).st_ino
        res = convert(rt, src, theirs)
        P.expect(res.rc == 0, 'their folder: exit status %s' % res.rc)
        st = os.stat(theirs)
        P.expect(is_profile(read(theirs)), 'their folder: the file does not hold the profile')
        P.expect((st.st_uid, st.st_gid) == ids, 'their folder: owner %d:%d, expected %d:%d' % (st.st_uid, st.st_gid, ids[0], ids[1]))
        P.expect(stat.S_IMODE(st.st_mode) == 0o640, 'their folder: mode %o, expected 640' % stat.S_IMODE(st.st_mode))
        P.expect(st.st_ino != ino, 'their folder: written in place, not replaced')
        P.expect(sorted(os.listdir(home)) == ['p.folded'], 'their folder: files %r' % os.listdir(home))
        desc = res.describe()
        # A shared sticky folder owned by root: a file of nobody's there is not replaced.
        shared = os.path.join(base, 'shared')
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        planted = os.path.join(shared, 'p.folded')
        as_nobody(rt, ['sh', '-c', 'echo planted > %s && chmod 666 %s' % (planted, planted)])
        res2 = convert(rt, src, planted)
        rt.check_one_line_error(P, res2, 1, words=[planted], any_words=['another user', 'belongs'])
        P.expect(read(planted) == b'planted\n', 'shared folder: their file was replaced')
        P.expect(sorted(os.listdir(shared)) == ['p.folded'], 'shared folder: files %r' % os.listdir(shared))
        # Root's own file keeps its mode.
        mine = os.path.join(base, 'mine.folded')
        with open(mine, 'wb') as f:
            f.write(b'old\n')
        os.chmod(mine, 0o600)
        res3 = convert(rt, src, mine, env_umask='022')
        P.expect(res3.rc == 0 and is_profile(read(mine)), 'own file: not replaced')
        P.expect(stat.S_IMODE(os.stat(mine).st_mode) == 0o600, 'own file: mode %o, expected 600' % stat.S_IMODE(os.stat(mine).st_mode))
        P.fail_if_any(desc + res2.describe() + res3.describe())
    R.case(pfx + 'replace-others-file', replace_others)

    # -- `-o -` is stdout, /dev/stdout too; no file named '-'
    def stdout_dash():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        work = os.path.join(base, 'cwd')
        os.mkdir(work)
        P = rt.Problems()
        desc = ''
        for out in ('-', '/dev/stdout'):
            res = convert(rt, src, out, cwd=work)
            desc += res.describe()
            P.expect(res.rc == 0, '-o %s: exit status %s' % (out, res.rc))
            P.expect(is_profile(res.out), '-o %s: stdout is not the profile' % out)
        res = rt.run([rt.PYSTROBE, 'diff', src, src, '-o', '-'], rt.T_PROMPT, cwd=work)
        desc += res.describe(200)
        P.expect(res.rc == 0 and res.out.startswith(b'<?xml'), 'diff -o -: not an SVG on stdout')
        I = newest(interps, rt)
        res = rt.run([rt.PYSTROBE, 'record', '-f', 'folded', '--idle', '-d', '1', '-o', '-', '--',
                      I.exe, '-c', 'import time; time.sleep(3)'], rt.T_RECORD, cwd=work)
        desc += res.describe()
        P.expect(res.rc == 0, 'record -o -: exit status %s' % res.rc)
        P.expect(b'[idle]' in res.out, 'record -o -: no idle stack on stdout')
        P.expect(os.listdir(work) == [], 'files left in the current folder: %r' % os.listdir(work))
        P.fail_if_any(desc)
    R.case(pfx + 'stdout-dash', stdout_dash)

    # -- the longest file name the folder takes
    def long_name():
        base, d = shared_dir(ctx, rt)
        src = folded_input(base)
        out_dir = os.path.join(base, 'long')
        os.mkdir(out_dir)
        name_max = os.pathconf(out_dir, 'PC_NAME_MAX')
        P = rt.Problems()
        desc = ''
        for n in (name_max - 1, name_max):
            name = 'p' * (n - len('.folded')) + '.folded'
            res = convert(rt, src, os.path.join(out_dir, name))
            desc += res.describe(200)
            P.expect(res.rc == 0, '%d characters: exit status %s' % (n, res.rc))
            P.expect(name in os.listdir(out_dir), '%d characters: no such file written' % n)
        P.expect(len(os.listdir(out_dir)) == 2, 'files: %r' % [x[:20] for x in os.listdir(out_dir)])
        P.fail_if_any(desc)
    R.case(pfx + 'long-name', long_name)

    # -- a killed record leaves no temporary file
    def killed_record():
        base, d = shared_dir(ctx, rt)
        I = newest(interps, rt)
        out_dir = os.path.join(base, 'out')
        os.mkdir(out_dir)
        p = rt.spawn([rt.PYSTROBE, 'record', '-d', '60', '-o', os.path.join(out_dir, 'p.svg'), '--',
                      I.exe, '-c', 'import time; time.sleep(60)'],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        P = rt.Problems()
        try:
            deadline = time.time() + KILL_WAIT
            started = False
            while time.time() < deadline and p.poll() is None:
                try:
                    with open('/proc/%d/task/%d/children' % (p.pid, p.pid)) as f:
                        started = bool(f.read().split())
                except OSError:
                    pass
                if started:
                    break
                time.sleep(0.05)
            P.expect(started, 'record did not start its command within %d s' % KILL_WAIT)
            time.sleep(0.5)
            during = sorted(os.listdir(out_dir))
            P.expect(during == [], 'while recording, files in the output folder: %r' % during)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        finally:
            rt._kill(p)
        after = sorted(os.listdir(out_dir))
        P.expect(after == [], 'after SIGKILL, files in the output folder: %r' % after)
        P.fail_if_any()
    R.case(pfx + 'killed-record-leaves-nothing', killed_record)

    # -- stdout: a full disk and a reader gone are errors, exit 1
    def stdout_errors(kind):
        def fn():
            if not os.path.exists('/dev/full') or not stat.S_ISCHR(os.stat('/dev/full').st_mode):
                raise rt.Skip('no /dev/full character device')
            base = ctx.mkdtemp('outfiles-')
            src = folded_input(base)
            I = newest(interps, rt)
            # Enough threads and frames for a dump of several pages.
            t = rt.spawn([I.exe, '-c',
                          'import threading, time\n'
                          'def deep(n):\n'
                          '    return deep(n - 1) if n else time.sleep(600)\n'
                          'for i in range(8):\n'
                          '    threading.Thread(target=deep, args=(60,), daemon=True).start()\n'
                          'print("ready", flush=True)\n'
                          'time.sleep(600)\n'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                r, _, _ = select.select([t.stdout], [], [], 60)
                if not r or t.stdout.readline().strip() != b'ready':
                    raise rt.Failure('the target did not start')
                time.sleep(0.5)
                P = rt.Problems()
                desc = ''
                probe = rt.run([rt.PYSTROBE, 'dump', '-p', str(t.pid)], rt.T_DUMP)
                P.expect(probe.rc == 0 and len(probe.out) > 8192,
                         'setup: dump wrote %d bytes (exit %s), expected over 8192' % (len(probe.out), probe.rc))
                cmds = [('dump', [rt.PYSTROBE, 'dump', '-p', str(t.pid)]),
                        ('convert', [rt.PYSTROBE, 'convert', src]),
                        ('diff', [rt.PYSTROBE, 'diff', src, src, '--top', '3'])]
                for name, argv in cmds:
                    if kind == 'full':
                        with open('/dev/full', 'wb') as full:
                            p = rt.spawn(argv, stdout=full, stderr=subprocess.PIPE)
                        words = ['no space left']
                    else:
                        rfd, wfd = os.pipe()
                        os.close(rfd)
                        p = rt.spawn(argv, stdout=wfd, stderr=subprocess.PIPE)
                        os.close(wfd)
                        words = ['broken pipe']
                    try:
                        _, err = p.communicate(timeout=rt.T_DUMP)
                    except subprocess.TimeoutExpired:
                        rt._kill(p)
                        _, err = p.communicate()
                    finally:
                        rt._kill(p)
                    res = rt.Result(argv, p.returncode, b'', err, 0, False)
                    desc += res.describe()
                    sub = rt.Problems()
                    rt.check_one_line_error(sub, res, 1, words=words + ['stdout'])
                    for m in sub.items:
                        P.expect(False, '%s: %s' % (name, m))
                P.fail_if_any(desc)
            finally:
                rt._kill(t)
        return fn
    R.case(pfx + 'stdout-full', stdout_errors('full'))
    R.case(pfx + 'stdout-closed-pipe', stdout_errors('pipe'))
