#!/usr/bin/env python3
"""The SVG flame graph in a real browser (headless Chromium over CDP).

    python3 tests/viewers/check_svg.py PATH_TO_PYSTROBE [--keep DIR]

Makes flame graphs of flamegraph.folded (next to this file) with
``PYSTROBE convert IN -f flamegraph -o OUT`` (and ``--reverse``), opens them
in Chromium and checks: the screenshot shows frames; the number of frames
and a known frame's width; a real click zooms and Reset zoom restores; the
Search control (prompt answered with a regex) highlights the expected frames
and reports the expected share; ?s= searches at load; hostile frame names
stay text and run nothing; --reverse draws the root at the top.

Exit status: 0 pass, 1 fail (saying what failed), 77 skip (no Chromium).
--keep DIR keeps the SVGs and screenshots there.  Python 3 stdlib only.
"""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import cdp  # noqa: E402

FIXTURE = os.path.join(HERE, 'flamegraph.folded')
TIMEOUT = 60          # seconds for the browser
HARD_TIMEOUT = 120    # seconds for everything, whatever happens
XPAD, PLOTW = 10, 1180
HIGHLIGHT = 'rgb(230, 0, 230)'
HOSTILE = ('</svg><script>alert(1)</script>', '<img src=x onerror="window.PWNED=1">',
           '<script>window.PWNED=1</script>', ']]></script><script>window.PWNED=1</script><script>')


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- what the fixture should draw -----------------------------------------------------

def read_folded(path):
    stacks = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line:
                continue
            frames, count = line.rsplit(' ', 1)
            stacks.append((frames.split(';'), int(count)))
    return stacks


def tree_nodes(stacks):
    """{path tuple: samples} for every node below the root."""
    nodes = {}
    for frames, count in stacks:
        for i in range(1, len(frames) + 1):
            nodes[tuple(frames[:i])] = nodes.get(tuple(frames[:i]), 0) + count
    return nodes


def matched_share(stacks, regex):
    """Share of samples under frames matching regex, each sample once."""
    total = sum(c for _, c in stacks)
    hit = sum(c for frames, c in stacks if any(re.search(regex, f) for f in frames))
    return '%.2f' % (100.0 * hit / total)


# ---- the page --------------------------------------------------------------------------

FRAMES_JS = r'''
Array.from(document.getElementById("frames").children).map(function (g) {
    var r = g.getElementsByTagName("rect")[0], b = r.getBoundingClientRect();
    var t = g.getElementsByTagName("text")[0];
    return {title: g.getElementsByTagName("title")[0].textContent,
            x: +r.getAttribute("x"), y: +r.getAttribute("y"), w: +r.getAttribute("width"),
            fill: getComputedStyle(r).fill, cls: g.getAttribute("class") || "",
            shown: getComputedStyle(g).display !== "none",
            cx: b.left + b.width / 2, cy: b.top + b.height / 2,
            text: t ? t.textContent : ""};
})
'''

CONTROL_JS = r'''
(function (id) {
    var e = document.getElementById(id), b = e.getBoundingClientRect();
    return {shown: getComputedStyle(e).display !== "none" && b.width > 0, text: e.textContent,
            cx: b.left + b.width / 2, cy: b.top + b.height / 2};
})(%r)
'''


def label_of(title):
    return re.sub(r' \([^()]*\)$', '', title)


WIDE = ((0x1100, 0x115f), (0x2e80, 0xa4cf), (0xac00, 0xd7a3), (0xf900, 0xfaff), (0xfe30, 0xfe4f),
        (0xff00, 0xff60), (0xffe0, 0xffe6), (0x1f300, 0x1faff), (0x20000, 0x3fffd))


def fit(label, w):
    """The label a frame w pixels wide should show: 7.2 px per glyph (twice for wide ones),
    3 px inset each side, cut with an ellipsis, none when fewer than 3 glyphs fit."""
    room = math.floor((w - 6) / 7.2)  # as C and JS round: not the exact quotient
    if room < 3:
        return ''
    used = keep = 0
    for i, ch in enumerate(label):
        used += 2 if any(lo <= ord(ch) <= hi for lo, hi in WIDE) else 1
        if used <= room - 1:
            keep = i + 1
        if used > room:
            return label[:keep] + '\u2026'
    return label


