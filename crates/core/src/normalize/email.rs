//! E-mail addresses as dedup keys.
//!
//! This is not an RFC 5322 parser: it accepts the addresses people type into
//! forms and maps the spellings of one mailbox to one key.
//!
//! * The whole address is lowercased (Unicode rules). RFC 5321 lets a server
//!   treat the local part case-sensitively, but no big provider does, and
//!   `Budi@` and `budi@` are one person in our data.
//! * A `+tag` (sub-addressing, `budi+promo@`) is dropped: Gmail, Outlook,
//!   Yahoo and Fastmail deliver it to the base mailbox.
//! * Dots in the local part are kept, also for Gmail: ignoring them is a
//!   Gmail rule that does not hold for other providers or for Google
//!   Workspace domains, and the domain alone cannot tell us which applies.

use super::{is_combining_mark, is_invisible, trim};

/// RFC 5321 limits: 64 octets for the local part, 254 for a usable address.
const MAX_LOCAL: usize = 64;
const MAX_ADDRESS: usize = 254;

/// Normalises an e-mail address: trimmed, lowercased, without `+tag`.
///
/// Accepted: `local@domain` with exactly one `@`, surrounding whitespace
/// ignored. The local part may hold any printable character except
/// whitespace and the RFC 5322 specials `( ) < > [ ] : ; , " \`; the domain
/// holds letters (also non-ASCII, as typed for IDNs), digits, `-` and at least
/// one `.`.
///
/// Rejected: no `@` or more than one, an empty local part or domain (also
/// `+tag@…`, whose base is empty), whitespace, control or zero-width
/// characters inside, consecutive dots or a leading/trailing dot in either
/// part, a domain label starting or ending with `-`, an all-digit top-level
/// label (`user@192.168.1.1`), and addresses over the RFC 5321 length limits
/// after normalisation. Quoted local parts (`"a b"@x.com`) and address
/// literals (`a@[10.0.0.1]`) are not supported; display names
/// (`Budi <budi@x.com>`) must be removed by the caller.
pub fn norm_email(input: &str) -> Option<String> {
    let s = trim(input);
    if s.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || is_invisible(c)
            || matches!(
                c,
                '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | ',' | '"' | '\\'
            )
    }) {
        return None;
    }
    let (local, domain) = s.split_once('@')?;
    if domain.contains('@') || !dots_ok(local) || !domain_ok(domain) {
        return None;
    }
    let base = local.split('+').next().unwrap_or_default();
    if !dots_ok(base) {
        return None;
    }
    let base = base.to_lowercase();
    let domain = domain.to_lowercase();
    if base.len() > MAX_LOCAL || base.len() + 1 + domain.len() > MAX_ADDRESS {
        return None;
    }
    Some(format!("{base}@{domain}"))
}

/// Non-empty, no leading, trailing or consecutive dot.
fn dots_ok(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|part| !part.is_empty())
}

fn domain_ok(domain: &str) -> bool {
    let mut labels = domain.split('.');
    let all_labels_ok = labels.clone().all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || is_combining_mark(c))
    });
    let tld_ok = labels
        .next_back()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    all_labels_ok && tld_ok && domain.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_email_table() {
        let budi = Some("budi@example.co.id");
        let cases: &[(&str, Option<&str>)] = &[
            ("budi@example.co.id", budi),
            ("Budi@Example.CO.ID", budi),
            ("  budi@example.co.id \n", budi),
            ("\u{FEFF}budi@example.co.id", budi),
            ("\u{A0}BUDI@EXAMPLE.CO.ID\u{A0}", budi),
            ("budi+promo@example.co.id", budi),
            ("Budi+Promo+2024@Example.co.id", budi),
            ("budi+@example.co.id", budi),
            ("budi.santoso@gmail.com", Some("budi.santoso@gmail.com")),
            (
                "Budi.Santoso+kerja@GMail.com",
                Some("budi.santoso@gmail.com"),
            ),
            ("b.u.d.i@gmail.com", Some("b.u.d.i@gmail.com")),
            ("o'brien@example.com", Some("o'brien@example.com")),
            (
                "first_last-1@sub.example.ac.id",
                Some("first_last-1@sub.example.ac.id"),
            ),
            ("x@a-b.co", Some("x@a-b.co")),
            ("1234@567.com", Some("1234@567.com")),
            ("Ägir@Bücher.de", Some("ägir@bücher.de")),
            ("ΟΔΥΣ@ΠΑΡΑΔΕΙΓΜΑ.ΕΛ", Some("οδυς@παραδειγμα.ελ")),
            ("用户@例子.广告", Some("用户@例子.广告")),
            // rejected
            ("", None),
            ("budi", None),
            ("budi.example.com", None),
            ("budi@@example.com", None),
            ("budi@example@com", None),
            ("@example.com", None),
            ("budi@", None),
            ("+promo@example.com", None),
            ("budi@localhost", None),
            ("budi santoso@example.com", None),
            ("budi@exa mple.com", None),
            ("budi\t@example.com", None),
            ("budi\u{200B}@example.com", None),
            ("budi\u{0}@example.com", None),
            ("budi..santoso@example.com", None),
            (".budi@example.com", None),
            ("budi.@example.com", None),
            ("budi.+x@example.com", None),
            ("budi+a..b@example.com", None),
            ("budi@example..com", None),
            ("budi@.example.com", None),
            ("budi@example.com.", None),
            ("budi@-example.com", None),
            ("budi@example-.com", None),
            ("budi@exam_ple.com", None),
            ("budi@192.168.1.1", None),
            ("budi@[10.0.0.1]", None),
            ("\"budi santoso\"@example.com", None),
            ("Budi <budi@example.com>", None),
            ("budi@example.com, ani@example.com", None),
            ("budi;ani@example.com", None),
        ];
        for &(input, want) in cases {
            assert_eq!(norm_email(input).as_deref(), want, "norm_email({input:?})");
        }
    }

    #[test]
    fn length_limits_apply_after_normalisation() {
        let local = "a".repeat(64);
        let ok = format!("{local}@example.com");
        assert_eq!(norm_email(&ok).as_deref(), Some(ok.as_str()));
        assert_eq!(norm_email(&format!("a{ok}")), None);
        // the tag does not count
        let tagged = format!("{local}+{}@example.com", "t".repeat(100));
        assert_eq!(norm_email(&tagged).as_deref(), Some(ok.as_str()));
        let domain = format!("{}.com", "d.".repeat(100));
        let long = format!("{local}@{domain}");
        assert!(long.len() > MAX_ADDRESS);
        assert_eq!(norm_email(&long), None);
    }
}
