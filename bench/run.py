"""`make bench`: what a sample costs pystrobe, per interpreter and stack depth.

For each interpreter found and each depth, starts bench/workloads/deep.py
(a busy leaf under exactly DEPTH frames), records it for a few seconds at a
fixed rate, and reads pystrobe's own account of its CPU time and
process_vm_readv calls per sample.  The baseline, measured in the same run
against the same target, is one bare 8-byte process_vm_readv: costs are
also given as a ratio to it, so that runs on different machines compare.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYSTROBE = os.environ.get("BENCH_PYSTROBE") or os.path.join(ROOT, "pystrobe")
READV_COST = os.path.join(ROOT, "build", "bench", "readv_cost")
DEPTHS = [int(d) for d in os.environ.get("BENCH_DEPTHS", "10,50,200").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
RATE = int(os.environ.get("BENCH_RATE", "500"))


def interpreters():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found, seen = [], set()
    for d in sorted(glob.glob(os.path.join(root, "versions", "*"))):
        for exe in sorted(glob.glob(os.path.join(d, "bin", "python[23].[0-9]*"))):
            if re.search(r"python\d\.\d+$", exe):
                found.append((os.path.basename(d), exe))
                break
    if os.path.exists("/usr/bin/python3"):
        out = subprocess.run(["/usr/bin/python3", "-c", "import platform;print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
        found.append(("debian-" + out, "/usr/bin/python3"))
    only = os.environ.get("BENCH_VERSIONS")
    result = []
    for name, exe in found:
        real = os.path.realpath(exe)
        if real in seen:
            continue
        seen.add(real)
        if only and not any(name.startswith(v) for v in only.split(",")):
            continue
        result.append((name, exe))

    def key(item):
        nums = re.findall(r"\d+", item[0])
        return [int(n) for n in nums[:3]] + [item[0].startswith("debian")]
    return sorted(result, key=key)


def readable_address(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[1].startswith("r"):
                return parts[0].split("-")[0]
    raise RuntimeError("no readable mapping")


def measure(exe, depth, tmp):
    target = subprocess.Popen([exe, os.path.join(ROOT, "bench", "workloads", "deep.py"), str(depth)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if target.stdout.readline().strip() != b"READY":
            raise RuntimeError("workload did not start: %s" % target.stderr.read().decode())
        base = float(subprocess.run([READV_COST, str(target.pid), readable_address(target.pid)],
                                    capture_output=True, text=True, check=True).stdout)
        out = os.path.join(tmp, "bench.folded")
        r = subprocess.run([PYSTROBE, "record", "-p", str(target.pid), "-d", str(SECONDS),
                            "-r", str(RATE), "-o", out], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        m = re.search(r"cost per sample: ([\d.]+) us CPU, ([\d.]+) reads", r.stderr)
        hz = re.search(r"\(([\d.]+) Hz of", r.stderr)
        with open(out) as f:
            lines = [l.rsplit(" ", 1) for l in f.read().splitlines()]
        total = sum(int(c) for _, c in lines) or 1
        full = sum(int(c) for s, c in lines if s.count(";") + 1 == depth)
        return {"us": float(m.group(1)), "reads": float(m.group(2)), "base": base,
                "hz": float(hz.group(1)), "exact": 100.0 * full / total}
    finally:
        target.kill()
        target.wait()


def main():
    if not os.path.exists(PYSTROBE):
        sys.exit("bench: build ./pystrobe first (make)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, exe in interpreters():
            for depth in DEPTHS:
                try:
                    m = measure(exe, depth, tmp)
                except Exception as e:  # report and go on with the others
                    print("bench: %s depth %d: %s" % (name, depth, e), file=sys.stderr)
                    continue
                rows.append((name, depth, m))
                time.sleep(0.2)
    print("pystrobe record at %d Hz for %g s per row; baseline: one 8-byte process_vm_readv" % (RATE, SECONDS))
    print("%-14s %6s %12s %13s %11s %14s %10s %12s" % ("python", "depth", "us/sample", "reads/sample",
                                                     "baseline us", "x baseline", "rate Hz", "full stacks"))
    for name, depth, m in rows:
        print("%-14s %6d %12.1f %13.1f %11.2f %14.1f %10.1f %11.1f%%" % (
            name, depth, m["us"], m["reads"], m["base"], m["us"] / m["base"], m["hz"], m["exact"]))


if __name__ == "__main__":
    main()
