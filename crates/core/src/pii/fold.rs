//! Folding: the text the scanners read, with the ways people (or their
//! keyboards) write digits that the scanners do not know brought back to
//! ASCII, and a map back to the original text, so a span found in the
//! folded text masks the original characters whole.
//!
//! What is folded:
//!
//! * decimal digits of every script (general category `Nd`: full-width
//!   `０８１２`, Arabic-Indic `٠٨١٢`, Persian `۰۸۱۲`, Devanagari, Thai,
//!   Javanese, Balinese, mathematical bold, …) to `0`–`9`. The value is
//!   the digit's place in its run: Unicode encodes every `Nd` digit in a
//!   contiguous run of ten, `0` to `9` (a stability policy), so the
//!   category (the `unicode-general-category` crate) is all that is
//!   needed. NFKC would not do: it maps full-width and mathematical digits
//!   but leaves Arabic-Indic, Devanagari or Javanese digits as they are;
//!   `char::to_digit` knows ASCII only and `char::is_numeric` also accepts
//!   `½` and `Ⅻ`, with no value;
//! * the rest of the full-width ASCII block (U+FF01–U+FF5E: `＋`, `－`,
//!   `（`, `ＮＩＫ`, `＠`) to ASCII, as NFKC does;
//! * spaces of every width (U+2000–U+200A, U+3000, U+00A0, U+202F, U+205F,
//!   U+1680) to a space, and the Unicode line and paragraph separators and
//!   NEL to a line break;
//! * invisible characters (zero-width space, joiners, word joiner, byte
//!   order mark, soft hyphen) are dropped: inside a number they would
//!   otherwise cut it in two;
//! * digits typed one by one with a single space, `-` or `.` between them
//!   (`0 8 1 2 3 4 5 6 7 8 9 0`): a run of four or more single digits with
//!   the same separator is joined (the separators dropped), so it reads as
//!   the number it spells.
//!
//! Unicode dashes are not folded here: the number scanner joins digit
//! groups over them only directly between digits.

use std::borrow::Cow;

use unicode_general_category::{get_general_category, GeneralCategory};

/// Fewest single digits in a row that are joined (`1 2 3` in a sentence
/// stays as it is; no PII number has fewer than six digits anyway).
const MIN_SPACED_RUN: usize = 4;

/// One place where the folded text differs from the original: `norm_len`
/// bytes at `norm` of the folded text stand for `orig_len` bytes at `orig`
/// of the original (`norm_len` 0: a dropped character).
#[derive(Clone, Copy, Debug)]
struct Edit {
    norm: usize,
    orig: usize,
    norm_len: usize,
    orig_len: usize,
}

/// The folded text and how to map its offsets back.
#[derive(Debug)]
pub(super) struct Folded<'a> {
    pub text: Cow<'a, str>,
    edits: Vec<Edit>,
}

impl Folded<'_> {
    /// The original byte offset where a span starting at folded offset `at`
    /// starts (a dropped character just before it is not included).
    pub fn start(&self, at: usize) -> usize {
        // The last edit at or before `at` (the later of two at one offset).
        let i = self.edits.partition_point(|e| e.norm <= at);
        match i.checked_sub(1).map(|i| self.edits[i]) {
            None => at,
            Some(e) if at < e.norm + e.norm_len => e.orig,
            Some(e) => e.orig + e.orig_len + (at - e.norm - e.norm_len),
        }
    }

    /// The original byte offset where a span ending at folded offset `at`
    /// ends (a dropped character inside the span is included, one just after
    /// it is not).
    pub fn end(&self, at: usize) -> usize {
        let i = self.edits.partition_point(|e| e.norm < at);
        match i.checked_sub(1).map(|i| self.edits[i]) {
            None => at,
            Some(e) if at <= e.norm + e.norm_len => e.orig + e.orig_len,
            Some(e) => e.orig + e.orig_len + (at - e.norm - e.norm_len),
        }
    }

    /// Whether the folded text is the original.
    pub fn is_identity(&self) -> bool {
        self.edits.is_empty()
    }
}

