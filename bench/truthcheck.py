"""Shares of bench/workloads/truth.py's slices in a profile, against the truth
the workload measured.  Used by the e2e share tests and by the benchmark.

    attach(pystrobe, exe, rate, kinds=..., ...) / launch(...)  -> Run
    Run.errors(tolerance)   what is off by more than tolerance (points)

A sample counts for kind K when its stack holds `slice_K`; samples in no
slice (start-up, waiting to start, the join at the end) are left out.  With
several threads the profile is taken with --threads and each thread's
samples are compared with its own truth.  Runs on Python 3.6+.
"""
import json
import os
import re
import select
import subprocess
import tempfile
import time

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "truth.py")
SLICE_RE = re.compile(r"^slice_(\w+) \(")
THREAD_RE = re.compile(r"^thread .* \((\d+)\)$")
SUMMARY_RE = re.compile(r"pystrobe: (\d+) samples from \d+ threads? in ([\d.]+) s \(([\d.]+) Hz of")
TORN_RE = re.compile(r"(\d+) torn stack")
TICKS_RE = re.compile(r"pystrobe: (\d+) ticks")


def read_folded(path):
    """{tuple of frames (root first): count}."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, n = line.rpartition(" ")
            key = tuple(stack.split(";"))
            out[key] = out.get(key, 0) + int(n)
    return out


def kind_of(stack):
    for fr in stack:
        m = SLICE_RE.match(fr)
        if m:
            return m.group(1)
    return None


def counts(stacks, by_thread):
    """{tid or 0: {kind: samples}} of the samples in a slice."""
    out = {}
    for st, n in stacks.items():
        tid = 0
        if by_thread:
            m = THREAD_RE.match(st[0]) if st else None
            if not m:
                continue
            tid = int(m.group(1))
        k = kind_of(st)
        if k is None:
            continue
        d = out.setdefault(tid, {})
        d[k] = d.get(k, 0) + n
    return out


class Run(object):
    """One profiled run of the workload: the truth, the profile, the summary."""

    def __init__(self, truth, stacks, by_thread, err, rc, rate, argv):
        self.truth, self.stacks, self.by_thread = truth, stacks, by_thread
        self.err, self.rc, self.rate, self.argv = err, rc, rate, argv
        self.counts = counts(stacks, by_thread) if stacks else {}
        m = SUMMARY_RE.search(err)
        self.samples = int(m.group(1)) if m else 0
        self.elapsed = float(m.group(2)) if m else 0.0
        self.hz = float(m.group(3)) if m else 0.0
        m = TORN_RE.search(err)
        self.torn = int(m.group(1)) if m else 0

    def seconds(self):
        """Seconds of slices, over all threads."""
        return sum(sum(t["seconds"].values()) for t in self.truth["threads"])

    def shares(self):
        """[(thread name, tid, kind, true share, measured share, samples)]."""
        rows = []
        for t in self.truth["threads"]:
            secs = t["seconds"]
            total = sum(secs.values())
            got = self.counts.get(t["tid"] if self.by_thread else 0, {})
            n = sum(got.values())
            for k in self.truth["kinds"]:
                rows.append((t["name"], t["tid"], k, secs[k] / total if total else 0.0,
                             got.get(k, 0) / n if n else 0.0, n))
        return rows

    def worst(self):
        """The largest error of a share, in points, and its row."""
        rows = self.shares()
        if not rows:
            return None, None
        row = max(rows, key=lambda r: abs(r[4] - r[3]))
        return abs(row[4] - row[3]) * 100, row

    def describe(self):
        return "; ".join("%s %s: true %.1f%%, got %.1f%% of %d" % (name, k, t * 100, g * 100, n)
                         for name, _, k, t, g, n in self.shares())


def _fds_into(pid, target):
    """1 when process pid holds a file of /proc/TARGET/ open."""
    want = "/proc/%d/" % target
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(want):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def _workload_args(kinds, slice_ms, seconds, threads, out):
    return [WORKLOAD, "--out", out, "--kinds", ",".join(kinds), "--slice", str(slice_ms),
            "--seconds", str(seconds), "--threads", str(threads)]


def _finish(p, out, by_thread, rate, argv, timeout):
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise RuntimeError("pystrobe did not finish within %d s" % timeout)
    return err.decode("utf-8", "replace")


def attach(pystrobe, exe, rate, kinds=("implicit", "plain"), slice_ms=40, seconds=5.0,
           threads=1, extra=(), timeout=120, tmp=None, spawn=subprocess.Popen):
    """Starts the workload, attaches record to it, starts the work once record
    holds the target's files (it samples), and returns the Run."""
    d = tempfile.mkdtemp(prefix="truth-", dir=tmp)
    truth_path = os.path.join(d, "truth.json")
    prof = os.path.join(d, "out.folded")
    by_thread = threads > 1
    t = spawn([exe] + _workload_args(kinds, slice_ms, seconds, threads, truth_path) + ["--wait"],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p = None
    try:
        r, _, _ = select.select([t.stdout], [], [], 60)
        if not r or t.stdout.readline() != b"READY\n":
            raise RuntimeError("truth.py did not start: %s" % t.stderr.read(2000) if t.poll() is not None else "no READY")
        argv = [pystrobe, "record", "-f", "folded", "-o", prof, "-r", str(rate)] + \
            (["--threads"] if by_thread else []) + list(extra) + ["-p", str(t.pid)]
        p = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not _fds_into(p.pid, t.pid) and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        t.stdin.write(b"go\n")
        t.stdin.flush()
        err = _finish(p, prof, by_thread, rate, argv, timeout)
        t.wait(timeout=30)
        with open(truth_path) as f:
            truth = json.load(f)
        stacks = read_folded(prof) if os.path.exists(prof) else {}
        return Run(truth, stacks, by_thread, err, p.returncode, rate, argv)
    finally:
        for q in (p, t):
            if q is not None and q.poll() is None:
                q.kill()
                q.wait()


def launch(pystrobe, exe, rate, kinds=("implicit", "plain"), slice_ms=40, seconds=5.0,
           threads=1, extra=(), timeout=120, tmp=None, spawn=subprocess.Popen):
    """Runs the workload under record (-- COMMAND) and returns the Run."""
    d = tempfile.mkdtemp(prefix="truth-", dir=tmp)
    truth_path = os.path.join(d, "truth.json")
    prof = os.path.join(d, "out.folded")
    by_thread = threads > 1
    argv = [pystrobe, "record", "-f", "folded", "-o", prof, "-r", str(rate)] + \
        (["--threads"] if by_thread else []) + list(extra) + \
        ["--", exe] + _workload_args(kinds, slice_ms, seconds, threads, truth_path)
    p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = _finish(p, prof, by_thread, rate, argv, timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(truth_path) as f:
        truth = json.load(f)
    stacks = read_folded(prof) if os.path.exists(prof) else {}
    return Run(truth, stacks, by_thread, err, p.returncode, rate, argv)
