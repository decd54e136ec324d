"""End-to-end target for native stacks (tests/e2e/e2e_nativestack.py): the main
thread sleeps in time.sleep, a daemon thread compresses with zlib without
end.  Prints READY once both are started.  Runs on CPython 2.7 and 3.6+."""
import os
import sys
import threading
import time
import zlib

DATA = os.urandom(1 << 16) * 256   # 16 MiB: each compress call lasts long


def compressor():
    while True:
        zlib.compress(DATA, 9)


t = threading.Thread(target=compressor)
t.daemon = True
t.start()
sys.stdout.write('READY\n')
sys.stdout.flush()
time.sleep(600)
