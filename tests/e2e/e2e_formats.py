"""End-to-end tests of the output formats from a real recording (SVG by
default and by extension, --reverse, speedscope, pprof), convert (a round
trip, austin's output) and diff on the command line, and convert's and
diff's bad input and usage errors.  Run by run.py: group(ctx, interps).
"""
import gzip
import json
import os
import re
import shutil
import stat

from harness import (
    check_one_line_error, clip, Failure, label, Lazy, line_of, parse_folded, Problems,
    proc_cmdline, PYSTROBE, RATE, record, run, Skip, T_PROMPT, T_RECORD, Target, THREADS_PY)


def group(ctx, interps):
    """Every output format from a real recording, and convert/diff on the command line."""
    R = ctx.runner
    pfx = 'formats/'
    targets = []

    def py_target():
        if not interps:
            raise Skip('no Python interpreter found')
        I = interps[-1]
        t = Target(ctx.tmp, I.exe, ver=I.ver, only_busy=True)
        targets.append(t)
        t.wait_ready()
        t.settle()
        return t
    py_fx = Lazy(py_target)
    busy_leaf = label('busy', THREADS_PY, line_of('threads', 'busy'))

    def rec(P, d, args, t):
        res = record(['-r', str(RATE), '-d', '1'] + args + ['-p', str(t.pid)])
        P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
        return res

    try:
        def flamegraph(name, args, expect_file):
            def fn():
                t = py_fx.get()
                d = ctx.mkdtemp('svg-')
                P = Problems()
                res = run([PYSTROBE, 'record', '-r', str(RATE), '-d', '1'] + args + ['-p', str(t.pid)],
                          T_RECORD, cwd=d)
                P.expect(res.rc == 0 and not res.timed_out, 'exit status %s, expected 0' % res.rc)
                files = os.listdir(d)
                got = [f for f in files if re.match(expect_file, f)]
                P.expect(len(got) == 1 and len(files) == 1,
                         'files in the folder: %r, expected one matching %r' % (files, expect_file))
                if got:
                    import xml.etree.ElementTree as ET
                    try:
                        root = ET.parse(os.path.join(d, got[0])).getroot()
                    except ET.ParseError as e:
                        P.expect(False, 'not well-formed XML: %s' % e)
                        root = None
                    if root is not None:
                        P.expect(root.tag == '{http://www.w3.org/2000/svg}svg', 'root element %r' % root.tag)
                        titles = [e.text or '' for e in root.iter('{http://www.w3.org/2000/svg}title')]
                        P.expect(any(x.startswith(busy_leaf) for x in titles),
                                 'no frame titled %r among %d titles' % (busy_leaf, len(titles)))
                        texts = {e.get('id'): e.text or '' for e in root.iter('{http://www.w3.org/2000/svg}text')
                                 if e.get('id')}
                        want = ' '.join(proc_cmdline(t.pid)) + ' (pid %d)' % t.pid
                        P.expect(texts.get('title') == want, 'title %r, expected %r' % (texts.get('title'), want))
                        sub = texts.get('subtitle', '')
                        P.expect(re.search(r'started 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ', sub) and
                                 '%d Hz' % RATE in sub and re.search(r'\b\d+ samples$', sub),
                                 'subtitle %r lacks the start, the rate or the sample count' % sub)
                P.fail_if_any(res.describe())
            R.case(pfx + name, fn)
        flamegraph('record-flamegraph-by-default', [], r'^pystrobe-[0-9]+-[0-9]{8}T[0-9]{6}\.svg$')
        flamegraph('record-flamegraph-from-extension', ['-o', 'out.svg'], r'^out\.svg$')
        flamegraph('record-flamegraph-reverse', ['-f', 'flamegraph', '--reverse', '-o', 'x.out'], r'^x\.out$')

        def speedscope():
            t = py_fx.get()
            d = ctx.mkdtemp('ss-')
            out = os.path.join(d, 'out.json')
            P = Problems()
            res = rec(P, d, ['-o', out], t)
            try:
                with open(out, encoding='utf-8') as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                P.expect(False, 'cannot read the JSON: %s' % e)
                doc = None
            if doc is not None:
                frames = doc.get('shared', {}).get('frames', [])
                idx = [i for i, fr in enumerate(frames)
                       if (fr.get('name'), fr.get('file'), fr.get('line')) ==
                       ('busy', THREADS_PY, line_of('threads', 'busy'))]
                P.expect(len(idx) == 1, 'busy\'s frame listed %d times' % len(idx))
                profs = doc.get('profiles', [])
                P.expect(len(profs) >= 1 and all(p.get('type') == 'sampled' for p in profs),
                         'profiles: %r' % [p.get('type') for p in profs])
                leaves = sum(w for p in profs for s, w in zip(p.get('samples', []), p.get('weights', []))
                             if s and idx and s[-1] == idx[0])
                P.expect(leaves > 0, 'no sample has busy as its leaf')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-speedscope', speedscope)

        def pprof():
            t = py_fx.get()
            d = ctx.mkdtemp('pp-')
            out = os.path.join(d, 'out.pb.gz')
            P = Problems()
            res = rec(P, d, ['-o', out], t)
            try:
                with gzip.open(out, 'rb') as f:
                    data = f.read()
            except (OSError, EOFError) as e:
                P.expect(False, 'not gzip: %s' % e)
                data = b''
            P.expect(b'busy' in data and THREADS_PY.encode() in data, 'function or file name missing')
            P.fail_if_any(res.describe())
        R.case(pfx + 'record-pprof', pprof)

        def convert_round_trip():
            t = py_fx.get()
            d = ctx.mkdtemp('conv-')
            out = os.path.join(d, 'out.folded')
            P = Problems()
            res = rec(P, d, ['--threads', '-o', out], t)
            stacks = parse_folded(P, out)
            again = os.path.join(d, 'again.folded')
            r2 = run([PYSTROBE, 'convert', out, '-o', again], T_PROMPT)
            P.expect(r2.rc == 0, 'convert to folded: exit status %s' % r2.rc)
            if stacks is not None:
                with open(out, 'rb') as f1, open(again, 'rb') as f2:
                    P.expect(f1.read() == f2.read(), 'convert IN -o OUT.folded changed the stacks')
            for fmt, ext in (('flamegraph', 'svg'), ('speedscope', 'json'), ('pprof', 'pb.gz')):
                r3 = run([PYSTROBE, 'convert', out, '-f', fmt, '-o', os.path.join(d, 'c.' + ext)], T_PROMPT)
                P.expect(r3.rc == 0 and os.path.getsize(os.path.join(d, 'c.' + ext)) > 0,
                         'convert -f %s: exit status %s' % (fmt, r3.rc))
            r4 = run([PYSTROBE, 'convert', out, '-f', 'folded'], T_PROMPT)
            with open(out, 'rb') as f1:
                P.expect(r4.rc == 0 and r4.out == f1.read(), 'convert to stdout differs')
            P.fail_if_any(res.describe())
        R.case(pfx + 'convert-round-trip', convert_round_trip)

        def diff_top():
            d = ctx.mkdtemp('diff-')
            base, new = os.path.join(d, 'base.folded'), os.path.join(d, 'new.folded')
            with open(base, 'w') as f:
                f.write('thread Main (10);main (a.py:1);slow (a.py:5) 30\nthread Main (10);main (a.py:1);fast (a.py:9) 70\n')
            with open(new, 'w') as f:
                f.write('thread Main (99);main (a.py:1);slow (a.py:5) 120\nthread Main (99);main (a.py:1);fast (a.py:9) 80\n')
            res = run([PYSTROBE, 'diff', base, new, '--top', '2', '-o', os.path.join(d, 'd.svg')], T_PROMPT)
            P = Problems()
            P.expect(res.rc == 0, 'exit status %s' % res.rc)
            lines = res.out_text.strip('\n').split('\n')
            P.expect(len(lines) == 4, '%d lines, expected 2 header lines and 2 frames' % len(lines))
            if len(lines) == 4:
                P.expect(lines[2].split() == ['30.00', '60.00', '+30.00', '30.00', '60.00', '+30.00', 'slow', '(a.py:5)'],
                         'first row %r' % lines[2])
                P.expect(lines[3].split() == ['70.00', '40.00', '-30.00', '70.00', '40.00', '-30.00', 'fast', '(a.py:9)'],
                         'second row %r' % lines[3])
            # The colors: slow grew (red), fast shrank (blue) by as much, main did not change.
            import xml.etree.ElementTree as ET
            ns = '{http://www.w3.org/2000/svg}'
            fills = {}
            try:
                for g in ET.parse(os.path.join(d, 'd.svg')).getroot().iter(ns + 'g'):
                    title, rect = g.find(ns + 'title'), g.find(ns + 'rect')
                    if title is not None and rect is not None:
                        fills[title.text.split(' (')[0]] = rect.get('fill')
            except (OSError, ET.ParseError) as e:
                P.expect(False, 'cannot read the SVG: %s' % e)

            def rgb(name):
                m = re.match(r'^rgb\((\d+),(\d+),(\d+)\)$', fills.get(name) or '')
                return tuple(int(x) for x in m.groups()) if m else None
            slow, fast, main_ = rgb('slow'), rgb('fast'), rgb('main')
            P.expect(slow is not None and slow[0] > slow[2] + 100, 'slow (grew) is not red: %r' % (slow,))
            P.expect(fast is not None and fast[2] > fast[0] + 100, 'fast (shrank) is not blue: %r' % (fast,))
            P.expect(main_ is not None and abs(main_[0] - main_[2]) < 10, 'main (unchanged) is colored: %r' % (main_,))
            P.expect('thread Main' in fills, 'threads not matched by name across runs: %r' % sorted(fills))
            P.fail_if_any(res.describe())
        R.case(pfx + 'diff-top', diff_top)

        def austin_output():
            """Real austin output (Debian's austin 1.0.1) read by convert."""
            austin = shutil.which('austin')
            if not austin:
                raise Skip('austin is not installed (apt-get install austin)')
            old = [I for I in interps if (3, 6) <= I.ver <= (3, 8)]
            if not old:
                raise Skip('no interpreter from 3.6 to 3.8, the newest austin 1.0 reads')
            I = old[-1]
            d = ctx.mkdtemp('austin-')
            script = os.path.join(d, 'spin.py')
            with open(script, 'w') as f:
                f.write('import time\n'
                        'def spin(t):\n'
                        '    while time.time() < t:\n'
                        '        pass\n'
                        'spin(time.time() + 1.5)\n')
            raw = os.path.join(d, 'austin.out')
            # austin gives up when it does not find the interpreter's state within
            # -t ms, which a loaded machine can make it miss: tried three times,
            # with a generous limit, then a failure (austin is there to be read).
            for _ in range(3):
                res = run([austin, '-t', '10000', '-i', '1000', '-o', raw, I.exe, script], 120)
                if res.rc == 0 and os.path.exists(raw) and os.path.getsize(raw) > 0:
                    break
            else:
                raise Failure('austin could not sample %s in 3 tries:%s' % (I.label, res.describe()))
            P = Problems()
            out = os.path.join(d, 'out.folded')
            r2 = run([PYSTROBE, 'convert', raw, '-f', 'folded', '-o', out], T_PROMPT)
            P.expect(r2.rc == 0, 'convert exit status %s: %s' % (r2.rc, r2.err_text.strip()))
            stacks = parse_folded(P, out) or {}
            spin = label('spin', script, 3)
            total = sum(stacks.values())
            on_spin = sum(c for st, c in stacks.items() if st[-1] in (spin, label('spin', script, 4)))
            P.expect(all(re.match(r'^thread \([0-9a-f]+\)$', st[0]) for st in stacks),
                     'stacks not rooted in austin\'s threads: %r' % clip(repr(list(stacks)[:3]), 300))
            P.expect(any(st[-2:] == (label('<module>', script, 5), spin) for st in stacks),
                     'no stack <module> (%s:5);%s' % (script, spin))
            P.expect(total and on_spin > 0.5 * total, 'spin is the leaf of %d of %d' % (on_spin, total))
            r3 = run([PYSTROBE, 'convert', raw, '-o', os.path.join(d, 'out.svg')], T_PROMPT)
            P.expect(r3.rc == 0, 'convert to SVG: exit status %s' % r3.rc)
            P.fail_if_any(r2.describe())
        R.case(pfx + 'convert-austin-output', austin_output)

        # -- bad input to convert and diff
        def bad(name, text, argv_fn, rc, words):
            def fn():
                d = ctx.mkdtemp('bad-')
                src = os.path.join(d, 'in.folded')
                if text is not None:
                    with open(src, 'wb') as f:
                        f.write(text)
                before = sorted(os.listdir(d))
                res = run([PYSTROBE] + argv_fn(src, os.path.join(d, 'out.svg')), T_PROMPT)
                P = Problems()
                check_one_line_error(P, res, rc, words=words)
                P.expect(sorted(os.listdir(d)) == before, 'files left behind: %r' % os.listdir(d))
                P.fail_if_any(res.describe())
            R.case('errors/' + name, fn)
        conv = lambda s, o: ['convert', s, '-o', o]
        bad('convert-malformed-count', b'a;b 1\na;b 2\na;b two\n', conv, 1, ['in.folded:3:', 'count'])
        bad('convert-empty-frame', b'a;;b 1\n', conv, 1, ['in.folded:1:', 'empty'])
        bad('convert-binary', b'\x00\x01\x02 1\n', conv, 1, ['in.folded:1:', 'NUL'])
        bad('convert-no-samples', b'\n\n', conv, 1, ['no samples'])
        bad('convert-missing-file', None, conv, 1, ['in.folded'])
        bad('convert-unwritable', b'a 1\n', lambda s, o: ['convert', s, '-o', os.path.join(o, 'x.svg')], 1, [])
        def device_full():
            if not os.path.exists('/dev/full') or not stat.S_ISCHR(os.stat('/dev/full').st_mode):
                raise Skip('no /dev/full character device')
            d = ctx.mkdtemp('full-')
            src = os.path.join(d, 'in.folded')
            with open(src, 'w') as f:
                f.write(''.join('a;b%d 1\n' % i for i in range(5000)))
            P = Problems()
            for fmt in ('flamegraph', 'folded', 'speedscope', 'pprof'):
                res = run([PYSTROBE, 'convert', src, '-f', fmt, '-o', '/dev/full'], T_PROMPT)
                check_one_line_error(P, res, 1, words=['/dev/full', 'no space left'])
                st = os.stat('/dev/full')
                P.expect(stat.S_ISCHR(st.st_mode), '-f %s: /dev/full was replaced by a regular file' % fmt)
                if not stat.S_ISCHR(st.st_mode):
                    break
            P.fail_if_any(res.describe())
        R.case('errors/convert-output-device-full', device_full)
        bad('usage-convert-no-input', b'a 1\n', lambda s, o: ['convert', '-o', o], 2, [])
        bad('usage-convert-two-inputs', b'a 1\n', lambda s, o: ['convert', s, s, '-o', o], 2, [])
        bad('usage-convert-unknown-format', b'a 1\n', lambda s, o: ['convert', s, '-f', 'png', '-o', o], 2, ['png'])
        bad('usage-diff-one-input', b'a 1\n', lambda s, o: ['diff', s, '-o', o], 2, [])
        bad('usage-diff-not-svg', b'a 1\n', lambda s, o: ['diff', s, s, '-o', o + '.json'], 2, ['.svg'])
        bad('usage-diff-top-zero', b'a 1\n', lambda s, o: ['diff', s, s, '--top', '0'], 2, ['--top'])
    finally:
        for t in targets:
            t.close()
