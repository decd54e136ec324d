#!/usr/bin/env python3
"""Checks pystrobe's pprof output with Go's own reader, `go tool pprof`.

    python3 tests/viewers/check_pprof.py PATH_TO_PYSTROBE

Writes a folded fixture (tests/viewers/pprof.folded, next to this script),
converts it with `PYSTROBE convert ... -f pprof`, once without a rate and
once with --rate 100, and checks that:

  * `go tool pprof -top` reports, per function, the flat and cumulative
    values the fixture implies (samples with -sample_index=0, nanoseconds
    with -sample_index=1; by default the time type);
  * `go tool pprof -traces` shows every stack, leaf first, with its count
    and its thread's `thread` and `thread_id` labels;
  * the comments name the exporter, and the gzip header has no clock.

Exit status: 0 pass, 1 fail (with the reason), 77 skip (go is not installed).
Stdlib only.  Go runs with a throwaway HOME, GOPATH and GOCACHE, without the
network (GOPROXY=off, GOTOOLCHAIN=local) and never opens a browser.
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
FIXTURE_PATH = os.path.join(HERE, 'pprof.folded')
RATE = 100
PERIOD_NS = 10 ** 9 // RATE
SKIP = 77

# Folded stacks, root first, each rooted in its thread: "thread NAME (TID)".
# It has recursion (walk), one name in two files (helper: pprof merges them
# by name), a native library frame, a marker, a thread name with a space and
# names that are not ASCII.
FIXTURE = """\
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:5);compute (/app/calc.py:20);square (/app/calc.py:3) 30
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:5);compute (/app/calc.py:21) 12
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:6);walk (/app/tree.py:8);walk (/app/tree.py:8);walk (/app/tree.py:9) 7
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:7);helper (/app/a.py:1) 4
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:7);helper (/app/b.py:2) 3
thread MainThread (1001);<module> (/app/main.py:10);main (/app/main.py:8);loads (/usr/lib/python3.12/json/__init__.py:346);scan_once (_json.c:1150) 9
thread worker 2 (1002);_bootstrap (/usr/lib/python3.12/threading.py:1030);run (/app/w.py:3);[idle] 20
thread worker 2 (1002);_bootstrap (/usr/lib/python3.12/threading.py:1030);run (/app/w.py:4);naïve_函数 (/app/ü.py:4);memcpy (libc.so.6) 5
thread worker 2 (1002);_bootstrap (/usr/lib/python3.12/threading.py:1030);run (/app/w.py:4);[gil wait] 2
thread pool-3 (1003);_bootstrap (/usr/lib/python3.12/threading.py:1030);compute (/app/calc.py:20);square (/app/calc.py:3) 6
"""

THREAD_RE = re.compile(r'^thread (.+) \((\d+)\)$')
FRAME_RE = re.compile(r'^(.*) \(([^()]*)\)$')


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def parse_fixture(text):
    """[(thread name, tid, [function names, root first], count)], equal stacks merged."""
    merged = collections.OrderedDict()
    for line in text.splitlines():
        stack, count = line.rsplit(' ', 1)
        frames = stack.split(';')
        m = THREAD_RE.match(frames[0])
        if not m:
            raise Failure('fixture line without a thread root: %r' % line)
        # Stacks merge by their whole labels (pystrobe does), not by names alone.
        key = (m.group(1), int(m.group(2)), tuple(frames[1:]))
        merged[key] = merged.get(key, 0) + int(count)
    result = []
    for (thread, tid, frames), count in merged.items():
        names = []
        for f in frames:
            fm = FRAME_RE.match(f)
            names.append(fm.group(1) if fm else f)
        result.append((thread, tid, names, count))
    return result


def expected_top(stacks, scale):
    """{function: (flat, cum)} as pprof counts them: cum once per sample however deep the recursion."""
    flat = collections.Counter()
    cum = collections.Counter()
    for _, _, names, count in stacks:
        flat[names[-1]] += count * scale
        for n in set(names):
            cum[n] += count * scale
    return {n: (flat[n], cum[n]) for n in cum}


def run(cmd, env, timeout, what):
    try:
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure('%s took more than %ds: %s' % (what, timeout, ' '.join(cmd)))
    out = r.stdout.decode('utf-8', 'replace')
    err = r.stderr.decode('utf-8', 'replace')
    if r.returncode != 0:
        if 'no such tool' in err:
            raise Skip('go has no pprof tool: ' + err.strip())
        raise Failure('%s failed (exit %d): %s\n%s%s' % (what, r.returncode, ' '.join(cmd), out, err))
    return out


def parse_value(text, unit):
    """A value as pprof prints it: a count, or nanoseconds with -unit=ns ("0" has no unit)."""
    if text == '0':
        return 0
    if unit == 'ns':
        if not text.endswith('ns'):
            raise Failure('expected a value in ns, got %r' % text)
        text = text[:-2]
    if not text.isdigit():
        raise Failure('cannot read the value %r (unit %s)' % (text, unit or 'count'))
    return int(text)


TOP_ROW = re.compile(r'^\s*(\S+)\s+(\S+)%\s+(\S+)%\s+(\S+)\s+(\S+)%\s+(.+)$')


def parse_top(out, unit):
    """{function: (flat, cum)} from `-top`."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.split() == ['flat', 'flat%', 'sum%', 'cum', 'cum%']:
            break
    else:
        raise Failure('no table in the -top output:\n' + out)
    rows = {}
    for line in lines[i + 1:]:
        m = TOP_ROW.match(line)
        if not m:
            raise Failure('cannot read the -top row %r' % line)
        name = m.group(6)
        if name in rows:
            raise Failure('-top lists %r twice' % name)
        rows[name] = (parse_value(m.group(1), unit), parse_value(m.group(4), unit))
    return rows


