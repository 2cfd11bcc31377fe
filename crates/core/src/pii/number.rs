//! The number scanner: finds digit sequences at word boundaries, skips
//! identifiers, amounts and dates, and classifies the rest as NIK, NPWP,
//! phone, card or bank account (see the module documentation of
//! [`super`]).

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

/// Scores of the types that only a keyword or a layout establishes.
const NPWP_DOTTED: f32 = 0.85;
const NPWP_PLAIN: f32 = 0.3;
const NPWP_FROM_NIK: f32 = 0.8;
const BANK_ACCOUNT: f32 = 0.85;

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
        let next = number_at(text, j, limit, floor, out);
        if next > j + 1 {
            floor = next;
        }
        i = next;
    }
}

/// Whether the digit at `j` continues a word (`JP123`, `Ádám1`), an
/// identifier (`INV-2026`, `PO/2026`) or a time (`08:30`).
fn glued_before(text: &[u8], j: usize) -> bool {
    let Some(&prev) = j.checked_sub(1).and_then(|p| text.get(p)) else {
        return false;
    };
    if prev.is_ascii_alphanumeric() || prev == b'_' {
        return true;
    }
    if matches!(prev, b'-' | b'/') {
        return j >= 2 && text[j - 2].is_ascii_alphanumeric();
    }
    // The seconds or minutes of a time (`00:41:03.122833`).
    if prev == b':' {
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

fn separator_class(b: u8) -> u8 {
    match b {
        b' ' => SPACE,
        b'-' => DASH,
        b'.' => DOT,
        b'(' | b')' => PAREN,
        _ => 0,
    }
}

/// Reads the number at `i` (a digit, `+` or `(`), appends its span when it
/// is PII and returns where scanning continues.
fn number_at(text: &[u8], i: usize, limit: usize, floor: usize, out: &mut Vec<Span>) -> usize {
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
    let ctx = context::nearest(text, floor, num.start);
    for k in (1..=num.groups).rev() {
        // A number glued to letters (`3174…abc`) is part of a word.
        if k == num.groups && glued(text, num.end[k - 1]) {
            continue;
        }
        // `0812-3456-7890 2 unit`: a group of one or two digits after a
        // space, following longer groups, is a count, not a number's tail.
        if k >= 2 && num.len[k - 1] <= 2 && num.sep[k - 1] == SPACE && num.len[k - 2] >= 3 {
            continue;
        }
        if let Some((kind, score)) = classify(&num, k, ctx) {
            let mut end = num.end[k - 1];
            if num.paren && text.get(end) == Some(&b')') {
                end += 1;
            }
            out.push(Span {
                kind,
                start: num.start,
                end,
                score,
            });
            return end;
        }
    }
    num.end[0]
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
        // A separator of up to three characters, then a digit.
        let mut q = p;
        sep = 0;
        while q < limit && q - p < MAX_SEPARATOR {
            let class = separator_class(text[q]);
            if class == 0 {
                break;
            }
            sep |= class;
            q += 1;
        }
        if q == p || q >= limit || !text[q].is_ascii_digit() {
            break;
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
    if thousands == num.groups && num.groups >= 2 && len[0] <= 3 {
        return Some(num.end[num.groups - 1]);
    }
    if num.groups >= 3 && !num.plus && !num.paren {
        let same = sep[1] == sep[2] && matches!(sep[1], DASH | DOT);
        let dmy = len[0] <= 2 && len[1] <= 2 && len[2] == 4;
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
    let paren = num.paren || seps & PAREN != 0;
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
    if plain_seps && (n == 15 || (n == 16 && d[0] == 0)) && npwp_check_ok(d) {
        let dotted = n == 15 && len == [2, 3, 3, 1, 3, 3];
        offer(Kind::Npwp, if dotted { NPWP_DOTTED } else { NPWP_PLAIN });
    }
    if (8..=15).contains(&n) && (plain_seps || num.plus || paren) {
        if let Some(score) = phone::score(d, num.plus, paren) {
            offer(Kind::Phone, score);
        }
    }
    if (13..=19).contains(&n)
        && !num.plus
        && !paren
        && seps & !(SPACE | DASH) == 0
        && card::issuer_ok(d)
        && card::luhn_ok(d)
    {
        let grouped = card::printed_groups(len);
        offer(
            Kind::Card,
            if grouped {
                card::SCORE_GROUPED
            } else {
                card::SCORE_PLAIN
            },
        );
    }
    if ctx == Some(Kind::BankAccount) && (MIN_DIGITS..=18).contains(&n) && plain_seps {
        offer(Kind::BankAccount, BANK_ACCOUNT);
    }
    best.filter(|&(_, s)| s >= MIN_SCORE)
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
