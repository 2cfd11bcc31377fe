//! E-mail addresses, found from each `@`: the local part extends left over
//! `[A-Za-z0-9._%+-]` and non-ASCII letters (at most 64 bytes, RFC 5321;
//! RFC 6531 allows UTF-8 local parts such as `andré`), the domain right over
//! dot-separated ASCII labels of `[A-Za-z0-9-]` ending in an alphabetic
//! top-level label of two or more letters. Quoted local parts and
//! non-ASCII domains are not recognised.

use super::{Kind, Span};

/// Score of a well-formed address; the structure alone is near-certain.
const SCORE: f32 = 0.95;

/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;

/// ASCII local-part characters, and every byte of a non-ASCII character
/// (narrowed to letters afterwards).
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Every e-mail address in `text`, sorted, non-overlapping.
pub(super) fn find_all(text: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'@', &text[from..]) {
        let at = from + off;
        from = at + 1;
        if let Some(span) = around(text, at) {
            if out.last().is_none_or(|p: &Span| p.end <= span.start) {
                from = span.end;
                out.push(span);
            }
        }
    }
    out
}

/// The address around the `@` at `at`, if there is one.
fn around(text: &[u8], at: usize) -> Option<Span> {
    let mut start = at;
    while start > 0 && at - start < MAX_LOCAL && is_local(text[start - 1]) {
        start -= 1;
    }
    // Too long a local part, or glued to something that is not a boundary.
    if start > 0 && is_local(text[start - 1]) {
        return None;
    }
    // Non-ASCII characters that are not letters or digits (dashes, quotes,
    // symbols) end the local part.
    if !text[start..at].is_ascii() {
        let local = std::str::from_utf8(&text[start..at]).ok()?;
        if let Some((i, c)) = local
            .char_indices()
            .rev()
            .find(|&(_, c)| !c.is_ascii() && !c.is_alphanumeric())
        {
            start += i + c.len_utf8();
        }
    }
    while start < at && text[start] == b'.' {
        start += 1;
    }
    if start == at || text[at - 1] == b'.' {
        return None;
    }
    let mut end = at + 1;
    while end < text.len() && is_domain(text[end]) {
        end += 1;
    }
    // A sentence's full stop or a dash after the address is not part of it.
    while end > at + 1 && matches!(text[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &text[at + 1..end];
    let mut labels = domain.split(|&b| b == b'.');
    let count = domain.iter().filter(|&&b| b == b'.').count() + 1;
    let tld = domain.rsplit(|&b| b == b'.').next()?;
    let ok = count >= 2
        && labels.all(|l| !l.is_empty() && l[0] != b'-' && l[l.len() - 1] != b'-')
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic);
    ok.then_some(Span {
        kind: Kind::Email,
        start,
        end,
        score: SCORE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &str) -> Vec<&str> {
        find_all(s.as_bytes())
            .iter()
            .map(|sp| &s[sp.start..sp.end])
            .collect()
    }

    #[test]
    fn addresses_in_text() {
        assert_eq!(
            found("Kirim ke budi.santoso81@gmail.com."),
            ["budi.santoso81@gmail.com"]
        );
        assert_eq!(
            found("(sales@maju-jaya.co.id), cc: a+b@x.id"),
            ["sales@maju-jaya.co.id", "a+b@x.id"]
        );
        assert_eq!(found("email:rina_w@yahoo.co.id\n"), ["rina_w@yahoo.co.id"]);
        assert_eq!(found("— andré@x.id —"), ["andré@x.id"]);
        assert_eq!(found("«budi@x.id»"), ["budi@x.id"]);
    }

    #[test]
    fn not_addresses() {
        assert!(found("@budi di IG").is_empty());
        assert!(found("harga @ Rp 5.000").is_empty());
        assert!(found("budi@localhost").is_empty());
        assert!(found("budi@x.c0m").is_empty());
        assert!(found("budi.@gmail.com").is_empty());
        assert!(found("a@-x.com").is_empty());
    }
}
