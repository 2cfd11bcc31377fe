//! Indonesian phone numbers inside text: a prefix (`+62`, `62`, or the
//! trunk `0`) and a national significant number (NSN) that is a mobile
//! number (`8` then 1–3 or 5–9, 9–12 digits in all: Telkomsel 811–813,
//! 821–823, 851–853; Indosat 814–816, 855–858; XL/Axis 817–819, 859, 877,
//! 878, 831–838; Tri 895–899; Smartfren 881–889) or a landline (an area
//! code of 2 digits — 21, 22, 24, 31, 61 — or 3 digits starting with 2–7 or
//! 9, then 5–8 subscriber digits). The same rules as
//! [`crate::normalize::norm_phone`], applied to a number found in text.

/// Scores before context: a mobile number is distinctive, a landline less
/// so (it is short and starts like other codes).
const MOBILE: f32 = 0.65;
const LANDLINE: f32 = 0.4;
/// Added when the number is written the way phone numbers are (`+62`,
/// `(021)`).
const FORMATTED: f32 = 0.15;

const TWO_DIGIT_AREA_CODES: [[u8; 2]; 5] = [[2, 1], [2, 2], [2, 4], [3, 1], [6, 1]];

/// The score of `d` (values 0–9) as a phone number; `plus` when written
/// with a leading `+`, `paren` when it has parentheses.
pub(super) fn score(d: &[u8], plus: bool, paren: bool) -> Option<f32> {
    let (nsn, intl) = if plus {
        (d.strip_prefix(&[6, 2])?, true)
    } else if let Some(rest) = d.strip_prefix(&[0]) {
        (rest, false)
    } else {
        // `62…` without `+`: only a mobile number is unambiguous enough
        // (`62 0812…`: people keep the trunk 0).
        let rest = d.strip_prefix(&[6, 2])?;
        let rest = rest.strip_prefix(&[0]).unwrap_or(rest);
        return mobile(rest).then_some(MOBILE);
    };
    // `+62 (0)21 …`: one trunk 0 after the country code.
    let nsn = match (intl, nsn.first()) {
        (true, Some(0)) => &nsn[1..],
        _ => nsn,
    };
    let bonus = if intl || paren { FORMATTED } else { 0.0 };
    if mobile(nsn) {
        Some(MOBILE + bonus)
    } else if landline(nsn) {
        Some(LANDLINE + bonus)
    } else {
        None
    }
}

/// Whether `d`, introduced by a phone keyword (`HP`, `WA`, `Telp`), is a
/// phone number typed imperfectly: a mobile number without its trunk `0`
/// (`WA 812 3456 7890`, or what a spreadsheet leaves of `0812…`), with a
/// mistyped prefix or a digit too many (`0841…`, 14 digits), or `62` and
/// a landline without the `+`.
pub(super) fn typed(d: &[u8], plus: bool) -> bool {
    let (nsn, intl) = if let Some(rest) = d.strip_prefix(&[6, 2]) {
        (rest, true)
    } else if plus {
        return false;
    } else {
        (d.strip_prefix(&[0]).unwrap_or(d), false)
    };
    let nsn = if intl {
        nsn.strip_prefix(&[0]).unwrap_or(nsn)
    } else {
        nsn
    };
    ((8..=13).contains(&nsn.len()) && nsn[0] == 8) || (intl && landline(nsn))
}

fn mobile(nsn: &[u8]) -> bool {
    (9..=12).contains(&nsn.len()) && nsn[0] == 8 && matches!(nsn[1], 1..=3 | 5..=9)
}

fn landline(nsn: &[u8]) -> bool {
    if nsn.len() < 7 || !matches!(nsn[0], 2..=7 | 9) {
        return false;
    }
    let area = if TWO_DIGIT_AREA_CODES.iter().any(|a| nsn[..2] == a[..]) {
        2
    } else {
        3
    };
    (5..=8).contains(&(nsn.len() - area))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(score(&d("081234567890"), false, false), Some(MOBILE));
        assert_eq!(
            score(&d("6281234567890"), true, false),
            Some(MOBILE + FORMATTED)
        );
        assert_eq!(score(&d("6281234567890"), false, false), Some(MOBILE));
        assert_eq!(
            score(&d("0215551234"), false, true),
            Some(LANDLINE + FORMATTED)
        );
        assert_eq!(score(&d("0274123456"), false, false), Some(LANDLINE));
        assert_eq!(
            score(&d("62021555123"), true, false),
            Some(LANDLINE + FORMATTED)
        );
    }

    #[test]
    fn typed_after_a_keyword() {
        for (s, plus) in [
            ("81234567890", false),    // the trunk 0 lost
            ("812345678", false),      // 9 digits, no trunk 0
            ("08412345678", false),    // mistyped prefix
            ("08123456789012", false), // a digit too many
            ("6221555123", false),     // 62 + landline without +
            ("62081234567890", true),  // +62 0812…
        ] {
            assert!(typed(&d(s), plus), "{s}");
        }
        for (s, plus) in [
            ("1234567890", false),
            ("0212345", false),
            ("6581234567", true),
            ("0812345", false),
        ] {
            assert!(!typed(&d(s), plus), "{s}");
        }
        assert_eq!(score(&d("62081234567890"), false, false), Some(MOBILE));
    }

    #[test]
    fn not_numbers() {
        for (s, plus) in [
            ("0801234567", false),     // 80x is no mobile prefix
            ("0841234567", false),     // nor 84x
            ("08123456", false),       // too short
            ("08123456789012", false), // too long
            ("0112345678", false),     // area codes do not start with 1
            ("0012345678", false),
            ("6221555123", false),  // 62 + landline without +
            ("6581234567", true),   // another country
            ("81234567890", false), // no prefix
            ("0215551", false),     // subscriber too short
        ] {
            assert_eq!(score(&d(s), plus, false), None, "{s}");
        }
    }
}