def check_labels(fr, when):
    for f in fr:
        if f['shown']:
            want = fit(label_of(f['title']), f['w'])
            check(f['text'] == want, '%s: the frame %r (%.2f px) shows %r, expected %r'
                  % (when, label_of(f['title']), f['w'], f['text'], want))


def frames(page):
    return page.evaluate(FRAMES_JS)


def control(page, name):
    return page.evaluate(CONTROL_JS % name)


def find(fr, label):
    hits = [f for f in fr if label_of(f['title']) == label]
    check(hits, 'no frame labelled %r (frames: %s)' % (label, sorted({label_of(f['title']) for f in fr})))
    return hits[0]


# ---- checks ----------------------------------------------------------------------------

def check_screenshot(page, shot, height):
    png = page.screenshot(shot, clip={'x': 0, 'y': 0, 'width': XPAD * 2 + PLOTW, 'height': height})
    w, h, px = cdp.decode_png(png)
    fr = frames(page)
    top = min(f['y'] for f in fr)
    bottom = max(f['y'] for f in fr) + 15
    # The background is a vertical gradient: compare each pixel with its row's left margin.
    busy = 0
    colors = {}
    for y in range(int(top), min(int(bottom), h)):
        row = y * w * 4
        bg = px[row + 8:row + 11]
        for x in range(XPAD, XPAD + PLOTW):
            p = px[row + x * 4:row + x * 4 + 3]
            if sum(abs(a - b) for a, b in zip(p, bg)) > 30:
                busy += 1
                colors[p] = colors.get(p, 0) + 1
    area = PLOTW * (bottom - top)
    check(busy > 0.3 * area, 'screenshot: only %d of %d pixels of the plot differ from the background'
          % (busy, area))
    big = [c for c, n in colors.items() if n >= 150]
    check(len(big) >= 6, 'screenshot: only %d distinct frame colors (%s)' % (len(big), big))


def check_structure(page, stacks):
    fr = frames(page)
    nodes = tree_nodes(stacks)
    total = sum(c for _, c in stacks)
    check(len(fr) == len(nodes) + 1, '%d frames drawn, expected %d (every node and "all")'
          % (len(fr), len(nodes) + 1))
    root = find(fr, 'all')
    check(abs(root['w'] - PLOTW) < 0.01 and abs(root['x'] - XPAD) < 0.01,
          'root frame at x=%s width %s, expected %d, %d' % (root['x'], root['w'], XPAD, PLOTW))
    busy = find(fr, 'busy (/srv/app.py:5)')
    want = 40.0 / total * PLOTW
    check(abs(busy['w'] - want) < 0.02, 'busy (/srv/app.py:5) is %.2f px wide, expected %.2f (40 of %d samples)'
          % (busy['w'], want, total))
    check(busy['title'] == 'busy (/srv/app.py:5) (40 samples, %.2f%%)' % (4000.0 / total),
          'busy tooltip: %r' % busy['title'])
    check(busy['text'] == 'busy (/srv/app.py:5)', 'busy label: %r' % busy['text'])
    check_labels(fr, 'initial view')
    # Hover: the details line shows the tooltip.
    page.hover(busy['cx'], busy['cy'])
    details = page.evaluate('document.getElementById("details").textContent')
    check(details == busy['title'], 'details line on hover: %r, expected %r' % (details, busy['title']))
    return fr


