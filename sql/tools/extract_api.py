"""Find the last definition of every function and view of the business
schema in sql/migrations and the statements that belong to it.

This wrote the first draft of sql/api (issue 13); the files were then
edited by hand (comments that told history, file headers, dependency order
checked by check_order.py), so it no longer reproduces them. Kept to show
how the move was made.

    python3 sql/tools/extract_api.py list        # objects and their statements
    python3 sql/tools/extract_api.py write DIR   # the draft files
"""
import os, re, sys, json
sys.path.insert(0, os.path.dirname(__file__))
from split import split, body_and_lead

ROOT = os.path.join(os.path.dirname(__file__), '..')
MIG = os.path.join(ROOT, 'migrations')

ALIASES = {'int': 'integer', 'int4': 'integer', 'int8': 'bigint', 'bool': 'boolean',
           'timestamptz': 'timestamp with time zone', 'varchar': 'character varying',
           'float8': 'double precision', 'decimal': 'numeric'}
MODES = ('in', 'out', 'inout', 'variadic')
MULTI = ('double', 'timestamp', 'character', 'time', 'bit')

def top_split(s, sep=','):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts

def norm_type(t):
    t = re.sub(r'\s+', ' ', t.strip().lower())
    t = re.sub(r'\s*\[\s*\]', '[]', t)
    base = t.rstrip('[]')
    arr = t[len(base):]
    return ALIASES.get(base, base) + arr

def norm_args(argstr, is_def):
    out = []
    for a in top_split(argstr):
        a = a.strip()
        if not a:
            continue
        a = re.split(r'\s+default\s+|\s*=\s*', a, flags=re.I)[0].strip()
        toks = a.split()
        mode = 'in'
        if toks[0].lower() in MODES:
            mode = toks[0].lower(); toks = toks[1:]
        if mode == 'out':
            continue
        if is_def and len(toks) >= 2 and toks[0].lower() not in MULTI:
            toks = toks[1:]
        elif not is_def and len(toks) >= 2 and toks[0].lower() not in MULTI:
            # references may carry names too (grant execute on function f(a text))
            toks = toks[1:]
        out.append(norm_type(' '.join(toks)))
    return ','.join(out)

def paren_after(s, start):
    """The text inside the parenthesis that opens at or after start."""
    i = s.index('(', start)
    depth = 0
    for j in range(i, len(s)):
        if s[j] == '(':
            depth += 1
        elif s[j] == ')':
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
    raise ValueError(s[start:start + 80])

NAME = r'([a-z_][a-z0-9_]*)'

def classify(stmt):
    """-> (kind, keys) ; keys are object keys ('f:name(args)' or 'v:name')."""
    s = stmt.strip()
    low = s.lower()
    m = re.match(r'create\s+(or\s+replace\s+)?function\s+' + NAME + r'\s*\(', low)
    if m:
        args, _ = paren_after(s, m.end() - 1)
        return 'def', ['f:%s(%s)' % (m.group(2), norm_args(args, True))]
    m = re.match(r'create\s+(or\s+replace\s+)?view\s+' + NAME, low)
    if m:
        return 'def', ['v:' + m.group(2)]
    m = re.match(r'do\s+(\$[a-z_]*\$)', low)
    if m and re.search(r'create\s+(or\s+replace\s+)?function', low):
        m2 = re.search(r'create\s+(or\s+replace\s+)?function\s+' + NAME + r'\s*\(', low)
        args, _ = paren_after(s, m2.end() - 1)
        return 'def', ['f:%s(%s)' % (m2.group(2), norm_args(args, True))]
    m = re.match(r"select\s+pin_search_path\('\s*" + NAME + r'\s*\(', low)
    if m:
        args, _ = paren_after(s, m.end() - 1)
        return 'pin', ['f:%s(%s)' % (m.group(1), norm_args(args, False))]
    m = re.match(r'(grant|revoke)\s+execute\s+on\s+function\s+', low)
    if m:
        rest = s[m.end():]
        keys = []
        pos = 0
        while True:
            mm = re.match(r'\s*' + NAME + r'\s*\(', rest[pos:].lower())
            if not mm:
                break
            args, end = paren_after(rest, pos + mm.end() - 1)
            keys.append('f:%s(%s)' % (mm.group(1), norm_args(args, False)))
            pos = end
            mm2 = re.match(r'\s*,', rest[pos:])
            if not mm2:
                break
            pos += mm2.end()
        return 'acl', keys
    m = re.match(r'comment\s+on\s+function\s+' + NAME + r'\s*\(', low)
    if m:
        args, _ = paren_after(s, m.end() - 1)
        return 'comment', ['f:%s(%s)' % (m.group(1), norm_args(args, False))]
    m = re.match(r'alter\s+function\s+' + NAME + r'\s*\(', low)
    if m:
        args, _ = paren_after(s, m.end() - 1)
        return 'alter', ['f:%s(%s)' % (m.group(1), norm_args(args, False))]
    m = re.match(r'comment\s+on\s+(view|column)\s+' + NAME, low)
    if m:
        return 'comment_' + m.group(1), ['v:' + m.group(2)]
    m = re.match(r'(grant|revoke)\s+([a-z, ()_]+?)\s+on\s+(table\s+)?(.*?)\s+(to|from)\s', low, re.S)
    if m and 'function' not in m.group(2):
        names = [x.strip() for x in m.group(4).split(',')]
        return 'relacl', ['v:' + x for x in names]
    return 'other', []

