"""A small Chrome DevTools Protocol client for the viewer checks.

It drives a headless Chromium over ``--remote-debugging-pipe``: commands are
written to the browser's fd 3, replies and events are read from its fd 4, each
a JSON message ended by a NUL byte.  Python 3 standard library only.

    with cdp.Browser(timeout=60) as b:          # raises cdp.Unavailable without Chromium
        page = b.new_page(width=1280, height=800)
        page.navigate('file:///tmp/x.svg')
        page.evaluate('document.title')
        page.click(100, 200)                     # a real mouse click
        page.prompt_answers.append('busy')       # answers the next window.prompt
        png = page.screenshot()
        w, h, rgba = cdp.decode_png(png)

Every wait is bounded by the browser's deadline (``timeout`` seconds from
start); close() (or leaving the ``with``) kills the browser's process group
and removes its profile directory.
"""
import base64
import fcntl
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

CHROMIUM_CANDIDATES = ('/usr/bin/chromium', '/usr/bin/chromium-browser',
                       '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable')

FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-extensions', '--disable-default-apps', '--disable-crash-reporter',
         '--mute-audio', '--hide-scrollbars', '--no-default-browser-check',
         '--remote-debugging-pipe')


class Error(Exception):
    """A command failed, the browser went away, or time ran out."""


class Unavailable(Error):
    """No Chromium to run (a reason to skip, not to fail)."""


