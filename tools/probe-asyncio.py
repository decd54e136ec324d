"""Measures, inside a running interpreter, where asyncio's C objects keep
what pystrobe reads of them: the offsets of profiler/cpython/asyncio_layout.c.

    python3.X tools/probe-asyncio.py        # prints one JSON object

Nothing is taken from headers: each offset is found by looking for a value
the probe knows (the address of the loop a future was made for, of a
callback it was given, of a task's coroutine) in the object's own memory
(ctypes.string_at), and each must be found exactly once.  The end-to-end
check asyncio-layout (tests/e2e) runs this in every interpreter and
compares it with pystrobe's table (`pystrobe debug asyncio-layout X.Y`).

Python 3.7+, the C _asyncio module; stdlib only.
"""
import asyncio
import ctypes
import json
import struct
import sys

V = sys.version_info[:2]
W = 8


def words(addr, size):
    n = size // W
    return struct.unpack('<%dQ' % n, ctypes.string_at(addr, n * W))


def find(addr, size, value, start=16, mask=0):
    return [i * W for i, w in enumerate(words(addr, size))
            if i * W >= start and (w & ~mask) == value]


def one(found, what):
    if len(found) != 1:
        raise SystemExit('probe-asyncio: %s found %d times: %r' % (what, len(found), found))
    return found[0]


def obj_at(addr):
    return ctypes.cast(addr, ctypes.py_object).value


def size_of(o):
    t = type(o)
    n = t.__basicsize__
    if t.__itemsize__:
        n += t.__itemsize__ * len(o) if hasattr(o, '__len__') else 0
    return n


