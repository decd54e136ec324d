# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe: many threads parked at known lines.

Runs unchanged on CPython 2.7 and 3.6+.  3.x-only syntax (async def,
non-ASCII identifiers) lives in modules imported only on 3.x.

Every line the tests assert carries a marker comment ("# @name"); the test
driver reads the line numbers from the source, never hard-codes them.

Each thread signals readiness from the very line it then blocks on
(``time.sleep(ready(KEY))``), so once the main thread prints READY every
thread is at (or about to block on) its marked line.

Options:
  --only-busy         only the main thread, the busy thread and a sleeper
  --oracle PATH       on SIGUSR1, write what the interpreter itself reports
                      (sys._current_frames: thread names, tids, frames with
                      co_qualname/co_name, co_filename, f_lineno) to PATH
                      as JSON (written to PATH.tmp then renamed)
  --pidfile PATH      write our pid to PATH at start
  --exit-after S      exit (os._exit) S seconds after READY
  --exit-code N       status for --exit-after (default 0)
  --max-life S        watchdog: exit after S seconds whatever happens
                      (default 300), so a target can never be left behind
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import json
import os
import signal
import threading
import time

try:
    import _thread as rawthread          # 3.x
except ImportError:                      # 2.7
    import thread as rawthread

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

PY3 = sys.version_info[0] >= 3
BIG = 100000.0
DEEP_N = 50
VERY_DEEP_N = 5000

# Non-ASCII file names (a str literal: UTF-8 bytes on 2.7, text on 3.x).
UNIFILE_MODULE = 'py2_módulo_名前_𠀀.py'      # ASCII identifiers, all versions
UNICODE_MODULE = 'módulo_名前_𠀀.py'          # non-ASCII identifiers, 3.x only
GENERATED_SRC = 'generated.src'               # compiled as "<generated>"

_events = {}
_info = {}          # key -> {"ident": ..., "tid": ...}


def gettid():
    f = getattr(threading, 'get_native_id', None)
    if f is not None:
        return f()
    try:
        import ctypes
        return int(ctypes.CDLL(None, use_errno=True).syscall(186))  # SYS_gettid
    except Exception:
        return None


def set_os_thread_name(name):
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)   # PR_SET_NAME
    except Exception:
        pass


def ready(key):
    """Record who we are, say we are there, return how long to sleep."""
    _info[key] = {'ident': rawthread.get_ident(), 'tid': gettid()}
    _events[key].set()
    return BIG


# --- the threads -----------------------------------------------------------

def busy():  # @busy-def
    ready('busy')
    x = 0
    while True: x += 1  # @busy


def recurse(n):
    if n > 1: return recurse(n - 1)  # @recurse-call
    time.sleep(ready('deep'))  # @recurse-sleep


def very_deep(n):
    if n > 1: return very_deep(n - 1)  # @very-deep-call
    time.sleep(ready('very-deep'))  # @very-deep-sleep


class Worker(object):
    def run_method(self):
        return self.nap()  # @method-call

    def nap(self):
        time.sleep(ready('method'))  # @method-sleep


def outer():
    def inner():
        time.sleep(ready('nested'))  # @nested-sleep
    inner()  # @nested-call


def gen_items():
    yield 1
    time.sleep(ready('generator'))  # @gen-sleep
    yield 2


def consume_gen():
    for _ in gen_items(): pass  # @gen-for


def run_generated():
    with open(os.path.join(HERE, GENERATED_SRC)) as f:
        src = f.read()
    code = compile(src, "<generated>", "exec")
    ns = {}
    exec(code, ns)
    ns['generated'](ready, time)  # @generated-call


def sleeper():
    time.sleep(ready('sleeper'))  # @sleeper-sleep


def raw_thread():
    set_os_thread_name(b'raw-os-name')
    time.sleep(ready('raw'))  # @raw-sleep


def load_module(modname, filename):
    path = os.path.join(HERE, filename)
    if PY3:
        import importlib.util
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    import imp
    return imp.load_source(modname, path)


def u(s):
    """Text from a UTF-8 str literal, both on 2.7 (bytes) and 3.x (text)."""
    return s if PY3 else s.decode('utf-8')


# --- oracle: what the interpreter itself says ------------------------------

def _text(s):
    if isinstance(s, bytes):
        return s.decode('utf-8', 'replace')
    return s


