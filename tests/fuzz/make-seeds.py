#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets: tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make-seeds.py        # rewrites every seed it knows

Each seed is a valid input of its target, in the format the target's header
comment describes; the fuzzer mutates them.  Seeds this script does not
write (merged in by `FUZZ_SAVE=1 make fuzz`) are left alone.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- walk: a version selector, then 8-byte edits (tests/unit/fuzzpath.h) ----

WALK_VERSIONS = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def edit(kind, offset, value):
    """One fz_mutate edit: kind, a 24-bit offset, a 32-bit value."""
    return bytes([kind]) + struct.pack("<I", offset)[:3] + struct.pack("<I", value & 0xFFFFFFFF)


def walk_seeds():
    # The valid image of each version, untouched.
    for i, v in enumerate(WALK_VERSIONS):
        write("walk", "valid-" + v, bytes([i]))
    # A few edits of pointer-dense places (kind & 0x80): a pointer nudged by
    # 8 bytes, a pointer cleared, a byte changed.
    write("walk", "edit-3.11-nudge", bytes([6]) + edit(0xC3, 0x0000, 8))
    write("walk", "edit-3.12-clear", bytes([7]) + edit(0x82, 0x1010, 0))
    write("walk", "edit-2.7-byte", bytes([0]) + edit(0x80, 0x2004, 0x41) + edit(0xC3, 0x3000, -8))


# ---- asyncio: a version selector, then 8-byte edits (tests/unit/fuzzasync.h) ----