def main():
    import _asyncio
    out = {'python': '%d.%d' % V}
    tagged = 1 if V >= (3, 14) else 0
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    # Future: loop, first callback, the list of the others, state, result.
    F = _asyncio.Future
    f = F(loop=loop)
    fsize = type(f).__basicsize__
    out['future_size'] = fsize
    out['fut_loop'] = one(find(id(f), fsize, id(loop)), 'fut_loop')

    def cb(x):
        pass

    def cb2(x):
        pass
    f.add_done_callback(cb)
    out['fut_callback0'] = one(find(id(f), fsize, id(cb)), 'fut_callback0')
    before = words(id(f), fsize)
    f.add_done_callback(cb2)
    after = words(id(f), fsize)
    changed = [i * W for i, (a, b) in enumerate(zip(before, after)) if a != b]
    off = one(changed, 'fut_callbacks')
    lst = obj_at(after[off // W])
    if type(lst) is not list or lst[0][0] is not cb2:
        raise SystemExit('probe-asyncio: fut_callbacks is not the list of (callback, context)')
    out['fut_callbacks'] = off

    pend, canc, fin = F(loop=loop), F(loop=loop), F(loop=loop)
    canc.cancel()
    result = object()
    fin.set_result(result)
    states = []
    for o in range(16, fsize, 4):
        vals = [struct.unpack('<i', ctypes.string_at(id(x) + o, 4))[0] for x in (pend, canc, fin)]
        if vals == [0, 1, 2]:
            states.append(o)
    out['fut_state'] = one(states, 'fut_state')
    out['fut_result'] = one(find(id(fin), fsize, id(result)), 'fut_result')

    # FutureIter: the future it iterates.
    it = pend.__await__()
    out['futureiter_type'] = type(it).__name__
    out['futureiter_future'] = one(find(id(it), type(it).__basicsize__, id(pend)),
                                   'futureiter_future')

    # Task: coroutine, name, the future it waits on; its wake-up callback.
    async def waiter(a, b, fut):
        await fut

    async def waiter2(fut):
        x = object()
        return (x, await fut)   # two values on the stack while it waits

    fut0 = loop.create_future()
    fut1 = loop.create_future()
    kw = {'name': 'probe-task'} if V >= (3, 8) else {}
    sentinel = object()
    t = loop.create_task(waiter(sentinel, 2, fut0), **kw)
    t2 = loop.create_task(waiter2(fut1), **kw)
    loop.run_until_complete(asyncio.sleep(0))
    tsize = type(t).__basicsize__
    out['task_size'] = tsize
    coro = t.get_coro() if V >= (3, 8) else t._coro
    out['task_coro'] = one(find(id(t), tsize, id(coro)), 'task_coro')
    out['task_name'] = one(find(id(t), tsize, id(t.get_name())), 'task_name') \
        if V >= (3, 8) else -1
    out['task_fut_waiter'] = one(find(id(t), tsize, id(fut0)), 'task_fut_waiter')
    for k in ('fut_loop', 'fut_callback0', 'fut_callbacks', 'fut_state', 'fut_result'):
        pass
    if one(find(id(t), tsize, id(loop)), 'task loop') != out['fut_loop']:
        raise SystemExit('probe-asyncio: a task keeps its loop elsewhere than a future')
    wake_addr = words(id(fut0), fsize)[out['fut_callback0'] // W]
    wake = obj_at(wake_addr)
    out['wakeup_type'] = type(wake).__name__
    out['wakeup_task'] = one(find(wake_addr, type(wake).__basicsize__, id(t)), 'wakeup_task')

    # 3.14+: the task's node in its thread's list of tasks.
    if V >= (3, 14):
        nodes = [o for o in range(16, tsize, W)
                 if words(id(t) + o, 8)[0] == id(t2) + o or
                 words(id(t2) + o + 8, 8)[0] == id(t) + o]
        out['task_node'] = one(nodes, 'task_node')
        # The thread state: its running task, and the head of its list of tasks.
        get = ctypes.pythonapi.PyThreadState_Get
        get.restype = ctypes.c_void_p
        found = {}

        async def running():
            ts = get()
            me = asyncio.current_task()
            tsz = 2048
            found['task'] = find(ts, tsz, id(me), start=0)
            found['head'] = [o for o in range(0, tsz - 8, W)
                             if words(ts + o, 16)[0] in (id(t) + out['task_node'],
                                                         id(t2) + out['task_node'], id(me) +
                                                         out['task_node'])]
        loop.run_until_complete(running())
        out['ts_running_task'] = one(found['task'], 'asyncio_running_task')
        # the head's next and prev (a circular list): the head starts at the first
        head = found['head']
        if len(head) != 2 or head[1] != head[0] + W:
            raise SystemExit('probe-asyncio: asyncio_tasks_head found at %r' % head)
        out['ts_tasks_head'] = head[0]
    else:
        out['task_node'] = out['ts_running_task'] = out['ts_tasks_head'] = -1

    # Coroutines: the frame (<= 3.10: a frame object; 3.11+: inside the
    # coroutine), and where the object it awaits is kept.
    for c, nargs in ((coro, 3), ((t2.get_coro() if V >= (3, 8) else t2._coro), 1)):
        aw = c.cr_await
        frame = c.cr_frame
        csize = type(c).__basicsize__
        if V <= (3, 10):
            out['gen_frame'] = one(find(id(c), csize, id(frame)), 'gen_frame')
            fsz = type(frame).__basicsize__ + 8 * 64
            slot = one(find(id(frame), fsz, id(aw), start=type(frame).__basicsize__ - 8),
                       'awaited slot')
            if V <= (3, 9):
                out['fo_stacktop'] = one(find(id(frame), type(frame).__basicsize__,
                                              id(frame) + slot + 8), 'f_stacktop')
                # f_valuestack: the stack's bottom, 1 (waiter) or 2 (waiter2) slots below
                depth = 1 if nargs == 3 else 2
                out['_vs_%d' % nargs] = find(id(frame), type(frame).__basicsize__,
                                             id(frame) + slot - 8 * (depth - 1))
            else:
                hdr = type(frame).__basicsize__
                cands = []
                for o in range(16, hdr, W):
                    p = words(id(frame) + o, 8)[0]
                    if id(frame) + hdr - 8 <= p <= id(frame) + slot:
                        k = (id(frame) + slot - p) // W + 1
                        for o2 in range(16, hdr, 4):
                            if struct.unpack('<i', ctypes.string_at(id(frame) + o2, 4))[0] == k:
                                cands.append((o, o2))
                out['_st_%d' % nargs] = cands
            out['gen_iframe'] = -1
        else:
            fo = type(frame).__basicsize__
            inside = [w for w in words(id(frame), fo) if id(c) <= w < id(c) + csize]
            iframe = one(inside, 'gen_iframe (the frame object\'s f_frame)')
            out['gen_iframe'] = iframe - id(c)
            # localsplus[0] is the first argument (1 or fut1)
            # the first of them: a copy may be on the value stack above
            lp = min(find(iframe, csize - out['gen_iframe'] + 8 * 16,
                          id(sentinel) if nargs == 3 else id(fut1), start=24, mask=tagged))
            slot = one(find(iframe, csize - out['gen_iframe'] + 8 * 16, id(aw), start=lp,
                            mask=tagged), 'awaited slot')
            # The awaited object is the top of the value stack, or (3.15) the
            # one below it: yf_below says which (1: the top).
            k = (slot - lp) // W + 1
            if V <= (3, 13):
                cands = [(o, b) for o in range(16, lp, 4) for b in (1, 2)
                         if struct.unpack('<i', ctypes.string_at(iframe + o, 4))[0] == k + b - 1]
            else:
                cands = [(o, b) for o in range(16, lp, W) for b in (1, 2)
                         if words(iframe + o, 8)[0] == iframe + slot + 8 * b]
            out['_st_%d' % nargs] = cands
            out['if_localsplus'] = lp
        out['_aw_%d' % nargs] = type(aw).__name__
    if V <= (3, 9):
        both = sorted(set(out.pop('_vs_3')) & set(out.pop('_vs_1')))
        out['fo_valuestack'] = one(both, 'f_valuestack')
    if V == (3, 10):
        both = sorted(set(out.pop('_st_3')) & set(out.pop('_st_1')))
        out['fo_valuestack'], out['fo_stackdepth'] = one(both, 'f_valuestack, f_stackdepth')
    if V >= (3, 11):
        both = sorted(set(out.pop('_st_3')) & set(out.pop('_st_1')))
        o, out['yf_below'] = one(both, 'stacktop or stackpointer')
        out['if_stacktop' if V <= (3, 13) else 'if_stackpointer'] = o
    else:
        out['yf_below'] = 1
    for k in list(out):
        if k.startswith('_'):
            del out[k]
    out.setdefault('fo_stacktop', -1)
    out.setdefault('fo_valuestack', -1)
    out.setdefault('fo_stackdepth', -1)
    out.setdefault('if_stacktop', -1)
    out.setdefault('if_stackpointer', -1)
    out.setdefault('gen_frame', -1)
    out.setdefault('fo_state', -1)

    # 3.11+: the coroutine's frame state (created, suspended in an await, running).
    if V >= (3, 11):
        gi = out['gen_iframe']

        async def noop():
            pass
        created = noop()
        seen = {}

        async def me():
            c = me_holder[0]
            seen['run'] = ctypes.string_at(id(c), gi)
        me_holder = [None]
        me_holder[0] = me()
        try:
            me_holder[0].send(None)
        except StopIteration:
            pass
        cbytes = ctypes.string_at(id(created), gi)
        abytes = ctypes.string_at(id(coro), gi)
        # (created, suspended in an await, running): 3.11/3.12 (-2, -1, 0),
        # 3.13/3.14 (-3, -1, 0), 3.15 (0, 2, 4)
        def at(b, o):
            return struct.unpack('b', b[o:o + 1])[0]
        cands = [(o, (at(cbytes, o), at(abytes, o), at(seen['run'], o))) for o in range(16, gi)
                 if (at(cbytes, o), at(abytes, o), at(seen['run'], o)) in
                 ((-2, -1, 0), (-3, -1, 0), (0, 2, 4))]
        o, (out['gen_state_created'], out['gen_state_awaiting'], out['gen_state_running']) = \
            one(cands, 'gi_frame_state')
        out['gen_frame_state'] = o
        created.close()
    elif V == (3, 10):
        # the frame object's f_state: created -2, suspended -1, running 0
        async def noop():
            pass
        created = noop()
        seen = {}

        async def me():
            seen['run'] = ctypes.string_at(id(sys._getframe()), 128)
        m = me()
        try:
            m.send(None)
        except StopIteration:
            pass
        cb_ = ctypes.string_at(id(created.cr_frame), 128)
        ab_ = ctypes.string_at(id(coro.cr_frame), 128)
        cands = [o for o in range(16, 128)
                 if (struct.unpack('b', cb_[o:o + 1])[0], struct.unpack('b', ab_[o:o + 1])[0],
                     struct.unpack('b', seen['run'][o:o + 1])[0]) == (-2, -1, 0)]
        out['fo_state'] = one(cands, 'f_state')
        created.close()
        out['gen_frame_state'] = -1
        out['gen_state_created'], out['gen_state_awaiting'], out['gen_state_running'] = -2, -1, 0
    else:
        out['gen_frame_state'] = -1
        out['gen_state_created'] = out['gen_state_awaiting'] = out['gen_state_running'] = 0
    for tk in (t, t2):
        tk.cancel()
    fut0.cancel()
    fut1.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    print(json.dumps(out, sort_keys=True))


main()
