//! The number scanner: finds digit sequences at word boundaries, skips
//! identifiers, amounts and dates, and classifies the rest as NIK, NPWP,
//! phone, card or bank account (see the module documentation of
//! [`super`]).

use super::table::Tables;
use super::{card, context, nik, phone, Kind, Span, MIN_SCORE};

/// More digit groups or digits than any PII number has: a longer sequence
/// is cut there (a table row of numbers, a long reference).
const MAX_GROUPS: usize = 10;
const MAX_DIGITS: usize = 20;
/// Up to this many separator characters may join two digit groups
/// (`" - "`, `") "`).
const MAX_SEPARATOR: usize = 3;
/// No PII number has fewer digits (bank accounts: 6).
const MIN_DIGITS: usize = 6;

const SPACE: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 4;
const PAREN: u8 = 8;
/// A line break (`\n`, `\r\n`) between two digit groups: a number
/// wrapped by a chat window, a form or a copy from a PDF. Read as a space.
const NEWLINE: u8 = 16;
/// A `/` right between digits (`021/5551234`): joins the groups of a
/// phone number or a date only.
const SLASH: u8 = 32;

/// Scores of the types that only a keyword or a layout establishes. The
/// NPWP check digit raises the score of an NPWP; it never decides alone
/// whether one is masked (a typo does not make a tax number public).
/// The official layout `XX.XXX.XXX.X-XXX.XXX` (any of `.`, `-`, space,
/// en dash between the groups):
const NPWP_LAYOUT_CHECKED: f32 = 0.9;
const NPWP_LAYOUT: f32 = 0.6;
/// 15 digits split at some of the layout's boundaries (`015234567-407000`,
/// `01.000.013.1-093000`): three groups or more stand alone, two need the
/// check digit or a keyword.
const NPWP_PARTIAL_CHECKED: f32 = 0.7;
const NPWP_PARTIAL: f32 = 0.5;
const NPWP_SPLIT_CHECKED: f32 = 0.45;
const NPWP_SPLIT: f32 = 0.3;
/// Plain 15 digits or 16 (`0`+15, the 2024 form): only with a keyword.
const NPWP_PLAIN_CHECKED: f32 = 0.3;
const NPWP_PLAIN: f32 = 0.2;
const NPWP_FROM_NIK: f32 = 0.8;
const BANK_ACCOUNT: f32 = 0.85;
/// Types a keyword establishes for numbers that fail their structure
/// check (a typo): a NIK/KTP keyword and 15–17 digits, a card keyword and
/// 13–19 digits, a phone keyword and a mobile number that lost its trunk
/// `0` or has a mistyped prefix. Offered only after the keyword, so the
/// score reported is this plus [`context::BOOST`]: a NIK after `NIK`
/// (0.8) outranks a Luhn-valid card number without a keyword (0.75).
const NIK_BY_KEYWORD: f32 = 0.45;
const CARD_BY_KEYWORD: f32 = 0.3;
const PHONE_BY_KEYWORD: f32 = 0.3;
/// A number that is PII in its first groups but continues with `.` or
/// `-` and more digits is masked whole when at least this confident (never
/// half), and otherwise not taken for PII at all (`010.000-26.00012345`, a
/// tax invoice number, does not start with a landline).
const WHOLE_IF_CONTINUED: f32 = 0.6;

/// A number as written: digit groups and how they are joined.
struct Number {
    start: usize,
    plus: bool,
    paren: bool,
    digits: [u8; MAX_DIGITS],
    /// Per group: its length, the byte offset just after it, the digits
    /// up to its end, and the separator classes before it (0 for the first).
    len: [u8; MAX_GROUPS],
    end: [usize; MAX_GROUPS],
    upto: [u8; MAX_GROUPS],
    sep: [u8; MAX_GROUPS],
    groups: usize,
    /// The first group after a line break inside the number, if any.
    newline: Option<usize>,
}

/// Bytes that can start a number: digits, `+`, `(`.
const STARTS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = true;
        b += 1;
    }
    t[b'+' as usize] = true;
    t[b'(' as usize] = true;
    t
};