ASYNCIO_VERSIONS = ["3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]


def asyncio_seeds():
    a = ASYNCIO_VERSIONS.index
    # The valid image of each version, untouched.
    for i, v in enumerate(ASYNCIO_VERSIONS):
        write("asyncio", "valid-" + v, bytes([i]))
    # A few edits of pointer-dense places (kind & 0x80; offset >> 12 picks
    # the range, offset & 0xfff the place in it): a pointer nudged by 8
    # bytes, one cleared, one aimed elsewhere in the image, a byte changed.
    write("asyncio", "edit-3.11-nudge", bytes([a("3.11")]) + edit(0xC3, 0x12010, 8))
    write("asyncio", "edit-3.8-clear", bytes([a("3.8")]) + edit(0x82, 0x1a020, 0))
    write("asyncio", "edit-3.13-pointer-byte", bytes([a("3.13")]) + edit(0x81, 0x2c008, 0x4000) +
          edit(0x80, 0x30000, 0x7F))
    write("asyncio", "edit-3.14-nudge-clear", bytes([a("3.14")]) + edit(0xC3, 0x08000, -16) +
          edit(0x82, 0x40018, 0))
    write("asyncio", "edit-3.15-word", bytes([a("3.15")]) + edit(0x83, 0x20008, -1))


# ---- linetable: format, addrq, firstlineno, table (tests/fuzz/fuzz_linetable.c) ----

LT_FORMATS = {"lnotab27": 0, "lnotab36": 1, "linetable310": 2, "locations311": 3}


def vectors(version):
    """(format, [(firstlineno, table, name, [(start, end, line)])]) of tests/vectors."""
    fmt, codes = None, []
    with open(os.path.join(ROOT, "tests", "vectors", "linetable-%s.txt" % version)) as f:
        for line in f:
            w = line.split()
            if not w or w[0] == "#":
                continue
            if w[0] == "V":
                fmt = LT_FORMATS[w[2]]
            elif w[0] == "C":
                codes.append((int(w[1]), bytes.fromhex(w[3]) if w[3] != "-" else b"", w[4], []))
            elif w[0] == "L":
                n = [int(x) for x in w[1:]]
                codes[-1][3].extend(zip(n[0::3], n[1::3], n[2::3]))
    return fmt, codes


def linetable_seeds():
    picks = [("2.7", ".multi_line"), ("3.6", ".gen"), ("3.9", ".multi_line"),
             ("3.10", ".gen"), ("3.11", ".multi_line"), ("3.12", ".gen"), ("3.13", ".comps")]
    for version, suffix in picks:
        fmt, codes = vectors(version)
        for first, table, name, ranges in codes:
            if name.endswith(suffix):
                break
        else:
            sys.exit("make-seeds: no %s in linetable-%s.txt" % (suffix, version))
        # Ask for the start of a range in the middle of the code.
        addrq = ranges[len(ranges) // 2][0] if ranges else 0
        data = bytes([fmt]) + struct.pack("<qi", addrq, first) + table
        write("linetable", "%s%s" % (version, suffix.replace(".", "-")), data)


# ---- pystr: mode, offset, [debug offsets], image (tests/fuzz/fuzz_pystr.c) ----

BASE = 0x10000
HOLE = 4096
OBJ = 0x40  # where the seeds put the object in the image
# Selector of fuzz_pystr's layouts, and each 3.x's sizeof(PyASCIIObject) and
# sizeof(PyCompactUnicodeObject) (the legacy data pointer sits at the latter).
PY_SEL = {"2.7": 0, "3.6": 1, "3.7": 2, "3.8": 3, "3.9": 4, "3.10": 5, "3.11": 6,
          "3.12": 7, "3.13": 8}
UNI_SIZES = {v: (48, 72) for v in ["3.6", "3.7", "3.8", "3.9", "3.10", "3.11"]}
UNI_SIZES.update({"3.12": (40, 56), "3.13": (40, 56)})
WIDTH27 = {4: 0, 2: 1}


def mode(sel, bytes27=False, width27=4, hole=False):
    return sel | (0x10 if bytes27 else 0) | WIDTH27[width27] << 5 | (0x80 if hole else 0)


def header(sel_byte, offset=OBJ):
    return bytes([sel_byte]) + struct.pack("<H", offset)


def pad(image, size):
    return image + b"\0" * (size - len(image))


def units(cps, kind):
    return b"".join(struct.pack({1: "<B", 2: "<H", 4: "<I"}[kind], c) for c in cps)


def state(version, kind, compact, ascii_):
    ready = 1 if version in UNI_SIZES and version not in ("3.12", "3.13") else 0
    return kind << 2 | compact << 5 | ascii_ << 6 | ready << 7


def uni3(version, cps, kind, form):
    """A 3.x str at OBJ: form is 'ascii', 'compact' or 'legacy' (data after it)."""
    ascii_size, compact_size = UNI_SIZES[version]
    ascii_ = form == "ascii"
    compact = form != "legacy"
    obj = struct.pack("<qqqq", 1, 0xABC000, len(cps), -1)
    obj += struct.pack("<I", state(version, kind, compact, ascii_))
    size = ascii_size if ascii_ else compact_size
    data = units(list(cps) + [0], kind)
    if form == "legacy":
        obj = pad(obj, compact_size) + struct.pack("<Q", BASE + OBJ + compact_size + 8 + 8)
        obj = pad(obj, compact_size + 16)
    else:
        obj = pad(obj, size)
    return pad(b"", OBJ) + obj + data + b"\0" * 8


def str27(raw):
    obj = struct.pack("<qqqqi", 1, 0xABC000, len(raw), -1, 0) + raw + b"\0"
    return pad(b"", OBJ) + obj


def unicode27(cps, width):
    data_at = OBJ + 48
    obj = struct.pack("<qqqQqq", 1, 0xABC000, len(cps), BASE + data_at, -1, 0)
    return pad(b"", OBJ) + obj + units(list(cps) + [0], width)


def cps(text):
    return [ord(c) for c in text]


def pystr_seeds():
    s = "pystr"
    write(s, "3.11-ascii", header(mode(PY_SEL["3.11"])) +
          uni3("3.11", cps("hello <module>"), 1, "ascii"))
    write(s, "3.12-compact-1", header(mode(PY_SEL["3.12"])) +
          uni3("3.12", cps("caf\u00e9 \u00ff\x01"), 1, "compact"))
    write(s, "3.6-compact-2", header(mode(PY_SEL["3.6"])) +
          uni3("3.6", cps("m\u00f3dulo_\u540d\u524d"), 2, "compact"))
    write(s, "3.13-compact-4", header(mode(PY_SEL["3.13"])) +
          uni3("3.13", cps("a\U00020000z\u540d\U0010ffff"), 4, "compact"))
    write(s, "3.10-legacy-2", header(mode(PY_SEL["3.10"])) +
          uni3("3.10", cps("\u95a2\u6570"), 2, "legacy"))
    write(s, "3.8-legacy-4-surrogate", header(mode(PY_SEL["3.8"])) +
          uni3("3.8", [ord("x"), 0xD800, 0x20000, 0x110000], 4, "legacy"))
    # The cut at PYSTR_MAX_CHARS (4096) characters.
    write(s, "3.7-compact-1-long", header(mode(PY_SEL["3.7"])) +
          uni3("3.7", cps("\u00e9" * 4100), 1, "compact"))
    # A legacy str whose characters lie past a hole in the mapping: the
    # object fills the first half, the characters start the second, which
    # fuzz_pystr maps HOLE bytes further.
    obj = uni3("3.9", cps("after the hole"), 1, "legacy")
    at = OBJ + UNI_SIZES["3.9"][1]  # the data pointer
    half = at + 16
    data = obj[half:]
    img = obj[:at] + struct.pack("<Q", BASE + half + HOLE) + obj[at + 8:half] + pad(data, half)
    write(s, "3.9-legacy-1-hole", header(mode(PY_SEL["3.9"], hole=True)) + img)
    # 3.13 as its _Py_DebugOffsets describe it: sizeof(PyUnicodeObject),
    # state, length, sizeof(PyASCIIObject).
    write(s, "3.13-debug-offsets-ascii", header(9) + struct.pack("<HHHH", 64, 32, 16, 40) +
          uni3("3.13", cps("<genexpr>"), 1, "ascii"))
    write(s, "2.7-str", header(mode(0, bytes27=True)) +
          str27("py2_m\u00f3dulo_\u540d\u524d.py".encode() + b" caf\xe9"))
    write(s, "2.7-unicode-ucs2-pair", header(mode(0, width27=2)) +
          unicode27([ord("a"), 0xD840, 0xDC00, 0x95A2, 0xDC00, ord("b")], 2))
    write(s, "2.7-unicode-ucs4", header(mode(0, width27=4)) +
          unicode27(cps("\u95a2\u6570_\U00020000\u00e9"), 4))


# ---- folded: text in each dialect folded_read accepts ----

def folded_seeds():
    f = "folded"
    write(f, "pystrobe", b"<module> (/srv/app.py:30);main (/srv/app.py:25);busy (/srv/app.py:5) 40\n"
          b"<module> (/srv/app.py:30);main (/srv/app.py:26);dumps (/usr/lib/python3.11/json/__init__.py:231) 7\n"
          b"<module> (/srv/app.py:30);main (/srv/app.py:27);fib (/srv/app.py:12);fib (/srv/app.py:12) 5\n"
          b"<module> (/srv/app.py:30);[idle] 3\n")
    write(f, "pystrobe-threads", "thread MainThread (4242);<module> (/srv/app.py:30);main (/srv/app.py:25) 4\n"
          "thread worker-\u540d\u524d (4250);run (/srv/w.py:9);\u95a2\u6570 (/srv/m\u00f3dulo.py:3) 2\n".encode())
    write(f, "flamegraph-pl", b"main;compute;square 30\nmain;compute 12\nmain;walk;walk;walk 7\n")
    write(f, "py-spy-threads", b"thread (4242): MainThread;<module> (app.py:30) 2\n"
          b"thread (0x7F3A2B1C0740);run (w.py:9) 1\n"
          b"process 4242:\"python3 app.py\";<module> (app.py:30) 3\n")
    write(f, "austin", b"# austin: 3.6.0\n# interval: 100\n# mode: wall\n\n"
          b"P4242;T0:4243;/srv/app.py:<module>:30;/srv/app.py:main:25 11\n"
          b"P4242;T0:4250;/srv/w.py:run:9 2\n")
    write(f, "austin-metrics", b"P7;T0:8;/a.py:f:1 120,0,-4096\nP7;T0:8;/a.py:f:1;:GC: 30,1,512\n")
    write(f, "austin1", b"Thread 7fc9be36fb80;<module> (<frozen importlib._bootstrap>);L689 0\n"
          b"Thread 7fc9be36fb80;<module> (/x/site.py);L62;main (/x/site.py);L518 1075\n")


# ---- core: a whole ELF core file (tests/fuzz/fuzz_core.c) ----

def core_note(name, ntype, desc):
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name) + 1, len(desc), ntype) + pad(name + b"\0") + pad(desc)


