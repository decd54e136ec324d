#!/usr/bin/env python3
"""The skips of a `make check` run against the allow-list.

    python3 tests/skips.py LOG

LOG: the output of every test runner (lines "SKIP NAME" or "SKIP NAME: why").
tests/skips-allowed.txt lists the tests that may skip: one "PATTERN REASON"
a line (PATTERN a shell glob on the test name), # comments.  With CI=true in
the environment a skip the list does not allow fails (exit status 1): a
machine that cannot run a test loses its coverage quietly otherwise.
Without CI=true they are listed and the exit status is 0.  Stdlib only.
"""
import fnmatch
import os
import re
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ALLOWED = os.path.join(HERE, 'skips-allowed.txt')
SKIP_RE = re.compile(r'^SKIP (\S+?)(?::\s*(.*))?$')


def load_allowed(path):
    """[(pattern, reason)]; an entry without a reason is an error."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                raise ValueError('%s:%d: "%s" says no reason' % (path, n, line))
            out.append((parts[0], parts[1]))
    return out


def main():
    if len(sys.argv) != 2:
        sys.stderr.write('usage: %s LOG\n' % sys.argv[0])
        sys.exit(2)
    try:
        allowed = load_allowed(ALLOWED)
        with open(sys.argv[1], 'rb') as f:
            lines = f.read().decode('utf-8', 'replace').splitlines()
    except (OSError, ValueError) as e:
        print('FAIL skips: %s' % e)
        sys.exit(1)
    ci = os.environ.get('CI') == 'true'
    skips = [m.groups() for m in (SKIP_RE.match(x) for x in lines) if m]
    bad = [(name, why) for name, why in skips
           if not any(fnmatch.fnmatchcase(name, pat) for pat, _ in allowed)]
    for name, why in bad:
        print('%s %s: skipped, and not in tests/skips-allowed.txt%s'
              % ('FAIL' if ci else 'NOTE', name, (' (%s)' % why) if why else ''))
    print('skips: %d skipped, %d allowed by tests/skips-allowed.txt, %d not%s'
          % (len(skips), len(skips) - len(bad), len(bad),
             ' (CI=true: they fail the run)' if ci and bad else
             '' if ci else ' (they fail the run when CI=true)' if bad else ''))
    sys.exit(1 if ci and bad else 0)


if __name__ == '__main__':
    main()
