"""End-to-end target for pystrobe dump/record --greenlets at scale, with
gevent or eventlet.

Default: spawns --locked greenlets (600) that park on one semaphore through
two Python frames, --waiting (300) that wait (gevent: an Event; eventlet: a
Queue get) and --sleeping (100) that sleep; the main greenlet then sleeps
too, so the hub is the running one.  Once all are parked it prints one line:
READY {"pid": ..., "lib": ..., "spawned": ...}

--churn: greenlets are spawned and killed at a high rate (a few hundred
alive at any time: some parked on a semaphore, some asleep, some that end
on their own; the oldest are killed while parked).  It prints READY once
churning, then churns until killed.  On SIGUSR1 it prints one line:
{"spawned": ..., "alive": ..., "killed": ...}: greenlets spawned and killed
so far, and those not dead (the main greenlet and the hub not counted).

  --lib gevent|eventlet   (default gevent)
  --locked N --waiting N --sleeping N
  --churn
  --second-hub            also run a thread "second-hub" with its own hub, its main greenlet
                          asleep and 5 greenlets asleep in it (before READY)
  --busy                  then a greenlet that prints READY and spins without yielding: it is
                          the running one, and the hub is parked
  --c-parked N            also N plain greenlets suspended in C with no Python frame (their
                          run is the main greenlet's switch: started, they switch straight back)
  --max-life S            watchdog: SIGALRM ends the process after S seconds (default 300)

Lines the tests assert carry "# @name" markers.
"""
import collections
import json
import os
import signal
import sys

sys.dont_write_bytecode = True

# Alive at a time in --churn, spawned per round, and the semaphore's release period (rounds).
CHURN_ALIVE, CHURN_BATCH, CHURN_RELEASE = 300, 60, 7


def take(sem):
    sem.acquire()  # @take


def locker(sem):
    take(sem)  # @locker


def waiter(ev):
    ev.wait()  # @waiter


def getter(q):
    q.get()  # @getter


def sleeper(lib):
    lib.sleep(3600)  # @sleeper


def napper(lib, seconds):
    lib.sleep(seconds)  # @napper


def quick(lib):
    lib.sleep(0)  # @quick


def spin(spawned):
    ready(lib=sys.argv[sys.argv.index('--lib') + 1], spawned=spawned)
    n = 0
    while n >= 0: n += 1  # @spin


def arg(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def ready(**more):
    info = {'pid': os.getpid()}
    info.update(more)
    print('READY ' + json.dumps(info))
    sys.stdout.flush()


def ready_later(mod, **more):
    """READY from the hub, once the greenlet that calls this is parked."""
    if mod.__name__ == 'gevent':
        mod.get_hub().loop.run_callback(lambda: ready(**more))
    else:
        import eventlet.hubs
        eventlet.hubs.get_hub().schedule_call_global(0, lambda: ready(**more))


def park(lib):
    while True:
        lib.sleep(1000)  # @park


def load(name):
    """The library's spawn, kill, is-dead, semaphore, waiting object and waiter function."""
    if name == 'gevent':
        import gevent
        import gevent.event
        import gevent.lock
        return (gevent, gevent.spawn, lambda g: g.kill(block=False), lambda g: g.dead,
                gevent.lock.Semaphore(0), gevent.event.Event(), waiter)
    if name == 'eventlet':
        import eventlet
        import eventlet.queue
        import eventlet.semaphore
        return (eventlet, eventlet.spawn, lambda g: g.kill(), lambda g: g.dead,
                eventlet.semaphore.Semaphore(0), eventlet.queue.Queue(), getter)
    sys.exit('--lib takes gevent or eventlet, not %r' % name)


def second_hub(lib, spawn, started):
    keep = [spawn(sleeper, lib) for _ in range(5)]
    lib.sleep(0.1)
    started.set()
    while keep:
        lib.sleep(1000)  # @second


def crowd(name):
    lib, spawn, _, _, sem, ev, wait_fn = load(name)
    locked, waiting, sleeping = arg('--locked', 600), arg('--waiting', 300), arg('--sleeping', 100)
    if '--second-hub' in sys.argv:
        import threading
        # The library's own threading may be patched in: take the real one's primitives.
        started = threading.Event()
        threading.Thread(target=second_hub, args=(lib, spawn, started), name='second-hub',
                         daemon=True).start()
        started.wait(30)
    import greenlet
    suspended = [greenlet.greenlet(greenlet.getcurrent().switch) for _ in range(arg('--c-parked', 0))]
    for g in suspended:
        g.switch()
    keep = [spawn(locker, sem) for _ in range(locked)]
    keep += [spawn(wait_fn, ev) for _ in range(waiting)]
    keep += [spawn(sleeper, lib) for _ in range(sleeping)]
    lib.sleep(0.2 + len(keep) / 5000.0)
    if '--busy' in sys.argv:
        keep.append(spawn(spin, len(keep) + len(suspended) + 1))
        park(lib)
    ready_later(lib, lib=name, spawned=len(keep) + len(suspended))
    park(lib)  # @main


def churn(name):
    lib, spawn, kill, dead, sem, _, _ = load(name)
    live = collections.deque()
    dying = []      # killed, and perhaps not dead yet (gevent kills them from the hub)
    counts = {'spawned': 0, 'killed': 0}

    def report(signum, frame):
        # Every churned greenlet not dead yet, at this point of the main greenlet.
        alive = sum(1 for g in live if not dead(g)) + sum(1 for g in dying if not dead(g))
        print(json.dumps({'spawned': counts['spawned'], 'alive': alive,
                          'killed': counts['killed']}))
        sys.stdout.flush()

    signal.signal(signal.SIGUSR1, report)
    rounds = 0
    while True:
        for k in range(CHURN_BATCH):
            kind = k % 4
            if kind == 0:
                g = spawn(locker, sem)
            elif kind == 1:
                g = spawn(napper, lib, 0.001 * (k % 50))
            elif kind == 2:
                g = spawn(sleeper, lib)
            else:
                g = spawn(quick, lib)
            live.append(g)
        counts['spawned'] += CHURN_BATCH
        while len(live) > CHURN_ALIVE:
            g = live.popleft()
            if not dead(g):
                kill(g)
                dying.append(g)
                counts['killed'] += 1
        dying[:] = [g for g in dying if not dead(g)]
        rounds += 1
        if rounds % CHURN_RELEASE == 0:
            sem.release()
        lib.sleep(0)
        if rounds == 20:
            ready(lib=name)


def main():
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(arg('--max-life', 300))
    name = sys.argv[sys.argv.index('--lib') + 1] if '--lib' in sys.argv else 'gevent'
    if '--churn' in sys.argv:
        churn(name)  # @churn
    else:
        crowd(name)  # @crowd


if __name__ == '__main__':
    main()  # @module
