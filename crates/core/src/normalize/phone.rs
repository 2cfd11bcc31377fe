//! Indonesian phone numbers to E.164 (`+62…`).
//!
//! A number is a country prefix (`+62`, `0062`, `62`) or the national trunk
//! prefix `0`, then the national significant number (NSN):
//!
//! * mobile: `8` + 8–11 digits (`0812-3456-7890` → `+6281234567890`);
//! * landline: an area code of 2 digits (`21` Jakarta, `22` Bandung,
//!   `24` Semarang, `31` Surabaya, `61` Medan) or 3 digits (`274`
//!   Yogyakarta, `361` Denpasar, …; area codes start with 2–7 or 9), then
//!   5–8 subscriber digits.
//!
//! Only Indonesian numbers are normalised: another country code, service
//! numbers (`14045`, `1500…`) and local numbers without an area code have
//! no unambiguous `+62` form and give `None`.

use super::{is_dash, trim};

/// Area codes with two digits; every other area code has three.
const TWO_DIGIT_AREA_CODES: [&[u8]; 5] = [b"21", b"22", b"24", b"31", b"61"];

/// Extension markers, longest first so `ext` does not shadow `extension`.
/// `psw`/`pes` (pesawat) is how Indonesian forms write an extension.
const EXTENSION_MARKERS: [&str; 5] = ["extension", "ext", "psw", "pes", "x"];

/// More digits than any prefix plus NSN can have; stops early on long input.
const MAX_DIGITS: usize = 18;

/// Normalises an Indonesian phone number to E.164 (`+62` + NSN), or `None`.
///
/// Accepted: `+62 812 3456 7890`, `+62-812-3456-7890`, `(+62) 812…`,
/// `0812-3456-7890`, `0812.3456.7890`, `08123456789`, `62812345678 90`,
/// `0062 812…`, `(021) 555-1234`, `021-5551234`, `+62 (21) 5551234`,
/// `+62 (0)21 5551234` (one trunk `0` after the country code is dropped),
/// `0274 123456`. Separators are whitespace, `-` (and typographic dashes),
/// `.` and one level of balanced parentheses; surrounding whitespace is
/// ignored. A trailing extension `ext 12`, `ext. 12`, `extension 12`,
/// `x12`, `psw 12` or `pes. 12` (1–6 digits, any letter case) is dropped.
///
/// Rejected: another country code (`+65…`, `001…`), any other letter or
/// symbol (`/`, `,`, `*`, `#`, text such as `"Telp: 021…"`), a marker with no
/// digits, a `+` after a digit, lengths outside the ranges above, and numbers
/// without a prefix (`81234567890` could be a mobile with its `0` forgotten
/// or a local number; we do not guess).
pub fn norm_phone(input: &str) -> Option<String> {
    let number = without_extension(trim(input))?;
    let (plus, digits) = scan(number)?;
    let nsn = national_number(plus, &digits)?;
    if !plausible(nsn) {
        return None;
    }
    let mut out = String::with_capacity(3 + nsn.len());
    out.push_str("+62");
    out.extend(nsn.iter().map(|&b| char::from(b)));
    Some(out)
}

/// The number without its extension suffix; `None` when there are letters
/// that do not form one.
fn without_extension(s: &str) -> Option<&str> {
    let Some(at) = s.find(|c: char| c.is_ascii_alphabetic()) else {
        return Some(s);
    };
    let (number, tail) = s.split_at(at);
    let rest = EXTENSION_MARKERS.iter().find_map(|marker| {
        let head = tail.get(..marker.len())?;
        head.eq_ignore_ascii_case(marker)
            .then(|| tail.get(marker.len()..))
            .flatten()
    })?;
    let ext = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ':' | '-'));
    let ok = (1..=6).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(number)
}

/// The ASCII digits of `s` and whether it started with `+`; `None` on any
/// character that is not a digit or an allowed separator.
fn scan(s: &str) -> Option<(bool, Vec<u8>)> {
    let mut plus = false;
    let mut open = false;
    let mut digits = Vec::with_capacity(16);
    for c in s.chars() {
        match c {
            '0'..='9' if digits.len() < MAX_DIGITS => digits.push(c as u8),
            '+' if !plus && digits.is_empty() => plus = true,
            '(' if !open => open = true,
            ')' if open => open = false,
            '.' => {}
            c if c.is_whitespace() || is_dash(c) => {}
            _ => return None,
        }
    }
    (!open).then_some((plus, digits))
}

/// The NSN after the international or national prefix.
fn national_number(plus: bool, digits: &[u8]) -> Option<&[u8]> {
    let after_country_code = if plus {
        digits.strip_prefix(b"62")?
    } else if let Some(rest) = digits.strip_prefix(b"0062") {
        rest
    } else if let Some(rest) = digits.strip_prefix(b"62") {
        rest
    } else {
        return digits.strip_prefix(b"0");
    };
    // "+62 (0)21 …", "+62 0812 …": the trunk 0 does not belong there.
    Some(
        after_country_code
            .strip_prefix(b"0")
            .unwrap_or(after_country_code),
    )
}

