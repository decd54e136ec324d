#!/usr/bin/env python3
"""Checks pystrobe's speedscope output against speedscope itself.

    python3 tests/viewers/check_speedscope.py PATH_TO_PYSTROBE

Converts tests/viewers/speedscope.folded (two threads) with
`pystrobe convert -f speedscope`, then:

  content  the document holds the fixture: one profile per thread, named by
           the thread, with the fixture's stacks and weights;
  schema   it validates against the file-format-schema.json published in the
           speedscope npm package (with python3-jsonschema);
  viewer   speedscope's own page, from the same package, loads it in headless
           chromium (driven with tests/viewers/cdp.py) the way `speedscope FILE`
           does, with no JavaScript exception, dialog or console error at any
           step; the title, the profile list (each thread with its total) and
           "(1/2)" are right.  Then each view, opened with a click on its tab:
           Time Order and Left Heavy are the active tab and draw the flame graph
           the fixture makes (each row's share of the width, in a screenshot;
           the hover tooltip -- weight, percentage, name, file:line -- of frames
           where they should be); Sandwich lists every frame with the fixture's
           total and self weights, and selecting a frame draws its callers and
           callees as the fixture says.  Key n shows the second thread, named in
           the toolbar with "(2/2)", in each view (keys 1, 2); key p goes back,
           key 3 to the sandwich.

The package is installed with npm into $PYSTROBE_NPM_DIR (default build/npm)
when it is not there already.  Exit status: 0 pass, 1 fail, 77 skip (a tool
is missing; the reason is printed).
"""

import base64
import decimal
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

SPEEDSCOPE_VERSION = "1.25.0"
SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
SYSTEM_PYTHON = "/usr/bin/python3"
SKIP = 77

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, "speedscope.folded")

