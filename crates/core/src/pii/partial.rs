//! Partial maskers for display: enough of a value stays visible to tell
//! records apart or recognise one's own, never enough to reconstruct it.
//! The masked part always has a fixed width (`***`) where the length would
//! itself be a clue (names, local parts).

use crate::normalize::norm_phone;

/// `budi.santoso@gmail.com` → `b***@gmail.com`: the first character of the
/// local part and the domain (the domain says which provider or company,
/// which analysts group by). A value without `@` becomes `***`.
pub fn mask_email(value: &str) -> String {
    let value = value.trim();
    match value.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first = local.chars().next().map_or(String::new(), String::from);
            format!("{first}***@{domain}")
        }
        _ => "***".to_owned(),
    }
}

/// `0812-3456-7890` → `+62 8**-****-**90`: the number in E.164 with only
/// the first digit of the national number (mobile or area code) and the
/// last two digits visible, grouped 3-4-rest. A value that is not an
/// Indonesian phone number keeps its last two digits and every other digit
/// becomes `*`.
pub fn mask_phone(value: &str) -> String {
    let Some(e164) = norm_phone(value) else {
        return mask_digits_but_last(value, 2);
    };
    let nsn = &e164.as_bytes()[3..];
    let n = nsn.len();
    let mut out = String::with_capacity(4 + n + 2);
    out.push_str("+62 ");
    for (i, &b) in nsn.iter().enumerate() {
        if i == 3 || i == 7 {
            out.push('-');
        }
        out.push(if i == 0 || i + 2 >= n {
            char::from(b)
        } else {
            '*'
        });
    }
    out
}

/// `3174011203900001` → `3174************`: the province and regency
/// (region statistics stay possible), not the district, birth date or
/// serial. Anything that is not 16 digits has every digit replaced by `*`.
pub fn mask_nik(value: &str) -> String {
    let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
    if digits.len() != 16
        || value
            .trim()
            .bytes()
            .any(|b| !b.is_ascii_digit() && !matches!(b, b' ' | b'.' | b'-'))
    {
        return mask_digits_but_last(value, 0);
    }
    let mut out = String::with_capacity(16);
    out.extend(digits[..4].iter().map(|&b| char::from(b)));
    out.push_str("************");
    out
}

/// `Budi Santoso` → `B*** S***`: the initial of every word and a fixed
/// `***`, so neither the name nor its length shows. Unicode-aware
/// (`Ádám Çelik` → `Á*** Ç***`).
pub fn mask_name(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if let Some(c) = word.chars().next() {
            out.push(c);
        }
        out.push_str("***");
    }
    out
}

/// Every ASCII digit except the last `keep` replaced by `*`; other
/// characters stay.
fn mask_digits_but_last(value: &str, keep: usize) -> String {
    let total = value.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + keep > total {
                    return c;
                }
                return '*';
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(mask_email("budi@gmail.com"), "b***@gmail.com");
        assert_eq!(mask_email(" Rina.W@maju.co.id "), "R***@maju.co.id");
        assert_eq!(mask_email("élodie@x.fr"), "é***@x.fr");
        assert_eq!(mask_email("not an address"), "***");
        assert_eq!(mask_email("@x.com"), "***");
    }

    #[test]
    fn phones() {
        assert_eq!(mask_phone("+6281234567890"), "+62 8**-****-**90");
        assert_eq!(mask_phone("0812-3456-7890"), "+62 8**-****-**90");
        assert_eq!(mask_phone("(021) 555-1234"), "+62 2**-****-34");
        assert_eq!(mask_phone("ext 12 or so"), "ext 12 or so");
        assert_eq!(mask_phone("+65 9123 4567"), "+** **** **67");
    }

    #[test]
    fn niks() {
        assert_eq!(mask_nik("3174011203900001"), "3174************");
        assert_eq!(mask_nik("3174 0112 0390 0001"), "3174************");
        assert_eq!(mask_nik("12345"), "*****");
        assert_eq!(mask_nik("NIK 3174011203900001"), "NIK ****************");
    }

    #[test]
    fn names() {
        assert_eq!(mask_name("Budi Santoso"), "B*** S***");
        assert_eq!(mask_name("  siti   nurhaliza "), "s*** n***");
        assert_eq!(mask_name("Ádám Çelik"), "Á*** Ç***");
        assert_eq!(mask_name(""), "");
    }
}
