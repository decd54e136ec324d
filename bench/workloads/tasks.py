"""Many asyncio tasks, nearly all waiting:
`tasks.py N [--work ITEMS] [--seconds S] [--rounds R]`.

Starts N waiting tasks in three stacks: half wait on one asyncio.Lock
(held for ever by one more task) under 8 frames of their own coroutines,
three in ten on an asyncio.Event under 5, the rest in asyncio.sleep(3600)
under 2.  Then:

  (default)     3 more tasks work (R rounds of a little arithmetic, default
                100, about 0.7 ms; then asyncio.sleep(0) to let the others
                run), the main task waits; prints READY once every task is
                where it stays (the lock with its waiters, ...), and exits
                after --seconds (default 600).
  --work ITEMS  the target's own throughput: prints READY (no workers),
                waits for a line on stdin, then a producer passes ITEMS
                items through an asyncio.Queue(64) to 4 consumer tasks,
                each item costing a little computation, and it prints one
                line and exits:

                    WORK wall=SECONDS cpu=SECONDS items=N checksum=C

                wall is the time from the first item put to the last one
                done, cpu the process's user+system time over that span.

Stdlib only; Python 3.7+ (asyncio.run).
"""
import asyncio
import os
import sys
import time

WORKERS = 3
CONSUMERS = 4
QUEUE_SIZE = 64
LOCK_DEPTH, EVENT_DEPTH, SLEEP_DEPTH = 8, 5, 2


def usage():
    sys.exit("usage: tasks.py N [--work ITEMS] [--seconds S] [--rounds R]")


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

parked = [0]


async def down(k, leaf, *a):
    """k more coroutine frames of our own above leaf."""
    if k <= 1:
        return await leaf(*a)
    return await down(k - 1, leaf, *a)


def arrive():
    parked[0] += 1


async def hold(lock, held, forever):
    async with lock:
        held.set()
        await forever.wait()


async def take(lock):
    arrive()
    await lock.acquire()


async def wait(event):
    arrive()
    await event.wait()


async def doze():
    arrive()
    await asyncio.sleep(3600)


def compute(i):
    s = 0
    for k in range(40):
        s += (i * k + 7) % 13
    text = ",".join(["%d:%x" % (i + k, k) for k in range(4)])
    return s + len(text.split(","))


async def worker(w):
    i = w
    while True:
        for _ in range(ROUNDS):
            compute(i)
            i += 1
        await asyncio.sleep(0)


async def start_waiting():
    """The N waiting tasks (and the lock's holder), once each is where it stays."""
    lock, event, forever, held = asyncio.Lock(), asyncio.Event(), asyncio.Event(), asyncio.Event()
    keep = [asyncio.ensure_future(hold(lock, held, forever))]
    await held.wait()
    n_lock = N // 2
    n_event = N * 3 // 10
    keep += [asyncio.ensure_future(down(LOCK_DEPTH - 1, take, lock)) for _ in range(n_lock)]
    keep += [asyncio.ensure_future(down(EVENT_DEPTH - 1, wait, event)) for _ in range(n_event)]
    keep += [asyncio.ensure_future(down(SLEEP_DEPTH - 1, doze)) for _ in range(N - n_lock - n_event)]
    # Each task runs up to its wait in its first step.
    deadline = time.time() + 60
    while parked[0] < N and time.time() < deadline:
        await asyncio.sleep(0.01)
    waiters = getattr(lock, "_waiters", None)
    if parked[0] < N or (n_lock and len(waiters or ()) < n_lock):
        sys.exit("tasks.py: only %d of %d tasks waiting (%d on the lock)"
                 % (parked[0], N, len(waiters or ())))
    return keep


def ready():
    sys.stdout.write("READY\n")
    sys.stdout.flush()


async def consumer(q, done, total):
    while True:
        i = await q.get()
        if i is None:
            return
        total[0] = (total[0] + compute(i)) % 1000000007
        done[0] += 1


async def throughput(items):
    q = asyncio.Queue(QUEUE_SIZE)
    done, total = [0], [0]
    cons = [asyncio.ensure_future(consumer(q, done, total)) for _ in range(CONSUMERS)]
    t0, c0 = time.time(), os.times()
    for i in range(items):
        await q.put(i)
    for _ in cons:
        await q.put(None)
    await asyncio.gather(*cons)
    t1, c1 = time.time(), os.times()
    if done[0] != items:
        sys.exit("tasks.py: %d of %d items done" % (done[0], items))
    cpu = (c1[0] - c0[0]) + (c1[1] - c0[1])
    sys.stdout.write("WORK wall=%.6f cpu=%.6f items=%d checksum=%d\n" % (t1 - t0, cpu, items, total[0]))
    sys.stdout.flush()


async def main():
    keep = await start_waiting()
    if ITEMS is not None:
        ready()
        # In a thread of the default executor: the loop goes on meanwhile.
        line = await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
        if not line:
            sys.exit("tasks.py: no go on stdin")
        await throughput(ITEMS)
        os._exit(0)   # not asyncio.run's cancelling of every task left
    keep += [asyncio.ensure_future(worker(w)) for w in range(WORKERS)]
    await asyncio.sleep(0.05)
    ready()
    await asyncio.sleep(SECONDS)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