sys.path.insert(0, HERE)
import cdp  # noqa: E402


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def need_jsonschema():
    """Imports jsonschema, re-running under Debian's python3 (which has it) if needed."""
    try:
        import jsonschema  # noqa: F401
        return jsonschema
    except ImportError:
        pass
    if (os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)
            and os.access(SYSTEM_PYTHON, os.X_OK)
            and not os.environ.get("PYSTROBE_CHECK_REEXEC")):
        os.environ["PYSTROBE_CHECK_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    return None


def run(argv, timeout, **kw):
    """Runs argv in its own process group; on timeout the whole group is killed."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        raise Failure("%s timed out after %ds" % (os.path.basename(argv[0]), timeout))
    finally:
        # Helpers the program left behind (chromium's zygote, renderers) go too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return p.returncode, out, err


def tail(b, n=800):
    s = b.decode("utf-8", "replace").strip()
    return s if len(s) <= n else "..." + s[-n:]


# ---- the fixture and the document ----------------------------------------------------------

def read_fixture():
    """{thread label: {stack of frame labels (tuple): count}} from the folded fixture."""
    threads = {}
    with open(FIXTURE, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, count = line.rsplit(" ", 1)
            frames = stack.split(";")
            per = threads.setdefault(frames[0], {})
            key = tuple(frames[1:])
            per[key] = per.get(key, 0) + int(count)
    return threads


def frame_label(fr):
    label = fr["name"]
    if "file" in fr:
        label += " (" + fr["file"]
        if "line" in fr:
            label += ":%d" % fr["line"]
        label += ")"
    return label


def load_document(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise Failure("%s is not valid UTF-8: %s" % (path, e))

    def no_constant(c):
        raise ValueError("%s is not JSON" % c)
    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as e:
        raise Failure("%s is not valid JSON: %s" % (path, e))


def check_content(doc, fixture):
    if doc.get("$schema") != SCHEMA_URL:
        raise Failure("$schema is %r" % doc.get("$schema"))
    frames = doc["shared"]["frames"]
    profiles = doc["profiles"]
    names = [p.get("name") for p in profiles]
    if names != list(fixture):
        raise Failure("profiles are %r, expected one per thread: %r" % (names, list(fixture)))
    labels = [frame_label(fr) for fr in frames]
    if len(set(labels)) != len(labels):
        raise Failure("shared.frames has duplicates")
    if any(lab.startswith("thread ") for lab in labels):
        raise Failure("a thread root is among the frames")
    for prof in profiles:
        want = fixture[prof["name"]]
        where = "profile %r" % prof["name"]
        if prof.get("type") != "sampled":
            raise Failure("%s: type %r, expected sampled" % (where, prof.get("type")))
        samples, weights = prof["samples"], prof["weights"]
        if len(samples) != len(weights):
            raise Failure("%s: %d samples but %d weights" % (where, len(samples), len(weights)))
        if prof.get("startValue") != 0:
            raise Failure("%s: startValue %r" % (where, prof.get("startValue")))
        total = sum(weights)
        if not math.isclose(prof["endValue"], total, rel_tol=1e-12, abs_tol=0):
            raise Failure("%s: endValue %r but the weights add up to %r" % (where, prof["endValue"], total))
        got = {}
        for s, w in zip(samples, weights):
            if not all(isinstance(i, int) and 0 <= i < len(labels) for i in s):
                raise Failure("%s: sample %r has indices outside shared.frames (%d frames)" % (where, s, len(labels)))
            key = tuple(labels[i] for i in s)
            got[key] = got.get(key, 0) + w
        if set(got) != set(want):
            raise Failure("%s: stacks differ from the fixture:\n  extra %r\n  missing %r"
                          % (where, sorted(set(got) - set(want)), sorted(set(want) - set(got))))
        unit = prof.get("unit")
        if unit == "none":
            for key, count in want.items():
                if got[key] != count or not isinstance(got[key], int):
                    raise Failure("%s: weight %r for %s, expected %d" % (where, got[key], ";".join(key), count))
        elif unit == "seconds":
            # Some rate: every weight is count / rate for one rate.
            rate = sum(want.values()) / total
            for key, count in want.items():
                if not math.isclose(got[key] * rate, count, rel_tol=1e-9):
                    raise Failure("%s: weight %r for %s is not %d samples at %g/s"
                                  % (where, got[key], ";".join(key), count, rate))
        else:
            raise Failure("%s: unit %r, expected none or seconds" % (where, unit))


# ---- schema ------------------------------------------------------------------------------

_package = {}


def package_dir(tmp):
    """Installs the pinned speedscope package unless it is there; returns its directory."""
    if "dir" not in _package:
        try:
            _package["dir"] = install_package(tmp)
        except (Skip, Failure) as e:
            _package["dir"] = e
    if isinstance(_package["dir"], Exception):
        raise _package["dir"]
    return _package["dir"]


def install_package(tmp):
    base = os.environ.get("PYSTROBE_NPM_DIR") or os.path.join(ROOT, "build", "npm")
    base = os.path.abspath(base)
    pkg = os.path.join(base, "node_modules", "speedscope")
    try:
        with open(os.path.join(pkg, "package.json"), encoding="utf-8") as f:
            if json.load(f).get("version") == SPEEDSCOPE_VERSION:
                return pkg
    except (OSError, ValueError):
        pass
    npm = shutil.which("npm")
    if not npm:
        raise Skip("npm is not installed (needed for the speedscope %s package)" % SPEEDSCOPE_VERSION)
    os.makedirs(base, exist_ok=True)
    print("installing speedscope@%s into %s" % (SPEEDSCOPE_VERSION, base), flush=True)
    # npm's cache and logs stay in the temporary directory.
    env = dict(os.environ, npm_config_cache=os.path.join(tmp, "npm-cache"),
               npm_config_update_notifier="false")
    rc, out, err = run([npm, "install", "--no-audit", "--no-fund", "--prefix", base,
                        "speedscope@" + SPEEDSCOPE_VERSION], timeout=300, env=env)
    if rc != 0:
        raise Skip("npm install speedscope@%s failed (offline?): %s" % (SPEEDSCOPE_VERSION, tail(err)))
    with open(os.path.join(pkg, "package.json"), encoding="utf-8") as f:
        got = json.load(f).get("version")
    if got != SPEEDSCOPE_VERSION:
        raise Failure("npm installed speedscope %s, expected %s" % (got, SPEEDSCOPE_VERSION))
    return pkg


def check_schema(jsonschema, pkg, doc):
    path = os.path.join(pkg, "dist", "release", "file-format-schema.json")
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure("cannot read speedscope's schema %s: %s" % (path, e))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        raise Failure("not valid against speedscope's schema:\n" + "\n".join(
            "  at %s: %s" % ("/".join(map(str, e.absolute_path)) or "(root)", e.message)
            for e in errors[:10]))
    # The validator must be able to say no: a broken copy is rejected.
    broken = json.loads(json.dumps(doc))
    broken["profiles"][0]["samples"] = "not a list"
    del broken["shared"]
    if validator.is_valid(broken):
        raise Failure("speedscope's schema accepts a broken document: the schema check is not working")


# ---- the viewer ----------------------------------------------------------------------------
#
# speedscope's page is driven over the Chrome DevTools Protocol (cdp.py, next
# to this file).  It loads the file the way `speedscope FILE` does; then each
# view is opened the way a user opens it (a click on its toolbar tab, or the
# keys 1, 2, 3; n and p for the next and previous profile) and read back from
# the page: which tab is active, the profile named in the toolbar, the sandwich
# table, the hover tooltip of frames at the places they should be drawn, and
# the pixels of the flame graphs (drawn with WebGL: read from screenshots).
# What each view should show is worked out from the fixture below.

VIEWER_TIMEOUT = 60        # seconds: the deadline of every wait on the browser
VIEWER_HARD_TIMEOUT = 90   # seconds: SIGALRM ends the viewer check, whatever happens
WIDTH, HEIGHT = 1280, 800  # the page's viewport, in CSS pixels (device scale 1)
FRAME_HEIGHT = 20          # speedscope's Sizes.FRAME_HEIGHT: a flame graph row, and its ruler
VIEWS = ("Time Order", "Left Heavy", "Sandwich")
PARK = (5, HEIGHT - 5)     # where the mouse rests: below every frame, beside the table
MIN_PROBE_PX = 8           # frames narrower than this are not hovered
MAX_PROBES = 4             # frames hovered per flame graph
COVER_TOLERANCE = 0.03     # a row's drawn share of the width may be off by this much


def chromium_path():
    for c in (os.environ.get("PYSTROBE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser")):
        if c and os.access(c, os.X_OK):
            return c
    return cdp.find_chromium()


def split_label(label):
    """(name, file, line) of a fixture frame label: 'name (file:line)', 'name (file)' or 'name'."""
    m = re.match(r"^(.*) \(([^()]*)\)$", label, re.S)
    if not m:
        return label, None, None
    name, where = m.groups()
    m = re.match(r"^(.*):(\d+)$", where, re.S)
    if m:
        return name, m.group(1), int(m.group(2))
    return name, where, None


# speedscope's number formatting (src/lib/value-formatters.ts, src/lib/utils.ts).

def js_fixed(x, digits):
    """JavaScript's Number.prototype.toFixed: the exact binary value, ties rounded up."""
    q = decimal.Decimal(x).quantize(decimal.Decimal(1).scaleb(-digits), rounding=decimal.ROUND_HALF_UP)
    return str(q)


def format_percent(p):
    if p == 100:
        return "100%"
    if p > 99:
        return ">99%"
    if p < 0.01:
        return "<0.01%"
    if p < 1:
        return js_fixed(p, 2) + "%"
    if p < 10:
        return js_fixed(p, 1) + "%"
    return js_fixed(p, 0) + "%"


TIME_UNITS = {"nanoseconds": 1e-9, "microseconds": 1e-6, "milliseconds": 1e-3, "seconds": 1}


def format_value(v, unit):
    """What speedscope prints for a weight v in unit, or None when it cannot be predicted."""
    if unit == "none":
        if v == int(v):
            return "{:,}".format(int(v))            # toLocaleString() in en-US
        return "{:,.3f}".format(v).rstrip("0").rstrip(".")
    if unit in TIME_UNITS:
        sign, s = ("-" if v < 0 else ""), abs(v) * TIME_UNITS[unit]
        if s / 60 >= 1:
            minutes = math.floor(s / 60)
            return "%s%d:%s" % (sign, minutes, str(math.floor(s - minutes * 60)).zfill(2))
        for div, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "\u00b5s")):
            if s / div >= 1:
                return "%s%s%s" % (sign, js_fixed(s / div, 2), suffix)
        return "%s%sns" % (sign, js_fixed(s / 1e-9, 2))
    if unit == "bytes":
        if v < 1024:
            return js_fixed(v, 0) + " B"
        for suffix in ("KB", "MB"):
            v /= 1024
            if v < 1024:
                return "%s %s" % (js_fixed(v, 2), suffix)
        return "%s GB" % js_fixed(v / 1024, 2)
    return None