def _frames(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        name = getattr(code, 'co_qualname', None) or code.co_name
        out.append({'function': _text(name), 'file': _text(code.co_filename),
                    'line': frame.f_lineno, 'first_line': code.co_firstlineno})
        frame = frame.f_back
    return out


def _os_name(tid):
    try:
        with open('/proc/self/task/%d/comm' % tid, 'rb') as f:
            return f.read().rstrip(b'\n').decode('utf-8', 'replace')
    except Exception:
        return None


def write_oracle(path, main_frame):
    frames = sys._current_frames()
    main_ident = rawthread.get_ident()
    by_ident = {}
    for key, inf in _info.items():
        by_ident[inf['ident']] = (key, inf['tid'])
    known = dict((t.ident, t) for t in threading.enumerate())
    threads = []
    for ident, frame in frames.items():
        if ident == main_ident:
            frame = main_frame
        key, tid = by_ident.get(ident, (None, None))
        t = known.get(ident)
        threads.append({
            'key': key,
            'ident': ident,
            'tid': tid,
            'name': _text(t.name) if t is not None else None,
            'os_name': _os_name(tid) if tid else None,
            'in_threading': t is not None,
            'frames': _frames(frame),
        })
    doc = {
        'pid': os.getpid(),
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'executable': _text(sys.executable),
        'argv': [_text(a) for a in sys.argv],
        'threads': threads,
    }
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(json.dumps(doc, indent=1, sort_keys=True))
    os.rename(tmp, path)


# --- main ------------------------------------------------------------------

def start(key, name, target, args=()):
    # On 2.7 the name is a UTF-8 byte string (str() of a unicode name fails).
    t = threading.Thread(name=name, target=target, args=args)
    t.daemon = True
    t.start()
    return t


def parse_args(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument('--only-busy', action='store_true')
    p.add_argument('--oracle')
    p.add_argument('--pidfile')
    p.add_argument('--exit-after', type=float)
    p.add_argument('--exit-code', type=int, default=0)
    p.add_argument('--max-life', type=float, default=300.0)
    return p.parse_args(argv)


def main(argv):
    opts = parse_args(argv)
    _info['main'] = {'ident': rawthread.get_ident(), 'tid': gettid()}
    if opts.pidfile:
        with open(opts.pidfile, 'w') as f:
            f.write('%d\n' % os.getpid())
    if opts.oracle:
        def on_usr1(signum, frame):
            write_oracle(opts.oracle, frame)
        signal.signal(signal.SIGUSR1, on_usr1)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), VERY_DEEP_N + 1000))
    plan = [('busy', 'busy', busy, ())]
    if not opts.only_busy:
        plan += [
            ('deep', 'deep', recurse, (DEEP_N,)),
            ('method', 'method', Worker().run_method, ()),
            ('nested', 'nested', outer, ()),
            ('generator', 'generator', consume_gen, ()),
            ('generated', 'generated', run_generated, ()),
        ]
        unifile = load_module('py2_modulo', UNIFILE_MODULE)
        plan.append(('unifile', 'unifile-é名𠀀', unifile.plain_in_unicode_file, (ready,)))
        if PY3:
            import async_part
            plan.append(('coroutine', 'coroutine', async_part.run_coroutine_thread, (ready,)))
            uni = load_module('unicode_names', UNICODE_MODULE)
            plan += [
                ('latin', 'latin-café', getattr(uni, u('café')), (ready,)),
                ('cjk', 'cjk-関数', getattr(uni, u('関数')), (ready,)),
                ('astral', 'astral-𠀀', getattr(uni, u('𠀀')), (ready,)),
            ]
    plan.append(('sleeper', 'sleeper', sleeper, ()))

    for key, _, _, _ in plan:
        _events[key] = threading.Event()
    if not opts.only_busy:
        _events['raw'] = threading.Event()
        _events['very-deep'] = threading.Event()

    for key, name, target, args in plan:
        start(key, name, target, args)
    if not opts.only_busy:
        rawthread.start_new_thread(raw_thread, ())
        # 5000 Python frames need more C stack than the default on <= 3.10.
        threading.stack_size(256 * 1024 * 1024)
        start('very-deep', 'very-deep', very_deep, (VERY_DEEP_N,))
        threading.stack_size(0)

    for key in sorted(_events):
        if not _events[key].wait(60):
            sys.stderr.write('target: thread %s never got ready\n' % key)
            os._exit(3)

    sys.stdout.write('READY\n')
    sys.stdout.flush()
    deadline = time.time() + (opts.exit_after if opts.exit_after is not None else opts.max_life)
    while time.time() < deadline: time.sleep(max(0.01, deadline - time.time()))  # @main-sleep
    os._exit(opts.exit_code)


if __name__ == '__main__':
    main(sys.argv[1:])  # @main-call
