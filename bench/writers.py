"""`make bench`, second part: what each output format costs to write.

Generates folded profiles with 1,000, 10,000 and 100,000 distinct stacks
(deterministic: a call tree over about 3,000 distinct frames, stacks 6
to 33 deep, heavy-tailed counts, as a large service has),
converts each with `pystrobe convert` into every format, and reports the
CPU time, peak memory (max RSS of the converting process) and file size.
The baseline, measured in the same run on the same input, is converting to
folded text (read, aggregate, sort, write): other formats are also given as
a ratio to it.  Then build/bench/writers_cost separates each writer's own
CPU time from reading the input (the profile read once, each format written
to /dev/null, best of three).  BENCH_WRITER_SIZES narrows the sizes (e.g. "1000,10000").
"""
import os
import random
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYSTROBE = os.environ.get("BENCH_PYSTROBE") or os.path.join(ROOT, "pystrobe")
SIZES = [int(s) for s in os.environ.get("BENCH_WRITER_SIZES", "1000,10000,100000").split(",")]
FORMATS = [("folded", "folded"), ("flamegraph", "svg"), ("speedscope", "json"), ("pprof", "pb.gz")]
REPEAT = 3
WRITERS_COST = os.path.join(ROOT, "build", "bench", "writers_cost")


def make_profile(path, n, seed=1):
    """n distinct stacks over about 3,000 distinct frames, as a large service has."""
    rnd = random.Random(seed)
    mods = ["/srv/app/%s/%s.py" % (pkg, m) for pkg in ("api", "db", "models", "views", "util", "cache")
            for m in ("core", "handlers", "base", "helpers", "io")]
    mods += ["/usr/lib/python3.11/%s.py" % w for w in ("json/decoder", "json/encoder", "re/_parser",
                                                       "socket", "threading", "ssl", "logging/__init__")]
    funcs = ["handle", "query", "fetch", "render", "parse", "encode", "save", "load", "check", "run",
             "wrapper", "<lambda>", "dispatch", "_inner", "compute", "Session.execute", "Model.save"]
    labels = ["%s (%s:%d)" % (rnd.choice(funcs), m, rnd.randint(1, 900)) for m in mods for _ in range(80)]
    trunk = ["<module> (/srv/app/main.py:10)", "main (/srv/app/main.py:42)", "serve (/srv/app/server.py:88)"]
    seen = set()
    with open(path, "w") as f:
        while len(seen) < n:
            # A call tree: each frame calls one of a few callees of its own, and
            # sample counts are heavy-tailed, as in real profiles.
            frames = list(trunk)
            for _ in range(rnd.randint(3, 30)):
                kids = random.Random(zlib.crc32(frames[-1].encode()) + seed)
                callees = [labels[kids.randrange(len(labels))] for _ in range(kids.randint(2, 8))]
                frames.append(callees[rnd.randrange(len(callees))])
            key = ";".join(frames)
            if key in seen:
                continue
            seen.add(key)
            f.write("%s %d\n" % (key, min(100000, int(rnd.paretovariate(1.1)))))


def measure(args):
    """CPU seconds and peak RSS (KiB) of one run of args."""
    pid = os.fork()
    if pid == 0:
        os.execv(args[0], args)
    _, status, ru = os.wait4(pid, 0)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        sys.exit("bench: %s failed (status %r)" % (" ".join(args), status))
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    if not os.access(PYSTROBE, os.X_OK):
        sys.exit("bench: no %s: run make first" % PYSTROBE)
    tmp = tempfile.mkdtemp(prefix="pystrobe-bench-writers-")
    try:
        print("Writers: pystrobe convert from folded input; best of %d runs" % REPEAT)
        print("%9s %-11s %9s %9s %10s %12s" % ("stacks", "format", "CPU ms", "x folded", "peak MiB", "size"))
        for n in SIZES:
            src = os.path.join(tmp, "in-%d.folded" % n)
            make_profile(src, n)
            base = None
            for fmt, ext in FORMATS:
                out = os.path.join(tmp, "out-%d.%s" % (n, ext))
                best_cpu, best_rss = None, None
                for _ in range(REPEAT):
                    cpu, rss = measure([PYSTROBE, "convert", src, "-f", fmt, "-o", out])
                    best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
                    best_rss = rss if best_rss is None else min(best_rss, rss)
                if base is None:
                    base = best_cpu
                ratio = best_cpu / base if base > 0 else float("nan")
                size = os.path.getsize(out)
                print("%9d %-11s %9.1f %9.2f %10.1f %12s" % (n, fmt, best_cpu * 1e3, ratio,
                                                            best_rss / 1024.0, "{:,}".format(size)))
            if os.access(WRITERS_COST, os.X_OK):
                out = subprocess.run([WRITERS_COST, src, str(REPEAT)], capture_output=True, text=True)
                if out.returncode == 0:
                    cost = dict(line.split() for line in out.stdout.split("\n") if line)
                    print("%9s %-11s %s" % ("", "writers", ", ".join(
                        "%s %.1f ms" % (k, float(v) / 1e3) for k, v in cost.items())))
            sys.stdout.flush()
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
