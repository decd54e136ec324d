"""End-to-end target for how recordings end (tests/e2e/e2e_ends.py): the main
thread spins in a plain loop for --seconds of wall-clock time, then exits 0.
--cgroup DIR first moves the process into that cpu cgroup (a CPU quota: its
threads runnable but mostly waiting for a CPU, as on a loaded machine);
--threads N starts N more threads spinning alike.  Prints READY (and its pid)
once spinning.  Runs on CPython 2.7 and 3.6+."""
import argparse
import os
import sys
import threading
import time


def spin(until):
    n = 0
    while time.time() < until:  # @spin
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=3.0)
    ap.add_argument('--cgroup')
    ap.add_argument('--threads', type=int, default=0)
    a = ap.parse_args()
    if a.cgroup:
        with open(os.path.join(a.cgroup, 'cgroup.procs'), 'w') as f:
            f.write('%d\n' % os.getpid())
    until = time.time() + a.seconds
    for i in range(a.threads):
        t = threading.Thread(target=spin, args=(until,), name='spinner-%d' % (i + 1))
        t.daemon = True
        t.start()
    sys.stdout.write('READY %d\n' % os.getpid())
    sys.stdout.flush()
    spin(until)


main()