/// The value of a decimal digit of any script, `None` for anything else.
pub fn digit_value(c: char) -> Option<u8> {
    if c.is_ascii() {
        return c.is_ascii_digit().then(|| c as u8 - b'0');
    }
    if !is_decimal(c) {
        return None;
    }
    // Back to the first digit of this block of runs: a zero.
    let mut zero = u32::from(c);
    while let Some(prev) = zero.checked_sub(1).and_then(char::from_u32) {
        if !is_decimal(prev) {
            break;
        }
        zero -= 1;
    }
    Some(((u32::from(c) - zero) % 10) as u8)
}

fn is_decimal(c: char) -> bool {
    get_general_category(c) == GeneralCategory::DecimalNumber
}

/// What a character becomes in the folded text: itself, an ASCII
/// character, or nothing.
#[derive(Clone, Copy, PartialEq)]
enum Out {
    Same,
    Ascii(u8),
    Drop,
}

fn fold_char(c: char) -> Out {
    if c.is_ascii() {
        return Out::Same;
    }
    if let Some(d) = digit_value(c) {
        return Out::Ascii(b'0' + d);
    }
    match c {
        '\u{FF01}'..='\u{FF5E}' => Out::Ascii((u32::from(c) - 0xFEE0) as u8),
        '\u{00A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => Out::Ascii(b' '),
        '\u{0085}' | '\u{2028}' | '\u{2029}' => Out::Ascii(b'\n'),
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => Out::Drop,
        _ => Out::Same,
    }
}

/// Separators of digits typed one by one.
fn spaced_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.')
}

/// Whether ASCII `text` has [`MIN_SPACED_RUN`] single digits in a row
/// with one separator between them (the only folding ASCII text needs).
fn has_spaced_digits(text: &[u8]) -> bool {
    let mut i = 0;
    while i + 2 < text.len() {
        if text[i].is_ascii_digit() && spaced_run(text, i) >= MIN_SPACED_RUN {
            return true;
        }
        i += 1;
    }
    false
}

/// The number of single digits from `i` with the same one-character
/// separator between them (`0 8 1 2` → 4), or 0 when the digit at `i`
/// continues or starts a longer group.
fn spaced_run(text: &[u8], i: usize) -> usize {
    let digit = |k: usize| text.get(k).is_some_and(u8::is_ascii_digit);
    if (i > 0 && digit(i - 1)) || digit(i + 1) {
        return 0;
    }
    let Some(&sep) = text.get(i + 1).filter(|&&b| spaced_separator(b)) else {
        return 1;
    };
    let mut n = 1;
    let mut k = i;
    while text.get(k + 1) == Some(&sep) && digit(k + 2) && !digit(k + 3) {
        n += 1;
        k += 2;
    }
    n
}

