# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe's thread states, modes and filters.

Runs unchanged on CPython 2.7 and 3.6+.  Every line the tests assert
carries a marker comment ("# @name"); the tests read line numbers from the
source.

Threads (each with a distinct name):
  MainThread    holds `lock`, then sleeps                         (idle)
  compressor    compresses a buffer over and over: bz2 lets the
                GIL go while it compresses (on every version;
                2.7's hashlib does not), so it is on a CPU but
                rarely holds the GIL                              (running)
  sleeper       time.sleep                                        (idle)
  lock-waiter   blocked acquiring `lock`, held by MainThread      (idle)
  fighter-1,    pure Python loops fighting for the GIL            (running
  fighter-2                                                        or GIL wait)
  (raw)         a thread threading does not know; its OS name
                is RAW_OS_NAME; sleeps                            (idle)

With --many N: only MainThread and N sleeping threads named idle-000 ...

Once every thread is in place (the sleeping ones in their sleep, the lock
waiter in its futex) the main thread prints one line:
    READY {"pid": ..., "threads": {"NAME": TID, ...}}
(the raw thread under its OS name).

  --max-life S   watchdog: SIGALRM (default action) ends the process after
                 S seconds whatever happens (default 300)
  --oracle       on SIGUSR1, print what the interpreter itself sees, one line:
                 ORACLE {"threads": {"TID": [[FUNCTION, FILE, LINE], ...]}}
                 innermost first (FUNCTION: co_qualname where there is one)
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import bz2
import json
import os
import platform
import signal
import threading
import time

try:
    import _thread as rawthread          # 3.x
except ImportError:                      # 2.7
    import thread as rawthread

BIG = 100000.0
RAW_OS_NAME = 'raw-os-named'
COMPRESS_BYTES = 1 << 17

_tids = {}
_events = {}
_tid_of_ident = {}


def gettid():
    f = getattr(threading, 'get_native_id', None)
    if f is not None:
        return f()
    import ctypes
    return int(ctypes.CDLL(None, use_errno=True).syscall(186))  # SYS_gettid (x86_64)


def ready(name):
    """Say we are there; returns how long to sleep."""
    _tids[name] = gettid()
    _tid_of_ident[rawthread.get_ident()] = _tids[name]
    _events[name].set()
    return BIG


# --- the threads -----------------------------------------------------------

def compressor():
    buf = os.urandom(COMPRESS_BYTES)
    ready('compressor')
    while True: z = bz2.BZ2Compressor(1); z.compress(buf); z.flush()  # @compress


def sleeper():
    time.sleep(ready('sleeper'))  # @sleep


def lock_waiter(lock):
    ready('lock-waiter')
    lock.acquire()  # @lock-wait


def fighter(name):
    ready(name)
    x = 0
    while True: x += 1  # @fight


def idle_worker(name):
    time.sleep(ready(name))  # @many-sleep


def raw_sleeper():
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(RAW_OS_NAME.encode('ascii')), 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass
    time.sleep(ready(RAW_OS_NAME))  # @raw-sleep


# --- oracle: what the interpreter itself sees --------------------------------

def _text(s):
    return s.decode('utf-8', 'replace') if isinstance(s, bytes) else s


def print_oracle(main_frame):
    main_ident = rawthread.get_ident()
    threads = {}
    for ident, frame in sys._current_frames().items():
        if ident == main_ident:
            frame = main_frame
        frames = []
        while frame is not None:
            code = frame.f_code
            name = getattr(code, 'co_qualname', None) or code.co_name
            frames.append([_text(name), _text(code.co_filename), frame.f_lineno])
            frame = frame.f_back
        threads[str(_tid_of_ident.get(ident))] = frames
    sys.stdout.write('ORACLE %s\n' % json.dumps({'threads': threads}, sort_keys=True))
    sys.stdout.flush()


# --- main ------------------------------------------------------------------

def syscall_of(tid):
    """The system call number a thread of ours sits in, or None if unknown."""
    try:
        with open('/proc/self/task/%d/syscall' % tid) as f:
            return f.read().split(' ')[0].strip()
    except (IOError, OSError):
        return None


FUTEX = '202'                                  # x86_64
SLEEPS = set(['23', '35', '230', '270'])       # select nanosleep clock_nanosleep pselect6


def wait_blocked(names, timeout=30):
    """Until each named thread sits in its blocking system call."""
    if platform.machine() != 'x86_64':
        time.sleep(0.5)
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        calls = dict((n, syscall_of(_tids[n])) for n in names)
        if None in calls.values():
            time.sleep(0.5)
            return
        ok = True
        for n, c in calls.items():
            want = set([FUTEX]) if n == 'lock-waiter' else SLEEPS
            ok = ok and c in want
        if ok:
            return
        time.sleep(0.01)
    sys.stderr.write('target: threads never blocked: %r\n' % (calls,))
    os._exit(3)


def wait_ready(names):
    for n in names:
        # untimed: on 2.7 a timed wait polls, and fighting for the GIL
        # each time can take long (the watchdog ends a target stuck here)
        _events[n].wait()


def start(name, target, args=()):
    t = threading.Thread(name=name, target=target, args=args)
    t.daemon = True
    t.start()
    return t


def main(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument('--max-life', type=float, default=300.0)
    p.add_argument('--many', type=int, default=0)
    p.add_argument('--oracle', action='store_true')
    opts = p.parse_args(argv)
    signal.alarm(max(1, int(opts.max_life)))
    _tids['MainThread'] = gettid()
    _tid_of_ident[rawthread.get_ident()] = _tids['MainThread']
    if opts.oracle:
        signal.signal(signal.SIGUSR1, lambda signum, frame: print_oracle(frame))

    if opts.many:
        threading.stack_size(256 * 1024)
        names = ['idle-%03d' % i for i in range(opts.many)]
        for n in names:
            _events[n] = threading.Event()
        for n in names:
            start(n, idle_worker, (n,))
        blocked = names
    else:
        lock = threading.Lock()
        lock.acquire()
        plan = [('compressor', compressor, ()), ('sleeper', sleeper, ()),
                ('lock-waiter', lock_waiter, (lock,)),
                ('fighter-1', fighter, ('fighter-1',)), ('fighter-2', fighter, ('fighter-2',))]
        for n, _, _ in plan:
            _events[n] = threading.Event()
        _events[RAW_OS_NAME] = threading.Event()
        for n, fn, args in plan[:3]:
            start(n, fn, args)
        rawthread.start_new_thread(raw_sleeper, ())
        blocked = ['sleeper', 'lock-waiter', RAW_OS_NAME]
        wait_ready(['compressor'] + blocked)
        wait_blocked(blocked)
        # The fighters last: on 2.7 they would hold the GIL away from the
        # main thread's polling for seconds.
        for n, fn, args in plan[3:]:
            start(n, fn, args)

    wait_ready(sorted(_events))
    if opts.many:
        wait_blocked(blocked)
    sys.stdout.write('READY %s\n' % json.dumps({'pid': os.getpid(), 'threads': _tids}, sort_keys=True))
    sys.stdout.flush()
    while True: time.sleep(BIG)  # @main-sleep


if __name__ == '__main__':
    main(sys.argv[1:])  # @main-call
