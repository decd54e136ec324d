# -*- coding: utf-8 -*-
"""3.x only: functions whose names are non-ASCII -- Latin-1 (1-byte str
kind), CJK (2-byte kind), outside the BMP (4-byte kind) -- in a module whose
file name is non-ASCII.  Loaded by threads.py from its path."""
import time


def café(ready):
    time.sleep(ready('latin'))  # @latin-sleep


def 関数(ready):
    time.sleep(ready('cjk'))  # @cjk-sleep


def 𠀀(ready):
    time.sleep(ready('astral'))  # @astral-sleep