def check_zoom(page, before):
    main = find(before, 'main (/srv/app.py:25)')
    page.click(main['cx'], main['cy'])
    after = frames(page)
    z = find(after, 'main (/srv/app.py:25)')
    check(abs(z['x'] - XPAD) < 0.5 and z['w'] > PLOTW - 0.5,
          'after clicking main (/srv/app.py:25): x=%s width %s, expected the full width' % (z['x'], z['w']))
    busy = find(after, 'busy (/srv/app.py:5)')
    check(abs(busy['w'] - 40.0 / 50 * PLOTW) < 0.02 and busy['shown'],
          'zoomed: busy (/srv/app.py:5) is %.2f px wide, expected %.2f' % (busy['w'], 40.0 / 50 * PLOTW))
    module = find(after, '<module> (/srv/app.py:30)')
    check('parent' in module['cls'] and module['shown'] and abs(module['w'] - PLOTW) < 0.5,
          'zoomed: the caller <module> is not shown full width and dimmed: %r' % module)
    boot = find(after, '_bootstrap (/usr/lib/python3.11/threading.py:995)')
    check(not boot['shown'], 'zoomed: an unrelated frame (_bootstrap) is still shown')
    check_labels(after, 'zoomed')
    reset = control(page, 'unzoom')
    check(reset['shown'] and reset['text'] == 'Reset zoom', 'zoomed: no "Reset zoom" control: %r' % reset)
    page.click(reset['cx'], reset['cy'])
    restored = frames(page)
    for a, b in zip(before, restored):
        check(abs(a['x'] - b['x']) < 0.01 and abs(a['w'] - b['w']) < 0.01 and b['shown'] and 'parent' not in b['cls'],
              'after Reset zoom %r is at x=%s width %s, was x=%s width %s'
              % (label_of(a['title']), b['x'], b['w'], a['x'], a['w']))
        check(a['text'] == b['text'], 'after Reset zoom the label %r became %r' % (a['text'], b['text']))
    check(not control(page, 'unzoom')['shown'], '"Reset zoom" still shown after resetting')


def highlighted(page):
    return sorted(label_of(f['title']) for f in frames(page) if f['fill'] == HIGHLIGHT)


def check_search(page, stacks, regex):
    nodes = tree_nodes(stacks)
    want = sorted(path[-1] for path in nodes if re.search(regex, path[-1]))
    check(want, 'the fixture has no frame matching %r' % regex)
    button = control(page, 'search')
    check(button['shown'] and button['text'] == 'Search', 'no "Search" control: %r' % button)
    prompts = len(page.dialogs)
    page.prompt_answers.append(regex)
    page.click(button['cx'], button['cy'])
    check(len(page.dialogs) == prompts + 1 and page.dialogs[-1]['type'] == 'prompt',
          'clicking Search did not open a prompt (dialogs: %r)' % page.dialogs)
    got = highlighted(page)
    check(got == want, 'search %r highlighted %r, expected %r' % (regex, got, want))
    text = page.evaluate('document.getElementById("matched").textContent')
    share = matched_share(stacks, regex)
    check(text == 'Matched: %s%%' % share, 'search %r shows %r, expected "Matched: %s%%"' % (regex, text, share))
    # Search again while searching: cleared.
    page.click(button['cx'], button['cy'])
    check(len(page.dialogs) == prompts + 1, 'a second click on Search prompted instead of clearing')
    check(highlighted(page) == [], 'a second click on Search left frames highlighted')
    text = page.evaluate('document.getElementById("matched").textContent')
    check(text.strip() == '', 'after clearing the search "matched" still says %r' % text)
    # A regex that does not compile is reported, not thrown.
    page.prompt_answers.append('(unclosed')
    page.click(button['cx'], button['cy'])
    text = page.evaluate('document.getElementById("matched").textContent')
    check('nvalid' in text and highlighted(page) == [], 'an invalid regex gave %r' % text)
    check(not page.exceptions, 'uncaught exceptions in the page: %r' % page.exceptions)


def check_url_search(page, url, stacks, regex):
    page.navigate(url + '?s=' + urllib.parse.quote(regex))
    text = page.evaluate('document.getElementById("matched").textContent')
    share = matched_share(stacks, regex)
    check(text == 'Matched: %s%%' % share, '?s=%s at load shows %r, expected "Matched: %s%%"' % (regex, text, share))
    check(highlighted(page), '?s= at load highlighted nothing')


