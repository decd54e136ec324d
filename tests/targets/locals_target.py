# -*- coding: utf-8 -*-
"""End-to-end target for pystrobe dump --locals and --source.

Runs unchanged on CPython 2.7 and 3.6+.  The main thread calls outer(),
which holds a cell variable and calls inner() with known arguments; inner()
holds one local of each kind of value pystrobe renders and calls park(),
which sleeps.  Lines the tests assert carry "# @name" markers.  Once parked
it prints one line:  READY {"pid": ...}

  --max-life S   watchdog: SIGALRM ends the process after S seconds (default 300)
"""
from __future__ import print_function

import sys
sys.dont_write_bytecode = True

import json
import os
import signal
import time


class Point(object):
    def __init__(self, x, y):
        self.x = x
        self.y = y


def park():
    print('READY ' + json.dumps({'pid': os.getpid()}))
    sys.stdout.flush()
    while True:
        time.sleep(1000)  # @park


def outer():
    captured = 'from outer'
    counter = 7

    def inner(number, text, *rest, **options):
        zero = 0
        neg = -5
        big = 2 ** 100
        negbig = -(2 ** 70)
        half = 1.5
        tenth = 0.1
        negzero = -0.0
        huge = 1e100
        infinity = float('inf')
        nothing = None
        yes = True
        no = False
        ascii = 'hello'
        nonascii = u'h\xe9llo w\xf6rld \u2603'
        longstr = 'x' * 100
        quoted = 'it\'s "q"\n'
        semi = 'a;b'
        raw = b'\x00\x01ab\xff'
        empty_tuple = ()
        pair = (1, 'two')
        items = [1, 2, 3]
        empty_list = []
        mapping = {'a': 1}
        empty_dict = {}
        numbers = set([7])
        frozen = frozenset()
        nested = [[1, [2, [3]]], 4]
        point = Point(1, 2)
        many = list(range(1000))
        copied = captured
        park()  # @inner-park

    inner(42, 'arg', 1, 2, k='v')  # @outer-call
    return counter


def main():
    life = 300
    if '--max-life' in sys.argv:
        life = int(sys.argv[sys.argv.index('--max-life') + 1])
    signal.alarm(life)
    outer()  # @main-call


main()  # @module-call
