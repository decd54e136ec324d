# -*- coding: utf-8 -*-
"""All versions: ASCII identifiers (2.7 allows no others) in a module whose
file name is non-ASCII.  Loaded by threads.py from its path."""
import time


def plain_in_unicode_file(ready):
    time.sleep(ready('unifile'))  # @unifile-sleep
