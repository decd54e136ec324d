"""Work that times itself, for checking the shares a sampler reports:
`truth.py --out FILE [--kinds K,K...] [--slice MS] [--seconds S]
[--threads N] [--wait]`.

Each thread runs slices of work in turn, one kind after another, each slice
one call of `slice_KIND` that works until the slice's deadline, and adds
the slice's wall-clock time to its kind.  At the end it writes, as JSON to
--out, every thread's name, Linux thread id and seconds per kind: the truth
that a profile's shares are compared with (a thread's samples in
`slice_KIND`, over its samples in any slice, against its seconds in KIND
over its seconds in all kinds).  Wall clock is the truth for a thread that
is never blocked in its slices (a CPU profile); for a thread that may wait
for the GIL it is the truth of a wall-clock profile (--idle).

Kinds:
  implicit  Python code reached from C: __add__, __lt__, a property,
            __getitem__, __enter__/__exit__, a generator
  plain     a loop of arithmetic, calling nothing
  gen       generators feeding generators
  deep      recursion 150 deep, then a little work at the bottom, and back
  fib       fast recursion: fib(14) over and over
  ccall     C calls that let the GIL go (hashing 256 KiB at a time)

With --wait, the threads start working when a line arrives on stdin (after
READY is printed), so that a profiler attached meanwhile sees every slice;
without, at once.  --threads N runs N threads (the main one and N-1
workers, named worker-1...), each starting at a different kind.
Runs on 2.7 and 3.x.
"""
import hashlib
import json
import os
import sys
import threading
import time

try:
    clock = time.perf_counter
except AttributeError:  # 2.7
    clock = time.time


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


OUT = arg("--out", None)
KINDS = arg("--kinds", "implicit,plain").split(",")
SLICE = float(arg("--slice", "40")) / 1000.0
SECONDS = float(arg("--seconds", "5"))
THREADS = int(arg("--threads", "1"))
WAIT = "--wait" in sys.argv
sys.setrecursionlimit(1000)


class Num(object):
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __add__(self, other):
        return Num(self.v + other.v)

    def __lt__(self, other):
        return self.v < other.v


class Box(object):
    def __init__(self):
        self._x = 3
        self.items = list(range(16))

    @property
    def x(self):
        return self._x

    def __getitem__(self, i):
        return self.items[i & 15]


class Guard(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def count(n):
    for i in range(n):
        yield i


def slice_implicit(deadline):
    a, b, box, guard = Num(1), Num(2), Box(), Guard()
    n = 0
    while clock() < deadline:
        for i in range(40):
            c = a + b
            if c < b:
                n -= 1
            n += box.x + box[i]
            with guard:
                n += 1
        for v in count(20):
            n += v
    return n


def slice_plain(deadline):
    n = 0
    while clock() < deadline:
        for i in range(300):
            n += (i * 7 + n) % 13
    return n


def squares(src):
    for v in src:
        yield v * v


def odd(src):
    for v in src:
        if v & 1:
            yield v


def slice_gen(deadline):
    n = 0
    while clock() < deadline:
        for v in odd(squares(count(200))):
            n += v
    return n


def down(k, deadline):
    if k > 0:
        return down(k - 1, deadline)
    n = 0
    for i in range(2000):
        n += i % 7
    return n


def slice_deep(deadline):
    n = 0
    while clock() < deadline:
        n += down(150, deadline)
    return n


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def slice_fib(deadline):
    n = 0
    while clock() < deadline:
        n += fib(14)
    return n


BLOCK = b"x" * (256 << 10)


def slice_ccall(deadline):
    n = 0
    while clock() < deadline:
        n += len(hashlib.sha256(BLOCK).digest())
    return n


WORK = {
    "implicit": slice_implicit,
    "plain": slice_plain,
    "gen": slice_gen,
    "deep": slice_deep,
    "fib": slice_fib,
    "ccall": slice_ccall,
}


def native_tid():
    try:
        return threading.get_native_id()
    except AttributeError:
        try:
            import ctypes
            return ctypes.CDLL(None).syscall(186)  # gettid, x86_64
        except Exception:
            return 0


def run(first, end, out):
    spent = dict((k, 0.0) for k in KINDS)
    out["tid"] = native_tid()
    out["name"] = threading.current_thread().name
    go.wait()
    stop = clock() + SECONDS
    k = first
    while True:
        kind = KINDS[k % len(KINDS)]
        k += 1
        t0 = clock()
        if t0 >= stop:
            break
        WORK[kind](min(t0 + SLICE, stop))
        spent[kind] += clock() - t0
    out["seconds"] = spent


for k in KINDS:
    if k not in WORK:
        sys.exit("truth.py: unknown kind %r (known: %s)" % (k, ", ".join(sorted(WORK))))
go = threading.Event()
results = [dict() for _ in range(THREADS)]
workers = [threading.Thread(target=run, name="worker-%d" % i, args=(i, 0, results[i]))
           for i in range(1, THREADS)]
for w in workers:
    w.daemon = True
    w.start()
sys.stdout.write("READY\n")
sys.stdout.flush()
if WAIT:
    sys.stdin.readline()
go.set()
run(0, 0, results[0])
for w in workers:
    while w.is_alive():
        w.join(0.1)
report = {"pid": os.getpid(), "kinds": KINDS, "threads": results}
if OUT:
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.rename(tmp, OUT)
else:
    sys.stdout.write(json.dumps(report) + "\n")
