#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Write line-table test vectors for the running interpreter.

Usage:  python tools/gen-linetable-vectors.py [OUTPUT]     (default: stdout)

Runs unchanged under Python 2.7 and 3.6 .. 3.13.  It compiles a synthetic
source (embedded below, with version-gated parts) and the source of a few
stdlib modules, walks every code object recursively through co_consts, and
for each one records its raw line table together with the line that the
interpreter's own API gives at every byte offset a frame can point at.  The
expected lines never come from pystrobe's decoder:

  2.7       dis.findlinestarts at each instruction start (the bytecode is
            walked with dis.HAVE_ARGUMENT: 1- or 3-byte instructions); the
            line of an offset is that of the last line start <= it.  Every
            byte of an instruction gets its instruction's line.
  3.6-3.9   the same, at each instruction of dis.get_instructions (wordcode:
            every even offset).
  3.10      co_lines() ranges at every even offset; no line (None) -> -1.
  3.11+     co_lines() at every 2-byte code unit, CACHE units included;
            None -> -1.  Cross-checked against co_positions().

File format (text; lines starting with '#' are comments):

  V <X.Y.Z> <format> <step>
      once, first record.  format is lnotab27 (2.7), lnotab36 (3.6-3.9),
      linetable310 (3.10) or locations311 (3.11+).  step is the spacing of
      the offsets covered by the L records: 1 on 2.7, 2 later.
  C <firstlineno> <codelen> <table-hex or -> <name>
      one code object: co_firstlineno, len(co_code) in bytes, the raw bytes
      of co_lnotab (<= 3.9) or co_linetable (3.10+) in hex ('-' if empty),
      and a name (module:outer.inner, no spaces).
  L <start> <end> <line> [<start> <end> <line> ...]
      follows each C record: every offset o with start <= o < end and
      o % step == 0 has the given line (-1: no line).  The ranges are
      ascending and together cover [0, codelen).

