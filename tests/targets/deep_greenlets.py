"""End-to-end target for pystrobe dump/record --greenlets and locks: greenlets
parked deep in a recursion, beside greenlets parked one frame deep.

On 3.11+ a deep stack fills more than one data-stack chunk (16 KiB, about
130 frames of dive), so the deep greenlets' frames lie in several chunks.

  --lib gevent   (the default) 4 greenlets recurse DEPTH frames and wait on a
                 gevent.event.Event, 3 recurse DEPTH frames and gevent.sleep,
                 2 recurse DEEPER frames and wait on the Event, and 5 wait on
                 it one frame deep; the main greenlet then sleeps, so the Hub
                 is the running one
  --lib greenlet greenlet alone (Python 2.7 and 3.x, any release): the same
                 counts, each parking by switching back to the main greenlet
                 (no gevent frame: the sleepers park as the waiters do); the
                 main greenlet then sleeps in time.sleep: it is the running one
  --max-life S   watchdog: SIGALRM ends the process after S seconds (default 300)

Lines the tests assert carry "# @name" markers.  Once all are parked it
prints one line:
READY {"pid": ..., "greenlet": "<greenlet.__version__>", "lib": "gevent"|"greenlet"}
"""
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True

DEEP_WAIT, DEEP_SLEEP, DEEPER, SHALLOW = 4, 3, 2, 5
DEPTH, DEEPER_DEPTH = 150, 600


def dive(n, park, args):
    if n > 1:
        return dive(n - 1, park, args)  # @dive
    park(*args)  # @bottom


def deep(n, park, args):
    dive(n, park, args)  # @deep


def shallow(park, args):
    park(*args)  # @shallow


def announce(lib):
    import greenlet
    sys.stdout.write('READY ' + json.dumps({'pid': os.getpid(), 'greenlet': greenlet.__version__,
                                            'lib': lib}) + '\n')
    sys.stdout.flush()


def park_gevent(gevent):
    # The hub says READY once this greenlet is parked too.
    gevent.get_hub().loop.run_callback(announce, 'gevent')
    while True:
        gevent.sleep(1000)  # @park


def with_gevent():
    import gevent
    import gevent.event
    ev = gevent.event.Event()
    keep = [gevent.spawn(deep, DEPTH, ev.wait, ()) for _ in range(DEEP_WAIT)]
    keep += [gevent.spawn(deep, DEPTH, gevent.sleep, (3600,)) for _ in range(DEEP_SLEEP)]
    keep += [gevent.spawn(deep, DEEPER_DEPTH, ev.wait, ()) for _ in range(DEEPER)]
    keep += [gevent.spawn(shallow, ev.wait, ()) for _ in range(SHALLOW)]
    gevent.sleep(0.2)
    park_gevent(gevent)  # @with-gevent


def with_greenlet():
    import greenlet
    here = greenlet.getcurrent()
    keep = []
    for n in [DEPTH] * (DEEP_WAIT + DEEP_SLEEP) + [DEEPER_DEPTH] * DEEPER:
        g = greenlet.greenlet(deep)
        g.switch(n, here.switch, ())
        keep.append(g)
    for _ in range(SHALLOW):
        g = greenlet.greenlet(shallow)
        g.switch(here.switch, ())
        keep.append(g)
    announce('greenlet')
    while True:
        time.sleep(1000)  # @with-greenlet


def main():
    life = 300
    if '--max-life' in sys.argv:
        life = int(sys.argv[sys.argv.index('--max-life') + 1])
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(life)
    lib = sys.argv[sys.argv.index('--lib') + 1] if '--lib' in sys.argv else 'gevent'
    if lib == 'gevent':
        with_gevent()  # @main-gevent
    else:
        with_greenlet()  # @main-greenlet


if __name__ == '__main__':
    main()  # @module
