"""End-to-end target for core files written by the kernel: a named thread
asleep, then os.abort() from the main thread at a marked line.  Runs on
CPython 2.7 and 3.6+.  Started with RLIMIT_CORE raised, in a folder of its
own, so that the kernel leaves its core there (when core_pattern allows).
Asserted lines carry "# @name" markers; the test reads their numbers."""
import os
import threading
import time


def sleeper(ready):
    ready.set()
    while True:
        time.sleep(100)  # @core-sleep


def crash():
    os.abort()  # @core-abort


def main():
    ready = threading.Event()
    t = threading.Thread(target=sleeper, args=(ready,), name='core-sleeper')
    t.daemon = True
    t.start()
    ready.wait(30)
    time.sleep(0.3)
    crash()  # @core-crash


main()  # @core-main