def statements():
    files = sorted(os.listdir(MIG), key=lambda f: int(re.match(r'V(\d+)__', f).group(1)))
    seq = 0
    for f in files:
        text = open(os.path.join(MIG, f)).read()
        chunks, tail = split(text)
        for ch in chunks:
            lead, body = body_and_lead(ch)
            kind, keys = classify(body)
            yield dict(seq=seq, file=f, lead=lead, body=body, kind=kind, keys=keys)
            seq += 1

if __name__ == '__main__':
    stmts = list(statements())
    defs = {}
    for st in stmts:
        if st['kind'] == 'def':
            defs.setdefault(st['keys'][0], []).append(st)
    views = {k for k in defs if k.startswith('v:')}
    if sys.argv[1:] == ['list']:
        for k, ds in sorted(defs.items()):
            print(k, [d['file'].split('__')[0] for d in ds])
        print('--- references without a definition')
        for st in stmts:
            for k in st['keys']:
                if st['kind'] == 'relacl':
                    continue
                if k not in defs:
                    print(st['kind'], k, st['file'], st['body'][:80].replace('\n', ' '))
        print('--- relacl on views')
        for st in stmts:
            if st['kind'] == 'relacl' and any(k in views for k in st['keys']):
                print(st['file'], st['body'][:200].replace('\n', ' '))
        print('--- comment on column of views')
        for st in stmts:
            if st['kind'] == 'comment_column' and any(k.split('.')[0] in views for k in st['keys']):
                print(st['file'], st['body'][:200])

def others_mentioning():
    stmts = list(statements())
    names = set()
    for st in stmts:
        if st['kind'] == 'def':
            names.add(re.match(r'[fv]:([a-z0-9_]+)', st['keys'][0]).group(1))
    for st in stmts:
        if st['kind'] in ('other',):
            low = st['body'].lower()
            if re.match(r'\s*create\s+(table|index|unique index|trigger|policy)', low):
                continue
            hit = [n for n in names if re.search(r'\b' + n + r'\b', low)]
            if hit or 'pin_search_path' in low or 'function' in low:
                print(st['file'], hit, st['body'][:160].replace('\n', ' '))

# Which api file holds an object (by name); the files run in this order.
MODULES = ['platform', 'payloads', 'calendar', 'crm', 'files', 'ticketing',
           'receivables', 'kpi', 'imports', 'analytics']

def module_of(name, first_file):
    if name.startswith('payload_') or name == 'raise_field':
        return 'payloads'
    if name.startswith('business_') or name == 'add_business_minutes':
        return 'calendar'
    if name.startswith(('import_', 'process_import')):
        return 'imports'
    if name.startswith('analytics_'):
        return 'analytics'
    if name.startswith(('kpi_', 'v_kpi_', 'default_kpi', 'seed_kpi')):
        return 'kpi'
    if name.startswith(('ticket', 'tck_', 'v_ticket', 'v_sla', 'v_ops', 'default_sla', 'grant_default_sla')):
        return 'ticketing'
    if name.startswith(('upload_', 'object', 'require_own_object')):
        return 'files'
    if name in ('ppn_amount', 'create_collection_ticket') or name.startswith(
            ('invoice', 'payment', 'v_invoice', 'v_ar_', 'v_dso')):
        return 'receivables'
    v = int(re.match(r'V(\d+)__', first_file).group(1))
    if v in (3, 5, 14) or name in ('lead_update',):
        return 'crm'
    return 'platform'

