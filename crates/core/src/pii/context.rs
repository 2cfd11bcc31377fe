//! Keyword context: the words that introduce a value ("NIK:", "No. HP",
//! "rekening BCA") raise the confidence of that type, as Presidio's context
//! enhancement does, and decide the types that have no structure of their
//! own (bank accounts) or whose structure is ambiguous (a NIK used as NPWP).

use super::Kind;

/// How far before a candidate a keyword may stand (bytes). Long enough for
/// "No. Rek BCA a.n. PT Maju Jaya: 123…", short enough not to reach the
/// previous line's label in a form.
pub const WINDOW: usize = 40;

/// Score added when the nearest keyword names the candidate's type
/// (Presidio's default context enhancement is 0.35).
pub const BOOST: f32 = 0.35;

/// Keywords, lowercase, by the type they introduce. Matched as whole words
/// (no letter directly before or after), so `rek` does not match inside
/// `direktur` and `wa` not inside `jawa`.
const KEYWORDS: &[(&str, Kind)] = &[
    ("nik", Kind::Nik),
    ("ktp", Kind::Nik),
    ("nomor induk kependudukan", Kind::Nik),
    ("npwp", Kind::Npwp),
    ("hp", Kind::Phone),
    ("wa", Kind::Phone),
    ("whatsapp", Kind::Phone),
    ("telp", Kind::Phone),
    ("tlp", Kind::Phone),
    ("telepon", Kind::Phone),
    ("telpon", Kind::Phone),
    ("tel", Kind::Phone),
    ("phone", Kind::Phone),
    ("ponsel", Kind::Phone),
    ("mobile", Kind::Phone),
    ("hubungi", Kind::Phone),
    ("kontak", Kind::Phone),
    ("fax", Kind::Phone),
    ("email", Kind::Email),
    ("e-mail", Kind::Email),
    ("surel", Kind::Email),
    ("kartu kredit", Kind::Card),
    ("kartu debit", Kind::Card),
    ("credit card", Kind::Card),
    ("card", Kind::Card),
    ("kartu", Kind::Card),
    ("visa", Kind::Card),
    ("mastercard", Kind::Card),
    ("cc", Kind::Card),
    ("rekening", Kind::BankAccount),
    ("rek", Kind::BankAccount),
    ("norek", Kind::BankAccount),
    ("account no", Kind::BankAccount),
    ("account number", Kind::BankAccount),
    ("acc no", Kind::BankAccount),
    ("acct", Kind::BankAccount),
    ("a/c", Kind::BankAccount),
];

/// The type of the keyword nearest before `start` (within [`WINDOW`]
/// bytes, and not before `floor`: a keyword introduces the next number
/// only, so the scanner passes the end of the previous number), if any.
/// Ties on position go to the longer keyword.
pub fn nearest(text: &[u8], floor: usize, start: usize) -> Option<Kind> {
    let from = start.saturating_sub(WINDOW).max(floor.min(start));
    let mut window = [0u8; WINDOW];
    let len = start - from;
    for (w, &b) in window.iter_mut().zip(&text[from..start]) {
        *w = b.to_ascii_lowercase();
    }
    let window = &window[..len];
    // Letters just outside the window matter for the word test of a
    // keyword that touches the window's left edge.
    let letter_before = |i: usize| {
        if i == 0 {
            from > 0 && text[from - 1].is_ascii_alphabetic()
        } else {
            window[i - 1].is_ascii_alphabetic()
        }
    };
    let mut best: Option<(usize, usize, Kind)> = None;
    for &(word, kind) in KEYWORDS {
        let w = word.as_bytes();
        if w.len() > window.len() {
            continue;
        }
        let mut i = window.len() - w.len();
        loop {
            if &window[i..i + w.len()] == w
                && !letter_before(i)
                && !window.get(i + w.len()).is_some_and(u8::is_ascii_alphabetic)
            {
                let end = i + w.len();
                if best.is_none_or(|(e, l, _)| end > e || (end == e && w.len() > l)) {
                    best = Some((end, w.len(), kind));
                }
                break;
            }
            if i == 0 {
                break;
            }
            i -= 1;
        }
    }
    best.map(|(_, _, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(s: &str) -> Option<Kind> {
        nearest(s.as_bytes(), 0, s.len())
    }

    #[test]
    fn nearest_keyword_wins() {
        assert_eq!(at_end("NIK: "), Some(Kind::Nik));
        assert_eq!(at_end("NIK/NPWP: "), Some(Kind::Npwp));
        assert_eq!(at_end("No. HP / WA "), Some(Kind::Phone));
        assert_eq!(
            at_end("No. Rek BCA a.n. PT Maju Jaya: "),
            Some(Kind::BankAccount)
        );
        assert_eq!(at_end("E-mail: "), Some(Kind::Email));
    }

    #[test]
    fn a_keyword_introduces_the_next_number_only() {
        let s = "NPWP 01.000.013.1-093.000, pemilik ";
        assert_eq!(nearest(s.as_bytes(), 25, s.len()), None);
        assert_eq!(nearest(s.as_bytes(), 0, s.len()), Some(Kind::Npwp));
    }

    #[test]
    fn keywords_are_whole_words() {
        assert_eq!(at_end("Direktur "), None);
        assert_eq!(at_end("Jawa Barat "), None);
        assert_eq!(at_end("unik "), None);
        assert_eq!(at_end("Prakartu "), None);
    }

    #[test]
    fn keywords_beyond_the_window_do_not_count() {
        let far = format!("NIK {} ", "x".repeat(WINDOW));
        assert_eq!(at_end(&far), None);
        // A keyword cut by the window's left edge is not a whole word.
        let cut = format!("direk{}", " ".repeat(WINDOW - 3));
        assert_eq!(&cut[cut.len() - WINDOW..cut.len() - WINDOW + 3], "rek");
        assert_eq!(at_end(&cut), None);
    }
}
