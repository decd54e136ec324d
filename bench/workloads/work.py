"""A fixed amount of CPU-bound Python work that times itself:
`work.py ITERATIONS [WARMUP_SECONDS]`.

Sleeps WARMUP_SECONDS first (default 0.3: time for a profiler that launched
it to attach; a sleeping thread is not sampled), then runs ITERATIONS
rounds of mixed work (integer arithmetic, string formatting and splitting,
dict updates, small objects and method calls, sorting with a key, a little
recursion) and prints one line:

    WORK wall=SECONDS cpu=SECONDS iterations=N checksum=C

wall is the elapsed time of the rounds alone (not interpreter start-up nor
the warm-up), cpu the process's user+system time over the same span.  The
same ITERATIONS is the same work on every run of one interpreter, so the
benchmark compares runs with and without a profiler.  Runs on 2.7 and 3.x.
"""
import os
import sys
import time

ITERATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
WARMUP = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3


class Point(object):
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm2(self):
        return self.x * self.x + self.y * self.y


def arith(i):
    s = 0
    for k in range(24):
        s += (i * k + 7) % 13
    return s


def strings(i):
    text = ",".join(["%d:%x" % (i + k, k) for k in range(8)])
    return len(text.split(",")) + text.count("1")


def dicts(i, table):
    key = "k%d" % (i % 97)
    table[key] = table.get(key, 0) + 1
    return len(table)


def objects(i):
    pts = [Point((i * 31 + k) % 17, k) for k in range(8)]
    pts.sort(key=lambda p: p.norm2())
    return pts[0].x


def recurse(n):
    if n < 2:
        return n
    return recurse(n - 1) + recurse(n - 2)


def one_round(i, table):
    return arith(i) + strings(i) + dicts(i, table) + objects(i) + recurse(7)


def main():
    if WARMUP > 0:
        time.sleep(WARMUP)
    table = {}
    checksum = 0
    t0, c0 = time.time(), os.times()
    for i in range(ITERATIONS):
        checksum = (checksum + one_round(i, table)) % 1000000007
    t1, c1 = time.time(), os.times()
    cpu = (c1[0] - c0[0]) + (c1[1] - c0[1])
    sys.stdout.write("WORK wall=%.6f cpu=%.6f iterations=%d checksum=%d\n"
                     % (t1 - t0, cpu, ITERATIONS, checksum))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