def compare_top(got, want, what):
    problems = []
    for name in sorted(set(got) | set(want)):
        if name not in got:
            problems.append('  %s: missing (expected flat %d, cum %d)' % ((name,) + want[name]))
        elif name not in want:
            problems.append('  %s: unexpected (flat %d, cum %d)' % ((name,) + got[name]))
        elif got[name] != want[name]:
            problems.append('  %s: flat %d, cum %d; expected flat %d, cum %d'
                            % ((name,) + got[name] + want[name]))
    if problems:
        raise Failure('%s does not match the fixture:\n%s' % (what, '\n'.join(problems)))


LABEL_LINE = re.compile(r'^\s*([A-Za-z_]+):  (.*)$')
VALUE_LINE = re.compile(r'^\s*(\d+\S*)   (.+)$')
MORE_LINE = re.compile(r'^ {13,}(\S.*)$')


def parse_traces(out, unit):
    """[(thread name, tid, [function names, leaf first], value)] from `-traces`."""
    samples = []
    block = None
    for line in out.splitlines():
        if line.startswith('-----------+'):
            if block is not None and block['names']:
                samples.append(block)
            block = {'labels': {}, 'names': [], 'value': None}
            continue
        if block is None:
            continue  # the header
        m = LABEL_LINE.match(line)
        if m and not block['names']:
            block['labels'][m.group(1)] = m.group(2)
            continue
        m = VALUE_LINE.match(line)
        if m and not block['names']:
            block['value'] = parse_value(m.group(1), unit)
            block['names'].append(m.group(2))
            continue
        m = MORE_LINE.match(line)
        if m and block['names']:
            block['names'].append(m.group(1))
            continue
        if line.strip():
            raise Failure('cannot read the -traces line %r' % line)
    if block is not None and block['names']:
        samples.append(block)
    result = []
    for b in samples:
        tid = b['labels'].get('thread_id')
        result.append((b['labels'].get('thread'), int(tid) if tid and tid.isdigit() else tid,
                       b['names'], b['value']))
    return result


def compare_traces(got, stacks, scale):
    def key(s):
        return (str(s[0]), str(s[1]), s[2], str(s[3]))
    want = sorted(((t, tid, list(reversed(names)), count * scale) for t, tid, names, count in stacks), key=key)
    got = sorted(got, key=key)
    if got != want:
        lines = ['-traces does not show the fixture\'s stacks and thread labels.', 'expected:']
        lines += ['  thread=%r thread_id=%r %d: %s' % (t, tid, v, ' <- '.join(n)) for t, tid, n, v in want]
        lines.append('got:')
        lines += ['  thread=%r thread_id=%r %s: %s' % (t, tid, v, ' <- '.join(n)) for t, tid, n, v in got]
        raise Failure('\n'.join(lines))


def find_go():
    go = shutil.which('go')
    if go:
        return go
    for cand in ('/usr/bin/go', '/usr/lib/go/bin/go', '/usr/local/go/bin/go'):
        if os.access(cand, os.X_OK):
            return cand
    return None


