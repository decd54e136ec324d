#!/usr/bin/env python3
"""How the source is laid out: lines per folder, the largest files and
functions, and the include graph's edges against the stages.

    tools/structure.py [--stages MAP.json] [--top N]

Each C file belongs to a stage, by its folder (STAGES below; MAP.json, a
{"path": "stage"} object, can place files otherwise, to measure an older
tree).  A stage may include only the stages it lists in ALLOWED: any other
include between stages is a back edge.  A cycle is a set of modules (a .c
and its .h are one module, and X_impl.h, the internals X's files share,
is X's) that include each other, directly or not.
Exits 1 when there is a back edge or a cycle.
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ('common', 'profiler', 'symbolizer', 'output')

# folder -> stage (the longest matching prefix wins)
STAGES = {
    'common': 'common',
    'profiler/target': 'target',
    'profiler/cpython': 'cpython',
    'profiler/sampling': 'sampling',
    'profiler/commands': 'commands',
    'symbolizer': 'naming',
    'output': 'writing',
}

# stage -> the stages it may include (besides itself)
ALLOWED = {
    'common': set(),
    'target': {'common'},
    'naming': {'common', 'target'},
    'writing': {'common', 'naming'},
    'cpython': {'common', 'target', 'naming'},
    'sampling': {'common', 'target', 'naming', 'cpython', 'writing'},
    'commands': {'common', 'target', 'naming', 'cpython', 'writing', 'sampling'},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
FUNC_START = re.compile(r'^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\([^;]*$')


def sources():
    out = []
    for d in DIRS:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith(('.c', '.h')):
                    out.append(os.path.relpath(os.path.join(base, f), ROOT))
    return sorted(out)


def stage_of(path, overrides):
    if path in overrides:
        return overrides[path]
    best = None
    for prefix, stage in STAGES.items():
        if path == prefix or path.startswith(prefix + '/'):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, stage)
    return best[1] if best else None


def module(path):
    """A .c and its .h are one module; so is X_impl.h, the header X's own
    files share (its internals), with X."""
    base = os.path.splitext(path)[0]
    return base[:-len('_impl')] if base.endswith('_impl') else base


def functions(path, text):
    """(name, lines) of each function defined at column 0."""
    out = []
    lines = text.split('\n')
    i = 0
    while i < len(lines):
        m = FUNC_START.match(lines[i])
        if m and not lines[i].startswith(('typedef', '#')):
            # the body opens at the first line that is "{" at column 0
            j = i
            while j < len(lines) and j < i + 8 and not lines[j].startswith('{'):
                if lines[j].rstrip().endswith(';'):
                    break
                j += 1
            if j < len(lines) and lines[j].startswith('{'):
                k = j + 1
                while k < len(lines) and not lines[k].startswith('}'):
                    k += 1
                out.append((m.group(1), k - i + 1))
                i = k + 1
                continue
        i += 1
    return out


def resolve(inc, path, known):
    for cand in (os.path.normpath(os.path.join(os.path.dirname(path), inc)), os.path.normpath(inc)):
        if cand in known:
            return cand
    return None


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--stages', help='a JSON {path: stage} placing files otherwise')
    ap.add_argument('--top', type=int, default=5)
    a = ap.parse_args()
    overrides = json.load(open(a.stages)) if a.stages else {}
    files = sources()
    known = set(files)
    texts = {f: open(os.path.join(ROOT, f), encoding='utf-8', errors='replace').read() for f in files}

    print('lines per folder:')
    per = {}
    for f in files:
        per[os.path.dirname(f)] = per.get(os.path.dirname(f), 0) + texts[f].count('\n')
    total = sum(per.values())
    for d in sorted(per):
        print('  %-24s %6d  %4.1f%%' % (d + '/', per[d], 100.0 * per[d] / total))
    print('  %-24s %6d' % ('(all)', total))

    print('largest files:')
    for f in sorted(files, key=lambda f: -texts[f].count('\n'))[:a.top]:
        print('  %-40s %5d' % (f, texts[f].count('\n')))

    funcs = []
    for f in files:
        if f.endswith('.c'):
            funcs += [(n, f, ln) for n, ln in functions(f, texts[f])]
    print('largest functions:')
    for n, f, ln in sorted(funcs, key=lambda x: -x[2])[:a.top]:
        print('  %-40s %5d  %s' % (n, ln, f))

    graph, back = {}, []
    for f in files:
        for inc in INCLUDE.findall(texts[f]):
            g = resolve(inc, f, known)
            if not g:
                continue
            if module(g) != module(f):
                graph.setdefault(module(f), set()).add(module(g))
            sf, sg = stage_of(f, overrides), stage_of(g, overrides)
            if sf and sg and sf != sg and sg not in ALLOWED.get(sf, set()):
                back.append((f, sf, g, sg))
    print('back edges (an include against the stages): %d' % len(back))
    for f, sf, g, sg in back:
        print('  %s (%s) includes %s (%s)' % (f, sf, g, sg))
    cyc = cycles(graph)
    print('include cycles: %d' % len(cyc))
    for c in cyc:
        print('  ' + ' <-> '.join(c))
    unplaced = [f for f in files if not stage_of(f, overrides)]
    if unplaced:
        print('files in no stage: %d (%s)' % (len(unplaced), ' '.join(unplaced[:8])))
    return 1 if back or cyc else 0


if __name__ == '__main__':
    sys.exit(main())