def tooltip_text(label, value):
    """speedscope's hover tooltip for a frame: 'WEIGHT (PERCENT) NAME', then 'FILE:LINE' when it has a file."""
    name, file, line = split_label(label)
    text = "%s %s" % (value, name)
    if file is not None:
        text += "\n%s:%s" % (file, "" if line is None else line)
    return text


# What the views should draw.  A layout is (nodes, total): each node a dict with
# depth, start and end (in weight), label, value (the weight its tooltip shows)
# and sure (False where equal siblings make its place a matter of tie-breaking).

def grouped_layout(stacks):
    """The left-heavy flame graph of stacks [(labels, weight)]: frames merged by path,
    siblings heaviest first (speedscope's forEachCallGrouped)."""
    root = {"kids": {}, "total": 0}
    for labels, w in stacks:
        if w == 0 or not labels:
            continue
        node = root
        for lab in labels:
            node = node["kids"].setdefault(lab, {"kids": {}, "total": 0, "label": lab})
            node["total"] += w
    nodes = []

    def visit(node, depth, x, sure):
        kids = sorted(node["kids"].values(), key=lambda k: -k["total"])
        totals = [k["total"] for k in kids]
        for k in kids:
            ksure = sure and totals.count(k["total"]) == 1
            nodes.append({"depth": depth, "start": x, "end": x + k["total"], "label": k["label"],
                          "value": k["total"], "sure": ksure})
            visit(k, depth + 1, x, ksure)
            x += k["total"]
    visit(root, 0, 0, True)
    return nodes, sum(k["total"] for k in root["kids"].values())


