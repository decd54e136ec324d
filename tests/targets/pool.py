# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe --subprocesses: a multiprocessing pool.

Runs unchanged on CPython 2.7 and 3.6+.  Asserted lines carry "# @name"
markers; the tests read line numbers from the source.

The parent starts a pool of --workers processes (the fork start method),
gives each one task that keeps it busy until the watchdog's deadline, and
once every worker has started its task prints
    READY {"pid": PARENT, "workers": [PID, ...]}
then waits for the results (it never gets them).

  --max-life S   watchdog: the parent gets SIGALRM (default action) after
                 S seconds and the workers stop working then (default 300)
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import json
import multiprocessing
import os
import signal
import time

_queue = None


def init(q):
    global _queue
    _queue = q


def busy(deadline):
    _queue.put(os.getpid())
    x = 0
    while time.time() < deadline: x += 1  # @work
    return x


def main(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument('--workers', type=int, default=3)
    p.add_argument('--max-life', type=float, default=300.0)
    opts = p.parse_args(argv)
    signal.alarm(max(1, int(opts.max_life)))
    deadline = time.time() + opts.max_life
    if hasattr(multiprocessing, 'get_context'):
        mp = multiprocessing.get_context('fork')
    else:
        mp = multiprocessing            # 2.7: always fork
    q = mp.Queue()
    pool = mp.Pool(opts.workers, initializer=init, initargs=(q,))
    # One task per worker: a worker busy with one never takes another.
    res = pool.map_async(busy, [deadline] * opts.workers, chunksize=1)
    workers = sorted(q.get() for _ in range(opts.workers))
    sys.stdout.write('READY %s\n' % json.dumps({'pid': os.getpid(), 'workers': workers}))
    sys.stdout.flush()
    res.wait()  # @parent-wait
    os._exit(0)


if __name__ == '__main__':
    main(sys.argv[1:])  # @main-call
