"""Which stacks of bench/workloads/fib.py are possible (see its docstring).

check(frames, path, depth, n) takes one folded stack (a list of
"NAME (FILE:LINE)" labels, root first) and returns None for a possible
stack, else why it is not.  Used by the e2e consistency test and by the
benchmark's torn-sample share; depths() and compare_depths() set a histogram
of fib depths against the truth's (target and profiler on one CPU).
"""
import os
import re

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "fib.py")


def markers(path=WORKLOAD):
    """Marker name -> line number, from the '# @name' comments."""
    out = {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            m = re.search(r"#\s*@([\w-]+)\s*$", line)
            if m:
                out[m.group(1)] = i
    return out


def lines_of(path, first, last):
    return set(range(first, last + 1))


def check(frames, path, depth, n, marks=None):
    m = marks or markers()
    want = lambda name, line: "%s (%s:%d)" % (name, path, line)
    i = 0
    if not frames or frames[0] != want("<module>", m["module-call"]):
        return "root is %r, not <module> at its call" % (frames[0] if frames else None)
    i = 1
    for k in range(depth):
        if i >= len(frames) or frames[i] != want("down", m["down-call"]):
            return "frame %d is %r, expected down's recursive call (%d of %d)" % (
                i, frames[i] if i < len(frames) else None, k + 1, depth)
        i += 1
    if i >= len(frames) or frames[i] != want("down", m["down-spin"]):
        return "frame %d is %r, expected down's call to spin" % (i, frames[i] if i < len(frames) else None)
    i += 1
    if i >= len(frames):
        return "no spin frame"
    spin_lines = set(range(m["spin-loop"] - 3, m["spin-call"] + 1))
    sm = re.match(r"^spin \(%s:(\d+)\)$" % re.escape(path), frames[i])
    if not sm or int(sm.group(1)) not in spin_lines:
        return "frame %d is %r, expected spin" % (i, frames[i])
    fibs = frames[i + 1:]
    if fibs and int(sm.group(1)) != m["spin-call"]:
        return "spin at line %s calls fib" % sm.group(1)
    if len(fibs) > n:
        return "%d fib frames, at most %d possible" % (len(fibs), n)
    fib_lines = {m["fib-test"] - 1, m["fib-test"], m["fib-base"], m["fib-call"]}
    for j, f in enumerate(fibs):
        fm = re.match(r"^fib \(%s:(\d+)\)$" % re.escape(path), f)
        if not fm:
            return "frame %d is %r, expected fib" % (i + 1 + j, f)
        line = int(fm.group(1))
        if j < len(fibs) - 1 and line != m["fib-call"]:
            return "fib frame %d at line %d calls fib" % (j, line)
        if line not in fib_lines:
            return "fib frame %d at line %d" % (j, line)
    return None


def depths(stacks):
    """{number of fib frames: samples} of folded stacks ({tuple: count})."""
    out = {}
    for st, c in stacks.items():
        k = sum(1 for f in st if f.startswith("fib "))
        out[k] = out.get(k, 0) + c
    return out


def _share(h, pred):
    total = sum(h.values())
    return float(sum(c for k, c in h.items() if pred(k))) / total if total else 0.0


def mean_depth(h):
    total = sum(h.values())
    return float(sum(k * c for k, c in h.items())) / total if total else 0.0


# How close a depth histogram must be to the truth's: the mean within this
# many frames, the share of stacks SHALLOW fib frames deep or less within
# this many points, and the total variation distance (half the sum of the
# shares' differences) at most this.
MEAN_TOL = 1.0
SHALLOW = 5
SHALLOW_TOL = 2.0
TVD_TOL = 0.3
# Before 3.11 frame objects lie apart in memory and a fast recursion calls
# and returns many times while they are read: a stack is kept from the
# innermost caller that did not move, and comes out shallower.  Measured
# on an idle machine (fib.py 20 120 18 at 1 kHz, 3 s; 2.7 and 3.6-3.10,
# two runs each): the mean 0.5-2.3 frames short, 5 deep or less up to 2.4
# points over, total variation 0.12-0.51.  Tolerated that far and no
# further: the walk this replaced came out 4.9 frames short with 20-28%
# of stacks 5 deep or less.
OLD_MEAN_TOL = 3.0
OLD_SHALLOW_TOL = 4.0
OLD_TVD_TOL = 0.6


def depth_tolerances(ver=None):
    """(mean, shallow share, total variation) tolerances for interpreter ver
    (a tuple like (3, 10); None for the newest)."""
    if ver is not None and tuple(ver) < (3, 11):
        return OLD_MEAN_TOL, OLD_SHALLOW_TOL, OLD_TVD_TOL
    return MEAN_TOL, SHALLOW_TOL, TVD_TOL


def compare_depths(got, want, ver=None):
    """None when histogram got matches want within ver's tolerances, else why not."""
    if not got or not want:
        return "no samples"
    mean_tol, shallow_tol, tvd_tol = depth_tolerances(ver)
    why = []
    if abs(mean_depth(got) - mean_depth(want)) > mean_tol:
        why.append("mean depth %.2f, the truth %.2f (at most %g apart)"
                   % (mean_depth(got), mean_depth(want), mean_tol))
    sg, sw = _share(got, lambda k: k <= SHALLOW), _share(want, lambda k: k <= SHALLOW)
    if abs(sg - sw) * 100 > shallow_tol:
        why.append("%.1f%% of stacks %d deep or less, the truth %.1f%% (at most %g points apart)"
                   % (sg * 100, SHALLOW, sw * 100, shallow_tol))
    d = tvd(got, want)
    if d > tvd_tol:
        why.append("total variation %.2f from the truth (at most %g)" % (d, tvd_tol))
    return "; ".join(why) or None


def describe_depths(h):
    total = float(sum(h.values())) or 1.0
    return "mean %.2f [%s]" % (mean_depth(h), " ".join("%d:%.1f" % (k, 100 * h[k] / total)
                                                       for k in sorted(h)))


def tvd(got, want):
    """The total variation distance between two depth histograms."""
    gt, wt = float(sum(got.values())) or 1.0, float(sum(want.values())) or 1.0
    keys = set(int(k) for k in got) | set(int(k) for k in want)
    g = dict((int(k), v) for k, v in got.items())
    w = dict((int(k), v) for k, v in want.items())
    return 0.5 * sum(abs(g.get(k, 0) / gt - w.get(k, 0) / wt) for k in keys)
