"""Split PostgreSQL migration files into statements (comments kept with the
statement that follows them). Used by check_order.py."""
import re

def split(text):
    """Yield (leading_comment_and_ws, statement_text_without_semicolon)."""
    out = []
    i, n = 0, len(text)
    start = 0
    while i < n:
        c = text[i]
        if text.startswith('--', i):
            j = text.find('\n', i)
            i = n if j < 0 else j + 1
        elif text.startswith('/*', i):
            depth, i = 1, i + 2
            while depth and i < n:
                if text.startswith('/*', i):
                    depth, i = depth + 1, i + 2
                elif text.startswith('*/', i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            i += 1
            while i < n:
                if text[i] == "'" and text.startswith("''", i):
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    i += 1
        elif c == '"':
            j = text.find('"', i + 1)
            i = j + 1
        elif c == '$':
            m = re.match(r'\$([A-Za-z_][A-Za-z0-9_]*)?\$', text[i:])
            if m and not (i > 0 and (text[i-1].isalnum() or text[i-1] == '_')):
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                assert j >= 0, text[i:i+80]
                i = j + len(tag)
            else:
                i += 1
        elif c == ';':
            out.append(text[start:i + 1])
            i += 1
            start = i
        else:
            i += 1
    tail = text[start:]
    return out, tail

def body_and_lead(chunk):
    """Separate the leading blank lines/comments from the statement."""
    lines = chunk.split('\n')
    k = 0
    while k < len(lines) and (lines[k].strip() == '' or lines[k].strip().startswith('--')):
        k += 1
    return '\n'.join(lines[:k]), '\n'.join(lines[k:])
