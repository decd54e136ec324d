"""Many distinct stacks, for a profiler's memory: `many.py [SECONDS] [FUNCS]`.

Generates FUNCS functions (default 200), each with four call sites on four
lines, each site calling another function; a driver walks random paths 4
to 30 calls deep through them and spins briefly at the end of each.
Nearly every sample is a stack not seen before, so a profiler's aggregate
grows all the time, as with a large service over a long run.  The
generated code claims the file name many_generated.py next to this one
(which does not exist: profilers only read the name).  Prints READY once
the functions exist.  Runs on 2.7 and 3.x.
"""
import os
import random
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
NFUNCS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
sys.setrecursionlimit(1000)


def generate(n):
    """Source for f0 .. f{n-1}: fI(path, k) calls the function path[k] picks."""
    rnd = random.Random(7)
    lines = []
    for i in range(n):
        targets = [rnd.randrange(n) for _ in range(4)]
        lines.append("def f%d(path, k):" % i)
        lines.append("    if k == len(path):")
        lines.append("        return spin(%d)" % (i % 5 + 1))
        lines.append("    c = path[k]")
        lines.append("    if c == 0:")
        lines.append("        return f%d(path, k + 1)" % targets[0])
        lines.append("    if c == 1:")
        lines.append("        return f%d(path, k + 1)" % targets[1])
        lines.append("    if c == 2:")
        lines.append("        return f%d(path, k + 1)" % targets[2])
        lines.append("    return f%d(path, k + 1)" % targets[3])
        lines.append("")
    return "\n".join(lines) + "\n"


def spin(n):
    s = 0
    for i in range(200 * n):
        s += i % 7
    return s


def main():
    scope = {"spin": spin}
    name = os.path.join(os.path.dirname(os.path.abspath(__file__)), "many_generated.py")
    exec(compile(generate(NFUNCS), name, "exec"), scope)
    funcs = [scope["f%d" % i] for i in range(NFUNCS)]
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    rnd = random.Random(1)
    deadline = time.time() + SECONDS
    n = 0
    while True:
        depth = rnd.randint(4, 30)
        path = [rnd.randrange(4) for _ in range(depth)]
        funcs[rnd.randrange(NFUNCS)](path, 0)
        n += 1
        if n % 64 == 0 and time.time() > deadline:
            return


if __name__ == "__main__":
    main()
