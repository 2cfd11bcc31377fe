#!/usr/bin/env python3
"""Import graph of a Rust crate's src/ at file level, and its strongly
connected components (import loops).

An edge A -> B when file A names a path into module B: `crate::x::y` (in
`use` lines or inline) or `super::...` resolved against A's module. A path
resolves to the deepest module file that exists. `#[cfg(test)] mod tests`
blocks are ignored (tests may reach anywhere), and so are edges from a
module to itself. Usage: scripts/lib/import_loops.py <crate>/src [--top] [--edges] [--tests]"""
import os, re, sys

root = sys.argv[1].rstrip('/')
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] == 'mod':
                rel = rel[:-1]
            if rel in (['lib'], ['main']):
                rel = [] if rel == ['lib'] else ['#main']
            files[tuple(rel)] = p

def strip_tests(text):
    # Drop `#[cfg(test)] mod x { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{', text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {'{': 1, '}': -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return ''.join(out)

def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)

def expand_use(body):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']"""
    body = body.strip()
    m = re.match(r'^(.*?)\{(.*)\}$', body, re.S)
    if not m:
        return [body]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ''
    for ch in inner:
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    parts.append(cur)
    return [p2 for p in parts if p.strip() for p2 in expand_use(prefix + p.strip())]

def resolve(segs):
    segs = [s for s in segs if s and s != 'self' and s != '*']
    for n in range(len(segs), -1, -1):
        if tuple(segs[:n]) in files:
            return tuple(segs[:n])
    return ()

edges = {m: set() for m in files}
for mod, path in files.items():
    text = open(path).read()
    text = strip_comments(text if '--tests' in sys.argv else strip_tests(text))
    base = list(mod) if mod and mod[0] != '#main' else []
    paths = []
    for u in re.finditer(r'\buse\s+((?:crate|super|self)::[^;]*);', text):
        paths += expand_use(u.group(1))
    for p in re.finditer(r'\b((?:crate|super)(?:::\w+)+)', text):
        paths.append(p.group(1))
    # Paths into a child module (`use config::X;`, `gateway::Gateway`), in
    # `use` lines and inline; not after `::` (then it is someone's child).
    children = [m[-1] for m in files if m[:-1] == mod and len(m) == len(mod) + 1]
    for c in children:
        for p in re.finditer(r'(?<![:\w])(' + re.escape(c) + r'(?:::\w+)+)', text):
            paths.append('self::' + p.group(1))
        for u in re.finditer(r'\buse\s+(' + re.escape(c) + r'::[^;]*);', text):
            paths += ['self::' + x for x in expand_use(u.group(1))]
    for p in paths:
        segs = [s.strip() for s in re.sub(r'\s+as\s+\w+', '', p).split('::')]
        if segs[0] == 'crate':
            tgt = resolve(segs[1:])
        else:
            cur = list(base)
            # in a file module `a/b.rs`, `super` is `a`
            while segs and segs[0] in ('super', 'self'):
                if segs[0] == 'super':
                    cur = cur[:-1]
                segs = segs[1:]
            tgt = resolve(cur + segs)
        if tgt != mod and tgt in files and tgt != ():
            edges[mod].add(tgt)

# Tarjan
index, low, onstack, stack, sccs, counter = {}, {}, set(), [], [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); onstack.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in onstack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); onstack.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in files:
    if v not in index:
        strong(v)
name = lambda m: os.path.relpath(files[m], os.path.dirname(root))
loops = [c for c in sccs if len(c) > 1]
print(f"{len(files)} files, {sum(map(len, edges.values()))} edges, "
      f"{len(loops)} loops, {sum(map(len, loops))} files in loops")
for c in sorted(loops, key=len, reverse=True):
    print(f"loop of {len(c)}:", ' '.join(sorted(name(m) for m in c)))
    if '--edges' in sys.argv:
        cs = set(c)
        for m in sorted(c):
            for t in sorted(edges[m] & cs):
                print(f"   {name(m)} -> {name(t)}")

# The same graph with each top-level module (a file or a directory) as one
# node: loops between modules, leaving aside a directory's inner wiring.
if '--top' in sys.argv:
    top = lambda m: m[0] if m else 'lib'
    tedges = {}
    for m, ts in edges.items():
        tedges.setdefault(top(m), set())
        for t in ts:
            if top(t) != top(m):
                tedges[top(m)].add(top(t))
    edges2 = tedges
    index.clear(); low.clear(); onstack.clear(); stack.clear(); sccs.clear()
    edges = edges2
    for v in edges:
        if v not in index:
            strong(v)
    loops = [c for c in sccs if len(c) > 1]
    print(f"top-level modules: {len(edges)}, {len(loops)} loops, {sum(map(len, loops))} modules in loops")
    for c in loops:
        cs = set(c)
        print(f"loop of {len(c)}:", ' '.join(sorted(c)))
        if '--edges' in sys.argv:
            for m in sorted(c):
                print(f"   {m} -> {' '.join(sorted(edges[m] & cs))}")
