"""Many threads, one of them busy: `threads.py N [DEPTH] [SECONDS]`.

Starts N threads: one runs a busy Python loop, the other N-1 sleep in
time.sleep, each under exactly DEPTH Python frames (default 10, the
thread's bootstrap frames included); the main thread waits in time.sleep
too, as the watchdog: the process exits after SECONDS (default 600).
Prints READY once every thread has reached its loop or its sleep.
Runs on Python 2.7 and 3.x.
"""
import os
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
DEPTH = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0

if N < 1 or DEPTH < 5:
    sys.exit("usage: threads.py N>=1 [DEPTH>=5] [SECONDS]")

lock = threading.Lock()
arrived = [0]
all_in = threading.Event()


def arrive():
    with lock:
        arrived[0] += 1
        if arrived[0] == N:
            all_in.set()


def busy():
    arrive()
    n = 0
    while True:
        n += 1


def sleep():
    arrive()
    while True:
        time.sleep(3600)


def down(k, leaf):
    if k <= 0:
        return leaf()
    return down(k - 1, leaf)


# A thread's stack is threading's bootstrap frames (Thread._bootstrap,
# _bootstrap_inner, run: three on every version here), then run_thread,
# then down() down to the leaf.
BOOTSTRAP = 3


def run_thread(leaf):
    down(DEPTH - BOOTSTRAP - 3, leaf)  # run_thread, the downs and the leaf make DEPTH - 3


def start(leaf, name):
    t = threading.Thread(target=run_thread, args=(leaf,), name=name)
    t.daemon = True
    t.start()


start(busy, "busy")
for i in range(N - 1):
    start(sleep, "sleeper-%d" % i)
all_in.wait(60)
if not all_in.is_set():
    sys.exit("threads.py: only %d of %d threads started" % (arrived[0], N))
time.sleep(0.1)  # the last ones from arrive() into their sleep
sys.stdout.write("READY\n")
sys.stdout.flush()
deadline = time.time() + SECONDS
while time.time() < deadline:
    time.sleep(min(1.0, max(deadline - time.time(), 0)))
os._exit(0)
