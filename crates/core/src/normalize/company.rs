//! Company names as keys for fuzzy dedup (pg_trgm candidates, never an
//! automatic merge).
//!
//! The key keeps the words of the name and drops what varies between
//! spellings of one company: letter case, punctuation and the Indonesian
//! legal form. `"P.T. Bank Rakyat Indonesia (Persero) Tbk."`,
//! `"PT BANK RAKYAT INDONESIA TBK"` and `"Bank Rakyat Indonesia, PT"` all
//! become `"bank rakyat indonesia"`.
//!
//! Legal forms dropped, only at the start or the end of the name (where they
//! are written; a word inside the name is never touched): `PT` (`P.T.`,
//! `PT.`, `P. T.`), `CV` (`C.V.`), `UD` (`U.D.`), `Tbk`, `Persero` (also
//! `(Persero)`) and `Perseroan Terbatas`. Kept on purpose:
//!
//! * `Koperasi`, `KUD`, `Yayasan`, `Perum`, `PD`: they name a different kind
//!   of entity (a cooperative or foundation is not the company it serves:
//!   `Koperasi Karyawan Telkom` is not `Telkom`), and `Perum`/`PD` are
//!   usually part of the registered name (`Perum Bulog`, `PD Pasar Jaya`).
//! * Foreign forms (`Ltd`, `Inc`, `Pte`): rare here, and `Co`/`Inc` clash
//!   with real words.

use super::is_combining_mark;

/// Legal forms as token sequences, after lowercasing and punctuation.
const LEGAL_FORMS: [&[&str]; 9] = [
    &["pt"],
    &["cv"],
    &["ud"],
    &["tbk"],
    &["persero"],
    &["perseroan", "terbatas"],
    &["p", "t"],
    &["c", "v"],
    &["u", "d"],
];

/// Normalises a company name for fuzzy matching, or `None` when nothing but
/// a legal form or punctuation is left.
///
/// Steps: lowercase (Unicode rules; non-ASCII letters are kept), split into
/// words, drop the legal forms at either end (repeatedly, so
/// `PT … (Persero) Tbk` loses all three), join the words with one space.
///
/// Punctuation: letters (any script), digits and combining marks form
/// words; everything else separates words, with two exceptions:
///
/// * `&` and apostrophes (`'`, `’`, `` ` ``, `´`) are deleted without
///   separating: `A&W` → `aw`, `D'Cost` → `dcost`, while a free-standing
///   `Maju & Jaya` → `maju jaya`. We do not rewrite `&` to `dan`/`and`: the
///   three spellings vary too much, and trigram matching tolerates the
///   missing word.
/// * A dot separates words (`PT.Maju` → `pt maju`) except inside an
///   abbreviation of single letters (`P.T.` → `pt`, `A.B.C.` → `abc`).
pub fn norm_company(input: &str) -> Option<String> {
    let lower = input.to_lowercase();
    let mut words: Vec<String> = Vec::new();
    let separates = |c: char| !(is_word_char(c) || c == '.' || is_deleted(c));
    for chunk in lower.split(separates) {
        push_chunk(chunk, &mut words);
    }
    let words = strip_legal_forms(&words);
    if words.is_empty() {
        return None;
    }
    Some(words.join(" "))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Characters removed without splitting the word they are in.
fn is_deleted(c: char) -> bool {
    matches!(c, '&' | '\'' | '\u{2019}' | '`' | '\u{B4}')
}

/// Adds the words of a chunk of word characters, dots and deleted
/// characters: an abbreviation like `p.t.` is one word, otherwise every dot
/// separates.
fn push_chunk(chunk: &str, words: &mut Vec<String>) {
    let cleaned: String = chunk.chars().filter(|&c| !is_deleted(c)).collect();
    let parts: Vec<&str> = cleaned.split('.').filter(|p| !p.is_empty()).collect();
    let single_letter = |p: &&str| {
        let mut chars = p.chars();
        matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic())
    };
    if parts.len() > 1 && parts.iter().all(single_letter) {
        words.push(parts.concat());
    } else {
        words.extend(parts.into_iter().map(str::to_owned));
    }
}

