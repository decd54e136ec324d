# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe against a process that lies: it corrupts
its own objects with ctypes, or names things to fool a terminal.

Runs unchanged on CPython 2.7 and 3.6+.  Usage:  hostile.py MODE [ARGS...]

MODE says what the main thread sleeps under, as  <module> -> outer -> victim
-> time.sleep  (victim's own code object is the one tampered with):

  clean              nothing is tampered with
  unmapped-filename  victim's co_filename points at memory that is not mapped
  int-filename       victim's co_filename points at an int
  int-linetable      victim's line table (co_linetable, co_lnotab before
                     3.10) points at an int
  bidi               victim is named with bidi overrides and C1 controls,
                     and a thread so named waits for a lock the main thread
                     holds, in a function so named (extra arguments are
                     ignored: they show in the command line)
  source PATH        victim's code claims to come from PATH (compiled from
                     this file's own source, so line numbers still hold)

Every asserted line carries a marker comment ("# @name").  Once the main
thread sleeps it prints one line:
    READY {"pid": ..., "code": "0x..."}
(code: victim's code object).  The pointers are put back before the
process exits, so that it never frees what it does not own; a watchdog
(SIGALRM, --max-life S, default 300) ends it whatever happens.
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import ctypes
import json
import os
import signal
import threading
import time

BIDI_NAME = u'evil\u202egnp.exe\u2066x\u2069\u0085y\u009bz'
BIDI_THREAD = u'thr\u202eead\u009b31m'
BIDI_LOCKER = u'lock\u2067er\u0085'

_keep = []


def word_offset(obj, value, limit):
    """The offset in obj's memory of the first pointer-sized word equal to value."""
    size = ctypes.sizeof(ctypes.c_void_p)
    base = id(obj)
    for off in range(size, limit, size):
        if ctypes.c_void_p.from_address(base + off).value == value:
            return off
    raise SystemExit('hostile.py: field not found in %r' % (obj,))


def unmapped_address():
    """An address in the middle of a page that was mapped and is no more."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    # PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS
    p = libc.mmap(None, 3 * 4096, 1, 0x22, -1, 0)
    if not p or p == ctypes.c_void_p(-1).value:
        raise SystemExit('hostile.py: mmap failed')
    libc.munmap(p, 3 * 4096)
    return p + 4096 + 64


class Patch(object):
    """One pointer field of an object set to another value, and put back."""

    def __init__(self, obj, old, new):
        self.obj = obj
        self.off = word_offset(obj, id(old), 256)
        self.old = id(old)
        _keep.append(old)
        self.cell = ctypes.c_void_p.from_address(id(obj) + self.off)
        self.cell.value = new

    def undo(self):
        self.cell.value = self.old


def renamed(func, name):
    """func with its code object named name."""
    code = func.__code__
    if sys.version_info >= (3, 11):
        code = code.replace(co_name=name, co_qualname=name)
    elif sys.version_info >= (3, 8):
        code = code.replace(co_name=name)
    else:
        head = [code.co_argcount]
        if sys.version_info[0] >= 3:
            head.append(code.co_kwonlyargcount)
        else:
            name = name.encode('utf-8')
        code = type(code)(*(head + [
            code.co_nlocals, code.co_stacksize, code.co_flags, code.co_code, code.co_consts,
            code.co_names, code.co_varnames, code.co_filename, name, code.co_firstlineno,
            code.co_lnotab]))
    return type(func)(code, func.__globals__)


def victim():
    time.sleep(100000)  # @victim_sleep


def outer():
    victim()  # @outer_call


def locker(ready, lock):
    ready.set()
    lock.acquire()  # @locker_wait


def main():
    life = 300
    args = sys.argv[1:]
    if '--max-life' in args:
        i = args.index('--max-life')
        life = int(args[i + 1])
        del args[i:i + 2]
    signal.alarm(life)
    mode = args[0] if args else 'clean'
    global victim
    code = victim.__code__
    patches = []
    if mode == 'unmapped-filename':
        patches.append(Patch(code, code.co_filename, unmapped_address()))
    elif mode == 'int-filename':
        number = 12345678901
        _keep.append(number)
        patches.append(Patch(code, code.co_filename, id(number)))
    elif mode == 'int-linetable':
        table = code.co_linetable if sys.version_info >= (3, 10) else code.co_lnotab
        number = 98765432101
        _keep.append(number)
        patches.append(Patch(code, table, id(number)))
    elif mode == 'bidi':
        victim = renamed(victim, BIDI_NAME)
        code = victim.__code__
        ready, lock = threading.Event(), threading.Lock()
        lock.acquire()
        _keep.append(lock)
        name = BIDI_THREAD if sys.version_info[0] >= 3 else BIDI_THREAD.encode('utf-8')
        t = threading.Thread(target=renamed(locker, BIDI_LOCKER), args=(ready, lock), name=name)
        t.daemon = True
        t.start()
        ready.wait()
    elif mode == 'source':
        path = args[1]
        with open(__file__) as f:
            src = f.read()
        ns = {'__name__': 'hostile_source'}
        exec(compile(src, path, 'exec'), ns)
        victim = ns['victim']
        code = victim.__code__
    elif mode != 'clean':
        raise SystemExit('hostile.py: unknown mode %r' % mode)
    info = {'pid': os.getpid(), 'code': '0x%x' % id(code)}
    print('READY ' + json.dumps(info))
    sys.stdout.flush()
    try:
        outer()  # @module_call
    finally:
        for p in patches:
            p.undo()


if __name__ == '__main__':
    main()
