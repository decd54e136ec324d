"""End-to-end target for pystrobe locks and dump --tasks on an aiohttp
server (Debian's python3-aiohttp) under load from a local client.

The server (this process) listens on 127.0.0.1 (a free port); its handler
`handle` takes one asyncio.Lock shared by every request and holds it for a
few milliseconds, so that while the client keeps --clients (40) requests
in flight, nearly all of them wait on that lock inside `handle`.  The
client is another process (this file with --client PORT: threads making
requests with urllib, no asyncio), so that what the server's tasks do is
all a profile of this process sees.  Once the client got --warm (20)
responses it prints one line:
READY {"pid": <server pid>, "port": ..., "client": <client pid>}

  --clients N    requests in flight at once (default 40)
  --hold MS      how long handle holds the lock (default 5)
  --max-life S   watchdog: SIGALRM ends both processes after S seconds (default 300)

Lines the tests assert carry "# @name" markers.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True


def arg(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


# ---- the client (another process)

def client(port, n):
    done = [0]
    lock = threading.Lock()

    def worker():
        while True:
            try:
                with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=60) as r:
                    r.read()
            except OSError:
                time.sleep(0.01)
                continue
            with lock:
                done[0] += 1

    for _ in range(n):
        threading.Thread(target=worker, daemon=True).start()
    while True:
        time.sleep(1)


# ---- the server

STATE = {}                  # the lock, the hold time, responses served, aiohttp.web


async def handle(request):
    async with STATE['lock']:  # @handle
        await asyncio.sleep(STATE['hold'])
    STATE['served'] += 1
    return STATE['web'].Response(text='ok\n')


async def serve():
    from aiohttp import web
    app = web.Application()
    STATE.update(lock=asyncio.Lock(), hold=arg('--hold', 5) / 1000.0, served=0, web=web)
    app.router.add_get('/', handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, '127.0.0.1', 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    kid = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--client', str(port),
                            '--clients', str(arg('--clients', 40)),
                            '--max-life', str(arg('--max-life', 300))])
    while STATE['served'] < arg('--warm', 20):
        await asyncio.sleep(0.01)
    print('READY ' + json.dumps({'pid': os.getpid(), 'port': port, 'client': kid.pid}))
    sys.stdout.flush()
    await asyncio.Event().wait()  # @serve


def main():
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(arg('--max-life', 300))
    if '--client' in sys.argv:
        client(arg('--client', 0), arg('--clients', 40))
    else:
        asyncio.run(serve())


if __name__ == '__main__':
    main()