/// `words` without legal forms at the start and the end.
fn strip_legal_forms(mut words: &[String]) -> &[String] {
    let same = |slice: &[String], form: &[&str]| {
        slice.len() == form.len() && slice.iter().zip(form).all(|(w, f)| w == f)
    };
    loop {
        let before = words.len();
        for form in LEGAL_FORMS {
            if let Some((head, rest)) = words.split_at_checked(form.len()) {
                if same(head, form) {
                    words = rest;
                }
            }
            if let Some((rest, tail)) =
                words.split_at_checked(words.len().saturating_sub(form.len()))
            {
                if same(tail, form) {
                    words = rest;
                }
            }
        }
        if words.len() == before {
            return words;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_company_table() {
        let cases: &[(&str, Option<&str>)] = &[
            // the examples of the spec
            ("PT. Maju Jaya Tbk", Some("maju jaya")),
            ("CV Sinar  Abadi", Some("sinar abadi")),
            (
                "P.T. Bank Rakyat Indonesia (Persero) Tbk.",
                Some("bank rakyat indonesia"),
            ),
            ("UD. Sumber Rejeki", Some("sumber rejeki")),
            // the same company, spelled differently
            ("PT Maju Jaya", Some("maju jaya")),
            ("PT.MAJU JAYA", Some("maju jaya")),
            ("pt maju jaya", Some("maju jaya")),
            ("Maju Jaya, PT", Some("maju jaya")),
            ("MAJU JAYA, PT.", Some("maju jaya")),
            ("P. T. Maju Jaya", Some("maju jaya")),
            ("Perseroan Terbatas Maju Jaya", Some("maju jaya")),
            ("  PT   Maju\tJaya \n", Some("maju jaya")),
            ("PT Maju-Jaya", Some("maju jaya")),
            ("\"PT Maju Jaya\"", Some("maju jaya")),
            ("PT Pertamina (Persero)", Some("pertamina")),
            (
                "PT Telkom Indonesia (Persero) Tbk",
                Some("telkom indonesia"),
            ),
            ("PT. TBK. Maju", Some("maju")),
            ("C.V. Sinar Abadi", Some("sinar abadi")),
            ("CV. SINAR ABADI", Some("sinar abadi")),
            ("U.D. Sumber Rejeki", Some("sumber rejeki")),
            // & and apostrophes
            ("PT Maju & Jaya", Some("maju jaya")),
            ("PT A&W Restoran Indonesia", Some("aw restoran indonesia")),
            ("CV D'Cost Seafood", Some("dcost seafood")),
            ("CV D’Cost Seafood", Some("dcost seafood")),
            // words that only look like legal forms are kept
            ("PT Ptolemy Persada", Some("ptolemy persada")),
            ("PT Bank Persero Raya Tbk", Some("bank persero raya")),
            ("Koperasi Karyawan Telkom", Some("koperasi karyawan telkom")),
            ("Perum Bulog", Some("perum bulog")),
            ("PD Pasar Jaya", Some("pd pasar jaya")),
            ("Yayasan Cinta Kasih", Some("yayasan cinta kasih")),
            ("PT 3M Indonesia", Some("3m indonesia")),
            ("PT. A.B.C. Indonesia", Some("abc indonesia")),
            ("Toko 99 / Cab. 2", Some("toko 99 cab 2")),
            // non-ASCII letters are kept and lowercased
            ("PT Kopi Éclair Nusantara", Some("kopi éclair nusantara")),
            ("PT KÜHNE + NAGEL INDONESIA", Some("kühne nagel indonesia")),
            ("CV Cafe\u{301} Sentosa", Some("cafe\u{301} sentosa")),
            ("PT 中国银行 Indonesia", Some("中国银行 indonesia")),
            // nothing left
            ("", None),
            ("PT", None),
            ("P.T.", None),
            ("PT. Tbk.", None),
            ("(Persero)", None),
            ("- & . ,", None),
        ];
        for &(input, want) in cases {
            assert_eq!(
                norm_company(input).as_deref(),
                want,
                "norm_company({input:?})"
            );
        }
    }
}
