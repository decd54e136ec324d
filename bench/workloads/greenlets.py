"""Many gevent greenlets, nearly all parked:
`greenlets.py N [--work ITEMS] [--seconds S] [--rounds R]`.

Spawns N parked greenlets in three stacks: half wait on one
gevent.lock.Semaphore under 8 frames of their own, three in ten on a
gevent.event.Event under 5, the rest in gevent.sleep under 2.  Then:

  (default)     3 more greenlets work (R rounds of a little arithmetic,
                default 100, about 0.7 ms; then gevent.sleep(0) to let the
                others run: the fewer rounds, the faster the collector's
                lists change), the main greenlet
                sleeps; prints READY once every greenlet is where it stays,
                and exits after --seconds (default 600).
  --work ITEMS  the target's own throughput: prints READY, waits for a line
                on stdin, then a producer passes ITEMS items through a
                gevent.queue.Queue to 4 consumers, each item costing a
                little computation, and it prints one line and exits:

                    WORK wall=SECONDS cpu=SECONDS items=N checksum=C

                wall is the time from the first item put to the last one
                done, cpu the process's user+system time over that span.

Python 3 with gevent (Debian's python3-gevent here).
"""
import os
import sys
import time

import gevent
import gevent.event
import gevent.lock
import gevent.queue

WORKERS = 3
CONSUMERS = 4
QUEUE_SIZE = 64
SEM_DEPTH, EVENT_DEPTH = 8, 5


def usage():
    sys.exit("usage: greenlets.py N [--work ITEMS] [--seconds S] [--rounds R]")


args = sys.argv[1:]
if not args or not args[0].isdigit():
    usage()
N = int(args[0])
ITEMS = None
SECONDS = 600.0
ROUNDS = 100
rest = args[1:]
while rest:
    if rest[0] == "--work" and len(rest) > 1 and rest[1].isdigit():
        ITEMS = int(rest[1])
    elif rest[0] == "--seconds" and len(rest) > 1:
        SECONDS = float(rest[1])
    elif rest[0] == "--rounds" and len(rest) > 1 and rest[1].isdigit():
        ROUNDS = int(rest[1])
    else:
        usage()
    rest = rest[2:]

sem = gevent.lock.Semaphore(0)
event = gevent.event.Event()
parked = [0]


def down(k, leaf, *a):
    """k more frames of our own above leaf."""
    if k <= 1:
        return leaf(*a)
    return down(k - 1, leaf, *a)


def arrive():
    parked[0] += 1


def take():
    arrive()
    sem.acquire()


def wait():
    arrive()
    event.wait()


def doze():
    arrive()
    gevent.sleep(3600 * 24)


def compute(i):
    s = 0
    for k in range(40):
        s += (i * k + 7) % 13
    text = ",".join(["%d:%x" % (i + k, k) for k in range(4)])
    return s + len(text.split(","))


def worker(w):
    i = w
    while True:
        for _ in range(ROUNDS):
            compute(i)
            i += 1
        gevent.sleep(0)


def spawn_parked():
    n_sem = N // 2
    n_event = N * 3 // 10
    keep = [gevent.spawn(down, SEM_DEPTH - 1, take) for _ in range(n_sem)]
    keep += [gevent.spawn(down, EVENT_DEPTH - 1, wait) for _ in range(n_event)]
    keep += [gevent.spawn(down, 1, doze) for _ in range(N - n_sem - n_event)]
    # Each greenlet runs up to its wait the first time the hub gets to it.
    deadline = time.time() + 60
    while parked[0] < N and time.time() < deadline:
        gevent.sleep(0.01)
    if parked[0] < N:
        sys.exit("greenlets.py: only %d of %d greenlets parked" % (parked[0], N))
    return keep


def ready():
    sys.stdout.write("READY\n")
    sys.stdout.flush()


def consumer(q, done, total):
    while True:
        i = q.get()
        if i is None:
            return
        total[0] = (total[0] + compute(i)) % 1000000007
        done[0] += 1


def throughput(items):
    q = gevent.queue.Queue(QUEUE_SIZE)
    done, total = [0], [0]
    cons = [gevent.spawn(consumer, q, done, total) for _ in range(CONSUMERS)]
    t0, c0 = time.time(), os.times()
    for i in range(items):
        q.put(i)
    for _ in cons:
        q.put(None)
    gevent.joinall(cons)
    t1, c1 = time.time(), os.times()
    if done[0] != items:
        sys.exit("greenlets.py: %d of %d items done" % (done[0], items))
    cpu = (c1[0] - c0[0]) + (c1[1] - c0[1])
    sys.stdout.write("WORK wall=%.6f cpu=%.6f items=%d checksum=%d\n" % (t1 - t0, cpu, items, total[0]))
    sys.stdout.flush()


def main():
    keep = spawn_parked()
    if ITEMS is not None:
        ready()
        # stdin is a pipe: reading it blocks the whole process, which is fine here.
        if not sys.stdin.readline():
            sys.exit("greenlets.py: no go on stdin")
        throughput(ITEMS)
        os._exit(0)
    keep += [gevent.spawn(worker, w) for w in range(WORKERS)]
    gevent.sleep(0.05)
    ready()
    deadline = time.time() + SECONDS
    while time.time() < deadline:
        gevent.sleep(min(1.0, max(deadline - time.time(), 0)))
    os._exit(0)


if __name__ == "__main__":
    main()