/// Whether an NSN has the shape of an Indonesian mobile or landline number.
fn plausible(nsn: &[u8]) -> bool {
    match nsn.first() {
        Some(b'8') => (9..=12).contains(&nsn.len()),
        Some(b'2'..=b'7' | b'9') => {
            let area = if TWO_DIGIT_AREA_CODES.iter().any(|a| nsn.starts_with(a)) {
                2
            } else {
                3
            };
            (5..=8).contains(&nsn.len().saturating_sub(area))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::gen::Lcg;
    use super::*;

    #[test]
    fn norm_phone_table() {
        let mobile = Some("+6281234567890");
        let jakarta = Some("+62215551234");
        let cases: &[(&str, Option<&str>)] = &[
            // mobile, every way forms write it
            ("0812-3456-7890", mobile),
            ("0812 3456 7890", mobile),
            ("+62 812 3456 7890", mobile),
            ("62812345678 90", mobile),
            ("+62-812-3456-7890", mobile),
            ("+6281234567890", mobile),
            ("0062 812 3456 7890", mobile),
            ("(+62) 812-3456-7890", mobile),
            ("+62 (0)812 3456 7890", mobile),
            ("+62 0812 3456 7890", mobile),
            ("0812.3456.7890", mobile),
            ("  0812-3456-7890\t", mobile),
            ("\u{FEFF}0812\u{A0}3456\u{A0}7890", mobile),
            ("0812\u{2013}3456\u{2013}7890", mobile),
            ("0812-3456-7890 ext 12", mobile),
            ("0812-3456-7890 ext. 12", mobile),
            ("0812-3456-7890 EXT.12", mobile),
            ("0812-3456-7890 x12", mobile),
            ("0812-3456-7890 X 12", mobile),
            ("0812-3456-7890 extension: 1234", mobile),
            ("08123456789", Some("+628123456789")),
            ("0811 1234 56", Some("+62811123456")),
            ("0812 1234 5678 9", Some("+62812123456789")),
            // landlines
            ("(021) 555-1234", jakarta),
            ("021-5551234", jakarta),
            ("+62 (21) 5551234", jakarta),
            ("+62 (0)21 5551234", jakarta),
            ("021 5551234 psw 101", jakarta),
            ("021-5551234 pes. 7", jakarta),
            ("(021) 2955 1234", Some("+622129551234")),
            ("0274 123456", Some("+62274123456")),
            ("(0361) 123-456", Some("+62361123456")),
            ("022-12345", Some("+622212345")),
            ("0967 53 1234", Some("+62967531234")),
            ("0627 123456", Some("+62627123456")),
            // rejected
            ("", None),
            ("+65 6123 4567", None),
            ("+1 (415) 555-2671", None),
            ("0065 6123 4567", None),
            ("Telp: 021-5551234", None),
            ("0812-3456-7890 ext", None),
            ("0812-3456-7890 ext 1234567", None),
            ("0812-3456-7890 ext 12a", None),
            ("0812-3456-789O", None),
            ("0812/3456/7890", None),
            ("0812-3456-7890, 0813-1111-2222", None),
            ("0812 3456 7890 / 0813 1111 2222", None),
            ("081234567", None),
            ("08123456789012", None),
            ("0812++3456", None),
            ("0812 +3456 7890", None),
            ("(021 5551234", None),
            ("021) 5551234", None),
            ("((021)) 5551234", None),
            ("021-1234", None),
            ("021-123456789", None),
            ("0274 1234", None),
            ("0274 123456789", None),
            ("5551234", None),
            ("81234567890", None),
            ("14045", None),
            ("+62 1500 888", None),
            ("0000 0000 0000", None),
            ("+", None),
            ("x12", None),
            ("0812\u{0}3456\u{0}7890", None),
            ("０８１２３４５６７８９０", None),
        ];
        for &(input, want) in cases {
            assert_eq!(norm_phone(input).as_deref(), want, "norm_phone({input:?})");
        }
    }

    /// Random mobile and Jakarta numbers in random real-world layouts all
    /// normalise to the same E.164 string.
    #[test]
    fn generated_numbers_in_every_layout() {
        let prefixes = ["0", "+62", "+62 ", "62", "0062 ", "+62 (0)", "(+62) "];
        let separators = ["", " ", "-", ".", " - "];
        let mut rng = Lcg::new(62);
        for _ in 0..3_000 {
            let nsn = if rng.below(2) == 0 {
                let len = 8 + rng.below(4);
                format!("8{}", rng.digits(len))
            } else {
                let len = 5 + rng.below(4);
                format!("21{}", rng.digits(len))
            };
            let mut input = rng.pick(&prefixes).to_string();
            let sep = rng.pick(&separators);
            for (i, ch) in nsn.chars().enumerate() {
                if i > 0 && i % 4 == 0 {
                    input.push_str(sep);
                }
                input.push(ch);
            }
            if rng.below(4) == 0 {
                input.push_str(" ext. 21");
            }
            assert_eq!(norm_phone(&input), Some(format!("+62{nsn}")), "{input:?}");
        }
    }
}
