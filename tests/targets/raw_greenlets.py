"""End-to-end target for pystrobe dump --greenlets: greenlets without gevent.

Runs on Python 2.7 and 3.x with any greenlet release.  Starts 50 greenlets
that park by switching back to the main greenlet three Python frames deep
(worker -> mid -> leaf), creates 10 that never start and runs 5 to their
end; the main greenlet then switches to one more, which sleeps: it is the
running one and the main greenlet is parked (as under gevent, where the Hub
runs).  Lines the tests assert carry "# @name" markers.  Once all are set it
prints one line:
READY {"pid": ..., "greenlet": "<greenlet.__version__>"}

  --max-life S   watchdog: SIGALRM ends the process after S seconds (default 300)
"""
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True

PARKED, NEW, DEAD = 50, 10, 5


def leaf(parent):
    parent.switch()  # @leaf


def mid(parent):
    leaf(parent)  # @mid


def worker(parent):
    mid(parent)  # @worker


def finish():
    return 1


def run(greenlet):
    park(greenlet)  # @run


def park(greenlet):
    sys.stdout.write('READY ' + json.dumps({'pid': os.getpid(),
                                            'greenlet': greenlet.__version__}) + '\n')
    sys.stdout.flush()
    while True:
        time.sleep(1000)  # @park


def main():
    life = 300
    if '--max-life' in sys.argv:
        life = int(sys.argv[sys.argv.index('--max-life') + 1])
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(life)
    import greenlet
    here = greenlet.getcurrent()
    keep = []
    for _ in range(PARKED):
        g = greenlet.greenlet(worker)
        g.switch(here)
        keep.append(g)
    keep += [greenlet.greenlet(worker) for _ in range(NEW)]
    for _ in range(DEAD):
        g = greenlet.greenlet(finish)
        g.switch()
        keep.append(g)
    greenlet.greenlet(run).switch(greenlet)  # @main


if __name__ == '__main__':
    main()  # @module