def time_order_layout(samples, total):
    """The time-order flame chart of samples [(frame ids, labels, weight)] in the
    document's order: a frame continues from one sample to the next while the
    stacks agree from the root down to it."""
    nodes, path, prev, t = [], [], None, 0
    for ids, labels, w in samples:
        if w == 0:
            continue
        k = 0
        while prev is not None and k < min(len(ids), len(prev)) and ids[k] == prev[k]:
            k += 1
        path = path[:k]
        for d in range(k, len(ids)):
            n = {"depth": d, "start": t, "label": labels[d], "value": 0, "sure": True}
            nodes.append(n)
            path.append(n)
        for n in path:
            n["end"] = t + w
            n["value"] += w
        t += w
        prev = ids
    return nodes, total


def probes(nodes, total, width):
    """The frames to hover in a flame graph (each hover redraws it: a few): the first
    frame of each row below the root, then the last, then the root; only frames wide
    enough, and whose place does not depend on how ties are broken."""
    ok = [n for n in nodes if n["sure"] and (n["end"] - n["start"]) / total * width >= MIN_PROBE_PX]
    depth = max(n["depth"] for n in nodes) + 1
    order = [min((n for n in ok if n["depth"] == d), key=lambda n: n["start"], default=None)
             for d in range(1, depth)]
    order += [max((n for n in ok if n["depth"] == d), key=lambda n: n["start"], default=None)
              for d in range(1, depth)]
    order += [n for n in ok if n["depth"] == 0]
    chosen = []
    for n in order:
        if n is not None and all(n is not c for c in chosen):
            chosen.append(n)
    return chosen[:MAX_PROBES]


def frame_table(stacks):
    """{label: [total, self]}, counted as speedscope's sandwich table does (a frame
    recursing within one sample counts once towards its total)."""
    table = {}
    for labels, w in stacks:
        for lab in set(labels):
            table.setdefault(lab, [0, 0])[0] += w
        if labels:
            table[labels[-1]][1] += w
    return table


class ProfileExpect:
    """What speedscope should show for one profile of the document."""

    def __init__(self, index, prof, frames, fixture):
        self.index = index
        self.name = prof["name"]
        if self.name not in fixture:
            raise Failure("the document's profile %r is not a thread of the fixture %r" % (self.name, list(fixture)))
        self.unit = prof.get("unit")
        if self.unit != "none" and self.unit not in TIME_UNITS:
            raise Failure("profile %r: unit %r, but the fixture counts samples (none) or time"
                          % (self.name, self.unit))
        self.stacks = list(fixture[self.name].items())
        count = sum(c for _, c in self.stacks)
        # Weights in the document's unit: samples for "none", some rate otherwise.
        weights = sum(prof["weights"])
        self.scale = 1 if self.unit == "none" or not count or not weights else weights / count
        self.total = count * self.scale
        self.nonidle = sum(c for s, c in self.stacks if s) * self.scale
        labels = [frame_label(f) for f in frames]
        self.samples = [(tuple(s), tuple(labels[i] for i in s), w) for s, w in zip(prof["samples"], prof["weights"])]

    def fmt(self, v):
        return format_value(v, self.unit)

    def time_order(self):
        # The order of the samples is the document's to choose, and so is this
        # view; its width is the fixture's total (the left-heavy and sandwich
        # views check the stacks and weights against the fixture).
        return time_order_layout(self.samples, self.total)

    def left_heavy(self):
        nodes, total = grouped_layout([(s, c * self.scale) for s, c in self.stacks])
        return nodes, total

    def table(self):
        """The sandwich table's rows: sorted (total text, self text, name, file)."""
        rows = []
        for lab, (tot, slf) in frame_table(self.stacks).items():
            tot, slf = tot * self.scale, slf * self.scale
            name, file, _ = split_label(lab)
            rows.append(("%s (%s)" % (self.fmt(tot), format_percent(100.0 * tot / self.nonidle)),
                         "%s (%s)" % (self.fmt(slf), format_percent(100.0 * slf / self.nonidle)),
                         name, file or ""))
        return sorted(rows)

    def focus(self):
        """A frame to select in the sandwich view: called and calling, not recursive, and
        the only one of its name and file (the table shows no line)."""
        where = {}
        for lab in frame_table(self.stacks):
            name, file, _ = split_label(lab)
            where.setdefault((name, file), []).append(lab)
        for labels, _ in self.stacks:
            for i, lab in enumerate(labels[1:-1], 1):
                if len(where[split_label(lab)[:2]]) == 1 and all(
                        s.count(lab) <= 1 for s, _ in self.stacks):
                    return lab
        return None

    def callers_callees(self, focus):
        """The layouts of the sandwich's Callers (inverted: the focus at the bottom) and Callees graphs."""
        callers, callees = [], []
        for labels, c in self.stacks:
            if focus in labels:
                i = labels.index(focus)
                callers.append((tuple(reversed(labels[:i + 1])), c * self.scale))
                callees.append((labels[i:], c * self.scale))
        return grouped_layout(callers), grouped_layout(callees)