def go_env(tmp):
    env = dict(os.environ)
    for k in list(env):
        # The user's go and pprof settings, and proxies: none of them apply here.
        if k.startswith(('GO', 'PPROF_')) or k.lower().endswith('_proxy'):
            del env[k]
    for d in ('home', 'gopath', 'gocache', 'pprof'):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    env.update({
        'HOME': os.path.join(tmp, 'home'),
        'GOPATH': os.path.join(tmp, 'gopath'),
        'GOCACHE': os.path.join(tmp, 'gocache'),
        'GOENV': 'off',
        'GOTOOLCHAIN': 'local',   # never download another toolchain
        'GOPROXY': 'off',
        'GOFLAGS': '',
        'PPROF_TMPDIR': os.path.join(tmp, 'pprof'),
        'PPROF_BINARY_PATH': os.path.join(tmp, 'pprof'),
        'BROWSER': 'false',       # text reports only; should anything try, it opens nothing
        'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
        'HTTP_PROXY': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9',
        'no_proxy': '', 'NO_PROXY': '',
    })
    return env


def check(pystrobe):
    go = find_go()
    if not go:
        raise Skip('go is not installed (apt-get install golang-go)')
    with open(FIXTURE_PATH, 'w', encoding='utf-8') as f:
        f.write(FIXTURE)
    stacks = parse_fixture(FIXTURE)
    total = sum(s[3] for s in stacks)
    with tempfile.TemporaryDirectory(prefix='check_pprof.') as tmp:
        env = go_env(tmp)
        plain = os.path.join(tmp, 'plain.pb.gz')
        timed = os.path.join(tmp, 'timed.pb.gz')
        run([pystrobe, 'convert', FIXTURE_PATH, '-f', 'pprof', '-o', plain], None, 60, 'pystrobe convert')
        run([pystrobe, 'convert', FIXTURE_PATH, '-f', 'pprof', '--rate', str(RATE), '-o', timed], None, 60,
            'pystrobe convert --rate')
        for path in (plain, timed):
            with open(path, 'rb') as f:
                head = f.read(10)
            if head[:3] != b'\x1f\x8b\x08' or head[4:8] != b'\0\0\0\0':
                raise Failure('%s: not gzip, or its header has a modification time: %r' % (path, head))

        def pprof(*args, path=timed):
            # -symbolize=none: the file has everything; never look for binaries or servers.
            return run([go, 'tool', 'pprof', '-symbolize=none'] + list(args) + [path], env, 300,
                       'go tool pprof ' + ' '.join(args))

        top = ['-top', '-nodecount=1000', '-nodefraction=0', '-edgefraction=0']
        counts = expected_top(stacks, 1)
        times = expected_top(stacks, PERIOD_NS)

        out = pprof(*top, path=plain)
        if 'Type: samples' not in out:
            raise Failure('without a rate the profile should only have samples:\n' + out)
        compare_top(parse_top(out, None), counts, '-top (no rate)')

        compare_top(parse_top(pprof(*top, '-sample_index=0'), None), counts, '-top -sample_index=0')
        compare_top(parse_top(pprof(*top, '-sample_index=1', '-unit=ns'), 'ns'), times,
                    '-top -sample_index=1')
        out = pprof(*top, '-unit=ns')
        if 'Type: cpu' not in out:
            raise Failure('the default sample type should be cpu time:\n' + out)
        compare_top(parse_top(out, 'ns'), times, '-top (default sample type)')
        if sum(v[0] for v in parse_top(out, 'ns').values()) != total * PERIOD_NS:
            raise Failure('-top: flat values do not add up to %d samples' % total)

        compare_traces(parse_traces(pprof('-traces', '-sample_index=0'), None), stacks, 1)
        compare_traces(parse_traces(pprof('-traces', '-sample_index=1', '-unit=ns'), 'ns'), stacks,
                       PERIOD_NS)
        compare_traces(parse_traces(pprof('-traces', path=plain), None), stacks, 1)

        out = pprof('-comments')
        if not re.search(r'^pystrobe \d', out, re.M) or 'pprof.folded' not in out:
            raise Failure('-comments should name pystrobe and the title:\n' + out)


def main(argv):
    if len(argv) != 2:
        print('usage: check_pprof.py PATH_TO_PYSTROBE', file=sys.stderr)
        return 1
    pystrobe = os.path.abspath(argv[1])
    if not os.access(pystrobe, os.X_OK):
        print('FAIL check_pprof: %s is not an executable' % pystrobe)
        return 1
    try:
        check(pystrobe)
    except Skip as e:
        print('SKIP check_pprof: %s' % e)
        return SKIP
    except Failure as e:
        print('FAIL check_pprof: %s' % e)
        return 1
    print('PASS check_pprof: go tool pprof -top and -traces agree with %s'
          % os.path.relpath(FIXTURE_PATH))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
