"""Which stacks of bench/workloads/fib.py are possible (see its docstring).

check(frames, path, depth, n) takes one folded stack (a list of
"NAME (FILE:LINE)" labels, root first) and returns None for a possible
stack, else why it is not.  Used by the e2e consistency test and by the
benchmark's torn-sample share.
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