# The page, read with JavaScript.

# speedscope's hover tooltips (src/views/hovertip.tsx): placed with an inline
# left and top, above the flame graph (z-index 2), transparent to the mouse.
TIPS_JS = r'''
Array.prototype.filter.call(document.querySelectorAll("div[style*=left]"), function (d) {
    var s = getComputedStyle(d);
    return s.position === "absolute" && s.zIndex === "2" && s.pointerEvents === "none";
}).map(function (d) { return d.innerText; })
'''

STATE_JS = r'''
(function () {
    function box(e) { var b = e.getBoundingClientRect(); return {x: b.left, y: b.top, w: b.width, h: b.height}; }
    var tabs = [];
    Array.prototype.forEach.call(document.querySelectorAll("div"), function (d) {
        if (d.children.length !== 1 || d.children[0].tagName !== "SPAN")
            return;
        var t = d.textContent;
        %s.forEach(function (v) {
            if (t.length <= v.length + 4 && t.slice(-v.length) === v)
                tabs.push({view: v, cls: d.className, bg: getComputedStyle(d).backgroundColor, box: box(d)});
        });
    });
    var tips = %s;
    var canvases = Array.prototype.map.call(document.querySelectorAll("canvas"), box).filter(function (b) {
        return b.w > 0 && b.h > 0 && b.y >= 20;
    }).sort(function (a, b) { return a.y - b.y; });
    var table = null;
    var th = Array.prototype.filter.call(document.querySelectorAll("th"), function (t) {
        return /Symbol Name/.test(t.textContent);
    })[0];
    if (th) {
        table = Array.prototype.filter.call(th.closest("table").parentElement.querySelectorAll("tr"), function (r) {
            return !r.closest("thead") && r.cells.length === 3;
        }).map(function (r) {
            return {total: r.cells[0].textContent.trim(), self: r.cells[1].textContent.trim(),
                    name: r.cells[2].textContent, file: r.cells[2].getAttribute("title") || "", box: box(r)};
        });
    }
    var profiles = Array.prototype.filter.call(document.querySelectorAll("tr"), function (r) {
        return r.cells.length === 3 && /^\d+$/.test(r.cells[0].textContent.trim());
    }).map(function (r) {
        return [r.cells[0].textContent.trim(), r.cells[1].textContent, r.cells[2].textContent.trim()];
    });
    var scripts = Array.prototype.filter.call(document.querySelectorAll("script"), function (s) {
        return /alert/.test(s.textContent);
    }).length;
    return {title: document.title, text: document.body ? document.body.innerText : "", tabs: tabs,
            tips: tips, canvases: canvases, table: table, profiles: profiles, scripts: scripts};
})()
''' % (json.dumps(VIEWS), TIPS_JS.strip())