/// `text` folded for the scanners (see the module documentation);
/// borrowed, with no edits, when nothing needs folding.
pub(super) fn fold(text: &str) -> Folded<'_> {
    let same = Folded {
        text: Cow::Borrowed(text),
        edits: Vec::new(),
    };
    // Most text needs nothing: check before copying anything.
    if !has_spaced_digits(text.as_bytes())
        && (text.is_ascii() || text.chars().all(|c| fold_char(c) == Out::Same))
    {
        return same;
    }
    // Each character folded alone, then spaced digits joined.
    let mut chars: Vec<(usize, char, Out)> = text
        .char_indices()
        .map(|(i, c)| (i, c, fold_char(c)))
        .collect();
    let byte = |o: Out, c: char| match o {
        Out::Ascii(b) => Some(b),
        Out::Same if c.is_ascii() => Some(c as u8),
        _ => None,
    };
    let ascii: Vec<u8> = chars
        .iter()
        .map(|&(_, c, o)| byte(o, c).unwrap_or(0x80))
        .collect();
    let mut i = 0;
    while i < ascii.len() {
        if ascii[i].is_ascii_digit() {
            let run = spaced_run(&ascii, i);
            if run >= MIN_SPACED_RUN {
                for k in 0..run - 1 {
                    chars[i + 2 * k + 1].2 = Out::Drop;
                }
                i += 2 * (run - 1) + 1;
                continue;
            }
        }
        i += 1;
    }
    if chars.iter().all(|&(_, _, o)| o == Out::Same) {
        return same;
    }
    let mut out = String::with_capacity(text.len());
    let mut edits = Vec::new();
    for &(at, c, o) in &chars {
        match o {
            Out::Same => out.push(c),
            Out::Ascii(b) => {
                edits.push(Edit {
                    norm: out.len(),
                    orig: at,
                    norm_len: 1,
                    orig_len: c.len_utf8(),
                });
                out.push(char::from(b));
            }
            Out::Drop => edits.push(Edit {
                norm: out.len(),
                orig: at,
                norm_len: 0,
                orig_len: c.len_utf8(),
            }),
        }
    }
    Folded {
        text: Cow::Owned(out),
        edits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script() {
        for (zero, name) in [
            ('0', "ASCII"),
            ('\u{FF10}', "full-width"),
            ('\u{0660}', "Arabic-Indic"),
            ('\u{06F0}', "Extended Arabic-Indic (Persian)"),
            ('\u{0966}', "Devanagari"),
            ('\u{09E6}', "Bengali"),
            ('\u{0E50}', "Thai"),
            ('\u{A9D0}', "Javanese"),
            ('\u{1B50}', "Balinese"),
            ('\u{1D7CE}', "mathematical bold"),
            (
                '\u{1D7F6}',
                "mathematical monospace (the fifth run of a block)",
            ),
        ] {
            for v in 0..10u8 {
                let c = char::from_u32(u32::from(zero) + u32::from(v)).unwrap();
                assert_eq!(digit_value(c), Some(v), "{name} {v}");
            }
        }
        for c in ['a', '½', 'Ⅻ', '²', '①', '-', '٫'] {
            assert_eq!(digit_value(c), None, "{c}");
        }
    }

    fn folded(s: &str) -> String {
        fold(s).text.into_owned()
    }

    #[test]
    fn what_is_folded() {
        assert_eq!(folded("０８１２－３４５６"), "0812-3456");
        assert_eq!(folded("ＮＩＫ：３１７４"), "NIK:3174");
        assert_eq!(folded("٠٨١٢ ٣٤٥٦"), "0812 3456");
        assert_eq!(folded("0812\u{200B}3456"), "08123456");
        assert_eq!(folded("0812\u{3000}3456\u{2009}7890"), "0812 3456 7890");
        assert_eq!(folded("a\u{2028}b"), "a\nb");
        assert_eq!(folded("0 8 1 2 3 4 5 6 7 8 9 0"), "081234567890");
        assert_eq!(folded("0-8-1-2 3.4.5.6"), "0812 3456");
        assert_eq!(folded("0 8 1 2 - 3 4 5 6"), "0812 - 3456");
    }

    #[test]
    fn what_is_not_folded() {
        for s in [
            "1 2 3 lalu 4",
            "0812 3456 7890",
            "12 3 4 5",
            "Rp 1.250.000",
            "— 0812 —",
            "ünïcode ✓ 😀",
        ] {
            assert_eq!(folded(s), s);
            assert!(fold(s).is_identity() || fold(s).text == s);
        }
    }

    #[test]
    fn offsets_map_back_to_whole_original_characters() {
        let s = "HP ０８１２\u{200B}３４ x";
        let f = fold(s);
        assert_eq!(f.text, "HP 081234 x");
        let (a, b) = (3, 9);
        assert_eq!(&f.text[a..b], "081234");
        assert_eq!(&s[f.start(a)..f.end(b)], "０８１２\u{200B}３４");
        // Unchanged text around edits maps one to one.
        assert_eq!(&s[f.start(0)..f.end(2)], "HP");
        assert_eq!(&s[f.start(10)..f.end(11)], "x");
        let s = "a 0 8 1 2 b";
        let f = fold(s);
        assert_eq!(f.text, "a 0812 b");
        assert_eq!(&s[f.start(2)..f.end(6)], "0 8 1 2");
        // A dropped character at a span's edge stays outside it.
        let s = "\u{200B}0812\u{200B}";
        let f = fold(s);
        assert_eq!(&s[f.start(0)..f.end(4)], "0812");
    }
}
