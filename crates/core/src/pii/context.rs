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

/// The type a single keyword introduces. Keywords are whole words of
/// letters (a `-` between letters belongs to the word: `e-mail`), compared
/// lowercase, so `rek` does not match inside `direktur` nor `wa` inside
/// `jawa`.
fn single(word: &[u8]) -> Option<Kind> {
    Some(match word {
        b"nik" | b"ktp" | b"e-ktp" | b"kependudukan" => Kind::Nik,
        b"npwp" => Kind::Npwp,
        b"hp" | b"wa" | b"whatsapp" | b"telp" | b"tlp" | b"telepon" | b"telpon" | b"tel"
        | b"phone" | b"ponsel" | b"mobile" | b"hubungi" | b"kontak" | b"fax" | b"handphone"
        | b"hape" | b"nohp" | b"nowa" | b"tlpn" | b"telfon" | b"cell" | b"cellphone" | b"ph"
        | b"mob" | b"sms" | b"call" | b"telephone" => Kind::Phone,
        b"email" | b"e-mail" | b"surel" => Kind::Email,
        b"card" | b"kartu" | b"visa" | b"mastercard" | b"cc" | b"amex" | b"jcb" | b"unionpay" => {
            Kind::Card
        }
        b"rekening" | b"rek" | b"norek" | b"acct" => Kind::BankAccount,
        _ => return None,
    })
}

/// The type a two-word keyword introduces (`kartu kredit`, `account no`,
/// `a/c`); its second word alone is no keyword.
fn pair(first: &[u8], second: &[u8]) -> Option<Kind> {
    Some(match (first, second) {
        (b"kartu", b"kredit" | b"debit") => Kind::Card,
        // The family card (KK) number has the NIK's layout.
        (b"kartu", b"keluarga") => Kind::Nik,
        (b"account" | b"acc", b"no" | b"number" | b"nr") => Kind::BankAccount,
        (b"a", b"c") => Kind::BankAccount,
        _ => return None,
    })
}

/// Longest word compared; longer words are no keyword.
pub const MAX_WORD: usize = 16;

/// The type a one-word keyword introduces, `word` in lowercase; also the
/// keyword glued to `no`/`nomor` (`noktp`, `nomorhp`, `NoNPWP`), as people
/// type it without a space or a dot.
pub fn keyword(word: &[u8]) -> Option<Kind> {
    single(word).or_else(|| {
        let rest = word
            .strip_prefix(b"nomor")
            .or_else(|| word.strip_prefix(b"no"))?;
        (rest.len() >= 2).then(|| single(rest)).flatten()
    })
}

/// The type of the keyword nearest before `start` (within [`WINDOW`]
/// bytes, and not before `floor`: a keyword introduces the next number
/// only, so the scanner passes the end of the previous number), if any.
///
/// One backward pass over the window's words: the first word (from the
/// right) that is a keyword, or that completes a two-word keyword with the
/// word after it, decides.
pub fn nearest(text: &[u8], floor: usize, start: usize) -> Option<Kind> {
    let from = start.saturating_sub(WINDOW).max(floor.min(start));
    let is_letter = |i: usize| text[i].is_ascii_alphabetic();
    let mut i = start;
    let mut after: Option<([u8; MAX_WORD], usize)> = None;
    while i > from {
        if !is_letter(i - 1) {
            i -= 1;
            continue;
        }
        // A word ends at i; find where it starts (letters, inner dashes).
        let end = i;
        let mut s = i;
        while s > from
            && (is_letter(s - 1) || (text[s - 1] == b'-' && s - 1 > from && is_letter(s - 2)))
        {
            s -= 1;
        }
        i = s;
        // Cut by the window's left edge: not a whole word.
        if s == from && s > 0 && is_letter(s - 1) {
            break;
        }
        let len = end - s;
        if len > MAX_WORD {
            after = None;
            continue;
        }
        let mut word = [0u8; MAX_WORD];
        for (w, &b) in word.iter_mut().zip(&text[s..end]) {
            *w = b.to_ascii_lowercase();
        }
        let w = &word[..len];
        // A two-word keyword before its first word alone (`kartu keluarga`
        // is no card).
        if let Some((next, n)) = &after {
            if let Some(kind) = pair(w, &next[..*n]) {
                return Some(kind);
            }
        }
        if let Some(kind) = keyword(w) {
            return Some(kind);
        }
        after = Some((word, len));
    }
    None
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
        assert_eq!(at_end("Pembayaran kartu kredit "), Some(Kind::Card));
        assert_eq!(at_end("Account No. "), Some(Kind::BankAccount));
        assert_eq!(at_end("A/C "), Some(Kind::BankAccount));
        assert_eq!(at_end("no.rek:"), Some(Kind::BankAccount));
        assert_eq!(at_end("nomor induk kependudukan "), Some(Kind::Nik));
        assert_eq!(at_end("No. Kartu Keluarga: "), Some(Kind::Nik));
        assert_eq!(at_end("HP/WA "), Some(Kind::Phone));
        assert_eq!(at_end("Cell: "), Some(Kind::Phone));
        assert_eq!(at_end("Handphone "), Some(Kind::Phone));
        // Glued to `no`/`nomor`, or to the number (no space at all).
        assert_eq!(at_end("NoKTP:"), Some(Kind::Nik));
        assert_eq!(at_end("nomorHP "), Some(Kind::Phone));
        assert_eq!(at_end("noNPWP"), Some(Kind::Npwp));
        assert_eq!(at_end("HP"), Some(Kind::Phone));
        assert_eq!(at_end("KTP-"), Some(Kind::Nik));
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
        assert_eq!(at_end("Nokia "), None);
        assert_eq!(at_end("notes "), None);
        assert_eq!(at_end("nomor "), None);
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
