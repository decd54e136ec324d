"""The Python interpreters on this machine: one discovery for the end-to-end
tests (tests/e2e/), the stress tests (tests/stress/) and the benchmark
(bench/).

    sys.path.insert(0, 'ROOT/tests'); from interps import discover
    for I in discover(): I.label, I.exe, I.ver, I.kind, I.xy

Four kinds, in this order, each sorted by version:

- 'pyenv': every versions/*/bin/pythonX.Y under the pyenv root
  ($PYENV_ROOT, else `pyenv root`, else ~/.pyenv); labelled 'X.Y.Z';
- 'system': /usr/bin/python3; labelled 'debian-X.Y.Z' on Debian
  (/etc/debian_version exists), else 'system-X.Y.Z';
- 'path': any other pythonX.Y on PATH (pyenv's shims are not looked at);
  labelled 'path-X.Y.Z';
- 'root': every /usr/bin/python3.X (X >= 13) of a Debian root made with
  debootstrap (.ci/sid-root), at $PYSTROBE_TEST_ROOT, else ROOT_DEFAULT;
  labelled 'sid-X.Y.Z' (the codename /etc/debian_version ends with, else
  'root-X.Y.Z').  Found only when run as root.

Only ELF executables that run and print their version are kept (no shell
wrappers, no shims; a root's python3.X must be ELF, and runs behind the
wrapper made here); one interpreter reached by several names is kept once
(by realpath, the first found); a label taken twice gets -2, -3, ... The
test names carry the labels (3.12.1/dump-json, debian-3.11.2/record-idle).

A root interpreter's I.exe is a wrapper made here (build/root-interps/),
a shell script in which every step execs the next, so that the process
the harness spawns (and its PID) becomes the interpreter: `unshare --mount`,
the repository, /tmp ($TMPDIR), /proc, /dev and /sys bind-mounted at the same
paths inside the root (private to that process), then `unshare --root=DIR
--wd=CWD /usr/bin/python3.X ARGS`.  Scripts and files under the repository
and /tmp are thus the same paths inside and out.  What the target itself
sees as its executable is I.target_exe (/usr/bin/python3.X: sys.executable,
its command line, /proc/PID/exe read inside); the binary as the host names
it is I.host_exe (DIR/usr/bin/python3.X); I.root is DIR (None for the
other kinds).  I.argv_as(prefix, argv) runs argv with prefix (setpriv ...,
which drops root) applied inside the root, after the mounts.

Stdlib only; Python 3.6+.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess

SYSTEM_PYTHON = '/usr/bin/python3'
KINDS = ('pyenv', 'system', 'path', 'root')
# Where .ci/sid-root makes the root by default, and the versions it installs.
ROOT_DEFAULT = '/var/cache/pystrobe/sid-root'
ROOT_VERSIONS = ('3.13', '3.14', '3.15')
REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class Interp(object):
    def __init__(self, label, exe, ver, kind, root=None, inner=None):
        self.label, self.exe, self.ver, self.kind = label, exe, ver, kind
        self.root, self.inner = root, inner

    @property
    def xy(self):
        return '%d.%d' % self.ver[:2]

    @property
    def target_exe(self):
        """The executable as the running interpreter names it (sys.executable)."""
        return self.inner if self.root else self.exe

    @property
    def host_exe(self):
        """The interpreter's binary, as a path on this machine (realpath)."""
        return os.path.realpath(self.root + self.inner if self.root else self.exe)

    def wrap(self, inner):
        """An executable that runs inner (a path inside the root: a venv's
        python, a copy of the binary under /tmp) as I.exe runs the root's
        interpreter; inner itself for the other kinds."""
        return make_wrapper(self.root, inner) if self.root else inner

    def host_view(self, inner):
        """How this machine's /proc (maps, exe links) names a file the
        interpreter sees at inner: its mount namespace is not ours, so the
        kernel names it from that namespace's top, the root's path first."""
        return self.root + inner if self.root else inner

    def argv_as(self, prefix, argv):
        """argv (which starts with self.exe) run through prefix (e.g. setpriv
        --reuid=nobody ...): before the interpreter, inside the root for a root
        interpreter (where the wrapper's mounts need root)."""
        if not self.root:
            return list(prefix) + list(argv)
        assert argv[0] == self.exe
        return ['env', 'PYSTROBE_ROOT_PREFIX=' + '\x1f'.join(prefix)] + list(argv)

    def __repr__(self):
        return 'Interp(%s, %s)' % (self.label, self.exe)