def bulk_pins(st):
    """select pin_search_path(f::regprocedure) from unnest(array['a(..)', ...])"""
    sigs = re.findall(r"'([a-z_0-9]+\s*\([^']*\))'", st['body'])
    keys = []
    for s in sigs:
        m = re.match(r'([a-z_0-9]+)\s*\(', s)
        args, _ = paren_after(s, m.end() - 1)
        keys.append('f:%s(%s)' % (m.group(1), norm_args(args, False)))
    return keys

def replaceable(body):
    body = re.sub(r'^create\s+function', 'create or replace function', body, flags=re.I)
    body = re.sub(r'^create\s+view', 'create or replace view', body, flags=re.I)
    body = re.sub(r'(\n\s*)create function', r'\1create or replace function', body)
    return body

def one_object_stmt(st, key):
    """A grant/revoke naming several objects, cut to the one of `key`."""
    body = st['body']
    if st['kind'] == 'acl' and len(st['keys']) > 1:
        m = re.match(r'((grant|revoke)\s+execute\s+on\s+function\s+)', body, re.I)
        tail = re.search(r'\s+(to|from)\s+[^;]*;\s*$', body).group(0)
        name, args = re.match(r'f:([a-z0-9_]+)\((.*)\)', key).groups()
        return '%s%s(%s)%s' % (m.group(1), name, args.replace(',', ', '), tail)
    if st['kind'] == 'relacl' and len(st['keys']) > 1:
        m = re.match(r'((grant|revoke)\s+[a-z, ]+?\s+on\s+(table\s+)?)', body, re.I)
        tail = re.search(r'\s+(to|from)\s+[^;]*;\s*$', body).group(0)
        return m.group(1) + key[2:] + tail.replace('\n', ' ').replace('  ', ' ')
    return body

def clean_lead(lead):
    lines = [l for l in lead.split('\n') if l.strip()]
    lines = [l for l in lines if not re.match(r'^--\s*-{5,}', l)]
    return '\n'.join(lines)

def collect():
    stmts = list(statements())
    defs = {}
    for st in stmts:
        if st['kind'] == 'def':
            defs.setdefault(st['keys'][0], []).append(st)
    objs = {}
    for key, ds in defs.items():
        last = ds[-1]
        objs[key] = dict(key=key, defs=ds, last=last, extra=[])
    for idx, st in enumerate(stmts):
        kind = st['kind']
        keys = st['keys']
        if kind == 'other' and 'pin_search_path(f::regprocedure)' in st['body']:
            kind, keys = 'pin', bulk_pins(st)
        for k in keys:
            if kind == 'comment_column':
                continue
            if k not in objs:
                continue
            o = objs[k]
            after = st['seq'] > o['last']['seq']
            if kind in ('pin', 'alter') and after:
                if kind == 'alter' and stmts[idx - 1]['body'].lower().startswith('do $$ begin perform'):
                    o['extra'].append((stmts[idx - 1], stmts[idx - 1]['body']))
                body = st['body'] if st['kind'] != 'other' else "select pin_search_path('%s');" % k[2:].replace(',', ', ')
                o['extra'].append((st, body))
            elif kind in ('acl', 'relacl'):
                o['extra'].append((st, one_object_stmt(st, k)))
            elif kind in ('comment', 'comment_view'):
                o['extra'] = [e for e in o['extra'] if e[0]['kind'] not in ('comment', 'comment_view')]
                o['extra'].append((st, st['body']))
    return objs

def render():
    objs = collect()
    files = {m: [] for m in MODULES}
    for o in sorted(objs.values(), key=lambda o: o['last']['seq']):
        name = re.match(r'[fv]:([a-z0-9_]+)', o['key']).group(1)
        mod = module_of(name, o['defs'][0]['file'])
        first_lead = clean_lead(o['defs'][0]['lead'])
        last_lead = clean_lead(o['last']['lead'])
        parts = []
        hist = ' '.join(d['file'].split('__')[0] for d in o['defs'])
        parts.append('-- @@ %s  [%s]' % (o['key'], hist))
        if first_lead and first_lead != last_lead and len(o['defs']) > 1:
            parts.append(first_lead)
        if last_lead:
            parts.append(last_lead)
        parts.append(replaceable(o['last']['body']).rstrip())
        for st, body in o['extra']:
            parts.append(body.strip())
        files[mod].append('\n'.join(parts))
    return files

if __name__ == '__main__' and sys.argv[1:2] == ['write']:
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for mod, chunks in render().items():
        with open(os.path.join(out, mod + '.sql'), 'w') as f:
            f.write('\n\n'.join(chunks) + '\n')