def find_chromium():
    """The Chromium to run: $CHROMIUM, else the first installed candidate, else None."""
    env = os.environ.get('CHROMIUM')
    if env:
        return env if os.access(env, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, binary=None, timeout=60.0, args=()):
        binary = binary or find_chromium()
        if not binary:
            raise Unavailable('chromium is not installed (apt-get install chromium, or set CHROMIUM)')
        self.deadline = time.monotonic() + timeout
        self.events = []          # every event, in order: dicts with method, params, sessionId
        self.pages = {}           # sessionId -> Page
        self._replies = {}
        self._next_id = 0
        self._queue = queue.Queue()
        self._wfd = self._rfd = None
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix='pystrobe-cdp-')
        try:
            self._start(binary, args)
        except BaseException:
            self.close()
            raise

    # ---- process --------------------------------------------------------------

    def _start(self, binary, args):
        to_r, to_w = os.pipe()      # us -> browser (its fd 3)
        from_r, from_w = os.pipe()  # browser -> us (its fd 4)
        # The browser's ends go above fd 9 first, so that putting them at 3
        # and 4 cannot overwrite one with the other.
        child_r = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_r)
        os.close(from_w)
        self._wfd, self._rfd = to_w, from_r
        profile = os.path.join(self.tmp, 'profile')
        argv = [binary] + list(FLAGS) + ['--user-data-dir=' + profile] + list(args) + ['about:blank']
        # A tiny Python exec wrapper puts them there (sh cannot name fds above 9).
        wrapper = ('import os, sys\n'
                   'r, w = int(sys.argv[1]), int(sys.argv[2])\n'
                   'os.dup2(r, 3)\n'
                   'os.dup2(w, 4)\n'
                   'os.close(r)\n'
                   'os.close(w)\n'
                   'os.execv(sys.argv[3], sys.argv[3:])\n')
        self._log = open(os.path.join(self.tmp, 'stderr.log'), 'wb')
        env = dict(os.environ, HOME=self.tmp)
        try:
            self.proc = subprocess.Popen([sys.executable, '-c', wrapper, str(child_r), str(child_w)] + argv,
                                         pass_fds=(child_r, child_w),
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                         start_new_session=True, env=env)
        finally:
            os.close(child_r)
            os.close(child_w)
        threading.Thread(target=self._reader, daemon=True).start()
        self.call('Target.setDiscoverTargets', {'discover': False})

    def _reader(self):
        buf = bytearray()
        while True:
            try:
                chunk = os.read(self._rfd, 1 << 20)
            except OSError:
                break
            if not chunk:
                break
            start = len(buf)
            buf += chunk
            pos = buf.find(b'\0', start)
            while pos >= 0:
                try:
                    self._queue.put(json.loads(bytes(buf[:pos])))
                except ValueError:
                    pass
                del buf[:pos + 1]
                pos = buf.find(b'\0')
        self._queue.put(None)

    def stderr_tail(self, n=2000):
        try:
            with open(os.path.join(self.tmp, 'stderr.log'), 'rb') as f:
                return f.read()[-n:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def close(self):
        """Ends the browser (its whole process group) and removes its files."""
        if self.proc is not None:
            if self.proc.poll() is None and self._wfd is not None:
                try:
                    self.send('Browser.close')
                    self.proc.wait(timeout=3)
                except (Error, OSError, subprocess.TimeoutExpired):
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        for fd in (self._wfd, self._rfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wfd = self._rfd = None
        if getattr(self, '_log', None):
            self._log.close()
            self._log = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- messages --------------------------------------------------------------

    def remaining(self):
        return self.deadline - time.monotonic()

    def send(self, method, params=None, session=None):
        """Sends a command without waiting; returns its id."""
        self._next_id += 1
        msg = {'id': self._next_id, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        data = json.dumps(msg).encode() + b'\0'
        while data:
            try:
                n = os.write(self._wfd, data)
            except OSError as e:
                raise Error('%s: cannot write to the browser: %s\n%s' % (method, e, self.stderr_tail()))
            data = data[n:]
        return self._next_id

    def _pump(self, until):
        """Handles one message; False when the deadline (or until) passed first."""
        left = min(self.remaining(), until - time.monotonic())
        if left <= 0:
            return False
        try:
            msg = self._queue.get(timeout=left)
        except queue.Empty:
            return False
        if msg is None:
            self._queue.put(None)
            raise Error('the browser closed the pipe\n' + self.stderr_tail())
        if 'id' in msg:
            self._replies[msg['id']] = msg
            return True
        self.events.append(msg)
        page = self.pages.get(msg.get('sessionId'))
        if page is not None:
            page._event(msg)
        return True

    def call(self, method, params=None, session=None, timeout=30.0):
        """Sends a command and returns its result, handling events meanwhile."""
        cid = self.send(method, params, session)
        until = time.monotonic() + timeout
        while cid not in self._replies:
            if not self._pump(until):
                raise Error('%s: no reply in time' % method)
        reply = self._replies.pop(cid)
        if 'error' in reply:
            raise Error('%s: %s' % (method, reply['error'].get('message', reply['error'])))
        return reply.get('result', {})

    def wait_event(self, method, session=None, since=0, timeout=30.0):
        """The params of the first event called method (after events[since]); raises on timeout."""
        until = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.events):
                ev = self.events[i]
                i += 1
                if ev.get('method') == method and (session is None or ev.get('sessionId') == session):
                    return ev.get('params', {})
            if not self._pump(until):
                raise Error('no %s event in time' % method)

    def settle(self, seconds):
        """Handles events for a while (lets the page run)."""
        until = time.monotonic() + seconds
        while self._pump(until):
            pass

    def new_page(self, width=1280, height=800):
        target = self.call('Target.createTarget', {'url': 'about:blank'})['targetId']
        session = self.call('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
        page = Page(self, target, session)
        self.pages[session] = page
        page.call('Page.enable')
        page.call('Runtime.enable')
        page.call('Emulation.setDeviceMetricsOverride',
                  {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': False})
        return page


class Page:
    """One tab.  dialogs: every JavaScript dialog it opened (type, message);
    exceptions: every uncaught exception; prompt_answers: texts for the next
    window.prompt calls (a prompt with none left, and any other dialog, is
    dismissed)."""

    def __init__(self, browser, target, session):
        self.browser = browser
        self.target = target
        self.session = session
        self.dialogs = []
        self.exceptions = []
        self.console = []
        self.prompt_answers = []

    def _event(self, msg):
        method, params = msg.get('method'), msg.get('params', {})
        if method == 'Page.javascriptDialogOpening':
            self.dialogs.append({'type': params.get('type'), 'message': params.get('message')})
            answer = {'accept': False}
            if params.get('type') == 'prompt' and self.prompt_answers:
                answer = {'accept': True, 'promptText': self.prompt_answers.pop(0)}
            # Not waited for: the page is blocked until the browser handles it.
            self.browser.send('Page.handleJavaScriptDialog', answer, self.session)
        elif method == 'Runtime.exceptionThrown':
            details = params.get('exceptionDetails', {})
            exc = details.get('exception', {})
            self.exceptions.append(exc.get('description') or details.get('text'))
        elif method == 'Runtime.consoleAPICalled':
            self.console.append(params)

    def call(self, method, params=None, timeout=30.0):
        return self.browser.call(method, params, self.session, timeout)

    def navigate(self, url, timeout=30.0):
        since = len(self.browser.events)
        result = self.call('Page.navigate', {'url': url}, timeout)
        if result.get('errorText'):
            raise Error('cannot open %s: %s' % (url, result['errorText']))
        self.browser.wait_event('Page.loadEventFired', self.session, since, timeout)

    def evaluate(self, expression, timeout=30.0):
        """The value of a JavaScript expression (JSON-able); raises if it throws."""
        result = self.call('Runtime.evaluate', {'expression': expression, 'returnByValue': True,
                                                'awaitPromise': True}, timeout)
        if 'exceptionDetails' in result:
            details = result['exceptionDetails']
            raise Error('evaluate %r: %s' % (expression[:80], details.get('exception', {}).get(
                'description') or details.get('text')))
        return result.get('result', {}).get('value')

    def click(self, x, y):
        """A real left click at (x, y) in CSS pixels: move, press, release."""
        self.call('Input.dispatchMouseEvent', {'type': 'mouseMoved', 'x': x, 'y': y})
        for kind in ('mousePressed', 'mouseReleased'):
            self.call('Input.dispatchMouseEvent', {'type': kind, 'x': x, 'y': y, 'button': 'left',
                                                   'buttons': 1 if kind == 'mousePressed' else 0,
                                                   'clickCount': 1})

    def hover(self, x, y):
        self.call('Input.dispatchMouseEvent', {'type': 'mouseMoved', 'x': x, 'y': y})

    def screenshot(self, path=None, clip=None):
        """A PNG of the viewport (or of clip: x, y, width, height); saved to path too if given."""
        params = {'format': 'png'}
        if clip:
            params['clip'] = dict(clip, scale=1)
        data = base64.b64decode(self.call('Page.captureScreenshot', params)['data'])
        if path:
            with open(path, 'wb') as f:
                f.write(data)
        return data


def decode_png(data):
    """(width, height, rgba) of an 8-bit PNG (gray, RGB or RGBA, not interlaced); rgba is
    width * height * 4 bytes, row by row."""
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
    if ihdr is None:
        raise ValueError('PNG without IHDR')
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError('unsupported PNG: depth %d, color type %d, interlace %d' % (depth, ctype, interlace))
    raw = zlib.decompress(b''.join(idat))
    stride = width * channels
    prev = bytearray(stride)
    out = bytearray()
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        line = bytearray(raw[base + 1:base + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xff
        elif ftype == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xff
        elif ftype != 0:
            raise ValueError('bad PNG filter %d' % ftype)
        prev = line
        if channels == 4:
            out += line
        else:
            for i in range(0, stride, channels):
                px = line[i:i + channels]
                if channels == 3:
                    out += px + b'\xff'
                elif channels == 1:
                    out += bytes((px[0], px[0], px[0], 255))
                else:
                    out += bytes((px[0], px[0], px[0], px[1]))
    return width, height, bytes(out)
