"""A busy leaf under a stack of exactly DEPTH Python frames (the module frame
included): `deep.py DEPTH [SECONDS]`.  Prints READY when the stack is built.
Runs on Python 2.7 and 3.x."""
import sys
import time

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 50
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
sys.setrecursionlimit(max(1000, DEPTH + 100))


def leaf():
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    deadline = time.time() + SECONDS
    n = 0
    while True:
        n += 1
        if n % 100000 == 0 and time.time() > deadline:
            return


def down(k):
    if k <= 2:  # this frame, the ones above it and <module> make DEPTH
        return leaf()
    return down(k - 1)


down(DEPTH - 1)