def check_hostile(page):
    check(all(d['type'] == 'prompt' and d['message'].startswith('Search') for d in page.dialogs),
          'a dialog other than the search prompt opened: %r' % page.dialogs)
    check(page.evaluate('typeof window.PWNED') == 'undefined', 'window.PWNED was set: a frame name ran')
    n = page.evaluate('document.getElementsByTagNameNS("*", "script").length')
    check(n == 1, 'the document has %d script elements, expected 1' % n)
    n = page.evaluate('document.getElementsByTagNameNS("*", "img").length')
    check(n == 0, 'the document has %d img elements' % n)
    titles = page.evaluate('Array.from(document.getElementsByTagName("title")).map(function (t) { return t.textContent; })')
    for name in HOSTILE:
        check(any(t.startswith(name) for t in titles), 'the hostile name %r is not shown as text' % name)
    texts = page.evaluate('Array.from(document.querySelectorAll("#frames text")).map(function (t) { return t.textContent; })')
    check(any(t.startswith('</svg><scr') for t in texts), 'the hostile label is not drawn literally: %r' % texts)
    check(not page.exceptions, 'uncaught exceptions in the page: %r' % page.exceptions)


def check_reverse(page, url):
    page.navigate(url)
    fr = frames(page)
    root = find(fr, 'all')
    check(root['y'] == min(f['y'] for f in fr), '--reverse: the root is not at the top')
    leaf = find(fr, 'deflate (libz.so.1)')
    check(leaf['y'] > root['y'], '--reverse: a leaf is above the root')


def convert(pystrobe, out, *extra):
    cmd = [pystrobe, 'convert', FIXTURE, '-f', 'flamegraph', '-o', out] + list(extra)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    check(r.returncode == 0 and os.path.exists(out), '%s failed (%d): %s'
          % (' '.join(cmd), r.returncode, r.stdout.decode('utf-8', 'replace').strip()))


def run(pystrobe, work):
    stacks = read_folded(FIXTURE)
    svg = os.path.join(work, 'flamegraph.svg')
    rsvg = os.path.join(work, 'flamegraph-reverse.svg')
    convert(pystrobe, svg)
    convert(pystrobe, rsvg, '--reverse')
    with open(svg, 'rb') as f:
        data = f.read()
    check(data.count(b'<script') == 1, 'the SVG has %d "<script" (expected exactly 1)' % data.count(b'<script'))
    height = int(re.search(rb'<svg [^>]*height="(\d+)"', data).group(1))
    url = 'file://' + urllib.parse.quote(svg)
    try:
        browser = cdp.Browser(timeout=TIMEOUT)
    except cdp.Unavailable as e:
        print('SKIP: %s' % e)
        return 77
    with browser:
        page = browser.new_page(width=XPAD * 2 + PLOTW + 40, height=height + 40)
        page.navigate(url)
        check_screenshot(page, os.path.join(work, 'flamegraph.png'), height)
        before = check_structure(page, stacks)
        check_zoom(page, before)
        check_search(page, stacks, 'fib|encode')
        check_search(page, stacks, r'^main \(')
        check_hostile(page)
        check_url_search(page, url, stacks, 'busy')
        check_reverse(page, 'file://' + urllib.parse.quote(rsvg))
        page.screenshot(os.path.join(work, 'flamegraph-reverse.png'))
        check(not page.exceptions, 'uncaught exceptions in the page: %r' % page.exceptions)
    return 0


def main():
    args = sys.argv[1:]
    keep = None
    if '--keep' in args:
        i = args.index('--keep')
        keep = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        print('usage: ' + __doc__.strip().splitlines()[2].strip())
        return 1
    pystrobe = os.path.abspath(args[0])
    if not os.access(pystrobe, os.X_OK):
        print('FAIL: %s is not an executable' % pystrobe)
        return 1
    if cdp.find_chromium() is None:
        print('SKIP: chromium is not installed (apt-get install chromium, or set CHROMIUM)')
        return 77

    def expire(signum, frame):
        raise Failure('timed out after %d s' % HARD_TIMEOUT)
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(HARD_TIMEOUT)
    work = tempfile.mkdtemp(prefix='pystrobe-check-svg-')
    try:
        rc = run(pystrobe, work)
    except (Failure, cdp.Error) as e:
        print('FAIL: %s' % e)
        rc = 1
    finally:
        signal.alarm(0)
        if keep:
            os.makedirs(keep, exist_ok=True)
            for name in os.listdir(work):
                shutil.copy(os.path.join(work, name), keep)
        shutil.rmtree(work, ignore_errors=True)
    if rc == 0:
        print('PASS: flame graph renders, zooms, searches and escapes in Chromium')
    return rc


if __name__ == '__main__':
    sys.exit(main())
