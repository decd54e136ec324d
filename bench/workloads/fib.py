"""Fast recursion under a known stack: `fib.py DEPTH [SECONDS] [N]`.

<module> calls down() DEPTH times, the last down() calls spin(), which
computes fib(N) over and over.  Every true stack is therefore: <module> at
its call line, DEPTH down frames at the recursive call, one down frame at
the call to spin, spin (at its call to fib whenever fib runs), then at most
N fib frames, all at the recursive call but the innermost.  A sample that
is not of this shape mixes frames from before and after a call returned: a
torn sample.  Prints READY when the stack is built.  Runs on 2.7 and 3.x.
"""
import sys
import time

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
N = int(sys.argv[3]) if len(sys.argv) > 3 else 18
sys.setrecursionlimit(max(1000, DEPTH + N + 100))


def fib(n):
    if n < 2:  # @fib-test
        return n  # @fib-base
    return fib(n - 1) + fib(n - 2)  # @fib-call


def spin():
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    deadline = time.time() + SECONDS
    while time.time() < deadline:  # @spin-loop
        fib(N)  # @spin-call


def down(k):
    if k <= 0:
        return spin()  # @down-spin
    return down(k - 1)  # @down-call


down(DEPTH)  # @module-call