def core_seeds():
    """A two-thread core: NT_PRPSINFO, two NT_PRSTATUS, NT_FILE and NT_AUXV,
    a saved anonymous segment and a file-backed one left out of the core."""
    psinfo = struct.pack("<4c4xQII4i16s80s", b"\0", b"S", b"\0", b"\0", 0, 0, 0, 4242, 1, 4242, 4242,
                         b"python3", b"python3 app.py")
    notes = core_note(b"CORE", 3, psinfo)
    for tid, sig in ((4242, 6), (4243, 0)):
        regs = [0] * 27
        regs[15], regs[16] = 202, 0x401000        # orig_rax, rip
        prstatus = struct.pack("<3ih2xQQ4i64x", sig, 0, 0, sig, 0, 0, tid, 1, tid, tid)
        prstatus += struct.pack("<27Q", *regs) + struct.pack("<i4x", 1)
        notes += core_note(b"CORE", 1, prstatus)
    files = struct.pack("<QQ", 1, 4096) + struct.pack("<QQQ", 0x20000, 0x22000, 0) + b"/bin/sh\0"
    notes += core_note(b"CORE", 0x46494c45, files)
    notes += core_note(b"CORE", 6, struct.pack("<6Q", 3, 0x20040, 6, 4096, 0, 0))
    phoff, nph = 64, 3
    notes_off = phoff + nph * 56
    anon_off = notes_off + len(notes)
    eh = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    eh += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, nph, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), 0, 4)
    ph += struct.pack("<IIQQQQQQ", 1, 6, anon_off, 0x10000, 0, 64, 64, 4096)
    ph += struct.pack("<IIQQQQQQ", 1, 5, anon_off + 64, 0x20000, 0, 0, 0x2000, 4096)
    write("core", "two-threads", eh + ph + notes + bytes(range(64)))


def main():
    walk_seeds()
    asyncio_seeds()
    linetable_seeds()
    pystr_seeds()
    folded_seeds()
    core_seeds()


if __name__ == "__main__":
    main()
