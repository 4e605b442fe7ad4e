#!/usr/bin/env python3
"""check_cycles.py DIR...: the files of each directory must not call each
other in a loop (docs/architecture.md draws the resulting module graph).

A file "calls" another when it calls a non-static function defined there.
Prints each directory's file graph and fails on any strongly connected
component of more than one file."""
import glob
import os
import re
import sys

DEF = re.compile(r'^(?!static\b)[A-Za-z_][\w \*]*?\b(kg_?_?[a-z0-9_]+)\([^;{]*?\)\s*\{', re.M | re.S)
CALL = re.compile(r'\b(kg_?_?[a-z0-9_]+)\s*\(')


def graph(directory):
    files = sorted(glob.glob(os.path.join(directory, '*.c')))
    defs = {}
    for f in files:
        for m in DEF.finditer(open(f).read()):
            defs.setdefault(m.group(1), os.path.basename(f))
    g = {}
    for f in files:
        name = os.path.basename(f)
        calls = set(CALL.findall(open(f).read()))
        g[name] = sorted({defs[c] for c in calls if c in defs and defs[c] != name})
    return g


def cycles(g):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, []):
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

    for v in g:
        if v not in index:
            visit(v)
    return out


status = 0
for d in sys.argv[1:]:
    g = graph(d)
    found = cycles(g)
    for f, deps in g.items():
        print(f'{d}/{f} -> {" ".join(deps)}')
    if found:
        print(f'{d}: files that call each other in a loop: {found}')
        status = 1
    else:
        print(f'{d}: no cycle among {len(g)} files')
sys.exit(status)
