"""End-to-end target for pystrobe dump/record --tasks and locks, with asyncio.

Default (the crowd): one event loop in the main thread (asyncio.run) with
  --locked N     (500) tasks locker-N: locker -> take -> `async with lock`, on one
                 asyncio.Lock held for ever by the task holder (1 task)
  --getters N    (300) tasks getter-N: getter -> get_one -> Queue.get, on one empty Queue
  --sleepers N   (150) tasks sleeper-N: asyncio.sleep(3600)
  --tree-mids M  (7) and --tree-leaves L (6 per mid): one task tree-root that creates
                 M tasks tree-mid-I (3.11+: in an asyncio.TaskGroup, line @tree-root;
                 before: asyncio.gather over them, line @tree-root-gather), each of which
                 gathers L tasks tree-leaf-I-J that wait on a never-set Event:
                 1 + M + M*L tasks (50); --tree-mids 0: no tree at all
  plus holder and main (asyncio.run's task, renamed "main"), which ends up waiting
  on a never-set Event: 500 + 300 + 150 + 50 + 1 + 1 = 1002 tasks by default.
Once every task has started and waits on a future (the lock has --locked
waiters, the queue --getters), and the main task is parked, it prints one line:
READY {"pid": ..., "tasks": 1002, "python": "3.X"}
"tasks" counts every task of every loop of the process.  Tasks are named on
3.8+ only (3.7 has no task names).

  --threads K    also K threads thread-loop-I (before READY), each with its own asyncio.run:
                 a main task t{I}-main waiting on a never-set Event and 5 tasks
                 t{I}-sleeper-J asleep (6 tasks more per thread)
  --running      also a task busy (1 more), parked until everything else is; it then prints
                 READY and spins in spin() without ever yielding: the running task, which
                 the main task awaits (line @main-busy)
  --churn        instead of the crowd, tasks churn-N are created and finish at a high rate
                 (each awaits asyncio.sleep(0) 1 to 3 times; a few hundred alive at any
                 time).  READY once churning ("tasks": those alive then, main included).
                 On SIGUSR1 one line: {"created": ..., "finished": ..., "alive": ...}
                 (churn tasks created, finished, and not done; main not counted)
  --sockets      also a task stream-reader awaiting a StreamReader's read (@stream) and a task
                 sock-receiver in the loop's sock_recv (@sock), on socket pairs (2 more)
  --uvloop       every event loop is uvloop's (uvloop.install() first; Debian's python3-uvloop)
  --pure         asyncio without its C module: sys.modules['_asyncio'] = None before asyncio
                 is imported, so tasks and futures are the pure-Python classes
  --max-life S   watchdog: SIGALRM ends the process after S seconds (default 300)
  --selfcheck    (for checking this target) after READY, one JSON line: tasks per name
                 prefix, per coroutine and per await chain (its lines as markers), lock
                 waiters and queue getters, per loop; in --churn, adds "all" to the SIGUSR1
                 line: the tasks of the loop not done, main included

Lines the tests assert carry "# @name" markers.
"""
import sys
if '--pure' in sys.argv:
    sys.modules['_asyncio'] = None      # asyncio falls back to its pure-Python Task and Future
import asyncio  # noqa: E402
import collections
import inspect
import json
import os
import queue
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True

NAMED = sys.version_info >= (3, 8)              # create_task(name=) and Task.get_name()
PY = '%d.%d' % sys.version_info[:2]
CHURN_BATCH = 120                               # churn tasks created per loop iteration
THREAD_SLEEPERS = 5
LOOPS = {}                                      # thread index -> its running loop