/// Every number-like PII span of `text`, appended to `out` in order.
/// E-mail spans (sorted) are skipped.
///
/// The loop jumps from one byte that can start a number to the next (a
/// table lookup per byte, nothing else); only there does it look back to
/// decide whether the number is glued to a word or an identifier.
pub(super) fn scan(text: &[u8], emails: &[Span], out: &mut Vec<Span>) {
    let n = text.len();
    let mut i = 0;
    let mut next_email = 0;
    // Where the previous number ended: keywords before it are not context.
    let mut floor = 0;
    let mut tables = Tables::default();
    while i < n {
        let limit = emails.get(next_email).map_or(n, |e| e.start);
        if i >= limit {
            // A skipped word ran into the next address.
            if let Some(e) = emails.get(next_email) {
                i = e.end.max(i);
                next_email += 1;
            }
            continue;
        }
        let Some(off) = text[i..limit].iter().position(|&b| STARTS[usize::from(b)]) else {
            match emails.get(next_email) {
                Some(e) => {
                    i = e.end.max(i);
                    next_email += 1;
                    continue;
                }
                None => return,
            }
        };
        let j = i + off;
        if text[j].is_ascii_digit() && glued_before(text, j) {
            i = skip_word(text, j);
            continue;
        }
        let next = number_at(text, j, limit, floor, &mut tables, out);
        if next > j + 1 {
            floor = next;
        }
        i = next;
    }
}

/// Whether the digit at `j` continues a word (`JP123`, `Ádám1`), an
/// identifier (`INV-2026`, `PO/2026`) or a time (`08:30`) — unless that
/// word is a keyword typed without a space (`HP081234567890`,
/// `KTP-3174…`, `npwp01.234…`, `NoRek.123…`): the number is its value.
fn glued_before(text: &[u8], j: usize) -> bool {
    glued_to_text(text, j) && !keyword_glued(text, j)
}

