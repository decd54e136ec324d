# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe --subprocesses: children that come and go.

Runs unchanged on CPython 2.7 and 3.6+.  Asserted lines carry "# @name"
markers; the tests read line numbers from the source.

The parent starts, before it says READY:
  - `sleep` (not Python),
  - an "early" Python child (the test ends it with SIGTERM; a thread of the
    parent reaps it),
  - `sh -c` (not Python) running a Python "grand" child;
prints
    READY {"pid": ..., "sleep": ..., "early": ..., "shell": ..., "grand": ...}
and polls in phase A until SIGUSR1, then starts the "late" Python child,
prints
    LATE {"late": PID}
and sleeps (phase B).  Each Python child prints "READY PID" and sleeps.

  --child NAME   be a child
  --max-life S   watchdog: SIGALRM (default action) ends each process after
                 S seconds (default 300)
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import json
import os
import signal
import subprocess
import threading
import time

BIG = 100000.0
_go = [False]


def child(name):
    sys.stdout.write('READY %d\n' % os.getpid())
    sys.stdout.flush()
    while True: time.sleep(BIG)  # @child-sleep


def start_child(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE)
    line = p.stdout.readline().decode('ascii').split()
    if len(line) != 2 or line[0] != 'READY':
        sys.stderr.write('kids: child %r said %r\n' % (argv, line))
        os._exit(3)
    return p, int(line[1])


def on_usr1(signum, frame):
    _go[0] = True


def main(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument('--child')
    p.add_argument('--max-life', type=float, default=300.0)
    opts = p.parse_args(argv)
    life = max(1, int(opts.max_life))
    signal.alarm(life)
    if opts.child:
        child(opts.child)
    signal.signal(signal.SIGUSR1, on_usr1)
    me = [sys.executable, os.path.abspath(__file__)]
    life_args = ['--max-life', str(life)]
    sleep_ = subprocess.Popen(['sleep', str(life)])
    early, early_pid = start_child(me + ['--child', 'early'] + life_args)
    shell, grand_pid = start_child(['sh', '-c', '"$0" "$@"; exit 0'] + me + ['--child', 'grand'] + life_args)
    reaper = threading.Thread(name='reaper', target=early.wait)
    reaper.daemon = True
    reaper.start()
    sys.stdout.write('READY %s\n' % json.dumps({'pid': os.getpid(), 'sleep': sleep_.pid, 'early': early_pid,
                                                'shell': shell.pid, 'grand': grand_pid}))
    sys.stdout.flush()
    while not _go[0]: time.sleep(0.01)  # @phase-a
    late, late_pid = start_child(me + ['--child', 'late'] + life_args)
    sys.stdout.write('LATE %s\n' % json.dumps({'late': late_pid}))
    sys.stdout.flush()
    while True: time.sleep(BIG)  # @phase-b


if __name__ == '__main__':
    main(sys.argv[1:])  # @main-call