def arg(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def spawn(coro, name):
    return asyncio.create_task(coro, name=name) if NAMED else asyncio.create_task(coro)


def name_me(name):
    if NAMED:
        asyncio.current_task().set_name(name)


def ready(tasks):
    print('READY ' + json.dumps({'pid': os.getpid(), 'tasks': tasks, 'python': PY}))
    sys.stdout.flush()


# ---- the crowd's tasks

async def holder(lock, never):
    async with lock:
        await never.wait()  # @holder


async def take(lock):
    async with lock:  # @take
        pass


async def locker(lock):
    await take(lock)  # @locker


async def get_one(q):
    return await q.get()  # @get


async def getter(q):
    await get_one(q)  # @getter


async def sleeper():
    await asyncio.sleep(3600)  # @sleep


async def leaf(never):
    await never.wait()  # @leaf


async def tree_mid(i, leaves, never):
    kids = [spawn(leaf(never), 'tree-leaf-%d-%d' % (i, j)) for j in range(leaves)]
    await asyncio.gather(*kids)  # @tree-mid


async def tree_root(mids, leaves, never):
    if hasattr(asyncio, 'TaskGroup'):
        async with asyncio.TaskGroup() as tg:  # @tree-root
            for i in range(mids):
                tg.create_task(tree_mid(i, leaves, never), name='tree-mid-%d' % i)
    else:
        kids = [spawn(tree_mid(i, leaves, never), 'tree-mid-%d' % i) for i in range(mids)]
        await asyncio.gather(*kids)  # @tree-root-gather


def spin():
    while True: x = sum(range(100))  # @spin


async def stream_reader(sock):
    reader, _ = await asyncio.open_connection(sock=sock)
    await reader.read(100)  # @stream


async def sock_receiver(sock):
    sock.setblocking(False)
    await asyncio.get_event_loop().sock_recv(sock, 100)  # @sock


async def busy(go, report):
    await go.wait()  # @busy-wait
    report()
    spin()  # @busy


# ---- waiting until parked, and the self-check

def coro_of(task):
    return task.get_coro() if hasattr(task, 'get_coro') else task._coro


def parked(task):
    """Started, and suspended on a future."""
    return (inspect.getcoroutinestate(coro_of(task)) == inspect.CORO_SUSPENDED
            and task._fut_waiter is not None)


async def settle(expected, also=lambda: True):
    """Yields until this loop has `expected` tasks (this one included), all the others parked."""
    me, until = asyncio.current_task(), time.time() + 30
    while time.time() < until:
        others = [t for t in asyncio.all_tasks() if t is not me]
        if len(others) == expected - 1 and also() and all(parked(t) for t in others):
            return
        await asyncio.sleep(0)
    raise SystemExit('tasks.py: the tasks never settled')


def marker_lines():
    with open(__file__, encoding='utf-8') as f:
        return {n: m.group(1) for n, text in enumerate(f, 1)
                for m in [re.search(r'#\s*@([\w-]+)\s*$', text)] if m}


def census(loop, lock=None, q=None):
    """This loop's tasks per name prefix, per coroutine and per await chain."""
    marks = marker_lines()
    names, coros, chains = collections.Counter(), collections.Counter(), collections.Counter()
    for t in asyncio.all_tasks(loop):
        if NAMED:
            names[re.sub(r'(-\d+)+$', '', t.get_name())] += 1
        coros[coro_of(t).__qualname__] += 1
        chain, c = [], coro_of(t)
        while c is not None:        # coroutines (or generators); the future at the end stops it
            f = getattr(c, 'cr_frame', None) or getattr(c, 'gi_frame', None)
            if f is None:
                break
            here = f.f_code.co_filename == __file__
            chain.append(f.f_code.co_name + ('@' + marks.get(f.f_lineno, 'L%d' % f.f_lineno) if here else ''))
            c = getattr(c, 'cr_await', None) or getattr(c, 'gi_yieldfrom', None)
        chains[' > '.join(chain)] += 1
    out = {'tasks': sum(coros.values()), 'names': dict(names), 'coros': dict(coros), 'chains': dict(chains)}
    if lock is not None:
        out.update(lock_waiters=len(lock._waiters or ()), queue_getters=len(q._getters))
    return out


def selfcheck(lock, q):
    out = {'selfcheck': census(asyncio.get_event_loop(), lock, q), 'threads': {}}
    answers = queue.Queue()
    for i, loop in sorted(LOOPS.items()):
        loop.call_soon_threadsafe(lambda i=i, loop=loop: answers.put((i, census(loop))))
    for _ in LOOPS:
        i, c = answers.get(timeout=10)
        out['threads']['thread-loop-%d' % i] = c
    print(json.dumps(out, sort_keys=True))
    sys.stdout.flush()


# ---- the loops

async def thread_main(i, started):
    name_me('t%d-main' % i)
    never = asyncio.Event()
    keep = [spawn(sleeper(), 't%d-sleeper-%d' % (i, j)) for j in range(THREAD_SLEEPERS)]
    await settle(THREAD_SLEEPERS + 1)
    LOOPS[i] = asyncio.get_event_loop()
    LOOPS[i].call_soon(started.set)             # runs once this task is parked
    await never.wait()  # @thread-main


def start_threads(k):
    for i in range(k):
        started = threading.Event()
        threading.Thread(target=lambda i=i, s=started: asyncio.run(thread_main(i, s)),
                         name='thread-loop-%d' % i, daemon=True).start()
        if not started.wait(30):
            sys.exit('tasks.py: thread-loop-%d never settled' % i)
    return k * (THREAD_SLEEPERS + 1)


async def crowd(in_threads):
    name_me('main')
    locked, getters, sleepers = arg('--locked', 500), arg('--getters', 300), arg('--sleepers', 150)
    mids, leaves = arg('--tree-mids', 7), arg('--tree-leaves', 6)
    if mids and leaves < 1:
        sys.exit('tasks.py: --tree-leaves must be at least 1')
    lock, q, never, go = asyncio.Lock(), asyncio.Queue(), asyncio.Event(), asyncio.Event()
    keep = [spawn(holder(lock, never), 'holder')]
    while not lock.locked():
        await asyncio.sleep(0)
    keep += [spawn(locker(lock), 'locker-%d' % i) for i in range(locked)]
    keep += [spawn(getter(q), 'getter-%d' % i) for i in range(getters)]
    keep += [spawn(sleeper(), 'sleeper-%d' % i) for i in range(sleepers)]
    if mids:
        keep.append(spawn(tree_root(mids, leaves, never), 'tree-root'))
    here = 2 + locked + getters + sleepers + (1 + mids + mids * leaves if mids else 0)

    def report():
        ready(here + in_threads)
        if '--selfcheck' in sys.argv:
            selfcheck(lock, q)

    if '--sockets' in sys.argv:
        import socket
        pairs = [socket.socketpair() for _ in range(2)]
        keep.append(pairs)                      # the other ends stay open, silent
        keep.append(spawn(stream_reader(pairs[0][0]), 'stream-reader'))
        keep.append(spawn(sock_receiver(pairs[1][0]), 'sock-receiver'))
        here += 2
    if '--running' in sys.argv:
        here += 1
        keep.append(spawn(busy(go, report), 'busy'))
    await settle(here, lambda: len(lock._waiters or ()) == locked and len(q._getters) == getters)
    if '--running' in sys.argv:
        go.set()                                # busy reports, then spins
        await keep[-1]  # @main-busy
    else:
        asyncio.get_event_loop().call_soon(report)      # runs once this task is parked
    await never.wait()  # @main


async def churn_task(counts, steps):
    for _ in range(steps):
        await asyncio.sleep(0)  # @churn-task
    counts['finished'] += 1


async def churn():
    name_me('main')
    counts = {'created': 0, 'finished': 0}
    loop = asyncio.get_event_loop()

    def report():
        out = dict(counts, alive=counts['created'] - counts['finished'])
        if '--selfcheck' in sys.argv:
            out['all'] = len(asyncio.all_tasks(loop))
        print(json.dumps(out))
        sys.stdout.flush()

    loop.add_signal_handler(signal.SIGUSR1, report)
    rounds = 0
    while True:
        for k in range(CHURN_BATCH):
            spawn(churn_task(counts, 1 + k % 3), 'churn-%d' % (counts['created'] + k))
        counts['created'] += CHURN_BATCH
        await asyncio.sleep(0)  # @churn
        rounds += 1
        if rounds == 20:
            ready(counts['created'] - counts['finished'] + 1)


def main():
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(arg('--max-life', 300))
    if '--uvloop' in sys.argv:
        import uvloop
        uvloop.install()            # every asyncio.run from here, in any thread
    if '--churn' in sys.argv:
        asyncio.run(churn())  # @churn-run
    else:
        asyncio.run(crowd(start_threads(arg('--threads', 0))))  # @crowd


if __name__ == '__main__':
    main()  # @module