The file is kept under about 300 KB: the synthetic code objects always go
in, stdlib code objects are added in a fixed order until the budget is used.
"""

import binascii
import dis
import io
import os
import sys

BUDGET = 290 * 1024
# Modules present (as Python source) in 2.7 and every 3.x up to 3.13.
STDLIB = ["threading", "json.decoder", "argparse", "textwrap", "tokenize",
          "inspect", "difflib", "subprocess", "optparse", "calendar",
          "logging", "pickle", "tarfile", "ftplib", "imaplib", "doctest",
          "pdb", "mailbox", "pydoc"]


def blank(n):
    return "\n" * n


def long_sum(n):
    return " + ".join(["a"] * n)


def base_source():
    parts = [
        "import os\n",
        "def simple(a, b):\n    x = a + b\n    return x\n",
        "@decorator_one\n@decorator_two(\n    1,\n    2)\ndef decorated(x):\n"
        "    return x\n",
        blank(140),
        "def after_140_blank_lines():\n    return 1\n",
        blank(300),
        "def after_300_blank_lines():\n    return 2\n",
        "def huge_line(a):\n    return " + long_sum(330) + "\n",
        "HUGE = [" + ", ".join(["os"] * 300) + "]\n",
        "def multi_line(a, b):\n    return (a +\n            b *\n            a)\n",
        "def gen(n):\n    for i in range(n):\n        yield i * 2\n",
        "def comps(seq):\n    a = [x for x in seq if x]\n"
        "    b = dict((k, v) for k, v in seq)\n"
        "    c = {x for x in seq}\n    d = {k: v for k, v in seq}\n"
        "    e = [[y for y in x] for x in seq]\n    return a, b, c, d, e\n",
        "square = lambda v: v * v\n",
        "pair = lambda v, w=(lambda: 3): (v,\n    w())\n",
        "def outer(n):\n    def inner(m):\n        def innermost():\n"
        "            return m + n\n        return innermost\n    return inner\n",
        "def flow(path):\n    try:\n        f = open(path)\n    except IOError:\n"
        "        return None\n    finally:\n        cleanup()\n"
        "    with open(path) as f:\n        data = f.read()\n"
        "    while data:\n        data = data[1:]\n"
        "    for x in data:\n        if x:\n            break\n"
        "    else:\n        pass\n"
        "    try:\n        pass\n    except (ValueError, KeyError) as e:\n"
        "        raise\n    return data\n",
        "def long_loop(x):\n    while x:\n        x -= 1\n" + blank(300)
        + "        x -= 2\n    for y in x:\n" + blank(200)
        + "        x += y\n    return x\n",
        "def long_with(p):\n    with open(p) as f:\n" + blank(280)
        + "        f.read()\n    try:\n" + blank(150)
        + "        f.close()\n    finally:\n" + blank(150)
        + "        f.close()\n    return f\n",
        "def long_call():\n    return target(\n        first,\n" + blank(300)
        + "        last)\n",
        "def long_dict():\n    return {\n        'a': 1,\n" + blank(200)
        + "        'b': 2,\n    }\n",
        "@decorator_three\n" + blank(260) + "def far_decorated():\n    pass\n",
        "class Klass(object):\n    attr = 1\n    def method(self):\n"
        "        return self.attr\n    @property\n    def prop(self):\n"
        "        return 2\n    class Inner:\n        def deep(self):\n"
        "            return (lambda: self)()\n",
        "def cond(a):\n    return (a if a\n" + blank(130)
        + "            else -a)\n",
        blank(3000),
        "def far_away(a):\n    return func(a,\n" + blank(2600)
        + "        a)\n",
        "def many_lines():\n"
        + "".join(["    v%d = %d\n" % (i, i) for i in range(40)])
        + "    return v0\n",
        "def empty():\n    pass\n",
        "if __name__ == '__main__':\n    simple(1, 2)\n",
    ]
    return "".join(parts)


ASYNC_SOURCE = (
    "async def coro(x):\n"
    "    await x\n"
    "    async with x as y:\n"
    "        await y\n"
    "    async for z in x:\n"
    "        await z\n"
    "    return [await w for w in x]\n"
    "async def agen(x):\n"
    "    yield x\n"
)

PY36_SOURCE = (
    "def fstrings(a, b):\n"
    "    c: int = 1\n"
    "    return f'{a!r:>10} {b} {c}' + f'''\n"
    "{a}\n"
    "{b}'''\n"
    "async def agen2(x):\n"
    "    async for y in x:\n"
    "        yield y\n"
    "    return\n"
)

PY38_SOURCE = (
    "def walrus(a, /, b):\n"
    "    if (n := len(a)) > 10:\n"
    "        return n\n"
    "    return [y := f(x) for x in a]\n"
)

PY310_SOURCE = (
    "def matcher(cmd):\n"
    "    match cmd:\n"
    "        case [x, y, *rest]:\n"
    "            return x\n"
    "        case {'k': v}:\n"
    "            return v\n"
    "        case Point(x=0, y=yy) if yy > 0:\n"
    "            return yy\n"
    "        case _:\n"
    "            return None\n"
)

PY311_SOURCE = (
    "def star(a):\n"
    "    try:\n"
    "        a()\n"
    "    except* ValueError as eg:\n"
    "        a = eg\n"
    "    except* TypeError:\n"
    "        pass\n"
)

PY312_SOURCE = (
    "type Alias = list[int]\n"
    "def generic[T](x: T) -> T:\n"
    "    return x\n"
    "class Box[T]:\n"
    "    def get(self) -> T:\n"
    "        return [v for v in self.items]\n"
)


def synthetic_sources():
    v = sys.version_info
    out = [("synthetic", base_source())]
    gated = [
        ((3, 5), "synthetic_async", ASYNC_SOURCE),
        ((3, 6), "synthetic_36", PY36_SOURCE),
        ((3, 8), "synthetic_38", PY38_SOURCE),
        ((3, 10), "synthetic_310", PY310_SOURCE),
        ((3, 11), "synthetic_311", PY311_SOURCE),
        ((3, 12), "synthetic_312", PY312_SOURCE),
    ]
    for need, name, src in gated:
        if v[:2] >= need:
            out.append((name, src))
    return out


def stdlib_source(modname):
    __import__(modname)
    path = sys.modules[modname].__file__
    if path.endswith(".pyc") or path.endswith(".pyo"):
        path = path[:-1]
    with io.open(path, "rb") as f:
        return f.read()


def fmt_of_version():
    v = sys.version_info[:2]
    if v < (3, 0):
        return "lnotab27", 1
    if v < (3, 10):
        return "lnotab36", 2
    if v < (3, 11):
        return "linetable310", 2
    return "locations311", 2


def table_bytes(co):
    if sys.version_info[:2] >= (3, 10):
        return co.co_linetable
    return co.co_lnotab


def line_starts(co):
    starts = list(dis.findlinestarts(co))
    starts.sort()
    return starts


def line_at(starts, off, first):
    """Line of the last line start <= off (the ordering findlinestarts gives)."""
    line = first
    for addr, ln in starts:
        if addr > off:
            break
        line = ln
    return line


def instr_starts_27(co):
    code = co.co_code
    i = 0
    while i < len(code):
        yield i
        i += 3 if ord(code[i]) >= dis.HAVE_ARGUMENT else 1


def per_byte_lines_lnotab(co):
    """A list with the line of every byte offset of co_code (<= 3.9)."""
    n = len(co.co_code)
    starts = line_starts(co)
    if sys.version_info[0] < 3:
        offs = list(instr_starts_27(co))
    else:
        offs = [ins.offset for ins in dis.get_instructions(co)]
    lines = [None] * n
    bounds = offs + [n]
    for k in range(len(offs)):
        ln = line_at(starts, offs[k], co.co_firstlineno)
        for b in range(bounds[k], bounds[k + 1]):
            lines[b] = ln
    if None in lines:
        raise SystemExit("instruction walk did not cover %r" % (co,))
    return lines


def per_byte_lines_colines(co):
    """A list with the line of every byte offset of co_code (3.10+)."""
    n = len(co.co_code)
    lines = [-1] * n
    for start, end, line in co.co_lines():
        for b in range(max(start, 0), min(end, n)):
            lines[b] = -1 if line is None else line
    if sys.version_info[:2] >= (3, 11):
        pos = list(co.co_positions())
        if len(pos) * 2 != n:
            raise SystemExit("co_positions length mismatch in %r" % (co,))
        for k, p in enumerate(pos):
            exp = -1 if p[0] is None else p[0]
            if lines[2 * k] != exp:
                raise SystemExit("co_lines/co_positions disagree in %r at %d"
                                 % (co, 2 * k))
    return lines


def ranges(lines, step):
    out = []
    for off in range(0, len(lines), step):
        ln = lines[off]
        if out and out[-1][2] == ln and out[-1][1] == off:
            out[-1][1] = off + step
        else:
            out.append([off, off + step, ln])
    if out:
        out[-1][1] = min(out[-1][1], len(lines))
    return out


def walk(co, prefix):
    name = prefix + co.co_name
    yield name, co
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            for item in walk(c, name + "."):
                yield item


def record(co, name, step):
    if sys.version_info[:2] >= (3, 10):
        lines = per_byte_lines_colines(co)
    else:
        lines = per_byte_lines_lnotab(co)
    tab = table_bytes(co)
    hexed = binascii.hexlify(tab)
    if not isinstance(hexed, str):
        hexed = hexed.decode("ascii")
    name = "".join(["_" if ch.isspace() else ch for ch in name])
    head = "C %d %d %s %s\n" % (co.co_firstlineno, len(co.co_code), hexed or "-", name)
    body = "L " + " ".join(["%d %d %d" % tuple(r) for r in ranges(lines, step)]) + "\n"
    count = len(range(0, len(co.co_code), step))
    return head + body, count


def main(argv):
    fmt, step = fmt_of_version()
    v = sys.version_info
    chunks = [
        "# pystrobe line-table vectors; generated by tools/gen-linetable-vectors.py\n",
        "# %s\n" % sys.version.split("\n")[0],
        "V %d.%d.%d %s %d\n" % (v[0], v[1], v[2], fmt, step),
    ]
    size = sum(len(c) for c in chunks)
    ncode = noffs = 0
    for modname, src in synthetic_sources():
        top = compile(src, modname + ".py", "exec", 0, True)
        for name, co in walk(top, modname + ":"):
            text, count = record(co, name, step)
            chunks.append(text)
            size += len(text)
            ncode += 1
            noffs += count
    full = False
    for modname in STDLIB:
        if full:
            break
        top = compile(stdlib_source(modname), modname + ".py", "exec", 0, True)
        for name, co in walk(top, modname + ":"):
            text, count = record(co, name, step)
            if size + len(text) > BUDGET:
                full = True
                break
            chunks.append(text)
            size += len(text)
            ncode += 1
            noffs += count
    chunks.append("# %d code objects, %d offsets\n" % (ncode, noffs))
    data = "".join(chunks)
    if len(argv) > 1:
        with open(argv[1], "w") as f:
            f.write(data)
    else:
        sys.stdout.write(data)
    sys.stderr.write("%s: %d code objects, %d offsets, %d bytes\n"
                     % (fmt, ncode, noffs, len(data)))


if __name__ == "__main__":
    main(sys.argv)