/// Whether a keyword (see [`context::keyword`]) ends right before the
/// digit at `j`, or one character before it (`-`, `.`, `/`, `#`, `=`).
fn keyword_glued(text: &[u8], j: usize) -> bool {
    let mut end = j;
    if end > 0 && matches!(text[end - 1], b'-' | b'.' | b'/' | b'#' | b'=') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && end - start <= context::MAX_WORD && text[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    if start == end || end - start > context::MAX_WORD {
        return false;
    }
    // The whole word: not the tail of an identifier (`X1HP0812`).
    if start > 0 && (text[start - 1].is_ascii_digit() || text[start - 1] == b'_') {
        return false;
    }
    let mut word = [0u8; context::MAX_WORD];
    for (w, &b) in word.iter_mut().zip(&text[start..end]) {
        *w = b.to_ascii_lowercase();
    }
    context::keyword(&word[..end - start]).is_some()
}

fn glued_to_text(text: &[u8], j: usize) -> bool {
    let Some(&prev) = j.checked_sub(1).and_then(|p| text.get(p)) else {
        return false;
    };
    if prev.is_ascii_alphanumeric() || prev == b'_' {
        return true;
    }
    if matches!(prev, b'-' | b'/') {
        // `wa.me/6281234567890`: a WhatsApp link is a phone number.
        if prev == b'/' && j >= 6 && text[j - 6..j - 1].eq_ignore_ascii_case(b"wa.me") {
            return false;
        }
        return j >= 2 && text[j - 2].is_ascii_alphanumeric();
    }
    // The seconds or minutes of a time (`00:41:03.122833`).
    if prev == b':' {
        return j >= 2 && text[j - 2].is_ascii_digit();
    }
    // The rest of a number that was not PII or was skipped with its word
    // (`Rp6.070.000.000`, `047.086-25.518…`): never a number of its own.
    if prev == b'.' {
        return j >= 2 && text[j - 2].is_ascii_digit();
    }
    if prev >= 0x80 {
        let mut k = j - 1;
        while k > 0 && text[k] & 0xC0 == 0x80 {
            k -= 1;
        }
        return char_at(text, k).1;
    }
    false
}

/// The byte length of the UTF-8 character starting at `i` and whether it is
/// alphanumeric. `text` is valid UTF-8 and `i` a character boundary.
fn char_at(text: &[u8], i: usize) -> (usize, bool) {
    let len = match text[i] {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    };
    let end = (i + len).min(text.len());
    let alnum = std::str::from_utf8(&text[i..end])
        .ok()
        .and_then(|s| s.chars().next())
        .is_some_and(char::is_alphanumeric);
    (len, alnum)
}

/// Whether the character at `i` belongs to a word (so a number ending just
/// before it is glued to letters).
fn word_char_at(text: &[u8], i: usize) -> bool {
    match text.get(i) {
        Some(&b) if b >= 0x80 => char_at(text, i).1,
        Some(&b) => b.is_ascii_alphanumeric() || b == b'_',
        None => false,
    }
}

/// Whether a number ending at `end` continues as a word or an identifier
/// (`3174…abc`, `02195519-b672-…`).
fn glued(text: &[u8], end: usize) -> bool {
    word_char_at(text, end)
        || (matches!(text.get(end), Some(b'-' | b'/'))
            && text.get(end + 1).is_some_and(u8::is_ascii_alphabetic))
}

/// The end of a UUID (`8-4-4-4-12` hex digits) starting at `i`.
fn uuid_at(text: &[u8], i: usize) -> Option<usize> {
    let s = text.get(i..i + 36)?;
    let ok = s.iter().enumerate().all(|(k, &b)| {
        if matches!(k, 8 | 13 | 18 | 23) {
            b == b'-'
        } else {
            b.is_ascii_hexdigit()
        }
    });
    (ok && !text.get(i + 36).is_some_and(u8::is_ascii_alphanumeric)).then_some(i + 36)
}

/// The end of the word or identifier at `i`: letters, digits and `_`,
/// continued over `-` and `/` between alphanumerics, so `INV-2026-000123`
/// and `PO/2026/17` are skipped whole.
fn skip_word(text: &[u8], mut i: usize) -> usize {
    loop {
        while i < text.len() {
            let b = text[i];
            if b.is_ascii_alphanumeric() || b == b'_' {
                i += 1;
            } else if b >= 0x80 {
                let (len, alnum) = char_at(text, i);
                if !alnum {
                    return i;
                }
                i += len;
            } else {
                break;
            }
        }
        match (text.get(i), text.get(i + 1)) {
            (Some(b'-' | b'/'), Some(next)) if next.is_ascii_alphanumeric() => i += 1,
            _ => return i,
        }
    }
}

/// The separator class and byte length of the character at `i`: space,
/// no-break spaces (U+00A0, U+202F: word processors and chat exports),
/// `-` and the Unicode dashes (U+2010–U+2014, U+2212: autocorrect turns
/// `-` into an en dash), `.`, parentheses; `(0, 0)` for anything else.
fn separator_at(text: &[u8], i: usize) -> (u8, usize) {
    match text[i] {
        b' ' => (SPACE, 1),
        b'-' => (DASH, 1),
        b'.' => (DOT, 1),
        b'(' | b')' => (PAREN, 1),
        b'\n' | b'\r' => (NEWLINE, 1),
        0xC2 if text.get(i + 1) == Some(&0xA0) => (SPACE, 2),
        0xE2 => match (text.get(i + 1), text.get(i + 2)) {
            (Some(0x80), Some(0x90..=0x94)) => (DASH, 3),
            (Some(0x80), Some(0xAF)) => (SPACE, 3),
            (Some(0x88), Some(0x92)) => (DASH, 3),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

/// Reads the number at `i` (a digit, `+` or `(`), appends its span when it
/// is PII and returns where scanning continues.
fn number_at(
    text: &[u8],
    i: usize,
    limit: usize,
    floor: usize,
    tables: &mut Tables,
    out: &mut Vec<Span>,
) -> usize {
    if let Some(end) = uuid_at(text, i) {
        return end;
    }
    let Some(num) = read(text, i, limit) else {
        // A lone `+`/`(`, or a digit run too long for any PII number.
        let mut j = i + 1;
        while j < limit && text[j].is_ascii_digit() {
            j += 1;
        }
        return if j < limit && word_char_at(text, j) {
            skip_word(text, j)
        } else {
            j
        };
    };
    let total = usize::from(num.upto[num.groups - 1]);
    if total < MIN_DIGITS {
        return num.end[0];
    }
    if let Some(end) = amount_or_date(text, &num) {
        return end;
    }
    // In a table row, the cell's keyword or its column's header; elsewhere
    // the nearest keyword before the number.
    let cell = tables.context(text, floor, num.start);
    let ctx = cell.unwrap_or_else(|| context::nearest(text, floor, num.start));
    // Digits on two lines are one number when those on the first are no
    // PII on their own (`NIK 3174011203\n900001`, `0812-3456-\n7890`), or
    // when the next line adds at most four digits (any number of them to a
    // bank account, whose length only its keyword bounds) and the whole is
    // PII of the same type (`0812345678\n90`: err towards masking) — not
    // two phone numbers on two lines, nor a table's next row (`…\n2,Sri`).
    // A line that ends with `-` or `.` before the digits of the next, or a
    // next line that starts with one, is always continued.
    let continued = num.newline.is_some_and(|g| num.sep[g] & (DASH | DOT) != 0);
    let (wrapped_ok, wrapped_tail) = match num.newline.map(|g| (g, classify(&num, g, ctx))) {
        None | Some((_, None)) => (true, false),
        _ if continued => (true, false),
        Some((g, Some((kind, _)))) => {
            let all = num.groups;
            let after = text[num.end[all - 1]..]
                .iter()
                .find(|&&b| b != b' ')
                .copied();
            let tail = (num.upto[all - 1] - num.upto[g - 1] <= 4 || kind == Kind::BankAccount)
                && cell.is_none()
                && !matches!(after, Some(b',' | b';' | b'|' | b'\t'))
                && classify(&num, all, ctx).is_some_and(|(k, _)| k == kind);
            (tail, tail)
        }
    };
    let mut k = num.groups;
    while k >= 1 {
        let groups = k;
        k -= 1;
        if !wrapped_ok && num.newline.is_some_and(|g| groups > g) {
            continue;
        }
        // A number glued to letters (`3174…abc`) is part of a word.
        if groups == num.groups && glued(text, num.end[groups - 1]) {
            continue;
        }
        let Some((kind, score)) = classify(&num, groups, ctx) else {
            continue;
        };
        // `0812-3456-7890 2 unit`: a group of one or two digits after a
        // space, following a complete number, is a count, not the number's
        // tail. Not when the number is incomplete without it (`0814 9768
        // 74`) nor when it is grouped in pairs (`0812 3456 78 90`).
        if groups >= 2
            && !(wrapped_tail && groups == num.groups)
            && num.len[groups - 1] <= 2
            && num.sep[groups - 1] == SPACE
            && count_after(&num, groups - 1)
            && classify(&num, groups - 1, ctx).is_some()
        {
            continue;
        }
        // Never half-mask: when more digits follow with no space
        // (`…-093.000`), take the whole number or nothing.
        let mut last = groups;
        if groups < num.groups && num.sep[groups] & SPACE == 0 {
            if score < WHOLE_IF_CONTINUED {
                continue;
            }
            while last < num.groups && num.sep[last] & SPACE == 0 {
                last += 1;
            }
            if last == num.groups && glued(text, num.end[last - 1]) {
                continue;
            }
        }
        // An opening parenthesis that no `)` inside the number closes
        // encloses it (`istri (0811-9876-543)`): not part of the span.
        let inner_paren = num.sep[1..last].iter().any(|&s| s & PAREN != 0);
        let start = if num.paren && !inner_paren {
            num.start + 1
        } else {
            num.start
        };
        let end = num.end[last - 1];
        out.push(Span {
            kind,
            start,
            end,
            score,
        });
        return end;
    }
    num.end[0]
}

/// Whether a short group after the first `k` groups of `num` reads as a
/// count rather than the end of the number: the groups before it end in
/// four digits or more, or are not joined by spaces alone.
fn count_after(num: &Number, k: usize) -> bool {
    let spaced = num.sep[1..k].iter().all(|&s| s == SPACE);
    num.len[k - 1] >= 4 || (num.len[k - 1] >= 3 && !spaced) || k == 1
}

/// Parses digit groups from `i`; `None` when there is no digit where one
/// must be or the first run is longer than [`MAX_DIGITS`].
fn read(text: &[u8], i: usize, limit: usize) -> Option<Number> {
    let mut num = Number {
        start: i,
        plus: false,
        paren: false,
        digits: [0; MAX_DIGITS],
        len: [0; MAX_GROUPS],
        end: [0; MAX_GROUPS],
        upto: [0; MAX_GROUPS],
        sep: [0; MAX_GROUPS],
        groups: 0,
        newline: None,
    };
    let mut p = i;
    if text[p] == b'(' {
        num.paren = true;
        p += 1;
    }
    if p < limit && text[p] == b'+' {
        num.plus = true;
        p += 1;
    }
    let mut nd = 0;
    let mut sep = 0;
    loop {
        let from = p;
        while p < limit && text[p].is_ascii_digit() {
            p += 1;
        }
        let run = p - from;
        if run == 0 || nd + run > MAX_DIGITS {
            if num.groups == 0 {
                return None;
            }
            break;
        }
        for (slot, &b) in num.digits[nd..].iter_mut().zip(&text[from..p]) {
            *slot = b - b'0';
        }
        nd += run;
        let g = num.groups;
        num.len[g] = run as u8;
        num.end[g] = p;
        num.upto[g] = nd as u8;
        num.sep[g] = sep;
        num.groups += 1;
        if num.groups == MAX_GROUPS {
            break;
        }
        // A separator of up to three characters (a line break does not
        // count, but only one may be in it: a blank line ends the number),
        // then a digit.
        let mut q = p;
        sep = 0;
        let mut chars = 0;
        let mut breaks = 0;
        while q < limit && chars < MAX_SEPARATOR {
            let (class, len) = separator_at(text, q);
            if class == 0 || q + len > limit {
                // `021/5551234`, `0812/3456/7890`: a slash right between
                // digits joins them like a dash (dates are skipped whole,
                // `PO/2026/17` is an identifier).
                if text[q] == b'/' && q == p && text.get(q + 1).is_some_and(u8::is_ascii_digit) {
                    sep |= SLASH;
                    q += 1;
                }
                break;
            }
            if class == NEWLINE {
                breaks += usize::from(text[q] == b'\n');
                if breaks > 1 {
                    q = p;
                    break;
                }
                sep |= SPACE;
                q += len;
                continue;
            }
            // A Unicode dash joins groups only between digits (`1–093`),
            // a line break on either side of it aside (`1017⏎–0721`); with
            // spaces (` — `) it is punctuation between two things.
            let only_breaks = text[p..q].iter().all(|&b| matches!(b, b'\n' | b'\r'));
            let digit_or_break = |b: &u8| b.is_ascii_digit() || matches!(b, b'\n' | b'\r');
            if len > 1
                && class == DASH
                && (!only_breaks || !text.get(q + len).is_some_and(digit_or_break))
            {
                q = p;
                break;
            }
            sep |= class;
            q += len;
            chars += 1;
        }
        if q == p || q >= limit || !text[q].is_ascii_digit() {
            break;
        }
        if breaks > 0 && num.newline.is_none() {
            num.newline = Some(num.groups);
        }
        p = q;
    }
    Some(num)
}

/// The end of an amount (`Rp 1.500.000`, `IDR 2,5 juta`, thousands groups)
/// or a date (`15-01-2026`, `2026.01.15`) at the start of `num`, to be
/// skipped; `None` for anything else.
fn amount_or_date(text: &[u8], num: &Number) -> Option<usize> {
    let len = &num.len[..num.groups];
    let sep = &num.sep[..num.groups];
    // A currency right before the number.
    let before = &text[num.start.saturating_sub(6)..num.start];
    let trimmed = before
        .iter()
        .rposition(|&b| b != b' ' && b != b'.')
        .map_or(&before[..0], |p| &before[..=p]);
    let currency = [&b"rp"[..], b"idr", b"usd", b"$", b"sgd", b"eur"]
        .iter()
        .any(|c| {
            trimmed.len() >= c.len()
                && trimmed[trimmed.len() - c.len()..].eq_ignore_ascii_case(c)
                && (trimmed.len() == c.len()
                    || !trimmed[trimmed.len() - c.len() - 1].is_ascii_alphabetic())
        });
    // Thousands groups: 1–3 digits, then groups of exactly three after dots.
    let thousands = 1 + len[1..]
        .iter()
        .zip(&sep[1..])
        .take_while(|&(&l, &s)| l == 3 && s == DOT)
        .count();
    if currency {
        return Some(num.end[thousands - 1]);
    }
    // Amounts do not start with 0 (`081.234.567.890` is a phone number).
    if thousands == num.groups && num.groups >= 2 && len[0] <= 3 && num.digits[0] != 0 {
        return Some(num.end[num.groups - 1]);
    }
    if num.groups >= 3 && !num.plus && !num.paren {
        let same = sep[1] == sep[2] && matches!(sep[1], DASH | DOT | SLASH);
        // `30/04/26`: with slashes, a two-digit year too (chat exports).
        let year = len[2] == 4 || (sep[1] == SLASH && len[2] == 2);
        let dmy = len[0] <= 2 && len[1] <= 2 && year;
        let ymd = len[0] == 4 && len[1] <= 2 && len[2] <= 2;
        if same && (dmy || ymd) {
            return Some(num.end[2]);
        }
    }
    None
}

/// The best type of the first `k` groups of `num` and its score, if any
/// reaches [`MIN_SCORE`].
fn classify(num: &Number, k: usize, ctx: Option<Kind>) -> Option<(Kind, f32)> {
    let d = &num.digits[..usize::from(num.upto[k - 1])];
    let len = &num.len[..k];
    let seps = num.sep[..k].iter().fold(0, |a, &s| a | s);
    // Parentheses inside the number (`(021) 555…`, `+62 (0)21`); one that
    // only opens before it encloses it and says nothing of its type.
    let paren = seps & PAREN != 0;
    let plain_seps = seps & !(SPACE | DASH | DOT) == 0 && !num.plus && !paren;
    let n = d.len();

    let mut best: Option<(Kind, f32)> = None;
    let mut offer = |kind: Kind, base: f32| {
        let score = if ctx == Some(kind) {
            (base + context::BOOST).min(1.0)
        } else {
            base
        };
        let better = match best {
            None => true,
            Some((k, s)) => score > s || (score == s && kind < k),
        };
        if better {
            best = Some((kind, score));
        }
    };

    if n == 16 && plain_seps && nik::layout_ok(d) {
        offer(Kind::Nik, nik::SCORE);
        if ctx == Some(Kind::Npwp) {
            offer(Kind::Npwp, NPWP_FROM_NIK);
        }
    }
    // A NIK/KTP keyword makes 15–17 digits a NIK, typos in the birth date
    // or a digit too many or too few included.
    if ctx == Some(Kind::Nik) && (15..=17).contains(&n) && plain_seps {
        offer(Kind::Nik, NIK_BY_KEYWORD);
    }
    if plain_seps {
        if let Some(score) = npwp_score(d, len) {
            offer(Kind::Npwp, score);
        }
    }
    let phone_seps = seps & !(SPACE | DASH | DOT | SLASH) == 0;
    if (8..=15).contains(&n) && (phone_seps || num.plus || paren) {
        if let Some(score) = phone::score(d, num.plus, paren) {
            offer(Kind::Phone, score);
        } else if ctx == Some(Kind::Phone) && phone::typed(d, num.plus) {
            offer(Kind::Phone, PHONE_BY_KEYWORD);
        }
    }
    let card_seps = !num.plus && !paren && seps & !(SPACE | DASH) == 0;
    if (13..=19).contains(&n) && card_seps {
        if card::issuer_ok(d) && card::luhn_ok(d) {
            let grouped = card::printed_groups(len);
            offer(
                Kind::Card,
                if grouped {
                    card::SCORE_GROUPED
                } else {
                    card::SCORE_PLAIN
                },
            );
        } else if ctx == Some(Kind::Card) {
            // A mistyped card number after a card keyword.
            offer(Kind::Card, CARD_BY_KEYWORD);
        }
    }
    if ctx == Some(Kind::BankAccount) && (MIN_DIGITS..=18).contains(&n) && plain_seps {
        offer(Kind::BankAccount, BANK_ACCOUNT);
    }
    best.filter(|&(_, s)| s >= MIN_SCORE)
}

/// Boundaries of the NPWP layout `XX.XXX.XXX.X-XXX.XXX`: digits before
/// each separator.
const NPWP_BOUNDARIES: [u8; 5] = [2, 5, 8, 9, 12];

/// The NPWP score of digits `d` written in groups of lengths `len` (before
/// context), if they can be one: 15 digits in the official layout or split
/// only at its boundaries, or plain 15/16 digits (those need a keyword).
/// The check digit raises the score, never decides alone.
fn npwp_score(d: &[u8], len: &[u8]) -> Option<f32> {
    let n = d.len();
    if n != 15 && n != 16 {
        return None;
    }
    let checked = npwp_check_ok(d);
    let pick = |yes: f32, no: f32| Some(if checked { yes } else { no });
    if n == 15 && len.len() >= 2 {
        let mut at = 0;
        let on_boundaries = len[..len.len() - 1].iter().all(|&l| {
            at += l;
            NPWP_BOUNDARIES.contains(&at)
        });
        if on_boundaries && d.iter().any(|&x| x != 0) {
            return match len.len() {
                6 => pick(NPWP_LAYOUT_CHECKED, NPWP_LAYOUT),
                3..=5 => pick(NPWP_PARTIAL_CHECKED, NPWP_PARTIAL),
                _ => pick(NPWP_SPLIT_CHECKED, NPWP_SPLIT),
            };
        }
    }
    pick(NPWP_PLAIN_CHECKED, NPWP_PLAIN)
}

/// The NPWP check digit: the 9th digit of the 15-digit NPWP completes a
/// Luhn (mod 10) number over the first nine (so, from the "0"+15 form, over
/// digits 2–10). DJP does not publish the algorithm; it is the one
/// documented by python-stdnum (`stdnum.id.npwp`), Perl's
/// Business::ID::NPWP and the OECD's TIN sheet for Indonesia, verified
/// against published NPWPs there, and the same rule as
/// [`crate::normalize::npwp_valid`] (a test keeps the two in agreement).
/// An all-zero number is not an NPWP.
pub(super) fn npwp_check_ok(d: &[u8]) -> bool {
    let d15 = if d.len() == 16 { &d[1..] } else { d };
    d15.len() == 15 && d15.iter().any(|&x| x != 0) && card::luhn_ok(&d15[..9])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::npwp_valid;

    #[test]
    fn npwp_check_agrees_with_the_normaliser() {
        let mut state: u64 = 99;
        for _ in 0..5_000 {
            let mut d = [0u8; 15];
            for x in &mut d {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                *x = ((state >> 33) % 10) as u8;
            }
            let text: String = d.iter().map(|&x| char::from(b'0' + x)).collect();
            assert_eq!(npwp_check_ok(&d), npwp_valid(&text), "{text}");
            let mut d16 = [0u8; 16];
            d16[1..].copy_from_slice(&d);
            assert_eq!(
                npwp_check_ok(&d16),
                npwp_valid(&format!("0{text}")),
                "0{text}"
            );
        }
    }
}
