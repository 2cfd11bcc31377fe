"""Checks that every view and SQL-language function of sql/api is defined
after the api objects it names (they are validated when created; plpgsql
bodies are not). Run after reordering or adding to an api file.

    python3 sql/tools/check_order.py
"""
import os, re, sys
sys.path.insert(0, os.path.dirname(__file__))
from split import split, body_and_lead

ROOT = os.path.join(os.path.dirname(__file__), '..')
order = re.findall(r'api_file!\("([a-z_]+\.sql)"\)', open(os.path.join(ROOT, 'src/api.rs')).read())
objs = []  # (file, name, kind, body)
for f in order:
    chunks, _ = split(open(os.path.join(ROOT, 'api', f)).read())
    for ch in chunks:
        _, body = body_and_lead(ch)
        m = re.search(r'create\s+or\s+replace\s+(function|view)\s+([a-z_0-9]+)', body, re.I)
        if m and re.match(r'\s*(create|do)\b', body, re.I):
            objs.append((f, m.group(2), m.group(1).lower(), body))
names = {o[1] for o in objs}
seen, bad = set(), 0
for f, name, kind, body in objs:
    validated = kind == 'view' or re.search(r'language\s+sql', body, re.I)
    if validated:
        text = re.sub(r'--[^\n]*', '', body)
        refs = {n for n in names if n != name and re.search(r'\b%s\b' % n, text)}
        for r in sorted(refs - seen):
            print('%s: %s %s names %s, defined later' % (f, kind, name, r))
            bad += 1
    seen.add(name)
print('%d objects in %d files, %d ordering problems' % (len(objs), len(order), bad))
sys.exit(1 if bad else 0)
