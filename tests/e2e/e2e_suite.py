"""End-to-end checks of the test machine itself, run by run.py:
group(ctx, interps, rt), where rt is run.py's module.

With CI=true in the environment (.ci/run), the machine must be the image
the tests are written for: a missing interpreter, or gevent or eventlet
missing from Debian's python3, would otherwise only drop the tests that
need them (they are registered only where they can run) and the run would
pass with less coverage.  Outside CI nothing is registered: a developer's
machine may hold fewer interpreters.
"""
import os
import re

import e2e_greenlets

# What the machine image provides: pyenv builds of these (X.Y) ...
PYENV_VERSIONS = ('2.7', '3.6', '3.7', '3.8', '3.9', '3.10', '3.11', '3.12', '3.13')
# ... Debian's interpreter, and these libraries for it (python3-gevent, python3-eventlet).
DEBIAN_PYTHON = '/usr/bin/python3'
DEBIAN_LIBS = ('gevent', 'eventlet')


def in_ci():
    return os.environ.get('CI') == 'true'


def missing_interpreters(interps):
    """What the image provides that discovery did not find, as phrases."""
    missing = []
    pyenv = set('%d.%d' % I.ver[:2] for I in interps if re.match(r'^\d', I.label))
    for xy in PYENV_VERSIONS:
        if xy not in pyenv:
            missing.append('pyenv Python %s' % xy)
    if not any(os.path.realpath(I.exe) == os.path.realpath(DEBIAN_PYTHON) for I in interps):
        missing.append('Debian\'s %s' % DEBIAN_PYTHON)
    return missing


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
    R.case('ci/interpreters', interpreters, needs_pystrobe=False)

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
