"""The Python interpreters on this machine: one discovery for the end-to-end
tests (tests/e2e/), the stress tests (tests/stress/) and the benchmark
(bench/).

    sys.path.insert(0, 'ROOT/tests'); from interps import discover
    for I in discover(): I.label, I.exe, I.ver, I.kind, I.xy

Three kinds, in this order, each sorted by version:

- 'pyenv': every versions/*/bin/pythonX.Y under the pyenv root
  ($PYENV_ROOT, else `pyenv root`, else ~/.pyenv); labelled 'X.Y.Z';
- 'system': /usr/bin/python3; labelled 'debian-X.Y.Z' on Debian
  (/etc/debian_version exists), else 'system-X.Y.Z';
- 'path': any other pythonX.Y on PATH (pyenv's shims are not looked at);
  labelled 'path-X.Y.Z'.

Only ELF executables that run and print their version are kept (no shell
wrappers, no shims); one interpreter reached by several names is kept once
(by realpath, the first found); a label taken twice gets -2, -3, ... The
test names carry the labels (3.12.1/dump-json, debian-3.11.2/record-idle).

Stdlib only; Python 3.6+.
"""
import glob
import os
import re
import shutil
import subprocess

SYSTEM_PYTHON = '/usr/bin/python3'
KINDS = ('pyenv', 'system', 'path')


class Interp(object):
    def __init__(self, label, exe, ver, kind):
        self.label, self.exe, self.ver, self.kind = label, exe, ver, kind

    @property
    def xy(self):
        return '%d.%d' % self.ver[:2]

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
    PATH's, each sorted by version."""
    seen, labels, found = set(), set(), []
    for kind, exe in candidates():
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
    for I in discover():
        print('%-16s %-6s %s' % (I.label, I.kind, I.exe))
