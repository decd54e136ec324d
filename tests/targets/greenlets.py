"""End-to-end target for pystrobe dump --greenlets (gevent).

Spawns 60 greenlets that park on one gevent.lock.Semaphore (through two
Python frames), 30 that wait on a gevent.event.Event and 10 that sleep; the
main greenlet then sleeps too, so the Hub is the running one.  Lines the
tests assert carry "# @name" markers.  Once all are parked it prints one
line:  READY {"pid": ...}

  --plain        import no gevent: print READY and sleep (a process without greenlets)
  --max-life S   watchdog: SIGALRM ends the process after S seconds (default 300)
"""
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True

LOCKED, WAITING, SLEEPING = 60, 30, 10


def take(sem):
    sem.acquire()  # @take


def locker(sem):
    take(sem)  # @locker


def waiter(ev):
    ev.wait()  # @waiter


def sleeper(gevent):
    gevent.sleep(3600)  # @sleeper


def announce():
    print('READY ' + json.dumps({'pid': os.getpid()}))
    sys.stdout.flush()


def park(gevent):
    # The hub says READY once this greenlet is parked too.
    gevent.get_hub().loop.run_callback(announce)
    while True:
        gevent.sleep(1000)  # @park


def main():
    life = 300
    if '--max-life' in sys.argv:
        life = int(sys.argv[sys.argv.index('--max-life') + 1])
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(life)
    if '--plain' in sys.argv:
        print('READY ' + json.dumps({'pid': os.getpid()}))
        sys.stdout.flush()
        while True:
            time.sleep(1000)
    import gevent
    import gevent.event
    import gevent.lock
    sem = gevent.lock.Semaphore(0)
    ev = gevent.event.Event()
    keep = [gevent.spawn(locker, sem) for _ in range(LOCKED)]
    keep += [gevent.spawn(waiter, ev) for _ in range(WAITING)]
    keep += [gevent.spawn(sleeper, gevent) for _ in range(SLEEPING)]
    gevent.sleep(0.2)
    park(gevent)  # @main


if __name__ == '__main__':
    main()  # @module