class Viewer:
    def __init__(self, browser, page, doc, expects):
        self.browser = browser
        self.page = page
        self.doc = doc
        self.expects = expects

    # ---- reading the page ----

    def state(self):
        return self.page.evaluate(STATE_JS)

    def healthy(self, when, st=None):
        """Fails on any JavaScript exception, dialog (alert) or console error so far, or
        on speedscope's error page (in st, the page's state, when given)."""
        page = self.page
        if page.exceptions:
            raise Failure("%s: JavaScript exception in speedscope's page: %s" % (when, page.exceptions[0]))
        if page.dialogs:
            raise Failure("%s: speedscope opened a dialog: %r" % (when, page.dialogs[0]))
        errors = [" ".join(str(a.get("value", a.get("description", ""))) for a in c.get("args", []))
                  for c in page.console if c.get("type") in ("error", "assert")]
        if errors:
            raise Failure("%s: speedscope logged an error: %s" % (when, errors[0][:500]))
        if st is not None and "Something went wrong" in st["text"]:
            raise Failure("%s: speedscope failed: %s" % (when, st["text"][:300]))

    def wait(self, what, test, timeout=5.0):
        """Polls test(state) until it is true (returns the state); fails saying what after timeout."""
        until = time.monotonic() + timeout
        while True:
            st = self.state()
            if test(st):
                return st
            if self.page.exceptions or self.page.dialogs or "Something went wrong" in st["text"] \
                    or time.monotonic() > until:
                self.healthy("waiting for %s" % what, st)
                raise Failure("timed out waiting for %s; the page shows: %s" % (what, st["text"][:300]))
            self.browser.settle(0.05)

    @staticmethod
    def active_tab(st):
        """The view whose toolbar tab is highlighted, or None: the one tab unlike the other two."""
        tabs = {t["view"]: t for t in st["tabs"]}
        if sorted(tabs) != sorted(VIEWS) or len(st["tabs"]) != len(VIEWS):
            return None
        looks = [(tabs[v]["cls"], tabs[v]["bg"]) for v in VIEWS]
        for i, v in enumerate(VIEWS):
            others = looks[:i] + looks[i + 1:]
            if others[0] == others[1] and looks[i][0] != others[0][0] and looks[i][1] != others[0][1]:
                return v
        return None

    @staticmethod
    def shown_profile(st):
        """(name, index, count) of the profile the toolbar names, or None."""
        for line in st["text"].splitlines():
            m = re.match(r"^(.*) \((\d+)/(\d+)\)$", line.strip())
            if m:
                return m.group(1), int(m.group(2)), int(m.group(3))
        return None

    # ---- doing things ----

    def key(self, ch):
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": ch, "code": "Key" + ch.upper() if ch.isalpha() else "Digit" + ch}
            if kind == "keyDown":
                params["text"] = ch
            self.page.call("Input.dispatchKeyEvent", params)

    def switch(self, view, how, exp):
        """Opens view (with a click on its tab, or its key) and waits until it shows exp's profile."""
        if how == "click":
            st = self.state()
            tab = [t for t in st["tabs"] if t["view"] == view]
            if len(tab) != 1:
                raise Failure("no %r tab in speedscope's toolbar: %s" % (view, st["text"][:300]))
            b = tab[0]["box"]
            self.page.click(b["x"] + b["w"] / 2, b["y"] + b["h"] / 2)
        else:
            self.key(str(VIEWS.index(view) + 1))
        want = "%s: %s" % (exp.name, view)

        def shown(st):
            if self.active_tab(st) != view:
                return False
            if view == "Sandwich":
                return st["table"] is not None
            return st["table"] is None and len(st["canvases"]) == 2
        self.healthy(want, self.wait("the %s view of %r (after a %s)" % (view, exp.name, how), shown))

    def switch_profile(self, key, exp):
        self.key(key)
        st = self.wait("profile %d/%d %r (after the key %r)" % (exp.index + 1, len(self.expects), exp.name, key),
                       lambda st: self.shown_profile(st) == (exp.name, exp.index + 1, len(self.expects)))
        self.healthy("profile %r" % exp.name, st)
        return st

    # ---- checks ----

    def colored(self, x0, x1, rows):
        """For each y in rows: the share of the pixels x0 <= x < x1 that have a color
        (not white, gray or black), from one screenshot."""
        y0 = min(rows)
        png = self.page.screenshot(clip={"x": x0, "y": y0, "width": x1 - x0, "height": max(rows) - y0 + 1})
        w, _, px = cdp.decode_png(png)
        shares = []
        for y in rows:
            line = px[(y - y0) * w * 4:(y - y0 + 1) * w * 4]
            n = sum(1 for i in range(0, w * 4, 4) if max(line[i:i + 3]) - min(line[i:i + 3]) > 12)
            shares.append(n / float(w))
        return shares

    def check_flame(self, where, box, layout, fmt, inverted=False):
        """The flame graph drawn in box (a canvas's place) is layout: each row covers the
        right share of the width, the rows below are empty, and hovering each frame
        wide enough shows its tooltip (name, file, line, weight)."""
        nodes, total = layout
        if not nodes or not total:
            raise Failure("%s: nothing to draw (the fixture has no samples here)" % where)
        x0, x1 = int(math.ceil(box["x"])), int(math.floor(box["x"] + box["w"]))
        width = x1 - x0
        bottom = box["y"] + box["h"]

        def row_top(d):
            if inverted:  # rows stacked up from the ruler at the bottom
                return int(round(bottom)) - FRAME_HEIGHT * (d + 2)
            return int(round(box["y"])) + FRAME_HEIGHT * (d + 1)
        depth = max(n["depth"] for n in nodes) + 1
        if row_top(depth) < box["y"] or row_top(depth) + FRAME_HEIGHT > bottom:
            raise Failure("%s: the flame graph (%d rows) does not fit in %r" % (where, depth, box))
        want = [sum(n["end"] - n["start"] for n in nodes if n["depth"] == d) / total for d in range(depth + 1)]
        self.page.hover(*PARK)
        until = time.monotonic() + 5
        while True:
            # A few pixels into each row: its color, above the label.
            got = self.colored(x0, x1, [row_top(d) + 4 for d in range(depth + 1)])
            bad = [d for d in range(depth + 1)
                   if (abs(got[d] - want[d]) > COVER_TOLERANCE if want[d] else got[d] > 0.005)]
            if not bad:
                break
            if time.monotonic() > until:
                self.healthy(where)
                raise Failure("%s: the flame graph is not drawn as the fixture says: %s" % (where, "; ".join(
                    "row %d covers %.1f%% of the width, expected %.1f%%" % (d, 100 * got[d], 100 * want[d])
                    for d in bad)))
            self.browser.settle(0.1)
        for n in probes(nodes, total, width):
            x = x0 + (n["start"] + n["end"]) / 2.0 / total * width
            y = row_top(n["depth"]) + FRAME_HEIGHT / 2.0
            text = tooltip_text(n["label"], "%s (%s)" % (fmt(n["value"]), format_percent(100.0 * n["value"] / total)))
            self.page.hover(x, y)
            until = time.monotonic() + 2
            while True:
                tips = [re.sub(r"[ \t]*\n\s*", "\n", t.strip()) for t in self.page.evaluate(TIPS_JS)]
                if tips == [text]:
                    break
                if time.monotonic() > until:
                    self.healthy(where)
                    raise Failure("%s: hovering %s (row %d, %.1f%%..%.1f%% of the width) shows %r, expected %r"
                                  % (where, n["label"], n["depth"], 100.0 * n["start"] / total,
                                     100.0 * n["end"] / total, tips, text))
                self.browser.settle(0.05)
        self.healthy(where)

    def check_chart(self, view, exp):
        st = self.state()
        where = "%s: %s" % (exp.name, view)
        # The minimap above, the flame chart below.
        chart = st["canvases"][-1]
        layout = exp.time_order() if view == "Time Order" else exp.left_heavy()
        self.check_flame(where, chart, layout, exp.fmt)

    def check_sandwich(self, exp, select):
        where = "%s: Sandwich" % exp.name
        want = exp.table()

        def rows(st):
            return sorted((r["total"], r["self"], r["name"], r["file"]) for r in st["table"] or [])
        try:
            st = self.wait("the sandwich table of %r" % exp.name, lambda st: rows(st) == want, timeout=3)
        except Failure:
            got = rows(self.state())
            raise Failure("%s: the table differs from the fixture (total, self, name, file):\n  shown, not expected %r"
                          "\n  expected, not shown %r" % (where, sorted(set(got) - set(want)),
                                                          sorted(set(want) - set(got))))
        if not select:
            return
        focus = exp.focus()
        if focus is None:
            raise Failure("%s: the fixture has no frame to select" % where)
        name, file, _ = split_label(focus)
        row = [r for r in st["table"] if r["name"] == name and r["file"] == (file or "")]
        b = row[0]["box"]
        self.page.click(b["x"] + min(b["w"] / 2, 200), b["y"] + b["h"] / 2)
        # Selected: the Callers (top) and Callees (bottom) flame graphs open beside the table.
        st = self.wait("the callers and callees of %s" % focus,
                       lambda st: len(st["canvases"]) == 2 and "Callers" in st["text"] and "Callees" in st["text"])
        callers, callees = exp.callers_callees(focus)
        self.check_flame(where + " callers of " + focus, st["canvases"][0], callers, exp.fmt, inverted=True)
        self.check_flame(where + " callees of " + focus, st["canvases"][1], callees, exp.fmt)

    def check_loaded(self):
        # The landing page shows until the profile's script runs: a while, not for good.
        try:
            st = self.wait("speedscope to load the profile", lambda st: len(st["tabs"]) == len(VIEWS), timeout=15)
        except Failure:
            st = self.state()
            self.healthy("loading", st)
            if "Drag and drop" in st["text"]:
                raise Failure("speedscope still shows its landing page: the profile did not load (%s)"
                              % st["text"][:300])
            raise
        self.healthy("loading", st)
        # speedscope's title: the file's name, else its first profile's.
        want_title = (self.doc.get("name") or self.expects[0].name or "profile") + " - speedscope"
        if st["title"] != want_title:
            raise Failure("page title %r, expected %r" % (st["title"], want_title))
        first = self.expects[0]
        st = self.wait("the toolbar to name profile 1/%d %r" % (len(self.expects), first.name),
                       lambda st: self.shown_profile(st) == (first.name, 1, len(self.expects)))
        if self.active_tab(st) != "Time Order":
            raise Failure("speedscope opened in the %r view, expected Time Order" % self.active_tab(st))
        # The profile list: each thread with its total weight.
        want = [[str(e.index + 1), e.name, e.fmt(e.nonidle)] for e in self.expects]
        if st["profiles"] != want:
            raise Failure("speedscope's profile list is %r, expected %r" % (st["profiles"], want))
        if st["scripts"]:
            raise Failure("a frame name became a script in speedscope's page")

    def run(self):
        self.check_loaded()
        first = self.expects[0]
        # Every view of the first profile, by its tab.
        for view in VIEWS:
            self.switch(view, "click", first)
            if view == "Sandwich":
                self.check_sandwich(first, select=True)
            else:
                self.check_chart(view, first)
        if len(self.expects) > 1:
            # The next profile (key n) keeps the view; then the views by their keys.
            second = self.expects[1]
            self.switch_profile("n", second)
            self.check_sandwich(second, select=False)
            for view in ("Time Order", "Left Heavy"):
                self.switch(view, "key", second)
                self.check_chart(view, second)
            # And back (key p), to the sandwich (key 3).
            self.switch_profile("p", first)
            self.switch("Sandwich", "key", first)
            self.check_sandwich(first, select=False)
        st = self.state()
        if st["scripts"]:
            raise Failure("a frame name became a script in speedscope's page")
        self.healthy("the end", st)