def pyenv_root():
    root = os.environ.get('PYENV_ROOT')
    if root:
        return root
    if shutil.which('pyenv'):
        try:
            r = subprocess.run(['pyenv', 'root'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=30)
            out = r.stdout.decode().strip()
            if r.returncode == 0 and out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser('~/.pyenv')


def is_elf(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'\x7fELF'
    except OSError:
        return False


def version_of(exe):
    """(X, Y, Z) the interpreter reports, or None."""
    try:
        r = subprocess.run([exe, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
        ver = tuple(int(x) for x in r.stdout.decode().strip().split('.'))
    except Exception:
        return None
    return ver if len(ver) == 3 else None


def test_root():
    """The Debian root the tests look in."""
    return os.environ.get('PYSTROBE_TEST_ROOT') or ROOT_DEFAULT


def root_problem(root=None):
    """Why the root has no interpreters to test (a phrase), or None."""
    root = root or test_root()
    if os.geteuid() != 0:
        return 'running a root\'s interpreters needs root (unshare --mount, chroot)'
    if not os.path.isdir(os.path.join(root, 'usr', 'bin')):
        why = ''
        try:
            with open(root + '.error') as f:
                why = ': ' + f.read().strip()
        except OSError:
            pass
        return 'no root at %s (made by .ci/sid-root)%s' % (root, why)
    for tool in ('unshare', 'mount'):
        if not shutil.which(tool):
            return 'no %s(1) to run the root\'s interpreters' % tool
    return None


def root_prefix(root):
    """Labels' prefix: the codename the root's /etc/debian_version ends with ('sid')."""
    try:
        with open(os.path.join(root, 'etc', 'debian_version')) as f:
            name = f.read().strip().rsplit('/', 1)[-1]
    except OSError:
        name = ''
    return name if re.match(r'^[a-z]+$', name) else 'root'


# Each step execs the next: the PID spawned is the interpreter's.  The mounts
# are private to the new mount namespace; $PYSTROBE_ROOT_PREFIX (fields split
# by \x1f) runs inside the root before the interpreter (setpriv drops root
# only once the mounts and the chroot are done).
WRAPPER = r'''#!/bin/sh
# %(inner)s of the Debian root %(root)s, for pystrobe's tests
# (made by tests/interps.py: do not edit).
exec unshare --mount --propagation private /bin/sh -c '
set -e -f
root=$1; py=$2; binds=$3; shift 3
us=$(printf "\037")
IFS=$us
for d in $binds; do
    mkdir -p "$root$d"
    mount --rbind "$d" "$root$d"
done
mount --rbind /proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
wd=$(pwd)
if [ ! -d "$root$wd" ]; then
    echo "$0: the working directory $wd is not inside $root (only $binds are)" >&2
    exit 126
fi
pfx=${PYSTROBE_ROOT_PREFIX-}
unset PYSTROBE_ROOT_PREFIX
exec unshare --root="$root" --wd="$wd" $pfx "$py" "$@"' %(name)s %(qroot)s %(inner)s %(binds)s "$@"
'''


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def make_wrapper(root, inner):
    """The wrapper that runs root's inner as if it were this machine's (see the top)."""
    binds = [REPO, '/tmp']
    tmpdir = os.environ.get('TMPDIR')
    if tmpdir and os.path.isabs(tmpdir) and os.path.realpath(tmpdir) not in binds:
        binds.append(os.path.realpath(tmpdir))
    d = os.path.join(REPO, 'build', 'root-interps', re.sub(r'[^A-Za-z0-9.-]', '_', root.strip('/')))
    name = os.path.basename(inner)
    if inner != '/usr/bin/' + name:     # a venv's python, a copy: one wrapper per path
        name += '-' + hashlib.sha1(inner.encode()).hexdigest()[:10]
    path = os.path.join(d, name)
    text = WRAPPER % {'root': root, 'inner': inner, 'qroot': shq(root),
                      'binds': shq('\x1f'.join(binds)), 'name': shq(path)}
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    os.makedirs(d, exist_ok=True)
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return path


def root_candidates(root=None):
    """[(wrapper, inner)]: the root's python3.X (X >= 13) that are ELF files."""
    root = root or test_root()
    if root_problem(root):
        return []
    out = []
    bindir = os.path.join(root, 'usr', 'bin')
    for n in sorted(os.listdir(bindir)):
        m = re.match(r'^python3\.(\d+)$', n)
        if not m or int(m.group(1)) < 13:
            continue
        inner = '/usr/bin/' + n
        real = os.path.join(bindir, n)
        if os.path.islink(real) or not is_elf(real) or not os.access(real, os.X_OK):
            continue
        out.append((make_wrapper(os.path.realpath(root), inner), inner))
    return out


def candidates():
    """(kind, path) in the order they are looked at."""
    root = pyenv_root()
    cands = []
    for exe in sorted(glob.glob(os.path.join(root, 'versions', '*', 'bin', 'python*'))):
        if re.match(r'^python\d\.\d+$', os.path.basename(exe)):
            cands.append(('pyenv', exe))
    if os.path.exists(SYSTEM_PYTHON):
        cands.append(('system', SYSTEM_PYTHON))
    shims = os.path.realpath(os.path.join(root, 'shims'))
    for d in os.environ.get('PATH', '').split(os.pathsep):
        if not d or os.path.realpath(d) == shims:
            continue
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        cands.extend(('path', os.path.join(d, n)) for n in names if re.match(r'^python\d\.\d+$', n))
    return cands


def discover():
    """Every interpreter found, as Interp: pyenv's, then the system's, then
    PATH's, then the root's, each sorted by version."""
    seen, labels, found = set(), set(), []
    root = os.path.realpath(test_root())
    for kind, exe, inner in [c + (None,) for c in candidates()] + \
            [('root', w, i) for w, i in root_candidates(root)]:
        if kind == 'root':
            ver = version_of(exe)
            if ver is None:
                continue
            lab = '%s-%d.%d.%d' % ((root_prefix(root),) + ver)
            labels.add(lab)
            found.append((KINDS.index(kind), ver, Interp(lab, exe, ver, kind, root, inner)))
            continue
        real = os.path.realpath(exe)
        if real in seen or not os.access(real, os.X_OK) or not is_elf(real):
            continue
        seen.add(real)
        ver = version_of(exe)
        if ver is None:
            continue
        v = '%d.%d.%d' % ver
        if kind == 'pyenv':
            lab = v
        elif kind == 'system':
            lab = ('debian-' if os.path.exists('/etc/debian_version') else 'system-') + v
        else:
            lab = 'path-' + v
        base, n = lab, 2
        while lab in labels:
            lab = '%s-%d' % (base, n)
            n += 1
        labels.add(lab)
        found.append((KINDS.index(kind), ver, Interp(lab, exe, ver, kind)))
    found.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in found]


if __name__ == '__main__':
    found = discover()
    for I in found:
        print('%-16s %-6s %s%s' % (I.label, I.kind, I.exe,
                                    ' (%s in %s)' % (I.inner, I.root) if I.root else ''))
    if not any(I.kind == 'root' for I in found):
        print('no root interpreters: %s' % (root_problem() or 'none in ' + test_root()))
