//! PII detection and masking for Indonesian business text (feature C5).
//!
//! [`detect`] finds NIK, NPWP, phone numbers, e-mail addresses, payment
//! card numbers and bank account numbers in free text and returns
//! non-overlapping spans (byte offsets, sorted) with a type and a score;
//! [`mask`] replaces each span with `[REDACTED_<TYPE>]`; [`partial`] holds
//! the display maskers (`b***@gmail.com`, `+62 8**-****-**90`, …).
//!
//! How it works, without regular expressions (allocation: the output
//! vector only):
//!
//! * the text is folded first ([`fold`]): decimal digits of any script and
//!   full-width forms become ASCII, spaces of any width a space, invisible
//!   characters are dropped and digits typed one by one (`0 8 1 2 …`) are
//!   joined; spans found in the folded text are mapped back to the
//!   original's characters, whole;
//! * e-mail addresses are found from each `@` ([`email`]);
//! * every other candidate is a *number*: digit groups joined by single
//!   short separators (space, `-`, `.`, parentheses, a leading `+`, a `/`
//!   right between digits, a line break when the first line alone is no
//!   PII) that starts at a word boundary — digits glued to letters or to
//!   an identifier (`INV-2026-000123`, `PO/2026/17`) are never candidates,
//!   unless the word is a keyword (`HP081234567890`, `KTP-3174…`)
//!   ([`number`]);
//! * each number is checked against the structure of every type (NIK
//!   layout and province code, NPWP layout, phone prefixes and lengths,
//!   card Luhn and issuer prefix), longest digit-group prefix first, and
//!   scored; checksums (NPWP check digit, Luhn) raise a score but never
//!   alone decide whether something is masked when the layout or a
//!   keyword says what it is; a keyword in the 40 bytes before it (`NIK`,
//!   `KTP`, `NPWP`, `HP`, `WA`, `telp`, `rekening`, …) raises the score of
//!   its type and decides the keyword-only types (bank accounts, plain
//!   15/16-digit NPWPs, typo'd NIKs, cards and phones) — Presidio's context
//!   enhancement ([`context`]); in a table pasted as text the keyword is
//!   the cell's own or its column header's ([`table`]);
//! * a span is never part of a number: a number whose first groups are
//!   PII but that continues with `.`/`-` and more digits is taken whole or
//!   not at all;
//! * when several types fit the same number the highest score wins, then
//!   the longer span, then the order of [`Kind`]; candidates below
//!   [`MIN_SCORE`] are dropped. Amounts (`Rp 1.500.000`, thousands groups)
//!   and dates (`15-01-2026`, `2026-01-15`) are skipped whole.

mod card;
pub mod context;
mod email;
mod fold;
mod nik;
mod number;
pub mod partial;
mod phone;
mod table;

use std::borrow::Cow;

/// The PII types, in the order that breaks exact ties (first wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Nik,
    Npwp,
    Phone,
    Email,
    Card,
    BankAccount,
}

impl Kind {
    /// Every kind, in tie-break order.
    pub const ALL: [Kind; 6] = [
        Kind::Nik,
        Kind::Npwp,
        Kind::Phone,
        Kind::Email,
        Kind::Card,
        Kind::BankAccount,
    ];

    /// The type name used in `pii_detect` output and in mask tokens.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nik => "NIK",
            Kind::Npwp => "NPWP",
            Kind::Phone => "PHONE",
            Kind::Email => "EMAIL",
            Kind::Card => "CARD",
            Kind::BankAccount => "BANK_ACCOUNT",
        }
    }

    /// The replacement [`mask`] writes for a span of this kind.
    pub fn redaction(self) -> &'static str {
        match self {
            Kind::Nik => "[REDACTED_NIK]",
            Kind::Npwp => "[REDACTED_NPWP]",
            Kind::Phone => "[REDACTED_PHONE]",
            Kind::Email => "[REDACTED_EMAIL]",
            Kind::Card => "[REDACTED_CARD]",
            Kind::BankAccount => "[REDACTED_BANK_ACCOUNT]",
        }
    }

    /// The kind named `name` (as [`Kind::name`] spells it).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One detected item: `start..end` are byte offsets into the text (end
/// exclusive); `score` is a confidence in `0.0..=1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// Candidates scoring below this are not reported (a landline number with
/// no keyword scores exactly this; a plain 15-digit number that passes the
/// NPWP check digit but has no `NPWP` keyword scores less).
pub const MIN_SCORE: f32 = 0.4;

/// All PII spans in `text`, sorted by start, non-overlapping, byte offsets.
///
/// The scanners read the text folded ([`fold`]: digits of any script and
/// full-width forms as ASCII, spaces of any width as a space, invisible
/// characters dropped, digits typed one by one joined); each span is mapped
/// back to the original, so it covers the original characters whole.
pub fn detect(text: &str) -> Vec<Span> {
    let folded = fold::fold(text);
    let bytes = folded.text.as_bytes();
    let emails = email::find_all(bytes);
    let mut out = Vec::new();
    number::scan(bytes, &emails, &mut out);
    if !emails.is_empty() {
        out.extend(emails);
        out.sort_by_key(|s| s.start);
    }
    if !folded.is_identity() {
        for s in &mut out {
            (s.start, s.end) = (folded.start(s.start), folded.end(s.end));
        }
    }
    out
}

/// `text` as the detector reads it ([`fold`]: digits of any script and
/// full-width forms as ASCII, invisible characters dropped, digits typed
/// one by one joined): what the normalisers (`norm_phone`, `norm_npwp`)
/// read when a detected value is compared with another spelling of it.
pub fn folded(text: &str) -> Cow<'_, str> {
    fold::fold(text).text
}

/// `text` with every detected span replaced by `[REDACTED_<TYPE>]`;
/// borrowed (no copy) when nothing is found.
pub fn mask(text: &str) -> Cow<'_, str> {
    let spans = detect(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16 * spans.len());
    let mut at = 0;
    for s in &spans {
        out.push_str(&text[at..s.start]);
        out.push_str(s.kind.redaction());
        at = s.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The spans with byte offsets turned into character (Unicode scalar)
/// offsets, as SQL sees positions in a `text`. One pass over the text;
/// `spans` must be sorted and non-overlapping (as [`detect`] returns them).
pub fn to_char_offsets(text: &str, spans: &[Span]) -> Vec<Span> {
    if text.is_ascii() {
        return spans.to_vec();
    }
    let bytes = text.as_bytes();
    let count = |range: &[u8]| range.iter().filter(|&&b| b & 0xC0 != 0x80).count();
    let (mut byte_at, mut char_at) = (0, 0);
    spans
        .iter()
        .map(|s| {
            char_at += count(&bytes[byte_at..s.start]);
            let start = char_at;
            char_at += count(&bytes[s.start..s.end]);
            byte_at = s.end;
            Span {
                start,
                end: char_at,
                ..*s
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