def check_viewer(pkg, profile_path, doc, fixture, tmp):
    chromium = chromium_path()
    if not chromium:
        raise Skip("chromium is not installed")
    index = os.path.join(pkg, "dist", "release", "index.html")
    if not os.path.isfile(index):
        raise Failure("speedscope's page %s is missing" % index)
    expects = [ProfileExpect(i, p, doc["shared"]["frames"], fixture) for i, p in enumerate(doc["profiles"])]
    if not expects:
        raise Failure("the document has no profiles")
    # What speedscope's bin/cli.mjs does: a script calling
    # speedscope.loadFileFromBase64(basename, base64 of the file), opened
    # through index.html#localProfilePath=SCRIPT.
    with open(profile_path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode("ascii")
    js = os.path.join(tmp, "profile.js")
    with open(js, "w", encoding="utf-8") as f:
        f.write("speedscope.loadFileFromBase64(%s, %s)\n"
                % (json.dumps(os.path.basename(profile_path)), json.dumps(b64)))
    url = "file://%s#localProfilePath=%s" % (urllib.parse.quote(index), urllib.parse.quote(js, safe="/"))

    def expire(signum, frame):
        raise Failure("the viewer check timed out after %d s" % VIEWER_HARD_TIMEOUT)
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(VIEWER_HARD_TIMEOUT)
    try:
        try:
            browser = cdp.Browser(binary=chromium, timeout=VIEWER_TIMEOUT, args=("--lang=en-US",))
        except cdp.Unavailable as e:
            raise Skip(str(e))
        with browser:
            page = browser.new_page(width=WIDTH, height=HEIGHT)
            page.navigate(url)
            Viewer(browser, page, doc, expects).run()
    except cdp.Error as e:
        raise Failure("driving chromium: %s" % e)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- main --------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        print("usage: %s PATH_TO_PYSTROBE" % sys.argv[0], file=sys.stderr)
        return 2
    jsonschema = need_jsonschema()
    pystrobe = os.path.abspath(sys.argv[1])
    if not os.access(pystrobe, os.X_OK):
        print("FAIL speedscope: %s is not an executable" % pystrobe)
        return 1
    fixture = read_fixture()
    results = []
    tmp = tempfile.mkdtemp(prefix="pystrobe-speedscope-")
    try:
        out = os.path.join(tmp, "fixture.speedscope.json")
        try:
            rc, _, se = run([pystrobe, "convert", FIXTURE, "-f", "speedscope", "-o", out], timeout=60)
            if rc != 0:
                raise Failure("pystrobe convert exited with status %d: %s" % (rc, tail(se)))
            doc = load_document(out)
        except Failure as e:
            print("FAIL speedscope: %s" % e)
            return 1

        def content():
            check_content(doc, fixture)

        def schema():
            if jsonschema is None:
                raise Skip("python3-jsonschema is not installed (apt install python3-jsonschema)")
            check_schema(jsonschema, package_dir(tmp), doc)

        def viewer():
            check_viewer(package_dir(tmp), out, doc, fixture, tmp)

        for name, check in (("content", content), ("schema", schema), ("viewer", viewer)):
            try:
                check()
                results.append((name, "ok", None))
            except Skip as e:
                results.append((name, "skip", str(e)))
            except Failure as e:
                results.append((name, "fail", str(e)))
            except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
                results.append((name, "fail", "malformed document: %s: %s" % (type(e).__name__, e)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for name, status, why in results:
        tag = {"ok": "PASS", "skip": "SKIP", "fail": "FAIL"}[status]
        print("%s speedscope/%s%s" % (tag, name, ": " + why if why else ""))
    if any(s == "fail" for _, s, _ in results):
        return 1
    skipped = ["%s: %s" % (name, why) for name, s, why in results if s == "skip"]
    if skipped:
        # The last line says why (tests/viewers/run.sh shows it).
        print("skipped " + "; ".join(skipped))
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
