"""Prints, for the interpreter that runs it, the opcode facts pystrobe's
walker keeps per CPython version (profiler/cpython/opcodes.c, struct
opcode_facts of symbolizer/codefacts.h):

  caches     3.11+: how many 2-byte cache units follow each opcode, as 256
             characters ('0'-'9', 'a'-'f'; 'x': an opcode whose size the
             byte does not tell, such as INSTRUMENTED_LINE)
  quiet      opcodes during which the frame calls nothing: loads, returns,
             the start of a frame
  operators  opcodes whose Python callee, if any, is a special method
             (__add__, __lt__, __bool__...) called from C: binary, in-place
             and unary operators, rich comparisons, jumps on a truth test
  pushes     3.11+: opcodes whose instruction may push a Python frame with no
             C call between (its family includes a specialization that does)
  resumes    3.11+: those of them that resume a generator (its frame is not
             on the data stack)
  returns    returns: 3.11+ RETURN_VALUE, RETURN_CONST and RETURN_GENERATOR
             (which leaves the data stack for the generator): from 3.12 a
             returning frame is unlinked before it is cleared, so that one
             found at a return has left the stack; <= 3.10 RETURN_VALUE and
             YIELD_VALUE: a frame there is leaving its caller

Families are taken whole (every specialization of an instruction shares its
base's caches and is listed with it), because the bytecode pystrobe keeps
was copied once, while specialization rewrites instructions in place within
their family.  Run: pythonX.Y tools/opcode-tables.py (2.7 and 3.6+).
"""
from __future__ import print_function

import dis
import opcode
import sys

PUSH_FAMILIES = set(["CALL", "CALL_KW", "CALL_FUNCTION_EX", "BINARY_SUBSCR", "LOAD_ATTR",
                     "FOR_ITER", "SEND"])
RESUME_FAMILIES = set(["FOR_ITER", "SEND"])
RETURNS = set(["RETURN_VALUE", "RETURN_CONST", "RETURN_GENERATOR"])
OLD_RETURNS = set(["RETURN_VALUE", "YIELD_VALUE"])
QUIET = set(["LOAD_FAST", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST", "RETURN_GENERATOR",
             "RESUME", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
             "LOAD_FAST__LOAD_FAST", "LOAD_FAST__LOAD_CONST", "LOAD_CONST__LOAD_FAST",
             "RESUME_CHECK", "LOAD_FAST_BORROW", "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
             "LOAD_SMALL_INT"])
# 3.13: POP_JUMP_IF_* test a bool or None only (TO_BOOL, which may call __bool__, comes first).
QUIET_313 = set(["POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "POP_JUMP_IF_NONE",
                 "POP_JUMP_IF_NOT_NONE"])


def is_operator(name, v):
    if name in ("COMPARE_OP", "TO_BOOL", "BINARY_OP"):
        return True
    # Jumps on a truth test call __bool__ or __len__ (from 3.13 they test
    # bools only: TO_BOOL comes first).
    if v < (3, 13) and name.startswith(("POP_JUMP_IF_", "JUMP_IF_", "POP_JUMP_FORWARD_IF_",
                                        "POP_JUMP_BACKWARD_IF_")):
        return not name.endswith("NONE")
    if name.startswith("BINARY_SUBSCR") or name.startswith("BINARY_SLICE"):
        return False
    return name.startswith(("UNARY_", "BINARY_", "INPLACE_"))


def bitmap(nums):
    b = [0] * 32
    for n in nums:
        b[n >> 3] |= 1 << (n & 7)
    return "{" + ", ".join("0x%02x" % x for x in b) + "}"


def main():
    v = sys.version_info[:2]
    if v >= (3, 13):
        allmap = dict(opcode.opmap)
        allmap.update(opcode._specialized_opmap)
        caches = dict(opcode._inline_cache_entries)
    elif v >= (3, 11):
        allmap = dict(dis._all_opmap)
        caches = dict((opcode.opname[i], n) for i, n in enumerate(opcode._inline_cache_entries)
                      if n)
    else:
        allmap = dict(opcode.opmap)
        caches = None
    family = {}
    for base, specs in getattr(opcode, "_specializations", {}).items():
        family[base] = base
        for s in specs:
            family[s] = base
    quiet_names = QUIET | (QUIET_313 if v >= (3, 13) else set())
    push_families = set(PUSH_FAMILIES)
    # 3.14+: subscripts are BINARY_OP, whose BINARY_OP_SUBSCR_GETITEM pushes
    # the frame of a class's __getitem__ itself.
    if family.get("BINARY_OP_SUBSCR_GETITEM") == "BINARY_OP":
        push_families.add("BINARY_OP")

    def base_of(name):
        if name.startswith("INSTRUMENTED_") and name[13:] in allmap:
            name = name[13:]
        if name == "ENTER_EXECUTOR":
            name = "JUMP_BACKWARD"
        return family.get(name, name)

    table = ["0"] * 256
    sets = dict((k, []) for k in ("quiet", "operators", "pushes", "resumes", "returns"))
    for name, num in sorted(allmap.items(), key=lambda kv: kv[1]):
        if num >= 256:
            continue
        b = base_of(name)
        if name in ("INSTRUMENTED_LINE", "INSTRUMENTED_INSTRUCTION"):
            table[num] = "x"
        elif caches is not None:
            table[num] = "0123456789abcdef"[caches.get(b, 0)]
        if name in quiet_names or b in quiet_names:
            sets["quiet"].append(num)
        if is_operator(b, v):
            sets["operators"].append(num)
        if caches is not None:
            if b in push_families:
                sets["pushes"].append(num)
            if b in RESUME_FAMILIES:
                sets["resumes"].append(num)
            if b in RETURNS:
                sets["returns"].append(num)
        elif b in OLD_RETURNS:
            sets["returns"].append(num)
    print("    /* %d.%d (tools/opcode-tables.py) */" % v)
    print("    {%d, %d, {" % v)
    if caches is None:
        print("        .caches = NULL,")
    else:
        print('        .caches = "%s"' % "".join(table[:128]))
        print('                  "%s",' % "".join(table[128:]))
    for k in ("quiet", "operators", "pushes", "resumes", "returns"):
        if caches is None and k in ("pushes", "resumes"):
            continue
        print("        /* %s */" % " ".join(map(str, sets[k])))
        print("        .%s = %s," % (k, bitmap(sets[k])))
    if caches is not None:
        # 3.11 and 3.12 point a calling frame's prev_instr at the last cache
        # unit of its instruction while a frame it pushed runs; 3.13 keeps
        # instr_ptr at the instruction's start.
        print("        .calls_at_cache = %d," % (1 if v < (3, 13) else 0))
        print("        .returns_unlinked = %d," % (1 if v >= (3, 12) else 0))
    # Before 3.9 COMPARE_OP also does `in`, `is` and exception matches
    # (oparg 6 and up): `in` may run a generator.
    if v < (3, 9):
        print("        .compare_op = %d," % allmap["COMPARE_OP"])
    # 2.7's arguments are two bytes after the opcode; wordcode's one.
    if v < (3, 0):
        print("        .oparg16 = 1,")
    print("    }},")


main()
